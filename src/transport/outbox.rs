//! The local outbox: each mail as an `.eml` file, for trying securemail without an SMTP account
//! and for `--dry-run`.
//!
//! The files hold live secrets, so the directory is created 0700 and each file 0600, written
//! under a temporary name and renamed into place (never over an existing file) so that a reader
//! never sees half a message.

use std::fs::{DirBuilder, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::TransportError;
use crate::mail::mime::{Mail, random_token};

/// Writes `mail` into `dir` and returns the file's path.
pub fn write(dir: &Path, mail: &Mail) -> Result<PathBuf, TransportError> {
    let fail = |path: &Path, e: std::io::Error| TransportError::Outbox {
        path: path.to_path_buf(),
        reason: crate::io_reason(&e),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(dir, e))?;

    // Microseconds keep names in sending order even for many mails a second.
    let stamp = humantime::format_rfc3339_micros(SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    let who: String = mail
        .to
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let token = random_token().map_err(|e| TransportError::Outbox {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let name = format!("{stamp}-{who}-{}.eml", &token[..8]);
    let path = dir.join(&name);

    // A hidden temporary name in the same directory; deleted again if anything below fails.
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| fail(dir, e))?;
    file.write_all(mail.bytes.expose())
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| fail(file.path(), e))?;
    // The name carries a random token; should it exist anyway, it is not ours to replace.
    file.persist_noclobber(&path)
        .map_err(|e| fail(&path, e.error))?;
    Ok(path)
}
