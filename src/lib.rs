#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

pub mod error;
pub mod identity;
pub mod keyshare;
pub mod labels;
mod rng;
pub mod testing;
pub mod wire;

pub use error::{DecodeError, Error};
pub use identity::{IdentityId, IdentityKeyPair, PublicIdentity};
pub use keyshare::{KeyShare, open_share, seal_shares, seal_shares_with_rng};
pub use labels::limits;
pub mod ids;
pub mod message;
pub mod sender_key;

pub use ids::{MemberId, RoomId, SenderKeyId};
pub use message::{Decrypted, Message};
pub use sender_key::{InboundSenderKey, OutboundSenderKey, SenderKeyMode, SharedSenderKey};
