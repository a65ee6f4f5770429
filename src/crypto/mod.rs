//! The only module that names crypto crates; everything else uses the small types here.

pub mod ct;
pub mod rng;
