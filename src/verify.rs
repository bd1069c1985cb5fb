//! Deciding whether a code the recipient sent back is good, and what that does to the record.
//!
//! The rules (NIST SP 800-63B, RFC 6238 §5.2):
//! - a key is single use and valid until its expiry;
//! - a TOTP enrolment is pending until the first accepted code (and expires if never confirmed),
//!   then verified for good: later codes keep verifying;
//! - a TOTP time step accepted once is never accepted again, nor any step before it;
//! - `max_attempts` consecutive wrong codes (replays included) lock the record;
//! - a key whose check symbol does not match (a typo, see [`crate::key`]) is refused without
//!   being compared and without counting as an attempt;
//! - all of it is decided and written in one SQLite write transaction ([`Store::with_current`]).
//!
//! Refusals carry what the user needs to know and never the code itself.

use crate::CodeKind;
use crate::config::Settings;
use crate::exit;
use crate::key;
use crate::otp::{self, OtpKey};
use crate::store::{Record, State, Store, StoreError, Update, Vault};

/// Why a code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no code was sent to {recipient}")]
    NoCode { recipient: String },
    #[error("wrong code for {recipient} ({left} attempt{} left)", if *left == 1 { "" } else { "s" })]
    Wrong {
        recipient: String,
        left: u32,
        kind: CodeKind,
    },
    #[error("wrong code for {recipient}; that was attempt {max} of {max}, the code is now locked")]
    NowLocked { recipient: String, max: u32 },
    #[error("that code for {recipient} was already used ({left} attempt{} left)", if *left == 1 { "" } else { "s" })]
    Replayed { recipient: String, left: u32 },
    #[error("the key sent to {recipient} was already used")]
    Used { recipient: String },
    #[error("the code sent to {recipient} has expired")]
    Expired { recipient: String },
    #[error("the code sent to {recipient} is locked after too many wrong attempts")]
    Locked { recipient: String },
    #[error("the code sent to {recipient} was revoked")]
    Revoked { recipient: String },
    #[error("the reply from {recipient} answers an older mail; a newer code was sent since")]
    AnswersOlderMail { recipient: String },
    #[error(
        "that is not the key sent to {recipient}: its check symbol does not match (a typo?); no attempt was counted"
    )]
    Mistyped { recipient: String },
}

impl Refusal {
    /// Whose code it was.
    pub fn recipient(&self) -> &str {
        match self {
            Refusal::NoCode { recipient }
            | Refusal::Wrong { recipient, .. }
            | Refusal::NowLocked { recipient, .. }
            | Refusal::Replayed { recipient, .. }
            | Refusal::Used { recipient }
            | Refusal::Expired { recipient }
            | Refusal::Locked { recipient }
            | Refusal::Revoked { recipient }
            | Refusal::AnswersOlderMail { recipient }
            | Refusal::Mistyped { recipient } => recipient,
        }
    }

    /// A short machine-readable reason, for `--json`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoCode { .. } => "no-code",
            Refusal::Wrong { .. } => "wrong",
            Refusal::NowLocked { .. } => "locked",
            Refusal::Replayed { .. } => "replayed",
            Refusal::Used { .. } => "used",
            Refusal::Expired { .. } => "expired",
            Refusal::Locked { .. } => "locked",
            Refusal::Revoked { .. } => "revoked",
            Refusal::AnswersOlderMail { .. } => "older-mail",
            Refusal::Mistyped { .. } => "mistyped",
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            // Bad input, decided before the record was looked at.
            Refusal::Mistyped { .. } => exit::DATAERR,
            _ => exit::REFUSED,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Refusal::NoCode { .. } => {
                Some("send one first: securemail send --otp|--key --to ADDR".into())
            }
            Refusal::Wrong { .. } | Refusal::Replayed { .. } => Some(
                "check the code; a TOTP code changes every period, so use the current one".into(),
            ),
            Refusal::NowLocked { .. }
            | Refusal::Locked { .. }
            | Refusal::Expired { .. }
            | Refusal::Used { .. }
            | Refusal::Revoked { .. } => Some("send a new code with securemail send".into()),
            Refusal::AnswersOlderMail { .. } => {
                Some("ask them to answer the newest mail, which carries the current code".into())
            }
            Refusal::Mistyped { .. } => Some(
                "copy the key from the mail again, with its last symbol (the check symbol)".into(),
            ),
        }
    }
}

/// A code that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub recipient: String,
    pub kind: CodeKind,
    /// True when this acceptance confirmed a TOTP enrolment (or used up a key).
    pub first: bool,
}

/// Verification could not even be decided.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("code refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored TOTP enrolment for {recipient} cannot be rebuilt: {reason}")]
    Otp { recipient: String, reason: String },
}

/// Checks `code` for `recipient` at unix time `now`, updating the store.
pub fn verify(
    store: &mut Store,
    settings: &Settings,
    recipient: &str,
    code: &str,
    now: i64,
) -> Result<Accepted, VerifyError> {
    let max = settings.max_attempts;
    let skew = settings.otp.skew;
    let issuer = settings.otp.issuer.clone();
    let outcome = store.with_current(recipient, now, |vault, record| {
        let Some(rec) = record else {
            return Ok((
                None,
                Err(Refusal::NoCode {
                    recipient: recipient.into(),
                }
                .into()),
            ));
        };
        Ok(decide(vault, rec, code, now, max, skew, &issuer))
    })?;
    outcome.map_err(|e| match e {
        Decision::Refused(r) => VerifyError::Refused(r),
        Decision::Otp(reason) => VerifyError::Otp {
            recipient: recipient.into(),
            reason,
        },
    })
}

enum Decision {
    Refused(Refusal),
    Otp(String),
}

impl From<Refusal> for Decision {
    fn from(r: Refusal) -> Decision {
        Decision::Refused(r)
    }
}

type Decided = (Option<Update>, Result<Accepted, Decision>);

fn decide(
    vault: &Vault,
    rec: &Record,
    code: &str,
    now: i64,
    max: u32,
    skew: u8,
    issuer: &str,
) -> Decided {
    let who = || rec.recipient.clone();
    let refuse = |r: Refusal| -> Decided { (None, Err(r.into())) };
    match rec.state {
        State::Locked => return refuse(Refusal::Locked { recipient: who() }),
        State::Revoked => return refuse(Refusal::Revoked { recipient: who() }),
        State::Expired => return refuse(Refusal::Expired { recipient: who() }),
        State::Verified if rec.kind == CodeKind::Key => {
            return refuse(Refusal::Used { recipient: who() });
        }
        State::Pending if now >= rec.expires => {
            let update = Update {
                attempts: rec.attempts,
                state: State::Expired,
                last_step: rec.last_step,
            };
            return (
                Some(update),
                Err(Refusal::Expired { recipient: who() }.into()),
            );
        }
        _ => {}
    }

    // A failed attempt: count it, lock at the limit.
    let fail = |replay: bool| -> Decided {
        let attempts = rec.attempts.saturating_add(1);
        let locked = attempts >= max;
        let update = Update {
            attempts,
            state: if locked { State::Locked } else { rec.state },
            last_step: rec.last_step,
        };
        let left = max.saturating_sub(attempts);
        let refusal = match (locked, replay) {
            (true, _) => Refusal::NowLocked {
                recipient: who(),
                max,
            },
            (false, true) => Refusal::Replayed {
                recipient: who(),
                left,
            },
            (false, false) => Refusal::Wrong {
                recipient: who(),
                left,
                kind: rec.kind,
            },
        };
        (Some(update), Err(refusal.into()))
    };
    let accept = |last_step: Option<i64>| -> Decided {
        let update = Update {
            attempts: 0,
            state: State::Verified,
            last_step,
        };
        let accepted = Accepted {
            recipient: who(),
            kind: rec.kind,
            first: rec.state == State::Pending,
        };
        (Some(update), Ok(accepted))
    };

    match rec.kind {
        CodeKind::Key => {
            let typed = key::normalise(code);
            if !key::is_well_formed(typed.expose()) {
                return refuse(Refusal::Mistyped { recipient: who() });
            }
            if vault.key_matches(rec, typed.expose()) {
                accept(None)
            } else {
                fail(false)
            }
        }
        CodeKind::Otp => {
            let Some(params) = rec.otp else {
                return (None, Err(Decision::Otp("parameters missing".into())));
            };
            let secret = match vault.unseal_otp(rec) {
                Ok(s) => s,
                Err(e) => return (None, Err(Decision::Otp(e.to_string()))),
            };
            let totp = match OtpKey::from_secret(params, issuer, &rec.recipient, secret.expose()) {
                Ok(t) => t,
                Err(e) => return (None, Err(Decision::Otp(e.to_string()))),
            };
            let typed = otp::normalise_code(code);
            let now = u64::try_from(now).unwrap_or(0);
            match totp.matching_step(&typed, now, skew) {
                Some(step) => {
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    if rec.last_step.is_some_and(|last| step <= last) {
                        fail(true)
                    } else {
                        accept(Some(step))
                    }
                }
                None => fail(false),
            }
        }
    }
}
