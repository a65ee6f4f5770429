//! Server side of user authentication \[RFC4252\]: the `ssh-userauth` service, `none`, and
//! `publickey` (query → PK_OK, signature → verified over exactly the §7 data). Decisions about
//! *who* a key belongs to are not made here: each well-formed request becomes an
//! [`AuthRequest`] and waits for [`AuthServer::accept`] or [`AuthServer::reject`]. The key is
//! looked up first and a signature is verified only once the application accepted the key
//! (an unknown key costs no verification); only a request whose signature verified can become a
//! success (the CVE-2024-45337 shape cannot arise). Failed requests are counted as OpenSSH
//! counts them: all but a query answered with PK_OK and a first `none`.

use std::time::{Duration, Instant};

use crate::auth::publickey::{self, Request};
use crate::error::{AuthError, DisconnectReason, Error, ProtocolError};
use crate::keys::cert::{Certificate, cert_sig_alg};
use crate::keys::{PublicKey, SigAlg};
use crate::limits::MAX_AUTH_REQUESTS;
use crate::msg::{
    HOSTBOUND_METHOD, Message, MsgNum, Publickey, ServiceAccept, ServiceRequest, UserauthFailure,
    UserauthPkOk, UserauthRequest, UserauthSuccess,
};
use crate::transport::Transport;
use crate::wire::NameList;

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
            max_attempts: crate::limits::MAX_AUTH_ATTEMPTS,
            login_grace: crate::limits::LOGIN_GRACE,
            max_user_len: crate::limits::MAX_USER_LEN,
        }
    }
}

/// A public key request waiting for the application's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name the client asked for.
    pub user: String,
    /// The key offered (a certificate's certified key, which signs).
    pub key: PublicKey,
    /// The certificate, when the request offered one [PROTOCOL.certkeys]: parsed only; its
    /// CA, signature and rules are the application's to check (`lookup::Screened`).
    pub cert: Option<Box<Certificate>>,
    /// The algorithm the request named.
    pub algorithm: SigAlg,
    /// Whether the request carries a signature (not yet verified: that happens on accept).
    /// Without one it is a query and only PK_OK can follow.
    pub signed: bool,
}

/// A signature that verified, reported with the success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The algorithm the signature itself used (differs from the request's name for the old
    /// clients that name `rsa-sha2-*` but sign with `ssh-rsa`).
    pub algorithm: SigAlg,
    /// Security keys: the authenticator flags (0x01 user present, 0x04 user verified).
    pub sk_flags: Option<u8>,
}

/// A request held while the application decides, with what verifying it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    req: AuthRequest,
    service: Vec<u8>,
    alg_name: Vec<u8>,
    key_blob: Vec<u8>,
    host_key: Option<Vec<u8>>,
    sig: Option<Vec<u8>>,
}

/// Where authentication stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Before SERVICE_REQUEST "ssh-userauth".
    AwaitService,
    /// Accepting requests.
    Active,
    /// A request awaits the application's decision; input is paused.
    Pending(Box<Pending>),
    /// Success was sent; nothing more to do [RFC4252 §5.1].
    Done,
}

/// The server's authentication state for one connection.
#[derive(Debug)]
pub struct AuthServer {
    config: AuthConfig,
    phase: Phase,
    failures: u32,
    /// USERAUTH_REQUESTs seen, for the first-`none` rule and [`MAX_AUTH_REQUESTS`].
    requests: u32,
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
            requests: 0,
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
            return Err(Error::Auth(AuthError::LoginGraceExceeded));
        }
        Ok(())
    }

    /// Handles a message of the authentication range or a service request.
    pub fn handle(&mut self, t: &mut Transport, payload: &[u8]) -> Result<AuthOutcome, Error> {
        match Message::decode(payload)? {
            Message::ServiceRequest(m) => self
                .on_service_request(t, &m)
                .map(|()| AuthOutcome::Nothing),
            Message::UserauthRequest(m) => match self.phase {
                Phase::AwaitService => {
                    Err(unexpected("before ssh-userauth", MsgNum::USERAUTH_REQUEST))
                }
                // Further requests after success are ignored [RFC4252 §5.1].
                Phase::Done => Ok(AuthOutcome::Nothing),
                Phase::Pending(_) => Err(unexpected("a pending request", MsgNum::USERAUTH_REQUEST)),
                Phase::Active => self.on_request(t, &m),
            },
            // Only a server sends the others; a client that does is attacking (libssh
            // CVE-2018-10933).
            other => Err(unexpected("authentication", other.num())),
        }
    }

    fn on_service_request(
        &mut self,
        t: &mut Transport,
        m: &ServiceRequest<'_>,
    ) -> Result<(), Error> {
        if self.phase != Phase::AwaitService {
            return Err(unexpected(
                "a second service request",
                MsgNum::SERVICE_REQUEST,
            ));
        }
        if m.service != b"ssh-userauth" {
            t.disconnect(
                DisconnectReason::ServiceNotAvailable,
                "service not available",
            );
            return Err(Error::Auth(AuthError::UnknownService));
        }
        t.send_msg(&ServiceAccept { service: m.service })?;
        self.phase = Phase::Active;
        Ok(())
    }

    fn on_request(
        &mut self,
        t: &mut Transport,
        m: &UserauthRequest<'_>,
    ) -> Result<AuthOutcome, Error> {
        let (user, service, method) = (m.user, m.service, m.method);
        if user.len() > self.config.max_user_len {
            t.disconnect(DisconnectReason::IllegalUserName, "user name too long");
            return Err(Error::Auth(AuthError::UserNameTooLong));
        }
        let Ok(user) = std::str::from_utf8(user) else {
            t.disconnect(DisconnectReason::IllegalUserName, "user name is not UTF-8");
            return Err(Error::Auth(AuthError::UserNameNotUtf8));
        };
        // Every request counts towards a hard cap, PK_OK queries included, so no client can
        // make us look keys up without end (`limits.rs`).
        self.requests = self.requests.saturating_add(1);
        if self.requests > MAX_AUTH_REQUESTS {
            t.disconnect(
                DisconnectReason::NoMoreAuthMethodsAvailable,
                "too many authentication requests",
            );
            return Err(Error::Auth(AuthError::TooManyRequests));
        }
        // Only the connection protocol can follow [RFC4252 §5: authentication MUST NOT be accepted].
        let hostbound = method == HOSTBOUND_METHOD;
        let publickey = method == b"publickey" || hostbound;
        if service != b"ssh-connection" || !publickey || !self.offers("publickey") {
            // A first "none" is how clients ask for the method list; everything else counts
            // (OpenSSH's userauth_finish).
            let counts = !(method == b"none" && self.requests == 1);
            return self.fail(t, counts).map(|()| AuthOutcome::Nothing);
        }
        let pk = Publickey::parse(m.data.0, hostbound)?;
        // A host-bound request must name the host key of our first exchange [PROTOCOL §3.1]
        // (OpenSSH's sshd refuses any other the same way).
        if pk.host_key.is_some() && pk.host_key != t.initial_host_key() {
            return self.fail(t, true).map(|()| AuthOutcome::Nothing);
        }
        let name = std::str::from_utf8(pk.algorithm).ok();
        // A certificate algorithm names the signature its certified key makes.
        let (algorithm, key, cert) = match name.and_then(cert_sig_alg) {
            Some(alg) => {
                let cert = Certificate::decode(pk.key).ok().map(Box::new);
                (Some(alg), cert.as_ref().map(|c| c.key.clone()), cert)
            }
            None => (
                name.and_then(SigAlg::from_wire_name),
                PublicKey::decode(pk.key).ok(),
                None,
            ),
        };
        let (Some(algorithm), Some(key)) = (algorithm, key) else {
            return self.fail(t, true).map(|()| AuthOutcome::Nothing);
        };
        // The named algorithm must be allowed and fit the key (the signature is checked as what
        // its own blob says, on accept).
        if algorithm.key_type() != key.key_type() || !self.config.sig_algs.contains(&algorithm) {
            return self.fail(t, true).map(|()| AuthOutcome::Nothing);
        }
        let req = AuthRequest {
            user: user.to_owned(),
            key,
            cert,
            algorithm,
            signed: pk.signature.is_some(),
        };
        self.phase = Phase::Pending(Box::new(Pending {
            req: req.clone(),
            service: service.to_vec(),
            alg_name: pk.algorithm.to_vec(),
            key_blob: pk.key.to_vec(),
            host_key: pk.host_key.map(<[u8]>::to_vec),
            sig: pk.signature.map(<[u8]>::to_vec),
        }));
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
                return Err(Error::Auth(AuthError::TooManyFailures));
            }
        }
        let methods = self.config.methods.join(",");
        t.send_msg(&UserauthFailure {
            methods: NameList::parse(methods.as_bytes())?,
            partial: false,
        })?;
        self.phase = Phase::Active;
        Ok(())
    }

    /// Accepts the pending request's key. A query gets PK_OK (and `Ok(None)`). A signed request
    /// has its signature verified now; if it verifies and `flags_ok` accepts its security-key
    /// flags, USERAUTH_SUCCESS is sent, once, and the signature is returned; otherwise it fails
    /// like a rejected request (`Ok(None)`).
    pub fn accept(
        &mut self,
        t: &mut Transport,
        flags_ok: impl FnOnce(Option<u8>) -> bool,
    ) -> Result<Option<Verified>, Error> {
        let Phase::Pending(p) = std::mem::replace(&mut self.phase, Phase::Active) else {
            return Err(Error::Auth(AuthError::NoPendingRequest));
        };
        let Some(sig) = &p.sig else {
            // The algorithm name and key blob of the request, as sent [RFC4252 §7] (a
            // certificate's name and blob for a certificate).
            t.send_msg(&UserauthPkOk {
                algorithm: &p.alg_name,
                key: &p.key_blob,
            })?;
            return Ok(None);
        };
        let session_id = t.session_id().ok_or(Error::Auth(AuthError::NoSession))?;
        let req = Request {
            user: p.req.user.as_bytes(),
            service: &p.service,
            algorithm: &p.alg_name,
            key_blob: &p.key_blob,
            host_key: p.host_key.as_deref(),
        };
        let data = publickey::signed_data(session_id, &req);
        let verified = match p.req.key.verify(&data, sig, &self.config.sig_algs) {
            Ok(v) if flags_ok(v.sk_flags) => Verified {
                algorithm: v.algorithm,
                sk_flags: v.sk_flags,
            },
            _ => return self.fail(t, true).map(|()| None),
        };
        t.send_msg(&UserauthSuccess {})?;
        t.set_authenticated();
        self.phase = Phase::Done;
        Ok(Some(verified))
    }

    /// Rejects the pending request with USERAUTH_FAILURE; it counts as a failed attempt, a
    /// query included (OpenSSH counts every failure but a first `none`).
    pub fn reject(&mut self, t: &mut Transport) -> Result<(), Error> {
        let Phase::Pending(_) = std::mem::replace(&mut self.phase, Phase::Active) else {
            return Err(Error::Auth(AuthError::NoPendingRequest));
        };
        self.fail(t, true)
    }
}

fn unexpected(phase: &'static str, num: MsgNum) -> Error {
    ProtocolError::UnexpectedMessage { phase, msg: num.0 }.into()
}
