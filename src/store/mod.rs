//! The record of every code issued.
//!
//! One row per issued code: recipient, kind, created, expires, consecutive failed attempts and
//! state ([`record`]). Secrets never reach the database in the clear: [`vault`] keeps keys as
//! HMACs and TOTP secrets sealed, under a key file beside the database. [`db`] is the SQLite
//! database itself, where every verification is one write transaction.

pub mod db;
pub mod error;
pub mod record;
pub mod vault;

use std::time::Duration;

pub use db::Store;
pub use error::StoreError;
pub use record::{Material, NewRecord, Record, State, Update};
pub use vault::{Vault, key_file_path};

/// How long a process waits for another one's lock before giving up, unless `[store]
/// lock_timeout` says otherwise.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
