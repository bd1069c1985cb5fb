//! Sending to many recipients: one personal mail each, over a few reused TLS connections,
//! resumable after a crash, with building overlapped with sending.
//!
//! ```text
//! list ──► feeder ──(todo)──► builders ──(built)──► senders ×connections ──(reports)──► caller
//!          skip live codes     secret, QR,           one SMTP session each:
//!                              templates, MIME       record `sending` → send → `pending`/`failed`
//! ```
//!
//! Channels are bounded, so a list of any length streams through in constant memory. The store
//! is written before and after each SMTP transaction; a send run holds an exclusive lock on the
//! store, so at start-up any record still `sending` was in flight when an earlier run died:
//! those recipients are sent again and named. Everyone else with a live code of this kind is
//! skipped unless `resend` is set, so re-running a finished batch sends nothing.
//!
//! Per recipient, a 5xx is final and the batch goes on; a 4xx, a dropped connection or a timeout
//! is retried with exponential backoff on a fresh connection. Failures that would hit every
//! recipient (TLS, login, no STARTTLS, a server that cannot be reached at all) stop the batch.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::CodeKind;
use crate::config::Settings;
use crate::error::Error;
use crate::mail::{self, Code, Composed, Kit, Recipient};
use crate::recipients::{self, Entry, LineProblem, Source};
use crate::store::{Material, NewRecord, Record, State, Store, StoreError};
use crate::transport::smtp::{Session, Trace};
use crate::transport::{Reply, SmtpTarget, Stage, TransportError, outbox};

/// First retry delay; doubles each time.
pub const BACKOFF: Duration = Duration::from_millis(500);
/// A pooled connection idle longer than this is checked with NOOP before reuse.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// What to send, to whom.
pub struct Job<'a> {
    pub settings: &'a Settings,
    pub kit: &'a Kit,
    pub kind: CodeKind,
    pub subject: String,
    pub source: Source,
    /// Valid recipients in `source` (from [`recipients::check`]).
    pub total: usize,
    /// Send new codes even to recipients who hold a live one.
    pub resend: bool,
    /// Write every mail to the outbox, record nothing.
    pub dry_run: bool,
    /// Parallel SMTP connections.
    pub connections: usize,
    /// Optional global rate limit.
    pub max_per_minute: Option<u32>,
}

/// How one recipient's mail went.
#[derive(Debug)]
pub enum Outcome {
    /// Delivered to the SMTP server (with its reply) or written to the outbox.
    Sent {
        reply: Option<Reply>,
        tls: Option<String>,
        path: Option<PathBuf>,
        message_id: String,
        /// Bytes of the message.
        size: usize,
        expires: i64,
        attempts: u32,
        /// The previous run stopped while this recipient's mail was in flight.
        resent: bool,
    },
    /// A live code of this kind exists (no `resend`).
    Skipped { state: State, expires: i64 },
    /// The list line could not be used (`--skip-invalid`).
    Invalid(LineProblem),
    /// Not delivered. `error.exit_code()` says whether it was temporary.
    Failed { error: Box<Error>, attempts: u32 },
}

/// One recipient's result.
#[derive(Debug)]
pub struct Report {
    pub address: String,
    /// Line in the list file (0 for `--to`).
    pub line: usize,
    pub outcome: Outcome,
}

/// Counts at the end of a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub sent: usize,
    pub resent: usize,
    pub skipped: usize,
    pub invalid: usize,
    pub failed_temporary: usize,
    pub failed_permanent: usize,
    pub elapsed: Duration,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent { resent, .. } => {
                self.sent += 1;
                self.resent += usize::from(*resent);
            }
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Invalid(_) => self.invalid += 1,
            Outcome::Failed { error, .. } => {
                if error.exit_code() == crate::exit::TEMPFAIL {
                    self.failed_temporary += 1;
                } else {
                    self.failed_permanent += 1;
                }
            }
        }
    }

    /// 0 all sent; 69 some permanent failures; 75 some temporary failures (and no permanent).
    pub fn exit_code(&self) -> u8 {
        if self.failed_permanent > 0 {
            crate::exit::UNAVAILABLE
        } else if self.failed_temporary > 0 {
            crate::exit::TEMPFAIL
        } else {
            crate::exit::OK
        }
    }
}

/// Events a caller sees while the batch runs.
pub trait Observer {
    /// Before any mail: who was in flight when a previous run stopped.
    fn start(&mut self, _interrupted: &[String]) {}
    fn report(&mut self, report: Report);
    /// A trace sink for connection `n`, for `-v`.
    fn trace(&self, _connection: usize) -> Option<Trace> {
        None
    }
}

/// A recipient on its way through the pipeline.
struct Item {
    line: usize,
    recipient: Recipient,
    resent: bool,
}

enum Message {
    Report(Report),
    Fatal(Error),
}

/// Runs the job. `Err` only for failures that stop the whole batch; per-recipient failures are
/// reported to `observer`.
pub fn run(
    job: &Job<'_>,
    target: Option<&SmtpTarget>,
    observer: &mut dyn Observer,
) -> Result<Summary, Error> {
    let started = Instant::now();

    // The main connection stays open for the whole run, and the threads' connections are
    // opened from it here, one after the other.
    let (_lock, main_store, interrupted) = if job.dry_run {
        (None, None, HashSet::new())
    } else {
        let lock = SendLock::acquire(&job.settings.store_path)?;
        let mut store =
            Store::open_waiting(&job.settings.store_path, job.settings.store_lock_timeout)?;
        let interrupted = store.fail_interrupted(crate::unix_now())?;
        (Some(lock), Some(store), interrupted)
    };
    let mut names: Vec<String> = interrupted.iter().cloned().collect();
    names.sort();
    observer.start(&names);

    let abort = AtomicBool::new(false);
    let connections = match target {
        Some(_) if !job.dry_run => job.connections.clamp(1, 64).min(job.total.max(1)),
        _ => 1,
    };
    // Building is CPU work; sending is mostly waiting, but its replies must be answered at
    // once. More builders than connections (or cores) only steal the CPU the connections need
    // to turn round (measured: with one connection on two cores, a second builder cut the
    // rate by a third).
    let builders = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(connections);
    let pace = job.max_per_minute.map(Pace::per_minute);
    let another = || main_store.as_ref().map(Store::another).transpose();
    let feed_store = another()?;
    let mut sender_stores = Vec::with_capacity(connections);
    for _ in 0..connections {
        sender_stores.push(another()?);
    }
    let (todo_tx, todo_rx) = mpsc::sync_channel::<Item>(64);
    // Room for a few dozen built mails (~8 KB each): builders then work in bursts and sleep,
    // rather than waking for every mail sent and jostling the connections for the CPU
    // (measured: the 1-connection rate went from 0.74-0.95 to 0.96-1.04 of the floor).
    let (built_tx, built_rx) = mpsc::sync_channel::<(Item, Composed)>(16 * connections);
    let (report_tx, report_rx) = mpsc::channel::<Message>();
    let todo_rx = Arc::new(Mutex::new(todo_rx));
    let built_rx = Arc::new(Mutex::new(built_rx));
    let mut summary = Summary::default();
    let mut fatal: Option<Error> = None;

    thread::scope(|scope| {
        {
            let report_tx = report_tx.clone();
            let abort = &abort;
            let interrupted = &interrupted;
            spawn(scope, "feed", move || {
                feed(job, feed_store, interrupted, todo_tx, &report_tx, abort)
            });
        }
        for _ in 0..builders {
            let todo_rx = Arc::clone(&todo_rx);
            let built_tx = built_tx.clone();
            let report_tx = report_tx.clone();
            let abort = &abort;
            spawn(scope, "build", move || {
                build(job, &todo_rx, built_tx, &report_tx, abort)
            });
        }
        // Only the threads hold the receiving ends: when the last builder (or sender) stops,
        // the feeder's (or builders') sends fail instead of blocking forever after an abort.
        drop(todo_rx);
        drop(built_tx);
        for (n, store) in sender_stores.into_iter().enumerate() {
            let built_rx = Arc::clone(&built_rx);
            let report_tx = report_tx.clone();
            let abort = &abort;
            let pace = pace.as_ref();
            let trace = observer.trace(n);
            spawn(scope, "send", move || {
                let mut sender = Sender::new(job, target, trace, pace, store);
                sender.run(&built_rx, &report_tx, abort);
            });
        }
        drop(built_rx);
        drop(report_tx);
        for message in report_rx {
            match message {
                Message::Report(r) => {
                    summary.add(&r.outcome);
                    observer.report(r);
                }
                Message::Fatal(e) => {
                    abort.store(true, Ordering::SeqCst);
                    if fatal.is_none() {
                        fatal = Some(e);
                    }
                }
            }
        }
    });
    summary.elapsed = started.elapsed();
    match fatal {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Starts a named pipeline thread (names show in `top -H` and profilers).
fn spawn<'scope, 'env>(
    scope: &'scope thread::Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() + Send + 'scope,
) {
    let named = thread::Builder::new()
        .name(format!("securemail-{name}"))
        .spawn_scoped(scope, f);
    if let Err(e) = named {
        // Only under resource exhaustion; the batch then runs with fewer threads.
        eprintln!("securemail: cannot start a {name} thread: {e}");
    }
}

/// Streams the list; skips recipients with a live code; queues the rest.
fn feed(
    job: &Job<'_>,
    store: Option<Store>,
    interrupted: &HashSet<String>,
    todo: SyncSender<Item>,
    reports: &mpsc::Sender<Message>,
    abort: &AtomicBool,
) {
    let result = recipients::stream(&job.source, |entry| {
        if abort.load(Ordering::SeqCst) {
            return false;
        }
        match entry {
            Entry::Invalid(problem) => {
                let _ = reports.send(Message::Report(Report {
                    address: problem.input.clone(),
                    line: problem.line,
                    outcome: Outcome::Invalid(problem),
                }));
                true
            }
            Entry::Valid { line, recipient } => {
                if let (Some(store), false) = (&store, job.resend) {
                    match store.current(&recipient.address) {
                        Ok(Some(rec)) if is_live(&rec, job.kind, crate::unix_now()) => {
                            let _ = reports.send(Message::Report(Report {
                                address: recipient.address,
                                line,
                                outcome: Outcome::Skipped {
                                    state: rec.state,
                                    expires: rec.expires,
                                },
                            }));
                            return true;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = reports.send(Message::Fatal(e.into()));
                            return false;
                        }
                    }
                }
                let resent = interrupted.contains(&recipient.address);
                todo.send(Item {
                    line,
                    recipient,
                    resent,
                })
                .is_ok()
            }
        }
    });
    if let Err(e) = result {
        let _ = reports.send(Message::Fatal(e.into()));
    }
}

/// A code of `kind` that still counts: pending and unexpired, or already verified.
pub fn is_live(rec: &Record, kind: CodeKind, now: i64) -> bool {
    rec.kind == kind
        && match rec.state {
            State::Pending => now < rec.expires,
            State::Verified => true,
            _ => false,
        }
}

/// Composes mails (secret, QR, templates, MIME) ahead of the senders.
fn build(
    job: &Job<'_>,
    todo: &Mutex<Receiver<Item>>,
    built: SyncSender<(Item, Composed)>,
    reports: &mpsc::Sender<Message>,
    abort: &AtomicBool,
) {
    loop {
        let item = match todo.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(item) = item else { return };
        if abort.load(Ordering::SeqCst) {
            return;
        }
        match mail::compose(
            job.settings,
            job.kit,
            job.kind,
            &item.recipient,
            &job.subject,
            crate::unix_now(),
        ) {
            Ok(c) => {
                if built.send((item, c)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = reports.send(Message::Report(Report {
                    address: item.recipient.address,
                    line: item.line,
                    outcome: Outcome::Failed {
                        error: Box::new(e.into()),
                        attempts: 0,
                    },
                }));
            }
        }
    }
}

/// Spaces sends out to at most `n` a minute, across all connections.
struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    fn per_minute(n: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(60) / n.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let slot = (*next).max(Instant::now());
                *next = slot + self.interval;
                slot
            }
            Err(_) => return,
        };
        let now = Instant::now();
        if slot > now {
            thread::sleep(slot - now);
        }
    }
}

/// One delivery lane: an SMTP session (or the outbox) and its own store connection.
struct Sender<'a> {
    job: &'a Job<'a>,
    target: Option<&'a SmtpTarget>,
    trace: Option<Trace>,
    pace: Option<&'a Pace>,
    session: Option<Session>,
    /// Whether a session has worked in this run: only then are reconnects retried (a server
    /// that cannot be reached at all fails fast instead of after every backoff).
    connected_before: bool,
    last_used: Instant,
    store: Option<Store>,
    /// Delivered, not yet marked `pending`: marked in the same commit that records the next
    /// mail as `sending`, or on its own when this lane waits for work or stops.
    unmarked: Option<i64>,
}

/// Why a delivery stopped.
enum Stop {
    /// This recipient failed; the batch goes on.
    Recipient(Error, u32),
    /// Every recipient would fail the same way.
    Batch(Error),
}

impl<'a> Sender<'a> {
    fn new(
        job: &'a Job<'a>,
        target: Option<&'a SmtpTarget>,
        trace: Option<Trace>,
        pace: Option<&'a Pace>,
        store: Option<Store>,
    ) -> Sender<'a> {
        Sender {
            job,
            target,
            trace,
            pace,
            session: None,
            connected_before: false,
            last_used: Instant::now(),
            store,
            unmarked: None,
        }
    }

    fn run(
        &mut self,
        built: &Mutex<Receiver<(Item, Composed)>>,
        reports: &mpsc::Sender<Message>,
        abort: &AtomicBool,
    ) {
        loop {
            let next = match built.lock() {
                Ok(rx) => match rx.try_recv() {
                    Ok(v) => Ok(v),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => Err(()),
                },
                Err(_) => break,
            };
            let next = match next {
                Ok(v) => v,
                Err(()) => {
                    // Nothing ready: record the last delivery now rather than leave it pending.
                    if let Err(e) = self.flush() {
                        let _ = reports.send(Message::Fatal(e));
                        break;
                    }
                    match built.lock().map(|rx| rx.recv()) {
                        Ok(Ok(v)) => v,
                        _ => break,
                    }
                }
            };
            let (item, composed) = next;
            if abort.load(Ordering::SeqCst) {
                break;
            }
            let address = item.recipient.address.clone();
            let line = item.line;
            match self.deliver(&item, &composed) {
                Ok(outcome) => {
                    let _ = reports.send(Message::Report(Report {
                        address,
                        line,
                        outcome,
                    }));
                }
                Err(Stop::Recipient(error, attempts)) => {
                    let _ = reports.send(Message::Report(Report {
                        address,
                        line,
                        outcome: Outcome::Failed {
                            error: Box::new(error),
                            attempts,
                        },
                    }));
                }
                Err(Stop::Batch(error)) => {
                    let _ = reports.send(Message::Fatal(error));
                    break;
                }
            }
        }
        if let Err(e) = self.flush() {
            let _ = reports.send(Message::Fatal(e));
        }
        if let Some(s) = self.session.take() {
            s.quit();
        }
    }

    /// Marks the last delivered mail `pending`.
    fn flush(&mut self) -> Result<(), Error> {
        if let (Some(id), Some(store)) = (self.unmarked.take(), self.store.as_mut()) {
            store.mark_delivered(id, crate::unix_now())?;
        }
        Ok(())
    }

    fn deliver(&mut self, item: &Item, composed: &Composed) -> Result<Outcome, Stop> {
        let mail = &composed.mail;
        if self.job.dry_run {
            let path = outbox::write(&self.job.settings.outbox_dir, mail)
                .map_err(|e| Stop::Batch(e.into()))?;
            return Ok(Outcome::Sent {
                reply: None,
                tls: None,
                path: Some(path),
                message_id: mail.message_id.clone(),
                size: mail.bytes.expose().len(),
                expires: composed.expires,
                attempts: 1,
                resent: false,
            });
        }
        if let Some(p) = self.pace {
            p.wait();
        }
        let mut id = None;
        let result = match self.target {
            None => self.record(&item.recipient, composed).and_then(|i| {
                id = Some(i);
                outbox::write(&self.job.settings.outbox_dir, mail)
                    .map(|p| (None, Some(p), 1))
                    .map_err(|e| Stop::Batch(e.into()))
            }),
            Some(_) => self
                .smtp(item, composed, &mut id)
                .map(|(r, n)| (Some(r), None, n)),
        };
        match (result, id) {
            (Ok((reply, path, attempts)), Some(id)) => {
                self.unmarked = Some(id);
                let tls = self
                    .session
                    .as_ref()
                    .and_then(|s| s.tls().map(|t| t.version.clone()));
                Ok(Outcome::Sent {
                    reply,
                    tls,
                    path,
                    message_id: mail.message_id.clone(),
                    size: mail.bytes.expose().len(),
                    expires: composed.expires,
                    attempts,
                    resent: item.resent,
                })
            }
            (Ok(_), None) => Err(Stop::Batch(Error::Store(StoreError::Sqlite {
                path: self.job.settings.store_path.clone(),
                reason: "a mail went out without its record".into(),
            }))),
            (Err(stop), Some(id)) => {
                // Best effort: the send error is what the user must see.
                let now = crate::unix_now();
                let _ = self.store_mut()?.mark_failed(id, now);
                Err(stop)
            }
            (Err(stop), None) => Err(stop),
        }
    }

    fn store_mut(&mut self) -> Result<&mut Store, Stop> {
        self.store.as_mut().ok_or_else(|| {
            Stop::Batch(Error::Store(StoreError::Sqlite {
                path: PathBuf::new(),
                reason: "store not open".into(),
            }))
        })
    }

    fn record(&mut self, to: &Recipient, composed: &Composed) -> Result<i64, Stop> {
        let delivered = self.unmarked.take();
        let store = self.store_mut()?;
        let mail = &composed.mail;
        let now = crate::unix_now();
        let secret;
        let material = match &composed.code {
            Code::Otp(otp) => {
                secret = otp.secret_bytes();
                Material::Otp(&secret, otp.params())
            }
            Code::Key(k) => Material::Key(k),
        };
        let new = NewRecord {
            recipient: &to.address,
            material,
            created: composed.created,
            expires: composed.expires,
            message_id: &mail.message_id,
        };
        let id = store.insert_sending_after(delivered, new, now);
        if id.is_err() {
            // Rolled back: the earlier delivery still needs its mark.
            self.unmarked = delivered;
        }
        id.map_err(|e| Stop::Batch(e.into()))
    }

    /// Opens a session if there is none (retrying temporary failures), or checks an idle one.
    /// Returns whether the session is a new one.
    fn ensure_session(&mut self) -> Result<bool, Stop> {
        if let Some(s) = self.session.as_mut()
            && self.last_used.elapsed() >= IDLE_CHECK
            && !s.noop()
        {
            self.session = None;
        }
        if self.session.is_some() {
            return Ok(false);
        }
        let Some(target) = self.target else {
            return Ok(false);
        };
        let mut attempt = 1;
        loop {
            match target.open(self.trace.clone()) {
                Ok(s) => {
                    self.session = Some(s);
                    self.connected_before = true;
                    self.last_used = Instant::now();
                    return Ok(true);
                }
                Err(e)
                    if e.is_temporary()
                        && self.connected_before
                        && attempt <= target.settings.retries =>
                {
                    thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(Stop::Batch(e.into())),
            }
        }
    }

    /// Sends over the session, retrying temporary failures on fresh connections. The mail is
    /// recorded as `sending` (once, into `id`) while its first commands travel, and always
    /// before its body is sent: a server that cannot be reached leaves no record behind, and
    /// a crash after the server took the mail leaves a `sending` record naming it.
    fn smtp(
        &mut self,
        item: &Item,
        composed: &Composed,
        id: &mut Option<i64>,
    ) -> Result<(Reply, u32), Stop> {
        let mail = &composed.mail;
        let mut attempt = 1;
        let mut stale_retry_used = false;
        let mut fresh = false;
        loop {
            fresh |= self.ensure_session()?;
            let Some(mut session) = self.session.take() else {
                return Err(Stop::Batch(Error::Transport(TransportError::Closed {
                    stage: Stage::Connect,
                })));
            };
            let result = match session.start(&mail.from, &mail.to, mail.bytes.expose()) {
                Ok(t) => {
                    if id.is_none() {
                        // On failure the session is dropped mid-transaction: nothing is sent.
                        *id = Some(self.record(&item.recipient, composed)?);
                    }
                    session
                        .confirm(t)
                        .and_then(|()| session.finish(mail.bytes.expose()))
                }
                Err(e) => Err(e),
            };
            self.last_used = Instant::now();
            match result {
                Ok(reply) => {
                    self.session = Some(session);
                    return Ok((reply, attempt));
                }
                Err(e) => {
                    let dead = matches!(
                        e,
                        TransportError::Closed { .. } | TransportError::Timeout { .. }
                    ) || matches!(
                        e,
                        TransportError::Temporary {
                            reply: Reply { code: 421, .. },
                            ..
                        }
                    );
                    if !dead {
                        self.session = Some(session);
                    }
                    // A pooled connection the server closed while idle fails on its first
                    // command: reconnect and go again at once, without counting an attempt.
                    let before_body = matches!(
                        e,
                        TransportError::Closed {
                            stage: Stage::MailFrom | Stage::RcptTo | Stage::Data
                        }
                    );
                    if dead && before_body && !fresh && !stale_retry_used {
                        stale_retry_used = true;
                        continue;
                    }
                    fresh = false;
                    if fatal_for_batch(&e) {
                        return Err(Stop::Batch(e.into()));
                    }
                    let retries = self.target.map_or(0, |t| t.settings.retries);
                    if e.is_temporary() && attempt <= retries {
                        thread::sleep(backoff(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(Stop::Recipient(e.into(), attempt));
                }
            }
        }
    }
}

/// Errors that mean the server (or the path to it) is unusable for everyone.
fn fatal_for_batch(e: &TransportError) -> bool {
    use TransportError::*;
    !matches!(
        e,
        Temporary { .. }
            | Permanent { .. }
            | Closed { .. }
            | Timeout { .. }
            | TooLarge { .. }
            | NeedsSmtpUtf8
    )
}

fn backoff(attempt: u32) -> Duration {
    BACKOFF.saturating_mul(1 << (attempt.saturating_sub(1)).min(6))
}

/// An exclusive lock on the store for the duration of a send run (`<store>.lock`, holding the
/// owner's PID). It makes "still `sending` at start-up" mean "in flight when a run died".
pub struct SendLock {
    _file: File,
}

impl SendLock {
    fn acquire(store: &Path) -> Result<SendLock, Error> {
        let path = store.with_extension("lock");
        let io = |e: std::io::Error| {
            Error::Store(StoreError::Open {
                path: path.clone(),
                reason: crate::io_reason(&e),
            })
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                eprintln!(
                    "securemail: waiting for another securemail send (pid {}) to finish with {}",
                    owner.trim(),
                    store.display()
                );
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(SendLock { _file: file })
    }
}
