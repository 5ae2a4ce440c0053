//! Stores of records: a backend trait with two implementations, and the
//! sealed layer that encrypts records, commits every change of one call
//! atomically, and detects rollback (protocol v2 state at rest).
//!
//! - [`Store`] is a backend: named opaque blobs, read one at a time, written
//!   in atomic [`Batch`]es. [`MemoryStore`] keeps them in memory;
//!   `SqliteStore` (feature `sqlite`) in one SQLite file, one transaction per
//!   batch.
//! - [`SealedStore`] sits on a backend: it seals records
//!   ([`record`](crate::record)), turns a [`Changes`] (what one call changed)
//!   into one batch, and keeps the store's **meta record**: the device
//!   generation, the number of live records and a keyed digest of their
//!   names and generations.
//!
//! # Generations and rollback
//!
//! Every committed batch increments the device generation; every record it
//! writes, and the meta record, carry (and bind into their tags) the new
//! generation. A store file cannot be forged without the storage key, but an
//! older, self-consistent copy (a backup, a file restored by the OS, writes
//! a disk lost) can be put back; only a generation kept *outside* the file
//! tells it apart. So the app keeps the newest generation beside its
//! storage key (in the OS keystore) and passes it to
//! [`SealedStore::open`], which refuses older state with
//! [`Error::Rollback`]. The app should update the keystore after each
//! commit; updating it less often (say, when the app goes to the
//! background) saves keystore writes but leaves rollbacks to any state
//! newer than the remembered one undetected.
//!
//! Records of *different* times mixed in one file (one member's keys put
//! back from a backup), records added, removed or renamed are detected at
//! open without the app's help: the meta record's digest, the XOR of
//! `HMAC(digest key, name || generation)` over all live records, no longer
//! matches ([`Error::StoreInconsistent`]).
//!
//! # Crash safety
//!
//! A commit is one backend batch: SQLite applies it in one transaction
//! (journal mode WAL, `synchronous = FULL`), so a process killed at any point
//! leaves the previous or the new state. A caller must commit the changes of
//! a call *before* acting on its result (sending the message an encrypt
//! produced, showing the plaintext a decrypt produced): then a crash can lose
//! only work nobody saw, and never lets a message key be used twice.
//!
//! ```
//! use secret_chat::labels::RECORD_KIND_ROOM_CORE;
//! use secret_chat::record::RecordKey;
//! use secret_chat::store::{Changes, MemoryStore, SealedStore};
//! use secret_chat::{Error, StorageKey};
//! let key = StorageKey::generate(); // kept in the OS keystore
//! let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
//! let name = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"").unwrap();
//! let mut changes = Changes::new();
//! changes.put(name.clone(), b"room state".to_vec()).unwrap();
//! let generation = store.commit(&changes).unwrap(); // remember it beside the key
//! assert_eq!(&store.get(&name).unwrap().unwrap()[..], b"room state");
//!
//! // An older copy of the store is refused.
//! let old = SealedStore::open(MemoryStore::new(), &key, Some(generation));
//! assert_eq!(old.unwrap_err(), Error::Rollback { stored: 0, expected: 1 });
//! ```

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

use crate::error::{BackendError, DecodeError, Error};
use crate::labels::RECORD_KIND_META;
use crate::record::{DIGEST_LEN, RecordHeader, RecordKey, RecordSealer, xor_into};
use crate::storage::StorageKey;
use crate::wire::{Reader, Writer};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// What [`Store::scan`] calls for every record: its name and the start of
/// its blob.
pub type Visit<'a> = dyn FnMut(RecordKey, &[u8]) -> Result<(), Error> + 'a;

/// A storage backend: named opaque blobs (record envelopes), written in
/// atomic batches.
///
/// Implementations keep exactly what they are given: [`apply`](Self::apply)
/// makes all of a batch's puts and deletes visible together or none of them
/// (also across a crash, for a persistent store). They never interpret the
/// blobs; sealing, generations and rollback checks are [`SealedStore`]'s.
/// Writing through a backend directly bypasses those checks (the next open
/// then reports [`Error::StoreInconsistent`]): apps use a [`SealedStore`].
///
/// An app's own backend (its database, a browser's IndexedDB, ...) applies
/// a [`Batch`] in one transaction, honouring its expectation:
///
/// ```
/// use std::collections::BTreeMap;
/// use secret_chat::{BackendError, Error, StorageKey, record::RecordKey};
/// use secret_chat::store::{Batch, SealedStore, Store, Visit};
///
/// #[derive(Default)]
/// struct MyDb(BTreeMap<RecordKey, Vec<u8>>); // stands for a real database
///
/// impl Store for MyDb {
///     fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error> {
///         Ok(self.0.get(key).cloned())
///     }
///     fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error> {
///         self.0.iter().try_for_each(|(k, v)| visit(k.clone(), v))
///     }
///     fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
///         // BEGIN TRANSACTION
///         if let Some((key, expected)) = batch.expectation() {
///             if self.0.get(key).map(Vec::as_slice) != expected {
///                 return Err(Error::Backend(BackendError::Conflict)); // ROLLBACK
///             }
///         }
///         for (key, blob) in batch.ops() {
///             match blob {
///                 Some(blob) => self.0.insert(key.clone(), blob.to_vec()),
///                 None => self.0.remove(key),
///             };
///         }
///         Ok(()) // COMMIT
///     }
/// }
///
/// let key = StorageKey::generate();
/// let mut store = SealedStore::open(MyDb::default(), &key, None)?;
/// let name = RecordKey::new(secret_chat::labels::RECORD_KIND_IDENTITY, b"", b"")?;
/// let mut changes = secret_chat::store::Changes::new();
/// changes.put(name.clone(), b"me".to_vec())?;
/// let generation = store.commit(&changes)?;
/// let store = SealedStore::open(store.into_backend(), &key, Some(generation))?;
/// assert_eq!(store.get(&name)?.as_deref().map(|p| &p[..]), Some(&b"me"[..]));
/// # Ok::<(), Error>(())
/// ```
pub trait Store {
    /// The blob stored under `key`, if any.
    fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error>;

    /// Calls `visit` with every stored record's name and (at least) the
    /// first [`RECORD_HEADER_LEN`](crate::record::RECORD_HEADER_LEN) bytes
    /// of its blob (fewer if the blob is shorter), in [`RecordKey`] order.
    /// Stops at the first error `visit` returns.
    fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error>;

    /// Applies every operation of `batch`, all or none. If the batch
    /// carries an [`expectation`](Batch::expectation) and the stored value
    /// of that name differs from it at the time of the write, applies
    /// nothing and returns [`Error::Backend`]`(`[`BackendError::Conflict`]`)`
    /// (the check and the write are one atomic step).
    fn apply(&mut self, batch: &Batch) -> Result<(), Error>;

    /// Stores `blob` under `key` (a batch of one).
    fn put(&mut self, key: RecordKey, blob: Vec<u8>) -> Result<(), Error> {
        let mut b = Batch::default();
        b.put(key, blob);
        self.apply(&b)
    }

    /// Removes `key` (a batch of one; removing an absent key is no error).
    fn delete(&mut self, key: RecordKey) -> Result<(), Error> {
        let mut b = Batch::default();
        b.delete(key);
        self.apply(&b)
    }
}

/// Operations on a backend applied together by [`Store::apply`]: a put or a
/// delete per name (a later operation on the same name replaces an earlier
/// one). Holds only envelopes, never plaintext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: BTreeMap<RecordKey, Option<Vec<u8>>>,
    expect: Option<(RecordKey, Option<Vec<u8>>)>,
}

impl Batch {
    /// Makes the batch conditional: it applies only while `key` holds
    /// exactly `current` (`None`: absent). [`SealedStore`] expects the meta
    /// record it last read or wrote, so two handles on one store cannot
    /// overwrite each other's commits.
    pub fn expect(&mut self, key: RecordKey, current: Option<Vec<u8>>) {
        self.expect = Some((key, current));
    }

    /// The condition set by [`expect`](Self::expect), if any.
    pub fn expectation(&self) -> Option<(&RecordKey, Option<&[u8]>)> {
        self.expect.as_ref().map(|(k, v)| (k, v.as_deref()))
    }

    /// Puts `blob` under `key`.
    pub fn put(&mut self, key: RecordKey, blob: Vec<u8>) {
        self.ops.insert(key, Some(blob));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: RecordKey) {
        self.ops.insert(key, None);
    }

    /// Every operation in name order: `Some(blob)` for a put, `None` for a
    /// delete.
    pub fn ops(&self) -> impl Iterator<Item = (&RecordKey, Option<&[u8]>)> {
        self.ops.iter().map(|(k, v)| (k, v.as_deref()))
    }

    /// Bytes of blobs this batch puts (names excluded).
    pub fn bytes_put(&self) -> usize {
        self.ops.values().flatten().map(Vec::len).sum()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What a state-changing call changed: record plaintexts to put and records
/// to delete, committed together by [`SealedStore::commit`].
///
/// Plaintexts are zeroized on drop; `Debug` prints names and lengths only.
/// A later operation on the same name replaces an earlier one, so the
/// changes of several calls can be merged with [`extend`](Self::extend) and
/// committed at once.
///
/// ```
/// use secret_chat::labels::{RECORD_KIND_INBOUND_KEYS, RECORD_KIND_META};
/// use secret_chat::record::RecordKey;
/// use secret_chat::store::Changes;
/// let bob = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-42", b"bob").unwrap();
/// let mut changes = Changes::new();
/// changes.put(bob.clone(), vec![1, 2, 3]).unwrap();
/// changes.delete(bob.clone()).unwrap();
/// assert_eq!(changes.len(), 1);
/// assert_eq!(format!("{changes:?}"), r#"Changes {RecordKey(6, "room-42", "bob"): delete}"#);
/// // The meta record is the store's own.
/// let meta = RecordKey::new(RECORD_KIND_META, b"", b"").unwrap();
/// assert!(changes.put(meta, vec![]).is_err());
/// ```
#[derive(Default)]
pub struct Changes {
    ops: BTreeMap<RecordKey, Option<Zeroizing<Vec<u8>>>>,
}

impl Changes {
    /// No change.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `plaintext` as record `key`. Errors:
    /// [`Error::Malformed`]`(`[`DecodeError::InvalidValue`]`)` for the meta
    /// kind, [`Error::LimitExceeded`] for a plaintext over
    /// [`MAX_RECORD_LEN`](crate::limits::MAX_RECORD_LEN).
    ///
    /// ```
    /// use secret_chat::{labels::RECORD_KIND_ROOM_CORE, record::RecordKey, store::Changes};
    /// let mut changes = Changes::new();
    /// changes.put(RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"")?, b"state".to_vec())?;
    /// assert_eq!(changes.len(), 1);
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn put(&mut self, key: RecordKey, plaintext: Vec<u8>) -> Result<(), Error> {
        let plaintext = Zeroizing::new(plaintext);
        if key.kind() == RECORD_KIND_META {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        if plaintext.len() > crate::limits::MAX_RECORD_LEN {
            return Err(Error::LimitExceeded);
        }
        self.ops.insert(key, Some(plaintext));
        Ok(())
    }

    /// Deletes record `key` (no error if it does not exist). Errors:
    /// [`Error::Malformed`]`(`[`DecodeError::InvalidValue`]`)` for the meta
    /// kind.
    ///
    /// ```
    /// use secret_chat::{labels::RECORD_KIND_INBOUND_KEYS, record::RecordKey, store::Changes};
    /// let mut changes = Changes::new(); // Bob was removed: drop his keys
    /// changes.delete(RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-42", b"bob")?)?;
    /// assert_eq!(changes.ops().next().map(|(_, v)| v.is_none()), Some(true));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn delete(&mut self, key: RecordKey) -> Result<(), Error> {
        if key.kind() == RECORD_KIND_META {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        self.ops.insert(key, None);
        Ok(())
    }

    /// Adds `later`'s operations, which replace this one's on the same names.
    ///
    /// ```
    /// use secret_chat::{labels::RECORD_KIND_ROOM_CORE, record::RecordKey, store::Changes};
    /// let core = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"")?;
    /// let (mut first, mut second) = (Changes::new(), Changes::new());
    /// first.put(core.clone(), b"old".to_vec())?; // the changes of one call
    /// second.put(core, b"new".to_vec())?; // and of the next one
    /// first.extend(second); // commit both at once
    /// assert_eq!(first.ops().next().and_then(|(_, v)| v), Some(&b"new"[..]));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn extend(&mut self, later: Changes) {
        let mut later = later;
        self.ops.append(&mut later.ops);
    }

    /// Every operation in name order: `Some(plaintext)` for a put, `None`
    /// for a delete.
    pub fn ops(&self) -> impl Iterator<Item = (&RecordKey, Option<&[u8]>)> {
        self.ops
            .iter()
            .map(|(k, v)| (k, v.as_ref().map(|p| p.as_slice())))
    }

    /// Number of records changed.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Op(Option<usize>);
        impl fmt::Debug for Op {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(n) => write!(f, "put {n} bytes"),
                    None => f.write_str("delete"),
                }
            }
        }
        f.write_str("Changes ")?;
        f.debug_map()
            .entries(
                self.ops
                    .iter()
                    .map(|(k, v)| (k, Op(v.as_ref().map(|p| p.len())))),
            )
            .finish()
    }
}

/// Length of the meta record's plaintext: record count and digest.
const META_LEN: usize = 8 + DIGEST_LEN;

/// A backend with sealing, atomic commits and rollback detection (see the
/// module docs).
///
/// Opening reads the meta record and every record's header (not the
/// records themselves), checks that they agree and that the state is not
/// older than the app remembers; [`get`](Self::get) decrypts one record;
/// [`commit`](Self::commit) writes one call's changes in one batch.
pub struct SealedStore<S: Store> {
    backend: S,
    sealer: RecordSealer,
    generation: u64,
    digest: [u8; DIGEST_LEN],
    /// Generation of every live record except the meta record.
    index: BTreeMap<RecordKey, u64>,
    /// The meta record as last read or written (the commit precondition).
    meta_blob: Option<Vec<u8>>,
    rolled_back_from: Option<u64>,
    poisoned: bool,
}

impl<S: Store> fmt::Debug for SealedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("generation", &self.generation)
            .field("records", &self.index.len())
            .field("rolled_back_from", &self.rolled_back_from)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<S: Store> SealedStore<S> {
    /// Opens `backend` with the app's `storage_key` and the newest device
    /// generation the app remembered (`None` on first use, or when it kept
    /// none: then any consistent state is accepted).
    ///
    /// Errors: [`Error::Rollback`] when the store's generation is below
    /// `remembered` (an empty store has generation 0);
    /// [`Error::StorageDecrypt`] for a wrong storage key or a damaged meta
    /// record; [`Error::StoreInconsistent`] when the records do not match the
    /// meta record (or records exist without one); [`Error::Malformed`] for a
    /// record header of an unknown version or kind; [`Error::Backend`].
    ///
    /// ```
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// assert_eq!(store.generation(), 0);
    /// ```
    pub fn open(
        backend: S,
        storage_key: &StorageKey,
        remembered: Option<u64>,
    ) -> Result<Self, Error> {
        let store = Self::load(backend, storage_key)?;
        match remembered {
            Some(expected) if store.generation < expected => Err(Error::Rollback {
                stored: store.generation,
                expected,
            }),
            _ => Ok(store),
        }
    }

    /// Like [`open`](Self::open) but loads state older than `remembered`
    /// too: for an app whose user chose to restore a backup. Every other
    /// check still applies.
    ///
    /// After a rollback the state may hold message keys that were already
    /// used: [`rolled_back_from`](Self::rolled_back_from) tells, and the
    /// room must then rotate its own sender key before sending.
    ///
    /// ```
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let key = StorageKey::generate();
    /// let store = SealedStore::open_accepting_rollback(MemoryStore::new(), &key, Some(9)).unwrap();
    /// assert_eq!(store.rolled_back_from(), Some(9));
    /// ```
    pub fn open_accepting_rollback(
        backend: S,
        storage_key: &StorageKey,
        remembered: Option<u64>,
    ) -> Result<Self, Error> {
        let mut store = Self::load(backend, storage_key)?;
        if let Some(expected) = remembered
            && store.generation < expected
        {
            store.rolled_back_from = Some(expected);
        }
        Ok(store)
    }

    fn load(backend: S, storage_key: &StorageKey) -> Result<Self, Error> {
        let sealer = RecordSealer::new(storage_key);
        let meta_key = RecordKey::meta();
        let mut index = BTreeMap::new();
        let mut digest = [0u8; DIGEST_LEN];
        backend.scan(&mut |name, head| {
            if name.kind() == RECORD_KIND_META {
                return Ok(());
            }
            let header = RecordHeader::parse(head)?;
            if header.kind != name.kind() {
                return Err(Error::StoreInconsistent);
            }
            xor_into(
                &mut digest,
                &sealer.digest_element(&name, header.generation),
            );
            index.insert(name, header.generation);
            Ok(())
        })?;
        let meta_blob = backend.get(&meta_key)?;
        let (generation, count, meta_digest) = match &meta_blob {
            None if index.is_empty() => (0, 0, [0; DIGEST_LEN]),
            None => return Err(Error::StoreInconsistent),
            Some(blob) => {
                let opened = sealer.open(&meta_key, blob)?;
                let mut r = Reader::new(&opened.plaintext);
                let count = r.u64()?;
                let d: [u8; DIGEST_LEN] = r.array()?;
                r.finish()?;
                (opened.generation, count, d)
            }
        };
        let newest = index.values().copied().max().unwrap_or(0);
        let count_ok = u64::try_from(index.len()).is_ok_and(|n| n == count);
        if newest > generation || !count_ok || meta_digest != digest {
            return Err(Error::StoreInconsistent);
        }
        Ok(Self {
            backend,
            sealer,
            generation,
            digest,
            index,
            meta_blob,
            rolled_back_from: None,
            poisoned: false,
        })
    }

    /// The device generation: the number of batches ever committed to this
    /// store. Keep the value [`commit`](Self::commit) returns beside the
    /// storage key and pass it to the next [`open`](Self::open).
    ///
    /// ```
    /// use secret_chat::{Error, StorageKey, labels::RECORD_KIND_IDENTITY, record::RecordKey};
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// let key = StorageKey::generate();
    /// let mut store = SealedStore::open(MemoryStore::new(), &key, None)?;
    /// let old_copy = store.backend().clone(); // a backup taken now
    /// let mut changes = Changes::new();
    /// changes.put(RecordKey::new(RECORD_KIND_IDENTITY, b"", b"")?, vec![1])?;
    /// let remembered = store.commit(&changes)?; // keep it beside the key
    /// assert_eq!(store.generation(), remembered);
    /// // The old copy, put back: refused.
    /// let refused = SealedStore::open(old_copy, &key, Some(remembered)).err();
    /// assert_eq!(refused, Some(Error::Rollback { stored: 0, expected: remembered }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The generation the app remembered when it opened older state with
    /// [`open_accepting_rollback`](Self::open_accepting_rollback), `None` if
    /// no rollback was accepted.
    pub fn rolled_back_from(&self) -> Option<u64> {
        self.rolled_back_from
    }

    /// Every live record's name in `kind` and `room`, in key order (for
    /// instance every member's inbound keys of a room).
    ///
    /// ```
    /// use secret_chat::labels::RECORD_KIND_INBOUND_KEYS;
    /// use secret_chat::record::RecordKey;
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let mut changes = Changes::new();
    /// for member in [&b"bob"[..], b"ann"] {
    ///     let name = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-42", member).unwrap();
    ///     changes.put(name, vec![0; 8]).unwrap();
    /// }
    /// store.commit(&changes).unwrap();
    /// let names: Vec<_> = store.names(RECORD_KIND_INBOUND_KEYS, b"room-42").map(|k| k.key().to_vec()).collect();
    /// assert_eq!(names, [b"ann".to_vec(), b"bob".to_vec()]);
    /// ```
    pub fn names<'a>(
        &'a self,
        kind: u8,
        room: &'a [u8],
    ) -> impl Iterator<Item = &'a RecordKey> + 'a {
        // Names sort by kind, then room, then key: the wanted ones are one
        // contiguous range starting at (kind, room, empty key).
        let first = RecordKey::first_of(kind, room);
        self.index
            .range(first..)
            .map(|(k, _)| k)
            .take_while(move |k| k.kind() == kind && k.room() == room)
    }

    /// Changes that delete every record of `room` (all kinds), to commit
    /// when the app leaves or deletes the room. (An empty `room` selects the
    /// device-wide records, such as the identity.)
    ///
    /// ```
    /// use secret_chat::labels::{RECORD_KIND_INBOUND_KEYS, RECORD_KIND_ROOM_CORE};
    /// use secret_chat::record::RecordKey;
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let mut changes = Changes::new();
    /// changes.put(RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"").unwrap(), vec![1]).unwrap();
    /// changes.put(RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-42", b"bob").unwrap(), vec![2]).unwrap();
    /// changes.put(RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-43", b"").unwrap(), vec![3]).unwrap();
    /// store.commit(&changes).unwrap();
    /// let gone = store.room_deletion(b"room-42");
    /// assert_eq!(gone.len(), 2);
    /// store.commit(&gone).unwrap();
    /// assert_eq!(store.names(RECORD_KIND_ROOM_CORE, b"room-43").count(), 1);
    /// ```
    pub fn room_deletion(&self, room: &[u8]) -> Changes {
        self.deletion(|k| k.room() == room)
    }

    /// Changes that delete every record of `room` whose kind is in `kinds`.
    pub(crate) fn room_deletion_of_kinds(&self, room: &[u8], kinds: &[u8]) -> Changes {
        self.deletion(|k| k.room() == room && kinds.contains(&k.kind()))
    }

    /// Changes that delete every live record `select` picks.
    fn deletion(&self, select: impl Fn(&RecordKey) -> bool) -> Changes {
        let mut changes = Changes::new();
        for name in self.index.keys().filter(|k| select(k)) {
            // Only the meta kind is refused, and it is never in the index.
            let _ = changes.delete(name.clone());
        }
        changes
    }

    /// Decrypts record `name`; `None` if it does not exist.
    ///
    /// Errors: [`Error::Malformed`]`(`[`DecodeError::InvalidValue`]`)` for
    /// the meta record (the store's own); [`Error::StorageDecrypt`] or [`Error::Malformed`] for a
    /// damaged or moved record; [`Error::StoreInconsistent`] when the record
    /// is not the one the store held at open (changed by another writer);
    /// [`Error::Backend`].
    ///
    /// ```
    /// use secret_chat::labels::RECORD_KIND_IDENTITY;
    /// use secret_chat::record::RecordKey;
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let me = RecordKey::new(RECORD_KIND_IDENTITY, b"", b"").unwrap();
    /// assert!(store.get(&me).unwrap().is_none());
    /// ```
    pub fn get(&self, name: &RecordKey) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        if self.poisoned {
            return Err(Error::Backend(BackendError::MustReopen));
        }
        if name.kind() == RECORD_KIND_META {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        match (self.backend.get(name)?, self.index.get(name)) {
            (None, None) => Ok(None),
            (Some(blob), Some(&generation)) => {
                let opened = self.sealer.open(name, &blob)?;
                if opened.generation != generation {
                    return Err(Error::StoreInconsistent);
                }
                Ok(Some(opened.plaintext))
            }
            _ => Err(Error::StoreInconsistent),
        }
    }

    /// Seals and writes `changes` in one batch at the next generation (fresh
    /// nonces from the OS RNG), and returns that generation: store it beside
    /// the storage key. Empty changes write nothing and return the current
    /// generation.
    ///
    /// On an error nothing changed in this handle; if the backend failed, the
    /// handle refuses further work ([`BackendError::MustReopen`]) because a
    /// failed write may or may not have landed: open the store again. If
    /// another handle committed to the same store since this one read it,
    /// nothing is written and the error is
    /// [`Error::Backend`]`(`[`BackendError::Conflict`]`)`: open it again.
    ///
    /// ```
    /// use secret_chat::labels::RECORD_KIND_OUTBOUND_KEY;
    /// use secret_chat::record::RecordKey;
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// use secret_chat::StorageKey;
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let mine = RecordKey::new(RECORD_KIND_OUTBOUND_KEY, b"room-42", b"").unwrap();
    /// let mut changes = Changes::new();
    /// changes.put(mine.clone(), vec![7; 100]).unwrap();
    /// assert_eq!(store.commit(&changes).unwrap(), 1);
    /// let mut gone = Changes::new();
    /// gone.delete(mine.clone()).unwrap();
    /// assert_eq!(store.commit(&gone).unwrap(), 2);
    /// assert!(store.get(&mine).unwrap().is_none());
    /// ```
    pub fn commit(&mut self, changes: &Changes) -> Result<u64, Error> {
        self.commit_with_rng(changes, &mut crate::rng::os_rng())
    }

    /// [`commit`](Self::commit) drawing the nonces from `rng` (12 bytes per
    /// put, in name order, then 12 for the meta record).
    ///
    /// ```
    /// use secret_chat::{StorageKey, labels::RECORD_KIND_IDENTITY, record::RecordKey};
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None)?;
    /// let mut changes = Changes::new();
    /// changes.put(RecordKey::new(RECORD_KIND_IDENTITY, b"", b"")?, vec![1])?;
    /// assert_eq!(store.commit_with_rng(&changes, &mut secret_chat::rand_core::UnwrapErr(getrandom::SysRng))?, 1);
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn commit_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        changes: &Changes,
        rng: &mut R,
    ) -> Result<u64, Error> {
        if self.poisoned {
            return Err(Error::Backend(BackendError::MustReopen));
        }
        if changes.is_empty() {
            return Ok(self.generation);
        }
        let generation = self.generation.checked_add(1).ok_or(Error::LimitExceeded)?;
        let mut digest = self.digest;
        let mut count = self.index.len();
        let mut batch = Batch::default();
        for (name, op) in changes.ops() {
            if let Some(&old) = self.index.get(name) {
                xor_into(&mut digest, &self.sealer.digest_element(name, old));
                count -= 1;
            }
            match op {
                Some(plaintext) => {
                    let env = self
                        .sealer
                        .seal_with_rng(name, generation, plaintext, rng)?;
                    xor_into(&mut digest, &self.sealer.digest_element(name, generation));
                    count += 1;
                    batch.put(name.clone(), env);
                }
                None => batch.delete(name.clone()),
            }
        }
        let mut meta = Writer::with_capacity(META_LEN);
        meta.u64(u64::try_from(count).map_err(|_| Error::LimitExceeded)?)
            .bytes(&digest);
        let meta_key = RecordKey::meta();
        let env = self
            .sealer
            .seal_with_rng(&meta_key, generation, meta.as_slice(), rng)?;
        batch.expect(meta_key.clone(), self.meta_blob.take());
        batch.put(meta_key, env.clone());
        if let Err(e) = self.backend.apply(&batch) {
            self.poisoned = true;
            return Err(e);
        }
        for (name, op) in changes.ops() {
            match op {
                Some(_) => self.index.insert(name.clone(), generation),
                None => self.index.remove(name),
            };
        }
        self.generation = generation;
        self.digest = digest;
        self.meta_blob = Some(env);
        Ok(generation)
    }

    /// The backend (for instance to measure what it wrote).
    pub fn backend(&self) -> &S {
        &self.backend
    }

    /// Closes the sealed layer and gives the backend back.
    pub fn into_backend(self) -> S {
        self.backend
    }
}
