//! Store failures, each naming the database or key file involved.

use std::path::PathBuf;
use std::time::Duration;

use crate::exit;
use crate::secret::RandomError;

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
    #[error("the store key file {} is damaged: {reason}", path.display())]
    KeyFileDamaged { path: PathBuf, reason: String },
    #[error("the store key file {} is readable by others (mode {mode:o})", path.display())]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("the key file {} of the store {} is missing{}", key.display(), db.display(),
        recorded.as_ref().map(|id| format!(" (the store's key id is {id})")).unwrap_or_default())]
    KeyMissing {
        db: PathBuf,
        key: PathBuf,
        recorded: Option<String>,
    },
    #[error("the key file {} (key id {found}) is not the one of the store {} (key id {recorded})", key.display(), db.display())]
    KeyMismatch {
        db: PathBuf,
        key: PathBuf,
        recorded: String,
        found: String,
    },
    #[error("a sealed secret in {} does not open with the key file: the key file was replaced or the row was altered", path.display())]
    Unseal { path: PathBuf },
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("cannot reach the store {store}: {reason}")]
    Unreachable { store: String, reason: String },
    #[error("the TLS connection to the store {store} failed: {reason}")]
    DatabaseTls { store: String, reason: String },
    #[error("the store {store} refused the login: {reason}")]
    Login { store: String, reason: String },
    #[error("cannot get the password of the store {store}: {reason}")]
    Password {
        store: String,
        reason: String,
        hint: Option<String>,
        code: u8,
    },
    #[error("store error in {store}: {reason}")]
    Postgres { store: String, reason: String },
    /// A shared batch's recipient this run had claimed was taken over by another run (this
    /// one was silent for longer than its lease): the other run sends it.
    #[error("another send run took over {recipient}: this run's claim on it had lapsed")]
    ClaimLost { recipient: String },
}

impl StoreError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::Busy { .. } => exit::TEMPFAIL,
            StoreError::KeyFileOpen { .. }
            | StoreError::KeyFileDamaged { .. }
            | StoreError::Newer { .. }
            | StoreError::KeyMissing { .. }
            | StoreError::KeyMismatch { .. } => exit::CONFIG,
            StoreError::Random(_) => exit::SOFTWARE,
            StoreError::Unreachable { .. } | StoreError::ClaimLost { .. } => exit::TEMPFAIL,
            StoreError::DatabaseTls { .. } => exit::NOPERM,
            StoreError::Login { .. } => exit::CONFIG,
            StoreError::Password { code, .. } => *code,
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
            StoreError::KeyFile { .. } | StoreError::KeyFileDamaged { .. } => "the key file must hold the 32 bytes securemail wrote; restore it from a backup (without it no stored code verifies)".into(),
            StoreError::KeyFileOpen { path, .. } => format!("chmod 600 {}", path.display()),
            StoreError::KeyMissing { db, key, .. } => format!(
                "restore {} from your backup: without it no code issued so far can be checked. \
                 To start over instead, move {} aside (every code issued so far stops working)",
                key.display(),
                db.display()
            ),
            StoreError::KeyMismatch { db, key, recorded, .. } => format!(
                "restore the key file with id {recorded} from your backup to {}. \
                 To start over instead, move {} and {} aside (every code issued so far stops working)",
                key.display(),
                db.display(),
                key.display()
            ),
            StoreError::Unseal { .. } => "restore the key file that belongs to this database".into(),
            StoreError::Random(_) => return None,
            StoreError::Unreachable { .. } => "check [store] url, that the database server runs and that this host may connect to it".into(),
            StoreError::DatabaseTls { .. } => "the database's certificate must be valid for the host in [store] url and signed by a trusted CA (add it with [store] ca_file)".into(),
            StoreError::Login { .. } => "check the user in [store] url and [store] password_env / password_command; the server's pg_hba.conf must let this host in".into(),
            StoreError::Password { hint, .. } => return hint.clone(),
            StoreError::Postgres { .. } => return None,
            StoreError::ClaimLost { .. } => "this host stopped beating for longer than [store] lease (a pause, a cut-off database); raise lease if it pauses that long".into(),
        })
    }
}
