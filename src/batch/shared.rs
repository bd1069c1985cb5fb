//! One list, several hosts: on a PostgreSQL store, `send --to-list` started on several hosts at
//! once with the same list splits the work.
//!
//! Every send run registers itself ([`start`]) and beats a heartbeat ([`heartbeat`]) for as long
//! as it runs, so that the other hosts can tell a run at work from one that died: only the
//! `sending` records of runs that are gone count as interrupted. A list becomes a batch, named
//! by its set of recipients, the kind of code and `--resend`; the first run makes it, the others
//! join it, and each claims chunks of recipients ([`feed`]) for a lease that its heartbeat
//! extends. A run that is killed stops beating, its leases run out, and the others take its
//! recipients over — except those it had delivered, which were marked sent with the delivery.
//! Runs wait for each other's claims to be settled before they end, so every run of a batch
//! ends when the list is done, and a rerun anywhere sends only what is left.
//!
//! The SQL is [`crate::store::queue`]; this module decides when to call it. Built without
//! PostgreSQL, there are no runs to register and none of it is used.

#![cfg_attr(not(feature = "postgres"), allow(dead_code))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
#[cfg(feature = "postgres")]
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Job;
use crate::CodeKind;
use crate::error::Error;
#[cfg(feature = "postgres")]
use crate::recipients::{self, Entry, Source};
#[cfg(feature = "postgres")]
use crate::store::queue::{BatchSpec, Elsewhere, Join, NewItem};
use crate::store::queue::{Claim, Joined, Settled};
use crate::store::{Store, StoreError};

/// The longest a run waits before looking again at claims other runs hold.
const POLL: Duration = Duration::from_millis(500);
/// The shortest: a lease that just ran out is being taken over by someone.
const MIN_POLL: Duration = Duration::from_millis(50);

/// This process's send run on a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct Shared {
    pub lease: Duration,
    /// The list's batch (`--to-list`); `None` for `--to`, which only registers the run.
    pub batch: Option<Joined>,
    /// Recipients claimed at once: enough to keep the lanes busy, few enough that the last
    /// chunks spread over the hosts.
    chunk: usize,
}

/// Registers this run in a PostgreSQL store and, for a list, joins or makes its batch. `None`
/// for SQLite.
pub fn start(job: &Job<'_>, store: &mut Store) -> Result<Option<Shared>, Error> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = store.postgres() {
        let lease = job
            .settings
            .postgres
            .as_ref()
            .map_or(crate::config::DEFAULT_LEASE, |p| p.lease);
        pg.begin_run(&host_name(), std::process::id(), lease)?;
        let batch = match &job.source {
            Source::File(_) => Some(join(job, pg)?),
            Source::Args { .. } => None,
        };
        return Ok(Some(Shared {
            lease,
            batch,
            chunk: (8 * job.connections).clamp(8, 64),
        }));
    }
    let _ = (job, store);
    Ok(None)
}

/// The batch of `job`'s list: joined, or made from the list.
#[cfg(feature = "postgres")]
fn join(job: &Job<'_>, pg: &mut crate::store::pg::PgStore) -> Result<Joined, Error> {
    let identity = identity(&job.set_digest, job.kind, job.resend);
    let spec = BatchSpec {
        identity: &identity,
        kind: job.kind,
        resend: job.resend,
        total: job.total,
        keep_for: match job.kind {
            CodeKind::Otp => job.settings.otp.ttl,
            CodeKind::Key => job.settings.key.ttl,
        },
    };
    let mut creating = match pg.join_batch(&spec)? {
        Join::Found(joined) => return Ok(joined),
        Join::New(creating) => creating,
    };
    let mut failed = None;
    let streamed = recipients::stream(&job.source, |entry| {
        let Entry::Valid { line, recipient } = entry else {
            return true;
        };
        let name = recipient.mailbox.name.as_deref();
        let item = NewItem {
            recipient: &recipient.address,
            name,
            line,
        };
        match creating.add(item) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    // A list that changed since it was checked: nothing is made (the transaction is dropped).
    streamed?;
    Ok(creating.commit()?)
}

/// Names a batch: the list's recipient set, the kind of code and whether it replaces what the
/// recipients hold (a `--resend` of a list is not the same work as a plain send of it).
pub fn identity(set_digest: &[u8; 32], kind: CodeKind, resend: bool) -> String {
    let mut h = Sha256::new();
    h.update(b"securemail batch 1\0");
    h.update(set_digest);
    h.update(kind.as_str().as_bytes());
    h.update([u8::from(resend)]);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// This machine's name, as `uname -n` says it, for the other hosts' messages.
fn host_name() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    if name.is_empty() {
        "(unnamed host)".into()
    } else {
        name.into_owned()
    }
}

/// Claims the batch's recipients chunk by chunk and hands each to `each` (false: stop), until
/// nothing is open; then waits for the other runs' claims to be settled, taking over those
/// whose lease runs out, so that a killed run's share is sent too.
pub fn feed(
    shared: &Shared,
    store: &mut Store,
    abort: &AtomicBool,
    mut each: impl FnMut(&mut Store, Claim) -> bool,
) -> Result<(), StoreError> {
    #[cfg(feature = "postgres")]
    if store.postgres().is_some() && shared.batch.is_some() {
        while !abort.load(Ordering::SeqCst) {
            let claims = pg(store)?.claim(shared.chunk, shared.lease)?;
            if claims.is_empty() {
                match pg(store)?.elsewhere()? {
                    Elsewhere::Done => return Ok(()),
                    Elsewhere::Pending => continue,
                    Elsewhere::Wait(until) => {
                        nap(until.clamp(MIN_POLL, POLL), abort);
                        continue;
                    }
                }
            }
            for claim in claims {
                if !each(store, claim) {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
    let _ = (shared, store, abort, &mut each);
    Ok(())
}

/// The PostgreSQL store behind `store`.
#[cfg(feature = "postgres")]
fn pg(store: &mut Store) -> Result<&mut crate::store::pg::PgStore, StoreError> {
    let name = store.backend();
    store.postgres().ok_or_else(|| StoreError::Postgres {
        store: name.into(),
        reason: "a shared batch needs a PostgreSQL store".into(),
    })
}

/// Sleeps for `d`, waking early for an abort.
fn nap(d: Duration, abort: &AtomicBool) {
    let end = std::time::Instant::now() + d;
    while !abort.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(MIN_POLL));
    }
}

/// Beats this run's heartbeat every third of its lease until `stop` is dropped. A beat that
/// fails is tried again on a new connection; if none gets through for a whole lease, the other
/// runs take this one's claims over, and its lanes find out when they record a mail.
#[cfg(feature = "postgres")]
pub fn heartbeat(shared: &Shared, mut store: Store, stop: &Receiver<()>) {
    let every = shared.lease / 3;
    let mut said = false;
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let beat = match store.postgres() {
            Some(pg) => pg.heartbeat(shared.lease),
            None => return,
        };
        if let Err(e) = beat {
            if !said {
                eprintln!("securemail: cannot renew this run's lease: {e}; trying again");
                said = true;
            }
            if let Ok(s) = store.another() {
                store = s;
            }
        }
    }
}

/// Without PostgreSQL there are no send runs to keep alive.
#[cfg(not(feature = "postgres"))]
pub fn heartbeat(_shared: &Shared, _store: Store, _stop: &Receiver<()>) {}

/// Records that this run settled `recipient` of the batch without sending to it. False if the
/// claim was no longer this run's (another run took it over during a pause): the outcome this
/// run found is not the recipient's then.
pub fn settle(store: &mut Store, recipient: &str, how: Settled) -> Result<bool, StoreError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = store.postgres() {
        return pg.settle(recipient, how);
    }
    let _ = (store, recipient, how);
    Ok(true)
}

/// Ends the run (what it claimed and did not get to is open to the others at once). For a
/// batch: how many recipients other runs sent to.
pub fn finish(shared: &Shared, store: &mut Store) -> Result<Option<usize>, StoreError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = store.postgres() {
        let tally = pg.end_run()?;
        return Ok(shared.batch.as_ref().and(tally).map(|t| t.sent_by_others));
    }
    let _ = (shared, store);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_named_by_its_set_its_kind_and_resend() {
        let a = identity(&[1; 32], CodeKind::Otp, false);
        assert_eq!(a.len(), 64);
        assert_eq!(a, identity(&[1; 32], CodeKind::Otp, false));
        assert_ne!(a, identity(&[2; 32], CodeKind::Otp, false));
        assert_ne!(a, identity(&[1; 32], CodeKind::Key, false));
        assert_ne!(a, identity(&[1; 32], CodeKind::Otp, true));
    }
}
