//! The mail itself: templates rendered with minijinja, assembled into MIME with lettre.
//!
//! Shape (what every mail client understands):
//!
//! ```text
//! multipart/alternative
//! ├── text/plain                (carries the secret/key for people who cannot scan)
//! └── multipart/related
//!     ├── text/html             (<img src="cid:…">)
//!     └── image/png             (inline, Content-ID: <…>)
//! ```
//!
//! Templates are loaded and checked once ([`Templates::load`]): a variable securemail does not
//! provide is an error naming the template and the variable, before anything is generated or
//! sent. HTML templates are auto-escaped; text templates are not.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::CodeKind;
use crate::config::{Sender, Settings};
use crate::dkim::Signer;
use crate::error::Error;
use crate::exit;
use crate::key;
use crate::otp::{OtpError, OtpKey};
use crate::qr::{self, QrError, QrPng};
use crate::secret::{self, RandomError, Secret};

/// Longest display name we put in a header.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest subject we put in a header.
pub const MAX_SUBJECT_CHARS: usize = 250;

/// Problems with templates, header values or MIME assembly.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot read template {}: {reason}", path.display())]
    TemplateRead { path: PathBuf, reason: String },
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
}

impl MessageError {
    pub fn exit_code(&self) -> u8 {
        match self {
            MessageError::TemplateRead { .. }
            | MessageError::TemplateSyntax { .. }
            | MessageError::UnknownVariable { .. }
            | MessageError::Render { .. } => exit::CONFIG,
            MessageError::ControlCharacter { .. }
            | MessageError::TooLong { .. }
            | MessageError::BadAddress { .. }
            | MessageError::Otp(OtpError::Build { .. })
            | MessageError::Qr(QrError::TooLong { .. }) => exit::DATAERR,
            MessageError::Mime(_)
            | MessageError::Random(_)
            | MessageError::Otp(_)
            | MessageError::Qr(_) => exit::SOFTWARE,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MessageError::TemplateRead { .. } => Some(
                "check [templates] dir in the config; it needs otp.html, otp.txt, key.html and key.txt"
                    .into(),
            ),
            MessageError::TemplateSyntax { .. } | MessageError::Render { .. } => {
                Some("fix the template; the syntax is Jinja2 (minijinja)".into())
            }
            MessageError::UnknownVariable { available, .. } => {
                Some(format!("the variables available here are {available}"))
            }
            MessageError::ControlCharacter { .. } => {
                Some("header values must be a single line; remove CR, LF and other control characters".into())
            }
            MessageError::TooLong { .. } => Some("shorten it".into()),
            MessageError::BadAddress { .. } => {
                Some("give an address such as alice@example.org or \"Alice <alice@example.org>\"".into())
            }
            MessageError::Otp(OtpError::Build { .. }) => {
                Some("authenticator labels cannot contain ':'; use another address or issuer".into())
            }
            MessageError::Qr(QrError::TooLong { .. }) => Some("use a shorter issuer or address".into()),
            MessageError::Mime(_) | MessageError::Random(_) | MessageError::Otp(_) | MessageError::Qr(_) => None,
        }
    }
}

/// Refuses header values that could break out of their header line.
pub fn check_header_value(what: &'static str, value: &str, max: usize) -> Result<(), MessageError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(MessageError::ControlCharacter { what });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(MessageError::TooLong { what, chars, max });
    }
    Ok(())
}

/// Variables every template gets.
const COMMON_VARS: &[&str] = &[
    "name",
    "recipient",
    "issuer",
    "sender",
    "expires",
    "valid_for",
    "qr_cid",
    "qr_size",
];
const OTP_VARS: &[&str] = &["secret", "digits", "period"];
const KEY_VARS: &[&str] = &["key"];

fn template_names(kind: CodeKind) -> [&'static str; 2] {
    match kind {
        CodeKind::Otp => ["otp.txt", "otp.html"],
        CodeKind::Key => ["key.txt", "key.html"],
    }
}

fn vars_for(kind: CodeKind) -> Vec<&'static str> {
    let extra = match kind {
        CodeKind::Otp => OTP_VARS,
        CodeKind::Key => KEY_VARS,
    };
    COMMON_VARS.iter().chain(extra).copied().collect()
}

/// The four templates, compiled and checked.
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish()
    }
}

impl Templates {
    /// Reads and compiles `otp.{txt,html}` and `key.{txt,html}` from `dir`.
    pub fn load(dir: &Path) -> Result<Templates, MessageError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Auto-escape by file extension: .html escaped, .txt verbatim.
        env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
        for kind in [CodeKind::Otp, CodeKind::Key] {
            let available = vars_for(kind);
            for name in template_names(kind) {
                let path = dir.join(name);
                let source =
                    std::fs::read_to_string(&path).map_err(|e| MessageError::TemplateRead {
                        path: path.clone(),
                        reason: crate::io_reason(&e),
                    })?;
                env.add_template_owned(name, source)
                    .map_err(|e| MessageError::TemplateSyntax {
                        path: path.clone(),
                        detail: describe(&e),
                    })?;
                let tmpl = env
                    .get_template(name)
                    .map_err(|e| MessageError::TemplateSyntax {
                        path: path.clone(),
                        detail: describe(&e),
                    })?;
                let globals: Vec<String> = env.globals().map(|(n, _)| n.to_string()).collect();
                let mut unknown: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !available.contains(&v.as_str()) && !globals.contains(v))
                    .collect();
                unknown.sort();
                if let Some(variable) = unknown.into_iter().next() {
                    return Err(MessageError::UnknownVariable {
                        path,
                        variable,
                        available: available.join(", "),
                    });
                }
            }
        }
        Ok(Templates {
            env,
            dir: dir.to_path_buf(),
        })
    }

    /// Renders the text and HTML bodies for `kind`.
    pub fn render(&self, kind: CodeKind, vars: &TemplateVars<'_>) -> Result<Bodies, MessageError> {
        let ctx = vars.to_value(kind);
        let [txt, html] = template_names(kind);
        let render = |name: &str| -> Result<Secret<String>, MessageError> {
            let path = self.dir.join(name);
            let tmpl = self
                .env
                .get_template(name)
                .map_err(|e| MessageError::Render {
                    path: path.clone(),
                    detail: describe(&e),
                })?;
            tmpl.render(&ctx)
                .map(Secret::new)
                .map_err(|e| MessageError::Render {
                    path,
                    detail: describe(&e),
                })
        };
        Ok(Bodies {
            text: render(txt)?,
            html: render(html)?,
        })
    }
}

/// minijinja's error without the source excerpt (which could show template text at length).
fn describe(e: &minijinja::Error) -> String {
    let mut s = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// Rendered bodies. They contain the secret.
pub struct Bodies {
    pub text: Secret<String>,
    pub html: Secret<String>,
}

/// What the templates can say.
pub struct TemplateVars<'a> {
    pub name: &'a str,
    pub recipient: &'a str,
    pub issuer: &'a str,
    pub sender: &'a str,
    pub expires: &'a str,
    pub valid_for: &'a str,
    pub qr_cid: &'a str,
    pub qr_size: u32,
    /// The secret (base32, grouped) or key (grouped) shown in the bodies.
    pub code_text: &'a str,
    pub digits: u8,
    pub period: u64,
}

impl TemplateVars<'_> {
    fn to_value(&self, kind: CodeKind) -> Value {
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        m.insert("name", Value::from(self.name));
        m.insert("recipient", Value::from(self.recipient));
        m.insert("issuer", Value::from(self.issuer));
        m.insert("sender", Value::from(self.sender));
        m.insert("expires", Value::from(self.expires));
        m.insert("valid_for", Value::from(self.valid_for));
        m.insert("qr_cid", Value::from(self.qr_cid));
        m.insert("qr_size", Value::from(self.qr_size));
        match kind {
            CodeKind::Otp => {
                m.insert("secret", Value::from(self.code_text));
                m.insert("digits", Value::from(self.digits));
                m.insert("period", Value::from(self.period));
            }
            CodeKind::Key => {
                m.insert("key", Value::from(self.code_text));
            }
        }
        Value::from(m)
    }
}

/// A finished mail: envelope addresses, Message-ID and the RFC 5322 bytes.
pub struct Mail {
    pub message_id: String,
    pub from: String,
    pub to: String,
    /// The formatted message. It contains the secret.
    pub bytes: Secret<Vec<u8>>,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("bytes", &self.bytes.expose().len())
            .finish()
    }
}

/// A random token for Message-ID and Content-ID values.
pub fn random_token() -> Result<String, RandomError> {
    let raw = secret::random_bytes::<12>()?;
    Ok(raw.expose().iter().map(|b| format!("{b:02x}")).collect())
}

/// The domain of the sender's address, for Message-ID and Content-ID right-hand sides.
pub fn id_domain(sender: &Sender) -> String {
    sender.from.email.domain().to_string()
}

/// What building mails needs from disk: the templates and, when configured, the DKIM key.
#[derive(Debug)]
pub struct Kit {
    pub templates: Templates,
    pub dkim: Option<Signer>,
    /// What every mail of a run shares, worked out once rather than per mail.
    sender_name: String,
    id_domain: String,
    otp_valid_for: String,
    key_valid_for: String,
}

impl Kit {
    /// Loads and checks the templates and the DKIM key.
    pub fn load(settings: &Settings) -> Result<Kit, Error> {
        let templates = Templates::load(&settings.templates_dir)?;
        let dkim = match &settings.dkim {
            Some(d) => {
                // Not Content-Type: lettre signs against the message's own headers, and a
                // multipart's Content-Type is only written with the body, so a signature listing
                // it never verifies (found by the independent verifier in the test suite).
                let mut headers = vec![
                    "From",
                    "To",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "MIME-Version",
                    "Auto-Submitted",
                ];
                if settings.sender.reply_to.is_some() {
                    headers.push("Reply-To");
                }
                Some(Signer::load(d, &headers)?)
            }
            None => None,
        };
        let sender_name = settings
            .sender
            .from
            .name
            .clone()
            .unwrap_or_else(|| settings.sender.from.email.to_string());
        Ok(Kit {
            templates,
            dkim,
            sender_name,
            id_domain: id_domain(&settings.sender),
            otp_valid_for: human_duration(settings.otp.ttl),
            key_valid_for: human_duration(settings.key.ttl),
        })
    }
}

/// Everything [`assemble`] needs.
pub struct Parts<'a> {
    pub sender: &'a Sender,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub bodies: Bodies,
    pub qr: &'a QrPng,
    pub qr_cid: &'a str,
    pub message_id: String,
    pub dkim: Option<&'a Signer>,
}

/// Builds the MIME message.
pub fn assemble(parts: Parts<'_>) -> Result<Mail, MessageError> {
    let Parts {
        sender,
        to,
        subject,
        bodies,
        qr,
        qr_cid,
        message_id,
        dkim,
    } = parts;
    let png_type =
        ContentType::parse("image/png").map_err(|e| MessageError::Mime(e.to_string()))?;
    let mut builder = Message::builder()
        .message_id(Some(message_id.clone()))
        .from(sender.from.clone())
        .to(to.clone())
        .subject(subject)
        .user_agent(format!("securemail/{}", env!("CARGO_PKG_VERSION")))
        // RFC 3834: a machine wrote this mail, so vacation responders must not answer it (and an
        // answer that does come anyway says so, and is set aside by `reply`).
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    if let Some(r) = &sender.reply_to {
        builder = builder.reply_to(r.clone());
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(bodies.text.expose().clone()))
        .multipart(
            MultiPart::related()
                .singlepart(SinglePart::html(bodies.html.expose().clone()))
                .singlepart(
                    Attachment::new_inline(qr_cid.to_string())
                        .body(qr.png.expose().clone(), png_type),
                ),
        );
    let mut message = builder
        .multipart(body)
        .map_err(|e| MessageError::Mime(e.to_string()))?;
    if let Some(signer) = dkim {
        signer.sign(&mut message);
    }
    Ok(Mail {
        message_id,
        from: sender.from.email.to_string(),
        to: to.email.to_string(),
        bytes: Secret::new(message.formatted()),
    })
}

/// Longest address we accept (RFC 5321's path limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// A checked recipient.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// For the `To:` header, with the display name when one was given.
    pub mailbox: Mailbox,
    /// The address in lower case: the key under which codes are stored.
    pub address: String,
}

impl Recipient {
    /// Parses `--to` (an address, or `Name <address>`) and the optional `--name`.
    pub fn parse(input: &str, name: Option<&str>) -> Result<Recipient, MessageError> {
        check_header_value(
            "recipient address",
            input,
            MAX_ADDRESS_CHARS + MAX_NAME_CHARS,
        )?;
        if let Some(n) = name {
            check_header_value("name", n, MAX_NAME_CHARS)?;
        }
        let mut mailbox: Mailbox =
            input
                .trim()
                .parse()
                .map_err(
                    |e: lettre::address::AddressError| MessageError::BadAddress {
                        input: input.to_string(),
                        reason: e.to_string(),
                    },
                )?;
        let address = mailbox.email.to_string();
        if address.chars().count() > MAX_ADDRESS_CHARS {
            return Err(MessageError::TooLong {
                what: "recipient address",
                chars: address.chars().count(),
                max: MAX_ADDRESS_CHARS,
            });
        }
        if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
            mailbox.name = Some(n.to_string());
        }
        if let Some(n) = &mailbox.name {
            check_header_value("name", n, MAX_NAME_CHARS)?;
        }
        Ok(Recipient {
            address: address.to_lowercase(),
            mailbox,
        })
    }

    /// The display name, or "" when none was given.
    pub fn name(&self) -> &str {
        self.mailbox.name.as_deref().unwrap_or("")
    }
}

/// The code a mail carries.
pub enum Code {
    Otp(OtpKey),
    /// Canonical key.
    Key(Secret<String>),
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Otp(_) => f.write_str("Code::Otp(<redacted>)"),
            Code::Key(_) => f.write_str("Code::Key(<redacted>)"),
        }
    }
}

/// A generated code and the mail that carries it.
#[derive(Debug)]
pub struct Composed {
    pub kind: CodeKind,
    pub code: Code,
    pub mail: Mail,
    /// Unix seconds.
    pub created: i64,
    pub expires: i64,
}

/// The default subject for each kind.
pub fn default_subject(kind: CodeKind, issuer: &str) -> String {
    match kind {
        CodeKind::Otp => format!("Set up two-step verification for {issuer}"),
        CodeKind::Key => format!("Your one-time key for {issuer}"),
    }
}

/// `2026-11-25 10:49 UTC`.
pub fn human_time(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// `24 hours`, `90 minutes`, `2 days`.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86400) && secs >= 2 * 86400 {
        (secs / 86400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Generates a fresh code for `to` and builds the mail that carries it.
pub fn compose(
    settings: &Settings,
    kit: &Kit,
    kind: CodeKind,
    to: &Recipient,
    subject: &str,
    now: i64,
) -> Result<Composed, MessageError> {
    let (ttl, valid_for) = match kind {
        CodeKind::Otp => (settings.otp.ttl, &kit.otp_valid_for),
        CodeKind::Key => (settings.key.ttl, &kit.key_valid_for),
    };
    let expires = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let (code, qr_text, code_text) = match kind {
        CodeKind::Otp => {
            let otp = OtpKey::generate(settings.otp.params, &settings.otp.issuer, &to.address)?;
            let uri = otp.uri()?;
            let shown = otp.secret_base32_grouped();
            (Code::Otp(otp), uri, shown)
        }
        CodeKind::Key => {
            let k = key::generate(settings.key.length)?;
            let shown = key::display(k.expose());
            (Code::Key(k), shown.clone(), shown)
        }
    };
    let qr = qr::render(qr_text.expose())?;
    let domain = &kit.id_domain;
    let qr_cid = format!("qr.{}@{domain}", random_token()?);
    let message_id = format!("<{}@{domain}>", random_token()?);
    let vars = TemplateVars {
        name: to.name(),
        recipient: &to.address,
        issuer: &settings.otp.issuer,
        sender: &kit.sender_name,
        expires: &human_time(expires),
        valid_for,
        qr_cid: &qr_cid,
        qr_size: qr.size_px,
        code_text: code_text.expose(),
        digits: settings.otp.params.digits,
        period: settings.otp.params.period,
    };
    let bodies = kit.templates.render(kind, &vars)?;
    let mail = assemble(Parts {
        sender: &settings.sender,
        to: &to.mailbox,
        subject,
        bodies,
        qr: &qr,
        qr_cid: &qr_cid,
        message_id,
        dkim: kit.dkim.as_ref(),
    })?;
    Ok(Composed {
        kind,
        code,
        mail,
        created: now,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_templates(dir: &Path, otp_html: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("otp.txt"),
            "Hi {{ name }}: {{ secret }} {{ digits }}",
        )
        .unwrap();
        std::fs::write(dir.join("otp.html"), otp_html).unwrap();
        std::fs::write(dir.join("key.txt"), "{{ key }}").unwrap();
        std::fs::write(
            dir.join("key.html"),
            "<p>{{ key }}</p><img src=\"cid:{{ qr_cid }}\">",
        )
        .unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("securemail-msg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn vars<'a>(name: &'a str) -> TemplateVars<'a> {
        TemplateVars {
            name,
            recipient: "a@example.org",
            issuer: "Example",
            sender: "Admin",
            expires: "2026-01-01 00:00 UTC",
            valid_for: "24 hours",
            qr_cid: "qr.1@example.org",
            qr_size: 200,
            code_text: "ABCD EFGH",
            digits: 6,
            period: 30,
        }
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let d = tmp("escape");
        write_templates(&d, "<p>{{ name }}</p>");
        let t = Templates::load(&d).unwrap();
        let b = t.render(CodeKind::Otp, &vars("<b>&")).unwrap();
        assert_eq!(b.html.expose(), "<p>&lt;b&gt;&amp;</p>");
        assert_eq!(b.text.expose(), "Hi <b>&: ABCD EFGH 6");
    }

    #[test]
    fn unknown_variable_names_template_and_variable() {
        let d = tmp("unknown");
        write_templates(&d, "<p>{{ nmae }}</p>");
        let e = Templates::load(&d).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "template {} uses the variable `nmae`, which securemail does not provide",
                d.join("otp.html").display()
            )
        );
        assert!(e.hint().unwrap().contains("name, recipient"));
    }

    #[test]
    fn key_templates_cannot_use_otp_variables() {
        let d = tmp("kind");
        write_templates(&d, "<p>ok</p>");
        std::fs::write(d.join("key.txt"), "{{ secret }}").unwrap();
        let e = Templates::load(&d).unwrap_err();
        assert!(
            matches!(e, MessageError::UnknownVariable { ref variable, .. } if variable == "secret")
        );
    }

    #[test]
    fn recipients_are_checked_and_keyed_in_lower_case() {
        let r = Recipient::parse("Alice <Alice@Example.org>", None).unwrap();
        assert_eq!(r.address, "alice@example.org");
        assert_eq!(r.name(), "Alice");
        let r = Recipient::parse("bob@example.org", Some("Bob B")).unwrap();
        assert_eq!(r.name(), "Bob B");
        assert!(matches!(
            Recipient::parse("bob@example.org\r\nBcc: x@y.z", None),
            Err(MessageError::ControlCharacter { .. })
        ));
        assert!(matches!(
            Recipient::parse("bob@example.org", Some("B\nob")),
            Err(MessageError::ControlCharacter { what: "name" })
        ));
        assert!(matches!(
            Recipient::parse("not-an-address", None),
            Err(MessageError::BadAddress { .. })
        ));
    }

    #[test]
    fn human_formats() {
        assert_eq!(human_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            human_duration(std::time::Duration::from_secs(86400)),
            "24 hours"
        );
        assert_eq!(
            human_duration(std::time::Duration::from_secs(5400)),
            "90 minutes"
        );
        assert_eq!(
            human_duration(std::time::Duration::from_secs(172800)),
            "2 days"
        );
    }

    #[test]
    fn header_values_refuse_line_breaks() {
        assert!(check_header_value("subject", "ok", 10).is_ok());
        assert!(matches!(
            check_header_value("subject", "a\r\nBcc: x@y", 100),
            Err(MessageError::ControlCharacter { what: "subject" })
        ));
        assert!(matches!(
            check_header_value("name", &"x".repeat(11), 10),
            Err(MessageError::TooLong { chars: 11, .. })
        ));
    }
}
