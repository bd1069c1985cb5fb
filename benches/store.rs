//! `cargo bench --bench store`: what a PostgreSQL store costs next to SQLite, measured in one
//! run, on the real binary.
//!
//! 1. A cold `securemail reply --to ADDR --code KEY` (process start to exit, verifying one right
//!    key) on each backend: the median of `--cold` runs, and each PostgreSQL figure as a ratio
//!    of SQLite's.
//! 2. Verifications per second with 1, 4 and 16 `reply` processes running at once, each
//!    verifying another recipient's key (`--n` verifications per level and backend).
//!
//! The backends: SQLite (WAL, `synchronous = NORMAL`, the default store), PostgreSQL over
//! loopback as the store connects to a local server (plaintext on 127.0.0.1), and PostgreSQL
//! over loopback with verified TLS (`sslmode=require`), which is how every remote database is
//! reached. PostgreSQL is a private cluster the bench starts (the test suite's, see
//! `tests/integration/support/postgres.rs`) with PostgreSQL's own durability defaults (fsync
//! and synchronous commits on), unlike the tests' throwaway settings; it is stopped when the
//! bench ends. The codes are issued beforehand with one `send --key --to-list` per backend
//! into the outbox, and read back from the mails.
//!
//! Options (after `--`): `--cold K` (default 30), `--n N` (default 300), `--rounds R`
//! (default 1: throughputs are the median of R rounds).

#[path = "../tests/integration/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{arg, median, ms};
use support::postgres;
use support::{Env, decode_mail};

/// Concurrent `reply` processes measured.
const LEVELS: [usize; 3] = [1, 4, 16];

/// One store to measure: a scratch directory whose config points at it.
struct Backend {
    name: &'static str,
    env: Env,
}

/// A recipient and the key they were sent.
type Code = (String, String);

impl Backend {
    /// Issues `n` keys to distinct recipients (one batch into the outbox) and reads them back.
    fn issue(&self, n: usize) -> Vec<Code> {
        let list: String = (0..n).map(|i| format!("r{i}@bench.example\n")).collect();
        std::fs::write(self.env.path("list.csv"), list).unwrap();
        let r = self.env.run(&["send", "--key", "--to-list", "list.csv"]);
        r.expect(0);
        let codes: Vec<Code> = self
            .env
            .outbox()
            .iter()
            .map(|p| {
                let mail = decode_mail(&std::fs::read(p).unwrap());
                std::fs::remove_file(p).unwrap();
                (mail.to, mail.qr)
            })
            .collect();
        assert_eq!(codes.len(), n, "{}: every key read back", self.name);
        codes
    }

    /// One `reply` verifying `code`, from process start to exit; it must be accepted.
    fn verify(&self, (to, key): &Code) -> Duration {
        let start = Instant::now();
        let out = self
            .env
            .command(&["reply", "--to", to, "--code", key])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{}: reply for {to} exited {:?}: {}",
            self.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// Verifications per second with `parallel` processes at a time, over `codes`.
    fn throughput(&self, codes: Vec<Code>, parallel: usize) -> f64 {
        let n = codes.len();
        let queue = Mutex::new(codes);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..parallel {
                s.spawn(|| {
                    while let Some(code) = queue.lock().unwrap().pop() {
                        self.verify(&code);
                    }
                });
            }
        });
        n as f64 / start.elapsed().as_secs_f64()
    }
}

/// What one backend measured.
struct Figures {
    cold: Duration,
    rates: Vec<f64>,
}

fn measure(b: &Backend, cold: usize, n: usize, rounds: usize) -> Figures {
    let mut codes = b.issue(cold + LEVELS.len() * n * rounds);
    // A first process warms the page cache (binary, shared libraries, trust store) for both.
    let cold_runs: Vec<Duration> = codes.drain(..cold).map(|c| b.verify(&c)).collect();
    let rates = LEVELS
        .iter()
        .map(|&p| {
            median(
                (0..rounds)
                    .map(|_| b.throughput(codes.drain(..n).collect(), p))
                    .collect(),
            )
        })
        .collect();
    eprintln!("  {}: measured", b.name);
    Figures {
        cold: median(cold_runs),
        rates,
    }
}

/// The config of every backend: no limit gets in the way of a batch of keys.
const EXTRA: &str = "[limits]\nresend_cooldown = \"0s\"\n";

fn main() {
    let cold = arg("--cold", 30);
    let n = arg("--n", 300);
    let rounds = arg("--rounds", 1).max(1);
    let cluster = match postgres::start_with("") {
        Ok(c) => c,
        Err(why) => {
            eprintln!(
                "store bench: needs PostgreSQL ({why}); install it with `apt-get install \
                 postgresql` (the bench uses /usr/lib/postgresql/*/bin)"
            );
            std::process::exit(1);
        }
    };
    eprintln!(
        "store bench: {cold} cold replies, then {n} verifications at each of {LEVELS:?} \
         processes ({rounds} round(s)), per backend"
    );

    let sqlite = Backend {
        name: "SQLite",
        env: Env::new(EXTRA),
    };
    let mut results = vec![measure(&sqlite, cold, n, rounds)];
    let mut plain = None;
    postgres::run("bench_plain", || {
        let b = Backend {
            name: "PostgreSQL",
            env: Env::new(EXTRA),
        };
        plain = Some(measure(&b, cold, n, rounds));
    });
    let mut tls = None;
    postgres::run("bench_tls", || {
        let db = postgres::current().unwrap();
        let mut env = Env::new(EXTRA);
        std::fs::write(env.path("config/db-ca.pem"), &cluster.ca_pem).unwrap();
        env.store = db.tls_store_toml("db-ca.pem");
        env.write_config(EXTRA);
        let b = Backend {
            name: "PostgreSQL + TLS",
            env,
        };
        tls = Some(measure(&b, cold, n, rounds));
    });
    results.extend(plain);
    results.extend(tls);
    let [sqlite, plain, tls] = &results[..] else {
        panic!("every backend measured");
    };

    let ratio = |x: f64, base: f64| format!("{:.2}×", x / base);
    println!();
    println!("| figure | SQLite | PostgreSQL, loopback | PostgreSQL, loopback + TLS |");
    println!("|---|---|---|---|");
    println!(
        "| cold `reply` (median of {cold}) | {:.1} ms | {:.1} ms ({}) | {:.1} ms ({}) |",
        ms(sqlite.cold),
        ms(plain.cold),
        ratio(ms(plain.cold), ms(sqlite.cold)),
        ms(tls.cold),
        ratio(ms(tls.cold), ms(sqlite.cold)),
    );
    for (i, p) in LEVELS.iter().enumerate() {
        let (s, pg, t) = (sqlite.rates[i], plain.rates[i], tls.rates[i]);
        println!(
            "| verifications/s, {p} process{} | {s:.0} | {pg:.0} ({}) | {t:.0} ({}) |",
            if *p == 1 { "" } else { "es" },
            ratio(pg, s),
            ratio(t, s),
        );
    }
}
