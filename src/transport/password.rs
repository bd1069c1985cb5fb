//! The SMTP password: from an environment variable, a command, or a prompt; never the command
//! line.
//!
//! It is fetched once, before the first connection, and everything that can be wrong with it is
//! said then: a variable that is set but empty, a command that prints nothing, fails or hangs.
//! An empty password is never sent (a server would refuse it after a round trip, or worse, a
//! misconfigured one would accept it). A password command runs with `[smtp] timeout_secs` as its
//! limit and is killed, with everything it started, when it is exceeded.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::config::PasswordSource;
use crate::exit;
use crate::secret::Secret;

/// Most bytes of a password command's output kept (the first line is the password).
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Longest stderr line quoted in an error.
const MAX_STDERR_CHARS: usize = 200;

/// The SMTP password could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the environment variable {var} (from [smtp] password_env) is not set")]
    EnvMissing { var: String },
    #[error("the environment variable {var} (from [smtp] password_env) is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error("the environment variable {var} (from [smtp] password_env) is empty")]
    EnvEmpty { var: String },
    #[error(
        "[smtp] password_command {} could not be run: {reason}",
        crate::quote(command)
    )]
    CommandSpawn { command: String, reason: String },
    #[error(
        "[smtp] password_command {} failed ({status}){}",
        crate::quote(command),
        stderr.as_ref().map(|l| format!(": {l}")).unwrap_or_default()
    )]
    CommandFailed {
        command: String,
        status: String,
        /// The first line it wrote to stderr (never stdout: that may hold the password).
        stderr: Option<String>,
    },
    #[error(
        "[smtp] password_command {} did not finish within {}s (timeout_secs); it was killed",
        crate::quote(command),
        timeout.as_secs()
    )]
    CommandTimeout { command: String, timeout: Duration },
    #[error(
        "[smtp] password_command {} printed no password",
        crate::quote(command)
    )]
    CommandEmpty { command: String },
    #[error(
        "[smtp] password_command {} printed a first line that is not valid UTF-8",
        crate::quote(command)
    )]
    CommandNotUnicode { command: String },
    #[error(
        "no SMTP password: [smtp] sets neither password_env nor password_command, and stdin is not a terminal to ask on"
    )]
    NoSource,
    #[error("no SMTP password was typed")]
    PromptEmpty,
    #[error("cannot read the password from the terminal: {reason}")]
    Prompt { reason: String },
}

impl PasswordError {
    pub fn exit_code(&self) -> u8 {
        match self {
            PasswordError::Prompt { .. } => exit::USAGE,
            // A command that hangs is most often waiting on something that comes back (a
            // locked keyring, an unreachable vault): the same run later may work, and the
            // config is not known to be wrong.
            PasswordError::CommandTimeout { .. } => exit::TEMPFAIL,
            _ => exit::CONFIG,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PasswordError::EnvMissing { var }
            | PasswordError::EnvNotUnicode { var }
            | PasswordError::EnvEmpty { var } => {
                format!("export {var}=... (for Gmail, an app password) before running securemail")
            }
            PasswordError::CommandSpawn { command, .. }
            | PasswordError::CommandFailed { command, .. }
            | PasswordError::CommandEmpty { command }
            | PasswordError::CommandNotUnicode { command } => format!(
                "run {} by hand: it must exit 0 and print the password on its first line",
                crate::quote(command)
            ),
            PasswordError::CommandTimeout { command, .. } => format!(
                "run {} by hand: it must print the password without waiting for input; raise [smtp] timeout_secs if it is just slow",
                crate::quote(command)
            ),
            PasswordError::NoSource => {
                "set [smtp] password_env or password_command, or run securemail on a terminal"
                    .into()
            }
            PasswordError::PromptEmpty => {
                "type the password (for Gmail, an app password), or set [smtp] password_env or password_command".into()
            }
            PasswordError::Prompt { .. } => return None,
        })
    }
}

/// Fetches the password from its configured source; a command gets `timeout` to print it.
pub fn password(
    source: &PasswordSource,
    prompt_for: &str,
    timeout: Duration,
) -> Result<Secret<String>, PasswordError> {
    let password = match source {
        PasswordSource::Env(var) => match std::env::var(var) {
            Ok(v) if v.is_empty() => return Err(PasswordError::EnvEmpty { var: var.clone() }),
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(PasswordError::EnvMissing { var: var.clone() });
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(PasswordError::EnvNotUnicode { var: var.clone() });
            }
        },
        PasswordSource::Command(command) => from_command(command, timeout)?,
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() {
                return Err(PasswordError::NoSource);
            }
            let typed = rpassword::prompt_password(format!("SMTP password for {prompt_for}: "))
                .map_err(|e| PasswordError::Prompt {
                    reason: e.to_string(),
                })?;
            if typed.is_empty() {
                return Err(PasswordError::PromptEmpty);
            }
            typed
        }
    };
    Ok(Secret::new(password))
}

/// Runs `command` with `/bin/sh -c`; its first output line is the password.
///
/// On a terminal the command stays in securemail's process group, so that it can prompt (a
/// background group is stopped when it reads the terminal) and Ctrl-C reaches it. Otherwise
/// nobody could answer a prompt, and it runs in a group of its own, so that on timeout the
/// whole group — a shell pipeline, a helper it started — is killed, not just the shell.
fn from_command(command: &str, timeout: Duration) -> Result<String, PasswordError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let own_group = !std::io::stdin().is_terminal();
    if own_group {
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| PasswordError::CommandSpawn {
        command: command.to_string(),
        reason: crate::io_reason(&e),
    })?;
    let (tx, rx) = mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(Output::Stdout(read_capped(&mut out, false)));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        thread::spawn(move || {
            let _ = tx.send(Output::Stderr(read_capped(&mut err, true)));
        });
    }
    let status = match wait_until(&mut child, Instant::now() + timeout) {
        Some(status) => status,
        None => {
            kill(&mut child, own_group);
            return Err(PasswordError::CommandTimeout {
                command: command.to_string(),
                timeout,
            });
        }
    };
    // Both pipes close when the command exits, unless something it started lives on holding
    // them: give that a moment, then go on without it.
    let (mut stdout, mut stderr) = (None, None);
    let grace = Instant::now() + Duration::from_millis(500);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok(Output::Stdout(b)) => stdout = Some(b),
            Ok(Output::Stderr(b)) => stderr = Some(b),
            Err(_) => break,
        }
    }
    if !status.success() {
        return Err(PasswordError::CommandFailed {
            command: command.to_string(),
            status: status.to_string(),
            stderr: stderr.as_deref().and_then(|b| first_line(b)),
        });
    }
    let stdout = stdout.unwrap_or_default();
    let line = stdout.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok("") => Err(PasswordError::CommandEmpty {
            command: command.to_string(),
        }),
        Ok(p) => Ok(p.to_string()),
        Err(_) => Err(PasswordError::CommandNotUnicode {
            command: command.to_string(),
        }),
    }
}

enum Output {
    Stdout(Zeroizing<Vec<u8>>),
    Stderr(Zeroizing<Vec<u8>>),
}

/// Reads `r` to its end (so the writer never blocks), keeping the first [`MAX_OUTPUT_BYTES`];
/// with `echo`, passes everything on to our stderr as it comes (a command's messages and
/// prompts stay visible).
fn read_capped(r: &mut impl Read, echo: bool) -> Zeroizing<Vec<u8>> {
    let mut kept = Zeroizing::new(Vec::new());
    let mut buf = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match r.read(&mut buf[..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if echo {
            let _ = std::io::stderr().write_all(&buf[..n]);
        }
        let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// The child's exit status, or `None` once `deadline` passes.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // Cannot wait on it (should not happen): treat as hung, so it is killed.
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kills the command (and, in its own group, everything it started) and reaps it.
fn kill(child: &mut Child, own_group: bool) {
    let group = rustix::process::Pid::from_child(child);
    if !own_group
        || rustix::process::kill_process_group(group, rustix::process::Signal::KILL).is_err()
    {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The first non-blank line of a command's stderr, printable and short.
fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(
        line.chars()
            .filter(|c| !c.is_control())
            .take(MAX_STDERR_CHARS)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, timeout: Duration) -> Result<String, PasswordError> {
        from_command(command, timeout)
    }

    #[test]
    fn first_line_of_stdout_is_the_password() {
        let p = run("printf 'pw one\\r\\nsecond\\n'", Duration::from_secs(5)).unwrap();
        assert_eq!(p, "pw one");
    }

    #[test]
    fn empty_output_is_refused() {
        for cmd in ["true", "echo", "printf '\\n\\nlater\\n'"] {
            let e = run(cmd, Duration::from_secs(5)).unwrap_err();
            assert!(
                matches!(e, PasswordError::CommandEmpty { .. }),
                "{cmd}: {e}"
            );
            assert_eq!(e.exit_code(), exit::CONFIG);
        }
    }

    #[test]
    fn failure_names_status_and_stderr_never_stdout() {
        let e = run(
            // Prints `hunter2` without the command text containing it.
            "echo hunt''er2; echo 'vault: no such entry' >&2; exit 3",
            Duration::from_secs(5),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("vault: no such entry"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn a_hanging_command_and_its_children_are_killed_at_the_timeout() {
        let started = Instant::now();
        // A pipeline: the shell is not the only process holding the output pipe.
        let e = run("sleep 30 | cat", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, PasswordError::CommandTimeout { .. }), "{e}");
        assert_eq!(e.exit_code(), exit::TEMPFAIL);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
