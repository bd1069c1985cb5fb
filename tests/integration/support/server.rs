//! A real SMTP server inside the test process, on 127.0.0.1.
//!
//! The SMTP session state machine is the `mailin` crate (the engine under `mailin-embedded`);
//! this file only does the I/O: a rustls server stream from the first byte ([`Mode::Tls`]), a
//! plain stream upgraded when mailin asks for STARTTLS ([`Mode::StartTls`]), or a plain stream
//! that never offers STARTTLS ([`Mode::NoStartTls`]). Everything the server receives is logged,
//! so tests assert on the bytes that actually arrived.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::pki::ServerCert;
use super::{Conn, Listener, server_tls};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TLS from the first byte (port 465 style).
    Tls,
    /// Plaintext greeting, STARTTLS offered (port 587 style).
    StartTls,
    /// Plaintext, STARTTLS never offered.
    NoStartTls,
}

/// How the server behaves.
#[derive(Clone)]
pub struct Options {
    pub mode: Mode,
    pub cert: ServerCert,
    /// Username and password accepted by AUTH PLAIN/LOGIN; `None`: no AUTH offered.
    pub auth: Option<(String, String)>,
    /// Scripted RCPT replies per address (lower case): each RCPT pops the next code, then 250.
    pub rcpt_script: HashMap<String, VecDeque<u16>>,
    /// RCPT reply for these addresses, every time.
    pub rcpt_always: HashMap<String, u16>,
    /// Close a connection silently when the client says nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Once this many messages were accepted, hold each further one at its final dot until
    /// [`Server::release`]: a batch stopped where the test chooses, with messages in flight.
    pub hold_after: Option<usize>,
    /// Keep message bodies (false: only envelope and size, for very large batches).
    pub keep_data: bool,
}

impl Options {
    pub fn new(mode: Mode, cert: ServerCert) -> Options {
        Options {
            mode,
            cert,
            auth: Some(("user@example.org".into(), "correct horse".into())),
            rcpt_script: HashMap::new(),
            rcpt_always: HashMap::new(),
            idle_timeout: None,
            hold_after: None,
            keep_data: true,
        }
    }
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    pub size: usize,
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Log {
    pub connections: usize,
    /// Every command line received (not message data), without CRLF.
    pub commands: Vec<String>,
    pub mails: Vec<Received>,
    pub auth_failures: usize,
    pub tls_sessions: usize,
}

impl Log {
    /// The base64 credentials of the first `AUTH PLAIN` received.
    pub fn auth_blob(&self) -> String {
        self.commands
            .iter()
            .find_map(|c| c.strip_prefix("AUTH PLAIN "))
            .expect("AUTH PLAIN received")
            .to_string()
    }

    pub fn mail_from_count(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("MAIL FROM"))
            .count()
    }
}

/// Where [`Options::hold_after`] holds messages, and whether the test has let them go.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    open: bool,
    held: usize,
}

/// How long a held message waits for [`Server::release`] before going on by itself, and how
/// long [`Server::wait_until_held`] waits: only a backstop for a test that failed elsewhere.
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    gate: Arc<Gate>,
    _listener: Listener,
}

impl Server {
    pub fn start(options: Options) -> Server {
        let log = Arc::new(Mutex::new(Log::default()));
        let tls = server_tls(&options.cert);
        let options = Arc::new(Mutex::new(options));
        let gate = Arc::new(Gate::default());
        let listener = {
            let log = Arc::clone(&log);
            let gate = Arc::clone(&gate);
            Listener::start(move |conn| {
                log.lock().unwrap().connections += 1;
                let _ = serve(
                    conn,
                    Arc::clone(&tls),
                    Arc::clone(&options),
                    Arc::clone(&log),
                    Arc::clone(&gate),
                );
            })
        };
        Server {
            addr: listener.addr,
            log,
            gate,
            _listener: listener,
        }
    }

    /// Blocks until `n` messages are held (see [`Options::hold_after`]).
    pub fn wait_until_held(&self, n: usize) {
        let st = self.gate.state.lock().unwrap();
        let (st, _) = self
            .gate
            .changed
            .wait_timeout_while(st, HOLD_LIMIT, |s| s.held < n)
            .unwrap();
        assert!(
            st.held >= n,
            "{} messages held after {HOLD_LIMIT:?}, waiting for {n} ({} accepted)",
            st.held,
            self.log().mails.len()
        );
    }

    /// Lets held messages (and every later one) through.
    pub fn release(&self) {
        self.gate.state.lock().unwrap().open = true;
        self.gate.changed.notify_all();
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

struct Recorder {
    log: Arc<Mutex<Log>>,
    gate: Arc<Gate>,
    options: Arc<Mutex<Options>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let key = to.to_ascii_lowercase();
        let mut opts = self.options.lock().unwrap();
        let code = opts
            .rcpt_always
            .get(&key)
            .copied()
            .or_else(|| opts.rcpt_script.get_mut(&key).and_then(|q| q.pop_front()));
        match code {
            Some(c) if c != 250 => Response::custom(c, format!("scripted refusal of <{to}>")),
            _ => {
                self.to.push(to.to_string());
                mailin::response::OK
            }
        }
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let (hold_after, keep) = {
            let o = self.options.lock().unwrap();
            (o.hold_after, o.keep_data)
        };
        if let Some(n) = hold_after {
            self.hold_if_past(n);
        }
        let data = std::mem::take(&mut self.data);
        self.log.lock().unwrap().mails.push(Received {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            size: data.len(),
            data: if keep { data } else { Vec::new() },
        });
        Response::custom(250, "2.0.0 queued".into())
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, pass: &str) -> Response {
        self.check(user, pass)
    }

    fn auth_login(&mut self, user: &str, pass: &str) -> Response {
        self.check(user, pass)
    }
}

impl Recorder {
    /// Waits for [`Server::release`] if `n` messages were accepted already.
    fn hold_if_past(&self, n: usize) {
        let mut st = self.gate.state.lock().unwrap();
        if st.open || self.log.lock().unwrap().mails.len() < n {
            return;
        }
        st.held += 1;
        self.gate.changed.notify_all();
        let (mut st, _) = self
            .gate
            .changed
            .wait_timeout_while(st, HOLD_LIMIT, |s| !s.open)
            .unwrap();
        st.held -= 1;
    }

    fn check(&mut self, user: &str, pass: &str) -> Response {
        let ok = self
            .options
            .lock()
            .unwrap()
            .auth
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == pass);
        if ok {
            mailin::response::AUTH_OK
        } else {
            self.log.lock().unwrap().auth_failures += 1;
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

/// Writes a (possibly multi-line) response in one write, as real servers do: one TLS record,
/// one TCP segment.
fn reply(out: &mut impl Write, response: &Response) -> io::Result<()> {
    out.write_all(&response.buffer()?)?;
    out.flush()
}

/// The SASL PLAIN response for the configured login.
fn session_credentials(options: &Mutex<Options>) -> String {
    let (user, pass) = options.lock().unwrap().auth.clone().unwrap_or_default();
    super::base64(format!("\0{user}\0{pass}").as_bytes())
}

fn serve(
    tcp: TcpStream,
    tls: Arc<ServerConfig>,
    options: Arc<Mutex<Options>>,
    log: Arc<Mutex<Log>>,
    gate: Arc<Gate>,
) -> io::Result<()> {
    let (mode, auth, idle) = {
        let o = options.lock().unwrap();
        (o.mode, o.auth.is_some(), o.idle_timeout)
    };
    tcp.set_read_timeout(Some(idle.unwrap_or(Duration::from_secs(30))))?;
    tcp.set_nodelay(true)?;
    let mut builder = SessionBuilder::new("mx.test");
    if auth {
        builder
            .enable_auth(AuthMechanism::Plain)
            .enable_auth(AuthMechanism::Login);
    }
    if mode == Mode::StartTls {
        builder.enable_start_tls();
    }
    let options_for_rset = Arc::clone(&options);
    let handler = Recorder {
        log: Arc::clone(&log),
        gate,
        options,
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let ip = tcp.peer_addr()?.ip();
    let mut session = builder.build(ip, handler);

    let mut conn = match mode {
        Mode::Tls => {
            let s = StreamOwned::new(
                ServerConnection::new(Arc::clone(&tls)).map_err(io::Error::other)?,
                tcp,
            );
            log.lock().unwrap().tls_sessions += 1;
            session.tls_active();
            Conn::Tls(Box::new(s))
        }
        Mode::StartTls | Mode::NoStartTls => Conn::Plain(tcp),
    };
    reply(&mut conn, &session.greeting())?;

    let mut reader = BufReader::new(conn);
    let mut in_data = false;
    let mut authenticated = false;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !in_data {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            log.lock().unwrap().commands.push(text);
        }
        let response = session.process(&line);
        if response.code == 235 {
            authenticated = true;
        }
        // mailin forgets a successful AUTH on RSET (RFC 4954 §4 says RSET keeps it), so an
        // authenticated client's next MAIL would get 503. Log in again behind its back.
        if authenticated && !in_data && line.eq_ignore_ascii_case(b"RSET\r\n") {
            let creds = session_credentials(&options_for_rset);
            let _ = session.process(b"AUTH PLAIN\r\n");
            let _ = session.process(format!("{creds}\r\n").as_bytes());
        }
        match response.action {
            Action::Reply => {
                if response.code == 354 {
                    in_data = true;
                } else if in_data && line == b".\r\n" {
                    in_data = false;
                }
                reply(reader.get_mut(), &response)?;
            }
            Action::NoReply => {}
            Action::Close => {
                reply(reader.get_mut(), &response)?;
                return Ok(());
            }
            Action::UpgradeTls => {
                reply(reader.get_mut(), &response)?;
                let Conn::Plain(tcp) = reader.into_inner() else {
                    return Ok(());
                };
                let s = StreamOwned::new(
                    ServerConnection::new(Arc::clone(&tls)).map_err(io::Error::other)?,
                    tcp,
                );
                log.lock().unwrap().tls_sessions += 1;
                session.tls_active();
                reader = BufReader::new(Conn::Tls(Box::new(s)));
            }
        }
    }
}
