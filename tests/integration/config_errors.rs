//! Configuration mistakes: exit 78, file:line:column, and a hint.

use crate::support::Env;

#[test]
fn bad_toml_names_line_and_column() {
    let env = Env::new("");
    std::fs::write(
        env.path("config/account.toml"),
        "[sender]\nfrom = \"a@b.org\"\n[otp\ndigits = 6\n",
    )
    .unwrap();
    let r = env.run(&["send", "--key", "--to", "x@example.org"]);
    r.expect(78);
    let err = r.stderr();
    assert!(
        err.starts_with("securemail: error: config/account.toml:3:"),
        "{err}"
    );
    assert!(err.contains("invalid TOML"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
}

#[test]
fn unknown_key_exact_stderr() {
    let env = Env::new("[smtp]\nhots = \"smtp.example.org\"\n");
    let r = env.run(&["send", "--otp", "--to", "x@example.org"]);
    r.expect(78);
    assert_eq!(
        r.stderr(),
        "securemail: error: config/account.toml:17:1: unknown key `hots` in [smtp]\n\
         hint: the keys [smtp] accepts are host, port, security, username, password_env, \
         password_command, ca_file, timeout_secs, hello_name, connections, \
         max_per_minute, retries\n"
    );
}

#[test]
fn unknown_table_is_named() {
    let env = Env::new("[smpt]\nhost = \"x\"\n");
    let r = env.run(&["send", "--otp", "--to", "x@example.org"]);
    r.expect(78);
    assert!(
        r.stderr().contains("unknown key `smpt` in the top level"),
        "{}",
        r.stderr()
    );
}

#[test]
fn missing_from_exact_stderr() {
    let env = Env::new("");
    std::fs::write(
        env.path("config/account.toml"),
        "[otp]\nissuer = \"Example\"\n",
    )
    .unwrap();
    let r = env.run(&["reply", "--to", "x@example.org", "--code", "123456"]);
    r.expect(78);
    assert_eq!(
        r.stderr(),
        "securemail: error: config/account.toml: [sender] from is missing\n\
         hint: add a [sender] table with from = \"Your Name <you@example.org>\"\n"
    );
}

#[test]
fn port_security_mismatch_exact_stderr() {
    let env = Env::new("[smtp]\nhost = \"smtp.example.org\"\nport = 587\nsecurity = \"tls\"\n");
    let r = env.run(&["send", "--otp", "--to", "x@example.org"]);
    r.expect(78);
    assert_eq!(
        r.stderr(),
        "securemail: error: config/account.toml:18:8: [smtp] port = 587 with security = \"tls\": \
         port 587 expects STARTTLS\n\
         hint: use security = \"starttls\" with port 587, or port = 465 with security = \"tls\"\n"
    );
}

#[test]
fn nonstandard_port_without_security() {
    let env = Env::new("[smtp]\nhost = \"smtp.example.org\"\nport = 2525\n");
    let r = env.run(&["send", "--otp", "--to", "x@example.org"]);
    r.expect(78);
    assert!(r.stderr().starts_with("securemail: error: config/account.toml:18:8: [smtp] port = 2525 needs an explicit security setting\nhint: "), "{}", r.stderr());
}

#[test]
fn missing_config_file() {
    let env = Env::new("");
    let r = env.run(&[
        "--config",
        "nowhere.toml",
        "send",
        "--otp",
        "--to",
        "x@example.org",
    ]);
    r.expect(78);
    assert!(
        r.stderr().starts_with("securemail: error: nowhere.toml: cannot read the configuration file: no such file or directory\nhint: "),
        "{}",
        r.stderr()
    );
}

#[test]
fn config_errors_send_nothing_and_create_nothing() {
    let env = Env::new("[smtp]\nhost = \"smtp.example.org\"\nport = 99999\n");
    env.run(&["send", "--otp", "--to", "x@example.org"])
        .expect(78);
    assert!(!env.path("securemail.db").exists());
    assert!(env.outbox().is_empty());
}

#[test]
fn usage_errors_exit_64() {
    let env = Env::new("");
    let r = env.run(&["send", "--to", "x@example.org"]);
    r.expect(64);
    assert!(
        r.stderr().starts_with("securemail: error: "),
        "{}",
        r.stderr()
    );
    // Missing --to with stdin not a terminal: no prompt, a usage error.
    let r = env.run(&["send", "--key"]);
    r.expect(64);
    assert_eq!(
        r.stderr(),
        "securemail: error: --to is missing\nhint: pass --to, or run securemail on a terminal to be asked\n"
    );
}
