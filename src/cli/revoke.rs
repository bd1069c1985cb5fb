//! `securemail revoke`: withdraw a recipient's pending or verified code.

use clap::Args;
use serde::Serialize;

use super::status::effective;
use super::{Printer, audited};
use crate::audit::{self, Audit, Event, EventType};
use crate::config::Settings;
use crate::error::Error;
use crate::mail::Recipient;
use crate::store::{State, Store, Update};
use crate::unix_now;

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The recipient whose code to invalidate.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
}

impl RevokeArgs {
    pub fn execute(self, settings: &Settings, out: Printer) -> Result<(), Error> {
        revoke(settings, out, self)
    }
}

/// `{"type":"revoked",…}`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "revoked")]
struct RevokedLine<'a> {
    recipient: &'a str,
    kind: &'static str,
    /// The state the code was in.
    was: &'static str,
}

fn revoke(settings: &Settings, out: Printer, args: RevokeArgs) -> Result<(), Error> {
    let to = Recipient::parse(&args.to, None)?;
    // Opened first: a command that cannot keep its audit trail does nothing.
    let mut audit = Audit::open(settings.audit_file.as_deref(), audit::Command::Revoke)?;
    let result = withdraw(settings, out, &to, &mut audit);
    audited(result, audit)
}

fn withdraw(
    settings: &Settings,
    out: Printer,
    to: &Recipient,
    audit: &mut Audit,
) -> Result<(), Error> {
    let store = Store::open_existing(settings)?;
    let now = unix_now();
    // No store: nothing was ever issued (and nothing is created).
    let revoked = match store {
        None => None,
        Some(mut store) => store.with_current(&to.address, now, |_, rec| {
            Ok(match rec {
                Some(r) if matches!(effective(r, now), State::Pending | State::Verified) => (
                    Some(Update {
                        state: State::Revoked,
                        ..Update::unchanged(r)
                    }),
                    Some((r.id, r.kind, effective(r, now))),
                ),
                _ => (None, None),
            })
        })?,
    };
    let event = match revoked {
        Some((id, kind, was)) => Event::new(EventType::Revoke, audit::Outcome::Revoked)
            .record(Some(id))
            .kind(kind)
            .was(was.as_str()),
        None => Event::new(EventType::Revoke, audit::Outcome::Nothing),
    };
    audit.record(&event.recipient(&to.address));
    match revoked {
        Some((_, kind, was)) => {
            let line = RevokedLine {
                recipient: &to.address,
                kind: kind.as_str(),
                was: was.as_str(),
            };
            out.emit(&line, || {
                Some(format!(
                    "revoked the {} {} of {}; it will not verify again",
                    was.as_str(),
                    kind.describe(),
                    to.address
                ))
            });
            Ok(())
        }
        None => Err(Error::Nothing {
            message: format!("{} has no pending or verified code to revoke", to.address),
        }),
    }
}
