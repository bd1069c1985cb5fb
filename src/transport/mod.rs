//! Getting a finished mail off this machine: SMTP over verified TLS, or the local outbox.
//!
//! [`TransportError`] names every way that can fail, each with its own exit code and hint, so a
//! user can tell an untrusted certificate from a refused login from a server that will not
//! STARTTLS. Password retrieval ([`password`]) lives here too: it is only ever needed to log in.

pub mod cert;
pub mod outbox;
pub mod password;
pub mod smtp;
pub mod tls;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::config::SmtpSettings;
use crate::exit;
use crate::secret::Secret;

pub use password::{PasswordError, password};

/// Where in the dialogue something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    TlsHandshake,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    Message,
    Rset,
    Noop,
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connecting",
            Stage::TlsHandshake => "the TLS handshake",
            Stage::Greeting => "the greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the end of the message",
            Stage::Rset => "RSET",
            Stage::Noop => "NOOP",
            Stage::Quit => "QUIT",
        })
    }
}

/// An SMTP reply: code and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text, lines joined by spaces, made safe for a terminal.
    pub fn text(&self) -> String {
        smtp::printable(&self.lines.join(" "))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// Everything that can go wrong between a finished mail and the server's `250`.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot resolve the SMTP host {host:?}: {}", source.as_ref().map_or("it has no addresses".into(), crate::io_reason))]
    Resolve {
        host: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("cannot connect to {host}:{port}: {}", crate::io_reason(source))]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the SMTP server did not answer within {secs}s during {stage}")]
    Timeout { stage: Stage, secs: u64 },
    #[error("the SMTP server closed the connection during {stage}")]
    Closed { stage: Stage },
    #[error("cannot use [smtp] ca_file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("no trusted CA certificates: the system store is empty and no ca_file is set")]
    NoTrustAnchors,
    #[error("TLS setup failed: {0}")]
    TlsSetup(String),
    #[error("the certificate of {host}{} is not signed by a trusted CA", in_parens(presented.as_ref()))]
    CertUntrusted {
        host: String,
        presented: Option<Presented>,
    },
    #[error("the certificate of {host} ({subject}) is self-signed and not trusted")]
    CertSelfSigned { host: String, subject: String },
    #[error(
        "the certificate of {host} ({presented}) is a CA certificate, which no server may present as its own"
    )]
    CertIsCa { host: String, presented: Presented },
    #[error(
        "the certificate presented by {host} is not valid for that name{}",
        for_names(names)
    )]
    CertHostname { host: String, names: Vec<String> },
    #[error("the certificate of {host} has expired{}", not_after.as_ref().map(|t| format!(" (on {t})")).unwrap_or_default())]
    CertExpired {
        host: String,
        not_after: Option<String>,
    },
    #[error("the certificate of {host} is not valid yet{}", not_before.as_ref().map(|t| format!(" (from {t})")).unwrap_or_default())]
    CertNotYetValid {
        host: String,
        not_before: Option<String>,
    },
    #[error("the certificate of {host} was rejected: {reason}{}", in_parens(presented.as_ref()))]
    CertInvalid {
        host: String,
        reason: String,
        presented: Option<Presented>,
    },
    #[error("{host} offers only TLS versions older than 1.2")]
    TlsVersion { host: String },
    #[error("{host}:{port} did not answer with TLS")]
    NotTls { host: String, port: u16 },
    #[error("the TLS handshake with {host} failed: {reason}")]
    TlsHandshake { host: String, reason: String },
    #[error("{host}:{port} does not offer STARTTLS; nothing was sent")]
    NoStartTls { host: String, port: u16 },
    #[error("the server refused STARTTLS: {reply}; nothing was sent")]
    StartTlsRefused { reply: Reply },
    #[error(
        "{bytes} bytes of plaintext followed the server's STARTTLS reply (response injection); \
         the session was refused and nothing was sent"
    )]
    StartTlsInjection { bytes: usize },
    #[error("{host} offers no AUTH after TLS, but [smtp] username is set")]
    AuthUnavailable { host: String },
    #[error("the server offers no login method securemail supports (it offers: {offered})")]
    AuthMechanism { offered: String },
    #[error("the server refused the login: {reply}")]
    AuthFailed { reply: Reply },
    #[error("the server refused {stage} for now: {reply}")]
    Temporary { stage: Stage, reply: Reply },
    #[error("the server refused {stage}: {reply}")]
    Permanent { stage: Stage, reply: Reply },
    #[error("the SMTP server broke the protocol during {stage}: {detail}")]
    Protocol { stage: Stage, detail: String },
    #[error("the message is {size} bytes; the server accepts at most {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("an address is not ASCII and the server does not offer SMTPUTF8")]
    NeedsSmtpUtf8,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot write to the outbox {}: {reason}", path.display())]
    Outbox { path: PathBuf, reason: String },
}

/// What a refused certificate says about itself (read from it, so untrusted: printable and
/// bounded in length, see [`tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub subject: String,
    pub issuer: String,
    /// Its DNS names and IP addresses (subject alternative names).
    pub names: Vec<String>,
}

impl fmt::Display for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, issued by {}", self.subject, self.issuer)
    }
}

fn in_parens(p: Option<&Presented>) -> String {
    p.map(|p| format!(" ({p})")).unwrap_or_default()
}

fn for_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (it is for {})", names.join(", "))
    }
}

impl TransportError {
    /// A refusal reply becomes a temporary or permanent error by its first digit.
    pub fn from_reply(stage: Stage, reply: Reply) -> TransportError {
        if (400..500).contains(&reply.code) {
            TransportError::Temporary { stage, reply }
        } else if (500..600).contains(&reply.code) {
            TransportError::Permanent { stage, reply }
        } else {
            TransportError::Protocol {
                stage,
                detail: format!("unexpected reply {reply}"),
            }
        }
    }

    /// The SMTP reply behind this error, if there is one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            TransportError::StartTlsRefused { reply }
            | TransportError::AuthFailed { reply }
            | TransportError::Temporary { reply, .. }
            | TransportError::Permanent { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// Worth trying again later (on a fresh connection)?
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == exit::TEMPFAIL
    }

    pub fn exit_code(&self) -> u8 {
        use TransportError::*;
        match self {
            Resolve { .. } => exit::TEMPFAIL,
            Connect { .. } | Timeout { .. } | Closed { .. } | Temporary { .. } => exit::TEMPFAIL,
            StartTlsRefused { reply } if reply.code < 500 => exit::TEMPFAIL,
            CaFile { .. } | NoTrustAnchors => exit::CONFIG,
            TlsSetup(_) => exit::SOFTWARE,
            CertUntrusted { .. }
            | CertSelfSigned { .. }
            | CertIsCa { .. }
            | CertHostname { .. }
            | CertExpired { .. }
            | CertNotYetValid { .. }
            | CertInvalid { .. }
            | TlsVersion { .. }
            | NotTls { .. }
            | TlsHandshake { .. }
            | AuthUnavailable { .. }
            | AuthMechanism { .. }
            | AuthFailed { .. } => exit::NOPERM,
            NoStartTls { .. } | StartTlsRefused { .. } | Permanent { .. } | TooLarge { .. } => {
                exit::UNAVAILABLE
            }
            NeedsSmtpUtf8 => exit::DATAERR,
            StartTlsInjection { .. } | Protocol { .. } => exit::PROTOCOL,
            Password(p) => p.exit_code(),
            Outbox { .. } => exit::IOERR,
        }
    }

    pub fn hint(&self) -> Option<String> {
        use TransportError::*;
        Some(match self {
            Resolve { .. } => "check [smtp] host in the config, and this machine's DNS".into(),
            Connect { port, .. } => format!(
                "check [smtp] host and port, and that this machine may connect out to port {port}"
            ),
            Timeout { .. } => {
                "check [smtp] host and port; raise [smtp] timeout_secs if the server is just slow"
                    .into()
            }
            Closed { .. } => "try again later; if it persists, run with -v to see the dialogue".into(),
            CaFile { .. } => "point ca_file at the PEM file of the CA that signed the server's certificate".into(),
            NoTrustAnchors => "install the ca-certificates package, or set [smtp] ca_file".into(),
            TlsSetup(_) => return None,
            CertUntrusted { presented: Some(p), .. } => format!(
                "if {} is your organisation's private CA, set [smtp] ca_file to its PEM certificate; securemail never skips verification",
                p.issuer
            ),
            CertUntrusted { presented: None, .. } => "if the server uses a private CA, set [smtp] ca_file to that CA's PEM certificate; securemail never skips verification".into(),
            CertSelfSigned { .. } => "if this is your own server, set [smtp] ca_file to a PEM copy of its certificate, taken from the server itself rather than from this connection; securemail never skips verification".into(),
            CertIsCa { .. } => "the server needs a certificate with basicConstraints CA:FALSE, signed by a CA (then set [smtp] ca_file to that CA's PEM certificate) or self-signed (then ca_file is that certificate); `openssl req -x509` makes CA certificates unless given -addext basicConstraints=critical,CA:FALSE".into(),
            CertHostname { .. } => "set [smtp] host to the name the certificate was issued for (e.g. smtp.gmail.com, not an IP address or alias)".into(),
            CertExpired { .. } | CertNotYetValid { .. } => "check this machine's clock; if it is right, the server's administrator must renew the certificate".into(),
            CertInvalid { .. } => "the server's administrator must fix its certificate".into(),
            TlsVersion { .. } => "securemail requires TLS 1.2 or newer; ask the server's administrator to enable it".into(),
            NotTls { port, .. } => format!(
                "port {port} does not speak TLS from the first byte; if the server expects STARTTLS, use port = 587 (or security = \"starttls\")"
            ),
            TlsHandshake { .. } => "run with -v to see where the handshake stopped".into(),
            NoStartTls { .. } => "use port = 465 (TLS from the first byte) if the server offers it; securemail never sends without TLS".into(),
            StartTlsRefused { .. } => "try again later, or use port = 465 (TLS from the first byte)".into(),
            StartTlsInjection { .. } => "something between this machine and the server tampers with the connection; use port = 465 (TLS from the first byte), which this attack cannot touch".into(),
            AuthUnavailable { .. } => "check [smtp] host and port (submission is usually 465 or 587), or remove [smtp] username if the server needs no login".into(),
            AuthMechanism { .. } => "securemail logs in with PLAIN or LOGIN over TLS; ask the provider for an app password or SMTP credentials".into(),
            AuthFailed { .. } => "check [smtp] username and the password; Gmail and other providers with 2-step verification need an app password (Google account → Security → App passwords)".into(),
            Temporary { .. } => "try again later".into(),
            Permanent { stage: Stage::RcptTo, .. } => "check the recipient's address".into(),
            Permanent { .. } => "the server will not take this mail; the reply says why".into(),
            Protocol { .. } => "run with -v to see the dialogue; the server (or something in between) misbehaves".into(),
            TooLarge { .. } => "shorten the templates".into(),
            NeedsSmtpUtf8 => "use an ASCII address".into(),
            Password(p) => return p.hint(),
            Outbox { .. } => "check that [outbox] dir is writable".into(),
        })
    }
}

/// Everything needed to open sessions to the configured server: TLS trust and the password,
/// gathered once before the first connection.
pub struct SmtpTarget {
    pub settings: SmtpSettings,
    tls: Arc<ClientConfig>,
    password: Option<Secret<String>>,
}

impl fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .finish_non_exhaustive()
    }
}

impl SmtpTarget {
    /// Loads the trust anchors and fetches the password (env, command or prompt).
    pub fn prepare(settings: &SmtpSettings) -> Result<SmtpTarget, TransportError> {
        let tls = tls::client_config(settings.ca_file.as_deref())?;
        let password = match &settings.login {
            Some((user, source)) => {
                let prompt_for = format!("{user} at {}", settings.host);
                Some(password(source, &prompt_for, settings.timeout)?)
            }
            None => None,
        };
        Ok(SmtpTarget {
            settings: settings.clone(),
            tls,
            password,
        })
    }

    /// Opens an encrypted, logged-in session.
    pub fn open(&self, trace: Option<smtp::Trace>) -> Result<smtp::Session, TransportError> {
        smtp::Session::open(
            &self.settings,
            Arc::clone(&self.tls),
            self.credentials(),
            trace,
        )
    }

    /// Opens an encrypted session without logging in (for `check`, which reports the login
    /// separately with [`SmtpTarget::login`]).
    pub fn open_unauthenticated(
        &self,
        trace: Option<smtp::Trace>,
    ) -> Result<smtp::Session, TransportError> {
        smtp::Session::open(&self.settings, Arc::clone(&self.tls), None, trace)
    }

    /// Logs in on `session`; returns the server's acceptance.
    pub fn login(&self, session: &mut smtp::Session) -> Result<Reply, TransportError> {
        match self.credentials() {
            Some(c) => session.authenticate(c),
            None => Err(TransportError::AuthUnavailable {
                host: self.settings.host.clone(),
            }),
        }
    }

    fn credentials(&self) -> Option<smtp::Credentials<'_>> {
        match (&self.settings.login, &self.password) {
            (Some((username, _)), Some(password)) => Some(smtp::Credentials { username, password }),
            _ => None,
        }
    }
}
