//! Error types: one enum for decoding bytes, one for protocol operations.
//!
//! Errors never carry secret bytes. They are precise for the application
//! (which needs to know, say, that a key share has not arrived yet) and must
//! not be echoed to the network: a relay learns nothing from a failure unless
//! the app tells it.

use core::fmt;

/// Why a byte string could not be decoded.
///
/// Every decoder of this crate is total: any input gives a value or one of
/// these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the structure did.
    Truncated,
    /// Bytes were left over after a complete structure.
    TrailingBytes,
    /// The version byte names a version this release does not know.
    UnsupportedVersion(u8),
    /// The suite byte names a suite this release does not know.
    UnsupportedSuite(u8),
    /// A length field exceeds its documented limit.
    LengthLimit,
    /// A field holds a value outside its allowed set (an unknown tag, a
    /// non-canonical encoding, a zero where none is allowed).
    InvalidValue,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input truncated"),
            Self::TrailingBytes => f.write_str("trailing bytes after structure"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Self::UnsupportedSuite(s) => write!(f, "unsupported cipher suite {s}"),
            Self::LengthLimit => f.write_str("length field over its limit"),
            Self::InvalidValue => f.write_str("invalid field value"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a protocol operation failed.
///
/// A failed operation leaves every state it was given exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed encoding (see [`DecodeError`]).
    Malformed(DecodeError),
    /// A public key is weak: a small-order Ed25519 key or a low-order X25519
    /// point, or a key agreement produced the all-zero secret.
    WeakKey,
    /// A signature did not verify (strict Ed25519 verification).
    BadSignature,
    /// Addressed to someone else: another recipient, another room or another
    /// epoch than the one that opened it.
    NotForMe,
    /// Authenticated decryption failed: the bytes were changed, or were made
    /// under a different key.
    Tampered,
    /// The sender key a message names is not (yet) known. Keep the message and
    /// retry after the sender's key share arrives: nothing is lost.
    UnknownSenderKey,
    /// This message index of this sender key was already decrypted.
    Replay,
    /// The message is older than any key still kept for its sender (its key
    /// was evicted from the skipped-key store, or its epoch has expired).
    TooOld,
    /// The message index jumps further ahead than
    /// [`MAX_FORWARD_JUMP`](crate::limits::MAX_FORWARD_JUMP) allows.
    TooFarAhead,
    /// An unsigned message arrived under a sender key that was shared as
    /// signed (a downgrade attempt).
    SignatureRequired,
    /// A message under the receiver's own sender key: the relay reflected it.
    Reflected,
    /// A member id arrived with a different identity than the room pinned
    /// (a reinstall, or a relay substituting keys). The app must start a new
    /// room; nothing was accepted.
    IdentityChanged,
    /// The identity or member id is not a member of this room.
    NotAMember,
    /// The operation would exceed a documented limit (see [`limits`](crate::limits)).
    LimitExceeded,
    /// The chain of a sender key is exhausted (its index reached `u32::MAX`);
    /// rotate to a new sender key.
    ChainExhausted,
    /// The storage blob could not be decrypted with this storage key (wrong key
    /// or damaged blob).
    StorageDecrypt,
    /// A scanned verification code does not match this pair's fingerprints:
    /// a key was substituted, or the wrong code (for instance one's own) was
    /// scanned. The chat must not be marked as verified.
    FingerprintMismatch,
    /// A key share is sealed to one of my share keys that I have already
    /// erased (its grace period ended). Final for this share: ask the sender
    /// to re-share under my current [`DeviceBundle`](crate::DeviceBundle).
    ShareKeyErased,
    /// A key share names a share-key serial this device never made (forged,
    /// or sealed to a bundle of another installation). Final.
    UnknownShareKey,
    /// A share key that is not newer than the one already known for that
    /// member (a replayed older serial). Final; nothing changed.
    StaleShareKey,
    /// The member's newest known share key is older than
    /// [`ShareKeyPolicy::max_age_secs`](crate::ShareKeyPolicy::max_age_secs):
    /// fetch the member's current bundle before sharing with it.
    ShareKeyTooOld,
    /// A member (or this device) has no share key of the room's suite.
    SuiteUnavailable,
    /// The store holds older state (device generation `stored`) than the
    /// newest generation the app remembered beside its storage key
    /// (`expected`): a restored backup, a file replaced by an older copy, or
    /// writes lost by the disk. Nothing was loaded. Old state would decrypt
    /// messages again and forget removals, so open it only if the user chose
    /// to restore a backup ([`SealedStore::open_accepting_rollback`](crate::store::SealedStore::open_accepting_rollback)).
    Rollback {
        /// The generation of the state found in the store.
        stored: u64,
        /// The newest generation the app remembered.
        expected: u64,
    },
    /// The records in the store do not match the store's own authenticated
    /// account of them (its meta record): records of different times mixed,
    /// a record added, removed or renamed outside this library, or a record
    /// newer than the store. Final: the store was tampered with or damaged;
    /// restore a whole backup.
    StoreInconsistent,
    /// The storage backend failed (see [`BackendError`]); nothing was
    /// changed unless the variant says otherwise.
    Backend(BackendError),
}

/// Why a storage backend (SQLite, a file system) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendError {
    /// Another connection holds a lock on the store: retry later.
    Busy,
    /// The disk is full: free space and retry.
    Full,
    /// The store cannot be written (read-only file or medium).
    ReadOnly,
    /// The file is not a store of this library, or is damaged beyond the
    /// records (a corrupt database file): restore a backup.
    Corrupt,
    /// An input/output error of the operating system: retry may help.
    Io,
    /// Another handle (another process, or another `SealedStore` on the
    /// same file) committed since this one read the store; nothing was
    /// written. Open the store again and redo the call.
    Conflict,
    /// An earlier write failed in a way that leaves unclear whether it
    /// landed; this handle refuses further work. Open the store again.
    MustReopen,
    /// Any other backend failure.
    Other,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Busy => "store is locked by another connection; retry later",
            Self::Full => "disk full; free space and retry",
            Self::ReadOnly => "store is read-only",
            Self::Corrupt => "store file is damaged or not a secret-chat store; restore a backup",
            Self::Io => "input/output error; retry may help",
            Self::Conflict => "another writer changed the store; open it again and retry",
            Self::MustReopen => "an earlier write may or may not have landed; open the store again",
            Self::Other => "storage backend failure",
        })
    }
}

impl core::error::Error for BackendError {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed input: {e}"),
            Self::WeakKey => f.write_str("weak or low-order public key"),
            Self::BadSignature => f.write_str("signature verification failed"),
            Self::NotForMe => f.write_str("addressed to another recipient, room or epoch"),
            Self::Tampered => f.write_str("authenticated decryption failed"),
            Self::UnknownSenderKey => {
                f.write_str("sender key not yet known; retry after its key share")
            }
            Self::Replay => f.write_str("message already received"),
            Self::TooOld => f.write_str("message older than any kept key"),
            Self::TooFarAhead => f.write_str("message index jumps too far ahead"),
            Self::SignatureRequired => f.write_str("unsigned message under a signed sender key"),
            Self::Reflected => f.write_str("message under our own sender key (reflected)"),
            Self::IdentityChanged => f.write_str("member identity changed; start a new room"),
            Self::NotAMember => f.write_str("not a member of this room"),
            Self::LimitExceeded => f.write_str("documented limit exceeded"),
            Self::ChainExhausted => f.write_str("sender key chain exhausted; rotate"),
            Self::StorageDecrypt => f.write_str("stored state could not be decrypted"),
            Self::FingerprintMismatch => {
                f.write_str("scanned code does not match the fingerprints")
            }
            Self::ShareKeyErased => f.write_str(
                "key share sealed to a share key this device has erased; ask the sender to re-share",
            ),
            Self::UnknownShareKey => f.write_str("key share names a share key this device never made"),
            Self::StaleShareKey => f.write_str("share key is not newer than the one already known"),
            Self::ShareKeyTooOld => f.write_str(
                "member's share key is older than the policy allows; fetch its current bundle",
            ),
            Self::SuiteUnavailable => f.write_str("no share key of the room's suite"),
            Self::Rollback { stored, expected } => write!(
                f,
                "stored state (generation {stored}) is older than the newest saved \
                 ({expected}): rolled back; load it only if the user restored a backup"
            ),
            Self::StoreInconsistent => f.write_str(
                "stored records do not match the store's authenticated meta record \
                 (mixed, added or removed records); restore a whole backup",
            ),
            Self::Backend(e) => write!(f, "storage backend: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Backend(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Malformed(e)
    }
}
