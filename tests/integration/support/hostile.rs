//! A scripted SMTP server that misbehaves on purpose: refuses or withholds STARTTLS, injects
//! plaintext after `220 Ready to start TLS`, offers only TLS 1.0, stalls, or drops the line after
//! accepting a message. Everything it receives is logged, so tests can assert that no `MAIL FROM`
//! (or no credential) ever reached it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::pki::ServerCert;
use super::{Conn, Listener, server_tls};

/// How the hostile server behaves.
#[derive(Clone)]
pub struct Script {
    /// TLS from the first byte (else plaintext with STARTTLS).
    pub implicit_tls: bool,
    pub cert: ServerCert,
    /// Say nothing after accepting, until the client hangs up.
    pub never_greet: bool,
    pub advertise_starttls: bool,
    /// The reply to STARTTLS (a TLS handshake follows only for 220).
    pub starttls_reply: String,
    /// Bytes sent in the same write as the STARTTLS reply.
    pub inject: Vec<u8>,
    /// Bytes sent in a separate write after the STARTTLS reply, once the client has started its
    /// TLS handshake.
    pub inject_later: Vec<u8>,
    /// Answer the TLS ClientHello with a TLS 1.0 ServerHello.
    pub tls10_only: bool,
    /// Read the message, then never answer the final dot (until the client hangs up).
    pub stall_after_data: bool,
    /// Answer the final dot with 250, then close the connection at once.
    pub reset_after_accept: bool,
    /// Reply to EHLO with these extension lines (after the first line).
    pub extensions: Vec<String>,
}

impl Script {
    pub fn new(cert: ServerCert) -> Script {
        Script {
            implicit_tls: false,
            cert,
            never_greet: false,
            advertise_starttls: true,
            starttls_reply: "220 2.0.0 Ready to start TLS".into(),
            inject: Vec::new(),
            inject_later: Vec::new(),
            tls10_only: false,
            stall_after_data: false,
            reset_after_accept: false,
            extensions: vec!["AUTH PLAIN LOGIN".into(), "8BITMIME".into()],
        }
    }
}

/// What the hostile server received.
#[derive(Debug, Default)]
pub struct Seen {
    pub connections: usize,
    /// Command lines, in plaintext or decrypted.
    pub commands: Vec<String>,
    pub messages: usize,
}

impl Seen {
    pub fn mail_from(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("MAIL FROM"))
            .count()
    }
    pub fn auth(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("AUTH"))
            .count()
    }
}

pub struct Hostile {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    _listener: Listener,
}

impl Hostile {
    pub fn start(script: Script) -> Hostile {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tls = server_tls(&script.cert);
        let listener = {
            let seen = Arc::clone(&seen);
            Listener::start(move |conn| {
                seen.lock().unwrap().connections += 1;
                let _ = serve(conn, &script, Arc::clone(&tls), &seen);
            })
        };
        Hostile {
            addr: listener.addr,
            seen,
            _listener: listener,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

/// A TLS 1.0 ServerHello (TLS_RSA_WITH_AES_128_CBC_SHA), as an old server would answer.
fn tls10_server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01]; // TLS 1.0
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x2f]); // cipher suite
    body.push(0); // no compression
    let mut hs = vec![0x02, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

/// Says nothing and reads whatever comes until the client closes the connection (or the
/// server's own 20 s read timeout passes): a stall exactly as long as the client's patience.
fn until_the_client_hangs_up(from: &mut impl Read) {
    let _ = io::copy(from, &mut io::sink());
}

fn serve(
    tcp: TcpStream,
    script: &Script,
    tls: Arc<ServerConfig>,
    seen: &Mutex<Seen>,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_nodelay(true)?;
    let tls_hello = |mut tcp: TcpStream| -> io::Result<Option<Conn>> {
        if script.tls10_only {
            let mut hello = [0u8; 512];
            let _ = tcp.read(&mut hello)?;
            tcp.write_all(&tls10_server_hello())?;
            // Open until the client gives up on it: a close now could reset the connection
            // before the client has read the ServerHello.
            until_the_client_hangs_up(&mut tcp);
            return Ok(None);
        }
        Ok(Some(Conn::Tls(Box::new(StreamOwned::new(
            ServerConnection::new(Arc::clone(&tls)).map_err(io::Error::other)?,
            tcp,
        )))))
    };
    let conn = if script.implicit_tls {
        match tls_hello(tcp)? {
            Some(c) => c,
            None => return Ok(()),
        }
    } else {
        Conn::Plain(tcp)
    };
    let mut reader = BufReader::new(conn);
    if script.never_greet {
        until_the_client_hangs_up(&mut reader);
        return Ok(());
    }
    reader.get_mut().write_all(b"220 hostile.test ESMTP\r\n")?;
    let mut encrypted = script.implicit_tls;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        seen.lock().unwrap().commands.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let out = reader.get_mut();
        if upper.starts_with("EHLO") {
            let mut lines = vec!["hostile.test".to_string()];
            if script.advertise_starttls && !encrypted {
                lines.push("STARTTLS".into());
            }
            lines.extend(script.extensions.iter().cloned());
            let n = lines.len();
            let mut reply = String::new();
            for (i, l) in lines.iter().enumerate() {
                reply.push_str(&format!("250{}{l}\r\n", if i + 1 < n { '-' } else { ' ' }));
            }
            out.write_all(reply.as_bytes())?;
        } else if upper == "STARTTLS" {
            let mut bytes = format!("{}\r\n", script.starttls_reply).into_bytes();
            bytes.extend_from_slice(&script.inject);
            out.write_all(&bytes)?;
            out.flush()?;
            if !script.inject_later.is_empty() {
                // Wait for the client's first handshake bytes: it has read the 220 by then, so
                // the injection certainly arrives in a later segment, after the reply was judged.
                if let Conn::Plain(tcp) = reader.get_ref() {
                    tcp.peek(&mut [0u8; 1])?;
                }
                reader.get_mut().write_all(&script.inject_later)?;
            }
            if !script.starttls_reply.starts_with("220") {
                continue;
            }
            let Conn::Plain(tcp) = reader.into_inner() else {
                return Ok(());
            };
            match tls_hello(tcp)? {
                Some(c) => reader = BufReader::new(c),
                None => return Ok(()),
            }
            encrypted = true;
        } else if upper.starts_with("AUTH") {
            out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("MAIL FROM")
            || upper.starts_with("RCPT TO")
            || upper == "RSET"
            || upper == "NOOP"
        {
            out.write_all(b"250 2.0.0 OK\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 go ahead\r\n")?;
            loop {
                let mut data = String::new();
                if reader.read_line(&mut data)? == 0 {
                    return Ok(());
                }
                if data == ".\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().messages += 1;
            if script.stall_after_data {
                until_the_client_hangs_up(&mut reader);
                return Ok(());
            }
            reader.get_mut().write_all(b"250 2.0.0 accepted\r\n")?;
            if script.reset_after_accept {
                return Ok(());
            }
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 5.5.2 unknown command\r\n")?;
        }
    }
}
