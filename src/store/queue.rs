//! The queue behind one list sent by several hosts at once (PostgreSQL only): send runs that
//! beat a heartbeat, batches, and claims on a batch's recipients with a lease, taken with
//! `SELECT … FOR UPDATE SKIP LOCKED` (the standard queue pattern). [`crate::batch::shared`]
//! drives it; this module is its SQL. Times are the database server's clock, so the hosts' own
//! clocks never have to agree.
//!
//! What makes "each recipient exactly once" hold across hosts and crashes:
//! - a run records a mail (`sending`) only while it holds the recipient's claim, and keeps the
//!   claim's row locked until that record is committed (`PgStore::insert_sending_after`);
//! - a mail's delivery (`pending`) and its recipient's `sent` commit in one transaction
//!   ([`mark_sent`], from `pg::deliver_in`), so a recipient that was sent to is never claimed
//!   again;
//! - a claim is taken over only once its lease has run out, that is when its run stopped
//!   beating (killed, hung, cut off); the old run's `sending` record for the recipient, a mail
//!   that may have been in flight, is then failed and the recipient named as sent again
//!   ([`PgStore::claim`]).
//!
//! Rows are always locked in the same order — claim, then code — so that runs never deadlock.

use std::time::Duration;

#[cfg(feature = "postgres")]
use postgres::{GenericClient, Transaction};

#[cfg(feature = "postgres")]
use super::error::StoreError;
#[cfg(feature = "postgres")]
use super::pg::{LOCK_BATCH, PgStore, Place, RunIds};
use crate::CodeKind;

/// SQL condition on a `send_runs r`: the run is at work (not finished, and heard from within
/// its lease).
#[cfg(feature = "postgres")]
pub(super) const LIVE: &str =
    "r.finished IS NULL AND r.heartbeat + r.lease_ms * interval '1 millisecond' > now()";

/// Rows a new batch's items are inserted by, per statement.
#[cfg(feature = "postgres")]
const INSERT_CHUNK: usize = 1000;

/// A list to send, as the queue knows it.
#[derive(Debug, Clone)]
pub struct BatchSpec<'a> {
    /// Names the list: its recipient set, the kind and whether it replaces what they hold.
    pub identity: &'a str,
    pub kind: CodeKind,
    pub resend: bool,
    pub total: usize,
    /// A batch that no run has touched for this long starts over when the list is sent again
    /// (the codes it sent have expired by then).
    pub keep_for: Duration,
}

/// A recipient of a new batch.
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    pub recipient: &'a str,
    pub name: Option<&'a str>,
    pub line: usize,
}

/// A batch as a run found it when it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub batch: i64,
    pub total: usize,
    /// Whether this run made it (no other run had sent this list lately).
    pub created: bool,
    /// Recipients nobody has settled yet: the work left, for all runs.
    pub open: usize,
    /// Recipients sent to already.
    pub sent: usize,
    /// The other runs at work on it now: host name and process id.
    pub others: Vec<(String, i64)>,
    /// When the batch was finished (Unix seconds), if it was.
    pub finished: Option<i64>,
    /// When sending the same list again starts a new batch, if no run touches it before.
    pub renews: i64,
}

/// What [`PgStore::join_batch`] found.
#[cfg(feature = "postgres")]
pub enum Join<'a> {
    /// The batch exists (other runs are at it, or it was sent lately).
    Found(Joined),
    /// No such batch: this run makes it, item by item, in one transaction (other runs that
    /// want it wait, then join it).
    New(Creating<'a>),
}

/// A batch being made: [`Creating::add`] each recipient, then [`Creating::commit`].
#[cfg(feature = "postgres")]
pub struct Creating<'a> {
    tx: Transaction<'a>,
    run: &'a mut Option<RunIds>,
    at: &'a Place,
    batch: i64,
    total: usize,
    keep_for: Duration,
    recipients: Vec<String>,
    names: Vec<Option<String>>,
    lines: Vec<i64>,
}

#[cfg(feature = "postgres")]
impl Creating<'_> {
    pub fn add(&mut self, item: NewItem<'_>) -> Result<(), StoreError> {
        self.recipients.push(item.recipient.to_string());
        self.names.push(item.name.map(str::to_string));
        self.lines
            .push(i64::try_from(item.line).unwrap_or(i64::MAX));
        if self.recipients.len() >= INSERT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.recipients.is_empty() {
            return Ok(());
        }
        self.tx
            .execute(
                "INSERT INTO batch_items (batch, recipient, name, line)
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])",
                &[&self.batch, &self.recipients, &self.names, &self.lines],
            )
            .map_err(|e| self.at.err(e))?;
        self.recipients.clear();
        self.names.clear();
        self.lines.clear();
        Ok(())
    }

    /// Makes the batch visible to every run, this one working on it.
    pub fn commit(mut self) -> Result<Joined, StoreError> {
        self.flush()?;
        let at = self.at;
        let renews: f64 = self
            .tx
            .query_one(
                "SELECT extract(epoch FROM now())::float8 + $1::float8",
                &[&self.keep_for.as_secs_f64()],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| at.err(e))?;
        self.tx.commit().map_err(|e| at.err(e))?;
        if let Some(run) = self.run.as_mut() {
            run.batch = Some(self.batch);
        }
        Ok(Joined {
            batch: self.batch,
            total: self.total,
            created: true,
            open: self.total,
            sent: 0,
            others: Vec::new(),
            finished: None,
            renews: renews as i64,
        })
    }
}

/// A recipient this run now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub recipient: String,
    pub name: Option<String>,
    pub line: usize,
    /// A run that is gone held it, and its mail was in flight: it may have arrived.
    pub resent: bool,
}

/// What is open in a batch besides this run's own claims.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Elsewhere {
    /// Nothing: every recipient is settled or held by this run.
    Done,
    /// Unclaimed recipients (released by a run that stopped): claim again.
    Pending,
    /// Other runs hold claims; the earliest lease runs out in this long (zero: already).
    Wait(Duration),
}

/// How a recipient of a batch ended, other than sent (see [`mark_sent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Not sent, on purpose (it holds a code a plain send must not replace).
    Skipped,
    /// Not sent: refused, over a budget, or a temporary failure. Runs started later retry it.
    Failed,
}

impl Settled {
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Skipped => "skipped",
            Settled::Failed => "failed",
        }
    }
}

/// A batch's counts when a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Recipients sent to by this run.
    pub sent_here: usize,
    /// Recipients sent to by other runs (on any host, earlier runs included).
    pub sent_by_others: usize,
    /// Recipients still open (this run stopped early, or other runs still hold claims).
    pub open: usize,
}

#[cfg(feature = "postgres")]
fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

#[cfg(feature = "postgres")]
impl PgStore {
    /// The run this connection works for; an error if [`PgStore::begin_run`] was not called.
    fn run_ids(&mut self) -> Result<RunIds, StoreError> {
        let (_, run, at) = self.parts();
        run.ok_or_else(|| StoreError::Postgres {
            store: at.name(),
            reason: "no send run registered on this connection".into(),
        })
    }

    /// The batch this run works on.
    fn batch_ids(&mut self) -> Result<(i64, i64), StoreError> {
        let run = self.run_ids()?;
        let (_, _, at) = self.parts();
        run.batch
            .map(|b| (run.id, b))
            .ok_or_else(|| StoreError::Postgres {
                store: at.name(),
                reason: "this send run works on no batch".into(),
            })
    }

    /// Registers a send run of this process; every record it makes names it, and every
    /// connection made from this one ([`PgStore::another`]) works for it.
    pub fn begin_run(&mut self, host: &str, pid: u32, lease: Duration) -> Result<i64, StoreError> {
        let (client, run, at) = self.parts();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        let id: i64 = client
            .query_one(
                "INSERT INTO send_runs (host, pid, lease_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&host, &i64::from(pid), &lease_ms],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| at.err(e))?;
        *run = Some(RunIds { id, batch: None });
        Ok(id)
    }

    /// Joins the batch of `spec`, or starts making it. Failed and skipped recipients left by
    /// runs that are gone are opened again: a run started later sends to what is left.
    ///
    /// Long on purpose: one transaction, under the batch's advisory lock, that must see and
    /// change the batch, its runs and its items together.
    pub fn join_batch(&mut self, spec: &BatchSpec<'_>) -> Result<Join<'_>, StoreError> {
        let this = self.run_ids()?.id;
        let (client, run, at) = self.parts();
        let err = |e| at.err(e);
        let mut tx = client.transaction().map_err(err)?;
        // A run making the batch holds this lock while it writes the whole list: wait for it
        // longer than for a row (its connection ends, and the lock with it, if it dies).
        tx.batch_execute("SET LOCAL lock_timeout = '10min'")
            .map_err(err)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&LOCK_BATCH, &spec.identity],
        )
        .map_err(err)?;
        let found = tx
            .query_opt(
                &format!(
                    "SELECT b.id, b.total, extract(epoch FROM b.finished)::float8,
                            EXISTS (SELECT 1 FROM send_runs r WHERE r.batch = b.id AND {LIVE}),
                            extract(epoch FROM greatest(b.created, (SELECT max(r.heartbeat)
                                FROM send_runs r WHERE r.batch = b.id)))::float8,
                            extract(epoch FROM now())::float8
                     FROM batches b WHERE b.identity = $1"
                ),
                &[&spec.identity],
            )
            .map_err(err)?;
        let keep = spec.keep_for.as_secs_f64();
        if let Some(row) = found {
            let id: i64 = row.try_get(0).map_err(err)?;
            let live: bool = row.try_get(3).map_err(err)?;
            let last: f64 = row.try_get(4).map_err(err)?;
            let now: f64 = row.try_get(5).map_err(err)?;
            if live || now - last < keep {
                tx.execute(
                    "UPDATE send_runs SET batch = $2 WHERE id = $1",
                    &[&this, &id],
                )
                .map_err(err)?;
                let reopened = tx
                    .execute(
                        &format!(
                            "UPDATE batch_items i
                             SET state = 'pending', claimed_by = NULL, lease_until = NULL
                             WHERE i.batch = $1 AND i.state IN ('failed', 'skipped')
                               AND NOT EXISTS (SELECT 1 FROM send_runs r
                                               WHERE r.id = i.claimed_by AND {LIVE})"
                        ),
                        &[&id],
                    )
                    .map_err(err)?;
                if reopened > 0 {
                    tx.execute("UPDATE batches SET finished = NULL WHERE id = $1", &[&id])
                        .map_err(err)?;
                }
                let counts = tx
                    .query_one(
                        "SELECT count(*) FILTER (WHERE state IN ('pending', 'claimed')),
                                count(*) FILTER (WHERE state = 'sent'),
                                extract(epoch FROM (SELECT finished FROM batches WHERE id = $1))::float8
                         FROM batch_items WHERE batch = $1",
                        &[&id],
                    )
                    .map_err(err)?;
                let others = tx
                    .query(
                        &format!(
                            "SELECT r.host, r.pid FROM send_runs r
                             WHERE r.batch = $1 AND r.id <> $2 AND {LIVE} ORDER BY r.id"
                        ),
                        &[&id, &this],
                    )
                    .map_err(err)?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<Vec<(String, i64)>, postgres::Error>>()
                    .map_err(err)?;
                let total: i64 = row.try_get(1).map_err(err)?;
                let joined = Joined {
                    batch: id,
                    total: count(total),
                    created: false,
                    open: count(counts.try_get(0).map_err(err)?),
                    sent: count(counts.try_get(1).map_err(err)?),
                    others,
                    finished: counts
                        .try_get::<_, Option<f64>>(2)
                        .map_err(err)?
                        .map(|t| t as i64),
                    renews: (now.max(last) + keep) as i64,
                };
                tx.commit().map_err(err)?;
                if let Some(r) = run.as_mut() {
                    r.batch = Some(id);
                }
                return Ok(Join::Found(joined));
            }
            // Idle for longer than its codes live: the same list is a new batch now.
            tx.execute("DELETE FROM batches WHERE id = $1", &[&id])
                .map_err(err)?;
        }
        let total = i64::try_from(spec.total).unwrap_or(i64::MAX);
        let batch: i64 = tx
            .query_one(
                "INSERT INTO batches (identity, kind, resend, total) VALUES ($1, $2, $3, $4)
                 RETURNING id",
                &[&spec.identity, &spec.kind.as_str(), &spec.resend, &total],
            )
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        tx.execute(
            "UPDATE send_runs SET batch = $2 WHERE id = $1",
            &[&this, &batch],
        )
        .map_err(err)?;
        Ok(Join::New(Creating {
            tx,
            run,
            at,
            batch,
            total: spec.total,
            keep_for: spec.keep_for,
            recipients: Vec::new(),
            names: Vec::new(),
            lines: Vec::new(),
        }))
    }

    /// Claims up to `n` open recipients of the batch, in list order, for `lease`: unclaimed
    /// ones, and ones whose claim by another run ran out (that run is gone). Recipients other
    /// runs are claiming at this instant are skipped, never waited for. Never this run's own:
    /// after a pause its claims may have run out, but its mails to them may be under way (its
    /// heartbeat renews them). Leases count from the statement's own clock
    /// (`clock_timestamp()`), not the transaction's start, which a pause may have made old.
    pub fn claim(&mut self, n: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let (this, batch) = self.batch_ids()?;
        let (client, _, at) = self.parts();
        let err = |e| at.err(e);
        let mut tx = client.transaction().map_err(err)?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                "WITH picked AS (
                     SELECT recipient, claimed_by AS before FROM batch_items
                     WHERE batch = $1
                       AND (state = 'pending'
                            OR (state = 'claimed' AND lease_until < clock_timestamp()
                                AND claimed_by IS DISTINCT FROM $3))
                     ORDER BY line
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE batch_items i
                 SET state = 'claimed', claimed_by = $3,
                     lease_until = clock_timestamp() + $4::float8 * interval '1 second'
                 FROM picked p
                 WHERE i.batch = $1 AND i.recipient = p.recipient
                 RETURNING i.recipient, i.name, i.line, p.before",
                &[&batch, &limit, &this, &lease.as_secs_f64()],
            )
            .map_err(err)?;
        let mut claims = Vec::with_capacity(rows.len());
        let (mut runs, mut taken): (Vec<i64>, Vec<String>) = (Vec::new(), Vec::new());
        for row in &rows {
            let recipient: String = row.try_get(0).map_err(err)?;
            let line: i64 = row.try_get(2).map_err(err)?;
            if let Some(before) = row.try_get::<_, Option<i64>>(3).map_err(err)? {
                runs.push(before);
                taken.push(recipient.clone());
            }
            claims.push(Claim {
                recipient,
                name: row.try_get(1).map_err(err)?,
                line: usize::try_from(line).unwrap_or(0),
                resent: false,
            });
        }
        if !taken.is_empty() {
            // Taken over: the old run's mail to them may have been in flight when it stopped.
            let resent = tx
                .query(
                    "UPDATE codes c SET state = 'failed', updated = extract(epoch FROM now())::bigint
                     FROM unnest($1::bigint[], $2::text[]) AS t(run, recipient)
                     WHERE c.state = 'sending' AND c.run = t.run AND c.recipient = t.recipient
                     RETURNING c.recipient",
                    &[&runs, &taken],
                )
                .map_err(err)?
                .iter()
                .map(|r| r.try_get::<_, String>(0))
                .collect::<Result<std::collections::HashSet<_>, _>>()
                .map_err(err)?;
            for c in &mut claims {
                c.resent = resent.contains(&c.recipient);
            }
        }
        tx.commit().map_err(err)?;
        Ok(claims)
    }

    /// Whether anything of the batch is open besides this run's own claims.
    pub fn elsewhere(&mut self) -> Result<Elsewhere, StoreError> {
        let (this, batch) = self.batch_ids()?;
        let (client, _, at) = self.parts();
        let err = |e| at.err(e);
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'pending'),
                        count(*) FILTER (WHERE state = 'claimed' AND claimed_by IS DISTINCT FROM $2),
                        extract(epoch FROM min(lease_until - clock_timestamp())
                            FILTER (WHERE state = 'claimed' AND claimed_by IS DISTINCT FROM $2))::float8
                 FROM batch_items WHERE batch = $1 AND state IN ('pending', 'claimed')",
                &[&batch, &this],
            )
            .map_err(err)?;
        let pending: i64 = row.try_get(0).map_err(err)?;
        let held: i64 = row.try_get(1).map_err(err)?;
        let until: Option<f64> = row.try_get(2).map_err(err)?;
        Ok(if pending > 0 {
            Elsewhere::Pending
        } else if held > 0 {
            Elsewhere::Wait(Duration::from_secs_f64(until.unwrap_or(0.0).max(0.0)))
        } else {
            Elsewhere::Done
        })
    }

    /// Records how a claimed recipient ended, other than sent. False if this run no longer
    /// holds its claim (it paused for longer than its lease and another run took the
    /// recipient over): then that run's word on it counts, not this one's.
    pub fn settle(&mut self, recipient: &str, how: Settled) -> Result<bool, StoreError> {
        let (this, batch) = self.batch_ids()?;
        let (client, _, at) = self.parts();
        client
            .execute(
                "UPDATE batch_items SET state = $3, lease_until = NULL
                 WHERE batch = $1 AND recipient = $2 AND claimed_by = $4 AND state = 'claimed'",
                &[&batch, &recipient, &how.as_str(), &this],
            )
            .map(|n| n == 1)
            .map_err(|e| at.err(e))
    }

    /// Tells the other runs this one is alive, and extends the lease of its claims. Claims
    /// that are being recorded or delivered at this instant are skipped (their transaction
    /// settles them, or the next beat extends them): a beat never waits for a lane.
    pub fn heartbeat(&mut self, lease: Duration) -> Result<(), StoreError> {
        let run = self.run_ids()?;
        let (client, _, at) = self.parts();
        let err = |e| at.err(e);
        client
            .execute(
                "UPDATE send_runs SET heartbeat = clock_timestamp() WHERE id = $1",
                &[&run.id],
            )
            .map_err(err)?;
        if let Some(batch) = run.batch {
            client
                .execute(
                    "UPDATE batch_items
                     SET lease_until = clock_timestamp() + $3::float8 * interval '1 second'
                     WHERE batch = $1 AND recipient IN (
                         SELECT recipient FROM batch_items
                         WHERE batch = $1 AND claimed_by = $2 AND state = 'claimed'
                         FOR UPDATE SKIP LOCKED)",
                    &[&batch, &run.id, &lease.as_secs_f64()],
                )
                .map_err(err)?;
        }
        Ok(())
    }

    /// Ends this run: what it claimed and did not settle (it stopped early) is open to the
    /// others at once, and the run no longer counts as alive. With a batch, its counts.
    pub fn end_run(&mut self) -> Result<Option<Tally>, StoreError> {
        let run = self.run_ids()?;
        let (client, _, at) = self.parts();
        let err = |e| at.err(e);
        let mut tx = client.transaction().map_err(err)?;
        tx.execute(
            "UPDATE send_runs SET finished = now(), heartbeat = now() WHERE id = $1",
            &[&run.id],
        )
        .map_err(err)?;
        let Some(batch) = run.batch else {
            tx.commit().map_err(err)?;
            return Ok(None);
        };
        tx.execute(
            "UPDATE batch_items SET state = 'pending', claimed_by = NULL, lease_until = NULL
             WHERE batch = $1 AND claimed_by = $2 AND state = 'claimed'",
            &[&batch, &run.id],
        )
        .map_err(err)?;
        let row = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'sent' AND sent_by = $2),
                        count(*) FILTER (WHERE state = 'sent' AND sent_by IS DISTINCT FROM $2),
                        count(*) FILTER (WHERE state IN ('pending', 'claimed'))
                 FROM batch_items WHERE batch = $1",
                &[&batch, &run.id],
            )
            .map_err(err)?;
        let tally = Tally {
            sent_here: count(row.try_get(0).map_err(err)?),
            sent_by_others: count(row.try_get(1).map_err(err)?),
            open: count(row.try_get(2).map_err(err)?),
        };
        if tally.open == 0 {
            tx.execute(
                "UPDATE batches SET finished = now() WHERE id = $1 AND finished IS NULL",
                &[&batch],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Some(tally))
    }
}

#[cfg(feature = "postgres")]
/// `recipient`'s mail from `run` was delivered: it is sent, for every run. False if `run` does
/// not hold its claim (another run took it over). Locks the claim's row.
pub(super) fn mark_sent(
    tx: &mut impl GenericClient,
    batch: i64,
    run: i64,
    recipient: &str,
) -> Result<bool, postgres::Error> {
    tx.execute(
        "UPDATE batch_items SET state = 'sent', sent_by = $2, lease_until = NULL
         WHERE batch = $1 AND recipient = $3 AND claimed_by = $2 AND state = 'claimed'",
        &[&batch, &run, &recipient],
    )
    .map(|n| n == 1)
}

#[cfg(feature = "postgres")]
/// Undoes [`mark_sent`] in the same transaction, when the mail's record turned out to be failed
/// already (this run was taken for gone): the claim is left run out, for another run to take.
pub(super) fn unmark_sent(
    tx: &mut impl GenericClient,
    batch: i64,
    run: i64,
    recipient: &str,
) -> Result<(), postgres::Error> {
    tx.execute(
        "UPDATE batch_items SET state = 'claimed', sent_by = NULL, lease_until = now()
         WHERE batch = $1 AND recipient = $3 AND sent_by = $2 AND state = 'sent'",
        &[&batch, &run, &recipient],
    )
    .map(drop)
}
