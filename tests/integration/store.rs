//! The store as a whole: `store migrate` (a SQLite store copied into PostgreSQL, whose codes
//! then verify there), its refusals (a database already holding records, one of another key,
//! bad flags), and `check`'s report of the store on both backends.

use serde_json::{Value, json};

use crate::support::postgres::{self, Database};
use crate::support::{self, Ca, Env, Mode, decode_mail};

fn send_key(env: &Env, to: &str) -> String {
    env.run(&["send", "--key", "--to", to]).expect(0);
    decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr
}

fn enrol(env: &Env, to: &str) -> Vec<u8> {
    env.run(&["send", "--otp", "--to", to]).expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    support::otpauth_secret(&mail.qr)
}

fn reply(env: &Env, to: &str, code: &str) -> support::Run {
    env.run(&["reply", "--to", to, "--code", code])
}

/// A SQLite `Env` (whose commands also know the test database's password) and a fresh, empty
/// PostgreSQL database; `None` when PostgreSQL is skipped.
fn sqlite_and_database(test: &str) -> Option<(Env, Database)> {
    let db = postgres::fresh_database(test)?;
    let mut env = Env::new("");
    env.env
        .push((postgres::PASSWORD_ENV.into(), postgres::PASSWORD.into()));
    Some((env, db))
}

/// `store migrate --to DB --password-env …` and `extra` flags.
fn migrate(env: &Env, db: &Database, extra: &[&str]) -> support::Run {
    let url = db.url();
    let mut args = vec![
        "store",
        "migrate",
        "--to",
        &url,
        "--password-env",
        postgres::PASSWORD_ENV,
    ];
    args.extend(extra);
    env.run(&args)
}

/// The key id the store records, from `status --json`.
fn key_id(env: &Env) -> String {
    let r = env.run(&["--json", "status"]);
    r.expect(0);
    let first: Value = serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    first["key_id"].as_str().unwrap().to_string()
}

/// One row of `codes`, every column, as either database gives it.
#[derive(Debug, PartialEq)]
struct Code {
    id: i64,
    recipient: String,
    kind: String,
    created: i64,
    expires: i64,
    attempts: i64,
    state: String,
    sealed: Vec<u8>,
    last_step: Option<i64>,
    message_id: Option<String>,
    otp_algorithm: Option<String>,
    otp_digits: Option<i64>,
    otp_period: Option<i64>,
    next_attempt: Option<i64>,
    updated: i64,
}

/// Every row of the three tables: codes, attempts (id, recipient, at), meta (name, value).
type Tables = (Vec<Code>, Vec<(i64, String, i64)>, Vec<(String, String)>);

const CODES: &str = "SELECT id, recipient, kind, created, expires, attempts, state, sealed, \
    last_step, message_id, otp_algorithm, otp_digits, otp_period, next_attempt, updated \
    FROM codes ORDER BY id";

/// Every table of the SQLite store: codes, attempts, meta.
fn sqlite_tables(env: &Env) -> Tables {
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    let codes = db
        .prepare(CODES)
        .unwrap()
        .query_map([], |r| {
            Ok(Code {
                id: r.get(0)?,
                recipient: r.get(1)?,
                kind: r.get(2)?,
                created: r.get(3)?,
                expires: r.get(4)?,
                attempts: r.get(5)?,
                state: r.get(6)?,
                sealed: r.get(7)?,
                last_step: r.get(8)?,
                message_id: r.get(9)?,
                otp_algorithm: r.get(10)?,
                otp_digits: r.get(11)?,
                otp_period: r.get(12)?,
                next_attempt: r.get(13)?,
                updated: r.get(14)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let attempts = db
        .prepare("SELECT id, recipient, at FROM attempts ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let meta = db
        .prepare("SELECT name, value FROM meta ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (codes, attempts, meta)
}

/// The same tables in the PostgreSQL database.
fn postgres_tables(db: &Database) -> Tables {
    let mut admin = db.admin();
    let codes = admin
        .query(CODES, &[])
        .unwrap()
        .iter()
        .map(|r| Code {
            id: r.get(0),
            recipient: r.get(1),
            kind: r.get(2),
            created: r.get(3),
            expires: r.get(4),
            attempts: i64::from(r.get::<_, i32>(5)),
            state: r.get(6),
            sealed: r.get(7),
            last_step: r.get(8),
            message_id: r.get(9),
            otp_algorithm: r.get(10),
            otp_digits: r.get::<_, Option<i32>>(11).map(i64::from),
            otp_period: r.get(12),
            next_attempt: r.get(13),
            updated: r.get(14),
        })
        .collect();
    let attempts = admin
        .query("SELECT id, recipient, at FROM attempts ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let meta = admin
        .query("SELECT name, value FROM meta ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    (codes, attempts, meta)
}

fn count(db: &Database, table: &str) -> i64 {
    db.admin()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

#[test]
fn a_migrated_store_verifies_its_codes_on_postgres() {
    let Some((mut env, db)) = sqlite_and_database("migrate") else {
        return;
    };
    let ann = send_key(&env, "ann@example.org");
    let bob = enrol(&env, "bob@example.org");
    let now = support::now();
    reply(&env, "bob@example.org", &support::totp(&bob, now)).expect(0);
    send_key(&env, "cat@example.org");
    reply(&env, "cat@example.org", "0000-0000-0000-0").expect(1);
    let id = key_id(&env);
    let before = sqlite_tables(&env);
    assert_eq!((before.0.len(), before.1.len()), (3, 1));

    let r = migrate(&env, &db, &[]);
    r.expect(0);
    let dir = env.dir.path().display();
    let url = db.url();
    assert_eq!(
        r.stdout(),
        format!(
            "migrated {dir}/securemail.db to {url}: 3 codes and 1 wrong attempt, 1 meta row; \
             counts verified\n\
             key:  id {id}, the key file {dir}/securemail.key: copy it (0600) to every host \
             that uses the database\n\
             next: in the configuration, replace [store] path with url = \"{url}\", password_env \
             or password_command, and key_file = \"{dir}/securemail.key\"\n"
        )
    );
    assert_eq!(r.stderr(), "");
    // Every column of every row, the sealed secrets byte for byte; the SQLite store unchanged.
    assert_eq!(postgres_tables(&db), before);
    assert_eq!(sqlite_tables(&env), before);
    assert_eq!(before.2, [("key_id".to_string(), id.clone())]);

    // Pointed at PostgreSQL, with the same key file, the codes verify as they would have.
    env.store = db.store_toml();
    env.write_config("");
    assert_eq!(key_id(&env), id);
    reply(&env, "ann@example.org", &ann).expect(0);
    reply(&env, "ann@example.org", &ann).expect(1);
    // Bob's code, used before the move, is still a replay (the copied last_step).
    reply(&env, "bob@example.org", &support::totp(&bob, now)).expect(1);
    // That counted as a wrong code: let its one-second throttle pass, as the clock would.
    db.let_throttle_pass();
    reply(&env, "bob@example.org", &support::totp(&bob, now + 30)).expect(0);
    let r = env.run(&["--json", "status", "--to", "cat@example.org"]);
    let cat: Value = serde_json::from_str(r.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(cat["attempts"], 1, "the wrong attempt came along");

    // New rows get ids after the copied ones.
    send_key(&env, "dan@example.org");
    let dan: i64 = db
        .admin()
        .query_one(
            "SELECT id FROM codes WHERE recipient = 'dan@example.org'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dan, 4);
    reply(&env, "dan@example.org", "0000-0000-0000-0").expect(1);
    // Cat's copied wrong code, then Bob's replay and Dan's wrong code on PostgreSQL.
    let attempts: Vec<(i64, String)> = db
        .admin()
        .query("SELECT id, recipient FROM attempts ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, "cat@example.org".to_string()),
            (2, "bob@example.org".to_string()),
            (3, "dan@example.org".to_string()),
        ]
    );
}

#[test]
fn a_second_migration_needs_force_and_force_replaces() {
    let Some((env, db)) = sqlite_and_database("migrate_twice") else {
        return;
    };
    send_key(&env, "eve@example.org");
    migrate(&env, &db, &[]).expect(0);
    let fay = send_key(&env, "fay@example.org");

    let r = migrate(&env, &db, &[]);
    r.expect(73);
    assert_eq!(
        r.stderr(),
        format!(
            "securemail: error: the database {} already holds records (1 code and 0 wrong \
             attempts): a store was migrated or used there before\n\
             hint: to replace what it holds with this store's records, run the same command \
             with --force (its records are deleted); or migrate into a new, empty database\n",
            db.url()
        )
    );
    assert_eq!(r.stdout(), "");
    assert_eq!(count(&db, "codes"), 1, "nothing copied");

    let r = migrate(&env, &db, &["--force", "--json"]);
    r.expect(0);
    let v: Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(
        v,
        json!({
            "type": "migrated",
            "from": env.path("securemail.db"),
            "to": db.url(),
            "key_id": key_id(&env),
            "key_file": env.path("securemail.key"),
            "codes": 2,
            "attempts": 0,
            "meta": 1,
            "replaced": {"codes": 1, "attempts": 0},
        })
    );
    assert_eq!(postgres_tables(&db), sqlite_tables(&env));
    let mut env = env;
    env.store = db.store_toml();
    env.write_config("");
    reply(&env, "fay@example.org", &fay).expect(0);
}

#[test]
fn a_database_of_another_key_is_refused_even_with_force() {
    let Some((first, db)) = sqlite_and_database("migrate_other_key") else {
        return;
    };
    send_key(&first, "gus@example.org");
    migrate(&first, &db, &[]).expect(0);
    let recorded = key_id(&first);

    let mut other = Env::new("");
    other
        .env
        .push((postgres::PASSWORD_ENV.into(), postgres::PASSWORD.into()));
    send_key(&other, "hal@example.org");
    let found = key_id(&other);
    assert_ne!(found, recorded);
    for flags in [&[][..], &["--force"][..]] {
        let r = migrate(&other, &db, flags);
        r.expect(78);
        assert_eq!(
            r.stderr(),
            format!(
                "securemail: error: the database {} belongs to another store: it records key id \
                 {recorded}, and the key file securemail.key of securemail.db has key id \
                 {found}\n\
                 hint: migrate into a new, empty database: the records there need the key file \
                 with id {recorded}, and --force does not change that\n",
                db.url()
            )
        );
    }
    let (codes, _, meta) = postgres_tables(&db);
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].recipient, "gus@example.org");
    assert_eq!(meta, [("key_id".to_string(), recorded)]);
}

/// Refusals that come before any database is opened: the URL's rules are the config's, the
/// source must be a SQLite store that exists.
#[test]
fn bad_targets_and_missing_sources_are_refused_before_connecting() {
    let env = Env::new("");
    let run = |to: &str, extra: &[&str]| {
        let mut args = vec!["store", "migrate", "--to", to];
        args.extend(extra);
        env.run(&args)
    };
    let r = run(
        "postgres://securemail:hunter2@db.example.org/securemail",
        &[],
    );
    r.expect(64);
    assert_eq!(
        r.stderr(),
        "securemail: error: --to contains a password\n\
         hint: remove it from the URL (a command line is visible to every user of the machine) \
         and pass --password-env VAR or --password-command CMD instead\n"
    );
    let r = run(
        "postgres://securemail@db.example.org/securemail?sslmode=disable",
        &[],
    );
    r.expect(64);
    assert_eq!(
        r.stderr(),
        "securemail: error: --to turns TLS off (sslmode=disable) to the remote host in \
         \"postgres://securemail@db.example.org/securemail?sslmode=disable\"\n\
         hint: securemail talks to a database on another machine over verified TLS only; \
         remove sslmode=disable\n"
    );
    let r = run("mysql://securemail@db.example.org/securemail", &[]);
    r.expect(64);
    assert_eq!(
        r.stderr(),
        "securemail: error: --to \"mysql://securemail@db.example.org/securemail\" is not a \
         postgres:// URL\n\
         hint: write --to postgres://securemail@db.example.org:5432/securemail\n"
    );
    let r = run(
        "postgres://securemail@127.0.0.1/securemail",
        &["--ca-file", "ca.pem"],
    );
    r.expect(64);
    assert_eq!(
        r.stderr(),
        "securemail: error: --ca-file is given but the connection to \
         postgres://securemail@127.0.0.1/securemail does not use TLS\n\
         hint: add ?sslmode=require to the URL to use TLS to a local server, or leave out \
         --ca-file\n"
    );
    let r = run(
        "postgres://securemail@127.0.0.1/securemail",
        &["--password-env", "A=B"],
    );
    r.expect(64);
    assert!(
        r.stderr().starts_with(
            "securemail: error: --password-env \"A=B\" is not an environment variable name\n"
        ),
        "{}",
        r.stderr()
    );

    // Nothing was ever issued: nothing to copy, and nothing created.
    let before = env.listing();
    let r = run("postgres://securemail@127.0.0.1/securemail", &[]);
    r.expect(66);
    assert_eq!(
        r.stderr(),
        "securemail: error: there is no SQLite store at securemail.db: nothing to migrate\n\
         hint: check [store] path in the configuration (--config PATH names another); a store \
         that never issued a code has nothing to copy: set [store] url directly\n"
    );
    assert_eq!(env.listing(), before);

    // The password source is the flag's, and its errors say so (before any connection).
    env.run(&["send", "--key", "--to", "kim@example.org"])
        .expect(0);
    let r = run(
        "postgres://securemail@127.0.0.1:1/securemail",
        &["--password-env", "SECUREMAIL_TEST_UNSET"],
    );
    r.expect(78);
    assert_eq!(
        r.stderr(),
        "securemail: error: cannot get the password of the store \
         postgres://securemail@127.0.0.1:1/securemail: the environment variable \
         SECUREMAIL_TEST_UNSET (from --password-env) is not set\n\
         hint: export SECUREMAIL_TEST_UNSET=... (for Gmail, an app password) before running \
         securemail\n"
    );
    // A server that is not there: what to check is named by the flags.
    let (_socket, port) = support::refusing_port();
    let r = run(
        &format!("postgres://securemail@127.0.0.1:{port}/securemail"),
        &[],
    );
    r.expect(75);
    assert!(
        r.stderr().ends_with(
            "\nhint: check the URL of --to, that the database server runs and that this host may \
             connect to it\n"
        ),
        "{}",
        r.stderr()
    );

    // A configuration whose store is already PostgreSQL has no SQLite store to copy.
    let mut pg = Env::new("");
    pg.store = "url = \"postgres://securemail@127.0.0.1:1/securemail\"\n".into();
    pg.write_config("");
    let r = pg.run(&[
        "store",
        "migrate",
        "--to",
        "postgres://securemail@127.0.0.1/other",
    ]);
    r.expect(78);
    assert_eq!(
        r.stderr(),
        format!(
            "securemail: error: the store in config/account.toml is already PostgreSQL \
             (postgres://securemail@127.0.0.1:1/securemail): there is no SQLite store to \
             migrate\n\
             hint: run it with the configuration of the host whose store is SQLite ([store] \
             path); --config PATH names another\n"
        )
    );
}

/// The `store:` lines of `check`'s report, for people.
fn store_lines(r: &support::Run) -> String {
    let out = r.stdout();
    out[out.find("\nstore:").expect("a store section") + 1..].to_string()
}

/// `check --json`'s store object.
fn store_json(env: &Env) -> (i32, Value) {
    let r = env.run(&["--json", "check"]);
    let v: Value = serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    (r.code(), v["store"].clone())
}

#[test]
fn check_reports_a_sqlite_store_and_creates_nothing() {
    let ca = Ca::new("securemail test CA");
    let srv = support::server(Mode::Tls, &ca);
    let env = Env::smtp(&srv, "tls", &ca);
    let before = env.listing();
    let r = env.run(&["check"]);
    r.expect(0);
    assert_eq!(
        store_lines(&r),
        format!(
            "store:        securemail.db (SQLite)\n\
             \x20 state:      not created yet (the first send creates it)\n"
        )
    );
    let (code, store) = store_json(&env);
    assert_eq!(code, 0);
    assert_eq!(
        store,
        json!({
            "backend": "sqlite",
            "path": "securemail.db",
            "schema": null,
            "key_id": null,
            "key_file": "securemail.key",
            "key_file_id": null,
            "key_matches": null,
        })
    );
    assert_eq!(env.listing(), before, "check created nothing");

    env.run(&["send", "--key", "--to", "ida@example.org"])
        .expect(0);
    let id = key_id(&env);
    let before = env.listing();
    let r = env.run(&["check"]);
    r.expect(0);
    assert_eq!(
        store_lines(&r),
        format!(
            "store:        securemail.db (SQLite)\n\
             \x20 schema:     3\n\
             \x20 key id:     {id}, the key file's (securemail.key)\n"
        )
    );
    let (_, store) = store_json(&env);
    assert_eq!(
        store,
        json!({
            "backend": "sqlite",
            "path": "securemail.db",
            "schema": 3,
            "key_id": id,
            "key_file": "securemail.key",
            "key_file_id": id,
            "key_matches": true,
        })
    );
    assert_eq!(env.listing(), before, "check wrote nothing");

    // Another key file: the same refusal as any command's, after the report.
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(env.path("securemail.key"), [7u8; 32]).unwrap();
    std::fs::set_permissions(
        env.path("securemail.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let r = env.run(&["check"]);
    r.expect(78);
    assert!(
        r.stderr()
            .starts_with("securemail: error: the key file securemail.key (key id "),
        "{}",
        r.stderr()
    );
    assert!(
        store_lines(&r).ends_with(&format!(
            "\n  key id:     {id}, but the key file securemail.key has {}\n",
            &r.stderr()[r.stderr().find("(key id ").unwrap() + 8..][..16]
        )),
        "{}",
        r.stdout()
    );
    let (code, store) = store_json(&env);
    assert_eq!(code, 78);
    assert_eq!(store["key_matches"], false);
}

#[test]
fn check_reports_a_postgres_store_and_creates_nothing() {
    postgres::run("check_store", || {
        let db = postgres::current().unwrap();
        let ca = Ca::new("securemail test CA");
        let srv = support::server(Mode::Tls, &ca);
        let env = Env::smtp(&srv, "tls", &ca);
        let url = db.url();
        let before = env.listing();
        let r = env.run(&["check"]);
        r.expect(0);
        assert_eq!(
            store_lines(&r),
            format!(
                "store:        {url} (PostgreSQL)\n\
                 \x20 reachable:  yes\n\
                 \x20 tls:        no (a server on this machine)\n\
                 \x20 schema:     none yet (the first send creates the tables)\n\
                 \x20 key id:     none yet (the first send creates securemail.key)\n"
            )
        );
        assert_eq!(env.listing(), before, "no key file");
        let tables: i64 = db
            .admin()
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "no table created");

        env.run(&["send", "--key", "--to", "jon@example.org"])
            .expect(0);
        let id = key_id(&env);
        let r = env.run(&["check"]);
        r.expect(0);
        assert_eq!(
            store_lines(&r),
            format!(
                "store:        {url} (PostgreSQL)\n\
                 \x20 reachable:  yes\n\
                 \x20 tls:        no (a server on this machine)\n\
                 \x20 schema:     2\n\
                 \x20 key id:     {id}, the key file's (securemail.key)\n"
            )
        );
        let (_, store) = store_json(&env);
        assert_eq!(
            store,
            json!({
                "backend": "postgres",
                "url": url,
                "reachable": true,
                "tls": false,
                "schema": 2,
                "key_id": id,
                "key_file": "securemail.key",
                "key_file_id": id,
                "key_matches": true,
            })
        );

        // A server that does not answer: reachable no, exit 75 as for any command.
        let mut down = Env::smtp(&srv, "tls", &ca);
        let (_socket, port) = support::refusing_port();
        down.store = db
            .store_toml()
            .replace(&format!(":{}/", db.port), &format!(":{port}/"));
        down.set_smtp(&srv, "tls", &ca);
        let r = down.run(&["check"]);
        r.expect(75);
        assert!(
            store_lines(&r).ends_with(" (PostgreSQL)\n  reachable:  no\n"),
            "{}",
            r.stdout()
        );
        assert!(
            r.stderr()
                .starts_with("securemail: error: cannot reach the store "),
            "{}",
            r.stderr()
        );
    });
}

#[test]
fn check_verifies_tls_to_the_database() {
    postgres::run("check_tls", || {
        let db = postgres::current().unwrap();
        let cluster = postgres::cluster().unwrap();
        let ca = Ca::new("securemail test CA");
        let srv = support::server(Mode::Tls, &ca);
        let mut env = Env::new("");
        std::fs::write(env.path("config/db-ca.pem"), &cluster.ca_pem).unwrap();
        std::fs::write(
            env.path("config/other-ca.pem"),
            Ca::new("someone else").pem(),
        )
        .unwrap();
        env.store = db.tls_store_toml("db-ca.pem");
        env.set_smtp(&srv, "tls", &ca);
        let r = env.run(&["check"]);
        r.expect(0);
        assert!(
            store_lines(&r)
                .contains("\n  reachable:  yes\n  tls:        yes (certificate verified)\n"),
            "{}",
            r.stdout()
        );
        let (_, store) = store_json(&env);
        assert_eq!(
            (store["tls"].clone(), store["reachable"].clone()),
            (json!(true), json!(true))
        );

        env.store = db.tls_store_toml("other-ca.pem");
        env.set_smtp(&srv, "tls", &ca);
        let r = env.run(&["check"]);
        r.expect(77);
        assert!(
            r.stderr().starts_with(&format!(
                "securemail: error: the TLS connection to the store postgres://securemail@localhost:{}/{}?sslmode=require failed: ",
                db.port, db.name
            )),
            "{}",
            r.stderr()
        );
        let (code, store) = store_json(&env);
        assert_eq!(code, 77);
        assert!(
            store["error"]
                .as_str()
                .unwrap()
                .starts_with("the TLS connection"),
            "{store}"
        );
        assert_eq!(store["tls"], Value::Null, "nothing was learnt over it");
    });
}
