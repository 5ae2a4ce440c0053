//! Records and stores (protocol v2 state at rest): random histories through
//! both stores against a model that never stopped; every damaged, moved,
//! mixed or rolled-back record refused with its error; a failing backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use secret_chat::labels::{
    RECORD_KIND_IDENTITY, RECORD_KIND_INBOUND_KEYS, RECORD_KIND_MEMBERSHIP_LOG, RECORD_KIND_META,
    RECORD_KIND_OUTBOUND_KEY, RECORD_KIND_ROOM_CORE,
};
use secret_chat::record::{RECORD_HEADER_LEN, RecordKey};
use secret_chat::store::{Batch, Changes, MemoryStore, SealedStore, Store, Visit};
use secret_chat::testing::VectorRng;
use secret_chat::{BackendError, DecodeError, Error, StorageKey};
use std::collections::BTreeMap;

fn key() -> StorageKey {
    StorageKey::from_bytes([0x42; 32])
}

/// The names a history draws from: every kind, two rooms, device-wide.
fn names() -> Vec<RecordKey> {
    let mut v = vec![RecordKey::new(RECORD_KIND_IDENTITY, b"", b"").unwrap()];
    for room in [&b"room-a"[..], b"room-b"] {
        v.push(RecordKey::new(RECORD_KIND_ROOM_CORE, room, b"").unwrap());
        v.push(RecordKey::new(RECORD_KIND_MEMBERSHIP_LOG, room, b"").unwrap());
        v.push(RecordKey::new(RECORD_KIND_OUTBOUND_KEY, room, b"").unwrap());
        for m in [&b"ann"[..], b"bob", b"cyd"] {
            v.push(RecordKey::new(RECORD_KIND_INBOUND_KEYS, room, m).unwrap());
        }
    }
    v
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize, Vec<u8>),
    Delete(usize),
    Commit,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..13usize, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(i, v)| Op::Put(i, v)),
        2 => (0..13usize).prop_map(Op::Delete),
        2 => Just(Op::Commit),
        1 => Just(Op::Reopen),
    ]
}

/// Runs `ops` on a store over `backend` and on a plain map (the twin that
/// never stopped), checking after every commit and reopen that the store
/// holds exactly what the twin holds.
fn run_history<S: Store>(backend: S, ops: &[Op]) -> S {
    let names = names();
    let mut twin: BTreeMap<RecordKey, Vec<u8>> = BTreeMap::new();
    let mut store = SealedStore::open(backend, &key(), None).unwrap();
    let mut pending = Changes::new();
    let mut pending_twin: Vec<(usize, Option<Vec<u8>>)> = Vec::new();
    let mut commits = 0u64;
    let mut rng = VectorRng::new(b"history");
    for op in ops {
        match op {
            Op::Put(i, v) => {
                pending.put(names[*i].clone(), v.clone()).unwrap();
                pending_twin.push((*i, Some(v.clone())));
            }
            Op::Delete(i) => {
                pending.delete(names[*i].clone()).unwrap();
                pending_twin.push((*i, None));
            }
            Op::Commit => {
                let had = !pending.is_empty();
                let g = store
                    .commit_with_rng(&std::mem::take(&mut pending), &mut rng)
                    .unwrap();
                commits += u64::from(had);
                assert_eq!(g, commits);
                for (i, v) in pending_twin.drain(..) {
                    match v {
                        Some(v) => twin.insert(names[i].clone(), v),
                        None => twin.remove(&names[i]),
                    };
                }
            }
            Op::Reopen => {
                // Uncommitted changes are lost, as in a crash.
                pending = Changes::new();
                pending_twin.clear();
                let g = store.generation();
                store = SealedStore::open(store.into_backend(), &key(), Some(g)).unwrap();
                assert_eq!(store.generation(), g);
            }
        }
        for n in &names {
            assert_eq!(
                store.get(n).unwrap().map(|p| p.to_vec()),
                twin.get(n).cloned(),
                "{n:?}"
            );
        }
    }
    store.into_backend()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn memory_store_behaves_like_the_twin(ops in proptest::collection::vec(op(), 0..40)) {
        run_history(MemoryStore::new(), &ops);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_store_behaves_like_the_twin(ops in proptest::collection::vec(op(), 0..40)) {
        run_history(secret_chat::store::SqliteStore::open_in_memory().unwrap(), &ops);
    }
}

/// A store with a few records over three generations, and its backend
/// snapshots after each commit.
fn built() -> (MemoryStore, Vec<MemoryStore>) {
    let mut store = SealedStore::open(MemoryStore::new(), &key(), None).unwrap();
    let mut snaps = vec![store.backend().clone()];
    let n = names();
    let mut rng = VectorRng::new(b"built");
    for round in 0..3u8 {
        let mut c = Changes::new();
        c.put(n[0].clone(), vec![round; 40]).unwrap();
        c.put(n[1 + usize::from(round)].clone(), vec![round; 70])
            .unwrap();
        if round == 2 {
            c.delete(n[1].clone()).unwrap();
        }
        c.put(n[4].clone(), vec![round; 10]).unwrap();
        store.commit_with_rng(&c, &mut rng).unwrap();
        snaps.push(store.backend().clone());
    }
    (store.into_backend(), snaps)
}

/// Opens `backend` and reads every record; the first error.
fn load_all(backend: MemoryStore, remembered: Option<u64>) -> Result<(), Error> {
    let store = SealedStore::open(backend, &key(), remembered)?;
    for n in names() {
        store.get(&n)?;
    }
    Ok(())
}

fn raw(store: &MemoryStore) -> Vec<(RecordKey, Vec<u8>)> {
    let mut v = Vec::new();
    store
        .scan(&mut |k, _| {
            v.push((k.clone(), store.get(&k).unwrap().unwrap()));
            Ok(())
        })
        .unwrap();
    v
}

#[test]
fn every_bit_flip_and_truncation_in_a_store_is_refused() {
    let (good, _) = built();
    assert_eq!(load_all(good.clone(), Some(3)), Ok(()));
    for (name, blob) in raw(&good) {
        for bit in 0..blob.len() * 8 {
            let mut s = good.clone();
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            s.put(name.clone(), bad).unwrap();
            let err = load_all(s, Some(3)).unwrap_err();
            let byte = bit / 8;
            let expected_ok = match byte {
                0 => matches!(err, Error::Malformed(DecodeError::UnsupportedVersion(_))),
                // The kind byte: unknown, or another kind than the row's.
                1 => matches!(
                    err,
                    Error::Malformed(DecodeError::InvalidValue) | Error::StoreInconsistent
                ),
                // The generation: the digest (or, in the meta record, the tag).
                2..10 if name.kind() != RECORD_KIND_META => err == Error::StoreInconsistent,
                _ => err == Error::StorageDecrypt,
            };
            assert!(expected_ok, "{name:?} bit {bit}: {err:?}");
        }
        for len in 0..blob.len() {
            let mut s = good.clone();
            s.put(name.clone(), blob[..len].to_vec()).unwrap();
            let err = load_all(s, Some(3)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed(DecodeError::Truncated) | Error::StorageDecrypt
                ),
                "{name:?} cut to {len}: {err:?}"
            );
        }
    }
}

#[test]
fn wrong_storage_key_is_refused() {
    let (good, _) = built();
    let wrong = StorageKey::from_bytes([0x43; 32]);
    assert_eq!(
        SealedStore::open(good, &wrong, None).unwrap_err(),
        Error::StorageDecrypt
    );
}

#[test]
fn records_moved_between_rooms_kinds_and_keys_are_refused() {
    let sealer = secret_chat::record::RecordSealer::new(&key());
    let core_a = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-a", b"").unwrap();
    let core_b = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-b", b"").unwrap();
    let log_a = RecordKey::new(RECORD_KIND_MEMBERSHIP_LOG, b"room-a", b"").unwrap();
    let ann_a = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-a", b"ann").unwrap();
    let bob_a = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-a", b"bob").unwrap();
    let ann_b = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-b", b"ann").unwrap();
    let all = [&core_a, &core_b, &log_a, &ann_a, &bob_a, &ann_b];
    // Every record written in one batch, so all carry generation 1 and
    // swapping two of them keeps the store digest: only the tags (or, across
    // kinds, the header's kind) can tell.
    let mut store = SealedStore::open(MemoryStore::new(), &key(), None).unwrap();
    let mut c = Changes::new();
    for (i, n) in all.iter().enumerate() {
        c.put((*n).clone(), vec![i as u8; 20]).unwrap();
    }
    store.commit(&c).unwrap();
    let good = store.into_backend();
    let swapped = |x: &RecordKey, y: &RecordKey| {
        let mut s = good.clone();
        let (bx, by) = (good.get(x).unwrap().unwrap(), good.get(y).unwrap().unwrap());
        s.put(x.clone(), by).unwrap();
        s.put(y.clone(), bx).unwrap();
        s
    };
    // Between rooms (same kind and key) and between keys (same room).
    for (x, y) in [(&core_a, &core_b), (&ann_a, &ann_b), (&ann_a, &bob_a)] {
        let store = SealedStore::open(swapped(x, y), &key(), Some(1)).unwrap();
        assert_eq!(store.get(x).unwrap_err(), Error::StorageDecrypt);
        assert_eq!(store.get(y).unwrap_err(), Error::StorageDecrypt);
        // The envelope alone, opened under the other name.
        let env = good.get(x).unwrap().unwrap();
        assert_eq!(sealer.open(y, &env).unwrap_err(), Error::StorageDecrypt);
    }
    // Between kinds: the header's kind is not the row's.
    assert_eq!(
        SealedStore::open(swapped(&core_a, &log_a), &key(), Some(1)).unwrap_err(),
        Error::StoreInconsistent
    );
    let env = good.get(&core_a).unwrap().unwrap();
    assert_eq!(
        sealer.open(&log_a, &env).unwrap_err(),
        Error::Malformed(DecodeError::InvalidValue)
    );
    // Copied to a name that held nothing: the digest refuses the store.
    let mut s = good.clone();
    let spare = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room-a", b"cyd").unwrap();
    s.put(spare, good.get(&bob_a).unwrap().unwrap()).unwrap();
    assert_eq!(load_all(s, None).unwrap_err(), Error::StoreInconsistent);
    // Moved to another generation (the header rewritten): the tag.
    let mut moved = good.get(&ann_a).unwrap().unwrap();
    moved[9] ^= 2;
    assert_eq!(
        sealer.open(&ann_a, &moved).unwrap_err(),
        Error::StorageDecrypt
    );
}

#[test]
fn rollback_is_detected_and_accepted_only_explicitly() {
    let (now, snaps) = built();
    assert_eq!(load_all(now, Some(3)), Ok(()));
    for (g, old) in snaps.iter().enumerate() {
        let g = g as u64;
        assert_eq!(load_all(old.clone(), Some(g)), Ok(()));
        if g < 3 {
            assert_eq!(
                load_all(old.clone(), Some(3)).unwrap_err(),
                Error::Rollback {
                    stored: g,
                    expected: 3
                }
            );
            let accepted =
                SealedStore::open_accepting_rollback(old.clone(), &key(), Some(3)).unwrap();
            assert_eq!(
                (accepted.generation(), accepted.rolled_back_from()),
                (g, Some(3))
            );
        }
    }
    // A newer store than remembered (a crash before the app saved the
    // generation) is fine.
    let (now, _) = built();
    let s = SealedStore::open(now, &key(), Some(1)).unwrap();
    assert_eq!((s.generation(), s.rolled_back_from()), (3, None));
}

#[test]
fn records_of_different_times_mixed_are_refused() {
    let (now, snaps) = built();
    let n = names();
    // One record put back from an older snapshot (bob's keys replayed).
    let old = snaps[1].get(&n[4]).unwrap().unwrap();
    let mut s = now.clone();
    s.put(n[4].clone(), old).unwrap();
    assert_eq!(load_all(s, Some(3)).unwrap_err(), Error::StoreInconsistent);
    // A deleted record put back (n[1] was deleted at generation 3).
    let deleted = snaps[2].get(&n[1]).unwrap().unwrap();
    let mut s = now.clone();
    s.put(n[1].clone(), deleted).unwrap();
    assert_eq!(load_all(s, Some(3)).unwrap_err(), Error::StoreInconsistent);
    // A record removed.
    let mut s = now.clone();
    s.delete(n[0].clone()).unwrap();
    assert_eq!(load_all(s, Some(3)).unwrap_err(), Error::StoreInconsistent);
    // The meta record removed, or put back from an older snapshot.
    let meta = RecordKey::new(RECORD_KIND_META, b"", b"").unwrap();
    let mut s = now.clone();
    s.delete(meta.clone()).unwrap();
    assert_eq!(load_all(s, None).unwrap_err(), Error::StoreInconsistent);
    let mut s = now.clone();
    s.put(meta.clone(), snaps[2].get(&meta).unwrap().unwrap())
        .unwrap();
    assert_eq!(load_all(s, None).unwrap_err(), Error::StoreInconsistent);
    // A newer meta record over older records.
    let mut s = snaps[2].clone();
    s.put(meta.clone(), now.get(&meta).unwrap().unwrap())
        .unwrap();
    assert_eq!(load_all(s, None).unwrap_err(), Error::StoreInconsistent);
}

/// A backend shared with another writer (the test).
struct Shared(std::rc::Rc<std::cell::RefCell<MemoryStore>>);

impl Store for Shared {
    fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error> {
        self.0.borrow().get(key)
    }
    fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error> {
        self.0.borrow().scan(visit)
    }
    fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
        self.0.borrow_mut().apply(batch)
    }
}

#[test]
fn a_record_changed_after_open_is_refused() {
    let (now, snaps) = built();
    let n = names();
    let shared = std::rc::Rc::new(std::cell::RefCell::new(now));
    let store = SealedStore::open(Shared(shared.clone()), &key(), Some(3)).unwrap();
    // Another writer puts an older copy of a record back, or adds one.
    let old = snaps[1].get(&n[4]).unwrap().unwrap();
    shared.borrow_mut().put(n[4].clone(), old).unwrap();
    assert_eq!(store.get(&n[4]).unwrap_err(), Error::StoreInconsistent);
    let deleted = snaps[2].get(&n[1]).unwrap().unwrap();
    shared.borrow_mut().put(n[1].clone(), deleted).unwrap();
    assert_eq!(store.get(&n[1]).unwrap_err(), Error::StoreInconsistent);
    assert!(store.get(&n[0]).unwrap().is_some());
}

/// A backend whose writes fail on demand.
struct Failing {
    inner: MemoryStore,
    fail: bool,
}

impl Store for Failing {
    fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(key)
    }
    fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error> {
        self.inner.scan(visit)
    }
    fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
        if self.fail {
            return Err(Error::Backend(BackendError::Io));
        }
        self.inner.apply(batch)
    }
}

#[test]
fn a_failed_write_changes_nothing_and_requires_reopening() {
    let n = names();
    let backend = Failing {
        inner: MemoryStore::new(),
        fail: false,
    };
    let mut store = SealedStore::open(backend, &key(), None).unwrap();
    let mut c = Changes::new();
    c.put(n[0].clone(), b"one".to_vec()).unwrap();
    assert_eq!(store.commit(&c).unwrap(), 1);
    let mut backend = store.into_backend();
    backend.fail = true;
    let mut store = SealedStore::open(backend, &key(), Some(1)).unwrap();
    let mut c = Changes::new();
    c.put(n[0].clone(), b"two".to_vec()).unwrap();
    assert_eq!(
        store.commit(&c).unwrap_err(),
        Error::Backend(BackendError::Io)
    );
    assert_eq!(store.generation(), 1);
    assert_eq!(
        store.get(&n[0]).unwrap_err(),
        Error::Backend(BackendError::MustReopen)
    );
    assert_eq!(
        store.commit(&c).unwrap_err(),
        Error::Backend(BackendError::MustReopen)
    );
    let mut backend = store.into_backend();
    backend.fail = false;
    let mut store = SealedStore::open(backend, &key(), Some(1)).unwrap();
    assert_eq!(&store.get(&n[0]).unwrap().unwrap()[..], b"one");
    assert_eq!(store.commit(&c).unwrap(), 2);
}

#[test]
fn only_changed_records_are_written() {
    let n = names();
    let mut store = SealedStore::open(MemoryStore::new(), &key(), None).unwrap();
    let mut c = Changes::new();
    for name in &n {
        c.put(name.clone(), vec![0; 1000]).unwrap();
    }
    store.commit(&c).unwrap();
    let before = store.backend().bytes_written();
    let mut one = Changes::new();
    one.put(n[5].clone(), vec![1; 300]).unwrap();
    store.commit(&one).unwrap();
    let written = store.backend().bytes_written() - before;
    // The record (300 + 38) and the meta record (40 + 38).
    assert_eq!(written, 300 + 38 + 40 + 38);
    assert_eq!(store.commit(&Changes::new()).unwrap(), 2);
    assert_eq!(store.backend().batches(), 2);
    assert_eq!(RECORD_HEADER_LEN, 22);
}

#[test]
fn debug_output_holds_no_plaintext() {
    let mut c = Changes::new();
    c.put(names()[0].clone(), b"SECRET".to_vec()).unwrap();
    let s = format!("{c:?}");
    assert_eq!(s, r#"Changes {RecordKey(2, "", ""): put 6 bytes}"#);
    let store = SealedStore::open(MemoryStore::new(), &key(), None).unwrap();
    assert_eq!(
        format!("{store:?}"),
        "SealedStore { generation: 0, records: 0, rolled_back_from: None, poisoned: false, .. }"
    );
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use secret_chat::store::SqliteStore;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sc-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_file_survives_reopening_and_an_old_copy_is_a_rollback() {
        let d = dir("file");
        let path = d.join("state.db");
        let n = names();
        let mut store = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), None).unwrap();
        let mut c = Changes::new();
        c.put(n[0].clone(), b"gen one".to_vec()).unwrap();
        store.commit(&c).unwrap();
        drop(store);
        // The app's backup, taken while the store was closed (with its WAL).
        let backup = d.join("backup");
        std::fs::create_dir_all(&backup).unwrap();
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
            }
        }
        let mut store =
            SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), Some(1)).unwrap();
        let mut c = Changes::new();
        c.put(n[0].clone(), b"gen two".to_vec()).unwrap();
        c.put(n[7].clone(), b"more".to_vec()).unwrap();
        assert_eq!(store.commit(&c).unwrap(), 2);
        drop(store);
        let store = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), Some(2)).unwrap();
        assert_eq!(&store.get(&n[0]).unwrap().unwrap()[..], b"gen two");
        drop(store);
        let old = SqliteStore::open(backup.join("state.db")).unwrap();
        assert_eq!(
            SealedStore::open(old, &key(), Some(2)).unwrap_err(),
            Error::Rollback {
                stored: 1,
                expected: 2
            }
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn two_handles_on_one_file_cannot_overwrite_each_other() {
        let d = dir("two");
        let path = d.join("state.db");
        let n = names();
        let mut a = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), None).unwrap();
        let mut b = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), None).unwrap();
        let mut c = Changes::new();
        c.put(n[0].clone(), b"by a".to_vec()).unwrap();
        assert_eq!(a.commit(&c).unwrap(), 1);
        let mut c = Changes::new();
        c.put(n[5].clone(), b"by b".to_vec()).unwrap();
        // b's view is stale: writing would drop a's record from the digest.
        assert_eq!(
            b.commit(&c).unwrap_err(),
            Error::Backend(BackendError::Conflict)
        );
        drop(b);
        let mut b = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), Some(1)).unwrap();
        assert_eq!(b.commit(&c).unwrap(), 2);
        drop((a, b));
        let s = SealedStore::open(SqliteStore::open(&path).unwrap(), &key(), Some(2)).unwrap();
        assert_eq!(&s.get(&n[0]).unwrap().unwrap()[..], b"by a");
        assert_eq!(&s.get(&n[5]).unwrap().unwrap()[..], b"by b");
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_foreign_database_is_refused() {
        let d = dir("foreign");
        let path = d.join("other.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE t (x); PRAGMA application_id = 7;")
                .unwrap();
        }
        assert_eq!(
            SqliteStore::open(&path).unwrap_err(),
            Error::Backend(BackendError::Corrupt)
        );
        std::fs::write(d.join("junk.db"), vec![0x55; 4096]).unwrap();
        assert!(matches!(
            SqliteStore::open(d.join("junk.db")).unwrap_err(),
            Error::Backend(BackendError::Corrupt)
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn names_lists_one_kind_of_one_room() {
    let n = names();
    let mut store = SealedStore::open(MemoryStore::new(), &key(), None).unwrap();
    let mut c = Changes::new();
    for name in &n {
        c.put(name.clone(), vec![1]).unwrap();
    }
    store.commit(&c).unwrap();
    let listed: Vec<Vec<u8>> = store
        .names(RECORD_KIND_INBOUND_KEYS, b"room-a")
        .map(|k| k.key().to_vec())
        .collect();
    assert_eq!(listed, [b"ann".to_vec(), b"bob".to_vec(), b"cyd".to_vec()]);
    assert_eq!(store.names(RECORD_KIND_ROOM_CORE, b"room-b").count(), 1);
    assert_eq!(store.names(RECORD_KIND_IDENTITY, b"").count(), 1);
    assert_eq!(store.names(RECORD_KIND_OUTBOUND_KEY, b"room-c").count(), 0);
}
