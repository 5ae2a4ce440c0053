//! Encrypted attachments: a key-committing, chunked, streaming AEAD.
//!
//! A file (or any [`Read`]) is encrypted under a fresh random 32-byte
//! [`AttachmentKey`] into a ciphertext blob that any blob store (the relay's
//! media server) may keep: it sees a padded size and nothing else. The key,
//! the exact size and the chunk size travel in an [`AttachmentPointer`],
//! inside an end-to-end encrypted room message (see [`Content`](crate::Content)).
//!
//! # Construction
//!
//! ```text
//! file key K (32 random bytes)
//!   HKDF-SHA256(salt = none, ikm = K, info = "secret-chat/v2/attachment/key",        L = 39)
//!       = aes_key (32) || nonce_prefix (7)
//!   HKDF-SHA256(salt = none, ikm = K, info = "secret-chat/v2/attachment/commitment", L = 32)
//!       = commitment (32)
//!
//! blob = header || chunk_0 || chunk_1 || ... || chunk_{n-1}
//!
//! header (38 bytes, in the clear, the associated data of every chunk):
//!   +------+-------+----------------+-----------------+
//!   | 0x01 | 0x01  | chunk_size u32 | commitment (32) |
//!   +------+-------+----------------+-----------------+
//!    version suite
//!
//! chunk_i = AES-256-GCM(aes_key,
//!                       nonce = nonce_prefix || u32_be(i) || u8(i == n - 1),
//!                       aad   = header,
//!                       p_i) || tag (16)
//! ```
//!
//! The plaintext `p_0 || ... || p_{n-1}` is the file followed by zero bytes
//! up to its Padmé length ([`padded_size`], at least
//! [`MIN_ATTACHMENT_PADDED_LEN`]); every `p_i` but the last holds exactly
//! `chunk_size` bytes, the last 1 to `chunk_size`. The nonce is STREAM
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015) as implemented by the
//! RustCrypto `aead-stream` crate (`StreamBE32`): a chunk moved to another
//! position, a chunk from another file, and a non-final chunk presented as
//! final all fail their tag.
//!
//! # Checks, in order
//!
//! 1. header: version, suite, chunk size well-formed ([`AttachmentError::Malformed`]);
//! 2. the commitment in the header equals the one derived from the pointer's
//!    key, compared in constant time, before any chunk is touched
//!    ([`AttachmentError::WrongKey`]): AES-GCM alone is not key-committing,
//!    so without this one blob could decrypt to two different files under
//!    two keys;
//! 3. the header's chunk size equals the pointer's ([`AttachmentError::HeaderMismatch`]);
//! 4. each chunk, at the length the pointer's size implies: input ends early
//!    ([`AttachmentError::Truncated`]), tag fails ([`AttachmentError::ChunkRejected`]),
//!    padding not zero ([`AttachmentError::BadPadding`]); only then is its
//!    content written;
//! 5. nothing after the last chunk ([`AttachmentError::Extended`]).
//!
//! # Memory
//!
//! Encryption and decryption hold one chunk (plus its tag and one byte) at a
//! time, whatever the size of the file.
//!
//! ```
//! use secret_chat::attachment;
//! let photo = vec![7u8; 200_000];
//! let mut blob = Vec::new();
//! let pointer = attachment::encrypt(&photo[..], &mut blob, "image/png").unwrap();
//! // upload `blob` anywhere; send `pointer.to_bytes()` inside a room message.
//! let mut back = Vec::new();
//! attachment::decrypt(&pointer, &blob[..], &mut back).unwrap();
//! assert_eq!(back, photo);
//! ```

use crate::error::{AttachmentError, DecodeError};
use crate::labels;
use crate::limits::{
    MAX_ATTACHMENT_CHUNK_SIZE, MAX_ATTACHMENT_SIZE, MAX_CONTENT_TYPE_LEN, MAX_LOCATOR_LEN,
    MAX_THUMBNAIL_LEN, MIN_ATTACHMENT_CHUNK_SIZE, MIN_ATTACHMENT_PADDED_LEN,
};
use crate::wire::{Reader, Writer};
use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

/// Chunk size of [`encrypt`]: 64 KiB, Signal's smallest incremental-MAC
/// chunk; a video player seeks in 64 KiB steps and the tag costs 0.02%.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Length of the ciphertext header.
pub const HEADER_LEN: usize = 38;
/// Length of the AES-GCM tag after every chunk.
pub const TAG_LEN: usize = 16;
/// Length of a file key.
pub const KEY_LEN: usize = 32;
const COMMITMENT_LEN: usize = 32;
const NONCE_PREFIX_LEN: usize = 7;

type Stream = StreamBE32<Aes256Gcm>;

/// The random per-file key (32 bytes). Boxed, zeroized on drop, compared in
/// constant time, never printed.
///
/// ```
/// use secret_chat::attachment::AttachmentKey;
/// let key = AttachmentKey::from_bytes([1; 32]);
/// assert_eq!(format!("{key:?}"), "AttachmentKey(..)");
/// ```
pub struct AttachmentKey(Box<[u8; KEY_LEN]>);

impl AttachmentKey {
    /// Wraps key bytes (for tests and vectors; real keys come from
    /// [`encrypt`]). The caller should zeroize its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Box::new(bytes))
    }

    /// A fresh key from `rng` (draws 32 bytes).
    ///
    /// ```
    /// use secret_chat::attachment::AttachmentKey;
    /// let mut rng = secret_chat::rand_core::UnwrapErr(getrandom::SysRng);
    /// assert_ne!(AttachmentKey::generate_with_rng(&mut rng), AttachmentKey::generate_with_rng(&mut rng));
    /// ```
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self(Box::new([0; KEY_LEN]));
        rng.fill_bytes(key.0.as_mut_slice());
        key
    }

    /// The key bytes.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(*self.0)
    }

    /// The 32-byte key commitment this key's ciphertext headers carry.
    pub fn commitment(&self) -> [u8; 32] {
        let mut c = [0u8; COMMITMENT_LEN];
        // Infallible: 32 bytes is far below HKDF-SHA256's 8,160-byte bound.
        let _ = Hkdf::<Sha256>::new(None, self.0.as_slice())
            .expand(labels::ATTACHMENT_COMMITMENT, &mut c);
        c
    }

    /// The STREAM primitive (AES-256-GCM key and nonce prefix) of this key.
    fn stream(&self) -> Stream {
        let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_PREFIX_LEN]);
        // Infallible: 39 bytes is far below HKDF-SHA256's 8,160-byte bound.
        let _ = Hkdf::<Sha256>::new(None, self.0.as_slice())
            .expand(labels::ATTACHMENT_KEY, okm.as_mut_slice());
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        key.copy_from_slice(&okm[..KEY_LEN]);
        prefix.copy_from_slice(&okm[KEY_LEN..]);
        let aead = Aes256Gcm::new(&(*key).into());
        Stream::from_aead(aead, &prefix.into())
    }
}

impl Drop for AttachmentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttachmentKey(..)")
    }
}

impl ConstantTimeEq for AttachmentKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for AttachmentKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for AttachmentKey {}

/// The Padmé length (Nikitin et al., 2019) of an attachment of `size`
/// bytes, at least [`MIN_ATTACHMENT_PADDED_LEN`]: the blob store learns only
/// a bucket, at most about 12% above the real size.
///
/// ```
/// use secret_chat::attachment::padded_size;
/// assert_eq!(padded_size(0), 1024);
/// assert_eq!(padded_size(100 << 20), 100 << 20);
/// assert_eq!(padded_size((100 << 20) + 1), 102 << 20);
/// ```
pub fn padded_size(size: u64) -> u64 {
    let l = size.max(MIN_ATTACHMENT_PADDED_LEN);
    let e = u64::BITS - 1 - l.leading_zeros(); // floor(log2 l), l >= 1024
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let mask = (1u64 << (e - s)) - 1;
    l.saturating_add(mask) & !mask
}

fn chunk_size_ok(chunk_size: u32) -> bool {
    chunk_size.is_power_of_two()
        && (MIN_ATTACHMENT_CHUNK_SIZE..=MAX_ATTACHMENT_CHUNK_SIZE).contains(&chunk_size)
}

fn content_type_ok(t: &str) -> bool {
    t.len() <= MAX_CONTENT_TYPE_LEN && t.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Where every chunk lies, from a pointer's size and chunk size.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    size: u64,
    padded: u64,
    chunk: u64,
    chunks: u64,
}

impl Geometry {
    fn new(size: u64, chunk_size: u32) -> Self {
        let padded = padded_size(size);
        let chunk = u64::from(chunk_size);
        Self {
            size,
            padded,
            chunk,
            chunks: padded.div_ceil(chunk),
        }
    }

    /// Plaintext bytes (content and padding) in chunk `i < chunks`.
    fn plain_len(&self, i: u64) -> u64 {
        self.padded
            .saturating_sub(i.saturating_mul(self.chunk))
            .min(self.chunk)
    }

    /// Content bytes (no padding) in chunk `i < chunks`.
    fn content_len(&self, i: u64) -> u64 {
        self.size
            .saturating_sub(i.saturating_mul(self.chunk))
            .min(self.plain_len(i))
    }

    fn ciphertext_len(&self) -> u64 {
        HEADER_LEN as u64 + self.padded + self.chunks * TAG_LEN as u64
    }
}

fn encode_header(chunk_size: u32, commitment: &[u8; 32]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = labels::ATTACHMENT_VERSION;
    h[1] = labels::ATTACHMENT_SUITE_AES256GCM_STREAM;
    h[2..6].copy_from_slice(&chunk_size.to_be_bytes());
    h[6..].copy_from_slice(commitment);
    h
}

/// Parses a ciphertext header: `(chunk_size, commitment)`.
fn parse_header(bytes: &[u8]) -> Result<(u32, [u8; 32]), DecodeError> {
    let mut r = Reader::new(bytes);
    r.version(labels::ATTACHMENT_VERSION)?;
    let suite = r.u8()?;
    if suite != labels::ATTACHMENT_SUITE_AES256GCM_STREAM {
        return Err(DecodeError::UnsupportedSuite(suite));
    }
    let chunk_size = r.u32()?;
    if !chunk_size_ok(chunk_size) {
        return Err(DecodeError::InvalidValue);
    }
    let commitment = r.array::<COMMITMENT_LEN>()?;
    r.finish()?;
    Ok((chunk_size, commitment))
}

/// Everything a receiver needs to fetch and decrypt one attachment, meant to
/// travel inside an end-to-end encrypted room message: the file key, the
/// exact size, the chunk size, a content type, an optional app-defined
/// locator (where the blob is stored) and an optional thumbnail.
///
/// Holds the key: zeroized on drop, `Debug` prints no key, and
/// [`to_bytes`](Self::to_bytes) returns zeroizing bytes.
///
/// # Layout (version 1)
///
/// ```text
/// +------+---------+----------+----------------+--------+--------------+---------+---------+---------+-----------+
/// | 0x01 | key     | size u64 | chunk_size u32 | ct_len | content_type | loc_len | locator | thb_len | thumbnail |
/// |  1   |   32    |    8     |       4        | u8     |   0..=127    | u16     | 0..=1024| u16     | 0..=32768 |
/// +------+---------+----------+----------------+--------+--------------+---------+---------+---------+-----------+
/// ```
///
/// `size <= MAX_ATTACHMENT_SIZE`; `chunk_size` a power of two from
/// [`MIN_ATTACHMENT_CHUNK_SIZE`] to [`MAX_ATTACHMENT_CHUNK_SIZE`];
/// `content_type` visible ASCII (0x21 to 0x7e); an empty locator or
/// thumbnail means none. No trailing bytes.
///
/// ```
/// use secret_chat::attachment::{self, AttachmentPointer};
/// let mut blob = Vec::new();
/// let pointer = attachment::encrypt(&b"hello"[..], &mut blob, "text/plain")
///     .unwrap()
///     .with_locator(b"blob/42")
///     .unwrap();
/// let bytes = pointer.to_bytes();
/// let received = AttachmentPointer::from_bytes(&bytes).unwrap();
/// assert_eq!(received, pointer);
/// assert_eq!(received.size(), 5);
/// assert_eq!(received.locator(), Some(&b"blob/42"[..]));
/// ```
#[derive(PartialEq, Eq)]
pub struct AttachmentPointer {
    key: AttachmentKey,
    size: u64,
    chunk_size: u32,
    content_type: String,
    locator: Vec<u8>,
    thumbnail: Vec<u8>,
}

impl AttachmentPointer {
    /// Builds a pointer from its parts (for an app that stored them apart;
    /// [`encrypt`] returns a complete one). Checks every limit.
    ///
    /// # Errors
    /// [`AttachmentError::TooLarge`] above [`MAX_ATTACHMENT_SIZE`],
    /// [`AttachmentError::LimitExceeded`] for a chunk size that is not a
    /// power of two in range, [`AttachmentError::InvalidContentType`].
    ///
    /// ```
    /// use secret_chat::{AttachmentError, attachment::{AttachmentKey, AttachmentPointer}};
    /// let key = || AttachmentKey::from_bytes([1; 32]);
    /// let p = AttachmentPointer::new(key(), 1_000, 65_536, "image/png")?;
    /// assert_eq!((p.size(), p.chunk_count()), (1_000, 1));
    /// assert!(matches!(AttachmentPointer::new(key(), 1_000, 1_000, "image/png"), Err(AttachmentError::LimitExceeded)));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn new(
        key: AttachmentKey,
        size: u64,
        chunk_size: u32,
        content_type: &str,
    ) -> Result<Self, AttachmentError> {
        if size > MAX_ATTACHMENT_SIZE {
            return Err(AttachmentError::TooLarge);
        }
        if !chunk_size_ok(chunk_size) {
            return Err(AttachmentError::LimitExceeded);
        }
        if !content_type_ok(content_type) {
            return Err(AttachmentError::InvalidContentType);
        }
        Ok(Self {
            key,
            size,
            chunk_size,
            content_type: content_type.into(),
            locator: Vec::new(),
            thumbnail: Vec::new(),
        })
    }

    /// Sets where the blob is stored (an app-defined URL or id; at most
    /// [`MAX_LOCATOR_LEN`] bytes; empty means none).
    ///
    /// ```
    /// use secret_chat::attachment;
    /// let mut blob = Vec::new();
    /// let pointer = attachment::encrypt(&b"report"[..], &mut blob, "application/pdf")?;
    /// // Upload `blob` to the app's file server, then record where it went:
    /// let pointer = pointer.with_locator(b"https://files.example/7f3a")?;
    /// assert_eq!(pointer.locator(), Some(&b"https://files.example/7f3a"[..]));
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn with_locator(mut self, locator: &[u8]) -> Result<Self, AttachmentError> {
        if locator.len() > MAX_LOCATOR_LEN {
            return Err(AttachmentError::LimitExceeded);
        }
        self.locator = locator.to_vec();
        Ok(self)
    }

    /// Sets a thumbnail (at most [`MAX_THUMBNAIL_LEN`] bytes; empty means
    /// none), shown before the blob is fetched.
    ///
    /// ```
    /// use secret_chat::attachment::{AttachmentKey, AttachmentPointer};
    /// let p = AttachmentPointer::new(AttachmentKey::from_bytes([1; 32]), 10, 65536, "image/jpeg")
    ///     .unwrap()
    ///     .with_thumbnail(&[0xff, 0xd8])
    ///     .unwrap();
    /// assert_eq!(p.thumbnail(), Some(&[0xff, 0xd8][..]));
    /// assert!(p.with_thumbnail(&vec![0; 40_000]).is_err());
    /// ```
    pub fn with_thumbnail(mut self, thumbnail: &[u8]) -> Result<Self, AttachmentError> {
        if thumbnail.len() > MAX_THUMBNAIL_LEN {
            return Err(AttachmentError::LimitExceeded);
        }
        self.thumbnail = thumbnail.to_vec();
        Ok(self)
    }

    /// The file key.
    pub fn key(&self) -> &AttachmentKey {
        &self.key
    }

    /// Exact size of the file, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The content type (e.g. `image/png`; empty if unknown).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Where the blob is stored, if the sender said.
    pub fn locator(&self) -> Option<&[u8]> {
        (!self.locator.is_empty()).then_some(self.locator.as_slice())
    }

    /// The thumbnail, if any.
    pub fn thumbnail(&self) -> Option<&[u8]> {
        (!self.thumbnail.is_empty()).then_some(self.thumbnail.as_slice())
    }

    /// Length of the ciphertext blob (header, padded content, one tag per chunk).
    pub fn ciphertext_len(&self) -> u64 {
        self.geometry().ciphertext_len()
    }

    /// Number of chunks of the blob.
    pub fn chunk_count(&self) -> u64 {
        self.geometry().chunks
    }

    fn geometry(&self) -> Geometry {
        Geometry::new(self.size, self.chunk_size)
    }

    /// The encoding (see the type docs); zeroized when dropped. It holds the
    /// file key: send it only inside an encrypted message (for instance in
    /// a [`Content`](crate::Content)).
    ///
    /// ```
    /// use secret_chat::attachment::{self, AttachmentPointer};
    /// let pointer = attachment::encrypt(&b"hi"[..], &mut Vec::new(), "text/plain")?;
    /// assert_eq!(AttachmentPointer::from_bytes(&pointer.to_bytes())?, pointer);
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::secret(
            1 + KEY_LEN
                + 8
                + 4
                + 1
                + self.content_type.len()
                + 4
                + self.locator.len()
                + self.thumbnail.len(),
        );
        self.encode(&mut w);
        w.into_zeroizing()
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(labels::ATTACHMENT_VERSION)
            .bytes(self.key.0.as_slice())
            .u64(self.size)
            .u32(self.chunk_size)
            .u8(self.content_type.len() as u8)
            .bytes(self.content_type.as_bytes())
            .vec16(&self.locator)
            .vec16(&self.thumbnail);
    }

    /// Parses a pointer; total and strict (one encoding per pointer).
    ///
    /// # Errors
    /// [`AttachmentError::Malformed`] for a wrong version, a truncated or
    /// over-long encoding, or a size, chunk size or content type out of
    /// range.
    ///
    /// ```
    /// use secret_chat::{AttachmentError, attachment::{self, AttachmentPointer}};
    /// let pointer = attachment::encrypt(&b"hi"[..], &mut Vec::new(), "text/plain")?;
    /// let mut bytes = pointer.to_bytes().to_vec();
    /// bytes.push(0);
    /// assert!(matches!(AttachmentPointer::from_bytes(&bytes), Err(AttachmentError::Malformed(_))));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut r = Reader::new(bytes);
        let p = Self::decode(&mut r)?;
        r.finish()?;
        Ok(p)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, AttachmentError> {
        r.version(labels::ATTACHMENT_VERSION)?;
        let key = AttachmentKey::from_bytes(r.array()?);
        let size = r.u64()?;
        if size > MAX_ATTACHMENT_SIZE {
            return Err(DecodeError::LengthLimit.into());
        }
        let chunk_size = r.u32()?;
        if !chunk_size_ok(chunk_size) {
            return Err(DecodeError::InvalidValue.into());
        }
        let ct_len = usize::from(r.u8()?);
        if ct_len > MAX_CONTENT_TYPE_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let ct = r.bytes(ct_len)?;
        let content_type = match core::str::from_utf8(ct) {
            Ok(t) if content_type_ok(t) => String::from(t),
            _ => return Err(AttachmentError::InvalidContentType),
        };
        let locator = r.vec16(MAX_LOCATOR_LEN)?.to_vec();
        let thumbnail = r.vec16(MAX_THUMBNAIL_LEN)?.to_vec();
        Ok(Self {
            key,
            size,
            chunk_size,
            content_type,
            locator,
            thumbnail,
        })
    }
}

impl fmt::Debug for AttachmentPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentPointer")
            .field("size", &self.size)
            .field("chunk_size", &self.chunk_size)
            .field("content_type", &self.content_type)
            .field("locator_len", &self.locator.len())
            .field("thumbnail_len", &self.thumbnail.len())
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<usize, AttachmentError> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k.min(rest.len()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Reads exactly `buf.len()` bytes; an early end is [`AttachmentError::Truncated`].
fn read_exact<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), AttachmentError> {
    if read_full(r, buf)? == buf.len() {
        Ok(())
    } else {
        Err(AttachmentError::Truncated)
    }
}

/// Encrypts everything `reader` yields into `writer` under a fresh key from
/// the OS RNG, in chunks of [`DEFAULT_CHUNK_SIZE`]; returns the pointer.
///
/// Holds one chunk in memory. On error the bytes already written are
/// useless and must be discarded.
///
/// ```
/// use secret_chat::attachment;
/// let mut blob = Vec::new();
/// let pointer = attachment::encrypt(&[1u8, 2, 3][..], &mut blob, "application/octet-stream").unwrap();
/// assert_eq!(blob.len() as u64, pointer.ciphertext_len());
/// ```
pub fn encrypt<R: Read, W: Write>(
    reader: R,
    writer: W,
    content_type: &str,
) -> Result<AttachmentPointer, AttachmentError> {
    encrypt_with_rng(
        reader,
        writer,
        content_type,
        DEFAULT_CHUNK_SIZE,
        &mut crate::rng::os_rng(),
    )
}

/// [`encrypt`] with a chosen chunk size (a power of two from
/// [`MIN_ATTACHMENT_CHUNK_SIZE`] to [`MAX_ATTACHMENT_CHUNK_SIZE`]) and the
/// file key drawn from `rng` (32 bytes).
///
/// ```
/// use secret_chat::attachment::{self, encrypt_with_rng};
/// use secret_chat::testing::VectorRng;
/// let mut blob = Vec::new();
/// let pointer = encrypt_with_rng(
///     &[9u8; 5000][..],
///     &mut blob,
///     "audio/ogg",
///     4096,
///     &mut VectorRng::new(b"seed"),
/// )
/// .unwrap();
/// assert_eq!((pointer.size(), pointer.chunk_count()), (5000, 2));
/// ```
pub fn encrypt_with_rng<R: Read, W: Write, G: CryptoRng + ?Sized>(
    mut reader: R,
    mut writer: W,
    content_type: &str,
    chunk_size: u32,
    rng: &mut G,
) -> Result<AttachmentPointer, AttachmentError> {
    if !chunk_size_ok(chunk_size) {
        return Err(AttachmentError::LimitExceeded);
    }
    if !content_type_ok(content_type) {
        return Err(AttachmentError::InvalidContentType);
    }
    let key = AttachmentKey::generate_with_rng(rng);
    let stream = key.stream();
    let header = encode_header(chunk_size, &key.commitment());
    writer.write_all(&header)?;

    let chunk = chunk_size as usize;
    let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(chunk + TAG_LEN));
    let mut carry: Option<u8> = None;
    let mut total: u64 = 0;
    let mut index: u32 = 0;
    // Content chunks: a full chunk is sealed as non-final only once one more
    // byte has been read (carried to the next chunk).
    loop {
        buf.resize(chunk, 0);
        let mut filled = 0;
        if let (Some(b), Some(first)) = (carry.take(), buf.first_mut()) {
            *first = b;
            filled = 1;
        }
        let n = read_full(&mut reader, buf.get_mut(filled..).unwrap_or_default())?;
        filled += n;
        total = total.saturating_add(n as u64);
        let mut end = filled < chunk;
        if !end {
            let mut one = [0u8; 1];
            if read_full(&mut reader, &mut one)? == 1 {
                carry = Some(one[0]);
                total = total.saturating_add(1);
            } else {
                end = true;
            }
        }
        if total > MAX_ATTACHMENT_SIZE {
            return Err(AttachmentError::TooLarge);
        }
        if end {
            buf.truncate(filled);
            break;
        }
        seal_chunk(&stream, &header, index, false, &mut buf)?;
        writer.write_all(&buf)?;
        index = index.checked_add(1).ok_or(AttachmentError::TooLarge)?;
    }
    // The tail: the last content bytes, then zero padding, the final chunk flagged.
    let g = Geometry::new(total, chunk_size);
    let mut left = g.padded.saturating_sub(u64::from(index) * g.chunk);
    loop {
        let this = left.min(g.chunk);
        buf.resize(this as usize, 0);
        let last = left == this;
        seal_chunk(&stream, &header, index, last, &mut buf)?;
        writer.write_all(&buf)?;
        if last {
            break;
        }
        left -= this;
        index = index.checked_add(1).ok_or(AttachmentError::TooLarge)?;
        buf.clear();
    }
    writer.flush()?;
    AttachmentPointer::new(key, total, chunk_size, content_type)
}

fn seal_chunk(
    stream: &Stream,
    header: &[u8; HEADER_LEN],
    index: u32,
    last: bool,
    buf: &mut Vec<u8>,
) -> Result<(), AttachmentError> {
    stream
        .encrypt_in_place(index, last, header, buf)
        .map_err(|_| AttachmentError::TooLarge)
}

/// Decrypts the blob `reader` yields, described by `pointer`, into `writer`;
/// returns the number of content bytes written (the pointer's size).
///
/// The header (and with it the key commitment) is checked before the first
/// chunk; each chunk is authenticated before its content is written. On
/// error, discard what was written (see [`AttachmentError`]). Holds one
/// chunk in memory.
///
/// ```
/// use secret_chat::{attachment, AttachmentError};
/// let mut blob = Vec::new();
/// let pointer = attachment::encrypt(&[5u8; 3000][..], &mut blob, "").unwrap();
/// let mut out = Vec::new();
/// assert_eq!(attachment::decrypt(&pointer, &blob[..], &mut out), Ok(3000));
/// blob.pop();
/// assert_eq!(
///     attachment::decrypt(&pointer, &blob[..], &mut Vec::new()),
///     Err(AttachmentError::Truncated)
/// );
/// ```
pub fn decrypt<R: Read, W: Write>(
    pointer: &AttachmentPointer,
    mut reader: R,
    mut writer: W,
) -> Result<u64, AttachmentError> {
    let mut header = [0u8; HEADER_LEN];
    read_exact(&mut reader, &mut header)?;
    let opener = ChunkOpener::new(pointer, &header)?;
    let g = opener.geometry;
    let mut buf: Zeroizing<Vec<u8>> =
        Zeroizing::new(Vec::with_capacity(pointer.chunk_size as usize + TAG_LEN));
    for i in 0..opener.chunk_count() {
        buf.resize(g.plain_len(u64::from(i)) as usize + TAG_LEN, 0);
        read_exact(&mut reader, &mut buf)?;
        let content = opener.open_in_place(i, &mut buf)?;
        writer.write_all(buf.get(..content).unwrap_or_default())?;
    }
    let mut one = [0u8; 1];
    if read_full(&mut reader, &mut one)? != 0 {
        return Err(AttachmentError::Extended);
    }
    writer.flush()?;
    Ok(g.size)
}

/// Random access to the chunks of one attachment (seeking in a video,
/// ranged downloads): made from the pointer and the blob's header, it
/// decrypts any chunk alone.
///
/// ```
/// use secret_chat::attachment::{self, ChunkOpener, HEADER_LEN};
/// let movie: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
/// let mut blob = Vec::new();
/// let pointer = attachment::encrypt(&movie[..], &mut blob, "video/mp4").unwrap();
/// let opener = ChunkOpener::new(&pointer, &blob[..HEADER_LEN]).unwrap();
/// let range = opener.ciphertext_range(3).unwrap();
/// let chunk = opener
///     .decrypt_chunk(3, &blob[range.start as usize..range.end as usize])
///     .unwrap();
/// let plain = opener.plaintext_range(3).unwrap();
/// assert_eq!(chunk, movie[plain.start as usize..plain.end as usize]);
/// ```
pub struct ChunkOpener {
    stream: Stream,
    header: [u8; HEADER_LEN],
    geometry: Geometry,
}

impl ChunkOpener {
    /// Checks `header` (the blob's first [`HEADER_LEN`] bytes) against the
    /// pointer: well-formed, key commitment (constant time), chunk size.
    ///
    /// # Errors
    /// [`AttachmentError::Malformed`] for a bad header,
    /// [`AttachmentError::WrongKey`] for a blob of another key,
    /// [`AttachmentError::HeaderMismatch`] for another chunk size.
    ///
    /// ```
    /// use secret_chat::{AttachmentError, attachment::{self, ChunkOpener, HEADER_LEN}};
    /// let (mut blob, mut other) = (Vec::new(), Vec::new());
    /// let pointer = attachment::encrypt(&b"one"[..], &mut blob, "text/plain")?;
    /// attachment::encrypt(&b"two"[..], &mut other, "text/plain")?;
    /// assert!(ChunkOpener::new(&pointer, &blob[..HEADER_LEN]).is_ok());
    /// assert!(matches!(ChunkOpener::new(&pointer, &other[..HEADER_LEN]), Err(AttachmentError::WrongKey)));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn new(pointer: &AttachmentPointer, header: &[u8]) -> Result<Self, AttachmentError> {
        let (chunk_size, commitment) = parse_header(header)?;
        if !bool::from(commitment.ct_eq(&pointer.key.commitment())) {
            return Err(AttachmentError::WrongKey);
        }
        if chunk_size != pointer.chunk_size {
            return Err(AttachmentError::HeaderMismatch);
        }
        Ok(Self {
            stream: pointer.key.stream(),
            header: encode_header(chunk_size, &commitment),
            geometry: pointer.geometry(),
        })
    }

    /// Number of chunks (at least 1; below 2^32 by the size limits).
    pub fn chunk_count(&self) -> u32 {
        u32::try_from(self.geometry.chunks).unwrap_or(u32::MAX)
    }

    /// Byte range of chunk `index` (with its tag) in the blob.
    pub fn ciphertext_range(&self, index: u32) -> Option<Range<u64>> {
        let i = u64::from(index);
        (i < self.geometry.chunks).then(|| {
            let start = HEADER_LEN as u64 + i * (self.geometry.chunk + TAG_LEN as u64);
            start..start + self.geometry.plain_len(i) + TAG_LEN as u64
        })
    }

    /// Range of the file's bytes that chunk `index` holds (empty for a chunk
    /// of padding only).
    pub fn plaintext_range(&self, index: u32) -> Option<Range<u64>> {
        let i = u64::from(index);
        (i < self.geometry.chunks).then(|| {
            let start = (i * self.geometry.chunk).min(self.geometry.size);
            start..start + self.geometry.content_len(i)
        })
    }

    /// Decrypts chunk `index` alone (its bytes from
    /// [`ciphertext_range`](Self::ciphertext_range)) and returns its content
    /// bytes (padding checked and removed).
    ///
    /// # Errors
    /// [`AttachmentError::ChunkOutOfRange`], [`AttachmentError::Truncated`]
    /// / [`AttachmentError::Extended`] for a chunk of the wrong length,
    /// [`AttachmentError::ChunkRejected`] if it fails authentication (a
    /// changed, moved or swapped chunk), [`AttachmentError::BadPadding`].
    ///
    /// ```
    /// use secret_chat::{AttachmentError, attachment::{self, ChunkOpener, HEADER_LEN}};
    /// let mut blob = Vec::new();
    /// let pointer = attachment::encrypt(&[7u8; 100][..], &mut blob, "audio/ogg")?;
    /// let opener = ChunkOpener::new(&pointer, &blob[..HEADER_LEN])?;
    /// let mut chunk = blob[HEADER_LEN..].to_vec(); // one chunk: all of it
    /// assert_eq!(opener.decrypt_chunk(0, &chunk)?, vec![7u8; 100]);
    /// chunk[5] ^= 1;
    /// assert!(matches!(opener.decrypt_chunk(0, &chunk), Err(AttachmentError::ChunkRejected { index: 0 })));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn decrypt_chunk(&self, index: u32, chunk: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        self.check_len(index, chunk.len())?;
        let mut buf = chunk.to_vec();
        let content = self.open_in_place(index, &mut buf)?;
        buf.truncate(content);
        Ok(buf)
    }

    /// Checks that chunk `index` exists and that `len` is its exact length.
    fn check_len(&self, index: u32, len: usize) -> Result<(), AttachmentError> {
        let g = &self.geometry;
        let i = u64::from(index);
        if i >= g.chunks {
            return Err(AttachmentError::ChunkOutOfRange);
        }
        let want = g.plain_len(i) + TAG_LEN as u64;
        match (len as u64).cmp(&want) {
            core::cmp::Ordering::Less => Err(AttachmentError::Truncated),
            core::cmp::Ordering::Greater => Err(AttachmentError::Extended),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// Opens chunk `index` in `buf` (ciphertext and tag); on success `buf`
    /// holds its plaintext and the content length is returned.
    fn open_in_place(&self, index: u32, buf: &mut Vec<u8>) -> Result<usize, AttachmentError> {
        self.check_len(index, buf.len())?;
        let g = &self.geometry;
        let i = u64::from(index);
        let last = i + 1 == g.chunks;
        if self
            .stream
            .decrypt_in_place(index, last, &self.header, buf)
            .is_err()
        {
            return Err(AttachmentError::ChunkRejected { index });
        }
        let content = g.content_len(i) as usize;
        if buf
            .get(content..)
            .unwrap_or_default()
            .iter()
            .any(|&b| b != 0)
        {
            buf.zeroize();
            return Err(AttachmentError::BadPadding);
        }
        Ok(content)
    }
}

impl fmt::Debug for ChunkOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkOpener")
            .field("size", &self.geometry.size)
            .field("chunks", &self.geometry.chunks)
            .finish_non_exhaustive()
    }
}

/// A seekable plaintext view of an attachment blob: [`Read`] + [`Seek`]
/// over the file's content, decrypting only the chunk under the cursor (a
/// video player seeking in an encrypted movie reads one chunk per seek).
///
/// Each chunk is authenticated before any of its bytes is returned; a
/// refused chunk makes `read` fail with [`ErrorKind::InvalidData`] wrapping
/// the [`AttachmentError`]. Holds one decrypted chunk.
///
/// ```
/// use secret_chat::attachment::{self, AttachmentReader};
/// use std::io::{Cursor, Read, Seek, SeekFrom};
/// let movie: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
/// let mut blob = Vec::new();
/// let pointer = attachment::encrypt(&movie[..], &mut blob, "video/mp4").unwrap();
/// let mut player = AttachmentReader::new(&pointer, Cursor::new(blob)).unwrap();
/// player.seek(SeekFrom::Start(150_000)).unwrap();
/// let mut frame = [0u8; 1000];
/// player.read_exact(&mut frame).unwrap();
/// assert_eq!(frame[..], movie[150_000..151_000]);
/// ```
pub struct AttachmentReader<R> {
    opener: ChunkOpener,
    inner: R,
    pos: u64,
    chunk: Option<(u32, Zeroizing<Vec<u8>>)>,
}

impl<R: Read + Seek> AttachmentReader<R> {
    /// Reads and checks the blob's header (from the start of `inner`)
    /// against the pointer, as [`ChunkOpener::new`] does.
    ///
    /// # Errors
    /// As [`ChunkOpener::new`], and [`AttachmentError::Io`] /
    /// [`AttachmentError::Truncated`] if the header cannot be read.
    ///
    /// ```
    /// use secret_chat::attachment::{self, AttachmentReader};
    /// use std::io::{Cursor, Read};
    /// let mut blob = Vec::new();
    /// let pointer = attachment::encrypt(&b"song"[..], &mut blob, "audio/ogg")?;
    /// let mut song = String::new();
    /// AttachmentReader::new(&pointer, Cursor::new(blob))?.read_to_string(&mut song).unwrap();
    /// assert_eq!(song, "song");
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn new(pointer: &AttachmentPointer, mut inner: R) -> Result<Self, AttachmentError> {
        inner.seek(SeekFrom::Start(0))?;
        let mut header = [0u8; HEADER_LEN];
        read_exact(&mut inner, &mut header)?;
        Ok(Self {
            opener: ChunkOpener::new(pointer, &header)?,
            inner,
            pos: 0,
            chunk: None,
        })
    }

    /// Loads (fetches and authenticates) chunk `index` unless it is loaded.
    fn load(&mut self, index: u32) -> Result<(), AttachmentError> {
        if matches!(&self.chunk, Some((i, _)) if *i == index) {
            return Ok(());
        }
        self.chunk = None;
        let range = self
            .opener
            .ciphertext_range(index)
            .ok_or(AttachmentError::ChunkOutOfRange)?;
        self.inner.seek(SeekFrom::Start(range.start))?;
        let mut buf = Zeroizing::new(vec![0u8; (range.end - range.start) as usize]);
        read_exact(&mut self.inner, &mut buf)?;
        let content = self.opener.open_in_place(index, &mut buf)?;
        buf.truncate(content);
        self.chunk = Some((index, buf));
        Ok(())
    }
}

impl<R: Read + Seek> Read for AttachmentReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let g = self.opener.geometry;
        if out.is_empty() || self.pos >= g.size {
            return Ok(0);
        }
        let index = u32::try_from(self.pos / g.chunk)
            .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, AttachmentError::TooLarge))?;
        self.load(index)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        let offset = (self.pos - u64::from(index) * g.chunk) as usize;
        let avail = match &self.chunk {
            Some((_, c)) => c.get(offset..).unwrap_or_default(),
            None => &[],
        };
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for AttachmentReader<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let size = self.opener.geometry.size;
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

impl<R> fmt::Debug for AttachmentReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentReader")
            .field("size", &self.opener.geometry.size)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;

    #[test]
    fn geometry_of_edge_sizes() {
        for (size, chunk, chunks) in [
            (0u64, 1024u32, 1u64),
            (1024, 1024, 1),
            (1025, 1024, 2),
            (100 << 20, 64 << 10, 1600),
        ] {
            let g = Geometry::new(size, chunk);
            assert_eq!(g.chunks, chunks, "{size}");
            let total: u64 = (0..g.chunks).map(|i| g.plain_len(i)).sum();
            assert_eq!(total, g.padded);
            let content: u64 = (0..g.chunks).map(|i| g.content_len(i)).sum();
            assert_eq!(content, size);
            assert!(g.plain_len(g.chunks - 1) > 0);
        }
    }

    #[test]
    fn padme_is_monotone_and_bounded() {
        let mut prev = 0;
        for size in (0..200_000u64).step_by(97).chain([MAX_ATTACHMENT_SIZE]) {
            let p = padded_size(size);
            assert!(p >= size && p >= prev);
            assert!(p <= (size.max(1024) * 112).div_ceil(100), "{size} -> {p}");
            prev = p;
        }
    }

    #[test]
    fn header_parser_is_strict() {
        let h = encode_header(4096, &[9; 32]);
        assert_eq!(parse_header(&h), Ok((4096, [9; 32])));
        let mut bad = h;
        bad[0] = 2;
        assert_eq!(parse_header(&bad), Err(DecodeError::UnsupportedVersion(2)));
        let mut bad = h;
        bad[1] = 2;
        assert_eq!(parse_header(&bad), Err(DecodeError::UnsupportedSuite(2)));
        for cs in [0u32, 512, 4095, 2 << 20] {
            let mut bad = h;
            bad[2..6].copy_from_slice(&cs.to_be_bytes());
            assert_eq!(parse_header(&bad), Err(DecodeError::InvalidValue));
        }
        assert_eq!(parse_header(&h[..37]), Err(DecodeError::Truncated));
    }

    #[test]
    fn key_debug_and_equality() {
        let a = AttachmentKey::generate_with_rng(&mut VectorRng::new(b"k"));
        let b = AttachmentKey::generate_with_rng(&mut VectorRng::new(b"k"));
        assert_eq!(a, b);
        assert_ne!(a, AttachmentKey::from_bytes([0; 32]));
        assert_ne!(
            a.commitment(),
            AttachmentKey::from_bytes([0; 32]).commitment()
        );
    }
}
