//! The audit log: every security event of real runs (a batch with a skip, a held-back send and
//! an invalid line; typed and mailed codes right, wrong, replayed, mistyped, locked, throttled;
//! an auto-reply set aside; a revoke) as one JSON line each, in order, with no secret in the
//! file; 0600, never through a link, whole lines under concurrent writers.

use std::collections::HashMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Child;

use serde_json::Value;

use crate::support::{self, Env, decode_mail};

const AUDIT: &str = "securemail-audit.log";

/// Every line of the audit log, parsed (a line that is not one JSON object fails the test).
fn events(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.path(AUDIT))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// `command event outcome reason recipient`, null fields as `-`.
fn summary(v: &Value) -> String {
    ["command", "event", "outcome", "reason", "recipient"]
        .iter()
        .map(|k| v[k].as_str().unwrap_or("-"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mails in the outbox by recipient (the last one each), decoded.
fn mails(env: &Env) -> HashMap<String, support::Decoded> {
    env.outbox()
        .iter()
        .map(|p| {
            let d = decode_mail(&std::fs::read(p).unwrap());
            (d.to.clone(), d)
        })
        .collect()
}

fn reply(env: &Env, to: &str, code: &str) -> support::Run {
    env.run(&["reply", "--to", to, "--code", code])
}

/// A six-digit code that no step near now accepts.
fn wrong_totp(secret: &[u8]) -> String {
    let now = support::now();
    (0..1_000_000)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| (0..6).all(|d| *c != support::totp(secret, now + d * 30 - 60)))
        .unwrap()
}

/// A well-formed key that is not `key`.
fn wrong_key(key: &str) -> String {
    let data = if key.starts_with("AAAA") {
        "BBBB-BBBB-BBBB"
    } else {
        "AAAA-AAAA-AAAA"
    };
    support::well_formed_key(data)
}

/// The same key with another check symbol: a typo.
fn mistyped(key: &str) -> String {
    let (data, check) = key.split_at(key.len() - 1);
    format!("{data}{}", if check == "0" { "1" } else { "0" })
}

fn mail(from: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: Example Admin <admin@example.org>\r\nSubject: Re: Your one-time key\r\n\
         Message-ID: <{id}>\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[test]
fn every_security_event_is_one_line_in_order_without_a_secret() {
    let env = Env::new("[verify]\nmax_attempts = 2\n");

    // Carol's code is revoked, so a new one is only held back by the cooldown.
    env.run(&["send", "--key", "--to", "carol@example.org"])
        .expect(0);
    env.run(&["revoke", "--to", "Carol@Example.org"]).expect(0);
    env.run(&["send", "--key", "--to", "bob@example.org"])
        .expect(0);
    std::fs::write(
        env.path("list.csv"),
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\nnot an address,X\ncarol@example.org,Carol\n",
    )
    .unwrap();
    env.run(&["send", "--key", "--skip-invalid", "--to-list", "list.csv"])
        .expect(75);
    let keys = mails(&env);
    let (ann, bob) = (&keys["ann@example.org"], &keys["bob@example.org"]);

    // Typed codes: right, used again, a typo, wrong twice (the second locks), right when locked.
    reply(&env, "ann@example.org", &ann.qr).expect(0);
    reply(&env, "ann@example.org", &ann.qr).expect(1);
    reply(&env, "bob@example.org", &mistyped(&bob.qr)).expect(65);
    reply(&env, "bob@example.org", &wrong_key(&bob.qr)).expect(1);
    reply(&env, "bob@example.org", &wrong_key(&bob.qr)).expect(1);
    reply(&env, "bob@example.org", &bob.qr).expect(1);

    // A TOTP enrolment: confirmed, replayed, wrong (throttled), tried again too soon.
    env.run(&["send", "--otp", "--to", "dave@example.org"])
        .expect(0);
    let dave = mails(&env).remove("dave@example.org").unwrap();
    let secret = support::otpauth_secret(&dave.qr);
    let code = support::totp(&secret, support::now());
    reply(&env, "dave@example.org", &code).expect(0);
    reply(&env, "dave@example.org", &code).expect(1);
    let wrong = wrong_totp(&secret);
    for _ in 0..3 {
        support::let_throttle_pass(&env);
        reply(&env, "dave@example.org", &wrong).expect(1);
    }
    // The replay and three wrong codes in a row made the wait 8 s.
    reply(&env, "dave@example.org", &wrong).expect(75);

    // Replies by mail: an auto-reply repeating the key, then Erin's own reply.
    env.write_config("[verify]\nmax_attempts = 2\n[limits]\nresend_cooldown = \"0s\"\n");
    env.run(&["send", "--key", "--to", "erin@example.org"])
        .expect(0);
    let erin = mails(&env).remove("erin@example.org").unwrap();
    let auto = mail(
        "erin@example.org",
        "auto-1@example.net",
        "Auto-Submitted: auto-replied\r\n",
        &format!("I am away. Your message said: {}", erin.qr),
    );
    std::fs::write(env.path("auto.eml"), auto).unwrap();
    env.run(&["reply", "--message", "auto.eml"]).expect(65);
    let own = mail("Erin <erin@example.org>", "own-1@example.net", "", &erin.qr);
    std::fs::write(env.path("own.eml"), own).unwrap();
    env.run(&["reply", "--message", "own.eml"]).expect(0);
    // A resend replaces Ann's used key.
    env.run(&["send", "--key", "--resend", "--to", "ann@example.org"])
        .expect(0);

    let mut all = events(&env);
    // A batch reports each recipient when it is done with them, not in list order.
    let order = ["delivered", "skipped", "invalid", "failed"];
    all[3..7].sort_by_key(|v| order.iter().position(|o| v["outcome"] == *o));
    let got: Vec<String> = all.iter().map(summary).collect();
    let want = [
        "send send delivered - carol@example.org",
        "revoke revoke revoked - carol@example.org",
        "send send delivered - bob@example.org",
        "send send delivered - ann@example.org",
        "send send skipped live bob@example.org",
        "send send invalid - -",
        "send send failed throttled carol@example.org",
        "reply check accepted - ann@example.org",
        "reply check refused used ann@example.org",
        "reply check refused mistyped bob@example.org",
        "reply check refused wrong bob@example.org",
        "reply check refused wrong bob@example.org",
        "reply lock locked too-many-wrong-codes bob@example.org",
        "reply check refused locked bob@example.org",
        "send send delivered - dave@example.org",
        "reply check accepted - dave@example.org",
        "reply check refused replayed dave@example.org",
        "reply check refused wrong dave@example.org",
        "reply check refused wrong dave@example.org",
        "reply check refused wrong dave@example.org",
        "reply check deferred throttled dave@example.org",
        "send send delivered - erin@example.org",
        "reply set-aside set-aside automatic -",
        "reply check accepted - erin@example.org",
        "send send delivered - ann@example.org",
    ];
    assert_eq!(got, want, "{all:#?}");

    // Every line: a UTC time, the process, the command.
    for v in &all {
        let t = v["time"].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.len() == "2026-01-01T00:00:00.000Z".len(),
            "{t}"
        );
        assert!(v["pid"].as_u64().unwrap() > 0);
    }
    // Record ids tie the events together.
    let record = |i: usize| all[i]["record"].as_i64().unwrap();
    assert_eq!(
        all[1]["record"], all[0]["record"],
        "the revoke names Carol's record"
    );
    assert_eq!(all[1]["was"], "pending");
    assert_eq!(all[4]["existing"]["record"].as_i64(), Some(record(2)));
    assert_eq!(all[4]["existing"]["state"], "pending");
    assert_eq!(all[5]["line"], 4);
    assert!(all[6]["retry_at"].as_str().unwrap().ends_with('Z'));
    assert!(all[6].get("record").is_none(), "nothing was recorded");
    assert_eq!(all[3]["message_id"], format!("<{}>", ann.message_id));
    // Ann's checks are about her record, Bob's (refusals and the lock) about his.
    for (i, owner) in [(7, 3), (8, 3), (9, 2), (10, 2), (11, 2), (12, 2), (13, 2)] {
        assert_eq!(record(i), record(owner), "{}", got[i]);
    }
    let counted: Vec<bool> = (8..=12)
        .filter_map(|i| all[i]["counted"].as_bool())
        .collect();
    assert_eq!(counted, [false, false, true, true]);
    assert_eq!(all[12]["attempts"], 2);
    assert_eq!(all[16]["counted"], true, "a replay counts");
    assert!(all[20]["retry_at"].as_str().is_some());
    assert_eq!(all[20]["counted"], false);
    assert_eq!(all[20]["kind"], "otp");
    // Replies that came by mail: their Message-ID and From.
    assert_eq!(all[22]["reply_message_id"], "<auto-1@example.net>");
    assert_eq!(all[22]["reply_from"], "erin@example.org");
    assert_eq!(all[23]["reply_message_id"], "<own-1@example.net>");
    assert_eq!(all[23]["reply_from"], "erin@example.org");
    assert_eq!(all[23]["record"], all[21]["record"]);
    assert!(
        all[7].get("reply_message_id").is_none(),
        "typed, not mailed"
    );
    // The resend names what it replaced.
    assert_eq!(all[24]["replaced"]["record"].as_i64(), Some(record(3)));
    assert_eq!(all[24]["replaced"]["state"], "verified");

    // No secret: not the keys, not the TOTP secret or its URI, not a code that was typed.
    let text = std::fs::read_to_string(env.path(AUDIT)).unwrap();
    let mut secrets: Vec<String> = mails(&env).values().map(|m| m.qr.clone()).collect();
    secrets.extend(keys.values().map(|m| m.qr.clone()));
    let undashed: Vec<String> = secrets.iter().map(|k| k.replace('-', "")).collect();
    secrets.extend(undashed);
    secrets.push(support::secret_param(&dave.qr));
    secrets.push(dave.qr.clone());
    secrets.push(erin.qr.clone());
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s} is in the audit log");
    }
    // Six-digit codes could only hide among numbers: look outside the process ids.
    let without_pids: String = all
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("pid");
            v.to_string()
        })
        .collect();
    for c in [&code, &wrong] {
        assert!(
            !without_pids.contains(c.as_str()),
            "{c} is in the audit log"
        );
    }

    let mode = std::fs::metadata(env.path(AUDIT))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_link_at_the_audit_path_is_refused_before_anything_happens() {
    let env = Env::new("[audit]\nfile = \"../logs/deep/audit.log\"\n");
    std::fs::create_dir_all(env.path("logs/deep")).unwrap();
    std::fs::write(env.path("precious"), "keep").unwrap();
    symlink(env.path("precious"), env.path("logs/deep/audit.log")).unwrap();
    for args in [
        &["send", "--key", "--to", "a@example.org"][..],
        &["reply", "--to", "a@example.org", "--code", "123456"],
        &["revoke", "--to", "a@example.org"],
    ] {
        let r = env.run(args);
        r.expect(74);
        assert!(
            r.stderr().contains("audit log") && r.stderr().contains("symbolic link"),
            "{}",
            r.stderr()
        );
    }
    assert_eq!(
        std::fs::read_to_string(env.path("precious")).unwrap(),
        "keep"
    );
    assert!(env.outbox().is_empty(), "nothing was sent");
    assert!(!env.path("securemail.db").exists(), "nothing was recorded");

    // In place of the link, the log is created 0600 in a 0700 directory made for it.
    std::fs::remove_dir_all(env.path("logs")).unwrap();
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    let mode = |p: &str| std::fs::metadata(env.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("logs/deep/audit.log"), 0o600);
    assert_eq!(mode("logs/deep"), 0o700);
    assert!(!env.path(AUDIT).exists());
}

#[test]
fn the_log_can_be_turned_off_and_a_dry_run_writes_none() {
    let env = Env::new("");
    env.run(&["send", "--key", "--dry-run", "--to", "a@example.org"])
        .expect(0);
    assert!(!env.path(AUDIT).exists());
    env.write_config("[audit]\nenabled = false\n");
    env.run(&["send", "--key", "--to", "a@example.org"])
        .expect(0);
    env.run(&["reply", "--to", "a@example.org", "--code", "123456"])
        .expect(65);
    assert!(!env.path(AUDIT).exists());
}

#[test]
fn concurrent_runs_write_only_whole_lines() {
    let env = Env::new("");
    // Long header values make long lines (the log cuts each value to a few hundred characters).
    let long = "x".repeat(400);
    let (runs, per_run) = (4, 30);
    for run in 0..runs {
        let new = env.path(&format!("md{run}/new"));
        std::fs::create_dir_all(&new).unwrap();
        for n in 0..per_run {
            let raw = mail(
                &format!("{long}{run}@example.org"),
                &format!("{long}-{run}-{n}@example.net"),
                "Auto-Submitted: auto-replied\r\n",
                "away",
            );
            std::fs::write(new.join(format!("{n:03}")), raw).unwrap();
        }
    }
    // Besides, typed codes for people who were never sent one.
    let children: Vec<Child> = (0..runs)
        .map(|run| {
            env.command(&["reply", "--maildir", &format!("md{run}")])
                .spawn()
                .unwrap()
        })
        .chain((0..runs).map(|run| {
            env.command(&[
                "reply",
                "--to",
                &format!("p{run}@example.org"),
                "--code",
                "123456",
            ])
            .spawn()
            .unwrap()
        }))
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    let all = events(&env);
    assert_eq!(all.len(), runs * per_run + runs);
    let set_aside = all.iter().filter(|v| v["event"] == "set-aside").count();
    assert_eq!(set_aside, runs * per_run);
    for v in all.iter().filter(|v| v["event"] == "set-aside") {
        let id = v["reply_message_id"].as_str().unwrap();
        assert!(id.starts_with("<xxx") && id.ends_with('…'), "{id}");
        assert!(v["file"].as_str().is_some());
    }
}
