//! `securemail check`: what the configured server offers, without sending anything.
//!
//! Like `msmtp --serverinfo`: connects with the configured security (so every TLS refusal is
//! the same as for `send`), shows the TLS version, the certificate (with its SHA-256
//! fingerprint and alternative names) and the chain the server sent, as `openssl s_client`
//! would, the EHLO extensions, and whether the login is accepted. With `[dkim]`, also the DNS
//! record to publish.

use std::fmt::Write as _;

use serde::Serialize;

use super::Printer;
use crate::config::{Delivery, Settings};
use crate::error::Error;
use crate::mail::MailError;
use crate::mail::dkim::Signer;
use crate::transport::SmtpTarget;
use crate::transport::cert::{self, CertSummary, ReadError};

/// `{"type":"check",…}`: what the server offered.
#[derive(Serialize)]
#[serde(tag = "type", rename = "check")]
struct CheckLine {
    server: String,
    greeting: String,
    tls_version: Option<String>,
    cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertLine>,
    chain: Vec<ChainEntry>,
    extensions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dkim: Option<DkimLine>,
    /// `accepted`, `refused` or `none` (no username configured).
    auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_error: Option<String>,
    /// The user the login was tried for (human output only).
    #[serde(skip)]
    user: Option<String>,
    #[serde(skip)]
    auth_reply: Option<String>,
    #[serde(skip)]
    host: String,
}

/// The leaf certificate, or why it could not be read.
#[derive(Serialize)]
#[serde(untagged)]
enum CertLine {
    Read {
        subject: String,
        issuer: String,
        not_before: String,
        not_after: String,
        sha256: String,
        dns_names: Vec<String>,
        ip_addresses: Vec<String>,
        /// "2026-01-01 00:00:00 UTC to 2027-01-01 00:00:00 UTC", for people.
        #[serde(skip)]
        valid: String,
    },
    Unreadable {
        error: String,
    },
}

/// One certificate of the chain as the server sent it (0 = leaf).
#[derive(Serialize)]
#[serde(untagged)]
enum ChainEntry {
    Read {
        depth: usize,
        subject: String,
        issuer: String,
    },
    Unreadable {
        depth: usize,
        error: String,
    },
}

#[derive(Serialize)]
struct DkimLine {
    name: String,
    txt: String,
}

pub(super) fn execute(settings: &Settings, out: Printer) -> Result<(), Error> {
    let dkim = match &settings.dkim {
        Some(d) => Some(Signer::load(d, &["From"]).map_err(MailError::from)?),
        None => None,
    };
    let smtp = match &settings.delivery {
        Delivery::Smtp(s) => s,
        Delivery::Outbox => {
            return Err(Error::Config(crate::config::ConfigError {
                file: settings.config_path.clone(),
                at: None,
                message:
                    "there is no [smtp] table: mail goes to the outbox, there is no server to check"
                        .into(),
                hint: Some(
                    "add an [smtp] table (securemail init --preset gmail writes one)".into(),
                ),
            }));
        }
    };
    let target = SmtpTarget::prepare(smtp)?;
    let mut session = target.open_unauthenticated(out.smtp_trace(""))?;
    let tls = session.tls().cloned();
    let greeting = session
        .greeting()
        .map(|g| g.to_string())
        .unwrap_or_default();
    let extensions = session.extensions().lines.clone();
    let login = target.login(&mut session);
    session.quit();

    let read: Vec<Result<CertSummary, ReadError>> = tls
        .as_ref()
        .map(|t| t.chain.iter().map(|der| cert::summarize(der)).collect())
        .unwrap_or_default();
    let mut line = CheckLine {
        server: format!("{}:{} ({})", smtp.host, smtp.port, smtp.security),
        greeting,
        tls_version: tls.as_ref().map(|t| t.version.clone()),
        cipher: tls.as_ref().map(|t| t.cipher.clone()),
        certificate: read.first().map(cert_line),
        chain: read.iter().enumerate().map(chain_entry).collect(),
        extensions,
        dkim: dkim.as_ref().map(|s| {
            let (name, txt) = s.dns_record();
            DkimLine { name, txt }
        }),
        auth: "none",
        auth_error: None,
        user: smtp.login.as_ref().map(|(u, _)| u.clone()),
        auth_reply: None,
        host: smtp.host.clone(),
    };
    let result = match (&smtp.login, login) {
        (None, _) => Ok(()),
        (Some(_), Ok(reply)) => {
            line.auth = "accepted";
            line.auth_reply = Some(reply.to_string());
            Ok(())
        }
        (Some(_), Err(e)) => {
            line.auth = "refused";
            line.auth_error = Some(e.to_string());
            Err(e.into())
        }
    };
    out.emit(&line, || Some(line.human()));
    result
}

fn cert_line(c: &Result<CertSummary, ReadError>) -> CertLine {
    match c {
        Ok(c) => CertLine::Read {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            not_before: c.not_before.rfc3339(),
            not_after: c.not_after.rfc3339(),
            sha256: c.sha256.clone(),
            dns_names: c.dns_names.clone(),
            ip_addresses: c.ip_addresses.iter().map(ToString::to_string).collect(),
            valid: format!("{} to {}", c.not_before, c.not_after),
        },
        Err(e) => CertLine::Unreadable {
            error: e.to_string(),
        },
    }
}

fn chain_entry((depth, c): (usize, &Result<CertSummary, ReadError>)) -> ChainEntry {
    match c {
        Ok(c) => ChainEntry::Read {
            depth,
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
        },
        Err(e) => ChainEntry::Unreadable {
            depth,
            error: e.to_string(),
        },
    }
}

impl CheckLine {
    /// The report for people, like `msmtp --serverinfo` and `openssl s_client -showcerts`.
    fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "server:       {}", self.server);
        let _ = write!(o, "greeting:     {}", self.greeting);
        if let (Some(v), Some(c)) = (&self.tls_version, &self.cipher) {
            let _ = write!(o, "\ntls:          {v}, {c}");
        }
        match &self.certificate {
            Some(CertLine::Read {
                subject,
                issuer,
                sha256,
                dns_names,
                ip_addresses,
                valid,
                ..
            }) => {
                let host = &self.host;
                let _ = write!(o, "\ncertificate:  {subject} (verified for {host})");
                let _ = write!(o, "\n  issued by:  {issuer}");
                let _ = write!(o, "\n  valid:      {valid}");
                let _ = write!(o, "\n  sha256:     {sha256}");
                let names: Vec<String> = (dns_names.iter().map(|n| format!("DNS:{n}")))
                    .chain(ip_addresses.iter().map(|ip| format!("IP Address:{ip}")))
                    .collect();
                let names = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                let _ = write!(o, "\n  alt names:  {names}");
            }
            Some(CertLine::Unreadable { error }) => {
                let _ = write!(o, "\ncertificate:  verified for {}, but {error}", self.host);
            }
            None => {}
        }
        for entry in &self.chain {
            let depth = match entry {
                ChainEntry::Read { depth, .. } | ChainEntry::Unreadable { depth, .. } => *depth,
            };
            let label = if depth == 0 { "chain:" } else { "" };
            let indent = " ".repeat(depth.to_string().len());
            match entry {
                ChainEntry::Read {
                    subject, issuer, ..
                } => {
                    let _ = write!(o, "\n{label:<14}{depth} s:{subject}");
                    let _ = write!(o, "\n{:<14}{indent} i:{issuer}", "");
                }
                ChainEntry::Unreadable { error, .. } => {
                    let _ = write!(o, "\n{label:<14}{depth} {error}");
                }
            }
        }
        let _ = write!(o, "\nextensions:   {}", self.extensions.join(", "));
        if let Some(d) = &self.dkim {
            let _ = write!(o, "\ndkim:         publish TXT {} \"{}\"", d.name, d.txt);
        }
        let user = self.user.as_deref().unwrap_or_default();
        let _ = match self.auth {
            "accepted" => write!(
                o,
                "\nauth:         accepted for {user} ({})",
                self.auth_reply.as_deref().unwrap_or_default()
            ),
            "refused" => write!(o, "\nauth:         refused for {user}"),
            _ => write!(o, "\nauth:         none configured (no [smtp] username)"),
        };
        o
    }
}
