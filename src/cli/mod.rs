//! The command line: clap definitions, shared helpers, and one file per subcommand.
//!
//! Each subcommand first turns its arguments plus the config into checked values (failing with
//! exit 64 for usage, 65 for data, 78 for config) and only then touches the store or network.

mod check;
mod init;
mod reply;
mod send;
mod status;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config;
use crate::error::Error;
use crate::exit;

/// Send one-time codes over verified TLS and verify what comes back.
#[derive(Debug, Parser)]
#[command(name = "securemail", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "SECUREMAIL_CONFIG",
        default_value = config::DEFAULT_PATH
    )]
    pub config: PathBuf,

    /// Show what happens, including the SMTP dialogue (secrets redacted).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a code for a recipient and mail it (TOTP enrolment QR, or a random key).
    Send(SendArgs),
    /// Check a code the recipient sent back (typed, in a reply email, or a whole Maildir).
    Reply(ReplyArgs),
    /// Connect to the configured server and report TLS, certificate, extensions and login,
    /// without sending anything (like msmtp --serverinfo).
    Check,
    /// List issued codes: recipient, kind, created, expires, attempts, state (never a secret).
    Status(StatusArgs),
    /// Invalidate a recipient's pending or verified code.
    Revoke(RevokeArgs),
    /// Write a commented configuration file (and the default templates if missing).
    Init(InitArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout.
    Man,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["otp", "key"])))]
pub struct SendArgs {
    /// Send a TOTP enrolment: a fresh secret as an otpauth:// QR code.
    #[arg(long)]
    pub otp: bool,
    /// Send a random one-time key.
    #[arg(long)]
    pub key: bool,
    /// Recipient: alice@example.org or "Alice <alice@example.org>"; repeat for several
    /// (asked for on a terminal when neither --to nor --to-list is given).
    #[arg(long, value_name = "ADDR", conflicts_with = "to_list")]
    pub to: Vec<String>,
    /// CSV file of recipients, one per line: email[,name] (header line optional).
    #[arg(long, value_name = "FILE")]
    pub to_list: Option<PathBuf>,
    /// Recipient's display name (with a single --to).
    #[arg(long)]
    pub name: Option<String>,
    /// Subject line (default depends on --otp/--key).
    #[arg(long)]
    pub subject: Option<String>,
    /// Write the mails to the outbox and print where; send nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send new codes even to recipients who already hold a live one of this kind.
    #[arg(long)]
    pub resend: bool,
    /// Send to the valid recipients of a list and report the invalid lines, instead of refusing.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// The recipient whose code this is (asked for on a terminal).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["message", "maildir"])]
    pub to: Option<String>,
    /// The code they sent back: the current TOTP code, or the key (asked for on a terminal).
    #[arg(long, conflicts_with_all = ["message", "maildir"])]
    pub code: Option<String>,
    /// A reply email to verify: an RFC 5322 file, or - to read it from stdin (for an MDA).
    #[arg(long, value_name = "FILE", conflicts_with = "maildir")]
    pub message: Option<PathBuf>,
    /// Verify every message in DIR/new of a Maildir, moving each to DIR/cur once handled.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this recipient.
    #[arg(long, value_name = "ADDR")]
    pub to: Option<String>,
    /// Include superseded and failed records (the history), not only each recipient's current one.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The recipient whose code to invalidate.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Start from a provider's settings (asked for on a terminal).
    #[arg(long, value_enum)]
    pub preset: Option<init::Preset>,
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

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub verbose: u8,
}

impl Output {
    /// A result line for people (suppressed with `--json`).
    pub fn human(&self, line: &str) {
        if !self.json {
            println!("{line}");
        }
    }

    /// A JSON result (only with `--json`).
    pub fn json(&self, value: &serde_json::Value) {
        if self.json {
            println!("{value}");
        }
    }

    /// Progress for `-v`, on stderr.
    pub fn verbose(&self, line: &str) {
        if self.verbose > 0 {
            eprintln!("securemail: {line}");
        }
    }

    /// A sink for the SMTP dialogue when `-v` is given; `tag` tells connections apart.
    pub fn smtp_trace(&self, tag: &str) -> Option<crate::transport::smtp::Trace> {
        let tag = tag.to_string();
        (self.verbose > 0).then(|| {
            std::sync::Arc::new(move |line: &str| eprintln!("securemail: smtp{tag}: {line}"))
                as crate::transport::smtp::Trace
        })
    }
}

/// Prints a clap error in securemail's shape and returns exit 64 (0 for --help/--version).
pub fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let body = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    eprint!("securemail: error: {body}");
    if !body.ends_with('\n') {
        eprintln!();
    }
    ExitCode::from(exit::USAGE)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let out = Output {
        json: cli.json,
        verbose: cli.verbose,
    };
    // Commands that do not need a configuration file.
    let command = match cli.command {
        Command::Init(args) => return init::run(&cli.config, out, args),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "securemail", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Error::Prompt(e.to_string()))?;
            let _ = std::io::stdout().write_all(&page);
            return Ok(());
        }
        other => other,
    };
    let settings = config::load(&cli.config)?;
    out.verbose(&format!("configuration {}", cli.config.display()));
    match command {
        Command::Send(args) => send::run(&settings, out, args),
        Command::Reply(args) => reply::run(&settings, out, args),
        Command::Check => check::run(&settings, out),
        Command::Status(args) => status::status(&settings, out, args),
        Command::Revoke(args) => status::revoke(&settings, out, args),
        Command::Init(_) | Command::Completions(_) | Command::Man => Ok(()),
    }
}

/// The value of `--flag`, or asked for when stdin is a terminal; a usage error otherwise.
fn value_or_prompt(value: Option<String>, flag: &str, question: &str) -> Result<String, Error> {
    if let Some(v) = value {
        if v.trim().is_empty() {
            return Err(Error::Usage {
                message: format!("{flag} is empty"),
                hint: None,
            });
        }
        return Ok(v);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Usage {
            message: format!("{flag} is missing"),
            hint: Some(format!(
                "pass {flag}, or run securemail on a terminal to be asked"
            )),
        });
    }
    eprint!("{question}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Prompt(e.to_string()))?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(Error::Usage {
            message: format!("no answer for {flag}"),
            hint: None,
        });
    }
    Ok(line)
}
