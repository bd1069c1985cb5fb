//! `securemail init`: write a commented configuration (and the default templates if missing).
//!
//! The text comes from [`template`], which also produced the shipped `config/account.toml`
//! (a unit test keeps the two identical), so the documentation of every key lives in one place.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{InitArgs, Output};
use crate::config::{self, Security};
use crate::error::Error;
use crate::message::Recipient;

/// Providers with known submission settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// smtp.gmail.com:465, TLS from the first byte (needs an app password).
    Gmail,
    /// smtp.gmail.com:587, STARTTLS.
    GmailStarttls,
    /// smtp.office365.com:587, STARTTLS.
    Outlook,
    /// No SMTP server: mail goes to the local outbox.
    None,
}

impl Preset {
    fn server(self) -> Option<(&'static str, u16)> {
        match self {
            Preset::Gmail => Some(("smtp.gmail.com", 465)),
            Preset::GmailStarttls => Some(("smtp.gmail.com", 587)),
            Preset::Outlook => Some(("smtp.office365.com", 587)),
            Preset::None => None,
        }
    }
}

/// What goes into a new configuration.
#[derive(Debug, Clone)]
pub struct Answers {
    pub from: String,
    pub issuer: String,
    pub smtp: Option<SmtpAnswers>,
    /// Prefix for outbox/store/templates paths, relative to the config file's directory.
    pub base: String,
}

#[derive(Debug, Clone)]
pub struct SmtpAnswers {
    pub host: String,
    pub port: u16,
    /// Written only when the port does not imply it.
    pub security: Option<Security>,
    pub username: String,
    pub password_env: String,
    pub ca_file: Option<String>,
}

/// The commented configuration text.
pub fn template(a: &Answers) -> String {
    let mut t = String::new();
    t.push_str(
        "# securemail account configuration.\n\
         # Relative paths below are resolved against this file's directory.\n\
         # Every key is listed; commented keys show their default.\n\n\
         [sender]\n\
         # Who the mails are from (RFC 5322 mailbox). Must be an address the SMTP account may send as.\n",
    );
    t.push_str(&format!("from = {}\n", toml_str(&a.from)));
    t.push_str(
        "# Where replies go, if not to `from` (recipients answer the mail with their code).\n\
         # reply_to = \"Security Desk <security@example.org>\"\n\n",
    );
    // The [smtp] keys; without a server, the same text commented out as an example.
    let example = SmtpAnswers {
        host: "smtp.gmail.com".into(),
        port: 465,
        security: None,
        username: "admin@example.org".into(),
        password_env: "SECUREMAIL_PASSWORD".into(),
        ca_file: None,
    };
    let s = a.smtp.as_ref().unwrap_or(&example);
    let security = match s.security {
        Some(sec) => format!("security = \"{sec}\"\n"),
        None => format!(
            "# security = \"{}\"\n",
            if s.port == 587 { "starttls" } else { "tls" }
        ),
    };
    let ca = match &s.ca_file {
        Some(f) => format!("ca_file = {}\n", toml_str(f)),
        None => "# ca_file = \"ca.pem\"\n".to_string(),
    };
    let smtp = format!(
        "[smtp]\n\
         # The submission server's name, as on its TLS certificate.\n\
         host = {}\n\
         # 465: TLS from the first byte; 587: STARTTLS. security is inferred for these two ports.\n\
         port = {}\n\
         # \"tls\" (implicit TLS) or \"starttls\" (required STARTTLS); required for ports other than 465/587.\n\
         {security}\
         # Login name, usually your full address. Remove for a server that needs no login.\n\
         username = {}\n\
         # Environment variable holding the password (for Gmail: an app password). Or, instead:\n\
         password_env = {}\n\
         # Command whose first output line is the password (e.g. a password manager).\n\
         # password_command = \"pass show mail/gmail\"\n\
         # (With neither set, securemail asks on the terminal, without echo.)\n\
         # Extra CA certificate (PEM) to trust besides the system store, for a private CA.\n\
         {ca}\
         # Seconds to wait for each step (connect, handshake, every reply).\n\
         timeout_secs = 30\n\
         # Name given in EHLO.\n\
         # hello_name = \"localhost\"\n\
         # Parallel connections when sending to a list.\n\
         # connections = 4\n\
         # Most mails a minute across all connections (providers cap sending).\n\
         # max_per_minute = 60\n\
         # Retries after a 4xx, a timeout or a dropped connection (backoff 0.5 s, 1 s, 2 s, ...).\n\
         # retries = 3\n",
        toml_str(&s.host),
        s.port,
        toml_str(&s.username),
        toml_str(&s.password_env),
    );
    if a.smtp.is_some() {
        t.push_str(&smtp);
    } else {
        t.push_str(
            "# Without an [smtp] table, mail is written as .eml files into [outbox] dir instead of being sent.\n\
             # Uncomment and fill in to send for real (Gmail shown; see README for others):\n",
        );
        for line in smtp.lines() {
            t.push_str(&format!("# {line}\n"));
        }
    }
    let b = &a.base;
    t.push_str(&format!(
        "\n[outbox]\n\
         # Directory for .eml files (no [smtp], or --dry-run). Created 0700; files 0600.\n\
         dir = \"{b}outbox\"\n\n\
         [store]\n\
         # SQLite record of issued codes. Its key file (securemail.key) is created beside it, 0600.\n\
         path = \"{b}securemail.db\"\n\
         # How long to wait when another process holds the store's lock.\n\
         # lock_timeout = \"5s\"\n\n\
         [otp]\n\
         # Name shown above the code in the authenticator app (no ':').\n\
         issuer = {}\n\
         # Code length. Keep 6: Google Authenticator and others ignore other values.\n\
         digits = 6\n\
         # Seconds per code. Keep 30 for the same reason.\n\
         period = 30\n\
         # HMAC algorithm. Keep SHA1 for the same reason.\n\
         algorithm = \"SHA1\"\n\
         # Time steps accepted either side of now, for clock drift (RFC 6238 recommends 1).\n\
         skew = 1\n\
         # How long an enrolment may wait for its first code before it expires.\n\
         ttl = \"24h\"\n\n\
         [key]\n\
         # Characters in a one-time key (Crockford base32, 5 bits each; at least 10 = 50 bits).\n\
         length = 12\n\
         # How long a key stays valid.\n\
         ttl = \"24h\"\n\n\
         [verify]\n\
         # Consecutive wrong codes after which a code locks.\n\
         max_attempts = 5\n\n\
         [templates]\n\
         # Directory with otp.html, otp.txt, key.html and key.txt (minijinja / Jinja2 syntax).\n\
         dir = \"{b}templates\"\n\n\
         # DKIM-sign every mail (publish the TXT record that `securemail check` prints).\n\
         # [dkim]\n\
         # domain = \"example.org\"\n\
         # selector = \"mail2026\"\n\
         # # PEM RSA (openssl genrsa 2048) or Ed25519 (openssl genpkey -algorithm ed25519) key.\n\
         # private_key_file = \"dkim.pem\"\n\n\
         # One line per mail sent (time, server, TLS, user, from, to, size, reply, exit code), as msmtp's logfile.\n\
         # [log]\n\
         # file = \"{b}securemail.log\"\n\n\
         # Believe a reply mail's From only when your receiving server vouches for it: the topmost\n\
         # Authentication-Results header by authserv_id must show DMARC pass, or DKIM pass for the\n\
         # From domain. Gmail's authserv_id is \"mx.google.com\"; OpenDKIM/OpenDMARC use their\n\
         # AuthservID setting (by default the host name).\n\
         # [reply]\n\
         # require_authenticated = true\n\
         # authserv_id = \"mx.google.com\"\n",
        toml_str(&a.issuer)
    ));
    t
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The default templates, written by `init` where there are none.
const TEMPLATES: [(&str, &str); 4] = [
    ("otp.html", include_str!("../../templates/otp.html")),
    ("otp.txt", include_str!("../../templates/otp.txt")),
    ("key.html", include_str!("../../templates/key.html")),
    ("key.txt", include_str!("../../templates/key.txt")),
];

fn ask(question: &str, default: &str) -> Result<String, Error> {
    if default.is_empty() {
        eprint!("{question}: ");
    } else {
        eprint!("{question} [{default}]: ");
    }
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Prompt(e.to_string()))?;
    let line = line.trim();
    Ok(if line.is_empty() {
        default.to_string()
    } else {
        line.to_string()
    })
}

pub(super) fn run(path: &Path, out: Output, args: InitArgs) -> Result<(), Error> {
    if path.exists() && !args.force {
        return Err(Error::Usage {
            message: format!("{} already exists", path.display()),
            hint: Some("pass --force to replace it".into()),
        });
    }
    let tty = std::io::stdin().is_terminal();
    let preset = match args.preset {
        Some(p) => p,
        None if args.host.is_some() => Preset::None,
        None if tty => {
            let p = ask(
                "Provider: gmail, gmail-starttls, outlook, or none (outbox only)",
                "none",
            )?;
            <Preset as clap::ValueEnum>::from_str(&p, true).map_err(|_| Error::Usage {
                message: format!("unknown provider {p:?}"),
                hint: Some("answer gmail, gmail-starttls, outlook or none".into()),
            })?
        }
        None => Preset::None,
    };
    let (mut host, mut port) = match (args.host.clone(), preset.server()) {
        (Some(h), _) => (Some(h), args.port.unwrap_or(465)),
        (None, Some((h, p))) => (Some(h.to_string()), args.port.unwrap_or(p)),
        (None, None) => (None, args.port.unwrap_or(465)),
    };
    if tty && host.is_some() && args.host.is_none() {
        host = Some(ask("SMTP host", host.as_deref().unwrap_or_default())?);
        port = ask("SMTP port", &port.to_string())?
            .parse()
            .map_err(|_| Error::Usage {
                message: "the port must be a number".into(),
                hint: None,
            })?;
    }
    let from = match args.from.clone() {
        Some(f) => f,
        None if tty => ask("Send as (e.g. Example Admin <admin@example.org>)", "")?,
        None => "Example Admin <admin@example.org>".to_string(),
    };
    let sender = Recipient::parse(&from, None).map_err(|e| Error::Usage {
        message: format!("--from: {e}"),
        hint: Some("give a mailbox such as \"Example Admin <admin@example.org>\"".into()),
    })?;
    let security = match args
        .security
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("tls") => Some(Security::Tls),
        Some("starttls") => Some(Security::StartTls),
        Some(other) => {
            return Err(Error::Usage {
                message: format!("--security {other:?} is not tls or starttls"),
                hint: None,
            });
        }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The repository layout (config/ beside templates/) keeps its paths; anywhere else the
    // config directory holds everything.
    let base =
        if dir.file_name().is_some_and(|n| n == "config") && dir.join("../templates").is_dir() {
            "../".to_string()
        } else {
            String::new()
        };
    let answers = Answers {
        from: from.trim().to_string(),
        issuer: args.issuer.clone().unwrap_or_else(|| "securemail".into()),
        smtp: host.map(|host| SmtpAnswers {
            security: security.or(match port {
                465 | 587 => None,
                _ => Some(Security::Tls),
            }),
            host,
            port,
            username: args
                .username
                .clone()
                .unwrap_or_else(|| sender.address.clone()),
            password_env: args.password_env.clone(),
            ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        }),
        base: base.clone(),
    };
    let text = template(&answers);
    // What init writes must load: check it before touching the disk.
    config::parse(path, &text)?;

    let io = |p: &Path, e: std::io::Error| Error::Input {
        message: format!("cannot write {}: {}", p.display(), crate::io_reason(&e)),
        hint: None,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
    out.human(&format!("wrote {}", path.display()));

    let templates = dir.join(format!("{base}templates"));
    if !templates.is_dir() {
        std::fs::create_dir_all(&templates).map_err(|e| io(&templates, e))?;
        for (name, body) in TEMPLATES {
            std::fs::write(templates.join(name), body).map_err(|e| io(&templates.join(name), e))?;
        }
        out.human(&format!(
            "wrote the default templates to {}",
            templates.display()
        ));
    }
    if let Some(s) = &answers.smtp {
        out.human(&format!(
            "next: export {}=... (the SMTP password), then securemail --config {} check",
            s.password_env,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_answers() -> Answers {
        Answers {
            from: "Example Admin <admin@example.org>".into(),
            issuer: "Example".into(),
            smtp: None,
            base: "../".into(),
        }
    }

    #[test]
    #[ignore = "writes config/account.toml: cargo test -- --ignored regenerate_shipped_config"]
    fn regenerate_shipped_config() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/account.toml"),
            template(&shipped_answers()),
        )
        .unwrap();
    }

    #[test]
    fn the_shipped_config_is_the_template() {
        let shipped = include_str!("../../config/account.toml");
        assert_eq!(template(&shipped_answers()), shipped);
    }

    #[test]
    fn templates_with_a_server_load() {
        for (port, security) in [(465, None), (587, None), (2525, Some(Security::StartTls))] {
            let a = Answers {
                smtp: Some(SmtpAnswers {
                    host: "smtp.example.org".into(),
                    port,
                    security,
                    username: "me@example.org".into(),
                    password_env: "PW".into(),
                    ca_file: Some("my \"ca\".pem".into()),
                }),
                ..shipped_answers()
            };
            let s = config::parse(Path::new("x/account.toml"), &template(&a)).unwrap();
            let config::Delivery::Smtp(smtp) = s.delivery else {
                panic!("no smtp")
            };
            assert_eq!(smtp.port, port);
            assert_eq!(smtp.ca_file, Some(PathBuf::from("x/my \"ca\".pem")));
        }
    }
}
