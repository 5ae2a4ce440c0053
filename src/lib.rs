#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

mod clock;
pub mod error;
pub mod fingerprint;
pub mod identity;
pub mod ids;
pub mod keyshare;
pub mod labels;
pub mod message;
pub mod record;
mod rng;
pub mod room;
pub mod sender_key;
pub mod share_key;
pub mod storage;
pub mod store;
pub mod testing;
pub mod wire;

pub use error::{BackendError, DecodeError, Error};
pub use fingerprint::{
    Fingerprint, ImageKind, KeyImage, PairVerification, RoomDigest, ScannablePayload, TerminalMode,
    room_digest,
};
pub use identity::{IdentityId, IdentityKeyPair, PublicIdentity};
pub use ids::{MemberId, RoomId, SenderKeyId};
pub use keyshare::{KeyShare, Recipient, open_share, seal_shares, seal_shares_with_rng};
pub use labels::limits;
pub use message::{Decrypted, Message};
pub use room::{Outgoing, OutgoingShare, Received, Room, RotationPolicy};
pub use sender_key::{InboundSenderKey, OutboundSenderKey, SenderKeyMode, SharedSenderKey};
pub use share_key::{DeviceBundle, ShareKeyPolicy, SignedShareKey, Suite};
pub use storage::StorageKey;
