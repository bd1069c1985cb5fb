//! The command line: clap definitions, shared helpers, and one file per subcommand.
//!
//! Each subcommand first turns its arguments plus the config into checked values (failing with
//! exit 64 for usage, 65 for data, 78 for config) and only then touches the store or network.

mod check;
mod completions;
mod init;
mod man;
pub mod output;
mod reply;
mod revoke;
mod send;
mod status;
#[cfg(feature = "postgres")]
mod store;
mod templates;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use completions::CompletionsArgs;
pub use init::InitArgs;
pub use man::ManArgs;
pub use output::Printer;
pub use reply::ReplyArgs;
pub use revoke::RevokeArgs;
pub use send::SendArgs;
pub use status::StatusArgs;
#[cfg(feature = "postgres")]
pub use store::StoreArgs;
pub use templates::TemplatesArgs;

use crate::config;
use crate::error::Error;
use crate::exit;

/// Send one-time codes over verified TLS and verify what comes back.
#[derive(Debug, Parser)]
#[command(name = "securemail", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file. Without it: $SECUREMAIL_CONFIG, else the first that exists of
    /// ./config/account.toml, $XDG_CONFIG_HOME/securemail/account.toml
    /// (~/.config/securemail/account.toml) and /etc/securemail/account.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

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
    /// without sending anything (like msmtp --serverinfo); then the store: reachable, TLS,
    /// schema, key id.
    Check,
    /// List issued codes: recipient, kind, state, created, expires, wrong codes in a row (never a
    /// secret).
    Status(StatusArgs),
    /// Invalidate a recipient's pending or verified code.
    Revoke(RevokeArgs),
    /// Work on the store itself: `store migrate --to postgres://…` copies a SQLite store into
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Store(StoreArgs),
    /// Write a commented configuration file, asking for each setting, then check it.
    Init(InitArgs),
    /// Write the templates built into securemail to a directory, for editing.
    Templates(TemplatesArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout, or write every page with --dir.
    Man(ManArgs),
}

/// Prints a clap error in securemail's shape and returns exit 64 (0 for --help/--version).
pub fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // Help that could not be written (`--help > /dev/full`) is a failure; a reader that
        // went away (`--help | head -1`) is not.
        return match e.print() {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                say!(
                    "securemail: error: cannot write to stdout: {}",
                    crate::io_reason(&err)
                );
                ExitCode::from(exit::IOERR)
            }
            _ => ExitCode::SUCCESS,
        };
    }
    let rendered = e.render().to_string();
    let body = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    // The command line did not parse, so whether --json was asked for is read from it directly
    // (up to a `--`, after which everything is a value).
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let mut lines = body.lines();
    let message = lines.next().unwrap_or_default();
    let hint = lines
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map_or_else(|| "see securemail --help".to_string(), str::to_string);
    Printer::new(json, 0).json_error_line(exit::USAGE, message, Some(&hint));
    say_inline!("securemail: error: {body}");
    if !body.ends_with('\n') {
        say!();
    }
    ExitCode::from(exit::USAGE)
}

/// Runs a parsed command line, printing results through `out`.
pub fn run(cli: Cli, out: Printer) -> Result<(), Error> {
    // Commands that do not need a configuration file.
    let command = match cli.command {
        Command::Init(args) => return args.execute(&init_path(cli.config)?, out),
        Command::Templates(args) => return args.execute(out),
        Command::Completions(args) => return args.execute(),
        Command::Man(args) => return args.execute(out),
        other => other,
    };
    let found = config::discover::find(cli.config.as_deref())?;
    config::discover::trusted(&found)?;
    out.verbose(&format!(
        "configuration {} ({})",
        found.path.display(),
        found.source
    ));
    let settings = config::load(&found.path)?;
    match command {
        Command::Send(args) => args.execute(&settings, out),
        Command::Reply(args) => args.execute(&settings, out),
        Command::Check => check::execute(&settings, out),
        Command::Status(args) => args.execute(&settings, out),
        Command::Revoke(args) => args.execute(&settings, out),
        #[cfg(feature = "postgres")]
        Command::Store(args) => args.execute(&settings, out),
        Command::Init(_) | Command::Templates(_) | Command::Completions(_) | Command::Man(_) => {
            Ok(())
        }
    }
}

/// The command's own result when it failed (the lost audit lines were already printed on
/// stderr); otherwise exit 74 if any audit line could not be written.
fn audited(result: Result<(), Error>, audit: crate::audit::Audit) -> Result<(), Error> {
    let written = audit.finish();
    result?;
    Ok(written?)
}

/// Where `init` writes: `--config`, else `$SECUREMAIL_CONFIG`, else the per-user config file.
fn init_path(flag: Option<PathBuf>) -> Result<PathBuf, Error> {
    let env = config::discover::Environment::current();
    flag.or_else(|| env.config.clone().map(PathBuf::from))
        .or_else(|| env.init_path())
        .ok_or_else(|| Error::Usage {
            message: "no home directory to write the configuration to".into(),
            hint: Some("pass --config PATH".into()),
        })
}

/// The value of `--flag` put through `check`, or asked for when stdin is a terminal (a wrong
/// answer is asked again, with the reason); a usage error otherwise.
fn value_or_prompt<T>(
    value: Option<String>,
    flag: &str,
    question: &str,
    check: impl Fn(&str) -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some(v) = value {
        if v.trim().is_empty() {
            return Err(Error::Usage {
                message: format!("{flag} is empty"),
                hint: None,
            });
        }
        return check(&v);
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
    loop {
        say_inline!("{question}: ");
        let mut line = String::new();
        let n = stdin.lock().read_line(&mut line).map_err(Error::Prompt)?;
        if n == 0 {
            say!();
            return Err(Error::Usage {
                message: format!("no answer for {flag} (end of input)"),
                hint: Some(format!("pass {flag}")),
            });
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match check(line) {
            Ok(v) => return Ok(v),
            Err(e) => say!("  {e}; try again"),
        }
    }
}
