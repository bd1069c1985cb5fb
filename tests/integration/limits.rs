//! Limits that an attacker who can write to the reply inbox, or run `reply`, cannot turn against
//! the person: a verified TOTP is throttled, never locked by forged replies; a plain send never
//! re-enrols anyone; and the per-recipient budgets (cooldown, codes a day, wrong codes a day
//! across resends) hold in a loop of resends.

use serde_json::Value;

use crate::support::{self, Env, decode_mail};

/// Sends a TOTP enrolment to `to`, confirms it with the current code, and returns the secret
/// and the enrolment mail's Message-ID.
fn enrol_and_confirm(env: &Env, to: &str) -> (Vec<u8>, String) {
    env.run(&["send", "--otp", "--to", to]).expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    let secret = support::otpauth_secret(&mail.qr);
    reply(env, to, &support::totp(&secret, support::now())).expect(0);
    (secret, mail.message_id)
}

fn send_key(env: &Env, to: &str) -> String {
    env.run(&["send", "--key", "--resend", "--to", to])
        .expect(0);
    decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr
}

fn reply(env: &Env, to: &str, code: &str) -> support::Run {
    env.run(&["reply", "--to", to, "--code", code])
}

/// A six-digit code that no step from a minute ago to half an hour from now accepts, however
/// slowly a loaded machine runs the test.
fn wrong_code(secret: &[u8]) -> String {
    let now = support::now();
    (0..1_000_000)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| (0..64).all(|d| *c != support::totp(secret, now + d * 30 - 60)))
        .unwrap()
}

/// The throttle the binary set on the recipient's verified TOTP: when the next attempt is
/// allowed and when the binary recorded the wrong code (`updated`), both from the store.
fn throttle(env: &Env) -> (i64, i64) {
    const SQL: &str = "SELECT next_attempt, updated FROM codes WHERE state = 'verified'";
    if let Some(db) = crate::support::postgres::current() {
        let row = db.admin().query_one(SQL, &[]).unwrap();
        return (row.get(0), row.get(1));
    }
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.query_row(SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
}

/// Unix seconds as RFC 3339 UTC, as securemail prints them (computed here, not by it).
fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `status --json` for one recipient.
fn status(env: &Env, to: &str) -> Value {
    let r = env.run(&["--json", "status", "--to", to]);
    r.expect(0);
    // After the {"type":"store"} line, the recipient's record.
    serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap()
}

/// The JSON lines of a run's stdout.
fn lines(r: &support::Run) -> Vec<Value> {
    r.stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A forged reply mail from `from` carrying `code`, answering `message_id`.
fn forged_mail(env: &Env, name: &str, from: &str, message_id: &str, code: &str) -> String {
    let mid = message_id.trim_matches(['<', '>']);
    let raw = format!(
        "From: {from}\r\nTo: Example Admin <admin@example.org>\r\nSubject: Re: enrolment\r\n\
         Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <forged-{name}@attacker.example>\r\n\
         In-Reply-To: <{mid}>\r\nReferences: <{mid}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{code}\r\n"
    );
    std::fs::write(env.path(name), raw).unwrap();
    name.to_string()
}

#[test]
fn forged_replies_throttle_a_verified_totp_but_never_lock_it() {
    let env = Env::new("[verify]\nmax_attempts = 3\n");
    let to = "alice@example.org";
    let (secret, mid) = enrol_and_confirm(&env, to);
    let wrong = wrong_code(&secret);

    // Twice max_attempts wrong codes, typed and mailed, each after the wait of the one before.
    // The waits (1 s, 2 s, …) are shorter than a loaded machine may take between two commands,
    // so each is held an hour longer in the store, as if the clock stood still; what the binary
    // set is checked first.
    for n in 1..=6u64 {
        let r = if n % 2 == 0 {
            let file = forged_mail(&env, &format!("forged{n}.eml"), to, &mid, &wrong);
            env.run(&["reply", "--message", &file])
        } else {
            reply(&env, to, &wrong)
        };
        r.expect(1);
        let (next_attempt, wrong_at) = throttle(&env);
        assert_eq!(
            next_attempt - wrong_at,
            (1i64 << (n - 1)).min(3600),
            "the wait after {n} wrong codes"
        );
        assert!(
            r.stderr().contains(&format!(
                "wrong code for {to} (next attempt allowed at {}",
                rfc3339(next_attempt)
            )),
            "{}",
            r.stderr()
        );
        support::hold_throttle(&env);
        let v = status(&env, to);
        assert_eq!(v["state"], "verified", "after {n} wrong codes");
        assert_eq!(v["attempts"], n);
        let next = v["next_attempt"]
            .as_str()
            .expect("throttled: next_attempt shown");
        assert!(next.ends_with('Z'), "{next}");

        // Before the wait is over even the right code is not looked at, and nothing is counted.
        let r = reply(&env, to, &support::totp(&secret, support::now() + 30));
        r.expect(75);
        assert!(r.stderr().contains("not checked"), "{}", r.stderr());
        assert!(r.stderr().contains(next), "{}", r.stderr());
        assert!(r.stderr().contains("hint: "), "{}", r.stderr());
        assert_eq!(
            status(&env, to)["attempts"],
            n,
            "a throttled attempt is not counted"
        );
        support::let_throttle_pass(&env);
    }
    let human = env.run(&["status", "--to", to]);
    assert!(
        human.stdout().contains("NEXT ATTEMPT"),
        "{}",
        human.stdout()
    );

    // The person's own code, once the wait is over, still works, and resets the count.
    reply(&env, to, &support::totp(&secret, support::now() + 30)).expect(0);
    let v = status(&env, to);
    assert_eq!(
        (v["state"].as_str(), v["attempts"].as_u64()),
        (Some("verified"), Some(0))
    );
    assert!(v.get("next_attempt").is_none(), "{v}");
}

#[test]
fn the_wait_doubles_and_a_verified_totp_locks_only_after_100_in_a_row() {
    let env = Env::new("[limits]\nwrong_attempts_per_day = 100\n");
    let to = "bob@example.org";
    let (secret, _) = enrol_and_confirm(&env, to);
    let wrong = wrong_code(&secret);
    let mut waits = Vec::new();
    for n in 1..=99u32 {
        reply(&env, to, &wrong).expect(1);
        // From the moment the binary recorded the wrong code (`updated`), not from a clock
        // read here, which may be a second off.
        let (next, wrong_at) = throttle(&env);
        if n <= 14 {
            waits.push(next - wrong_at);
        }
        support::let_throttle_pass(&env);
    }
    // 1 s, 2 s, 4 s, … capped at an hour, exactly.
    let want: Vec<i64> = (0..14).map(|i| (1i64 << i).min(3600)).collect();
    assert_eq!(waits, want);
    let r = reply(&env, to, &wrong);
    r.expect(1);
    assert!(r.stderr().contains("attempt 100 of 100"), "{}", r.stderr());
    assert_eq!(status(&env, to)["state"], "locked");
    reply(&env, to, &support::totp(&secret, support::now() + 30)).expect(1);
}

#[test]
fn a_plain_send_never_replaces_a_verified_locked_or_live_record() {
    let env = Env::new("[verify]\nmax_attempts = 2\n[limits]\nresend_cooldown = \"0s\"\n");
    let (secret, _) = enrol_and_confirm(&env, "verified@example.org");
    send_key(&env, "locked@example.org");
    reply(&env, "locked@example.org", "0000-0000-0000-0").expect(1);
    reply(&env, "locked@example.org", "0000-0000-0000-0").expect(1);
    send_key(&env, "live@example.org");
    let before = env.outbox().len();

    // A list: only the new person is sent a code; the others are skipped, each saying why.
    std::fs::write(
        env.path("team.csv"),
        "verified@example.org\nlocked@example.org\nlive@example.org\nnew@example.org\n",
    )
    .unwrap();
    let r = env.run(&["--json", "send", "--otp", "--to-list", "team.csv"]);
    r.expect(0);
    let out = lines(&r);
    let by = |who: &str| {
        out.iter()
            .find(|v| v["recipient"] == who)
            .unwrap_or_else(|| panic!("no line for {who}: {}", r.stdout()))
            .clone()
    };
    for (who, reason, kind, state) in [
        ("verified@example.org", "verified", "otp", "verified"),
        ("locked@example.org", "locked", "key", "locked"),
        ("live@example.org", "live", "key", "pending"),
    ] {
        let v = by(who);
        assert_eq!(v["outcome"], "skipped", "{v}");
        assert_eq!(v["reason"], reason, "{v}");
        assert_eq!(
            (
                v["existing"]["kind"].as_str(),
                v["existing"]["state"].as_str()
            ),
            (Some(kind), Some(state))
        );
    }
    assert_eq!(by("new@example.org")["outcome"], "sent");
    assert_eq!(env.outbox().len(), before + 1);
    let human = env.run(&["send", "--key", "--to-list", "team.csv"]);
    human.expect(0);
    assert!(
        human.stderr().contains(
            "skipped locked@example.org (line 2): the one-time key sent earlier is locked"
        ),
        "{}",
        human.stderr()
    );

    // A key for someone whose TOTP is verified would silently replace the enrolment: skipped.
    let r = env.run(&["send", "--key", "--to", "verified@example.org"]);
    r.expect(0);
    assert!(
        r.stdout().starts_with("skipped verified@example.org: the TOTP enrolment sent earlier is verified; pass --resend"),
        "{}",
        r.stdout()
    );
    assert_eq!(env.outbox().len(), before + 1, "nothing sent");
    reply(
        &env,
        "verified@example.org",
        &support::totp(&secret, support::now() + 30),
    )
    .expect(0);

    // --resend replaces it, and says what it replaced.
    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--resend",
        "--to",
        "verified@example.org",
    ]);
    r.expect(0);
    let v = &lines(&r)[0];
    assert_eq!(v["outcome"], "sent");
    assert_eq!(
        v["replaced"],
        serde_json::json!({"kind": "otp", "state": "verified"})
    );
    let r = env.run(&["send", "--key", "--resend", "--to", "locked@example.org"]);
    r.expect(0);
    assert!(
        r.stdout()
            .contains("; it replaces the locked one-time key sent earlier"),
        "{}",
        r.stdout()
    );
}

#[test]
fn resends_wait_for_the_cooldown() {
    let env = Env::new("");
    send_key(&env, "carol@example.org");
    for _ in 0..20 {
        let r = env.run(&["send", "--key", "--resend", "--to", "carol@example.org"]);
        r.expect(75);
        assert!(
            r.stderr().contains("[limits] resend_cooldown"),
            "{}",
            r.stderr()
        );
        assert!(
            r.stderr().contains("the next may go at 20"),
            "{}",
            r.stderr()
        );
        assert!(r.stderr().contains("\nhint: "), "{}", r.stderr());
    }
    assert_eq!(env.outbox().len(), 1, "one code in the cooldown");

    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--resend",
        "--to",
        "carol@example.org",
    ]);
    r.expect(75);
    let out = lines(&r);
    assert_eq!(out[0]["outcome"], "failed");
    assert_eq!(out[0]["permanent"], false);
    assert!(out[0]["retry_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (out[1]["type"].as_str(), out[1]["exit"].as_u64()),
        (Some("error"), Some(75))
    );

    // In a list the others still go; the refusal counts as temporary.
    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--resend",
        "--to",
        "carol@example.org",
        "--to",
        "dan@example.org",
    ]);
    r.expect(75);
    let summary = lines(&r)
        .into_iter()
        .find(|v| v["type"] == "summary")
        .unwrap();
    assert_eq!(
        (
            summary["sent"].as_u64(),
            summary["failed_temporary"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(env.outbox().len(), 2);
}

#[test]
fn at_most_codes_per_day_however_the_resends_come() {
    let env = Env::new("[limits]\nresend_cooldown = \"0s\"\n");
    let mut refused = 0;
    for _ in 0..12 {
        let r = env.run(&["send", "--key", "--resend", "--to", "erin@example.org"]);
        match r.code() {
            0 => {}
            75 => {
                refused += 1;
                assert!(
                    r.stderr()
                        .contains("sent 5 codes in the last 24 hours ([limits] codes_per_day)"),
                    "{}",
                    r.stderr()
                );
            }
            _ => panic!("{}", r.stderr()),
        }
    }
    assert_eq!((env.outbox().len(), refused), (5, 7));
    // A day later (the store's clock moved back a day) there is room again.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute("UPDATE codes SET created = created - 86400", [])
        .unwrap();
    drop(db);
    env.run(&["send", "--key", "--resend", "--to", "erin@example.org"])
        .expect(0);
}

#[test]
fn resends_never_refill_the_guess_budget() {
    let env = Env::new("[limits]\nresend_cooldown = \"0s\"\n");
    let to = "fay@example.org";
    // Two keys, each locked by max_attempts (5) wrong guesses: ten wrong codes in the day.
    for _ in 0..2 {
        send_key(&env, to);
        for _ in 0..5 {
            reply(&env, to, "0000-0000-0000-0").expect(1);
        }
        assert_eq!(status(&env, to)["state"], "locked");
    }
    // A third key: not even its right value is looked at today, and nothing is counted.
    let key = send_key(&env, to);
    for _ in 0..3 {
        let r = reply(&env, to, &key);
        r.expect(75);
        assert!(
            r.stderr().contains("10 wrong codes in the last 24 hours"),
            "{}",
            r.stderr()
        );
    }
    let r = env.run(&["--json", "reply", "--to", to, "--code", &key]);
    assert_eq!(lines(&r)[0]["reason"], "budget");
    assert_eq!(status(&env, to)["attempts"], 0);
    // Once the day has passed, it verifies.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute("UPDATE attempts SET at = at - 86400", [])
        .unwrap();
    drop(db);
    reply(&env, to, &key).expect(0);
}

// The same tests against PostgreSQL (those that do not open the SQLite file themselves).
crate::support::postgres::on_postgres!(
    forged_replies_throttle_a_verified_totp_but_never_lock_it,
    a_plain_send_never_replaces_a_verified_locked_or_live_record,
    resends_wait_for_the_cooldown,
);
