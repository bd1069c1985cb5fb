//! What the store holds about one issued code, independent of how it is stored.

use crate::CodeKind;
use crate::otp::{OtpAlgorithm, OtpParams};
use crate::secret::Secret;

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Built and being handed to the transport; not verifiable yet.
    Sending,
    /// The transport refused it; never reached the recipient.
    Failed,
    /// Delivered; waiting for the recipient's code.
    Pending,
    /// Accepted. A key is used up; a TOTP enrolment is confirmed and keeps verifying.
    Verified,
    /// Not confirmed in time.
    Expired,
    /// Too many wrong codes in a row: `max_attempts` for a pending code, 100 for a verified
    /// TOTP (which is throttled before that, see [`crate::limits`]).
    Locked,
    /// A newer code was sent to the same recipient.
    Superseded,
    /// Withdrawn by an operator.
    Revoked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Failed => "failed",
            State::Pending => "pending",
            State::Verified => "verified",
            State::Expired => "expired",
            State::Locked => "locked",
            State::Superseded => "superseded",
            State::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<State> {
        Some(match s {
            "sending" => State::Sending,
            "failed" => State::Failed,
            "pending" => State::Pending,
            "verified" => State::Verified,
            "expired" => State::Expired,
            "locked" => State::Locked,
            "superseded" => State::Superseded,
            "revoked" => State::Revoked,
            _ => return None,
        })
    }
}

/// One issued code. `sealed` is the MAC (keys) or ciphertext (TOTP), never the secret.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: i64,
    pub recipient: String,
    pub kind: CodeKind,
    pub created: i64,
    pub expires: i64,
    pub attempts: u32,
    pub state: State,
    pub last_step: Option<i64>,
    pub message_id: Option<String>,
    /// TOTP parameters the enrolment was issued with (`None` for keys).
    pub otp: Option<OtpParams>,
    /// Unix seconds before which no code is evaluated (a throttled verified TOTP).
    pub next_attempt: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

impl Record {
    /// When the next attempt is allowed, if that is still in the future at `now`.
    pub fn throttled_until(&self, now: i64) -> Option<i64> {
        self.next_attempt.filter(|&t| now < t)
    }
}

/// A change to the current record, decided by the caller of [`Store::with_current`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub attempts: u32,
    pub state: State,
    pub last_step: Option<i64>,
    /// See [`Record::next_attempt`].
    pub next_attempt: Option<i64>,
    /// This update follows a wrong code: it counts towards the recipient's daily budget.
    pub wrong: bool,
}

impl Update {
    /// What `r` holds now: the base for an update that changes only some fields.
    pub fn unchanged(r: &Record) -> Update {
        Update {
            attempts: r.attempts,
            state: r.state,
            last_step: r.last_step,
            next_attempt: r.next_attempt,
            wrong: false,
        }
    }
}

/// A code about to be sent, as [`super::Store::insert_sending`] records it.
pub struct NewRecord<'a> {
    pub recipient: &'a str,
    pub material: Material<'a>,
    /// Unix seconds.
    pub created: i64,
    pub expires: i64,
    pub message_id: &'a str,
}

/// What is stored for a new code.
pub enum Material<'a> {
    /// The TOTP secret bytes (sealed before storage) and the parameters given to the app.
    Otp(&'a Secret<Vec<u8>>, OtpParams),
    /// The canonical key (only its MAC is stored).
    Key(&'a Secret<String>),
}

/// A record's kind, state and TOTP parameters (algorithm, digits, period) as a database stores
/// them, checked; the error says what is wrong with a row.
pub(crate) fn parse_columns(
    kind: &str,
    state: &str,
    otp: (Option<String>, Option<i64>, Option<i64>),
) -> Result<(CodeKind, State, Option<OtpParams>), String> {
    let Some(kind) = CodeKind::parse(kind) else {
        return Err(format!("unknown kind {kind:?}"));
    };
    let Some(state) = State::parse(state) else {
        return Err(format!("unknown state {state:?}"));
    };
    let otp = match (kind, otp) {
        (CodeKind::Key, _) => None,
        (CodeKind::Otp, (Some(a), Some(d), Some(p))) => {
            match (OtpAlgorithm::parse(&a), u8::try_from(d), u64::try_from(p)) {
                (Some(algorithm), Ok(digits @ 6..=8), Ok(period @ 1..)) => Some(OtpParams {
                    algorithm,
                    digits,
                    period,
                }),
                _ => return Err(format!("bad TOTP parameters {a}/{d}/{p}")),
            }
        }
        (CodeKind::Otp, _) => return Err("TOTP parameters missing".into()),
    };
    Ok((kind, state, otp))
}
