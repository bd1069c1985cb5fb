//! Verifying what comes back: RFC 6238 codes computed here, replays, wrong codes, expiry,
//! locking, and concurrent replies racing for one key.

use crate::support::{self, Env, decode_mail};

/// The independent TOTP implementation agrees with RFC 6238 appendix B (SHA1, 8 digits).
#[test]
fn test_totp_matches_rfc6238_vectors() {
    let secret = b"12345678901234567890";
    for (t, code) in [
        (59u64, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ] {
        assert_eq!(support::hotp(secret, t / 30, 8), code, "T={t}");
    }
}

/// Sends a TOTP enrolment to the outbox and returns its decoded secret.
fn enrol(env: &Env, to: &str) -> Vec<u8> {
    env.run(&["send", "--otp", "--to", to]).expect(0);
    let eml = env.outbox().pop().unwrap();
    let mail = decode_mail(&std::fs::read(eml).unwrap());
    support::otpauth_secret(&mail.qr)
}

fn send_key(env: &Env, to: &str) -> String {
    env.run(&["send", "--key", "--to", to]).expect(0);
    let eml = env.outbox().pop().unwrap();
    decode_mail(&std::fs::read(eml).unwrap()).qr
}

fn reply(env: &Env, to: &str, code: &str) -> support::Run {
    env.run(&["reply", "--to", to, "--code", code])
}

#[test]
fn totp_enrolment_confirms_then_keeps_verifying_and_refuses_replays() {
    let env = Env::new("");
    let secret = enrol(&env, "alice@example.org");
    let now = support::now();
    let code = support::totp(&secret, now);

    let r = reply(&env, "alice@example.org", &code);
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "accepted: alice@example.org — TOTP enrolment confirmed\n"
    );

    // The same code again is a replay (RFC 6238 §5.2), whatever the clock says now.
    let r = reply(&env, "alice@example.org", &code);
    r.expect(1);
    assert!(
        r.stderr().starts_with(
            "securemail: error: code refused: that code for alice@example.org was already used"
        ),
        "{}",
        r.stderr()
    );

    // The replay counted as a wrong code: the verified enrolment is throttled for a second.
    // Let that second pass in the store, as the clock would.
    support::let_throttle_pass(&env);
    // The next time step's code (inside the ±1 skew window) still verifies: the authenticator
    // is now a second factor.
    let next = support::totp(&secret, now + 30);
    let r = reply(&env, "alice@example.org", &next);
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "accepted: alice@example.org — TOTP code accepted\n"
    );
    // And an older step than the last accepted one is refused too.
    reply(&env, "alice@example.org", &code).expect(1);
}

#[test]
fn json_reports_the_outcome() {
    let env = Env::new("");
    let secret = enrol(&env, "carol@example.org");
    let code = support::totp(&secret, support::now());
    let r = env.run(&[
        "--json",
        "reply",
        "--to",
        "carol@example.org",
        "--code",
        &code,
    ]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(v["outcome"], "accepted");
    assert_eq!(v["confirmed_enrolment"], true);
    let r = env.run(&[
        "--json",
        "reply",
        "--to",
        "carol@example.org",
        "--code",
        &code,
    ]);
    r.expect(1);
    let stdout = r.stdout();
    let mut lines = stdout.lines();
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let error: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        (error["type"].as_str(), error["exit"].as_u64()),
        (Some("error"), Some(1))
    );
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["reason"], "replayed");
}

#[test]
fn wrong_codes_count_down_and_lock() {
    let env = Env::new("[verify]\nmax_attempts = 3\n");
    let secret = enrol(&env, "dave@example.org");
    let good = support::totp(&secret, support::now());
    // A code that is wrong for every step in the window.
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| {
            (0..3).all(|d| *c != support::totp(&secret, support::now() + d * 30 - 30)) && *c != good
        })
        .unwrap();
    let r = reply(&env, "dave@example.org", &wrong);
    r.expect(1);
    assert_eq!(
        r.stderr().lines().next().unwrap(),
        "securemail: error: code refused: wrong code for dave@example.org (2 attempts left)"
    );
    reply(&env, "dave@example.org", &wrong).expect(1);
    let r = reply(&env, "dave@example.org", &wrong);
    r.expect(1);
    assert!(
        r.stderr()
            .contains("that was attempt 3 of 3, the code is now locked"),
        "{}",
        r.stderr()
    );
    // Locked: even the right code is refused.
    let r = reply(&env, "dave@example.org", &good);
    r.expect(1);
    assert!(
        r.stderr()
            .contains("is locked after too many wrong attempts"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_right_code_resets_the_count() {
    let env = Env::new("[verify]\nmax_attempts = 2\n");
    let key = send_key(&env, "erin@example.org");
    reply(&env, "erin@example.org", "0000-0000-0000-0").expect(1);
    reply(&env, "erin@example.org", &key).expect(0);
}

#[test]
fn key_is_single_use() {
    let env = Env::new("");
    let key = send_key(&env, "frank@example.org");
    let r = reply(&env, "frank@example.org", &key);
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "accepted: frank@example.org — key accepted (now used up)\n"
    );
    let r = reply(&env, "frank@example.org", &key);
    r.expect(1);
    assert!(r.stderr().contains("was already used"), "{}", r.stderr());
}

#[test]
fn expired_key_is_refused() {
    let env = Env::new("");
    let key = send_key(&env, "gina@example.org");
    // Age the record in the real store, as time would.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute("UPDATE codes SET expires = strftime('%s','now') - 1", [])
        .unwrap();
    drop(db);
    let r = reply(&env, "gina@example.org", &key);
    r.expect(1);
    assert_eq!(
        r.stderr(),
        "securemail: error: code refused: the code sent to gina@example.org has expired\n\
         hint: send a new code with securemail send\n"
    );
}

#[test]
fn a_new_send_skips_a_live_code_unless_resend_then_supersedes_it() {
    // The resend follows at once: no cooldown (limits.rs tests it).
    let env = Env::new("[limits]\nresend_cooldown = \"0s\"\n");
    let old = send_key(&env, "hank@example.org");
    let r = env.run(&["send", "--key", "--to", "hank@example.org"]);
    r.expect(0);
    assert!(
        r.stdout().starts_with(
            "skipped hank@example.org: the one-time key sent earlier is pending (until "
        ),
        "{}",
        r.stdout()
    );
    assert_eq!(env.outbox().len(), 1, "nothing new written");
    env.run(&["send", "--key", "--resend", "--to", "hank@example.org"])
        .expect(0);
    let new = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr;
    assert_ne!(old, new);
    reply(&env, "hank@example.org", &old).expect(1);
    reply(&env, "hank@example.org", &new).expect(0);
}

#[test]
fn store_holds_no_secret_in_plain_text() {
    let env = Env::new("");
    let key = send_key(&env, "ivan@example.org");
    let secret = enrol(&env, "judy@example.org");
    let b32 = support::secret_param(
        &decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr,
    );
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("securemail.db") {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    let hay = String::from_utf8_lossy(&bytes).to_uppercase();
    assert!(
        !hay.contains(&key.replace('-', "")),
        "key found in the store"
    );
    assert!(!hay.contains(&key), "key found in the store");
    assert!(
        !hay.contains(&b32),
        "TOTP secret (base32) found in the store"
    );
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
        "raw TOTP secret found"
    );
}

#[test]
fn twenty_concurrent_replies_accept_a_key_exactly_once() {
    let env = Env::new("[verify]\nmax_attempts = 100\n");
    let key = send_key(&env, "kim@example.org");
    let children: Vec<_> = (0..20)
        .map(|_| {
            env.command(&["reply", "--to", "kim@example.org", "--code", &key])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap_or(-1))
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 1).count(), 19, "{codes:?}");
}

/// A wrong key is told to check the key, a wrong TOTP code to use the current one: each hint
/// fits the kind of code it is about.
#[test]
fn a_wrong_code_gets_the_hint_of_its_kind() {
    let env = Env::new("");
    send_key(&env, "hana@example.org");
    let r = reply(
        &env,
        "hana@example.org",
        &support::well_formed_key("AAAA-BBBB-CCCC"),
    );
    r.expect(1);
    assert_eq!(
        r.stderr(),
        "securemail: error: code refused: wrong code for hana@example.org (4 attempts left)\n\
         hint: check the key against the mail (case, spaces and dashes do not matter); a key \
         stays the same until it expires\n"
    );

    enrol(&env, "ivo@example.org");
    let r = reply(&env, "ivo@example.org", "000000");
    // One in a million (or three, with skew) that 000000 is right: then it is accepted.
    if r.code() == 0 {
        return;
    }
    r.expect(1);
    assert_eq!(
        r.stderr(),
        "securemail: error: code refused: wrong code for ivo@example.org (4 attempts left)\n\
         hint: check the code; a TOTP code changes every period, so use the one the app shows now\n"
    );
}

// The same tests against PostgreSQL (those that do not open the SQLite file themselves).
crate::support::postgres::on_postgres!(
    totp_enrolment_confirms_then_keeps_verifying_and_refuses_replays,
    json_reports_the_outcome,
    wrong_codes_count_down_and_lock,
    a_right_code_resets_the_count,
    key_is_single_use,
    a_new_send_skips_a_live_code_unless_resend_then_supersedes_it,
    twenty_concurrent_replies_accept_a_key_exactly_once,
);
