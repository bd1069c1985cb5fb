//! A private Postfix for the throughput bench: a real MTA to measure against, next to the
//! in-process sink, without touching the machine's own Postfix (if it has one configured).
//!
//! `Postfix::start` writes a minimal `main.cf`/`master.cf` into a temporary directory and runs
//! `postfix -c DIR/etc start`. The instance listens on 127.0.0.1 on a port of its own with TLS
//! from the first byte (`smtpd_tls_wrappermode=yes`, certificate signed by the bench's CA),
//! requires SASL `AUTH PLAIN`/`LOGIN` (Cyrus sasldb in the temp directory, the test suite's
//! user and password), queues for real (its queue is in the temp directory) and delivers every
//! recipient to the `discard` transport, so nothing is kept. Dropping it runs `postfix stop`.
//!
//! Needs root (Postfix's master starts as root and drops to `postfix`) and Debian's `postfix`,
//! `sasl2-bin` and `libsasl2-modules`.

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support::{SMTP_PASS, SMTP_USER, ServerCert};

/// Why the Postfix case did not run.
pub const HOW_TO_ENABLE: &str = "to enable it: apt install postfix sasl2-bin libsasl2-modules \
     (choose \"No configuration\"), then run the bench as root; it starts and stops a private \
     instance (postfix -c TMPDIR/etc start), the system's Postfix is left alone";

/// A running private Postfix instance.
pub struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postfix {
    /// Starts an instance presenting `cert`. `Err` says why it could not (not installed, not
    /// root, failed to start: with the tail of its log).
    pub fn start(cert: &ServerCert) -> Result<Postfix, String> {
        let postfix = find("postfix").ok_or("postfix is not installed")?;
        let saslpasswd2 = find("saslpasswd2").ok_or("saslpasswd2 (sasl2-bin) is not installed")?;
        let dir = tempfile::Builder::new()
            .prefix("securemail-postfix-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().to_path_buf();
        let root = root.as_path();
        // Postfix's daemons run as `postfix`: they must reach the queue and data directories.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        for d in ["etc/sasl", "queue", "data"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
        }
        let port = free_port()?;
        let (cert_pem, key_pem) = pem(cert);
        write(&root.join("etc/cert.pem"), &cert_pem, 0o644)?;
        write(&root.join("etc/key.pem"), &key_pem, 0o600)?;
        write(&root.join("etc/main.cf"), &main_cf(root), 0o644)?;
        write(&root.join("etc/master.cf"), &master_cf(port), 0o644)?;
        write(
            &root.join("etc/sasl/smtpd.conf"),
            &format!(
                "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {}\nmech_list: PLAIN LOGIN\n",
                root.join("data/sasldb2").display()
            ),
            0o644,
        )?;
        add_sasl_user(&saslpasswd2, &root.join("data/sasldb2"))?;
        let chown = Command::new("chown")
            .args(["-R", "postfix:"])
            .arg(root.join("data"))
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err("chown postfix data/ failed (not root, or no postfix user)".into());
        }
        let instance = Postfix { dir, port };
        let out = Command::new(&postfix)
            .arg("-c")
            .arg(root.join("etc"))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("postfix start: {e}"))?;
        if !out.status.success() || !instance.wait_listening(Duration::from_secs(10)) {
            return Err(format!(
                "postfix start failed ({}): {}; its log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                instance.log_tail(15)
            ));
        }
        Ok(instance)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance's configuration directory (for `postfix -c` by hand).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The last `lines` lines of its log (`maillog_file`).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn wait_listening(&self, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(find("postfix").unwrap_or_else(|| "postfix".into()))
            .arg("-c")
            .arg(self.config_dir())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // `stop` returns once master has been told; let it go before the directory goes.
        let pid = self.dir.path().join("queue/pid/master.pid");
        let t = Instant::now();
        while pid.exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn main_cf(root: &Path) -> String {
    let d = root.display();
    let mut cf = String::new();
    for line in [
        "compatibility_level = 3.6",
        &format!("queue_directory = {d}/queue"),
        &format!("data_directory = {d}/data"),
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "myhostname = localhost",
        // Nothing is local; every address is relayed, to the discard transport.
        "mydestination =",
        "alias_maps =",
        "alias_database =",
        "local_recipient_maps =",
        "default_transport = discard:bench",
        "relay_transport = discard:bench",
        "local_transport = discard:bench",
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
        &format!("smtpd_tls_cert_file = {d}/etc/cert.pem"),
        &format!("smtpd_tls_key_file = {d}/etc/key.pem"),
        "smtpd_tls_security_level = encrypt",
        "smtpd_sasl_auth_enable = yes",
        "smtpd_sasl_type = cyrus",
        "smtpd_sasl_path = smtpd",
        &format!("cyrus_sasl_config_path = {d}/etc/sasl"),
        &format!("maillog_file = {d}/maillog"),
        &format!("maillog_file_prefixes = {d}"),
    ] {
        writeln!(cf, "{line}").unwrap();
    }
    cf
}

/// The SMTPS listener and the daemons a queue needs, none chrooted (the temp dir has no
/// chroot tree).
fn master_cf(port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n\
         cleanup   unix n - n - 0 cleanup\n\
         qmgr      unix n - n 300 1 qmgr\n\
         tlsmgr    unix - - n 1000? 1 tlsmgr\n\
         rewrite   unix - - n - - trivial-rewrite\n\
         bounce    unix - - n - 0 bounce\n\
         defer     unix - - n - 0 bounce\n\
         trace     unix - - n - 0 bounce\n\
         verify    unix - - n - 1 verify\n\
         proxymap  unix - - n - - proxymap\n\
         anvil     unix - - n - 1 anvil\n\
         discard   unix - - n - - discard\n\
         error     unix - - n - - error\n\
         retry     unix - - n - - error\n\
         scache    unix - - n - 1 scache\n\
         postlog   unix-dgram n - n - 1 postlogd\n"
    )
}

/// `user@example.org` is user `user` in realm `example.org`.
fn add_sasl_user(saslpasswd2: &Path, db: &Path) -> Result<(), String> {
    let (user, realm) = SMTP_USER.split_once('@').ok_or("SMTP_USER has no @")?;
    let mut child = Command::new(saslpasswd2)
        .args(["-p", "-c", "-u", realm, "-f"])
        .arg(db)
        .arg(user)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("saslpasswd2: {e}"))?;
    use std::io::Write as _;
    child
        .stdin
        .take()
        .ok_or("saslpasswd2 stdin")?
        .write_all(SMTP_PASS.as_bytes())
        .map_err(|e| e.to_string())?;
    match child.wait() {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("saslpasswd2 failed: {other:?}")),
    }
}

/// A port nobody listens on now (a race with other programs is possible but harmless here).
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Leaf certificate chain and PKCS#8 key as PEM, for `smtpd_tls_cert_file`/`_key_file`.
fn pem(cert: &ServerCert) -> (String, String) {
    let block = |label: &str, der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut s = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap());
            s.push('\n');
        }
        s + &format!("-----END {label}-----\n")
    };
    let chain = cert.chain.iter().map(|c| block("CERTIFICATE", c)).collect();
    (chain, block("PRIVATE KEY", cert.key.secret_der()))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `name` on PATH or in the sbin directories (not always on a user's PATH).
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Postfix's version, as `postconf` reports it.
pub fn version() -> String {
    find("postconf")
        .and_then(|p| {
            Command::new(p)
                .args(["-h", "-d", "mail_version"])
                .output()
                .ok()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(unknown version)".into())
}
