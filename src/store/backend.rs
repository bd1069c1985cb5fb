//! The store the rest of securemail uses: SQLite ([`super::db`], the zero-setup default) or
//! PostgreSQL ([`super::pg`], shared by several hosts), chosen by `[store] path` or `url`.
//!
//! An enum rather than a trait object: verification hands a closure to the store
//! ([`Store::with_current_counted`]), which a trait could not take and stay object-safe, and
//! there are exactly two backends. Both keep the same records under the same rules.

#[cfg(feature = "postgres")]
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::db::SqliteStore;
use super::error::StoreError;
#[cfg(feature = "postgres")]
use super::pg::PgStore;
use super::record::{NewRecord, Record, Update};
use super::vault::Vault;
use crate::config::Settings;

/// How long a `[store] password_command` may take.
pub(super) const PASSWORD_TIMEOUT: Duration = Duration::from_secs(30);

/// An open store. A handful exist per process (one per thread), so the variants' sizes
/// (a PostgreSQL client is larger) do not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Store {
    Sqlite(SqliteStore),
    /// In a `RefCell`: the PostgreSQL client needs `&mut` even to read, and a `Store` is only
    /// ever used by one thread at a time (each thread gets [`Store::another`]).
    #[cfg(feature = "postgres")]
    Postgres(RefCell<PgStore>),
}

/// Runs `$body` with `$s` bound to the backend store (mutably borrowed for PostgreSQL).
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            Store::Postgres(cell) => {
                #[allow(unused_mut)]
                let mut $s = cell.borrow_mut();
                $body
            }
        }
    };
}

impl Store {
    /// A SQLite store at `path` with the default lock timeout (tests and tools).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        SqliteStore::open(path).map(Store::Sqlite)
    }

    /// Opens the configured store for a command that issues codes, creating what the first
    /// code needs (database or tables, key file).
    pub fn create_or_open(settings: &Settings) -> Result<Store, StoreError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &settings.postgres {
            let store = PgStore::open(pg, settings.store_lock_timeout, PASSWORD_TIMEOUT, true)?;
            return store
                .map(|s| Store::Postgres(RefCell::new(s)))
                .ok_or_else(|| StoreError::Postgres {
                    store: pg.url.clone(),
                    reason: "the store vanished as it was created".into(),
                });
        }
        SqliteStore::create_or_open(&settings.store_path, settings.store_lock_timeout)
            .map(Store::Sqlite)
    }

    /// Opens the configured store for a command that reads or checks codes: `None` if no code
    /// was ever issued. Creates no file, directory or table.
    pub fn open_existing(settings: &Settings) -> Result<Option<Store>, StoreError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &settings.postgres {
            let store = PgStore::open(pg, settings.store_lock_timeout, PASSWORD_TIMEOUT, false)?;
            return Ok(store.map(|s| Store::Postgres(RefCell::new(s))));
        }
        let _ = PASSWORD_TIMEOUT;
        SqliteStore::open_existing(&settings.store_path, settings.store_lock_timeout)
            .map(|s| s.map(Store::Sqlite))
    }

    /// What `check` shows of the configured store, read without creating or changing anything
    /// (no file, directory, table or key). `None`: a SQLite store that does not exist yet.
    pub fn inspect(settings: &Settings) -> Result<Option<Inspection>, StoreError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &settings.postgres {
            return super::pg::inspect(pg, settings.store_lock_timeout, PASSWORD_TIMEOUT).map(Some);
        }
        super::db::inspect(&settings.store_path, settings.store_lock_timeout)
    }

    /// The store as the user configured it: a path or a URL.
    pub fn describe(settings: &Settings) -> String {
        match &settings.postgres {
            Some(pg) => pg.url.clone(),
            None => settings.store_path.display().to_string(),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => "postgres",
        }
    }

    /// The id of the key that seals this store's secrets.
    pub fn key_id(&self) -> String {
        each!(self, s => s.key_id().to_string())
    }

    /// A copy of the store's keys, for checking a code against a record.
    pub fn vault(&self) -> Vault {
        each!(self, s => s.vault().clone())
    }

    /// Another connection to the same store, for another thread.
    pub fn another(&self) -> Result<Store, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => Store::Sqlite(s.another()?),
            #[cfg(feature = "postgres")]
            Store::Postgres(cell) => Store::Postgres(RefCell::new(cell.borrow().another()?)),
        })
    }

    /// The PostgreSQL store, for what only it has: send runs and shared batches
    /// ([`super::queue`]). `None` for SQLite, where one send runs at a time (`batch::lock`).
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Option<&mut PgStore> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(cell) => Some(cell.get_mut()),
        }
    }

    /// Records a code about to be sent, in state `sending`. Returns its id.
    pub fn insert_sending(&mut self, new: NewRecord<'_>) -> Result<i64, StoreError> {
        let now = new.created;
        self.insert_sending_after(None, new, now)
    }

    /// [`Store::insert_sending`], and, in the same transaction, [`Store::mark_delivered`] for
    /// `delivered`.
    pub fn insert_sending_after(
        &mut self,
        delivered: Option<i64>,
        new: NewRecord<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        each!(self, s => s.insert_sending_after(delivered, new, now))
    }

    /// The mail of record `id` was delivered: it becomes the recipient's pending code and every
    /// older live code of that recipient is superseded, in one transaction.
    pub fn mark_delivered(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        each!(self, s => s.mark_delivered(id, now))
    }

    /// The mail of record `id` never left: it can never verify.
    pub fn mark_failed(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        each!(self, s => s.mark_failed(id, now))
    }

    /// Runs `decide` on the recipient's current record inside one write transaction, applies
    /// the update it returns, and commits; any error rolls back.
    pub fn with_current<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Vault, Option<&Record>) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        self.with_current_counted(recipient, now, |vault, record, _| decide(vault, record))
    }

    /// [`Store::with_current`], also giving `decide` the times of the recipient's wrong codes in
    /// the last 24 hours; an update marked `wrong` adds one at `now`, in the same transaction.
    pub fn with_current_counted<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Vault, Option<&Record>, &[i64]) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        each!(self, s => s.with_current_counted(recipient, now, decide))
    }

    /// When the codes issued to `recipient` after `since` were created (not failed sends).
    pub fn issued_since(&self, recipient: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        each!(self, s => s.issued_since(recipient, since))
    }

    /// Marks records still `sending` (from a run that died) failed; returns their recipients.
    pub fn fail_interrupted(&mut self, now: i64) -> Result<HashSet<String>, StoreError> {
        each!(self, s => s.fail_interrupted(now))
    }

    /// The recipient's current record: the newest that was delivered and not superseded.
    pub fn current(&self, recipient: &str) -> Result<Option<Record>, StoreError> {
        each!(self, s => s.current(recipient))
    }

    /// Each recipient's current record, or just `recipient`'s.
    pub fn current_records(&self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        each!(self, s => s.current_records(recipient))
    }

    /// All records, or those of one recipient, oldest first.
    pub fn records(&self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        each!(self, s => s.records(recipient))
    }
}

/// A store as `check` sees it: what the database records, and the key file beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// PostgreSQL: whether the connection uses verified TLS. `None` for SQLite.
    pub tls: Option<bool>,
    /// The schema version; 0 for a database without securemail's tables.
    pub schema: i64,
    /// The key id the database records.
    pub recorded_key: Option<String>,
    /// Whether the database holds any record.
    pub has_records: bool,
    pub key_file: PathBuf,
    /// The id of the key in `key_file`; `None` when there is no such file.
    pub key_file_id: Option<String>,
}

impl Inspection {
    /// The id of the key that seals the store, when the key file is the store's; `None` when
    /// nothing was issued yet (no key recorded, no key file). The same custody rules as opening
    /// the store: a store with records or a recorded id needs its own key file.
    pub fn key_id(&self, store: &str) -> Result<Option<String>, StoreError> {
        let db = PathBuf::from(store);
        match (&self.recorded_key, &self.key_file_id) {
            (Some(recorded), Some(found)) if recorded != found => Err(StoreError::KeyMismatch {
                db,
                key: self.key_file.clone(),
                recorded: recorded.clone(),
                found: found.clone(),
            }),
            (recorded, None) if recorded.is_some() || self.has_records => {
                Err(StoreError::KeyMissing {
                    db,
                    key: self.key_file.clone(),
                    recorded: recorded.clone(),
                })
            }
            (_, found) => Ok(found.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(recorded: Option<&str>, records: bool, found: Option<&str>) -> Inspection {
        Inspection {
            tls: None,
            schema: 3,
            recorded_key: recorded.map(str::to_string),
            has_records: records,
            key_file: PathBuf::from("/d/securemail.key"),
            key_file_id: found.map(str::to_string),
        }
    }

    #[test]
    fn the_key_file_must_be_the_one_the_store_records() {
        let id = |i: &Inspection| i.key_id("/d/securemail.db");
        assert_eq!(
            id(&seen(Some("a"), true, Some("a"))).unwrap(),
            Some("a".into())
        );
        assert_eq!(id(&seen(None, false, None)).unwrap(), None);
        assert_eq!(id(&seen(None, false, Some("b"))).unwrap(), Some("b".into()));
        assert!(matches!(
            id(&seen(Some("a"), true, Some("b"))),
            Err(StoreError::KeyMismatch { .. })
        ));
        assert!(matches!(
            id(&seen(Some("a"), false, None)),
            Err(StoreError::KeyMissing { .. })
        ));
        assert!(matches!(
            id(&seen(None, true, None)),
            Err(StoreError::KeyMissing { .. })
        ));
    }
}
