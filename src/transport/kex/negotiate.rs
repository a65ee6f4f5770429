//! KEXINIT contents and the negotiation rule [RFC4253 §7.1], with the pseudo-algorithms of
//! RFC 8308 (ext-info) and PROTOCOL §1.10 (strict kex).

use crate::crypto::hash::HashAlg;
use crate::error::Error;
use crate::keys::{HostKeyAlg, SigAlg};
use crate::msg::KexInit;
use crate::transport::Role;
use crate::transport::suite::{CipherAlg, MacAlg};
use crate::wire::{Encode, NameList};

/// `ext-info-c`: the client accepts EXT_INFO [RFC8308 §2.1].
pub const EXT_INFO_C: &str = "ext-info-c";
/// `ext-info-s`: the server accepts EXT_INFO [RFC8308 §2.1].
pub const EXT_INFO_S: &str = "ext-info-s";
/// Client's strict-kex marker [PROTOCOL §1.10].
pub const STRICT_C: &str = "kex-strict-c-v00@openssh.com";
/// Server's strict-kex marker [PROTOCOL §1.10].
pub const STRICT_S: &str = "kex-strict-s-v00@openssh.com";

/// A key exchange method we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KexAlg {
    /// `mlkem768x25519-sha256`: ML-KEM-768 + X25519 [draft-ietf-sshm-mlkem-hybrid-kex].
    Mlkem768X25519Sha256,
    /// `sntrup761x25519-sha512`: sntrup761 + X25519, OpenSSH's 9.x default (PROTOCOL).
    Sntrup761X25519Sha512,
    /// `sntrup761x25519-sha512@openssh.com`, its name before OpenSSH 9.9.
    Sntrup761X25519Sha512Openssh,
    /// `curve25519-sha256` \[RFC8731\].
    Curve25519Sha256,
    /// `curve25519-sha256@libssh.org`, the same method under its original name [RFC8731 §1].
    Curve25519Sha256Libssh,
    /// `ecdh-sha2-nistp256` [RFC5656 §4].
    EcdhNistp256,
    /// `ecdh-sha2-nistp384` [RFC5656 §4].
    EcdhNistp384,
    /// `ecdh-sha2-nistp521` [RFC5656 §4].
    EcdhNistp521,
    /// `diffie-hellman-group14-sha256` \[RFC8268\].
    DhGroup14Sha256,
    /// `diffie-hellman-group16-sha512` \[RFC8268\].
    DhGroup16Sha512,
    /// `diffie-hellman-group18-sha512` \[RFC8268\].
    DhGroup18Sha512,
    /// `diffie-hellman-group-exchange-sha256`: the server picks the group \[RFC4419\].
    DhGexSha256,
}

impl KexAlg {
    /// Every method, in our default preference order: post-quantum hybrid, curve25519, NIST.
    pub const SUPPORTED: [KexAlg; 12] = [
        KexAlg::Mlkem768X25519Sha256,
        KexAlg::Sntrup761X25519Sha512,
        KexAlg::Sntrup761X25519Sha512Openssh,
        KexAlg::Curve25519Sha256,
        KexAlg::Curve25519Sha256Libssh,
        KexAlg::EcdhNistp256,
        KexAlg::EcdhNistp384,
        KexAlg::EcdhNistp521,
        KexAlg::DhGexSha256,
        KexAlg::DhGroup16Sha512,
        KexAlg::DhGroup18Sha512,
        KexAlg::DhGroup14Sha256,
    ];

    /// The exact name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            KexAlg::Mlkem768X25519Sha256 => "mlkem768x25519-sha256",
            KexAlg::Sntrup761X25519Sha512 => "sntrup761x25519-sha512",
            KexAlg::Sntrup761X25519Sha512Openssh => "sntrup761x25519-sha512@openssh.com",
            KexAlg::Curve25519Sha256 => "curve25519-sha256",
            KexAlg::Curve25519Sha256Libssh => "curve25519-sha256@libssh.org",
            KexAlg::EcdhNistp256 => "ecdh-sha2-nistp256",
            KexAlg::EcdhNistp384 => "ecdh-sha2-nistp384",
            KexAlg::EcdhNistp521 => "ecdh-sha2-nistp521",
            KexAlg::DhGroup14Sha256 => "diffie-hellman-group14-sha256",
            KexAlg::DhGroup16Sha512 => "diffie-hellman-group16-sha512",
            KexAlg::DhGroup18Sha512 => "diffie-hellman-group18-sha512",
            KexAlg::DhGexSha256 => "diffie-hellman-group-exchange-sha256",
        }
    }

    /// The agreement scheme behind the method.
    pub const fn agreement(self) -> crate::crypto::kex::Agreement {
        use crate::crypto::kex::{Agreement, DhGroup};
        use crate::crypto::verify::Curve;
        match self {
            KexAlg::Mlkem768X25519Sha256 => Agreement::Mlkem768X25519,
            KexAlg::Sntrup761X25519Sha512 | KexAlg::Sntrup761X25519Sha512Openssh => {
                Agreement::Sntrup761X25519
            }
            KexAlg::Curve25519Sha256 | KexAlg::Curve25519Sha256Libssh => Agreement::X25519,
            KexAlg::EcdhNistp256 => Agreement::Nist(Curve::P256),
            KexAlg::EcdhNistp384 => Agreement::Nist(Curve::P384),
            KexAlg::EcdhNistp521 => Agreement::Nist(Curve::P521),
            KexAlg::DhGroup14Sha256 => Agreement::Dh(DhGroup::G14),
            KexAlg::DhGroup16Sha512 => Agreement::Dh(DhGroup::G16),
            KexAlg::DhGroup18Sha512 => Agreement::Dh(DhGroup::G18),
            KexAlg::DhGexSha256 => Agreement::GroupExchange,
        }
    }

    /// The method with this wire name, if we implement it.
    pub fn from_wire_name(name: &str) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|a| a.wire_name() == name)
    }

    /// The hash of the exchange hash and key derivation.
    pub const fn hash(self) -> HashAlg {
        match self {
            KexAlg::Mlkem768X25519Sha256
            | KexAlg::Curve25519Sha256
            | KexAlg::Curve25519Sha256Libssh
            | KexAlg::EcdhNistp256 => HashAlg::Sha256,
            KexAlg::EcdhNistp384 => HashAlg::Sha384,
            KexAlg::EcdhNistp521
            | KexAlg::DhGroup16Sha512
            | KexAlg::DhGroup18Sha512
            | KexAlg::Sntrup761X25519Sha512
            | KexAlg::Sntrup761X25519Sha512Openssh => HashAlg::Sha512,
            KexAlg::DhGroup14Sha256 | KexAlg::DhGexSha256 => HashAlg::Sha256,
        }
    }
}

/// Algorithm lists we offer, in preference order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    /// Key exchange methods.
    pub kex: Vec<KexAlg>,
    /// Host key algorithms (server: only those we hold a key for are offered, each with its
    /// certificate first when we hold one; client: certificates first when it trusts a CA).
    pub host_key: Vec<SigAlg>,
    /// Ciphers, both directions.
    pub ciphers: Vec<CipherAlg>,
    /// MACs, both directions (used with non-AEAD ciphers only).
    pub macs: Vec<MacAlg>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            kex: KexAlg::SUPPORTED.to_vec(),
            host_key: SigAlg::SUPPORTED.to_vec(),
            ciphers: CipherAlg::SUPPORTED.to_vec(),
            macs: MacAlg::SUPPORTED.to_vec(),
        }
    }
}

/// What one key exchange agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithms {
    /// Key exchange method.
    pub kex: KexAlg,
    /// Host key algorithm.
    pub host_key: HostKeyAlg,
    /// Cipher client → server.
    pub cipher_c2s: CipherAlg,
    /// Cipher server → client.
    pub cipher_s2c: CipherAlg,
    /// MAC client → server (`None` with an AEAD cipher).
    pub mac_c2s: Option<MacAlg>,
    /// MAC server → client (`None` with an AEAD cipher).
    pub mac_s2c: Option<MacAlg>,
}

/// Builds our KEXINIT payload. Markers go only into the initial one [RFC8308 §2.1, PROTOCOL §1.10].
/// `host_keys`: the server's keys and certificates; the client's certificate algorithms (it
/// offers one only if it can check such a certificate).
pub fn build_kexinit(
    role: Role,
    prefs: &Preferences,
    host_keys: &[HostKeyAlg],
    initial: bool,
    cookie: [u8; 16],
) -> Vec<u8> {
    let mut kex: Vec<&str> = prefs.kex.iter().map(|k| k.wire_name()).collect();
    if initial {
        match role {
            Role::Client => kex.extend([EXT_INFO_C, STRICT_C]),
            Role::Server => kex.extend([EXT_INFO_S, STRICT_S]),
        }
    }
    // Every certificate form first, then the plain ones, as OpenSSH's client orders them (a
    // client trusting a CA would otherwise agree on a plain key it cannot check): the server
    // lists what it holds, the client (in `host_keys`) what it can check.
    let certs = prefs
        .host_key
        .iter()
        .filter_map(|&sig| HostKeyAlg::certified(sig));
    let plain = prefs.host_key.iter().map(|&sig| HostKeyAlg::plain(sig));
    let host_key: Vec<&str> = certs
        .chain(plain)
        .filter(|h| match role {
            Role::Client => !h.cert || host_keys.contains(h),
            Role::Server => host_keys.contains(h),
        })
        .map(HostKeyAlg::wire_name)
        .collect();
    let ciphers: Vec<&str> = prefs.ciphers.iter().map(|c| c.wire_name()).collect();
    let macs: Vec<&str> = prefs.macs.iter().map(|m| m.wire_name()).collect();
    let (kex, host_key, ciphers, macs) = (
        kex.join(","),
        host_key.join(","),
        ciphers.join(","),
        macs.join(","),
    );
    // Our own algorithm names: always a valid list.
    fn list(names: &str) -> NameList<'_> {
        NameList::parse(names.as_bytes()).unwrap_or_default()
    }
    let (ciphers, macs, none) = (list(&ciphers), list(&macs), list("none"));
    KexInit {
        cookie,
        kex: list(&kex),
        host_key: list(&host_key),
        cipher_c2s: ciphers,
        cipher_s2c: ciphers,
        mac_c2s: macs,
        mac_s2c: macs,
        compression_c2s: none,
        compression_s2c: none,
        lang_c2s: NameList::default(),
        lang_s2c: NameList::default(),
        // We never guess [RFC4253 §7.1 first_kex_packet_follows].
        first_kex_packet_follows: false,
        reserved: 0,
    }
    .to_bytes()
}

fn pick<T>(
    kind: &'static str,
    client: NameList<'_>,
    server: NameList<'_>,
    known: impl Fn(&str) -> Option<T>,
) -> Result<T, Error> {
    client
        .iter()
        .filter(|name| server.contains(name))
        .find_map(known)
        .ok_or_else(|| Error::no_common(kind, client.as_str(), server.as_str()))
}

/// The negotiation rule: for each category, the first algorithm on the client's list that is
/// also on the server's [RFC4253 §7.1]. MACs are not negotiated for AEAD ciphers.
pub fn negotiate(client: &KexInit<'_>, server: &KexInit<'_>) -> Result<Algorithms, Error> {
    let kex = pick("kex", client.kex, server.kex, KexAlg::from_wire_name)?;
    let host_key = pick(
        "host key",
        client.host_key,
        server.host_key,
        HostKeyAlg::from_wire_name,
    )?;
    let cipher_c2s = pick(
        "cipher",
        client.cipher_c2s,
        server.cipher_c2s,
        CipherAlg::from_wire_name,
    )?;
    let cipher_s2c = pick(
        "cipher",
        client.cipher_s2c,
        server.cipher_s2c,
        CipherAlg::from_wire_name,
    )?;
    let mac = |cipher: CipherAlg, c, s| -> Result<Option<MacAlg>, Error> {
        if cipher.is_aead() {
            Ok(None)
        } else {
            pick("MAC", c, s, MacAlg::from_wire_name).map(Some)
        }
    };
    let mac_c2s = mac(cipher_c2s, client.mac_c2s, server.mac_c2s)?;
    let mac_s2c = mac(cipher_s2c, client.mac_s2c, server.mac_s2c)?;
    let none = |n: &str| (n == "none").then_some(());
    pick(
        "compression",
        client.compression_c2s,
        server.compression_c2s,
        none,
    )?;
    pick(
        "compression",
        client.compression_s2c,
        server.compression_s2c,
        none,
    )?;
    Ok(Algorithms {
        kex,
        host_key,
        cipher_c2s,
        cipher_s2c,
        mac_c2s,
        mac_s2c,
    })
}

/// Whether a peer's guessed first kex packet must be ignored: it guessed, and its first kex or
/// host key algorithm is not the one both sides prefer [RFC4253 §7.1].
pub fn guess_was_wrong(client: &KexInit<'_>, server: &KexInit<'_>) -> bool {
    client.kex.iter().next() != server.kex.iter().next()
        || client.host_key.iter().next() != server.host_key.iter().next()
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::wire::{Decode, Reader};

    fn kexinit(payload: &[u8]) -> KexInit<'_> {
        let mut r = Reader::new(payload);
        r.u8().unwrap();
        KexInit::decode(&mut r).unwrap()
    }

    #[test]
    fn client_preference_wins() {
        let mut cp = Preferences::default();
        cp.ciphers = vec![CipherAlg::Aes256Gcm, CipherAlg::ChaCha20Poly1305];
        let c = build_kexinit(Role::Client, &cp, &[], true, [1; 16]);
        let s = build_kexinit(
            Role::Server,
            &Preferences::default(),
            &[HostKeyAlg::plain(SigAlg::Ed25519)],
            true,
            [2; 16],
        );
        let a = negotiate(&kexinit(&c), &kexinit(&s)).unwrap();
        assert_eq!(a.cipher_c2s, CipherAlg::Aes256Gcm);
        assert_eq!(
            a.kex,
            KexAlg::Mlkem768X25519Sha256,
            "post-quantum hybrid first"
        );
        assert_eq!(a.mac_c2s, None, "AEAD: no MAC");
        assert!(!guess_was_wrong(&kexinit(&c), &kexinit(&s)));
    }

    #[test]
    fn markers_are_initial_only_and_never_negotiated() {
        let c = build_kexinit(Role::Client, &Preferences::default(), &[], true, [0; 16]);
        assert!(kexinit(&c).kex.contains(EXT_INFO_C) && kexinit(&c).kex.contains(STRICT_C));
        let again = build_kexinit(Role::Client, &Preferences::default(), &[], false, [0; 16]);
        assert!(
            !kexinit(&again).kex.contains(EXT_INFO_C) && !kexinit(&again).kex.contains(STRICT_C)
        );
        assert_eq!(KexAlg::from_wire_name(EXT_INFO_S), None);
    }

    #[test]
    fn reports_the_category_and_both_lists_when_nothing_matches() {
        let mut cp = Preferences::default();
        cp.ciphers = vec![CipherAlg::Aes128Ctr];
        cp.macs = vec![MacAlg::HmacSha512];
        let mut sp = Preferences::default();
        sp.macs = vec![MacAlg::HmacSha256Etm];
        let c = build_kexinit(Role::Client, &cp, &[], true, [0; 16]);
        let s = build_kexinit(
            Role::Server,
            &sp,
            &[HostKeyAlg::plain(SigAlg::Ed25519)],
            true,
            [0; 16],
        );
        let e = negotiate(&kexinit(&c), &kexinit(&s)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("no matching MAC found"), "{text}");
        assert!(
            text.contains("hmac-sha2-512") && text.contains("hmac-sha2-256-etm@openssh.com"),
            "{text}"
        );
    }

    #[test]
    fn server_offers_only_host_keys_it_holds() {
        let s = build_kexinit(Role::Server, &Preferences::default(), &[], true, [0; 16]);
        assert!(kexinit(&s).host_key.is_empty());
    }
}
