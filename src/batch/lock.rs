//! One send run at a time per store, so that a record still `sending` at start-up can only mean
//! "in flight when an earlier run died".

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::Error;
use crate::store::StoreError;

/// An exclusive lock on the store for the duration of a send run (`<store>.lock`, holding the
/// owner's PID). It makes "still `sending` at start-up" mean "in flight when a run died".
pub struct SendLock {
    _file: File,
}

impl SendLock {
    pub fn acquire(store: &Path) -> Result<SendLock, Error> {
        let path = store.with_extension("lock");
        let io = |e: std::io::Error| {
            Error::Store(StoreError::Open {
                path: path.clone(),
                reason: crate::io_reason(&e),
            })
        };
        crate::files::create_parent_dirs(&path).map_err(io)?;
        // Never through a link: the file is truncated below.
        let mut file = crate::files::open(&path, OpenOptions::new().read(true).write(true), true)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                say!(
                    "securemail: waiting for another securemail send (pid {}) to finish with {}",
                    owner.trim(),
                    store.display()
                );
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(SendLock { _file: file })
    }
}
