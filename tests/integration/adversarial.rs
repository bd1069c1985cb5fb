//! Hostile servers, hostile input, crashes: nothing leaks, nothing is lost.
//!
//! Every hostile server case asserts the same three things: no `MAIL FROM` (and no credential)
//! reached the server, a clear error, and the documented exit code. Every hostile input case
//! asserts a clear error, no panic, nothing sent and the store unchanged.

use std::time::Duration;

use crate::support::hostile::{Hostile, Script};
use crate::support::{self, Ca, Env, Mode, Run, decode_mail, server};

fn env_for(port: u16, security: &str, ca: &Ca, extra: &str) -> Env {
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\nusername = \"{}\"\n\
         password_env = \"SECUREMAIL_TEST_PASSWORD\"\nca_file = \"ca.pem\"\ntimeout_secs = 2\n{extra}",
        support::SMTP_USER
    ));
    env
}

/// The common assertions for a server that must not get a mail.
#[track_caller]
fn refused(h: &Hostile, r: &Run, code: i32, first_line: &str) {
    r.expect(code);
    let err = r.stderr();
    assert_eq!(err.lines().next(), Some(first_line), "{err}");
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let seen = h.seen();
    assert_eq!(
        seen.mail_from(),
        0,
        "MAIL FROM reached the server: {:?}",
        seen.commands
    );
    assert_eq!(
        seen.auth(),
        0,
        "credentials reached the server: {:?}",
        seen.commands
    );
    assert_eq!(seen.messages, 0);
}

fn ca() -> Ca {
    Ca::new("adversarial CA")
}

#[test]
fn starttls_not_advertised() {
    let ca = ca();
    let h = Hostile::start(Script {
        advertise_starttls: false,
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let env = env_for(h.port(), "starttls", &ca, "");
    let r = env.run(&["send", "--otp", "--to", "a@example.org"]);
    refused(
        &h,
        &r,
        69,
        &format!(
            "securemail: error: localhost:{} does not offer STARTTLS; nothing was sent",
            h.port()
        ),
    );
}

#[test]
fn starttls_answered_454_or_502() {
    let ca = ca();
    for (reply, code) in [
        ("454 4.7.0 TLS not available due to temporary reason", 75),
        ("502 5.5.1 not implemented", 69),
    ] {
        let h = Hostile::start(Script {
            starttls_reply: reply.into(),
            ..Script::new(ca.leaf(&["localhost"]))
        });
        let env = env_for(h.port(), "starttls", &ca, "");
        let r = env.run(&["send", "--key", "--to", "a@example.org"]);
        refused(
            &h,
            &r,
            code,
            &format!("securemail: error: the server refused STARTTLS: {reply}; nothing was sent"),
        );
    }
}

/// The "NO STARTTLS" response-injection attack: bytes appended to `220 Ready to start TLS` in the
/// same TCP write, in every shape (a whole reply, several, half a line).
#[test]
fn bytes_injected_after_starttls_are_refused() {
    let ca = ca();
    for inject in [
        &b"250 injected\r\n"[..],
        b"250-hostile.test\r\n250 AUTH LOGIN\r\n",
        b"250-PIPELINING",
        b"\r\n",
        b"235 2.7.0 fake login ok\r\n250 2.0.0 fake\r\n250 2.0.0 fake\r\n354 fake\r\n250 fake queued\r\n",
    ] {
        let h = Hostile::start(Script {
            inject: inject.to_vec(),
            ..Script::new(ca.leaf(&["localhost"]))
        });
        let env = env_for(h.port(), "starttls", &ca, "");
        let r = env.run(&["send", "--otp", "--to", "a@example.org"]);
        let n = inject.len();
        refused(
            &h,
            &r,
            76,
            &format!(
                "securemail: error: {n} bytes of plaintext followed the server's STARTTLS reply \
                 (response injection); the session was refused and nothing was sent"
            ),
        );
        assert_eq!(h.seen().commands.last().map(String::as_str), Some("STARTTLS"));
    }
}

/// Injected bytes that arrive in a later TCP segment land in the TLS handshake instead.
#[test]
fn bytes_injected_in_a_later_segment_break_the_handshake() {
    let ca = ca();
    let h = Hostile::start(Script {
        inject_later: b"250 injected later\r\n".to_vec(),
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let env = env_for(h.port(), "starttls", &ca, "");
    let r = env.run(&["send", "--otp", "--to", "a@example.org"]);
    refused(
        &h,
        &r,
        77,
        "securemail: error: the TLS handshake with localhost failed: the server's answer to STARTTLS \
         was not a TLS handshake (plaintext injected after the 220?)",
    );
}

/// Why the SMTP dialogue is ours: lettre 0.11 (the version this project builds with) keeps the
/// injected bytes in its read buffer across the upgrade and reads them as the encrypted
/// server's EHLO reply. The server below offers `AUTH PLAIN LOGIN` over TLS; the plaintext
/// injection claims `AUTH LOGIN` only; lettre, which prefers PLAIN, logs in with LOGIN.
#[test]
fn lettre_reads_injected_bytes_as_the_servers_reply() {
    use lettre::Transport;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let ca = ca();
    let h = Hostile::start(Script {
        inject: b"250-hostile.test\r\n250 AUTH LOGIN\r\n".to_vec(),
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let mailer = lettre::SmtpTransport::builder_dangerous("localhost")
        .port(h.port())
        .tls(Tls::Required(tls))
        .credentials(Credentials::new("u".into(), "p".into()))
        .timeout(Some(Duration::from_secs(3)))
        .build();
    let msg = lettre::Message::builder()
        .from("a@example.org".parse().unwrap())
        .to("b@example.org".parse().unwrap())
        .subject("x")
        .body(String::from("x"))
        .unwrap();
    let _ = mailer.send(&msg);
    let seen = h.seen();
    let auth: Vec<&String> = seen
        .commands
        .iter()
        .filter(|c| c.starts_with("AUTH"))
        .collect();
    assert!(
        auth.first().is_some_and(|c| c.starts_with("AUTH LOGIN")),
        "lettre chose its login method from the plaintext injection: {:?}",
        seen.commands
    );
}

#[test]
fn tls_older_than_1_2_is_refused() {
    let ca = ca();
    for (implicit, security) in [(true, "tls"), (false, "starttls")] {
        let h = Hostile::start(Script {
            implicit_tls: implicit,
            tls10_only: true,
            ..Script::new(ca.leaf(&["localhost"]))
        });
        let env = env_for(h.port(), security, &ca, "");
        let r = env.run(&["send", "--otp", "--to", "a@example.org"]);
        refused(
            &h,
            &r,
            77,
            "securemail: error: localhost offers only TLS versions older than 1.2",
        );
    }
}

#[test]
fn a_stall_after_the_message_times_out_and_the_code_never_verifies() {
    let ca = ca();
    let h = Hostile::start(Script {
        implicit_tls: true,
        stall_after_data: true,
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let env = env_for(h.port(), "tls", &ca, "retries = 1\n");
    let started = std::time::Instant::now();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(75);
    // One retry (with the same mail, so a late delivery of the first is harmless), then give up.
    assert_eq!(h.seen().messages, 2);
    assert_eq!(
        r.stderr().lines().next(),
        Some(
            "securemail: error: the SMTP server did not answer within 2s during the end of the message"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // No reply: the mail may or may not exist, so its code is recorded as failed, never usable.
    let st = env.run(&["--json", "status", "--all"]);
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["state"], "failed");
}

#[test]
fn an_accepted_mail_stays_accepted_when_the_line_drops_after_250() {
    let ca = ca();
    let h = Hostile::start(Script {
        implicit_tls: true,
        reset_after_accept: true,
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let env = env_for(h.port(), "tls", &ca, "");
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    r.expect(0);
    assert_eq!(h.seen().messages, 1);
    let st = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["state"], "pending");
}

// ------------------------------------------------------------------------------------------
// Hostile input.

/// `status --all --json` as a fingerprint of the store.
fn store_state(env: &Env) -> String {
    env.run(&["--json", "status", "--all"]).stdout()
}

#[track_caller]
fn clear_error(r: &Run, code: i32, starts: &str) {
    r.expect(code);
    assert!(
        r.stderr()
            .starts_with(&format!("securemail: error: {starts}")),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
}

#[test]
fn header_injection_everywhere_is_refused_and_html_is_escaped() {
    let ca = ca();
    let srv = server(Mode::Tls, &ca);
    let env = Env::smtp(&srv, "tls", &ca);
    env.run(&["send", "--key", "--to", "seed@example.org"])
        .expect(0);
    let before = store_state(&env);
    for args in [
        vec![
            "send",
            "--key",
            "--to",
            "x@example.org",
            "--subject",
            "a\nBcc: evil@example.org",
        ],
        vec![
            "send",
            "--key",
            "--to",
            "x@example.org",
            "--subject",
            "a\rBcc: evil@example.org",
        ],
        vec![
            "send",
            "--key",
            "--to",
            "x@example.org",
            "--name",
            "X\r\nBcc: evil@example.org",
        ],
        vec![
            "send",
            "--key",
            "--to",
            "x@example.org",
            "--subject",
            "tab\tand\u{7}bell",
        ],
    ] {
        clear_error(&env.run(&args), 65, "the ");
    }
    for to in [
        "\"X\r\nBcc: e@example.org\" <x@example.org>",
        "x@example.org\nBcc: evil@example.org",
    ] {
        let r = env.run(&["send", "--key", "--to", to]);
        clear_error(&r, 65, "--to ");
        assert!(
            r.stderr()
                .contains("contains a line break or control character"),
            "{}",
            r.stderr()
        );
    }
    std::fs::write(
        env.path("list.csv"),
        "x@example.org,\"X\rBcc: evil@example.org\"\n",
    )
    .unwrap();
    clear_error(
        &env.run(&["send", "--key", "--to-list", "list.csv"]),
        65,
        "list.csv:1: ",
    );
    assert_eq!(store_state(&env), before);
    assert_eq!(srv.log().mails.len(), 1);

    // Markup in a name is text in the HTML part.
    env.run(&[
        "send",
        "--key",
        "--to",
        "y@example.org",
        "--name",
        "<script>alert(1)</script>",
    ])
    .expect(0);
    let mail = decode_mail(&srv.log().mails[1].data);
    assert!(!mail.html.contains("<script>"), "{}", mail.html);
    assert!(mail.html.contains("&lt;script&gt;"), "{}", mail.html);
}

#[test]
fn oversized_inputs_get_clear_errors() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "seed@example.org"])
        .expect(0);
    let before = store_state(&env);
    // A 10 MB reply message.
    let mut big = b"From: seed@example.org\r\nSubject: x\r\n\r\n".to_vec();
    big.resize(10 * 1024 * 1024, b'a');
    std::fs::write(env.path("big.eml"), &big).unwrap();
    clear_error(
        &env.run(&["reply", "--message", "big.eml"]),
        65,
        "the message is larger than 4 MB",
    );
    // A 1 MB name, in a list (argv cannot carry one).
    std::fs::write(
        env.path("big.csv"),
        format!("x@example.org,{}\n", "n".repeat(1024 * 1024)),
    )
    .unwrap();
    clear_error(
        &env.run(&["send", "--key", "--to-list", "big.csv"]),
        65,
        "big.csv:1: the line is longer than 16 KiB",
    );
    // A long name that fits a line.
    std::fs::write(
        env.path("long.csv"),
        format!("x@example.org,{}\n", "n".repeat(5000)),
    )
    .unwrap();
    clear_error(
        &env.run(&["send", "--key", "--to-list", "long.csv"]),
        65,
        "long.csv:1: the name is too long (5000 characters, at most 200)",
    );
    // A huge code, a huge address.
    clear_error(
        &env.run(&[
            "reply",
            "--to",
            "seed@example.org",
            "--code",
            &"7".repeat(100_000),
        ]),
        65,
        "the code is not a one-time code",
    );
    let r = env.run(&[
        "send",
        "--key",
        "--to",
        &format!("{}@example.org", "a".repeat(100_000)),
    ]);
    clear_error(&r, 65, "--to \"aaaa");
    assert!(
        r.stderr()
            .contains("… (100012 characters): the recipient address is too long"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().len() < 400,
        "the error does not repeat the input: {} bytes",
        r.stderr().len()
    );
    // A huge config file.
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(
        env.path("config/huge.toml"),
        format!("{cfg}\n#{}\n", "x".repeat(2 * 1024 * 1024)),
    )
    .unwrap();
    clear_error(
        &env.run(&["--config", "config/huge.toml", "status"]),
        78,
        "config/huge.toml: the file is larger than 1024 KiB",
    );
    assert_eq!(store_state(&env), before);
}

#[test]
fn non_utf8_files_get_clear_errors() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "seed@example.org"])
        .expect(0);
    let before = store_state(&env);
    let cfg = std::fs::read(env.path("config/account.toml")).unwrap();
    let mut bad = cfg.clone();
    bad.extend_from_slice(b"\n# caf\xe9\n");
    std::fs::write(env.path("config/latin1.toml"), &bad).unwrap();
    clear_error(
        &env.run(&["--config", "config/latin1.toml", "status"]),
        78,
        "config/latin1.toml:",
    );
    std::fs::write(env.path("list.csv"), b"x@example.org,Jos\xe9\n").unwrap();
    clear_error(
        &env.run(&["send", "--key", "--to-list", "list.csv"]),
        65,
        "list.csv:1: the line is not valid UTF-8",
    );
    std::fs::write(env.path("templates/key.txt"), b"Hola \xf1 {{ key }}").unwrap();
    clear_error(
        &env.run(&["send", "--key", "--resend", "--to", "seed@example.org"]),
        78,
        "cannot read template templates/key.txt: it is not valid UTF-8",
    );
    assert_eq!(store_state(&env), before);
}

#[test]
fn a_corrupt_store_is_reported_and_left_alone() {
    let env = Env::new("");
    std::fs::write(env.path("securemail.db"), b"this is not a database, just some bytes.............................................................................................").unwrap();
    let before = std::fs::read(env.path("securemail.db")).unwrap();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    clear_error(
        &r,
        74,
        "the store securemail.db is damaged or is not a securemail database",
    );
    assert_eq!(
        std::fs::read(env.path("securemail.db")).unwrap(),
        before,
        "the file was not touched"
    );
    clear_error(
        &env.run(&["reply", "--to", "a@example.org", "--code", "1234567890"]),
        74,
        "the store",
    );
}

/// Makes a file immutable (chattr +i, which binds root too) for the guard's lifetime.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn new(p: std::path::PathBuf) -> Immutable {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        assert!(
            std::fs::OpenOptions::new().append(true).open(&p).is_err(),
            "could not make {} read-only (needs chattr as root, or a non-root user)",
            p.display()
        );
        Immutable(p)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_read_only_store_is_reported() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    let key = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr;
    let _ro = Immutable::new(env.path("securemail.db"));
    let r = env.run(&["reply", "--to", "a@example.org", "--code", &key]);
    assert!(matches!(r.code(), 74), "{}", r.stderr());
    assert!(
        r.stderr().starts_with("securemail: error: "),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("cannot be written") || r.stderr().contains("cannot open"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("panicked"));
}

#[test]
fn a_store_locked_by_another_process_waits_then_says_so() {
    let env = Env::new("");
    let cfg = std::fs::read_to_string(env.path("config/account.toml"))
        .unwrap()
        .replace(
            "path = \"../securemail.db\"\n",
            "path = \"../securemail.db\"\nlock_timeout = \"700ms\"\n",
        );
    std::fs::write(env.path("config/account.toml"), cfg).unwrap();
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    let key = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr;
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = std::time::Instant::now();
    let r = env.run(&["reply", "--to", "a@example.org", "--code", &key]);
    clear_error(&r, 75, "the store ");
    assert!(
        r.stderr()
            .contains("is busy: another process held its lock for longer than 700ms"),
        "{}",
        r.stderr()
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    // Released: the code still works, nothing was counted meanwhile.
    env.run(&["reply", "--to", "a@example.org", "--code", &key])
        .expect(0);
}

fn spawn_replies(env: &Env, to: &str, codes: &[String]) -> Vec<Run> {
    let children: Vec<_> = codes
        .iter()
        .map(|c| {
            env.command(&["reply", "--to", to, "--code", c])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| Run(c.wait_with_output().unwrap()))
        .collect()
}

#[test]
fn max_attempts_holds_under_100_concurrent_wrong_guesses() {
    let env = Env::new("[verify]\nmax_attempts = 5\n");
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    let key = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr;
    // Mistyped keys (a wrong check symbol) are refused before the record is looked at: however
    // many, they cost nothing.
    let typos: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "{i:04}-WRNG-GESS-{}",
                if support::crockford_check(&format!("{i:04}WRNGGESS")) == '0' {
                    '1'
                } else {
                    '0'
                }
            )
        })
        .collect();
    for r in spawn_replies(&env, "a@example.org", &typos) {
        r.expect(65);
        assert!(
            r.stderr().contains("check symbol does not match"),
            "{}",
            r.stderr()
        );
    }
    let st = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["attempts"], 0, "typos cost no attempt");
    let guesses: Vec<String> = (0..100)
        .map(|i| support::well_formed_key(&format!("{i:04}-WRNG-GESS")))
        .collect();
    let runs = spawn_replies(&env, "a@example.org", &guesses);
    let wrong = runs
        .iter()
        .filter(|r| r.stderr().contains("wrong code for") && !r.stderr().contains("now locked"))
        .count();
    let now_locked = runs
        .iter()
        .filter(|r| r.stderr().contains("the code is now locked"))
        .count();
    let locked = runs
        .iter()
        .filter(|r| {
            r.stderr()
                .contains("is locked after too many wrong attempts")
        })
        .count();
    assert!(runs.iter().all(|r| r.code() == 1), "all refused");
    assert!(runs.iter().all(|r| !r.stderr().contains("panicked")));
    assert_eq!(wrong, 4, "attempts 1-4 evaluated");
    assert_eq!(now_locked, 1, "attempt 5 locks");
    assert_eq!(locked, 95, "the rest were never evaluated");
    let v: serde_json::Value = serde_json::from_str(
        env.run(&["--json", "status"])
            .stdout()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["attempts"], 5);
    assert_eq!(v["state"], "locked");
    let r = env.run(&["reply", "--to", "a@example.org", "--code", &key]);
    r.expect(1);
}

#[test]
fn one_hundred_concurrent_replies_of_one_code_accept_once() {
    let env = Env::new("[verify]\nmax_attempts = 1000\n");
    env.run(&["send", "--otp", "--to", "a@example.org"])
        .expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    let code = support::totp(&support::otpauth_secret(&mail.qr), support::now());
    let runs = spawn_replies(&env, "a@example.org", &vec![code; 100]);
    let accepted = runs.iter().filter(|r| r.code() == 0).count();
    assert_eq!(
        accepted,
        1,
        "{:?}",
        runs.iter()
            .map(|r| r.stderr())
            .collect::<Vec<_>>()
            .iter()
            .find(|s| !s.is_empty())
    );
    // The rest are replays of a verified enrolment: each one evaluated counts as a wrong code
    // and throttles the next attempt, so most are refused unevaluated (75), and the enrolment
    // stays verified.
    let replayed = runs
        .iter()
        .filter(|r| r.code() == 1 && r.stderr().contains("already used"))
        .count();
    let held = runs
        .iter()
        .filter(|r| r.code() == 75 && r.stderr().contains("not checked"))
        .count();
    assert_eq!(replayed + held, 99);
    assert!((1..=10).contains(&replayed), "{replayed} replays evaluated");
    let st = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["state"], "verified");
    assert_eq!(v["attempts"], replayed);
}

// ------------------------------------------------------------------------------------------
// Leaks.

#[test]
fn no_secret_in_any_output_log_or_error() {
    let ca = ca();
    let srv = server(Mode::StartTls, &ca);
    let env = Env::smtp(&srv, "starttls", &ca);
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(
        env.path("config/account.toml"),
        format!("{cfg}\n[log]\nfile = \"../send.log\"\n"),
    )
    .unwrap();
    let mut outputs = String::new();
    let mut run = |args: &[&str]| {
        let r = env.run(args);
        outputs.push_str(&r.stdout());
        outputs.push_str(&r.stderr());
        r
    };
    run(&["-v", "send", "--otp", "--to", "a@example.org"]).expect(0);
    run(&["-v", "send", "--key", "--to", "b@example.org"]).expect(0);
    run(&[
        "-v",
        "--json",
        "send",
        "--key",
        "--to",
        "c@example.org",
        "--to",
        "d@example.org",
    ])
    .expect(0);
    let mails: Vec<_> = srv
        .log()
        .mails
        .iter()
        .map(|m| decode_mail(&m.data))
        .collect();
    let otp = &mails[0];
    let secret_b32 = crate::support::secret_param(&otp.qr);
    let code = support::totp(&support::otpauth_secret(&otp.qr), support::now());
    let keys: Vec<String> = mails[1..].iter().map(|m| m.qr.clone()).collect();
    run(&[
        "-v",
        "reply",
        "--to",
        "b@example.org",
        "--code",
        "0000-0000-0000-0",
    ])
    .expect(1);
    run(&[
        "-v",
        "--json",
        "reply",
        "--to",
        "a@example.org",
        "--code",
        &code,
    ])
    .expect(0);
    run(&["-v", "reply", "--to", "a@example.org", "--code", &code]).expect(1);
    run(&["-v", "check"]).expect(0);
    run(&["--json", "status", "--all"]).expect(0);

    let auth_blob = srv.log().auth_blob();
    let log = std::fs::read_to_string(env.path("send.log")).unwrap();
    let all = format!("{outputs}\n{log}");
    let mut secrets = vec![
        support::SMTP_PASS.to_string(),
        auth_blob.clone(),
        secret_b32.clone(),
        secret_b32[..16].to_string(),
        code.clone(),
    ];
    for k in &keys {
        secrets.push(k.clone());
        secrets.push(k.replace('-', ""));
    }
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "{s:?} leaked:\n{all}");
    }
    assert!(
        all.contains("AUTH PLAIN <redacted>"),
        "-v shows the dialogue"
    );
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("[log]\nfile = \"../send.log\"\n");
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    env.run(&["send", "--otp", "--to", "b@example.org", "--dry-run"])
        .expect(0);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for f in [
        "securemail.db",
        "securemail.key",
        "securemail.lock",
        "send.log",
    ] {
        assert_eq!(mode(&env.path(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&env.path("outbox")), 0o700);
    for eml in env.outbox() {
        assert_eq!(mode(&eml), 0o600, "{}", eml.display());
    }
    // SQLite's side files, while a connection holds them open.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.query_row("SELECT count(*) FROM codes", [], |r| r.get::<_, i64>(0))
        .unwrap();
    for f in ["securemail.db-wal", "securemail.db-shm"] {
        if env.path(f).exists() {
            assert_eq!(mode(&env.path(f)), 0o600, "{f}");
        }
    }
}
