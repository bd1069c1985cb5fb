//! The shipped configuration: no SMTP account, mail goes to the outbox.

use std::path::Path;

use crate::support::{self, Run, decode_mail};

/// Copies the repository's config/ and templates/ into a scratch directory, as a fresh clone has.
fn shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["config", "templates"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run(std::process::Command::new(support::BIN)
        .current_dir(dir)
        .env_remove("SECUREMAIL_CONFIG")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap())
}

#[test]
fn shipped_config_writes_an_eml_and_reply_verifies_it() {
    let dir = shipped();
    let r = run_in(
        dir.path(),
        &[
            "send",
            "--otp",
            "--to",
            "alice@example.org",
            "--name",
            "Alice",
        ],
    );
    r.expect(0);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let eml = &files[0];
    assert!(
        r.stdout()
            .contains(&eml.file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        r.stdout()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(eml).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mail = decode_mail(&std::fs::read(eml).unwrap());
    assert!(
        mail.qr
            .starts_with("otpauth://totp/Example:alice%40example.org?secret="),
        "{}",
        mail.qr
    );
    let secret = support::otpauth_secret(&mail.qr);
    let code = support::totp(&secret, support::now());
    run_in(
        dir.path(),
        &["reply", "--to", "alice@example.org", "--code", &code],
    )
    .expect(0);
}

#[test]
fn dry_run_records_nothing() {
    let dir = shipped();
    let r = run_in(
        dir.path(),
        &["send", "--key", "--to", "bob@example.org", "--dry-run"],
    );
    r.expect(0);
    assert!(
        r.stdout()
            .starts_with("dry run: wrote the one-time key for bob@example.org to "),
        "{}",
        r.stdout()
    );
    assert!(!dir.path().join("securemail.db").exists());
    let mail = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(mail, 1);
    // Nothing recorded: no code to verify.
    let r = run_in(
        dir.path(),
        &[
            "reply",
            "--to",
            "bob@example.org",
            "--code",
            "AAAA-AAAA-AAAA",
        ],
    );
    r.expect(1);
    assert!(
        r.stderr().contains("no code was sent to bob@example.org"),
        "{}",
        r.stderr()
    );
}
