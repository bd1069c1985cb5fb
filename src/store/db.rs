//! The SQLite store: one row per issued code, in a WAL database.
//!
//! Verification happens inside [`SqliteStore::with_current`]: a `BEGIN IMMEDIATE` transaction takes the
//! write lock before the row is read, so two `reply` processes racing on one code are serialised
//! and only the first can accept it.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::backend::Inspection;
use super::error::StoreError;
use super::record::{Material, NewRecord, Record, Update, parse_columns};
use super::vault::{Vault, key_file_path};
use crate::CodeKind;
use crate::files;

/// The schema this build writes. Older stores are migrated in place by [`MIGRATIONS`].
const SCHEMA_VERSION: i64 = 3;

/// `MIGRATIONS[n]` takes a store from schema version `n` to `n + 1`. Append new steps; never
/// edit one that has shipped.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] =
    [SCHEMA_1_CODES, SCHEMA_2_META, SCHEMA_3_LIMITS];

/// Version 1: one row per issued code.
const SCHEMA_1_CODES: &str = include_str!("migrations/sqlite/001_codes.sql");

/// Version 2: the id of the sealing key (filled in by [`SqliteStore::migrate`]: a store from schema 1
/// records the key file beside it when it is migrated, `open_mode` having refused a missing one).
const SCHEMA_2_META: &str = include_str!("migrations/sqlite/002_meta.sql");

/// Version 3, per-recipient limits (see [`crate::limits`]): when a throttled code may next be
/// tried, and one row per wrong code, for the daily budget across all of a recipient's codes.
const SCHEMA_3_LIMITS: &str = include_str!("migrations/sqlite/003_limits.sql");

/// The columns [`row_to_record`] reads, in its order.
const RECORD_COLUMNS: &str = "id, recipient, kind, created, expires, attempts, state, sealed, \
    last_step, message_id, otp_algorithm, otp_digits, otp_period, next_attempt";

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    vault: Vault,
    at: Place,
}

/// Which database a connection is on, and how long it waits for a lock: what every error says.
#[derive(Debug, Clone)]
struct Place {
    path: PathBuf,
    /// `path` with its directory resolved: SQLite is told not to follow links, and refuses a
    /// link anywhere in the name it is given, but a store in a linked directory is fine.
    sqlite_path: PathBuf,
    lock_timeout: Duration,
}

impl Place {
    /// The place of the database file at `path`, which must not be a link.
    fn existing(path: &Path, lock_timeout: Duration) -> Result<Place, StoreError> {
        let open_err = |e: std::io::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: crate::io_reason(&e),
        };
        files::refuse_link(path).map_err(open_err)?;
        Ok(Place {
            path: path.to_path_buf(),
            sqlite_path: sqlite_path(path).map_err(open_err)?,
            lock_timeout,
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql_error(&self.path, self.lock_timeout, e)
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.at.path)
            .finish()
    }
}

impl SqliteStore {
    /// [`SqliteStore::create_or_open`] with the default lock timeout.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::create_or_open(path, crate::config::DEFAULT_LOCK_TIMEOUT)
    }

    /// Opens the store for a command that issues codes, creating the database, its directory
    /// (0700) and its key file if this is the first code ever. Waits up to `lock_timeout`
    /// whenever another process holds the lock.
    pub fn create_or_open(path: &Path, lock_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let open_err = |e: std::io::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: crate::io_reason(&e),
        };
        files::create_parent_dirs(path).map_err(open_err)?;
        // Create the file ourselves so that it is 0600 from its first byte; SQLite gives its
        // journal files the same mode.
        match files::create_new(path, OpenOptions::new().write(true)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_err(e)),
        }
        SqliteStore::open_mode(path, lock_timeout, true)?.ok_or_else(|| StoreError::Open {
            path: path.to_path_buf(),
            reason: "it vanished as it was created".into(),
        })
    }

    /// Opens the store for a command that reads or checks codes: `None` if no code was ever
    /// issued (no database, or an empty one without a key file). Creates no file or directory.
    pub fn open_existing(
        path: &Path,
        lock_timeout: Duration,
    ) -> Result<Option<SqliteStore>, StoreError> {
        if is_missing(path) {
            return Ok(None);
        }
        SqliteStore::open_mode(path, lock_timeout, false)
    }

    /// Opens the database at `path` and checks its key file against the key id it records.
    /// Only a database with no record and no recorded key id may get a new key (`create`).
    fn open_mode(
        path: &Path,
        lock_timeout: Duration,
        create: bool,
    ) -> Result<Option<SqliteStore>, StoreError> {
        let at = Place::existing(path, lock_timeout)?;
        let conn = connect(&at)?;
        let (recorded, has_records) = custody(&conn, &at)?;
        let vault = match Vault::load(path)? {
            Some(v) => v,
            None if recorded.is_some() || has_records => {
                return Err(StoreError::KeyMissing {
                    db: path.to_path_buf(),
                    key: key_file_path(path),
                    recorded,
                });
            }
            None if create => Vault::create(path)?,
            None => return Ok(None),
        };
        let mut store = SqliteStore { conn, vault, at };
        store.migrate()?;
        // Read again after migrating: a store created by another process a moment ago may have
        // recorded its key first.
        match custody(&store.conn, &store.at)?.0 {
            Some(id) if id == store.vault.id() => Ok(Some(store)),
            recorded => Err(StoreError::KeyMismatch {
                db: path.to_path_buf(),
                key: key_file_path(path),
                recorded: recorded.unwrap_or_else(|| "none".into()),
                found: store.vault.id().to_string(),
            }),
        }
    }

    /// The id of the key that seals this store's secrets (see [`Vault::id`]).
    pub fn key_id(&self) -> &str {
        self.vault.id()
    }

    /// Another connection to the same store, for another thread. Open these from one thread
    /// while this one is open: opening concurrently makes SQLite's WAL recovery race, and the
    /// losers sleep in the busy handler.
    pub fn another(&self) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            conn: connect(&self.at)?,
            vault: self.vault.clone(),
            at: self.at.clone(),
        })
    }

    /// The store's keys, for checking a code against a record.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The database file this store is in.
    pub fn path(&self) -> &Path {
        &self.at.path
    }

    /// The connection, and how its errors become [`StoreError`]s: for [`super::copy`], which
    /// reads the tables as they are.
    #[cfg(feature = "postgres")]
    pub(super) fn parts(
        &mut self,
    ) -> (
        &mut Connection,
        impl Fn(rusqlite::Error) -> StoreError + 'static,
    ) {
        let at = self.at.clone();
        (&mut self.conn, move |e| at.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        self.at.err(e)
    }

    fn begin(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.at.err(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: self.at.path.clone(),
                found: version,
            });
        }
        // WAL lets readers run beside a writer (the setting is stored in the file).
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(|e| self.err(e))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        // All steps in one transaction: a store is at one version or the next, never between.
        // The version is read again under the write lock, as another process may have migrated
        // the store meanwhile.
        let at = self.at.clone();
        let key_id = self.vault.id().to_string();
        let tx = self.begin()?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| at.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: at.path.clone(),
                found: version,
            });
        }
        let from = usize::try_from(version).unwrap_or(0);
        for step in MIGRATIONS.iter().skip(from) {
            tx.execute_batch(step).map_err(|e| at.err(e))?;
        }
        if from < 2 {
            tx.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('key_id', ?1)",
                params![key_id],
            )
            .map_err(|e| at.err(e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| at.err(e))?;
        tx.commit().map_err(|e| at.err(e))
    }

    /// Records a code about to be sent, in state `sending`. Returns its id.
    pub fn insert_sending(&mut self, new: NewRecord<'_>) -> Result<i64, StoreError> {
        let now = new.created;
        self.insert_sending_after(None, new, now)
    }

    /// [`SqliteStore::insert_sending`], and, in the same transaction, [`SqliteStore::mark_delivered`] for
    /// `delivered`: one commit per mail in a batch instead of two, and never more than one
    /// `sending` record per connection.
    pub fn insert_sending_after(
        &mut self,
        delivered: Option<i64>,
        new: NewRecord<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let NewRecord {
            recipient,
            material,
            created,
            expires,
            message_id,
        } = new;
        let (kind, sealed, otp) = match material {
            Material::Otp(s, p) => (
                CodeKind::Otp,
                self.vault.seal(recipient, created, s.expose())?,
                Some(p),
            ),
            Material::Key(k) => (
                CodeKind::Key,
                self.vault.key_mac(recipient, k.expose()).to_vec(),
                None,
            ),
        };
        let at = self.at.clone();
        let tx = self.begin()?;
        if let Some(id) = delivered {
            deliver_in(&tx, id, now).map_err(|e| at.err(e))?;
        }
        tx.prepare_cached(
            "INSERT INTO codes (recipient, kind, created, expires, attempts, state, sealed, message_id,
                                otp_algorithm, otp_digits, otp_period, updated)
             VALUES (?1, ?2, ?3, ?4, 0, 'sending', ?5, ?6, ?7, ?8, ?9, ?3)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                recipient,
                kind.as_str(),
                created,
                expires,
                sealed,
                message_id,
                otp.map(|p| p.algorithm.as_str()),
                otp.map(|p| p.digits),
                otp.map(|p| p.period as i64),
            ])
        })
        .map_err(|e| at.err(e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| at.err(e))?;
        Ok(id)
    }

    /// The mail of record `id` was delivered: it becomes the recipient's pending code and every
    /// older live code of that recipient is superseded, in one transaction.
    pub fn mark_delivered(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        let at = self.at.clone();
        let tx = self.begin()?;
        deliver_in(&tx, id, now).map_err(|e| at.err(e))?;
        tx.commit().map_err(|e| at.err(e))
    }

    /// The mail of record `id` never left: it can never verify.
    pub fn mark_failed(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE codes SET state = 'failed', updated = ?2 WHERE id = ?1 AND state = 'sending'",
            )
            .and_then(|mut stmt| stmt.execute(params![id, now]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Runs `decide` on the recipient's current record (the newest that was delivered and not
    /// superseded) inside one write transaction, applies the update it returns, and commits.
    /// Any error rolls the transaction back (the `Transaction` is dropped uncommitted).
    pub fn with_current<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Vault, Option<&Record>) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        self.with_current_counted(recipient, now, |vault, record, _| decide(vault, record))
    }

    /// [`SqliteStore::with_current`], also giving `decide` the times (ascending) of the recipient's
    /// wrong codes in the last 24 hours, across all their codes. An update marked `wrong` adds
    /// one at `now`, in the same transaction.
    pub fn with_current_counted<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Vault, Option<&Record>, &[i64]) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let at = self.at.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| at.err(e))?;
        let record = current_in(&tx, &at, recipient)?;
        let since = now - crate::limits::DAY;
        let wrong = times_in(
            &tx,
            "SELECT at FROM attempts WHERE recipient = ?1 AND at > ?2 ORDER BY at",
            recipient,
            since,
        )
        .map_err(|e| at.err(e))?;
        let (update, out) = decide(&self.vault, record.as_ref(), &wrong)?;
        if let (Some(u), Some(r)) = (update, record.as_ref()) {
            tx.prepare_cached(
                "UPDATE codes SET attempts = ?2, state = ?3, last_step = ?4, next_attempt = ?5,
                                  updated = ?6
                 WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    r.id,
                    u.attempts,
                    u.state.as_str(),
                    u.last_step,
                    u.next_attempt,
                    now
                ])
            })
            .map_err(|e| at.err(e))?;
            if u.wrong {
                // Rows that left the window are of no further use: drop this recipient's.
                tx.prepare_cached("DELETE FROM attempts WHERE recipient = ?1 AND at <= ?2")
                    .and_then(|mut stmt| stmt.execute(params![recipient, since]))
                    .and_then(|_| {
                        tx.prepare_cached("INSERT INTO attempts (recipient, at) VALUES (?1, ?2)")
                    })
                    .and_then(|mut stmt| stmt.execute(params![recipient, now]))
                    .map_err(|e| at.err(e))?;
            }
        }
        tx.commit().map_err(|e| at.err(e))?;
        Ok(out)
    }

    /// When (ascending, unix seconds) the codes issued to `recipient` after `since` were
    /// created, not counting sends that failed (those never reached anyone).
    pub fn issued_since(&self, recipient: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        times_in(
            &self.conn,
            "SELECT created FROM codes
             WHERE recipient = ?1 AND created > ?2 AND state <> 'failed' ORDER BY created",
            recipient,
            since,
        )
        .map_err(|e| self.err(e))
    }

    /// Records still `sending` belong to a run that died mid-transaction (send runs hold an
    /// exclusive lock, see `batch`): marks them failed and returns their recipients.
    pub fn fail_interrupted(&mut self, now: i64) -> Result<HashSet<String>, StoreError> {
        let at = self.at.clone();
        let tx = self.begin()?;
        let names = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT recipient FROM codes WHERE state = 'sending'")
                .map_err(|e| at.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| at.err(e))?;
            rows.collect::<Result<HashSet<_>, _>>()
                .map_err(|e| at.err(e))?
        };
        tx.execute(
            "UPDATE codes SET state = 'failed', updated = ?1 WHERE state = 'sending'",
            params![now],
        )
        .map_err(|e| at.err(e))?;
        tx.commit().map_err(|e| at.err(e))?;
        Ok(names)
    }

    /// The recipient's current record: the newest that was delivered and not superseded.
    pub fn current(&self, recipient: &str) -> Result<Option<Record>, StoreError> {
        current_in(&self.conn, &self.at, recipient)
    }

    /// Each recipient's current record (see [`SqliteStore::current`]), or just `recipient`'s.
    pub fn current_records(&self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        self.query_records(
            "WHERE (?1 IS NULL OR recipient = ?1)
               AND id = (SELECT max(id) FROM codes
                         WHERE recipient = c.recipient
                           AND state NOT IN ('sending', 'failed', 'superseded'))
             ORDER BY recipient",
            recipient,
        )
    }

    /// All records, or those of one recipient, oldest first.
    pub fn records(&self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        self.query_records(
            "WHERE (?1 IS NULL OR recipient = ?1) ORDER BY id",
            recipient,
        )
    }

    fn query_records(
        &self,
        filter: &str,
        recipient: Option<&str>,
    ) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM codes c {filter}");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![recipient], row_to_record)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(
                row.map_err(|e| self.err(e))?
                    .map_err(|reason| StoreError::Corrupt {
                        path: self.at.path.clone(),
                        reason,
                    })?,
            );
        }
        Ok(out)
    }
}

/// What `check` shows of the SQLite store at `path`, read without creating or changing
/// anything: no file when there is none, no migration, no key. `None`: no database (nothing was
/// issued). The connection is read-write, as any command's, so that SQLite removes the `-wal`
/// and `-shm` files it opens beside the database when it closes (a read-only one would leave
/// them behind); only reads are made on it.
pub fn inspect(path: &Path, lock_timeout: Duration) -> Result<Option<Inspection>, StoreError> {
    if is_missing(path) {
        return Ok(None);
    }
    let at = Place::existing(path, lock_timeout)?;
    let conn = connect(&at)?;
    let schema: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| at.err(e))?;
    if schema > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: at.path.clone(),
            found: schema,
        });
    }
    let (recorded_key, has_records) = custody(&conn, &at)?;
    let key_file_id = Vault::load(path)?.map(|v| v.id().to_string());
    Ok(Some(Inspection {
        tls: None,
        schema,
        recorded_key,
        has_records,
        key_file: key_file_path(path),
        key_file_id,
    }))
}

/// The recipient's current record, read on `conn` (a connection or an open transaction).
fn current_in(
    conn: &Connection,
    at: &Place,
    recipient: &str,
) -> Result<Option<Record>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM codes
         WHERE recipient = ?1 AND state NOT IN ('sending', 'failed', 'superseded')
         ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut stmt| stmt.query_row(params![recipient], row_to_record).optional())
    .map_err(|e| at.err(e))?
    .transpose()
    .map_err(|reason| StoreError::Corrupt {
        path: at.path.clone(),
        reason,
    })
}

/// Whether there is no database file at `path` (nothing was ever issued); anything else there,
/// a link included, is left for opening to judge.
fn is_missing(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// `path` with its directory's links resolved (the file name kept as it is).
fn sqlite_path(path: &Path) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("it is not a file name"))?;
    Ok(std::fs::canonicalize(dir)?.join(name))
}

/// The key id the database records, and whether it holds any record; both empty for a new
/// database. Only reads.
fn custody(conn: &Connection, at: &Place) -> Result<(Option<String>, bool), StoreError> {
    let has_table = |name: &str| {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            params![name],
            |r| r.get::<_, bool>(0),
        )
    };
    let read = || -> rusqlite::Result<(Option<String>, bool)> {
        let recorded = if has_table("meta")? {
            conn.query_row("SELECT value FROM meta WHERE name = 'key_id'", [], |r| {
                r.get(0)
            })
            .optional()?
        } else {
            None
        };
        let has_records = has_table("codes")?
            && conn.query_row("SELECT EXISTS (SELECT 1 FROM codes)", [], |r| r.get(0))?;
        Ok((recorded, has_records))
    };
    read().map_err(|e| at.err(e))
}

/// The times one query `sql` (with parameters recipient and since) returns.
fn times_in(
    conn: &Connection,
    sql: &str,
    recipient: &str,
    since: i64,
) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![recipient, since], |r| r.get::<_, i64>(0))?;
    rows.collect()
}

/// Opens one SQLite connection with securemail's per-connection settings. The database file
/// must exist (`create_or_open` makes it) and is never opened through a link.
fn connect(at: &Place) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&at.sqlite_path, flags).map_err(|e| at.err(e))?;
    conn.busy_timeout(at.lock_timeout).map_err(|e| at.err(e))?;
    // synchronous = NORMAL (with WAL): a commit survives the process being killed at any
    // instant, which is what resumable batches need; only a power cut may lose the last few
    // commits, never corrupt the database.
    conn.execute_batch("PRAGMA synchronous = NORMAL;")
        .map_err(|e| at.err(e))?;
    Ok(conn)
}

/// Makes record `id` (if still `sending`) the recipient's pending code, superseding older ones.
fn deliver_in(tx: &rusqlite::Transaction<'_>, id: i64, now: i64) -> rusqlite::Result<()> {
    let moved = tx
        .prepare_cached(
            "UPDATE codes SET state = 'pending', updated = ?2 WHERE id = ?1 AND state = 'sending'",
        )?
        .execute(params![id, now])?;
    if moved == 1 {
        tx.prepare_cached(
            "UPDATE codes SET state = 'superseded', updated = ?2
             WHERE recipient = (SELECT recipient FROM codes WHERE id = ?1)
               AND id <> ?1 AND state IN ('pending', 'verified', 'locked')",
        )?
        .execute(params![id, now])?;
    }
    Ok(())
}

type RowResult = Result<Record, String>;

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let kind: String = row.get(2)?;
    let state: String = row.get(6)?;
    let otp_columns = (row.get(10)?, row.get(11)?, row.get(12)?);
    let (kind, state, otp) = match parse_columns(&kind, &state, otp_columns) {
        Ok(parsed) => parsed,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(Record {
        id: row.get(0)?,
        recipient: row.get(1)?,
        kind,
        created: row.get(3)?,
        expires: row.get(4)?,
        attempts: row.get(5)?,
        state,
        sealed: row.get(7)?,
        last_step: row.get(8)?,
        message_id: row.get(9)?,
        otp,
        next_attempt: row.get(13)?,
    }))
}

fn sql_error(path: &Path, lock_timeout: Duration, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let path = path.to_path_buf();
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e {
        let reason = msg.clone().unwrap_or_else(|| f.to_string());
        return match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy {
                path,
                waited: lock_timeout,
            },
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                StoreError::Corrupt { path, reason }
            }
            ErrorCode::ReadOnly | ErrorCode::PermissionDenied => {
                StoreError::ReadOnly { path, reason }
            }
            ErrorCode::CannotOpen => StoreError::Open { path, reason },
            _ => StoreError::Sqlite { path, reason },
        };
    }
    StoreError::Sqlite {
        path,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::otp::{OtpAlgorithm, OtpParams};
    use crate::secret::Secret;
    use crate::store::State;
    use crate::store::vault::key_file_path;

    /// A store path whose directory does not exist yet (the store creates it), in a temporary
    /// directory removed on drop.
    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("store").join("codes.db");
        (t, db)
    }

    #[test]
    fn files_are_private_and_secrets_absent() {
        let (_t, db) = temp_db();
        let mut s = SqliteStore::open(&db).unwrap();
        let key = Secret::new("7KQ29XMD4HTP".to_string());
        let otp = Secret::new(b"SUPERSECRETBYTES1234".to_vec());
        let params = OtpParams {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        let a = s
            .insert_sending(NewRecord {
                recipient: "a@x.org",
                material: Material::Key(&key),
                created: 100,
                expires: 200,
                message_id: "<1@x>",
            })
            .unwrap();
        let b = s
            .insert_sending(NewRecord {
                recipient: "b@x.org",
                material: Material::Otp(&otp, params),
                created: 100,
                expires: 200,
                message_id: "<2@x>",
            })
            .unwrap();
        s.mark_delivered(a, 101).unwrap();
        s.mark_delivered(b, 101).unwrap();
        drop(s);
        for p in [db.clone(), key_file_path(&db)] {
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let mut all = fs::read(&db).unwrap();
        if let Ok(wal) = fs::read(db.with_extension("db-wal")) {
            all.extend(wal);
        }
        let hay = String::from_utf8_lossy(&all);
        assert!(!hay.contains("7KQ29XMD4HTP"));
        assert!(!hay.contains("SUPERSECRETBYTES"));
    }

    #[test]
    fn key_matches_only_its_key_and_recipient() {
        let (_t, db) = temp_db();
        let mut s = SqliteStore::open(&db).unwrap();
        let key = Secret::new("ABCDEFGHJK".to_string());
        let id = s
            .insert_sending(NewRecord {
                recipient: "a@x.org",
                material: Material::Key(&key),
                created: 1,
                expires: 2,
                message_id: "<m>",
            })
            .unwrap();
        s.mark_delivered(id, 1).unwrap();
        let rec = s.records(Some("a@x.org")).unwrap().remove(0);
        assert!(s.vault().key_matches(&rec, "ABCDEFGHJK"));
        assert!(!s.vault().key_matches(&rec, "ABCDEFGHJ0"));
        let mut other = rec.clone();
        other.recipient = "b@x.org".into();
        assert!(!s.vault().key_matches(&other, "ABCDEFGHJK"));
    }

    #[test]
    fn otp_secret_round_trips_and_is_bound_to_its_row() {
        let (_t, db) = temp_db();
        let mut s = SqliteStore::open(&db).unwrap();
        let secret = Secret::new(vec![7u8; 20]);
        let params = OtpParams {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        s.insert_sending(NewRecord {
            recipient: "a@x.org",
            material: Material::Otp(&secret, params),
            created: 5,
            expires: 6,
            message_id: "<m>",
        })
        .unwrap();
        let rec = s.records(None).unwrap().remove(0);
        assert_eq!(s.vault().unseal_otp(&rec).unwrap().expose(), &vec![7u8; 20]);
        assert_eq!(rec.otp, Some(params));
        let mut moved = rec.clone();
        moved.recipient = "b@x.org".into();
        assert!(matches!(
            s.vault().unseal_otp(&moved),
            Err(StoreError::Unseal { .. })
        ));
    }

    #[test]
    fn delivery_supersedes_older_live_codes() {
        let (_t, db) = temp_db();
        let mut s = SqliteStore::open(&db).unwrap();
        let k = Secret::new("ABCDEFGHJK".to_string());
        let a = s
            .insert_sending(NewRecord {
                recipient: "a@x.org",
                material: Material::Key(&k),
                created: 1,
                expires: 99,
                message_id: "<1>",
            })
            .unwrap();
        s.mark_delivered(a, 1).unwrap();
        let b = s
            .insert_sending(NewRecord {
                recipient: "a@x.org",
                material: Material::Key(&k),
                created: 2,
                expires: 99,
                message_id: "<2>",
            })
            .unwrap();
        // Still sending: a stays current.
        let cur = s
            .with_current("a@x.org", 2, |_, r| Ok((None, r.map(|r| r.id))))
            .unwrap();
        assert_eq!(cur, Some(a));
        s.mark_delivered(b, 3).unwrap();
        let states: Vec<_> = s.records(None).unwrap().iter().map(|r| r.state).collect();
        assert_eq!(states, vec![State::Superseded, State::Pending]);
    }

    #[test]
    fn failed_sends_never_become_current() {
        let (_t, db) = temp_db();
        let mut s = SqliteStore::open(&db).unwrap();
        let k = Secret::new("ABCDEFGHJK".to_string());
        let a = s
            .insert_sending(NewRecord {
                recipient: "a@x.org",
                material: Material::Key(&k),
                created: 1,
                expires: 99,
                message_id: "<1>",
            })
            .unwrap();
        s.mark_failed(a, 2).unwrap();
        let cur = s
            .with_current("a@x.org", 2, |_, r| Ok((None, r.is_some())))
            .unwrap();
        assert!(!cur);
    }

    #[test]
    fn a_version_1_store_is_migrated_in_place() {
        let (_t, db) = temp_db();
        fs::create_dir_all(db.parent().unwrap()).unwrap();
        // A schema 1 store has its key file; migrating records that key's id.
        let key = key_file_path(&db);
        fs::write(&key, [7u8; 32]).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let old = Connection::open(&db).unwrap();
        old.execute_batch(SCHEMA_1_CODES).unwrap();
        old.execute(
            "INSERT INTO codes (recipient, kind, created, expires, attempts, state, sealed, updated)
             VALUES ('a@x.org', 'key', 1, 99, 2, 'pending', x'00', 1)",
            [],
        )
        .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        drop(old);
        let mut s = SqliteStore::open(&db).unwrap();
        let rec = s.current("a@x.org").unwrap().unwrap();
        assert_eq!(
            (rec.attempts, rec.state, rec.next_attempt),
            (2, State::Pending, None)
        );
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // The new table works: a wrong attempt is counted for the recipient.
        let wrong = s
            .with_current_counted("a@x.org", 50, |_, r, wrong| {
                assert!(wrong.is_empty());
                let update = Update {
                    attempts: 3,
                    wrong: true,
                    ..Update::unchanged(r.unwrap())
                };
                Ok((Some(update), ()))
            })
            .and_then(|()| s.with_current_counted("a@x.org", 51, |_, _, w| Ok((None, w.to_vec()))))
            .unwrap();
        assert_eq!(wrong, vec![50]);
        drop(s);
        // Opening again changes nothing.
        assert_eq!(
            SqliteStore::open(&db).unwrap().records(None).unwrap().len(),
            1
        );
    }

    #[test]
    fn open_key_file_is_refused() {
        let (_t, db) = temp_db();
        drop(SqliteStore::open(&db).unwrap());
        fs::set_permissions(key_file_path(&db), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SqliteStore::open(&db),
            Err(StoreError::KeyFileOpen { mode: 0o644, .. })
        ));
    }
}
