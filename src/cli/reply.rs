//! `securemail reply`: check the code a recipient sent back — typed in (`--to --code`), in a
//! reply email (`--message FILE`, or `-` from an MDA), or every message of a Maildir.

use clap::Args;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Printer, value_or_prompt};
use crate::config::Settings;
use crate::error::Error;
use crate::inbound::{self, InboundError, MAX_MESSAGE_BYTES};
use crate::mail::Recipient;
use crate::store::Store;
use crate::verify::{self, Accepted, Refusal, VerifyError};
use crate::{CodeKind, unix_now};

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
    /// Verify every message in DIR/new of a Maildir, moving each to DIR/cur once its verdict is recorded.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
}

impl ReplyArgs {
    pub fn execute(self, settings: &Settings, out: Printer) -> Result<(), Error> {
        run(settings, out, self)
    }
}

pub(super) fn run(settings: &Settings, out: Printer, args: ReplyArgs) -> Result<(), Error> {
    if let Some(dir) = args.maildir {
        return maildir(settings, out, &dir);
    }
    if let Some(file) = args.message {
        let raw = read_message(&file)?;
        let mut store = Store::open_existing(&settings.store_path, settings.store_lock_timeout)?;
        let outcome = from_message(store.as_mut(), settings, &raw);
        return finish(out, None, outcome);
    }
    let to = value_or_prompt(args.to, "--to", "Recipient address")?;
    let to = Recipient::parse(&to, None)?;
    let code = value_or_prompt(args.code, "--code", "Code")?;
    if code.chars().count() > 256 || code.chars().any(char::is_control) {
        return Err(Error::Input {
            message: "the code is not a one-time code (too long or has control characters)".into(),
            hint: Some(
                "pass the digits from the authenticator app, or the key from the mail".into(),
            ),
        });
    }
    // No store: no code was ever issued, and none is created.
    let Some(mut store) = Store::open_existing(&settings.store_path, settings.store_lock_timeout)?
    else {
        let none = Refusal::NoCode {
            recipient: to.address,
        };
        return finish(out, None, Err(Error::Refused(none)));
    };
    let outcome = verify::verify(&mut store, settings, &to.address, &code, unix_now())
        .map(Checked::Accepted)
        .map_err(Error::from);
    finish(out, None, outcome)
}

/// What checking one reply came to.
enum Checked {
    Accepted(Accepted),
    /// A readable reply in which no code was found.
    NoCode {
        from: String,
    },
}

/// Reads a message file (or stdin for `-`), refusing anything larger than the limit.
fn read_message(file: &Path) -> Result<Vec<u8>, Error> {
    let mut raw = Vec::new();
    let limit = MAX_MESSAGE_BYTES as u64 + 1;
    let read = if file == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut raw)
    } else {
        fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut raw))
    };
    read.map_err(|e| Error::Input {
        message: format!(
            "cannot read the message {}: {}",
            file.display(),
            crate::io_reason(&e)
        ),
        hint: None,
    })?;
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(Error::Input {
            message: InboundError::TooLarge.to_string(),
            hint: Some("a reply with a code is a few kilobytes; this is not one".into()),
        });
    }
    Ok(raw)
}

/// Verifies the code in a reply email. `store` is `None` when no store exists yet.
fn from_message(
    store: Option<&mut Store>,
    settings: &Settings,
    raw: &[u8],
) -> Result<Checked, Error> {
    let reply = inbound::parse(raw).map_err(|e| Error::Input {
        message: e.to_string(),
        hint: Some(
            "pass the reply as a complete message (headers and body), e.g. an .eml file".into(),
        ),
    })?;
    let Some(store) = store else {
        return Err(Error::Refused(Refusal::NoCode {
            recipient: reply.from,
        }));
    };
    let Some(current) = store.current(&reply.from)? else {
        return Err(Error::Refused(Refusal::NoCode {
            recipient: reply.from,
        }));
    };
    // A reply to one of our older mails carries that mail's code, which can no longer work.
    if !reply.answers.is_empty()
        && current
            .message_id
            .as_ref()
            .is_none_or(|id| !reply.answers.contains(id))
        && store.records(Some(&reply.from))?.iter().any(|r| {
            r.message_id
                .as_ref()
                .is_some_and(|id| reply.answers.contains(id))
        })
    {
        return Err(Error::Refused(Refusal::AnswersOlderMail {
            recipient: reply.from,
        }));
    }
    let code = match current.kind {
        CodeKind::Otp => {
            let digits = current.otp.map_or(settings.otp.params.digits, |p| p.digits);
            inbound::find_numeric_code(&reply.fresh_text, usize::from(digits))
        }
        CodeKind::Key => inbound::find_key(&reply.fresh_text, settings.key.length),
    };
    let Some(code) = code else {
        return Ok(Checked::NoCode { from: reply.from });
    };
    verify::verify(store, settings, &reply.from, &code, unix_now())
        .map(Checked::Accepted)
        .map_err(|e: VerifyError| e.into())
}

fn accepted_text(a: &Accepted) -> &'static str {
    match (a.kind, a.first) {
        (CodeKind::Otp, true) => "TOTP enrolment confirmed",
        (CodeKind::Otp, false) => "TOTP code accepted",
        (CodeKind::Key, _) => "key accepted (now used up)",
    }
}

/// Prints the outcome of one check and turns it into the command's result.
fn finish(out: Printer, file: Option<&str>, outcome: Result<Checked, Error>) -> Result<(), Error> {
    let mut v = json!({});
    if let Some(f) = file {
        v["file"] = json!(f);
    }
    match outcome {
        Ok(Checked::Accepted(a)) => {
            let prefix = file.map(|f| format!("{f}: ")).unwrap_or_default();
            out.human(&format!(
                "{prefix}accepted: {} — {}",
                a.recipient,
                accepted_text(&a)
            ));
            v["recipient"] = json!(a.recipient);
            v["kind"] = json!(a.kind.as_str());
            v["result"] = json!("accepted");
            v["confirmed_enrolment"] = json!(a.kind == CodeKind::Otp && a.first);
            out.json(&v);
            Ok(())
        }
        Ok(Checked::NoCode { from }) => {
            v["recipient"] = json!(from);
            v["result"] = json!("no-code");
            out.json(&v);
            Err(Error::Input {
                message: format!("no code found in the reply from {from} (above the quoted text)"),
                hint: Some("the reply must contain the code the app shows, or the key, above the quoted original".into()),
            })
        }
        Err(Error::Refused(r)) => {
            v["recipient"] = json!(r.recipient());
            v["result"] = json!("refused");
            v["reason"] = json!(r.reason());
            out.json(&v);
            Err(Error::Refused(r))
        }
        Err(e) => Err(e),
    }
}

/// Processes every message in `dir/new` once. A message leaves `new/` only once its verdict is
/// committed: then it moves to `dir/cur` (flag `S`), or to `dir/malformed` if it is not a mail.
/// A failure that is not a verdict (a busy store: exit 75) ends the run and leaves the message
/// for the next one. One run at a time per Maildir (see [`lock_maildir`]), so that no message
/// is checked twice.
fn maildir(settings: &Settings, out: Printer, dir: &Path) -> Result<(), Error> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let malformed = dir.join("malformed");
    let _lock = lock_maildir(dir)?;
    let mut names: Vec<String> = fs::read_dir(&new)
        .map_err(|e| maildir_error(&new, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    fs::create_dir_all(&cur).map_err(|e| maildir_error(&cur, e))?;
    let mut store = Store::open_existing(&settings.store_path, settings.store_lock_timeout)?;
    let (mut ok, mut refused_n, mut bad) = (0, 0, 0);
    for name in names {
        let base = name.split(":2,").next().unwrap_or(&name).to_string();
        let path = new.join(&name);
        if fs::symlink_metadata(&path).is_err() {
            continue; // a mail client took it meanwhile
        }
        let outcome =
            read_message(&path).and_then(|raw| from_message(store.as_mut(), settings, &raw));
        let unreadable = matches!(&outcome, Err(Error::Input { .. }))
            && !matches!(&outcome, Err(Error::Input { message, .. }) if message.starts_with("no code found"));
        if unreadable {
            bad += 1;
            let aside = move_aside(&path, &malformed, &base);
            if let Err(Error::Input { message, .. }) = &outcome {
                out.human(&format!(
                    "{name}: malformed: {message} (moved to {})",
                    aside.display()
                ));
                out.json(&json!({ "file": name, "result": "malformed", "error": message }));
            }
            continue;
        }
        // Accepted, refused, no code: a verdict, committed. Anything else stays in new/.
        let outcome = match outcome {
            Err(e) if !matches!(e, Error::Refused(_) | Error::Input { .. }) => return Err(e),
            o => o,
        };
        let done = cur.join(format!("{base}:2,S"));
        fs::rename(&path, &done).map_err(|e| maildir_error(&path, e))?;
        match finish(out, Some(&name), outcome) {
            Ok(()) => ok += 1,
            Err(Error::Refused(r)) => {
                refused_n += 1;
                out.human(&format!("{name}: refused: {r}"));
            }
            Err(Error::Input { message, .. }) => {
                refused_n += 1;
                out.human(&format!("{name}: {message}"));
            }
            Err(e) => return Err(e),
        }
    }
    out.json(&json!({ "summary": { "accepted": ok, "refused": refused_n, "malformed": bad } }));
    out.human(&format!(
        "{ok} accepted, {refused_n} refused, {bad} malformed"
    ));
    Ok(())
}

fn maildir_error(path: &Path, e: std::io::Error) -> Error {
    Error::Input {
        message: format!(
            "cannot use the Maildir {}: {}",
            path.display(),
            crate::io_reason(&e)
        ),
        hint: Some("--maildir takes a directory holding new/ and cur/".into()),
    }
}

/// An exclusive lock on the Maildir for the whole run (`DIR/.securemail-reply.lock`): a second
/// `reply --maildir` on it waits, so that no message is checked twice although each stays in
/// `new/` until its verdict is committed.
fn lock_maildir(dir: &Path) -> Result<fs::File, Error> {
    let path = dir.join(".securemail-reply.lock");
    let file = crate::files::open(&path, fs::OpenOptions::new().write(true), true)
        .map_err(|e| maildir_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            eprintln!(
                "securemail: waiting for another securemail reply to finish with {}",
                dir.display()
            );
            file.lock().map_err(|e| maildir_error(&path, e))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(maildir_error(&path, e)),
    }
    Ok(file)
}

fn move_aside(path: &Path, malformed: &Path, base: &str) -> PathBuf {
    let target = malformed.join(base);
    if fs::create_dir_all(malformed).is_ok() && fs::rename(path, &target).is_ok() {
        target
    } else {
        path.to_path_buf()
    }
}
