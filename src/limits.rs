//! Per-recipient limits: how often one person may be sent a code, and may guess one.
//!
//! Someone who can put mail in the reply inbox, or run `reply`, gets one guess per wrong code.
//! Counting guesses per code lets every resend refill the budget, and locking a *verified* TOTP
//! lets forged replies lock its owner out. So the limits are per recipient and counted from the
//! store, in the transaction that acts on them:
//!
//! - wrong codes are counted across all of a recipient's codes over a rolling 24 hours
//!   (`[limits] wrong_attempts_per_day`); beyond that a reply is refused without being
//!   evaluated or counted;
//! - a verified TOTP is not locked by `max_attempts` wrong codes, only throttled: after the n-th wrong code in
//!   a row the next attempt waits [`backoff`]`(n)` (1 s doubling to 1 h), and only after
//!   [`MAX_CONSECUTIVE_FAILURES`] in a row (NIST SP 800-63B §5.2.2) does it lock for an operator;
//! - a recipient is sent at most `codes_per_day` codes in any 24 hours, and none sooner than
//!   `resend_cooldown` after the last.
//!
//! Refusals are temporary (exit 75) and say when to try again.

use crate::rfc3339;
use std::time::Duration;

use crate::config::LimitsPolicy;
use crate::exit;

/// The rolling window of the daily budgets, in seconds.
pub const DAY: i64 = 86_400;

/// Wait after the first wrong code in a row on a verified TOTP, in seconds; it doubles with
/// each further one.
pub const BACKOFF_BASE: i64 = 1;

/// The longest wait between attempts on a verified TOTP, in seconds.
pub const BACKOFF_CAP: i64 = 3_600;

/// Wrong codes in a row after which a verified TOTP locks and needs an operator (NIST SP
/// 800-63B §5.2.2 allows no more than 100).
pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;

/// Seconds to wait after the `failures`-th wrong code in a row: 1, 2, 4, … up to an hour.
pub fn backoff(failures: u32) -> i64 {
    match failures {
        0 => 0,
        n => (BACKOFF_BASE << (n - 1).min(20)).min(BACKOFF_CAP),
    }
}

/// `times` are the events (ascending, unix seconds) inside the rolling day that ends now. If
/// there are `max` or more, returns when enough of them will have left the window for one more.
pub fn day_budget_reopens(times: &[i64], max: u32) -> Option<i64> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    (times.len() >= max).then(|| times[times.len() - max] + DAY)
}

/// Why no code may be sent to a recipient now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendLimit {
    #[error("{recipient} was sent a code less than {} ago ([limits] resend_cooldown); the next may go {}", humantime::format_duration(*cooldown), when(*until))]
    Cooldown {
        recipient: String,
        cooldown: Duration,
        until: i64,
    },
    #[error("{recipient} was sent {max} codes in the last 24 hours ([limits] codes_per_day); the next may go {}", when(*until))]
    CodesPerDay {
        recipient: String,
        max: u32,
        until: i64,
    },
}

impl SendLimit {
    /// When sending to this recipient becomes possible again (unix seconds).
    pub fn until(&self) -> i64 {
        match self {
            SendLimit::Cooldown { until, .. } | SendLimit::CodesPerDay { until, .. } => *until,
        }
    }

    pub fn exit_code(&self) -> u8 {
        exit::TEMPFAIL
    }

    pub fn hint(&self) -> String {
        match self {
            SendLimit::Cooldown { .. } => {
                "mail can take a minute to arrive; run the same command again after that time"
                    .into()
            }
            SendLimit::CodesPerDay { .. } => {
                "ask the recipient to check their spam folder for the codes already sent; the \
                 limit is [limits] codes_per_day in the config"
                    .into()
            }
        }
    }
}

/// Whether `policy` lets a code go to `recipient` at `now`, given the creation times of the codes
/// issued to them in the last 24 hours (ascending).
pub fn check_send(
    policy: &LimitsPolicy,
    recipient: &str,
    issued: &[i64],
    now: i64,
) -> Result<(), SendLimit> {
    let cooldown = i64::try_from(policy.resend_cooldown.as_secs()).unwrap_or(DAY);
    if let Some(&last) = issued.last()
        && now < last + cooldown
    {
        return Err(SendLimit::Cooldown {
            recipient: recipient.into(),
            cooldown: policy.resend_cooldown,
            until: last + cooldown,
        });
    }
    if let Some(until) = day_budget_reopens(issued, policy.codes_per_day) {
        return Err(SendLimit::CodesPerDay {
            recipient: recipient.into(),
            max: policy.codes_per_day,
            until,
        });
    }
    Ok(())
}

/// `at 2026-11-25T10:49:00Z, in 42s`: a moment as RFC 3339 UTC and as a wait from now.
pub fn when(unix: i64) -> String {
    let wait = u64::try_from(unix - crate::unix_now()).unwrap_or(0);
    format!(
        "at {}, in {}",
        rfc3339(unix),
        humantime::format_duration(Duration::from_secs(wait.max(1)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        let waits: Vec<i64> = (0..=14).map(backoff).collect();
        assert_eq!(
            waits,
            [
                0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn the_day_budget_reopens_when_the_oldest_counted_event_ages_out() {
        assert_eq!(day_budget_reopens(&[10, 20], 3), None);
        assert_eq!(day_budget_reopens(&[10, 20, 30], 3), Some(10 + DAY));
        assert_eq!(day_budget_reopens(&[10, 20, 30, 40], 3), Some(20 + DAY));
    }

    #[test]
    fn sends_wait_for_the_cooldown_then_the_day() {
        let p = LimitsPolicy::default();
        assert_eq!(check_send(&p, "a@x", &[], 1000), Ok(()));
        assert!(matches!(
            check_send(&p, "a@x", &[990], 1000),
            Err(SendLimit::Cooldown { until: 1050, .. })
        ));
        assert_eq!(check_send(&p, "a@x", &[900], 1000), Ok(()));
        let five = [100, 200, 300, 400, 500];
        assert!(matches!(
            check_send(&p, "a@x", &five, 1000),
            Err(SendLimit::CodesPerDay { max: 5, until, .. }) if until == 100 + DAY
        ));
    }
}
