//! What only the PostgreSQL store has: its configuration rules, the recorded schema and the
//! refusal of a newer one, one key across hosts, many hosts replying at once, and verified TLS to
//! the database. (The shared semantics run on both backends: see `on_postgres!` in `reply` and
//! `limits`.)

use crate::support::postgres::{self, Database};
use crate::support::{self, Env, decode_mail};

/// A second "host": its own directory and config, on the same database as the test's `Env`s.
fn host(db: &Database, key_file: &str) -> Env {
    let mut env = Env::new("");
    env.store = db.store_toml().replace(
        "key_file = \"../securemail.key\"",
        &format!("key_file = \"{key_file}\""),
    );
    env.env
        .push((postgres::PASSWORD_ENV.into(), postgres::PASSWORD.into()));
    env.write_config("");
    env
}

fn send_key(env: &Env, to: &str) -> String {
    env.run(&["send", "--key", "--to", to]).expect(0);
    decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr
}

#[test]
fn path_and_url_together_and_a_password_in_the_url_are_config_errors() {
    let env = Env::new("");
    env.write_config("");
    let cfg = std::fs::read_to_string(env.path("config/account.toml")).unwrap();
    let both = cfg.replace(
        "[store]\n",
        "[store]\nurl = \"postgres://securemail@db.example.org/securemail\"\n",
    );
    std::fs::write(env.path("config/account.toml"), &both).unwrap();
    let r = env.run(&["status"]);
    r.expect(78);
    assert!(
        r.stderr().contains("both path (SQLite) and url"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("account.toml:"),
        "file:line:col: {}",
        r.stderr()
    );

    let mut env = Env::new("");
    env.store = "url = \"postgres://securemail:hunter2@db.example.org/securemail\"\n".into();
    env.write_config("");
    let r = env.run(&["status"]);
    r.expect(78);
    assert!(r.stderr().contains("contains a password"), "{}", r.stderr());
    assert!(r.stderr().contains("password_env"), "hint: {}", r.stderr());
    assert!(
        !r.stderr().contains("hunter2"),
        "the password is never repeated"
    );

    env.store =
        "url = \"postgres://securemail@db.example.org/securemail?sslmode=disable\"\n".into();
    env.write_config("");
    let r = env.run(&["status"]);
    r.expect(78);
    assert!(r.stderr().contains("sslmode=disable"), "{}", r.stderr());
}

#[test]
fn the_schema_is_recorded_and_a_newer_one_refused_untouched() {
    postgres::run("schema", || {
        let db = postgres::current().unwrap();
        let env = Env::new("");
        send_key(&env, "ann@example.org");
        let mut admin = db.admin();
        let versions: Vec<i32> = admin
            .query(
                "SELECT version FROM securemail_schema ORDER BY version",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, [1, 2]);
        admin
            .execute(
                "INSERT INTO securemail_schema (version, name, applied) VALUES (99, 'future', 0)",
                &[],
            )
            .unwrap();
        let r = env.run(&["status"]);
        r.expect(78);
        assert!(
            r.stderr().contains("newer securemail (schema 99)"),
            "{}",
            r.stderr()
        );
        let r = env.run(&["send", "--key", "--to", "bob@example.org"]);
        r.expect(78);
        let rows: i64 = admin
            .query_one("SELECT count(*) FROM codes", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 1, "nothing written to a newer store");
    });
}

#[test]
fn hosts_share_one_key_and_a_host_with_another_key_is_refused() {
    postgres::run("key_across_hosts", || {
        let db = postgres::current().unwrap();
        let a = Env::new("");
        let key = send_key(&a, "cat@example.org");

        // A host without the key file: refused, and no key file made.
        let b = host(&db, "../own.key");
        let r = b.run(&["reply", "--to", "cat@example.org", "--code", &key]);
        r.expect(78);
        assert!(r.stderr().contains("is missing"), "{}", r.stderr());
        assert!(!b.path("own.key").exists());
        let r = b.run(&["send", "--key", "--to", "dan@example.org"]);
        r.expect(78);
        assert!(
            !b.path("own.key").exists(),
            "never a second key for a shared store"
        );

        // A host with a different key file: refused with both ids.
        std::fs::write(b.path("own.key"), [9u8; 32]).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(b.path("own.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let r = b.run(&["reply", "--to", "cat@example.org", "--code", &key]);
        r.expect(78);
        assert!(
            r.stderr().contains("is not the one of the store"),
            "{}",
            r.stderr()
        );

        // With a copy of the same key file, the other host verifies the first host's code.
        std::fs::copy(a.path("securemail.key"), b.path("own.key")).unwrap();
        b.run(&["reply", "--to", "cat@example.org", "--code", &key])
            .expect(0);
        a.run(&["reply", "--to", "cat@example.org", "--code", &key])
            .expect(1);
    });
}

#[test]
fn a_hundred_replies_from_two_hosts_accept_one_code_once() {
    postgres::run("hundred_replies", || {
        let db = postgres::current().unwrap();
        let a = Env::new("");
        let key = send_key(&a, "eve@example.org");
        let b = host(&db, "../securemail.key");
        std::fs::copy(a.path("securemail.key"), b.path("securemail.key")).unwrap();
        let children: Vec<_> = (0..100)
            .map(|n| {
                let env = if n % 2 == 0 { &a } else { &b };
                env.command(&["reply", "--to", "eve@example.org", "--code", &key])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let codes: Vec<i32> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        let accepted = codes.iter().filter(|&&c| c == 0).count();
        let refused = codes.iter().filter(|&&c| c == 1).count();
        assert_eq!((accepted, refused), (1, 99), "exit codes: {codes:?}");
    });
}

#[test]
fn tls_to_the_database_is_verified() {
    postgres::run("tls", || {
        let db = postgres::current().unwrap();
        let cluster = postgres::cluster().unwrap();
        let mut env = Env::new("");
        std::fs::write(env.path("config/db-ca.pem"), &cluster.ca_pem).unwrap();
        std::fs::write(
            env.path("config/other-ca.pem"),
            support::Ca::new("someone else").pem(),
        )
        .unwrap();
        env.store = db.tls_store_toml("db-ca.pem");
        env.write_config("");
        let key = send_key(&env, "fay@example.org");

        env.store = db.tls_store_toml("other-ca.pem");
        env.write_config("");
        let r = env.run(&["reply", "--to", "fay@example.org", "--code", &key]);
        r.expect(77);
        // Without ca_file the system roots do not know the test CA either.
        env.store = db
            .tls_store_toml("other-ca.pem")
            .replace("ca_file = \"other-ca.pem\"\n", "");
        env.write_config("");
        env.run(&["status"]).expect(77);
        assert!(
            r.stderr().contains("TLS connection to the store"),
            "{}",
            r.stderr()
        );
        let state: String = db
            .admin()
            .query_one("SELECT state FROM codes", &[])
            .unwrap()
            .get(0);
        assert_eq!(state, "pending", "an untrusted server was told nothing");
    });
}
