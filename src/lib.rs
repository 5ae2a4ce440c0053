//! End-to-end encrypted "secret chats" (1:1 and group rooms) for any
//! messenger, against a relay server that is an active attacker: it sees only
//! ciphertext and cannot plant or swap keys unnoticed. The app brings
//! transport and storage; this crate brings everything cryptographic.
//!
//! It replaces the secret chats of a messenger prototype, called the "seed
//! product" in these docs: its private, public and secret keys and its
//! "public key image" are here [`IdentityKeyPair`], [`PublicIdentity`],
//! the sender keys ([`sender_key`]) and [`fingerprint`]; module docs name
//! what it did where this design differs.
//!
//! # Where to start
//!
//! - [`IdentityKeyPair`]: one per installation (Ed25519; signs, never
//!   decrypts). Its [`DeviceBundle`] (identity and rotating, signed
//!   post-quantum share keys) is what the device publishes;
//!   [`IdentityKeyPair::maintain_share_keys`] rotates and erases share keys.
//! - [`Room`]: a 1:1 or group chat on a signed membership log.
//!   [`Room::create`] / [`Room::join`], [`Room::encrypt`] /
//!   [`Room::decrypt`], [`Room::receive_share`] for the key shares, signed
//!   membership changes ([`Room::add_member`], [`Room::remove_member`],
//!   [`Room::leave`], [`Room::apply_update`]) and recovery
//!   ([`Room::reshare`]).
//! - [`guide`]: the integration guide, read once: identity, rooms, the
//!   deliver-persist-show order, retries, recovery and the verification UX.
//! - Verification, the "public key image": [`Room::verification`] gives a
//!   [`PairVerification`] (a picture as [`KeyImage`] in SVG, PNG or terminal
//!   text, a numeric code, and a QR payload checked by
//!   [`PairVerification::verify_scanned`]); groups also compare the
//!   [`RoomDigest`]. See [`fingerprint`].
//! - State at rest: a room is a set of small encrypted records;
//!   [`Room::save`] commits what a call changed (a received message: one
//!   ~400-byte record) and [`Room::load`] reads it back without redoing the
//!   signature checks the records' tags vouch for;
//!   [`IdentityKeyPair::save`] keeps the identity beside it.
//!   [`store::SealedStore`] seals the records into a [`store::Store`]
//!   ([`store::MemoryStore`], or `store::SqliteStore` with the `sqlite`
//!   feature), one transaction per save, and detects rollback; the key is a
//!   [`StorageKey`] kept in the OS keystore. [`storage`] has the whole-state
//!   export.
//! - Attachments: [`attachment::encrypt`] / [`attachment::decrypt`] stream a
//!   file (with random access through [`attachment::ChunkOpener`]), and the
//!   [`AttachmentPointer`] travels inside a message's [`Content`] (text,
//!   album, [`LinkPreview`]).
//! - Errors: one [`Error`] for every call, a variant per rejection;
//!   [`Error::is_retryable`] tells whether the same input can succeed later
//!   (only a message whose key share has not arrived yet). Decoders report a
//!   [`DecodeError`], attachments an [`AttachmentError`].
//! - Identifiers: [`RoomId`] (use [`RoomId::random`]), [`MemberId`] (the
//!   app's own user id), with a lossless text form (`Display` / `FromStr`).
//!
//! Lower layers ([`membership`], [`keyshare`], [`sender_key`], [`message`],
//! [`share_key`], [`record`]) are public for apps with their own room logic
//! and for second implementations; most apps only need the above. Every byte
//! they define is specified in `docs/PROTOCOL.md` in the source repository.
//!
//! # Quick start
//!
//! Two devices, one room; everything returned as bytes goes through the
//! app's relay.
//!
//! ```
//! use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
//! let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate()); // one per device
//! let (a, b) = (MemberId::new(b"alice")?, MemberId::new(b"bob")?);
//! let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
//! let room_id = RoomId::random();
//! let (mut on_alice, for_bob) = Room::create(&alice, room_id.clone(), a.clone(), &members)?;
//! let welcome = on_alice.welcome(&alice)?;                        // public: via the relay
//! let (mut on_bob, for_alice) = Room::join(&bob, b.clone(), &room_id, &welcome)?; // verifies the signed log
//! on_alice.receive_share(&alice, &for_alice[0].bytes)?;          // key shares, via the relay
//! on_bob.receive_share(&bob, &for_bob[0].bytes)?;
//! let sent = on_bob.encrypt(&bob, b"hi Alice")?;                  // ciphertext for the relay
//! assert_eq!(on_alice.decrypt(&sent.message)?.plaintext(), b"hi Alice");
//!
//! // Both phones show the same public key image: no relay swapped a key.
//! assert_eq!(on_alice.verification(&b)?.image(), on_bob.verification(&a)?.image());
//! # Ok::<(), secret_chat::Error>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `png` | yes | PNG rendering of the public key image |
//! | `serde` | no | `Serialize` / `Deserialize` for ids, errors, fingerprints, [`PairVerification`], [`ScannablePayload`], [`RoomDigest`], [`DeviceBundle`] (lowercase hex of their encoding, parsed back by the same strict parsers), [`Suite`] and [`ShareKeyPolicy`]; never for secrets |
//! | `sqlite` | no | `store::SqliteStore`: state in one SQLite file (bundled SQLite) |
//! | `wasm_js` | no | `wasm32-unknown-unknown` in a browser or Node: randomness from `crypto.getRandomValues`, time from `Date.now()` |
//! | `testing` | no | deterministic RNG and raw sender keys for tests and vectors: never in an app |
//!
//! Every call that reads the clock or draws randomness has an `_at` /
//! `_with_rng` form taking them explicitly (for `wasm32` without `wasm_js`,
//! and for deterministic tests); [`rand_core`] is re-exported for the bound.
//! The other crates whose types or traits appear in the API are re-exported
//! too: [`zeroize`] (secrets returned as `Zeroizing` buffers) and [`subtle`]
//! (`ConstantTimeEq`).
//!
//! Not audited. The security properties, non-goals and limits are listed in
//! the crate's README (its crates.io page).
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
#[cfg(feature = "serde")]
mod serde_support;
pub mod share_key;
pub mod storage;
pub mod store;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod wire;

// The README (the repository's front page) is doctested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The `rand_core` release this crate's `_with_rng` functions take
/// (`R: rand_core::CryptoRng`), re-exported so an app can name the bound
/// (or implement it for its own RNG) without guessing the matching version.
pub use rand_core;

/// The `zeroize` release whose types this crate's API carries, re-exported
/// on purpose: secrets leave the crate as [`zeroize::Zeroizing`] buffers
/// (for instance [`StorageKey::to_bytes`], [`Content::to_bytes`],
/// [`store::SealedStore::get`]), wiped when dropped, and secret types
/// implement [`zeroize::ZeroizeOnDrop`]. An app can name them (and wipe its
/// own copies with [`zeroize::Zeroize`]) without adding a matching
/// dependency.
pub use zeroize;

/// The `subtle` release whose [`subtle::ConstantTimeEq`] this crate
/// implements for secret or compared values ([`StorageKey`],
/// [`attachment::AttachmentKey`], [`Fingerprint`], [`IdentityKeyPair`],
/// [`SharedSenderKey`]), re-exported on purpose so an app can call
/// `ct_eq` without adding a matching dependency. (Their `==` is constant
/// time too.)
pub use subtle;

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
