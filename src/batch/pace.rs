//! Pacing: at most `[smtp] max_per_minute` mails a minute across all connections, so a batch
//! stays inside a provider's sending limit instead of being cut off half-way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces sends out to at most `n` a minute, across all connections.
pub struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    pub fn per_minute(n: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(60) / n.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Takes the next slot and returns when it comes; the caller waits until then (after
    /// finishing what must not wait with it).
    pub fn reserve(&self) -> Instant {
        match self.next.lock() {
            Ok(mut next) => {
                let slot = (*next).max(Instant::now());
                *next = slot + self.interval;
                slot
            }
            Err(_) => Instant::now(),
        }
    }
}
