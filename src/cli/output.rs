//! Everything a command prints goes through one [`Printer`], which knows whether the user asked
//! for people's text or JSON lines (`--json`), and how verbose to be (`-v`, `-vv`).
//!
//! JSON output is a contract: each line is one object built from a `#[derive(Serialize)]`
//! struct, tagged with `"type"` (`"recipient"`, `"reply"`, `"record"`, `"revoked"`, `"check"`,
//! `"migrated"`, `"summary"`, `"error"`), with times as RFC 3339 UTC strings. The README
//! documents the schema.
//!
//! Nothing writes to stdout except through [`write_stdout`], which treats a reader that went away
//! (`securemail status | head -1`: EPIPE) as the end of output rather than an error: later lines
//! are dropped, the command finishes its work and exits as it would have. `println!` would panic
//! there (Rust ignores SIGPIPE, so the write fails instead of the process being killed).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;

use crate::error::Error;
use crate::transport::smtp::Trace;

/// Set once stdout cannot be written to any more (its reader went away): later output is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Why stdout could not be written, when the reason was not a reader that went away.
static STDOUT_ERROR: OnceLock<String> = OnceLock::new();

/// Writes `bytes` to stdout, locked, in one go. A reader that has gone (EPIPE) ends output
/// quietly; any other failure (a full disk behind a redirect) is kept for [`stdout_error`], so
/// that the command, having finished its work, exits 74 instead of 0. Either way nothing more is
/// written to stdout, and the command carries on.
pub fn write_stdout(bytes: &[u8]) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(crate::io_reason(&e));
        }
    }
}

/// Why output was lost, if a write to stdout failed for another reason than EPIPE.
pub fn stdout_error() -> Option<String> {
    STDOUT_ERROR.get().cloned()
}

/// One line on stdout, through [`write_stdout`].
pub fn write_line(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    write_stdout(line.as_bytes());
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
    verbose: u8,
    started: Instant,
}

impl Printer {
    pub fn new(json: bool, verbose: u8) -> Printer {
        Printer {
            json,
            verbose,
            started: Instant::now(),
        }
    }

    /// Whether output is JSON lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One result: `item` as a JSON line with `--json`, otherwise the text `human` gives (if
    /// any) as a line on stdout.
    pub fn emit<T: Serialize>(&self, item: &T, human: impl FnOnce() -> Option<String>) {
        if self.json {
            match serde_json::to_string(item) {
                Ok(line) => write_line(&line),
                // Our own structs of strings and numbers always serialise; say so if not.
                Err(e) => say!("securemail: cannot write a JSON line: {e}"),
            }
        } else if let Some(text) = human() {
            write_line(&text);
        }
    }

    /// A line for people only (nothing with `--json`).
    pub fn human(&self, line: &str) {
        if !self.json {
            write_line(line);
        }
    }

    /// Progress for `-v`, on stderr; `-vv` adds the time since the start.
    pub fn verbose(&self, line: &str) {
        if self.verbose > 0 {
            say!("securemail: {}{line}", self.stamp());
        }
    }

    /// A sink for the SMTP dialogue when `-v` is given; `tag` tells connections apart. With
    /// `-vv` each line carries the milliseconds since the command started, so a slow step shows.
    pub fn smtp_trace(&self, tag: &str) -> Option<Trace> {
        let tag = tag.to_string();
        let printer = *self;
        (self.verbose > 0).then(|| {
            Arc::new(move |line: &str| say!("securemail: {}smtp{tag}: {line}", printer.stamp()))
                as Trace
        })
    }

    fn stamp(&self) -> String {
        if self.verbose >= 2 {
            format!(
                "[{:>9.1} ms] ",
                self.started.elapsed().as_secs_f64() * 1000.0
            )
        } else {
            String::new()
        }
    }

    /// Reports the error that ends the command: `securemail: error: …` and `hint: …` on stderr,
    /// and with `--json` also one `{"type":"error",…}` line on stdout, so a script reading
    /// stdout always learns how the command ended.
    pub fn error(&self, e: &Error) {
        let hint = e.hint();
        if self.json {
            let line = ErrorLine {
                kind: "error",
                exit: e.exit_code(),
                message: e.to_string(),
                hint: hint.clone(),
            };
            self.emit(&line, || None);
        }
        say!("securemail: error: {e}");
        if self.verbose > 0 {
            // The chain of causes the message summarises, for whoever has to dig (`-v`).
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                say!("caused by: {c}");
                cause = c.source();
            }
        }
        if let Some(hint) = hint {
            say!("hint: {hint}");
        }
    }
}

impl Printer {
    /// The JSON error line alone, for errors printed on stderr in another shape (clap's usage
    /// errors, before there is a parsed command line).
    pub fn json_error_line(&self, exit: u8, message: &str, hint: Option<&str>) {
        if self.json {
            let line = ErrorLine {
                kind: "error",
                exit,
                message: message.to_string(),
                hint: hint.map(str::to_string),
            };
            self.emit(&line, || None);
        }
    }
}

/// `{"type":"error","exit":75,"message":"…","hint":"…"}`.
#[derive(Serialize)]
struct ErrorLine {
    #[serde(rename = "type")]
    kind: &'static str,
    exit: u8,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

pub use crate::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_067_740), "2025-11-25T10:49:00Z");
    }

    #[test]
    fn error_lines_carry_exit_message_and_hint() {
        let e = Error::Nothing {
            message: "nothing to revoke".into(),
        };
        let line = ErrorLine {
            kind: "error",
            exit: e.exit_code(),
            message: e.to_string(),
            hint: e.hint(),
        };
        let v: serde_json::Value = serde_json::to_value(&line).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["exit"], 1);
        assert_eq!(v["message"], "nothing to revoke");
        assert!(v["hint"].as_str().unwrap().contains("status"));
    }
}
