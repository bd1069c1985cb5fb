//! One list, several hosts (PostgreSQL): send runs started at once with the same list split it
//! so that each recipient gets exactly one mail; a run killed with SIGKILL is taken over by the
//! others once its lease runs out, without resending what it had delivered; a rerun anywhere
//! sends only what is left; and the records of a run that is still at work on another host are
//! never taken for interrupted ones.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::postgres::{self, Database};
use crate::support::{self, Ca, Env, Mode, Options, Server};

/// Recipients of the shared list.
const N: usize = 3000;

fn list() -> String {
    let mut s = String::from("email,name\n");
    for i in 0..N {
        writeln!(s, "user{i:05}@example.org,User {i}").unwrap();
    }
    s
}

/// A sink for thousands of mails: envelopes only.
fn sink(ca: &Ca) -> Server {
    Server::start(Options {
        keep_data: false,
        ..Options::new(Mode::Tls, ca.leaf(&["localhost"]))
    })
}

/// A host sending to `srv` over 2 connections, with `[store] lease` and the list as `team.csv`.
fn host(db: &Database, key: &Path, srv: &Server, ca: &Ca, lease: &str) -> Env {
    let env = db.host(key, Some(lease), "");
    env.set_smtp(srv, "tls", ca);
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(env.path("config/account.toml"), cfg + "connections = 2\n").unwrap();
    std::fs::write(env.path("team.csv"), list()).unwrap();
    env
}

fn spawn(env: &Env) -> Child {
    env.command(&["--json", "send", "--key", "--to-list", "team.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How long the send runs of a test may take before they are killed (a hang fails the test
/// instead of holding up the suite).
const LIMIT: Duration = Duration::from_secs(120);

fn outputs(children: Vec<Child>) -> Vec<Output> {
    support::wait_all(children, LIMIT)
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(lines: &[serde_json::Value]) -> &serde_json::Value {
    lines.iter().find(|v| v["type"] == "summary").unwrap()
}

/// Recipients whose line says `outcome`.
fn with_outcome(lines: &[serde_json::Value], outcome: &str) -> HashSet<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "recipient" && v["outcome"] == outcome)
        .map(|v| v["recipient"].as_str().unwrap().to_string())
        .collect()
}

/// Mails the server accepted, per recipient.
fn received(srv: &Server) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for m in &srv.log().mails {
        assert_eq!(m.to.len(), 1);
        *n.entry(m.to[0].clone()).or_default() += 1;
    }
    n
}

/// Each recipient's codes in the store: how many, and how many are current (pending).
fn codes(db: &Database) -> HashMap<String, (i64, i64)> {
    db.admin()
        .query(
            "SELECT recipient, count(*), count(*) FILTER (WHERE state = 'pending')
             FROM codes GROUP BY recipient",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn ok(out: &Output) {
    let failed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("\"outcome\":\"sent\""))
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "exit {:?}\n--- stderr\n{}--- stdout but sent\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        failed.join("\n")
    );
}

#[test]
fn three_hosts_send_one_list_and_each_recipient_gets_exactly_one_mail() {
    postgres::run("three_hosts", || {
        let db = postgres::current().unwrap();
        let ca = Ca::new("securemail test CA");
        let srv = sink(&ca);
        let keys = tempfile::tempdir().unwrap();
        let key = postgres::shared_key(keys.path());
        let hosts: Vec<Env> = (0..3).map(|_| host(&db, &key, &srv, &ca, "30s")).collect();
        let outputs = outputs(hosts.iter().map(spawn).collect());

        let mut by_host = Vec::new();
        let mut seen = HashSet::new();
        for out in &outputs {
            ok(out);
            let lines = json_lines(out);
            let s = summary(&lines);
            let sent = s["sent"].as_u64().unwrap() as usize;
            // Every run ends when the list is done: it knows what the others sent.
            assert_eq!(
                sent + s["sent_by_others"].as_u64().unwrap() as usize,
                N,
                "{s}"
            );
            assert_eq!(s["failed_permanent"], 0);
            let mine = with_outcome(&lines, "sent");
            assert_eq!(mine.len(), sent);
            for r in mine {
                assert!(seen.insert(r.clone()), "{r} was sent by two hosts");
            }
            by_host.push(sent);
        }
        assert_eq!(seen.len(), N, "sent per host: {by_host:?}");

        let got = received(&srv);
        assert_eq!(got.len(), N);
        assert!(
            got.values().all(|&n| n == 1),
            "every recipient exactly once"
        );
        let stored = codes(&db);
        assert_eq!(stored.len(), N);
        assert!(
            stored.values().all(|&c| c == (1, 1)),
            "exactly one code each, current"
        );

        // A rerun anywhere, once the list is done, sends nothing new and says so.
        let r = hosts[1].run(&["send", "--key", "--to-list", "team.csv"]);
        r.expect(0);
        assert!(
            r.stdout().starts_with(&format!(
                "sent 0 (others sent {N}), skipped 0, invalid 0, failed 0 "
            )),
            "{}",
            r.stdout()
        );
        assert!(
            r.stderr().starts_with(
                "securemail: nothing left to send: every recipient of team.csv was handled by earlier runs (finished "
            ),
            "{}",
            r.stderr()
        );
        assert!(
            r.stderr()
                .contains(&format!(", {N} of {N} sent; the same list starts over")),
            "{}",
            r.stderr()
        );
        assert_eq!(srv.log().mails.len(), N);
    });
}

#[test]
fn a_host_killed_mid_run_is_taken_over_once_its_lease_runs_out() {
    postgres::run("killed_host", || {
        let db = postgres::current().unwrap();
        let ca = Ca::new("securemail test CA");
        let srv = sink(&ca);
        let keys = tempfile::tempdir().unwrap();
        let key = postgres::shared_key(keys.path());
        let hosts: Vec<Env> = (0..3).map(|_| host(&db, &key, &srv, &ca, "2s")).collect();
        let mut children: Vec<Child> = hosts.iter().map(spawn).collect();
        let victim = children.remove(0);
        let victim_pid = victim.id();
        // Output is read meanwhile, or a child would stop when its pipe is full.
        let survivors = std::thread::spawn(move || outputs(children));
        let victim = std::thread::spawn(move || outputs(vec![victim]));

        // Once the victim has delivered a hundred mails, SIGKILL it.
        let mut admin = db.admin();
        let delivered_by_victim = |admin: &mut ::postgres::Client| -> HashSet<String> {
            // Nothing before the first run made the tables.
            admin
                .query(
                    "SELECT c.recipient FROM codes c JOIN send_runs r ON r.id = c.run
                     WHERE r.pid = $1 AND c.state = 'pending'",
                    &[&i64::from(victim_pid)],
                )
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .unwrap_or_default()
        };
        let start = Instant::now();
        while delivered_by_victim(&mut admin).len() < 100 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the victim never got going"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::process::Command::new("kill")
            .args(["-KILL", &victim_pid.to_string()])
            .status()
            .unwrap();
        let killed = victim.join().unwrap();
        assert_eq!(killed[0].status.code(), None, "killed by a signal");

        // What it left: mails it delivered, and recipients it held but had not sent to.
        let delivered = delivered_by_victim(&mut admin);
        let held: HashSet<String> = admin
            .query(
                "SELECT i.recipient FROM batch_items i JOIN send_runs r ON r.id = i.claimed_by
                 WHERE r.pid = $1 AND i.state = 'claimed'",
                &[&i64::from(victim_pid)],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!held.is_empty(), "the victim held claims when it died");

        let mut resent = HashSet::new();
        let mut sent = 0;
        for out in survivors.join().unwrap() {
            ok(&out);
            let lines = json_lines(&out);
            resent.extend(with_outcome(&lines, "resent"));
            let s = summary(&lines);
            sent += s["sent"].as_u64().unwrap() as usize;
            // The victim's deliveries count among the others'.
            assert_eq!(
                s["sent"].as_u64().unwrap() as usize
                    + s["sent_by_others"].as_u64().unwrap() as usize,
                N,
                "{s}"
            );
        }
        assert_eq!(sent + delivered.len(), N);

        // Everyone got their mail. Only a mail the victim had in flight when it died (at most
        // one per connection) may have arrived twice; the survivors said so.
        let got = received(&srv);
        assert_eq!(got.len(), N);
        for (who, &n) in &got {
            match n {
                1 => {}
                2 => assert!(resent.contains(who), "{who} got two mails unannounced"),
                _ => panic!("{who} got {n} mails"),
            }
        }
        assert!(resent.len() <= 2, "{resent:?}");
        assert!(resent.is_subset(&held));
        for who in &delivered {
            assert_eq!(got[who], 1, "{who}: delivered by the victim, sent again");
        }
        // Its claims were finished by the others.
        let taken: Vec<(String, i64)> = admin
            .query(
                "SELECT i.recipient, r.pid FROM batch_items i JOIN send_runs r ON r.id = i.sent_by
                 WHERE i.recipient = ANY($1)",
                &[&held.iter().cloned().collect::<Vec<_>>()],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(taken.len(), held.len());
        assert!(taken.iter().all(|(_, pid)| *pid != i64::from(victim_pid)));

        // One current code each; the victim's mails in flight can no longer verify.
        let stored = codes(&db);
        assert_eq!(stored.len(), N);
        for (who, &(all, current)) in &stored {
            assert_eq!(current, 1, "{who}");
            assert_eq!(all, if resent.contains(who) { 2 } else { 1 }, "{who}");
        }
        let sending: i64 = admin
            .query_one("SELECT count(*) FROM codes WHERE state = 'sending'", &[])
            .unwrap()
            .get(0);
        assert_eq!(sending, 0);
    });
}

#[test]
fn a_host_that_stalls_past_its_lease_loses_its_share_and_never_sends_it() {
    postgres::run("stalled_host", || {
        let db = postgres::current().unwrap();
        let ca = Ca::new("securemail test CA");
        let srv = sink(&ca);
        let keys = tempfile::tempdir().unwrap();
        let key = postgres::shared_key(keys.path());
        let hosts: Vec<Env> = (0..2).map(|_| host(&db, &key, &srv, &ca, "1s")).collect();
        let children: Vec<Child> = hosts.iter().map(spawn).collect();
        let stalled = children[0].id().to_string();
        let all = std::thread::spawn(move || outputs(children));

        // Once it has sent some, stop the first run (SIGSTOP) for three leases, then let it go on.
        let start = Instant::now();
        while srv.log().mails.len() < 200 {
            assert!(start.elapsed() < LIMIT, "the runs never got going");
            std::thread::sleep(Duration::from_millis(10));
        }
        let signal = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &stalled])
                .status()
                .unwrap()
        };
        signal("-STOP");
        std::thread::sleep(Duration::from_secs(3));
        signal("-CONT");

        let outputs = all.join().unwrap();
        let mut resent = HashSet::new();
        for (i, out) in outputs.iter().enumerate() {
            ok(out);
            let lines = json_lines(out);
            resent.extend(with_outcome(&lines, "resent"));
            let s = summary(&lines);
            let sent =
                (s["sent"].as_u64().unwrap() + s["sent_by_others"].as_u64().unwrap()) as usize;
            // The stalled run also counts a mail it had on the wire, which the other sent again.
            if i == 0 {
                assert!(sent >= N, "{s}");
            } else {
                assert_eq!(sent, N, "{s}");
            }
        }
        // The stalled run found its claims taken over: it said so and sent none of them.
        let stderr = String::from_utf8_lossy(&outputs[0].stderr);
        assert!(
            stderr.contains(
                "was taken over by another run: this run was silent for longer than [store] lease"
            ),
            "{stderr}"
        );
        let got = received(&srv);
        assert_eq!(got.len(), N);
        for (who, &n) in &got {
            // A mail that was on the wire when the run stopped arrives; the other run, which
            // took the recipient over, sent it again and said so.
            assert!(
                n == 1 || (n == 2 && resent.contains(who)),
                "{who}: {n} mails"
            );
        }
        let stored = codes(&db);
        assert_eq!(stored.len(), N);
        assert!(stored.values().all(|&(_, current)| current == 1));
    });
}

#[test]
fn only_the_records_of_runs_that_are_gone_count_as_interrupted() {
    postgres::run("live_runs", || {
        let db = postgres::current().unwrap();
        let env = Env::new("");
        env.run(&["send", "--key", "--to", "ann@example.org"])
            .expect(0);
        let mut admin = db.admin();
        // Two runs of other hosts with a mail in flight each: one beating, one silent for an
        // hour (killed).
        let mut in_flight = |who: &str, silent: &str| -> i64 {
            let run: i64 = admin
                .query_one(
                    "INSERT INTO send_runs (host, pid, lease_ms, heartbeat)
                     VALUES ('elsewhere', 1, 30000, now() - $1::text::interval) RETURNING id",
                    &[&silent],
                )
                .unwrap()
                .get(0);
            admin
                .execute(
                    "INSERT INTO codes (recipient, kind, created, expires, state, sealed, updated, run)
                     SELECT $1, kind, created, expires, 'sending', sealed, updated, $2
                     FROM codes LIMIT 1",
                    &[&who, &run],
                )
                .unwrap();
            run
        };
        let live = in_flight("bob@example.org", "0s");
        in_flight("cat@example.org", "1h");
        let state = |admin: &mut ::postgres::Client, who: &str| -> String {
            admin
                .query_one("SELECT state FROM codes WHERE recipient = $1", &[&who])
                .unwrap()
                .get(0)
        };

        let r = env.run(&["send", "--key", "--to", "dan@example.org"]);
        r.expect(0);
        assert_eq!(
            r.stderr(),
            "securemail: a previous send stopped while mail to cat@example.org was in flight; \
             those in this run are sent again and may get two mails\n"
        );
        assert_eq!(state(&mut admin, "cat@example.org"), "failed");
        assert_eq!(
            state(&mut admin, "bob@example.org"),
            "sending",
            "its run is at work"
        );

        // Once that run stops beating for longer than its lease, its mail counts as interrupted.
        admin
            .execute(
                "UPDATE send_runs SET heartbeat = now() - interval '31 seconds' WHERE id = $1",
                &[&live],
            )
            .unwrap();
        let r = env.run(&["send", "--key", "--to", "eve@example.org"]);
        r.expect(0);
        assert!(
            r.stderr().contains("mail to bob@example.org was in flight"),
            "{}",
            r.stderr()
        );
        assert_eq!(state(&mut admin, "bob@example.org"), "failed");
    });
}

#[test]
fn a_lease_needs_a_url() {
    let mut env = Env::new("");
    env.store = "path = \"../securemail.db\"\nlease = \"30s\"\n".into();
    env.write_config("");
    let r = env.run(&["status"]);
    r.expect(78);
    assert_eq!(
        r.stderr(),
        "securemail: error: config/account.toml:9:9: [store] lease is set but [store] url is not\n\
             hint: it applies to a PostgreSQL store only: add url = \"postgres://user@host/db\", or remove it\n",
    );
}
