//! Runs one outgoing connection in its own task for a single `exec`: authentication, a session
//! channel, `env` requests, the command, and its streams as tokio `AsyncRead`/`AsyncWrite`
//! (bounded pipes, so backpressure reaches the remote window both ways).

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};

use crate::client::{ClientConnection, ClientEvent};
use crate::connection::{ChannelEvent, ChannelRequest};
use crate::driver::Ended;
use crate::driver::pipe::{Pipe, PipeReader, PipeWriter};
use crate::driver::server::ExitStatus;
use crate::error::{DisconnectReason, Error};

/// How a remote command ended, or why it never ran.
#[derive(Debug)]
pub enum RemoteExit {
    /// `exit-status` / `exit-signal` arrived.
    Status(ExitStatus),
    /// The channel closed without an exit status.
    NoStatus,
    /// Authentication failed.
    AuthFailed,
    /// The server refused the session or the command.
    Refused(String),
    /// The connection ended first.
    Disconnected(Ended),
}

/// The streams of a remote command.
#[derive(Debug)]
pub struct RemoteSession {
    /// The command's standard input.
    pub stdin: PipeWriter,
    /// Its standard output.
    pub stdout: PipeReader,
    /// Its standard error.
    pub stderr: PipeReader,
    /// Resolves once, when the command is over.
    pub exit: oneshot::Receiver<RemoteExit>,
}

/// Spawns a task that runs `command` over `conn` on `stream`.
pub fn spawn_exec<S>(
    stream: S,
    conn: ClientConnection,
    command: Vec<u8>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
) -> RemoteSession
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let notify = Arc::new(Notify::new());
    let (stdin, stdout, stderr) = (
        Pipe::new(notify.clone()),
        Pipe::new(notify.clone()),
        Pipe::new(notify.clone()),
    );
    let (tx, rx) = oneshot::channel();
    let session = RemoteSession {
        stdin: PipeWriter(stdin.clone()),
        stdout: PipeReader(stdout.clone()),
        stderr: PipeReader(stderr.clone()),
        exit: rx,
    };
    let task = Exec {
        c: conn,
        command,
        env,
        notify,
        stdin,
        stdout,
        stderr,
        id: None,
        status: None,
        outcome: None,
        eof_sent: false,
        closing: false,
    };
    tokio::spawn(task.run(stream, tx));
    session
}

struct Exec {
    c: ClientConnection,
    command: Vec<u8>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    notify: Arc<Notify>,
    stdin: Pipe,
    stdout: Pipe,
    stderr: Pipe,
    id: Option<u32>,
    status: Option<ExitStatus>,
    outcome: Option<RemoteExit>,
    eof_sent: bool,
    /// The peer closed the channel; what it sent before is still being handed to the pipes.
    closing: bool,
}

impl Exec {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut stream: S,
        tx: oneshot::Sender<RemoteExit>,
    ) {
        let ended = self.drive(&mut stream).await;
        self.stdout.close_write();
        self.stderr.close_write();
        self.stdin.close_read();
        let outcome = self.outcome.take().unwrap_or(match self.status.take() {
            Some(s) => RemoteExit::Status(s),
            None => RemoteExit::Disconnected(ended),
        });
        let _ = tx.send(outcome);
    }

    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(&mut self, stream: &mut S) -> Ended {
        let mut inbuf = Vec::with_capacity(64 * 1024);
        let mut out = Vec::new();
        loop {
            if let Err(e) = self.pump() {
                self.c.poll_transmit(&mut out);
                let _ = stream.write_all(&out).await;
                return Ended::Error(e);
            }
            self.c.poll_transmit(&mut out);
            if !out.is_empty() {
                if let Err(e) = stream.write_all(&out).await {
                    return Ended::Io(e);
                }
                out.clear();
                continue;
            }
            if self.c.is_closed() {
                let _ = stream.shutdown().await;
                return Ended::Closed;
            }
            let timeout = self.c.poll_timeout();
            let sleep = async {
                match timeout {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let notified = self.notify.notified();
            tokio::select! {
                r = stream.read_buf(&mut inbuf) => match r {
                    Ok(0) => return Ended::Eof,
                    Ok(_) => {
                        let mut at = 0;
                        while at < inbuf.len() && !self.c.is_closed() {
                            match self.c.handle_input(inbuf.get(at..).unwrap_or_default(), Instant::now()) {
                                Ok(0) => break,
                                Ok(n) => at = at.saturating_add(n),
                                Err(Error::PeerDisconnected { reason, description }) => return Ended::PeerDisconnected { reason, description },
                                Err(e) => return Ended::Error(e),
                            }
                            if let Err(e) = self.events() {
                                return Ended::Error(e);
                            }
                        }
                        inbuf.drain(..at.min(inbuf.len()));
                    }
                    Err(e) => return Ended::Io(e),
                },
                () = sleep => {
                    if let Err(e) = self.c.handle_timeout(Instant::now()) {
                        return Ended::Error(e);
                    }
                }
                () = notified => {}
            }
        }
    }

    fn events(&mut self) -> Result<(), Error> {
        while let Some(ev) = self.c.poll_event() {
            match ev {
                ClientEvent::Authenticated => self.id = Some(self.c.open_session()?),
                ClientEvent::AuthFailed => self.outcome = Some(RemoteExit::AuthFailed),
                ClientEvent::Channel(ChannelEvent::Opened { id }) => {
                    for (name, value) in std::mem::take(&mut self.env) {
                        self.c
                            .request(id, &ChannelRequest::Env { name, value }, false)?;
                    }
                    self.c
                        .request(id, &ChannelRequest::Exec(self.command.clone()), true)?;
                }
                ClientEvent::Channel(ChannelEvent::OpenFailed { description, .. }) => {
                    self.outcome = Some(RemoteExit::Refused(description));
                    self.c
                        .disconnect(DisconnectReason::ByApplication, "session refused");
                }
                ClientEvent::Channel(ChannelEvent::Reply { ok: false, .. }) => {
                    self.outcome = Some(RemoteExit::Refused("exec refused".into()));
                    self.c
                        .disconnect(DisconnectReason::ByApplication, "exec refused");
                }
                ClientEvent::Channel(ChannelEvent::Request { request, .. }) => match request {
                    ChannelRequest::ExitStatus(code) => self.status = Some(ExitStatus::Code(code)),
                    ChannelRequest::ExitSignal { signal, .. } => {
                        self.status = Some(ExitStatus::Signal(
                            String::from_utf8_lossy(&signal).into_owned(),
                        ));
                    }
                    _ => {}
                },
                // Not done yet: the channel may still hold more output than the pipes take.
                ClientEvent::Channel(ChannelEvent::Closed { .. }) => self.closing = true,
                _ => {}
            }
        }
        Ok(())
    }

    /// Channel → stdout/stderr pipes, only into free space (window credit follows consumption).
    fn drain_output(&mut self) -> Result<(), Error> {
        let Some(id) = self.id else { return Ok(()) };
        let mut tmp = [0u8; 32 * 1024];
        for (pipe, ext) in [(&self.stdout, false), (&self.stderr, true)] {
            loop {
                let room = pipe.room().min(tmp.len());
                if room == 0 || self.c.channels().channel(id).is_none() {
                    break;
                }
                let n = self
                    .c
                    .read(id, ext, tmp.get_mut(..room).unwrap_or_default())?;
                if n == 0 {
                    break;
                }
                pipe.push(tmp.get(..n).unwrap_or_default());
            }
        }
        if self
            .c
            .channels()
            .channel(id)
            .is_none_or(|c| c.eof_received() && c.buffered() == 0)
        {
            self.stdout.close_write();
            self.stderr.close_write();
        }
        Ok(())
    }

    /// After the peer's CLOSE: keep handing buffered output to the pipes as the reader frees
    /// room, and end the connection only once nothing is left (else the tail would be lost).
    fn finish_closing(&mut self, id: u32) -> Result<(), Error> {
        if self.outcome.is_some() {
            return Ok(());
        }
        self.drain_output()?;
        if self
            .c
            .channels()
            .channel(id)
            .is_none_or(|c| c.buffered() == 0)
        {
            self.outcome = Some(
                self.status
                    .take()
                    .map_or(RemoteExit::NoStatus, RemoteExit::Status),
            );
            self.c.disconnect(DisconnectReason::ByApplication, "done");
        }
        Ok(())
    }

    fn pump(&mut self) -> Result<(), Error> {
        self.events()?;
        let Some(id) = self.id else { return Ok(()) };
        if self.closing {
            return self.finish_closing(id);
        }
        if self.c.channels().channel(id).is_none() {
            return Ok(());
        }
        self.drain_output()?;
        if !self.eof_sent
            && self
                .c
                .channels()
                .channel(id)
                .is_some_and(|c| c.state == crate::connection::ChanState::Open)
        {
            loop {
                let mut err = None;
                let used = self.stdin.drain(|data| match self.c.write(id, data) {
                    Ok(n) => n,
                    Err(e) => {
                        err = Some(e);
                        0
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
                if used == 0 {
                    break;
                }
            }
            if self.stdin.finished() {
                self.eof_sent = true;
                self.c.send_eof(id)?;
            }
        }
        Ok(())
    }
}
