//! Sending to many recipients: one personal mail each, over a few reused TLS connections,
//! resumable after a crash, with building overlapped with sending.
//!
//! - [`pipeline`]: feeder → builders → lanes, over bounded channels;
//! - [`lane`]: one delivery lane — a [`lane::Deliver`] (SMTP session or outbox) plus the store
//!   bookkeeping around each mail;
//! - [`retry`] and [`pace`]: what is retried and how fast mail may go;
//! - [`lock`]: one send run per SQLite store;
//! - [`shared`]: on PostgreSQL, one list split between the hosts that send it at once;
//! - [`interrupt`]: Ctrl-C finishes the mails in flight, then stops.

pub mod interrupt;
pub mod lane;
pub mod lock;
pub mod pace;
pub mod pipeline;
pub mod retry;
pub mod shared;

use std::path::PathBuf;
use std::time::Duration;

use crate::CodeKind;
use crate::config::Settings;
use crate::error::Error;
use crate::mail::Kit;
use crate::recipients::{LineProblem, Source};
use crate::store::State;
use crate::transport::Reply;
use crate::transport::smtp::Trace;

pub use pipeline::{run, standing};

/// What to send, to whom.
pub struct Job<'a> {
    pub settings: &'a Settings,
    pub kit: &'a Kit,
    pub kind: CodeKind,
    pub subject: String,
    pub source: Source,
    /// Valid recipients in `source` (from [`crate::recipients::check`]).
    pub total: usize,
    /// Invalid lines in `source` (reported, with `--skip-invalid`).
    pub invalid: usize,
    /// Names the set of valid recipients ([`crate::recipients::Checked::set_digest`]): a list
    /// sent from several hosts at once is one batch ([`shared`]).
    pub set_digest: [u8; 32],
    /// Replace what recipients hold (a live code, a verified enrolment, a locked record).
    pub resend: bool,
    /// Write every mail to the outbox, record nothing.
    pub dry_run: bool,
    /// Parallel SMTP connections.
    pub connections: usize,
    /// Optional global rate limit.
    pub max_per_minute: Option<u32>,
}

/// A recipient's current record, as a send found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Its record id in the store.
    pub id: i64,
    pub kind: CodeKind,
    /// As it stands now (a pending code past its expiry is `Expired`).
    pub state: State,
    pub expires: i64,
}

/// Why a plain send left a recipient alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A confirmed TOTP enrolment (or a used key): sending again would re-enrol them.
    Verified,
    /// Locked after wrong codes: an operator decides (`--resend` or `revoke`).
    Locked,
    /// A code that can still be used.
    Live,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Verified => "verified",
            SkipReason::Locked => "locked",
            SkipReason::Live => "live",
        }
    }
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
        /// The new code's record id (`None` on a dry run, which records nothing).
        record: Option<i64>,
        /// Bytes of the message.
        size: usize,
        expires: i64,
        attempts: u32,
        /// The previous run stopped while this recipient's mail was in flight.
        resent: bool,
        /// The record this code superseded (pending, verified or locked), if any.
        replaced: Option<Existing>,
    },
    /// The recipient holds something a plain send must not replace (no `resend`).
    Skipped {
        reason: SkipReason,
        existing: Existing,
    },
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
    /// Stopped by Ctrl-C before the end of the list: those not counted were not sent to.
    pub interrupted: bool,
    /// Of `sent`, those sent before Ctrl-C (the others were on the wire and finished after).
    pub sent_before_interrupt: usize,
    /// For a list several hosts shared ([`shared`]): how many of its recipients other runs
    /// sent to, on any host, earlier runs included.
    pub others: Option<usize>,
}

impl Summary {
    pub(crate) fn add(&mut self, outcome: &Outcome) {
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
    /// Ctrl-C was pressed: the batch stops after the mails in flight.
    fn interrupted(&mut self) {}
    /// Before any mail of a list shared by several hosts: its batch as this run found it.
    fn joined(&mut self, _batch: &crate::store::queue::Joined, _list: &str) {}
    /// Another run took `address` over: this one was silent for longer than its lease.
    fn lost(&mut self, _address: &str) {}
    /// A trace sink for connection `n`, for `-v`.
    fn trace(&self, _connection: usize) -> Option<Trace> {
        None
    }
}
