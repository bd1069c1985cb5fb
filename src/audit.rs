//! The audit log: one JSON line per security event — every mail sent, skipped or held back,
//! every code checked and what it came to, every lock, revoke and reply set aside — for the
//! person who must later answer "who tried which codes for Alice, and when?" (OWASP ASVS V7).
//!
//! Secrets cannot get in by construction: an [`Event`] is a typed struct whose outcomes and
//! reasons are enums, and whose only free text is addresses, Message-IDs, a Maildir file name and
//! error messages (which never carry a secret anywhere in securemail). There is no field for a
//! code, key, TOTP secret, QR content or password, so no caller can put one in.
//!
//! The file (`[audit] file`, by default `securemail-audit.log` beside the store) is created 0600
//! in a 0700 directory, never through a link ([`crate::files`]), and opened `O_APPEND`; each line
//! is bounded (long values are cut) and written with one `write_all` on that descriptor, so lines
//! from concurrent processes never interleave. Lines are never rewritten or removed.
//!
//! A log that cannot be opened stops the command before it does anything. A line that cannot be
//! written is printed on stderr instead (so it is not lost), the command carries on (mails already
//! sent stay sent, verdicts already committed stay committed), and at the end it fails with
//! exit 74 (see [`Audit::finish`]) — unless it failed for its own reason, whose code it keeps.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::CodeKind;
use crate::rfc3339;

/// The file name of the audit log beside the store, unless `[audit] file` says otherwise.
pub const DEFAULT_FILE_NAME: &str = "securemail-audit.log";

/// Longest free-text value written (addresses, Message-IDs, error messages), in characters:
/// keeps each line to a few kilobytes whatever a reply mail's headers hold.
const MAX_VALUE_CHARS: usize = 320;

/// The command an event happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Send,
    Reply,
    Revoke,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    /// A recipient's mail: delivered, failed, skipped or held back by `[limits]`.
    Send,
    /// A code (typed, or found in a reply) was checked, or a reply could not be checked.
    Check,
    /// A code locked after too many wrong attempts (follows the `check` that locked it).
    Lock,
    /// A reply mail was not read for a code: automatic, or its sender could not be told.
    SetAside,
    /// A Maildir message that is not a usable mail.
    Malformed,
    /// An operator withdrew a code.
    Revoke,
}

/// What it came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The server accepted the mail (or it was written to the outbox).
    Delivered,
    /// The mail did not go.
    Failed,
    /// A plain send left the recipient's code alone.
    Skipped,
    /// A list line that is not a recipient.
    Invalid,
    /// The code was right.
    Accepted,
    /// The code was wrong or cannot verify.
    Refused,
    /// Not evaluated now (throttled, over a budget): a later attempt may be.
    Deferred,
    /// Not read for a code.
    SetAside,
    /// Not a mail.
    Malformed,
    /// The code is locked.
    Locked,
    /// The code is revoked.
    Revoked,
    /// There was nothing to act on.
    Nothing,
}

/// Why. Each outcome uses a few of these; the README lists which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    // Sends skipped: what the recipient holds.
    Verified,
    Live,
    // Sends failed.
    /// `[limits] resend_cooldown`: too soon after the last code.
    Throttled,
    /// `[limits] codes_per_day`, or (for checks) `wrong_attempts_per_day`.
    OverBudget,
    /// A temporary failure (4xx, timeout, dropped connection): a rerun may deliver.
    Temporary,
    /// A permanent failure (5xx, a refused address).
    Permanent,
    // Checks refused.
    Wrong,
    Replayed,
    Expired,
    Used,
    Revoked,
    Locked,
    /// A key whose check symbol does not match: a typo, never compared.
    Mistyped,
    /// No code was ever sent to this recipient.
    NoCode,
    /// A reply to an older mail, whose code was superseded.
    OlderMail,
    /// A reply in which no code was found.
    NoCodeInReply,
    /// A reply holding several different codes: none was tried.
    Ambiguous,
    // Locks.
    TooManyWrongCodes,
    // Replies set aside.
    Automatic,
    Unauthenticated,
}

/// The record a new code superseded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Replaced {
    pub record: i64,
    pub kind: &'static str,
    /// Its state when it was superseded: `pending`, `verified`, `locked`, `expired`, ...
    pub state: &'static str,
}

/// One security event. Build it with [`Event::new`] and the setters; [`Audit::record`] adds the
/// time, the process id and the command.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    event: EventType,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    /// Canonical address (`mail::Recipient`), or a reply's sender as the store keys it.
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    /// The store's record id of the code the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<i64>,
    /// For checks: whether it counted as an attempt against the recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    counted: Option<bool>,
    /// For sends: delivery attempts; for locks: wrong codes in a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// When a held-back send or a deferred check may be tried again (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
    /// For sends: the record the new code superseded; for skips, the one left alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<Replaced>,
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<Replaced>,
    /// For revokes: the state the code was in.
    #[serde(skip_serializing_if = "Option::is_none")]
    was: Option<&'static str>,
    /// For sends: the Message-ID of the mail sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    /// For sends from a list: the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    /// For replies that came by mail: their Message-ID and From address, as the mail says.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_from: Option<String>,
    /// For `reply --maildir`: the message's file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    /// An error message (failed sends) or why a reply was set aside; never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Event {
    pub fn new(event: EventType, outcome: Outcome) -> Event {
        Event {
            event,
            outcome,
            reason: None,
            recipient: None,
            kind: None,
            record: None,
            counted: None,
            attempts: None,
            retry_at: None,
            replaced: None,
            existing: None,
            was: None,
            message_id: None,
            line: None,
            reply_message_id: None,
            reply_from: None,
            file: None,
            detail: None,
        }
    }

    pub fn event(&self) -> EventType {
        self.event
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    pub fn reason(mut self, reason: Reason) -> Event {
        self.reason = Some(reason);
        self
    }

    pub fn recipient(mut self, recipient: &str) -> Event {
        self.recipient = Some(bounded(recipient));
        self
    }

    pub fn kind(mut self, kind: CodeKind) -> Event {
        self.kind = Some(kind.as_str());
        self
    }

    pub fn record(mut self, record: Option<i64>) -> Event {
        self.record = record;
        self
    }

    pub fn counted(mut self, counted: bool) -> Event {
        self.counted = Some(counted);
        self
    }

    pub fn attempts(mut self, attempts: u32) -> Event {
        self.attempts = Some(attempts);
        self
    }

    /// `unix`: seconds since the epoch.
    pub fn retry_at(mut self, unix: i64) -> Event {
        self.retry_at = Some(rfc3339(unix));
        self
    }

    pub fn replaced(mut self, replaced: Option<Replaced>) -> Event {
        self.replaced = replaced;
        self
    }

    pub fn existing(mut self, existing: Replaced) -> Event {
        self.existing = Some(existing);
        self
    }

    pub fn was(mut self, state: &'static str) -> Event {
        self.was = Some(state);
        self
    }

    pub fn message_id(mut self, id: &str) -> Event {
        self.message_id = Some(bounded(id));
        self
    }

    pub fn line(mut self, line: usize) -> Event {
        self.line = (line > 0).then_some(line);
        self
    }

    /// The reply mail this event is about (see [`ReplyIds`]).
    pub fn reply(mut self, ids: &ReplyIds) -> Event {
        self.reply_message_id = ids.message_id.clone();
        self.reply_from = ids.from.clone();
        self
    }

    pub fn file(mut self, name: Option<&str>) -> Event {
        self.file = name.map(bounded);
        self
    }

    pub fn detail(mut self, text: &str) -> Event {
        self.detail = Some(bounded(text));
        self
    }
}

/// A reply mail's own Message-ID and first From address, read from its header for the log
/// whatever else happens to the mail (set aside, malformed, checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyIds {
    pub message_id: Option<String>,
    pub from: Option<String>,
}

impl ReplyIds {
    pub fn read(raw: &[u8]) -> ReplyIds {
        let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return ReplyIds::default();
        };
        let from = msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(bounded);
        ReplyIds {
            message_id: msg.message_id().map(|id| bounded(&format!("<{id}>"))),
            from,
        }
    }
}

/// Where the audit log is written, and how that is going.
#[derive(Debug)]
pub struct Audit {
    sink: Option<Sink>,
    command: Command,
    /// Lines that could not be written, and why the first could not.
    lost: usize,
    why: Option<String>,
}

#[derive(Debug)]
struct Sink {
    file: File,
    path: PathBuf,
}

/// `{"time":…,"pid":…,"command":…,` then the event's fields.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    pid: u32,
    command: Command,
    #[serde(flatten)]
    event: &'a Event,
}

/// The audit log cannot be opened, or lines were lost.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error(
        "{count} audit record{} could not be written to {} ({reason}); they were printed on stderr instead",
        if *count == 1 { "" } else { "s" },
        path.display()
    )]
    Lost {
        path: PathBuf,
        count: usize,
        reason: String,
    },
}

impl Audit {
    /// Opens (creating it 0600, its directory 0700) the log at `path`, or a log that writes
    /// nothing for `None` (`[audit] enabled = false`, or a dry run).
    pub fn open(path: Option<&Path>, command: Command) -> Result<Audit, AuditError> {
        let sink = match path {
            None => None,
            Some(path) => {
                let err = |e: std::io::Error| AuditError::Open {
                    path: path.to_path_buf(),
                    reason: crate::io_reason(&e),
                };
                crate::files::create_parent_dirs(path).map_err(err)?;
                let file =
                    crate::files::open(path, OpenOptions::new().append(true), true).map_err(err)?;
                Some(Sink {
                    file,
                    path: path.to_path_buf(),
                })
            }
        };
        Ok(Audit {
            sink,
            command,
            lost: 0,
            why: None,
        })
    }

    /// Appends one line for `event`. A line that cannot be written goes to stderr instead and
    /// makes [`Audit::finish`] fail.
    pub fn record(&mut self, event: &Event) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let line = Line {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            pid: std::process::id(),
            command: self.command,
            event,
        };
        // Only strings, numbers and enums: serialising cannot fail.
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        // One write on an O_APPEND descriptor: the whole line lands at the end of the file.
        if let Err(e) = sink.file.write_all(text.as_bytes()) {
            let reason = crate::io_reason(&e);
            say_inline!(
                "securemail: cannot write the audit log {}: {reason}; the record: {text}",
                sink.path.display()
            );
            self.lost += 1;
            self.why.get_or_insert(reason);
        }
    }

    /// Ok when every line was written.
    pub fn finish(self) -> Result<(), AuditError> {
        match (self.sink, self.why) {
            (Some(sink), Some(reason)) => Err(AuditError::Lost {
                path: sink.path,
                count: self.lost,
                reason,
            }),
            _ => Ok(()),
        }
    }
}

/// `value` cut to [`MAX_VALUE_CHARS`] (marked with `…`).
fn bounded(value: &str) -> String {
    if value.chars().count() <= MAX_VALUE_CHARS {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX_VALUE_CHARS).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_time_command_and_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/audit.log");
        let mut audit = Audit::open(Some(&path), Command::Reply).unwrap();
        let e = Event::new(EventType::Check, Outcome::Refused)
            .reason(Reason::Wrong)
            .recipient("ann@example.org")
            .kind(CodeKind::Key)
            .record(Some(7))
            .counted(true);
        audit.record(&e);
        audit.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["command"], "reply");
        assert_eq!(v["event"], "check");
        assert_eq!(v["outcome"], "refused");
        assert_eq!(v["reason"], "wrong");
        assert_eq!(v["record"], 7);
        assert_eq!(v["counted"], true);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(v.get("detail").is_none());
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn lines_that_cannot_be_written_make_finish_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut audit = Audit::open(Some(&path), Command::Send).unwrap();
        // A descriptor that refuses writes, as a full disk or a revoked mount would.
        if let Some(sink) = audit.sink.as_mut() {
            sink.file = File::open(&path).unwrap();
        }
        let e = Event::new(EventType::Send, Outcome::Delivered).recipient("a@example.org");
        audit.record(&e);
        audit.record(&e);
        let err = audit.finish().unwrap_err();
        assert!(matches!(err, AuditError::Lost { count: 2, .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("2 audit records could not be written to ")
        );
        assert!(Audit::open(None, Command::Send).unwrap().finish().is_ok());
    }

    #[test]
    fn values_are_bounded_and_cannot_break_the_line() {
        let long = "x\n".repeat(5000);
        let e = Event::new(EventType::Send, Outcome::Failed).detail(&long);
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains('\n'));
        assert!(text.len() < 2 * MAX_VALUE_CHARS + 100, "{}", text.len());
    }

    #[test]
    fn reply_ids_come_from_the_header() {
        let ids = ReplyIds::read(
            b"From: \"Bob\" <bob@example.org>, eve@example.net\r\nMessage-ID: <r1@example.net>\r\n\r\nhi\r\n",
        );
        assert_eq!(ids.from.as_deref(), Some("bob@example.org"));
        assert_eq!(ids.message_id.as_deref(), Some("<r1@example.net>"));
        assert_eq!(ReplyIds::read(b"not a mail"), ReplyIds::default());
    }
}
