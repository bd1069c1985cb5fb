//! `securemail send`: generate a code for each recipient, mail it, record it.
//!
//! Everything that can fail without side effects (arguments, the whole recipient list,
//! templates, TLS trust, the password) is checked before the store is touched or a connection
//! opened. The sending itself is [`crate::batch`], for one recipient as for ten thousand.

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::output::rfc3339;
use super::{Printer, value_or_prompt};
use crate::CodeKind;
use crate::audit::{self, Audit, Event, EventType, Reason, Replaced};
use crate::batch::{self, Existing, Job, Observer, Outcome, Report, SkipReason, Summary};
use crate::config::{Delivery, Settings};
use crate::error::Error;
use crate::mail::mime::{default_subject, human_time};
use crate::mail::recipient::{MAX_NAME_CHARS, MAX_SUBJECT_CHARS, check_header_value};
use crate::mail::{Kit, Recipient};
use crate::recipients::{self, ListFile, Source};
use crate::sendlog::{Entry, SendLog};
use crate::store::State;
use crate::store::queue::Joined;
use crate::transport::SmtpTarget;
use crate::transport::smtp::Trace;

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
    /// CSV file of recipients, one per line: email[,name] (header line optional); `-` reads
    /// stdin. A pipe or FIFO (`<(…)`) works too.
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
    /// Replace what recipients hold: a live code, a verified enrolment or a locked record
    /// (of either kind). Without it they are skipped.
    #[arg(long)]
    pub resend: bool,
    /// Send to the valid recipients of a list and report the invalid lines, instead of refusing.
    #[arg(long)]
    pub skip_invalid: bool,
}

impl SendArgs {
    pub fn execute(self, settings: &Settings, out: Printer) -> Result<(), Error> {
        run(settings, out, self)
    }
}

/// Checks everything that can be checked without side effects (arguments, the whole list,
/// templates, TLS trust, the password), then hands the batch to [`crate::batch`].
///
/// Long on purpose: it is the list of those checks in the order they must happen, before the
/// first byte goes to the store or the server.
pub(super) fn run(settings: &Settings, out: Printer, args: SendArgs) -> Result<(), Error> {
    let kind = if args.otp {
        CodeKind::Otp
    } else {
        CodeKind::Key
    };
    if let Some(name) = &args.name {
        check_header_value("name", name, MAX_NAME_CHARS)?;
    }
    let source = match (args.to_list, args.to) {
        (Some(path), _) => Source::File(ListFile::open(&path)?),
        (None, to) if to.is_empty() => Source::Args {
            to: vec![value_or_prompt(None, "--to", "Recipient address", |s| {
                Recipient::parse(s, None)?;
                Ok(s.to_string())
            })?],
            name: args.name.clone(),
        },
        (None, to) => Source::Args {
            to,
            name: args.name.clone(),
        },
    };
    if args.name.is_some() && !recipients::is_single(&source) {
        return Err(Error::Usage {
            message: "--name applies to a single --to".into(),
            hint: Some("put names in the list file (email,name) or in --to \"Name <addr>\"".into()),
        });
    }
    let subject = args
        .subject
        .unwrap_or_else(|| default_subject(kind, &settings.otp.issuer));
    check_header_value("subject", &subject, MAX_SUBJECT_CHARS)?;
    let checked = recipients::check(&source)?;
    if !args.skip_invalid {
        recipients::refuse(&source, checked.problems.clone())?;
    }
    if checked.valid == 0 {
        return Err(Error::Input {
            message: format!("no valid recipient in {}", recipients::display(&source)),
            hint: None,
        });
    }
    let kit = Kit::load(settings)?;

    let (target, connections, max_per_minute) = match (&settings.delivery, args.dry_run) {
        (Delivery::Smtp(s), false) => (
            Some(SmtpTarget::prepare(s)?),
            s.connections,
            s.max_per_minute,
        ),
        _ => (None, 1, None),
    };
    let job = Job {
        settings,
        kit: &kit,
        kind,
        subject,
        source: source.clone(),
        total: checked.valid,
        invalid: checked.problems.len(),
        set_digest: checked.set_digest,
        resend: args.resend,
        dry_run: args.dry_run,
        connections,
        max_per_minute,
    };
    let server = target
        .as_ref()
        .map(|t| format!("{}:{}", t.settings.host, t.settings.port));

    let log = Logger::new(settings, kind, args.dry_run)?;
    if recipients::is_single(&source) {
        let mut one = Single {
            out,
            report: None,
            log,
        };
        let summary = match batch::run(&job, target.as_ref(), &mut one) {
            Ok(s) => s,
            Err(e) => {
                one.log.record_fatal(&e);
                return Err(e);
            }
        };
        let result = match one.report {
            Some(r) => single_result(settings, out, kind, server.as_deref(), args.dry_run, r),
            None if summary.interrupted => Err(Error::Interrupted {
                sent: 0,
                after: 0,
                resend: args.resend,
            }),
            None => Ok(()),
        };
        return result.and(one.log.finish(Ok(())));
    }

    let total = checked.valid + checked.problems.len();
    let mut many = Many::new(out, kind, server.clone(), total, log);
    let summary = match batch::run(&job, target.as_ref(), &mut many) {
        Ok(s) => s,
        Err(e) => {
            many.log.record_fatal(&e);
            return Err(e);
        }
    };
    many.finish(&summary);
    let result = if summary.interrupted {
        Err(Error::Interrupted {
            sent: summary.sent,
            after: summary.sent - summary.sent_before_interrupt,
            // A shared batch resumes where it stopped, --resend or not.
            resend: args.resend && summary.others.is_none(),
        })
    } else {
        match summary.exit_code() {
            0 => Ok(()),
            code => Err(Error::Incomplete {
                message: format!(
                    "{} of {} recipients did not get their mail",
                    summary.failed_permanent + summary.failed_temporary,
                    checked.valid
                ),
                code,
            }),
        }
    };
    many.log.finish(result)
}

/// `{"type":"recipient",…}`: how one recipient's mail went.
#[derive(Serialize)]
#[serde(tag = "type", rename = "recipient")]
struct RecipientLine<'a> {
    recipient: &'a str,
    kind: &'static str,
    /// Line in the list file (absent for `--to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    /// `sent`, `resent` (again after an interrupted run), `skipped`, `invalid` or `failed`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a std::path::Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
    /// Why it failed; for `skipped`: `verified`, `locked` or `live`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// For `skipped`: the record that was left alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<RecordRef>,
    /// For `sent`: the record the new code superseded.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<RecordRef>,
    /// For `failed` on a `[limits]` budget: when sending to them is allowed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
    /// For `failed`: whether running again cannot help.
    #[serde(skip_serializing_if = "Option::is_none")]
    permanent: Option<bool>,
}

impl<'a> RecipientLine<'a> {
    fn new(kind: CodeKind, server: Option<&'a str>, r: &'a Report) -> RecipientLine<'a> {
        let mut v = RecipientLine {
            recipient: &r.address,
            kind: kind.as_str(),
            line: (r.line > 0).then_some(r.line),
            outcome: "",
            message_id: None,
            expires: None,
            attempts: None,
            path: None,
            server: None,
            tls: None,
            reply_code: None,
            reply: None,
            reason: None,
            existing: None,
            replaced: None,
            retry_at: None,
            permanent: None,
        };
        match &r.outcome {
            Outcome::Sent {
                reply,
                tls,
                path,
                expires,
                attempts,
                resent,
                message_id,
                replaced,
                ..
            } => {
                v.outcome = if *resent { "resent" } else { "sent" };
                v.replaced = replaced.map(RecordRef::from);
                v.message_id = Some(message_id);
                v.expires = Some(rfc3339(*expires));
                v.attempts = Some(*attempts);
                v.path = path.as_deref();
                if let Some(reply) = reply {
                    v.server = server;
                    v.tls = tls.as_deref();
                    v.reply_code = Some(reply.code);
                    v.reply = Some(reply.text());
                }
            }
            Outcome::Skipped { reason, existing } => {
                v.outcome = "skipped";
                v.reason = Some(reason.as_str().into());
                v.existing = Some(RecordRef::from(*existing));
                if *reason == SkipReason::Live {
                    v.expires = Some(rfc3339(existing.expires));
                }
            }
            Outcome::Invalid(p) => {
                v.outcome = "invalid";
                v.reason = Some(p.reason.clone());
            }
            Outcome::Failed { error, attempts } => {
                v.outcome = "failed";
                v.permanent = Some(error.exit_code() != crate::exit::TEMPFAIL);
                v.attempts = Some(*attempts);
                v.reason = Some(error.to_string());
                if let Error::Limit(l) = error.as_ref() {
                    v.retry_at = Some(rfc3339(l.until()));
                }
                if let Error::Transport(t) = error.as_ref()
                    && let Some(reply) = t.reply()
                {
                    v.reply_code = Some(reply.code);
                    v.reply = Some(reply.text());
                }
            }
        }
        v
    }
}

/// `{"kind":"otp","state":"verified"}`: a record a send left alone or superseded.
#[derive(Serialize)]
struct RecordRef {
    kind: &'static str,
    state: &'static str,
}

impl From<Existing> for RecordRef {
    fn from(e: Existing) -> RecordRef {
        RecordRef {
            kind: e.kind.as_str(),
            state: e.state.as_str(),
        }
    }
}

/// For people: why a recipient was skipped, e.g. `the TOTP enrolment sent earlier is verified`.
fn skipped_text(reason: SkipReason, e: &Existing) -> String {
    let what = e.kind.describe();
    match reason {
        SkipReason::Live => format!(
            "the {what} sent earlier is {} (until {}); pass --resend to send a new one",
            e.state.as_str(),
            human_time(e.expires)
        ),
        SkipReason::Verified => {
            format!("the {what} sent earlier is verified; pass --resend to replace it")
        }
        SkipReason::Locked => format!(
            "the {what} sent earlier is locked after wrong codes; pass --resend to replace it, \
             or securemail revoke first"
        ),
    }
}

/// For people: `; it replaces the verified TOTP enrolment sent earlier`.
fn replaced_text(replaced: Option<Existing>) -> String {
    replaced.map_or_else(String::new, |e| {
        format!(
            "; it replaces the {} {} sent earlier",
            e.state.as_str(),
            e.kind.describe()
        )
    })
}

/// `{"type":"summary","command":"send",…}`: the counts at the end of a list.
#[derive(Serialize)]
#[serde(tag = "type", rename = "summary")]
struct SummaryLine {
    command: &'static str,
    sent: usize,
    /// For a list several hosts sent at once: how many of it other runs sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_by_others: Option<usize>,
    resent: usize,
    skipped: usize,
    invalid: usize,
    failed_permanent: usize,
    failed_temporary: usize,
    seconds: f64,
}

/// Writes each recipient's line to the `[log] file`, when there is one, and its event to the
/// audit log (not for a dry run, which records nothing).
struct Logger {
    log: Option<SendLog>,
    audit: Audit,
    server: String,
    user: Option<String>,
    from: String,
    kind: CodeKind,
    /// The first write error, reported at the end (the mails still went).
    failed: Option<crate::sendlog::LogError>,
}

impl Logger {
    fn new(settings: &Settings, kind: CodeKind, dry_run: bool) -> Result<Logger, Error> {
        let log = match (&settings.log_file, dry_run) {
            (Some(path), false) => Some(SendLog::open(path)?),
            _ => None,
        };
        let audit_file = settings.audit_file.as_deref().filter(|_| !dry_run);
        let audit = Audit::open(audit_file, audit::Command::Send)?;
        let (server, user) = match &settings.delivery {
            Delivery::Smtp(s) => (
                format!("{}:{}", s.host, s.port),
                s.login.as_ref().map(|(u, _)| u.clone()),
            ),
            Delivery::Outbox => ("outbox".to_string(), None),
        };
        Ok(Logger {
            log,
            audit,
            server,
            user,
            from: settings.sender.from.email.to_string(),
            kind,
            failed: None,
        })
    }

    fn record(&mut self, r: &Report) {
        self.audit.record(&audit_event(self.kind, r));
        let Some(log) = self.log.as_mut() else { return };
        let mut e = Entry {
            host: &self.server,
            user: self.user.as_deref(),
            from: &self.from,
            to: &r.address,
            kind: self.kind.as_str(),
            ..Entry::default()
        };
        match &r.outcome {
            Outcome::Sent {
                reply, tls, size, ..
            } => {
                e.tls = tls.as_deref();
                e.size = Some(*size);
                e.reply = reply.as_ref();
            }
            Outcome::Failed { error, .. } => {
                e.exit_code = error.exit_code();
                e.error = Some(error.to_string());
                if let Error::Transport(t) = error.as_ref() {
                    e.reply = t.reply();
                }
            }
            Outcome::Skipped { .. } | Outcome::Invalid(_) => return,
        }
        if let Err(err) = log.write(&e)
            && self.failed.is_none()
        {
            self.failed = Some(err);
        }
    }

    /// Logs a failure that stopped everything (no per-recipient report exists for it).
    fn record_fatal(&mut self, e: &Error) {
        let Some(log) = self.log.as_mut() else { return };
        let entry = Entry {
            host: &self.server,
            user: self.user.as_deref(),
            from: &self.from,
            to: "-",
            kind: self.kind.as_str(),
            error: Some(e.to_string()),
            exit_code: e.exit_code(),
            ..Entry::default()
        };
        let _ = log.write(&entry);
    }

    /// `result`, unless the send log failed; lost audit lines (already on stderr) make an
    /// otherwise successful run fail.
    fn finish(self, result: Result<(), Error>) -> Result<(), Error> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        super::audited(result, self.audit)
    }
}

/// The audit log's line for one recipient.
fn audit_event(kind: CodeKind, r: &Report) -> Event {
    let reference = |e: &Existing| Replaced {
        record: e.id,
        kind: e.kind.as_str(),
        state: e.state.as_str(),
    };
    let event = |outcome| {
        Event::new(EventType::Send, outcome)
            .recipient(&r.address)
            .kind(kind)
            .line(r.line)
    };
    match &r.outcome {
        Outcome::Sent {
            message_id,
            record,
            attempts,
            replaced,
            ..
        } => event(audit::Outcome::Delivered)
            .record(*record)
            .message_id(message_id)
            .attempts(*attempts)
            .replaced(replaced.as_ref().map(reference)),
        Outcome::Skipped { reason, existing } => event(audit::Outcome::Skipped)
            .reason(match reason {
                SkipReason::Verified => Reason::Verified,
                SkipReason::Locked => Reason::Locked,
                SkipReason::Live => Reason::Live,
            })
            .existing(reference(existing)),
        // Not a recipient: no address to name, only the line.
        Outcome::Invalid(p) => Event::new(EventType::Send, audit::Outcome::Invalid)
            .line(r.line)
            .detail(&p.reason),
        Outcome::Failed { error, attempts } => {
            let failed = event(audit::Outcome::Failed)
                .attempts(*attempts)
                .detail(&error.to_string());
            match error.as_ref() {
                Error::Limit(l @ crate::limits::SendLimit::Cooldown { .. }) => {
                    failed.reason(Reason::Throttled).retry_at(l.until())
                }
                Error::Limit(l) => failed.reason(Reason::OverBudget).retry_at(l.until()),
                e if e.exit_code() == crate::exit::TEMPFAIL => failed.reason(Reason::Temporary),
                _ => failed.reason(Reason::Permanent),
            }
        }
    }
}

/// Observer for one `--to`: keeps the report for [`single_result`].
struct Single {
    out: Printer,
    report: Option<Report>,
    log: Logger,
}

impl Observer for Single {
    fn start(&mut self, interrupted: &[String]) {
        note_interrupted(interrupted);
    }
    fn report(&mut self, report: Report) {
        self.log.record(&report);
        self.report = Some(report);
    }
    fn trace(&self, _connection: usize) -> Option<Trace> {
        self.out.smtp_trace("")
    }
}

fn note_interrupted(interrupted: &[String]) {
    if !interrupted.is_empty() {
        say!(
            "securemail: a previous send stopped while mail to {} was in flight; those in this run are sent again and may get two mails",
            interrupted.join(", ")
        );
    }
}

fn single_result(
    settings: &Settings,
    out: Printer,
    kind: CodeKind,
    server: Option<&str>,
    dry_run: bool,
    r: Report,
) -> Result<(), Error> {
    out.emit(&RecipientLine::new(kind, server, &r), || None);
    let what = kind.describe();
    match r.outcome {
        Outcome::Sent {
            reply,
            tls,
            path,
            expires,
            resent,
            replaced,
            ..
        } => {
            let expires = format!("{}{}", human_time(expires), replaced_text(replaced));
            let again = if resent { " again" } else { "" };
            match (reply, path) {
                (_, Some(path)) if dry_run => out.human(&format!(
                    "dry run: wrote the {what} for {} to {} (nothing sent, nothing recorded)",
                    r.address,
                    path.display()
                )),
                (_, Some(path)) => out.human(&format!(
                    "wrote the {what} for {}{again} to {} (no [smtp] in {}); it expires {expires}",
                    r.address,
                    path.display(),
                    settings.config_path.display()
                )),
                (Some(reply), None) => out.human(&format!(
                    "sent the {what} to {}{again} via {} ({}): {reply}; it expires {expires}",
                    r.address,
                    server.unwrap_or_default(),
                    tls.unwrap_or_default()
                )),
                (None, None) => {}
            }
            Ok(())
        }
        Outcome::Skipped { reason, existing } => {
            out.human(&format!(
                "skipped {}: {}",
                r.address,
                skipped_text(reason, &existing)
            ));
            Ok(())
        }
        Outcome::Invalid(p) => Err(Error::Input {
            message: p.reason,
            hint: None,
        }),
        Outcome::Failed { error, .. } => Err(*error),
    }
}

/// Observer for lists: progress bar on a terminal, JSON lines, failures as they happen.
struct Many {
    out: Printer,
    kind: CodeKind,
    server: Option<String>,
    bar: ProgressBar,
    log: Logger,
}

impl Many {
    fn new(
        out: Printer,
        kind: CodeKind,
        server: Option<String>,
        total: usize,
        log: Logger,
    ) -> Many {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden());
        if std::io::stderr().is_terminal() && !out.is_json() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} recipients, {per_sec}, ETA {eta}",
            ) {
                bar.set_style(style);
            }
        }
        Many {
            out,
            kind,
            server,
            bar,
            log,
        }
    }

    fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            say!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    fn finish(&self, s: &Summary) {
        self.bar.finish_and_clear();
        let secs = s.elapsed.as_secs_f64();
        let line = SummaryLine {
            command: "send",
            sent: s.sent,
            sent_by_others: s.others,
            resent: s.resent,
            skipped: s.skipped,
            invalid: s.invalid,
            failed_permanent: s.failed_permanent,
            failed_temporary: s.failed_temporary,
            seconds: (secs * 1000.0).round() / 1000.0,
        };
        self.out.emit(&line, || {
            let resent = if s.resent > 0 {
                format!(" ({} again after an interrupted run)", s.resent)
            } else {
                String::new()
            };
            let others = s
                .others
                .map_or_else(String::new, |n| format!(" (others sent {n})"));
            Some(format!(
                "sent {}{resent}{others}, skipped {}, invalid {}, failed {} ({} permanent, {} temporary) in {secs:.1}s{}",
                s.sent,
                s.skipped,
                s.invalid,
                s.failed_permanent + s.failed_temporary,
                s.failed_permanent,
                s.failed_temporary,
                rate(s.sent, secs),
            ))
        });
    }
}

/// What a run says on joining the batch of a list that other runs sent or send: `None` when it
/// made the batch, or joined one nobody else is at that still has work.
fn joined_text(b: &Joined, list: &str) -> Option<String> {
    if b.created {
        return None;
    }
    if b.open == 0 {
        let when = b
            .finished
            .map_or_else(String::new, |t| format!(" (finished {})", human_time(t)));
        return Some(format!(
            "securemail: nothing left to send: every recipient of {list} was handled by earlier runs{when}, \
             {} of {} sent; the same list starts over as a new batch after {}",
            b.sent,
            b.total,
            human_time(b.renews)
        ));
    }
    if b.others.is_empty() {
        return Some(format!(
            "securemail: resuming {list}: {} of {} recipients left",
            b.open, b.total
        ));
    }
    let others: Vec<String> = b
        .others
        .iter()
        .map(|(host, pid)| format!("{host} pid {pid}"))
        .collect();
    Some(format!(
        "securemail: sharing {list} with {} other run{} ({}): {} of {} recipients left",
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        others.join(", "),
        b.open,
        b.total
    ))
}

/// ` (31 mails/s)`: whole mails a second from 10 up, one decimal below, and mails a minute
/// under one a second (a paced run of 1 a minute is not "0.0 mails/s"); nothing when none
/// was sent.
fn rate(sent: usize, secs: f64) -> String {
    if sent == 0 || secs <= 0.0 {
        return String::new();
    }
    let per_sec = sent as f64 / secs;
    let (n, unit) = if per_sec >= 1.0 {
        (per_sec, "s")
    } else {
        (per_sec * 60.0, "min")
    };
    if n >= 10.0 {
        format!(" ({n:.0} mails/{unit})")
    } else {
        format!(" ({n:.1} mails/{unit})")
    }
}

impl Observer for Many {
    fn start(&mut self, interrupted: &[String]) {
        note_interrupted(interrupted);
    }

    fn interrupted(&mut self) {
        self.line("securemail: Ctrl-C: finishing the mails in flight, then stopping (Ctrl-C again to quit at once)");
    }

    fn joined(&mut self, batch: &Joined, list: &str) {
        // This run sends only its share of what is left.
        self.bar.set_length(batch.open as u64);
        if let Some(text) = joined_text(batch, list) {
            self.line(&text);
        }
    }

    fn lost(&mut self, address: &str) {
        self.line(&format!(
            "securemail: {address} was taken over by another run: this run was silent for longer than [store] lease"
        ));
    }

    fn report(&mut self, r: Report) {
        self.bar.inc(1);
        self.log.record(&r);
        self.out.emit(
            &RecipientLine::new(self.kind, self.server.as_deref(), &r),
            || None,
        );
        if self.out.is_json() {
            return;
        }
        let at = if r.line > 0 {
            format!(" (line {})", r.line)
        } else {
            String::new()
        };
        match &r.outcome {
            Outcome::Failed { error, attempts: 0 } => {
                self.line(&format!("securemail: failed: {}{at}: {error}", r.address))
            }
            Outcome::Failed { error, attempts } => self.line(&format!(
                "securemail: failed: {}{at} after {attempts} attempt{}: {error}",
                r.address,
                if *attempts == 1 { "" } else { "s" }
            )),
            Outcome::Skipped { reason, existing } => self.line(&format!(
                "securemail: skipped {}{at}: {}",
                r.address,
                skipped_text(*reason, existing)
            )),
            Outcome::Invalid(p) => {
                self.line(&format!("securemail: skipped invalid{at}: {}", p.reason))
            }
            Outcome::Sent { resent: true, .. } => self.line(&format!(
                "securemail: sent {} again: its mail was in flight when a previous run stopped",
                r.address
            )),
            Outcome::Sent {
                replaced: Some(e), ..
            } if matches!(e.state, State::Verified | State::Locked) => self.line(&format!(
                "securemail: sent {}{at}{}",
                r.address,
                replaced_text(Some(*e))
            )),
            Outcome::Sent { .. } => {}
        }
    }

    fn trace(&self, connection: usize) -> Option<Trace> {
        self.out.smtp_trace(&format!("[{connection}]"))
    }
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_have_a_sensible_precision() {
        assert_eq!(rate(1128, 1.0), " (1128 mails/s)");
        assert_eq!(rate(31, 1.0), " (31 mails/s)");
        assert_eq!(rate(5, 2.0), " (2.5 mails/s)");
        assert_eq!(rate(3, 180.0), " (1.0 mails/min)");
        assert_eq!(rate(50, 120.0), " (25 mails/min)");
        assert_eq!(rate(0, 3.0), "");
        assert_eq!(rate(4, 0.0), "");
    }
}
