#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

pub mod attachment;
mod clock;
pub mod content;
pub mod error;
pub mod fingerprint;
pub mod guide;
pub mod identity;
pub mod ids;
pub mod keyshare;
pub mod labels;
pub mod membership;
pub mod message;
pub mod record;
mod rng;
pub mod room;
pub mod sender_key;
pub mod share_key;
pub mod storage;
pub mod store;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod wire;

/// The `rand_core` release this crate's `_with_rng` functions take
/// (`R: rand_core::CryptoRng`), re-exported so an app can name the bound
/// (or implement it for its own RNG) without guessing the matching version.
pub use rand_core;

pub use attachment::AttachmentPointer;
pub use content::{Content, LinkPreview};
pub use error::{AttachmentError, BackendError, DecodeError, Error, KeyRequestError};
pub use fingerprint::{
    Fingerprint, ImageError, ImageKind, KeyImage, PairVerification, RoomDigest, ScannablePayload,
    TerminalMode, room_digest,
};
pub use identity::{IdentityId, IdentityKeyPair, PublicIdentity};
pub use ids::{MemberId, RoomId, SenderKeyId};
pub use keyshare::{KeyShare, Recipient, open_share, seal_shares, seal_shares_with_rng};
pub use labels::limits;
pub use message::{Decrypted, Message};
pub use room::{
    AcceptedShare, Applied, KeyRequest, KeyRequestAnswer, MembershipChange, Missing, Outgoing,
    OutgoingKeyRequest, OutgoingShare, Received, Room, RoomOptions, RotationPolicy,
};
pub use sender_key::{InboundSenderKey, OutboundSenderKey, SenderKeyMode, SharedSenderKey};
pub use share_key::{DeviceBundle, ShareKeyPolicy, SignedShareKey, Suite};
pub use storage::StorageKey;
