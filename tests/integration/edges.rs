//! Edges of a run: lists that can be read only once (stdin, pipes, FIFOs) or that change while
//! they are sent, a delivered code that must verify while the batch waits for its pacing slot,
//! and passwords that are empty, fail or hang.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Ca, Env, Mode, Options, Server, decode_mail};

fn tls_server(ca: &Ca) -> Server {
    Server::start(Options::new(Mode::Tls, ca.leaf(&["localhost"])))
}

/// A config sending to `srv`, with `extra` lines in `[smtp]` (which may replace the password
/// source).
fn smtp_env(srv: &Server, ca: &Ca, password: &str, extra: &str) -> Env {
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    let timeout = match extra.contains("timeout_secs") {
        true => "",
        false => "timeout_secs = 10\n",
    };
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"{}\"\n\
         {password}\nca_file = \"ca.pem\"\n{timeout}{extra}",
        srv.port(),
        support::SMTP_USER
    ));
    env
}

const ENV_PASSWORD: &str = "password_env = \"SECUREMAIL_TEST_PASSWORD\"";

/// Waits (bounded) until the server holds `n` mails.
fn wait_for_mails(srv: &Server, n: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.log().mails.len() < n {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("send exited ({status}) before the server saw {n} mails");
        }
        assert!(Instant::now() < deadline, "the server never saw {n} mails");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A paced batch (one connection, one mail every 2 s) over `team.csv` (a@, b@), caught after
/// its first mail: the moment for the list to change under it.
fn paced_batch_after_its_first_mail() -> (Server, Env, Child) {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    let env = smtp_env(
        &srv,
        &ca,
        ENV_PASSWORD,
        "connections = 1\nmax_per_minute = 30\n",
    );
    std::fs::write(env.path("team.csv"), "a@example.org\nb@example.org\n").unwrap();
    let mut child = env
        .command(&["send", "--key", "--to-list", "team.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_mails(&srv, 1, &mut child);
    (srv, env, child)
}

fn finish(child: Child) -> support::Run {
    support::Run(child.wait_with_output().unwrap())
}

/// Runs `args`, killing the run if it has not finished within 20 s (a list read twice from a
/// FIFO blocks forever on the second open).
fn run_bounded(env: &Env, args: &[&str]) -> support::Run {
    let mut child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("securemail {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    finish(child)
}

#[test]
fn a_list_on_stdin_is_sent_with_dash_and_with_dev_stdin() {
    let env = Env::new("");
    for (arg, who) in [("-", "a"), ("/dev/stdin", "b")] {
        let mut child = env
            .command(&["send", "--key", "--to-list", arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let list = format!("email,name\n{who}1@example.org,One\n{who}2@example.org\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(list.as_bytes())
            .unwrap();
        let r = finish(child);
        r.expect(0);
        assert!(
            r.stdout()
                .starts_with("sent 2, skipped 0, invalid 0, failed 0"),
            "{arg}: {}",
            r.stdout()
        );
    }
    let mut to: Vec<String> = env
        .outbox()
        .iter()
        .map(|p| decode_mail(&std::fs::read(p).unwrap()).to)
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "a1@example.org",
            "a2@example.org",
            "b1@example.org",
            "b2@example.org"
        ]
    );
    // Each code is recorded and verifies.
    for p in env.outbox() {
        let mail = decode_mail(&std::fs::read(p).unwrap());
        env.run(&["reply", "--to", &mail.to, "--code", &mail.qr])
            .expect(0);
    }
}

#[test]
fn a_list_from_a_fifo_is_read_once_and_bad_lines_in_it_are_still_refused() {
    let env = Env::new("");
    let fifo = env.path("list.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let write = |text: &'static str| {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };

    let writer = write("x@example.org\nnot-an-address\n");
    let r = run_bounded(&env, &["send", "--key", "--to-list", "list.fifo"]);
    writer.join().unwrap();
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: list.fifo:2: \"not-an-address\""),
        "{}",
        r.stderr()
    );
    assert!(env.outbox().is_empty());

    let writer = write("x@example.org\ny@example.org\n");
    let r = run_bounded(&env, &["send", "--key", "--to-list", "list.fifo"]);
    writer.join().unwrap();
    r.expect(0);
    assert_eq!(env.outbox().len(), 2);
}

#[test]
fn lines_appended_during_the_run_stop_it_and_a_rerun_sends_only_them() {
    let (srv, env, child) = paced_batch_after_its_first_mail();
    let list = env.path("team.csv");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&list)
        .unwrap()
        .write_all(b"late@example.org\n")
        .unwrap();
    let r = finish(child);
    r.expect(65);
    assert!(
        r.stderr().starts_with(
            "securemail: error: the recipient list team.csv changed during the run (it grew by 17 bytes); 2 recipients had been sent their mail\n"
        ),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("sends only to the rest"),
        "{}",
        r.stderr()
    );
    let to: Vec<String> = srv.log().mails.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to, ["a@example.org", "b@example.org"]);

    let r = env.run(&["send", "--key", "--to-list", "team.csv"]);
    r.expect(0);
    assert!(
        r.stdout().starts_with("sent 1, skipped 2,"),
        "{}",
        r.stdout()
    );
    assert_eq!(srv.log().mails.len(), 3);
    assert_eq!(srv.log().mails[2].to, ["late@example.org"]);
}

#[test]
fn a_list_rewritten_during_the_run_stops_it() {
    let (_srv, env, child) = paced_batch_after_its_first_mail();
    let list = env.path("team.csv");
    // As an editor saves: a new file renamed over the old one.
    std::fs::write(env.path("team.new"), "a@example.org\nc@example.org\n").unwrap();
    std::fs::rename(env.path("team.new"), &list).unwrap();
    let r = finish(child);
    r.expect(65);
    assert!(
        r.stderr().contains(
            "the recipient list team.csv changed during the run (the path now names another file)"
        ),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_delivered_code_verifies_while_the_next_mail_waits_for_its_pacing_slot() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    // Two a minute: the second mail waits 30 s for its slot.
    let env = smtp_env(
        &srv,
        &ca,
        ENV_PASSWORD,
        "connections = 1\nmax_per_minute = 2\n",
    );
    std::fs::write(
        env.path("two.csv"),
        "first@example.org\nsecond@example.org\n",
    )
    .unwrap();
    let mut child = env
        .command(&["send", "--key", "--to-list", "two.csv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_mails(&srv, 1, &mut child);
    let key = decode_mail(&srv.log().mails[0].data).qr;
    // The store is written right after the server's 250; give that a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = env.run(&["reply", "--to", "first@example.org", "--code", &key]);
        if r.code() == 0 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let still_waiting = srv.log().mails.len() == 1 && child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    r.expect(0);
    assert!(
        still_waiting,
        "the second mail should still wait for its slot"
    );
}

#[test]
fn an_empty_password_variable_is_refused_before_connecting() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    let mut env = smtp_env(&srv, &ca, ENV_PASSWORD, "");
    env.env = vec![("SECUREMAIL_TEST_PASSWORD".into(), String::new())];
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(78);
    assert_eq!(
        r.stderr().lines().next(),
        Some(
            "securemail: error: the environment variable SECUREMAIL_TEST_PASSWORD (from [smtp] password_env) is empty"
        )
    );
    assert!(r.stderr().contains("export SECUREMAIL_TEST_PASSWORD="));
    let log = srv.log();
    assert_eq!(log.connections, 0, "no connection, so no AUTH");
    assert!(log.mails.is_empty());
}

#[test]
fn a_password_command_that_prints_only_a_newline_is_refused() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    let env = smtp_env(&srv, &ca, "password_command = \"echo\"", "");
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(78);
    assert!(
        r.stderr()
            .starts_with("securemail: error: [smtp] password_command \"echo\" printed no password"),
        "{}",
        r.stderr()
    );
    assert_eq!(srv.log().connections, 0);
}

#[test]
fn a_hanging_password_command_is_killed_at_the_timeout() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    // timeout_secs is the command's limit too.
    let mut env = smtp_env(
        &srv,
        &ca,
        "password_command = \"sleep 30\"",
        "timeout_secs = 1\n",
    );
    env.env.clear();
    let started = Instant::now();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    let took = started.elapsed();
    r.expect(75);
    assert!(
        r.stderr().starts_with(
            "securemail: error: [smtp] password_command \"sleep 30\" did not finish within 1s (timeout_secs); it was killed"
        ),
        "{}",
        r.stderr()
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(srv.log().connections, 0);
}

#[test]
fn a_failing_password_command_says_how() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    let env = smtp_env(
        &srv,
        &ca,
        "password_command = \"echo 'no entry for smtp' >&2; exit 3\"",
        "",
    );
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(78);
    let first = r
        .stderr()
        .lines()
        .find(|l| l.starts_with("securemail: error:"))
        .map(str::to_string);
    assert_eq!(
        first.as_deref(),
        Some(
            "securemail: error: [smtp] password_command \"echo 'no entry for smtp' >&2; exit 3\" failed (exit status: 3): no entry for smtp"
        ),
        "{}",
        r.stderr()
    );
    assert_eq!(srv.log().connections, 0);

    let env = smtp_env(&srv, &ca, "password_command = \"exit 3\"", "");
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(78);
    assert!(
        r.stderr().starts_with(
            "securemail: error: [smtp] password_command \"exit 3\" failed (exit status: 3)\n"
        ),
        "{}",
        r.stderr()
    );
}

#[test]
fn an_empty_answer_at_the_password_prompt_is_refused_before_connecting() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca);
    // No password source: asked on the terminal.
    let env = smtp_env(&srv, &ca, "", "");
    let r = support::run_on_tty(
        &env,
        "send --key --to a@example.org",
        &[support::Typed {
            prompt: "SMTP password for",
            line: "",
            secret: true,
        }],
    );
    r.expect(78);
    // On a terminal, stdout and stderr share it.
    assert!(
        r.stdout()
            .contains("securemail: error: no SMTP password was typed"),
        "{}",
        r.stdout()
    );
    assert_eq!(srv.log().connections, 0);
}

/// stderr going to a reader that went away (`send … 2>&1 | head -1`) does not stop a batch
/// half-way with a panic: every mail goes, the exit code is the batch's own.
#[test]
fn a_closed_stderr_does_not_stop_a_batch() {
    let env = Env::new("");
    let mut list = String::from("email\n");
    for i in 0..30 {
        list.push_str(&format!("user{i}@example.org\n"));
    }
    // Invalid lines too: each one is a line on stderr.
    list.push_str("not-an-address\nalso bad\n");
    std::fs::write(env.path("team.csv"), list).unwrap();
    let mut child = env
        .command(&[
            "-v",
            "send",
            "--key",
            "--skip-invalid",
            "--to-list",
            "team.csv",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away before the first line
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(env.outbox().len(), 30);
}

/// Output that cannot be written (a full disk behind `>`) is a failure, exit 74, not success.
#[test]
fn a_full_stdout_is_exit_74() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .command(&["status"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "securemail: error: cannot write to stdout: the disk is full\nhint: the command \
         did its work, but its output is incomplete: check where stdout goes (a full disk?)\n"
    );
}

/// A code that cannot be one of the recipient's kind is bad input (65), never an attempt, and
/// the message says which kind they hold.
#[test]
fn a_code_of_the_wrong_shape_costs_no_attempt() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "key@example.org"])
        .expect(0);
    env.run(&["send", "--otp", "--to", "otp@example.org"])
        .expect(0);
    let attempts = |to: &str| {
        let r = env.run(&["--json", "status", "--to", to]);
        r.expect(0);
        let record = r
            .stdout()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["type"] == "record")
            .unwrap();
        record["attempts"].as_u64().unwrap()
    };
    for (to, code, message, hint) in [
        (
            "key@example.org",
            "123456",
            "that is not the key sent to key@example.org: it looks like a TOTP code, but \
             key@example.org was sent a one-time key; no attempt was counted",
            "type the key from the mail (letters and digits in groups, e.g. 7KQ2-9XMD-…), not a \
             code from an authenticator app",
        ),
        (
            "otp@example.org",
            "12345",
            "that is not a TOTP code for otp@example.org: it must be 6 digits; no attempt was \
             counted",
            "type the 6 digits the authenticator app shows now",
        ),
        (
            "otp@example.org",
            &support::well_formed_key("7KQ2-9XMD-4HT"),
            "that is not a TOTP code for otp@example.org: it looks like a one-time key, but \
             otp@example.org was enrolled in an authenticator app; no attempt was counted",
            "type the 6 digits the authenticator app shows now, not a key from a mail",
        ),
    ] {
        let r = env.run(&["reply", "--to", to, "--code", code]);
        r.expect(65);
        assert_eq!(
            r.stderr(),
            format!("securemail: error: code refused: {message}\nhint: {hint}\n")
        );
        assert_eq!(attempts(to), 0, "{to} {code}");
    }
}

/// A message file that is not there is exit 66 (EX_NOINPUT), like a list file.
#[test]
fn a_missing_message_file_is_exit_66() {
    let env = Env::new("");
    let r = env.run(&["reply", "--message", "nowhere.eml"]);
    r.expect(66);
    assert_eq!(
        r.stderr(),
        "securemail: error: cannot read the message nowhere.eml: no such file or directory\n"
    );
}

/// Something in a Maildir's new/ that no mail system delivers (a pipe, a directory) is left
/// there with a warning, and the run does not hang on it.
#[test]
fn a_pipe_or_directory_in_new_is_said_and_left() {
    let env = Env::new("");
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    std::fs::create_dir(md.join("new/adir")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(md.join("new/apipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let r = run_bounded(&env, &["reply", "--maildir", "Maildir"]);
    r.expect(0);
    for name in ["adir", "apipe"] {
        assert!(
            r.stderr().contains(&format!(
                "securemail: warning: Maildir/new/{name} left in new/: not a regular file (a \
                 mail system delivers files); move it away\n"
            )),
            "{}",
            r.stderr()
        );
        assert!(md.join("new").join(name).exists());
    }
}
