//! User authentication [RFC4252]. So far: the data a public-key signature covers.

pub mod publickey;
