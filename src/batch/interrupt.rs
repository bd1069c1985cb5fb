//! Ctrl-C during a send: stop taking new recipients, finish and record the mails in flight, then
//! report, so that running the same command again sends to exactly the rest. Killing the process
//! at once would be safe too (an interrupted mail is found at the next start), but then nobody
//! learns what was sent. A second Ctrl-C ends the process at once, for a server that hangs, and
//! says so.
//!
//! The signals are read by a thread of their own (signal-hook's iterator), not in a handler:
//! it may print and exit, which a signal handler may not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use signal_hook::iterator::backend::Handle;

/// SIGINT handling for as long as it lives; the default behaviour returns when it is dropped.
pub struct Interrupt {
    requested: Arc<AtomicBool>,
    handle: Option<Handle>,
}

impl Interrupt {
    /// Catches SIGINT. If that cannot be done, Ctrl-C keeps its default effect (the process
    /// ends; the next run resends what was in flight), which is no reason to refuse to send.
    pub fn catch() -> Interrupt {
        let requested = Arc::new(AtomicBool::new(false));
        let Ok(mut signals) = Signals::new([SIGINT]) else {
            return Interrupt {
                requested,
                handle: None,
            };
        };
        let handle = signals.handle();
        let flag = Arc::clone(&requested);
        let started = std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if flag.swap(true, Ordering::SeqCst) {
                        say!(
                            "securemail: second Ctrl-C: stopping at once; a mail that was on the wire \
                             may or may not have been delivered (the next run sends it again)"
                        );
                        std::process::exit(i32::from(crate::exit::INTERRUPTED));
                    }
                }
            });
        if started.is_err() {
            handle.close();
            return Interrupt {
                requested,
                handle: None,
            };
        }
        Interrupt {
            requested,
            handle: Some(handle),
        }
    }

    /// Whether Ctrl-C was pressed.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        // Unregisters SIGINT (its default effect returns) and ends the thread.
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
    }
}
