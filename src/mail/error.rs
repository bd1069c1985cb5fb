//! What can go wrong while building a mail, with the template, header or value involved.

use std::path::PathBuf;

use super::dkim::DkimError;
use super::qr::QrError;
use crate::exit;
use crate::otp::OtpError;
use crate::secret::RandomError;

/// Problems with templates, header values or MIME assembly.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot read template {}: {}", path.display(), crate::io_reason(source))]
    TemplateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the templates directory {}: {}", path.display(), crate::io_reason(source))]
    TemplateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {}: {detail}", path.display())]
    TemplateSyntax { path: PathBuf, detail: String },
    #[error("template {} uses the variable `{variable}`, which securemail does not provide", path.display())]
    UnknownVariable {
        path: PathBuf,
        variable: String,
        available: String,
    },
    #[error("rendering template {} failed: {detail}", path.display())]
    Render { path: PathBuf, detail: String },
    #[error("the {what} contains a line break or control character")]
    ControlCharacter { what: &'static str },
    #[error("the {what} is too long ({chars} characters, at most {max})")]
    TooLong {
        what: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("{} is not a valid recipient address ({reason})", crate::quote(input))]
    BadAddress { input: String, reason: String },
    #[error("cannot assemble the message: {0}")]
    Mime(String),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Qr(#[from] QrError),
    #[error(transparent)]
    Dkim(#[from] DkimError),
}

impl MailError {
    pub fn exit_code(&self) -> u8 {
        match self {
            MailError::TemplateRead { .. }
            | MailError::TemplateDir { .. }
            | MailError::TemplateSyntax { .. }
            | MailError::UnknownVariable { .. }
            | MailError::Render { .. }
            | MailError::Dkim(_) => exit::CONFIG,
            MailError::ControlCharacter { .. }
            | MailError::TooLong { .. }
            | MailError::BadAddress { .. }
            | MailError::Otp(OtpError::Build { .. })
            | MailError::Qr(QrError::TooLong { .. }) => exit::DATAERR,
            MailError::Mime(_) | MailError::Random(_) | MailError::Otp(_) | MailError::Qr(_) => {
                exit::SOFTWARE
            }
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MailError::TemplateRead { .. } => {
                Some("make the file readable, or remove it to use the built-in template".into())
            }
            MailError::TemplateDir { path, .. } => Some(format!(
                "remove [templates] dir from the config to use the built-in templates, or run \
                 `securemail templates export {}` to put them there for editing",
                path.display()
            )),
            MailError::TemplateSyntax { .. } | MailError::Render { .. } => {
                Some("fix the template; the syntax is Jinja2 (minijinja)".into())
            }
            MailError::UnknownVariable { available, .. } => {
                Some(format!("the variables available here are {available}"))
            }
            MailError::ControlCharacter { .. } => Some(
                "header values must be a single line; remove CR, LF and other control characters"
                    .into(),
            ),
            MailError::TooLong { .. } => Some("shorten it".into()),
            MailError::BadAddress { .. } => Some(
                "give an address such as alice@example.org or \"Alice <alice@example.org>\"".into(),
            ),
            MailError::Otp(OtpError::Build { .. }) => Some(
                "authenticator labels cannot contain ':'; use another address or issuer".into(),
            ),
            MailError::Qr(QrError::TooLong { .. }) => {
                Some("use a shorter issuer or address".into())
            }
            MailError::Dkim(e) => e.hint(),
            MailError::Mime(_) | MailError::Random(_) | MailError::Otp(_) | MailError::Qr(_) => {
                None
            }
        }
    }
}
