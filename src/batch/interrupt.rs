//! Ctrl-C during a send: stop taking new recipients, finish and record the mails in flight, then
//! report, so that running the same command again sends to exactly the rest. Killing the process
//! at once would be safe too (an interrupted mail is found at the next start), but then nobody
//! learns what was sent. A second Ctrl-C ends the process at once, for a server that hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::SigId;
use signal_hook::consts::SIGINT;

/// SIGINT handling for as long as it lives; the default behaviour returns when it is dropped.
pub struct Interrupt {
    requested: Arc<AtomicBool>,
    ids: Vec<SigId>,
}

impl Interrupt {
    /// Catches SIGINT. If that cannot be done, Ctrl-C keeps its default effect (the process
    /// ends; the next run resends what was in flight), which is no reason to refuse to send.
    pub fn catch() -> Interrupt {
        let requested = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        // The exit must be registered first: at the second Ctrl-C the flag is already set.
        let exit_code = i32::from(crate::exit::INTERRUPTED);
        if let Ok(id) =
            signal_hook::flag::register_conditional_shutdown(SIGINT, exit_code, requested.clone())
        {
            ids.push(id);
        }
        if let Ok(id) = signal_hook::flag::register(SIGINT, requested.clone()) {
            ids.push(id);
        }
        Interrupt { requested, ids }
    }

    /// Whether Ctrl-C was pressed.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
