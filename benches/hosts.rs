//! `cargo bench --bench hosts`: the batch rate of one list sent by 1, 2 and 3 `securemail send
//! --otp --to-list` processes at once, sharing it through a PostgreSQL store (see
//! `src/batch/shared.rs`), against an in-process TLS SMTP sink.
//!
//! The bench starts a throwaway PostgreSQL cluster (the test suite's: Debian's server binaries
//! under `/usr/lib/postgresql/*/bin`, a temporary directory, a loopback port) and gives each run
//! a fresh database. The sink is the throughput bench's: the test suite's scripted SMTP server,
//! TLS from the first byte, in this process. For each number of processes, `--rounds` runs
//! (default 3): all processes start together on the same list of `--n` recipients (default
//! 3000); the rate is N over the time from the first start to the last exit, the median of
//! the rounds is printed, with each process's share and, for reference, one process on a
//! SQLite store (no sharing, a lock file instead).
//!
//! Every process here runs on the same machine, so this measures what sharing costs and how
//! the work spreads, not what more machines would add: on separate hosts each brings its own
//! cores.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/integration/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::fmt::Write as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::hostile::{Hostile, Script};
use support::postgres;
use support::{Ca, Env};

use common::{arg, median};

/// One round: what it took and what each process sent.
struct Round {
    rate: f64,
    shares: Vec<usize>,
}

fn main() {
    let n = arg("--n", 3000);
    let rounds = arg("--rounds", 3).max(1);
    let ca = Ca::new("bench CA");
    let sink = Hostile::start(Script {
        implicit_tls: true,
        ..Script::new(ca.leaf(&["localhost"]))
    });
    let mut list = String::new();
    for i in 0..n {
        writeln!(list, "user{i}@example.org,User {i}").unwrap();
    }
    let Some(cluster) = postgres::cluster() else {
        println!(
            "PostgreSQL is not installed: apt-get install postgresql (the bench uses /usr/lib/postgresql/*/bin)"
        );
        return;
    };
    println!(
        "{n} enrolment mails (send --otp --to-list), in-process TLS sink, PostgreSQL on 127.0.0.1:{}, median of {rounds}",
        cluster.port
    );

    let sqlite: Vec<Round> = (0..rounds)
        .map(|_| {
            let env = Env::new("");
            configure(&env, sink.port(), &ca, &list);
            race(vec![env], n)
        })
        .collect();
    let base = median(sqlite.iter().map(|r| r.rate).collect());
    println!("SQLite, 1 process (reference): {base:.0} mails/s");

    let mut one = 0.0;
    for k in 1..=3 {
        let results: Vec<Round> = (0..rounds)
            .map(|r| {
                let db = postgres::fresh_database(&format!("bench_{k}_{r}"))
                    .expect("a throwaway PostgreSQL cluster");
                let keys = tempfile::tempdir().unwrap();
                let key = postgres::shared_key(keys.path());
                let hosts: Vec<Env> = (0..k)
                    .map(|_| {
                        let env = db.host(&key, None, "");
                        configure(&env, sink.port(), &ca, &list);
                        env
                    })
                    .collect();
                race(hosts, n)
            })
            .collect();
        let rate = median(results.iter().map(|r| r.rate).collect());
        if k == 1 {
            one = rate;
        }
        let shares: Vec<String> = results
            .iter()
            .map(|r| {
                let s: Vec<String> = r.shares.iter().map(usize::to_string).collect();
                s.join("+")
            })
            .collect();
        println!(
            "PostgreSQL, {k} process{}: {rate:.0} mails/s ({:.2}x 1 process, {:.2}x SQLite); sent per process by round: {}",
            if k == 1 { "" } else { "es" },
            rate / one,
            rate / base,
            shares.join(", ")
        );
    }
}

/// SMTP to the sink (the default 4 connections) and the list as `team.csv`.
fn configure(env: &Env, port: u16, ca: &Ca, list: &str) {
    env.set_smtp_port(port, "tls", ca);
    std::fs::write(env.path("team.csv"), list).unwrap();
}

/// Starts one `send` per env at once and waits for all: N over the time, and each one's share.
fn race(envs: Vec<Env>, n: usize) -> Round {
    let t = Instant::now();
    let children: Vec<Child> = envs
        .iter()
        .map(|env| {
            env.command(&["--json", "send", "--otp", "--to-list", "team.csv"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = support::wait_all(children, Duration::from_secs(600));
    let secs = t.elapsed().as_secs_f64();
    let mut shares = Vec::new();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "summary")
            .expect("a summary line");
        shares.push(summary["sent"].as_u64().unwrap() as usize);
    }
    assert_eq!(shares.iter().sum::<usize>(), n, "every recipient once");
    Round {
        rate: n as f64 / secs,
        shares,
    }
}
