//! `securemail status`: what was issued, to whom, in what state.
//!
//! For people, times are to the second in the machine's time zone with its offset (the zone
//! from `TZ` or `/etc/localtime`, through jiff), or in UTC with `--utc`; `--json` always writes
//! RFC 3339 UTC, which is what a script compares.

use clap::Args;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::Printer;
use super::output::rfc3339;
use crate::config::Settings;
use crate::error::Error;
use crate::mail::Recipient;
use crate::store::{Record, State, Store};
use crate::unix_now;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this recipient.
    #[arg(long, value_name = "ADDR")]
    pub to: Option<String>,
    /// Include superseded and failed records (the history), not only each recipient's current one.
    #[arg(long)]
    pub all: bool,
    /// Show times in UTC instead of this machine's time zone.
    #[arg(long)]
    pub utc: bool,
}

/// How times are shown to people: the machine's zone, or UTC.
struct Clock(Option<TimeZone>);

impl Clock {
    fn new(utc: bool) -> Clock {
        // A zone that cannot be determined (no TZ, no /etc/localtime) is UTC, said as such.
        Clock((!utc).then(|| TimeZone::try_system().ok()).flatten())
    }

    /// `2026-11-25 19:44:12 +01:00`, or `2026-11-25 18:44:12 UTC`.
    fn show(&self, unix: i64) -> String {
        let Ok(t) = Timestamp::from_second(unix) else {
            return rfc3339(unix);
        };
        match &self.0 {
            Some(tz) => t
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            None => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }
}

/// The state a record is in now: a pending code past its expiry is expired even if no reply
/// has touched it since.
pub(super) fn effective(r: &Record, now: i64) -> State {
    match r.state {
        State::Pending if now >= r.expires => State::Expired,
        s => s,
    }
}

/// `{"type":"record",…}`: one issued code. `state` is the record's state, not an outcome.
#[derive(Serialize)]
#[serde(tag = "type", rename = "record")]
struct RecordLine<'a> {
    recipient: &'a str,
    kind: &'static str,
    state: &'static str,
    created: String,
    expires: String,
    /// Wrong codes in a row since the last right one (the human column `WRONG IN A ROW`).
    attempts: u32,
    /// For a throttled verified TOTP: when the next code will be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<String>,
    message_id: Option<&'a str>,
}

/// `{"type":"store",…}`, the first line: the database and the id of the key that seals it
/// (`null` before the first code is issued, when neither exists yet).
#[derive(Serialize)]
#[serde(tag = "type", rename = "store")]
struct StoreLine<'a> {
    path: &'a str,
    key_id: Option<&'a str>,
}

impl StatusArgs {
    pub fn execute(self, settings: &Settings, out: Printer) -> Result<(), Error> {
        status(settings, out, self)
    }
}

/// The store line, then one line per record (a table for people, JSON lines otherwise).
fn status(settings: &Settings, out: Printer, args: StatusArgs) -> Result<(), Error> {
    let to = args
        .to
        .as_deref()
        .map(|t| Recipient::parse(t, None).map(|r| r.address))
        .transpose()?;
    // A read: no store means nothing was issued, and nothing is created.
    let store = Store::open_existing(settings)?;
    let path = Store::describe(settings);
    let key_id = store.as_ref().map(Store::key_id);
    let key_id = key_id.as_deref();
    out.emit(
        &StoreLine {
            path: &path,
            key_id,
        },
        || {
            Some(match key_id {
                Some(id) => format!("store: {path} (key id {id})"),
                None => format!("store: {path} (not created yet)"),
            })
        },
    );
    let records = match (&store, args.all) {
        (None, _) => Vec::new(),
        (Some(s), true) => s.records(to.as_deref())?,
        (Some(s), false) => s.current_records(to.as_deref())?,
    };
    let now = unix_now();
    if records.is_empty() {
        out.human(match &to {
            Some(_) => "no codes were sent to this recipient",
            None => "no codes issued yet",
        });
    } else if !out.is_json() {
        print_table(&records, now, &Clock::new(args.utc), out);
    }
    for r in &records {
        let line = RecordLine {
            recipient: &r.recipient,
            kind: r.kind.as_str(),
            state: effective(r, now).as_str(),
            created: rfc3339(r.created),
            expires: rfc3339(r.expires),
            attempts: r.attempts,
            next_attempt: r.throttled_until(now).map(rfc3339),
            message_id: r.message_id.as_deref(),
        };
        out.emit(&line, || None);
    }
    Ok(())
}

/// The human table: one line per record, times to the second.
fn print_table(records: &[Record], now: i64, clock: &Clock, out: Printer) {
    let width = records
        .iter()
        .map(|r| r.recipient.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let time = clock.show(0).len();
    out.human(&format!(
        "{:<width$}  KIND  {:<10}  {:<time$}  {:<time$}  WRONG IN A ROW  NEXT ATTEMPT",
        "RECIPIENT", "STATE", "CREATED", "EXPIRES"
    ));
    for r in records {
        let state = effective(r, now);
        let expires = if state == State::Verified && r.kind == crate::CodeKind::Otp {
            "-".to_string()
        } else {
            clock.show(r.expires)
        };
        let next = r
            .throttled_until(now)
            .map_or_else(|| "-".to_string(), |t| clock.show(t));
        out.human(&format!(
            "{:<width$}  {:<4}  {:<10}  {:<time$}  {:<time$}  {:<14}  {next}",
            r.recipient,
            r.kind.as_str(),
            state.as_str(),
            clock.show(r.created),
            expires,
            r.attempts
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_to_the_second_with_the_zone() {
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let clock = Clock(Some(paris));
        // 2026-11-25 18:44:12 UTC: winter, +01:00.
        assert_eq!(clock.show(1_795_632_252), "2026-11-25 19:44:12 +01:00");
        // Summer time: +02:00.
        assert_eq!(clock.show(1_782_000_000), "2026-06-21 02:00:00 +02:00");
        assert_eq!(Clock(None).show(1_795_632_252), "2026-11-25 18:44:12 UTC");
        assert_eq!(Clock(None).show(0), "1970-01-01 00:00:00 UTC");
    }
}
