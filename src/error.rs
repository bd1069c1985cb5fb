//! The one error type the binary sees.
//!
//! Each module has its own error enum carrying the file, field or value involved; this wraps
//! them so that `main` can print `securemail: error: <what>` and `hint: <how to fix>` once and
//! exit with the documented code (see [`crate::exit`]).

use crate::audit::AuditError;
use crate::config::ConfigError;
use crate::config::discover::{NotFound, Untrusted};
use crate::exit;
use crate::limits::SendLimit;
use crate::mail::MailError;
use crate::recipients::ListError;
use crate::secret::RandomError;
use crate::sendlog::LogError;
use crate::store::StoreError;
#[cfg(feature = "postgres")]
use crate::store::copy::MigrateError;
use crate::transport::TransportError;
use crate::verify::{Refusal, VerifyError};

/// Anything that stops a securemail command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Input data (not the config) is wrong.
    #[error("{message}")]
    Input {
        message: String,
        hint: Option<String>,
    },
    /// An input file named on the command line cannot be read (exit 66).
    #[error("{message}")]
    NoInput { message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No configuration file anywhere securemail looks.
    #[error(transparent)]
    NoConfig(#[from] NotFound),
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `store migrate` copied nothing (boxed: it names two databases and a key file, and
    /// every `Result` of securemail carries this enum).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Migrate(Box<MigrateError>),
    #[error("code refused: {0}")]
    Refused(Refusal),
    /// A per-recipient budget (`[limits]`) holds a send back.
    #[error("not sent: {0}")]
    Limit(#[from] SendLimit),
    #[error("{0}")]
    Verify(VerifyError),
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A batch finished but not every recipient got their mail.
    #[error("{message}")]
    Incomplete { message: String, code: u8 },
    /// A batch stopped at Ctrl-C after its mails in flight; `sent` got theirs.
    /// `after` of them were on the wire at Ctrl-C and finished after it.
    #[error("{}", interrupted(*.sent, *.after))]
    Interrupted {
        sent: usize,
        after: usize,
        resend: bool,
    },
    /// A file that would be written exists already (exit 73, EX_CANTCREAT).
    #[error("{message}")]
    Exists { message: String, hint: String },
    /// There was nothing to act on (exit 1), e.g. no code to revoke.
    #[error("{message}")]
    Nothing { message: String },
    /// A terminal prompt failed.
    #[error("cannot read from the terminal: {}", crate::io_reason(.0))]
    Prompt(#[source] std::io::Error),
    /// Results could not be written to stdout (not a reader that went away: that ends quietly).
    #[error("cannot write to stdout: {0}")]
    Output(String),
}

/// "interrupted: 5 mails sent before Ctrl-C and 1 finishing after, the rest not".
fn interrupted(sent: usize, after: usize) -> String {
    let before = sent.saturating_sub(after);
    let mails = |n: usize| if n == 1 { "mail" } else { "mails" };
    if after == 0 {
        format!(
            "interrupted: {before} {} sent before Ctrl-C, the rest not",
            mails(before)
        )
    } else {
        format!(
            "interrupted: {before} {} sent before Ctrl-C and {after} finishing after, the rest not",
            mails(before)
        )
    }
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Error {
        match e {
            VerifyError::Refused(r) => Error::Refused(r),
            VerifyError::Store(s) => Error::Store(s),
            other => Error::Verify(other),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<MigrateError> for Error {
    fn from(e: MigrateError) -> Error {
        Error::Migrate(Box::new(e))
    }
}

impl Error {
    /// The process exit code (sysexits).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Prompt(_) => exit::USAGE,
            Error::Input { .. } => exit::DATAERR,
            Error::NoInput { .. } => exit::NOINPUT,
            Error::Config(e) => e.exit_code(),
            Error::NoConfig(_) | Error::Untrusted(_) => exit::CONFIG,
            Error::Interrupted { .. } => exit::INTERRUPTED,
            Error::Mail(e) => e.exit_code(),
            Error::List(e) => e.exit_code(),
            Error::Log(_) | Error::Audit(_) | Error::Output(_) => exit::IOERR,
            Error::Transport(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            #[cfg(feature = "postgres")]
            Error::Migrate(e) => e.exit_code(),
            Error::Refused(r) => r.exit_code(),
            Error::Limit(l) => l.exit_code(),
            Error::Verify(_) => exit::IOERR,
            Error::Random(_) => exit::SOFTWARE,
            Error::Incomplete { code, .. } => *code,
            Error::Nothing { .. } => exit::REFUSED,
            Error::Exists { .. } => exit::CANTCREAT,
        }
    }

    /// How to fix it, when we can say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } | Error::Input { hint, .. } => hint.clone(),
            Error::Exists { hint, .. } => Some(hint.clone()),
            Error::Config(e) => e.hint().map(str::to_string),
            Error::NoConfig(e) => Some(e.hint()),
            Error::Untrusted(e) => Some(e.hint()),
            Error::Interrupted { resend: false, .. } => Some(
                "run the same command again to send to the rest: whoever got a mail is skipped".into(),
            ),
            Error::Interrupted { resend: true, .. } => Some(
                "run it again with a list of those left (securemail status shows who got a code); \
                 with --resend, the same list would send to everyone again"
                    .into(),
            ),
            Error::Mail(e) => e.hint(),
            Error::List(e) => e.hint(),
            Error::Log(_) => Some("check [log] file in the config".into()),
            Error::Audit(_) => Some(
                "check [audit] file in the config: its directory must be writable and the disk not full"
                    .into(),
            ),
            Error::Transport(e) => e.hint(),
            Error::Store(e) => e.hint(),
            #[cfg(feature = "postgres")]
            Error::Migrate(e) => e.hint(),
            Error::Refused(r) => r.hint(),
            Error::Limit(l) => Some(l.hint()),
            Error::Verify(_) => Some("the store's key file may have been replaced; restore the one that belongs to this database".into()),
            Error::Incomplete { code, .. } if *code == exit::TEMPFAIL => Some(
                "run the same command again later: it sends only to those who have not got their mail".into(),
            ),
            Error::Incomplete { .. } => Some(
                "the lines above say why each failed; after fixing, the same command sends only to those left".into(),
            ),
            Error::Nothing { .. } => Some("securemail status --to ADDR shows what was issued".into()),
            Error::Output(_) => Some(
                "the command did its work, but its output is incomplete: check where stdout goes (a full disk?)".into(),
            ),
            Error::Random(_) | Error::Prompt(_) | Error::NoInput { .. } => None,
        }
    }
}
