//! `securemail init`: write a commented configuration (and the default templates if missing).
//!
//! The text comes from [`TEMPLATE`], a TOML document in which every key is live and documented
//! by the comment above it. [`template`] parses it with `toml_edit`, which keeps comments and
//! layout, sets the answers as values (so toml_edit does all quoting and escaping: quotes,
//! backslashes, `#`, line breaks, Windows paths), then comments out what the answers leave unset
//! (`reply_to`, `ca_file`, `security` when the port implies it, the whole `[smtp]` table without
//! a server, `[dkim]`, `[log]`, ...). Commenting out removes the entry and puts its
//! toml_edit-rendered text, each line prefixed with `# `, into the decor of whatever follows it,
//! so the commented example is as correctly escaped as the live values. Going this way round
//! (live to commented) means no comment text is ever parsed back into TOML.
//!
//! The shipped `config/account.toml` is what this writes for the default answers (a unit test
//! keeps the two identical), so the documentation of every key lives in one place.
//!
//! Files are written through a temporary file beside them and renamed into place
//! ([`write_whole`]): the config 0600, templates 0644, never over an existing file unless
//! `--force` asks for it.

use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml_edit::{Decor, DocumentMut, Item, Key, value};

use super::Printer;
use crate::config::{self, Security};
use crate::error::Error;
use crate::mail::Recipient;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Start from a provider's settings (asked for on a terminal).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// SMTP server host name.
    #[arg(long)]
    pub host: Option<String>,
    /// SMTP server port (465: TLS, 587: STARTTLS).
    #[arg(long)]
    pub port: Option<u16>,
    /// "tls" or "starttls" (needed for ports other than 465 and 587).
    #[arg(long)]
    pub security: Option<String>,
    /// The sender mailbox, e.g. "Example Admin <admin@example.org>".
    #[arg(long)]
    pub from: Option<String>,
    /// SMTP login (default: the sender address when a server is set).
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable that will hold the SMTP password.
    #[arg(long, default_value = "SECUREMAIL_PASSWORD")]
    pub password_env: String,
    /// Extra CA certificate (PEM) to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Issuer name shown in authenticator apps.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Replace an existing configuration file.
    #[arg(long)]
    pub force: bool,
}

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

/// Every key of the configuration, live, with its documentation in comments. [`template`] fills
/// in the answers and comments out what they leave unset (see the module docs).
const TEMPLATE: &str = r##"# securemail account configuration.
# Relative paths below are resolved against this file's directory.
# Every key is listed; commented keys show their default.

[sender]
# Who the mails are from (RFC 5322 mailbox). Must be an address the SMTP account may send as.
from = "Example Admin <admin@example.org>"
# Where replies go, if not to `from` (recipients answer the mail with their code).
reply_to = "Security Desk <security@example.org>"

[smtp]
# The submission server's name, as on its TLS certificate.
host = "smtp.gmail.com"
# 465: TLS from the first byte; 587: STARTTLS. security is inferred for these two ports.
port = 465
# "tls" (implicit TLS) or "starttls" (required STARTTLS); required for ports other than 465/587.
security = "tls"
# Login name, usually your full address. Remove for a server that needs no login.
username = "admin@example.org"
# Environment variable holding the password (for Gmail: an app password). Or, instead:
password_env = "SECUREMAIL_PASSWORD"
# Command whose first output line is the password (e.g. a password manager).
password_command = "pass show mail/gmail"
# (With neither set, securemail asks on the terminal, without echo.)
# Extra CA certificate (PEM) to trust besides the system store, for a private CA.
ca_file = "ca.pem"
# Seconds to wait for each step (connect, handshake, every reply), and for password_command
# to print the password (it is killed after that).
timeout_secs = 30
# Name given in EHLO.
hello_name = "localhost"
# Parallel connections when sending to a list.
connections = 4
# Most mails a minute across all connections (providers cap sending).
max_per_minute = 60
# Retries after a 4xx, a timeout or a dropped connection (backoff 0.5 s, 1 s, 2 s, ...).
retries = 3

[outbox]
# Directory for .eml files (no [smtp], or --dry-run). Created 0700; files 0600.
dir = "outbox"

[store]
# SQLite record of issued codes. Its key file (securemail.key) is created beside it, 0600.
path = "securemail.db"
# How long to wait when another process holds the store's lock.
lock_timeout = "5s"

[otp]
# Name shown above the code in the authenticator app (no ':').
issuer = "securemail"
# Code length. Keep 6: Google Authenticator and others ignore other values.
digits = 6
# Seconds per code. Keep 30 for the same reason.
period = 30
# HMAC algorithm. Keep SHA1 for the same reason.
algorithm = "SHA1"
# Time steps accepted either side of now, for clock drift (RFC 6238 recommends 1).
skew = 1
# How long an enrolment may wait for its first code before it expires.
ttl = "24h"

[key]
# Characters in a one-time key (Crockford base32, 5 bits each; at least 10 = 50 bits).
length = 12
# How long a key stays valid.
ttl = "24h"

[verify]
# Consecutive wrong codes after which a code locks.
max_attempts = 5

# What one recipient may be sent and may try, whatever the commands say (README: Security).
[limits]
# No new code to a recipient sooner than this after the last one ("0s": no wait).
resend_cooldown = "60s"
# Codes one recipient may be sent in any 24 hours (1 to 100).
codes_per_day = 5
# Wrong codes one recipient may send in any 24 hours, across all their codes (1 to 100);
# beyond that their replies wait unchecked (exit 75).
wrong_attempts_per_day = 10

[templates]
# Directory with otp.html, otp.txt, key.html and key.txt (minijinja / Jinja2 syntax).
dir = "templates"

# DKIM-sign every mail (publish the TXT record that `securemail check` prints).
[dkim]
domain = "example.org"
selector = "mail2026"
# PEM RSA (openssl genrsa 2048) or Ed25519 (openssl genpkey -algorithm ed25519) key.
private_key_file = "dkim.pem"

# One line per mail sent (time, server, TLS, user, from, to, size, reply, exit code), as msmtp's logfile.
[log]
file = "securemail.log"

# Audit log: one JSON line per security event (every mail sent, skipped or held back, every
# code checked and what it came to, locks, revokes, replies set aside); never a code, key,
# TOTP secret or password. Created 0600, only ever appended to.
[audit]
# By default securemail-audit.log in the directory of [store] path.
file = "securemail-audit.log"
# false turns it off (not recommended; remove file then).
enabled = true

# Believe a reply mail's From only when your receiving server vouches for it: the topmost
# Authentication-Results header by authserv_id must show DMARC pass, or DKIM pass for the
# From domain. Gmail's authserv_id is "mx.google.com"; OpenDKIM/OpenDMARC use their
# AuthservID setting (by default the host name).
[reply]
require_authenticated = true
authserv_id = "mx.google.com"
"##;

/// Keys `init` never sets: written commented, showing their default.
const ALWAYS_COMMENTED: [(&str, &str); 12] = [
    ("sender", "reply_to"),
    ("smtp", "password_command"),
    ("smtp", "hello_name"),
    ("smtp", "connections"),
    ("smtp", "max_per_minute"),
    ("smtp", "retries"),
    ("store", "lock_timeout"),
    ("limits", "resend_cooldown"),
    ("limits", "codes_per_day"),
    ("limits", "wrong_attempts_per_day"),
    ("audit", "file"),
    ("audit", "enabled"),
];

/// Paths in the template, relative to the config file; `init` puts [`Answers::base`] before them.
const PATHS: [(&str, &str); 5] = [
    ("outbox", "dir"),
    ("store", "path"),
    ("templates", "dir"),
    ("log", "file"),
    ("audit", "file"),
];

/// Said above the commented-out `[smtp]` table when there is no server.
const NO_SMTP: &str = "# Without an [smtp] table, mail is written as .eml files into [outbox] dir instead of being sent.\n\
     # Uncomment and fill in to send for real (Gmail shown; see README for others):\n";

/// The commented configuration text.
pub fn template(a: &Answers) -> String {
    // A constant, parsed the same way every time: the unit tests cover it.
    let mut doc: DocumentMut = TEMPLATE.parse().expect("the init template is valid TOML");
    doc["sender"]["from"] = value(a.from.as_str());
    doc["otp"]["issuer"] = value(a.issuer.as_str());
    for (table, key) in PATHS {
        let relative = doc[table][key].as_str().unwrap_or_default();
        doc[table][key] = value(format!("{}{relative}", a.base));
    }
    let mut off: Vec<(&str, &str)> = ALWAYS_COMMENTED.to_vec();
    // Without a server the template's Gmail values stay, as an example.
    let port = match &a.smtp {
        Some(s) => {
            let smtp = &mut doc["smtp"];
            smtp["host"] = value(s.host.as_str());
            smtp["port"] = value(i64::from(s.port));
            smtp["username"] = value(s.username.as_str());
            smtp["password_env"] = value(s.password_env.as_str());
            if let Some(ca) = &s.ca_file {
                smtp["ca_file"] = value(ca.as_str());
            }
            s.port
        }
        None => 465,
    };
    match a.smtp.as_ref().and_then(|s| s.security) {
        Some(sec) => doc["smtp"]["security"] = value(sec.to_string()),
        None => {
            let implied = if port == 587 { "starttls" } else { "tls" };
            doc["smtp"]["security"] = value(implied);
            off.push(("smtp", "security"));
        }
    }
    if a.smtp.as_ref().is_none_or(|s| s.ca_file.is_none()) {
        off.push(("smtp", "ca_file"));
    }
    let mut off_tables = vec![("dkim", ""), ("log", ""), ("reply", "")];
    if a.smtp.is_none() {
        off_tables.push(("smtp", NO_SMTP));
    }
    comment_out(&mut doc, &off, &off_tables);
    doc.to_string()
}

/// Turns the `keys` (table, key) and whole `tables` (name, note put above it) of `doc` into
/// comments in place: each goes, rendered by toml_edit and prefixed with `# `, into the decor
/// of whatever follows it (the next key, the next table's header, or the document's end).
fn comment_out(doc: &mut DocumentMut, keys: &[(&str, &str)], tables: &[(&str, &str)]) {
    let names: Vec<String> = doc.iter().map(|(name, _)| name.to_string()).collect();
    // Commented text waiting for the next thing in the document to carry it.
    let mut carry = String::new();
    for name in &names {
        let Some(table) = doc.get_mut(name).and_then(Item::as_table_mut) else {
            continue;
        };
        prepend(table.decor_mut(), &mut carry);
        let entries: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
        for key in &entries {
            if keys.contains(&(name.as_str(), key.as_str())) {
                if let Some((k, item)) = table.remove_entry(key) {
                    carry.push_str(decor_prefix(k.leaf_decor()));
                    comment_lines(&mut carry, &key_value_line(&k, &item));
                }
            } else if let Some(mut k) = table.key_mut(key) {
                prepend(k.leaf_decor_mut(), &mut carry);
            }
        }
        let Some(&(_, note)) = tables.iter().find(|(t, _)| t == name) else {
            continue;
        };
        if let Some(Item::Table(mut t)) = doc.remove(name) {
            let above = decor_prefix(t.decor()).to_string();
            t.decor_mut().set_prefix("");
            let mut alone = DocumentMut::new();
            alone.insert(name, Item::Table(t));
            let body = format!("{alone}{carry}");
            carry = above + note;
            comment_lines(&mut carry, &body);
        }
    }
    let trailing = format!("{carry}{}", doc.trailing().as_str().unwrap_or_default());
    doc.set_trailing(trailing);
}

/// Appends `text` to `out` with every line commented (a multi-line string value included).
fn comment_lines(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

/// Puts `text` (emptying it) before the decor's prefix.
fn prepend(decor: &mut Decor, text: &mut String) {
    if !text.is_empty() {
        let prefix = format!("{text}{}", decor_prefix(decor));
        decor.set_prefix(prefix);
        text.clear();
    }
}

fn decor_prefix(decor: &Decor) -> &str {
    decor.prefix().and_then(|p| p.as_str()).unwrap_or_default()
}

/// `key = value` as toml_edit writes it, without the surrounding whitespace and comments.
fn key_value_line(key: &Key, item: &Item) -> String {
    let mut item = item.clone();
    if let Some(v) = item.as_value_mut() {
        v.decor_mut().clear();
    }
    format!("{} = {item}", key.display_repr())
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
        .map_err(Error::Prompt)?;
    let line = line.trim();
    Ok(if line.is_empty() {
        default.to_string()
    } else {
        line.to_string()
    })
}

impl InitArgs {
    pub fn execute(self, path: &Path, out: Printer) -> Result<(), Error> {
        run(path, out, self)
    }
}

fn exists(path: &Path) -> Error {
    Error::Usage {
        message: format!("{} already exists", path.display()),
        hint: Some("pass --force to replace it".into()),
    }
}

/// Writes `path` whole or not at all: a temporary file beside it, given `mode` explicitly (the
/// umask does not decide), renamed into place; over an existing file only if `replace`.
fn write_whole(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    let placed = if replace {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    placed.map(drop).map_err(|e| e.error)
}

pub(super) fn run(path: &Path, out: Printer, args: InitArgs) -> Result<(), Error> {
    if path.exists() && !args.force {
        return Err(exists(path));
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
    match write_whole(path, text.as_bytes(), 0o600, args.force) {
        Ok(()) => {}
        // Created by someone else since the check above.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(e) => return Err(io(path, e)),
    }
    out.human(&format!("wrote {}", path.display()));

    let templates = dir.join(format!("{base}templates"));
    if !templates.is_dir() {
        std::fs::create_dir_all(&templates).map_err(|e| io(&templates, e))?;
        for (name, body) in TEMPLATES {
            let file = templates.join(name);
            write_whole(&file, body.as_bytes(), 0o644, false).map_err(|e| io(&file, e))?;
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

    /// Values that hand-written quoting gets wrong: quotes, backslashes, TOML's own delimiters,
    /// `#`, control characters, line breaks where the config allows them, non-ASCII.
    fn hostile() -> Vec<Answers> {
        let smtp = |username: &str, password_env: &str, ca_file: &str| SmtpAnswers {
            host: "smtp.example.org".into(),
            port: 2525,
            security: Some(Security::StartTls),
            username: username.into(),
            password_env: password_env.into(),
            ca_file: Some(ca_file.into()),
        };
        vec![
            Answers {
                from: r##""Ops \"#1\" \\ Désk" <ops@example.org>"##.into(),
                issuer: "Ex\"ample # \\ ''' \"\"\" Ünïcødé 🔐".into(),
                smtp: Some(smtp(
                    "me\"#'''\\@example.org\t",
                    "PW\n#\"\"\"\u{1}\u{7f}",
                    r"C:\Users\Ops\certs\my ca #1.pem",
                )),
                base: "dir with \"quotes\" \\ and # ".into(),
            },
            Answers {
                from: "\u{c9}lise M\u{fc}ller <elise@example.org>".into(),
                issuer: "a\\\\b\\n".into(),
                smtp: Some(smtp(
                    "\\",
                    "\"",
                    "/etc/ssl/\"ca\"\n'''\n\"\"\"\\u0041\r\n.pem",
                )),
                base: String::new(),
            },
            Answers {
                from: r##""\"\\\"#\\" <a@example.org>"##.into(),
                issuer: "#".into(),
                smtp: None,
                base: "'''/".into(),
            },
        ]
    }

    #[test]
    fn hostile_values_round_trip() {
        for a in hostile() {
            let text = template(&a);
            let s = config::parse(Path::new("x/account.toml"), &text)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let wanted: lettre::message::Mailbox = a.from.parse().unwrap();
            assert_eq!(s.sender.from, wanted);
            assert_eq!(s.otp.issuer, a.issuer.trim());
            match (&a.smtp, s.delivery) {
                (None, config::Delivery::Outbox) => {}
                (Some(want), config::Delivery::Smtp(smtp)) => {
                    assert_eq!(smtp.host, want.host);
                    assert_eq!(smtp.port, want.port);
                    assert_eq!(Some(smtp.security), want.security);
                    let login = (
                        want.username.clone(),
                        config::PasswordSource::Env(want.password_env.clone()),
                    );
                    assert_eq!(smtp.login, Some(login));
                    let ca = want.ca_file.as_deref().map(|f| Path::new("x").join(f));
                    assert_eq!(smtp.ca_file, ca, "{text}");
                }
                (_, d) => panic!("{d:?} from\n{text}"),
            }
            assert_eq!(
                s.outbox_dir,
                Path::new("x").join(format!("{}outbox", a.base))
            );
            // The template's comments are all still there (some commented once more).
            for line in TEMPLATE.lines().filter(|l| l.starts_with('#')) {
                assert!(text.contains(line), "lost {line:?} in\n{text}");
            }
            assert!(text.contains("\n# reply_to = "), "{text}");
        }
    }

    #[test]
    fn a_file_is_written_whole_with_its_mode_and_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.toml");
        write_whole(&path, b"first", 0o600, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        let e = write_whole(&path, b"second", 0o600, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_whole(&path, b"third", 0o644, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        assert_eq!(mode(&path), 0o644);
        // No temporary file is left behind, whatever happened.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_commented_multi_line_value_stays_a_comment() {
        let mut doc: DocumentMut = "[t]\n# about a\na = 1\nb = 2\n".parse().unwrap();
        doc["t"]["a"] = value("x\ny\n\"\"\"");
        comment_out(&mut doc, &[("t", "a")], &[]);
        let text = doc.to_string();
        let back: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let keys: Vec<_> = back["t"].as_table().unwrap().keys().collect();
        assert_eq!(keys, ["b"], "{text}");
        assert!(text.starts_with("[t]\n# about a\n# a = "), "{text}");
        assert!(text.ends_with("\nb = 2\n"), "{text}");
    }
}
