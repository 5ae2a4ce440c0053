//! Record envelopes: one encrypted, authenticated piece of state at rest
//! (protocol v2).
//!
//! State is kept as many small records rather than one blob, so a call that
//! changes one member's keys rewrites one record. Each record is named by a
//! [`RecordKey`] (kind, room, key) and sealed under a key derived from the
//! app's [`StorageKey`]; the associated data binds the name and the device
//! *generation* of the batch that wrote it, so a record moved to another
//! room, kind or key, or presented as written at another generation, fails
//! its tag. [`crate::store`] keeps records in a backend and detects rollback.
//!
//! # Envelope
//!
//! ```text
//!  0         1       2                10              22                  len-16    len
//!  +---------+-------+----------------+---------------+-------------------+---------+
//!  | version | kind  | generation u64 | nonce (12)    | AES-256-GCM       | tag (16)|
//!  | 0x02    |       | big-endian     | fresh, random | ciphertext        |         |
//!  +---------+-------+----------------+---------------+-------------------+---------+
//!  key = HKDF-SHA256(ikm = storage key, salt = none, info = "secret-chat/v2/record/aead-key")
//!  aad = "secret-chat/v2/record" || version || kind || u8 len(room) || room
//!        || u16 len(key) || key || generation u64
//! ```
//!
//! [`RecordSealer::open`] checks, in order: the version
//! ([`DecodeError::UnsupportedVersion`]), the kind against the expected
//! [`RecordKey`] ([`DecodeError::InvalidValue`]: a record moved between
//! kinds), the length ([`DecodeError::Truncated`], [`DecodeError::LengthLimit`]
//! over [`MAX_RECORD_LEN`]), then the tag ([`Error::StorageDecrypt`]: a wrong
//! storage key, any changed byte, or a record moved to another room, key or
//! generation). No plaintext is released before the tag verified.

use crate::error::{DecodeError, Error};
use crate::labels::limits::{MAX_RECORD_KEY_LEN, MAX_RECORD_LEN, MAX_ROOM_ID_LEN};
use crate::labels::{
    RECORD, RECORD_AEAD_KEY, RECORD_DIGEST_KEY, RECORD_KIND_APP, RECORD_KIND_IDENTITY,
    RECORD_KIND_INBOUND_KEYS, RECORD_KIND_MEMBER_SHARE_KEY, RECORD_KIND_MEMBERSHIP_LOG,
    RECORD_KIND_META, RECORD_KIND_OUTBOUND_KEY, RECORD_KIND_ROOM_CORE, RECORD_VERSION,
};
use crate::storage::StorageKey;
use crate::wire::{Reader, Writer};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Length of the envelope header: version, kind, generation, nonce.
pub const RECORD_HEADER_LEN: usize = 1 + 1 + 8 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext: header and tag.
pub const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + TAG_LEN;
/// Length of the store digest (see [`RecordSealer::digest_element`]).
pub const DIGEST_LEN: usize = 32;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Every record kind this release reads and writes.
const KINDS: [u8; 8] = [
    RECORD_KIND_META,
    RECORD_KIND_IDENTITY,
    RECORD_KIND_ROOM_CORE,
    RECORD_KIND_MEMBERSHIP_LOG,
    RECORD_KIND_OUTBOUND_KEY,
    RECORD_KIND_INBOUND_KEYS,
    RECORD_KIND_MEMBER_SHARE_KEY,
    RECORD_KIND_APP,
];

/// Whether `kind` is a record kind of this release (the `RECORD_KIND_*`
/// constants of [`labels`](crate::labels)).
pub fn is_known_kind(kind: u8) -> bool {
    KINDS.contains(&kind)
}

/// The name of a record: its kind, the room it belongs to (empty for
/// device-wide records such as the identity) and a key within that kind and
/// room (empty for a room's single record of a kind; a member id for a
/// member's inbound keys).
///
/// Ordered by kind, then room, then key (bytewise), which is also the order
/// a store lists them in.
///
/// ```
/// use secret_chat::labels::RECORD_KIND_INBOUND_KEYS;
/// use secret_chat::record::RecordKey;
/// let k = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-42", b"bob@example.org").unwrap();
/// assert_eq!((k.kind(), k.room(), k.key()), (6, &b"room-42"[..], &b"bob@example.org"[..]));
/// assert!(RecordKey::new(99, b"room-42", b"").is_err()); // unknown kind
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    kind: u8,
    room: Vec<u8>,
    key: Vec<u8>,
}

impl RecordKey {
    /// Checks the kind (one of the `RECORD_KIND_*` constants) and the lengths
    /// (room at most [`MAX_ROOM_ID_LEN`], key at most [`MAX_RECORD_KEY_LEN`]
    /// bytes). Errors: [`Error::Malformed`] with
    /// [`DecodeError::InvalidValue`] (unknown kind) or
    /// [`DecodeError::LengthLimit`].
    ///
    /// ```
    /// use secret_chat::{labels::RECORD_KIND_ROOM_CORE, record::RecordKey};
    /// let core = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"")?;
    /// assert_eq!(core.room(), b"room-42");
    /// assert!(RecordKey::new(RECORD_KIND_ROOM_CORE, &[0; 65], b"").is_err()); // room id too long
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn new(kind: u8, room: &[u8], key: &[u8]) -> Result<Self, Error> {
        if !is_known_kind(kind) {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        if room.len() > MAX_ROOM_ID_LEN || key.len() > MAX_RECORD_KEY_LEN {
            return Err(Error::Malformed(DecodeError::LengthLimit));
        }
        Ok(Self {
            kind,
            room: room.to_vec(),
            key: key.to_vec(),
        })
    }

    /// The name of the store's meta record.
    pub(crate) fn meta() -> Self {
        Self {
            kind: RECORD_KIND_META,
            room: Vec::new(),
            key: Vec::new(),
        }
    }

    /// The smallest name of `kind` and `room` (empty key), unchecked: only
    /// a bound for a range search.
    pub(crate) fn first_of(kind: u8, room: &[u8]) -> Self {
        Self {
            kind,
            room: room.to_vec(),
            key: Vec::new(),
        }
    }

    /// The record kind.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The room id (empty for device-wide records).
    pub fn room(&self) -> &[u8] {
        &self.room
    }

    /// The key within the kind and room.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// `u8 kind || u8 len(room) || room || u16 len(key) || key`: the name as
    /// it enters associated data and the digest.
    fn encode_name(&self, w: &mut Writer) {
        w.u8(self.kind);
        // Lengths are bounded by the constructor (64 and 320).
        w.u8(u8::try_from(self.room.len()).unwrap_or(u8::MAX));
        w.bytes(&self.room);
        w.vec16(&self.key);
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordKey({}, \"{}\", \"{}\")",
            self.kind,
            crate::ids::Escaped(&self.room),
            crate::ids::Escaped(&self.key)
        )
    }
}

/// The cleartext header of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record kind (bound into the tag).
    pub kind: u8,
    /// The device generation of the batch that wrote the record (bound into
    /// the tag).
    pub generation: u64,
    /// The AES-256-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl RecordHeader {
    /// Parses the header at the start of `envelope` (the rest is not
    /// looked at). Errors: [`DecodeError::UnsupportedVersion`],
    /// [`DecodeError::InvalidValue`] for an unknown kind,
    /// [`DecodeError::Truncated`].
    ///
    /// ```
    /// use secret_chat::record::RecordHeader;
    /// assert!(RecordHeader::parse(&[2, 3, 0, 0]).is_err());
    /// ```
    pub fn parse(envelope: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(envelope);
        r.version(RECORD_VERSION)?;
        let kind = r.u8()?;
        if !is_known_kind(kind) {
            return Err(DecodeError::InvalidValue);
        }
        let generation = r.u64()?;
        let nonce = r.array()?;
        Ok(Self {
            kind,
            generation,
            nonce,
        })
    }
}

/// A record decrypted by [`RecordSealer::open`].
pub struct OpenedRecord {
    /// The generation the record was written at.
    pub generation: u64,
    /// The plaintext (zeroized on drop).
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for OpenedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedRecord")
            .field("generation", &self.generation)
            .field("len", &self.plaintext.len())
            .finish()
    }
}

/// The two keys derived from a [`StorageKey`] for records: the AES-256-GCM
/// key of envelopes and the HMAC-SHA256 key of the store digest.
///
/// Zeroized on drop (boxed, so moves never copy it); `Debug` prints no byte.
///
/// ```
/// use secret_chat::record::{RecordKey, RecordSealer};
/// use secret_chat::{labels::RECORD_KIND_ROOM_CORE, Error, StorageKey};
/// let sealer = RecordSealer::new(&StorageKey::generate());
/// let name = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"").unwrap();
/// let envelope = sealer.seal(&name, 7, b"room state").unwrap();
/// let opened = sealer.open(&name, &envelope).unwrap();
/// assert_eq!((opened.generation, &opened.plaintext[..]), (7, &b"room state"[..]));
/// let elsewhere = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-43", b"").unwrap();
/// assert_eq!(sealer.open(&elsewhere, &envelope).unwrap_err(), Error::StorageDecrypt);
/// ```
pub struct RecordSealer(Box<SealerKeys>);

// The cached cipher holds the expanded AES key: it must wipe itself.
const _: fn() = || {
    fn wipes_itself<T: zeroize::ZeroizeOnDrop>() {}
    wipes_itself::<Aes256Gcm>();
};

/// The keyed AES-256-GCM instance (zeroized on drop by `aes-gcm`'s
/// `zeroize` feature) and the digest key.
struct SealerKeys {
    aead: Aes256Gcm,
    digest: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordSealer(..)")
    }
}

impl RecordSealer {
    /// Derives the record keys from `storage_key` (two HKDF-SHA256 expands).
    pub fn new(storage_key: &StorageKey) -> Self {
        let ikm = storage_key.to_bytes();
        let hk = hkdf::Hkdf::<Sha256>::new(None, ikm.as_slice());
        let mut aead = Zeroizing::new([0u8; 32]);
        let mut digest = Zeroizing::new([0u8; 32]);
        // A 32-byte output is always valid for HKDF-SHA256.
        let _ = hk.expand(RECORD_AEAD_KEY, aead.as_mut_slice());
        let _ = hk.expand(RECORD_DIGEST_KEY, digest.as_mut_slice());
        Self(Box::new(SealerKeys {
            aead: Aes256Gcm::new(&(*aead).into()),
            digest,
        }))
    }

    /// `label || version || name || generation`: the associated data.
    fn associated_data(name: &RecordKey, generation: u64) -> Vec<u8> {
        let mut w =
            Writer::with_capacity(RECORD.len() + 1 + 4 + name.room.len() + name.key.len() + 8);
        w.bytes(RECORD).u8(RECORD_VERSION);
        name.encode_name(&mut w);
        w.u64(generation);
        w.into_vec()
    }

    /// Seals `plaintext` as record `name` written at `generation`, with a
    /// fresh nonce from the OS RNG. Errors: [`Error::LimitExceeded`] for a
    /// plaintext over [`MAX_RECORD_LEN`].
    ///
    /// Most apps use [`SealedStore`](crate::store::SealedStore), which seals
    /// and opens records itself.
    ///
    /// ```
    /// use secret_chat::{Error, StorageKey, labels::{RECORD_KIND_ROOM_CORE}, record::{RecordKey, RecordSealer}};
    /// let sealer = RecordSealer::new(&StorageKey::generate());
    /// let name = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"")?;
    /// let envelope = sealer.seal(&name, 7, b"state")?;
    /// let opened = sealer.open(&name, &envelope)?;
    /// assert_eq!((opened.generation, &opened.plaintext[..]), (7, &b"state"[..]));
    /// // Under another name (a record moved by whoever holds the file): refused.
    /// let other = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-43", b"")?;
    /// assert_eq!(sealer.open(&other, &envelope).err(), Some(Error::StorageDecrypt));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seal(
        &self,
        name: &RecordKey,
        generation: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.seal_with_rng(name, generation, plaintext, &mut crate::rng::os_rng())
    }

    /// [`seal`](Self::seal) drawing the 12-byte nonce from `rng`.
    ///
    /// ```
    /// use secret_chat::{StorageKey, labels::RECORD_KIND_IDENTITY, record::{RecordKey, RecordSealer}};
    /// let sealer = RecordSealer::new(&StorageKey::generate());
    /// let name = RecordKey::new(RECORD_KIND_IDENTITY, b"", b"")?;
    /// let envelope = sealer.seal_with_rng(&name, 1, b"me", &mut secret_chat::rand_core::UnwrapErr(getrandom::SysRng))?;
    /// assert_eq!(&sealer.open(&name, &envelope)?.plaintext[..], b"me");
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn seal_with_rng<R: CryptoRng + ?Sized>(
        &self,
        name: &RecordKey,
        generation: u64,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_RECORD_LEN {
            return Err(Error::LimitExceeded);
        }
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        // Exact capacity: the plaintext copied in exists only here until it
        // is encrypted in place (no reallocation leaves a copy behind).
        let mut out = Vec::with_capacity(RECORD_OVERHEAD + plaintext.len());
        out.push(RECORD_VERSION);
        out.push(name.kind);
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let aad = Self::associated_data(name, generation);
        let body = out.get_mut(RECORD_HEADER_LEN..).unwrap_or_default();
        match self
            .0
            .aead
            .encrypt_inout_detached(&nonce.into(), &aad, body.into())
        {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(out)
            }
            Err(_) => {
                out.zeroize();
                Err(Error::LimitExceeded)
            }
        }
    }

    /// Checks and decrypts `envelope` as record `name` (see the module docs
    /// for the order of checks and their errors).
    pub fn open(&self, name: &RecordKey, envelope: &[u8]) -> Result<OpenedRecord, Error> {
        let header = RecordHeader::parse(envelope)?;
        if header.kind != name.kind {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        let sealed = envelope.get(RECORD_HEADER_LEN..).unwrap_or_default();
        let body_len = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(DecodeError::Truncated)?;
        if body_len > MAX_RECORD_LEN {
            return Err(Error::Malformed(DecodeError::LengthLimit));
        }
        let (ciphertext, tag) = sealed.split_at(body_len);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| DecodeError::Truncated)?;
        let aad = Self::associated_data(name, header.generation);
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.0
            .aead
            .decrypt_inout_detached(
                &header.nonce.into(),
                &aad,
                buf.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| Error::StorageDecrypt)?;
        Ok(OpenedRecord {
            generation: header.generation,
            plaintext: buf,
        })
    }

    /// The digest element of record `name` written at `generation`:
    /// `HMAC-SHA256(digest key, u8 kind || u8 len(room) || room || u16
    /// len(key) || key || generation u64)`. The store digest is the XOR of
    /// the elements of every live record except the meta record.
    pub fn digest_element(&self, name: &RecordKey, generation: u64) -> [u8; DIGEST_LEN] {
        let mut w = Writer::with_capacity(4 + name.room.len() + name.key.len() + 8);
        name.encode_name(&mut w);
        w.u64(generation);
        let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.0.digest.as_slice())
        else {
            // HMAC accepts keys of any length; unreachable.
            return [0; DIGEST_LEN];
        };
        mac.update(w.as_slice());
        mac.finalize().into_bytes().into()
    }
}

/// XORs `element` into `digest`.
pub(crate) fn xor_into(digest: &mut [u8; DIGEST_LEN], element: &[u8; DIGEST_LEN]) {
    for (d, e) in digest.iter_mut().zip(element) {
        *d ^= e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;

    fn sealer() -> RecordSealer {
        RecordSealer::new(&StorageKey::from_bytes([9; 32]))
    }

    #[test]
    fn every_bit_flip_and_truncation_is_refused() {
        let s = sealer();
        let name = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"r", b"bob").unwrap();
        let env = s
            .seal_with_rng(&name, 3, b"keys of bob", &mut VectorRng::new(b"n"))
            .unwrap();
        assert_eq!(env.len(), RECORD_OVERHEAD + 11);
        for i in 0..env.len() * 8 {
            let mut bad = env.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let err = s.open(&name, &bad).unwrap_err();
            match i / 8 {
                0 => assert!(matches!(
                    err,
                    Error::Malformed(DecodeError::UnsupportedVersion(_))
                )),
                1 => assert_eq!(err, Error::Malformed(DecodeError::InvalidValue)),
                _ => assert_eq!(err, Error::StorageDecrypt),
            }
        }
        for len in 0..env.len() {
            assert!(s.open(&name, &env[..len]).is_err());
        }
        let mut long = env.clone();
        long.push(0);
        assert_eq!(s.open(&name, &long).unwrap_err(), Error::StorageDecrypt);
    }

    #[test]
    fn debug_prints_no_secret() {
        assert_eq!(format!("{:?}", sealer()), "RecordSealer(..)");
        let o = OpenedRecord {
            generation: 1,
            plaintext: Zeroizing::new(vec![7; 3]),
        };
        assert_eq!(format!("{o:?}"), "OpenedRecord { generation: 1, len: 3 }");
    }
}
