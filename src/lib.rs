#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

pub mod error;
pub mod fingerprint;
pub mod identity;
pub mod labels;
mod rng;
pub mod testing;
pub mod wire;

pub use error::{DecodeError, Error};
pub use fingerprint::{
    Fingerprint, ImageKind, KeyImage, PairVerification, RoomDigest, ScannablePayload, TerminalMode,
    room_digest,
};
pub use identity::{IdentityId, IdentityKeyPair, PublicIdentity};
pub use labels::limits;
pub mod ids;
pub mod sender_key;

pub use ids::{MemberId, RoomId, SenderKeyId};
pub use sender_key::{SenderKeyMode, SharedSenderKey};
