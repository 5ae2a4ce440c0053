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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// A field that needs at least one byte was empty (an empty room or
    /// member id, an empty text form).
    Empty,
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
            Self::Empty => f.write_str("empty where at least one byte is required"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a protocol operation failed.
///
/// A failed operation leaves every state it was given exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
}

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
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Malformed(e)
    }
}
