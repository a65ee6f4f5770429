//! Randomness is injected, never fetched: the core stays deterministic under test and replay,
//! and the driver decides where real entropy comes from.

/// A source of cryptographically secure random bytes.
pub trait SecureRandom: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// Lends a [`SecureRandom`] to crates that want a `rand_core` generator (RSA key generation).
pub struct RandCore<'a>(pub &'a mut dyn SecureRandom);

impl rand_core::TryRng for RandCore<'_> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for RandCore<'_> {}

/// A ChaCha20 keystream as a CSPRNG: one per connection, seeded by the driver from the OS, so
/// the per-packet padding and cookies cost no system call.
pub struct ChaChaRng(chacha20::ChaCha20);

impl ChaChaRng {
    /// A generator keyed by 32 secret random bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        use chacha20::cipher::KeyIvInit;
        let seed = zeroize::Zeroizing::new(seed);
        Self(chacha20::ChaCha20::new((&*seed).into(), &[0u8; 12].into()))
    }
}

impl SecureRandom for ChaChaRng {
    fn fill(&mut self, dest: &mut [u8]) {
        use chacha20::cipher::StreamCipher;
        dest.fill(0);
        // 2^32 blocks of 64 bytes per key: far beyond what one connection draws.
        self.0.apply_keystream(dest);
    }
}

/// A reproducible, NOT secure byte source for tests, fuzzing and recorded transcripts.
/// (SplitMix64: fast, and every seed gives a distinct stream.)
#[cfg(any(test, fuzzing, feature = "insecure-test-rng"))]
#[derive(Clone, Debug)]
pub struct DeterministicRng {
    state: u64,
}

#[cfg(any(test, fuzzing, feature = "insecure-test-rng"))]
impl DeterministicRng {
    /// A stream determined entirely by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(any(test, fuzzing, feature = "insecure-test-rng"))]
impl SecureRandom for DeterministicRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(v.get(..chunk.len()).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_rng_is_reproducible_and_seed_dependent() {
        let (mut a, mut b, mut c) = (
            DeterministicRng::new(1),
            DeterministicRng::new(1),
            DeterministicRng::new(2),
        );
        let (mut x, mut y, mut z) = ([0u8; 13], [0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
