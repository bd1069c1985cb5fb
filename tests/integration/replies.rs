//! `reply --message` and `reply --maildir`: codes out of real reply emails.

use crate::support::{self, Env, decode_mail};

/// Sends a key to `to` via the outbox; returns (key as shown, Message-ID).
fn send_key(env: &Env, to: &str) -> (String, String) {
    env.run(&["send", "--key", "--resend", "--to", to])
        .expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    (mail.qr, mail.message_id)
}

fn send_otp(env: &Env, to: &str) -> (Vec<u8>, String) {
    env.run(&["send", "--otp", "--resend", "--to", to])
        .expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    (support::otpauth_secret(&mail.qr), mail.message_id)
}

/// A reply mail with the given headers and body (already encoded as `cte` says).
fn reply_mail(from: &str, in_reply_to: &str, content_type: &str, cte: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Example Admin <admin@example.org>\r\nSubject: Re: Your one-time key\r\n\
         Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <reply-{}@example.net>\r\n\
         In-Reply-To: <{in_reply_to}>\r\nReferences: <{in_reply_to}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn check(env: &Env, name: &str, raw: &[u8]) -> support::Run {
    std::fs::write(env.path(name), raw).unwrap();
    env.run(&["reply", "--message", name])
}

fn id(message_id: &str) -> String {
    message_id.trim_matches(['<', '>']).to_string()
}

#[test]
fn plain_reply_with_the_original_quoted() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "alice@example.org");
    let body = format!(
        "Here it is: {}\r\n\r\nAlice\r\n\r\nOn Tue, 24 Nov 2026 at 11:00, Example Admin <admin@example.org> wrote:\r\n\
         > Your key is ZZZZ-ZZZZ-ZZZZ\r\n> {key}\r\n",
        key.to_lowercase()
    );
    let r = check(
        &env,
        "plain.eml",
        &reply_mail(
            "Alice <alice@example.org>",
            &id(&mid),
            "text/plain; charset=utf-8",
            "8bit",
            &body,
        ),
    );
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "accepted: alice@example.org — key accepted (now used up)\n"
    );
}

#[test]
fn only_the_quoted_original_holds_the_key() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "alice@example.org");
    let body = format!("Thanks!\r\n\r\nOn Tue, 24 Nov 2026, Example Admin wrote:\r\n> {key}\r\n");
    let r = check(
        &env,
        "quoted.eml",
        &reply_mail("alice@example.org", &id(&mid), "text/plain", "7bit", &body),
    );
    r.expect(65);
    assert!(r.stderr().starts_with("securemail: error: no code found in the reply from alice@example.org (above the quoted text)\n"), "{}", r.stderr());
}

#[test]
fn top_posted_html_only_reply() {
    let env = Env::new("");
    let (secret, mid) = send_otp(&env, "bob@example.org");
    let code = support::totp(&secret, support::now());
    let body = format!(
        "<html><body><div>My code: <b>{} {}</b></div><div><br></div>\
         <div>On Tue, 24 Nov 2026, Example Admin &lt;admin@example.org&gt; wrote:</div>\
         <blockquote>Key: 111111 222222</blockquote></body></html>\r\n",
        &code[..3],
        &code[3..]
    );
    let r = check(
        &env,
        "html.eml",
        &reply_mail(
            "Bob <bob@example.org>",
            &id(&mid),
            "text/html; charset=utf-8",
            "7bit",
            &body,
        ),
    );
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "accepted: bob@example.org — TOTP enrolment confirmed\n"
    );
}

#[test]
fn quoted_printable_and_base64_bodies() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "carol@example.org");
    // The key broken across a soft line break, as quoted-printable allows.
    let (a, b) = key.split_at(7);
    let qp = format!("Code=3A {a}=\r\n{b}\r\n");
    let r = check(
        &env,
        "qp.eml",
        &reply_mail(
            "carol@example.org",
            &id(&mid),
            "text/plain; charset=utf-8",
            "quoted-printable",
            &qp,
        ),
    );
    r.expect(0);

    let (key, mid) = send_key(&env, "dan@example.org");
    let b64 = support::base64(format!("my key: {key}\r\nthanks\r\n").as_bytes());
    let r = check(
        &env,
        "b64.eml",
        &reply_mail(
            "dan@example.org",
            &id(&mid),
            "text/plain; charset=utf-8",
            "base64",
            &b64,
        ),
    );
    r.expect(0);
}

#[test]
fn iso_8859_1_body() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "erik@example.org");
    let mut raw = reply_mail(
        "Erik <erik@example.org>",
        &id(&mid),
        "text/plain; charset=ISO-8859-1",
        "8bit",
        "",
    );
    // "Grüße, hier ist der Schlüssel: <key>" in Latin-1 bytes.
    raw.extend_from_slice(b"Gr\xfc\xdfe, hier ist der Schl\xfcssel: ");
    raw.extend_from_slice(key.as_bytes());
    raw.extend_from_slice(b"\r\n");
    check(&env, "latin1.eml", &raw).expect(0);
}

#[test]
fn reply_from_the_wrong_address_is_refused() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "fay@example.org");
    let r = check(
        &env,
        "spoof.eml",
        &reply_mail(
            "mallory@example.org",
            &id(&mid),
            "text/plain",
            "7bit",
            &format!("{key}\r\n"),
        ),
    );
    r.expect(1);
    assert!(
        r.stderr().starts_with(
            "securemail: error: code refused: no code was sent to mallory@example.org\n"
        ),
        "{}",
        r.stderr()
    );
    // Fay's key is untouched: no attempt was counted against it.
    env.run(&["reply", "--to", "fay@example.org", "--code", &key])
        .expect(0);
}

#[test]
fn reply_to_an_older_mail_is_refused_without_counting() {
    // Two codes back to back: no resend cooldown.
    let env = Env::new("[verify]\nmax_attempts = 1\n[limits]\nresend_cooldown = \"0s\"\n");
    let (old_key, old_mid) = send_key(&env, "gus@example.org");
    let (new_key, _) = send_key(&env, "gus@example.org");
    let r = check(
        &env,
        "old.eml",
        &reply_mail(
            "gus@example.org",
            &id(&old_mid),
            "text/plain",
            "7bit",
            &format!("{old_key}\r\n"),
        ),
    );
    r.expect(1);
    assert!(
        r.stderr().contains("answers an older mail"),
        "{}",
        r.stderr()
    );
    env.run(&["reply", "--to", "gus@example.org", "--code", &new_key])
        .expect(0);
}

#[test]
fn garbage_is_malformed() {
    let env = Env::new("");
    let r = check(&env, "garbage.bin", b"\x00\x9f\x92\x96 this is no mail\x00");
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: the input is not an email message\n"),
        "{}",
        r.stderr()
    );
    let r = check(&env, "nofrom.eml", b"Subject: hi\r\n\r\n123456\r\n");
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: the message has no From address\n"),
        "{}",
        r.stderr()
    );
}

#[test]
fn message_from_stdin() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "hal@example.org");
    let raw = reply_mail(
        "hal@example.org",
        &id(&mid),
        "text/plain",
        "7bit",
        &format!("{key}\r\n"),
    );
    let r = env.run_with_stdin(&["--json", "reply", "--message", "-"], &raw);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["outcome"], "accepted");
    assert_eq!(v["recipient"], "hal@example.org");
}

#[test]
fn maildir_processes_each_message_once() {
    let env = Env::new("[verify]\nmax_attempts = 3\n");
    let (key_a, mid_a) = send_key(&env, "ann@example.org");
    let (_key_b, mid_b) = send_key(&env, "ben@example.org");
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let put = |name: &str, raw: &[u8]| std::fs::write(md.join("new").join(name), raw).unwrap();
    put(
        "1.good",
        &reply_mail(
            "ann@example.org",
            &id(&mid_a),
            "text/plain",
            "7bit",
            &format!("{key_a}\r\n"),
        ),
    );
    put(
        "2.wrong",
        &reply_mail(
            "ben@example.org",
            &id(&mid_b),
            "text/plain",
            "7bit",
            &format!("{}\r\n", support::well_formed_key("AAAA-BBBB-CCCC")),
        ),
    );
    put(
        "3.nocode",
        &reply_mail(
            "ben@example.org",
            &id(&mid_b),
            "text/plain",
            "7bit",
            "which code?\r\n",
        ),
    );
    put("4.garbage", b"\x00\x01 not a mail");

    let r = env.run(&["reply", "--maildir", "Maildir"]);
    r.expect(0);
    let out = r.stdout();
    assert!(
        out.contains("1.good: accepted: ann@example.org — key accepted (now used up)"),
        "{out}"
    );
    assert!(
        out.contains("2.wrong: refused: wrong code for ben@example.org (2 attempts left)"),
        "{out}"
    );
    assert!(
        out.contains("3.nocode: no code found in the reply from ben@example.org"),
        "{out}"
    );
    assert!(
        out.contains("4.garbage: malformed: the input is not an email message"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "1 accepted, 2 refused, 1 malformed, 0 set aside as automatic, 0 set aside as unauthenticated\n"
        ),
        "{out}"
    );

    assert_eq!(std::fs::read_dir(md.join("new")).unwrap().count(), 0);
    let mut cur: Vec<String> = std::fs::read_dir(md.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cur.sort();
    assert_eq!(cur, vec!["1.good:2,S", "2.wrong:2,S", "3.nocode:2,S"]);
    assert!(md.join("malformed/4.garbage").exists());

    // A second run finds nothing new and counts nothing again.
    let r = env.run(&["reply", "--maildir", "Maildir"]);
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "0 accepted, 0 refused, 0 malformed, 0 set aside as automatic, 0 set aside as unauthenticated\n"
    );
    let st = env.run(&["--json", "status", "--to", "ben@example.org"]);
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["attempts"], 1, "the wrong reply counted once");
}

/// A reply counts for the record of the mailbox it came from, keyed exactly as `--to` keys it:
/// the spellings a mail system may write for one mailbox (case, quotes, a final dot, an IDN
/// domain as U-label or A-label, NFD) find the record; a look-alike (U+212A KELVIN SIGN for
/// `K`) is set aside and costs the real mailbox nothing.
#[test]
fn a_reply_finds_its_record_by_the_canonical_sender() {
    let env = Env::new("");
    let (key, mid) = send_key(&env, "kelly@example.org");
    let r = check(
        &env,
        "kelvin.eml",
        &reply_mail(
            "\u{212A}elly@example.org",
            &id(&mid),
            "text/plain",
            "7bit",
            &format!("{key}\r\n"),
        ),
    );
    r.expect(65);
    assert!(
        r.stderr()
            .starts_with("securemail: error: set aside, not checked (no attempt was counted): ")
            && r.stderr().contains("U+212A"),
        "{}",
        r.stderr()
    );
    let r = env.run(&["--json", "status", "--to", "kelly@example.org"]);
    let last: serde_json::Value = serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(last["attempts"], 0, "{last}");

    for (to, from) in [
        ("lee@example.org", "\"Lee\"@Example.ORG."),
        ("bob@b\u{fc}cher.example", "Bob <bob@xn--bcher-kva.example>"),
        ("bo@xn--bcher-kva.example", "bo@B\u{dc}CHER.example"),
        ("CAF\u{c9}@example.org", "CAF\u{c9}@example.org"),
        ("ren\u{e9}@example.org", "ren\u{65}\u{301}@example.org"),
    ] {
        let (key, mid) = send_key(&env, to);
        let r = check(
            &env,
            "spelling.eml",
            &reply_mail(
                from,
                &id(&mid),
                "text/plain; charset=utf-8",
                "8bit",
                &format!("{key}\r\n"),
            ),
        );
        r.expect(0);
        assert!(
            r.stdout().starts_with("accepted: "),
            "{to} / {from}: {}",
            r.stdout()
        );
    }
}

/// A reply that waited in new/ (unread, or held back by a budget) is judged by the code the
/// app showed when it was delivered, not counted as wrong because the app has moved on; one
/// held back says so in its own JSON line.
#[test]
fn a_reply_that_waited_is_judged_at_its_delivery_time() {
    let env = Env::new("[limits]\nwrong_attempts_per_day = 1\n");
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let put = |name: &str, raw: &[u8], age: u64| {
        let path = md.join("new").join(name);
        std::fs::write(&path, raw).unwrap();
        let at = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    };
    // Delivered five minutes ago with the code of then: ten periods back, far outside the skew.
    let (secret, mid) = send_otp(&env, "ann@example.org");
    let then = support::now() - 300;
    let code = support::totp(&secret, then);
    put(
        "1.late",
        &reply_mail(
            "ann@example.org",
            &id(&mid),
            "text/plain",
            "7bit",
            &format!("{code}\r\n"),
        ),
        300,
    );
    let r = env.run(&["--json", "reply", "--maildir", "Maildir"]);
    r.expect(0);
    let first: serde_json::Value =
        serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(first["outcome"], "accepted", "{}", r.stdout());

    // Over the day's budget: a reply is left for later, and its line says when.
    let (secret, mid) = send_otp(&env, "ben@example.org");
    env.run(&["reply", "--to", "ben@example.org", "--code", "000000"])
        .expect(1);
    let code = support::totp(&secret, support::now());
    put(
        "2.held",
        &reply_mail(
            "ben@example.org",
            &id(&mid),
            "text/plain",
            "7bit",
            &format!("{code}\r\n"),
        ),
        0,
    );
    let r = env.run(&["--json", "reply", "--maildir", "Maildir"]);
    r.expect(0);
    let held: serde_json::Value = serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(held["outcome"], "deferred", "{}", r.stdout());
    assert_eq!(held["file"], "2.held");
    assert_eq!(held["recipient"], "ben@example.org");
    assert_eq!(held["reason"], "budget");
    assert!(held["retry_at"].as_str().unwrap().ends_with('Z'));
    assert!(md.join("new/2.held").exists());
}
