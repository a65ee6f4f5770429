//! The first half of `diffie-hellman-group-exchange-sha256` [RFC4419 §3]: the client asks for
//! a group size, the server answers with a group. The rest (e, f, H signed with min ‖ n ‖ max
//! ‖ p ‖ g mixed in) is the DH exchange of `ecdh.rs` under the GEX message numbers.

use crate::crypto::kex::{DhGroup, DhParams, Ephemeral};
use crate::error::{Error, KexError};
use crate::limits::{DH_MAX_BITS, DH_MIN_BITS};
use crate::msg::{KexGexGroup, KexGexInit, KexGexRequest};
use crate::transport::Transport;
use crate::transport::kex::{KexPhase, Negotiated};
use crate::wire::{Decode, Encode, Mpint, Writer, unsigned_mpint};

/// The size we ask for: 4096 bits, past every cipher's strength need at a fraction of
/// 8192-bit cost [RFC8270 §3 sets the floor at 2048].
const PREFERRED_BITS: u32 = 4096;

/// The fixed groups a server can hand out, smallest first.
const SERVER_GROUPS: [(u32, DhGroup); 3] = [
    (2048, DhGroup::G14),
    (4096, DhGroup::G16),
    (8192, DhGroup::G18),
];

/// The group for a request: the smallest at least `n` bits within [min, max], else the largest
/// within it [RFC4419 §3 leaves the choice to the server]; none when the range holds none.
pub fn choose_group(min: u32, n: u32, max: u32) -> Option<DhGroup> {
    if min > max || n < min || n > max {
        return None;
    }
    let fits = SERVER_GROUPS
        .iter()
        .filter(|(bits, _)| (min..=max).contains(bits));
    fits.clone()
        .find(|(bits, _)| *bits >= n)
        .or_else(|| fits.clone().next_back())
        .map(|&(_, g)| g)
}

/// What H hashes between K_S and e: uint32 min, n, max, mpint p, mpint g [RFC4419 §3].
fn hashed_params(request: [u32; 3], group: &DhParams) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    for v in request {
        w.u32(v);
    }
    w.mpint_unsigned(&group.p_bytes())
        .mpint_unsigned(&group.g_bytes());
    out
}

impl Transport {
    /// Client: SSH_MSG_KEX_DH_GEX_REQUEST.
    pub(crate) fn client_send_gex_request(&mut self, neg: Negotiated) -> Result<(), Error> {
        let request = [DH_MIN_BITS, PREFERRED_BITS, DH_MAX_BITS];
        let [min, n, max] = request;
        self.write_packet(&KexGexRequest { min, n, max }.to_bytes())?;
        self.kex = KexPhase::AwaitGexGroup(neg, request);
        Ok(())
    }

    /// Server: the client's sizes in, a group out.
    pub(crate) fn server_gex_request(
        &mut self,
        mut neg: Negotiated,
        payload: &[u8],
    ) -> Result<(), Error> {
        let KexGexRequest { min, n, max } =
            KexGexRequest::decode_exact(payload.get(1..).unwrap_or_default())?;
        let request = [min, n, max];
        let group = choose_group(min, n, max)
            .and_then(DhParams::fixed)
            .ok_or(Error::Kex(KexError::NoGroupInRange))?;
        let (p, g) = (
            unsigned_mpint(&group.p_bytes()),
            unsigned_mpint(&group.g_bytes()),
        );
        let msg = KexGexGroup {
            p: Mpint::parse(&p)?,
            g: Mpint::parse(&g)?,
        };
        self.write_packet(&msg.to_bytes())?;
        neg.gex = Some(hashed_params(request, &group));
        self.kex = KexPhase::AwaitGexInit(neg, Box::new(group));
        Ok(())
    }

    /// Client: the server's group in (checked against our request), e out.
    pub(crate) fn client_gex_group(
        &mut self,
        mut neg: Negotiated,
        request: [u32; 3],
        payload: &[u8],
    ) -> Result<(), Error> {
        let m = KexGexGroup::decode_exact(payload.get(1..).unwrap_or_default())?;
        let (p, g) = (m.p.positive()?, m.g.positive()?);
        let group = DhParams::from_wire(p, g).ok_or(Error::Kex(KexError::UnusableGroup))?;
        if !(request[0]..=request[2]).contains(&group.bits()) {
            return Err(Error::Kex(KexError::GroupOutsideRequest));
        }
        let (x, e) = group
            .start(&mut *self.rng)
            .ok_or(Error::Kex(KexError::ExponentGeneration))?;
        let public = unsigned_mpint(&e);
        self.write_packet(&KexGexInit { public: &public }.to_bytes())?;
        neg.gex = Some(hashed_params(request, &group));
        self.kex = KexPhase::AwaitEcdhReply(neg, Ephemeral::Dh(Box::new(group), x), e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_picks_the_smallest_group_meeting_n_within_the_range() {
        assert_eq!(choose_group(2048, 3072, 8192), Some(DhGroup::G16));
        assert_eq!(choose_group(2048, 8192, 8192), Some(DhGroup::G18));
        assert_eq!(choose_group(1024, 2048, 4096), Some(DhGroup::G14));
        // n above every group we hold: the largest within range.
        assert_eq!(choose_group(2048, 7680, 7680), Some(DhGroup::G16));
        // Nothing fits, or the request is inconsistent.
        assert_eq!(choose_group(1024, 1024, 1536), None);
        assert_eq!(choose_group(8193, 9000, 10000), None);
        assert_eq!(choose_group(4096, 2048, 8192), None);
        assert_eq!(choose_group(8192, 8192, 2048), None);
    }

    #[test]
    fn client_refuses_unusable_groups() {
        let p = DhGroup::G14.prime();
        assert!(DhParams::from_wire(&p, &[2]).is_some());
        // Even p, g out of range, a 1024-bit p, and a 16384-bit p.
        let mut even = p.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(DhParams::from_wire(&even, &[2]).is_none());
        assert!(DhParams::from_wire(&p, &[1]).is_none());
        let mut p_minus_1 = p.clone();
        *p_minus_1.last_mut().unwrap() -= 1;
        assert!(DhParams::from_wire(&p, &p_minus_1).is_none());
        assert!(DhParams::from_wire(&p[..128], &[2]).is_none());
        assert!(DhParams::from_wire(&vec![0xffu8; 2048], &[2]).is_none());
    }
}
