//! State at rest: encrypted export and import of the device identity and of
//! rooms (protocol v1 layout; protocol v2 keeps state as records in a store:
//! see [`record`](crate::record) and [`store`](crate::store)).
//!
//! An app keeps a 32-byte [`StorageKey`] in its OS keystore and persists
//! [`IdentityKeyPair::export`] and [`Room::export`] blobs wherever it likes;
//! [`IdentityKeyPair::import`] and [`Room::import`] give back the exact
//! state. A wrong key or any damage is an error, never a panic and never a
//! half-imported value: import builds nothing until the blob has been
//! authenticated and its whole content parsed and checked.
//!
//! # Envelope
//!
//! ```text
//!  0         1        2                14                           len-16      len
//!  +---------+--------+----------------+----------------------------+-----------+
//!  | version | kind   | nonce (12)     | AES-256-GCM ciphertext     | tag (16)  |
//!  | 0x01    | 1 or 2 | fresh, random  | of the state encoding      |           |
//!  +---------+--------+----------------+----------------------------+-----------+
//!  key = storage key, AAD = "secret-chat/v1/storage" || bytes 0..14 (the header)
//! ```
//!
//! `kind` is [`STORAGE_KIND_IDENTITY`]
//! or [`STORAGE_KIND_ROOM`]. The plaintext
//! layouts are in `docs/PROTOCOL.md`, section 7. Import checks, in order: the
//! version ([`DecodeError::UnsupportedVersion`]), the kind
//! ([`DecodeError::InvalidValue`]: unknown, or the other kind), the length
//! ([`DecodeError::Truncated`]), the tag ([`Error::StorageDecrypt`]: a wrong
//! key, or any changed or missing byte), then the plaintext
//! ([`Error::Malformed`]).
//!
//! Nonces are random: one storage key may seal up to 2^32 blobs before the
//! chance of a repeated nonce reaches 2^-32. Every intermediate plaintext
//! buffer is zeroized; the blob itself holds only ciphertext.

use crate::error::{DecodeError, Error};
use crate::identity::IdentityKeyPair;
use crate::labels::{STORAGE, STORAGE_KIND_IDENTITY, STORAGE_KIND_ROOM, STORAGE_VERSION};
use crate::room::Room;
use crate::wire::{Reader, Writer};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a [`StorageKey`].
pub const STORAGE_KEY_LEN: usize = 32;
/// Length of the envelope header: version, kind, nonce.
pub const ENVELOPE_HEADER_LEN: usize = 1 + 1 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext: header and tag.
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_HEADER_LEN + TAG_LEN;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The 32-byte AES-256-GCM key that encrypts state at rest. Keep it in the
/// OS keystore, apart from the blobs it protects.
///
/// Zeroized on drop; `Debug` prints no byte; equality is constant time.
///
/// ```
/// use secret_chat::storage::StorageKey;
/// let key = StorageKey::generate();
/// let again = StorageKey::from_bytes(*key.to_bytes());
/// assert_eq!(key, again);
/// assert_eq!(format!("{key:?}"), "StorageKey(..)");
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; STORAGE_KEY_LEN]);

impl StorageKey {
    /// Wraps key bytes (read back from the keystore). The caller should
    /// zeroize its own copy.
    ///
    /// ```
    /// use secret_chat::StorageKey;
    /// # let from_keystore = || [7u8; 32];
    /// let mut bytes = from_keystore(); // the app's OS keystore
    /// let key = StorageKey::from_bytes(bytes);
    /// secret_chat::zeroize::Zeroize::zeroize(&mut bytes);
    /// # let _ = key;
    /// ```
    pub fn from_bytes(bytes: [u8; STORAGE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's RNG: once, at first start.
    ///
    /// ```
    /// use secret_chat::StorageKey;
    /// let key = StorageKey::generate();
    /// let for_the_keystore = key.to_bytes(); // zeroized when dropped
    /// assert_eq!(StorageKey::from_bytes(*for_the_keystore), key);
    /// ```
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut crate::rng::os_rng())
    }

    /// A fresh key from `rng` (draws 32 bytes).
    ///
    /// ```
    /// use secret_chat::StorageKey;
    /// let mut rng = secret_chat::rand_core::UnwrapErr(getrandom::SysRng); // or the app's own CryptoRng
    /// assert_ne!(StorageKey::generate_with_rng(&mut rng), StorageKey::generate_with_rng(&mut rng));
    /// ```
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self([0; STORAGE_KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// The key bytes, to hand to the keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; STORAGE_KEY_LEN]> {
        Zeroizing::new(self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

impl ConstantTimeEq for StorageKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for StorageKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for StorageKey {}

/// `STORAGE || header`: the associated data of an envelope.
fn associated_data(header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(STORAGE.len() + header.len());
    aad.extend_from_slice(STORAGE);
    aad.extend_from_slice(header);
    aad
}

/// Encrypts `plaintext` into an envelope of `kind` under a fresh nonce.
fn seal<R: CryptoRng + ?Sized>(
    key: &StorageKey,
    kind: u8,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    // Exact capacity: the buffer never reallocates, so the plaintext copied
    // into it exists only here until it is encrypted in place.
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
    out.push(STORAGE_VERSION);
    out.push(kind);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (header, body) = out.split_at_mut(ENVELOPE_HEADER_LEN);
    let aad = associated_data(header);
    let cipher = Aes256Gcm::new(&key.0.into());
    match cipher.encrypt_inout_detached(&nonce.into(), &aad, body.into()) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        Err(_) => {
            // Only a plaintext over AES-GCM's 64 GiB limit; states are far smaller.
            out.zeroize();
            Err(Error::LimitExceeded)
        }
    }
}

/// Checks the header of an envelope of `kind` and decrypts it. No plaintext
/// is released unless the tag verified.
fn open(key: &StorageKey, kind: u8, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut r = Reader::new(blob);
    r.version(STORAGE_VERSION)?;
    match r.u8()? {
        k if k == kind => {}
        STORAGE_KIND_IDENTITY | STORAGE_KIND_ROOM => return Err(Error::WrongStateKind),
        _ => return Err(Error::Malformed(DecodeError::InvalidValue)),
    }
    let nonce: [u8; NONCE_LEN] = r.array()?;
    let sealed = r.rest();
    let (ciphertext, tag) = sealed
        .split_at_checked(
            sealed
                .len()
                .checked_sub(TAG_LEN)
                .ok_or(DecodeError::Truncated)?,
        )
        .ok_or(DecodeError::Truncated)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| DecodeError::Truncated)?;
    let header = blob
        .get(..ENVELOPE_HEADER_LEN)
        .ok_or(DecodeError::Truncated)?;
    let aad = associated_data(header);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let cipher = Aes256Gcm::new(&key.0.into());
    cipher
        .decrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into(), &tag.into())
        .map_err(|_| Error::StorageDecrypt)?;
    Ok(buf)
}

impl IdentityKeyPair {
    /// Encrypts this identity for storage under `key` (a fresh random nonce
    /// from the OS RNG).
    ///
    /// The plaintext is the Ed25519 seed and every share-key secret the
    /// device still holds (erased ones are gone from the export too); public
    /// halves are derived again on import. Fails only with
    /// [`Error::LimitExceeded`], which no identity reaches.
    ///
    /// ```
    /// use secret_chat::{storage::StorageKey, Error, IdentityKeyPair};
    /// let key = StorageKey::generate();
    /// let me = IdentityKeyPair::generate();
    /// let blob = me.export(&key).unwrap();
    /// let back = IdentityKeyPair::import(&blob, &key).unwrap();
    /// assert_eq!(back.public(), me.public());
    /// let wrong = StorageKey::generate();
    /// assert_eq!(IdentityKeyPair::import(&blob, &wrong).unwrap_err(), Error::StorageDecrypt);
    /// ```
    pub fn export(&self, key: &StorageKey) -> Result<Vec<u8>, Error> {
        self.export_with_rng(key, &mut crate::rng::os_rng())
    }

    /// [`export`](Self::export) drawing the 12-byte nonce from `rng`.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, StorageKey};
    /// let (key, me) = (StorageKey::generate(), IdentityKeyPair::generate());
    /// let blob = me.export_with_rng(&key, &mut secret_chat::rand_core::UnwrapErr(getrandom::SysRng))?;
    /// assert_eq!(IdentityKeyPair::import(&blob, &key)?.public(), me.public());
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn export_with_rng<R: CryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let mut w = Writer::secret(self.secret_state_len());
        self.encode_secret_state(&mut w);
        let secret = w.into_zeroizing();
        seal(key, STORAGE_KIND_IDENTITY, secret.as_slice(), rng)
    }

    /// Decrypts and rebuilds an identity exported with [`export`](Self::export).
    ///
    /// Errors: [`Error::StorageDecrypt`] for a wrong key or a damaged blob,
    /// [`Error::WrongStateKind`] for a room blob, [`Error::Malformed`] for
    /// an unknown version ([`DecodeError::UnsupportedVersion`]), an unknown
    /// kind ([`DecodeError::InvalidValue`]), a blob too short to hold a tag
    /// ([`DecodeError::Truncated`]) or a plaintext of the wrong length.
    ///
    /// ```
    /// use secret_chat::{Error, IdentityKeyPair, StorageKey};
    /// let key = StorageKey::generate(); // from the OS keystore
    /// let blob = IdentityKeyPair::generate().export(&key)?; // written at the last start
    /// let me = IdentityKeyPair::import(&blob, &key)?;
    /// let mut damaged = blob.clone();
    /// damaged[20] ^= 1;
    /// assert_eq!(IdentityKeyPair::import(&damaged, &key).err(), Some(Error::StorageDecrypt));
    /// # let _ = me;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn import(blob: &[u8], key: &StorageKey) -> Result<Self, Error> {
        let plaintext = open(key, STORAGE_KIND_IDENTITY, blob)?;
        let mut r = Reader::new(&plaintext);
        let identity = Self::decode_secret_state(&mut r)?;
        r.finish()?;
        Ok(identity)
    }
}

impl IdentityKeyPair {
    /// The identity (with its share-key secrets) as the one device-wide
    /// record of a [`SealedStore`](crate::store::SealedStore): `0x02 |
    /// Ed25519 seed (32) | share keyring`. Commit it after
    /// [`generate`](Self::generate) and after every share-key rotation
    /// ([`save`](Self::save) does it).
    ///
    /// ```
    /// use secret_chat::IdentityKeyPair;
    /// assert_eq!(IdentityKeyPair::generate().changes().unwrap().len(), 1);
    /// ```
    pub fn changes(&self) -> Result<crate::store::Changes, Error> {
        let mut w = Writer::secret(1 + self.secret_state_len());
        w.u8(crate::labels::PROTOCOL_VERSION);
        self.encode_secret_state(&mut w);
        let mut changes = crate::store::Changes::new();
        changes.put(identity_record_name()?, w.into_vec())?;
        Ok(changes)
    }

    /// Commits [`changes`](Self::changes) to `store` and returns the
    /// store's new generation.
    ///
    /// ```
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// use secret_chat::{IdentityKeyPair, StorageKey};
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let me = IdentityKeyPair::generate();
    /// me.save(&mut store).unwrap();
    /// let back = IdentityKeyPair::load(&store).unwrap().unwrap();
    /// assert_eq!(back.public(), me.public());
    /// ```
    pub fn save<S: crate::store::Store>(
        &self,
        store: &mut crate::store::SealedStore<S>,
    ) -> Result<u64, Error> {
        store.commit(&self.changes()?)
    }

    /// The identity stored in `store`, `None` if there is none yet.
    ///
    /// Errors: [`Error::StorageDecrypt`] or [`Error::StoreInconsistent`] for
    /// a damaged or swapped record, [`Error::Malformed`] for a record of
    /// another version or length, [`Error::Backend`].
    ///
    /// ```
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// use secret_chat::{IdentityKeyPair, StorageKey};
    /// let store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// assert!(IdentityKeyPair::load(&store).unwrap().is_none());
    /// ```
    pub fn load<S: crate::store::Store>(
        store: &crate::store::SealedStore<S>,
    ) -> Result<Option<Self>, Error> {
        let Some(record) = store.get(&identity_record_name()?)? else {
            return Ok(None);
        };
        let mut r = Reader::new(&record);
        r.version(crate::labels::PROTOCOL_VERSION)?;
        let identity = Self::decode_secret_state(&mut r)?;
        r.finish()?;
        Ok(Some(identity))
    }
}

fn identity_record_name() -> Result<crate::record::RecordKey, Error> {
    crate::record::RecordKey::new(crate::labels::RECORD_KIND_IDENTITY, b"", b"")
}

impl Room {
    /// Encrypts the complete state of this room for storage under `key` (a
    /// fresh random nonce from the OS RNG): members and pinned identities,
    /// epochs, my sender key and the ones I retired, every received sender
    /// key with its skipped-key store and retirement time, the rotation
    /// policy and counters. After [`import`](Self::import) the room behaves
    /// exactly as this one would have.
    ///
    /// For a backup or a move to another store: day to day, keep the room
    /// as records ([`Room::save`](Self::save), [`Room::load`](Self::load)),
    /// which write only what a call changed (a whole 1000-member room is
    /// ~1.7 MB; a received message changes ~400 bytes of records). If you
    /// keep blobs anyway, persist a new one after every call that changed
    /// the room (a decrypt moves a ratchet) and write it to a new file
    /// renamed over the old one, so a crash mid-write leaves the previous
    /// blob.
    /// Fails only with [`Error::LimitExceeded`], which no room reaches.
    ///
    /// ```
    /// use secret_chat::{storage::StorageKey, IdentityKeyPair, MemberId, Room, RoomId};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let id = RoomId::new(b"room-42").unwrap();
    /// let (mut at_alice, shares_a) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// let (at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    ///
    /// // Bob's app stops: it saves the room, and later loads it back.
    /// let key = StorageKey::generate();
    /// let blob = at_bob.export(&key).unwrap();
    /// drop(at_bob);
    /// let mut at_bob = Room::import(&blob, &key).unwrap();
    ///
    /// at_bob.receive_share(&bob, &shares_a[0].bytes).unwrap();
    /// let sent = at_alice.encrypt(&alice, b"still there?").unwrap();
    /// assert_eq!(at_bob.decrypt(&sent.message).unwrap().plaintext(), b"still there?");
    /// ```
    pub fn export(&self, key: &StorageKey) -> Result<Vec<u8>, Error> {
        self.export_with_rng(key, &mut crate::rng::os_rng())
    }

    /// [`export`](Self::export) drawing the 12-byte nonce from `rng`.
    pub fn export_with_rng<R: CryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let mut w = Writer::secret(self.state_len());
        self.encode_state(&mut w);
        let plaintext = w.into_zeroizing();
        seal(key, STORAGE_KIND_ROOM, &plaintext, rng)
    }

    /// Decrypts and rebuilds a room exported with [`export`](Self::export).
    ///
    /// Errors: [`Error::StorageDecrypt`] for a wrong key or a damaged blob;
    /// [`Error::Malformed`] for an unknown version
    /// ([`DecodeError::UnsupportedVersion`]) or an unknown kind
    /// ([`DecodeError::InvalidValue`]); [`Error::WrongStateKind`] for an
    /// identity blob; [`Error::Malformed`] for a blob too short to hold a tag
    /// ([`DecodeError::Truncated`]), or an authenticated plaintext that is
    /// not a valid room state (only a bug or a foreign writer can make one).
    ///
    /// The example on [`export`](Self::export) saves and loads a room; a
    /// blob of the other kind is named as such:
    ///
    /// ```
    /// use secret_chat::{Error, IdentityKeyPair, Room, StorageKey};
    /// let key = StorageKey::generate();
    /// let identity_blob = IdentityKeyPair::generate().export(&key)?;
    /// assert_eq!(Room::import(&identity_blob, &key).err(), Some(Error::WrongStateKind));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn import(blob: &[u8], key: &StorageKey) -> Result<Self, Error> {
        let plaintext = open(key, STORAGE_KIND_ROOM, blob)?;
        let mut r = Reader::new(&plaintext);
        let room = Self::decode_state(&mut r)?;
        r.finish()?;
        Ok(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;
    use crate::{MemberId, RoomId};

    fn two_party_room() -> (IdentityKeyPair, Room) {
        let mut rng = VectorRng::new(b"storage unit");
        let alice = IdentityKeyPair::generate_at(5, &mut rng);
        let bob = IdentityKeyPair::generate_at(5, &mut rng);
        let members = [
            (MemberId::new(b"alice").unwrap(), alice.bundle()),
            (MemberId::new(b"bob").unwrap(), bob.bundle()),
        ];
        let (room, _) = Room::create_with_rng(
            &alice,
            RoomId::new(b"r").unwrap(),
            MemberId::new(b"alice").unwrap(),
            &members,
            &crate::room::RoomOptions {
                suite: crate::Suite::XWing,
                rotation: crate::RotationPolicy::default(),
                ..Default::default()
            },
            5,
            &mut rng,
        )
        .unwrap();
        (alice, room)
    }

    #[test]
    fn state_len_is_exact() {
        let (_, room) = two_party_room();
        let mut w = Writer::default();
        room.encode_state(&mut w);
        assert_eq!(w.len(), room.state_len());
    }

    #[test]
    fn state_that_breaks_an_invariant_is_refused() {
        let (_, room) = two_party_room();
        let mut w = Writer::default();
        room.encode_state(&mut w);
        let good = w.into_vec();
        let mut r = Reader::new(&good);
        assert!(Room::decode_state(&mut r).is_ok());
        assert_eq!(r.finish(), Ok(()));
        // `me` ("alice", after the 1-byte room id "r" and the suite) renamed
        // to a non-member.
        let mut bad = good.clone();
        bad[5] = b'z';
        assert_eq!(
            Room::decode_state(&mut Reader::new(&bad)).unwrap_err(),
            DecodeError::InvalidValue
        );
        // The same bad state, authenticated: import refuses it as malformed.
        let key = StorageKey::from_bytes([3; 32]);
        let sealed = seal(&key, STORAGE_KIND_ROOM, &bad, &mut VectorRng::new(b"n")).unwrap();
        assert_eq!(
            Room::import(&sealed, &key).unwrap_err(),
            Error::Malformed(DecodeError::InvalidValue)
        );
        // Trailing byte inside the authenticated plaintext.
        let mut long = good;
        long.push(0);
        let sealed = seal(&key, STORAGE_KIND_ROOM, &long, &mut VectorRng::new(b"n")).unwrap();
        assert_eq!(
            Room::import(&sealed, &key).unwrap_err(),
            Error::Malformed(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn identity_plaintext_must_be_well_formed() {
        let key = StorageKey::from_bytes([4; 32]);
        for len in [0, 32, 33, 65] {
            let sealed = seal(
                &key,
                STORAGE_KIND_IDENTITY,
                &vec![1; len],
                &mut VectorRng::new(b"n"),
            )
            .unwrap();
            assert!(matches!(
                IdentityKeyPair::import(&sealed, &key),
                Err(Error::Malformed(_))
            ));
        }
    }
}
