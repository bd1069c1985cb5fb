//! Errors that point into the configuration file: `file:line:col: what`, then a hint.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::exit;

/// A line and column in the config file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Something is wrong with the configuration file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub at: Option<Position>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(p) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.column,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn exit_code(&self) -> u8 {
        exit::CONFIG
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// Builds errors that point into one file.
pub(super) struct Reporter<'a> {
    pub(super) file: &'a Path,
    pub(super) source: &'a str,
}

impl Reporter<'_> {
    pub(super) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.source.len());
        let before = &self.source.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = self.source[line_start..offset].chars().count() + 1;
        Position { line, column }
    }

    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            at: span.map(|s| self.position(s.start)),
            message,
            hint,
        }
    }

    pub(super) fn at<T>(
        &self,
        value: &Spanned<T>,
        message: String,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.error(Some(value.span()), message, Some(hint.into()))
    }

    /// The `[table]` header in force at `offset`, for messages about unknown keys.
    pub(super) fn table_at(&self, offset: usize) -> String {
        let before = &self.source[..offset.min(self.source.len())];
        before
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .and_then(|l| l.find(']').map(|end| l[..=end].to_string()))
            .unwrap_or_else(|| "the top level".to_string())
    }

    /// Turns a toml/serde error into ours, keeping the position and naming the key.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span();
        let msg = err.message().trim_end();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let key = rest.split('`').next().unwrap_or(rest);
            let expected = rest
                .split_once(", expected ")
                .map(|(_, e)| e.trim_start_matches("one of ").replace('`', ""))
                .unwrap_or_default();
            let where_ = span
                .clone()
                .map(|s| self.table_at(s.start))
                .unwrap_or_else(|| "the top level".into());
            let hint = if where_ == "the top level" {
                format!("the tables securemail knows are {expected}")
            } else {
                format!("the keys {where_} accepts are {expected}")
            };
            return self.error(span, format!("unknown key `{key}` in {where_}"), Some(hint));
        }
        self.error(
            span,
            format!("invalid TOML: {msg}"),
            Some("compare with the commented config/account.toml shipped with securemail".into()),
        )
    }
}
