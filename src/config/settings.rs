//! What the rest of securemail sees of the configuration: checked values, enums instead of
//! strings, resolved paths, parsed mailboxes and durations.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use crate::otp::OtpParams;

/// How the connection to the SMTP server is secured. There is deliberately no plaintext choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Plain TCP upgraded with a mandatory STARTTLS before anything else is said (port 587).
    StartTls,
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
        })
    }
}

/// Where the SMTP password comes from. Never the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The named environment variable.
    Env(String),
    /// The first line printed by this shell command (e.g. `pass show mail/gmail`).
    Command(String),
    /// Asked for on the terminal, without echo.
    Prompt,
}

impl PasswordSource {
    /// Whether `var` can name an environment variable (`password_env`, `--password-env`).
    pub fn is_env_name(var: &str) -> bool {
        !var.is_empty() && !var.contains(['=', '\0'])
    }
}

/// The `[smtp]` table, checked.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// `None`: the server is used without AUTH.
    pub login: Option<(String, PasswordSource)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub hello_name: String,
    /// Parallel connections for batches.
    pub connections: usize,
    /// Rate limit across all connections, if any.
    pub max_per_minute: Option<u32>,
    /// Further attempts for a temporary failure (4xx, timeout, dropped connection).
    pub retries: u32,
}

/// How mail leaves this machine.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// No `[smtp]` table: each mail is written as an `.eml` file into the outbox directory.
    Outbox,
    /// Over SMTP with verified TLS.
    Smtp(SmtpSettings),
}

/// `[otp]`, checked.
#[derive(Debug, Clone)]
pub struct OtpPolicy {
    pub issuer: String,
    /// Parameters for new enrolments (existing ones keep theirs).
    pub params: OtpParams,
    pub skew: u8,
    /// How long an enrolment may stay unconfirmed.
    pub ttl: Duration,
}

/// `[key]`, checked.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Characters of Crockford base32, 5 bits each.
    pub length: usize,
    pub ttl: Duration,
}

/// `[limits]`, checked: what one recipient may be sent and may try, whatever the commands say
/// (see [`crate::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsPolicy {
    /// No new code to a recipient sooner than this after the last one.
    pub resend_cooldown: Duration,
    /// Codes issued to one recipient in any 24 hours.
    pub codes_per_day: u32,
    /// Wrong codes from one recipient, across all their codes, in any 24 hours.
    pub wrong_attempts_per_day: u32,
}

impl Default for LimitsPolicy {
    fn default() -> LimitsPolicy {
        LimitsPolicy {
            resend_cooldown: Duration::from_secs(60),
            codes_per_day: 5,
            wrong_attempts_per_day: 10,
        }
    }
}

/// `[store] url`, checked: the shared PostgreSQL store (see `crate::store::pg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/db` as written; it never holds a password (refused).
    pub url: String,
    /// `None`: no password is sent (peer or certificate authentication).
    pub password: Option<PasswordSource>,
    /// Trusted besides the system roots for the database's certificate.
    pub ca_file: Option<PathBuf>,
    /// Whether the connection uses (verified) TLS. Only a Unix socket or a loopback host may go
    /// without, and only when the URL does not ask for `sslmode=require`.
    pub tls: bool,
    /// The sealing key; every host sharing the database needs a copy of the same file.
    pub key_file: PathBuf,
    /// `[store] lease`: how long a send run's claim on list recipients (and its `sending`
    /// records) outlives its last heartbeat before other runs may take them over.
    pub lease: Duration,
    /// Where these settings were given (`[store]`, or `store migrate`'s flags): what errors name.
    pub origin: super::pg_url::UrlOrigin,
}

/// `[dkim]`, checked.
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
}

/// `[reply]`, checked: whose reply mails are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyPolicy {
    /// When set, a reply counts only if the topmost `Authentication-Results` header written by
    /// this authentication service (RFC 8601 authserv-id, lower case) shows DMARC pass, or DKIM
    /// pass for a domain aligned with the From address.
    pub authserv_id: Option<String>,
}

/// `[sender]`, checked.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
}

/// Everything the configuration file decides, checked, with paths resolved against the file's
/// directory.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub sender: SenderSettings,
    pub delivery: Delivery,
    pub outbox_dir: PathBuf,
    /// The SQLite database (`[store] path`), unless `postgres` is set.
    pub store_path: PathBuf,
    /// `[store] url`: the shared PostgreSQL store instead of `store_path`.
    pub postgres: Option<PostgresSettings>,
    /// How long to wait for another process's lock on the store.
    pub store_lock_timeout: Duration,
    /// `[templates] dir`: files here replace the built-in templates one by one.
    pub templates_dir: Option<PathBuf>,
    pub otp: OtpPolicy,
    pub key: KeyPolicy,
    pub max_attempts: u32,
    pub limits: LimitsPolicy,
    /// DKIM signing, when `[dkim]` is present.
    pub dkim: Option<DkimSettings>,
    /// msmtp-style log of every send, when `[log] file` is set.
    pub log_file: Option<PathBuf>,
    /// The audit log of security events (see [`crate::audit`]): `[audit] file`, by default
    /// beside the store; `None` only with `[audit] enabled = false`.
    pub audit_file: Option<PathBuf>,
    pub reply: ReplyPolicy,
}

/// How long a process waits for another one's lock on the store before giving up, unless
/// `[store] lock_timeout` says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// `[store] lease` unless the file says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The range `[store] lease` must be in: a heartbeat goes every third of it, so a second is
/// plenty of round trips, and beyond an hour a dead host's work waits too long.
pub(super) const LEASE_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// Largest configuration file read.
pub(super) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Parallel SMTP connections for a batch unless `[smtp] connections` says otherwise.
pub const DEFAULT_CONNECTIONS: usize = 4;

/// Smallest key length we accept: 10 characters of base32 are 50 bits.
pub const MIN_KEY_LENGTH: usize = 10;
// Keys carry 5 bits a character; the floor is 50 bits. Checked at compile time.
const _: () = assert!(MIN_KEY_LENGTH * 5 >= 50);
pub(super) const MAX_KEY_LENGTH: usize = 64;
