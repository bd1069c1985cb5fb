//! The record of every code issued.
//!
//! One row per issued code: recipient, kind, created, expires, consecutive failed attempts and
//! state ([`record`]). Secrets never reach the database in the clear: [`vault`] keeps keys as
//! HMACs and TOTP secrets sealed, under a key file beside the database. [`db`] is the SQLite
//! database itself, where every verification is one write transaction; [`pg`] the PostgreSQL
//! database that several hosts share, under the same rules, with [`queue`] splitting one list
//! among the hosts that send it; [`backend`] the [`Store`] that is one or the other; [`copy`]
//! moves a SQLite store into PostgreSQL (`store migrate`).

pub mod backend;
#[cfg(feature = "postgres")]
pub mod copy;
pub mod db;
pub mod error;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod queue;
pub mod record;
pub mod vault;

pub use backend::{Inspection, Store};
pub use error::StoreError;
pub use record::{Material, NewRecord, Record, State, Update};
pub use vault::{Vault, key_file_path};
