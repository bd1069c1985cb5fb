//! `securemail check`: what the configured server offers, without sending anything.
//!
//! Like `msmtp --serverinfo`: connects with the configured security (so every TLS refusal is
//! the same as for `send`), shows the TLS version, the certificate (with its SHA-256
//! fingerprint and alternative names) and the chain the server sent, as `openssl s_client`
//! would, the EHLO extensions, and whether the login is accepted. With `[dkim]`, also the DNS
//! record to publish.

use serde_json::json;

use super::Printer;
use crate::config::{Delivery, Settings};
use crate::error::Error;
use crate::mail::MailError;
use crate::mail::dkim::Signer;
use crate::transport::SmtpTarget;
use crate::transport::cert;

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
    let server = format!("{}:{} ({})", smtp.host, smtp.port, smtp.security);
    let tls = session.tls().cloned();
    let greeting = session
        .greeting()
        .map(|g| g.to_string())
        .unwrap_or_default();
    let extensions = session.extensions().lines.clone();
    let login = target.login(&mut session);
    session.quit();

    let mut v = json!({
        "server": server,
        "greeting": greeting,
        "tls_version": tls.as_ref().map(|t| t.version.clone()),
        "cipher": tls.as_ref().map(|t| t.cipher.clone()),
        "extensions": extensions,
    });
    out.human(&format!("server:       {server}"));
    out.human(&format!("greeting:     {greeting}"));
    if let Some(t) = &tls {
        out.human(&format!("tls:          {}, {}", t.version, t.cipher));
        certificates(&t.chain, &smtp.host, out, &mut v);
    }
    out.human(&format!("extensions:   {}", extensions.join(", ")));
    if let Some(signer) = &dkim {
        let (name, record) = signer.dns_record();
        out.human(&format!("dkim:         publish TXT {name} \"{record}\""));
        v["dkim"] = json!({ "name": name, "txt": record });
    }
    let result = match (&smtp.login, login) {
        (None, _) => {
            out.human("auth:         none configured (no [smtp] username)");
            v["auth"] = json!("none");
            Ok(())
        }
        (Some((user, _)), Ok(reply)) => {
            out.human(&format!("auth:         accepted for {user} ({reply})"));
            v["auth"] = json!("accepted");
            Ok(())
        }
        (Some((user, _)), Err(e)) => {
            out.human(&format!("auth:         refused for {user}"));
            v["auth"] = json!("refused");
            v["auth_error"] = json!(e.to_string());
            Err(e.into())
        }
    };
    out.json(&v);
    result
}

/// The leaf certificate (which rustls verified for `host`) and the chain as the server sent it,
/// leaf first, like `openssl s_client -showcerts`. A certificate that cannot be read says so.
fn certificates(chain: &[Vec<u8>], host: &str, out: Printer, v: &mut serde_json::Value) {
    let read: Vec<_> = chain.iter().map(|der| cert::summarize(der)).collect();
    match read.first() {
        Some(Ok(c)) => {
            out.human(&format!(
                "certificate:  {} (verified for {host})",
                c.subject
            ));
            out.human(&format!("  issued by:  {}", c.issuer));
            out.human(&format!(
                "  valid:      {} to {}",
                c.not_before, c.not_after
            ));
            out.human(&format!("  sha256:     {}", c.sha256));
            let names: Vec<String> = (c.dns_names.iter().map(|n| format!("DNS:{n}")))
                .chain(c.ip_addresses.iter().map(|ip| format!("IP Address:{ip}")))
                .collect();
            let names = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            out.human(&format!("  alt names:  {names}"));
            v["certificate"] = json!({
                "subject": c.subject, "issuer": c.issuer,
                "not_before": c.not_before.rfc3339(), "not_after": c.not_after.rfc3339(),
                "sha256": c.sha256,
                "dns_names": c.dns_names,
                "ip_addresses": c.ip_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
        }
        Some(Err(e)) => {
            out.human(&format!("certificate:  verified for {host}, but {e}"));
            v["certificate"] = json!({ "error": e.to_string() });
        }
        None => {}
    }
    let mut entries = Vec::new();
    for (depth, c) in read.iter().enumerate() {
        let label = if depth == 0 { "chain:" } else { "" };
        let indent = " ".repeat(depth.to_string().len());
        match c {
            Ok(c) => {
                out.human(&format!("{label:<14}{depth} s:{}", c.subject));
                out.human(&format!("{:<14}{indent} i:{}", "", c.issuer));
                entries.push(json!({ "depth": depth, "subject": c.subject, "issuer": c.issuer }));
            }
            Err(e) => {
                out.human(&format!("{label:<14}{depth} {e}"));
                entries.push(json!({ "depth": depth, "error": e.to_string() }));
            }
        }
    }
    v["chain"] = json!(entries);
}
