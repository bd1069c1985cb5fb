//! The SMTP submission client: RFC 5321 over TLS, nothing else.
//!
//! Why our own dialogue instead of lettre's `SmtpTransport`: lettre reads replies through a
//! `BufReader` and, on STARTTLS, upgrades the stream underneath it without looking at what is
//! still buffered, so bytes an attacker appends to `220 Ready to start TLS` are later read as if
//! the encrypted server had sent them (the "NO STARTTLS" response-injection class, USENIX
//! Security 2021), and its API gives no hook to check. Here the read buffer is ours: after the
//! `220` to STARTTLS it must be empty, or the session is refused. Owning the dialogue also lets
//! `-v` show it with secrets redacted, report the TLS version, pipeline commands (RFC 2920) and
//! keep one connection for many mails.
//!
//! The session is either TLS from the first byte ([`Security::Tls`]) or STARTTLS that must
//! succeed before EHLO's answer is trusted, AUTH is tried or MAIL is sent
//! ([`Security::StartTls`]). There is no plaintext mode.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use zeroize::Zeroizing;

use super::{Reply, Stage, TransportError, tls};
use crate::config::{Security, SmtpSettings};
use crate::secret::Secret;

/// Longest reply line we accept (RFC 5321 says 512; real servers send a little more).
const MAX_LINE: usize = 4096;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 256;

/// Receives the SMTP dialogue for `-v`, secrets already redacted.
pub type Trace = Arc<dyn Fn(&str) + Send + Sync>;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What the server said it can do in its (post-TLS) EHLO reply.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    /// The keyword lines as sent, e.g. `AUTH PLAIN LOGIN`, `SIZE 35882577`.
    pub lines: Vec<String>,
    pub starttls: bool,
    pub pipelining: bool,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub size: Option<u64>,
    /// SASL mechanisms, upper case.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keywords of an EHLO reply.
    pub fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => ext.starttls = true,
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eightbitmime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "SIZE" => ext.size = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0),
                // SASL mechanism names are 1-20 of A-Z, 0-9, '-', '_' (RFC 4422 §3.1); anything
                // else is noise from a broken or hostile server.
                "AUTH" => ext
                    .auth
                    .extend(words.map(|w| w.to_ascii_uppercase()).filter(|w| {
                        (1..=20).contains(&w.len())
                            && w.bytes().all(|b| {
                                b.is_ascii_uppercase()
                                    || b.is_ascii_digit()
                                    || b == b'-'
                                    || b == b'_'
                            })
                    })),
                _ => {}
            }
            ext.lines.push(line.clone());
        }
        ext
    }
}

/// The negotiated TLS parameters, for `-v` and `check`.
#[derive(Debug, Clone)]
pub struct TlsSummary {
    /// e.g. `TLSv1.3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The server's certificate chain, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
}

/// One authenticated, encrypted SMTP session.
pub struct Session {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    host: String,
    port: u16,
    timeout: Duration,
    ext: Extensions,
    tls: Option<TlsSummary>,
    trace: Option<Trace>,
    greeting: Option<Reply>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A mail transaction between [`Session::start`] and [`Session::confirm`].
#[derive(Debug)]
pub struct Transaction {
    rcpt: String,
    pipelined: bool,
}

/// Login name and password for AUTH.
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a Secret<String>,
}

impl Session {
    /// Connects, secures the connection, says EHLO and (when `credentials` are given) logs in.
    ///
    /// Long on purpose: it is the protocol's opening sequence for both kinds of security, step
    /// by step, with the STARTTLS checks exactly where the protocol allows injected bytes.
    pub fn open(
        settings: &SmtpSettings,
        tls_config: Arc<ClientConfig>,
        credentials: Option<Credentials<'_>>,
        trace: Option<Trace>,
    ) -> Result<Session, TransportError> {
        let host = settings.host.as_str();
        let port = settings.port;
        let timeout = settings.timeout;
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| TransportError::Resolve {
                host: host.to_string(),
                source: Some(e),
            })?
            .collect();
        let mut last_err = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| match last_err {
            Some(e) if is_timeout(&e) => TransportError::Timeout {
                stage: Stage::Connect,
                secs: timeout.as_secs(),
            },
            Some(e) => TransportError::Connect {
                host: host.to_string(),
                port,
                source: e,
            },
            None => TransportError::Resolve {
                host: host.to_string(),
                source: None,
            },
        })?;
        // Best effort: Nagle only delays our small command writes.
        let _ = tcp.set_nodelay(true);

        let mut session = Session {
            stream: Stream::Plain(tcp),
            buf: Vec::with_capacity(4096),
            start: 0,
            host: host.to_string(),
            port,
            timeout,
            ext: Extensions::default(),
            tls: None,
            trace,
            greeting: None,
        };
        session.log(&format!(
            "connected to {host}:{port} ({}), security {}",
            session
                .stream
                .tcp()
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            settings.security
        ));

        match settings.security {
            Security::Tls => {
                session.handshake(tls_config)?;
                session.ack_promptly();
                session.read_greeting()?;
                session.ehlo(&settings.hello_name)?;
            }
            Security::StartTls => {
                session.read_greeting()?;
                session.ehlo(&settings.hello_name)?;
                if !session.ext.starttls {
                    return Err(TransportError::NoStartTls {
                        host: host.to_string(),
                        port,
                    });
                }
                // The server has nothing to say until asked: bytes already waiting here, or past
                // the 220 below, came in plaintext from whoever is on the path, and must never
                // be read as the encrypted server's replies.
                session.refuse_pending()?;
                session.write_line("STARTTLS", Stage::StartTls)?;
                let reply = session.read_reply(Stage::StartTls)?;
                if reply.code != 220 {
                    return Err(TransportError::StartTlsRefused { reply });
                }
                session.refuse_pending()?;
                session.handshake(tls_config).map_err(|e| match e {
                    TransportError::NotTls { host, .. } => TransportError::TlsHandshake {
                        host,
                        reason: "the server's answer to STARTTLS was not a TLS handshake \
                                     (plaintext injected after the 220?)"
                            .into(),
                    },
                    other => other,
                })?;
                // Forget everything learned before TLS (RFC 3207 §4.2) and ask again.
                session.ext = Extensions::default();
                session.ehlo(&settings.hello_name)?;
            }
        }

        if let Some(c) = credentials {
            session.authenticate(c)?;
        }

        Ok(session)
    }

    /// The server's EHLO keywords after TLS.
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// The negotiated TLS parameters.
    pub fn tls(&self) -> Option<&TlsSummary> {
        self.tls.as_ref()
    }

    /// The server's greeting.
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    fn log(&mut self, line: &str) {
        if let Some(t) = &self.trace {
            t(line);
        }
    }

    /// Fails if unread bytes sit in the read buffer (see the STARTTLS step of [`Session::open`]).
    fn refuse_pending(&self) -> Result<(), TransportError> {
        match self.buf.len() - self.start {
            0 => Ok(()),
            bytes => Err(TransportError::StartTlsInjection { bytes }),
        }
    }

    /// The TLS handshake over the session's TCP stream, with one deadline for all of it, then
    /// records what was negotiated. Long on purpose: each way the handshake can end maps to its
    /// own error, and they are easiest to check side by side.
    fn handshake(&mut self, config: Arc<ClientConfig>) -> Result<(), TransportError> {
        let name =
            ServerName::try_from(self.host.clone()).map_err(|_| TransportError::TlsHandshake {
                host: self.host.clone(),
                reason: "the host is not a valid DNS name or IP address".into(),
            })?;
        let mut conn = ClientConnection::new(config, name)
            .map_err(|e| TransportError::TlsSetup(e.to_string()))?;
        let placeholder =
            Stream::Plain(
                self.stream
                    .tcp()
                    .try_clone()
                    .map_err(|e| TransportError::Connect {
                        host: self.host.clone(),
                        port: self.port,
                        source: e,
                    })?,
            );
        let Stream::Plain(mut tcp) = std::mem::replace(&mut self.stream, placeholder) else {
            return Err(TransportError::TlsSetup("TLS started twice".into()));
        };
        let deadline = Instant::now() + self.timeout;
        while conn.is_handshaking() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(TransportError::Timeout {
                    stage: Stage::TlsHandshake,
                    secs: self.timeout.as_secs(),
                });
            }
            let _ = tcp.set_read_timeout(Some(remaining));
            let _ = tcp.set_write_timeout(Some(remaining));
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(TransportError::Closed {
                        stage: Stage::TlsHandshake,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(tls::classify(&self.host, self.port, &e).unwrap_or_else(|| {
                        if is_timeout(&e) {
                            TransportError::Timeout {
                                stage: Stage::TlsHandshake,
                                secs: self.timeout.as_secs(),
                            }
                        } else if e.kind() == io::ErrorKind::UnexpectedEof
                            || e.kind() == io::ErrorKind::ConnectionReset
                        {
                            TransportError::Closed {
                                stage: Stage::TlsHandshake,
                            }
                        } else {
                            TransportError::TlsHandshake {
                                host: self.host.clone(),
                                reason: e.to_string(),
                            }
                        }
                    }));
                }
            }
        }
        let version = conn
            .protocol_version()
            .map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1."))
            .unwrap_or_default();
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default();
        let chain = conn
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default();
        self.tls = Some(TlsSummary {
            version: version.clone(),
            cipher: cipher.clone(),
            chain,
        });
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        self.log(&format!(
            "TLS established: {version}, {cipher}, certificate verified for {}",
            self.host
        ));
        Ok(())
    }

    /// After a TLS 1.3 handshake on an implicit-TLS port the server writes its session tickets
    /// and then the `220` greeting as two small segments; with Nagle on the server's side the
    /// greeting waits for our ACK of the tickets, which Linux delays by up to 40 ms since we have
    /// nothing to send. Measured against Postfix: 42 of a cold send's 56 ms. Asking for a quick
    /// ACK once here removes the wait; it is a hint to the kernel, so a failure is ignored.
    fn ack_promptly(&self) {
        #[cfg(target_os = "linux")]
        {
            let _ = socket2::SockRef::from(self.stream.tcp()).set_tcp_quickack(true);
        }
    }

    fn read_greeting(&mut self) -> Result<(), TransportError> {
        let reply = self.read_reply(Stage::Greeting)?;
        if reply.code != 220 {
            return Err(TransportError::from_reply(Stage::Greeting, reply));
        }
        self.greeting = Some(reply);
        Ok(())
    }

    fn ehlo(&mut self, hello_name: &str) -> Result<(), TransportError> {
        let reply = self.command(&format!("EHLO {hello_name}"), Stage::Ehlo)?;
        let reply = expect(reply, Stage::Ehlo, |c| c == 250)?;
        self.ext = Extensions::parse(&reply);
        Ok(())
    }

    /// Logs in with PLAIN (or LOGIN when PLAIN is not offered); returns the server's `235`.
    pub fn authenticate(&mut self, c: Credentials<'_>) -> Result<Reply, TransportError> {
        if self.ext.auth.is_empty() {
            return Err(TransportError::AuthUnavailable {
                host: self.host.clone(),
            });
        }
        let has = |m: &str| self.ext.auth.iter().any(|a| a == m);
        let reply = if has("PLAIN") {
            let mut raw = Zeroizing::new(Vec::with_capacity(
                c.username.len() + c.password.expose().len() + 2,
            ));
            raw.push(0);
            raw.extend_from_slice(c.username.as_bytes());
            raw.push(0);
            raw.extend_from_slice(c.password.expose().as_bytes());
            let line = Zeroizing::new(format!("AUTH PLAIN {}", base64(&raw).expose()));
            self.write_secret_line(&line, "AUTH PLAIN <redacted>", Stage::Auth)?;
            self.read_reply(Stage::Auth)?
        } else if has("LOGIN") {
            let r = self.command("AUTH LOGIN", Stage::Auth)?;
            expect_auth(r, 334)?;
            let user = base64(c.username.as_bytes());
            self.write_secret_line(user.expose(), "<username redacted>", Stage::Auth)?;
            let r = self.read_reply(Stage::Auth)?;
            expect_auth(r, 334)?;
            let pass = base64(c.password.expose().as_bytes());
            self.write_secret_line(pass.expose(), "<password redacted>", Stage::Auth)?;
            self.read_reply(Stage::Auth)?
        } else {
            return Err(TransportError::AuthMechanism {
                offered: self.ext.auth.join(" "),
            });
        };
        expect_auth(reply, 235)
    }

    /// Sends one message to one recipient. On a refusal the session is reset and stays usable.
    pub fn send(&mut self, from: &str, to: &str, body: &[u8]) -> Result<Reply, TransportError> {
        let t = self.start(from, to, body)?;
        self.confirm(t)?;
        self.finish(body)
    }

    /// Step 1 of [`Session::send`]: writes `MAIL FROM` (and, when the server pipelines,
    /// `RCPT TO` and `DATA` with it) without waiting for the replies, so that the caller can do
    /// other work (a batch records the mail in its store) while they travel. Must be followed by
    /// [`Session::confirm`].
    pub fn start(
        &mut self,
        from: &str,
        to: &str,
        body: &[u8],
    ) -> Result<Transaction, TransportError> {
        if let Some(limit) = self.ext.size
            && body.len() as u64 > limit
        {
            return Err(TransportError::TooLarge {
                size: body.len() as u64,
                limit,
            });
        }
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", body.len()));
        }
        if !body.is_ascii() && self.ext.eightbitmime {
            mail.push_str(" BODY=8BITMIME");
        }
        if !(from.is_ascii() && to.is_ascii()) {
            if !self.ext.smtputf8 {
                return Err(TransportError::NeedsSmtpUtf8);
            }
            mail.push_str(" SMTPUTF8");
        }
        let rcpt = format!("RCPT TO:<{to}>");
        let pipelined = self.ext.pipelining;
        if pipelined {
            self.write_lines(&[&mail, &rcpt, "DATA"], Stage::MailFrom)?;
        } else {
            self.write_line(&mail, Stage::MailFrom)?;
        }
        Ok(Transaction { rcpt, pipelined })
    }

    /// Step 2: reads the replies up to `354` (sending `RCPT`/`DATA` in turn when not
    /// pipelining). On a refusal the transaction is reset.
    pub fn confirm(&mut self, t: Transaction) -> Result<(), TransportError> {
        let (r_mail, r_rcpt, r_data) = if t.pipelined {
            let a = self.read_reply(Stage::MailFrom)?;
            let b = self.read_reply(Stage::RcptTo)?;
            let c = self.read_reply(Stage::Data)?;
            (a, Some(b), Some(c))
        } else {
            let a = self.read_reply(Stage::MailFrom)?;
            if a.code != 250 {
                (a, None, None)
            } else {
                let b = self.command(&t.rcpt, Stage::RcptTo)?;
                if !(b.code == 250 || b.code == 251) {
                    (a, Some(b), None)
                } else {
                    let c = self.command("DATA", Stage::Data)?;
                    (a, Some(b), Some(c))
                }
            }
        };

        let failure = if r_mail.code != 250 {
            Some(TransportError::from_reply(Stage::MailFrom, r_mail))
        } else {
            r_rcpt
                .filter(|b| !(b.code == 250 || b.code == 251))
                .map(|b| TransportError::from_reply(Stage::RcptTo, b))
        };
        match (failure, r_data) {
            (None, Some(d)) if d.code == 354 => Ok(()),
            (None, Some(d)) => {
                let err = TransportError::from_reply(Stage::Data, d);
                self.reset();
                Err(err)
            }
            (None, None) => Err(TransportError::Protocol {
                stage: Stage::Data,
                detail: "no reply to DATA".into(),
            }),
            (Some(err), data) => {
                if data.is_some_and(|d| d.code == 354) {
                    // A broken server opened DATA although the transaction failed: close it empty.
                    self.write_raw(b".\r\n", Stage::Message)?;
                    let _ = self.read_reply(Stage::Message);
                }
                self.reset();
                Err(err)
            }
        }
    }

    /// Step 3: sends the message (dot-stuffed) and returns the server's final reply.
    pub fn finish(&mut self, body: &[u8]) -> Result<Reply, TransportError> {
        let mut stuffed = Zeroizing::new(Vec::with_capacity(body.len() + body.len() / 64 + 8));
        dot_stuff(body, &mut stuffed);
        self.log(&format!("> [message: {} bytes]", body.len()));
        self.write_raw_quiet(&stuffed, Stage::Message)?;
        self.log("> .");
        let reply = self.read_reply(Stage::Message)?;
        if reply.code == 250 {
            Ok(reply)
        } else {
            let err = TransportError::from_reply(Stage::Message, reply);
            self.reset();
            Err(err)
        }
    }

    /// Checks that the connection still answers (for reusing an idle one).
    pub fn noop(&mut self) -> bool {
        matches!(self.command("NOOP", Stage::Noop), Ok(r) if r.code == 250)
    }

    /// Aborts the current transaction; failures are ignored (the next command will notice).
    fn reset(&mut self) {
        let _ = self.command("RSET", Stage::Rset);
    }

    /// Says goodbye. Errors do not matter any more: the mail is already accepted or refused.
    pub fn quit(mut self) {
        let _ = self.command("QUIT", Stage::Quit);
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    fn command(&mut self, line: &str, stage: Stage) -> Result<Reply, TransportError> {
        self.write_line(line, stage)?;
        self.read_reply(stage)
    }

    fn write_line(&mut self, line: &str, stage: Stage) -> Result<(), TransportError> {
        self.log(&format!("> {line}"));
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.write_raw_quiet(&out, stage)
    }

    fn write_lines(&mut self, lines: &[&str], stage: Stage) -> Result<(), TransportError> {
        let mut out = Vec::new();
        for line in lines {
            self.log(&format!("> {line}"));
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.write_raw_quiet(&out, stage)
    }

    fn write_secret_line(
        &mut self,
        line: &str,
        shown: &str,
        stage: Stage,
    ) -> Result<(), TransportError> {
        self.log(&format!("> {shown}"));
        let mut out = Zeroizing::new(Vec::with_capacity(line.len() + 2));
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.write_raw_quiet(&out, stage)
    }

    fn write_raw(&mut self, bytes: &[u8], stage: Stage) -> Result<(), TransportError> {
        self.log(&format!("> {}", String::from_utf8_lossy(bytes).trim_end()));
        self.write_raw_quiet(bytes, stage)
    }

    fn write_raw_quiet(&mut self, bytes: &[u8], stage: Stage) -> Result<(), TransportError> {
        let _ = self.stream.tcp().set_write_timeout(Some(self.timeout));
        let r = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        r.map_err(|e| self.io_error(e, stage))
    }

    fn io_error(&self, e: io::Error, stage: Stage) -> TransportError {
        if let Some(t) = tls::classify(&self.host, self.port, &e) {
            return t;
        }
        if is_timeout(&e) {
            TransportError::Timeout {
                stage,
                secs: self.timeout.as_secs(),
            }
        } else {
            TransportError::Closed { stage }
        }
    }

    /// Reads one complete (possibly multi-line) reply within the timeout.
    fn read_reply(&mut self, stage: Stage) -> Result<Reply, TransportError> {
        let deadline = Instant::now() + self.timeout;
        let mut code: Option<u16> = None;
        let mut lines = Vec::new();
        loop {
            let raw = self.read_line(stage, deadline)?;
            let line = String::from_utf8_lossy(&raw).into_owned();
            self.log(&format!("< {line}"));
            let (this, more, text) =
                reply_line(&line).map_err(|detail| TransportError::Protocol { stage, detail })?;
            if code.is_some_and(|c| c != this) {
                return Err(TransportError::Protocol {
                    stage,
                    detail: "reply lines carry different codes".into(),
                });
            }
            code = Some(this);
            lines.push(text.to_string());
            if !more {
                break;
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(TransportError::Protocol {
                    stage,
                    detail: "reply has too many lines".into(),
                });
            }
        }
        Ok(Reply {
            code: code.unwrap_or(0),
            lines,
        })
    }

    fn read_line(&mut self, stage: Stage, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        loop {
            if let Some(pos) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let end = self.start + pos;
                let mut line = self.buf[self.start..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.start = end + 1;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(line);
            }
            if self.buf.len() - self.start > MAX_LINE {
                return Err(TransportError::Protocol {
                    stage,
                    detail: format!("reply line longer than {MAX_LINE} bytes"),
                });
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(TransportError::Timeout {
                    stage,
                    secs: self.timeout.as_secs(),
                });
            }
            let _ = self.stream.tcp().set_read_timeout(Some(remaining));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(TransportError::Closed { stage }),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e, stage)),
            }
        }
    }
}

/// One reply line: its code, whether more lines follow (`250-…`), and its text.
pub fn reply_line(line: &str) -> Result<(u16, bool, &str), String> {
    let bytes = line.as_bytes();
    let valid = bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && matches!(bytes.get(3), None | Some(b' ') | Some(b'-'))
        && (b'2'..=b'5').contains(&bytes[0]);
    if !valid {
        return Err(format!(
            "malformed reply line {}",
            crate::quote(&printable(line))
        ));
    }
    let code = u16::from(bytes[0] - b'0') * 100
        + u16::from(bytes[1] - b'0') * 10
        + u16::from(bytes[2] - b'0');
    Ok((
        code,
        bytes.get(3) == Some(&b'-'),
        line.get(4..).unwrap_or(""),
    ))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn expect(reply: Reply, stage: Stage, ok: impl Fn(u16) -> bool) -> Result<Reply, TransportError> {
    if ok(reply.code) {
        Ok(reply)
    } else {
        Err(TransportError::from_reply(stage, reply))
    }
}

fn expect_auth(reply: Reply, want: u16) -> Result<Reply, TransportError> {
    match reply.code {
        c if c == want => Ok(reply),
        400..=499 => Err(TransportError::Temporary {
            stage: Stage::Auth,
            reply,
        }),
        _ => Err(TransportError::AuthFailed { reply }),
    }
}

/// Server text made safe for a terminal: control characters become `?`.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Appends `body` with SMTP dot-stuffing and the terminating `.` line (RFC 5321 §4.5.2).
pub fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
    // Copy whole lines; only a line that starts with '.' needs an extra byte.
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Standard base64 (RFC 4648) of a SASL secret, kept wrapped.
fn base64(input: &[u8]) -> Secret<String> {
    use base64::Engine as _;
    Secret::new(base64::engine::general_purpose::STANDARD.encode(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()).expose(), o);
        }
    }

    #[test]
    fn dot_stuffing() {
        let mut out = Vec::new();
        dot_stuff(b".a\r\nb\r\n..c\r\n.\r\n", &mut out);
        assert_eq!(out, b"..a\r\nb\r\n...c\r\n..\r\n.\r\n");
        let mut out = Vec::new();
        dot_stuff(b"no newline", &mut out);
        assert_eq!(out, b"no newline\r\n.\r\n");
    }

    #[test]
    fn ehlo_extensions_are_parsed() {
        let r = Reply {
            code: 250,
            lines: vec![
                "mx.example.org greets you".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
                "AUTH PLAIN login X\u{e9}Y".into(),
                "STARTTLS".into(),
            ],
        };
        let e = Extensions::parse(&r);
        assert!(e.pipelining && e.starttls && !e.smtputf8);
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth, vec!["PLAIN", "LOGIN"]);
    }
}
