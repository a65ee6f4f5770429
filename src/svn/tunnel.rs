//! One svn+ssh session: the front door's greeting, the client's answer, the svn server's
//! greeting and CRAM-MD5 authentication as the identity, then a byte relay (see the module
//! above for why each step is there).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::driver::relay::{copy, idle_watch};
use crate::limits::{SVN_HANDSHAKE_TIMEOUT, SVN_MAX_ITEM};
use crate::session::{ExitStatus, SessionIo};
use crate::svn::item::{self, Item, string, word};

/// `[[svn_servers]]`: an svn server (`svnserve -d`) and the repositories routed to it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvnServerConfig {
    /// Its name (what an HTTP backend's `/access` answer names as `upstream`).
    pub name: String,
    /// `host:port` of `svnserve -d` (on a private network).
    pub address: String,
    /// Repository globs (`owner/name`) served there, as `[[routes]]` repos.
    #[serde(default)]
    pub repos: Vec<String>,
    /// The file holding the secret user passwords are derived from (owner-only, in data_dir).
    pub secret_file: PathBuf,
}

/// An svn server, ready to be routed to.
pub struct SvnServer {
    /// Its name.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Repository globs it serves.
    pub repos: Vec<String>,
    secret: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SvnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvnServer")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl SvnServer {
    /// The server of `c`, with the secret already read.
    pub fn new(c: &SvnServerConfig, secret: Vec<u8>) -> Self {
        Self {
            name: c.name.clone(),
            address: c.address.clone(),
            repos: c.repos.clone(),
            secret: zeroize::Zeroizing::new(secret),
        }
    }

    /// The password `identity` has on this server: hex of HMAC-SHA256(secret, identity).
    pub fn password(&self, identity: &str) -> String {
        crate::crypto::hmac::hmac_sha256(&self.secret, identity.as_bytes())
            .map(|m| m.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default()
    }

    /// Whether `repo` is routed here by the configured globs.
    pub fn serves(&self, repo: &str) -> bool {
        self.repos
            .iter()
            .any(|p| crate::route::policy::repo_glob(p, repo))
    }
}

/// The repository an svn URL names: the first two segments of its path (`owner/name`), the
/// rest being a path inside it (`svn+ssh://host/team/proj/trunk` → `team/proj`).
pub fn repository(url: &[u8]) -> Option<String> {
    let url = std::str::from_utf8(url).ok()?;
    let rest = url.strip_prefix("svn+ssh://")?;
    let path = rest.split_once('/').map(|(_, p)| p)?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(2).collect();
    if segments.len() < 2 {
        return None;
    }
    crate::git::repo::canonical_name(&segments.join("/")).ok()
}

/// What the front door announces in its greeting: capabilities every svnserve since 1.8 has
/// (checked again against the real server's greeting before anything is passed on).
const CAPS: [&str; 11] = [
    "edit-pipeline",
    "svndiff1",
    "absent-entries",
    "commit-revprops",
    "depth",
    "log-revprops",
    "atomic-revprops",
    "partial-replay",
    "inherited-props",
    "ephemeral-txnprops",
    "file-revs-reverse",
];

/// `( success ( 2 2 ( ) ( caps ) ) )` [protocol §2].
fn greeting() -> Vec<u8> {
    Item::List(vec![
        word("success"),
        Item::List(vec![
            Item::Number(2),
            Item::Number(2),
            Item::List(Vec::new()),
            Item::List(CAPS.iter().map(|c| word(c)).collect()),
        ]),
    ])
    .to_bytes()
}

/// A command-response failure the svn client prints: `( failure ( ( code message 0: 0 ) ) )`.
/// 170001 is SVN_ERR_RA_NOT_AUTHORIZED, 210002 SVN_ERR_RA_SVN_CONNECTION_CLOSED.
fn failure(code: u64, message: &str) -> Vec<u8> {
    Item::List(vec![
        word("failure"),
        Item::List(vec![Item::List(vec![
            Item::Number(code),
            string(message.as_bytes()),
            string(b""),
            Item::Number(0),
        ])]),
    ])
    .to_bytes()
}

/// Reads one item from `r` into `buf` (which may already hold the start of it); returns the
/// item and its exact bytes, leaving what follows in `buf`.
async fn read_item<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(Item, Vec<u8>), String> {
    let mut chunk = [0u8; 4096];
    loop {
        match item::parse(buf) {
            Ok(Some((it, used))) => {
                let raw: Vec<u8> = buf.drain(..used.min(buf.len())).collect();
                return Ok((it, raw));
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let want = chunk
            .len()
            .min(SVN_MAX_ITEM.saturating_sub(buf.len()).max(1));
        let n = r
            .read(chunk.get_mut(..want).unwrap_or_default())
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed during the svn handshake".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// How one svn session went, for its log line.
#[derive(Debug)]
pub struct Report {
    /// The repository the client named, once read.
    pub repo: Option<String>,
    /// The svn server it went to.
    pub server: Option<String>,
    /// Client → server bytes after the handshake.
    pub bytes_in: u64,
    /// Server → client bytes after the handshake.
    pub bytes_out: u64,
    /// Wall time.
    pub duration: Duration,
    /// Why it failed (the client was told), if it did.
    pub failure: Option<String>,
}

/// Serves one `svnserve -t` session for `identity`: `decide` gets the repository and returns
/// the svn server (or the client's message and the log's reason). Nothing moving for `idle`
/// ends it.
pub async fn run<F, Fut>(
    io: SessionIo,
    identity: &str,
    idle: Duration,
    decide: F,
) -> (ExitStatus, Report)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Arc<SvnServer>, (String, String)>>,
{
    let start = Instant::now();
    let SessionIo {
        mut stdin,
        mut stdout,
        stderr: _,
        gone,
    } = io;
    let mut report = Report {
        repo: None,
        server: None,
        bytes_in: 0,
        bytes_out: 0,
        duration: Duration::ZERO,
        failure: None,
    };
    let handshake = handshake(&mut stdin, &mut stdout, identity, decide, &mut report);
    let ready = tokio::select! {
        r = tokio::time::timeout(SVN_HANDSHAKE_TIMEOUT, handshake) => {
            r.unwrap_or_else(|_| Err((failure(210002, "svn handshake timed out"), "handshake timed out".into())))
        }
        _ = gone => Err((Vec::new(), "client gone".into())),
    };
    let (server, client_rest, server_rest) = match ready {
        Ok(parts) => parts,
        Err((tell, why)) => {
            let _ = stdout.write_all(&tell).await;
            let _ = stdout.shutdown().await;
            report.failure = Some(why);
            report.duration = start.elapsed();
            return (ExitStatus::Code(1), report);
        }
    };
    // The relay: what each side sent past the handshake first, then bytes as they come.
    let (up_read, mut up_write) = server.into_split();
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let activity = Arc::new(AtomicU64::new(0));
    let ok = up_write.write_all(&client_rest).await.is_ok()
        && stdout.write_all(&server_rest).await.is_ok();
    if ok {
        let up = copy(
            stdin,
            up_write,
            counters.clone(),
            activity.clone(),
            true,
            true,
        );
        let down = copy(
            up_read,
            &mut stdout,
            counters.clone(),
            activity.clone(),
            false,
            true,
        );
        let moved = || activity.load(Ordering::Relaxed);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            () = idle_watch(moved, idle) => report.failure = Some("idle".into()),
        }
    }
    report.bytes_in = counters.0.load(Ordering::Relaxed);
    report.bytes_out = counters.1.load(Ordering::Relaxed);
    report.duration = start.elapsed();
    (ExitStatus::Code(0), report)
}

type Ready = (tokio::net::TcpStream, Vec<u8>, Vec<u8>);

/// Everything before the relay; `Err((what the client gets, why))`.
async fn handshake<F, Fut, R, W>(
    client_in: &mut R,
    client_out: &mut W,
    identity: &str,
    decide: F,
    report: &mut Report,
) -> Result<Ready, (Vec<u8>, String)>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Arc<SvnServer>, (String, String)>>,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let closed = |why: String| (Vec::new(), why);
    client_out
        .write_all(&greeting())
        .await
        .map_err(|e| closed(e.to_string()))?;
    let mut from_client = Vec::new();
    let (answer, answer_raw) = read_item(client_in, &mut from_client)
        .await
        .map_err(closed)?;
    let fields = answer.list().unwrap_or_default();
    let version = fields.first().and_then(Item::number);
    let url = fields.get(2).and_then(Item::str).unwrap_or_default();
    let Some(repo) = repository(url) else {
        let shown = String::from_utf8_lossy(url).into_owned();
        return Err((
            failure(
                170001,
                &format!("portcullis: '{shown}' names no repository (svn+ssh://host/owner/name)"),
            ),
            "no repository in the URL".into(),
        ));
    };
    report.repo = Some(repo.clone());
    let server = decide(repo)
        .await
        .map_err(|(tell, why)| (failure(170001, &tell), why))?;
    report.server = Some(server.name.clone());
    let unavailable = |why: String| {
        (
            failure(
                210002,
                &format!(
                    "portcullis: svn server {} unavailable, try again later",
                    server.name
                ),
            ),
            why,
        )
    };
    let mut up = tokio::net::TcpStream::connect(&server.address)
        .await
        .map_err(|e| unavailable(format!("connect {}: {e}", server.address)))?;
    let mut from_server = Vec::new();
    let (hello, _) = read_item(&mut up, &mut from_server)
        .await
        .map_err(unavailable)?;
    let params = hello
        .success()
        .ok_or_else(|| unavailable("greeting is a failure".into()))?;
    let range = (
        params.first().and_then(Item::number),
        params.get(1).and_then(Item::number),
    );
    let caps: Vec<&str> = params
        .get(3)
        .and_then(Item::list)
        .unwrap_or_default()
        .iter()
        .filter_map(Item::word)
        .collect();
    let fits = matches!((range, version), ((Some(lo), Some(hi)), Some(v)) if lo <= v && v <= hi);
    if !fits || !CAPS.iter().all(|c| caps.contains(c)) {
        return Err(unavailable(format!(
            "svn server greeting does not fit ({params:?})"
        )));
    }
    up.write_all(&answer_raw)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let (auth, _) = read_item(&mut up, &mut from_server)
        .await
        .map_err(unavailable)?;
    let asked = auth
        .success()
        .ok_or_else(|| unavailable("svn server refused the session".into()))?;
    let mechs: Vec<&str> = asked
        .first()
        .and_then(Item::list)
        .unwrap_or_default()
        .iter()
        .filter_map(Item::word)
        .collect();
    let realm = asked
        .get(1)
        .and_then(Item::str)
        .unwrap_or_default()
        .to_vec();
    if !mechs.is_empty() {
        if !mechs.contains(&"CRAM-MD5") {
            return Err(unavailable(format!(
                "svn server offers no CRAM-MD5 ({mechs:?}): the identity cannot be passed"
            )));
        }
        cram_md5(
            &mut up,
            &mut from_server,
            identity,
            &server.password(identity),
        )
        .await
        .map_err(|why| {
            (
                failure(170001, "portcullis: the svn server refused this user"),
                why,
            )
        })?;
    }
    // The client is told no authentication is needed: it already was, by its SSH key.
    let none = Item::List(vec![
        word("success"),
        Item::List(vec![Item::List(Vec::new()), string(&realm)]),
    ]);
    client_out
        .write_all(&none.to_bytes())
        .await
        .map_err(|e| closed(e.to_string()))?;
    Ok((up, from_client, from_server))
}

/// CRAM-MD5 as svn speaks it: `( CRAM-MD5 ( ) )`, `( step ( challenge ) )`, the answer
/// `user hex(HMAC-MD5(password, challenge))` as a string, `( success ( ) )` \[RFC2195\].
async fn cram_md5(
    up: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    user: &str,
    password: &str,
) -> Result<(), String> {
    let start = Item::List(vec![word("CRAM-MD5"), Item::List(Vec::new())]);
    up.write_all(&start.to_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let (step, _) = read_item(up, buf).await?;
    let challenge = match step.list() {
        Some([Item::Word(w), Item::List(t), ..]) if w == "step" => {
            t.first().and_then(Item::str).unwrap_or_default().to_vec()
        }
        _ => return Err(format!("CRAM-MD5: no challenge ({step:?})")),
    };
    let mac = crate::crypto::hmac::hmac_md5(password.as_bytes(), &challenge).unwrap_or_default();
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    up.write_all(&string(format!("{user} {hex}").as_bytes()).to_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let (done, _) = read_item(up, buf).await?;
    match done.list() {
        Some([Item::Word(w), ..]) if w == "success" => Ok(()),
        _ => Err(format!("CRAM-MD5 refused: {done:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_the_first_two_segments_of_an_svn_ssh_url() {
        let r = |u: &str| repository(u.as_bytes());
        assert_eq!(
            r("svn+ssh://git@h/team/proj/trunk/src").as_deref(),
            Some("team/proj")
        );
        assert_eq!(
            r("svn+ssh://h:2222/team/proj").as_deref(),
            Some("team/proj")
        );
        assert_eq!(r("svn+ssh://h/team"), None);
        assert_eq!(r("svn://h/team/proj"), None);
        assert_eq!(r("svn+ssh://h/../etc/x"), None);
        assert_eq!(r("svn+ssh://h/-x/y"), None);
    }

    #[test]
    fn the_greeting_and_failures_are_items() {
        let (g, _) = item::parse(&greeting()).unwrap().unwrap();
        assert_eq!(g.success().unwrap()[3].list().unwrap().len(), CAPS.len());
        let (f, _) = item::parse(&failure(170001, "no")).unwrap().unwrap();
        assert_eq!(f.list().unwrap()[0], word("failure"));
    }
}
