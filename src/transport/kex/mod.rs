//! Key exchange phases [RFC4253 §7]: one explicit state per step, the step's data inside it.

pub mod derive;
pub mod ecdh;
pub mod gex;
pub mod negotiate;

use crate::crypto::kex::{DhParams, Ephemeral};
use crate::transport::OpeningKey;
use negotiate::Algorithms;

/// Where a key exchange stands.
pub enum KexPhase {
    /// No exchange in progress.
    Idle,
    /// Our KEXINIT is sent; the peer's has not arrived.
    AwaitPeerKexInit {
        /// Our KEXINIT payload (I_C or I_S).
        ours: Vec<u8>,
    },
    /// Server: both KEXINITs exchanged, waiting for the client's ephemeral key.
    AwaitEcdhInit(Negotiated),
    /// Server, GEX: waiting for the client's group size request [RFC4419 §3].
    AwaitGexRequest(Negotiated),
    /// Client, GEX: the request (min, n, max) is out, waiting for the group.
    AwaitGexGroup(Negotiated, [u32; 3]),
    /// Server, GEX: the group is out, waiting for e.
    AwaitGexInit(Negotiated, Box<DhParams>),
    /// Client: our ephemeral key (and the INIT value sent) is out, waiting for the reply.
    AwaitEcdhReply(Negotiated, Ephemeral, Vec<u8>),
    /// Our NEWKEYS is sent (outgoing keys switched); the peer's is awaited to switch incoming.
    AwaitNewKeys(Box<dyn OpeningKey>),
}

impl std::fmt::Debug for KexPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl KexPhase {
    /// The phase's name, for errors and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            KexPhase::Idle => "idle",
            KexPhase::AwaitPeerKexInit { .. } => "awaiting KEXINIT",
            KexPhase::AwaitEcdhInit(_) => "awaiting KEX_ECDH_INIT",
            KexPhase::AwaitEcdhReply(..) => "awaiting KEX_ECDH_REPLY",
            KexPhase::AwaitGexRequest(_) => "awaiting KEX_DH_GEX_REQUEST",
            KexPhase::AwaitGexGroup(..) => "awaiting KEX_DH_GEX_GROUP",
            KexPhase::AwaitGexInit(..) => "awaiting KEX_DH_GEX_INIT",
            KexPhase::AwaitNewKeys(_) => "awaiting NEWKEYS",
        }
    }

    /// Whether our side is between its KEXINIT and its NEWKEYS, when only kex messages may
    /// leave the transport [RFC4253 §7.1].
    pub const fn blocks_sending(&self) -> bool {
        matches!(
            self,
            KexPhase::AwaitPeerKexInit { .. }
                | KexPhase::AwaitEcdhInit(_)
                | KexPhase::AwaitEcdhReply(..)
                | KexPhase::AwaitGexRequest(_)
                | KexPhase::AwaitGexGroup(..)
                | KexPhase::AwaitGexInit(..)
        )
    }

    /// Whether the message this phase awaits may cost a millisecond or more of work: a
    /// finite-field exponentiation, a P-384/P-521 agreement, an RSA / P-384 / P-521 signature
    /// (or its check, client side). False for a KEXINIT (negotiation is cheap), for X25519,
    /// P-256 and the X25519 hybrids with an Ed25519 or P-256 host key (well under a
    /// millisecond), and for NEWKEYS.
    pub fn may_be_heavy(&self) -> bool {
        use crate::crypto::kex::Agreement;
        use crate::crypto::verify::Curve;
        use crate::keys::SigAlg;
        let heavy = |n: &Negotiated| {
            !matches!(
                n.algs.kex.agreement(),
                Agreement::X25519
                    | Agreement::Nist(Curve::P256)
                    | Agreement::Mlkem768X25519
                    | Agreement::Sntrup761X25519
            ) || !matches!(n.algs.host_key.sig, SigAlg::Ed25519 | SigAlg::EcdsaP256)
        };
        match self {
            KexPhase::Idle | KexPhase::AwaitPeerKexInit { .. } => false,
            KexPhase::AwaitEcdhInit(n)
            | KexPhase::AwaitGexRequest(n)
            | KexPhase::AwaitGexInit(n, _)
            | KexPhase::AwaitGexGroup(n, _)
            | KexPhase::AwaitEcdhReply(n, ..) => heavy(n),
            KexPhase::AwaitNewKeys(_) => false,
        }
    }

    /// Whether the peer's KEXINIT has arrived and its NEWKEYS has not, when it may send only
    /// kex messages [RFC4253 §7.1].
    pub const fn peer_in_kex(&self) -> bool {
        matches!(
            self,
            KexPhase::AwaitEcdhInit(_)
                | KexPhase::AwaitEcdhReply(..)
                | KexPhase::AwaitGexRequest(_)
                | KexPhase::AwaitGexGroup(..)
                | KexPhase::AwaitGexInit(..)
                | KexPhase::AwaitNewKeys(_)
        )
    }
}

/// The negotiated algorithms with both KEXINIT payloads, as the hash needs them.
pub struct Negotiated {
    /// What was agreed.
    pub algs: Algorithms,
    /// The client's KEXINIT payload.
    pub i_c: Vec<u8>,
    /// The server's KEXINIT payload.
    pub i_s: Vec<u8>,
    /// GEX: the hashed min ‖ n ‖ max ‖ p ‖ g, once the group is known.
    pub gex: Option<Vec<u8>>,
}
