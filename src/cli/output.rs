//! Everything a command prints goes through one [`Printer`], which knows whether the user asked
//! for people's text or JSON lines (`--json`), and how verbose to be (`-v`, `-vv`).
//!
//! JSON output is a contract: each line is one object built from a `#[derive(Serialize)]`
//! struct, tagged with `"type"` (`"recipient"`, `"reply"`, `"record"`, `"revoked"`, `"check"`,
//! `"summary"`, `"error"`), with times as RFC 3339 UTC strings. The README documents the schema.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::Error;
use crate::transport::smtp::Trace;

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
                Ok(line) => println!("{line}"),
                // Our own structs of strings and numbers always serialise; say so if not.
                Err(e) => eprintln!("securemail: cannot write a JSON line: {e}"),
            }
        } else if let Some(text) = human() {
            println!("{text}");
        }
    }

    /// A line for people only (nothing with `--json`).
    pub fn human(&self, line: &str) {
        if !self.json {
            println!("{line}");
        }
    }

    /// Progress for `-v`, on stderr; `-vv` adds the time since the start.
    pub fn verbose(&self, line: &str) {
        if self.verbose > 0 {
            eprintln!("securemail: {}{line}", self.stamp());
        }
    }

    /// A sink for the SMTP dialogue when `-v` is given; `tag` tells connections apart. With
    /// `-vv` each line carries the milliseconds since the command started, so a slow step shows.
    pub fn smtp_trace(&self, tag: &str) -> Option<Trace> {
        let tag = tag.to_string();
        let printer = *self;
        (self.verbose > 0).then(|| {
            Arc::new(move |line: &str| {
                eprintln!("securemail: {}smtp{tag}: {line}", printer.stamp())
            }) as Trace
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
        eprintln!("securemail: error: {e}");
        if self.verbose > 0 {
            // The chain of causes the message summarises, for whoever has to dig (`-v`).
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                eprintln!("caused by: {c}");
                cause = c.source();
            }
        }
        if let Some(hint) = hint {
            eprintln!("hint: {hint}");
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

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-25T10:49:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

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
