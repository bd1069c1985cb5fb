//! `securemail reply`: check the code a recipient sent back — typed in (`--to --code`), in a
//! reply email (`--message FILE`, or `-` from an MDA), or every message of a Maildir.

use clap::Args;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Printer, audited, value_or_prompt};
use crate::audit::{self, Audit, Event, EventType, Reason, ReplyIds};
use crate::config::Settings;
use crate::error::Error;
use crate::exit;
use crate::inbound::{self, InboundError, MAX_MESSAGE_BYTES, Original, Screened, SetAside};
use crate::mail::Recipient;
use crate::store::Store;
use crate::verify::{self, Accepted, Next, Refusal, VerifyError};
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
    // Opened first: a command that cannot keep its audit trail does nothing.
    let mut audit = Audit::open(settings.audit_file.as_deref(), audit::Command::Reply)?;
    let result = check(settings, out, args, &mut audit);
    audited(result, audit)
}

fn check(
    settings: &Settings,
    out: Printer,
    args: ReplyArgs,
    audit: &mut Audit,
) -> Result<(), Error> {
    if let Some(dir) = args.maildir {
        return maildir(settings, out, &dir, audit);
    }
    if let Some(file) = args.message {
        let raw = read_message(&file, Place::Named)?;
        let original = original(settings);
        let mut store = Store::open_existing(settings)?;
        let seen = Seen {
            audit,
            ids: ReplyIds::read(&raw),
            file: None,
            received: None,
        };
        let outcome = from_message(store.as_mut(), settings, &original, &raw, seen);
        return finish(out, None, outcome);
    }
    let to = value_or_prompt(args.to, "--to", "Recipient address", |s| {
        Ok(Recipient::parse(s, None)?)
    })?;
    let code = value_or_prompt(args.code, "--code", "Code", |s| Ok(s.to_string()))?;
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
    let mut seen = Seen {
        audit,
        ids: ReplyIds::default(),
        file: None,
        received: None,
    };
    // No store: no code was ever issued, and none is created.
    let Some(mut store) = Store::open_existing(settings)? else {
        let none = Refusal::NoCode {
            recipient: to.address,
        };
        seen.refused(&none, None, None);
        return finish(out, None, Err(Error::Refused(none)));
    };
    let now = unix_now();
    let (record, verdict) =
        verify::verify_record(&mut store, settings, &to.address, code, now, now);
    seen.verdict(record, &verdict);
    finish(
        out,
        None,
        verdict.map(Checked::Accepted).map_err(Error::from),
    )
}

/// A `check` event about `recipient`'s code.
fn check_event(outcome: audit::Outcome, recipient: &str) -> Event {
    Event::new(EventType::Check, outcome).recipient(recipient)
}

/// Where a code came from, for the audit log: a reply mail's ids and Maildir file, if any.
struct Seen<'a> {
    audit: &'a mut Audit,
    ids: ReplyIds,
    file: Option<&'a str>,
    /// When the reply was delivered (a Maildir file's time), if known: its TOTP code is judged
    /// at that time (see [`verify::verify_record`]).
    received: Option<i64>,
}

impl Seen<'_> {
    fn record(&mut self, event: Event) {
        let event = event.reply(&self.ids).file(self.file);
        self.audit.record(&event);
    }

    /// What checking a code came to (nothing for a store that could not be read).
    fn verdict(
        &mut self,
        checked: Option<(i64, CodeKind)>,
        verdict: &Result<Accepted, VerifyError>,
    ) {
        let (record, kind) = (checked.map(|c| c.0), checked.map(|c| c.1));
        match verdict {
            Ok(a) => {
                let e = check_event(audit::Outcome::Accepted, &a.recipient)
                    .kind(a.kind)
                    .record(record);
                self.record(e);
            }
            Err(VerifyError::Refused(r)) => self.refused(r, record, kind),
            Err(_) => {}
        }
    }

    /// A refused (or deferred) code, and the lock it caused.
    fn refused(&mut self, r: &Refusal, record: Option<i64>, kind: Option<CodeKind>) {
        let (reason, counted) = match r {
            Refusal::NoCode { .. } => (Reason::NoCode, false),
            Refusal::Wrong { .. } | Refusal::NowLocked { .. } => (Reason::Wrong, true),
            Refusal::Replayed { .. } => (Reason::Replayed, true),
            Refusal::Used { .. } => (Reason::Used, false),
            Refusal::Expired { .. } => (Reason::Expired, false),
            Refusal::Locked { .. } => (Reason::Locked, false),
            Refusal::Revoked { .. } => (Reason::Revoked, false),
            Refusal::AnswersOlderMail { .. } => (Reason::OlderMail, false),
            Refusal::Mistyped { .. } => (Reason::Mistyped, false),
            Refusal::Throttled { .. } => (Reason::Throttled, false),
            Refusal::OverBudget { .. } => (Reason::OverBudget, false),
        };
        let outcome = if r.retry_at().is_some() {
            audit::Outcome::Deferred
        } else {
            audit::Outcome::Refused
        };
        let mut e = check_event(outcome, r.recipient())
            .reason(reason)
            .record(record)
            .counted(counted);
        if let Some(kind) = kind {
            e = e.kind(kind);
        }
        let retry = match r {
            Refusal::Wrong {
                next: Next::Wait(t),
                ..
            }
            | Refusal::Replayed {
                next: Next::Wait(t),
                ..
            } => Some(*t),
            _ => r.retry_at(),
        };
        if let Some(t) = retry {
            e = e.retry_at(t);
        }
        self.record(e);
        if let Refusal::NowLocked { recipient, max } = r {
            let mut lock = Event::new(EventType::Lock, audit::Outcome::Locked)
                .reason(Reason::TooManyWrongCodes)
                .recipient(recipient)
                .record(record)
                .attempts(*max);
            if let Some(kind) = kind {
                lock = lock.kind(kind);
            }
            self.record(lock);
        }
    }
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
    let sources = crate::mail::template::texts(settings.templates_dir.as_deref());
    Original::from_templates(sources.iter().map(String::as_str))
}

/// Reads a message file (or stdin for `-`), refusing anything larger than the limit.
/// Where a message file was found.
#[derive(Clone, Copy)]
enum Place {
    /// `--message FILE` (or `-`).
    Named,
    /// In a Maildir's new/.
    Maildir,
}

fn read_message(file: &Path, from: Place) -> Result<Vec<u8>, Error> {
    let mut raw = Vec::new();
    let limit = MAX_MESSAGE_BYTES as u64 + 1;
    let read = match from {
        Place::Named if file == Path::new("-") => {
            std::io::stdin().lock().take(limit).read_to_end(&mut raw)
        }
        // Named on the command line: a pipe (`<(…)`) is fine.
        Place::Named => fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut raw)),
        // In a Maildir: a regular file, never through a link, and a pipe swapped in after the
        // listing is refused rather than waited on (with the Maildir locked).
        Place::Maildir => {
            crate::files::open_read(file).and_then(|f| f.take(limit).read_to_end(&mut raw))
        }
    };
    read.map_err(|e| Error::NoInput {
        message: format!(
            "cannot read the message {}: {}",
            file.display(),
            crate::io_reason(&e)
        ),
    })?;
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(Error::Input {
            message: InboundError::TooLarge.to_string(),
            hint: Some("a reply with a code is a few kilobytes; this is not one".into()),
        });
    }
    Ok(raw)
}

/// Verifies the code in a reply email, recording what it came to in the audit log. `store` is
/// `None` when no store exists yet.
fn from_message(
    store: Option<&mut Store>,
    settings: &Settings,
    original: &Original,
    raw: &[u8],
    mut seen: Seen<'_>,
) -> Result<Checked, Error> {
    let reply = match screen(settings, original, raw, &mut seen)? {
        Screened::Reply(r) => r,
        Screened::SetAside(s) => return Ok(Checked::SetAside(s)),
    };
    let current = match store {
        None => None,
        Some(ref s) => s.current(&reply.from)?,
    };
    let (Some(store), Some(current)) = (store, current) else {
        let none = Refusal::NoCode {
            recipient: reply.from,
        };
        seen.refused(&none, None, None);
        return Err(Error::Refused(none));
    };
    let (record, kind) = (Some(current.id), Some(current.kind));
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
        let older = Refusal::AnswersOlderMail {
            recipient: reply.from,
        };
        seen.refused(&older, record, kind);
        return Err(Error::Refused(older));
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
    let not_tried = |seen: &mut Seen<'_>, reason: Reason| {
        let e = check_event(audit::Outcome::Refused, &from)
            .reason(reason)
            .kind(current.kind)
            .record(record)
            .counted(false);
        seen.record(e);
    };
    match codes.as_slice() {
        [] if mistyped > 0 => {
            not_tried(&mut seen, Reason::Mistyped);
            Ok(Checked::Mistyped { from })
        }
        [] => {
            not_tried(&mut seen, Reason::NoCodeInReply);
            Ok(Checked::NoCode { from })
        }
        [code] => {
            let now = unix_now();
            let typed_at = seen.received.unwrap_or(now);
            let (checked, verdict) =
                verify::verify_record(store, settings, &from, code, now, typed_at);
            seen.verdict(checked, &verdict);
            verdict.map(Checked::Accepted).map_err(Error::from)
        }
        several => {
            not_tried(&mut seen, Reason::Ambiguous);
            Ok(Checked::Ambiguous {
                from,
                count: several.len(),
            })
        }
    }
}

/// Screens a reply mail (see [`inbound::screen`]), recording one that is not a mail or is set
/// aside.
fn screen(
    settings: &Settings,
    original: &Original,
    raw: &[u8],
    seen: &mut Seen<'_>,
) -> Result<Screened, Error> {
    let screened = match inbound::screen(raw, &settings.reply, original) {
        Ok(s) => s,
        Err(e) => {
            let message = e.to_string();
            seen.record(
                Event::new(EventType::Malformed, audit::Outcome::Malformed).detail(&message),
            );
            return Err(Error::Input {
                message,
                hint: Some(
                    "pass the reply as a complete message (headers and body), e.g. an .eml file"
                        .into(),
                ),
            });
        }
    };
    if let Screened::SetAside(s) = &screened {
        let reason = match s {
            SetAside::Automatic { .. } => Reason::Automatic,
            SetAside::Unauthenticated { .. } => Reason::Unauthenticated,
        };
        seen.record(
            Event::new(EventType::SetAside, audit::Outcome::SetAside)
                .reason(reason)
                .detail(s.why()),
        );
    }
    Ok(screened)
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
    /// `accepted`, `refused`, `no_code`, `mistyped`, `ambiguous`, `set_aside`, `malformed` or
    /// (`--maildir`, left in new/ until a throttle or budget allows) `deferred`.
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
    /// For `deferred`: when it will be looked at again (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
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

/// Prints what one reply came to and returns the command's result for it.
///
/// Long on purpose: one arm per outcome, each pairing its JSON line with the error people read,
/// side by side so that the two stay in step.
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
///
/// Long on purpose: the order of the steps for each message (read, decide, commit, then move)
/// is what makes the Maildir lossless, and it reads best in one place.
fn maildir(settings: &Settings, out: Printer, dir: &Path, audit: &mut Audit) -> Result<(), Error> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let _lock = lock_maildir(dir)?;
    let mut names: Vec<String> = Vec::new();
    for entry in fs::read_dir(&new).map_err(|e| maildir_error(&new, e))? {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            // A directory, pipe, socket or link was not delivered by a mail system; it stays,
            // and is said rather than skipped in silence (reading a pipe would hang the run).
            if !entry.file_name().to_string_lossy().starts_with('.') {
                say!(
                    "securemail: warning: {} left in new/: not a regular file (a mail system \
                     delivers files); move it away",
                    crate::printable(&entry.path().display().to_string())
                );
            }
            continue;
        }
        match entry.file_name().into_string() {
            Ok(n) if n.starts_with('.') => {}
            // Maildir names are printable ASCII; control characters would reach the terminal.
            Ok(n) if n.chars().any(char::is_control) => say!(
                "securemail: warning: {:?} left in new/: its name has control characters \
                 (Maildir names are printable); rename it to have it read",
                new.join(&n)
            ),
            Ok(n) => names.push(n),
            // Maildir names are ASCII; such a file was not put there by a mail system. Said,
            // not skipped in silence: it stays in new/.
            Err(raw) => say!(
                "securemail: warning: {} left in new/: its name is not UTF-8 (Maildir names \
                 are ASCII); rename it to have it read",
                new.join(&raw).display()
            ),
        }
    }
    names.sort();
    crate::files::create_private_dirs(&cur).map_err(|e| maildir_error(&cur, e))?;
    let original = original(settings);
    let mut store = Store::open_existing(settings)?;
    let mut n = Tally::default();
    for name in names {
        let path = new.join(&name);
        if fs::symlink_metadata(&path).is_err() {
            continue; // a mail client took it meanwhile
        }
        // A message that cannot be read is set aside as malformed, like one that cannot be parsed.
        let read = read_message(&path, Place::Maildir).map_err(|e| match e {
            Error::NoInput { message } => Error::Input {
                message,
                hint: None,
            },
            other => other,
        });
        let outcome = match read {
            Ok(raw) => {
                let seen = Seen {
                    ids: ReplyIds::read(&raw),
                    audit: &mut *audit,
                    file: Some(&name),
                    received: delivered_at(&path),
                };
                from_message(store.as_mut(), settings, &original, &raw, seen)
            }
            Err(e) => {
                let event = Event::new(EventType::Malformed, audit::Outcome::Malformed)
                    .file(Some(&name))
                    .detail(&e.to_string());
                audit.record(&event);
                Err(e)
            }
        };
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
                let v = ReplyLine {
                    file: Some(&name),
                    recipient: Some(r.recipient().to_string()),
                    outcome: "deferred",
                    reason: Some(r.reason().to_string()),
                    retry_at: r.retry_at().map(crate::rfc3339),
                    ..ReplyLine::default()
                };
                out.emit(&v, || Some(format!("{name}: left in new/ for later: {r}")));
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

/// When a Maildir message was delivered: its file's modification time, which the delivery
/// agent sets and a sender cannot choose (the `Date:` header is the sender's word).
fn delivered_at(path: &Path) -> Option<i64> {
    let modified = fs::symlink_metadata(path).ok()?.modified().ok()?;
    let secs = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    i64::try_from(secs).ok()
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
            say!(
                "securemail: waiting for another securemail reply to finish with {}",
                dir.display()
            );
            file.lock().map_err(|e| maildir_error(&path, e))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(maildir_error(&path, e)),
    }
    Ok(file)
}

/// Moves a message from `new/` into `folder` (made 0700 if needed: replies are private mail)
/// under its base name.
fn move_aside(path: &Path, folder: &Path, name: &str) -> PathBuf {
    let base = name.split(":2,").next().unwrap_or(name);
    let target = folder.join(base);
    if crate::files::create_private_dirs(folder).is_ok() && fs::rename(path, &target).is_ok() {
        target
    } else {
        path.to_path_buf()
    }
}
