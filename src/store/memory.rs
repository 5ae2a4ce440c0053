//! [`MemoryStore`]: a backend in memory, for tests, benchmarks and apps that
//! persist elsewhere.

use super::{Batch, Store, Visit};
use crate::error::{BackendError, Error};
use crate::record::RecordKey;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A [`Store`] in memory: a sorted map from names to blobs. A batch is
/// applied all at once (it cannot fail half-way). It counts the bytes it was
/// asked to write, so benchmarks and tests can measure what a call costs.
///
/// `Clone` copies the whole store (a "backup").
///
/// ```
/// use secret_chat::labels::RECORD_KIND_ROOM_CORE;
/// use secret_chat::record::RecordKey;
/// use secret_chat::store::{MemoryStore, Store};
/// let mut store = MemoryStore::new();
/// let name = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"").unwrap();
/// store.put(name.clone(), vec![1, 2, 3]).unwrap();
/// assert_eq!(store.get(&name).unwrap(), Some(vec![1, 2, 3]));
/// assert_eq!(store.bytes_written(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<RecordKey, Vec<u8>>,
    bytes_written: u64,
    batches: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes of blobs put since the store was made (names excluded).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Number of batches applied since the store was made.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// Number of records held (the meta record included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.records.get(key).cloned())
    }

    fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error> {
        for (k, v) in &self.records {
            visit(k.clone(), v)?;
        }
        Ok(())
    }

    fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
        if let Some((k, want)) = batch.expectation()
            && self.records.get(k).map(Vec::as_slice) != want
        {
            return Err(Error::Backend(BackendError::Conflict));
        }
        for (k, op) in batch.ops() {
            match op {
                Some(blob) => {
                    self.records.insert(k.clone(), blob.to_vec());
                }
                None => {
                    self.records.remove(k);
                }
            }
        }
        let n = u64::try_from(batch.bytes_put()).unwrap_or(u64::MAX);
        self.bytes_written = self.bytes_written.saturating_add(n);
        self.batches = self.batches.saturating_add(1);
        Ok(())
    }
}
