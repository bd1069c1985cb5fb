//! The PostgreSQL store: the same records and rules as [`super::db`], in a database that several
//! hosts share.
//!
//! SQLite serialises every writer on one file lock; here each transaction that reads a
//! recipient's codes and then changes them first takes a transaction-scoped advisory lock on the
//! recipient (`pg_advisory_xact_lock`), and reads the row `FOR UPDATE`. So N hosts replying at
//! once with one code are serialised per recipient and only the first can accept it, and the
//! per-recipient budgets are counted with nobody else writing them. The schema is applied from
//! the versioned files in `migrations/postgres/` and recorded in `securemail_schema`; a database
//! with a newer schema than this build knows is refused, never altered.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Row};

use super::backend::Inspection;
use super::error::StoreError;
use super::record::{Material, NewRecord, Record, Update, parse_columns};
use super::vault::Vault;
use crate::CodeKind;
use crate::config::PostgresSettings;
use crate::config::pg_url::UrlOrigin;
use crate::secret::Secret;

/// The schema migrations, in order: `(version, name, SQL)`. Append new files; never edit one
/// that has shipped.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("migrations/postgres/001_schema.sql"),
    ),
    (
        2,
        "batches",
        include_str!("migrations/postgres/002_batches.sql"),
    ),
];

/// The newest schema this build knows.
const SCHEMA_VERSION: i32 = 2;

/// Advisory lock classes (the first key of the two-key form), all within this database.
/// (3 was the store-wide send lock of schema 1, before batches were shared.)
const LOCK_RECIPIENT: i32 = 1;
const LOCK_MIGRATE: i32 = 2;
pub(super) const LOCK_BATCH: i32 = 4;

/// How long to wait for the server to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The columns [`row_to_record`] reads, in its order.
const RECORD_COLUMNS: &str = "id, recipient, kind, created, expires, attempts, state, sealed, \
    last_step, message_id, otp_algorithm, otp_digits, otp_period, next_attempt";

/// The columns of a new record and their values, `$1`… in [`PgStore::insert_sending_after`]'s
/// order (typed: the values are also selected, not only inserted).
const INSERT_CODE: &str = "(recipient, kind, created, expires, attempts, state, sealed, message_id,
    otp_algorithm, otp_digits, otp_period, updated, run)";
const CODE_VALUES: &str = "$1::text, $2::text, $3::bigint, $4::bigint, 0, 'sending', $5::bytea,
    $6::text, $7::text, $8::integer, $9::bigint, $3::bigint, $10::bigint";

/// The recipient's current record: the newest that was delivered and not superseded.
const CURRENT: &str = "WHERE recipient = $1 AND state NOT IN ('sending', 'failed', 'superseded')
    ORDER BY id DESC LIMIT 1";

/// How to reach the database, and how long to wait for a lock: what every error names.
#[derive(Clone)]
pub(super) struct Place {
    settings: PostgresSettings,
    password: Option<Secret<String>>,
    lock_timeout: Duration,
}

impl Place {
    /// The place `settings` name, with the password fetched from its source.
    fn new(
        settings: &PostgresSettings,
        lock_timeout: Duration,
        password_timeout: Duration,
    ) -> Result<Place, StoreError> {
        let password = settings
            .password
            .as_ref()
            .map(|source| store_password(settings, source, password_timeout))
            .transpose()?;
        Ok(Place {
            settings: settings.clone(),
            password,
            lock_timeout,
        })
    }

    pub(super) fn name(&self) -> String {
        self.settings.url.clone()
    }

    pub(super) fn err(&self, e: postgres::Error) -> StoreError {
        let store = self.name();
        if let Some(db) = e.as_db_error() {
            let reason = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            return match *db.code() {
                SqlState::LOCK_NOT_AVAILABLE | SqlState::QUERY_CANCELED => StoreError::Busy {
                    path: PathBuf::from(store),
                    waited: self.lock_timeout,
                },
                _ => StoreError::Postgres { store, reason },
            };
        }
        if e.is_closed() {
            return StoreError::Unreachable {
                store,
                reason: chain(&e),
            };
        }
        StoreError::Postgres {
            store,
            reason: chain(&e),
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: PathBuf::from(self.name()),
            reason,
        }
    }
}

/// An error and its causes, `: `-separated (tokio-postgres puts the interesting part below).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        next = cause.source();
    }
    out
}

/// The rustls error somewhere in `e`'s causes, if the failure was TLS's.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        next = cause.source();
    }
    None
}

/// The send run a connection works for (see [`super::queue`]): its records carry `id`, and
/// with a `batch` it may only record mails to recipients it holds a claim on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIds {
    pub id: i64,
    pub batch: Option<i64>,
}

/// The PostgreSQL store.
pub struct PgStore {
    client: Client,
    vault: Vault,
    at: Place,
    run: Option<RunIds>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.at.settings.url)
            .finish()
    }
}

impl PgStore {
    /// Opens the store; with `create`, a database without securemail's tables gets them and,
    /// when the key file is missing too, a new key. `None`: nothing was ever issued and
    /// `create` is false. Mirrors [`super::db::SqliteStore`]'s custody rules: only a database
    /// with no record and no recorded key id may get a new key.
    pub fn open(
        settings: &PostgresSettings,
        lock_timeout: Duration,
        password_timeout: Duration,
        create: bool,
    ) -> Result<Option<PgStore>, StoreError> {
        let at = Place::new(settings, lock_timeout, password_timeout)?;
        let mut client = connect(&at)?;
        let (recorded, has_records) = custody(&mut client, &at)?;
        let name = PathBuf::from(at.name());
        let key = &settings.key_file;
        let vault = match Vault::load_from(key, &name)? {
            Some(v) => v,
            None if recorded.is_some() || has_records => {
                return Err(StoreError::KeyMissing {
                    db: name,
                    key: key.clone(),
                    recorded,
                });
            }
            None if create => {
                crate::files::create_parent_dirs(key).map_err(|e| StoreError::KeyFile {
                    path: key.clone(),
                    reason: crate::io_reason(&e),
                })?;
                Vault::create_at(key.clone(), &name)?
            }
            None => return Ok(None),
        };
        let mut store = PgStore {
            client,
            vault,
            at,
            run: None,
        };
        store.migrate()?;
        match custody(&mut store.client, &store.at)?.0 {
            Some(id) if id == store.vault.id() => Ok(Some(store)),
            recorded => Err(StoreError::KeyMismatch {
                db: name,
                key: key.clone(),
                recorded: recorded.unwrap_or_else(|| "none".into()),
                found: store.vault.id().to_string(),
            }),
        }
    }

    pub fn key_id(&self) -> &str {
        self.vault.id()
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The client, and how its errors become [`StoreError`]s: for [`super::copy`], which
    /// writes the tables as they are.
    pub(super) fn client_parts(
        &mut self,
    ) -> (
        &mut Client,
        impl Fn(postgres::Error) -> StoreError + 'static,
    ) {
        let at = self.at.clone();
        (&mut self.client, move |e| at.err(e))
    }

    /// Another connection to the same database, for another thread, working for the same run.
    pub fn another(&self) -> Result<PgStore, StoreError> {
        Ok(PgStore {
            client: connect(&self.at)?,
            vault: self.vault.clone(),
            at: self.at.clone(),
            run: self.run,
        })
    }

    /// The connection, the run it works for, and what errors name: for [`super::queue`].
    pub(super) fn parts(&mut self) -> (&mut Client, &mut Option<RunIds>, &Place) {
        (&mut self.client, &mut self.run, &self.at)
    }

    fn schema_version(&mut self) -> Result<i32, StoreError> {
        let at = self.at.clone();
        read_version(&mut self.client).map_err(|e| at.err(e))
    }

    /// Applies the migrations this database lacks, all in one transaction under the migration
    /// lock (another host may be doing the same), and records each.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let at = self.at.clone();
        let newer = |found: i32| StoreError::Newer {
            path: PathBuf::from(at.name()),
            found: i64::from(found),
        };
        match self.schema_version()? {
            v if v > SCHEMA_VERSION => return Err(newer(v)),
            v if v == SCHEMA_VERSION => return Ok(()),
            _ => {}
        }
        let key_id = self.vault.id().to_string();
        let mut tx = self.client.transaction().map_err(|e| at.err(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_MIGRATE])
            .map_err(|e| at.err(e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS securemail_schema (
                 version INTEGER PRIMARY KEY,
                 name    TEXT    NOT NULL,
                 applied BIGINT  NOT NULL
             )",
        )
        .map_err(|e| at.err(e))?;
        let from = read_version(&mut tx).map_err(|e| at.err(e))?;
        if from > SCHEMA_VERSION {
            return Err(newer(from));
        }
        for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > from) {
            tx.batch_execute(sql).map_err(|e| at.err(e))?;
            tx.execute(
                "INSERT INTO securemail_schema (version, name, applied) VALUES ($1, $2, $3)",
                &[&version, &name, &crate::unix_now()],
            )
            .map_err(|e| at.err(e))?;
        }
        if from == 0 {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('key_id', $1) ON CONFLICT (name) DO NOTHING",
                &[&key_id],
            )
            .map_err(|e| at.err(e))?;
        }
        tx.commit().map_err(|e| at.err(e))
    }

    /// See [`super::db::SqliteStore::insert_sending_after`].
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
        let run = self.run;
        let mut tx = self.client.transaction().map_err(|e| at.err(e))?;
        if let Some(id) = delivered {
            deliver_in(&mut tx, id, now, run.and_then(|r| r.batch)).map_err(|e| at.err(e))?;
        }
        let code = &[
            &recipient as &(dyn postgres::types::ToSql + Sync),
            &kind.as_str(),
            &created,
            &expires,
            &sealed,
            &message_id,
            &otp.map(|p| p.algorithm.as_str()),
            &otp.map(|p| i32::from(p.digits)),
            &otp.map(|p| i64::try_from(p.period).unwrap_or(i64::MAX)),
            &run.map(|r| r.id),
        ];
        let row = match run.and_then(|r| r.batch) {
            None => tx.query_opt(
                &format!("INSERT INTO codes {INSERT_CODE} VALUES ({CODE_VALUES}) RETURNING id"),
                code,
            ),
            // Only while this run holds the recipient's claim, whose row stays locked until the
            // commit: a run taking it over meanwhile waits, then finds this record `sending`
            // and fails it (see `queue`).
            Some(batch) => tx.query_opt(
                &format!(
                    "WITH held AS (SELECT 1 FROM batch_items
                                   WHERE batch = $11 AND recipient = $1 AND claimed_by = $10
                                     AND state = 'claimed'
                                   FOR UPDATE)
                     INSERT INTO codes {INSERT_CODE} SELECT {CODE_VALUES} FROM held RETURNING id"
                ),
                &[code.as_slice(), &[&batch]].concat(),
            ),
        }
        .map_err(|e| at.err(e))?;
        let Some(row) = row else {
            return Err(StoreError::ClaimLost {
                recipient: recipient.to_string(),
            });
        };
        let id: i64 = row.try_get(0).map_err(|e| at.err(e))?;
        tx.commit().map_err(|e| at.err(e))?;
        Ok(id)
    }

    pub fn mark_delivered(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        let at = self.at.clone();
        let batch = self.run.and_then(|r| r.batch);
        let mut tx = self.client.transaction().map_err(|e| at.err(e))?;
        deliver_in(&mut tx, id, now, batch).map_err(|e| at.err(e))?;
        tx.commit().map_err(|e| at.err(e))
    }

    pub fn mark_failed(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        let at = self.at.clone();
        self.client
            .execute(
                "UPDATE codes SET state = 'failed', updated = $2 WHERE id = $1 AND state = 'sending'",
                &[&id, &now],
            )
            .map_err(|e| at.err(e))?;
        Ok(())
    }

    /// See [`super::db::SqliteStore::with_current_counted`]: here the transaction holds the
    /// recipient's advisory lock and the current row `FOR UPDATE`.
    pub fn with_current_counted<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Vault, Option<&Record>, &[i64]) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let at = self.at.clone();
        let mut tx = self.client.transaction().map_err(|e| at.err(e))?;
        lock_recipient(&mut tx, recipient).map_err(|e| at.err(e))?;
        let record = tx
            .query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM codes {CURRENT} FOR UPDATE"),
                &[&recipient],
            )
            .map_err(|e| at.err(e))?
            .map(|row| row_to_record(&at, &row))
            .transpose()?;
        let since = now - crate::limits::DAY;
        let wrong: Vec<i64> = tx
            .query(
                "SELECT at FROM attempts WHERE recipient = $1 AND at > $2 ORDER BY at",
                &[&recipient, &since],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get::<_, i64>(0)).collect())
            .map_err(|e| at.err(e))?;
        let (update, out) = decide(&self.vault, record.as_ref(), &wrong)?;
        if let (Some(u), Some(r)) = (update, record.as_ref()) {
            let attempts = i32::try_from(u.attempts).unwrap_or(i32::MAX);
            tx.execute(
                "UPDATE codes SET attempts = $2, state = $3, last_step = $4, next_attempt = $5,
                                  updated = $6
                 WHERE id = $1",
                &[
                    &r.id,
                    &attempts,
                    &u.state.as_str(),
                    &u.last_step,
                    &u.next_attempt,
                    &now,
                ],
            )
            .map_err(|e| at.err(e))?;
            if u.wrong {
                tx.execute(
                    "DELETE FROM attempts WHERE recipient = $1 AND at <= $2",
                    &[&recipient, &since],
                )
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO attempts (recipient, at) VALUES ($1, $2)",
                        &[&recipient, &now],
                    )
                })
                .map_err(|e| at.err(e))?;
            }
        }
        tx.commit().map_err(|e| at.err(e))?;
        Ok(out)
    }

    pub fn issued_since(&mut self, recipient: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        let at = self.at.clone();
        self.client
            .query(
                "SELECT created FROM codes
                 WHERE recipient = $1 AND created > $2 AND state <> 'failed' ORDER BY created",
                &[&recipient, &since],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get::<_, i64>(0)).collect())
            .map_err(|e| at.err(e))
    }

    /// See [`super::db::SqliteStore::fail_interrupted`]. Several runs send at once here, on
    /// any host: only the records of runs that are gone are failed — finished, or silent for
    /// longer than their lease ([`super::queue`]) — never those of a run still at work.
    pub fn fail_interrupted(&mut self, now: i64) -> Result<HashSet<String>, StoreError> {
        let at = self.at.clone();
        self.client
            .query(
                &format!(
                    "UPDATE codes c SET state = 'failed', updated = $1
                     WHERE c.state = 'sending'
                       AND NOT EXISTS (SELECT 1 FROM send_runs r
                                       WHERE r.id = c.run AND {})
                     RETURNING recipient",
                    super::queue::LIVE
                ),
                &[&now],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get::<_, String>(0)).collect())
            .map_err(|e| at.err(e))
    }

    pub fn current(&mut self, recipient: &str) -> Result<Option<Record>, StoreError> {
        let at = self.at.clone();
        self.client
            .query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM codes {CURRENT}"),
                &[&recipient],
            )
            .map_err(|e| at.err(e))?
            .map(|row| row_to_record(&at, &row))
            .transpose()
    }

    pub fn current_records(&mut self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        self.query_records(
            "WHERE ($1::text IS NULL OR recipient = $1)
               AND id = (SELECT max(id) FROM codes
                         WHERE recipient = c.recipient
                           AND state NOT IN ('sending', 'failed', 'superseded'))
             ORDER BY recipient",
            recipient,
        )
    }

    pub fn records(&mut self, recipient: Option<&str>) -> Result<Vec<Record>, StoreError> {
        self.query_records(
            "WHERE ($1::text IS NULL OR recipient = $1) ORDER BY id",
            recipient,
        )
    }

    fn query_records(
        &mut self,
        filter: &str,
        recipient: Option<&str>,
    ) -> Result<Vec<Record>, StoreError> {
        let at = self.at.clone();
        let sql = format!("SELECT {RECORD_COLUMNS} FROM codes c {filter}");
        let rows = self
            .client
            .query(&sql, &[&recipient])
            .map_err(|e| at.err(e))?;
        rows.iter().map(|row| row_to_record(&at, row)).collect()
    }

    /// The schema version, for `check`.
    pub fn version(&mut self) -> Result<i64, StoreError> {
        self.schema_version().map(i64::from)
    }

    /// The URL the store was opened with (never holding a password).
    pub fn name(&self) -> String {
        self.at.name()
    }

    /// Whether the connection is encrypted, for `check`.
    pub fn uses_tls(&self) -> bool {
        self.at.settings.tls
    }
}

/// What `check` shows of the PostgreSQL store `settings` name. Only reads: no table, schema
/// or key file is created, whatever the database holds.
pub fn inspect(
    settings: &PostgresSettings,
    lock_timeout: Duration,
    password_timeout: Duration,
) -> Result<Inspection, StoreError> {
    let at = Place::new(settings, lock_timeout, password_timeout)?;
    let mut client = connect(&at)?;
    let schema = read_version(&mut client).map_err(|e| at.err(e))?;
    if schema > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: PathBuf::from(at.name()),
            found: i64::from(schema),
        });
    }
    let (recorded_key, has_records) = custody(&mut client, &at)?;
    let key_file_id = Vault::load_from(&settings.key_file, &PathBuf::from(at.name()))?
        .map(|v| v.id().to_string());
    Ok(Inspection {
        tls: Some(settings.tls),
        schema: i64::from(schema),
        recorded_key,
        has_records,
        key_file: settings.key_file.clone(),
        key_file_id,
    })
}

/// The store password from `[store] password_env` / `password_command` (or `store migrate`'s
/// flags), with errors that name where it was set (the shared password code speaks of
/// `[smtp]`, its first user).
fn store_password(
    settings: &PostgresSettings,
    source: &crate::config::PasswordSource,
    timeout: Duration,
) -> Result<Secret<String>, StoreError> {
    crate::transport::password::password(source, &settings.url, timeout).map_err(|e| {
        let fix = |s: String| match settings.origin {
            UrlOrigin::Config => s.replace("[smtp]", "[store]"),
            UrlOrigin::MigrateTo => s
                .replace("[smtp] password_env", "--password-env")
                .replace("[smtp] password_command", "--password-command"),
        };
        StoreError::Password {
            store: settings.url.clone(),
            reason: fix(e.to_string()),
            hint: e.hint().map(fix),
            code: e.exit_code(),
        }
    })
}

fn lock_timeout_sql(timeout: Duration) -> String {
    format!("SET lock_timeout = {}", timeout.as_millis().max(1))
}

/// One connection, TLS-verified unless the settings allow plaintext (a local server only).
fn connect(at: &Place) -> Result<Client, StoreError> {
    let store = at.name();
    let mut config: postgres::Config =
        at.settings
            .url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Postgres {
                store: store.clone(),
                reason: e.to_string(),
            })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("securemail");
    if let Some(p) = &at.password {
        config.password(p.expose().as_bytes());
    }
    let connected =
        if at.settings.tls {
            config.ssl_mode(SslMode::Require);
            let tls = crate::transport::tls::client_config(at.settings.ca_file.as_deref())
                .map_err(|e| StoreError::DatabaseTls {
                    store: store.clone(),
                    reason: e.to_string(),
                })?;
            config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                (*tls).clone(),
            ))
        } else {
            config.ssl_mode(SslMode::Disable);
            config.connect(NoTls)
        };
    let mut client = connected.map_err(|e| connect_error(&store, &e))?;
    client
        .batch_execute(&lock_timeout_sql(at.lock_timeout))
        .map_err(|e| at.err(e))?;
    Ok(client)
}

fn connect_error(store: &str, e: &postgres::Error) -> StoreError {
    let store = store.to_string();
    if let Some(reason) = tls_cause(e) {
        return StoreError::DatabaseTls { store, reason };
    }
    if let Some(db) = e.as_db_error() {
        let reason = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        return match db.code().code() {
            c if c.starts_with("28") || c == "3D000" => StoreError::Login { store, reason },
            _ => StoreError::Postgres { store, reason },
        };
    }
    let reason = chain(e);
    if reason.contains("password missing") {
        return StoreError::Login { store, reason };
    }
    StoreError::Unreachable { store, reason }
}

/// The highest schema version recorded, 0 for a database without securemail's tables.
fn read_version(client: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('securemail_schema') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM securemail_schema",
            &[],
        )?
        .try_get(0)
}

/// The key id the database records, and whether it holds any record. Only reads.
fn custody(client: &mut Client, at: &Place) -> Result<(Option<String>, bool), StoreError> {
    let mut read = || -> Result<(Option<String>, bool), postgres::Error> {
        let tables: Row = client.query_one(
            "SELECT to_regclass('meta') IS NOT NULL, to_regclass('codes') IS NOT NULL",
            &[],
        )?;
        let recorded = if tables.try_get(0)? {
            client
                .query_opt("SELECT value FROM meta WHERE name = 'key_id'", &[])?
                .map(|r| r.try_get(0))
                .transpose()?
        } else {
            None
        };
        let has_records = tables.try_get(1)?
            && client
                .query_one("SELECT EXISTS (SELECT 1 FROM codes)", &[])?
                .try_get(0)?;
        Ok((recorded, has_records))
    };
    read().map_err(|e| at.err(e))
}

/// Serialises this transaction with every other one on `recipient`'s codes, on any host.
fn lock_recipient(tx: &mut impl GenericClient, recipient: &str) -> Result<(), postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_RECIPIENT, &recipient],
    )
    .map(drop)
}

/// Makes record `id` (if still `sending`) the recipient's pending code, superseding older ones;
/// a mail of a shared batch marks its recipient sent in the same transaction, so that no run
/// sends it again whatever happens next.
fn deliver_in(
    tx: &mut impl GenericClient,
    id: i64,
    now: i64,
    batch: Option<i64>,
) -> Result<(), postgres::Error> {
    // The recipient, under its lock, in one round trip.
    let Some(row) = tx.query_opt(
        "SELECT recipient, run, pg_advisory_xact_lock($2, hashtext(recipient))
         FROM codes WHERE id = $1",
        &[&id, &LOCK_RECIPIENT],
    )?
    else {
        return Ok(());
    };
    let recipient: String = row.try_get(0)?;
    let run: Option<i64> = row.try_get(1)?;
    // The claim before the code, as a run taking it over locks them: never a deadlock.
    let claim = match (batch, run) {
        (Some(batch), Some(run)) if super::queue::mark_sent(tx, batch, run, &recipient)? => {
            Some((batch, run))
        }
        _ => None,
    };
    let moved = tx.execute(
        "UPDATE codes SET state = 'pending', updated = $2 WHERE id = $1 AND state = 'sending'",
        &[&id, &now],
    )?;
    if moved == 1 {
        tx.execute(
            "UPDATE codes SET state = 'superseded', updated = $3
             WHERE recipient = $2 AND id <> $1 AND state IN ('pending', 'verified', 'locked')",
            &[&id, &recipient, &now],
        )?;
    } else if let Some((batch, run)) = claim {
        // Its record was failed meanwhile (this run was taken for gone): not sent after all.
        super::queue::unmark_sent(tx, batch, run, &recipient)?;
    }
    Ok(())
}

fn row_to_record(at: &Place, row: &Row) -> Result<Record, StoreError> {
    let read = || -> Result<Result<Record, String>, postgres::Error> {
        let kind: String = row.try_get(2)?;
        let state: String = row.try_get(6)?;
        let digits: Option<i32> = row.try_get(11)?;
        let otp_columns = (row.try_get(10)?, digits.map(i64::from), row.try_get(12)?);
        let (kind, state, otp) = match parse_columns(&kind, &state, otp_columns) {
            Ok(parsed) => parsed,
            Err(reason) => return Ok(Err(reason)),
        };
        let attempts: i32 = row.try_get(5)?;
        let Ok(attempts) = u32::try_from(attempts) else {
            return Ok(Err(format!("negative attempts {attempts}")));
        };
        Ok(Ok(Record {
            id: row.try_get(0)?,
            recipient: row.try_get(1)?,
            kind,
            created: row.try_get(3)?,
            expires: row.try_get(4)?,
            attempts,
            state,
            sealed: row.try_get(7)?,
            last_step: row.try_get(8)?,
            message_id: row.try_get(9)?,
            otp,
            next_attempt: row.try_get(13)?,
        }))
    };
    read()
        .map_err(|e| at.err(e))?
        .map_err(|reason| at.corrupt(reason))
}
