//! Reading the code out of a reply email, and deciding whether the reply counts at all.
//!
//! Anybody can send mail to the reply inbox, and vacation responders and bounces answer our mails
//! by themselves, often repeating them — key included. So a reply is first screened
//! ([`screen`]): an automatic mail (RFC 3834 `Auto-Submitted`, `Precedence: bulk`, a
//! `multipart/report` bounce, a null Return-Path, MAILER-DAEMON…) is set aside, and so is one
//! whose sender is not a single plain mailbox or, when `[reply] require_authenticated` is set,
//! is not vouched for by the receiving server's `Authentication-Results` (RFC 8601). Set-aside
//! mails never reach the store, so they never cost the recipient an attempt.
//!
//! Then only what the person typed is read: the text above the quoted original. The quote is
//! found by the known headers of common clients and, for any language or client, by its shape
//! (an attribution line with an address or a date ending in `:`, a block of `Label: value` lines
//! naming an address, separator lines, `>` lines, HTML quote containers), where weaker shapes
//! need the original's own wording (our templates, the subject) after them as confirmation.
//! Codes are taken only as standalone tokens ([`numeric_codes`], [`keys`]); several different
//! ones make the reply ambiguous.

use std::collections::HashSet;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::config::ReplyPolicy;
use crate::exit;
use crate::key;

/// Largest reply message we read.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What securemail needs from a reply that passed screening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMail {
    /// The sender, as [`sender_key`] writes it: the key of the record the reply is checked
    /// against.
    pub from: String,
    /// Message-IDs named by `In-Reply-To` and `References`, with angle brackets.
    pub answers: Vec<String>,
    /// The reply's own text above the quote (for code extraction).
    pub fresh_text: String,
}

/// A mail that is not looked at for a code, and costs nobody an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetAside {
    /// Nobody typed it: an auto-reply, a bounce, a report.
    Automatic { why: String },
    /// Its sender cannot be told: several or no plain mailbox in From, or failed authentication.
    Unauthenticated { why: String },
}

impl SetAside {
    /// The Maildir folder (beside new/ and cur/) such mails are moved to.
    pub fn folder(&self) -> &'static str {
        match self {
            SetAside::Automatic { .. } => "auto",
            SetAside::Unauthenticated { .. } => "unauthenticated",
        }
    }

    pub fn why(&self) -> &str {
        match self {
            SetAside::Automatic { why } | SetAside::Unauthenticated { why } => why,
        }
    }
}

/// What screening a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screened {
    Reply(ReplyMail),
    SetAside(SetAside),
}

/// The message cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("the message is larger than {} MB", MAX_MESSAGE_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("the input is not an email message")]
    NotAMessage,
    #[error("the message has no From address")]
    NoSender,
    #[error("the message has no text")]
    NoText,
}

impl InboundError {
    pub fn exit_code(&self) -> u8 {
        exit::DATAERR
    }
}

/// The record key of a reply's sender: the same canonical address `--to` gives
/// ([`crate::mail::recipient::canonical_str`]), so that a reply counts for the record of the
/// mailbox it came from and no other. `Err` says why the address names no mailbox securemail
/// sends to (a look-alike, a bad domain).
pub fn sender_key(address: &str) -> Result<String, String> {
    crate::mail::recipient::canonical_str(address)
        .map(|a| a.to_string())
        .map_err(|e| e.to_string())
}

/// Screens a message and, when it counts, reads who sent it and the text they typed.
/// `original` is what our own mails say (see [`Original`]).
pub fn screen(
    raw: &[u8],
    policy: &ReplyPolicy,
    original: &Original,
) -> Result<Screened, InboundError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(InboundError::TooLarge);
    }
    // mail-parser accepts anything; a message starts with a header field ("Name: value").
    let first = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let name_len = first.iter().position(|&b| b == b':').unwrap_or(0);
    if name_len == 0 || !first[..name_len].iter().all(|b| (33..=126).contains(b)) {
        return Err(InboundError::NotAMessage);
    }
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(InboundError::NotAMessage)?;
    let headers = header_fields(raw);
    // A delivery, read or feedback report, at the top or as a part (RFC 3462, 3464, 3798, 5965).
    let report = msg.parts.iter().any(|part| {
        part.content_type().is_some_and(|ct| {
            let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
            match ct.ctype().to_ascii_lowercase().as_str() {
                "multipart" => sub == "report",
                "message" => matches!(
                    sub.as_str(),
                    "delivery-status" | "disposition-notification" | "feedback-report"
                ),
                _ => false,
            }
        })
    });
    if let Some(why) = automatic(&headers, report, msg.subject().unwrap_or("")) {
        return Ok(Screened::SetAside(SetAside::Automatic { why }));
    }
    let from = match sole_sender(&msg, &headers)?.and_then(|f| sender_key(&f)) {
        Ok(from) => from,
        Err(why) => return Ok(Screened::SetAside(SetAside::Unauthenticated { why })),
    };
    if let Some(id) = &policy.authserv_id
        && let Err(why) = authenticated(&headers, id, &from)
    {
        return Ok(Screened::SetAside(SetAside::Unauthenticated { why }));
    }
    let mut answers = ids(msg.in_reply_to());
    for id in ids(msg.references()) {
        if !answers.contains(&id) {
            answers.push(id);
        }
    }
    let part = msg.text_part(0).ok_or(InboundError::NoText)?;
    let text = match &part.body {
        PartType::Text(t) => t.to_string(),
        PartType::Html(h) => html_to_text(h),
        _ => return Err(InboundError::NoText),
    };
    let subject = msg.subject().map(original_subject);
    Ok(Screened::Reply(ReplyMail {
        from,
        answers,
        fresh_text: fresh_text(&text, original, subject.as_deref()),
    }))
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    v.as_text_list()
        .map(|l| {
            l.iter()
                .map(|id| format!("<{}>", id.trim().trim_matches(['<', '>'])))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Header fields.

/// The top-level header fields in order, as (lower-case name, unfolded value).
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(&text);
            }
            continue;
        }
        // RFC 5322 §4.5 (obsolete syntax) allows white space before the colon.
        if let Some((name, value)) = text.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.to_string()));
        }
    }
    fields
}

fn field_values<'a>(
    fields: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.trim())
}

/// How automatic replies and bounces begin their subject, in the languages securemail knows.
const AUTO_SUBJECTS: &[&str] = &[
    "auto:",
    "automatic reply",
    "autoreply",
    "auto-reply",
    "auto reply",
    "out of office",
    "out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "automatisch antwoord",
    "resposta automática",
    "risposta automatica",
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "unzustellbar",
    "non remis",
    "onbestelbaar",
    "não entregue",
    "no se puede entregar",
    "fuera de la oficina",
    "ausente",
    "afwezig",
    "absent du bureau",
    "message d'absence",
];

/// Why a mail was written by a machine, if it was (RFC 3834 and the common older markers).
/// `subject` is the decoded Subject (RFC 2047 words decoded: "Réponse automatique" arrives as
/// `=?utf-8?q?R=C3=A9ponse_automatique?=`).
fn automatic(fields: &[(String, String)], report: bool, subject: &str) -> Option<String> {
    for v in field_values(fields, "auto-submitted") {
        let token = v.split([';', '(']).next().unwrap_or("").trim();
        if !token.eq_ignore_ascii_case("no") {
            return Some(format!(
                "an automatic mail (Auto-Submitted: {})",
                clip(token)
            ));
        }
    }
    for v in field_values(fields, "precedence").chain(field_values(fields, "x-precedence")) {
        // The value is a token; comments after it are not part of it ("junk (vacation)").
        let p = v
            .split([';', '('])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ["bulk", "junk", "list", "auto_reply"].contains(&p.as_str()) {
            return Some(format!("an automatic mail (Precedence: {p})"));
        }
    }
    for name in [
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-auto-response-suppress",
        "x-autogenerated",
        "x-auto-reply",
    ] {
        if field_values(fields, name).next().is_some() {
            return Some(format!("an automatic mail (it has {name})"));
        }
    }
    if report {
        return Some("a delivery or read report (multipart/report)".into());
    }
    if field_values(fields, "return-path").any(|v| v.replace([' ', '\t'], "") == "<>") {
        return Some("a bounce (null Return-Path <>)".into());
    }
    for v in field_values(fields, "from") {
        let lower = v.to_ascii_lowercase();
        if lower.contains("mailer-daemon@") || lower.contains("postmaster@") {
            return Some("a bounce (sent by MAILER-DAEMON or postmaster)".into());
        }
    }
    // Tags that gateways put in front ("[EXTERNAL] Out of Office: ...") are not the subject.
    let mut subject = subject.trim_start();
    while let Some(rest) = subject.strip_prefix('[')
        && let Some((_, after)) = rest.split_once(']')
    {
        subject = after.trim_start();
    }
    let subject = icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(subject)
        .to_lowercase();
    AUTO_SUBJECTS
        .iter()
        .find(|s| subject.starts_with(**s))
        .map(|s| format!("an automatic mail (the subject starts with {s:?})"))
}

/// Shortens a header value for a message.
fn clip(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    s
}

/// The one mailbox of the one From header, or why there is not exactly one.
fn sole_sender(
    msg: &mail_parser::Message<'_>,
    fields: &[(String, String)],
) -> Result<Result<String, String>, InboundError> {
    let count = field_values(fields, "from").count();
    if count == 0 {
        return Err(InboundError::NoSender);
    }
    if count > 1 {
        return Ok(Err(format!(
            "the message has {count} From headers; a reply has one"
        )));
    }
    let addrs = match msg.from() {
        Some(Address::List(list)) => list,
        Some(Address::Group(_)) => {
            return Ok(Err("the From header holds a group, not one mailbox".into()));
        }
        None => return Err(InboundError::NoSender),
    };
    if addrs.len() > 1 {
        return Ok(Err(format!(
            "the From header holds {} mailboxes; a reply has one",
            addrs.len()
        )));
    }
    let first = addrs.first().ok_or(InboundError::NoSender)?;
    // mail-parser reads a bare quoted local part (`From: "lee"@example.org`) as the display
    // name "lee" and the address "@example.org": put back what the header says.
    let quoted = match (first.name(), first.address()) {
        (Some(name), Some(at)) if at.starts_with('@') => {
            let whole = format!("\"{name}\"{at}");
            field_values(fields, "from")
                .any(|v| v.contains(&whole))
                .then_some(whole)
        }
        _ => None,
    };
    quoted
        .as_deref()
        .or(first.address())
        .map(str::trim)
        .filter(|a| {
            a.matches('@').count() == 1
                && !a.starts_with('@')
                && !a.ends_with('@')
                && !a.chars().any(|c| c.is_control() || c.is_whitespace())
        })
        .map(|a| Ok(a.to_string()))
        .ok_or(InboundError::NoSender)
}

// ---------------------------------------------------------------------------------------------
// Authentication-Results (RFC 8601).

/// One `Authentication-Results` header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Who wrote it, lower case.
    pub authserv_id: String,
    pub results: Vec<AuthResult>,
}

/// One `method=result` with its reason and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    /// Lower case, without a method version.
    pub method: String,
    /// Lower case.
    pub result: String,
    pub reason: Option<String>,
    /// `(ptype, property, value)`, ptype and property lower case. Non-standard `name=value`
    /// pairs (Microsoft's `action=none`) have an empty ptype.
    pub properties: Vec<(String, String, String)>,
}

impl AuthResult {
    fn property(&self, ptype: &str, property: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(t, p, _)| t == ptype && p == property)
            .map(|(_, _, v)| v.as_str())
    }
}

/// Why an `Authentication-Results` field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthResultsError {
    #[error("no authserv-id")]
    NoAuthservId,
    #[error("unexpected {0:?} at byte {1}")]
    Unexpected(char, usize),
    #[error("it ends inside a comment or quoted string")]
    Unterminated,
    #[error("it ends where {0} was expected")]
    Truncated(&'static str),
}

/// A cursor over a header value, skipping CFWS (white space and nested comments) where the
/// grammar allows it.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn cfws(&mut self) -> Result<(), AuthResultsError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let mut depth = 0usize;
                    loop {
                        match self.peek() {
                            None => return Err(AuthResultsError::Unterminated),
                            Some(b'\\') => self.i += 2,
                            Some(b'(') => {
                                depth += 1;
                                self.i += 1;
                            }
                            Some(b')') => {
                                depth -= 1;
                                self.i += 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Some(_) => self.i += 1,
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, what: &'static str) -> AuthResultsError {
        match self.peek() {
            Some(b) => AuthResultsError::Unexpected(char::from(b), self.i),
            None => AuthResultsError::Truncated(what),
        }
    }

    fn run(&mut self, ok: impl Fn(u8) -> bool) -> String {
        let start = self.i;
        while self.peek().is_some_and(&ok) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// A method, ptype, property or result name (RFC 8601 `Keyword`, RFC 5321 `ldh-str`).
    fn keyword(&mut self, what: &'static str) -> Result<String, AuthResultsError> {
        let k = self.run(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if k.is_empty() {
            return Err(self.unexpected(what));
        }
        Ok(k.to_ascii_lowercase())
    }

    fn quoted(&mut self) -> Result<String, AuthResultsError> {
        let mut out = Vec::new();
        self.i += 1;
        loop {
            match self.peek() {
                None => return Err(AuthResultsError::Unterminated),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    if let Some(&b) = self.s.get(self.i + 1) {
                        out.push(b);
                    }
                    self.i += 2;
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// RFC 2045 `value`: a token or a quoted string.
    fn value(&mut self, what: &'static str) -> Result<String, AuthResultsError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let v = self.run(|b| b > b' ' && b < 127 && !b"()<>@,;:\\\"/[]?=".contains(&b));
        if v.is_empty() {
            return Err(self.unexpected(what));
        }
        Ok(v)
    }

    /// A property value: a quoted string, or `[local-part]@domain`, a domain or any other run
    /// of printable characters up to white space, a comment or `;`.
    fn pvalue(&mut self) -> Result<String, AuthResultsError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let v = self.run(|b| b > b' ' && b != b'(' && b != b';' && b != b'"');
        if v.is_empty() {
            return Err(self.unexpected("a property value"));
        }
        Ok(v)
    }
}

/// Parses the value of one `Authentication-Results` header field.
pub fn parse_authentication_results(value: &str) -> Result<AuthResults, AuthResultsError> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    c.cfws()?;
    let authserv_id = c
        .value("an authserv-id")
        .map_err(|_| AuthResultsError::NoAuthservId)?
        .to_ascii_lowercase();
    c.cfws()?;
    // authres-version
    c.run(|b| b.is_ascii_digit());
    let mut results = Vec::new();
    loop {
        c.cfws()?;
        if c.peek().is_none() {
            break;
        }
        if !c.eat(b';') {
            return Err(c.unexpected("`;`"));
        }
        c.cfws()?;
        if c.peek().is_none() {
            break;
        }
        let method = c.keyword("a method")?;
        c.cfws()?;
        if method == "none" && matches!(c.peek(), None | Some(b';')) {
            continue;
        }
        if c.eat(b'/') {
            c.cfws()?;
            c.run(|b| b.is_ascii_digit());
            c.cfws()?;
        }
        if !c.eat(b'=') {
            return Err(c.unexpected("`=` after the method"));
        }
        c.cfws()?;
        let result = c.keyword("a result")?;
        let mut r = AuthResult {
            method,
            result,
            reason: None,
            properties: Vec::new(),
        };
        properties(&mut c, &mut r)?;
        results.push(r);
    }
    Ok(AuthResults {
        authserv_id,
        results,
    })
}

/// `reasonspec` and `propspec`s up to the next `;`.
fn properties(c: &mut Cursor<'_>, r: &mut AuthResult) -> Result<(), AuthResultsError> {
    loop {
        c.cfws()?;
        if matches!(c.peek(), None | Some(b';')) {
            return Ok(());
        }
        let name = c.keyword("a property")?;
        c.cfws()?;
        if c.eat(b'=') {
            c.cfws()?;
            if name == "reason" {
                r.reason = Some(c.value("a reason")?);
            } else {
                let v = c.pvalue()?;
                r.properties.push((String::new(), name, v));
            }
            continue;
        }
        if !c.eat(b'.') {
            return Err(c.unexpected("`.` or `=` after a property type"));
        }
        c.cfws()?;
        let property = c.keyword("a property name")?;
        c.cfws()?;
        if !c.eat(b'=') {
            return Err(c.unexpected("`=` after a property"));
        }
        c.cfws()?;
        let v = c.pvalue()?;
        r.properties.push((name, property, v));
    }
}

/// Whether `from_domain` is `d` or one of its subdomains (relaxed alignment, RFC 7489 §3.1.1,
/// with the signing domain taken as the organisational domain).
fn aligned(from_domain: &str, d: &str) -> bool {
    let d = ascii_domain(d);
    // A single label (a top-level domain) is no organisation.
    d.contains('.') && (from_domain == d || from_domain.ends_with(&format!(".{d}")))
}

/// A domain as compared in authentication results: its lower-case A-label (U-labels and
/// A-labels of one IDN are one domain), without a final dot.
fn ascii_domain(d: &str) -> String {
    let d = d.trim().trim_end_matches('.');
    idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_ascii_lowercase())
}

/// Whether this field shows DMARC pass for the From domain, or DKIM pass for an aligned domain.
pub fn vouches_for(ar: &AuthResults, from_domain: &str) -> bool {
    let from_domain = ascii_domain(from_domain);
    ar.results.iter().any(|r| {
        if r.result != "pass" {
            return false;
        }
        match r.method.as_str() {
            // A result that does not say which From domain it judged proves nothing about
            // this one (Gmail and OpenDMARC both write header.from).
            "dmarc" => r
                .property("header", "from")
                .is_some_and(|f| ascii_domain(f) == from_domain),
            "dkim" => {
                let d = r.property("header", "d").map(str::to_string).or_else(|| {
                    r.property("header", "i")
                        .and_then(|i| i.rsplit_once('@'))
                        .map(|(_, d)| d.to_string())
                });
                d.is_some_and(|d| aligned(&from_domain, &d))
            }
            _ => false,
        }
    })
}

/// Checks the topmost `Authentication-Results` field written by `authserv_id` (lower case).
/// Fields by others, and those below the topmost trusted one, may be the sender's own: ignored.
fn authenticated(fields: &[(String, String)], authserv_id: &str, from: &str) -> Result<(), String> {
    let from_domain = from.rsplit_once('@').map_or("", |(_, d)| d);
    for value in field_values(fields, "authentication-results") {
        let mut c = Cursor {
            s: value.as_bytes(),
            i: 0,
        };
        let id = c
            .cfws()
            .ok()
            .and_then(|()| c.value("an authserv-id").ok())
            .map(|v| v.to_ascii_lowercase());
        if id.as_deref() != Some(authserv_id) {
            continue;
        }
        return match parse_authentication_results(value) {
            Ok(ar) if vouches_for(&ar, from_domain) => Ok(()),
            Ok(_) => Err(format!(
                "{authserv_id} did not find DMARC or aligned DKIM passing for {from_domain}"
            )),
            Err(e) => Err(format!(
                "the Authentication-Results header of {authserv_id} cannot be read: {e}"
            )),
        };
    }
    Err(format!(
        "no Authentication-Results header from {authserv_id} (is [reply] authserv_id right?)"
    ))
}

// ---------------------------------------------------------------------------------------------
// HTML to text.

/// Elements whose start or end ends a line of text.
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Whether a start tag opens the quoted original in a client's HTML.
fn quote_container(name: &str, attrs: &[(String, String)]) -> bool {
    if name == "blockquote" {
        return true;
    }
    attrs.iter().any(|(k, v)| {
        let v = v.to_ascii_lowercase();
        match k.as_str() {
            "class" | "id" => [
                "quote",
                "moz-cite-prefix",
                "divrplyfwdmsg",
                "outlookmessageheader",
                "appendonsend",
                "reference-message",
                "zmail_extra",
                "gmail_attr",
            ]
            .iter()
            .any(|m| v.contains(m)),
            "type" => v == "cite",
            // Outlook desktop: the original's header block sits under a top border.
            "style" => v.replace([' ', '\t'], "").contains("border-top:solid"),
            _ => false,
        }
    })
}

/// A start tag's attributes, names in lower case.
fn attributes(tag: &html5gum::StartTag<()>) -> Vec<(String, String)> {
    tag.attributes
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// The text of an HTML body up to the first quote container: block elements and `<br>` end a
/// line, white space collapses as a browser shows it, `<hr>` becomes a separator line.
pub fn html_to_text(html: &str) -> String {
    let mut emitter = html5gum::DefaultEmitter::default();
    emitter.naively_switch_states(true);
    let mut out = String::new();
    let mut line = String::new();
    let mut hidden = 0usize;
    let mut pre = 0usize;
    let flush = |out: &mut String, line: &mut String| {
        let t = line.trim();
        if !t.is_empty() {
            out.push_str(t);
            out.push('\n');
        }
        line.clear();
    };
    for token in html5gum::Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            html5gum::Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                if quote_container(&name, &attributes(&tag)) {
                    break;
                }
                match name.as_str() {
                    "head" | "style" | "script" | "title" | "template" if !tag.self_closing => {
                        hidden += 1
                    }
                    "br" => flush(&mut out, &mut line),
                    "hr" => {
                        flush(&mut out, &mut line);
                        out.push_str("________________________________\n");
                    }
                    "pre" => {
                        pre += 1;
                        flush(&mut out, &mut line);
                    }
                    n if BLOCK.contains(&n) => flush(&mut out, &mut line),
                    _ => {}
                }
            }
            html5gum::Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "head" | "style" | "script" | "title" | "template" => {
                        hidden = hidden.saturating_sub(1)
                    }
                    "pre" => {
                        pre = pre.saturating_sub(1);
                        flush(&mut out, &mut line);
                    }
                    n if BLOCK.contains(&n) => flush(&mut out, &mut line),
                    _ => {}
                }
            }
            html5gum::Token::String(s) if hidden == 0 => {
                let s = String::from_utf8_lossy(&s);
                for c in s.chars() {
                    if c == '\n' && pre > 0 {
                        flush(&mut out, &mut line);
                    } else if c.is_whitespace() || c.is_control() {
                        if !line.ends_with(' ') {
                            line.push(' ');
                        }
                    } else {
                        line.push(c);
                    }
                }
            }
            _ => {}
        }
    }
    flush(&mut out, &mut line);
    out
}

// ---------------------------------------------------------------------------------------------
// The original, as it comes back quoted.

/// Words in a row that make a phrase of the original: long enough that a person's own sentence
/// does not repeat one by chance.
const PHRASE_WORDS: usize = 6;

/// What our own mails say, to recognise them where a reply quotes or repeats them: every run of
/// [`PHRASE_WORDS`] words of the templates' fixed text, and the subject.
#[derive(Debug, Clone, Default)]
pub struct Original {
    phrases: HashSet<String>,
}

impl Original {
    /// From the template sources (text and HTML): the fixed text between placeholders.
    pub fn from_templates<'a>(sources: impl IntoIterator<Item = &'a str>) -> Original {
        let mut phrases = HashSet::new();
        for source in sources {
            let text = if source.contains('<') {
                html_to_text(source)
            } else {
                source.to_string()
            };
            for piece in split_placeholders(&text) {
                phrases.extend(phrases_of(&piece));
            }
        }
        Original { phrases }
    }

    /// Whether a phrase of the original starts on `line`; it may go on over the `next` line, as
    /// when a client or responder wraps the original more narrowly than we did.
    fn echoes(&self, line: &str, next: Option<&str>) -> bool {
        if self.phrases.is_empty() {
            return false;
        }
        let mut w = words(line);
        let starts = w.len();
        if let Some(next) = next.filter(|n| !n.starts_with('>')) {
            w.extend(words(next));
        }
        w.windows(PHRASE_WORDS)
            .take(starts)
            .any(|p| self.phrases.contains(&p.join(" ")))
    }
}

/// Template text split where `{{ … }}` and `{% … %}` stand.
fn split_placeholders(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['{']) {
        let after = &rest[at..];
        let close = if after.starts_with("{{") {
            "}}"
        } else if after.starts_with("{%") {
            "%}"
        } else if after.starts_with("{#") {
            "#}"
        } else {
            pieces.push(rest[..=at].to_string());
            rest = &rest[at + 1..];
            continue;
        };
        pieces.push(rest[..at].to_string());
        rest = after.find(close).map_or("", |end| &after[end + 2..]);
    }
    pieces.push(rest.to_string());
    pieces
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn phrases_of(text: &str) -> Vec<String> {
    words(text)
        .windows(PHRASE_WORDS)
        .map(|w| w.join(" "))
        .collect()
}

/// The original's subject from a reply's subject: reply and forward prefixes ("Re:", "AW:",
/// "回复：", "Re[2]:") removed, white space collapsed, lower case.
pub fn original_subject(subject: &str) -> String {
    let mut s = subject.trim();
    while let Some(colon) = s.find([':', '：']) {
        let prefix = s[..colon].trim();
        let bare = prefix.trim_end_matches(|c: char| c == ']' || c.is_ascii_digit() || c == '[');
        if prefix.is_empty() || bare.chars().count() > 4 || !bare.chars().all(char::is_alphabetic) {
            break;
        }
        s = s[colon..].trim_start_matches([':', '：']).trim_start();
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Where the quote starts.

/// How sure a line is to start the quoted original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    None,
    /// A known header or an unmistakable shape: the quote starts here.
    Sure,
    /// A shape that starts a quote only when the original's wording, or `>` lines, follow.
    IfConfirmed,
}

/// Words that end an attribution line in the languages securemail knows ("On … X wrote:").
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "geschrieben",
    "écrit",
    "ecrit",
    "escribió",
    "escribio",
    "schreef",
    "geschreven",
    "escreveu",
    "scritto",
    "napisał",
    "napisał(a)",
    "skrev",
    "kirjoitti",
    "napsal",
    "написал",
    "написала",
    "写道",
];

/// `Label:` names of the original's header block, as Outlook, Thunderbird and others write them.
const HEADER_LABELS: &[&str] = &[
    "from",
    "sent",
    "to",
    "cc",
    "subject",
    "date",
    "von",
    "gesendet",
    "an",
    "betreff",
    "datum",
    "de",
    "envoyé",
    "à",
    "objet",
    "enviado",
    "enviada",
    "para",
    "asunto",
    "fecha",
    "van",
    "verzonden",
    "aan",
    "onderwerp",
    "assunto",
    "data",
    "da",
    "inviato",
    "a",
    "oggetto",
];

/// Lines that end what a person typed (a signature, a phone's footer).
const SIGN_OFFS: &[&str] = &[
    "sent from my ",
    "get outlook for ",
    "von meinem ",
    "envoyé de mon ",
    "enviado desde mi ",
    "enviado do meu ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "inviato da ",
];

/// The lines a person wrote, before the quoted original starts, without `>` lines.
pub fn fresh_text(text: &str, original: &Original, subject: Option<&str>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = quote_start(&lines, original, subject);
    let mut out = String::new();
    for line in &lines[..end] {
        if line.trim_start().starts_with('>') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The text above the quote with no knowledge of the original (our templates, the subject).
pub fn above_quote(text: &str) -> String {
    fresh_text(text, &Original::default(), None)
}

fn quote_start(lines: &[&str], original: &Original, subject: Option<&str>) -> usize {
    // Each line is looked at once; confirmation then only reads these flags.
    let kinds: Vec<Boundary> = (0..lines.len())
        .map(|i| boundary(lines, i, original, subject))
        .collect();
    let confirms: Vec<bool> = (0..lines.len())
        .map(|i| {
            let next = lines.get(i + 1).map(|l| l.trim());
            confirms_original(lines[i].trim(), next, original, subject)
        })
        .collect();
    for (i, kind) in kinds.iter().enumerate() {
        match kind {
            Boundary::Sure => return i,
            Boundary::IfConfirmed if confirmed(&kinds, &confirms, i) => return i,
            _ => {}
        }
    }
    lines.len()
}

fn boundary(lines: &[&str], i: usize, original: &Original, subject: Option<&str>) -> Boundary {
    let t = lines[i].trim();
    let lower = t.to_lowercase();
    if t.starts_with('>') || t.is_empty() {
        return Boundary::None;
    }
    if lines[i] == "-- " || t == "--" || SIGN_OFFS.iter().any(|s| lower.starts_with(s)) {
        return Boundary::Sure;
    }
    // Our own wording, quoted without markers or repeated by a machine.
    let next = lines.get(i + 1).map(|l| l.trim());
    if original.echoes(t, next) || subject.is_some_and(|s| s.len() >= 8 && original_subject(t) == s)
    {
        return Boundary::Sure;
    }
    if let Some(b) = separator(t) {
        return b;
    }
    if let Some(b) = attribution(lines, i) {
        return b;
    }
    header_block(lines, i)
}

/// `-----Original Message-----`, `-------- Ursprüngliche Nachricht --------`, or a bare line
/// of dashes or underscores.
fn separator(t: &str) -> Option<Boundary> {
    let marks = |c: char| matches!(c, '-' | '_' | '=' | '*' | '—' | '–');
    let lead = t.chars().take_while(|&c| marks(c)).count();
    let trail = t.chars().rev().take_while(|&c| marks(c)).count();
    let len = t.chars().count();
    if lead == len {
        return (len >= 5).then_some(Boundary::IfConfirmed);
    }
    let middle: String = t.chars().skip(lead).take(len - lead - trail).collect();
    (lead >= 2
        && trail >= 2
        && middle.chars().any(char::is_alphabetic)
        && middle.chars().count() <= 80)
        .then_some(Boundary::Sure)
}

/// "On Tue, 24 Nov 2026 at 11:00, Example Admin <admin@example.org> wrote:": ends in a colon and
/// names an address or a date. A client that wraps it leaves its last part on a line of its
/// own ("admin@example.org> wrote:", "Admin <admin@example.org>:"), which is found the same way.
fn attribution(lines: &[&str], i: usize) -> Option<Boundary> {
    let joined = lines[i].trim();
    if !(joined.ends_with(':') || joined.ends_with('：')) || joined.chars().count() > 400 {
        return None;
    }
    let lower = joined.to_lowercase();
    let words: Vec<&str> = lower
        .trim_end_matches([':', '：'])
        .split_whitespace()
        .collect();
    // The verb ends the line, or comes just before the sender ("schrieb Admin <a@x>:").
    let verb = words.iter().rev().take(6).any(|w| {
        ATTRIBUTION_VERBS
            .iter()
            .any(|v| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '(' && c != ')') == *v)
    }) || lower.ends_with("a écrit :")
        || lower.ends_with("写道：")
        || lower.ends_with("写道:");
    let address = has_address(joined);
    if verb && (address || has_date(joined) || words.len() <= 8) {
        return Some(Boundary::Sure);
    }
    (address || has_date(joined)).then_some(Boundary::IfConfirmed)
}

fn has_address(t: &str) -> bool {
    t.split(|c: char| c.is_whitespace() || "<>()[]\"',;:".contains(c))
        .any(|w| {
            w.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'))
        })
}

/// A time (`11:00`), a four-digit year, a numeric date (`24.11.26`, `11/24/2026`) or a CJK date.
fn has_date(t: &str) -> bool {
    let c: Vec<char> = t.chars().collect();
    let digit = |k: usize| c.get(k).is_some_and(char::is_ascii_digit);
    (0..c.len()).any(|k| {
        let time = digit(k) && c.get(k + 1) == Some(&':') && digit(k + 2) && digit(k + 3);
        let year = (k == 0 || !digit(k - 1))
            && (c.get(k) == Some(&'1') && c.get(k + 1) == Some(&'9')
                || c.get(k) == Some(&'2') && c.get(k + 1) == Some(&'0'))
            && digit(k + 2)
            && digit(k + 3)
            && !digit(k + 4);
        let sep = |k: usize| matches!(c.get(k), Some('.' | '/' | '-'));
        let numeric =
            digit(k) && sep(k + 1) && digit(k + 2) && (sep(k + 3) || digit(k + 3) && sep(k + 4));
        let cjk = matches!(c.get(k), Some('年' | '月' | '日')) && k > 0 && digit(k - 1);
        time || year || numeric || cjk
    })
}

/// A `Label: value` line: a label of one to three words, then a colon (French writes a space
/// before it), Markdown's `*From:*` as Gmail renders a bold label.
fn label_of(t: &str) -> Option<String> {
    let t = t.trim().trim_start_matches('*');
    let colon = t.find([':', '：'])?;
    let label = t[..colon].trim().trim_end_matches('*').trim();
    let words = label.split_whitespace().count();
    if label.is_empty()
        || words > 3
        || label.chars().count() > 30
        || !label
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-')
    {
        return None;
    }
    Some(label.to_lowercase())
}

/// A block of two or more `Label: value` lines, one naming an address (Outlook's original
/// header, Thunderbird's forward header): sure when two labels are known header names.
fn header_block(lines: &[&str], i: usize) -> Boundary {
    // A header block has a handful of lines; looking further only costs time.
    let block: Vec<&str> = lines[i..]
        .iter()
        .take(12)
        .map(|l| l.trim())
        .take_while(|l| label_of(l).is_some())
        .collect();
    if block.len() < 2 || !block.iter().any(|l| has_address(l)) {
        return Boundary::None;
    }
    let known = block
        .iter()
        .filter_map(|l| label_of(l))
        .filter(|l| HEADER_LABELS.contains(&l.as_str()))
        .count();
    if known >= 2 {
        Boundary::Sure
    } else {
        Boundary::IfConfirmed
    }
}

/// Lines after a shape that may hold what confirms it.
const CONFIRM_WINDOW: usize = 60;

/// Whether a line shows the original: a `>` line, the original's wording, or our subject as a
/// header value ("Subject: Your one-time key for Example").
fn confirms_original(
    t: &str,
    next: Option<&str>,
    original: &Original,
    subject: Option<&str>,
) -> bool {
    if t.starts_with('>') || original.echoes(t, next) {
        return true;
    }
    matches!((subject, t.find([':', '：'])), (Some(s), Some(colon))
        if s.len() >= 8 && original_subject(t[colon..].trim_start_matches([':', '：'])) == s)
}

/// Whether the lines from `i` up to the next sure boundary (at most [`CONFIRM_WINDOW`]) show
/// the original.
fn confirmed(kinds: &[Boundary], confirms: &[bool], i: usize) -> bool {
    for k in (i..kinds.len()).take(CONFIRM_WINDOW) {
        if confirms[k] {
            return true;
        }
        if k > i && kinds[k] == Boundary::Sure {
            // What follows a later, sure boundary is that quote's, not this line's.
            return false;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Codes.

/// Whether a character next to a code makes it part of a word. Scripts written without spaces
/// (CJK: "验证码123456") do not.
fn joins_word(c: char) -> bool {
    c.is_alphanumeric() && (c.is_ascii() || u32::from(c) < 0x2E80)
}

/// Separators allowed between the digit groups of a code ("123 456", "123-456").
fn group_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '\u{a0}' | '\u{2009}' | '\u{202f}')
}

/// Every distinct numeric code of exactly `digits` digits that stands on its own: not part of a
/// longer number, word, phone number or date. Groups are allowed when they split the code evenly
/// (`123 456`, `1234-5678`, `12 34 56`).
pub fn numeric_codes(text: &str, digits: usize) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if !c[i].is_ascii_digit() || (i > 0 && c[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        let mut groups: Vec<usize> = Vec::new();
        let mut j = i;
        loop {
            let g = c[j..].iter().take_while(|d| d.is_ascii_digit()).count();
            groups.push(g);
            j += g;
            if j + 1 < c.len() && group_separator(c[j]) && c[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        i = j;
        let joined_to = |k: Option<usize>, next: Option<usize>| {
            let Some(k) = k else { return false };
            let ch = c[k];
            joins_word(ch)
                || ch == '+'
                || (matches!(ch, '.' | ',' | ':' | '/')
                    && next
                        .and_then(|n| c.get(n))
                        .is_some_and(char::is_ascii_digit))
        };
        let before = start.checked_sub(1);
        let after = (j < c.len()).then_some(j);
        if joined_to(before, before.and_then(|b| b.checked_sub(1))) || joined_to(after, Some(j + 1))
        {
            continue;
        }
        let (min, max) = (
            groups.iter().copied().min().unwrap_or(0),
            groups.iter().copied().max().unwrap_or(0),
        );
        let even = groups.len() == 1 || (min >= 2 && max - min <= 1 && groups.len() <= 4);
        if groups.iter().sum::<usize>() == digits && even {
            let code: String = c[start..j].iter().filter(|d| d.is_ascii_digit()).collect();
            if !found.contains(&code) {
                found.push(code);
            }
        }
    }
    found
}

/// What the key search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysFound {
    /// Distinct keys with a right check symbol, canonical.
    pub keys: Vec<String>,
    /// How many key-shaped tokens had a wrong check symbol (typos).
    pub mistyped: usize,
}

/// Characters that never belong to a key token and split words ("key:7KQ2…", "(7KQ2…)").
fn token_split(c: char) -> bool {
    c.is_whitespace() || "\"'()<>[]{},;:!?`«»“”‘’/\\|：，。、「」（）【】".contains(c)
}

/// Keys of `length` random characters (plus the check symbol) written as one token: as printed
/// (`7KQ2-9XMD-4HTP-K`, any case, O/I/L for 0/1) or without the dashes (`7kq29xmd4htpk`). A line
/// that holds nothing but the printed groups separated by spaces counts as well (the mail says
/// spaces do not matter). Never assembled from several words.
pub fn keys(text: &str, length: usize) -> KeysFound {
    let mut found = KeysFound::default();
    let consider = |token: &str, found: &mut KeysFound| {
        if let Some(verdict) = key_token(token, length) {
            match verdict {
                Ok(k) if !found.keys.contains(&k) => found.keys.push(k),
                Ok(_) => {}
                Err(()) => found.mistyped += 1,
            }
        }
    };
    for line in text.lines() {
        // Dashes as word processors and phones write them ("7KQ2–9XMD").
        let line: String = line
            .chars()
            .map(|c| {
                if matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}') {
                    '-'
                } else {
                    c
                }
            })
            .collect();
        for raw in line.split(token_split) {
            consider(raw, &mut found);
        }
        let groups: Vec<&str> = line.split_whitespace().collect();
        if groups.len() > 1
            && groups.iter().all(|g| {
                g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || key::is_check_symbol(c))
            })
        {
            consider(&groups.join("-"), &mut found);
        }
    }
    found
}

/// One token: `Some(Ok(key))`, `Some(Err(()))` for a key-shaped token with a wrong check
/// symbol, `None` for anything else.
fn key_token(token: &str, length: usize) -> Option<Result<String, ()>> {
    // Emphasis and sentence punctuation around it: "*7KQ2-…*", "7KQ2-….".
    // Letters of scripts written without spaces may touch it: "密钥7KQ2-…".
    let mut t = token.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    t = t.trim_end_matches(|c: char| !c.is_ascii() || matches!(c, '.' | '-' | '_'));
    loop {
        if let Some(v) = key_shape(t, length) {
            return Some(v);
        }
        // A trailing check-symbol character may be emphasis ("…-K*"): try without it.
        match t.chars().last() {
            Some(c) if "*~$=".contains(c) && t.len() > 1 => t = &t[..t.len() - 1],
            _ => return None,
        }
    }
}

fn key_shape(t: &str, length: usize) -> Option<Result<String, ()>> {
    let total = length + 1;
    let dashed = t.contains('-');
    if dashed {
        // Exactly the printed grouping: fours, the last group the rest.
        let groups: Vec<&str> = t.split('-').collect();
        let want: Vec<usize> = (0..total).step_by(4).map(|s| (total - s).min(4)).collect();
        if groups.iter().map(|g| g.chars().count()).collect::<Vec<_>>() != want {
            return None;
        }
    } else if t.chars().count() != total {
        return None;
    }
    let canonical = key::normalise(t);
    let c = canonical.expose();
    if c.chars().count() != total || !key::is_canonical_with_check(c) {
        return None;
    }
    let has_digit = t.chars().any(|c| c.is_ascii_digit());
    // An ordinary word: no digit, no dash, and letters a key never shows (I, L, O).
    if !dashed && !has_digit && t.chars().any(|c| "iIlLoO".contains(c)) {
        return None;
    }
    if key::is_well_formed(c) {
        Some(Ok(c.clone()))
    } else if dashed || has_digit {
        Some(Err(()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_template() -> Original {
        Original::from_templates([include_str!("../templates/key.txt")])
    }

    fn key_of(random: &str) -> String {
        let check = key::check_symbol(random).unwrap();
        key::display(&format!("{random}{check}")).expose().clone()
    }

    #[test]
    fn authentication_results_grammar() {
        let v = " mx.google.com (we are \"it\" (nested));\r\n\tdkim=pass (2048-bit key)\r\n header.i=@example.org header.s=sel1 header.b=\"ab/c+=\";\r\n\
                 spf=pass (google.com: domain of a@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.org;\r\n\
                 dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org";
        let ar = parse_authentication_results(v).unwrap();
        assert_eq!(ar.authserv_id, "mx.google.com");
        assert_eq!(ar.results.len(), 3);
        assert_eq!(ar.results[0].method, "dkim");
        assert_eq!(ar.results[0].result, "pass");
        assert_eq!(
            ar.results[0].properties,
            vec![
                ("header".into(), "i".into(), "@example.org".into()),
                ("header".into(), "s".into(), "sel1".into()),
                ("header".into(), "b".into(), "ab/c+=".into()),
            ]
        );
        assert_eq!(
            ar.results[1].property("smtp", "mailfrom"),
            Some("a@example.org")
        );
        assert_eq!(
            ar.results[2].property("header", "from"),
            Some("example.org")
        );

        // Version, method version, reason, a quoted authserv-id, Microsoft's bare `action=`.
        let ar = parse_authentication_results(
            "\"mx.example.net\" 1; dkim/1=FAIL reason=\"bad sig\" header.d=x.org; dmarc=pass action=none header.from=x.org",
        )
        .unwrap();
        assert_eq!(ar.authserv_id, "mx.example.net");
        assert_eq!(ar.results[0].result, "fail");
        assert_eq!(ar.results[0].reason.as_deref(), Some("bad sig"));
        assert_eq!(ar.results[1].property("", "action"), Some("none"));
        assert!(
            parse_authentication_results("mx.example.net; none")
                .unwrap()
                .results
                .is_empty()
        );
        assert!(
            parse_authentication_results("mx.example.net 1;  none ")
                .unwrap()
                .results
                .is_empty()
        );

        assert_eq!(
            parse_authentication_results("  "),
            Err(AuthResultsError::NoAuthservId)
        );
        assert!(matches!(
            parse_authentication_results("mx; dkim pass"),
            Err(AuthResultsError::Unexpected('p', _))
        ));
        assert_eq!(
            parse_authentication_results("mx; dkim=pass (unterminated"),
            Err(AuthResultsError::Unterminated)
        );
        assert_eq!(
            parse_authentication_results("mx; dkim="),
            Err(AuthResultsError::Truncated("a result"))
        );
        assert!(parse_authentication_results("mx; dkim=pass header").is_err());
    }

    #[test]
    fn alignment() {
        let ar = |v: &str| parse_authentication_results(v).unwrap();
        assert!(vouches_for(
            &ar("mx; dmarc=pass header.from=example.org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dmarc=pass header.from=evil.org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dmarc=fail header.from=example.org"),
            "example.org"
        ));
        // DMARC pass for an unnamed domain proves nothing about this one.
        assert!(!vouches_for(&ar("mx; dmarc=pass"), "example.org"));
        // One IDN domain, as U-label and A-label.
        assert!(vouches_for(
            &ar("mx; dmarc=pass header.from=B\u{fc}cher.example."),
            "xn--bcher-kva.example"
        ));
        assert!(vouches_for(
            &ar("mx; dkim=pass header.d=xn--bcher-kva.example"),
            "mail.xn--bcher-kva.example"
        ));
        assert!(vouches_for(
            &ar("mx; dkim=pass header.d=example.org"),
            "mail.example.org"
        ));
        assert!(vouches_for(
            &ar("mx; dkim=pass header.i=alice@Example.org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dkim=pass header.d=example.org"),
            "badexample.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dkim=pass header.d=mail.example.org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dkim=pass header.d=org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; spf=pass smtp.mailfrom=example.org"),
            "example.org"
        ));
        assert!(!vouches_for(
            &ar("mx; dkim=neutral header.d=example.org"),
            "example.org"
        ));
    }

    #[test]
    fn only_the_topmost_trusted_results_count() {
        let fields =
            |extra: &str| header_fields(format!("{extra}From: a@example.org\r\n\r\nx").as_bytes());
        let trusted =
            "Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\n";
        let forged =
            "Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\n";
        let failing =
            "Authentication-Results: mx.example.net;\r\n dmarc=fail header.from=example.org\r\n";
        let other = "Authentication-Results: evil.example; dmarc=pass header.from=example.org\r\n";
        assert!(authenticated(&fields(trusted), "mx.example.net", "a@example.org").is_ok());
        assert!(authenticated(&fields(other), "mx.example.net", "a@example.org").is_err());
        assert!(
            authenticated(
                &fields(&format!("{other}{trusted}")),
                "mx.example.net",
                "a@example.org"
            )
            .is_ok()
        );
        // The sender's own header sits below the one our server adds on top.
        assert!(
            authenticated(
                &fields(&format!("{failing}{forged}")),
                "mx.example.net",
                "a@example.org"
            )
            .is_err()
        );
        assert!(
            authenticated(
                &fields(&format!(
                    "Authentication-Results: mx.example.net; dkim=(\r\n{forged}"
                )),
                "mx.example.net",
                "a@example.org"
            )
            .is_err()
        );
        assert!(authenticated(&fields(""), "mx.example.net", "a@example.org").is_err());
    }

    #[test]
    fn known_quote_headers_are_cut() {
        let o = Original::default();
        for header in [
            "On Tue, 24 Nov 2026 at 11:00, Example Admin <admin@example.org> wrote:",
            "Am Di., 24. Nov. 2026 um 11:00 Uhr schrieb Example Admin <admin@example.org>:",
            "Le mar. 24 nov. 2026 à 11:00, Example Admin <admin@example.org> a écrit :",
            "El mar, 24 nov 2026 a las 11:00, Example Admin (<admin@example.org>) escribió:",
            "Op di 24 nov 2026 om 11:00 schreef Example Admin <admin@example.org>:",
            "Em ter., 24 de nov. de 2026 às 11:00, Example Admin <admin@example.org> escreveu:",
            "Op 24 nov. 2026 om 11:00 heeft Example Admin <admin@example.org> het volgende geschreven:",
            "-----Original Message-----",
            "-------- Original Message --------",
            "-------- Ursprüngliche Nachricht --------",
            "-----Message d'origine-----",
            "On 11/24/26 11:00 AM, Example Admin wrote:",
        ] {
            let t = format!("Thanks\n{header}\nHello Alice,\nKEY\n");
            assert_eq!(fresh_text(&t, &o, None), "Thanks\n", "{header}");
        }
        // An attribution wrapped over two lines: its last part is found.
        let t = "ok\nOn Tue, Nov 24, 2026 at 11:00 AM Example Admin\n<admin@example.org> wrote:\n\nKEY\n";
        assert_eq!(
            fresh_text(t, &o, None),
            "ok\nOn Tue, Nov 24, 2026 at 11:00 AM Example Admin\n"
        );
        // Outlook's header block, in German.
        let t = "ok\n\nVon: Example Admin <admin@example.org>\nGesendet: Dienstag, 24. November 2026 11:00\nAn: Alice\nBetreff: x\n\nKEY";
        assert_eq!(fresh_text(t, &o, None), "ok\n\n");
    }

    #[test]
    fn quotes_are_found_by_shape() {
        let o = key_template();
        let quote = "Hello Alice,\n\nExample Admin sent you a one-time key for alice@example.org at Example:\n\n    ABCD-EFGH-JKMN-P\n\nReply to this mail with the key to confirm that you received it.\n";
        // Polish, Japanese and Italian attributions: a date or an address, a colon, then the original.
        for header in [
            "wt., 24 lis 2026 o 11:00 Example Admin <admin@example.org> napisała:",
            "2026年11月24日(火) 11:00 Example Admin <admin@example.org>:",
            "Il giorno mar 24 nov 2026 alle ore 11:00 Example Admin <admin@example.org> ha inviato:",
        ] {
            for body in [
                quote.to_string(),
                quote.lines().map(|l| format!("> {l}\n")).collect(),
            ] {
                let t = format!("typed\n\n{header}\n\n{body}");
                assert_eq!(fresh_text(&t, &o, None), "typed\n\n", "{header}");
            }
        }
        // An Outlook-style block with unknown labels, confirmed by the subject.
        let t = "typed\nOd: Example Admin <admin@example.org>\nWysłano: 24.11.2026\nTemat: Your one-time key for Example\n\nsomething";
        let subject = original_subject("Odp: Your one-time key for Example");
        assert_eq!(
            fresh_text(t, &Original::default(), Some(&subject)),
            "typed\n"
        );
        assert_eq!(
            fresh_text(t, &Original::default(), None),
            t.lines().map(|l| format!("{l}\n")).collect::<String>(),
            "unconfirmed"
        );
        // A bare separator line, confirmed by the original's wording under it.
        let t = format!("typed\n__________\n{quote}");
        assert_eq!(fresh_text(&t, &o, None), "typed\n");
        // The original repeated with no marker at all (an auto-responder): its wording cuts.
        let t = format!("I am away until Monday.\n{quote}");
        assert_eq!(
            fresh_text(&t, &o, None),
            "I am away until Monday.\nHello Alice,\n\n"
        );
        // However narrowly it is wrapped.
        let narrow = "I am away.\nExample Admin sent you a one-time\nkey for alice@example.org at\nExample:\n ABCD-EFGH-JKMN-P\n";
        assert_eq!(fresh_text(narrow, &o, None), "I am away.\n");
        // A typed key right above an unmarked original stays.
        let t = format!("ABCD-EFGH-JKMN-P\n{}", &quote["Hello Alice,\n\n".len()..]);
        assert_eq!(fresh_text(&t, &o, None), "ABCD-EFGH-JKMN-P\n");
    }

    #[test]
    fn many_shapes_cost_linear_time() {
        let o = key_template();
        for line in ["-----", "a: b@c.de", "at 11:00 x@y.org:"] {
            let text = format!("{line}\n").repeat(50_000);
            let t = std::time::Instant::now();
            let _ = fresh_text(&text, &o, Some("your one-time key"));
            assert!(
                t.elapsed() < std::time::Duration::from_secs(5),
                "{line}: {:?}",
                t.elapsed()
            );
        }
    }

    #[test]
    fn other_clients() {
        let o = key_template();
        let quote = "Hello Alice,\n\nExample Admin sent you a one-time key for alice@example.org at Example:\n\n    ABCD-EFGH-JKMN-P\n";
        for header in [
            // Zoho, ProtonMail, Mutt, Gmail rendering Outlook's bold labels, Outlook for Mac.
            "---- On Tue, 24 Nov 2026 11:00:00 +0100 Example Admin <admin@example.org> wrote ---",
            "------- Original Message -------\nOn Tuesday, November 24th, 2026 at 11:00, Example Admin <admin@example.org> wrote:",
            "* Example Admin <admin@example.org> [2026-11-24 11:00]:",
            "*From:* Example Admin [mailto:admin@example.org]\n*Sent:* Tuesday, November 24, 2026 11:00 AM\n*To:* Alice\n*Subject:* x",
            "From: Example Admin <admin@example.org>\nDate: Tuesday, 24 November 2026 at 11:00\nTo: Alice <alice@example.org>\nSubject: x",
            "De: Example Admin <admin@example.org>\nEnviado el: martes, 24 de noviembre de 2026 11:00\nPara: Alice\nAsunto: x",
        ] {
            for body in [quote.to_string(), quoted(quote)] {
                let t = format!("typed\n\n{header}\n\n{body}");
                assert_eq!(fresh_text(&t, &o, None), "typed\n\n", "{header}");
            }
        }
        for html in [
            "<div>typed</div><div class=\"yahoo_quoted\"><div>On Tuesday… wrote:</div><div>ABCD-EFGH-JKMN-P</div></div>",
            "<p class=MsoNormal>typed</p><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p><b>From:</b> x</p></div><p>ABCD-EFGH-JKMN-P</p>",
            "<div>typed</div><div class=\"protonmail_quote\">ABCD-EFGH-JKMN-P</div>",
        ] {
            assert_eq!(html_to_text(html), "typed\n", "{html}");
        }
    }

    fn quoted(text: &str) -> String {
        text.lines().map(|l| format!("> {l}\n")).collect()
    }

    #[test]
    fn people_are_not_taken_for_quotes() {
        let o = key_template();
        // A colon after an address, with the typed key under it and the real quote below.
        let k = key_of("7KQ29XMD4HTP");
        let t = format!(
            "Here is the key for alice@example.org:\n{k}\n\nOn Tue, 24 Nov 2026 at 11:00, Example Admin <admin@example.org> wrote:\n> Hello Alice,\n"
        );
        assert_eq!(
            keys(&fresh_text(&t, &o, None), 12).keys,
            vec![k.replace('-', "")]
        );
        // Labels of a person's own.
        let t = format!("Name: Alice\nMail: alice@example.org\nKey: {k}\n");
        assert_eq!(keys(&fresh_text(&t, &o, None), 12).keys.len(), 1);
        // `>` lines are skipped, what follows them is still typed (interleaved answers).
        let t = "> 111111\nmy code is 222 333\n";
        assert_eq!(numeric_codes(&above_quote(t), 6), vec!["222333"]);
    }

    #[test]
    fn html_block_elements_end_lines_and_containers_end_the_text() {
        let h = "<html><head><style>p{color:red}</style><title>t</title></head><body>\
                 <div>Here&nbsp;it&nbsp;is:</div><div><b>123</b> 456</div><p>Alice</p>\
                 <div class=\"gmail_quote\"><div class=\"gmail_attr\">On … wrote:</div><blockquote>654321</blockquote></div></body></html>";
        assert_eq!(html_to_text(h), "Here it is:\n123 456\nAlice\n");
        for container in [
            "<blockquote type=\"cite\">",
            "<div class=\"moz-cite-prefix\">",
            "<div id=\"divRplyFwdMsg\" dir=\"ltr\">",
            "<div class=\"OutlookMessageHeader\">",
            "<div id=\"x_divRplyFwdMsg\">",
            "<div style=\"border:none; border-top:solid #E1E1E1 1.0pt\">",
        ] {
            let h = format!("<p>mine</p>{container}<p>654321</p></div>");
            assert_eq!(html_to_text(&h), "mine\n", "{container}");
        }
        assert_eq!(
            html_to_text("a<br>b<hr>c"),
            "a\nb\n________________________________\nc\n"
        );
    }

    #[test]
    fn numeric_codes_stand_alone() {
        assert_eq!(numeric_codes("code 123456 thanks", 6), vec!["123456"]);
        assert_eq!(numeric_codes("code 123-456", 6), vec!["123456"]);
        assert_eq!(numeric_codes("验证码123456。", 6), vec!["123456"]);
        assert_eq!(numeric_codes("code 12 34 56.", 6), vec!["123456"]);
        assert_eq!(numeric_codes("code: 123456\n", 6), vec!["123456"]);
        assert_eq!(
            numeric_codes("call 0123456789 or 654321", 6),
            vec!["654321"]
        );
        assert!(numeric_codes("Tel. +49 30 123456", 6).is_empty());
        assert!(numeric_codes("ref A123456, 123456b, 1.123456, 12:123456", 6).is_empty());
        assert!(numeric_codes("on 24/11/2026 at 10:00", 6).is_empty());
        assert!(numeric_codes("1234 56", 6).is_empty());
        assert!(numeric_codes("12345", 6).is_empty());
        assert_eq!(numeric_codes("12345678", 8), vec!["12345678"]);
        assert_eq!(
            numeric_codes("111111 and 222222 and 111111", 6),
            vec!["111111", "222222"]
        );
    }

    #[test]
    fn keys_are_single_tokens_with_a_check_symbol() {
        let k = key_of("7KQ29XMD4HTP");
        let canonical = k.replace('-', "");
        for text in [
            format!("my key is {} ok", k.to_lowercase()),
            format!("Here is the key: {k}."),
            format!("({k})"),
            format!("*{k}*"),
            format!("key:{canonical}"),
            format!("Thanks, here it is:\n{canonical}\n"),
            format!("\n{}\n", k.replace('-', " ")),
            k.replace('0', "O").replace('1', "l"),
            format!("密钥：{k}。"),
            format!("密钥{k}"),
            k.replace('-', "\u{2013}"),
            format!("\u{a0}{}\u{a0}", k.replace('-', "\u{a0}")),
        ] {
            assert_eq!(keys(&text, 12).keys, vec![canonical.clone()], "{text:?}");
        }
        for text in [
            "Here is the key".to_string(),
            "Dear Example Admin".to_string(),
            "hello world".to_string(),
            format!("my key is {}", k.replace('-', " ")),
            k[..k.len() - 2].to_string(),
            "international".to_string(),
        ] {
            assert_eq!(keys(&text, 12), KeysFound::default(), "{text:?}");
        }
        // A typo: key-shaped, the check symbol does not match.
        let mut typo: Vec<char> = k.chars().collect();
        typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(
            keys(&typo, 12),
            KeysFound {
                keys: vec![],
                mistyped: 1
            }
        );
        let other = key_of("AAAABBBBCCCC");
        assert_eq!(keys(&format!("{k} or {other}?"), 12).keys.len(), 2);
    }

    #[test]
    fn subjects() {
        assert_eq!(
            original_subject("Re: AW: Your one-time key"),
            "your one-time key"
        );
        assert_eq!(original_subject("回复：Your key"), "your key");
        assert_eq!(original_subject("Re[2]: x"), "x");
        assert_eq!(
            original_subject("Antwort: x"),
            "antwort: x",
            "not a reply prefix"
        );
    }

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}To: admin@example.org\r\nSubject: Re: Your one-time key\r\n\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn screening() {
        let p = ReplyPolicy::default();
        let o = Original::default();
        let aside = |raw: &[u8]| match screen(raw, &p, &o).unwrap() {
            Screened::SetAside(s) => s.folder(),
            Screened::Reply(_) => "reply",
        };
        assert_eq!(aside(&mail("From: a@x.org\r\n", "123456")), "reply");
        assert_eq!(
            aside(&mail("From: a@x.org\r\nFrom: b@y.org\r\n", "1")),
            "unauthenticated"
        );
        assert_eq!(
            aside(&mail("From: a@x.org\r\nfrom : b@y.org\r\n", "1")),
            "unauthenticated"
        );
        assert_eq!(
            aside(&mail("From: a@x.org, b@y.org\r\n", "1")),
            "unauthenticated"
        );
        assert_eq!(
            aside(&mail("From: team: a@x.org, b@y.org;\r\n", "1")),
            "unauthenticated"
        );
        assert_eq!(
            aside(&mail(
                "From: a@x.org\r\nAuto-Submitted: auto-replied\r\n",
                "1"
            )),
            "auto"
        );
        assert_eq!(
            aside(&mail("From: a@x.org\r\nAuto-Submitted: no\r\n", "1")),
            "reply"
        );
        assert_eq!(
            aside(&mail("From: a@x.org\r\nPrecedence: bulk\r\n", "1")),
            "auto"
        );
        assert_eq!(
            aside(&mail("From: a@x.org\r\nX-Autoreply: yes\r\n", "1")),
            "auto"
        );
        assert_eq!(
            aside(&mail("Return-Path: <>\r\nFrom: a@x.org\r\n", "1")),
            "auto"
        );
        assert_eq!(aside(&mail("From: MAILER-DAEMON@x.org\r\n", "1")), "auto");
        assert_eq!(
            aside(&mail(
                "From: a@x.org\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
                "--b\r\n\r\nx\r\n--b--\r\n"
            )),
            "auto"
        );
        assert!(matches!(
            screen(&mail("Sender: a@x.org\r\n", "1"), &p, &o),
            Err(InboundError::NoSender)
        ));
        // Auto-reply subjects as mail clients send them: RFC 2047 encoded, NFD, behind a
        // gateway's tag; Precedence with a comment.
        for field in [
            "Subject: =?utf-8?q?R=C3=A9ponse_automatique_=3A_Votre_cl=C3=A9?=\r\n",
            "Subject: =?UTF-8?B?UmVzcHVlc3RhIGF1dG9tw6F0aWNhOiBSZTogeA==?=\r\n",
            "Subject: =?utf-8?q?Re=CC=81ponse_automatique?=\r\n",
            "Subject: [EXTERNAL] [ext] Out of Office: Re: your key\r\n",
            "Precedence: junk (vacation)\r\n",
        ] {
            let raw = format!("From: a@x.org\r\n{field}To: admin@example.org\r\n\r\n1");
            assert_eq!(aside(raw.as_bytes()), "auto", "{field}");
        }
        let raw = "From: a@x.org\r\nSubject: Re: [out of office] x\r\n\r\n1";
        assert_eq!(aside(raw.as_bytes()), "reply");

        let strict = ReplyPolicy {
            authserv_id: Some("mx.example.net".into()),
        };
        let s = screen(&mail("From: a@x.org\r\n", "1"), &strict, &o).unwrap();
        assert!(
            matches!(s, Screened::SetAside(SetAside::Unauthenticated { .. })),
            "{s:?}"
        );
        let s = screen(
            &mail("Authentication-Results: mx.example.net; dkim=pass header.d=x.org\r\nFrom: a@x.org\r\n", "1"),
            &strict,
            &o,
        )
        .unwrap();
        assert!(matches!(s, Screened::Reply(_)), "{s:?}");
    }

    #[test]
    fn parses_sender_and_threading() {
        let raw = b"From: Alice <Alice@Example.org>\r\nTo: admin@example.org\r\nSubject: Re: x\r\n\
In-Reply-To: <abc@example.org>\r\nReferences: <zzz@example.org> <abc@example.org>\r\n\r\n123456\r\n";
        let Screened::Reply(r) =
            screen(raw, &ReplyPolicy::default(), &Original::default()).unwrap()
        else {
            panic!("set aside")
        };
        assert_eq!(r.from, "alice@example.org");
        assert_eq!(r.answers, vec!["<abc@example.org>", "<zzz@example.org>"]);
        assert_eq!(numeric_codes(&r.fresh_text, 6), vec!["123456"]);
    }

    #[test]
    fn garbage_is_not_a_message() {
        let p = ReplyPolicy::default();
        let o = Original::default();
        assert!(screen(b"\x00\x01\x02 not mail at all", &p, &o).is_err());
        assert!(matches!(
            screen(b"Subject: hi\r\n\r\nbody", &p, &o),
            Err(InboundError::NoSender)
        ));
        assert!(matches!(
            screen(&vec![b'a'; MAX_MESSAGE_BYTES + 1], &p, &o),
            Err(InboundError::TooLarge)
        ));
    }
}
