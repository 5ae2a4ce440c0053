//! [`SqliteStore`]: a backend in one SQLite file (feature `sqlite`).

use super::{Batch, Store, Visit};
use crate::error::{BackendError, DecodeError, Error};
use crate::record::{RECORD_HEADER_LEN, RecordKey};
use alloc::vec::Vec;
use core::fmt;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

/// `PRAGMA application_id` of a secret-chat store: ASCII "scv2".
const APPLICATION_ID: i64 = 0x7363_7632;
/// `PRAGMA user_version`: the schema below.
const SCHEMA_VERSION: i64 = 1;
/// How long a write waits for another connection's lock before
/// [`BackendError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "CREATE TABLE records (
    kind INTEGER NOT NULL,
    room BLOB NOT NULL,
    key  BLOB NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (kind, room, key)
) WITHOUT ROWID;";

/// A [`Store`] in one SQLite file (bundled SQLite through `rusqlite`).
///
/// One table `records (kind, room, key) -> blob`; every [`Batch`] is one
/// `BEGIN IMMEDIATE ... COMMIT` transaction. The journal is WAL with
/// `synchronous = FULL`: a transaction is atomic across a crash of the
/// process or of the machine, and durable once `apply` returns (with
/// `NORMAL`, a power loss could drop the last commits: a rollback the app
/// would then have to accept). The file is marked with
/// `application_id = 0x73637632` ("scv2") and `user_version = 1`; another
/// file is refused.
///
/// ```
/// use secret_chat::store::{SealedStore, SqliteStore};
/// use secret_chat::StorageKey;
/// # let dir = std::env::temp_dir().join(format!("sc-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let backend = SqliteStore::open(dir.join("state.db")).unwrap();
/// let store = SealedStore::open(backend, &StorageKey::generate(), None).unwrap();
/// assert_eq!(store.generation(), 0);
/// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct SqliteStore {
    conn: Connection,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

/// Maps a SQLite failure to what the app can do about it.
fn backend(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let kind = match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => BackendError::Busy,
        Some(C::DiskFull) => BackendError::Full,
        Some(C::ReadOnly | C::PermissionDenied) => BackendError::ReadOnly,
        Some(C::DatabaseCorrupt | C::NotADatabase) => BackendError::Corrupt,
        Some(C::SystemIoFailure | C::CannotOpen | C::FileLockingProtocolFailed) => BackendError::Io,
        _ => BackendError::Other,
    };
    Error::Backend(kind)
}

fn kind_of(v: i64) -> Result<u8, Error> {
    u8::try_from(v).map_err(|_| Error::StoreInconsistent)
}

impl SqliteStore {
    /// Opens (or creates) the store file at `path`.
    ///
    /// Errors: [`Error::Backend`] ([`BackendError::Corrupt`] for a file that
    /// is not a secret-chat store), [`Error::Malformed`] with
    /// [`DecodeError::UnsupportedVersion`] for a store of a newer schema.
    ///
    /// ```
    /// use secret_chat::store::{SealedStore, SqliteStore};
    /// use secret_chat::StorageKey;
    /// let dir = std::env::temp_dir().join(format!("sc-sqlite-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let key = StorageKey::generate(); // from the OS keystore
    /// let store = SealedStore::open(SqliteStore::open(dir.join("chat.db"))?, &key, None)?;
    /// assert_eq!(store.generation(), 0);
    /// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::setup(Connection::open(path).map_err(backend)?)
    }

    /// A store in a private in-memory database (tests).
    ///
    /// ```
    /// use secret_chat::store::{SealedStore, SqliteStore};
    /// let store = SealedStore::open(SqliteStore::open_in_memory()?, &secret_chat::StorageKey::generate(), None)?;
    /// # let _ = store;
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::setup(Connection::open_in_memory().map_err(backend)?)
    }

    fn setup(mut conn: Connection) -> Result<Self, Error> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        // Small pages for a new file (ignored for an existing one): a commit
        // writes a few pages to the log, and a received message changes one
        // record of ~300 bytes plus the meta record.
        conn.execute_batch("PRAGMA page_size = 1024")
            .map_err(backend)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(backend)?;
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(backend)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let app: i64 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(backend)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(backend)?;
        match (app, version, tables) {
            (0, 0, 0) => {
                tx.execute_batch(SCHEMA).map_err(backend)?;
                tx.execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
                ))
                .map_err(backend)?;
            }
            (APPLICATION_ID, SCHEMA_VERSION, _) => {}
            (APPLICATION_ID, v, _) => {
                return Err(Error::Malformed(DecodeError::UnsupportedVersion(
                    u8::try_from(v).unwrap_or(u8::MAX),
                )));
            }
            _ => return Err(Error::Backend(BackendError::Corrupt)),
        }
        tx.commit().map_err(backend)?;
        Ok(Self { conn })
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob FROM records WHERE kind = ?1 AND room = ?2 AND key = ?3")
            .map_err(backend)?;
        stmt.query_row(params![key.kind(), key.room(), key.key()], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn scan(&self, visit: &mut Visit<'_>) -> Result<(), Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, room, key, substr(blob, 1, ?1) FROM records ORDER BY kind, room, key",
            )
            .map_err(backend)?;
        let header_len = i64::try_from(RECORD_HEADER_LEN).unwrap_or(i64::MAX);
        let mut rows = stmt.query([header_len]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let kind = kind_of(row.get(0).map_err(backend)?)?;
            let room: Vec<u8> = row.get(1).map_err(backend)?;
            let key: Vec<u8> = row.get(2).map_err(backend)?;
            let head: Vec<u8> = row.get(3).map_err(backend)?;
            let name = RecordKey::new(kind, &room, &key).map_err(|_| Error::StoreInconsistent)?;
            visit(name, &head)?;
        }
        Ok(())
    }

    fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        if let Some((k, want)) = batch.expectation() {
            let mut get = tx
                .prepare_cached(
                    "SELECT blob FROM records WHERE kind = ?1 AND room = ?2 AND key = ?3",
                )
                .map_err(backend)?;
            let have: Option<Vec<u8>> = get
                .query_row(params![k.kind(), k.room(), k.key()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if have.as_deref() != want {
                return Err(Error::Backend(BackendError::Conflict));
            }
        }
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO records (kind, room, key, blob) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(backend)?;
            let mut del = tx
                .prepare_cached("DELETE FROM records WHERE kind = ?1 AND room = ?2 AND key = ?3")
                .map_err(backend)?;
            for (k, op) in batch.ops() {
                match op {
                    Some(blob) => put.execute(params![k.kind(), k.room(), k.key(), blob]),
                    None => del.execute(params![k.kind(), k.room(), k.key()]),
                }
                .map_err(backend)?;
            }
        }
        // Dropping `tx` on an error above rolls the whole batch back.
        tx.commit().map_err(backend)
    }
}
