//! Recipient lists: `--to` (repeatable) and `--to-list FILE`.
//!
//! The list file is CSV, one recipient a line: `email[,name]`, an optional header line
//! (`email,name`), `#` comments and blank lines ignored, `"quoted, fields"` with `""` for a quote,
//! LF or CRLF line endings. A line break inside a field is refused (it would end up in a
//! header). The list is read twice: [`check`] validates every line and counts, before anything
//! is sent; [`stream`] then yields recipients one at a time.
//!
//! Reading twice is only sound if both passes see the same lines. A regular file is kept open
//! and streamed twice (a list of any length never sits in memory), and the send pass must read
//! exactly the bytes the check pass hashed: a list edited or appended to during the run stops it
//! with [`ListError::Changed`] instead of sending lines nobody checked or silently leaving new
//! ones out. Anything else (`-` for stdin, a pipe, a FIFO, `<(…)`) can be read only once, so it
//! is read once into memory, up to [`MAX_BUFFERED_BYTES`].

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::exit;
use crate::mail::{MailError, Recipient};

/// Longest list line read (an address plus a name is far shorter).
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Largest list read from stdin, a pipe or a FIFO (it is held in memory for the two passes);
/// about a million recipients. A regular file is streamed and has no limit.
pub const MAX_BUFFERED_BYTES: u64 = 64 * 1024 * 1024;

/// What `--to-list -` reads from, in messages.
const STDIN_NAME: &str = "(standard input)";

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
    #[error(
        "the recipient list {} is larger than {} MiB; a list from stdin, a pipe or a FIFO is held in memory",
        path.display(), MAX_BUFFERED_BYTES / (1024 * 1024)
    )]
    TooLarge { path: PathBuf },
    /// The list's content differs from what the check pass read. `sent`: mails that went out
    /// (and were recorded) before this was noticed.
    #[error(
        "the recipient list {} changed during the run ({what}); {sent} recipient{} had been sent their mail",
        path.display(), if *sent == 1 { "" } else { "s" }
    )]
    Changed {
        path: PathBuf,
        what: String,
        sent: usize,
    },
}

impl ListError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ListError::Read { .. } => exit::NOINPUT,
            // Changed: the input was not one consistent list. Not "try again later" (75): the
            // same command right away is the fix, once the list is final.
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
            ListError::TooLarge { .. } => {
                "write the list to a regular file and pass its path: a file is streamed, whatever its size".into()
            }
            ListError::Changed { .. } => {
                "the mails sent are recorded: once the list is final, run the same command again and it sends only to the rest (do not edit a list while securemail reads it)".into()
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
    /// `--to-list FILE` (or `-`), opened with [`ListFile::open`].
    File(ListFile),
}

/// An opened `--to-list`. Clones share the open file and what the check pass saw.
#[derive(Debug, Clone)]
pub struct ListFile {
    /// As given, for messages (`(standard input)` for `-`).
    path: PathBuf,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// A regular file, kept open so that both passes read the same file (even if the path is
    /// renamed or replaced meanwhile), from `start` (stdin may be a file read part-way).
    Regular {
        file: Arc<File>,
        start: u64,
        /// Opened by path (not stdin): the path must still name this file at the end.
        named: bool,
        /// What the check pass read, once it has.
        seen: Arc<Mutex<Option<Seen>>>,
    },
    /// Stdin, a pipe, a FIFO, a terminal, a socket: read once, here.
    Buffered(Arc<[u8]>),
}

/// What the check pass read from a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    stamp: Stamp,
    /// Bytes read from `start`, and their SHA-256.
    len: u64,
    digest: [u8; 32],
}

/// The metadata that changes when a file is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    inode: (u64, u64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            inode: (m.dev(), m.ino()),
        }
    }

    /// How `now` differs from `self`, in words.
    fn change(&self, now: &Stamp) -> Option<String> {
        if now.inode != self.inode {
            Some("the path now names another file".into())
        } else if now.size > self.size {
            Some(format!("it grew by {} bytes", now.size - self.size))
        } else if now.size < self.size {
            Some(format!("it shrank by {} bytes", self.size - now.size))
        } else if now.mtime != self.mtime {
            Some("it was written to".into())
        } else {
            None
        }
    }
}

impl ListFile {
    /// Opens `path` (`-`: stdin). Anything but a regular file is read into memory now.
    pub fn open(path: &Path) -> Result<ListFile, ListError> {
        let stdin = path.as_os_str() == "-";
        let name = if stdin {
            PathBuf::from(STDIN_NAME)
        } else {
            path.to_path_buf()
        };
        let read_err = |e: std::io::Error| ListError::Read {
            path: name.clone(),
            reason: crate::io_reason(&e),
        };
        let mut file = if stdin {
            File::from(
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(read_err)?,
            )
        } else {
            File::open(path).map_err(read_err)?
        };
        let meta = file.metadata().map_err(read_err)?;
        let body = if meta.is_file() {
            Body::Regular {
                start: file.stream_position().map_err(read_err)?,
                named: !stdin,
                file: Arc::new(file),
                seen: Arc::default(),
            }
        } else {
            let mut buf = Vec::new();
            (&mut file)
                .take(MAX_BUFFERED_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(read_err)?;
            if buf.len() as u64 > MAX_BUFFERED_BYTES {
                return Err(ListError::TooLarge { path: name });
            }
            Body::Buffered(buf.into())
        };
        Ok(ListFile { path: name, body })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Streams the list. With `record`, this is the check pass: what is read is remembered.
    /// Otherwise, if the check pass ran, every read is compared with what it saw.
    fn stream(&self, record: bool, f: impl FnMut(Entry) -> bool) -> Result<(), ListError> {
        let (file, start, seen) = match &self.body {
            Body::Buffered(bytes) => return stream_from(Cursor::new(&bytes[..]), &self.path, f),
            Body::Regular {
                file, start, seen, ..
            } => (&**file, *start, seen),
        };
        let read_err = |e: std::io::Error| ListError::Read {
            path: self.path.clone(),
            reason: crate::io_reason(&e),
        };
        let mut file_at = file;
        file_at.seek(SeekFrom::Start(start)).map_err(read_err)?;
        let expect = if record {
            None
        } else {
            seen.lock().ok().and_then(|s| s.clone())
        };
        let stamp = Stamp::of(&file.metadata().map_err(read_err)?);
        let mut reader = Watched {
            file,
            hasher: Sha256::new(),
            len: 0,
            expect: expect.as_ref(),
            path: &self.path,
        };
        if let Some(seen) = &expect {
            reader.compare(&stamp, seen)?;
        }
        stream_from(BufReader::new(&mut reader), &self.path, f)?;
        let (len, digest) = (reader.len, reader.hasher.finalize().into());
        match expect {
            None if record => {
                if let Ok(mut s) = seen.lock() {
                    *s = Some(Seen { stamp, len, digest });
                }
                Ok(())
            }
            // The send pass stopped early (an abort): nothing more to compare.
            Some(seen) if len < seen.len => Ok(()),
            Some(seen) if digest != seen.digest => Err(self.changed("its text differs".into())),
            _ => Ok(()),
        }
    }

    /// After the send pass: whether the file still is what the check pass read (lines added
    /// after the send pass reached the end would otherwise be silently left out).
    pub fn confirm_unchanged(&self) -> Result<(), ListError> {
        let Body::Regular {
            file, seen, named, ..
        } = &self.body
        else {
            return Ok(());
        };
        let Some(seen) = seen.lock().ok().and_then(|s| s.clone()) else {
            return Ok(());
        };
        let now = file.metadata().map(|m| Stamp::of(&m));
        let at_path = match named {
            true => std::fs::metadata(&self.path).map(|m| Stamp::of(&m).inode),
            false => Ok(seen.stamp.inode),
        };
        let what = match (now, at_path) {
            (Err(e), _) => Some(crate::io_reason(&e)),
            (Ok(now), _) if seen.stamp.change(&now).is_some() => seen.stamp.change(&now),
            // Renamed or removed: not what a rerun of the same command would read.
            (Ok(_), Err(_)) => Some("the path no longer exists".into()),
            (Ok(_), Ok(inode)) if inode != seen.stamp.inode => {
                Some("the path now names another file".into())
            }
            _ => None,
        };
        what.map_or(Ok(()), |what| Err(self.changed(what)))
    }

    fn changed(&self, what: String) -> ListError {
        ListError::Changed {
            path: self.path.clone(),
            what,
            sent: 0,
        }
    }
}

/// A regular list file read by the send pass: hashes what it reads and, once the check pass has
/// run, fails a read as soon as the file's size or modification time moved, or it holds more
/// bytes than the check pass read, so no line the check pass did not see is ever yielded.
struct Watched<'a> {
    file: &'a File,
    hasher: Sha256,
    len: u64,
    expect: Option<&'a Seen>,
    path: &'a Path,
}

/// Carries a [`ListError::Changed`] through `std::io::Read`.
#[derive(Debug)]
struct ChangedDuringRead(String);

impl std::fmt::Display for ChangedDuringRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChangedDuringRead {}

impl Watched<'_> {
    fn compare(&self, now: &Stamp, seen: &Seen) -> Result<(), ListError> {
        match seen.stamp.change(now) {
            Some(what) => Err(ListError::Changed {
                path: self.path.to_path_buf(),
                what,
                sent: 0,
            }),
            None => Ok(()),
        }
    }
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(seen) = self.expect {
            let now = Stamp::of(&self.file.metadata()?);
            let what = seen.stamp.change(&now).or_else(|| {
                (self.len + n as u64 > seen.len).then(|| "it holds more lines".to_string())
            });
            if let Some(what) = what {
                return Err(std::io::Error::other(ChangedDuringRead(what)));
            }
        }
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
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
    /// SHA-256 naming the set of valid canonical addresses, whatever their order, names,
    /// spelling or invalid lines: two hosts holding the same list get the same digest.
    pub set_digest: [u8; 32],
}

/// The order-independent sum behind [`Checked::set_digest`]: each address's SHA-256, added as
/// four 64-bit lanes. Addresses are distinct (duplicates are invalid), so a set is summed once
/// each, in constant memory; the lists are the operator's own, so no adversary picks them to
/// collide.
#[derive(Default)]
struct SetSum {
    count: u64,
    lanes: [u64; 4],
}

impl SetSum {
    fn add(&mut self, address: &str) {
        let h: [u8; 32] = Sha256::digest(address.as_bytes()).into();
        for (lane, chunk) in self.lanes.iter_mut().zip(h.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *lane = lane.wrapping_add(u64::from_be_bytes(bytes));
        }
        self.count += 1;
    }

    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"securemail recipient set 1\0");
        h.update(self.count.to_be_bytes());
        for lane in self.lanes {
            h.update(lane.to_be_bytes());
        }
        h.finalize().into()
    }
}

/// Validates the whole source (streaming) and counts its recipients.
pub fn check(source: &Source) -> Result<Checked, ListError> {
    let mut checked = Checked::default();
    let mut set = SetSum::default();
    let count = |entry| {
        match entry {
            Entry::Valid { recipient, .. } => {
                checked.valid += 1;
                set.add(&recipient.address);
            }
            Entry::Invalid(p) => checked.problems.push(p),
        }
        true
    };
    match source {
        Source::File(list) => list.stream(true, count)?,
        Source::Args { .. } => stream(source, count)?,
    }
    checked.set_digest = set.digest();
    if checked.valid == 0
        && checked.problems.is_empty()
        && let Source::File(list) = source
    {
        return Err(ListError::Empty {
            path: list.path.clone(),
        });
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
        Source::File(list) => ListError::Line {
            path: list.path.clone(),
            problem,
            more,
        },
        Source::Args { .. } => ListError::Arg { problem },
    })
}

/// Feeds every entry to `f` in order, until it returns false. Duplicates (by lower-case address)
/// after the first are reported as invalid. After [`check`], a list file must still hold exactly
/// what `check` read ([`ListError::Changed`] otherwise).
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
        Source::File(list) => list.stream(false, f),
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
///
/// Long on purpose: a single pass over the bytes that enforces the line cap without buffering a
/// long line, tracks CSV quoting across it, and reports each line as it ends; the state it keeps
/// between lines would have to be threaded through any split.
pub fn stream_from(
    mut reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(Entry) -> bool,
) -> Result<(), ListError> {
    let read_err = |e: std::io::Error| match e.get_ref().and_then(|i| i.downcast_ref()) {
        Some(ChangedDuringRead(what)) => ListError::Changed {
            path: path.to_path_buf(),
            what: what.clone(),
            sent: 0,
        },
        None => ListError::Read {
            path: path.to_path_buf(),
            reason: crate::io_reason(&e),
        },
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
        Source::File(list) => list.path.display().to_string(),
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
        Source::File(ListFile::open(path).unwrap())
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

    /// Pass two over `p` after pass one, collecting the addresses it yields.
    fn send_pass(source: &Source) -> (Vec<String>, Result<(), ListError>) {
        let mut got = Vec::new();
        let r = stream(source, |e| {
            if let Entry::Valid { recipient, .. } = e {
                got.push(recipient.address);
            }
            true
        });
        (got, r)
    }

    #[test]
    fn lines_appended_between_the_passes_are_never_yielded() {
        let (_t, p) = write("grow", b"a@x.org\nb@x.org\n");
        let source = file(&p);
        assert_eq!(check(&source).unwrap().valid, 2);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"late@x.org\n").unwrap();
        let (got, r) = send_pass(&source);
        assert!(got.is_empty(), "{got:?}");
        let e = r.unwrap_err();
        assert!(matches!(e, ListError::Changed { .. }), "{e}");
        assert!(e.to_string().contains("it grew by 11 bytes"), "{e}");
        assert_eq!(e.exit_code(), exit::DATAERR);
    }

    #[test]
    fn a_same_size_rewrite_is_caught() {
        let (_t, p) = write("rewrite", b"a@x.org\nb@x.org\n");
        let source = file(&p);
        check(&source).unwrap();
        // Same length, written in place; the mtime may not move within one clock tick.
        std::fs::write(&p, b"a@x.org\nc@x.org\n").unwrap();
        let (_, r) = send_pass(&source);
        assert!(matches!(r, Err(ListError::Changed { .. })), "{r:?}");
    }

    #[test]
    fn an_unchanged_file_streams_and_confirms() {
        let (_t, p) = write("same", b"a@x.org\nb@x.org\n");
        let source = file(&p);
        check(&source).unwrap();
        let (got, r) = send_pass(&source);
        r.unwrap();
        assert_eq!(got, ["a@x.org", "b@x.org"]);
        let Source::File(list) = &source else {
            unreachable!()
        };
        list.confirm_unchanged().unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"c@x.org\n").unwrap();
        assert!(matches!(
            list.confirm_unchanged(),
            Err(ListError::Changed { .. })
        ));
    }

    #[test]
    fn the_set_digest_names_the_addresses_not_the_text() {
        let digest = |name: &str, text: &str| {
            let (_t, p) = write(name, text.as_bytes());
            check(&file(&p)).unwrap().set_digest
        };
        let base = digest("a", "a@x.org\nb@x.org\n");
        // Order, names, a header, comments and spelling of the same addresses: the same set.
        assert_eq!(
            base,
            digest("b", "email,name\n# team\nB@X.ORG,Bo\n\"a@x.org\",Ann\n")
        );
        assert_ne!(base, digest("c", "a@x.org\n"));
        assert_ne!(base, digest("d", "a@x.org\nb@x.org\nc@x.org\n"));
        assert_ne!(base, digest("e", "a@x.org\nc@x.org\n"));
        let args = Source::Args {
            to: vec!["b@x.org".into(), "a@x.org".into()],
            name: None,
        };
        assert_eq!(check(&args).unwrap().set_digest, base);
    }

    #[test]
    fn missing_file_is_noinput() {
        let e = ListFile::open(Path::new("/nonexistent/list.csv")).unwrap_err();
        assert_eq!(e.exit_code(), exit::NOINPUT);
    }
}
