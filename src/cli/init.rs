//! `securemail init`: write a commented configuration, then check it against the server.
//!
//! On a terminal every field is asked for with its default shown (an empty answer takes it), and
//! a wrong answer is asked again with the reason; a flag answers its question instead, so that
//! `init` runs unattended with flags alone. Without `--config` the file goes to the per-user
//! config file (`~/.config/securemail/account.toml`), with its data files left to their defaults
//! in the data directory and the templates built in. Once written, `init` runs the same code as `securemail check` when there
//! is a server and a password to log in with, and prints the next command.
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
//! The file is written through a temporary file beside it and renamed into place
//! ([`crate::files::write_whole`]), 0600, never over an existing file unless `--force` asks for
//! it (exit 73). Templates are never written: a clone's config uses the clone's `templates/`,
//! any other the built-in ones (`securemail templates export DIR` writes them for editing).

use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use toml_edit::{Decor, DocumentMut, Item, Key, value};

use super::Printer;
use crate::config::{self, PasswordSource, Security};
use crate::error::Error;
use crate::mail::Recipient;
use crate::transport::tls;
use lettre::message::Mailbox;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Start from a provider's settings (asked for on a terminal).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// SMTP server host name (your own server).
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
    /// SMTP login (default: the sender address).
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable that will hold the SMTP password [default: SECUREMAIL_PASSWORD].
    #[arg(long, value_name = "NAME", conflicts_with_all = ["password_command", "password_prompt"])]
    pub password_env: Option<String>,
    /// Command whose first output line is the SMTP password (e.g. "pass show mail/gmail").
    #[arg(long, value_name = "CMD", conflicts_with = "password_prompt")]
    pub password_command: Option<String>,
    /// Ask for the SMTP password on the terminal each time.
    #[arg(long)]
    pub password_prompt: bool,
    /// Extra CA certificate (PEM) to trust, relative to the config file's directory.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Issuer name shown in authenticator apps [default: the sender's display name].
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
    /// Your own server (--host).
    Other,
    /// No SMTP server: mail goes to the local outbox.
    None,
}

impl Preset {
    /// The preset's host and port (an empty host for `Other`: it must be given).
    fn server(self) -> Option<(&'static str, u16)> {
        match self {
            Preset::Gmail => Some(("smtp.gmail.com", 465)),
            Preset::GmailStarttls => Some(("smtp.gmail.com", 587)),
            Preset::Outlook => Some(("smtp.office365.com", 587)),
            Preset::Other => Some(("", 465)),
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
    /// Where the data files (store, outbox, logs) and templates go.
    pub layout: Layout,
}

/// Where a new configuration keeps its data files and templates.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Written into the file, this prefix before each path relative to the config's directory
    /// (`"../"` in a clone, where `config/` sits beside `templates/`, which it uses).
    Relative(String),
    /// Anywhere else: the data files beside the config, the built-in templates.
    Beside,
    /// Left unset (commented, showing where they go): the data files default to this directory
    /// (`$XDG_DATA_HOME/securemail`, see [`config::discover`]) and the built-in templates serve.
    DataDir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SmtpAnswers {
    pub host: String,
    pub port: u16,
    /// Written only when the port does not imply it.
    pub security: Option<Security>,
    pub username: String,
    pub password: PasswordSource,
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
# Only with url (a PostgreSQL store several hosts share; README: One list, several hosts): how
# long a host that stopped answering keeps its share of a list before the others take it over.
lease = "30s"

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
# Directory with otp.html, otp.txt, key.html and key.txt (minijinja / Jinja2 syntax). Unset:
# the templates built into securemail; a file missing here falls back to its built-in one
# (securemail templates export DIR writes them for editing).
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
    ("smtp", "hello_name"),
    ("smtp", "connections"),
    ("smtp", "max_per_minute"),
    ("smtp", "retries"),
    ("store", "lock_timeout"),
    ("store", "lease"),
    ("limits", "resend_cooldown"),
    ("limits", "codes_per_day"),
    ("limits", "wrong_attempts_per_day"),
    ("audit", "file"),
    ("audit", "enabled"),
];

/// Paths in the template, relative to the config file; `init` puts [`Layout::Relative`]'s prefix
/// before them, or comments them out showing the data directory's path.
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
    let mut off: Vec<(&str, &str)> = ALWAYS_COMMENTED.to_vec();
    for (table, key) in PATHS {
        let relative = doc[table][key].as_str().unwrap_or_default().to_string();
        match &a.layout {
            Layout::Relative(base) => doc[table][key] = value(format!("{base}{relative}")),
            Layout::DataDir(_) | Layout::Beside if table == "templates" => off.push((table, key)),
            Layout::Beside => {}
            Layout::DataDir(dir) => {
                doc[table][key] = value(dir.join(relative).display().to_string());
                off.push((table, key));
            }
        }
    }
    // Without a server the template's Gmail values stay, as an example.
    let port = match &a.smtp {
        Some(s) => {
            let smtp = &mut doc["smtp"];
            smtp["host"] = value(s.host.as_str());
            smtp["port"] = value(i64::from(s.port));
            smtp["username"] = value(s.username.as_str());
            match &s.password {
                PasswordSource::Env(var) => smtp["password_env"] = value(var.as_str()),
                PasswordSource::Command(cmd) => smtp["password_command"] = value(cmd.as_str()),
                PasswordSource::Prompt => {}
            }
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
    // One password source (or none: asked on the terminal); without a server, the env example.
    match a.smtp.as_ref().map(|s| &s.password) {
        Some(PasswordSource::Env(_)) | None => off.push(("smtp", "password_command")),
        Some(PasswordSource::Command(_)) => off.push(("smtp", "password_env")),
        Some(PasswordSource::Prompt) => {
            off.extend([("smtp", "password_env"), ("smtp", "password_command")]);
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

impl InitArgs {
    /// Writes the configuration to `path` (`--config`, `$SECUREMAIL_CONFIG` or the per-user
    /// file: see [`config::discover::Environment::init_path`]).
    pub fn execute(self, path: &Path, out: Printer) -> Result<(), Error> {
        run(path, out, self)
    }
}

/// Gets each answer: from its flag, else asked on a terminal until it is right, else the default.
struct Asker {
    tty: bool,
}

impl Asker {
    /// The checked answer for `flag` (its name and value): the flag's value (a wrong one is a
    /// usage error), else on a terminal the answer to `question` (an empty line takes
    /// `default`; a wrong answer is asked again with the reason), else `default`.
    fn get<T>(
        &self,
        flag: (&str, Option<&str>),
        question: &str,
        default: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Error> {
        let (name, given) = flag;
        let wrong = |reason: String| Error::Usage {
            message: format!("{name}: {reason}"),
            hint: Some(format!(
                "pass a right {name}, or run securemail init on a terminal to be asked"
            )),
        };
        if let Some(v) = given {
            return check(v).map_err(wrong);
        }
        if !self.tty {
            return check(default).map_err(wrong);
        }
        loop {
            let line = read_answer(question, default)?;
            match check(&line) {
                Ok(v) => return Ok(v),
                Err(reason) => say!("  {reason}; try again"),
            }
        }
    }

    /// [`Asker::get`] for an answer with no default that can stand in for it: without a
    /// terminal, its flag must be given (a placeholder written silently would be worse than
    /// saying what is missing).
    fn require<T>(
        &self,
        flag: (&str, Option<&str>),
        question: &str,
        default: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Error> {
        let (name, given) = flag;
        if !self.tty && given.is_none() {
            return Err(Error::Usage {
                message: format!("{name} is missing, and there is no terminal to ask on"),
                hint: Some(format!(
                    "pass {name}, or run securemail init on a terminal to be asked"
                )),
            });
        }
        self.get(flag, question, default, check)
    }
}

/// One answer from the terminal: `question [default]: `; an empty line is `default`.
fn read_answer(question: &str, default: &str) -> Result<String, Error> {
    if default.is_empty() {
        say_inline!("{question}: ");
    } else {
        say_inline!("{question} [{default}]: ");
    }
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(Error::Prompt)?;
    if n == 0 {
        say!();
        return Err(Error::Usage {
            message: format!("no answer to \"{question}\" (end of input); nothing was written"),
            hint: Some("run securemail init again, or pass every answer as a flag".into()),
        });
    }
    let line = line.trim();
    Ok(if line.is_empty() { default } else { line }.to_string())
}

fn exists(path: &Path) -> Error {
    Error::Exists {
        message: format!("{} already exists", path.display()),
        hint: "pass --force to replace it".into(),
    }
}

pub(super) fn run(path: &Path, out: Printer, args: InitArgs) -> Result<(), Error> {
    if path.exists() && !args.force {
        return Err(exists(path));
    }
    // --force replaces a file (or a link), never a directory, device or pipe (/dev/null).
    if let Ok(m) = std::fs::symlink_metadata(path)
        && !m.is_file()
        && !m.file_type().is_symlink()
    {
        return Err(Error::Exists {
            message: format!("{} exists and is not a regular file", path.display()),
            hint: "pass --config with the path of a file to write".into(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // In the per-user or system config directory the data goes to the data directory and the
    // templates are the built-in ones; the repository layout (config/ beside templates/) keeps
    // its paths; anywhere else the config directory holds everything.
    let data_dir = config::discover::data_dir_for(path);
    let layout = match data_dir.clone() {
        Some(d) => Layout::DataDir(d),
        None if dir.file_name().is_some_and(|n| n == "config")
            && dir.join("../templates").is_dir() =>
        {
            Layout::Relative("../".to_string())
        }
        None => Layout::Beside,
    };
    let asker = Asker {
        tty: std::io::stdin().is_terminal(),
    };
    let answers = ask_all(&asker, &args, &dir, layout)?;
    let text = template(&answers);
    // What init writes must load: check it before touching the disk.
    config::parse_with_data_dir(path, &text, data_dir.as_deref())?;
    write_config(path, &dir, &text, &answers.layout, args.force, out)?;
    check_and_next(path, &answers, asker.tty, out)
}

/// Every answer, in the order a person thinks of them: who sends, through which server, how to
/// log in, and the name the authenticator app shows.
fn ask_all(asker: &Asker, args: &InitArgs, dir: &Path, layout: Layout) -> Result<Answers, Error> {
    let (from, sender) = asker.require(
        ("--from", args.from.as_deref()),
        "Send as (name and address, e.g. Example Admin <admin@example.org>)",
        "",
        check_from,
    )?;
    let preset = match (args.preset, &args.host) {
        (Some(p), _) => p,
        (None, Some(_)) => Preset::Other,
        (None, None) => asker.get(
            ("--preset", None),
            "Provider: gmail, gmail-starttls, outlook, other (your own server) or none (no \
             server: mails are written to the outbox)",
            "none",
            |s| {
                <Preset as clap::ValueEnum>::from_str(s, true).map_err(|_| {
                    format!(
                        "{s:?} is not a provider: answer gmail, gmail-starttls, outlook, other or none"
                    )
                })
            },
        )?,
    };
    let smtp_flags = [
        ("--host", args.host.is_some()),
        ("--port", args.port.is_some()),
        ("--security", args.security.is_some()),
        ("--username", args.username.is_some()),
        ("--password-env", args.password_env.is_some()),
        ("--password-command", args.password_command.is_some()),
        ("--password-prompt", args.password_prompt),
        ("--ca-file", args.ca_file.is_some()),
    ];
    let smtp = match preset.server() {
        None => {
            // A server setting with no server would be dropped without a word.
            if let Some((flag, _)) = smtp_flags.iter().find(|(_, given)| *given) {
                return Err(Error::Usage {
                    message: format!("{flag} is for an SMTP server, but none was chosen"),
                    hint: Some(
                        "choose one with --host or --preset gmail|gmail-starttls|outlook|other \
                         (not none)"
                            .into(),
                    ),
                });
            }
            None
        }
        Some(server) => Some(ask_smtp(asker, args, dir, server, &sender)?),
    };
    let display = sender
        .name
        .as_deref()
        .map(|n| n.replace(':', " "))
        .unwrap_or_default();
    let default_issuer = match display.trim() {
        "" => sender.email.domain().to_string(),
        name => name.to_string(),
    };
    let issuer = asker.get(
        ("--issuer", args.issuer.as_deref()),
        "Issuer, the name authenticator apps show above the code",
        &default_issuer,
        |s| match s.trim() {
            "" => Err("the issuer is empty".to_string()),
            t if t.contains(':') => Err(format!("{t:?} contains a ':'")),
            t if t.chars().any(char::is_control) => {
                Err(format!("{t:?} contains a control character"))
            }
            t => Ok(t.to_string()),
        },
    )?;
    Ok(Answers {
        from,
        issuer,
        smtp,
        layout,
    })
}

/// The `[smtp]` answers: host, port, security (asked only when the port does not imply it),
/// login, password source and CA file.
fn ask_smtp(
    asker: &Asker,
    args: &InitArgs,
    dir: &Path,
    (preset_host, preset_port): (&str, u16),
    sender: &Mailbox,
) -> Result<SmtpAnswers, Error> {
    let host = asker.get(
        ("--host", args.host.as_deref()),
        "SMTP server (host name)",
        preset_host,
        |s| {
            let s = s.trim();
            if s.is_empty() {
                Err("the host name is empty (e.g. smtp.example.org)".into())
            } else if s.contains(|c: char| c.is_whitespace() || matches!(c, '/' | ':' | '@')) {
                Err(format!(
                    "{s:?} is not a host name: write just the name, e.g. smtp.example.org"
                ))
            } else {
                Ok(s.to_string())
            }
        },
    )?;
    let port_flag = args.port.map(|p| p.to_string());
    let port: u16 = asker.get(
        ("--port", port_flag.as_deref()),
        "Port (465: TLS from the first byte, 587: STARTTLS)",
        &preset_port.to_string(),
        |s| match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("{s:?} is not a port number (1 to 65535)")),
        },
    )?;
    let security = ask_security(asker, args.security.as_deref(), port)?;
    let username = asker.get(
        ("--username", args.username.as_deref()),
        "Login name",
        sender.email.as_ref(),
        |s| match s.trim() {
            "" => Err("the login name is empty".to_string()),
            t if t.chars().any(char::is_control) => Err("it has a control character".into()),
            t => Ok(t.to_string()),
        },
    )?;
    let password = ask_password(asker, args)?;
    let ca_file = ask_ca_file(asker, args.ca_file.as_deref(), dir)?;
    Ok(SmtpAnswers {
        host,
        port,
        security,
        username,
        password,
        ca_file,
    })
}

/// `None` when the port implies it (465, 587); asked for any other port.
fn ask_security(asker: &Asker, flag: Option<&str>, port: u16) -> Result<Option<Security>, Error> {
    let parse = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "tls" => Ok(Security::Tls),
        "starttls" => Ok(Security::StartTls),
        other => Err(format!("{other:?} is not tls or starttls")),
    };
    let implied = match port {
        465 => Security::Tls,
        587 => Security::StartTls,
        _ => {
            let question = format!(
                "Port {port} is neither 465 nor 587: tls (TLS from the first byte) or starttls"
            );
            // Asked with a default on a terminal; without one, a flag must say it (a wrong
            // guess means a handshake that never completes).
            return asker
                .require(("--security", flag), &question, "tls", parse)
                .map(Some);
        }
    };
    match flag.map(parse).transpose() {
        Ok(None) => Ok(None),
        Ok(Some(s)) if s == implied => Ok(None),
        Ok(Some(s)) => Err(Error::Usage {
            message: format!("--security {s} does not fit port {port}, which is {implied}"),
            hint: Some("leave --security out for ports 465 and 587".into()),
        }),
        Err(reason) => Err(Error::Usage {
            message: format!("--security: {reason}"),
            hint: None,
        }),
    }
}

/// The password source: a flag, or asked (an environment variable, a command, or the terminal).
fn ask_password(asker: &Asker, args: &InitArgs) -> Result<PasswordSource, Error> {
    let env_name = |s: &str| {
        let s = s.trim();
        let mut chars = s.chars();
        let first = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(PasswordSource::Env(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not an environment variable name (letters, digits and _)"
            ))
        }
    };
    let command = |s: &str| match s.trim() {
        "" => Err("the command is empty".to_string()),
        t => Ok(PasswordSource::Command(t.to_string())),
    };
    if let Some(v) = &args.password_env {
        return asker.get(("--password-env", Some(v)), "", "", env_name);
    }
    if let Some(v) = &args.password_command {
        return asker.get(("--password-command", Some(v)), "", "", command);
    }
    if args.password_prompt || !asker.tty {
        return Ok(if args.password_prompt {
            PasswordSource::Prompt
        } else {
            PasswordSource::Env(DEFAULT_PASSWORD_ENV.into())
        });
    }
    let how = asker.get(
        ("", None),
        "Password from: env (an environment variable), command (e.g. a password manager) or \
         ask (typed each time)",
        "env",
        |s| match s.trim().to_ascii_lowercase().as_str() {
            w @ ("env" | "command" | "ask") => Ok(w.to_string()),
            other => Err(format!("{other:?} is not env, command or ask")),
        },
    )?;
    match how.as_str() {
        "env" => asker.get(
            ("", None),
            "Environment variable holding the password",
            DEFAULT_PASSWORD_ENV,
            env_name,
        ),
        "command" => asker.get(
            ("", None),
            "Command that prints the password (e.g. pass show mail/account)",
            "",
            command,
        ),
        _ => Ok(PasswordSource::Prompt),
    }
}

const DEFAULT_PASSWORD_ENV: &str = "SECUREMAIL_PASSWORD";

/// A CA file that holds usable PEM certificates. A flag's path is relative to the config file's
/// directory (as in the config); a typed one to the working directory, and written absolute.
fn ask_ca_file(asker: &Asker, flag: Option<&Path>, dir: &Path) -> Result<Option<String>, Error> {
    let usable = |p: &Path| -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        tls::add_ca_file(&mut roots, p).map_err(|e| e.to_string())
    };
    if let Some(p) = flag {
        let s = p.to_string_lossy();
        return asker.get(("--ca-file", Some(&s)), "", "", |_| {
            usable(&lexical(&dir.join(p))).map(|()| Some(p.display().to_string()))
        });
    }
    asker.get(
        ("--ca-file", None),
        "CA certificate (PEM) to trust besides the system's, for a private CA (empty: none)",
        "",
        |s| {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let p = std::path::absolute(s).map_err(|e| crate::io_reason(&e))?;
            usable(&p).map(|()| Some(p.display().to_string()))
        },
    )
}

/// `path` with `dir/..` pairs taken out without asking the file system: the config's directory
/// may not exist yet (`site/../ca.pem` is `ca.pem`).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The sender as typed (written into the config as is) and parsed.
fn check_from(s: &str) -> Result<(String, Mailbox), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the sender is empty: write e.g. Example Admin <admin@example.org>".into());
    }
    if s.contains(['\r', '\n']) {
        return Err("the sender contains a line break".into());
    }
    // lettre's own reason ("Invalid input") says nothing a person can act on.
    let mailbox: Mailbox = s.parse().map_err(|_| {
        let why = if s.contains('@') {
            "not an address, nor a name followed by an address in <>"
        } else {
            "no address in it"
        };
        format!("{s:?} is not a mailbox ({why}): write e.g. Example Admin <admin@example.org>")
    })?;
    Recipient::parse(mailbox.email.as_ref(), None).map_err(|e| e.to_string())?;
    Ok((s.to_string(), mailbox))
}

/// Writes the config (its directory created 0700) and, where there are none, the templates.
fn write_config(
    path: &Path,
    dir: &Path,
    text: &str,
    layout: &Layout,
    force: bool,
    out: Printer,
) -> Result<(), Error> {
    let io = |p: &Path, e: std::io::Error| Error::Input {
        message: format!("cannot write {}: {}", p.display(), crate::io_reason(&e)),
        hint: None,
    };
    crate::files::create_private_dirs(dir).map_err(|e| io(dir, e))?;
    match crate::files::write_whole(path, text.as_bytes(), 0o600, force) {
        Ok(()) => {}
        // Created by someone else since the check above.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(e) => return Err(io(path, e)),
    }
    out.human(&format!("wrote {}", path.display()));

    match layout {
        Layout::Relative(base) => out.human(&format!(
            "templates: {}",
            dir.join(format!("{base}templates")).display()
        )),
        Layout::Beside | Layout::DataDir(_) => {
            out.human("templates: the built-in ones (securemail templates export DIR to edit them)")
        }
    }
    Ok(())
}

/// Runs `check` on what was written when there is a server and a password to log in with, and
/// says what to do next. A failed check keeps the file and says what to fix.
fn check_and_next(path: &Path, answers: &Answers, tty: bool, out: Printer) -> Result<(), Error> {
    let config = match config::discover::default_init_path() {
        Some(p) if p == path => String::new(),
        _ => format!(" --config {}", shell_word(&path.display().to_string())),
    };
    let send = format!("securemail{config} send --otp --to you@example.org");
    let Some(smtp) = &answers.smtp else {
        out.human(&format!(
            "no [smtp] server: mails are written to the outbox; next: {send}"
        ));
        return Ok(());
    };
    let missing = match &smtp.password {
        PasswordSource::Env(var) if std::env::var_os(var).is_none_or(|v| v.is_empty()) => Some(
            format!("export {var}=... (the SMTP password), then run securemail{config} check"),
        ),
        PasswordSource::Prompt if !tty => Some(format!(
            "run securemail{config} check on a terminal (it asks for the password)"
        )),
        _ => None,
    };
    if let Some(todo) = missing {
        out.human(&format!("not checked yet: {todo}; then: {send}"));
        return Ok(());
    }
    out.human(&format!("checking {}:{} ...", smtp.host, smtp.port));
    let result = config::load(path)
        .map_err(Error::from)
        .and_then(|settings| super::check::execute(&settings, out));
    match result {
        Ok(()) => {
            out.human(&format!("the check passed; next: {send}"));
            Ok(())
        }
        Err(e) => {
            out.human(&format!(
                "the check failed; {} is kept: fix what the error below says (in the file or \
                 on the server), then run securemail{config} check",
                path.display()
            ));
            Err(e)
        }
    }
}

/// `s` as one word for a POSIX shell: as is when it is plain, single-quoted otherwise.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '+' | ',' | ':' | '@' | '%')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_answers() -> Answers {
        Answers {
            from: "Example Admin <admin@example.org>".into(),
            issuer: "Example".into(),
            smtp: None,
            layout: Layout::Relative("../".into()),
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
                    password: PasswordSource::Env("PW".into()),
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

    /// Each password source is written as the one live key (the other commented), or none for
    /// a password asked on the terminal; each loads back as itself.
    #[test]
    fn every_password_source_round_trips() {
        for password in [
            PasswordSource::Env("MY_PW".into()),
            PasswordSource::Command("pass show \"mail\" # x".into()),
            PasswordSource::Prompt,
        ] {
            let a = Answers {
                smtp: Some(SmtpAnswers {
                    host: "smtp.example.org".into(),
                    port: 587,
                    security: None,
                    username: "me@example.org".into(),
                    password: password.clone(),
                    ca_file: None,
                }),
                ..shipped_answers()
            };
            let text = template(&a);
            let s = config::parse(Path::new("x/account.toml"), &text)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let config::Delivery::Smtp(smtp) = s.delivery else {
                panic!("no smtp")
            };
            assert_eq!(
                smtp.login,
                Some(("me@example.org".into(), password)),
                "{text}"
            );
            assert!(
                text.contains("\n# (With neither set, securemail asks"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_default_path_follows_xdg() {
        // The variables are the test runner's own (tests do not set them: threads share them).
        let path = config::discover::default_init_path();
        if let Some(p) = path {
            assert!(p.ends_with("securemail/account.toml"), "{p:?}");
            assert!(p.is_absolute(), "{p:?}");
        }
    }

    #[test]
    fn lexical_paths_drop_dir_dot_dot() {
        assert_eq!(lexical(Path::new("site/../ca.pem")), Path::new("ca.pem"));
        assert_eq!(lexical(Path::new("../x/./y")), Path::new("../x/y"));
        assert_eq!(lexical(Path::new("/a/b/../c")), Path::new("/a/c"));
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("site/account.toml"), "site/account.toml");
        assert_eq!(shell_word("my dir/a.toml"), "'my dir/a.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    /// Values that hand-written quoting gets wrong: quotes, backslashes, TOML's own delimiters,
    /// `#`, control characters, line breaks where the config allows them, non-ASCII.
    fn hostile() -> Vec<Answers> {
        let smtp = |username: &str, password_env: &str, ca_file: &str| SmtpAnswers {
            host: "smtp.example.org".into(),
            port: 2525,
            security: Some(Security::StartTls),
            username: username.into(),
            password: PasswordSource::Env(password_env.into()),
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
                layout: Layout::Relative("dir with \"quotes\" \\ and # ".into()),
            },
            Answers {
                from: "\u{c9}lise M\u{fc}ller <elise@example.org>".into(),
                issuer: "a\\\\b\\n".into(),
                smtp: Some(smtp(
                    "\\",
                    "\"",
                    "/etc/ssl/\"ca\"\n'''\n\"\"\"\\u0041\r\n.pem",
                )),
                layout: Layout::Relative(String::new()),
            },
            Answers {
                from: r##""\"\\\"#\\" <a@example.org>"##.into(),
                issuer: "#".into(),
                smtp: None,
                layout: Layout::Relative("'''/".into()),
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
                    let login = (want.username.clone(), want.password.clone());
                    assert_eq!(smtp.login, Some(login));
                    let ca = want.ca_file.as_deref().map(|f| Path::new("x").join(f));
                    assert_eq!(smtp.ca_file, ca, "{text}");
                }
                (_, d) => panic!("{d:?} from\n{text}"),
            }
            let Layout::Relative(base) = &a.layout else {
                panic!("{:?}", a.layout)
            };
            assert_eq!(s.outbox_dir, Path::new("x").join(format!("{base}outbox")));
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
        crate::files::write_whole(&path, b"first", 0o600, false).unwrap();
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&path), 0o600);
        let e = crate::files::write_whole(&path, b"second", 0o600, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        crate::files::write_whole(&path, b"third", 0o644, true).unwrap();
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
