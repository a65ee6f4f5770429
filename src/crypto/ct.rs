//! Constant-time comparison for MACs and tags, so a forger learns nothing from timing.

use subtle::ConstantTimeEq;

/// Whether `a == b`, in time independent of where they differ. Lengths are public.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_contents_and_lengths() {
        assert!(super::eq(b"abc", b"abc"));
        assert!(!super::eq(b"abc", b"abd"));
        assert!(!super::eq(b"abc", b"ab"));
        assert!(super::eq(b"", b""));
    }
}
