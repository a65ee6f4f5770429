//! The only module that names crypto crates; everything else uses the small types here.

pub mod aead;
pub mod ct;
pub mod hash;
pub mod hmac;
pub mod kex;
pub mod modp;
pub mod rng;
pub mod sign;
pub mod stream;
pub mod verify;
