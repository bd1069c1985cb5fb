//! Which transport failures are worth another attempt, and how long to wait before it.
//!
//! Decided from the error's type, never its text: a 4xx, a dropped connection or a timeout is
//! retried with exponential backoff; a 5xx is final for that recipient; anything that would hit
//! every recipient (TLS, login, no STARTTLS) stops the batch.

use std::time::Duration;

use crate::transport::{Reply, Stage, TransportError};

/// First retry delay; doubles each time.
pub const BACKOFF: Duration = Duration::from_millis(500);

/// Errors that mean the server (or the path to it) is unusable for everyone.
pub fn fatal_for_batch(e: &TransportError) -> bool {
    use TransportError::*;
    !matches!(
        e,
        Temporary { .. }
            | Permanent { .. }
            | Closed { .. }
            | Timeout { .. }
            | TooLarge { .. }
            | NeedsSmtpUtf8
    )
}

/// The wait before attempt `attempt + 1`: 0.5 s, 1 s, 2 s, … (capped at 32 s).
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF.saturating_mul(1 << (attempt.saturating_sub(1)).min(6))
}

/// The connection is gone (or the server said it is closing it): the session cannot be reused.
pub fn connection_lost(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Closed { .. } | TransportError::Timeout { .. }
    ) || matches!(
        e,
        TransportError::Temporary {
            reply: Reply { code: 421, .. },
            ..
        }
    )
}

/// The connection dropped before the message body went out: nothing was delivered, so a pooled
/// connection the server closed while idle can be replaced at once without counting an attempt.
pub fn lost_before_body(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Closed {
            stage: Stage::MailFrom | Stage::RcptTo | Stage::Data
        }
    )
}
