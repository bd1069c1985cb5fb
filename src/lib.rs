//! securemail: send one-time codes over verified-TLS SMTP and verify what comes back.
//!
//! The binary (`src/main.rs`) only parses arguments and reports errors; everything else is
//! here, one module per concept:
//!
//! - [`config`]: `config/account.toml` → one checked [`config::Settings`];
//! - [`secret`]: the redacting [`secret::Secret`] wrapper and the OS CSPRNG;
//! - [`otp`] and [`key`]: TOTP enrolments and random one-time keys;
//! - [`mail`]: recipients, templates, QR codes, MIME and DKIM;
//! - [`transport`]: SMTP over verified TLS, or the local outbox;
//! - [`store`]: the SQLite record of issued codes, secrets sealed;
//! - [`verify`]: the acceptance rules; [`inbound`]: codes out of reply emails;
//! - [`limits`]: what one recipient may be sent and may guess (throttling, daily budgets);
//! - [`recipients`] and [`batch`]: lists, and sending to many over reused connections;
//! - [`audit`]: the JSON-lines log of every security event;
//! - [`cli`]: one file per subcommand.

#![forbid(unsafe_code)]

/// A line on stderr that never panics: `eprintln!` panics when stderr is a closed pipe
/// (`securemail send … 2>&1 | head -1`), and a batch must not die mid-run over a message.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] without the newline (prompts).
macro_rules! say_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut err = std::io::stderr();
        let _ = write!(err, $($arg)*);
        let _ = err.flush();
    }};
}

pub mod audit;
pub mod batch;
pub mod cli;
pub mod config;
pub mod error;
pub mod exit;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod inbound;
pub mod key;
pub mod limits;
pub mod mail;
pub mod otp;
pub mod recipients;
pub mod secret;
pub mod sendlog;
pub mod store;
pub mod transport;
pub mod verify;

pub use cli::Cli;
pub use error::Error;

/// Which kind of one-time code a record or mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// A TOTP enrolment: secret + QR for an authenticator app.
    Otp,
    /// A random one-time key.
    Key,
}

impl CodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Otp => "otp",
            CodeKind::Key => "key",
        }
    }

    pub fn parse(s: &str) -> Option<CodeKind> {
        match s {
            "otp" => Some(CodeKind::Otp),
            "key" => Some(CodeKind::Key),
            _ => None,
        }
    }

    /// For people: "TOTP enrolment" / "one-time key".
    pub fn describe(self) -> &'static str {
        match self {
            CodeKind::Otp => "TOTP enrolment",
            CodeKind::Key => "one-time key",
        }
    }
}

/// Runs a parsed command line, printing results through `out`.
pub fn run(cli: Cli, out: cli::Printer) -> Result<(), Error> {
    cli::run(cli, out)?;
    // Output that could not be written (a full disk behind `>`) is a failure, not success.
    match cli::output::stdout_error() {
        Some(e) => Err(Error::Output(e)),
        None => Ok(()),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC to the second, e.g. `2026-11-25T10:49:00Z` (the epoch for
/// times before it).
pub fn rfc3339(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `text` with its control characters escaped (`\u{1b}`), for a name that goes to a terminal.
pub fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}

/// A user-supplied value for an error message: quoted, control characters escaped, and cut
/// to 64 characters so that a megabyte of input does not become a megabyte of error.
pub fn quote(value: &str) -> String {
    const MAX: usize = 64;
    let n = value.chars().count();
    if n <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!(
            "{}… ({n} characters)",
            format!("{head:?}").trim_end_matches('"').to_string() + "\""
        )
    }
}

/// An I/O error as a short phrase, without Rust's "(os error N)" suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        AlreadyExists => "it already exists".into(),
        IsADirectory => "it is a directory".into(),
        NotADirectory => "a parent is not a directory".into(),
        ReadOnlyFilesystem => "the file system is read-only".into(),
        StorageFull => "the disk is full".into(),
        InvalidData => "it is not valid UTF-8".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}
