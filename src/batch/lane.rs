//! One delivery lane: a way to deliver a mail ([`Deliver`]: an SMTP session, or the outbox) and
//! the store bookkeeping around each mail.
//!
//! The order is what makes a batch resumable: a mail is recorded as `sending` before it can
//! have been accepted, becomes `pending` once the server said 250 (or the outbox file exists),
//! and `failed` if it never left. Only a `pending` code can be verified, so the mark must not
//! wait: it rides in the same commit as the next mail's `sending` record when mails flow back to
//! back (one commit per mail), and is written on its own before the lane waits for anything —
//! work, a pacing slot, a backoff, a new connection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::pace::Pace;
use super::retry;
use super::{Existing, Job, Outcome};
use crate::error::Error;
use crate::mail::{Code, Composed, Mail, Recipient};
use crate::store::{Material, NewRecord, Store, StoreError};
use crate::transport::smtp::{Session, Trace};
use crate::transport::{Reply, SmtpTarget, Stage, TransportError, outbox};

/// A pooled connection idle longer than this is checked with NOOP before reuse.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Why a delivery stopped.
pub enum Stop {
    /// This recipient failed (after this many attempts); the batch goes on.
    Recipient(Error, u32),
    /// Every recipient would fail the same way.
    Batch(Error),
    /// Ctrl-C came while this mail waited for its pacing slot: it was not sent.
    Interrupted,
}

/// How a mail left.
pub struct Delivered {
    /// The server's final reply (SMTP).
    pub reply: Option<Reply>,
    /// The file written (outbox).
    pub path: Option<PathBuf>,
    pub attempts: u32,
}

/// The store bookkeeping a [`Deliver`] calls back into while it delivers one mail.
pub trait Book {
    /// Records the mail as `sending`. Must be called exactly once, before the mail can have
    /// been accepted; if it fails, nothing may be delivered.
    fn record(&mut self) -> Result<(), Stop>;
    /// Called before waiting (a backoff, a new connection): marks the previous mail `pending`
    /// now rather than after the wait; after Ctrl-C, stops the delivery ([`Stop::Interrupted`]).
    fn wait(&mut self) -> Result<(), Stop>;
}

/// A way to deliver mail.
pub trait Deliver: Send {
    /// Delivers `mail`, calling `book` as its methods say.
    fn deliver(&mut self, mail: &Mail, book: &mut dyn Book) -> Result<Delivered, Stop>;

    /// The TLS version of the current connection, if any.
    fn tls(&self) -> Option<String> {
        None
    }

    /// Ends the lane's connection politely.
    fn close(&mut self) {}
}

/// The local outbox: one `.eml` file per mail.
pub struct OutboxLane {
    pub dir: PathBuf,
}

impl Deliver for OutboxLane {
    fn deliver(&mut self, mail: &Mail, book: &mut dyn Book) -> Result<Delivered, Stop> {
        book.record()?;
        let path = outbox::write(&self.dir, mail).map_err(|e| Stop::Batch(e.into()))?;
        Ok(Delivered {
            reply: None,
            path: Some(path),
            attempts: 1,
        })
    }
}

/// One pooled SMTP session, reopened when it drops.
pub struct SmtpLane<'a> {
    target: &'a SmtpTarget,
    trace: Option<Trace>,
    session: Option<Session>,
    /// Whether a session has worked in this run: only then are reconnects retried (a server
    /// that cannot be reached at all fails fast instead of after every backoff).
    connected_before: bool,
    last_used: Instant,
}

impl<'a> SmtpLane<'a> {
    pub fn new(target: &'a SmtpTarget, trace: Option<Trace>) -> SmtpLane<'a> {
        SmtpLane {
            target,
            trace,
            session: None,
            connected_before: false,
            last_used: Instant::now(),
        }
    }

    /// Opens a session if there is none (retrying temporary failures), or checks an idle one.
    /// Returns whether the session is a new one.
    fn ensure_session(&mut self, book: &mut dyn Book) -> Result<bool, Stop> {
        if let Some(s) = self.session.as_mut()
            && self.last_used.elapsed() >= IDLE_CHECK
            && !s.noop()
        {
            self.session = None;
        }
        if self.session.is_some() {
            return Ok(false);
        }
        book.wait()?;
        let mut attempt = 1;
        loop {
            match self.target.open(self.trace.clone()) {
                Ok(s) => {
                    self.session = Some(s);
                    self.connected_before = true;
                    self.last_used = Instant::now();
                    return Ok(true);
                }
                Err(e)
                    if e.is_temporary()
                        && self.connected_before
                        && attempt <= self.target.settings.retries =>
                {
                    thread::sleep(retry::backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(Stop::Batch(e.into())),
            }
        }
    }
}

impl Deliver for SmtpLane<'_> {
    /// Sends over the session, retrying temporary failures on fresh connections. The mail is
    /// recorded while its first commands travel, and always before its body is sent: a server
    /// that cannot be reached leaves no record behind, and a crash after the server took the
    /// mail leaves a `sending` record naming it.
    fn deliver(&mut self, mail: &Mail, book: &mut dyn Book) -> Result<Delivered, Stop> {
        let mut attempt = 1;
        let mut recorded = false;
        let mut stale_retry_used = false;
        let mut fresh = false;
        loop {
            fresh |= self.ensure_session(book)?;
            let Some(mut session) = self.session.take() else {
                return Err(Stop::Batch(Error::Transport(TransportError::Closed {
                    stage: Stage::Connect,
                })));
            };
            let result = match session.start(&mail.from, &mail.to, mail.bytes.expose()) {
                Ok(t) => {
                    if !recorded {
                        // On failure the session is dropped mid-transaction: nothing is sent.
                        book.record()?;
                        recorded = true;
                    }
                    session
                        .confirm(t)
                        .and_then(|()| session.finish(mail.bytes.expose()))
                }
                Err(e) => Err(e),
            };
            self.last_used = Instant::now();
            let e = match result {
                Ok(reply) => {
                    self.session = Some(session);
                    return Ok(Delivered {
                        reply: Some(reply),
                        path: None,
                        attempts: attempt,
                    });
                }
                Err(e) => e,
            };
            let dead = retry::connection_lost(&e);
            if !dead {
                self.session = Some(session);
            }
            if dead && retry::lost_before_body(&e) && !fresh && !stale_retry_used {
                stale_retry_used = true;
                continue;
            }
            fresh = false;
            if retry::fatal_for_batch(&e) {
                return Err(Stop::Batch(e.into()));
            }
            if e.is_temporary() && attempt <= self.target.settings.retries {
                book.wait()?;
                thread::sleep(retry::backoff(attempt));
                attempt += 1;
                continue;
            }
            return Err(Stop::Recipient(e.into(), attempt));
        }
    }

    fn tls(&self) -> Option<String> {
        self.session
            .as_ref()
            .and_then(|s| s.tls().map(|t| t.version.clone()))
    }

    fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.quit();
        }
    }
}

/// A [`Deliver`] plus its own store connection (`None` in a dry run, which records nothing).
pub struct Lane<'a> {
    job: &'a Job<'a>,
    deliver: Box<dyn Deliver + 'a>,
    pace: Option<&'a Pace>,
    /// Set at Ctrl-C: a mail still waiting for its pacing slot is then not sent.
    abort: &'a AtomicBool,
    store: Option<Store>,
    /// Delivered, not yet marked `pending`: marked in the same commit that records the next
    /// mail as `sending`, or on its own before this lane waits for anything or stops.
    unmarked: Option<i64>,
}

impl<'a> Lane<'a> {
    pub fn new(
        job: &'a Job<'a>,
        deliver: Box<dyn Deliver + 'a>,
        pace: Option<&'a Pace>,
        abort: &'a AtomicBool,
        store: Option<Store>,
    ) -> Lane<'a> {
        Lane {
            job,
            deliver,
            pace,
            abort,
            store,
            unmarked: None,
        }
    }

    /// Marks the last delivered mail `pending`.
    pub fn flush(&mut self) -> Result<(), Error> {
        if let (Some(id), Some(store)) = (self.unmarked.take(), self.store.as_mut()) {
            store.mark_delivered(id, crate::unix_now())?;
        }
        Ok(())
    }

    /// Marks what is left and closes the connection.
    pub fn close(&mut self) -> Result<(), Error> {
        let flushed = self.flush();
        self.deliver.close();
        flushed
    }

    /// Delivers one recipient's mail and keeps the store in step with it.
    pub fn send(
        &mut self,
        recipient: &Recipient,
        composed: &Composed,
        resent: bool,
        replaced: Option<Existing>,
    ) -> Result<Outcome, Stop> {
        let mail = &composed.mail;
        if let Some(p) = self.pace.filter(|_| !self.job.dry_run) {
            let slot = p.reserve();
            if slot > Instant::now() {
                // The last mail's code must be verifiable while this one waits for its slot.
                self.flush().map_err(Stop::Batch)?;
                // A slot can be a minute away: Ctrl-C must not wait for it, nor send after it.
                while let Some(left) = slot.checked_duration_since(Instant::now()) {
                    if self.abort.load(Ordering::SeqCst) {
                        return Err(Stop::Interrupted);
                    }
                    thread::sleep(left.min(Duration::from_millis(50)));
                }
            }
        }
        let mut id = None;
        let delivered = {
            let Lane {
                deliver,
                store,
                unmarked,
                abort,
                ..
            } = self;
            let mut book = LaneBook {
                store: store.as_mut(),
                unmarked,
                recipient,
                composed,
                id: &mut id,
                abort,
            };
            deliver.deliver(mail, &mut book)
        };
        match (delivered, id) {
            (Ok(d), id) => {
                if self.store.is_some() {
                    // A mail went out: its record must exist, or a rerun would send it again.
                    self.unmarked = Some(id.ok_or_else(|| {
                        Stop::Batch(Error::Store(StoreError::Sqlite {
                            path: self.job.settings.store_path.clone(),
                            reason: "a mail went out without its record".into(),
                        }))
                    })?);
                }
                Ok(Outcome::Sent {
                    reply: d.reply,
                    tls: self.deliver.tls(),
                    path: d.path,
                    message_id: mail.message_id.clone(),
                    record: id,
                    size: mail.bytes.expose().len(),
                    expires: composed.expires,
                    attempts: d.attempts,
                    resent,
                    replaced,
                })
            }
            (Err(stop), Some(id)) => {
                // Best effort: the send error is what the user must see.
                if let Some(store) = self.store.as_mut() {
                    let _ = store.mark_failed(id, crate::unix_now());
                }
                Err(stop)
            }
            (Err(stop), None) => Err(stop),
        }
    }
}

/// [`Book`] for one mail of a [`Lane`].
struct LaneBook<'l> {
    store: Option<&'l mut Store>,
    unmarked: &'l mut Option<i64>,
    recipient: &'l Recipient,
    composed: &'l Composed,
    /// The mail's record, once made.
    id: &'l mut Option<i64>,
    /// Ctrl-C: no retry, no new connection after it.
    abort: &'l AtomicBool,
}

impl Book for LaneBook<'_> {
    fn record(&mut self) -> Result<(), Stop> {
        if let Some(store) = self.store.as_deref_mut() {
            *self.id = Some(record(store, self.unmarked, self.recipient, self.composed)?);
        }
        Ok(())
    }

    fn wait(&mut self) -> Result<(), Stop> {
        if let (Some(id), Some(store)) = (self.unmarked.take(), self.store.as_deref_mut()) {
            store
                .mark_delivered(id, crate::unix_now())
                .map_err(|e| Stop::Batch(e.into()))?;
        }
        // After Ctrl-C, the mail in flight is not retried (nor a connection made for it): it
        // was not delivered, and the next run sends it.
        if self.abort.load(Ordering::SeqCst) {
            return Err(Stop::Interrupted);
        }
        Ok(())
    }
}

/// Records `composed` as `sending` (marking the previous delivery `pending` in the same commit).
fn record(
    store: &mut Store,
    unmarked: &mut Option<i64>,
    to: &Recipient,
    composed: &Composed,
) -> Result<i64, Stop> {
    let delivered = unmarked.take();
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
        message_id: &composed.mail.message_id,
    };
    let id = store.insert_sending_after(delivered, new, crate::unix_now());
    if id.is_err() {
        // Rolled back: the earlier delivery still needs its mark.
        *unmarked = delivered;
    }
    id.map_err(|e| match e {
        // Another run holds this recipient of a shared batch now: it sends, this lane goes on.
        e @ StoreError::ClaimLost { .. } => Stop::Recipient(e.into(), 0),
        e => Stop::Batch(e.into()),
    })
}
