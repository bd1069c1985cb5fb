//! Assembling a mail: a fresh code, its QR, the rendered templates, into MIME with lettre.
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
//! [`Kit`] holds what every mail of a run shares (templates, DKIM key, texts worked out once);
//! [`compose`] makes one mail for one recipient.

use std::fmt;

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::dkim::Signer;
use super::error::MailError;
use super::qr::{self, QrPng};
use super::recipient::Recipient;
use super::template::{Bodies, TemplateVars, Templates};
use crate::CodeKind;
use crate::config::{SenderSettings, Settings};
use crate::key;
use crate::otp::OtpKey;
use crate::secret::{self, RandomError, Secret};

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
pub fn id_domain(sender: &SenderSettings) -> String {
    sender.from.email.domain().to_string()
}

/// What building mails needs from disk: the templates and, when configured, the DKIM key.
#[derive(Debug)]
pub struct Kit {
    pub templates: Templates,
    pub dkim: Option<Signer>,
    /// What every mail of a run shares, worked out once rather than per mail.
    sender_name: String,
    sender_address: String,
    id_domain: String,
    otp_valid_for: String,
    key_valid_for: String,
}

impl Kit {
    /// Loads and checks the templates and the DKIM key.
    pub fn load(settings: &Settings) -> Result<Kit, MailError> {
        let templates = Templates::load(settings.templates_dir.as_deref())?;
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
            sender_address: settings.sender.from.email.to_string(),
            id_domain: id_domain(&settings.sender),
            otp_valid_for: human_duration(settings.otp.ttl),
            key_valid_for: human_duration(settings.key.ttl),
        })
    }
}

/// Everything [`assemble`] needs.
pub struct Parts<'a> {
    pub sender: &'a SenderSettings,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub bodies: Bodies,
    pub qr: &'a QrPng,
    pub qr_cid: &'a str,
    pub message_id: String,
    pub dkim: Option<&'a Signer>,
}

/// Builds the MIME message.
pub fn assemble(parts: Parts<'_>) -> Result<Mail, MailError> {
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
    let png_type = ContentType::parse("image/png").map_err(|e| MailError::Mime(e.to_string()))?;
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
        .map_err(|e| MailError::Mime(e.to_string()))?;
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
) -> Result<Composed, MailError> {
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
        sender_address: &kit.sender_address,
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
}
