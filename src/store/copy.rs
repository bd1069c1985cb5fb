//! `store migrate`: a SQLite store copied into a PostgreSQL database, every table as it is.
//!
//! Sealed TOTP secrets and key MACs are copied byte for byte: they are bound to the recipient
//! and the creation time (see [`super::vault`]), not to the database, so the same key file opens
//! them on the other side, and the target records the same key id. The SQLite store is held
//! under its write lock for the whole copy (nothing issued meanwhile is left behind), and
//! PostgreSQL is written in one transaction with its tables locked: the copy is there whole,
//! with its row counts verified and its id sequences moved past the copied ids, or not at all.

use std::path::PathBuf;
use std::time::Duration;

use postgres::Transaction;
use rusqlite::TransactionBehavior;

use super::backend::PASSWORD_TIMEOUT;
use super::db::SqliteStore;
use super::error::StoreError;
use super::pg::PgStore;
use super::vault::key_file_path;
use crate::config::PostgresSettings;
use crate::config::pg_url::UrlError;
use crate::exit;
use crate::transport::TransportError;

/// The columns of `codes`, in both schemas (SQLite 3, PostgreSQL 1).
const CODE_COLUMNS: [&str; 15] = [
    "id",
    "recipient",
    "kind",
    "created",
    "expires",
    "attempts",
    "state",
    "sealed",
    "last_step",
    "message_id",
    "otp_algorithm",
    "otp_digits",
    "otp_period",
    "next_attempt",
    "updated",
];

/// The columns of `attempts` (one row per wrong code).
const ATTEMPT_COLUMNS: [&str; 3] = ["id", "recipient", "at"];

/// The columns of `meta` (the key id, and whatever a later schema records there).
const META_COLUMNS: [&str; 2] = ["name", "value"];

/// Rows sent to PostgreSQL per statement.
const CHUNK: usize = 1000;

/// What to do with records the target database already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Copy nothing (`store migrate` without `--force`).
    Refuse,
    /// Delete them in the copy's transaction (`--force`): the target ends up as the source.
    Replace,
}

/// Rows of the tables that hold records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rows {
    pub codes: i64,
    pub attempts: i64,
}

impl std::fmt::Display for Rows {
    /// `3 codes and 1 wrong attempt`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} code{} and {} wrong attempt{}",
            self.codes,
            plural(self.codes),
            self.attempts,
            plural(self.attempts)
        )
    }
}

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub rows: Rows,
    pub meta: i64,
    /// The key id both stores record.
    pub key_id: String,
    /// The key file both use.
    pub key_file: PathBuf,
    /// What the target held before and `--force` replaced.
    pub replaced: Option<Rows>,
}

/// Why `store migrate` copied nothing. Nothing was written to the target in any case (its
/// tables may have been created: that is what any first use of the database does).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(
        "--password-env {} is not an environment variable name",
        crate::quote(var)
    )]
    PasswordEnv { var: String },
    #[error("--password-command is empty")]
    PasswordCommand,
    #[error("--ca-file is given but the connection to {url} does not use TLS")]
    CaWithoutTls { url: String },
    #[error(transparent)]
    CaFile(TransportError),
    #[error(
        "the store in {} is already PostgreSQL ({url}): there is no SQLite store to migrate",
        config.display()
    )]
    AlreadyPostgres { config: PathBuf, url: String },
    #[error("there is no SQLite store at {}: nothing to migrate", path.display())]
    NoSource { path: PathBuf },
    #[error(
        "the database {target} already holds records ({found}): a store was migrated or used there before"
    )]
    NotEmpty { target: String, found: Rows },
    #[error(
        "the database {target} belongs to another store: it records key id {recorded}, and the key file {} of {} has key id {found}",
        key.display(), db.display()
    )]
    OtherKey {
        target: String,
        recorded: String,
        key: PathBuf,
        db: PathBuf,
        found: String,
    },
    #[error(
        "copying {table} into {target} wrote {copied} rows for the {expected} of {}; nothing was written",
        db.display()
    )]
    Count {
        target: String,
        db: PathBuf,
        table: &'static str,
        expected: i64,
        copied: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MigrateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            MigrateError::Url(_)
            | MigrateError::PasswordEnv { .. }
            | MigrateError::PasswordCommand
            | MigrateError::CaWithoutTls { .. } => exit::USAGE,
            MigrateError::CaFile(e) => e.exit_code(),
            MigrateError::AlreadyPostgres { .. } | MigrateError::OtherKey { .. } => exit::CONFIG,
            MigrateError::NoSource { .. } => exit::NOINPUT,
            MigrateError::NotEmpty { .. } => exit::CANTCREAT,
            MigrateError::Count { .. } => exit::SOFTWARE,
            MigrateError::Store(e) => e.exit_code(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            MigrateError::Url(e) => e.hint(),
            MigrateError::PasswordEnv { .. } => "name the variable that holds the password, \
                 e.g. --password-env SECUREMAIL_DB_PASSWORD"
                .into(),
            MigrateError::PasswordCommand => "give a command that prints the password, e.g. \
                 --password-command 'pass show db/securemail'"
                .into(),
            MigrateError::CaWithoutTls { .. } => "add ?sslmode=require to the URL to use TLS to \
                 a local server, or leave out --ca-file"
                .into(),
            MigrateError::CaFile(_) => {
                "--ca-file must name a readable PEM file of CA certificates".into()
            }
            MigrateError::AlreadyPostgres { .. } => "run it with the configuration of the host \
                 whose store is SQLite ([store] path); --config PATH names another"
                .into(),
            MigrateError::NoSource { .. } => "check [store] path in the configuration (--config \
                 PATH names another); a store that never issued a code has nothing to copy: set \
                 [store] url directly"
                .into(),
            MigrateError::NotEmpty { .. } => "to replace what it holds with this store's \
                 records, run the same command with --force (its records are deleted); or \
                 migrate into a new, empty database"
                .into(),
            MigrateError::OtherKey { recorded, .. } => format!(
                "migrate into a new, empty database: the records there need the key file with \
                 id {recorded}, and --force does not change that"
            ),
            MigrateError::Count { .. } => {
                "this is a bug in securemail, please report it; the SQLite store is unchanged"
                    .into()
            }
            // The target's connection: what to check among the flags, not `[store]`.
            MigrateError::Store(StoreError::Unreachable { .. }) => "check the URL of --to, that \
                 the database server runs and that this host may connect to it"
                .into(),
            MigrateError::Store(StoreError::DatabaseTls { .. }) => "the database's certificate \
                 must be valid for the host in --to and signed by a trusted CA (add it with \
                 --ca-file)"
                .into(),
            MigrateError::Store(StoreError::Login { .. }) => "check the user in --to and \
                 --password-env / --password-command; the server's pg_hba.conf must let this \
                 host in"
                .into(),
            MigrateError::Store(e) => return e.hint(),
        })
    }
}

/// Copies `source` into the PostgreSQL database `target` names, under `source`'s key file
/// (whatever `target.key_file` says): creates securemail's tables there if needed, refuses a
/// database that records another key id, and deals with records already there as `existing`
/// says.
pub fn migrate(
    source: &mut SqliteStore,
    target: &PostgresSettings,
    lock_timeout: Duration,
    existing: Existing,
) -> Result<Copied, MigrateError> {
    let db = source.path().to_path_buf();
    let key_file = key_file_path(&db);
    let settings = PostgresSettings {
        key_file: key_file.clone(),
        ..target.clone()
    };
    let url = settings.url.clone();
    let mut pg = match PgStore::open(&settings, lock_timeout, PASSWORD_TIMEOUT, true) {
        Ok(Some(pg)) => pg,
        Ok(None) => {
            return Err(MigrateError::Store(StoreError::Postgres {
                store: url,
                reason: "the store vanished as it was created".into(),
            }));
        }
        Err(StoreError::KeyMismatch {
            recorded, found, ..
        }) => {
            return Err(MigrateError::OtherKey {
                target: url,
                recorded,
                key: key_file,
                db,
                found,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let key_id = source.key_id().to_string();

    let (conn, sqlite_err) = source.parts();
    // The write lock, so that nothing is issued or checked on the source during the copy; it
    // is rolled back at the end (it writes nothing).
    let from = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&sqlite_err)?;
    let (client, pg_err) = pg.client_parts();
    let mut to = client.transaction().map_err(&pg_err)?;
    to.batch_execute("LOCK TABLE codes, attempts, meta IN EXCLUSIVE MODE")
        .map_err(&pg_err)?;
    let found = Rows {
        codes: count_pg(&mut to, "codes").map_err(&pg_err)?,
        attempts: count_pg(&mut to, "attempts").map_err(&pg_err)?,
    };
    let replaced = match (found == Rows::default(), existing) {
        (true, _) => None,
        (false, Existing::Refuse) => return Err(MigrateError::NotEmpty { target: url, found }),
        (false, Existing::Replace) => {
            to.batch_execute("DELETE FROM codes; DELETE FROM attempts")
                .map_err(&pg_err)?;
            Some(found)
        }
    };

    copy_codes(&from, &mut to, &sqlite_err, &pg_err)?;
    copy_attempts(&from, &mut to, &sqlite_err, &pg_err)?;
    let meta = copy_meta(&from, &mut to, &sqlite_err, &pg_err)?;

    // Every row arrived: the counts on both sides, in the two transactions, agree.
    let count_sqlite = |table: &str| {
        from.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(&sqlite_err)
    };
    let rows = Rows {
        codes: count_sqlite("codes")?,
        attempts: count_sqlite("attempts")?,
    };
    let copied = [
        (
            "codes",
            rows.codes,
            count_pg(&mut to, "codes").map_err(&pg_err)?,
        ),
        (
            "attempts",
            rows.attempts,
            count_pg(&mut to, "attempts").map_err(&pg_err)?,
        ),
        ("meta", meta.expected, meta.matching),
    ];
    if let Some(&(table, expected, copied)) = copied.iter().find(|(_, e, c)| e != c) {
        return Err(MigrateError::Count {
            target: url,
            db,
            table,
            expected,
            copied,
        });
    }

    // New ids continue after the copied ones (and, for codes, after any SQLite ever gave).
    let sqlite_next = next_sqlite_id(&from, "codes").map_err(&sqlite_err)?;
    for (table, floor) in [("codes", sqlite_next), ("attempts", 1)] {
        to.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               greatest((SELECT coalesce(max(id), 0) + 1 FROM {table}), $1),
                               false)"
            ),
            &[&floor],
        )
        .map_err(&pg_err)?;
    }
    to.commit().map_err(&pg_err)?;
    drop(from);
    Ok(Copied {
        rows,
        meta: meta.expected,
        key_id,
        key_file,
        replaced,
    })
}

fn count_pg(tx: &mut Transaction<'_>, table: &str) -> Result<i64, postgres::Error> {
    tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])?
        .try_get(0)
}

/// The id SQLite would give the next code (`AUTOINCREMENT` never reuses one).
fn next_sqlite_id(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<i64> {
    let counted: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence')",
        [],
        |r| r.get(0),
    )?;
    let seq: Option<i64> = if counted {
        conn.query_row(
            "SELECT max(seq) FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )?
    } else {
        None
    };
    Ok(seq.unwrap_or(0) + 1)
}

/// The codes, in chunks, one column array per statement parameter.
fn copy_codes(
    from: &rusqlite::Connection,
    to: &mut Transaction<'_>,
    sqlite_err: &impl Fn(rusqlite::Error) -> StoreError,
    pg_err: &impl Fn(postgres::Error) -> StoreError,
) -> Result<(), StoreError> {
    #[derive(Default)]
    struct Chunk {
        id: Vec<i64>,
        recipient: Vec<String>,
        kind: Vec<String>,
        created: Vec<i64>,
        expires: Vec<i64>,
        attempts: Vec<i32>,
        state: Vec<String>,
        sealed: Vec<Vec<u8>>,
        last_step: Vec<Option<i64>>,
        message_id: Vec<Option<String>>,
        otp_algorithm: Vec<Option<String>>,
        otp_digits: Vec<Option<i32>>,
        otp_period: Vec<Option<i64>>,
        next_attempt: Vec<Option<i64>>,
        updated: Vec<i64>,
    }
    let insert = format!(
        "INSERT INTO codes ({}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],
             $4::bigint[], $5::bigint[], $6::int[], $7::text[], $8::bytea[], $9::bigint[],
             $10::text[], $11::text[], $12::int[], $13::bigint[], $14::bigint[], $15::bigint[])",
        CODE_COLUMNS.join(", ")
    );
    let flush = |to: &mut Transaction<'_>, c: &mut Chunk| -> Result<(), StoreError> {
        if c.id.is_empty() {
            return Ok(());
        }
        to.execute(
            &insert,
            &[
                &c.id,
                &c.recipient,
                &c.kind,
                &c.created,
                &c.expires,
                &c.attempts,
                &c.state,
                &c.sealed,
                &c.last_step,
                &c.message_id,
                &c.otp_algorithm,
                &c.otp_digits,
                &c.otp_period,
                &c.next_attempt,
                &c.updated,
            ],
        )
        .map_err(pg_err)?;
        *c = Chunk::default();
        Ok(())
    };
    let mut stmt = from
        .prepare(&format!(
            "SELECT {} FROM codes ORDER BY id",
            CODE_COLUMNS.join(", ")
        ))
        .map_err(sqlite_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err)?;
    let mut c = Chunk::default();
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        let mut read = || -> rusqlite::Result<()> {
            c.id.push(row.get(0)?);
            c.recipient.push(row.get(1)?);
            c.kind.push(row.get(2)?);
            c.created.push(row.get(3)?);
            c.expires.push(row.get(4)?);
            c.attempts.push(row.get(5)?);
            c.state.push(row.get(6)?);
            c.sealed.push(row.get(7)?);
            c.last_step.push(row.get(8)?);
            c.message_id.push(row.get(9)?);
            c.otp_algorithm.push(row.get(10)?);
            c.otp_digits.push(row.get(11)?);
            c.otp_period.push(row.get(12)?);
            c.next_attempt.push(row.get(13)?);
            c.updated.push(row.get(14)?);
            Ok(())
        };
        read().map_err(sqlite_err)?;
        if c.id.len() == CHUNK {
            flush(to, &mut c)?;
        }
    }
    flush(to, &mut c)
}

/// The wrong codes of the last day (the per-recipient budget), in chunks.
fn copy_attempts(
    from: &rusqlite::Connection,
    to: &mut Transaction<'_>,
    sqlite_err: &impl Fn(rusqlite::Error) -> StoreError,
    pg_err: &impl Fn(postgres::Error) -> StoreError,
) -> Result<(), StoreError> {
    let insert = format!(
        "INSERT INTO attempts ({}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])",
        ATTEMPT_COLUMNS.join(", ")
    );
    let mut stmt = from
        .prepare(&format!(
            "SELECT {} FROM attempts ORDER BY id",
            ATTEMPT_COLUMNS.join(", ")
        ))
        .map_err(sqlite_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err)?;
    let (mut id, mut recipient, mut at) = (Vec::new(), Vec::new(), Vec::<i64>::new());
    loop {
        let row = rows.next().map_err(sqlite_err)?;
        if let Some(row) = row {
            let read = || -> rusqlite::Result<(i64, String, i64)> {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            };
            let (i, r, a) = read().map_err(sqlite_err)?;
            id.push(i);
            recipient.push(r);
            at.push(a);
        }
        let done = row.is_none();
        if (done && !id.is_empty()) || id.len() == CHUNK {
            to.execute(&insert, &[&id, &recipient, &at])
                .map_err(pg_err)?;
            id.clear();
            recipient.clear();
            at.clear();
        }
        if done {
            return Ok(());
        }
    }
}

/// `meta`'s rows and how many of them the target now holds with the same value.
struct MetaCopied {
    expected: i64,
    matching: i64,
}

/// Every `meta` row; the key id is already the same on both sides (the target was opened with
/// the source's key file), anything else is set to the source's value.
fn copy_meta(
    from: &rusqlite::Connection,
    to: &mut Transaction<'_>,
    sqlite_err: &impl Fn(rusqlite::Error) -> StoreError,
    pg_err: &impl Fn(postgres::Error) -> StoreError,
) -> Result<MetaCopied, StoreError> {
    let mut stmt = from
        .prepare(&format!(
            "SELECT {} FROM meta ORDER BY name",
            META_COLUMNS.join(", ")
        ))
        .map_err(sqlite_err)?;
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sqlite_err)?;
    let (names, values): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
    to.execute(
        "INSERT INTO meta (name, value) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        &[&names, &values],
    )
    .map_err(pg_err)?;
    let matching: i64 = to
        .query_one(
            "SELECT count(*) FROM meta m
             JOIN unnest($1::text[], $2::text[]) AS s(name, value)
               ON m.name = s.name AND m.value = s.value",
            &[&names, &values],
        )
        .and_then(|r| r.try_get(0))
        .map_err(pg_err)?;
    Ok(MetaCopied {
        expected: i64::try_from(names.len()).unwrap_or(i64::MAX),
        matching,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table's columns, sorted (the copy names them, so their order does not matter).
    fn columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY name"
            ))
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        v.sort();
        v
    }

    /// A new SQLite table or column that the copy does not know about fails here, rather than
    /// being left behind by `store migrate`.
    #[test]
    fn the_copy_knows_every_table_and_column_of_the_sqlite_store() {
        let t = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&t.path().join("s.db")).unwrap();
        let (conn, _) = store.parts();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["attempts", "codes", "meta"]);
        assert_eq!(columns(conn, "codes"), sorted(&CODE_COLUMNS));
        assert_eq!(columns(conn, "attempts"), sorted(&ATTEMPT_COLUMNS));
        assert_eq!(columns(conn, "meta"), sorted(&META_COLUMNS));
    }

    /// The PostgreSQL schema has the same columns (read from its SQL file).
    #[test]
    fn the_postgres_schema_has_the_same_columns() {
        let sql = include_str!("migrations/postgres/001_schema.sql");
        for (table, want) in [
            ("codes", &CODE_COLUMNS[..]),
            ("attempts", &ATTEMPT_COLUMNS[..]),
            ("meta", &META_COLUMNS[..]),
        ] {
            let start = sql.find(&format!("CREATE TABLE {table} (")).unwrap();
            let body = &sql[start..start + sql[start..].find(");").unwrap()];
            let got: Vec<&str> = body
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            assert_eq!(got, want, "{table}");
        }
    }
}
