//! `securemail man`: manual pages (roff) generated from the clap definitions, so that they never
//! disagree with `--help`, plus what clap does not know: EXIT STATUS (from [`crate::exit`]),
//! FILES, ENVIRONMENT, EXAMPLES and SEE ALSO.
//!
//! `securemail man` prints `securemail(1)`; `--dir DIR` writes it and one page per subcommand
//! (`securemail-send.1`, `securemail-templates-export.1`, ...), the pages the SUBCOMMANDS and
//! SEE ALSO sections refer to.

use std::path::{Path, PathBuf};

use clap::{Args, Command};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use serde::Serialize;

use super::{Cli, Printer};
use crate::config::discover::{CLONE_PATH, CONFIG_ENV, SYSTEM_DATA_DIR, SYSTEM_PATH};
use crate::error::Error;
use crate::exit;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write securemail.1 and one page per subcommand (securemail-send.1, ...) into DIR
    /// instead of printing securemail(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `{"type":"man","path":"…"}`: one page written.
#[derive(Serialize)]
#[serde(tag = "type", rename = "man")]
struct Written<'a> {
    path: &'a Path,
}

impl ManArgs {
    pub fn execute(self, out: Printer) -> Result<(), Error> {
        let pages = pages();
        let Some(dir) = self.dir else {
            let main = render(&pages[0]).map_err(Error::Prompt)?;
            super::output::write_stdout(&main);
            return Ok(());
        };
        let io = |p: &Path, e: std::io::Error| Error::Input {
            message: format!("cannot write {}: {}", p.display(), crate::io_reason(&e)),
            hint: None,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for page in &pages {
            let path = dir.join(format!("{}.1", page_name(page)));
            let text = render(page).map_err(Error::Prompt)?;
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
            out.emit(&Written { path: &path }, || {
                Some(format!("wrote {}", path.display()))
            });
        }
        Ok(())
    }
}

/// The main command and every subcommand, depth first, each built (so that a subcommand's
/// display name is `securemail-send`, as clap_mangen names its page).
fn pages() -> Vec<Command> {
    fn walk(cmd: &Command, into: &mut Vec<Command>) {
        into.push(cmd.clone());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, into);
        }
    }
    let mut root = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    root.build();
    let mut all = Vec::new();
    walk(&root, &mut all);
    all
}

fn page_name(cmd: &Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// One page: clap_mangen's sections, then ours.
fn render(cmd: &Command) -> std::io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone())
        .source(format!("securemail {}", env!("CARGO_PKG_VERSION")))
        .manual("securemail manual");
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    man.render_options_section(&mut w)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut w)?;
    }
    let mut roff = Roff::default();
    exit_status(&mut roff);
    files(&mut roff);
    environment(&mut roff);
    examples(&mut roff, cmd);
    see_also(&mut roff, cmd);
    roff.to_writer(&mut w)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut w)?;
    }
    Ok(w)
}

/// A plain paragraph (`.PP`, so that it does not run on from an item above).
fn para(roff: &mut Roff, text: &str) {
    roff.control("PP", []).text([roman(text)]);
}

/// A `.TP` paragraph: `tag` in bold, then `text`.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []).text([bold(tag)]).text([roman(text)]);
}

/// The sysexits table, from the constants the program exits with.
fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    para(
        roff,
        "securemail follows sysexits.h, as msmtp does, so that scripts can tell \"try again \
         later\" from \"this will never work\":",
    );
    let table: [(u8, &str); 14] = [
        (exit::OK, "Everything worked, or the code was accepted."),
        (
            exit::REFUSED,
            "The code was refused (wrong, expired, used, locked, revoked, never issued), or \
             there was nothing to act on.",
        ),
        (exit::USAGE, "The command line was wrong (EX_USAGE)."),
        (
            exit::DATAERR,
            "Input data was wrong: an address, a name, a list or message file (EX_DATAERR).",
        ),
        (
            exit::NOINPUT,
            "An input file named on the command line cannot be read (EX_NOINPUT).",
        ),
        (
            exit::UNAVAILABLE,
            "The server refused permanently (5xx) or lacks something required, e.g. STARTTLS \
             (EX_UNAVAILABLE).",
        ),
        (
            exit::SOFTWARE,
            "An internal error; please report it (EX_SOFTWARE).",
        ),
        (
            exit::CANTCREAT,
            "A file or database to be written holds something already: init and templates \
             export (pass --force to replace the files), store migrate into a database with \
             records (--force replaces them) (EX_CANTCREAT).",
        ),
        (
            exit::IOERR,
            "Local I/O failed: the store, its key file, the outbox or the log (EX_IOERR).",
        ),
        (
            exit::TEMPFAIL,
            "A temporary failure: connect, timeout, 4xx, busy store; run again later \
             (EX_TEMPFAIL).",
        ),
        (
            exit::PROTOCOL,
            "The server broke the SMTP protocol (EX_PROTOCOL).",
        ),
        (
            exit::NOPERM,
            "TLS or authentication failed: untrusted or mismatched certificate, refused login \
             (EX_NOPERM).",
        ),
        (
            exit::CONFIG,
            "The configuration is wrong or missing, or a template is; the store's key file is \
             missing or not the store's; store migrate: the database belongs to a store with \
             another key (EX_CONFIG).",
        ),
        (
            exit::INTERRUPTED,
            "A batch was stopped with Ctrl-C after finishing the mails in flight; run the same \
             command again to send to the rest.",
        ),
    ];
    for (code, text) in table {
        item(roff, &code.to_string(), text);
    }
    para(
        roff,
        "Writing to a closed pipe (securemail status | head -1) is not an error.",
    );
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    para(
        roff,
        "Without --config or $SECUREMAIL_CONFIG, the configuration is the first of these that \
         exists:",
    );
    item(
        roff,
        &format!("./{CLONE_PATH}"),
        "A clone's own configuration, relative to the working directory.",
    );
    item(
        roff,
        "$XDG_CONFIG_HOME/securemail/account.toml",
        "The per-user configuration (~/.config/securemail/account.toml when XDG_CONFIG_HOME is \
         unset); securemail init writes here by default.",
    );
    item(roff, SYSTEM_PATH, "The system-wide configuration.");
    para(
        roff,
        &format!(
            "Relative paths in a configuration are resolved against its directory. Unless the \
             configuration sets them, the store and outbox are beside it; for the per-user \
             configuration they are in $XDG_DATA_HOME/securemail/ (~/.local/share/securemail/), \
             and for the system-wide one in {SYSTEM_DATA_DIR}/."
        ),
    );
    item(
        roff,
        "securemail.db",
        "The store ([store] path): every code issued, hashed or sealed, with its state and \
         attempts (0600). securemail status reads it.",
    );
    item(
        roff,
        "securemail.key",
        "The store's key file, beside the store (0600). Without it the store cannot be read. \
         Back it up with the store, but not in the same place (anyone with both can read \
         pending TOTP secrets); securemail status shows its id, to compare after a restore.",
    );
    item(
        roff,
        "securemail.lock",
        "Beside the store: one send run at a time.",
    );
    item(
        roff,
        "outbox/",
        "[outbox] dir: mails written as .eml files when there is no [smtp] table or with \
         --dry-run (0700, files 0600).",
    );
    item(
        roff,
        "[log] file",
        "A line per mail sent (time, server, TLS, user, from, to, size, reply, exit code), as \
         msmtp's logfile; off unless set.",
    );
    item(
        roff,
        "securemail-audit.log",
        "[audit] file, by default beside the store: one JSON line per security event (mails \
         sent, skipped or held back, codes checked and what they came to, locks, revokes, \
         replies set aside), never a code, key, secret or password; 0600, only appended to.",
    );
    item(
        roff,
        "[templates] dir",
        "otp.txt, otp.html, key.txt, key.html replacing the built-in templates file by file \
         (securemail templates export DIR writes the built-in ones).",
    );
}

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    item(
        roff,
        CONFIG_ENV,
        "The configuration file, when --config is not given.",
    );
    item(
        roff,
        "XDG_CONFIG_HOME",
        "Base of the per-user configuration (default ~/.config).",
    );
    item(
        roff,
        "XDG_DATA_HOME",
        "Base of the per-user data directory (default ~/.local/share).",
    );
    item(roff, "HOME", "Used when the XDG variables are unset.");
    roff.control("TP", [])
        .text([bold("SECUREMAIL_PASSWORD")])
        .text([
            roman("The SMTP password, or whichever variable "),
            italic("[smtp] password_env"),
            roman(" names. Never on the command line."),
        ]);
}

/// Examples for the page of `cmd` (the main page gets the quick start).
fn examples(roff: &mut Roff, cmd: &Command) {
    let examples: &[(&str, &str)] = match cmd.get_name() {
        "send" => &[
            (
                "securemail send --otp --to 'Kim <kim@example.org>'",
                "Mail Kim a TOTP enrolment (QR code and setup key).",
            ),
            (
                "securemail send --key --to-list staff.csv",
                "Mail everyone in staff.csv (email[,name]) a one-time key; run it again after \
                 an interruption to send to the rest.",
            ),
            (
                "securemail send --otp --to kim@example.org --dry-run",
                "Write the mail to the outbox instead of sending it.",
            ),
        ],
        "reply" => &[
            (
                "securemail reply --to kim@example.org --code 123456",
                "Check a code Kim read out or typed.",
            ),
            (
                "securemail reply --message reply.eml",
                "Check the code in a reply mail.",
            ),
        ],
        "check" => &[(
            "securemail check",
            "Connect, verify TLS and log in, sending nothing; then check the store (reachable, \
             TLS, schema, key id).",
        )],
        "store" | "migrate" => &[(
            "securemail store migrate --to postgres://securemail@db.example.org/securemail \
             --password-env SECUREMAIL_DB_PASSWORD",
            "Copy the SQLite store into PostgreSQL (same key file), verify the counts; then set \
             [store] url in the configuration.",
        )],
        "status" => &[
            ("securemail status", "List every code issued."),
            ("securemail status --json | jq .", "The same as JSON lines."),
        ],
        "revoke" => &[(
            "securemail revoke --to kim@example.org",
            "Invalidate Kim's code.",
        )],
        "init" => &[(
            "securemail init",
            "Write ~/.config/securemail/account.toml, asking on a terminal.",
        )],
        "templates" | "export" => &[(
            "securemail templates export ~/.config/securemail/templates",
            "Write the built-in templates for editing; then set [templates] dir to that \
             directory.",
        )],
        "completions" => &[(
            "securemail completions zsh > ~/.zfunc/_securemail",
            "Install zsh completions.",
        )],
        "man" => &[(
            "securemail man --dir ~/.local/share/man/man1",
            "Install every page, for man securemail-send.",
        )],
        _ => &[
            (
                "securemail init",
                "Write a configuration (on a terminal, answering its questions).",
            ),
            ("securemail check", "Test the connection and login."),
            (
                "securemail send --otp --to kim@example.org",
                "Mail a TOTP enrolment.",
            ),
            (
                "securemail reply --to kim@example.org --code 123456",
                "Verify the code that comes back.",
            ),
        ],
    };
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in examples {
        item(roff, command, what);
    }
}

/// The main page, the page above this one and those below it: pages `man --dir` writes.
fn see_also(roff: &mut Roff, cmd: &Command) {
    let name = page_name(cmd);
    let mut refs: Vec<String> = Vec::new();
    if name != "securemail" {
        refs.push("securemail".into());
        if let Some((parent, _)) = name.rsplit_once('-')
            && parent != "securemail"
        {
            refs.push(parent.to_string());
        }
    }
    refs.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| page_name(s).to_string()),
    );
    if refs.is_empty() {
        return;
    }
    roff.control("SH", ["SEE ALSO"]);
    let text: Vec<String> = refs.iter().map(|r| format!("{r}(1)")).collect();
    roff.text([roman(text.join(", "))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_subcommand_with_its_own_name() {
        let names: Vec<String> = pages().iter().map(|c| page_name(c).to_string()).collect();
        for expected in [
            "securemail",
            "securemail-send",
            "securemail-reply",
            "securemail-templates",
            "securemail-templates-export",
            "securemail-man",
        ] {
            assert!(names.iter().any(|n| n == expected), "{names:?}");
        }
        assert!(!names.iter().any(|n| n.ends_with("-help")), "{names:?}");
    }
}
