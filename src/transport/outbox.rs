//! The local outbox: each mail as an `.eml` file, for trying securemail without an SMTP account
//! and for `--dry-run`.
//!
//! The files hold live secrets, so the directory is created 0700 and each file 0600, written
//! under a temporary name and renamed into place so that a reader never sees half a message.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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
    let tmp = dir.join(format!(".{name}.tmp"));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(&tmp, e))?;
    let written = file
        .write_all(mail.bytes.expose())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(&tmp, e));
    }
    fs::rename(&tmp, &path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        fail(&path, e)
    })?;
    Ok(path)
}
