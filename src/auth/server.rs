//! Server side of user authentication [RFC4252]: the `ssh-userauth` service, `none`, and
//! `publickey` (query → PK_OK, signature → verified over exactly the §7 data). Decisions about
//! *who* a key belongs to are not made here: each acceptable request becomes an
//! [`AuthRequest`] and waits for [`AuthServer::accept`] or [`AuthServer::reject`]; only a
//! request whose signature verified can become a success (the CVE-2024-45337 shape cannot arise).

use std::time::{Duration, Instant};

use crate::auth::publickey::{self, Request};
use crate::error::{DisconnectReason, Error, ProtocolError};
use crate::keys::{PublicKey, SigAlg};
use crate::msg::MsgNum;
use crate::transport::Transport;
use crate::wire::Reader;

/// Authentication policy knobs.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Methods offered in USERAUTH_FAILURE; only `publickey` is implemented.
    pub methods: Vec<String>,
    /// Signature algorithms accepted for user keys (`ssh-rsa`/SHA-1 only if listed).
    pub sig_algs: Vec<SigAlg>,
    /// Failed attempts before we disconnect [RFC4252 §4].
    pub max_attempts: u32,
    /// Time from connection to successful authentication [RFC4252 §4].
    pub login_grace: Duration,
    /// Longest user name accepted, in bytes.
    pub max_user_len: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            methods: vec!["publickey".into()],
            sig_algs: SigAlg::DEFAULT_USER.to_vec(),
            max_attempts: 6,
            login_grace: Duration::from_secs(120),
            max_user_len: 256,
        }
    }
}

/// A public key request waiting for the application's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name the client asked for.
    pub user: String,
    /// The key offered.
    pub key: PublicKey,
    /// The algorithm the request named.
    pub algorithm: SigAlg,
    /// `None` for a query (no signature): only PK_OK can follow. `Some(alg)` when a signature
    /// by this key verified, with the algorithm the signature itself used (which differs from
    /// `algorithm` for the old clients that name `rsa-sha2-*` but sign with `ssh-rsa`).
    pub verified: Option<SigAlg>,
    /// Security keys: the authenticator flags of the verified signature (0x01 user present,
    /// 0x04 user verified); the policy layer decides what it requires.
    pub sk_flags: Option<u8>,
}

/// Where authentication stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Before SERVICE_REQUEST "ssh-userauth".
    AwaitService,
    /// Accepting requests.
    Active,
    /// A request awaits the application's decision; input is paused.
    Pending(AuthRequest),
    /// Success was sent; nothing more to do [RFC4252 §5.1].
    Done,
}

/// The server's authentication state for one connection.
#[derive(Debug)]
pub struct AuthServer {
    config: AuthConfig,
    phase: Phase,
    failures: u32,
    deadline: Instant,
}

/// What handling one message produced.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Nothing for the application.
    Nothing,
    /// A request needs a decision; input should pause until it is made.
    Decide(AuthRequest),
}

impl AuthServer {
    /// Starts the grace timer at `now` (connection time).
    pub fn new(config: AuthConfig, now: Instant) -> Self {
        let deadline = now.checked_add(config.login_grace).unwrap_or(now);
        Self {
            config,
            phase: Phase::AwaitService,
            failures: 0,
            deadline,
        }
    }

    /// Whether USERAUTH_SUCCESS has been sent.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether a decision is outstanding.
    pub fn is_pending(&self) -> bool {
        matches!(self.phase, Phase::Pending(_))
    }

    /// The login grace deadline while authentication is unfinished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_done()).then_some(self.deadline)
    }

    /// Disconnects when the grace period is over [RFC4252 §4].
    pub fn handle_timeout(&mut self, t: &mut Transport, now: Instant) -> Result<(), Error> {
        if !self.is_done() && now >= self.deadline {
            t.disconnect(DisconnectReason::ByApplication, "authentication timeout");
            return Err(Error::Auth("login grace time exceeded"));
        }
        Ok(())
    }

    /// Handles a message of the authentication range or a service request.
    pub fn handle(&mut self, t: &mut Transport, payload: &[u8]) -> Result<AuthOutcome, Error> {
        let num = MsgNum(payload.first().copied().unwrap_or(0));
        let body = payload.get(1..).unwrap_or_default();
        match num {
            MsgNum::SERVICE_REQUEST => self
                .on_service_request(t, body)
                .map(|()| AuthOutcome::Nothing),
            MsgNum::USERAUTH_REQUEST => match self.phase {
                Phase::AwaitService => Err(unexpected("before ssh-userauth", num)),
                // Further requests after success are ignored [RFC4252 §5.1].
                Phase::Done => Ok(AuthOutcome::Nothing),
                Phase::Pending(_) => Err(unexpected("a pending request", num)),
                Phase::Active => self.on_request(t, body),
            },
            // Only a server sends these; a client that does is attacking (libssh CVE-2018-10933).
            _ => Err(unexpected("authentication", num)),
        }
    }

    fn on_service_request(&mut self, t: &mut Transport, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        let service = r.string()?;
        r.finish()?;
        if self.phase != Phase::AwaitService {
            return Err(unexpected(
                "a second service request",
                MsgNum::SERVICE_REQUEST,
            ));
        }
        if service != b"ssh-userauth" {
            t.disconnect(
                DisconnectReason::ServiceNotAvailable,
                "service not available",
            );
            return Err(Error::Auth("unknown service requested"));
        }
        t.send_with(|w| {
            w.u8(MsgNum::SERVICE_ACCEPT.0).string(service);
        })?;
        self.phase = Phase::Active;
        Ok(())
    }

    fn on_request(&mut self, t: &mut Transport, body: &[u8]) -> Result<AuthOutcome, Error> {
        let mut r = Reader::new(body);
        let user = r.string()?;
        let service = r.string()?;
        let method = r.string()?;
        if user.len() > self.config.max_user_len {
            t.disconnect(DisconnectReason::IllegalUserName, "user name too long");
            return Err(Error::Auth("user name too long"));
        }
        let Ok(user) = std::str::from_utf8(user) else {
            t.disconnect(DisconnectReason::IllegalUserName, "user name is not UTF-8");
            return Err(Error::Auth("user name is not UTF-8"));
        };
        // Only the connection protocol can follow [RFC4252 §5: authentication MUST NOT be accepted].
        if service != b"ssh-connection" || method != b"publickey" || !self.offers("publickey") {
            // "none" is how clients ask for the method list; it is not a failed attempt.
            let counts = method != b"none";
            return self.fail(t, counts).map(|()| AuthOutcome::Nothing);
        }
        let has_sig = r.bool()?;
        let alg_name = r.string()?;
        let key_blob = r.string()?;
        let sig = if has_sig { Some(r.string()?) } else { None };
        r.finish()?;
        let algorithm = std::str::from_utf8(alg_name)
            .ok()
            .and_then(SigAlg::from_wire_name);
        let key = PublicKey::decode(key_blob).ok();
        let (Some(algorithm), Some(key)) = (algorithm, key) else {
            return self.fail(t, has_sig).map(|()| AuthOutcome::Nothing);
        };
        // The named algorithm must be allowed and fit the key (the signature is checked as what
        // its own blob says below).
        if algorithm.key_type() != key.key_type() || !self.config.sig_algs.contains(&algorithm) {
            return self.fail(t, has_sig).map(|()| AuthOutcome::Nothing);
        }
        let verified = match sig {
            None => None,
            Some(sig) => {
                let session_id = t.session_id().ok_or(Error::Auth("no session"))?;
                let req = Request {
                    user: user.as_bytes(),
                    service,
                    algorithm: alg_name,
                    key_blob,
                };
                let data = publickey::signed_data(session_id, &req);
                match key.verify(&data, sig, &self.config.sig_algs) {
                    Ok(used) => Some(used),
                    Err(_) => return self.fail(t, true).map(|()| AuthOutcome::Nothing),
                }
            }
        };
        let req = AuthRequest {
            user: user.to_owned(),
            key,
            algorithm,
            verified: verified.map(|v| v.algorithm),
            sk_flags: verified.and_then(|v| v.sk_flags),
        };
        self.phase = Phase::Pending(req.clone());
        Ok(AuthOutcome::Decide(req))
    }

    fn offers(&self, method: &str) -> bool {
        self.config.methods.iter().any(|m| m == method)
    }

    /// USERAUTH_FAILURE listing our methods; counts the attempt when `counts`.
    fn fail(&mut self, t: &mut Transport, counts: bool) -> Result<(), Error> {
        if counts {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.config.max_attempts {
                t.disconnect(
                    DisconnectReason::NoMoreAuthMethodsAvailable,
                    "too many authentication failures",
                );
                return Err(Error::Auth("too many authentication failures"));
            }
        }
        let methods: Vec<&str> = self.config.methods.iter().map(String::as_str).collect();
        t.send_with(|w| {
            w.u8(MsgNum::USERAUTH_FAILURE.0)
                .name_list(methods.iter().copied())
                .bool(false);
        })?;
        self.phase = Phase::Active;
        Ok(())
    }

    /// Accepts the pending request. A query gets PK_OK; a verified request gets
    /// USERAUTH_SUCCESS, once, and authentication is over. Returns whether it succeeded.
    pub fn accept(&mut self, t: &mut Transport) -> Result<bool, Error> {
        let Phase::Pending(req) = std::mem::replace(&mut self.phase, Phase::Active) else {
            return Err(Error::Auth("no pending request"));
        };
        match req.verified {
            None => {
                let blob = req.key.to_blob();
                t.send_with(|w| {
                    w.u8(MsgNum::USERAUTH_PK_OK.0)
                        .string(req.algorithm.wire_name().as_bytes())
                        .string(&blob);
                })?;
                Ok(false)
            }
            Some(_) => {
                t.send_with(|w| {
                    w.u8(MsgNum::USERAUTH_SUCCESS.0);
                })?;
                t.set_authenticated();
                self.phase = Phase::Done;
                Ok(true)
            }
        }
    }

    /// Rejects the pending request with USERAUTH_FAILURE (a rejected signature counts as a
    /// failed attempt; a rejected query does not, as in OpenSSH).
    pub fn reject(&mut self, t: &mut Transport) -> Result<(), Error> {
        let Phase::Pending(req) = std::mem::replace(&mut self.phase, Phase::Active) else {
            return Err(Error::Auth("no pending request"));
        };
        self.fail(t, req.verified.is_some())
    }
}

fn unexpected(phase: &'static str, num: MsgNum) -> Error {
    ProtocolError::UnexpectedMessage { phase, msg: num.0 }.into()
}
