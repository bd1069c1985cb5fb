//! `securemail reply`: check the code a recipient sent back — typed in (`--to --code`), in a
//! reply email (`--message FILE`, or `-` from an MDA), or every message of a Maildir.

use clap::Args;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Printer, value_or_prompt};
use crate::config::Settings;
use crate::error::Error;
use crate::exit;
use crate::inbound::{self, InboundError, MAX_MESSAGE_BYTES, Original, Screened, SetAside};
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
        let original = original(settings);
        let mut store = Store::open_existing(settings)?;
        let outcome = from_message(store.as_mut(), settings, &original, &raw);
        return finish(out, None, outcome);
    }
    let to = value_or_prompt(args.to, "--to", "Recipient address")?;
    let to = Recipient::parse(&to, None)?;
    let code = value_or_prompt(args.code, "--code", "Code")?;
    // What a paste brings along (a trailing newline, spaces) is not part of the code.
    let code = code.trim();
    if code.chars().count() > 256 || code.chars().any(char::is_control) {
        return Err(Error::Input {
            message: "the code is not a one-time code (too long or has control characters)".into(),
            hint: Some(
                "pass the digits from the authenticator app, or the key from the mail".into(),
            ),
        });
    }
    // No store: no code was ever issued, and none is created.
    let Some(mut store) = Store::open_existing(settings)? else {
        let none = Refusal::NoCode {
            recipient: to.address,
        };
        return finish(out, None, Err(Error::Refused(none)));
    };
    let outcome = verify::verify(&mut store, settings, &to.address, code, unix_now())
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
    /// Only key-shaped words whose check symbol is wrong: typos, never tried.
    Mistyped {
        from: String,
    },
    /// Several different codes: none is tried.
    Ambiguous {
        from: String,
        count: usize,
    },
    /// An automatic or unauthenticated mail: not read for a code.
    SetAside(SetAside),
}

/// What our mails say, from the configured templates, to recognise them in replies. A template
/// that cannot be read only means less to recognise by (sending reports it).
fn original(settings: &Settings) -> Original {
    let sources: Vec<String> = ["key.txt", "key.html", "otp.txt", "otp.html"]
        .iter()
        .filter_map(|f| fs::read_to_string(settings.templates_dir.join(f)).ok())
        .collect();
    Original::from_templates(sources.iter().map(String::as_str))
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
    original: &Original,
    raw: &[u8],
) -> Result<Checked, Error> {
    let screened = inbound::screen(raw, &settings.reply, original).map_err(|e| Error::Input {
        message: e.to_string(),
        hint: Some(
            "pass the reply as a complete message (headers and body), e.g. an .eml file".into(),
        ),
    })?;
    let reply = match screened {
        Screened::Reply(r) => r,
        Screened::SetAside(s) => return Ok(Checked::SetAside(s)),
    };
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
    let (codes, mistyped) = match current.kind {
        CodeKind::Otp => {
            let digits = current.otp.map_or(settings.otp.params.digits, |p| p.digits);
            (
                inbound::numeric_codes(&reply.fresh_text, usize::from(digits)),
                0,
            )
        }
        CodeKind::Key => {
            let found = inbound::keys(&reply.fresh_text, settings.key.length);
            (found.keys, found.mistyped)
        }
    };
    let from = reply.from;
    match codes.as_slice() {
        [] if mistyped > 0 => Ok(Checked::Mistyped { from }),
        [] => Ok(Checked::NoCode { from }),
        [code] => verify::verify(store, settings, &from, code, unix_now())
            .map(Checked::Accepted)
            .map_err(|e: VerifyError| e.into()),
        several => Ok(Checked::Ambiguous {
            from,
            count: several.len(),
        }),
    }
}

fn accepted_text(a: &Accepted) -> &'static str {
    match (a.kind, a.first) {
        (CodeKind::Otp, true) => "TOTP enrolment confirmed",
        (CodeKind::Otp, false) => "TOTP code accepted",
        (CodeKind::Key, _) => "key accepted (now used up)",
    }
}

/// Prints the outcome of one check and turns it into the command's result.
/// `{"type":"reply",…}`: what one reply came to.
#[derive(Serialize, Default)]
#[serde(tag = "type", rename = "reply")]
struct ReplyLine<'a> {
    /// The Maildir message, with `--maildir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    /// `accepted`, `refused`, `no_code`, `mistyped`, `ambiguous`, `set_aside` or `malformed`.
    outcome: &'static str,
    /// For `accepted`: whether this first code confirmed a TOTP enrolment.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_enrolment: Option<bool>,
    /// Why it was refused, set aside or unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// For `set_aside`: the Maildir folder it belongs in (`auto` or `unauthenticated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: Option<&'static str>,
}

/// `{"type":"summary","command":"reply",…}`: the counts of a Maildir run.
#[derive(Serialize)]
#[serde(tag = "type", rename = "summary")]
struct SummaryLine {
    command: &'static str,
    accepted: usize,
    refused: usize,
    malformed: usize,
    auto: usize,
    unauthenticated: usize,
    /// Left in `new/` for a later run (throttled, over a budget).
    deferred: usize,
}

fn finish(out: Printer, file: Option<&str>, outcome: Result<Checked, Error>) -> Result<(), Error> {
    let line = |outcome: &'static str| ReplyLine {
        file,
        outcome,
        ..ReplyLine::default()
    };
    match outcome {
        Ok(Checked::Accepted(a)) => {
            let prefix = file.map(|f| format!("{f}: ")).unwrap_or_default();
            let v = ReplyLine {
                recipient: Some(a.recipient.clone()),
                kind: Some(a.kind.as_str()),
                confirmed_enrolment: Some(a.kind == CodeKind::Otp && a.first),
                ..line("accepted")
            };
            out.emit(&v, || {
                Some(format!(
                    "{prefix}accepted: {} — {}",
                    a.recipient,
                    accepted_text(&a)
                ))
            });
            Ok(())
        }
        Ok(Checked::NoCode { from }) => {
            out.emit(
                &ReplyLine {
                    recipient: Some(from.clone()),
                    ..line("no_code")
                },
                || None,
            );
            Err(Error::Input {
                message: format!("no code found in the reply from {from} (above the quoted text)"),
                hint: Some("the reply must contain the code the app shows, or the key, above the quoted original".into()),
            })
        }
        Ok(Checked::Mistyped { from }) => {
            out.emit(
                &ReplyLine {
                    recipient: Some(from.clone()),
                    ..line("mistyped")
                },
                || None,
            );
            Err(Error::Input {
                message: format!(
                    "the key in the reply from {from} is mistyped (its check symbol does not match); no attempt was counted"
                ),
                hint: Some("ask them to copy the key from the mail again".into()),
            })
        }
        Ok(Checked::Ambiguous { from, count }) => {
            out.emit(
                &ReplyLine {
                    recipient: Some(from.clone()),
                    ..line("ambiguous")
                },
                || None,
            );
            Err(Error::Input {
                message: format!(
                    "the reply from {from} holds {count} different codes; none was tried (no attempt was counted)"
                ),
                hint: Some("ask them to reply with only the current code".into()),
            })
        }
        Ok(Checked::SetAside(s)) => {
            let v = ReplyLine {
                folder: Some(s.folder()),
                reason: Some(s.why().to_string()),
                ..line("set_aside")
            };
            out.emit(&v, || None);
            let hint = match s {
                SetAside::Automatic { .. } => {
                    "auto-replies and bounces are never checked; wait for the person's own reply"
                }
                SetAside::Unauthenticated { .. } => {
                    "only a mail with one From mailbox (and, with [reply] require_authenticated, passing DMARC or aligned DKIM) is checked"
                }
            };
            Err(Error::Input {
                message: format!(
                    "set aside, not checked (no attempt was counted): {}",
                    s.why()
                ),
                hint: Some(hint.into()),
            })
        }
        Err(Error::Refused(r)) => {
            let v = ReplyLine {
                recipient: Some(r.recipient().to_string()),
                reason: Some(r.reason().to_string()),
                ..line("refused")
            };
            out.emit(&v, || None);
            Err(Error::Refused(r))
        }
        Err(e) => Err(e),
    }
}

/// Processes every message in `dir/new` once. A message leaves `new/` only once its verdict is
/// committed: then it moves to `dir/cur` (flag `S`); one that is not a mail goes to
/// `dir/malformed`, auto-replies and bounces to `dir/auto`, mails whose sender cannot be told
/// (several From, failed authentication) to `dir/unauthenticated`. A refusal that says "later"
/// (exit 75: throttled, over a budget) leaves the message in `new/` for the next run; any other
/// failure that is not a verdict (a busy store) ends the run, leaving the rest there too. One
/// run at a time per Maildir (see [`lock_maildir`]), so that no message is checked twice.
fn maildir(settings: &Settings, out: Printer, dir: &Path) -> Result<(), Error> {
    let new = dir.join("new");
    let cur = dir.join("cur");
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
    let original = original(settings);
    let mut store = Store::open_existing(settings)?;
    let mut n = Tally::default();
    for name in names {
        let path = new.join(&name);
        if fs::symlink_metadata(&path).is_err() {
            continue; // a mail client took it meanwhile
        }
        let outcome = read_message(&path)
            .and_then(|raw| from_message(store.as_mut(), settings, &original, &raw));
        match outcome {
            // Reading and parsing are the only steps that fail with `Input`.
            Err(Error::Input { message, .. }) => {
                n.malformed += 1;
                let aside = move_aside(&path, &dir.join("malformed"), &name);
                let v = ReplyLine {
                    file: Some(&name),
                    outcome: "malformed",
                    reason: Some(message.clone()),
                    ..ReplyLine::default()
                };
                out.emit(&v, || {
                    Some(format!(
                        "{name}: malformed: {message} (moved to {})",
                        aside.display()
                    ))
                });
            }
            Ok(Checked::SetAside(s)) => {
                set_aside(out, &mut n, &name, &path, &dir.join(s.folder()), &s)
            }
            Err(Error::Refused(r)) if r.exit_code() == exit::TEMPFAIL => {
                n.deferred += 1;
                out.human(&format!("{name}: left in new/ for later: {r}"));
            }
            Err(e) if !matches!(e, Error::Refused(_)) => return Err(e),
            // Accepted, refused, no code: a verdict, committed.
            outcome => {
                let base = name.split(":2,").next().unwrap_or(&name);
                let done = cur.join(format!("{base}:2,S"));
                fs::rename(&path, &done).map_err(|e| maildir_error(&path, e))?;
                match finish(out, Some(&name), outcome) {
                    Ok(()) => n.accepted += 1,
                    Err(Error::Refused(r)) => {
                        n.refused += 1;
                        out.human(&format!("{name}: refused: {r}"));
                    }
                    Err(Error::Input { message, .. }) => {
                        n.refused += 1;
                        out.human(&format!("{name}: {message}"));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let summary = SummaryLine {
        command: "reply",
        accepted: n.accepted,
        refused: n.refused,
        malformed: n.malformed,
        auto: n.automatic,
        unauthenticated: n.unauthenticated,
        deferred: n.deferred,
    };
    out.emit(&summary, || {
        let later = match n.deferred {
            0 => String::new(),
            d => format!(", {d} left in new/ for later"),
        };
        Some(format!(
            "{} accepted, {} refused, {} malformed, {} set aside as automatic, {} set aside as unauthenticated{later}",
            n.accepted, n.refused, n.malformed, n.automatic, n.unauthenticated
        ))
    });
    Ok(())
}

/// Moves a set-aside message out of new/ into its folder, and reports it.
fn set_aside(out: Printer, n: &mut Tally, name: &str, path: &Path, folder: &Path, s: &SetAside) {
    if matches!(s, SetAside::Automatic { .. }) {
        n.automatic += 1;
    } else {
        n.unauthenticated += 1;
    }
    let aside = move_aside(path, folder, name);
    let v = ReplyLine {
        file: Some(name),
        outcome: "set_aside",
        folder: Some(s.folder()),
        reason: Some(s.why().to_string()),
        ..ReplyLine::default()
    };
    out.emit(&v, || {
        Some(format!(
            "{name}: set aside: {} (moved to {})",
            s.why(),
            aside.display()
        ))
    });
}

/// What a Maildir run did with its messages.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    malformed: usize,
    automatic: usize,
    unauthenticated: usize,
    deferred: usize,
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

/// Moves a message from `new/` into `folder` (made if needed) under its base name.
fn move_aside(path: &Path, folder: &Path, name: &str) -> PathBuf {
    let base = name.split(":2,").next().unwrap_or(name);
    let target = folder.join(base);
    if fs::create_dir_all(folder).is_ok() && fs::rename(path, &target).is_ok() {
        target
    } else {
        path.to_path_buf()
    }
}
