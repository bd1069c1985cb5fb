//! `securemail status` and `securemail revoke`: what was issued, and withdrawing it.

use clap::Args;
use serde::Serialize;

use super::Printer;
use super::output::rfc3339;
use crate::config::Settings;
use crate::error::Error;
use crate::mail::Recipient;
use crate::mail::mime::human_time;
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
        let width = records
            .iter()
            .map(|r| r.recipient.len())
            .max()
            .unwrap_or(9)
            .max(9);
        println!(
            "{:<width$}  KIND  {:<10}  {:<20}  {:<20}  ATTEMPTS  NEXT ATTEMPT",
            "RECIPIENT", "STATE", "CREATED", "EXPIRES"
        );
        for r in &records {
            let state = effective(r, now);
            let expires = if state == State::Verified && r.kind == crate::CodeKind::Otp {
                "-".to_string()
            } else {
                human_time(r.expires)
            };
            // To the second: throttling waits start at one second.
            let next = r.throttled_until(now).map_or_else(
                || "-".to_string(),
                |t| rfc3339(t).replace('T', " ").replace('Z', " UTC"),
            );
            println!(
                "{:<width$}  {:<4}  {:<10}  {:<20}  {:<20}  {:<8}  {next}",
                r.recipient,
                r.kind.as_str(),
                state.as_str(),
                human_time(r.created),
                expires,
                r.attempts
            );
        }
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
