//! The binary on a pseudo-terminal (util-linux `script`), answering its prompts.
//!
//! Each line is typed only once the terminal shows the prompt it answers, so a test never relies
//! on the program being quick enough; a secret line also waits until the program has turned the
//! terminal's echo off, because a line typed before that is echoed by the line discipline
//! whatever the program does next. Everything waits against one generous deadline and fails
//! loudly with what the terminal showed so far.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::{BIN, Env, Run};

/// How long a whole terminal session may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// One answer: `line` is typed once `prompt` has appeared; `secret` also waits for echo off.
pub struct Typed<'a> {
    pub prompt: &'a str,
    pub line: &'a str,
    pub secret: bool,
}

/// Runs `securemail {args}` on a terminal, typing each answer after its prompt.
pub fn run_on_tty(env: &Env, args: &str, answers: &[Typed]) -> Run {
    let deadline = Instant::now() + DEADLINE;
    let mut child = Command::new("script")
        .current_dir(env.dir.path())
        .env_remove("SECUREMAIL_CONFIG")
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script(1)");
    let chunks = read_in_chunks(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut shown = Vec::new();
    let mut from = 0;
    for answer in answers {
        from = wait_for_prompt(&chunks, &mut shown, from, answer.prompt, deadline);
        if answer.secret {
            wait_for_echo_off(child.id(), &shown, deadline);
        }
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(format!("{}\n", answer.line).as_bytes())
            .unwrap_or_else(|e| panic!("typing after {:?}: {e}", answer.prompt));
    }
    drop(child.stdin.take());
    while let Ok(chunk) = chunks.recv() {
        shown.extend(chunk);
    }
    let status = child.wait().unwrap();
    Run(Output {
        status,
        stdout: shown,
        stderr: stderr.join().unwrap(),
    })
}

/// What the terminal shows, chunk by chunk, until it closes.
fn read_in_chunks(mut out: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Collects output into `shown` until `prompt` appears after byte `from`; returns where it ends.
fn wait_for_prompt(
    chunks: &Receiver<Vec<u8>>,
    shown: &mut Vec<u8>,
    from: usize,
    prompt: &str,
    deadline: Instant,
) -> usize {
    let p = prompt.as_bytes();
    loop {
        if let Some(i) = shown[from..].windows(p.len()).position(|w| w == p) {
            return from + i + p.len();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(left) {
            Ok(chunk) => shown.extend(chunk),
            Err(e) => panic!(
                "waiting for the prompt {prompt:?}: {}; the terminal showed:\n{}",
                match e {
                    RecvTimeoutError::Timeout => "timed out",
                    RecvTimeoutError::Disconnected => "the program ended",
                },
                String::from_utf8_lossy(shown)
            ),
        }
    }
}

/// Waits until the terminal of `script_pid`'s session has echo off, as `stty` reports it.
///
/// There is no event to wait on for a terminal mode change, so this polls; the interval only
/// decides how soon the line is typed, never whether the test passes.
fn wait_for_echo_off(script_pid: u32, shown: &[u8], deadline: Instant) {
    let tty = session_tty(script_pid, deadline);
    loop {
        let out = Command::new("stty")
            .args(["-F", &tty, "-a"])
            .output()
            .expect("stty");
        let settings = String::from_utf8_lossy(&out.stdout);
        if settings.split_whitespace().any(|s| s == "-echo") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal's echo never went off for the secret prompt; stty: {settings}; \
             the terminal showed:\n{}",
            String::from_utf8_lossy(shown)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pseudo-terminal (`/dev/pts/N`) that `script` gave its child: the child's stdin.
fn session_tty(script_pid: u32, deadline: Instant) -> String {
    loop {
        for pid in children(script_pid) {
            if let Ok(t) = std::fs::read_link(format!("/proc/{pid}/fd/0")) {
                let t = t.to_string_lossy().into_owned();
                if t.starts_with("/dev/pts/") {
                    return t;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "script(1) (pid {script_pid}) never started a child on a pseudo-terminal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The processes whose parent is `pid`, from /proc/*/stat.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // Fields after the parenthesised command name: state, then the parent's pid.
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}
