//! The ECDH-shaped exchange of `curve25519-sha256` [RFC8731 §3, RFC5656 §4], both roles, and
//! what follows it: NEWKEYS, key switching and the server's EXT_INFO [RFC4253 §7.3, RFC8308 §2.4].

use crate::crypto::kex::{DhParams, Ephemeral};
use crate::error::Error;
use crate::keys::{PrivateKey, PublicKey};
use crate::msg::{ExtInfo, MsgNum};
use crate::transport::kex::derive::{EcdhHashInput, EncodedSecret, derive};
use crate::transport::kex::{KexPhase, Negotiated};
use crate::transport::suite::{self, DirectionKeys};
use crate::transport::version::OUR_VERSION;
use crate::transport::{OpeningKey, Role, RoleState, SealingKey, Transport};
use crate::wire::{Reader, Writer};

/// Writes a public value: mpint e/f for DH [RFC4253 §8], string Q otherwise [RFC5656 §4].
fn public(w: &mut Writer<'_>, mpint: bool, v: &[u8]) {
    if mpint {
        w.mpint_unsigned(v);
    } else {
        w.string(v);
    }
}

/// Reads a public value written by [`public`]; a negative mpint is refused.
fn read_public<'a>(r: &mut Reader<'a>, mpint: bool) -> Result<&'a [u8], Error> {
    Ok(if mpint {
        r.mpint()?.positive()?
    } else {
        r.string()?
    })
}

/// This side's receive and send protection from one exchange.
type KeyPair = (Box<dyn OpeningKey>, Box<dyn SealingKey>);

impl Transport {
    /// Client: our ephemeral public value Q_C.
    pub(crate) fn client_send_ecdh_init(&mut self, neg: Negotiated) -> Result<(), Error> {
        let (secret, q_c) = neg.algs.kex.agreement().start(&mut *self.rng);
        let mut msg = Vec::with_capacity(q_c.len().saturating_add(8));
        let mut w = Writer::new(&mut msg);
        w.u8(MsgNum::KEX_ECDH_INIT.0);
        public(&mut w, neg.algs.kex.agreement().public_is_mpint(), &q_c);
        self.write_packet(&msg)?;
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
        let mut r = Reader::new(payload);
        r.u8()?;
        let mpint = neg.algs.kex.agreement().public_is_mpint();
        let q_c = read_public(&mut r, mpint)?;
        r.finish()?;
        let (q_s, k) = match &group {
            Some(group) => group.respond(q_c, &mut *self.rng),
            None => neg.algs.kex.agreement().respond(q_c, &mut *self.rng),
        }
        .map_err(|_| Error::Kex("bad client ephemeral key"))?;
        let k = EncodedSecret::new(&k);
        let RoleState::Server { host_keys } = &self.role_state else {
            return Err(Error::Kex("not a server"));
        };
        let host_keys = host_keys.clone();
        let key: &PrivateKey = host_keys
            .iter()
            .find(|k| k.algorithms().contains(&neg.algs.host_key))
            .ok_or(Error::Kex("no host key for the negotiated algorithm"))?;
        let k_s = key.public().to_blob();
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
        let sig = key.sign_as(&h, neg.algs.host_key).ok_or(Error::Kex(
            "host key cannot sign with the negotiated algorithm",
        ))?;
        let mut reply = Vec::with_capacity(k_s.len().saturating_add(sig.len()).saturating_add(64));
        let mut w = Writer::new(&mut reply);
        let num = if group.is_some() {
            MsgNum::KEX_DH_GEX_REPLY
        } else {
            MsgNum::KEX_ECDH_REPLY
        };
        w.u8(num.0).string(&k_s);
        public(&mut w, mpint, &q_s);
        w.string(&sig);
        self.write_packet(&reply)?;
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
        let mut r = Reader::new(payload);
        r.u8()?;
        let k_s = r.string()?;
        let mpint = neg.algs.kex.agreement().public_is_mpint();
        let q_s = read_public(&mut r, mpint)?;
        let sig = r.string()?;
        r.finish()?;
        let host_key =
            PublicKey::decode(k_s).map_err(|_| Error::Kex("unusable server host key"))?;
        if host_key.key_type() != neg.algs.host_key.key_type() {
            return Err(Error::Kex("host key type differs from the negotiated one"));
        }
        let k = secret
            .finish(q_s)
            .map_err(|_| Error::Kex("bad server ephemeral key"))?;
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
            .verify(&h, sig, &[neg.algs.host_key])
            .map_err(|_| Error::Kex("bad host key signature"))?;
        let RoleState::Client {
            verifier,
            server_key,
        } = &mut self.role_state
        else {
            return Err(Error::Kex("not a client"));
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
                verifier.verify(&host_key).map_err(Error::HostKeyRejected)?;
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
        self.write_packet(&[MsgNum::NEWKEYS.0])?;
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
        let bad = || Error::Kex("key derivation produced unusable keys");
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
