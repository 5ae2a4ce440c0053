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
    /// The operation would exceed a documented limit (see
    /// [`limits`](crate::limits)), for instance more than
    /// [`MAX_MEMBERS`](crate::limits::MAX_MEMBERS) members.
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
    /// A sender key's proof of possession (the signature by its own signing
    /// key over its binding and id) does not verify for this owner, room and
    /// epoch: the key was re-shared by someone who is not its owner, or
    /// shared for another room or epoch. Final; nothing was accepted.
    BadPossessionProof,
    /// A signed sender key's id is not the one derived from its signing
    /// public key. Final.
    SenderKeyIdMismatch,
    /// The key commitment in a message header does not match the one derived
    /// from the receiver's copy of the sender key: the sender gave different
    /// members different keys under one key id (or the header was altered).
    /// Checked before any decryption. Final.
    CommitmentMismatch,
    /// The decrypted plaintext's padding is not the canonical `0x80 00*` to a
    /// Padmé length: an authenticated but malformed message from a member's
    /// own (buggy or malicious) client. Final.
    BadPadding,
    /// A message under a retired sender key at an index its owner never used
    /// before rotating (at or above the end carried in the successor key's
    /// share): a forgery or a stolen old key. Final.
    RetiredKeyIndex,
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
    /// The identity passed to a room call is not the room's own identity: a
    /// programming mistake in the app (the wrong device identity or the
    /// wrong room), not an attack. Nothing changed.
    WrongIdentity,
    /// A room needs at least two members: a one-member room, or a removal
    /// that would leave one (to end a 1:1 chat, delete the room).
    TooFewMembers,
    /// The same member id appears twice in a member list.
    DuplicateMember,
    /// The same identity appears under two member ids (one device is one
    /// member of a room).
    DuplicateIdentity,
    /// A stored blob of another kind than asked for (an identity blob
    /// imported as a room, or the reverse).
    WrongStateKind,
    /// A key share carries a sender key whose id or signing key another
    /// member already holds: an attempt to pass one member's key off as
    /// another's (or to collide with it). Final; nothing was accepted, and
    /// the genuine owner's share is still accepted.
    KeyOfAnotherMember,
    /// A welcome carries a device bundle whose identity is not the one its
    /// membership log gives that member: forged or mixed up. Final.
    WelcomeMismatch,
    /// A membership operation, genesis or log was refused by a membership
    /// rule (see [`MembershipError`]). Final: retrying the same bytes cannot
    /// help.
    Membership(MembershipError),
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
    /// A key request was refused by one of its own checks (see
    /// [`KeyRequestError`]; the checks shared with other formats use their
    /// usual variants: [`NotForMe`](Self::NotForMe) for another room,
    /// [`NotAMember`](Self::NotAMember) for a requester that is not a present
    /// member, [`BadSignature`](Self::BadSignature) for a request its named
    /// requester's pinned identity did not sign). Final.
    KeyRequest(KeyRequestError),
}

impl Error {
    /// Whether the same input can succeed later without anyone re-sending
    /// it: `true` only for [`UnknownSenderKey`](Self::UnknownSenderKey) (keep
    /// the message; it decrypts once its key share arrives). Every other
    /// error is final for that input: drop it, and where the variant says
    /// so, ask the sender for something new (a re-share after
    /// [`ShareKeyErased`](Self::ShareKeyErased), a fresh bundle after
    /// [`ShareKeyTooOld`](Self::ShareKeyTooOld)).
    ///
    /// ```
    /// use secret_chat::Error;
    /// assert!(Error::UnknownSenderKey.is_retryable());
    /// assert!(!Error::Replay.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::UnknownSenderKey)
    }
}

/// Why a membership operation (or a log holding it) was refused.
///
/// Each names the rule of `docs/PROTOCOL.md` section 5.1 that failed. All are
/// final: the operation is not stored, and the same bytes will be refused
/// again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum MembershipError {
    /// The author is not a present member in the operation's causal past
    /// (never added, removed, left, or its addition was voided).
    AuthorNotMember,
    /// The author's member id is present in the causal past, but with
    /// another identity key than the one that signed.
    AuthorIdentityMismatch,
    /// The room policy does not give the author this right (adding or
    /// removing others is reserved to admins).
    NoPermission,
    /// An addition of a member id that is already present.
    AlreadyMember,
    /// An addition with an identity key another present member already has.
    IdentityInUse,
    /// A removal of a member id that is not present.
    NotPresent,
    /// A removal naming its own author (a member leaves with `Leave`).
    RemoveSelf,
    /// A log names an operation before one of its parents, repeats one, or
    /// breaks the canonical order (depth, then id).
    LogOrder,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AuthorNotMember => "author is not a member in the operation's causal past",
            Self::AuthorIdentityMismatch => "author signed with another identity than its own",
            Self::NoPermission => "the room policy does not allow the author this operation",
            Self::AlreadyMember => "the added member is already present",
            Self::IdentityInUse => "the added identity belongs to another present member",
            Self::NotPresent => "the removed member is not present",
            Self::RemoveSelf => "a member removes itself with Leave, not Remove",
            Self::LogOrder => "log operations out of causal or canonical order",
        })
    }
}

impl core::error::Error for MembershipError {}

impl From<MembershipError> for Error {
    fn from(e: MembershipError) -> Self {
        Self::Membership(e)
    }
}

/// Why a key request ([`Room::request_key`](crate::Room::request_key),
/// [`Room::answer_key_request`](crate::Room::answer_key_request)) was
/// refused, for the checks of its own (section 5.0.5 of `docs/PROTOCOL.md`).
///
/// All are final for these bytes: a requester still missing the key makes a
/// new request (with a fresh time, to the owner's current instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KeyRequestError {
    /// The request names another member than me as the key's owner: the
    /// relay delivered it to the wrong device.
    NotAddressedToMe,
    /// The request names me, but another membership instance of me than my
    /// current one: it was made before I was removed and added again.
    StaleOwnerInstance,
    /// The requester is a present member, but the request names another
    /// instance of it than its current one: it was made before the requester
    /// was removed and added again (a replay from its earlier membership).
    StaleRequesterInstance,
    /// The request is older than
    /// [`KEY_REQUEST_MAX_AGE_SECS`](crate::limits::KEY_REQUEST_MAX_AGE_SECS)
    /// by my clock: a replay, or a request that waited too long.
    Expired,
    /// The request's time is more than
    /// [`KEY_REQUEST_MAX_SKEW_SECS`](crate::limits::KEY_REQUEST_MAX_SKEW_SECS)
    /// ahead of my clock: the requester's clock is wrong.
    FromTheFuture,
    /// (Requester side.) The room already holds the sender key the message
    /// names: decrypt the message instead of asking for the key.
    KeyHeld,
}

impl fmt::Display for KeyRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAddressedToMe => "key request names another member as the key's owner",
            Self::StaleOwnerInstance => "key request is addressed to an earlier instance of me",
            Self::StaleRequesterInstance => {
                "key request was made by an earlier instance of the requester"
            }
            Self::Expired => "key request is older than the freshness window",
            Self::FromTheFuture => "key request time is ahead of the clock by more than the skew",
            Self::KeyHeld => "the sender key is already held; decrypt the message",
        })
    }
}

impl core::error::Error for KeyRequestError {}

impl From<KeyRequestError> for Error {
    fn from(e: KeyRequestError) -> Self {
        Self::KeyRequest(e)
    }
}

/// Why a storage backend (SQLite, a file system) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
            Self::WrongIdentity => f.write_str(
                "the identity passed is not this room's own identity (a bug in the caller)",
            ),
            Self::TooFewMembers => f.write_str(
                "a room needs at least two members (to end a 1:1 chat, delete the room)",
            ),
            Self::DuplicateMember => f.write_str("the same member id appears twice"),
            Self::DuplicateIdentity => f.write_str("the same identity appears under two member ids"),
            Self::WrongStateKind => f.write_str("stored blob is of another kind (identity vs room)"),
            Self::KeyOfAnotherMember => {
                f.write_str("sender key id or signing key already held by another member")
            }
            Self::WelcomeMismatch => {
                f.write_str("welcome bundle does not match the identity the log gives the member")
            }
            Self::BadPossessionProof => {
                f.write_str("sender key proof of possession does not verify")
            }
            Self::SenderKeyIdMismatch => {
                f.write_str("sender key id does not match its signing key")
            }
            Self::CommitmentMismatch => f.write_str("message key commitment does not match"),
            Self::BadPadding => f.write_str("decrypted message has invalid padding"),
            Self::RetiredKeyIndex => {
                f.write_str("message index beyond the end of a retired sender key")
            }
            Self::Membership(e) => write!(f, "membership operation refused: {e}"),
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
            Self::KeyRequest(e) => write!(f, "key request refused: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Membership(e) => Some(e),
            Self::Backend(e) => Some(e),
            Self::KeyRequest(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Malformed(e)
    }
}

/// Why an attachment, an attachment pointer or a message content was refused.
///
/// The streaming decryptor writes each chunk only after it authenticated
/// it, but a later chunk can still fail: on any error the output written so
/// far must be discarded (it is a genuine prefix, never forged bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The bytes (ciphertext header, pointer or content envelope) are not a
    /// well-formed encoding (see [`DecodeError`]).
    Malformed(DecodeError),
    /// The key commitment in the ciphertext header does not match the
    /// pointer's key: a wrong key, or the blob of another file. Checked
    /// before any chunk is decrypted.
    WrongKey,
    /// The ciphertext header names another chunk size than the pointer.
    HeaderMismatch,
    /// The ciphertext ended before its last chunk (an incomplete download
    /// or a truncation): fetching the blob again may help.
    Truncated,
    /// Bytes follow the last chunk (an extension of the ciphertext).
    Extended,
    /// Chunk `index` failed authentication: modified, moved to another
    /// position (reordered), taken from another file, or not the last chunk
    /// where the pointer's size says the file ends.
    ChunkRejected {
        /// Position of the refused chunk (0-based).
        index: u32,
    },
    /// The padding after the content is not all zero (only the sender, who
    /// holds the key, can cause this).
    BadPadding,
    /// Random access to a chunk index the attachment does not have.
    ChunkOutOfRange,
    /// The input is larger than [`MAX_ATTACHMENT_SIZE`](crate::limits::MAX_ATTACHMENT_SIZE).
    TooLarge,
    /// A value given to a constructor exceeds a documented limit (see
    /// [`limits`](crate::limits)) or the chunk size is not a power of two in range.
    LimitExceeded,
    /// A content type that is not 0 to 127 visible ASCII characters.
    InvalidContentType,
    /// A text field of a content envelope is not UTF-8.
    NotUtf8,
    /// A link-preview URL that is not an `http://` or `https://` URL free of
    /// whitespace and control characters.
    BadUrl,
    /// A link preview whose URL does not appear in the message text: the
    /// receiver refuses it (a sender cannot attach a preview of a link it
    /// did not send).
    PreviewUrlNotInText,
    /// Reading the input or writing the output failed with this I/O error
    /// kind; retrying may help.
    Io(std::io::ErrorKind),
}

impl AttachmentError {
    /// Whether trying again (fetching the blob again, retrying the I/O) can
    /// succeed: true for [`Truncated`](Self::Truncated) and
    /// [`Io`](Self::Io); every other error is final for these bytes.
    ///
    /// ```
    /// use secret_chat::{AttachmentError, attachment};
    /// let mut blob = Vec::new();
    /// let pointer = attachment::encrypt(&b"photo"[..], &mut blob, "image/jpeg")?;
    /// let cut_short = &blob[..blob.len() - 1]; // a download that broke off
    /// let err = attachment::decrypt(&pointer, cut_short, &mut Vec::new()).unwrap_err();
    /// assert!(err.is_retryable()); // fetch the blob again
    /// assert!(!AttachmentError::WrongKey.is_retryable());
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Truncated | Self::Io(_))
    }
}

impl fmt::Display for AttachmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed attachment data: {e}"),
            Self::WrongKey => f.write_str("key commitment mismatch: wrong key or another file"),
            Self::HeaderMismatch => f.write_str("ciphertext header does not match the pointer"),
            Self::Truncated => f.write_str("attachment ciphertext truncated"),
            Self::Extended => f.write_str("bytes after the last attachment chunk"),
            Self::ChunkRejected { index } => {
                write!(f, "attachment chunk {index} failed authentication")
            }
            Self::BadPadding => f.write_str("attachment padding is not zero"),
            Self::ChunkOutOfRange => f.write_str("chunk index out of range"),
            Self::TooLarge => f.write_str("attachment larger than the limit"),
            Self::LimitExceeded => f.write_str("documented limit exceeded"),
            Self::InvalidContentType => f.write_str("invalid content type"),
            Self::NotUtf8 => f.write_str("text is not UTF-8"),
            Self::BadUrl => f.write_str("link-preview URL is not an http(s) URL"),
            Self::PreviewUrlNotInText => f.write_str("link-preview URL not in the message text"),
            Self::Io(kind) => write!(f, "I/O error: {kind}"),
        }
    }
}

impl core::error::Error for AttachmentError {}

impl From<DecodeError> for AttachmentError {
    fn from(e: DecodeError) -> Self {
        Self::Malformed(e)
    }
}

impl From<std::io::Error> for AttachmentError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.kind())
    }
}
