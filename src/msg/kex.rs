//! Key-exchange messages [RFC5656 §4 (ECDH, also curve25519, ML-KEM and sntrup761 hybrids),
//! RFC4253 §8 (DH), RFC4419 §3 (group exchange)]. Their numbers mean different messages under
//! different methods (30 is KEX_ECDH_INIT and KEX_DH_GEX_REQUEST_OLD), so the exchange in
//! progress decodes them, not [`crate::msg::Message::decode`]. Public values stay `string`s
//! here: whether one is an mpint depends on the method, and the exchange checks it.

use crate::msg::fields::message;
use crate::wire::Mpint;

message! {
    /// SSH_MSG_KEX_ECDH_INIT / SSH_MSG_KEXDH_INIT: the client's ephemeral public value.
    KexEcdhInit<'a> = KEX_ECDH_INIT {
        /// Q_C (or e, as an mpint's bytes).
        public: &'a [u8],
    }

    /// SSH_MSG_KEX_ECDH_REPLY / SSH_MSG_KEXDH_REPLY.
    KexEcdhReply<'a> = KEX_ECDH_REPLY {
        /// K_S, the server's host key blob.
        host_key: &'a [u8],
        /// Q_S (or f).
        public: &'a [u8],
        /// The signature of H.
        signature: &'a [u8],
    }

    /// SSH_MSG_KEX_DH_GEX_REQUEST [RFC4419 §3].
    KexGexRequest = KEX_DH_GEX_REQUEST {
        /// Smallest acceptable group size, in bits.
        min: u32,
        /// Preferred size.
        n: u32,
        /// Largest acceptable size.
        max: u32,
    }

    /// SSH_MSG_KEX_DH_GEX_GROUP [RFC4419 §3].
    KexGexGroup<'a> = KEX_DH_GEX_GROUP {
        /// The safe prime.
        p: Mpint<'a>,
        /// The generator.
        g: Mpint<'a>,
    }

    /// SSH_MSG_KEX_DH_GEX_INIT [RFC4419 §3].
    KexGexInit<'a> = KEX_DH_GEX_INIT {
        /// e, as an mpint's bytes.
        public: &'a [u8],
    }

    /// SSH_MSG_KEX_DH_GEX_REPLY [RFC4419 §3].
    KexGexReply<'a> = KEX_DH_GEX_REPLY {
        /// K_S.
        host_key: &'a [u8],
        /// f, as an mpint's bytes.
        public: &'a [u8],
        /// The signature of H.
        signature: &'a [u8],
    }
}
