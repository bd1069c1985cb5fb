//! `securemail store migrate --to postgres://…`: moves the configured SQLite store into a
//! PostgreSQL database, for when one host becomes several.
//!
//! The target is given like `[store]` in the config (URL, password source, CA file) and checked
//! by the same rules ([`crate::config::pg_url`]) before anything is opened; the password is
//! never in the URL or on the command line. The copy itself is [`crate::store::copy`]: every
//! table as it is, under the same key file, in one transaction, counts verified. A database
//! that already holds records is refused (exit 73) unless `--force`, and one that belongs to a
//! store with another key is always refused (exit 78).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Printer;
use crate::config::pg_url::{UrlOrigin, check_postgres_url};
use crate::config::{PasswordSource, PostgresSettings, Settings};
use crate::error::Error;
use crate::store::copy::{self, Existing, MigrateError, Rows};
use crate::store::db::SqliteStore;

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every record of the SQLite store into a PostgreSQL database (same key file, one
    /// transaction, counts verified); then point [store] url at it.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database: postgres://user@host:port/db, without a password. TLS (verified) unless
    /// the host is this machine.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The environment variable that holds the database password.
    #[arg(long, value_name = "VAR", conflicts_with = "password_command")]
    pub password_env: Option<String>,
    /// A shell command that prints the database password on its first line.
    #[arg(long, value_name = "CMD")]
    pub password_command: Option<String>,
    /// Extra trusted CA certificate(s), PEM, for the database's certificate.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Replace the records the database already holds (they are deleted in the copy's
    /// transaction). Never overrides a database of another key.
    #[arg(long)]
    pub force: bool,
}

impl StoreArgs {
    pub fn execute(self, settings: &Settings, out: Printer) -> Result<(), Error> {
        match self.command {
            StoreCommand::Migrate(args) => {
                // No send may be issuing codes into the SQLite store while it is copied (they
                // would be mailed but missing from the copy): take the lock a send holds.
                let _lock = match &settings.postgres {
                    None if settings.store_path.exists() => {
                        Some(crate::batch::lock::SendLock::acquire(&settings.store_path)?)
                    }
                    _ => None,
                };
                migrate(settings, out, args).map_err(Error::from)
            }
        }
    }
}

/// `{"type":"migrated",…}`: what was copied.
#[derive(Serialize)]
#[serde(tag = "type", rename = "migrated")]
struct MigratedLine<'a> {
    from: &'a Path,
    to: &'a str,
    key_id: &'a str,
    key_file: &'a Path,
    codes: i64,
    attempts: i64,
    meta: i64,
    /// What the database held before, with `--force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<RowsLine>,
}

#[derive(Serialize)]
struct RowsLine {
    codes: i64,
    attempts: i64,
}

/// The target as `[store]` settings, checked like the config's, before anything is opened.
fn target(args: &MigrateArgs) -> Result<PostgresSettings, MigrateError> {
    let url = check_postgres_url(&args.to, UrlOrigin::MigrateTo)?;
    let password = match (&args.password_env, &args.password_command) {
        (Some(var), _) if !PasswordSource::is_env_name(var) => {
            return Err(MigrateError::PasswordEnv { var: var.clone() });
        }
        (Some(var), _) => Some(PasswordSource::Env(var.clone())),
        (None, Some(cmd)) if cmd.trim().is_empty() => return Err(MigrateError::PasswordCommand),
        (None, Some(cmd)) => Some(PasswordSource::Command(cmd.clone())),
        (None, None) => None,
    };
    if let Some(ca) = &args.ca_file {
        if !url.tls {
            return Err(MigrateError::CaWithoutTls {
                url: args.to.clone(),
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        crate::transport::tls::add_ca_file(&mut roots, ca).map_err(MigrateError::CaFile)?;
    }
    Ok(PostgresSettings {
        url: args.to.clone(),
        password,
        ca_file: args.ca_file.clone(),
        tls: url.tls,
        // The copy uses the source's key file, whatever is here.
        key_file: PathBuf::new(),
        // No send runs: the copy claims nothing.
        lease: crate::config::settings::DEFAULT_LEASE,
        origin: UrlOrigin::MigrateTo,
    })
}

fn migrate(settings: &Settings, out: Printer, args: MigrateArgs) -> Result<(), MigrateError> {
    let target = target(&args)?;
    if let Some(pg) = &settings.postgres {
        return Err(MigrateError::AlreadyPostgres {
            config: settings.config_path.clone(),
            url: pg.url.clone(),
        });
    }
    let path = &settings.store_path;
    let mut source = SqliteStore::open_existing(path, settings.store_lock_timeout)
        .map_err(MigrateError::Store)?
        .ok_or_else(|| MigrateError::NoSource { path: path.clone() })?;
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    let copied = copy::migrate(&mut source, &target, settings.store_lock_timeout, existing)?;
    // Absolute: the key file's path goes into a configuration, where a relative one would be
    // read against the configuration's directory.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, key_file) = (absolute(path), absolute(&copied.key_file));
    let line = MigratedLine {
        from: &from,
        to: &target.url,
        key_id: &copied.key_id,
        key_file: &key_file,
        codes: copied.rows.codes,
        attempts: copied.rows.attempts,
        meta: copied.meta,
        replaced: copied.replaced.map(|r| RowsLine {
            codes: r.codes,
            attempts: r.attempts,
        }),
    };
    out.emit(&line, || Some(line.human()));
    Ok(())
}

impl MigratedLine<'_> {
    fn human(&self) -> String {
        let rows = |codes, attempts| Rows { codes, attempts };
        let replaced = self
            .replaced
            .as_ref()
            .map(|r| format!(" (replacing its {})", rows(r.codes, r.attempts)))
            .unwrap_or_default();
        format!(
            "migrated {} to {}{replaced}: {}, {} meta row{}; counts verified\n\
             key:  id {}, the key file {}: copy it (0600) to every host that uses the database\n\
             next: in the configuration, replace [store] path with url = \"{}\", password_env \
             or password_command, and key_file = \"{}\"",
            self.from.display(),
            self.to,
            rows(self.codes, self.attempts),
            self.meta,
            if self.meta == 1 { "" } else { "s" },
            self.key_id,
            self.key_file.display(),
            self.to,
            self.key_file.display(),
        )
    }
}
