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
//! Throughput figures are medians of `--rounds` runs (default 3), batch and floor interleaved so
//! that both see the same machine.
//!
//! Options (after `--`): `--n N` (default 1000), `--cold K` cold runs (default 30),
//! `--rounds R` (default 3), `--serve S`: only start the TLS sink, print the directory of a
//! config that sends to it, and keep it up for S seconds (for hyperfine, strace, swaks).

#[path = "../tests/integration/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use securemail::CodeKind;
use securemail::config;
use securemail::mail::{self, Kit, Recipient};
use securemail::transport::SmtpTarget;

use support::hostile::{Hostile, Script};
use support::{Ca, Env};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; ignore everything else we do not know.
    let n = arg("--n", 1000);
    let cold_runs = arg("--cold", 30);
    let rounds = arg("--rounds", 3).max(1);
    let ca = Ca::new("bench CA");
    // The sink: the test suite's scripted SMTP server (line-based, TLS from the first byte),
    // much lighter than the mailin-based one, so that on a small machine the figures are
    // securemail's and not the sink's.
    let sink = Hostile::start(Script {
        implicit_tls: true,
        ..Script::new(ca.leaf(&["localhost"]))
    });

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
        build.as_secs_f64() * 1e3,
        bytes / build_n as usize
    );

    // Transport floor: pre-built identical messages, one connection, same client and sink.
    // In-process, the password comes from a command rather than this process's environment.
    let floor_cfg = std::fs::read_to_string(env.path("config/account.toml"))
        .unwrap()
        .replace(
            "password_env = \"SECUREMAIL_TEST_PASSWORD\"",
            &format!(
                "password_command = \"printf '%s' '{}'\"",
                support::SMTP_PASS
            ),
        );
    std::fs::write(env.path("config/floor.toml"), floor_cfg).unwrap();
    let floor_settings = config::load(&env.path("config/floor.toml")).expect("floor config");
    let securemail::config::Delivery::Smtp(smtp) = &floor_settings.delivery else {
        panic!("no [smtp] in the bench config")
    };
    let target = SmtpTarget::prepare(smtp).expect("target");
    let prebuilt = compose();
    let floor = |connections: usize| -> f64 {
        let per = n / connections;
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..connections {
                s.spawn(|| {
                    let mut session = target.open(None).expect("session");
                    for _ in 0..per {
                        session
                            .send(
                                &prebuilt.mail.from,
                                &prebuilt.mail.to,
                                prebuilt.mail.bytes.expose(),
                            )
                            .expect("send");
                    }
                    session.quit();
                });
            }
        });
        (per * connections) as f64 / t.elapsed().as_secs_f64()
    };
    // 2./3. The real command on N distinct recipients (a fresh store each time).
    let batch = |connections: usize| -> f64 {
        let env = Env::new("");
        env.set_smtp_port(sink.port(), "tls", &ca);
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
    };
    let interleaved = |connections: usize| -> (f64, f64) {
        let (mut b, mut f) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            f.push(floor(connections));
            b.push(batch(connections));
        }
        (median_f(b), median_f(f))
    };
    let (batch1, floor1) = interleaved(1);
    println!(
        "2. {n} enrolment mails, 1 TLS connection: {batch1:.0} mails/s; floor (pre-built identical) {floor1:.0} mails/s; ratio {:.2}",
        batch1 / floor1
    );
    let (batch4, floor4) = interleaved(4);
    println!(
        "3. {n} enrolment mails, connections = 4: {batch4:.0} mails/s ({:.2}x the 1-connection floor); floor with 4: {floor4:.0} mails/s",
        batch4 / floor1
    );

    // 4. Cold single sends.
    let env = Env::new("");
    env.set_smtp_port(sink.port(), "tls", &ca);
    let mut ours = Vec::new();
    for i in 0..cold_runs {
        let t = Instant::now();
        let st = env
            .command(&["send", "--otp", "--to", &format!("cold{i}@example.org")])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        ours.push(t.elapsed());
        assert!(st.success());
    }
    let ours = median(ours);
    let swaks = Command::new("swaks").arg("--version").output().is_ok();
    let swaks_line = if swaks {
        let body = String::from_utf8_lossy(prebuilt.mail.bytes.expose()).into_owned();
        let body_file = env.path("swaks.eml");
        std::fs::write(&body_file, body).unwrap();
        let mut times = Vec::new();
        for _ in 0..cold_runs.min(15) {
            let t = Instant::now();
            let st = Command::new("swaks")
                .args([
                    "--server",
                    "localhost",
                    "--port",
                    &sink.port().to_string(),
                    "--tls-on-connect",
                ])
                .args([
                    "--auth",
                    "PLAIN",
                    "--auth-user",
                    support::SMTP_USER,
                    "--auth-password",
                    support::SMTP_PASS,
                ])
                .args([
                    "--from",
                    "admin@example.org",
                    "--to",
                    "alice@example.org",
                    "--data",
                ])
                .arg(&body_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            times.push(t.elapsed());
            assert!(st.success(), "swaks failed");
        }
        let s = median(times);
        format!(
            "swaks --tls-on-connect {:.1} ms ({:.1}x ours)",
            s.as_secs_f64() * 1e3,
            s.as_secs_f64() / ours.as_secs_f64()
        )
    } else {
        "swaks not installed (apt install swaks)".into()
    };
    println!(
        "4. cold `securemail send --otp` to the local TLS sink: {:.1} ms median of {cold_runs}; {swaks_line}",
        ours.as_secs_f64() * 1e3
    );
    let _ = Arc::new(());
}
