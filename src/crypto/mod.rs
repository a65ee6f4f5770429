//! The only module that names crypto crates; everything else uses the small types here.

pub mod aead;
pub mod ct;
pub mod hmac;
pub mod rng;
pub mod stream;
