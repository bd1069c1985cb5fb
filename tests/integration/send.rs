//! Sending over real TLS to the in-process server, checking what it received.

use crate::support::{self, Ca, Decoded, Env, Mode, SMTP_USER, Typed, decode_mail, server};

fn send_and_receive(
    mode: Mode,
    security: &str,
    kind: &str,
) -> (Env, support::server::Received, String) {
    let ca = Ca::new("securemail test CA");
    let srv = server(mode, &ca);
    let env = Env::smtp(&srv, security, &ca);
    let r = env.run(&["send", kind, "--to", "Alice <alice@example.org>"]);
    r.expect(0);
    let log = srv.log();
    assert_eq!(log.mails.len(), 1, "one mail received");
    assert_eq!(log.tls_sessions, 1);
    // AUTH happened over TLS, before MAIL.
    let auth = log
        .commands
        .iter()
        .position(|c| c.starts_with("AUTH"))
        .expect("AUTH sent");
    let mail = log
        .commands
        .iter()
        .position(|c| c.starts_with("MAIL FROM"))
        .expect("MAIL sent");
    assert!(auth < mail);
    let received = log.mails[0].clone();
    (env, received, r.stdout())
}

/// The HTML without its tags, whitespace runs squashed: what a reader sees.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `2026-11-25 10:49 UTC` for `unix` seconds.
fn utc_minute(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// What both mails must say in both parts, and what their HTML must not hold: the expiry as a
/// duration and as a UTC time, the account, the issuer, whom to tell about an unexpected mail,
/// and security advice; an HTML part that loads nothing from outside the mail.
fn assert_mail_facts(mail: &Decoded, sent_at: std::ops::RangeInclusive<u64>) {
    let html = visible_text(&mail.html);
    let text = mail.text.split_whitespace().collect::<Vec<_>>().join(" ");
    // The expiry, 24 hours after sending (the minute may have turned during the send).
    let expires: Vec<String> = [*sent_at.start(), *sent_at.end()]
        .iter()
        .map(|t| utc_minute(t + 86400))
        .collect();
    for (part, body) in [("text", &text), ("html", &html)] {
        assert!(body.contains("within 24 hours"), "{part}: {body}");
        assert!(
            expires.iter().any(|e| body.contains(e.as_str())),
            "{part} lacks the expiry {expires:?}: {body}"
        );
        assert!(body.contains("Account"), "{part}: {body}");
        assert!(body.contains("alice@example.org"), "{part}: {body}");
        assert!(body.contains("Example"), "{part}: {body}");
        assert!(
            body.contains("Did not expect this mail?")
                && body.contains("Tell Example Admin at admin@example.org"),
            "{part}: {body}"
        );
        assert!(
            body.contains("Never share") || body.contains("never share"),
            "{part}: {body}"
        );
        assert!(body.contains("delete this mail"), "{part}: {body}");
    }
    // Nothing the client would fetch, and nothing Gmail strips.
    let lower = mail.html.to_ascii_lowercase();
    for banned in ["data:", "http://", "https://", "<link", "@import", "url("] {
        assert!(!lower.contains(banned), "HTML holds {banned}");
    }
    for attr in ["src=\"", "href=\""] {
        for (at, _) in lower.match_indices(attr) {
            let value = &lower[at + attr.len()..];
            assert!(
                value.starts_with("cid:") || value.starts_with("mailto:"),
                "{attr}{}",
                &value[..value.len().min(40)]
            );
        }
    }
    // Dark mode declared; the image says what it is when blocked; one image, at a fixed size.
    assert!(lower.contains("<meta name=\"color-scheme\" content=\"light dark\">"));
    assert_eq!(lower.matches("<img ").count(), 1);
    let img = &mail.html[mail.html.find("<img ").unwrap()..];
    let img = &img[..img.find('>').unwrap()];
    assert!(img.contains("alt=\"QR code "), "{img}");
    assert!(
        img.contains("width=\"") && img.contains("height=\""),
        "{img}"
    );
}

#[test]
fn otp_over_implicit_tls() {
    let before = support::now();
    let (env, received, stdout) = send_and_receive(Mode::Tls, "tls", "--otp");
    let after = support::now();
    assert!(
        stdout.starts_with("sent the TOTP enrolment to alice@example.org via localhost:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(TLSv1.3)") && stdout.contains("250 2.0.0 queued"),
        "{stdout}"
    );
    assert_eq!(received.from, "admin@example.org");
    assert_eq!(received.to, vec!["alice@example.org"]);

    let mail = decode_mail(&received.data);
    assert_eq!(mail.subject, "Set up two-step verification for Example");
    assert_eq!(mail.to, "alice@example.org");
    assert!(
        mail.qr
            .starts_with("otpauth://totp/Example:alice%40example.org?secret="),
        "{}",
        mail.qr
    );
    assert!(mail.qr.ends_with("&issuer=Example"), "{}", mail.qr);
    let secret = support::otpauth_secret(&mail.qr);
    assert_eq!(secret.len(), 20, "160-bit secret");
    // The text part carries the same secret for people who cannot scan.
    let b32 = support::secret_param(&mail.qr);
    let grouped: Vec<String> = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(mail.text.contains(&grouped.join(" ")), "{}", mail.text);
    assert!(mail.png.len() < 2560, "PNG is {} bytes", mail.png.len());
    // So does the HTML, every group in an element that never breaks it.
    assert!(
        visible_text(&mail.html).contains(&grouped.join(" ")),
        "{}",
        mail.html
    );
    for pair in grouped.chunks(2) {
        let span = format!(
            "<span style=\"white-space: nowrap;\">{}</span>",
            pair.join(" ")
        );
        assert!(mail.html.contains(&span), "{span} in {}", mail.html);
    }
    assert_mail_facts(&mail, before..=after);
    for part in [mail.text.as_str(), &visible_text(&mail.html)] {
        assert!(part.contains("Set up two-step verification"), "{part}");
        assert!(part.contains("6-digit code"), "{part}");
        assert!(part.contains("every 30 seconds"), "{part}");
    }

    // The code computed here from the decoded secret verifies.
    let code = support::totp(&secret, support::now());
    env.run(&["reply", "--to", "alice@example.org", "--code", &code])
        .expect(0);
}

#[test]
fn key_over_starttls() {
    let before = support::now();
    let (env, received, stdout) = send_and_receive(Mode::StartTls, "starttls", "--key");
    let after = support::now();
    assert!(
        stdout.starts_with("sent the one-time key to alice@example.org via localhost:"),
        "{stdout}"
    );
    let mail = decode_mail(&received.data);
    assert_eq!(mail.subject, "Your one-time key for Example");
    // RFC 3834: marked as written by a machine, so that vacation responders stay quiet.
    let parsed = mail_parser::MessageParser::default()
        .parse(&received.data[..])
        .unwrap();
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    // The QR carries the key shown in the text part.
    let key = mail.qr.clone();
    // 12 random characters and the check symbol, grouped by four.
    assert_eq!(key.len(), 16, "{key}");
    assert!(mail.text.contains(&key), "{}", mail.text);
    let (data, check) = key.split_at(15);
    let data = data.trim_end_matches('-');
    assert!(
        data.chars()
            .all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
    );
    assert_eq!(check, support::crockford_check(data).to_string());
    // The HTML shows the key whole, each group unbreakable; both parts say how to reply and
    // what the QR code holds, and no longer that spaces and dashes do not matter.
    assert!(visible_text(&mail.html).contains(&key), "{}", mail.html);
    let (first, _) = key.split_once('-').unwrap();
    assert!(
        mail.html.contains(&format!(
            "<span style=\"white-space: nowrap;\">{first}-</span>"
        )),
        "{}",
        mail.html
    );
    assert_mail_facts(&mail, before..=after);
    for part in [mail.text.as_str(), &visible_text(&mail.html)] {
        assert!(part.contains("Your one-time key") || part.contains("your one-time key"));
        assert!(
            part.contains("Reply to this mail with the key as shown, on its own line."),
            "{part}"
        );
        assert!(part.contains("holds the same key as plain text"), "{part}");
        assert!(!part.contains("do not matter"), "{part}");
    }
    // Typed back in lower case without dashes, it still verifies.
    let typed = key.replace('-', " ").to_lowercase();
    env.run(&["reply", "--to", "alice@example.org", "--code", &typed])
        .expect(0);
}

#[test]
fn starttls_happens_before_auth_and_mail() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::StartTls, &ca);
    let env = Env::smtp(&srv, "starttls", &ca);
    env.run(&["send", "--key", "--to", "bob@example.org"])
        .expect(0);
    let log = srv.log();
    let cmds: Vec<&str> = log
        .commands
        .iter()
        .map(|c| c.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(&cmds[..3], ["EHLO", "STARTTLS", "EHLO"], "{cmds:?}");
    assert_eq!(cmds[3], "AUTH");
}

#[test]
fn wrong_password_is_refused_with_77_and_nothing_sent() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let mut env = Env::smtp(&srv, "tls", &ca);
    env.env = vec![("SECUREMAIL_TEST_PASSWORD".into(), "wrong".into())];
    let r = env.run(&["send", "--otp", "--to", "alice@example.org"]);
    r.expect(77);
    assert_eq!(
        r.stderr(),
        "securemail: error: the server refused the login: 535 Invalid credentials\n\
         hint: check [smtp] username and the password; Gmail and other providers with 2-step \
         verification need an app password (Google account → Security → App passwords)\n"
    );
    let log = srv.log();
    assert_eq!(log.mail_from_count(), 0);
    assert_eq!(log.auth_failures, 1);
    assert!(!r.stderr().contains("wrong"), "the password never appears");
}

#[test]
fn missing_password_env_is_a_config_error() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let mut env = Env::smtp(&srv, "tls", &ca);
    env.env.clear();
    let r = env.run(&["send", "--otp", "--to", "alice@example.org"]);
    r.expect(78);
    assert!(r.stderr().starts_with("securemail: error: the environment variable SECUREMAIL_TEST_PASSWORD (from [smtp] password_env) is not set\n"), "{}", r.stderr());
    assert_eq!(
        srv.log().connections,
        0,
        "no connection before the password is known"
    );
}

#[test]
fn refused_recipient_is_69_and_leaves_no_pending_code() {
    let ca = Ca::new("securemail test CA");
    let mut opts = support::Options::new(Mode::Tls, ca.leaf(&["localhost"]));
    opts.rcpt_always.insert("nobody@example.org".into(), 550);
    let srv = support::Server::start(opts);
    let env = Env::smtp(&srv, "tls", &ca);
    let r = env.run(&["send", "--key", "--to", "nobody@example.org"]);
    r.expect(69);
    assert!(r.stderr().starts_with("securemail: error: the server refused RCPT TO: 550 scripted refusal of <nobody@example.org>\n"), "{}", r.stderr());
    let r = env.run(&[
        "reply",
        "--to",
        "nobody@example.org",
        "--code",
        "AAAA-AAAA-AAAA",
    ]);
    r.expect(1);
    assert!(r.stderr().contains("no code was sent"), "{}", r.stderr());
}

#[test]
fn header_injection_is_refused_before_anything_happens() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let env = Env::smtp(&srv, "tls", &ca);
    for args in [
        vec![
            "send",
            "--otp",
            "--to",
            "a@example.org",
            "--subject",
            "hi\r\nBcc: evil@example.org",
        ],
        vec![
            "send",
            "--otp",
            "--to",
            "a@example.org",
            "--name",
            "A\nBcc: evil@example.org",
        ],
        vec![
            "send",
            "--otp",
            "--to",
            "a@example.org\r\nBcc: evil@example.org",
        ],
    ] {
        let r = env.run(&args);
        r.expect(65);
        assert!(
            r.stderr()
                .contains("contains a line break or control character"),
            "{}",
            r.stderr()
        );
    }
    assert_eq!(srv.log().connections, 0);
    let _ = SMTP_USER;
}

#[test]
fn terminal_prompts_for_recipient_and_password_without_echo() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"{SMTP_USER}\"\nca_file = \"ca.pem\"\n",
        srv.port()
    ));
    let password_prompt = format!("SMTP password for {SMTP_USER} at localhost:");
    let r = support::run_on_tty(
        &env,
        "send --key",
        &[
            Typed {
                prompt: "Recipient address:",
                line: "alice@example.org",
                secret: false,
            },
            Typed {
                prompt: &password_prompt,
                line: support::SMTP_PASS,
                secret: true,
            },
        ],
    );
    r.expect(0);
    let out = r.stdout();
    assert!(out.contains("Recipient address:"), "{out}");
    assert!(out.contains(&password_prompt), "{out}");
    assert!(
        out.contains("sent the one-time key to alice@example.org"),
        "{out}"
    );
    assert!(
        !out.contains(support::SMTP_PASS),
        "the password was echoed: {out}"
    );
    assert_eq!(srv.log().mails.len(), 1);
}

#[test]
fn an_idn_domain_and_its_a_label_are_one_recipient() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "Bob <bob@Bücher.example>"])
        .expect(0);
    let mails = env.outbox();
    assert_eq!(mails.len(), 1);
    let raw = std::fs::read(&mails[0]).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("To: Bob <bob@xn--bcher-kva.example>"),
        "the mail goes to the canonical address:\n{text}"
    );
    // The other spelling finds the same live record: a plain send skips it.
    let r = env.run(&[
        "--json",
        "send",
        "--key",
        "--to",
        "BOB@xn--BCHER-kva.example",
    ]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(v["outcome"], "skipped");
    assert_eq!(v["recipient"], "bob@xn--bcher-kva.example");
    let st = env.run(&["--json", "status", "--to", "bob@bücher.EXAMPLE"]);
    let records = st
        .stdout()
        .lines()
        .filter(|l| l.contains(r#""type":"record""#))
        .count();
    assert_eq!(records, 1, "{}", st.stdout());
}

#[test]
fn a_look_alike_local_part_is_refused_before_anything_is_sent() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "kelly@example.org"])
        .expect(0);
    // U+212A KELVIN SIGN: lower-cases (and normalises) to ASCII "k".
    let r = env.run(&[
        "send",
        "--key",
        "--resend",
        "--to",
        "\u{212A}elly@example.org",
    ]);
    r.expect(65);
    assert!(r.stderr().contains("U+212A"), "{}", r.stderr());
    assert_eq!(env.outbox().len(), 1, "no second mail");
}
