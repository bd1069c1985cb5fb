//! The operator's commands: check, status, revoke, init, completions, man, the send log, DKIM.

use crate::support::{self, Ca, Env, Mode, Options, Server, decode_mail, server};

/// SHA-256 of a certificate's DER as `openssl x509 -fingerprint -sha256` prints it, computed
/// here rather than by securemail.
fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let hex: Vec<String> = sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    hex.join(":")
}

#[test]
fn check_reports_tls_certificate_extensions_and_login() {
    let ca = Ca::new("securemail test CA");
    let cert = ca.leaf(&["localhost"]);
    let sha256 = fingerprint(&cert.chain[0]);
    let srv = Server::start(Options::new(Mode::StartTls, cert));
    let env = Env::smtp(&srv, "starttls", &ca);
    let r = env.run(&["check"]);
    r.expect(0);
    let out = r.stdout();
    for expected in [
        &format!("server:       localhost:{} (starttls)", srv.port()),
        "greeting:     220 mx.test ESMTP",
        "certificate:  CN=localhost (verified for localhost)",
        "  issued by:  CN=securemail test CA",
        "  valid:      1975-01-01 00:00:00 UTC to 4096-01-01 00:00:00 UTC",
        &format!("  sha256:     {sha256}"),
        "  alt names:  DNS:localhost",
        "chain:        0 s:CN=localhost",
        "                i:CN=securemail test CA",
        "extensions:   8BITMIME, AUTH PLAIN LOGIN",
        "auth:         accepted for user@example.org (235 Authentication succeeded)",
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "missing {expected:?} in\n{out}"
        );
    }
    assert!(out.contains("\ntls:          TLSv1.3, TLS13_"), "{out}");
    assert!(
        !out.contains(" 1 s:"),
        "the server sent one certificate\n{out}"
    );
    let log = srv.log();
    assert_eq!(log.mail_from_count(), 0, "check sends nothing");
    assert!(log.mails.is_empty());
}

/// A server that sends its intermediate CA: `check` lists the chain as sent, leaf first, and the
/// leaf's fingerprint and alternative names, for people and in JSON.
#[test]
fn check_shows_the_chain_fingerprint_and_alternative_names() {
    let root = Ca::new("securemail test root");
    let intermediate = root.intermediate("securemail test intermediate");
    let cert = intermediate.leaf(&["localhost", "127.0.0.1", "::1"]);
    assert_eq!(cert.chain.len(), 2);
    let sha256 = fingerprint(&cert.chain[0]);
    let srv = Server::start(Options::new(Mode::Tls, cert));
    let env = Env::smtp(&srv, "tls", &root);

    let r = env.run(&["check"]);
    r.expect(0);
    let out = r.stdout();
    let from = out.find("certificate:").unwrap();
    let to = out.find("extensions:").unwrap();
    assert_eq!(
        &out[from..to],
        format!(
            "certificate:  CN=localhost (verified for localhost)\n\
             \x20 issued by:  CN=securemail test intermediate\n\
             \x20 valid:      1975-01-01 00:00:00 UTC to 4096-01-01 00:00:00 UTC\n\
             \x20 sha256:     {sha256}\n\
             \x20 alt names:  DNS:localhost, IP Address:127.0.0.1, IP Address:::1\n\
             chain:        0 s:CN=localhost\n\
             \x20               i:CN=securemail test intermediate\n\
             \x20             1 s:CN=securemail test intermediate\n\
             \x20               i:CN=securemail test root\n"
        )
    );

    let r = env.run(&["--json", "check"]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(
        v["certificate"],
        serde_json::json!({
            "subject": "CN=localhost",
            "issuer": "CN=securemail test intermediate",
            "not_before": "1975-01-01T00:00:00Z",
            "not_after": "4096-01-01T00:00:00Z",
            "sha256": sha256,
            "dns_names": ["localhost"],
            "ip_addresses": ["127.0.0.1", "::1"],
        })
    );
    assert_eq!(
        v["chain"],
        serde_json::json!([
            { "depth": 0, "subject": "CN=localhost", "issuer": "CN=securemail test intermediate" },
            { "depth": 1, "subject": "CN=securemail test intermediate", "issuer": "CN=securemail test root" },
        ])
    );
}

/// A certificate in the chain that is not DER (verification does not need it: the leaf is signed
/// by the trusted CA itself) is reported as unreadable, and the rest is still shown.
#[test]
fn check_says_when_a_chain_certificate_cannot_be_read() {
    let ca = Ca::new("securemail test CA");
    let mut cert = ca.leaf(&["localhost"]);
    let truncated = cert.chain[0][..100].to_vec();
    cert.chain.push(truncated.into());
    let srv = Server::start(Options::new(Mode::Tls, cert));
    let env = Env::smtp(&srv, "tls", &ca);

    let r = env.run(&["check"]);
    r.expect(0);
    let out = r.stdout();
    assert!(out.contains("\nchain:        0 s:CN=localhost\n"), "{out}");
    assert!(
        out.contains("\n              1 could not read the certificate: not X.509 DER: "),
        "{out}"
    );

    let r = env.run(&["--json", "check"]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(v["certificate"]["subject"], "CN=localhost");
    assert_eq!(v["chain"][0]["subject"], "CN=localhost");
    assert_eq!(v["chain"][1]["depth"], 1);
    let error = v["chain"][1]["error"].as_str().unwrap();
    assert!(
        error.starts_with("could not read the certificate: not X.509 DER: "),
        "{error}"
    );
}

#[test]
fn check_with_a_wrong_password_exits_77() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let mut env = Env::smtp(&srv, "tls", &ca);
    env.env = vec![("SECUREMAIL_TEST_PASSWORD".into(), "nope".into())];
    let r = env.run(&["--json", "check"]);
    r.expect(77);
    let stdout = r.stdout();
    let mut lines = stdout.lines();
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let error: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["exit"], 77);
    assert_eq!(v["auth"], "refused");
    assert!(
        v["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "AUTH PLAIN LOGIN")
    );
    assert_eq!(v["tls_version"], "TLSv1.3");
    assert!(
        r.stderr()
            .starts_with("securemail: error: the server refused the login: 535"),
        "{}",
        r.stderr()
    );
}

#[test]
fn check_refuses_an_untrusted_server_like_send() {
    let trusted = Ca::new("trusted");
    let other = Ca::new("other");
    let srv = Server::start(Options::new(Mode::Tls, other.leaf(&["localhost"])));
    let env = Env::smtp(&srv, "tls", &trusted);
    let r = env.run(&["check"]);
    r.expect(77);
    assert!(r.stderr().starts_with(
        "securemail: error: the certificate of localhost (CN=localhost, issued by CN=other) is not signed by a trusted CA\nhint: if CN=other is"
    ));
    assert!(srv.log().commands.is_empty());
}

#[test]
fn status_and_revoke_round_trip() {
    let env = Env::new("");
    env.run(&["send", "--key", "--to", "ida@example.org"])
        .expect(0);
    env.run(&["send", "--otp", "--to", "jon@example.org"])
        .expect(0);
    let key = decode_mail(&std::fs::read(&env.outbox()[0]).unwrap()).qr;

    let r = env.run(&["status"]);
    r.expect(0);
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("store: securemail.db (key id ") && lines[0].ends_with(')'),
        "{out}"
    );
    assert!(
        lines[1].starts_with("RECIPIENT") && lines[1].contains("STATE"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("ida@example.org  key   pending"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("jon@example.org  otp   pending"),
        "{out}"
    );
    assert!(
        !out.contains(&key) && !out.contains(&key.replace('-', "")),
        "status shows no key"
    );

    let r = env.run(&["revoke", "--to", "ida@example.org"]);
    r.expect(0);
    assert_eq!(
        r.stdout(),
        "revoked the pending one-time key of ida@example.org; it will not verify again\n"
    );
    let r = env.run(&["reply", "--to", "ida@example.org", "--code", &key]);
    r.expect(1);
    assert!(r.stderr().contains("was revoked"), "{}", r.stderr());
    let r = env.run(&["--json", "status", "--to", "ida@example.org"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["state"], "revoked");
    let r = env.run(&["revoke", "--to", "ida@example.org"]);
    r.expect(1);
    assert!(r.stderr().starts_with(
        "securemail: error: ida@example.org has no pending or verified code to revoke\n"
    ));
}

/// Times for people are to the second in the machine's zone (TZ here), or UTC with --utc; the
/// column of wrong codes says what it counts; --json keeps RFC 3339 UTC.
#[test]
fn status_shows_local_times_to_the_second_and_wrong_codes_in_a_row() {
    let mut env = Env::new("");
    env.env.push(("TZ".into(), "Europe/Paris".into()));
    env.run(&["send", "--key", "--to", "ida@example.org"])
        .expect(0);
    let wrong = support::well_formed_key("AAAA-BBBB-CCCC");
    env.run(&["reply", "--to", "ida@example.org", "--code", &wrong])
        .expect(1);
    // 2026-11-25 18:44:12 UTC and 2100-01-01 00:00:00 UTC, written into the real store.
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute(
        "UPDATE codes SET created = 1795632252, expires = 4102444800",
        [],
    )
    .unwrap();
    drop(db);

    let table = |args: &[&str]| {
        let r = env.run(args);
        r.expect(0);
        r.stdout().lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(
        table(&["status"]),
        "RECIPIENT        KIND  STATE       CREATED                     EXPIRES                     WRONG IN A ROW  NEXT ATTEMPT\n\
         ida@example.org  key   pending     2026-11-25 19:44:12 +01:00  2100-01-01 01:00:00 +01:00  1               -"
    );
    assert_eq!(
        table(&["status", "--utc"]),
        "RECIPIENT        KIND  STATE       CREATED                  EXPIRES                  WRONG IN A ROW  NEXT ATTEMPT\n\
         ida@example.org  key   pending     2026-11-25 18:44:12 UTC  2100-01-01 00:00:00 UTC  1               -"
    );
    let r = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(v["created"], "2026-11-25T18:44:12Z");
    assert_eq!(v["expires"], "2100-01-01T00:00:00Z");
    assert_eq!(v["attempts"], 1);
}

#[test]
fn init_writes_a_config_that_check_loads() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let run = |args: &[&str]| {
        support::Run(
            std::process::Command::new(support::BIN)
                .current_dir(dir.path())
                .env("SECUREMAIL_PASSWORD", support::SMTP_PASS)
                .env_remove("SECUREMAIL_CONFIG")
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let port = srv.port().to_string();
    let init = [
        "--config",
        "site/account.toml",
        "init",
        "--host",
        "localhost",
        "--port",
        &port,
        "--security",
        "tls",
        "--from",
        "Ops <ops@example.org>",
        "--username",
        support::SMTP_USER,
        "--ca-file",
        "../ca.pem",
    ];
    let r = run(&init);
    r.expect(0);
    assert!(
        r.stdout().starts_with("wrote site/account.toml\n"),
        "{}",
        r.stdout()
    );
    // Outside a clone, the built-in templates: none written.
    assert!(!dir.path().join("site/templates").exists());
    assert!(
        r.stdout().contains(
            "\ntemplates: the built-in ones (securemail templates export DIR to edit them)\n"
        ),
        "{}",
        r.stdout()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.path().join("site/account.toml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // init ran the check itself (the password is in the environment) and said what comes next.
    let out = r.stdout();
    for expected in [
        format!("checking localhost:{port} ..."),
        "auth:         accepted for user@example.org (235 Authentication succeeded)".into(),
        "the check passed; next: securemail --config site/account.toml send --otp --to you@example.org".into(),
    ] {
        assert!(out.lines().any(|l| l == expected), "missing {expected:?} in\n{out}");
    }
    run(&["--config", "site/account.toml", "check"]).expect(0);
    // And it sends.
    run(&[
        "--config",
        "site/account.toml",
        "send",
        "--otp",
        "--to",
        "kim@example.org",
    ])
    .expect(0);
    assert_eq!(srv.log().mails.len(), 1);

    // No overwriting without --force.
    let r = run(&init);
    r.expect(73);
    assert_eq!(
        r.stderr(),
        "securemail: error: site/account.toml already exists\nhint: pass --force to replace it\n"
    );
    let mut forced = init.to_vec();
    forced.push("--force");
    run(&forced).expect(0);
}

/// The terminal session: every field asked with its default, wrong answers asked again with the
/// reason, the config written to the XDG path (directory 0700, file 0600), and it sends.
#[test]
fn init_on_a_terminal_asks_again_after_a_wrong_answer_and_writes_a_config_that_sends() {
    use support::Typed;
    let mut env = Env::new("");
    let xdg = env.path("xdg");
    let data = env.path("data");
    env.env
        .push(("XDG_CONFIG_HOME".into(), xdg.display().to_string()));
    env.env
        .push(("XDG_DATA_HOME".into(), data.display().to_string()));
    let typed = |prompt, line| Typed {
        prompt,
        line,
        secret: false,
    };
    let r = support::run_on_tty(
        &env,
        "init",
        &[
            typed(
                "Send as (name and address, e.g. Example Admin <admin@example.org>): ",
                "nobody",
            ),
            typed("Send as (", "Ops Team <ops@example.org>"),
            typed(
                "(no server: mails are written to the outbox) [none]: ",
                "yahoo",
            ),
            typed("Provider: ", ""),
            typed(
                "Issuer, the name authenticator apps show above the code [Ops Team]: ",
                "",
            ),
        ],
    );
    r.expect(0);
    let shown = r.stdout().replace('\r', "");
    for expected in [
        "  \"nobody\" is not a mailbox (",
        "  \"yahoo\" is not a provider: answer gmail, gmail-starttls, outlook, other or none; try again\n",
        &format!("wrote {}/securemail/account.toml\n", xdg.display()),
        "no [smtp] server: mails are written to the outbox; next: securemail send --otp --to you@example.org\n",
        "templates: the built-in ones (securemail templates export DIR to edit them)\n",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&xdg.join("securemail")), 0o700);
    assert_eq!(mode(&xdg.join("securemail/account.toml")), 0o600);

    let config = xdg.join("securemail/account.toml");
    let config = config.to_str().unwrap();
    env.run(&[
        "--config",
        config,
        "send",
        "--otp",
        "--to",
        "kim@example.org",
    ])
    .expect(0);
    // The data goes to the data directory, and the templates are the built-in ones.
    assert!(!xdg.join("securemail/outbox").exists());
    assert!(!xdg.join("securemail/templates").exists());
    assert!(data.join("securemail/securemail.db").exists());
    let sent: Vec<_> = std::fs::read_dir(data.join("securemail/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mail = decode_mail(&std::fs::read(&sent[0]).unwrap());
    assert!(mail.qr.contains("issuer=Ops%20Team"), "{}", mail.qr);
    let raw = std::fs::read_to_string(&sent[0]).unwrap();
    assert!(
        raw.contains("\nFrom: \"Ops Team\" <ops@example.org>\r\n"),
        "{raw}"
    );
}

/// A session against the TLS server: a custom host, a port that needs the security asked, the
/// password from an environment variable, a CA file typed wrong first; the check at the end
/// passes, and the mail goes out.
#[test]
fn init_on_a_terminal_checks_the_server_it_was_told_about() {
    use support::Typed;
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let env = Env::new("");
    std::fs::write(env.path("ca.pem"), ca.pem()).unwrap();
    let port = srv.port().to_string();
    let typed = |prompt, line| Typed {
        prompt,
        line,
        secret: false,
    };
    let security = format!(
        "Port {port} is neither 465 nor 587: tls (TLS from the first byte) or starttls [tls]: "
    );
    let r = support::run_on_tty(
        &env,
        "--config site/account.toml init",
        &[
            typed("Send as (", "Ops <ops@example.org>"),
            typed("Provider: ", "other"),
            typed("SMTP server (host name): ", "localhost"),
            typed(
                "Port (465: TLS from the first byte, 587: STARTTLS) [465]: ",
                "70000",
            ),
            typed("Port (", &port),
            typed(&security, ""),
            typed("Login name [ops@example.org]: ", support::SMTP_USER),
            typed("ask (typed each time) [env]: ", "env"),
            typed(
                "Environment variable holding the password [SECUREMAIL_PASSWORD]: ",
                "SECUREMAIL_TEST_PASSWORD",
            ),
            typed("(empty: none): ", "missing.pem"),
            typed("(empty: none): ", "ca.pem"),
            typed("[Ops]: ", "Ops Desk"),
        ],
    );
    r.expect(0);
    let shown = r.stdout().replace('\r', "");
    for expected in [
        "  \"70000\" is not a port number (1 to 65535); try again\n",
        "  cannot use [smtp] ca_file ",
        "missing.pem: no such file or directory; try again\n",
        "wrote site/account.toml\n",
        &format!("checking localhost:{port} ...\n"),
        "auth:         accepted for user@example.org (235 Authentication succeeded)\n",
        "the check passed; next: securemail --config site/account.toml send --otp --to you@example.org\n",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
    }
    let text = std::fs::read_to_string(env.path("site/account.toml")).unwrap();
    let ca_path = env.path("ca.pem").canonicalize().unwrap();
    for expected in [
        "\nhost = \"localhost\"\n".to_string(),
        format!("\nport = {port}\n"),
        "\nsecurity = \"tls\"\n".into(),
        "\npassword_env = \"SECUREMAIL_TEST_PASSWORD\"\n".into(),
        format!("\nca_file = \"{}\"\n", ca_path.display()),
        "\nissuer = \"Ops Desk\"\n".into(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    env.run(&[
        "--config",
        "site/account.toml",
        "send",
        "--key",
        "--to",
        "lu@example.org",
    ])
    .expect(0);
    assert_eq!(srv.log().mails.len(), 1);
}

/// A check that fails keeps the file and says what to fix; the exit code is the check's.
#[test]
fn init_keeps_the_file_when_the_check_fails() {
    let trusted = Ca::new("trusted CA");
    let other = Ca::new("other CA");
    let srv = Server::start(Options::new(Mode::Tls, other.leaf(&["localhost"])));
    let env = Env::new("");
    std::fs::write(env.path("ca.pem"), trusted.pem()).unwrap();
    let port = srv.port().to_string();
    let r = env.run(&[
        "--config",
        "site/account.toml",
        "init",
        "--host",
        "localhost",
        "--port",
        &port,
        "--security",
        "tls",
        "--from",
        "ops@example.org",
        "--username",
        support::SMTP_USER,
        "--password-env",
        "SECUREMAIL_TEST_PASSWORD",
        "--ca-file",
        "../ca.pem",
    ]);
    r.expect(77);
    assert!(
        r.stdout().contains(
            "the check failed; site/account.toml is kept: fix what the error below says (in the \
             file or on the server), then run securemail --config site/account.toml check\n"
        ),
        "{}",
        r.stdout()
    );
    assert!(r.stderr().starts_with(
        "securemail: error: the certificate of localhost (CN=localhost, issued by CN=other CA) is not signed by a trusted CA\n"
    ), "{}", r.stderr());
    assert!(env.path("site/account.toml").exists());
    // The issuer defaults to the sender's domain when it has no display name.
    let text = std::fs::read_to_string(env.path("site/account.toml")).unwrap();
    assert!(text.contains("\nissuer = \"example.org\"\n"), "{text}");
}

/// Wrong flags are usage errors naming the flag and the reason (no terminal to ask on).
#[test]
fn init_refuses_wrong_flags_with_the_reason() {
    let env = Env::new("");
    for (args, message) in [
        (
            vec![],
            "securemail: error: --from is missing, and there is no terminal to ask on\nhint: pass --from, or run securemail init on a terminal to be asked\n",
        ),
        (
            vec![
                "--from",
                "a@example.org",
                "--host",
                "mx.example.org",
                "--port",
                "2525",
            ],
            "securemail: error: --security is missing, and there is no terminal to ask on\nhint: pass --security, or run securemail init on a terminal to be asked\n",
        ),
        (
            vec!["--from", "a@example.org", "--port", "2525"],
            "securemail: error: --port is for an SMTP server, but none was chosen\nhint: choose one with --host or --preset gmail|gmail-starttls|outlook|other (not none)\n",
        ),
        (
            vec![
                "--from",
                "a@example.org",
                "--preset",
                "none",
                "--host",
                "mx.example.org",
            ],
            "securemail: error: --host is for an SMTP server, but none was chosen\n",
        ),
        (
            vec!["--from", "a@example.org", "--issuer", "Ev\u{1b}[2Jil"],
            "securemail: error: --issuer: \"Ev\\u{1b}[2Jil\" contains a control character\n",
        ),
        (
            vec!["--from", "nobody"],
            "securemail: error: --from: \"nobody\" is not a mailbox (",
        ),
        (
            vec!["--from", "a@example.org", "--preset", "other"],
            "securemail: error: --host: the host name is empty (e.g. smtp.example.org)\n",
        ),
        (
            vec![
                "--from",
                "a@example.org",
                "--host",
                "mx.example.org",
                "--port",
                "465",
                "--security",
                "starttls",
            ],
            "securemail: error: --security starttls does not fit port 465, which is tls\n",
        ),
        (
            vec![
                "--from",
                "a@example.org",
                "--host",
                "mx.example.org",
                "--password-env",
                "NOT A NAME",
            ],
            "securemail: error: --password-env: \"NOT A NAME\" is not an environment variable name (letters, digits and _)\n",
        ),
        (
            vec![
                "--from",
                "a@example.org",
                "--host",
                "mx.example.org",
                "--ca-file",
                "nope.pem",
            ],
            "securemail: error: --ca-file: cannot use [smtp] ca_file site/nope.pem: no such file or directory\n",
        ),
    ] {
        let mut all = vec!["--config", "site/account.toml", "init"];
        all.extend(args);
        let r = env.run(&all);
        r.expect(64);
        assert!(r.stderr().starts_with(message), "{all:?}: {}", r.stderr());
        assert!(!env.path("site/account.toml").exists());
    }
}

#[test]
fn init_presets_write_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, host, port) in [
        ("gmail", "smtp.gmail.com", "465"),
        ("gmail-starttls", "smtp.gmail.com", "587"),
        ("outlook", "smtp.office365.com", "587"),
    ] {
        let cfg = format!("{preset}.toml");
        let out = std::process::Command::new(support::BIN)
            .current_dir(dir.path())
            // No password: init does not try to reach the provider.
            .env_remove("SECUREMAIL_PASSWORD")
            .args([
                "--config",
                &cfg,
                "init",
                "--preset",
                preset,
                "--from",
                "me@example.org",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join(&cfg)).unwrap();
        assert!(text.contains(&format!("\n[smtp]\n# The submission server's name, as on its TLS certificate.\nhost = \"{host}\"\n")), "{text}");
        assert!(text.contains(&format!("\nport = {port}\n")), "{text}");
        assert!(text.contains("\nusername = \"me@example.org\"\n"), "{text}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!(
                "not checked yet: export SECUREMAIL_PASSWORD=... (the SMTP password), then run \
                 securemail --config {cfg} check; then: securemail --config {cfg} send --otp --to \
                 you@example.org\n"
            )),
            "{said}"
        );
    }
}

#[test]
fn init_with_a_hostile_display_name_writes_a_config_that_sends() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        support::Run(
            std::process::Command::new(support::BIN)
                .current_dir(dir.path())
                .env_remove("SECUREMAIL_CONFIG")
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    // Quotes, `#` (a TOML comment outside a string), a backslash and non-ASCII in one name.
    let from = r##""Ops \"#1\" \\ Désk" <ops@example.org>"##;
    let r = run(&["--config", "site/account.toml", "init", "--from", from]);
    r.expect(0);
    use std::os::unix::fs::PermissionsExt;
    let mode = |rel: &str| {
        std::fs::metadata(dir.path().join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("site/account.toml"), 0o600);
    assert!(!dir.path().join("site/templates").exists());

    let r = run(&[
        "--config",
        "site/account.toml",
        "send",
        "--otp",
        "--to",
        "x@example.org",
    ]);
    r.expect(0);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("site/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read(&files[0]).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let sender = msg.from().and_then(|a| a.first()).unwrap();
    assert_eq!(sender.name(), Some(r##"Ops "#1" \ Désk"##));
    assert_eq!(sender.address(), Some("ops@example.org"));
}

#[test]
fn completions_and_man_page() {
    let env = Env::new("");
    let r = env.run(&["completions", "bash"]);
    r.expect(0);
    assert!(
        r.stdout().contains("_securemail()"),
        "{}",
        &r.stdout()[..200.min(r.stdout().len())]
    );
    assert!(r.stdout().contains("--to-list"));
    let r = env.run(&["completions", "zsh"]);
    r.expect(0);
    assert!(r.stdout().starts_with("#compdef securemail"));
    let r = env.run(&["man"]);
    r.expect(0);
    assert!(
        r.stdout().starts_with(".ie \\n(.g .ds Aq \\(aq") || r.stdout().contains(".TH securemail"),
        "{}",
        &r.stdout()[..200]
    );
    assert!(r.stdout().contains(".TH securemail"));
}

#[test]
fn the_send_log_has_one_line_per_mail_and_no_secret() {
    let ca = Ca::new("securemail test CA");
    let mut opts = Options::new(Mode::Tls, ca.leaf(&["localhost"]));
    opts.rcpt_always.insert("gone@example.org".into(), 550);
    let srv = Server::start(opts);
    let env = Env::new("");
    env.set_smtp(&srv, "tls", &ca);
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(
        env.path("config/account.toml"),
        format!("{cfg}\n[log]\nfile = \"../send.log\"\n"),
    )
    .unwrap();
    env.run(&[
        "send",
        "--key",
        "--to",
        "lee@example.org",
        "--to",
        "gone@example.org",
    ])
    .expect(69);
    let log = std::fs::read_to_string(env.path("send.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    let ok = lines
        .iter()
        .find(|l| l.contains("to=lee@example.org"))
        .unwrap();
    assert!(ok.contains(&format!(" host=localhost:{} tls=TLSv1.3 user=user@example.org from=admin@example.org to=lee@example.org kind=key size=", srv.port())), "{ok}");
    assert!(
        ok.ends_with(" smtpstatus=250 smtpmsg='2.0.0 queued' exitcode=EX_OK"),
        "{ok}"
    );
    let bad = lines
        .iter()
        .find(|l| l.contains("to=gone@example.org"))
        .unwrap();
    assert!(
        bad.contains("smtpstatus=550") && bad.ends_with("exitcode=EX_UNAVAILABLE"),
        "{bad}"
    );
    let key = decode_mail(&srv.log().mails[0].data).qr;
    assert!(!log.contains(&key) && !log.contains(&key.replace('-', "")));
    assert!(!log.contains(support::SMTP_PASS));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(env.path("send.log"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

fn dkim_env(srv: &Server, ca: &Ca, key_pem: &str) -> Env {
    let env = Env::new("");
    env.set_smtp(srv, "tls", ca);
    std::fs::write(env.path("config/dkim.pem"), key_pem).unwrap();
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    std::fs::write(
        env.path("config/account.toml"),
        format!("{cfg}\n[dkim]\ndomain = \"example.org\"\nselector = \"s2026\"\nprivate_key_file = \"dkim.pem\"\n"),
    )
    .unwrap();
    env
}

/// The TXT record `check` tells the operator to publish.
fn published_record(env: &Env) -> String {
    let r = env.run(&["--json", "check"]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(v["dkim"]["name"], "s2026._domainkey.example.org");
    v["dkim"]["txt"].as_str().unwrap().to_string()
}

#[test]
fn dkim_ed25519_signature_verifies_with_the_published_key() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let mut seed = [0u8; 32];
    rand_core_06::RngCore::fill_bytes(&mut rand_core_06::OsRng, &mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem =
        ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, rsa::pkcs8::LineEnding::LF)
            .unwrap();
    let env = dkim_env(&srv, &ca, pem.as_str());
    let record = published_record(&env);
    assert!(record.starts_with("v=DKIM1; k=ed25519; p="), "{record}");
    env.run(&["send", "--otp", "--to", "mia@example.org"])
        .expect(0);
    let data = srv.log().mails[0].data.clone();
    support::dkim::verify(&data, &record).unwrap();
    // A changed body no longer verifies (the check can fail).
    let tampered = String::from_utf8(data)
        .unwrap()
        .replacen("Hello", "Hallo", 1);
    assert!(support::dkim::verify(tampered.as_bytes(), &record).is_err());
}

#[test]
fn dkim_rsa_signature_verifies_with_the_published_key() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap();
    let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, rsa::pkcs8::LineEnding::LF).unwrap();
    let env = dkim_env(&srv, &ca, pem.as_str());
    let record = published_record(&env);
    assert!(record.starts_with("v=DKIM1; k=rsa; p="), "{record}");
    env.run(&["send", "--key", "--to", "ned@example.org"])
        .expect(0);
    let data = srv.log().mails[0].data.clone();
    support::dkim::verify(&data, &record).unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap();
    let other_pub =
        rsa::pkcs8::EncodePublicKey::to_public_key_der(&rsa::RsaPublicKey::from(&other)).unwrap();
    let wrong = format!(
        "v=DKIM1; k=rsa; p={}",
        support::base64(other_pub.as_bytes())
    );
    assert!(
        support::dkim::verify(&data, &wrong).is_err(),
        "another key must not verify"
    );
}

#[test]
fn a_bad_dkim_key_is_a_config_error_before_sending() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::Tls, &ca);
    let env = dkim_env(
        &srv,
        &ca,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let r = env.run(&["send", "--key", "--to", "ola@example.org"]);
    r.expect(78);
    assert!(
        r.stderr()
            .starts_with("securemail: error: cannot use the DKIM key config/dkim.pem: "),
        "{}",
        r.stderr()
    );
    assert_eq!(srv.log().connections, 0);
}

/// A command line that does not parse still ends stdout with the JSON error line when --json
/// was given (anywhere before `--`), and with nothing on stdout otherwise.
#[test]
fn usage_errors_with_json_print_the_error_line() {
    let env = Env::new("");
    for args in [
        &["--json", "send", "--bogus"][..],
        &["send", "--otp", "--json"][..],
        &["--json", "status", "--to"][..],
    ] {
        let r = env.run(args);
        r.expect(64);
        let line: serde_json::Value = serde_json::from_str(r.stdout().trim_end()).unwrap();
        assert_eq!(line["type"], "error", "{args:?}");
        assert_eq!(line["exit"], 64, "{args:?}");
        let message = line["message"].as_str().unwrap();
        assert!(
            r.stderr()
                .starts_with(&format!("securemail: error: {message}\n")),
            "{args:?}: {message:?} vs {}",
            r.stderr()
        );
        assert!(
            line["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{line}"
        );
    }
    let r = env.run(&["send", "--bogus"]);
    r.expect(64);
    assert_eq!(r.stdout(), "");
}
