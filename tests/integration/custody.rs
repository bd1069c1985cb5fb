//! The store's key custody, files opened safely, and a Maildir that loses no reply.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::support::{self, Env, decode_mail};

fn send_key(env: &Env, to: &str) -> String {
    env.run(&["send", "--key", "--resend", "--to", to])
        .expect(0);
    decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap()).qr
}

/// Replaces `[store] path` in the config with `store`, adding `extra` to the table.
fn set_store(env: &Env, store: &str, extra: &str) {
    let cfg = std::fs::read_to_string(env.path("config/account.toml"))
        .unwrap()
        .replace(
            "path = \"../securemail.db\"\n",
            &format!("path = \"{store}\"\n{extra}"),
        );
    std::fs::write(env.path("config/account.toml"), cfg).unwrap();
}

#[track_caller]
fn custody_error(r: &support::Run, what: &str) {
    r.expect(78);
    let err = r.stderr();
    assert!(
        err.starts_with(&format!("securemail: error: {what}")),
        "{err}"
    );
    assert!(
        err.contains("securemail.db") && err.contains("securemail.key"),
        "{err}"
    );
    assert!(err.contains("\nhint: restore "), "{err}");
    assert!(err.contains("move ") && err.contains(" aside"), "{err}");
}

#[test]
fn a_deleted_key_file_is_an_error_and_nothing_is_created() {
    let env = Env::new("");
    let key = send_key(&env, "a@example.org");
    std::fs::remove_file(env.path("securemail.key")).unwrap();
    let before = env.listing();

    let missing = "the key file ";
    custody_error(&env.run(&["status"]), missing);
    assert!(
        env.run(&["status"])
            .stderr()
            .contains(" is missing (the store's key id is "),
    );
    custody_error(
        &env.run(&["reply", "--to", "a@example.org", "--code", &key]),
        missing,
    );
    custody_error(&env.run(&["revoke", "--to", "a@example.org"]), missing);
    // Not even a send may start over with a new key, nor a dry run pretend all is well.
    custody_error(
        &env.run(&["send", "--key", "--resend", "--to", "b@example.org"]),
        missing,
    );
    custody_error(
        &env.run(&["send", "--key", "--dry-run", "--to", "b@example.org"]),
        missing,
    );
    let after: Vec<_> = env
        .listing()
        .into_iter()
        .filter(|(p, _)| p != "securemail.lock")
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| p != "securemail.lock")
        .collect();
    assert_eq!(before, after, "no file created or changed");
}

#[test]
fn another_stores_key_file_is_an_error() {
    let env = Env::new("");
    let key = send_key(&env, "a@example.org");
    let other = Env::new("");
    send_key(&other, "a@example.org");
    let ours = std::fs::read(env.path("securemail.key")).unwrap();
    std::fs::copy(other.path("securemail.key"), env.path("securemail.key")).unwrap();
    let r = env.run(&["status"]);
    custody_error(&r, "the key file ");
    assert!(
        r.stderr().contains("is not the one of the store"),
        "{}",
        r.stderr()
    );
    custody_error(
        &env.run(&["reply", "--to", "a@example.org", "--code", &key]),
        "the key file ",
    );
    // The right one back: the code was not counted against.
    std::fs::write(env.path("securemail.key"), ours).unwrap();
    env.run(&["reply", "--to", "a@example.org", "--code", &key])
        .expect(0);
}

#[test]
fn status_shows_the_key_id() {
    let env = Env::new("");
    send_key(&env, "a@example.org");
    let r = env.run(&["--json", "status"]);
    r.expect(0);
    let first: serde_json::Value =
        serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "store");
    let id = first["key_id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let human = env.run(&["status"]).stdout();
    assert!(
        human
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!("(key id {id})")),
        "{human}"
    );
    // Another store has another key, so another id.
    let other = Env::new("");
    send_key(&other, "a@example.org");
    let r = other.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
    assert_ne!(v["key_id"], first["key_id"]);
}

#[test]
fn read_only_commands_on_a_fresh_directory_create_nothing() {
    let env = Env::new("");
    let before = env.listing();
    let r = env.run(&["status"]);
    r.expect(0);
    assert!(
        r.stdout().ends_with("no codes issued yet\n"),
        "{}",
        r.stdout()
    );
    let r = env.run(&["--json", "status"]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(v["type"], "store");
    assert!(v["key_id"].is_null());
    assert_eq!(env.listing(), before, "status created nothing");
    // Attempts on codes are security events: the audit log (and only it) records them.
    let audit = "securemail-audit.log";
    let without_audit = || -> Vec<(String, u64)> {
        env.listing()
            .into_iter()
            .filter(|(p, _)| p != audit)
            .collect()
    };
    env.run(&["reply", "--to", "a@example.org", "--code", "123456"])
        .expect(1);
    env.run(&["revoke", "--to", "a@example.org"]).expect(1);
    std::fs::write(
        env.path("reply.eml"),
        "From: a@example.org\r\nSubject: Re\r\n\r\n123456\r\n",
    )
    .unwrap();
    let before_reply = without_audit();
    env.run(&["reply", "--message", "reply.eml"]).expect(1);
    assert_eq!(without_audit(), before_reply);
    std::fs::remove_file(env.path("reply.eml")).unwrap();
    assert_eq!(without_audit(), before, "nothing else created");
    let events: Vec<String> = std::fs::read_to_string(env.path(audit))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {} {}", v["command"], v["outcome"], v["reason"])
        })
        .collect();
    assert_eq!(
        events,
        [
            r#""reply" "refused" "no-code""#,
            r#""revoke" "nothing" null"#,
            r#""reply" "refused" "no-code""#,
        ]
    );
}

/// A store of schema 1 (no key id) is migrated in place, recording the key file beside it; a
/// schema 1 store with records and no key file is refused, not given a new key.
#[test]
fn a_schema_1_store_records_its_key_when_migrated() {
    let env = Env::new("");
    let key = send_key(&env, "a@example.org");
    let id = |env: &Env| {
        let r = env.run(&["--json", "status"]);
        r.expect(0);
        let v: serde_json::Value =
            serde_json::from_str(r.stdout().lines().next().unwrap()).unwrap();
        v["key_id"].as_str().unwrap().to_string()
    };
    let original = id(&env);
    let downgrade = || {
        let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
        // Back to schema 1 as an old securemail wrote it: no key id, no limits bookkeeping.
        db.execute_batch(
            "DROP TABLE meta; DROP TABLE attempts; ALTER TABLE codes DROP COLUMN next_attempt;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    };
    downgrade();
    assert_eq!(id(&env), original);
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "migrated to the current schema");
    drop(db);

    downgrade();
    let saved = std::fs::read(env.path("securemail.key")).unwrap();
    std::fs::remove_file(env.path("securemail.key")).unwrap();
    let r = env.run(&["status"]);
    custody_error(&r, "the key file ");
    assert!(r.stderr().contains(" is missing\n"), "{}", r.stderr());
    assert!(!env.path("securemail.key").exists());
    std::fs::write(env.path("securemail.key"), saved).unwrap();
    std::fs::set_permissions(
        env.path("securemail.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    env.run(&["reply", "--to", "a@example.org", "--code", &key])
        .expect(0);
}

// ------------------------------------------------------------------------------------------
// Maildir.

fn reply_mail(from: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: admin@example.org\r\nSubject: Re: Your one-time key\r\n\
         Message-ID: <r-{}@example.net>\r\n\r\n{body}\r\n",
        body.len()
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn maildir_keeps_a_message_while_the_store_is_busy() {
    let env = Env::new("");
    set_store(&env, "../securemail.db", "lock_timeout = \"300ms\"\n");
    let key = send_key(&env, "ann@example.org");
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    std::fs::write(md.join("new/1.reply"), reply_mail("ann@example.org", &key)).unwrap();

    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = env.run(&["reply", "--maildir", "Maildir"]);
    r.expect(75);
    assert!(r.stderr().contains("is busy"), "{}", r.stderr());
    assert_eq!(names(&md.join("new")), vec!["1.reply"]);
    assert!(names(&md.join("cur")).is_empty());
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);

    let r = env.run(&["reply", "--maildir", "Maildir"]);
    r.expect(0);
    assert!(
        r.stdout().contains("1.reply: accepted: ann@example.org"),
        "{}",
        r.stdout()
    );
    assert!(names(&md.join("new")).is_empty());
    assert_eq!(names(&md.join("cur")), vec!["1.reply:2,S"]);
}

/// Two runs at once on one Maildir: each message is checked exactly once.
#[test]
fn concurrent_maildir_runs_check_each_message_once() {
    let env = Env::new("[verify]\nmax_attempts = 9\n");
    let who: Vec<String> = (0..8).map(|i| format!("p{i}@example.org")).collect();
    for w in &who {
        send_key(&env, w);
    }
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    for (i, w) in who.iter().enumerate() {
        // A well-formed key (right check symbol) that is not theirs: one wrong attempt each.
        let body = crate::support::well_formed_key("AAAA-BBBB-CCCC");
        std::fs::write(md.join(format!("new/{i}.reply")), reply_mail(w, &body)).unwrap();
    }
    let runs: Vec<_> = (0..3)
        .map(|_| {
            env.command(&["--json", "reply", "--maildir", "Maildir"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut refused = 0;
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(summary["type"], "summary");
        refused += summary["refused"].as_u64().unwrap();
    }
    assert_eq!(refused, 8, "each message once");
    assert_eq!(names(&md.join("cur")).len(), 8);
    let r = env.run(&["--json", "status"]);
    for line in r.stdout().lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["attempts"], 1, "{line}");
    }
}

// ------------------------------------------------------------------------------------------
// Files.

/// A file a link points at, and how to tell it was not touched.
struct Victim {
    path: std::path::PathBuf,
    content: Vec<u8>,
    mtime: SystemTime,
}

impl Victim {
    fn new(env: &Env, name: &str, content: &[u8]) -> Victim {
        let path = env.path(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        Victim {
            path,
            content: content.to_vec(),
            mtime,
        }
    }

    #[track_caller]
    fn untouched(&self) {
        assert_eq!(std::fs::read(&self.path).unwrap(), self.content);
        assert_eq!(
            std::fs::metadata(&self.path).unwrap().modified().unwrap(),
            self.mtime
        );
    }
}

#[track_caller]
fn refused_link(r: &support::Run, path: &str) {
    assert_ne!(r.code(), 0, "{}", r.stdout());
    let err = r.stderr();
    assert!(err.contains(path), "{err}");
    assert!(
        err.contains("is a symbolic link; securemail does not follow links for its own files"),
        "{err}"
    );
}

#[test]
fn a_linked_lock_file_is_refused_and_its_target_untouched() {
    let env = Env::new("");
    let victim = Victim::new(&env, "victim", b"precious data\n");
    symlink(&victim.path, env.path("securemail.lock")).unwrap();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    refused_link(&r, "securemail.lock");
    victim.untouched();
    assert!(env.outbox().is_empty(), "nothing sent");
}

#[test]
fn a_linked_log_file_is_refused_and_its_target_untouched() {
    let env = Env::new("[log]\nfile = \"../send.log\"\n");
    let victim = Victim::new(&env, "victim", b"precious data\n");
    symlink(&victim.path, env.path("send.log")).unwrap();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    refused_link(&r, "send.log");
    victim.untouched();
    // A dangling link: its target is not created.
    std::fs::remove_file(env.path("send.log")).unwrap();
    symlink(env.path("created-through-link"), env.path("send.log")).unwrap();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    refused_link(&r, "send.log");
    assert!(!env.path("created-through-link").exists());
}

#[test]
fn a_linked_store_is_refused_and_its_target_untouched() {
    let env = Env::new("");
    // An empty file is what SQLite would happily turn into a database.
    let victim = Victim::new(&env, "victim.db", b"");
    symlink(&victim.path, env.path("securemail.db")).unwrap();
    for args in [
        &["send", "--key", "--to", "a@example.org"][..],
        &["status"],
        &["reply", "--to", "a@example.org", "--code", "123456"],
    ] {
        let r = env.run(args);
        refused_link(&r, "securemail.db");
        victim.untouched();
    }
    assert!(!env.path("securemail.key").exists());
}

#[test]
fn a_linked_key_file_is_refused_and_its_target_untouched() {
    let env = Env::new("");
    let victim = Victim::new(&env, "victim.key", &[7u8; 32]);
    symlink(&victim.path, env.path("securemail.key")).unwrap();
    let r = env.run(&["send", "--key", "--to", "a@example.org"]);
    refused_link(&r, "securemail.key");
    victim.untouched();
    assert!(env.outbox().is_empty(), "nothing sent");
    // And beside a populated store.
    let env = Env::new("");
    send_key(&env, "a@example.org");
    let victim = Victim::new(
        &env,
        "victim.key",
        &std::fs::read(env.path("securemail.key")).unwrap(),
    );
    std::fs::remove_file(env.path("securemail.key")).unwrap();
    symlink(&victim.path, env.path("securemail.key")).unwrap();
    refused_link(&env.run(&["status"]), "securemail.key");
    victim.untouched();
}

#[test]
fn umask_000_still_gives_private_directories_and_files() {
    let env = Env::new("[log]\nfile = \"../logs/deep/send.log\"\n");
    set_store(&env, "../state/deep/securemail.db", "");
    let under_umask_000 = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.current_dir(env.dir.path())
            .env_remove("SECUREMAIL_CONFIG")
            .args(["-c", "umask 000; exec \"$0\" \"$@\"", support::BIN])
            .args(args);
        for (k, v) in &env.env {
            cmd.env(k, v);
        }
        support::Run(cmd.output().unwrap())
    };
    under_umask_000(&["send", "--key", "--to", "a@example.org"]).expect(0);
    let mode = |p: &str| std::fs::metadata(env.path(p)).unwrap().permissions().mode() & 0o777;
    for dir in ["state", "state/deep", "logs", "logs/deep", "outbox"] {
        assert_eq!(mode(dir), 0o700, "{dir}");
    }
    for file in [
        "state/deep/securemail.db",
        "state/deep/securemail.key",
        "state/deep/securemail.lock",
        "logs/deep/send.log",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    for f in std::fs::read_dir(env.path("state/deep")).unwrap() {
        let p = f.unwrap().path();
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", p.display());
    }
    for eml in env.outbox() {
        let m = std::fs::metadata(&eml).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", eml.display());
    }

    // The folders `reply --maildir` makes for what it reads are private too.
    std::fs::create_dir_all(env.path("Maildir/new")).unwrap();
    let put = |name: &str, headers: &str| {
        let raw = format!("{headers}To: admin@example.org\r\nSubject: Re: x\r\n\r\nhello\r\n");
        std::fs::write(env.path("Maildir/new").join(name), raw).unwrap();
    };
    put(
        "1.auto",
        "From: a@example.org\r\nAuto-Submitted: auto-replied\r\n",
    );
    put("2.two", "From: a@example.org\r\nFrom: b@example.org\r\n");
    put("3.plain", "From: a@example.org\r\n");
    std::fs::write(env.path("Maildir/new/4.garbage"), "not a mail").unwrap();
    under_umask_000(&["reply", "--maildir", "Maildir"]);
    for dir in [
        "Maildir/cur",
        "Maildir/auto",
        "Maildir/unauthenticated",
        "Maildir/malformed",
    ] {
        assert_eq!(mode(dir), 0o700, "{dir}");
    }
}

/// A key file that is not one securemail wrote (emptied, cut short, a directory) is a
/// configuration error to restore from backup, like a missing one: exit 78, not 74.
#[test]
fn a_damaged_key_file_is_a_configuration_error() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("");
    send_key(&env, "a@example.org");
    let key = env.path("securemail.key");
    let put = |bytes: &[u8]| {
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    for (damage, reason) in [
        (0usize, "it is 0 bytes, not 32"),
        (16, "it is 16 bytes, not 32"),
    ] {
        put(&vec![7u8; damage]);
        let r = env.run(&["status"]);
        r.expect(78);
        assert!(
            r.stderr().starts_with(&format!(
                "securemail: error: the store key file securemail.key is damaged: {reason}\nhint: \
                 the key file must hold the 32 bytes securemail wrote; restore it from a backup"
            )),
            "{}",
            r.stderr()
        );
    }
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = env.run(&["status"]);
    r.expect(78);
    assert!(
        r.stderr()
            .contains("is damaged: it is not a regular file\n"),
        "{}",
        r.stderr()
    );
}
