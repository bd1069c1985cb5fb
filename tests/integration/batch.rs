//! Batches: many recipients over reused TLS connections, per-recipient outcomes, retries,
//! resuming after `kill -9`, list errors, and memory that stays flat.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::support::{self, Ca, Env, Mode, Options, Server, decode_mail};

fn list(env: &Env, name: &str, lines: &str) -> String {
    std::fs::write(env.path(name), lines).unwrap();
    name.to_string()
}

fn addresses(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i:05}@example.org")).collect()
}

fn csv(addrs: &[String]) -> String {
    let mut s = String::from("email,name\n");
    for (i, a) in addrs.iter().enumerate() {
        writeln!(s, "{a},User {i}").unwrap();
    }
    s
}

fn tls_server(ca: &Ca, tweak: impl FnOnce(&mut Options)) -> Server {
    let mut opts = Options::new(Mode::Tls, ca.leaf(&["localhost"]));
    tweak(&mut opts);
    Server::start(opts)
}

fn set_smtp_extra(env: &Env, srv: &Server, ca: &Ca, extra: &str) {
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"{}\"\n\
         password_env = \"SECUREMAIL_TEST_PASSWORD\"\nca_file = \"ca.pem\"\ntimeout_secs = 10\n{extra}",
        srv.port(),
        support::SMTP_USER
    ));
}

#[test]
fn fifty_recipients_each_get_one_mail_with_their_own_qr_and_can_verify() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |_| {});
    let env = Env::new("");
    // The resend at the end follows the first mails at once: no cooldown here (the budgets have
    // their own tests in limits.rs).
    set_smtp_extra(
        &env,
        &srv,
        &ca,
        "connections = 3\n[limits]\nresend_cooldown = \"0s\"\n",
    );
    let addrs = addresses(50);
    let file = list(&env, "team.csv", &csv(&addrs));
    let r = env.run(&["send", "--otp", "--to-list", &file]);
    r.expect(0);
    assert!(
        r.stdout()
            .starts_with("sent 50, skipped 0, invalid 0, failed 0 "),
        "{}",
        r.stdout()
    );

    let log = srv.log();
    assert_eq!(log.mails.len(), 50);
    assert!(
        log.connections <= 3,
        "{} connections for 50 mails",
        log.connections
    );
    let mut secrets = HashMap::new();
    for m in &log.mails {
        assert_eq!(m.to.len(), 1);
        let mail = decode_mail(&m.data);
        assert_eq!(mail.to, m.to[0]);
        let account = mail
            .qr
            .split("Example:")
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        assert_eq!(
            account.replace("%40", "@"),
            m.to[0],
            "QR is for its recipient"
        );
        assert!(
            secrets
                .insert(m.to[0].clone(), support::otpauth_secret(&mail.qr))
                .is_none(),
            "one mail each"
        );
    }
    drop(log);
    let distinct: std::collections::HashSet<_> = secrets.values().collect();
    assert_eq!(distinct.len(), 50, "every recipient has their own secret");
    for a in &addrs {
        let code = support::totp(&secrets[a], support::now());
        env.run(&["reply", "--to", a, "--code", &code]).expect(0);
    }

    // A finished batch, run again, sends nothing.
    let r = env.run(&["send", "--otp", "--to-list", &file]);
    r.expect(0);
    assert!(
        r.stdout().starts_with("sent 0, skipped 50,"),
        "{}",
        r.stdout()
    );
    assert_eq!(srv.log().mails.len(), 50);
    // --resend replaces even verified enrolments (a plain send skipped them), and says so.
    env.run(&[
        "send", "--otp", "--resend", "--to", &addrs[0], "--to", &addrs[1],
    ])
    .expect(0);
    assert_eq!(srv.log().mails.len(), 52);
}

#[test]
fn a_550_is_reported_and_a_451_is_retried() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |o| {
        o.rcpt_always.insert("gone@example.org".into(), 550);
        o.rcpt_script
            .insert("busy@example.org".into(), [451].into());
    });
    let env = Env::new("");
    set_smtp_extra(&env, &srv, &ca, "connections = 1\n");
    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--to",
        "a@example.org",
        "--to",
        "gone@example.org",
        "--to",
        "busy@example.org",
        "--to",
        "b@example.org",
    ]);
    r.expect(69);
    assert_eq!(
        r.stderr(),
        "securemail: error: 1 of 4 recipients did not get their mail\n\
         hint: the lines above say why each failed; after fixing, the same command sends only to those left\n"
    );
    let lines: Vec<serde_json::Value> = r
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "4 recipients + summary + error");
    assert_eq!(lines[5]["type"], "error");
    assert_eq!(lines[5]["exit"], 69);
    assert_eq!(
        lines[5]["message"],
        "1 of 4 recipients did not get their mail"
    );
    let by: HashMap<String, &serde_json::Value> = lines[..4]
        .iter()
        .map(|v| (v["recipient"].as_str().unwrap().to_string(), v))
        .collect();
    assert!(lines[..4].iter().all(|v| v["type"] == "recipient"));
    assert_eq!(by["gone@example.org"]["outcome"], "failed");
    assert_eq!(by["gone@example.org"]["permanent"], true);
    assert_eq!(by["gone@example.org"]["reply_code"], 550);
    assert_eq!(by["busy@example.org"]["outcome"], "sent");
    assert_eq!(by["busy@example.org"]["attempts"], 2);
    assert_eq!(by["a@example.org"]["reply_code"], 250);
    assert_eq!(lines[4]["type"], "summary");
    assert_eq!(lines[4]["command"], "send");
    assert_eq!(lines[4]["sent"], 3);
    assert_eq!(lines[4]["failed_permanent"], 1);
    let got: Vec<String> = srv.log().mails.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(got.len(), 3);
    assert!(got.contains(&"busy@example.org".to_string()));
}

#[test]
fn a_progress_bar_only_on_a_terminal() {
    let ca = Ca::new("securemail test CA");
    // No need to slow the server down: indicatif draws the first updates at once.
    let srv = tls_server(&ca, |_| {});
    let env = Env::new("");
    // The second run resends at once: no cooldown here.
    set_smtp_extra(
        &env,
        &srv,
        &ca,
        "connections = 1\n[limits]\nresend_cooldown = \"0s\"\n",
    );
    let file = list(&env, "team.csv", &csv(&addresses(12)));
    let r = env.run(&["send", "--key", "--to-list", &file]);
    r.expect(0);
    assert!(!r.stderr().contains("recipients,"), "{}", r.stderr());
    let r = support::run_on_tty(&env, &format!("send --key --resend --to-list {file}"), &[]);
    r.expect(0);
    assert!(
        r.stdout().contains("/12 recipients,"),
        "no progress bar on the terminal: {}",
        r.stdout()
    );
    assert!(r.stdout().contains("sent 12,"), "{}", r.stdout());
}

#[test]
fn temporary_failures_left_exit_75() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |o| {
        o.rcpt_always.insert("full@example.org".into(), 452);
    });
    let env = Env::new("");
    set_smtp_extra(&env, &srv, &ca, "");
    let r = env.run(&[
        "send",
        "--key",
        "--to",
        "full@example.org",
        "--to",
        "ok@example.org",
    ]);
    r.expect(75);
    assert!(r.stderr().contains("securemail: failed: full@example.org after 4 attempts: the server refused RCPT TO for now: 452"), "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("hint: run the same command again later"),
        "{}",
        r.stderr()
    );
}

#[test]
fn an_idle_connection_closed_by_the_server_does_not_fail_the_next_mail() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |o| o.idle_timeout = Some(Duration::from_millis(150)));
    let env = Env::new("");
    // 120 a minute: 0.5 s between mails, longer than the server keeps an idle connection.
    set_smtp_extra(&env, &srv, &ca, "connections = 1\nmax_per_minute = 120\n");
    let r = env.run(&[
        "send",
        "--key",
        "--to",
        "a@example.org",
        "--to",
        "b@example.org",
        "--to",
        "c@example.org",
    ]);
    r.expect(0);
    assert!(r.stdout().starts_with("sent 3,"), "{}", r.stdout());
    let log = srv.log();
    assert_eq!(log.mails.len(), 3);
    assert_eq!(log.connections, 3, "each mail needed a fresh connection");
}

#[test]
fn a_killed_batch_resumes_without_sending_twice() {
    let ca = Ca::new("securemail test CA");
    // After 30 accepted mails the server holds each connection's next one at its final dot.
    let srv = tls_server(&ca, |o| o.hold_after = Some(30));
    let env = Env::new("");
    set_smtp_extra(&env, &srv, &ca, "connections = 2\n");
    let addrs = addresses(120);
    let file = list(&env, "team.csv", &csv(&addrs));

    let mut child = env
        .command(&["send", "--key", "--to-list", &file])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed with both connections waiting for the answer to a sent message.
    srv.wait_until_held(2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = srv.log().mails.len();
    assert!(before < 120, "killed too late ({before})");
    // The held mails are accepted now, their 250 lost with the dead client: sent, unconfirmed.
    srv.release();

    let r = env.run(&["send", "--key", "--to-list", &file]);
    r.expect(0);
    let named: Vec<String> = r
        .stderr()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("securemail: sent ")?
                .split(' ')
                .next()
                .map(str::to_string)
        })
        .collect();
    // Exactly the two mails in flight at the kill, one per connection, are sent again.
    assert_eq!(named.len(), 2, "{named:?}");

    let mut count: HashMap<String, usize> = HashMap::new();
    for m in &srv.log().mails {
        *count.entry(m.to[0].clone()).or_default() += 1;
    }
    for a in &addrs {
        let n = count.get(a).copied().unwrap_or(0);
        assert!(n >= 1, "{a} got no mail");
        if n > 1 {
            assert_eq!(n, 2);
            assert!(
                named.contains(a),
                "{a} got two mails but the rerun did not name it: {named:?}"
            );
        }
    }
    // Every recipient holds exactly one verifiable key: the last one they were sent.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    let pending: i64 = db
        .query_row(
            "SELECT count(DISTINCT recipient) FROM codes WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 120);
    let sending: i64 = db
        .query_row(
            "SELECT count(*) FROM codes WHERE state = 'sending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sending, 0);
}

#[test]
fn a_failure_that_stops_the_batch_stops_it_promptly() {
    // A server that accepts TCP and never speaks: the first session times out, every worker
    // must then wind down even with hundreds of recipients queued behind it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let ca = Ca::new("securemail test CA");
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {port}\nsecurity = \"tls\"\nca_file = \"ca.pem\"\ntimeout_secs = 1\n"
    ));
    let file = list(&env, "team.csv", &csv(&addresses(500)));
    let started = std::time::Instant::now();
    let mut child = env
        .command(&["send", "--key", "--to-list", &file])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the batch hung after a fatal error");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(75));
    drop(silent);
}

#[test]
fn bad_list_lines_are_refused_before_anything_is_sent() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |_| {});
    let env = Env::new("");
    set_smtp_extra(&env, &srv, &ca, "");
    let file = list(
        &env,
        "team.csv",
        "email,name\na@example.org,A\nnot-an-address,B\nc@example.org,\"C\nA@example.org,dup\n",
    );
    let r = env.run(&["send", "--key", "--to-list", &file]);
    r.expect(65);
    assert_eq!(
        r.stderr(),
        "securemail: error: team.csv:3: \"not-an-address\" is not an email address (no @)\n\
         hint: each line is email[,name]; fix the line, or pass --skip-invalid to send to the rest (2 more lines with problems)\n"
    );
    assert_eq!(srv.log().connections, 0);
    assert!(!env.path("securemail.db").exists());

    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--to-list",
        &file,
        "--skip-invalid",
    ]);
    r.expect(0);
    let states: Vec<String> = r
        .stdout()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.get("outcome")
                .map(|s| format!("{}:{}", v["line"], s.as_str().unwrap()))
        })
        .collect();
    let mut sorted = states.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["2:sent", "3:invalid", "4:invalid", "5:invalid"]
    );
    assert_eq!(srv.log().mails.len(), 1);
}

#[test]
fn empty_and_missing_lists() {
    let env = Env::new("");
    let file = list(&env, "empty.csv", "email,name\n\n# nobody yet\n");
    let r = env.run(&["send", "--key", "--to-list", &file]);
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: the recipient list empty.csv has no recipients\n"),
        "{}",
        r.stderr()
    );
    let r = env.run(&["send", "--key", "--to-list", "nope.csv"]);
    r.expect(66);
    assert!(r.stderr().starts_with("securemail: error: cannot read the recipient list nope.csv: no such file or directory\n"), "{}", r.stderr());
    // CRLF line endings (spreadsheet exports) are fine; a line break inside a field is not.
    let file = list(&env, "crlf.csv", "email,name\r\nz@example.org,Zed\r\n");
    env.run(&["send", "--key", "--to-list", &file]).expect(0);
    let file = list(
        &env,
        "cr.csv",
        "y@example.org,\"Y\rBcc: evil@example.org\"\n",
    );
    let r = env.run(&["send", "--key", "--to-list", &file]);
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: cr.csv:1: a carriage return inside the line\n"),
        "{}",
        r.stderr()
    );
}

/// Peak resident memory of a running child, polled from /proc.
fn peak_rss_kib(child: &mut std::process::Child) -> u64 {
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("VmHWM:") {
                    peak = peak.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_ten_thousand_line_list_streams_in_flat_memory() {
    let ca = Ca::new("securemail test CA");
    let srv = tls_server(&ca, |o| o.keep_data = false);
    let env = Env::new("");
    set_smtp_extra(&env, &srv, &ca, "connections = 4\n");
    let small = list(&env, "small.csv", &csv(&addresses(500)));
    let big_addrs: Vec<String> = (0..10_000)
        .map(|i| format!("big{i:05}@example.org"))
        .collect();
    let big = list(&env, "big.csv", &csv(&big_addrs));

    let run = |file: &str| {
        let mut child = env
            .command(&["send", "--key", "--to-list", file])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let peak = peak_rss_kib(&mut child);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        peak
    };
    let small_peak = run(&small);
    let big_peak = run(&big);
    eprintln!("peak RSS: {small_peak} KiB for 500 recipients, {big_peak} KiB for 10 000");
    assert_eq!(srv.log().mails.len(), 10_500);
    // 20 times the recipients, about the same memory (a few MB of slack for allocator noise).
    assert!(
        big_peak < small_peak + 8 * 1024,
        "peak RSS {big_peak} KiB for 10 000 vs {small_peak} KiB for 500"
    );
}
