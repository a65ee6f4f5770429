//! Client side of `publickey` authentication [RFC4252 §7]: each key is tried in turn with a
//! signed request; RSA keys use the best `rsa-sha2-*` the server lists in `server-sig-algs`
//! [RFC8332 §3.3, RFC8308 §3.1], or try SHA-512 then SHA-256 when it lists nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::auth::publickey::{self, Request};
use crate::error::{AuthError, Error, ProtocolError};
use crate::keys::{KeyType, PrivateKey, SigAlg};
use crate::msg::Message;
use crate::transport::Transport;

/// What authentication produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthProgress {
    /// Still trying.
    Pending,
    /// USERAUTH_SUCCESS arrived.
    Succeeded,
    /// Every key was refused.
    Failed,
}

/// The client's authentication state.
#[derive(Debug)]
pub struct AuthClient {
    user: String,
    keys: Vec<Arc<PrivateKey>>,
    allow_sha1: bool,
    server_sig_algs: Option<Vec<SigAlg>>,
    queue: VecDeque<(usize, SigAlg)>,
    accepted: bool,
    progress: AuthProgress,
}

impl AuthClient {
    /// Authenticates as `user` with `keys`, in order.
    pub fn new(user: String, keys: Vec<Arc<PrivateKey>>, allow_sha1: bool) -> Self {
        Self {
            user,
            keys,
            allow_sha1,
            server_sig_algs: None,
            queue: VecDeque::new(),
            accepted: false,
            progress: AuthProgress::Pending,
        }
    }

    /// Records the server's `server-sig-algs`.
    pub fn set_server_sig_algs(&mut self, list: &str) {
        self.server_sig_algs = Some(list.split(',').filter_map(SigAlg::from_wire_name).collect());
    }

    /// Where authentication stands.
    pub fn progress(&self) -> AuthProgress {
        self.progress
    }

    fn candidates(&self) -> VecDeque<(usize, SigAlg)> {
        let mut out = VecDeque::new();
        for (i, key) in self.keys.iter().enumerate() {
            let algs: Vec<SigAlg> = match key.public().key_type() {
                KeyType::Rsa => {
                    let mut prefs = vec![SigAlg::RsaSha512, SigAlg::RsaSha256];
                    if self.allow_sha1 {
                        prefs.push(SigAlg::RsaSha1);
                    }
                    match &self.server_sig_algs {
                        Some(listed) => prefs
                            .into_iter()
                            .filter(|a| listed.contains(a))
                            .take(1)
                            .collect(),
                        None => prefs,
                    }
                }
                _ => vec![key.algorithm()],
            };
            out.extend(algs.into_iter().map(|a| (i, a)));
        }
        out
    }

    fn try_next(&mut self, t: &mut Transport) -> Result<(), Error> {
        let Some((i, alg)) = self.queue.pop_front() else {
            self.progress = AuthProgress::Failed;
            return Ok(());
        };
        let key = self
            .keys
            .get(i)
            .cloned()
            .ok_or(Error::Auth(AuthError::KeyCannotSign))?;
        let blob = key.public().to_blob();
        let req = Request {
            user: self.user.as_bytes(),
            service: b"ssh-connection",
            algorithm: alg.wire_name().as_bytes(),
            key_blob: &blob,
            host_key: None,
        };
        let session_id = t.session_id().ok_or(Error::Auth(AuthError::NoSession))?;
        let sig = key
            .sign_as(&publickey::signed_data(session_id, &req), alg)
            .ok_or(Error::Auth(AuthError::KeyCannotSign))?;
        t.send_with(|w| publickey::write_request(w, &req, Some(&sig)))
    }

    /// Handles SERVICE_ACCEPT and the server's authentication messages.
    pub fn handle(&mut self, t: &mut Transport, payload: &[u8]) -> Result<AuthProgress, Error> {
        let pending = self.accepted && self.progress == AuthProgress::Pending;
        match Message::decode(payload)? {
            Message::ServiceAccept(_) if !self.accepted => {
                self.accepted = true;
                self.queue = self.candidates();
                self.try_next(t)?;
            }
            Message::UserauthFailure(_) if pending => self.try_next(t)?,
            Message::UserauthSuccess(_) if pending => {
                self.progress = AuthProgress::Succeeded;
                t.set_authenticated();
            }
            // Banners are shown by interactive clients; we have no one to show them to.
            Message::UserauthBanner(_) => {}
            other => {
                return Err(ProtocolError::UnexpectedMessage {
                    phase: "client authentication",
                    msg: other.num().0,
                }
                .into());
            }
        }
        Ok(self.progress)
    }
}
