//! Shared test fixtures: a scratch directory with config and templates, the real binary, the
//! in-process TLS SMTP server, and independent decoders for what it receives.

#![allow(dead_code)]

pub mod dkim;
pub mod hostile;
pub mod pki;
pub mod postgres;
pub mod server;
pub mod tty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mail_parser::{MessageParser, MimeHeaders, PartType};

pub use pki::{Ca, ServerCert};
pub use server::{Mode, Options, Server};
pub use tty::{Typed, run_on_tty};

pub const BIN: &str = env!("CARGO_BIN_EXE_securemail");
pub const FROM: &str = "Example Admin <admin@example.org>";
pub const SMTP_USER: &str = "user@example.org";
pub const SMTP_PASS: &str = "correct horse";

/// A scratch directory holding `config/account.toml` and a copy of the shipped templates.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    /// The `[store]` table: SQLite beside the config, or the PostgreSQL database of the test
    /// when it runs inside [`postgres::run`].
    pub store: String,
}

impl Env {
    /// With the shipped templates and a config whose extra TOML is `extra`.
    pub fn new(extra: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("securemail-it-")
            .tempdir()
            .unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for f in ["otp.html", "otp.txt", "key.html", "key.txt"] {
            std::fs::copy(shipped.join(f), templates.join(f)).unwrap();
        }
        let (store, db_password) = match postgres::current() {
            Some(db) => (db.store_toml(), postgres::PASSWORD),
            None => ("path = \"../securemail.db\"\n".to_string(), ""),
        };
        let mut env = Env {
            dir,
            env: vec![("SECUREMAIL_TEST_PASSWORD".into(), SMTP_PASS.into())],
            store,
        };
        if !db_password.is_empty() {
            env.env
                .push((postgres::PASSWORD_ENV.into(), db_password.into()));
        }
        env.write_config(extra);
        env
    }

    /// A config that sends to `server` with security `security`, trusting `ca`.
    pub fn smtp(server: &Server, security: &str, ca: &Ca) -> Env {
        let env = Env::new("");
        env.set_smtp(server, security, ca);
        env
    }

    pub fn set_smtp(&self, server: &Server, security: &str, ca: &Ca) {
        self.set_smtp_port(server.port(), security, ca);
    }

    /// A config that sends to localhost:`port`.
    pub fn set_smtp_port(&self, port: u16, security: &str, ca: &Ca) {
        std::fs::write(self.path("config/ca.pem"), ca.pem()).unwrap();
        self.write_config(&format!(
            "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"{security}\"\nusername = \"{SMTP_USER}\"\n\
             password_env = \"SECUREMAIL_TEST_PASSWORD\"\nca_file = \"ca.pem\"\ntimeout_secs = 10\n",
            port
        ));
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes config/account.toml: sender, paths, then `extra`.
    pub fn write_config(&self, extra: &str) {
        std::fs::create_dir_all(self.path("config")).unwrap();
        let text = format!(
            "[sender]\nfrom = \"{FROM}\"\n\n[outbox]\ndir = \"../outbox\"\n\n[store]\n{}\n\
             [templates]\ndir = \"../templates\"\n\n[otp]\nissuer = \"Example\"\n\n{extra}",
            self.store
        );
        std::fs::write(self.path("config/account.toml"), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .env_remove("SECUREMAIL_CONFIG")
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary in the scratch directory (stdin closed, so it never prompts).
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().unwrap())
    }

    /// Runs the binary with `input` on its stdin (as an MDA pipes a mail).
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        Run(child.wait_with_output().unwrap())
    }

    /// Every path under the scratch directory, with its size: what a command created or
    /// removed.
    pub fn listing(&self) -> Vec<(String, u64)> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, u64)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    if m.is_dir() { 0 } else { m.len() },
                ));
                if m.is_dir() {
                    walk(&p, root, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }

    /// The outbox's .eml files, oldest first.
    pub fn outbox(&self) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.path("outbox"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
    }
}

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// What a securemail mail contains, decoded independently of securemail (mail-parser, png, rqrr).
#[derive(Debug)]
pub struct Decoded {
    pub subject: String,
    pub message_id: String,
    pub to: String,
    pub text: String,
    pub html: String,
    pub png: Vec<u8>,
    pub png_cid: String,
    /// The QR code's content.
    pub qr: String,
}

/// Checks the MIME structure and decodes the parts and the QR code.
pub fn decode_mail(raw: &[u8]) -> Decoded {
    let msg = MessageParser::default()
        .parse(raw)
        .expect("parsable message");
    let root = msg.root_part();
    let ct = root.content_type().expect("root content type");
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative")),
        "root"
    );
    let PartType::Multipart(children) = &root.body else {
        panic!("root not multipart")
    };
    assert_eq!(children.len(), 2, "alternative has text + related");
    let text_part = &msg.parts[children[0] as usize];
    let tct = text_part.content_type().unwrap();
    assert_eq!(
        (tct.ctype(), tct.subtype()),
        ("text", Some("plain")),
        "first alternative"
    );
    let related = &msg.parts[children[1] as usize];
    let rct = related.content_type().unwrap();
    assert_eq!(
        (rct.ctype(), rct.subtype()),
        ("multipart", Some("related")),
        "second alternative"
    );
    let PartType::Multipart(rel_children) = &related.body else {
        panic!("related not multipart")
    };
    assert_eq!(rel_children.len(), 2, "related has html + png");
    let html_part = &msg.parts[rel_children[0] as usize];
    let hct = html_part.content_type().unwrap();
    assert_eq!((hct.ctype(), hct.subtype()), ("text", Some("html")));
    let png_part = &msg.parts[rel_children[1] as usize];
    let pct = png_part.content_type().unwrap();
    assert_eq!((pct.ctype(), pct.subtype()), ("image", Some("png")));
    let disposition = png_part.content_disposition().expect("png disposition");
    assert_eq!(disposition.ctype(), "inline");
    let cid = png_part
        .content_id()
        .expect("png Content-ID")
        .trim_matches(['<', '>'])
        .to_string();

    let text = match &text_part.body {
        PartType::Text(t) => t.to_string(),
        other => panic!("text part is {other:?}"),
    };
    let html = match &html_part.body {
        PartType::Html(t) | PartType::Text(t) => t.to_string(),
        other => panic!("html part is {other:?}"),
    };
    let png = match &png_part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        other => panic!("png part is {other:?}"),
    };
    assert!(
        html.contains(&format!("cid:{cid}")),
        "HTML references the PNG by cid"
    );
    let qr = decode_qr(&png);
    Decoded {
        subject: msg.subject().unwrap_or_default().to_string(),
        message_id: msg.message_id().unwrap_or_default().to_string(),
        to: msg
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string(),
        text,
        html,
        png,
        png_cid: cid,
        qr,
    }
}

/// Decodes a QR code PNG (any bit depth) with png + rqrr.
pub fn decode_qr(png_bytes: &[u8]) -> String {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let bytes_per_sample = if info.bit_depth == png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    let stride = info.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        buf[y * stride + x * channels * bytes_per_sample]
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    grids[0].decode().expect("QR decodes").1
}

/// RFC 4226 HOTP with HMAC-SHA1, written here so that the test does not trust securemail's TOTP.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// RFC 6238 TOTP code for `unix_time`.
pub fn totp(secret: &[u8], unix_time: u64) -> String {
    hotp(secret, unix_time / 30, 6)
}

/// RFC 4648 base64 encoding, for test fixtures.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// RFC 4648 base64 decoding (whitespace and padding ignored).
pub fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = T.iter().position(|&t| t == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// A server-side connection: plaintext, or TLS (from the first byte or after STARTTLS).
pub enum Conn {
    Plain(std::net::TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>>),
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl std::io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A rustls server configuration for `cert`.
pub fn server_tls(cert: &ServerCert) -> std::sync::Arc<rustls::ServerConfig> {
    std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .unwrap(),
    )
}

/// A listener on 127.0.0.1 that hands each connection to `serve` on its own thread, until
/// dropped.
pub struct Listener {
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Listener {
    pub fn start(serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> Listener {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let serve = std::sync::Arc::new(serve);
        let stopped = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let serve = std::sync::Arc::clone(&serve);
                std::thread::spawn(move || serve(conn));
            }
        });
        Listener { addr, stop }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ =
            std::net::TcpStream::connect_timeout(&self.addr, std::time::Duration::from_millis(200));
    }
}

/// The `secret=` parameter of an otpauth URI, as written (base32).
pub fn secret_param(uri: &str) -> String {
    let q = uri.split_once('?').expect("query").1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .expect("secret parameter")
        .to_string()
}

/// RFC 4648 base32 (no padding) decoding.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("base32 digit") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The `secret=` parameter of an otpauth URI, decoded.
pub fn otpauth_secret(uri: &str) -> Vec<u8> {
    base32_decode(&secret_param(uri))
}

/// Ends every throttling wait in the store, as the clock would (no test sleeps for the backoff).
pub fn let_throttle_pass(env: &Env) {
    if let Some(db) = postgres::current() {
        db.let_throttle_pass();
        return;
    }
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute(
        "UPDATE codes SET next_attempt = strftime('%s','now') - 1 WHERE next_attempt IS NOT NULL",
        [],
    )
    .unwrap();
}

/// A port on 127.0.0.1 that refuses connections: bound, so nothing else can take it while the
/// socket lives, but not listening, so the kernel answers every SYN with a reset.
pub fn refusing_port() -> (socket2::Socket, u16) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Moves every throttling wait in the store an hour further, as if the clock had stood still
/// since the binary set it: a test can then look at the throttle however slowly it runs.
pub fn hold_throttle(env: &Env) {
    const SQL: &str =
        "UPDATE codes SET next_attempt = next_attempt + 3600 WHERE next_attempt IS NOT NULL";
    if let Some(db) = postgres::current() {
        db.admin().execute(SQL, &[]).unwrap();
        return;
    }
    let db = rusqlite::Connection::open(env.path("securemail.db")).unwrap();
    db.execute(SQL, []).unwrap();
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server of `mode` with a leaf certificate for localhost from `ca`.
pub fn server(mode: Mode, ca: &Ca) -> Server {
    Server::start(Options::new(mode, ca.leaf(&["localhost"])))
}

/// Crockford's base-32 check symbol (value mod 37), written here so that the tests do not trust
/// securemail's.
pub fn crockford_check(data: &str) -> char {
    const DIGITS: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const CHECK: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
    let rem = data.chars().filter(|&c| c != '-').fold(0usize, |r, c| {
        (r * 32 + DIGITS.find(c).expect("base-32 digit")) % 37
    });
    CHECK.as_bytes()[rem] as char
}

/// A well-formed key (right check symbol) made of `data` (dashes as printed), e.g. a wrong guess.
pub fn well_formed_key(data: &str) -> String {
    let check = crockford_check(data);
    format!("{data}-{check}")
}

/// Waits for every child, reading their stdout and stderr meanwhile (a child whose pipe is full
/// would stop); kills them all and panics if they take longer than `limit`.
pub fn wait_all(mut children: Vec<std::process::Child>, limit: std::time::Duration) -> Vec<Output> {
    use std::io::Read;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut buf).unwrap();
            }
            buf
        })
    };
    let pipes: Vec<_> = children
        .iter_mut()
        .map(|c| {
            let out = c.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
            let err = c.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
            (read(out), read(err))
        })
        .collect();
    let start = std::time::Instant::now();
    let mut status = vec![None; children.len()];
    while status.iter().any(Option::is_none) {
        for (c, s) in children.iter_mut().zip(status.iter_mut()) {
            if s.is_none() {
                *s = c.try_wait().unwrap();
            }
        }
        if start.elapsed() > limit {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the processes took longer than {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    status
        .into_iter()
        .zip(pipes)
        .map(|(status, (out, err))| Output {
            status: status.unwrap(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        })
        .collect()
}
