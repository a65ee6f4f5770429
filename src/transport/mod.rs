//! The SSH transport layer [RFC4253]: binary packets and their protection.

pub mod cipher;
pub mod packet;
pub mod suite;

pub use cipher::{Cleartext, Framing, OpeningKey, SealingKey};
pub use packet::{Counters, Packet, PacketDecoder, PacketEncoder};
pub use suite::{CipherAlg, DirectionKeys, MacAlg};
