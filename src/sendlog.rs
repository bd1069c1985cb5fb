//! The send log: one line per mail, like msmtp's `logfile`, for operators who need to answer
//! "did Alice's mail go out, when, through which server, and what did it say?".
//!
//! ```text
//! 2026-11-24T12:00:00Z host=smtp.gmail.com:465 tls=TLSv1.3 user=admin@example.org from=admin@example.org to=alice@example.org kind=otp size=4089 smtpstatus=250 smtpmsg='2.0.0 OK' exitcode=EX_OK
//! ```
//!
//! Never a code, secret or password: only envelope data and the server's reply. The file is
//! created 0600 (its directory 0700) and opened for appending, never through a link; each line is one `write`, so concurrent runs do not
//! interleave within a line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::exit;
use crate::transport::Reply;

/// Appends lines to the configured log file.
#[derive(Debug)]
pub struct SendLog {
    file: File,
    path: PathBuf,
}

/// One mail's line.
#[derive(Debug, Default)]
pub struct Entry<'a> {
    pub host: &'a str,
    pub tls: Option<&'a str>,
    pub user: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a str,
    pub kind: &'a str,
    pub size: Option<usize>,
    pub reply: Option<&'a Reply>,
    pub error: Option<String>,
    pub exit_code: u8,
}

/// The error for a log file that cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the send log {}: {reason}", path.display())]
pub struct LogError {
    pub path: PathBuf,
    pub reason: String,
}

impl SendLog {
    pub fn open(path: &Path) -> Result<SendLog, LogError> {
        let err = |e: std::io::Error| LogError {
            path: path.to_path_buf(),
            reason: crate::io_reason(&e),
        };
        crate::files::create_parent_dirs(path).map_err(err)?;
        let file = crate::files::open(path, OpenOptions::new().append(true), true).map_err(err)?;
        Ok(SendLog {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends one line.
    pub fn write(&mut self, e: &Entry<'_>) -> Result<(), LogError> {
        let line = format_line(SystemTime::now(), e);
        self.file
            .write_all(line.as_bytes())
            .map_err(|err| LogError {
                path: self.path.clone(),
                reason: crate::io_reason(&err),
            })
    }
}

/// A value safe for one log line: no control characters, quoted when it has spaces.
fn field(v: &str) -> String {
    let clean: String = v
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.contains([' ', '\'']) || clean.is_empty() {
        format!("'{}'", clean.replace('\'', "\""))
    } else {
        clean
    }
}

fn exit_name(code: u8) -> &'static str {
    match code {
        exit::OK => "EX_OK",
        exit::USAGE => "EX_USAGE",
        exit::DATAERR => "EX_DATAERR",
        exit::NOINPUT => "EX_NOINPUT",
        exit::UNAVAILABLE => "EX_UNAVAILABLE",
        exit::SOFTWARE => "EX_SOFTWARE",
        exit::IOERR => "EX_IOERR",
        exit::TEMPFAIL => "EX_TEMPFAIL",
        exit::PROTOCOL => "EX_PROTOCOL",
        exit::NOPERM => "EX_NOPERM",
        exit::CONFIG => "EX_CONFIG",
        _ => "EX_OTHER",
    }
}

fn format_line(now: SystemTime, e: &Entry<'_>) -> String {
    let mut line = format!(
        "{} host={} tls={} user={} from={} to={} kind={}",
        humantime::format_rfc3339_seconds(now),
        field(e.host),
        field(e.tls.unwrap_or("none")),
        field(e.user.unwrap_or("none")),
        field(e.from),
        field(e.to),
        e.kind,
    );
    if let Some(size) = e.size {
        line.push_str(&format!(" size={size}"));
    }
    if let Some(r) = e.reply {
        line.push_str(&format!(
            " smtpstatus={} smtpmsg={}",
            r.code,
            field(&r.text())
        ));
    }
    if let Some(err) = &e.error {
        line.push_str(&format!(" errormsg={}", field(err)));
    }
    line.push_str(&format!(" exitcode={}\n", exit_name(e.exit_code)));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shape() {
        let reply = Reply {
            code: 250,
            lines: vec!["2.0.0 OK queued".into()],
        };
        let l = format_line(
            std::time::UNIX_EPOCH,
            &Entry {
                host: "smtp.example.org:465",
                tls: Some("TLSv1.3"),
                user: Some("me@example.org"),
                from: "me@example.org",
                to: "alice@example.org",
                kind: "otp",
                size: Some(4000),
                reply: Some(&reply),
                error: None,
                exit_code: 0,
            },
        );
        assert_eq!(
            l,
            "1970-01-01T00:00:00Z host=smtp.example.org:465 tls=TLSv1.3 user=me@example.org \
             from=me@example.org to=alice@example.org kind=otp size=4000 smtpstatus=250 \
             smtpmsg='2.0.0 OK queued' exitcode=EX_OK\n"
        );
    }

    #[test]
    fn values_cannot_break_the_line() {
        assert_eq!(field("a\nb"), "'a b'");
        assert_eq!(field("it's"), "'it\"s'");
    }
}
