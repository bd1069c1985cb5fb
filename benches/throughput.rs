//! `cargo bench --bench throughput`: where securemail's time goes, measured in one run.
//!
//! 1. Building one complete enrolment mail (secret + QR PNG + templates + MIME), in-process.
//! 2. Messages/second for N enrolment mails to distinct recipients over one TLS connection,
//!    running the real `securemail send --otp --to-list` against a local TLS SMTP sink, next to
//!    the transport floor: the same sink receiving N identical pre-built messages over one
//!    connection from the same SMTP client, with no building and no store. Printed as a ratio.
//! 3. The same with `connections = 4`.
//! 4. A cold `securemail send --otp --to ONE` (process start to exit) against the sink, next to
//!    `swaks --tls-on-connect` sending a comparable mail, when swaks is installed.
//!
//! Then 2.–4. again against a real MTA: a private Postfix instance (see `mta/postfix.rs`)
//! that the bench starts and stops, when Postfix is installed and the bench runs as root;
//! otherwise it prints that this case was skipped and how to enable it.
//!
//! Throughput figures are medians of `--rounds` runs (default 3), batch and floor interleaved so
//! that both see the same machine.
//!
//! Options (after `--`): `--n N` (default 1000), `--cold K` cold runs (default 30),
//! `--rounds R` (default 3), `--no-postfix` (skip the Postfix case), `--serve S`: only start
//! the TLS sink (and Postfix), print the directory of a config that sends to it, and keep it
//! up for S seconds (for hyperfine, strace, swaks).

#[path = "../tests/integration/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "mta/postfix.rs"]
mod postfix;

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use securemail::CodeKind;
use securemail::config;
use securemail::mail::{self, Kit, Mail, Recipient};
use securemail::transport::SmtpTarget;

use common::{arg, flag, median, ms};
use postfix::Postfix;
use support::hostile::{Hostile, Script};
use support::{Ca, Env};

/// How much to measure, from the command line.
struct Run {
    n: usize,
    rounds: usize,
    cold_runs: usize,
}

/// Figures 2.–4. against one server.
struct Figures {
    batch1: f64,
    floor1: f64,
    batch4: f64,
    floor4: f64,
    cold: Duration,
    swaks: Option<Duration>,
}

fn main() {
    // `cargo bench` passes --bench; ignore everything else we do not know.
    let run = Run {
        n: arg("--n", 1000),
        rounds: arg("--rounds", 3).max(1),
        cold_runs: arg("--cold", 30).max(1),
    };
    let ca = Ca::new("bench CA");
    // The sink: the test suite's scripted SMTP server (line-based, TLS from the first byte),
    // much lighter than the mailin-based one, so that on a small machine the figures are
    // securemail's and not the sink's.
    let sink = Hostile::start(Script {
        implicit_tls: true,
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let postfix = if flag("--no-postfix") {
        Err("--no-postfix".to_string())
    } else {
        Postfix::start(&ca.leaf(&["localhost"]))
    };

    let env = Env::new("");
    env.set_smtp_port(sink.port(), "tls", &ca);
    let serve = arg("--serve", 0);
    if serve > 0 {
        println!(
            "sink on localhost:{}; run from {} with SECUREMAIL_TEST_PASSWORD='{}'",
            sink.port(),
            env.dir.path().display(),
            support::SMTP_PASS
        );
        if let Ok(pf) = &postfix {
            println!(
                "postfix on localhost:{} (postfix -c {}); change the port in config/account.toml",
                pf.port(),
                pf.config_dir().display()
            );
        }
        std::thread::sleep(Duration::from_secs(serve as u64));
        return;
    }
    let settings = config::load(&env.path("config/account.toml")).expect("config");
    let kit = Kit::load(&settings).expect("templates");
    let to = Recipient::parse("Alice <alice@example.org>", None).unwrap();
    let subject = mail::mime::default_subject(CodeKind::Otp, &settings.otp.issuer);
    let compose = || {
        mail::compose(
            &settings,
            &kit,
            CodeKind::Otp,
            &to,
            &subject,
            securemail::unix_now(),
        )
        .expect("compose")
    };

    // 1. Build time.
    let build_n = 2000;
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..build_n {
        bytes += compose().mail.bytes.expose().len();
    }
    let build = t.elapsed() / build_n;
    println!(
        "1. build one enrolment mail (secret + QR PNG + render + MIME): {:.3} ms  ({} bytes/mail)",
        ms(build),
        bytes / build_n as usize
    );

    let prebuilt = compose().mail;
    println!("-- in-process TLS sink (TLS from the first byte, no queue)");
    let at_sink = measure(sink.port(), &ca, &prebuilt, &run);
    print_figures(&at_sink, &run, "the sink");

    match &postfix {
        Ok(pf) => {
            println!(
                "-- postfix {}: private instance on 127.0.0.1:{} (SMTPS, AUTH PLAIN, queue on disk, discard transport)",
                postfix::version(),
                pf.port()
            );
            let at_postfix = measure(pf.port(), &ca, &prebuilt, &run);
            print_figures(&at_postfix, &run, "postfix");
            println!(
                "postfix / sink, same run: 1 connection {:.2}, floor {:.2}, 4 connections {:.2}, cold send {:.2}",
                at_postfix.batch1 / at_sink.batch1,
                at_postfix.floor1 / at_sink.floor1,
                at_postfix.batch4 / at_sink.batch4,
                at_postfix.cold.as_secs_f64() / at_sink.cold.as_secs_f64(),
            );
        }
        Err(why) => println!(
            "-- postfix case skipped: {why}\n   {}",
            postfix::HOW_TO_ENABLE
        ),
    }
}

/// Figures 2.–4. against the server on localhost:`port`, which must accept the test suite's
/// login over TLS from the first byte and present a certificate `ca` signed.
fn measure(port: u16, ca: &Ca, prebuilt: &Mail, run: &Run) -> Figures {
    let (_floor_env, target) = floor_target(port, ca);
    let interleaved = |connections: usize| -> (f64, f64) {
        let (mut b, mut f) = (Vec::new(), Vec::new());
        for _ in 0..run.rounds {
            f.push(floor(&target, prebuilt, run.n, connections));
            b.push(batch(port, ca, run.n, connections));
        }
        (median(b), median(f))
    };
    let (batch1, floor1) = interleaved(1);
    let (batch4, floor4) = interleaved(4);
    let env = Env::new("");
    env.set_smtp_port(port, "tls", ca);
    let cold = cold_sends(&env, run.cold_runs);
    let swaks = swaks_sends(&env, port, prebuilt, run.cold_runs.min(15));
    Figures {
        batch1,
        floor1,
        batch4,
        floor4,
        cold,
        swaks,
    }
}

fn print_figures(f: &Figures, run: &Run, server: &str) {
    let n = run.n;
    println!(
        "2. {n} enrolment mails, 1 TLS connection: {:.0} mails/s; floor (pre-built identical) {:.0} mails/s; ratio {:.2}",
        f.batch1,
        f.floor1,
        f.batch1 / f.floor1
    );
    println!(
        "3. {n} enrolment mails, connections = 4: {:.0} mails/s ({:.2}x the 1-connection floor); floor with 4: {:.0} mails/s",
        f.batch4,
        f.batch4 / f.floor1,
        f.floor4
    );
    let swaks = match f.swaks {
        Some(s) => format!(
            "swaks --tls-on-connect {:.1} ms ({:.1}x ours)",
            ms(s),
            s.as_secs_f64() / f.cold.as_secs_f64()
        ),
        None => "swaks not installed (apt install swaks)".into(),
    };
    println!(
        "4. cold `securemail send --otp` to {server}: {:.1} ms median of {}; {swaks}",
        ms(f.cold),
        run.cold_runs
    );
}

/// The client side of the floor: the same SMTP client as `send`, prepared from a config
/// whose password comes from a command rather than this process's environment.
fn floor_target(port: u16, ca: &Ca) -> (Env, SmtpTarget) {
    let env = Env::new("");
    env.set_smtp_port(port, "tls", ca);
    let cfg = std::fs::read_to_string(env.path("config/account.toml"))
        .unwrap()
        .replace(
            "password_env = \"SECUREMAIL_TEST_PASSWORD\"",
            &format!(
                "password_command = \"printf '%s' '{}'\"",
                support::SMTP_PASS
            ),
        );
    std::fs::write(env.path("config/floor.toml"), cfg).unwrap();
    let settings = config::load(&env.path("config/floor.toml")).expect("floor config");
    let securemail::config::Delivery::Smtp(smtp) = &settings.delivery else {
        panic!("no [smtp] in the bench config")
    };
    let target = SmtpTarget::prepare(smtp).expect("target");
    (env, target)
}

/// Transport floor: `n` pre-built identical messages over `connections` connections.
fn floor(target: &SmtpTarget, mail: &Mail, n: usize, connections: usize) -> f64 {
    let per = n / connections;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..connections {
            s.spawn(|| {
                let mut session = target.open(None).expect("session");
                for _ in 0..per {
                    session
                        .send(&mail.from, &mail.to, mail.bytes.expose())
                        .expect("send");
                }
                session.quit();
            });
        }
    });
    (per * connections) as f64 / t.elapsed().as_secs_f64()
}

/// 2./3. The real command on `n` distinct recipients (a fresh store each time).
fn batch(port: u16, ca: &Ca, n: usize, connections: usize) -> f64 {
    let env = Env::new("");
    env.set_smtp_port(port, "tls", ca);
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(
        env.path("config/account.toml"),
        format!("{cfg}connections = {connections}\n"),
    )
    .unwrap();
    let mut list = String::new();
    for i in 0..n {
        writeln!(list, "user{i}@example.org,User {i}").unwrap();
    }
    std::fs::write(env.path("team.csv"), list).unwrap();
    let t = Instant::now();
    let out = env
        .command(&["send", "--otp", "--to-list", "team.csv"])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    n as f64 / secs
}

/// 4. Median of `runs` cold single sends.
fn cold_sends(env: &Env, runs: usize) -> Duration {
    let mut times = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let st = env
            .command(&["send", "--otp", "--to", &format!("cold{i}@example.org")])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        times.push(t.elapsed());
        assert!(st.success());
    }
    median(times)
}

/// 4. Median of `runs` swaks sends of `mail` to localhost:`port`, if swaks is installed.
fn swaks_sends(env: &Env, port: u16, mail: &Mail, runs: usize) -> Option<Duration> {
    Command::new("swaks").arg("--version").output().ok()?;
    let body_file = env.path("swaks.eml");
    std::fs::write(&body_file, mail.bytes.expose()).unwrap();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let st = Command::new("swaks")
            .args(["--server", "localhost", "--port", &port.to_string()])
            .arg("--tls-on-connect")
            .args(["--auth", "PLAIN", "--auth-user", support::SMTP_USER])
            .args(["--auth-password", support::SMTP_PASS])
            .args(["--from", "admin@example.org", "--to", "alice@example.org"])
            .arg("--data")
            .arg(&body_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        times.push(t.elapsed());
        assert!(st.success(), "swaks failed");
    }
    Some(median(times))
}
