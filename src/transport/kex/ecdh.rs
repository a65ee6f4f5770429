//! The ECDH-shaped exchange of `curve25519-sha256` [RFC8731 §3, RFC5656 §4], both roles, and
//! what follows it: NEWKEYS, key switching and the server's EXT_INFO [RFC4253 §7.3, RFC8308 §2.4].

use crate::crypto::kex::{DhParams, Ephemeral};
use crate::error::{Error, KexError};
use crate::keys::cert::Certificate;
use crate::keys::{PrivateKey, PublicKey};
use crate::msg::{ExtInfo, KexEcdhInit, KexEcdhReply, KexGexInit, KexGexReply, Message};
use crate::transport::kex::derive::{EcdhHashInput, EncodedSecret, derive};
use crate::transport::kex::{KexPhase, Negotiated};
use crate::transport::suite::{self, DirectionKeys};
use crate::transport::version::OUR_VERSION;
use crate::transport::{OpeningKey, Role, RoleState, SealingKey, Transport};
use crate::wire::{Decode, Encode, Mpint, Writer, unsigned_mpint};

/// A public value's wire contents: mpint e/f for DH [RFC4253 §8], string Q otherwise
/// [RFC5656 §4]; both travel as a `string`.
fn public(mpint: bool, v: &[u8]) -> Vec<u8> {
    if mpint { unsigned_mpint(v) } else { v.to_vec() }
}

/// Reads a public value written by [`public`]; a negative or non-minimal mpint is refused.
fn read_public(raw: &[u8], mpint: bool) -> Result<&[u8], Error> {
    Ok(if mpint {
        Mpint::parse(raw)?.positive()?
    } else {
        raw
    })
}

/// This side's receive and send protection from one exchange.
type KeyPair = (Box<dyn OpeningKey>, Box<dyn SealingKey>);

impl Transport {
    /// Client: our ephemeral public value Q_C.
    pub(crate) fn client_send_ecdh_init(&mut self, neg: Negotiated) -> Result<(), Error> {
        let (secret, q_c) = neg.algs.kex.agreement().start(&mut *self.rng);
        let public = public(neg.algs.kex.agreement().public_is_mpint(), &q_c);
        self.write_packet(&KexEcdhInit { public: &public }.to_bytes())?;
        self.kex = KexPhase::AwaitEcdhReply(neg, secret, q_c);
        Ok(())
    }

    /// Server: Q_C in, K_S ‖ Q_S ‖ signature out, then NEWKEYS.
    /// With GEX, `group` is the one this server sent and e, f travel in GEX_INIT / GEX_REPLY.
    pub(crate) fn server_ecdh(
        &mut self,
        neg: Negotiated,
        payload: &[u8],
        group: Option<Box<DhParams>>,
    ) -> Result<(), Error> {
        let mpint = neg.algs.kex.agreement().public_is_mpint();
        let body = payload.get(1..).unwrap_or_default();
        // GEX_INIT under group exchange, ECDH_INIT (KEXDH_INIT) otherwise: the same shape.
        let init = match group {
            Some(_) => KexGexInit::decode_exact(body)?.public,
            None => KexEcdhInit::decode_exact(body)?.public,
        };
        let q_c = read_public(init, mpint)?;
        let (q_s, k) = match &group {
            Some(group) => group.respond(q_c, &mut *self.rng),
            None => neg.algs.kex.agreement().respond(q_c, &mut *self.rng),
        }
        .map_err(|_| Error::Kex(KexError::BadClientPublic))?;
        let k = EncodedSecret::new(&k);
        let RoleState::Server { host_keys } = &self.role_state else {
            return Err(Error::Kex(KexError::WrongRole));
        };
        let host_keys = host_keys.clone();
        let alg = neg.algs.host_key;
        let key: &PrivateKey = host_keys
            .iter()
            .find(|k| {
                k.algorithms().contains(&alg.sig)
                    && (!alg.cert || self.host_certificate(k).is_some())
            })
            .ok_or(Error::Kex(KexError::NoHostKeyForAlgorithm))?;
        // K_S is the certificate when one was negotiated; the key signs either way.
        let k_s = match self.host_certificate(key).filter(|_| alg.cert) {
            Some(cert) => cert.blob().to_vec(),
            None => key.public().to_blob(),
        };
        let v_c = self.peer_version.clone().unwrap_or_default();
        let h = EcdhHashInput {
            v_c: v_c.as_bytes(),
            v_s: OUR_VERSION.as_bytes(),
            i_c: &neg.i_c,
            i_s: &neg.i_s,
            k_s: &k_s,
            gex: neg.gex.as_deref(),
            q_c,
            q_s: &q_s,
            mpint_publics: mpint,
        }
        .hash(neg.algs.kex.hash(), &k);
        let sig = key
            .sign_as(&h, alg.sig)
            .ok_or(Error::Kex(KexError::HostKeyCannotSign))?;
        let public = public(mpint, &q_s);
        let reply = match group {
            Some(_) => KexGexReply {
                host_key: &k_s,
                public: &public,
                signature: &sig,
            }
            .to_bytes(),
            None => KexEcdhReply {
                host_key: &k_s,
                public: &public,
                signature: &sig,
            }
            .to_bytes(),
        };
        self.write_packet(&reply)?;
        if self.session_id.is_none() {
            // What a host-bound authentication request must name [PROTOCOL §3.1].
            self.initial_host_key = Some(k_s);
        }
        self.finish_exchange(&neg, &k, &h)
    }

    /// Client: verify the server's reply and its host key, then NEWKEYS.
    pub(crate) fn client_ecdh(
        &mut self,
        neg: Negotiated,
        secret: Ephemeral,
        q_c: Vec<u8>,
        payload: &[u8],
    ) -> Result<(), Error> {
        let body = payload.get(1..).unwrap_or_default();
        // GEX_REPLY under group exchange, ECDH_REPLY (KEXDH_REPLY) otherwise: the same shape.
        let (k_s, public, sig) = if neg.gex.is_some() {
            let m = KexGexReply::decode_exact(body)?;
            (m.host_key, m.public, m.signature)
        } else {
            let m = KexEcdhReply::decode_exact(body)?;
            (m.host_key, m.public, m.signature)
        };
        let mpint = neg.algs.kex.agreement().public_is_mpint();
        let q_s = read_public(public, mpint)?;
        let alg = neg.algs.host_key;
        let cert = if alg.cert {
            let c = Certificate::decode(k_s).map_err(|_| Error::Kex(KexError::UnusableHostKey))?;
            Some(c)
        } else {
            None
        };
        let host_key = match &cert {
            Some(c) => c.key.clone(),
            None => PublicKey::decode(k_s).map_err(|_| Error::Kex(KexError::UnusableHostKey))?,
        };
        if host_key.key_type() != alg.sig.key_type() {
            return Err(Error::Kex(KexError::HostKeyTypeMismatch));
        }
        let k = secret
            .finish(q_s)
            .map_err(|_| Error::Kex(KexError::BadServerPublic))?;
        let k = EncodedSecret::new(&k);
        let v_s = self.peer_version.clone().unwrap_or_default();
        let h = EcdhHashInput {
            v_c: OUR_VERSION.as_bytes(),
            v_s: v_s.as_bytes(),
            i_c: &neg.i_c,
            i_s: &neg.i_s,
            k_s,
            gex: neg.gex.as_deref(),
            q_c: &q_c,
            q_s,
            mpint_publics: mpint,
        }
        .hash(neg.algs.kex.hash(), &k);
        // The signature must be made with the negotiated algorithm [RFC8332 §3.2].
        host_key
            .verify(&h, sig, &[alg.sig])
            .map_err(|_| Error::Kex(KexError::BadHostKeySignature))?;
        let RoleState::Client {
            verifier,
            server_key,
        } = &mut self.role_state
        else {
            return Err(Error::Kex(KexError::WrongRole));
        };
        match server_key {
            // A re-exchange must present the key the first one proved [RFC4253 §9].
            Some(known) if *known != host_key => {
                return Err(Error::HostKeyRejected(
                    "host key changed during re-exchange".into(),
                ));
            }
            Some(_) => {}
            None => {
                match &cert {
                    Some(c) => verifier.verify_cert(c),
                    None => verifier.verify(&host_key),
                }
                .map_err(Error::HostKeyRejected)?;
                *server_key = Some(host_key);
            }
        }
        self.finish_exchange(&neg, &k, &h)
    }

    /// Sends NEWKEYS and switches outgoing keys; the incoming ones wait for the peer's NEWKEYS.
    fn finish_exchange(
        &mut self,
        neg: &Negotiated,
        k: &EncodedSecret,
        h: &[u8],
    ) -> Result<(), Error> {
        let first = self.session_id.is_none();
        if first {
            self.session_id = Some(h.to_vec());
        }
        let (opening, sealing) = self.derive_keys(neg, k, h)?;
        self.write_packet(&Message::NewKeys.to_bytes())?;
        self.enc.set_key(sealing);
        if self.strict {
            self.enc.reset_seq();
        }
        self.last_algorithms = Some(neg.algs);
        self.kex = KexPhase::AwaitNewKeys(opening);
        if first && self.role == Role::Server && self.peer_ext_info {
            // The next packet after our first NEWKEYS [RFC8308 §2.4].
            let algs: Vec<&str> = self
                .config
                .server_sig_algs
                .iter()
                .map(|a| a.wire_name())
                .collect();
            let value = algs.join(",");
            let mut msg = Vec::new();
            // ping@openssh.com: ServerConnection answers it after authentication [PROTOCOL §1.9].
            ExtInfo::write(
                &mut Writer::new(&mut msg),
                &[
                    ("server-sig-algs", value.as_bytes()),
                    ("publickey-hostbound@openssh.com", b"0"),
                    ("ping@openssh.com", b"0"),
                ],
            );
            self.write_packet(&msg)?;
        }
        self.flush_queue()
    }

    /// Keys A–F [RFC4253 §7.2] turned into this side's opening and sealing keys.
    fn derive_keys(&self, neg: &Negotiated, k: &EncodedSecret, h: &[u8]) -> Result<KeyPair, Error> {
        let sid = self.session_id.as_deref().unwrap_or(h);
        let hash = neg.algs.kex.hash();
        let a = &neg.algs;
        let get = |letter: u8, len: usize| derive(hash, k, h, sid, letter, len);
        let (iv_c2s, iv_s2c) = (
            get(b'A', a.cipher_c2s.iv_len()),
            get(b'B', a.cipher_s2c.iv_len()),
        );
        let (key_c2s, key_s2c) = (
            get(b'C', a.cipher_c2s.key_len()),
            get(b'D', a.cipher_s2c.key_len()),
        );
        let mac_len = |m: Option<crate::transport::MacAlg>| m.map_or(0, |m| m.key_len());
        let (mac_c2s, mac_s2c) = (get(b'E', mac_len(a.mac_c2s)), get(b'F', mac_len(a.mac_s2c)));
        let c2s = DirectionKeys {
            iv: &iv_c2s,
            key: &key_c2s,
            mac_key: &mac_c2s,
        };
        let s2c = DirectionKeys {
            iv: &iv_s2c,
            key: &key_s2c,
            mac_key: &mac_s2c,
        };
        let bad = || Error::Kex(KexError::KeyDerivation);
        Ok(match self.role {
            Role::Server => (
                suite::opening_key(a.cipher_c2s, a.mac_c2s, c2s).ok_or_else(bad)?,
                suite::sealing_key(a.cipher_s2c, a.mac_s2c, s2c).ok_or_else(bad)?,
            ),
            Role::Client => (
                suite::opening_key(a.cipher_s2c, a.mac_s2c, s2c).ok_or_else(bad)?,
                suite::sealing_key(a.cipher_c2s, a.mac_c2s, c2s).ok_or_else(bad)?,
            ),
        })
    }
}
