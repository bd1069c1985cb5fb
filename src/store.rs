//! The record of every code issued, in SQLite.
//!
//! One row per issued code: recipient, kind, created, expires, consecutive failed attempts and
//! state. Keys are kept only as HMAC-SHA256 under a store key; TOTP secrets are sealed with
//! XChaCha20-Poly1305 under a second key, bound to their row's recipient and creation time. Both
//! keys derive from a 32-byte key file created 0600 beside the database, so a copy of the
//! database alone reveals no secret, and grepping it for one finds nothing.
//!
//! Verification happens inside [`Store::with_current`]: a `BEGIN IMMEDIATE` transaction takes the
//! write lock before the row is read, so two `reply` processes racing on one code are serialised
//! and only the first can accept it.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::Sha256;

use crate::CodeKind;
use crate::exit;
use crate::otp::{OtpAlgorithm, OtpParams};
use crate::secret::{self, RandomError, Secret};

/// How long a process waits for another one's lock before giving up, unless `[store]
/// lock_timeout` says otherwise.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const SCHEMA_VERSION: i64 = 1;
const NONCE_LEN: usize = 24;

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Built and being handed to the transport; not verifiable yet.
    Sending,
    /// The transport refused it; never reached the recipient.
    Failed,
    /// Delivered; waiting for the recipient's code.
    Pending,
    /// Accepted. A key is used up; a TOTP enrolment is confirmed and keeps verifying.
    Verified,
    /// Not confirmed in time.
    Expired,
    /// Too many wrong codes in a row.
    Locked,
    /// A newer code was sent to the same recipient.
    Superseded,
    /// Withdrawn by an operator.
    Revoked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Failed => "failed",
            State::Pending => "pending",
            State::Verified => "verified",
            State::Expired => "expired",
            State::Locked => "locked",
            State::Superseded => "superseded",
            State::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Option<State> {
        Some(match s {
            "sending" => State::Sending,
            "failed" => State::Failed,
            "pending" => State::Pending,
            "verified" => State::Verified,
            "expired" => State::Expired,
            "locked" => State::Locked,
            "superseded" => State::Superseded,
            "revoked" => State::Revoked,
            _ => return None,
        })
    }
}

/// One issued code. `sealed` is the MAC (keys) or ciphertext (TOTP), never the secret.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: i64,
    pub recipient: String,
    pub kind: CodeKind,
    pub created: i64,
    pub expires: i64,
    pub attempts: u32,
    pub state: State,
    pub last_step: Option<i64>,
    pub message_id: Option<String>,
    /// TOTP parameters the enrolment was issued with (`None` for keys).
    pub otp: Option<OtpParams>,
    sealed: Vec<u8>,
}

/// A change to the current record, decided by the caller of [`Store::with_current`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub attempts: u32,
    pub state: State,
    pub last_step: Option<i64>,
}

/// What is stored for a new code.
pub enum Material<'a> {
    /// The TOTP secret bytes (sealed before storage) and the parameters given to the app.
    Otp(&'a Secret<Vec<u8>>, OtpParams),
    /// The canonical key (only its MAC is stored).
    Key(&'a Secret<String>),
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("the store {} is busy: another process held its lock for longer than {}", path.display(), humantime::format_duration(*waited))]
    Busy { path: PathBuf, waited: Duration },
    #[error("the store {} is damaged or is not a securemail database: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("the store {} was written by a newer securemail (schema {found})", path.display())]
    Newer { path: PathBuf, found: i64 },
    #[error("the store {} cannot be written: {reason}", path.display())]
    ReadOnly { path: PathBuf, reason: String },
    #[error("store error in {}: {reason}", path.display())]
    Sqlite { path: PathBuf, reason: String },
    #[error("cannot use the store key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    #[error("the store key file {} is readable by others (mode {mode:o})", path.display())]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("a sealed secret in {} does not open with the key file: the key file was replaced or the row was altered", path.display())]
    Unseal { path: PathBuf },
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl StoreError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::Busy { .. } => exit::TEMPFAIL,
            StoreError::KeyFileOpen { .. } | StoreError::Newer { .. } => exit::CONFIG,
            StoreError::Random(_) => exit::SOFTWARE,
            _ => exit::IOERR,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Open { .. } => "check [store] path in the config and that its directory is writable".into(),
            StoreError::Busy { .. } => "another program is writing to the store; try again in a moment (or raise [store] lock_timeout)".into(),
            StoreError::Corrupt { .. } => "restore the store from a backup, or point [store] path at a new file (codes issued so far will no longer verify)".into(),
            StoreError::Newer { .. } => "upgrade securemail".into(),
            StoreError::ReadOnly { .. } => "make the store file and its directory writable by this user".into(),
            StoreError::Sqlite { .. } => return None,
            StoreError::KeyFile { .. } => "the key file must hold the 32 bytes securemail wrote; restore it from a backup (without it no stored code verifies)".into(),
            StoreError::KeyFileOpen { path, .. } => format!("chmod 600 {}", path.display()),
            StoreError::Unseal { .. } => "restore the key file that belongs to this database".into(),
            StoreError::Random(_) => return None,
        })
    }
}

/// The keys derived from the key file.
struct Keys {
    seal: Secret<[u8; 32]>,
    mac: Secret<[u8; 32]>,
}

/// HMAC-SHA256 keyed with a 32-byte key. HMAC pads short keys with zeros to the 64-byte block
/// (RFC 2104), so padding here gives the same MAC without a fallible constructor.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = zeroize::Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let mut m = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn derive(master: &[u8; 32], label: &str) -> Secret<[u8; 32]> {
    Secret::new(hmac(master, &[label.as_bytes()]))
}

fn cipher(key: &Secret<[u8; 32]>) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*key.expose()).into())
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    keys: Keys,
    path: PathBuf,
    lock_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The key file that belongs to a database: `securemail.db` → `securemail.key`.
pub fn key_file_path(db: &Path) -> PathBuf {
    db.with_extension("key")
}

impl Store {
    /// Opens (creating if needed) the database and its key file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_waiting(path, BUSY_TIMEOUT)
    }

    /// [`Store::open`], waiting up to `lock_timeout` whenever another process holds the lock.
    pub fn open_waiting(path: &Path, lock_timeout: Duration) -> Result<Store, StoreError> {
        let open_err = |e: std::io::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: crate::io_reason(&e),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(open_err)?;
        }
        // Create the file ourselves so that it is 0600 from its first byte; SQLite gives its
        // journal files the same mode.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_err(e)),
        }
        let keys = load_or_create_key(&key_file_path(path))?;
        let mut store = Store {
            conn: connect(path, lock_timeout)?,
            keys,
            path: path.to_path_buf(),
            lock_timeout,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Another connection to the same store, for another thread. Open these from one thread
    /// while this one is open: opening concurrently makes SQLite's WAL recovery race, and the
    /// losers sleep in the busy handler.
    pub fn another(&self) -> Result<Store, StoreError> {
        Ok(Store {
            conn: connect(&self.path, self.lock_timeout)?,
            keys: Keys {
                seal: self.keys.seal.clone(),
                mac: self.keys.mac.clone(),
            },
            path: self.path.clone(),
            lock_timeout: self.lock_timeout,
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql_error(&self.path, e)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: self.path.clone(),
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&self.path, e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS codes (
                 id         INTEGER PRIMARY KEY AUTOINCREMENT,
                 recipient  TEXT    NOT NULL,
                 kind       TEXT    NOT NULL CHECK (kind IN ('otp', 'key')),
                 created    INTEGER NOT NULL,
                 expires    INTEGER NOT NULL,
                 attempts   INTEGER NOT NULL DEFAULT 0,
                 state      TEXT    NOT NULL,
                 sealed     BLOB    NOT NULL,
                 last_step  INTEGER,
                 message_id TEXT,
                 otp_algorithm TEXT,
                 otp_digits    INTEGER,
                 otp_period    INTEGER,
                 updated    INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS codes_by_recipient ON codes (recipient, id);
             PRAGMA user_version = 1;",
        )
        .map_err(|e| sql_error(&self.path, e))?;
        tx.commit().map_err(|e| sql_error(&self.path, e))
    }

    fn aad(recipient: &str, created: i64) -> Vec<u8> {
        format!("securemail/otp/v1\0{recipient}\0{created}").into_bytes()
    }

    fn key_mac(&self, recipient: &str, canonical: &str) -> [u8; 32] {
        hmac(
            self.keys.mac.expose(),
            &[
                b"securemail/key/v1\0",
                recipient.as_bytes(),
                b"\0",
                canonical.as_bytes(),
            ],
        )
    }

    fn seal(&self, recipient: &str, created: i64, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = secret::random_bytes::<NONCE_LEN>()?;
        let ct = cipher(&self.keys.seal)
            .encrypt(
                &XNonce::from(*nonce.expose()),
                Payload {
                    msg: secret,
                    aad: &Store::aad(recipient, created),
                },
            )
            .map_err(|_| StoreError::Unseal {
                path: self.path.clone(),
            })?;
        let mut out = nonce.expose().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The TOTP secret of `record`.
    pub fn unseal_otp(&self, record: &Record) -> Result<Secret<Vec<u8>>, StoreError> {
        let bad = || StoreError::Unseal {
            path: self.path.clone(),
        };
        if record.kind != CodeKind::Otp || record.sealed.len() <= NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ct) = record.sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| bad())?;
        cipher(&self.keys.seal)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &Store::aad(&record.recipient, record.created),
                },
            )
            .map(Secret::new)
            .map_err(|_| bad())
    }

    /// Whether `canonical` is the key of `record`, compared in constant time.
    pub fn key_matches(&self, record: &Record, canonical: &str) -> bool {
        record.kind == CodeKind::Key
            && secret::constant_time_eq(&self.key_mac(&record.recipient, canonical), &record.sealed)
    }

    /// Records a code about to be sent, in state `sending`. Returns its id.
    pub fn insert_sending(
        &mut self,
        recipient: &str,
        material: Material<'_>,
        created: i64,
        expires: i64,
        message_id: &str,
    ) -> Result<i64, StoreError> {
        self.insert_sending_after(
            None, recipient, material, created, expires, message_id, created,
        )
    }

    /// [`Store::insert_sending`], and, in the same transaction, [`Store::mark_delivered`] for
    /// `delivered`: one commit per mail in a batch instead of two, and never more than one
    /// `sending` record per connection.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_sending_after(
        &mut self,
        delivered: Option<i64>,
        recipient: &str,
        material: Material<'_>,
        created: i64,
        expires: i64,
        message_id: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let (kind, sealed, otp) = match material {
            Material::Otp(s, p) => (
                CodeKind::Otp,
                self.seal(recipient, created, s.expose())?,
                Some(p),
            ),
            Material::Key(k) => (
                CodeKind::Key,
                self.key_mac(recipient, k.expose()).to_vec(),
                None,
            ),
        };
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        if let Some(id) = delivered {
            deliver_in(&tx, id, now).map_err(|e| sql_error(&path, e))?;
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
        .map_err(|e| sql_error(&path, e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| sql_error(&path, e))?;
        Ok(id)
    }

    /// The mail of record `id` was delivered: it becomes the recipient's pending code and every
    /// older live code of that recipient is superseded, in one transaction.
    pub fn mark_delivered(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        deliver_in(&tx, id, now).map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))
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
    pub fn with_current<T>(
        &mut self,
        recipient: &str,
        now: i64,
        decide: impl FnOnce(&Store, Option<&Record>) -> Result<(Option<Update>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        // The transaction borrows the connection; the closure needs &Store for the crypto, so
        // run the statements on the raw connection between BEGIN IMMEDIATE and COMMIT.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| sql_error(&path, e))?;
        let result = (|| {
            let record = self.current(recipient)?;
            let (update, out) = decide(self, record.as_ref())?;
            if let (Some(u), Some(r)) = (update, record.as_ref()) {
                self.conn
                    .prepare_cached(
                        "UPDATE codes SET attempts = ?2, state = ?3, last_step = ?4, updated = ?5 WHERE id = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![r.id, u.attempts, u.state.as_str(), u.last_step, now])
                    })
                    .map_err(|e| self.err(e))?;
            }
            Ok(out)
        })();
        match result {
            Ok(out) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| sql_error(&path, e))?;
                Ok(out)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Records still `sending` belong to a run that died mid-transaction (send runs hold an
    /// exclusive lock, see `batch`): marks them failed and returns their recipients.
    pub fn fail_interrupted(
        &mut self,
        now: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        let names = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT recipient FROM codes WHERE state = 'sending'")
                .map_err(|e| sql_error(&path, e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| sql_error(&path, e))?;
            rows.collect::<Result<std::collections::HashSet<_>, _>>()
                .map_err(|e| sql_error(&path, e))?
        };
        tx.execute(
            "UPDATE codes SET state = 'failed', updated = ?1 WHERE state = 'sending'",
            params![now],
        )
        .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))?;
        Ok(names)
    }

    /// The recipient's current record: the newest that was delivered and not superseded.
    pub fn current(&self, recipient: &str) -> Result<Option<Record>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, recipient, kind, created, expires, attempts, state, sealed, last_step, message_id,
                        otp_algorithm, otp_digits, otp_period
                 FROM codes
                 WHERE recipient = ?1 AND state NOT IN ('sending', 'failed', 'superseded')
                 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row(params![recipient], row_to_record).optional())
            .map_err(|e| self.err(e))?
            .transpose()
            .map_err(|reason| StoreError::Corrupt {
                path: self.path.clone(),
                reason,
            })
    }

    /// Each recipient's current record (see [`Store::current`]), or just `recipient`'s.
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
        let sql = format!(
            "SELECT id, recipient, kind, created, expires, attempts, state, sealed, last_step, message_id,
                    otp_algorithm, otp_digits, otp_period
             FROM codes c {filter}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![recipient], row_to_record)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(
                row.map_err(|e| self.err(e))?
                    .map_err(|reason| StoreError::Corrupt {
                        path: self.path.clone(),
                        reason,
                    })?,
            );
        }
        Ok(out)
    }
}

/// Opens one SQLite connection with securemail's per-connection settings.
fn connect(path: &Path, lock_timeout: Duration) -> Result<Connection, StoreError> {
    LOCK_WAIT.with(|w| w.set(lock_timeout));
    let conn = Connection::open(path).map_err(|e| sql_error(path, e))?;
    conn.busy_timeout(lock_timeout)
        .map_err(|e| sql_error(path, e))?;
    // synchronous = NORMAL (with WAL): a commit survives the process being killed at any
    // instant, which is what resumable batches need; only a power cut may lose the last few
    // commits, never corrupt the database.
    conn.execute_batch("PRAGMA synchronous = NORMAL;")
        .map_err(|e| sql_error(path, e))?;
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
    let Some(kind) = CodeKind::parse(&kind) else {
        return Ok(Err(format!("unknown kind {kind:?}")));
    };
    let Some(state) = State::parse(&state) else {
        return Ok(Err(format!("unknown state {state:?}")));
    };
    let algorithm: Option<String> = row.get(10)?;
    let digits: Option<i64> = row.get(11)?;
    let period: Option<i64> = row.get(12)?;
    let otp = match (kind, algorithm, digits, period) {
        (CodeKind::Key, ..) => None,
        (CodeKind::Otp, Some(a), Some(d), Some(p)) => {
            match (OtpAlgorithm::parse(&a), u8::try_from(d), u64::try_from(p)) {
                (Some(algorithm), Ok(digits @ 6..=8), Ok(period @ 1..)) => Some(OtpParams {
                    algorithm,
                    digits,
                    period,
                }),
                _ => return Ok(Err(format!("bad TOTP parameters {a}/{d}/{p}"))),
            }
        }
        (CodeKind::Otp, ..) => return Ok(Err("TOTP parameters missing".into())),
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
    }))
}

thread_local! {
    /// The lock timeout of the store last opened on this thread, for `Busy` messages.
    static LOCK_WAIT: std::cell::Cell<Duration> = const { std::cell::Cell::new(BUSY_TIMEOUT) };
}

fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let path = path.to_path_buf();
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e {
        let reason = msg.clone().unwrap_or_else(|| f.to_string());
        return match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy {
                path,
                waited: LOCK_WAIT.with(|w| w.get()),
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

/// Reads the key file, creating it (0600, atomically) on first use.
fn load_or_create_key(path: &Path) -> Result<Keys, StoreError> {
    let err = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        let fresh = secret::random_bytes::<32>()?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Deleted again if anything below fails.
        let mut f = tempfile::Builder::new()
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| err(crate::io_reason(&e)))?;
        f.write_all(fresh.expose())
            .and_then(|()| f.as_file().sync_all())
            .map_err(|e| err(crate::io_reason(&e)))?;
        // Fails if another process created the key first: then we use theirs.
        match f.persist_noclobber(path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(crate::io_reason(&e.error))),
        }
    }
    let mut f = fs::File::open(path).map_err(|e| err(crate::io_reason(&e)))?;
    let meta = f.metadata().map_err(|e| err(crate::io_reason(&e)))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::KeyFileOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() != 32 || meta.nlink() == 0 {
        return Err(err(format!("it is {} bytes, not 32", meta.len())));
    }
    let mut master = zeroize::Zeroizing::new([0u8; 32]);
    f.read_exact(master.as_mut())
        .map_err(|e| err(crate::io_reason(&e)))?;
    Ok(Keys {
        seal: derive(&master, "securemail/seal/v1"),
        mac: derive(&master, "securemail/mac/v1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("securemail-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d.join("codes.db")
    }

    #[test]
    fn files_are_private_and_secrets_absent() {
        let db = temp_db("private");
        let mut s = Store::open(&db).unwrap();
        let key = Secret::new("7KQ29XMD4HTP".to_string());
        let otp = Secret::new(b"SUPERSECRETBYTES1234".to_vec());
        let params = OtpParams {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        let a = s
            .insert_sending("a@x.org", Material::Key(&key), 100, 200, "<1@x>")
            .unwrap();
        let b = s
            .insert_sending("b@x.org", Material::Otp(&otp, params), 100, 200, "<2@x>")
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
        let db = temp_db("mac");
        let mut s = Store::open(&db).unwrap();
        let key = Secret::new("ABCDEFGHJK".to_string());
        let id = s
            .insert_sending("a@x.org", Material::Key(&key), 1, 2, "<m>")
            .unwrap();
        s.mark_delivered(id, 1).unwrap();
        let rec = s.records(Some("a@x.org")).unwrap().remove(0);
        assert!(s.key_matches(&rec, "ABCDEFGHJK"));
        assert!(!s.key_matches(&rec, "ABCDEFGHJ0"));
        let mut other = rec.clone();
        other.recipient = "b@x.org".into();
        assert!(!s.key_matches(&other, "ABCDEFGHJK"));
    }

    #[test]
    fn otp_secret_round_trips_and_is_bound_to_its_row() {
        let db = temp_db("seal");
        let mut s = Store::open(&db).unwrap();
        let secret = Secret::new(vec![7u8; 20]);
        let params = OtpParams {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        s.insert_sending("a@x.org", Material::Otp(&secret, params), 5, 6, "<m>")
            .unwrap();
        let rec = s.records(None).unwrap().remove(0);
        assert_eq!(s.unseal_otp(&rec).unwrap().expose(), &vec![7u8; 20]);
        assert_eq!(rec.otp, Some(params));
        let mut moved = rec.clone();
        moved.recipient = "b@x.org".into();
        assert!(matches!(
            s.unseal_otp(&moved),
            Err(StoreError::Unseal { .. })
        ));
    }

    #[test]
    fn delivery_supersedes_older_live_codes() {
        let db = temp_db("supersede");
        let mut s = Store::open(&db).unwrap();
        let k = Secret::new("ABCDEFGHJK".to_string());
        let a = s
            .insert_sending("a@x.org", Material::Key(&k), 1, 99, "<1>")
            .unwrap();
        s.mark_delivered(a, 1).unwrap();
        let b = s
            .insert_sending("a@x.org", Material::Key(&k), 2, 99, "<2>")
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
        let db = temp_db("failed");
        let mut s = Store::open(&db).unwrap();
        let k = Secret::new("ABCDEFGHJK".to_string());
        let a = s
            .insert_sending("a@x.org", Material::Key(&k), 1, 99, "<1>")
            .unwrap();
        s.mark_failed(a, 2).unwrap();
        let cur = s
            .with_current("a@x.org", 2, |_, r| Ok((None, r.is_some())))
            .unwrap();
        assert!(!cur);
    }

    #[test]
    fn open_key_file_is_refused() {
        let db = temp_db("perm");
        drop(Store::open(&db).unwrap());
        fs::set_permissions(key_file_path(&db), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Store::open(&db),
            Err(StoreError::KeyFileOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn racing_first_opens_share_one_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("securemail.key");
        let start = std::sync::Barrier::new(8);
        let macs: Vec<[u8; 32]> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        load_or_create_key(&path).map(|k| *k.mac.expose())
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().unwrap().unwrap())
                .collect()
        });
        // Everyone has the key in the file: none was replaced after another had read it.
        let key: [u8; 32] = fs::read(&path).unwrap().try_into().unwrap();
        let mac = derive(&key, "securemail/mac/v1");
        assert!(macs.iter().all(|m| m == mac.expose()));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // The losers' temporary files are gone.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
