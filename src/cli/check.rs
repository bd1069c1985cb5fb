//! `securemail check`: what the configured server offers, without sending anything.
//!
//! Like `msmtp --serverinfo`: connects with the configured security (so every TLS refusal is
//! the same as for `send`), shows the TLS version, the certificate (with its SHA-256
//! fingerprint and alternative names) and the chain the server sent, as `openssl s_client`
//! would, the EHLO extensions, and whether the login is accepted. With `[dkim]`, also the DNS
//! record to publish. Then the store, read without creating or changing anything: for
//! PostgreSQL whether it answers and over TLS, for both the schema version and whether the key
//! file is the one the store records.

use std::fmt::Write as _;

use serde::Serialize;

use super::Printer;
use crate::config::{Delivery, Settings};
use crate::error::Error;
use crate::mail::MailError;
use crate::mail::dkim::Signer;
use crate::store::{Store, StoreError};
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
    /// The store: what it records and whether the key file is its own.
    store: StoreCheck,
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

/// `"store": {…}`: the store as `check` found it, without creating or changing anything.
#[derive(Serialize)]
struct StoreCheck {
    /// `sqlite` or `postgres`.
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// PostgreSQL: whether the server answered (left out when that is not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    reachable: Option<bool>,
    /// PostgreSQL: whether the connection uses verified TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<bool>,
    /// The schema version; `null` when there is no store (or no tables) yet.
    schema: Option<i64>,
    /// The key id the store records (`null`: none yet).
    key_id: Option<String>,
    key_file: String,
    /// The id of the key in `key_file` (`null`: no such file).
    key_file_id: Option<String>,
    /// Whether the key file is the one the store records; `null` when nothing was issued yet.
    key_matches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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
    let (store, store_result) = check_store(settings);

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
        store,
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
    // The login's failure first: it is what the command was first asked about.
    result.and(store_result.map_err(Error::from))
}

/// Looks at the configured store (opening nothing for writing, creating nothing) and says
/// what it found; the error is the one any command would meet with this store.
fn check_store(settings: &Settings) -> (StoreCheck, Result<(), StoreError>) {
    let name = Store::describe(settings);
    let postgres = settings.postgres.is_some();
    let key_file = match &settings.postgres {
        Some(pg) => pg.key_file.clone(),
        None => crate::store::key_file_path(&settings.store_path),
    };
    let mut check = StoreCheck {
        backend: if postgres { "postgres" } else { "sqlite" },
        path: (!postgres).then(|| name.clone()),
        url: postgres.then(|| name.clone()),
        reachable: None,
        tls: None,
        schema: None,
        key_id: None,
        key_file: key_file.display().to_string(),
        key_file_id: None,
        key_matches: None,
        error: None,
    };
    let inspection = match Store::inspect(settings) {
        Ok(Some(i)) => i,
        Ok(None) => return (check, Ok(())),
        Err(e) => {
            // Whether the server answered: not known when the password never came.
            check.reachable = match e {
                _ if !postgres => None,
                StoreError::Unreachable { .. } => Some(false),
                StoreError::Password { .. } => None,
                _ => Some(true),
            };
            check.error = Some(e.to_string());
            return (check, Err(e));
        }
    };
    check.reachable = postgres.then_some(true);
    check.tls = inspection.tls;
    check.schema = (inspection.schema > 0).then_some(inspection.schema);
    check.key_id = inspection.recorded_key.clone();
    check.key_file_id = inspection.key_file_id.clone();
    let custody = inspection.key_id(&name);
    check.key_matches = match &custody {
        Ok(_) if inspection.recorded_key.is_some() => Some(true),
        Ok(_) => None,
        Err(_) => Some(false),
    };
    match custody {
        Ok(_) => (check, Ok(())),
        Err(e) => {
            check.error = Some(e.to_string());
            (check, Err(e))
        }
    }
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
        let store = self.store.human();
        let _ = match self.auth {
            "accepted" => write!(
                o,
                "\nauth:         accepted for {user} ({})",
                self.auth_reply.as_deref().unwrap_or_default()
            ),
            "refused" => write!(o, "\nauth:         refused for {user}"),
            _ => write!(o, "\nauth:         none configured (no [smtp] username)"),
        };
        let _ = write!(o, "\n{store}");
        o
    }
}

impl StoreCheck {
    /// `store:` and its indented lines, for people.
    fn human(&self) -> String {
        let mut o = String::new();
        let (name, backend) = match (&self.path, &self.url) {
            (Some(path), _) => (path.as_str(), "SQLite"),
            (None, Some(url)) => (url.as_str(), "PostgreSQL"),
            (None, None) => ("", ""),
        };
        let _ = write!(o, "store:        {name} ({backend})");
        if let Some(reachable) = self.reachable {
            let _ = write!(
                o,
                "\n  reachable:  {}",
                if reachable { "yes" } else { "no" }
            );
        }
        if self.error.is_some() && self.schema.is_none() && self.key_matches.is_none() {
            // Nothing more was learnt: the error (on stderr) says why.
            return o;
        }
        if self.path.is_some() && self.schema.is_none() && self.key_id.is_none() {
            let _ = write!(
                o,
                "\n  state:      not created yet (the first send creates it)"
            );
            return o;
        }
        match self.tls {
            Some(true) => {
                let _ = write!(o, "\n  tls:        yes (certificate verified)");
            }
            Some(false) => {
                let _ = write!(o, "\n  tls:        no (a server on this machine)");
            }
            None => {}
        }
        let _ = match self.schema {
            Some(v) => write!(o, "\n  schema:     {v}"),
            None => write!(
                o,
                "\n  schema:     none yet (the first send creates the tables)"
            ),
        };
        let key_file = &self.key_file;
        let _ = match (&self.key_id, &self.key_file_id, self.key_matches) {
            (Some(id), _, Some(true)) => {
                write!(o, "\n  key id:     {id}, the key file's ({key_file})")
            }
            (Some(id), Some(found), _) => write!(
                o,
                "\n  key id:     {id}, but the key file {key_file} has {found}"
            ),
            (Some(id), None, _) => {
                write!(
                    o,
                    "\n  key id:     {id}, but the key file {key_file} is missing"
                )
            }
            (None, Some(found), _) => write!(
                o,
                "\n  key id:     none recorded yet; the key file {key_file} has {found}"
            ),
            (None, None, _) => write!(
                o,
                "\n  key id:     none yet (the first send creates {key_file})"
            ),
        };
        o
    }
}
