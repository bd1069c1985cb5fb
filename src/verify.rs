//! Deciding whether a code the recipient sent back is good, and what that does to the record.
//!
//! The rules (NIST SP 800-63B, RFC 6238 §5.2):
//! - a key is single use and valid until its expiry;
//! - a TOTP enrolment is pending until the first accepted code (and expires if never confirmed),
//!   then verified for good: later codes keep verifying;
//! - a TOTP time step accepted once is never accepted again, nor any step before it;
//! - `max_attempts` consecutive wrong codes (replays included) lock a pending code;
//! - a verified TOTP is not locked by that: each wrong code in a row doubles the wait before
//!   the next attempt, and only [`limits::MAX_CONSECUTIVE_FAILURES`] in a row lock it
//!   (NIST SP 800-63B §5.2.2), so forged replies cannot lock its owner out quickly (with the
//!   daily budget, it takes days; `[reply] require_authenticated` stops forged mail counting);
//! - a recipient's wrong codes are budgeted per 24 hours across all their codes;
//! - a throttled or over-budget attempt is refused without being evaluated or counted (exit 75);
//! - a key whose check symbol does not match (a typo, see [`crate::key`]) is refused without
//!   being compared and without counting as an attempt;
//! - all of it is decided and written in one SQLite write transaction
//!   ([`Store::with_current_counted`]).
//!
//! Refusals carry what the user needs to know and never the code itself.

use std::fmt;

use crate::CodeKind;
use crate::config::Settings;
use crate::exit;
use crate::key;
use crate::limits::{self, MAX_CONSECUTIVE_FAILURES};
use crate::otp::{self, OtpKey};
use crate::store::{Record, State, Store, StoreError, Update, Vault};

/// What a wrong code leaves the recipient: attempts before the code locks, or a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A pending code: this many wrong codes more lock it.
    Left(u32),
    /// A verified TOTP: throttled until then (unix seconds).
    Wait(i64),
}

impl fmt::Display for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Next::Left(n) => write!(f, "{n} attempt{} left", if *n == 1 { "" } else { "s" }),
            Next::Wait(t) => write!(f, "next attempt allowed {}", limits::when(*t)),
        }
    }
}

/// Why a code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no code was sent to {recipient}")]
    NoCode { recipient: String },
    #[error("wrong code for {recipient} ({next})")]
    Wrong {
        recipient: String,
        next: Next,
        kind: CodeKind,
    },
    #[error("wrong code for {recipient}; that was attempt {max} of {max}, the code is now locked")]
    NowLocked { recipient: String, max: u32 },
    #[error("that code for {recipient} was already used ({next})")]
    Replayed { recipient: String, next: Next },
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
    #[error("{}; no attempt was counted", mistyped(.recipient, .expected))]
    Mistyped {
        recipient: String,
        expected: Expected,
    },
    #[error("too soon after a wrong code for {recipient}: not checked; next attempt allowed {}", limits::when(*until))]
    Throttled { recipient: String, until: i64 },
    #[error("{recipient} sent {max} wrong code{} in the last 24 hours ([limits] wrong_attempts_per_day): not checked; next attempt allowed {}", if *.max == 1 { "" } else { "s" }, limits::when(*until))]
    OverBudget {
        recipient: String,
        max: u32,
        until: i64,
    },
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
            | Refusal::Mistyped { recipient, .. }
            | Refusal::Throttled { recipient, .. }
            | Refusal::OverBudget { recipient, .. } => recipient,
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
            Refusal::Throttled { .. } => "throttled",
            Refusal::OverBudget { .. } => "budget",
        }
    }

    /// When a refusal without evaluation ends (unix seconds).
    pub fn retry_at(&self) -> Option<i64> {
        match self {
            Refusal::Throttled { until, .. } | Refusal::OverBudget { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// 1 for a code that was refused; 75 for one that was not looked at yet (try later).
    pub fn exit_code(&self) -> u8 {
        match self {
            // Bad input, decided before the record was looked at.
            Refusal::Mistyped { .. } => exit::DATAERR,
            Refusal::Throttled { .. } | Refusal::OverBudget { .. } => exit::TEMPFAIL,
            _ => exit::REFUSED,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Refusal::NoCode { .. } => {
                Some("send one first: securemail send --otp|--key --to ADDR".into())
            }
            Refusal::Wrong {
                kind: CodeKind::Otp,
                ..
            } => Some(
                "check the code; a TOTP code changes every period, so use the one the app shows now"
                    .into(),
            ),
            Refusal::Wrong {
                kind: CodeKind::Key,
                ..
            } => Some(
                "check the key against the mail (case, spaces and dashes do not matter); \
                 a key stays the same until it expires"
                    .into(),
            ),
            // Only a TOTP step can be replayed: a used key is `Used`.
            Refusal::Replayed { .. } => Some(
                "each TOTP code is accepted once; wait for the app to show the next one".into(),
            ),
            Refusal::Throttled { .. } => Some(
                "each wrong code in a row doubles the wait (1 s up to 1 h); a right code resets it. \
                 If the wrong codes were not the recipient's, someone may be guessing"
                    .into(),
            ),
            Refusal::OverBudget { .. } => Some(
                "the limit holds across resends; if the wrong codes were not the recipient's, \
                 someone may be guessing: see securemail status --to ADDR"
                    .into(),
            ),
            Refusal::Used { .. } => {
                Some("a key works once; send a new one with securemail send --key --to ADDR".into())
            }
            Refusal::NowLocked { .. }
            | Refusal::Locked { .. }
            | Refusal::Expired { .. }
            | Refusal::Revoked { .. } => Some("send a new code with securemail send".into()),
            Refusal::AnswersOlderMail { .. } => {
                Some("ask them to answer the newest mail, which carries the current code".into())
            }
            Refusal::Mistyped {
                expected: Expected::Key { other_kind: false } | Expected::KeyLength { .. },
                ..
            } => Some(
                "copy the key from the mail again, with its last symbol (the check symbol)".into(),
            ),
            Refusal::Mistyped {
                expected: Expected::Key { other_kind: true },
                ..
            } => Some(
                "type the key from the mail (letters and digits in groups, e.g. 7KQ2-9XMD-…), \
                 not a code from an authenticator app"
                    .into(),
            ),
            Refusal::Mistyped {
                expected: Expected::Otp { digits, other_kind },
                ..
            } => Some(format!(
                "type the {digits} digits the authenticator app shows now{}",
                if *other_kind {
                    ", not a key from a mail"
                } else {
                    ""
                }
            )),
        }
    }
}

/// The shape of code a record takes, when what was typed has another shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A key; `other_kind`: what was typed looks like a TOTP code (digits only).
    Key { other_kind: bool },
    /// A key of `symbols` symbols and its check symbol; what was typed is longer or shorter.
    KeyLength { symbols: usize },
    /// A TOTP code of `digits` digits; `other_kind`: what was typed looks like a key.
    Otp { digits: u8, other_kind: bool },
}

/// The first half of a [`Refusal::Mistyped`] message.
fn mistyped(recipient: &str, expected: &Expected) -> String {
    match expected {
        Expected::Key { other_kind: false } => format!(
            "that is not the key sent to {recipient}: its check symbol does not match (a typo?)"
        ),
        Expected::KeyLength { symbols } => format!(
            "that is not the key sent to {recipient}: a key is {symbols} symbols and a check \
             symbol (a typo?)"
        ),
        Expected::Key { other_kind: true } => format!(
            "that is not the key sent to {recipient}: it looks like a TOTP code, but {recipient} \
             was sent a one-time key"
        ),
        Expected::Otp {
            digits,
            other_kind: false,
        } => format!("that is not a TOTP code for {recipient}: it must be {digits} digits"),
        Expected::Otp {
            other_kind: true, ..
        } => format!(
            "that is not a TOTP code for {recipient}: it looks like a one-time key, but \
             {recipient} was enrolled in an authenticator app"
        ),
    }
}

/// Whether a typed code has the shape of `rec`'s kind; what it should have been if not. A code
/// of the wrong shape is bad input, not a guess: refused before the record's state is looked
/// at, and never counted.
///
/// A key has the configured number of symbols plus its check symbol, as the reply-mail reader
/// assumes too ([`crate::inbound::keys`]): a shorter or longer string that happens to end in a
/// fitting check symbol (any two digits `NN` do) is not a guess at the key.
fn shape(rec: &Record, code: &str, key_length: usize) -> Option<Expected> {
    match rec.kind {
        CodeKind::Key => {
            let typed = key::normalise(code);
            let typed = typed.expose();
            if typed.len() == key_length + 1 && key::is_well_formed(typed) {
                return None;
            }
            let digits_only = !typed.is_empty() && typed.bytes().all(|b| b.is_ascii_digit());
            Some(if digits_only && typed.len() <= 10 {
                Expected::Key { other_kind: true }
            } else if typed.len() != key_length + 1 {
                Expected::KeyLength {
                    symbols: key_length,
                }
            } else {
                Expected::Key { other_kind: false }
            })
        }
        CodeKind::Otp => {
            let digits = rec.otp.map_or(6, |p| p.digits);
            let typed = otp::normalise_code(code);
            if typed.len() == usize::from(digits) && typed.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let key = key::normalise(code);
            Some(Expected::Otp {
                digits,
                other_kind: key::is_well_formed(key.expose())
                    && key.expose().bytes().any(|b| b.is_ascii_alphabetic()),
            })
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

/// What [`decide`] needs from the settings.
struct Rules<'a> {
    /// Random symbols in a key (`[key] length`); a typed key has these plus its check symbol.
    key_length: usize,
    max_attempts: u32,
    wrong_per_day: u32,
    skew: u8,
    issuer: &'a str,
}

/// Checks `code` for `recipient` at unix time `now`, updating the store.
pub fn verify(
    store: &mut Store,
    settings: &Settings,
    recipient: &str,
    code: &str,
    now: i64,
) -> Result<Accepted, VerifyError> {
    verify_record(store, settings, recipient, code, now, now).1
}

/// How far back a reply's receipt time may put the TOTP window (see [`verify_record`]): twice
/// the daily budget's window, so that a right code held back until the budget frees up (up to
/// 24 hours) is still judged by its delivery time, with a missed run to spare.
pub const MAX_RECEIPT_AGE: i64 = 48 * 60 * 60;

/// [`verify`], also saying which record (id and kind) the code was checked against, for the
/// audit log: `None` when the recipient has none, or the store could not be read.
///
/// `typed_at` is when the code was written down: `now` for a code typed on the command line, the
/// time a reply mail was delivered for one read from a mail. A TOTP code is matched against the
/// time steps around `typed_at`, so that a reply that waited (throttled, over a budget, or just
/// unread in the Maildir) is judged by the code the app showed when it was written, not counted
/// as wrong because the app has moved on. It is clamped to [`MAX_RECEIPT_AGE`] before `now`
/// (never after); everything else (expiry, throttles, budgets, the attempt's time) is `now`.
/// The replay rule still holds: no step at or before the last accepted one is accepted.
pub fn verify_record(
    store: &mut Store,
    settings: &Settings,
    recipient: &str,
    code: &str,
    now: i64,
    typed_at: i64,
) -> (Option<(i64, CodeKind)>, Result<Accepted, VerifyError>) {
    let typed_at = typed_at.clamp(now.saturating_sub(MAX_RECEIPT_AGE), now);
    let rules = Rules {
        key_length: settings.key.length,
        max_attempts: settings.max_attempts,
        wrong_per_day: settings.limits.wrong_attempts_per_day,
        skew: settings.otp.skew,
        issuer: &settings.otp.issuer,
    };
    let mut checked = None;
    let outcome = store.with_current_counted(recipient, now, |vault, record, wrong| {
        let Some(rec) = record else {
            return Ok((
                None,
                Err(Refusal::NoCode {
                    recipient: recipient.into(),
                }
                .into()),
            ));
        };
        checked = Some((rec.id, rec.kind));
        Ok(decide(vault, rec, wrong, code, (now, typed_at), &rules))
    });
    let result = match outcome {
        Err(e) => Err(VerifyError::Store(e)),
        Ok(decided) => decided.map_err(|e| match e {
            Decision::Refused(r) => VerifyError::Refused(r),
            Decision::Otp(reason) => VerifyError::Otp {
                recipient: recipient.into(),
                reason,
            },
        }),
    };
    (checked, result)
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

/// Refuses without evaluating: a record that cannot verify, or a recipient over a budget.
fn screen(rec: &Record, wrong: &[i64], now: i64, rules: &Rules<'_>) -> Option<Decided> {
    let who = || rec.recipient.clone();
    let refuse = |r: Refusal| -> Option<Decided> { Some((None, Err(r.into()))) };
    match rec.state {
        State::Locked => return refuse(Refusal::Locked { recipient: who() }),
        State::Revoked => return refuse(Refusal::Revoked { recipient: who() }),
        State::Expired => return refuse(Refusal::Expired { recipient: who() }),
        State::Verified if rec.kind == CodeKind::Key => {
            return refuse(Refusal::Used { recipient: who() });
        }
        State::Pending if now >= rec.expires => {
            let update = Update {
                state: State::Expired,
                ..Update::unchanged(rec)
            };
            return Some((
                Some(update),
                Err(Refusal::Expired { recipient: who() }.into()),
            ));
        }
        _ => {}
    }
    // Over the day's budget, or throttled: whichever ends later is when to come back.
    let over = limits::day_budget_reopens(wrong, rules.wrong_per_day);
    let throttled = rec.throttled_until(now);
    match (over, throttled) {
        (Some(until), t) if t.is_none_or(|t| t <= until) => refuse(Refusal::OverBudget {
            recipient: who(),
            max: rules.wrong_per_day,
            until,
        }),
        (_, Some(until)) => refuse(Refusal::Throttled {
            recipient: who(),
            until,
        }),
        _ => None,
    }
}

/// A wrong (or replayed) code: counted; a pending code locks at `max_attempts`, a verified
/// TOTP waits longer before each further attempt and locks only at the NIST limit.
fn fail(rec: &Record, replay: bool, now: i64, rules: &Rules<'_>) -> Decided {
    let attempts = rec.attempts.saturating_add(1);
    let recipient = rec.recipient.clone();
    let throttles = rec.kind == CodeKind::Otp && rec.state == State::Verified;
    let max = if throttles {
        MAX_CONSECUTIVE_FAILURES
    } else {
        rules.max_attempts
    };
    let locked = attempts >= max;
    let next_attempt = (throttles && !locked).then(|| now + limits::backoff(attempts));
    let update = Update {
        attempts,
        state: if locked { State::Locked } else { rec.state },
        last_step: rec.last_step,
        next_attempt,
        wrong: true,
    };
    let next = match next_attempt {
        Some(t) => Next::Wait(t),
        None => Next::Left(max.saturating_sub(attempts)),
    };
    let refusal = match (locked, replay) {
        (true, _) => Refusal::NowLocked { recipient, max },
        (false, true) => Refusal::Replayed { recipient, next },
        (false, false) => Refusal::Wrong {
            recipient,
            next,
            kind: rec.kind,
        },
    };
    (Some(update), Err(refusal.into()))
}

fn decide(
    vault: &Vault,
    rec: &Record,
    wrong: &[i64],
    code: &str,
    (now, typed_at): (i64, i64),
    rules: &Rules<'_>,
) -> Decided {
    // A typo (wrong check symbol), or not a code of this kind at all, is bad input, not a
    // guess: refused before anything else.
    if let Some(expected) = shape(rec, code, rules.key_length) {
        let mistyped = Refusal::Mistyped {
            recipient: rec.recipient.clone(),
            expected,
        };
        return (None, Err(mistyped.into()));
    }
    if let Some(refused) = screen(rec, wrong, now, rules) {
        return refused;
    }
    let accept = |last_step: Option<i64>| -> Decided {
        let update = Update {
            attempts: 0,
            state: State::Verified,
            last_step,
            next_attempt: None,
            wrong: false,
        };
        let accepted = Accepted {
            recipient: rec.recipient.clone(),
            kind: rec.kind,
            first: rec.state == State::Pending,
        };
        (Some(update), Ok(accepted))
    };

    match rec.kind {
        CodeKind::Key => {
            let typed = key::normalise(code);
            if vault.key_matches(rec, typed.expose()) {
                accept(None)
            } else {
                fail(rec, false, now, rules)
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
            let totp =
                match OtpKey::from_secret(params, rules.issuer, &rec.recipient, secret.expose()) {
                    Ok(t) => t,
                    Err(e) => return (None, Err(Decision::Otp(e.to_string()))),
                };
            let typed = otp::normalise_code(code);
            let at = u64::try_from(typed_at).unwrap_or(0);
            match totp.matching_step(&typed, at, rules.skew) {
                Some(step) => {
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    if rec.last_step.is_some_and(|last| step <= last) {
                        fail(rec, true, now, rules)
                    } else {
                        accept(Some(step))
                    }
                }
                None => fail(rec, false, now, rules),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal, for each kind of code where the refusal can concern either.
    fn all(kind: CodeKind) -> Vec<Refusal> {
        let recipient = || "ann@example.org".to_string();
        let mut v = vec![
            Refusal::NoCode {
                recipient: recipient(),
            },
            Refusal::Wrong {
                recipient: recipient(),
                next: Next::Left(2),
                kind,
            },
            Refusal::NowLocked {
                recipient: recipient(),
                max: 5,
            },
            Refusal::Expired {
                recipient: recipient(),
            },
            Refusal::Locked {
                recipient: recipient(),
            },
            Refusal::Revoked {
                recipient: recipient(),
            },
            Refusal::AnswersOlderMail {
                recipient: recipient(),
            },
            Refusal::OverBudget {
                recipient: recipient(),
                max: 10,
                until: 0,
            },
        ];
        // Refusals that only one kind can meet.
        match kind {
            CodeKind::Key => v.extend([
                Refusal::Used {
                    recipient: recipient(),
                },
                Refusal::Mistyped {
                    recipient: recipient(),
                    expected: Expected::Key { other_kind: false },
                },
            ]),
            CodeKind::Otp => v.extend([
                Refusal::Mistyped {
                    recipient: recipient(),
                    expected: Expected::Otp {
                        digits: 6,
                        other_kind: false,
                    },
                },
                Refusal::Replayed {
                    recipient: recipient(),
                    next: Next::Left(2),
                },
                Refusal::Throttled {
                    recipient: recipient(),
                    until: 0,
                },
            ]),
        }
        v
    }

    #[test]
    fn a_key_is_never_told_about_totp() {
        for r in all(CodeKind::Key) {
            let hint = r.hint().unwrap_or_default();
            for word in ["TOTP", "period", "app", "--otp "] {
                assert!(!hint.contains(word), "{r:?}: {hint}");
            }
        }
    }

    #[test]
    fn a_totp_code_is_never_told_about_keys() {
        for r in all(CodeKind::Otp) {
            let hint = r.hint().unwrap_or_default();
            for word in ["the key", "a key", "check symbol", "dashes"] {
                assert!(!hint.contains(word), "{r:?}: {hint}");
            }
        }
    }

    #[test]
    fn wrong_codes_get_the_hint_of_their_kind() {
        let wrong = |kind| Refusal::Wrong {
            recipient: "ann@example.org".into(),
            next: Next::Left(1),
            kind,
        };
        assert!(
            wrong(CodeKind::Otp)
                .hint()
                .unwrap()
                .contains("TOTP code changes every period")
        );
        assert!(
            wrong(CodeKind::Key)
                .hint()
                .unwrap()
                .starts_with("check the key against the mail")
        );
    }

    #[test]
    fn a_code_of_the_other_kind_is_named() {
        let rec = |kind, digits| Record {
            id: 1,
            recipient: "ann@example.org".into(),
            kind,
            created: 0,
            expires: 1,
            attempts: 0,
            state: State::Pending,
            last_step: None,
            message_id: None,
            otp: (kind == CodeKind::Otp).then_some(crate::otp::OtpParams {
                algorithm: crate::otp::OtpAlgorithm::Sha1,
                digits,
                period: 30,
            }),
            next_attempt: None,
            sealed: Vec::new(),
        };
        let key = rec(CodeKind::Key, 6);
        let totp = rec(CodeKind::Otp, 6);
        // A key recipient who typed the six digits of an app.
        let e = shape(&key, "123 456", 12).unwrap();
        assert_eq!(e, Expected::Key { other_kind: true });
        let r = Refusal::Mistyped {
            recipient: "ann@example.org".into(),
            expected: e,
        };
        assert_eq!(
            r.to_string(),
            "that is not the key sent to ann@example.org: it looks like a TOTP code, but \
             ann@example.org was sent a one-time key; no attempt was counted"
        );
        assert!(
            r.hint()
                .unwrap()
                .contains("not a code from an authenticator app")
        );
        assert_eq!(r.exit_code(), exit::DATAERR);
        // Any two symbols can end in a fitting check symbol; a short or long string is no key.
        let check = |s: &str| format!("{s}{}", crate::key::check_symbol(s).unwrap());
        for typed in [check("A"), check("ABCDE"), check("7KQ29XMD4HTPQ")] {
            assert_eq!(
                shape(&key, &typed, 12),
                Some(Expected::KeyLength { symbols: 12 }),
                "{typed}"
            );
        }
        assert_eq!(shape(&key, &check("7KQ29XMD4HTP"), 12), None);
        // A TOTP recipient who typed a key, or too few digits, or a code with a newline.
        let k = crate::key::display(&format!(
            "7KQ29XMD4HT{}",
            crate::key::check_symbol("7KQ29XMD4HT").unwrap()
        ));
        assert_eq!(
            shape(&totp, k.expose(), 12),
            Some(Expected::Otp {
                digits: 6,
                other_kind: true
            })
        );
        assert_eq!(
            shape(&totp, "12345", 12),
            Some(Expected::Otp {
                digits: 6,
                other_kind: false
            })
        );
        assert_eq!(shape(&totp, "123-456\n", 12), None);
        assert_eq!(
            shape(&totp, "１２３４５６", 12),
            Some(Expected::Otp {
                digits: 6,
                other_kind: false
            })
        );
    }
}
