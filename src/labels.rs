//! Every domain-separation label and protocol constant, in one place.
//!
//! No two uses in the crate share a label: each signature, hash, KDF and
//! AEAD input starts with (or is keyed by) its own constant from this module,
//! so a value made for one purpose can never be accepted for another.
//! All labels are ASCII, start with `secret-chat/v2/` (or `secret-chat/v1/`
//! where a version-1 construction is kept unchanged), and are documented in
//! `docs/PROTOCOL.md`.

/// Version byte that starts every wire format of this crate (protocol
/// version 2; version 1 was never released and is not accepted).
pub const PROTOCOL_VERSION: u8 = 2;

/// Version byte of the scannable verification payload (unchanged since
/// version 1 of the protocol: the payload layout did not change).
pub const PAYLOAD_VERSION: u8 = 1;

/// Suite byte of DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM key
/// shares ([`Suite::X25519`](crate::Suite::X25519)).
pub const SUITE_X25519: u8 = 1;
/// Suite byte of X-Wing (ML-KEM-768 + X25519) / HKDF-SHA256 / AES-256-GCM
/// key shares ([`Suite::XWing`](crate::Suite::XWing)), the default.
pub const SUITE_XWING: u8 = 2;
/// The suite byte messages carry (messages are AES-256-GCM + Ed25519 in
/// every suite).
pub const SUITE_X25519_AES256GCM: u8 = SUITE_X25519;

/// Hashed with a public identity key to make its short [`IdentityId`](crate::IdentityId).
pub const IDENTITY_ID: &[u8] = b"secret-chat/v2/identity-id";
/// Prefix of the message an identity key signs over one of its share keys.
pub const SHARE_KEY_SIGNATURE: &[u8] = b"secret-chat/v2/share-key/signature";

/// Prefix of the HPKE `info` of a key share.
pub const KEY_SHARE_INFO: &[u8] = b"secret-chat/v2/key-share/info";
/// Prefix of the message the sender's identity key signs over a key share.
pub const KEY_SHARE_SIGNATURE: &[u8] = b"secret-chat/v2/key-share/signature";

/// HMAC-SHA256 input that derives the next chain key (Signal's `0x02`).
pub const CHAIN_KEY_STEP: &[u8] = &[0x02];
/// HMAC-SHA256 input that derives a message seed (Signal's `0x01`).
pub const MESSAGE_SEED_STEP: &[u8] = &[0x01];

/// Version byte that starts every message of protocol version 2 (see
/// `docs/PROTOCOL.md` section 4): the same value as [`PROTOCOL_VERSION`].
pub const MESSAGE_VERSION: u8 = PROTOCOL_VERSION;
/// HKDF-SHA256 `info` prefix (followed by the sender key's 32-byte binding)
/// that expands a message seed and the header's salt to the AES-256-GCM key,
/// the nonce and the key commitment of one message.
pub const MESSAGE_KEY_INFO_V2: &[u8] = b"secret-chat/v2/message-key";
/// Prefix of what a sender key's Ed25519 key signs over a version 2 group
/// message: this label, the header, SHA-256 of the ciphertext and tag.
pub const MESSAGE_SIGNATURE_V2: &[u8] = b"secret-chat/v2/message/signature";
/// Hashed with a room, an owner, a membership instance and an epoch into the
/// 32-byte binding of a sender key.
pub const SENDER_KEY_BINDING: &[u8] = b"secret-chat/v2/sender-key/binding";
/// Hashed with a signed sender key's Ed25519 public key into its 16-byte id.
pub const SENDER_KEY_ID: &[u8] = b"secret-chat/v2/sender-key/id";
/// Prefix of the proof of possession: signed by a sender key's own Ed25519
/// key over this label, the key's binding and its id.
pub const SENDER_KEY_POSSESSION: &[u8] = b"secret-chat/v2/sender-key/possession";

/// Type byte of a key request (after the version byte; section 5.0.5 of
/// `docs/PROTOCOL.md`). Distinct from the welcome (`0x10`) and update
/// (`0x11`) type bytes and from every suite, mode and membership type byte
/// that follows a version byte elsewhere.
pub const KEY_REQUEST_TYPE: u8 = 0x12;
/// Prefix of the message a requester's identity key signs over a key
/// request (followed by every byte of the request before its signature).
pub const KEY_REQUEST_SIGNATURE: &[u8] = b"secret-chat/v2/key-request/signature";

/// Per-member fingerprint label (iterated SHA-512).
pub const FINGERPRINT: &[u8] = b"secret-chat/v1/fingerprint";
/// Room digest label (SHA-512 over the sorted member fingerprints).
pub const ROOM_DIGEST: &[u8] = b"secret-chat/v1/room-digest";

/// Version of the fingerprint computation, hashed (as a big-endian `u16`)
/// into every fingerprint so a later computation can never collide with this one.
pub const FINGERPRINT_VERSION: u16 = 1;
/// Extra SHA-512 iterations of a fingerprint (Signal's safety-number count).
///
/// Forging a key image means finding a key whose fingerprint matches the
/// victim's in every compared bit: 128 bits for the picture, about 100 for a
/// member's 30 digits. That is out of reach anyway; the iterations matter
/// when a person compares only part of the image (say half the cells, 64
/// bits): 5,200 iterations (~2^12.3) make each attacker try cost as much as
/// 5,200 plain hashes, lifting that 2^64 search to ~2^76 SHA-512 calls. On
/// a phone the whole computation is a few milliseconds, done once per member.
pub const FINGERPRINT_ITERATIONS: u32 = 5200;

/// The four cell colours of the public key image, indexed by a cell's 2-bit
/// value: black, blue `#0072B2`, orange `#E69F00`, white (Okabe-Ito).
///
/// Chosen so every pair stays apart for people with protanopia,
/// deuteranopia or tritanopia and in greyscale: the CIELAB lightness of the
/// four is about 0, 46, 71 and 100, so even a greyscale print keeps them in
/// order. The test `fingerprint_palette_is_distinguishable` (in
/// `tests/fingerprint.rs`) checks the figures, also under simulated colour
/// blindness; `docs/PROTOCOL.md` lists them.
pub const KEY_IMAGE_PALETTE: [[u8; 3]; 4] = [
    [0x00, 0x00, 0x00],
    [0x00, 0x72, 0xB2],
    [0xE6, 0x9F, 0x00],
    [0xFF, 0xFF, 0xFF],
];
/// Colour of the frame around and between the blocks of a key image (a
/// neutral mid grey: it carries no data, so it is never decoded as a cell).
pub const KEY_IMAGE_FRAME: [u8; 3] = [0x8C, 0x8C, 0x8C];
/// Colour of the orientation mark(s) drawn in the frame.
pub const KEY_IMAGE_MARK: [u8; 3] = [0x00, 0x00, 0x00];

/// Associated-data label of the encrypted storage envelope.
pub const STORAGE: &[u8] = b"secret-chat/v1/storage";
/// Version byte that starts every storage envelope. Separate from
/// [`PROTOCOL_VERSION`] because stored state migrates on its own schedule:
/// a later release that changes a state layout bumps this and keeps a
/// reader for the old value.
pub const STORAGE_VERSION: u8 = 1;
/// Kind byte of a storage envelope holding an [`IdentityKeyPair`](crate::IdentityKeyPair).
pub const STORAGE_KIND_IDENTITY: u8 = 1;
/// Kind byte of a storage envelope holding a [`Room`](crate::Room).
pub const STORAGE_KIND_ROOM: u8 = 2;

/// Version byte of the attachment formats: the ciphertext header and the
/// [`AttachmentPointer`](crate::AttachmentPointer). Separate from
/// [`PROTOCOL_VERSION`] because attachments are stored by blob stores for
/// longer than any message format lives.
pub const ATTACHMENT_VERSION: u8 = 1;
/// Suite byte of the only attachment suite: HKDF-SHA256 key derivation,
/// AES-256-GCM in the STREAM construction (32-bit big-endian counter and a
/// last-chunk byte in the nonce), HKDF key commitment.
pub const ATTACHMENT_SUITE_AES256GCM_STREAM: u8 = 1;
/// HKDF-SHA256 `info` expanding a file key to the AES-256-GCM key (32 bytes)
/// and the STREAM nonce prefix (7 bytes).
pub const ATTACHMENT_KEY: &[u8] = b"secret-chat/v2/attachment/key";
/// HKDF-SHA256 `info` expanding a file key to its 32-byte key commitment.
pub const ATTACHMENT_COMMITMENT: &[u8] = b"secret-chat/v2/attachment/commitment";
/// Version byte of the message-content envelope ([`Content`](crate::Content)).
pub const CONTENT_VERSION: u8 = 1;
/// Version byte that starts every membership format (genesis, operation,
/// log): the first format of protocol version 2.
pub const MEMBERSHIP_VERSION: u8 = 2;
/// Type byte of a membership genesis (after the version byte).
pub const MEMBERSHIP_TYPE_GENESIS: u8 = 1;
/// Type byte of a membership operation (after the version byte).
pub const MEMBERSHIP_TYPE_OPERATION: u8 = 2;
/// Type byte of an encoded membership log / welcome (after the version byte).
pub const MEMBERSHIP_TYPE_LOG: u8 = 3;
/// Prefix of the message the creator's identity key signs over a genesis.
pub const MEMBERSHIP_GENESIS_SIGNATURE: &[u8] = b"secret-chat/v2/membership/genesis";
/// Prefix of the message an author's identity key signs over an operation
/// (followed by the genesis id, which binds the operation to its room).
pub const MEMBERSHIP_OP_SIGNATURE: &[u8] = b"secret-chat/v2/membership/operation";
/// Hashed before an encoded genesis or operation to make its 32-byte id.
pub const MEMBERSHIP_OP_ID: &[u8] = b"secret-chat/v2/membership/op-id";
/// Hashed before the present members to make the membership digest.
pub const MEMBERSHIP_DIGEST: &[u8] = b"secret-chat/v2/membership/digest";
/// Associated-data label of a record envelope (protocol v2 state at rest:
/// `record`, `store`).
pub const RECORD: &[u8] = b"secret-chat/v2/record";
/// HKDF-SHA256 `info` deriving the AES-256-GCM key of record envelopes from
/// the storage key (so the storage key itself never keys two constructions).
pub const RECORD_AEAD_KEY: &[u8] = b"secret-chat/v2/record/aead-key";
/// HKDF-SHA256 `info` deriving the HMAC-SHA256 key of the store digest (the
/// keyed set hash over every live record that the meta record carries).
pub const RECORD_DIGEST_KEY: &[u8] = b"secret-chat/v2/record/digest-key";
/// Version byte that starts every record envelope. It differs from
/// [`STORAGE_VERSION`] so a version-1 export blob is never read as a record.
pub const RECORD_VERSION: u8 = 2;
/// Record kind: the store's own meta record (device generation, record
/// count and digest); one per store, empty room and key. Apps never write it.
pub const RECORD_KIND_META: u8 = 1;
/// Record kind: the device identity with its share-key secrets (device-wide:
/// empty room id).
pub const RECORD_KIND_IDENTITY: u8 = 2;
/// Record kind: the core of one room (ids, suite, policy, epochs).
pub const RECORD_KIND_ROOM_CORE: u8 = 3;
/// Record kind: the membership log of one room.
pub const RECORD_KIND_MEMBERSHIP_LOG: u8 = 4;
/// Record kind: my outbound sender key in one room.
pub const RECORD_KIND_OUTBOUND_KEY: u8 = 5;
/// Record kind: the inbound sender keys of one member of one room (record
/// key: the member id).
pub const RECORD_KIND_INBOUND_KEYS: u8 = 6;
/// Record kind: the newest share key known for one member of one room
/// (record key: the member id). Kept apart from the member's inbound keys,
/// which change with every message, because an X-Wing share key is 1.2 KB.
pub const RECORD_KIND_MEMBER_SHARE_KEY: u8 = 7;
/// Record kind: the app's own records (its outbox of messages and key
/// shares not yet handed to the relay, received messages, read markers),
/// sealed and committed in the same batch as the room changes they go with
/// (see [`Room::save_with`](crate::Room::save_with)). The crate never reads
/// them.
pub const RECORD_KIND_APP: u8 = 8;

/// Public-key check: a clamped scalar used to multiply an X25519 public key
/// during parsing; the result is all-zero exactly for low-order points.
pub(crate) const LOW_ORDER_CHECK_SCALAR: [u8; 32] = [
    0x08, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x41,
];

/// Every limit of the protocol, each with the reason for its number.
pub mod limits {
    /// Longest room id, in bytes. Room ids are chosen by the app (a UUID is
    /// 16 bytes, a hash 32); 64 leaves room without letting headers grow.
    pub const MAX_ROOM_ID_LEN: usize = 64;
    /// Longest app-level member id, in bytes (user ids, phone numbers, emails).
    pub const MAX_MEMBER_ID_LEN: usize = 256;
    /// Most members in one room. A removal costs every remaining member one
    /// key share per other member (quadratic in total), so rooms far beyond
    /// a few thousand should use a tree-based protocol (MLS) instead.
    pub const MAX_MEMBERS: usize = 4096;
    /// Largest plaintext of one message (16 MiB). Larger content belongs in
    /// an attachment, not a chat message.
    pub const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;
    /// Most ratchet steps one received message may skip ahead. Bounds the
    /// CPU an attacker can make a receiver spend on one message (2,000
    /// HMAC pairs, well under a millisecond) while tolerating realistic loss.
    pub const MAX_FORWARD_JUMP: u32 = 2000;
    /// Most skipped message keys kept per sender key (oldest evicted first):
    /// 2,000 keys of 44 bytes plus bookkeeping, under 128 KiB per sender.
    pub const MAX_SKIPPED_KEYS: usize = 2000;
    /// Smallest padded plaintext (bytes): short messages ("ok", "yes") all
    /// look alike on the wire.
    pub const MIN_PADDED_LEN: usize = 32;
    /// Retired sender keys kept per member, so messages sent just before a
    /// rotation still decrypt. Two covers a rotation racing a removal.
    pub const MAX_RETIRED_KEYS: usize = 2;
    /// My own retired sender key ids remembered to recognise reflected
    /// messages (16 rotations back; older keys' messages are `TooOld` anyway).
    pub const OWN_KEY_HISTORY: usize = 16;
    /// Largest pixel size of one cell of a PNG key image: 64 px cells make a
    /// 1216 x 640 image, sharper than any phone screen needs, and bound the
    /// memory a render can take (about 2.3 MiB of pixels).
    pub const MAX_PNG_SCALE: u32 = 64;
    /// Largest width or height, in pixels, of a PNG that the key image
    /// decoder accepts: bounds the memory an untrusted PNG can make it use
    /// (64 MiB of RGBA pixels) while allowing far larger copies than any
    /// screen shot of the picture.
    pub const MAX_PNG_DECODE_SIDE: u32 = 4096;
    /// Most parents one membership operation may name. An operation names
    /// the heads of its author's graph: more than 32 heads means more than
    /// 32 members acted at once without seeing each other. An author with
    /// more heads names the 32 smallest ids; the next operation merges the
    /// rest. Bounds an operation to about 1.7 KiB and the work to check it.
    pub const MAX_OP_PARENTS: usize = 32;
    /// Most membership operations held while their parents are missing
    /// (about 450 KiB at the largest operation size). Enough to absorb a
    /// burst delivered out of order; past it new out-of-order operations are
    /// refused with `LimitExceeded` (retry once the parents arrived).
    pub const MAX_PENDING_OPS: usize = 256;
    /// Most operations in one membership log (applied or in a welcome).
    /// Bounds the work of verifying a welcome (one signature per operation:
    /// about 3 s at the limit) and its size (about 110 MiB at the largest
    /// operation size, a few MiB in practice); a room with more churn must
    /// be recreated.
    pub const MAX_LOG_OPS: usize = 65_536;
    /// Longest record key (the part of a record's name after kind and
    /// room), in bytes: a member id ([`MAX_MEMBER_ID_LEN`], 256) plus 64
    /// bytes for a sender-key id or a suffix the room may add. Bounds every
    /// record header and associated data.
    pub const MAX_RECORD_KEY_LEN: usize = MAX_MEMBER_ID_LEN + 64;
    /// Largest record plaintext (16 MiB). The largest record a room makes is
    /// its core or membership log at [`MAX_MEMBERS`] members with X-Wing
    /// share keys (about 1.3 KB each, ~5.5 MB); this bounds what one stored
    /// blob can make the loader allocate and decrypt.
    pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;
    /// How old a key request may be when its owner answers it (one day):
    /// a request waits at the relay while the owner's phone is off, and one
    /// day covers a night offline. An older request is refused
    /// (`KeyRequestError::Expired`): it is more likely a replay than a need,
    /// and a requester still missing the key sends a new one.
    pub const KEY_REQUEST_MAX_AGE_SECS: u64 = 24 * 3600;
    /// How far a key request's time may be ahead of the owner's clock (five
    /// minutes): phone clocks drift by seconds to minutes; further ahead is
    /// a wrong clock or a request made to outlive the age limit
    /// (`KeyRequestError::FromTheFuture`).
    pub const KEY_REQUEST_MAX_SKEW_SECS: u64 = 5 * 60;
    /// At most one re-share per requester per minute: a share reaches the
    /// requester in seconds, so a second request within a minute is a
    /// duplicate, a loop or a replay, and each answer costs an HPKE seal
    /// (an X-Wing encapsulation) and a 1.3 KB share to upload.
    pub const KEY_REQUEST_MIN_INTERVAL_SECS: u64 = 60;
    /// The window of the room-wide bound on re-shares
    /// ([`KEY_REQUEST_ROOM_BURST`]): one minute.
    pub const KEY_REQUEST_ROOM_WINDOW_SECS: u64 = 60;
    /// At most 32 re-shares per [`KEY_REQUEST_ROOM_WINDOW_SECS`] for the
    /// whole room: bounds what a flood of requests (every member at once, or
    /// a relay replaying captured requests) can cost one device to a few
    /// milliseconds of HPKE work and about 40 KB of upload per minute, while
    /// 32 members who all lost my key still recover within a minute (a
    /// larger room within a few). Also bounds the limiter's memory: it
    /// remembers at most this many answers.
    pub const KEY_REQUEST_ROOM_BURST: usize = 32;
    /// Longest encoded key request: version, type, room id (1 + 64),
    /// requester and owner (each 2 + 256 + 32), epoch, key id, time and
    /// signature.
    pub const MAX_KEY_REQUEST_LEN: usize =
        1 + 1 + 1 + MAX_ROOM_ID_LEN + 2 * (2 + MAX_MEMBER_ID_LEN + 32) + 4 + 16 + 8 + 64;
    /// Highest QR version of the scannable payload's QR code: version 5 (37 x
    /// 37 modules) scans reliably from a phone screen at arm's length; the
    /// 66-byte payload fits it at error-correction level M (84 bytes).
    pub const MAX_QR_VERSION: i16 = 5;

    /// Smallest attachment chunk (plaintext bytes per chunk, 1 KiB): below
    /// it the 16-byte tag per chunk costs more than 1.6% and the 32-bit
    /// chunk counter would limit files to a few TiB.
    pub const MIN_ATTACHMENT_CHUNK_SIZE: u32 = 1024;
    /// Largest attachment chunk (1 MiB): a decryptor holds one chunk in
    /// memory, so this bounds what an untrusted header can make it allocate.
    pub const MAX_ATTACHMENT_CHUNK_SIZE: u32 = 1024 * 1024;
    /// Largest attachment (1 TiB of content). With the smallest chunk this is
    /// 2^30 chunks plus Padmé padding (under 12%), so the 32-bit STREAM
    /// counter never wraps; far beyond any file a chat sends.
    pub const MAX_ATTACHMENT_SIZE: u64 = 1 << 40;
    /// Smallest padded attachment (1 KiB): all tiny files (an empty file, a
    /// one-line note) look alike to the blob store.
    pub const MIN_ATTACHMENT_PADDED_LEN: u64 = 1024;
    /// Longest content type of an attachment pointer, in bytes (RFC 6838
    /// allows 127 characters for each of type and subtype; real ones are
    /// under 100 in total).
    pub const MAX_CONTENT_TYPE_LEN: usize = 127;
    /// Largest thumbnail carried inside a pointer (32 KiB): enough for a
    /// small JPEG or WebP preview, small enough that an album of
    /// [`MAX_ALBUM_LEN`] pointers stays a chat message, not a file.
    pub const MAX_THUMBNAIL_LEN: usize = 32 * 1024;
    /// Longest blob locator (an app-defined URL or blob id) in a pointer.
    pub const MAX_LOCATOR_LEN: usize = 1024;
    /// Most attachments in one message (an album): WhatsApp and Signal allow
    /// 30 to 32 items per album.
    pub const MAX_ALBUM_LEN: usize = 32;
    /// Longest text of one message content, in bytes (64 KiB, about the
    /// 65,536 characters WhatsApp allows).
    pub const MAX_TEXT_LEN: usize = 64 * 1024;
    /// Longest link-preview URL, in bytes (2,048: the de facto browser and
    /// CDN limit).
    pub const MAX_URL_LEN: usize = 2048;
    /// Longest link-preview title, in bytes (Open Graph titles are one line).
    pub const MAX_PREVIEW_TITLE_LEN: usize = 512;
    /// Longest link-preview description, in bytes (a few sentences).
    pub const MAX_PREVIEW_DESCRIPTION_LEN: usize = 2048;
}
