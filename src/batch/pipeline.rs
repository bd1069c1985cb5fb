//! Sending to many recipients: one personal mail each, over a few reused TLS connections,
//! resumable after a crash, with building overlapped with sending.
//!
//! ```text
//! list ──► feeder ──(todo)──► builders ──(built)──► lanes ×connections ──(reports)──► caller
//!          skip, budgets       secret, QR,           one SMTP session each:
//!                              templates, MIME       record `sending` → send → `pending`/`failed`
//! ```
//!
//! Channels are bounded, so a list of any length streams through in constant memory. The store
//! is written before and after each SMTP transaction. On SQLite a send run holds an exclusive
//! lock on the store; on PostgreSQL runs on several hosts send at once, each beating a
//! heartbeat, and a list is split between them ([`super::shared`]: the feeder then claims
//! recipients from the shared batch instead of reading the list). Either way, a record still
//! `sending` at start-up whose run is gone was in flight when that run died: those recipients
//! are sent again and named. Unless `resend` is set, anyone holding a live code, a verified
//! enrolment or a locked record (of either kind) is skipped, so re-running a finished batch
//! sends nothing and forged replies cannot get anyone re-enrolled. Either way, the
//! per-recipient budgets of [`crate::limits`] are checked against the store before a mail is
//! built; the send lock (or the batch's claims) and the list's de-duplication mean no other
//! send of the list can slip in between.
//!
//! Per recipient, a 5xx is final and the batch goes on; a 4xx, a dropped connection or a timeout
//! is retried with exponential backoff on a fresh connection. Failures that would hit every
//! recipient (TLS, login, no STARTTLS, a server that cannot be reached at all) stop the batch.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use super::interrupt::Interrupt;
use super::lane::{Deliver, Lane, OutboxLane, SmtpLane, Stop};
use super::lock::SendLock;
use super::pace::Pace;
use super::shared::{self, Shared};
use super::{Existing, Job, Observer, Outcome, Report, SkipReason, Summary};
use crate::error::Error;
use crate::limits;
use crate::mail::{self, Composed, Recipient};
use crate::recipients::{self, Entry};
use crate::store::queue::{Claim, Settled};
use crate::store::{Record, State, Store, StoreError};
use crate::transport::SmtpTarget;

/// A recipient on its way through the pipeline.
struct Item {
    line: usize,
    recipient: Recipient,
    resent: bool,
    /// What the new code will supersede.
    replaced: Option<Existing>,
}

/// What the pipeline's threads tell the caller's thread.
enum Event {
    Report(Report),
    /// Another run took this recipient of a shared batch over (see [`StoreError::ClaimLost`]).
    Lost(String),
    Fatal(Error),
}

/// Runs the job. `Err` only for failures that stop the whole batch; per-recipient failures are
/// reported to `observer`.
///
/// Long on purpose: one `thread::scope` owns every thread and channel end of the run, and the
/// order in which the ends are dropped is what lets an aborted batch stop instead of blocking
/// (see the comments inside); split up, that order would be spread over several functions.
pub fn run(
    job: &Job<'_>,
    target: Option<&SmtpTarget>,
    observer: &mut dyn Observer,
) -> Result<Summary, Error> {
    let started = Instant::now();

    // The main connection stays open for the whole run, and the threads' connections are
    // opened from it here, one after the other.
    let (_lock, mut main_store, interrupted, shared) = if job.dry_run {
        // Nothing is recorded, but a store that could not be used (its key file missing or
        // another) is said now, not at the real run.
        drop(Store::open_existing(job.settings)?);
        (None, None, HashSet::new(), None)
    } else {
        // One send at a time on a SQLite store (a lock file beside it). On PostgreSQL several
        // run at once: this one registers first (and joins its list's batch), so that only the
        // records of runs that are gone count as interrupted.
        let lock = match job.settings.postgres {
            None => Some(SendLock::acquire(&job.settings.store_path)?),
            Some(_) => None,
        };
        let mut store = Store::create_or_open(job.settings)?;
        let shared = shared::start(job, &mut store)?;
        let interrupted = store.fail_interrupted(crate::unix_now())?;
        (lock, Some(store), interrupted, shared)
    };
    let mut names: Vec<String> = interrupted.iter().cloned().collect();
    names.sort();
    observer.start(&names);
    let batch = shared.as_ref().filter(|s| s.batch.is_some());
    if let Some(joined) = batch.and_then(|s| s.batch.as_ref()) {
        observer.joined(joined, &recipients::display(&job.source));
    }

    let abort = AtomicBool::new(false);
    let ctrl_c = Interrupt::catch();
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
    let beat_store = match shared {
        Some(_) => another()?,
        None => None,
    };
    let (todo_tx, todo_rx) = mpsc::sync_channel::<Item>(64);
    // Room for a few dozen built mails (~8 KB each): builders then work in bursts and sleep,
    // rather than waking for every mail sent and jostling the connections for the CPU
    // (measured: the 1-connection rate went from 0.74-0.95 to 0.96-1.04 of the floor).
    let (built_tx, built_rx) = mpsc::sync_channel::<(Item, Composed)>(16 * connections);
    let (report_tx, report_rx) = mpsc::channel::<Event>();
    let todo_rx = Arc::new(Mutex::new(todo_rx));
    let built_rx = Arc::new(Mutex::new(built_rx));
    let mut summary = Summary::default();
    let mut fatal: Option<Error> = None;
    // Dropped when the run's work is done: the heartbeat stops.
    let (beating, beat_stop) = mpsc::channel::<()>();

    thread::scope(|scope| {
        {
            let report_tx = report_tx.clone();
            let abort = &abort;
            let interrupted = &interrupted;
            spawn(scope, "feed", move || match batch {
                Some(shared) => feed_shared(
                    job,
                    shared,
                    feed_store,
                    interrupted,
                    todo_tx,
                    &report_tx,
                    abort,
                ),
                None => feed(job, feed_store, interrupted, todo_tx, &report_tx, abort),
            });
        }
        if let (Some(shared), Some(store)) = (shared.as_ref(), beat_store) {
            spawn(scope, "heartbeat", move || {
                shared::heartbeat(shared, store, &beat_stop)
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
                let deliver: Box<dyn Deliver> = match target {
                    Some(t) if !job.dry_run => Box::new(SmtpLane::new(t, trace)),
                    _ => Box::new(OutboxLane {
                        dir: job.settings.outbox_dir.clone(),
                    }),
                };
                let mut lane = Lane::new(job, deliver, pace, abort, store);
                run_lane(&mut lane, &built_rx, &report_tx, abort);
            });
        }
        drop(built_rx);
        drop(report_tx);
        loop {
            if ctrl_c.requested() && !summary.interrupted {
                summary.interrupted = true;
                summary.sent_before_interrupt = summary.sent;
                abort.store(true, Ordering::SeqCst);
                observer.interrupted();
            }
            // Woken now and then to see whether Ctrl-C was pressed.
            let message = match report_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            match message {
                Event::Report(r) => {
                    let how = match &r.outcome {
                        Outcome::Skipped { .. } => Some(Settled::Skipped),
                        Outcome::Failed { .. } => Some(Settled::Failed),
                        Outcome::Sent { .. } | Outcome::Invalid(_) => None,
                    };
                    // A recipient of the batch that this run did not send to: its outcome is
                    // this run's only if the claim still is (a pause may have lost it).
                    let ours = match (batch, how, main_store.as_mut()) {
                        (Some(_), Some(how), Some(store)) => {
                            match shared::settle(store, &r.address, how) {
                                Ok(ours) => ours,
                                Err(e) => {
                                    abort.store(true, Ordering::SeqCst);
                                    fatal.get_or_insert(e.into());
                                    true
                                }
                            }
                        }
                        _ => true,
                    };
                    if ours {
                        summary.add(&r.outcome);
                        observer.report(r);
                    } else {
                        observer.lost(&r.address);
                    }
                }
                Event::Lost(address) => observer.lost(&address),
                Event::Fatal(e) => {
                    abort.store(true, Ordering::SeqCst);
                    if fatal.is_none() {
                        fatal = Some(e);
                    }
                }
            }
        }
        drop(beating);
    });
    summary.elapsed = started.elapsed();
    if let (Some(shared), Some(store)) = (shared.as_ref(), main_store.as_mut()) {
        match shared::finish(shared, store) {
            Ok(others) => summary.others = others,
            Err(e) => {
                if fatal.is_none() {
                    fatal = Some(e.into());
                }
            }
        }
    }
    // Lines added to the list after the feeder reached its end were never read: say so rather
    // than finish as if the whole list was done.
    let unchanged = match (&fatal, &job.source) {
        (None, recipients::Source::File(list)) if !summary.interrupted => {
            list.confirm_unchanged().err().map(Error::from)
        }
        _ => None,
    };
    match fatal.or(unchanged) {
        Some(Error::List(recipients::ListError::Changed { path, what, .. })) => {
            Err(Error::List(recipients::ListError::Changed {
                path,
                what,
                sent: summary.sent,
            }))
        }
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
        say!("securemail: cannot start a {name} thread: {e}");
    }
}

/// Streams the list; reports those who are skipped or over a budget; queues the rest.
fn feed(
    job: &Job<'_>,
    store: Option<Store>,
    interrupted: &HashSet<String>,
    todo: SyncSender<Item>,
    reports: &mpsc::Sender<Event>,
    abort: &AtomicBool,
) {
    let result = recipients::stream(&job.source, |entry| {
        if abort.load(Ordering::SeqCst) {
            return false;
        }
        let (line, recipient) = match entry {
            Entry::Invalid(problem) => {
                let _ = reports.send(Event::Report(Report {
                    address: problem.input.clone(),
                    line: problem.line,
                    outcome: Outcome::Invalid(problem),
                }));
                return true;
            }
            Entry::Valid { line, recipient } => (line, recipient),
        };
        let replaced = match store.as_ref().map(|s| screen(job, s, &recipient.address)) {
            None => None,
            Some(Ok(Ok(replaced))) => replaced,
            Some(Ok(Err(outcome))) => {
                let _ = reports.send(Event::Report(Report {
                    address: recipient.address,
                    line,
                    outcome,
                }));
                return true;
            }
            Some(Err(e)) => {
                let _ = reports.send(Event::Fatal(e.into()));
                return false;
            }
        };
        let resent = interrupted.contains(&recipient.address);
        todo.send(Item {
            line,
            recipient,
            resent,
            replaced,
        })
        .is_ok()
    });
    if let Err(e) = result {
        let _ = reports.send(Event::Fatal(e.into()));
    }
}

/// [`feed`] for a list several hosts send at once: this host's own invalid lines first (the
/// batch holds only valid recipients), then the recipients it claims from the batch.
fn feed_shared(
    job: &Job<'_>,
    shared: &Shared,
    store: Option<Store>,
    interrupted: &HashSet<String>,
    todo: SyncSender<Item>,
    reports: &mpsc::Sender<Event>,
    abort: &AtomicBool,
) {
    let Some(mut store) = store else { return };
    let report = |address: String, line: usize, outcome: Outcome| {
        let _ = reports.send(Event::Report(Report {
            address,
            line,
            outcome,
        }));
    };
    if job.invalid > 0 {
        let result = recipients::stream(&job.source, |entry| {
            if let Entry::Invalid(problem) = entry {
                report(
                    problem.input.clone(),
                    problem.line,
                    Outcome::Invalid(problem),
                );
            }
            !abort.load(Ordering::SeqCst)
        });
        if let Err(e) = result {
            let _ = reports.send(Event::Fatal(e.into()));
            return;
        }
    }
    let mut failed = None;
    let result = shared::feed(shared, &mut store, abort, |store, claim| {
        let Claim {
            recipient,
            name,
            line,
            resent,
        } = claim;
        let recipient = match Recipient::parse(&recipient, name.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                let error = Box::new(Error::from(e));
                report(recipient, line, Outcome::Failed { error, attempts: 0 });
                return true;
            }
        };
        let replaced = match screen(job, store, &recipient.address) {
            Ok(Ok(replaced)) => replaced,
            Ok(Err(outcome)) => {
                report(recipient.address, line, outcome);
                return true;
            }
            Err(e) => {
                failed = Some(e);
                return false;
            }
        };
        let resent = resent || interrupted.contains(&recipient.address);
        todo.send(Item {
            line,
            recipient,
            resent,
            replaced,
        })
        .is_ok()
    });
    if let Some(e) = result.err().or(failed) {
        let _ = reports.send(Event::Fatal(e.into()));
    }
}

/// Whether `address` may be sent a code now: `Ok(replaced)` (what the new code will
/// supersede), or the outcome that stops it (skipped, or failed for a budget).
fn screen(
    job: &Job<'_>,
    store: &Store,
    address: &str,
) -> Result<Result<Option<Existing>, Outcome>, StoreError> {
    let now = crate::unix_now();
    let current = store.current(address)?.map(|r| existing(&r, now));
    if !job.resend
        && let Some((reason, existing)) =
            current.and_then(|e| standing(e.state, now < e.expires).map(|r| (r, e)))
    {
        return Ok(Err(Outcome::Skipped { reason, existing }));
    }
    let issued = store.issued_since(address, now - limits::DAY)?;
    if let Err(limit) = limits::check_send(&job.settings.limits, address, &issued, now) {
        return Ok(Err(Outcome::Failed {
            error: Box::new(limit.into()),
            attempts: 0,
        }));
    }
    // A delivery supersedes the current record if it is pending, verified or locked.
    Ok(Ok(current.filter(|e| {
        matches!(
            e.state,
            State::Pending | State::Expired | State::Verified | State::Locked
        )
    })))
}

/// The current record as a send sees it.
fn existing(rec: &Record, now: i64) -> Existing {
    let state = match rec.state {
        State::Pending if now >= rec.expires => State::Expired,
        s => s,
    };
    Existing {
        id: rec.id,
        kind: rec.kind,
        state,
        expires: rec.expires,
    }
}

/// Why a record in `state` must not be replaced by a plain send, of either kind: a verified
/// enrolment (or used key), a locked record, or a code that can still be used.
pub fn standing(state: State, unexpired: bool) -> Option<SkipReason> {
    match state {
        State::Verified => Some(SkipReason::Verified),
        State::Locked => Some(SkipReason::Locked),
        State::Pending if unexpired => Some(SkipReason::Live),
        _ => None,
    }
}

/// Composes mails (secret, QR, templates, MIME) ahead of the senders.
fn build(
    job: &Job<'_>,
    todo: &Mutex<Receiver<Item>>,
    built: SyncSender<(Item, Composed)>,
    reports: &mpsc::Sender<Event>,
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
                let _ = reports.send(Event::Report(Report {
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

/// Feeds built mails to one lane until the queue ends or the batch is aborted.
fn run_lane(
    lane: &mut Lane<'_>,
    built: &Mutex<Receiver<(Item, Composed)>>,
    reports: &mpsc::Sender<Event>,
    abort: &AtomicBool,
) {
    loop {
        // Another lane waiting for work holds the queue: then this one waits too, and must
        // mark its last delivery first (on a shared batch the other hosts wait for that mark).
        let next = match built.try_lock() {
            Ok(rx) => match rx.try_recv() {
                Ok(v) => Ok(v),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => Err(()),
            },
            Err(TryLockError::WouldBlock) => Err(()),
            Err(TryLockError::Poisoned(_)) => break,
        };
        let (item, composed) = match next {
            Ok(v) => v,
            Err(()) => {
                // Nothing ready: record the last delivery now rather than leave it pending.
                if let Err(e) = lane.flush() {
                    let _ = reports.send(Event::Fatal(e));
                    break;
                }
                match built.lock().map(|rx| rx.recv()) {
                    Ok(Ok(v)) => v,
                    _ => break,
                }
            }
        };
        if abort.load(Ordering::SeqCst) {
            break;
        }
        let outcome = match lane.send(&item.recipient, &composed, item.resent, item.replaced) {
            Ok(outcome) => outcome,
            Err(Stop::Recipient(Error::Store(StoreError::ClaimLost { recipient }), _)) => {
                let _ = reports.send(Event::Lost(recipient));
                continue;
            }
            Err(Stop::Recipient(error, attempts)) => Outcome::Failed {
                error: Box::new(error),
                attempts,
            },
            Err(Stop::Batch(error)) => {
                let _ = reports.send(Event::Fatal(error));
                break;
            }
            Err(Stop::Interrupted) => break,
        };
        let _ = reports.send(Event::Report(Report {
            address: item.recipient.address,
            line: item.line,
            outcome,
        }));
    }
    if let Err(e) = lane.close() {
        let _ = reports.send(Event::Fatal(e));
    }
}
