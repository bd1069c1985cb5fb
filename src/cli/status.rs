//! `securemail status` and `securemail revoke`: what was issued, and withdrawing it.

use serde_json::json;

use super::{Output, RevokeArgs, StatusArgs};
use crate::config::Settings;
use crate::error::Error;
use crate::mail::Recipient;
use crate::mail::mime::human_time;
use crate::store::{Record, State, Store, Update};
use crate::unix_now;

/// The state a record is in now: a pending code past its expiry is expired even if no reply
/// has touched it since.
fn effective(r: &Record, now: i64) -> State {
    match r.state {
        State::Pending if now >= r.expires => State::Expired,
        s => s,
    }
}

pub(super) fn status(settings: &Settings, out: Output, args: StatusArgs) -> Result<(), Error> {
    let to = args
        .to
        .as_deref()
        .map(|t| Recipient::parse(t, None).map(|r| r.address))
        .transpose()?;
    let store = Store::open_waiting(&settings.store_path, settings.store_lock_timeout)?;
    let records = if args.all {
        store.records(to.as_deref())?
    } else {
        store.current_records(to.as_deref())?
    };
    let now = unix_now();
    if records.is_empty() {
        out.human(match &to {
            Some(_) => "no codes were sent to this recipient",
            None => "no codes issued yet",
        });
    } else if !out.json {
        let width = records
            .iter()
            .map(|r| r.recipient.len())
            .max()
            .unwrap_or(9)
            .max(9);
        println!(
            "{:<width$}  KIND  {:<10}  {:<20}  {:<20}  ATTEMPTS",
            "RECIPIENT", "STATE", "CREATED", "EXPIRES"
        );
        for r in &records {
            let state = effective(r, now);
            let expires = if state == State::Verified && r.kind == crate::CodeKind::Otp {
                "-".to_string()
            } else {
                human_time(r.expires)
            };
            println!(
                "{:<width$}  {:<4}  {:<10}  {:<20}  {:<20}  {}",
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
        out.json(&json!({
            "recipient": r.recipient,
            "kind": r.kind.as_str(),
            "state": effective(r, now).as_str(),
            "created": r.created,
            "expires": r.expires,
            "attempts": r.attempts,
            "message_id": r.message_id,
        }));
    }
    Ok(())
}

pub(super) fn revoke(settings: &Settings, out: Output, args: RevokeArgs) -> Result<(), Error> {
    let to = Recipient::parse(&args.to, None)?;
    let mut store = Store::open_waiting(&settings.store_path, settings.store_lock_timeout)?;
    let now = unix_now();
    let revoked = store.with_current(&to.address, now, |_, rec| {
        Ok(match rec {
            Some(r) if matches!(effective(r, now), State::Pending | State::Verified) => (
                Some(Update {
                    attempts: r.attempts,
                    state: State::Revoked,
                    last_step: r.last_step,
                }),
                Some((r.kind, effective(r, now))),
            ),
            _ => (None, None),
        })
    })?;
    match revoked {
        Some((kind, was)) => {
            out.human(&format!(
                "revoked the {} {} of {}; it will not verify again",
                was.as_str(),
                kind.describe(),
                to.address
            ));
            out.json(&json!({
                "recipient": to.address,
                "kind": kind.as_str(),
                "result": "revoked",
                "was": was.as_str(),
            }));
            Ok(())
        }
        None => Err(Error::Nothing {
            message: format!("{} has no pending or verified code to revoke", to.address),
        }),
    }
}
