//! An installed securemail: the configuration found without `--config` (and the error when there
//! is none), data in the XDG data directory, templates built into the binary with per-file
//! overrides, `templates export`, quiet broken pipes, Ctrl-C in a batch, the man pages, and the
//! binary copied elsewhere and run from a directory without `config/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Ca, Env, Mode, Run, decode_mail};

/// A scratch machine: a home directory, XDG directories and an empty working directory (no
/// `config/`), none of them the real ones.
struct Machine {
    root: tempfile::TempDir,
    /// `XDG_CONFIG_HOME` / `XDG_DATA_HOME` when set; unset (empty) otherwise.
    xdg_config: Option<PathBuf>,
    xdg_data: Option<PathBuf>,
    bin: PathBuf,
}

const MINIMAL: &str = "[sender]\nfrom = \"Ops <ops@example.org>\"\n";

impl Machine {
    fn new() -> Machine {
        let root = tempfile::Builder::new()
            .prefix("securemail-install-")
            .tempdir()
            .unwrap();
        for d in ["home", "work"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Machine {
            root,
            xdg_config: None,
            xdg_data: None,
            bin: PathBuf::from(support::BIN),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The binary, run in `work/` (or `cwd`) with only this machine's HOME and XDG variables.
    fn command_in(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(cwd)
            .env_remove("SECUREMAIL_CONFIG")
            .env("HOME", self.home())
            // Empty means unset (XDG spec): the ~/.config and ~/.local/share defaults apply.
            .env(
                "XDG_CONFIG_HOME",
                self.xdg_config.as_deref().unwrap_or(Path::new("")),
            )
            .env(
                "XDG_DATA_HOME",
                self.xdg_data.as_deref().unwrap_or(Path::new("")),
            )
            .env("SECUREMAIL_TEST_PASSWORD", support::SMTP_PASS)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        Run(self.command_in(cwd, args).output().unwrap())
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_in(&self.path("work"), args)
    }

    /// The configuration `-v status` says it uses.
    fn used_config(&self, cwd: &Path, extra_env: Option<(&str, &str)>, args: &[&str]) -> String {
        let mut cmd = self.command_in(cwd, args);
        if let Some((k, v)) = extra_env {
            cmd.env(k, v);
        }
        let r = Run(cmd.output().unwrap());
        r.expect(0);
        r.stderr()
            .lines()
            .find_map(|l| l.strip_prefix("securemail: configuration "))
            .unwrap_or_else(|| panic!("no configuration line in\n{}", r.stderr()))
            .to_string()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect()
}

#[test]
fn without_any_configuration_the_error_names_every_place_tried() {
    let m = Machine::new();
    let r = m.run(&["status"]);
    r.expect(78);
    let user = m.home().join(".config/securemail/account.toml");
    assert_eq!(
        r.stderr(),
        format!(
            "securemail: error: no configuration file: tried {}, {}, \
             /etc/securemail/account.toml\nhint: `securemail init` writes one to {}; or pass \
             --config PATH (or set SECUREMAIL_CONFIG)\n",
            m.path("work/config/account.toml").display(),
            user.display(),
            user.display()
        )
    );
    // With XDG_CONFIG_HOME set, that is the place named.
    let mut m = m;
    m.xdg_config = Some(m.path("xdg-config"));
    let r = m.run(&["--json", "send", "--otp", "--to", "a@example.org"]);
    r.expect(78);
    let line: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(line["type"], "error");
    assert_eq!(line["exit"], 78);
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{}/securemail/account.toml",
            m.path("xdg-config").display()
        )),
        "{message}"
    );
    assert!(!message.contains(".config/securemail"), "{message}");
}

#[test]
fn discovery_order_is_flag_env_clone_xdg() {
    let mut m = Machine::new();
    let work = m.path("work");
    let v_status = ["-v", "status"];

    // ~/.config/securemail when XDG_CONFIG_HOME is unset.
    let home_cfg = m.write("home/.config/securemail/account.toml", MINIMAL);
    let used = m.used_config(&work, None, &v_status);
    assert_eq!(
        used,
        format!(
            "{} (the per-user one, in $XDG_CONFIG_HOME/securemail)",
            home_cfg.display()
        )
    );

    // $XDG_CONFIG_HOME/securemail wins over ~/.config once the variable is set.
    m.xdg_config = Some(m.path("xdg-config"));
    let xdg_cfg = m.write("xdg-config/securemail/account.toml", MINIMAL);
    let used = m.used_config(&work, None, &v_status);
    assert!(used.starts_with(&xdg_cfg.display().to_string()), "{used}");
    // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says: back to ~/.config.
    let mut cmd = m.command_in(&work, &v_status);
    cmd.env("XDG_CONFIG_HOME", "xdg-config");
    let r = Run(cmd.output().unwrap());
    r.expect(0);
    assert!(
        r.stderr().contains(&home_cfg.display().to_string()),
        "{}",
        r.stderr()
    );

    // A clone's config/account.toml in the working directory wins over the per-user one.
    let clone = m.path("clone");
    m.write("clone/config/account.toml", MINIMAL);
    let used = m.used_config(&clone, None, &v_status);
    assert_eq!(
        used,
        "config/account.toml (the clone's, in the working directory)"
    );

    // $SECUREMAIL_CONFIG wins over the clone's, --config over $SECUREMAIL_CONFIG.
    let env_cfg = m.write("env.toml", MINIMAL);
    let env_var = Some(("SECUREMAIL_CONFIG", env_cfg.to_str().unwrap()));
    let used = m.used_config(&clone, env_var, &v_status);
    assert_eq!(
        used,
        format!("{} (from $SECUREMAIL_CONFIG)", env_cfg.display())
    );
    let flag_cfg = m.write("flag.toml", MINIMAL);
    let used = m.used_config(
        &clone,
        env_var,
        &["--config", flag_cfg.to_str().unwrap(), "-v", "status"],
    );
    assert_eq!(used, format!("{} (from --config)", flag_cfg.display()));

    // An explicit choice that does not exist is an error, not a reason to look elsewhere.
    let mut cmd = m.command_in(&clone, &["status"]);
    cmd.env("SECUREMAIL_CONFIG", m.path("missing.toml"));
    let r = Run(cmd.output().unwrap());
    r.expect(78);
    assert!(
        r.stderr().starts_with(&format!(
            "securemail: error: {}: cannot read the configuration file",
            m.path("missing.toml").display()
        )),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_per_user_config_keeps_its_data_in_the_xdg_data_dir_and_uses_built_in_templates() {
    let mut m = Machine::new();
    m.xdg_config = Some(m.path("xdg-config"));
    m.xdg_data = Some(m.path("xdg-data"));
    m.write("xdg-config/securemail/account.toml", MINIMAL);

    m.run(&["send", "--otp", "--to", "kim@example.org"])
        .expect(0);
    let data = m.path("xdg-data/securemail");
    for f in ["securemail.db", "securemail.key"] {
        assert!(data.join(f).is_file(), "{f} missing in {}", data.display());
    }
    let mails = eml_files(&data.join("outbox"));
    assert_eq!(mails.len(), 1, "{mails:?}");
    // Nothing beside the config, nothing in the working directory.
    assert_eq!(
        files_under(&m.path("xdg-config")),
        vec![m.path("xdg-config/securemail/account.toml")]
    );
    assert!(files_under(&m.path("work")).is_empty());

    // The built-in templates: a complete mail whose QR and text carry the same secret.
    let d = decode_mail(&std::fs::read(&mails[0]).unwrap());
    assert!(d.qr.starts_with("otpauth://totp/"), "{}", d.qr);
    let secret = support::secret_param(&d.qr);
    let grouped: String = d.text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(grouped.contains(&secret), "{}", d.text);
    assert!(d.html.contains(&format!("cid:{}", d.png_cid)), "{}", d.html);

    // The code verifies, from another directory, against the same store.
    let r = m.run_in(&m.home(), &["status", "--to", "kim@example.org"]);
    r.expect(0);
    assert!(r.stdout().contains("kim@example.org"), "{}", r.stdout());
    assert!(
        r.stdout()
            .contains(&data.join("securemail.db").display().to_string()),
        "{}",
        r.stdout()
    );

    // Without XDG_DATA_HOME: ~/.local/share/securemail.
    m.xdg_data = None;
    m.run(&["send", "--key", "--to", "lee@example.org"])
        .expect(0);
    let local = m.home().join(".local/share/securemail");
    assert!(local.join("securemail.db").is_file());
    assert_eq!(eml_files(&local.join("outbox")).len(), 1);
}

#[test]
fn paths_written_in_a_per_user_config_resolve_against_its_directory() {
    let mut m = Machine::new();
    m.xdg_config = Some(m.path("xdg-config"));
    m.xdg_data = Some(m.path("xdg-data"));
    m.write(
        "xdg-config/securemail/account.toml",
        &format!("{MINIMAL}[outbox]\ndir = \"sent\"\n"),
    );
    m.run(&["send", "--key", "--to", "kim@example.org"])
        .expect(0);
    assert_eq!(eml_files(&m.path("xdg-config/securemail/sent")).len(), 1);
    // The store, not set, still goes to the data directory.
    assert!(m.path("xdg-data/securemail/securemail.db").is_file());
}

#[test]
fn a_partial_template_override_falls_back_per_file() {
    let env = Env::new("");
    // Only otp.html in the override directory.
    let mine = env.path("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("otp.html"),
        "<p>MY-OWN-HTML {{ issuer }} {{ secret }}</p><img src=\"cid:{{ qr_cid }}\" alt=\"QR\">",
    )
    .unwrap();
    let config = std::fs::read_to_string(env.path("config/account.toml"))
        .unwrap()
        .replace("dir = \"../templates\"", "dir = \"../mine\"");
    std::fs::write(env.path("config/account.toml"), config).unwrap();
    std::fs::remove_dir_all(env.path("templates")).unwrap();

    env.run(&["send", "--otp", "--to", "kim@example.org"])
        .expect(0);
    let d = decode_mail(&std::fs::read(&env.outbox()[0]).unwrap());
    assert!(d.html.starts_with("<p>MY-OWN-HTML Example "), "{}", d.html);
    let secret = support::secret_param(&d.qr);
    let text: String = d.text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(text.contains(&secret), "the built-in otp.txt: {}", d.text);
    assert!(!d.text.contains("MY-OWN"));

    // Key mails: both built in.
    env.run(&["send", "--key", "--to", "lee@example.org"])
        .expect(0);
    let d = decode_mail(&std::fs::read(&env.outbox()[1]).unwrap());
    assert!(!d.html.contains("MY-OWN"), "{}", d.html);

    // An override is still checked at load: an unknown variable names the file.
    std::fs::write(mine.join("key.txt"), "{{ keyy }}").unwrap();
    let r = env.run(&["send", "--key", "--to", "max@example.org"]);
    r.expect(78);
    assert!(
        r.stderr().contains("mine/key.txt uses the variable `keyy`"),
        "{}",
        r.stderr()
    );

    // A configured directory that does not exist is an error with a way out.
    std::fs::remove_dir_all(&mine).unwrap();
    let r = env.run(&["send", "--key", "--to", "max@example.org"]);
    r.expect(78);
    assert!(
        r.stderr().contains("cannot read the templates directory")
            && r.stderr().contains("securemail templates export"),
        "{}",
        r.stderr()
    );
}

#[test]
fn templates_export_writes_the_built_in_ones_and_never_clobbers() {
    let m = Machine::new();
    let r = m.run(&["templates", "export", "tpl"]);
    r.expect(0);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for name in ["otp.txt", "otp.html", "key.txt", "key.html"] {
        let p = m.path("work/tpl").join(name);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(shipped.join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(
            r.stdout().contains(&format!("wrote tpl/{name}\n")),
            "{}",
            r.stdout()
        );
    }

    // Edited, then exported again: refused, nothing changed.
    std::fs::write(m.path("work/tpl/otp.txt"), "edited {{ secret }}").unwrap();
    let r = m.run(&["templates", "export", "tpl"]);
    r.expect(73);
    assert!(r.stderr().contains("already exist"), "{}", r.stderr());
    assert!(r.stderr().contains("hint: pass --force"), "{}", r.stderr());
    assert_eq!(
        std::fs::read_to_string(m.path("work/tpl/otp.txt")).unwrap(),
        "edited {{ secret }}"
    );
    m.run(&["templates", "export", "tpl", "--force"]).expect(0);
    assert_eq!(
        std::fs::read(m.path("work/tpl/otp.txt")).unwrap(),
        std::fs::read(shipped.join("otp.txt")).unwrap()
    );

    // The exported set works as an override.
    m.write(
        "work/cfg.toml",
        &format!("{MINIMAL}[templates]\ndir = \"tpl\"\n"),
    );
    m.run(&[
        "--config",
        "cfg.toml",
        "send",
        "--key",
        "--to",
        "kim@example.org",
    ])
    .expect(0);
    assert_eq!(eml_files(&m.path("work/outbox")).len(), 1);
}

/// Runs the binary with stdout a pipe whose read end is already closed, so that its first
/// write fails with EPIPE.
fn run_into_closed_pipe(cmd: &mut Command) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap();
    Run(out)
}

#[test]
fn a_closed_pipe_ends_output_quietly_with_status_0() {
    let env = Env::new("");
    for to in ["a@example.org", "b@example.org", "c@example.org"] {
        env.run(&["send", "--key", "--to", to]).expect(0);
    }
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["completions", "zsh"],
        &["completions", "bash"],
        &["man"],
        &["templates", "export", "exported"],
    ] {
        let r = run_into_closed_pipe(&mut env.command(args));
        assert_eq!(r.code(), 0, "{args:?}: {}", r.stderr());
        assert_eq!(r.stderr(), "", "{args:?}");
    }
    // The export did its work although nobody read what it printed.
    assert!(env.path("exported/key.html").is_file());

    // And through a real shell pipeline, as people type it.
    let script = format!(
        "'{}' status | head -1; echo \"status=${{PIPESTATUS[0]}}\"",
        support::BIN
    );
    let r = Run(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env.path(""))
        .env_remove("SECUREMAIL_CONFIG")
        .output()
        .unwrap());
    assert!(r.stdout().ends_with("status=0\n"), "{}", r.stdout());
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
}

/// A scratch config sending to a TLS server of `ca` with `[smtp] connections` and
/// `max_per_minute` as given.
fn paced_env(srv: &support::Server, ca: &Ca, connections: u32, per_minute: u32) -> Env {
    let env = Env::new("");
    std::fs::write(env.path("config/ca.pem"), ca.pem()).unwrap();
    env.write_config(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"{}\"\n\
         password_env = \"SECUREMAIL_TEST_PASSWORD\"\nca_file = \"ca.pem\"\ntimeout_secs = 10\n\
         connections = {connections}\nmax_per_minute = {per_minute}\n",
        srv.port(),
        support::SMTP_USER
    ));
    env
}

/// Starts `send --key --to-list team.csv`, waits until the server has `mails` mails (plus
/// `settle`), presses Ctrl-C and returns how the run ended.
fn ctrl_c_after(env: &Env, srv: &support::Server, mails: usize, settle: Duration) -> Run {
    let child = env
        .command(&["send", "--key", "--to-list", "team.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while srv.log().mails.len() < mails {
        assert!(Instant::now() < deadline, "the batch did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(settle);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    Run(child.wait_with_output().unwrap())
}

#[test]
fn ctrl_c_mid_batch_reports_what_was_sent_and_the_rerun_sends_the_rest() {
    let ca = Ca::new("securemail test CA");
    let srv = support::server(Mode::Tls, &ca);
    // 120 a minute: a mail every 0.5 s, so the batch is still running when Ctrl-C comes.
    let env = paced_env(&srv, &ca, 1, 120);
    let addrs: Vec<String> = (0..20).map(|i| format!("user{i:02}@example.org")).collect();
    let mut list = String::from("email\n");
    for a in &addrs {
        list.push_str(a);
        list.push('\n');
    }
    std::fs::write(env.path("team.csv"), list).unwrap();

    let r = ctrl_c_after(&env, &srv, 3, Duration::ZERO);
    r.expect(130);
    let sent = srv.log().mails.len();
    assert!(
        sent < 20,
        "Ctrl-C came too late to test anything ({sent} sent)"
    );
    assert!(
        r.stderr().contains("Ctrl-C: finishing the mails in flight"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stdout().starts_with(&format!("sent {sent}, ")),
        "the summary counts what the server got ({sent}): {}",
        r.stdout()
    );
    // Mails on the wire at Ctrl-C finish (and are counted as finishing after it); none waiting
    // for its pacing slot is sent.
    let mails = |n: usize| if n == 1 { "mail" } else { "mails" };
    let said = (0..=1usize).any(|after| {
        let before = sent - after;
        let tail = match after {
            0 => String::new(),
            n => format!(" and {n} finishing after"),
        };
        r.stderr().contains(&format!(
            "securemail: error: interrupted: {before} {} sent before Ctrl-C{tail}, the rest not\n\
             hint: run the same command again to send to the rest",
            mails(before)
        ))
    });
    assert!(said, "{}", r.stderr());
    assert!(!r.stderr().contains("panicked"));

    // The same command again: the rest, and nobody twice.
    let r = env.run(&["send", "--key", "--to-list", "team.csv"]);
    r.expect(0);
    let log = srv.log();
    assert_eq!(log.mails.len(), 20);
    let mut got: Vec<String> = log.mails.iter().map(|m| m.to[0].clone()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20, "someone got two mails");
}

#[test]
fn man_dir_writes_a_page_per_subcommand_with_every_section() {
    let m = Machine::new();
    let r = m.run(&["man", "--dir", "man1"]);
    r.expect(0);
    let dir = m.path("work/man1");
    let pages: Vec<String> = files_under(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for sub in [
        "",
        "-send",
        "-reply",
        "-check",
        "-status",
        "-revoke",
        "-init",
        "-templates",
        "-templates-export",
        "-completions",
        "-man",
    ] {
        assert!(
            pages.contains(&format!("securemail{sub}.1")),
            "securemail{sub}.1 missing: {pages:?}"
        );
    }
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            ".SH ENVIRONMENT",
            ".SH EXAMPLES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "{page} has no {section}");
        }
        for needle in [
            "SECUREMAIL_CONFIG",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "/etc/securemail/account.toml",
            "130",
        ] {
            assert!(text.contains(needle), "{page} does not mention {needle}");
        }
        // Every page referred to exists.
        let plain = text.replace("\\-", "-");
        for word in plain.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(name) = word.strip_suffix("(1)")
                && name.starts_with("securemail")
            {
                assert!(
                    pages.contains(&format!("{name}.1")),
                    "{page} refers to {name}(1), which was not written"
                );
            }
        }
    }
    // `man` alone still prints the main page.
    let r = m.run(&["man"]);
    r.expect(0);
    assert!(
        r.stdout().contains("\n.TH securemail 1 "),
        "{}",
        &r.stdout()[..200]
    );
    // And man(1) reads what was written, if it is installed.
    if Command::new("man").arg("--version").output().is_ok() {
        let out = Command::new("man")
            .args(["-l", dir.join("securemail-send.1").to_str().unwrap()])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("EXIT STATUS"), "{text}");
    }
}

#[test]
fn an_installed_copy_sends_from_any_directory_with_a_per_user_config() {
    // As `cargo install` leaves it: the binary alone in a bin directory, no repository around.
    let mut m = Machine::new();
    let bin = m.path("bin/securemail");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(support::BIN, &bin).unwrap();
    m.bin = bin;
    m.xdg_config = Some(m.path("xdg-config"));
    m.xdg_data = Some(m.path("xdg-data"));

    let ca = Ca::new("securemail test CA");
    let srv = support::server(Mode::Tls, &ca);
    m.write("xdg-config/securemail/ca.pem", &ca.pem());
    m.write(
        "xdg-config/securemail/account.toml",
        &format!(
            "{MINIMAL}[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"{}\"\n\
             password_env = \"SECUREMAIL_TEST_PASSWORD\"\nca_file = \"ca.pem\"\n",
            srv.port(),
            support::SMTP_USER
        ),
    );
    m.run(&["check"]).expect(0);
    let r = m.run_in(&m.home(), &["send", "--otp", "--to", "kim@example.org"]);
    r.expect(0);
    let log = srv.log();
    assert_eq!(log.mails.len(), 1);
    let d = decode_mail(&log.mails[0].data);
    assert!(d.qr.starts_with("otpauth://totp/"), "{}", d.qr);
    assert!(m.path("xdg-data/securemail/securemail.db").is_file());
    assert!(files_under(&m.path("work")).is_empty());
    assert!(files_under(&m.home()).is_empty());
}

/// A `config/account.toml` found in the working directory can run commands (password_command):
/// one that others could have written is refused, not read; named with --config it is used.
#[test]
fn a_clone_config_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let m = Machine::new();
    let clone = m.path("shared");
    let cfg = m.write("shared/config/account.toml", MINIMAL);
    let mode = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    for (path, mode_bits, what) in [
        (cfg.clone(), 0o666, "it is writable by everyone (mode 666)"),
        (
            clone.join("config"),
            0o777,
            "its directory is writable by everyone (mode 777)",
        ),
    ] {
        mode(&cfg, 0o600);
        mode(&clone.join("config"), 0o755);
        mode(&path, mode_bits);
        let r = m.run_in(&clone, &["status"]);
        r.expect(78);
        assert_eq!(
            r.stderr(),
            format!(
                "securemail: error: not using config/account.toml: {what}\nhint: a configuration \
                 in the working directory must be yours and writable only by you (as must its \
                 directory): chmod go-w it, or pass --config config/account.toml to use it \
                 anyway\n"
            )
        );
        // Named, it is the user's choice.
        let r = m.run_in(&clone, &["--config", cfg.to_str().unwrap(), "status"]);
        r.expect(0);
    }
}

/// Ctrl-C while mails wait for their pacing slot (here 30 s apart): the run stops at once, and
/// a mail that was waiting is not sent after it.
#[test]
fn ctrl_c_does_not_wait_for_the_next_pacing_slot() {
    let ca = Ca::new("securemail test CA");
    let srv = support::server(Mode::Tls, &ca);
    let env = paced_env(&srv, &ca, 2, 2);
    std::fs::write(
        env.path("team.csv"),
        "email\na@example.org\nb@example.org\nc@example.org\n",
    )
    .unwrap();
    // Once the first mail is in, the second waits ~30 s for its slot.
    let r = ctrl_c_after(&env, &srv, 1, Duration::from_millis(300));
    r.expect(130);
    assert_eq!(srv.log().mails.len(), 1, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("securemail: error: interrupted: 1 mail sent before Ctrl-C, the rest not\n"),
        "{}",
        r.stderr()
    );
    assert!(r.stdout().starts_with("sent 1, "), "{}", r.stdout());
}
