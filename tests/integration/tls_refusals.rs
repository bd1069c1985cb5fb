//! Servers that must not get a mail: no STARTTLS, untrusted, mismatched or expired certificates.

use crate::support::{self, Ca, Env, Mode, Options, Server, server};

fn assert_refused(srv: &Server, env: &Env, code: i32, first_line: &str) {
    let r = env.run(&["send", "--otp", "--to", "alice@example.org"]);
    r.expect(code);
    let err = r.stderr();
    assert_eq!(err.lines().next(), Some(first_line), "{err}");
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
    let log = srv.log();
    assert_eq!(log.mail_from_count(), 0, "no MAIL FROM reached the server");
    assert!(
        !log.commands.iter().any(|c| c.starts_with("AUTH")),
        "no credentials were sent"
    );
    assert!(log.mails.is_empty());
    // Nothing pending either: the failed send is recorded as failed, never verifiable.
    drop(log);
    let r = env.run(&["reply", "--to", "alice@example.org", "--code", "123456"]);
    r.expect(1);
    assert!(r.stderr().contains("no code was sent"), "{}", r.stderr());
}

#[test]
fn server_without_starttls_gets_nothing() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::NoStartTls, &ca);
    let env = Env::smtp(&srv, "starttls", &ca);
    assert_refused(
        &srv,
        &env,
        69,
        &format!(
            "securemail: error: localhost:{} does not offer STARTTLS; nothing was sent",
            srv.port()
        ),
    );
}

/// The refusal names the certificate the server presented and its issuer, and says which CA
/// certificate `ca_file` would need.
#[test]
fn untrusted_ca_gets_nothing_implicit_tls() {
    let trusted = Ca::new("trusted CA");
    let other = Ca::new("some other CA");
    let srv = Server::start(Options::new(Mode::Tls, other.leaf(&["localhost"])));
    let env = Env::smtp(&srv, "tls", &trusted);
    assert_refused(
        &srv,
        &env,
        77,
        "securemail: error: the certificate of localhost (CN=localhost, issued by CN=some other CA) \
         is not signed by a trusted CA",
    );
    assert_eq!(
        hint(&env),
        "hint: if CN=some other CA is your organisation's private CA, set [smtp] ca_file to its \
         PEM certificate; securemail never skips verification"
    );
}

#[test]
fn untrusted_ca_gets_nothing_starttls() {
    let trusted = Ca::new("trusted CA");
    let other = Ca::new("some other CA");
    let intermediate = other.intermediate("some intermediate CA");
    let srv = Server::start(Options::new(
        Mode::StartTls,
        intermediate.leaf(&["localhost"]),
    ));
    let env = Env::smtp(&srv, "starttls", &trusted);
    assert_refused(
        &srv,
        &env,
        77,
        "securemail: error: the certificate of localhost (CN=localhost, issued by \
         CN=some intermediate CA) is not signed by a trusted CA",
    );
}

/// A self-signed certificate is called so; and what the hint says (its own PEM as ca_file) works.
#[test]
fn self_signed_certificate_gets_nothing() {
    let trusted = Ca::new("trusted CA");
    let (cert, pem) = support::pki::self_signed(&["localhost"]);
    let srv = Server::start(Options::new(Mode::Tls, cert));
    let env = Env::smtp(&srv, "tls", &trusted);
    assert_refused(
        &srv,
        &env,
        77,
        "securemail: error: the certificate of localhost (CN=rcgen self signed cert) is \
         self-signed and not trusted",
    );
    assert_eq!(
        hint(&env),
        "hint: if this is your own server, set [smtp] ca_file to a PEM copy of its certificate, \
         taken from the server itself rather than from this connection; securemail never skips \
         verification"
    );
    std::fs::write(env.path("config/ca.pem"), pem).unwrap();
    env.run(&["check"]).expect(0);
}

/// A CA certificate served as the server's own (`openssl req -x509` without CA:FALSE) is refused
/// even when it is the configured ca_file, with a sentence instead of
/// `Other(OtherError(CaUsedAsEndEntity))`.
#[test]
fn a_ca_certificate_as_the_servers_own_gets_nothing() {
    let (cert, pem) = support::pki::self_signed_ca("mx.test", &["localhost"]);
    let srv = Server::start(Options::new(Mode::Tls, cert));
    let env = Env::smtp(&srv, "tls", &Ca::new("trusted CA"));
    let first = "securemail: error: the certificate of localhost (CN=mx.test, issued by CN=mx.test) \
                 is a CA certificate, which no server may present as its own";
    assert_refused(&srv, &env, 77, first);
    std::fs::write(env.path("config/ca.pem"), pem).unwrap();
    let r = env.run(&["check"]);
    r.expect(77);
    assert_eq!(
        r.stderr(),
        format!(
            "{first}\nhint: the server needs a certificate with basicConstraints CA:FALSE, signed \
             by a CA (then set [smtp] ca_file to that CA's PEM certificate) or self-signed (then \
             ca_file is that certificate); `openssl req -x509` makes CA certificates unless given \
             -addext basicConstraints=critical,CA:FALSE\n"
        )
    );
}

/// The hint line of a refused `check`.
fn hint(env: &Env) -> String {
    let r = env.run(&["check"]);
    r.expect(77);
    r.stderr().lines().nth(1).unwrap_or_default().to_string()
}

#[test]
fn wrong_hostname_gets_nothing() {
    let ca = Ca::new("securemail test CA");
    let srv = Server::start(Options::new(Mode::Tls, ca.leaf(&["mail.elsewhere.test"])));
    let env = Env::smtp(&srv, "tls", &ca);
    assert_refused(
        &srv,
        &env,
        77,
        "securemail: error: the certificate presented by localhost is not valid for that name \
         (it is for mail.elsewhere.test)",
    );
}

#[test]
fn expired_certificate_gets_nothing() {
    let ca = Ca::new("securemail test CA");
    let srv = Server::start(Options::new(
        Mode::StartTls,
        ca.expired_leaf(&["localhost"]),
    ));
    let env = Env::smtp(&srv, "starttls", &ca);
    assert_refused(
        &srv,
        &env,
        77,
        "securemail: error: the certificate of localhost has expired (on 2021-01-01 00:00:00 UTC)",
    );
}

#[test]
fn plaintext_server_on_a_tls_port_gets_nothing() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::StartTls, &ca);
    let env = Env::smtp(&srv, "tls", &ca);
    assert_refused(
        &srv,
        &env,
        77,
        &format!(
            "securemail: error: localhost:{} did not answer with TLS",
            srv.port()
        ),
    );
}

#[test]
fn connection_refused_is_temporary() {
    let ca = Ca::new("securemail test CA");
    let (socket, port) = support::refusing_port();
    let env = Env::new("");
    env.set_smtp_port(port, "tls", &ca);
    let r = env.run(&["send", "--otp", "--to", "alice@example.org"]);
    r.expect(75);
    let err = r.stderr();
    assert_eq!(
        err.lines().next(),
        Some(
            format!("securemail: error: cannot connect to localhost:{port}: Connection refused")
                .as_str()
        ),
        "{err}"
    );
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
    // With -v the cause behind the message is shown as well.
    let r = env.run(&["-v", "send", "--otp", "--to", "alice@example.org"]);
    r.expect(75);
    assert!(
        r.stderr()
            .contains("caused by: Connection refused (os error 111)\nhint:"),
        "{}",
        r.stderr()
    );
    drop(socket);
}

/// A listener that accepts connections and never says anything.
fn silent_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn a_server_that_never_greets_times_out_with_75() {
    let ca = Ca::new("securemail test CA");
    let (listener, port) = silent_listener();
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    for (security, stage) in [("starttls", "the greeting"), ("tls", "the TLS handshake")] {
        env.write_config(&format!(
            "[smtp]\nhost = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\nca_file = \"ca.pem\"\ntimeout_secs = 1\n"
        ));
        let started = std::time::Instant::now();
        let r = env.run(&["send", "--key", "--to", "alice@example.org"]);
        r.expect(75);
        assert_eq!(
            r.stderr().lines().next().unwrap(),
            format!("securemail: error: the SMTP server did not answer within 1s during {stage}")
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    drop(listener);
}

#[test]
fn verbose_shows_the_dialogue_but_no_secret() {
    let ca = Ca::new("securemail test CA");
    let srv = server(Mode::StartTls, &ca);
    let env = Env::smtp(&srv, "starttls", &ca);
    let r = env.run(&["-v", "send", "--otp", "--to", "alice@example.org"]);
    r.expect(0);
    let err = r.stderr();
    for expected in [
        "smtp: > STARTTLS",
        "smtp: < 220",
        "smtp: > AUTH PLAIN <redacted>",
        "smtp: < 235",
        "smtp: > [message: ",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
    let mail = crate::support::decode_mail(&srv.log().mails[0].data);
    let secret_b32 = crate::support::secret_param(&mail.qr);
    let auth_blob = srv.log().auth_blob();
    let blob = auth_blob.as_str();
    for secret in [
        crate::support::SMTP_PASS,
        blob,
        &secret_b32,
        &secret_b32[..8],
    ] {
        assert!(!err.contains(secret), "{secret:?} leaked into -v output");
        assert!(
            !r.stdout().contains(secret),
            "{secret:?} leaked into stdout"
        );
    }
}
