//! The configuration file: parsing and validation into one checked [`Settings`] value.
//!
//! Everything securemail does is driven by this file, so every mistake in it must be reported
//! with the file, line, column and key, plus a hint, before any network or store I/O happens.
//! [`Settings`] is what the rest of the program sees:
//! enums instead of strings, resolved paths, parsed mailboxes and durations.
//!
//! - [`discover`]: which file, when `--config` does not say, and where its data goes;
//! - [`raw`]: the serde structs that mirror the file;
//! - [`validate`]: raw → [`Settings`], one check per table;
//! - [`pg_url`]: the rules for a PostgreSQL URL, shared with `store migrate --to`;
//! - [`report`]: errors as `file:line:col` with a hint;
//! - [`settings`]: the checked values the rest of the program uses.

pub mod discover;
pub mod pg_url;
pub mod raw;
pub mod report;
pub mod settings;
pub mod validate;

pub use report::{ConfigError, Position};
pub use settings::*;
pub use validate::{load, parse, parse_with_data_dir};
