//! Recipient lists: `--to` (repeatable) and `--to-list FILE`.
//!
//! The list file is CSV, one recipient a line: `email[,name]`, an optional header line
//! (`email,name`), `#` comments and blank lines ignored, `"quoted, fields"` with `""` for a quote,
//! LF or CRLF line endings. A line break inside a field is refused (it would end up in a
//! header). The file is read twice, streaming: [`check`] validates every line and counts, before
//! anything is sent; [`stream`] then yields recipients one at a time, so a list of any length
//! never sits in memory as mails.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::exit;
use crate::mail::{MailError, Recipient};

/// Longest list line read (an address plus a name is far shorter).
const MAX_LINE_BYTES: usize = 16 * 1024;

/// A problem with one line of a list (or with `--to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number; 0 for a `--to` argument.
    pub line: usize,
    /// The address as written, when there is one.
    pub input: String,
    pub reason: String,
}

/// The list cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot read the recipient list {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}:{}: {}", path.display(), problem.line, problem.reason)]
    Line {
        path: PathBuf,
        problem: LineProblem,
        more: usize,
    },
    #[error("--to {}: {}", crate::quote(&problem.input), problem.reason)]
    Arg { problem: LineProblem },
    #[error("the recipient list {} has no recipients", path.display())]
    Empty { path: PathBuf },
}

impl ListError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ListError::Read { .. } => exit::NOINPUT,
            _ => exit::DATAERR,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ListError::Read { .. } => "check the path given to --to-list".into(),
            ListError::Line { more, .. } => {
                let others = if *more > 0 {
                    format!(
                        " ({more} more line{} with problems)",
                        if *more == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                };
                format!(
                    "each line is email[,name]; fix the line, or pass --skip-invalid to send to the rest{others}"
                )
            }
            ListError::Arg { .. } => "give an address such as alice@example.org".into(),
            ListError::Empty { .. } => {
                "put one address per line, optionally followed by ,name".into()
            }
        })
    }
}

/// Where recipients come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `--to` arguments (with `--name` for a single one).
    Args {
        to: Vec<String>,
        name: Option<String>,
    },
    /// `--to-list FILE`.
    File(PathBuf),
}

/// One entry: a valid recipient, or a line that cannot be used.
#[derive(Debug, Clone)]
pub enum Entry {
    Valid { line: usize, recipient: Recipient },
    Invalid(LineProblem),
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub valid: usize,
    pub problems: Vec<LineProblem>,
}

/// Validates the whole source (streaming) and counts its recipients.
pub fn check(source: &Source) -> Result<Checked, ListError> {
    let mut checked = Checked::default();
    stream(source, |entry| {
        match entry {
            Entry::Valid { .. } => checked.valid += 1,
            Entry::Invalid(p) => checked.problems.push(p),
        }
        true
    })?;
    if checked.valid == 0
        && checked.problems.is_empty()
        && let Source::File(path) = source
    {
        return Err(ListError::Empty { path: path.clone() });
    }
    Ok(checked)
}

/// Turns problems into the error to report when `--skip-invalid` is not given.
pub fn refuse(source: &Source, mut problems: Vec<LineProblem>) -> Result<(), ListError> {
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len() - 1;
    let problem = problems.swap_remove(0);
    Err(match source {
        Source::File(path) => ListError::Line {
            path: path.clone(),
            problem,
            more,
        },
        Source::Args { .. } => ListError::Arg { problem },
    })
}

/// Feeds every entry to `f` in order, until it returns false. Duplicates (by lower-case address)
/// after the first are reported as invalid.
pub fn stream(source: &Source, mut f: impl FnMut(Entry) -> bool) -> Result<(), ListError> {
    match source {
        Source::Args { to, name } => {
            let mut seen = Dedup::default();
            for input in to {
                if !f(seen.entry(0, input, name.as_deref())) {
                    break;
                }
            }
            Ok(())
        }
        Source::File(path) => {
            let file = File::open(path).map_err(|e| ListError::Read {
                path: path.clone(),
                reason: crate::io_reason(&e),
            })?;
            stream_from(BufReader::new(file), path, f)
        }
    }
}

/// Checks each recipient and remembers addresses, to report duplicates.
#[derive(Default)]
struct Dedup(HashSet<String>);

impl Dedup {
    fn entry(&mut self, line: usize, input: &str, name: Option<&str>) -> Entry {
        match Recipient::parse(input, name) {
            Ok(r) if self.0.insert(r.address.clone()) => Entry::Valid { line, recipient: r },
            Ok(r) => Entry::Invalid(LineProblem {
                line,
                input: input.to_string(),
                reason: format!("{} appears more than once", r.address),
            }),
            Err(e) => Entry::Invalid(LineProblem {
                line,
                input: input.to_string(),
                reason: describe(&e, input),
            }),
        }
    }
}

/// [`stream`] over list text from any reader (`path` names it in errors).
pub fn stream_from(
    mut reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(Entry) -> bool,
) -> Result<(), ListError> {
    let read_err = |e: std::io::Error| ListError::Read {
        path: path.to_path_buf(),
        reason: crate::io_reason(&e),
    };
    let mut seen = Dedup::default();
    let mut raw = Vec::new();
    let mut line_no = 0;
    let mut header_possible = true;
    loop {
        raw.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(read_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if raw.len() > MAX_LINE_BYTES && !raw.ends_with(b"\n") {
            // Skip the rest of the overlong line without holding it in memory.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut reader)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut sink)
                    .map_err(read_err)?;
                if m == 0 || sink.ends_with(b"\n") {
                    break;
                }
            }
            header_possible = false;
            let entry = Entry::Invalid(LineProblem {
                line: line_no,
                input: String::from_utf8_lossy(&raw[..40]).into_owned(),
                reason: format!("the line is longer than {} KiB", MAX_LINE_BYTES / 1024),
            });
            if !f(entry) {
                break;
            }
            continue;
        }
        let entry = match parse_line(&raw) {
            Ok(None) => continue,
            Ok(Some(fields)) => {
                let was_first = std::mem::replace(&mut header_possible, false);
                if was_first && is_header(&fields) {
                    continue;
                }
                match fields.as_slice() {
                    [email] => seen.entry(line_no, email, None),
                    [email, name] => seen.entry(
                        line_no,
                        email,
                        Some(name.as_str()).filter(|n| !n.is_empty()),
                    ),
                    _ => Entry::Invalid(LineProblem {
                        line: line_no,
                        input: fields.first().cloned().unwrap_or_default(),
                        reason: format!("{} fields; expected email[,name]", fields.len()),
                    }),
                }
            }
            Err(reason) => {
                header_possible = false;
                Entry::Invalid(LineProblem {
                    line: line_no,
                    input: String::from_utf8_lossy(&raw)
                        .trim_end()
                        .chars()
                        .take(80)
                        .collect(),
                    reason,
                })
            }
        };
        if !f(entry) {
            break;
        }
    }
    Ok(())
}

fn describe(e: &MailError, input: &str) -> String {
    match e {
        MailError::BadAddress { .. } if !input.contains('@') => {
            format!("{} is not an email address (no @)", crate::quote(input))
        }
        MailError::BadAddress { reason, .. } => {
            format!("{} is not a valid address ({reason})", crate::quote(input))
        }
        other => other.to_string(),
    }
}

fn is_header(fields: &[String]) -> bool {
    fields.first().is_some_and(|f| {
        !f.contains('@')
            && matches!(
                f.to_ascii_lowercase().as_str(),
                "email" | "e-mail" | "mail" | "address" | "to" | "recipient"
            )
    })
}

/// Splits one CSV line. `Ok(None)`: blank or comment.
fn parse_line(raw: &[u8]) -> Result<Option<Vec<String>>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "the line is not valid UTF-8".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.contains(['\r', '\n']) {
        return Err("a carriage return inside the line".into());
    }
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed on this line".into()),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
            field = field.trim().to_string();
        }
        if field.chars().any(char::is_control) {
            return Err("a control character inside a field".into());
        }
        fields.push(field);
        if chars.next().is_none() {
            break;
        }
    }
    Ok(Some(fields))
}

/// The path of a list, for messages.
pub fn display(source: &Source) -> String {
    match source {
        Source::File(p) => p.display().to_string(),
        Source::Args { .. } => "--to".into(),
    }
}

/// Whether `source` names exactly one recipient on the command line.
pub fn is_single(source: &Source) -> bool {
    matches!(source, Source::Args { to, .. } if to.len() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &Path) -> Source {
        Source::File(path.to_path_buf())
    }

    fn fields(s: &str) -> Result<Option<Vec<String>>, String> {
        parse_line(s.as_bytes())
    }

    #[test]
    fn csv_lines() {
        assert_eq!(
            fields("a@x.org\n").unwrap(),
            Some(vec!["a@x.org".to_string()])
        );
        assert_eq!(
            fields("a@x.org, Alice A\r\n").unwrap(),
            Some(vec!["a@x.org".to_string(), "Alice A".to_string()])
        );
        assert_eq!(
            fields("a@x.org,\"Doe, \"\"J\"\"\"\n").unwrap(),
            Some(vec!["a@x.org".to_string(), "Doe, \"J\"".to_string()])
        );
        assert_eq!(fields("  # comment\n").unwrap(), None);
        assert_eq!(fields("\r\n").unwrap(), None);
        assert!(fields("a@x.org,\"open\n").is_err());
        assert!(fields("a@x.org,na\rme\n").is_err());
        assert!(fields("a@x.org,\"x\"y\n").is_err());
        assert!(fields(&String::from_utf8_lossy(b"a@x.org,\x01\n")).is_err());
    }

    /// `text` as the list file `name` in a temporary directory removed on drop.
    fn write(name: &str, text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(format!("{name}.csv"));
        std::fs::write(&p, text).unwrap();
        (t, p)
    }

    #[test]
    fn check_counts_and_reports_lines() {
        let (_t, p) = write(
            "mixed",
            b"email,name\na@x.org,A\n\nnot-an-address\nb@x.org\nA@X.org,dup\n\xff\n",
        );
        let c = check(&file(&p)).unwrap();
        assert_eq!(c.valid, 2);
        let lines: Vec<usize> = c.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![4, 6, 7]);
        assert!(c.problems[1].reason.contains("more than once"));
        let e = refuse(&file(&p), c.problems).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(":4: \"not-an-address\" is not an email address (no @)"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("2 more lines"));
    }

    #[test]
    fn empty_list_is_an_error() {
        let (_t, p) = write("empty", b"email,name\n# nobody\n");
        assert!(matches!(check(&file(&p)), Err(ListError::Empty { .. })));
    }

    #[test]
    fn header_only_on_first_line() {
        let (_t, p) = write("hdr", b"a@x.org\nemail\n");
        let c = check(&file(&p)).unwrap();
        assert_eq!(c.valid, 1);
        assert_eq!(c.problems.len(), 1);
    }

    #[test]
    fn missing_file_is_noinput() {
        let e = check(&file(Path::new("/nonexistent/list.csv"))).unwrap_err();
        assert_eq!(e.exit_code(), exit::NOINPUT);
    }
}
