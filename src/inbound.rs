//! Reading the code out of a reply email, and deciding whether the reply counts at all.
//!
//! Anybody can send mail to the reply inbox, and vacation responders and bounces answer our mails
//! by themselves, often repeating them — key included. So a reply is first screened
//! ([`screen`]): an automatic mail (RFC 3834 `Auto-Submitted`, `Precedence: bulk`, a
//! `multipart/report` bounce, a null Return-Path, MAILER-DAEMON…) is set aside, and so is one
//! whose sender is not exactly one well-formed mailbox or, when `[reply] require_authenticated`
//! is set, is not vouched for by the receiving server's `Authentication-Results` (RFC 8601).
//! Set-aside mails never reach the store, so they never cost the recipient an attempt.
//!
//! Then only what the person typed is read: the text above the quoted original. The quote is
//! found by the known headers of common clients and, for any language or client, by its shape
//! (an attribution line with an address or a date ending in `:`, a block of `Label: value` lines
//! naming an address, separator lines, `>` lines, HTML quote containers), where weaker shapes
//! need the original's own wording (our templates, the subject) after them as confirmation.
//! Codes are taken only as standalone tokens ([`numeric_codes`], [`keys`]), never a number that
//! prose gives another meaning (a telephone, an amount, an order number); several different
//! ones make the reply ambiguous.
//!
//! What an MDA adds is not the sender's: an mbox envelope line before the headers is skipped.

use std::collections::HashSet;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::config::ReplyPolicy;
use crate::exit;
use crate::key;
use crate::mail::recipient;

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
    let raw = without_envelope(raw);
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
    if let Some(marker) = automatic(&headers, report, msg.subject().unwrap_or("")) {
        return Ok(Screened::SetAside(SetAside::Automatic {
            why: marker.to_string(),
        }));
    }
    let from = match sole_sender(&headers)?.and_then(|f| sender_key(&f)) {
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
// The mbox envelope line.

/// The message without the mbox envelope line an MDA may write before the headers
/// (`From alice@example.org Thu Dec  3 06:00:00 2026`: procmail, Postfix pipe(8) with the `F`
/// flag). Only the first line, and only that exact shape: anything else is left for the header
/// check to refuse.
fn without_envelope(raw: &[u8]) -> &[u8] {
    let Some(rest) = raw.strip_prefix(b"From ") else {
        return raw;
    };
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return raw;
    };
    let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
    match std::str::from_utf8(line) {
        Ok(line) if envelope_line(line) => &rest[end + 1..],
        _ => raw,
    }
}

/// What follows `From ` on an envelope line: the envelope sender (one or more words, as a quoted
/// local part may hold spaces), then C's `asctime` date, which may carry a time zone before or
/// after the year (`Thu Dec  3 06:00:00 2026`, `Thu Dec 3 06:00:00 +0100 2026`).
fn envelope_line(line: &str) -> bool {
    // The sender is never empty (a null sender is written MAILER-DAEMON); some MDAs write two
    // spaces after it.
    if line.starts_with(' ') || line.chars().any(char::is_control) {
        return false;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    [5, 6]
        .iter()
        .any(|&n| words.len() > n && asctime(&words[words.len() - n..]))
}

/// `Www Mmm d hh:mm[:ss] [zone] yyyy [zone]`, at most one zone.
fn asctime(date: &[&str]) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let day = |s: &str| digits(s, 1, 2) && (1..=31).contains(&s.parse::<u8>().unwrap_or(0));
    let time = |s: &str| {
        let parts: Vec<&str> = s.split(':').collect();
        (2..=3).contains(&parts.len()) && parts.iter().all(|p| digits(p, 2, 2))
    };
    let year = |s: &str| digits(s, 4, 4);
    let zone = |s: &str| {
        s.strip_prefix(['+', '-']).is_some_and(|z| digits(z, 4, 4))
            || (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
    };
    let [weekday, month, d, t, rest @ ..] = date else {
        return false;
    };
    DAYS.contains(weekday)
        && MONTHS.contains(month)
        && day(d)
        && time(t)
        && match rest {
            [y] => year(y),
            [a, b] => year(a) && zone(b) || zone(a) && year(b),
            _ => false,
        }
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

/// How automatic replies, bounces and receipts begin their subject, in the languages securemail
/// knows (lower case, NFC). One ending in `:` matches with white space before the colon too
/// (French writes `Lu :`) and with the full-width colon.
const AUTO_SUBJECTS: &[&str] = &[
    // Auto-replies.
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
    "fuera de la oficina",
    "ausente",
    "afwezig",
    "absent du bureau",
    "message d'absence",
    "автоответ:",
    "автоматический ответ",
    "odpowiedź automatyczna",
    "autosvar:",
    "automatiskt svar",
    "automatisk svar",
    "automatisk besked",
    "automaattinen vastaus",
    "automatická odpověď",
    "automatikus válasz",
    "otomatik yanıt",
    "otomatik cevap",
    "αυτόματη απάντηση",
    "自动回复",
    "自動回覆",
    "自動回复",
    "自動応答",
    "自動返信",
    "자동 응답",
    // Bounces.
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "delivery has failed",
    "delivery failure",
    "failure notice",
    "mail delivery failed",
    "mail delivery failure",
    "returned mail",
    "unzustellbar",
    "nicht zustellbar",
    "non remis",
    "non recapitabile",
    "onbestelbaar",
    "não entregue",
    "não é possível entregar",
    "não foi possível entregar",
    "no se puede entregar",
    "no se pudo entregar",
    "nie można dostarczyć",
    "kan inte levereras",
    "не доставлено",
    "无法投递",
    "配信不能",
    // Read and delivery receipts (RFC 8098 and the clients' own).
    "read:",
    "not read:",
    "gelesen:",
    "nicht gelesen:",
    "lu:",
    "non lu:",
    "leído:",
    "leido:",
    "no leído:",
    "lido:",
    "letto:",
    "gelezen:",
    "läst:",
    "læst:",
    "lest:",
    "luettu:",
    "přečteno:",
    "przeczytano:",
    "прочитано:",
    "已读:",
    "已讀:",
    "開封済み:",
    "delivered:",
    "zugestellt:",
    "remis:",
    "entregado:",
    "read receipt",
    "return receipt",
    "lesebestätigung",
    "accusé de lecture",
    "confirmación de lectura",
];

/// Header fields whose mere presence marks a mail no person typed.
const AUTO_HEADERS: &[&str] = &[
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-auto-response-suppress",
    "x-autogenerated",
    "x-auto-reply",
    // Exchange: a mail sent by an inbox rule (forward, redirect, auto-reply) or generated by
    // the server itself.
    "x-ms-exchange-inbox-rules-loop",
    "x-ms-exchange-generated-message-source",
];

/// `Precedence` values that mark automatic mail.
const AUTO_PRECEDENCE: &[&str] = &[
    "bulk",
    "junk",
    "list",
    "auto_reply",
    "auto-reply",
    "autoreply",
];

/// `Auto-Submitted` values RFC 3834 defines (any value but `no` is automatic).
const AUTO_SUBMITTED: &[&str] = &["auto-generated", "auto-replied", "auto-notified"];

/// What showed that nobody typed a mail. It names a header or one of our own constants, never
/// the header's text: the text is the sender's and goes to the terminal and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// `Auto-Submitted` other than `no`, with its value when RFC 3834 defines it.
    AutoSubmitted(Option<&'static str>),
    Precedence(&'static str),
    /// One of [`AUTO_HEADERS`].
    Header(&'static str),
    /// A `multipart/report` (delivery, read or feedback report), at the top or as a part.
    Report,
    NullReturnPath,
    FailedRecipients,
    Daemon,
    /// One of [`AUTO_SUBJECTS`].
    Subject(&'static str),
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Marker::AutoSubmitted(Some(v)) => write!(f, "an automatic mail (Auto-Submitted: {v})"),
            Marker::AutoSubmitted(None) => f.write_str("an automatic mail (it has Auto-Submitted)"),
            Marker::Precedence(p) => write!(f, "an automatic mail (Precedence: {p})"),
            Marker::Header(name) => write!(f, "an automatic mail (it has {name})"),
            Marker::Report => f.write_str("a delivery or read report (multipart/report)"),
            Marker::NullReturnPath => f.write_str("a bounce (null Return-Path <>)"),
            Marker::FailedRecipients => f.write_str("a bounce (it has X-Failed-Recipients)"),
            Marker::Daemon => f.write_str("a bounce (sent by MAILER-DAEMON or postmaster)"),
            Marker::Subject(s) => write!(f, "an automatic mail (the subject starts with {s:?})"),
        }
    }
}

/// The first token of a structured header value: comments and parameters are not part of it
/// (`junk (vacation)`, `auto-replied; owner-email=…`).
fn first_token(v: &str) -> String {
    v.split([';', '('])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Why a mail was written by a machine, if it was (RFC 3834 and the common older markers).
/// `subject` is the decoded Subject (RFC 2047 words decoded: "Réponse automatique" arrives as
/// `=?utf-8?q?R=C3=A9ponse_automatique?=`).
fn automatic(fields: &[(String, String)], report: bool, subject: &str) -> Option<Marker> {
    for v in field_values(fields, "auto-submitted") {
        let token = first_token(v);
        if token != "no" {
            let known = AUTO_SUBMITTED.iter().copied().find(|k| *k == token);
            return Some(Marker::AutoSubmitted(known));
        }
    }
    for v in field_values(fields, "precedence").chain(field_values(fields, "x-precedence")) {
        let p = first_token(v);
        if let Some(p) = AUTO_PRECEDENCE.iter().copied().find(|k| *k == p) {
            return Some(Marker::Precedence(p));
        }
    }
    if let Some(name) = AUTO_HEADERS
        .iter()
        .copied()
        .find(|name| field_values(fields, name).next().is_some())
    {
        return Some(Marker::Header(name));
    }
    // The top-level type as written, in case the parts cannot be read.
    let report = report
        || field_values(fields, "content-type").any(|v| {
            matches!(
                first_token(v).as_str(),
                "multipart/report"
                    | "message/disposition-notification"
                    | "message/delivery-status"
                    | "message/feedback-report"
            )
        });
    if report {
        return Some(Marker::Report);
    }
    if field_values(fields, "return-path").any(|v| v.replace([' ', '\t'], "") == "<>") {
        return Some(Marker::NullReturnPath);
    }
    if field_values(fields, "x-failed-recipients").next().is_some() {
        return Some(Marker::FailedRecipients);
    }
    for v in field_values(fields, "from") {
        let lower = v.to_ascii_lowercase();
        if lower.contains("mailer-daemon@") || lower.contains("postmaster@") {
            return Some(Marker::Daemon);
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
        .copied()
        .find(|s| match s.strip_suffix(':') {
            Some(stem) => subject.strip_prefix(stem).is_some_and(|rest| {
                rest.trim_start_matches(char::is_whitespace)
                    .starts_with([':', '：'])
            }),
            None => subject.starts_with(s),
        })
        .map(Marker::Subject)
}

/// The one mailbox of the one From header, or why there is not exactly one.
fn sole_sender(fields: &[(String, String)]) -> Result<Result<String, String>, InboundError> {
    let values: Vec<&str> = field_values(fields, "from").collect();
    let value = match values.as_slice() {
        [] => return Err(InboundError::NoSender),
        [one] => *one,
        several => {
            return Ok(Err(format!(
                "the message has {} From headers; a reply has one",
                several.len()
            )));
        }
    };
    let tokens = address_tokens(value)
        .ok_or_else(|| "the From header is not one well-formed mailbox".to_string());
    match tokens {
        Ok(t) if t.is_empty() => Err(InboundError::NoSender),
        Ok(t) => Ok(one_mailbox(&t)
            .ok_or_else(|| "the From header is not one well-formed mailbox".to_string())),
        Err(why) => Ok(Err(why)),
    }
}

/// A lexical token of an address header (RFC 5322 §3.2), comments and white space dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AddressToken {
    /// A run of `atext` and dots: an atom, a dot-atom, or obs-phrase's `J. Smith`.
    Word(String),
    /// A quoted string as written, quotes and backslashes included.
    Quoted(String),
    /// Any other character: `<`, `>`, `@`, `,`, `:`, `;`, `[`…
    Special(char),
}

/// The tokens of an address header value; `None` when a comment or quoted string is not closed.
fn address_tokens(value: &str) -> Option<Vec<AddressToken>> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => {
                let mut depth = 1usize;
                while depth > 0 {
                    match chars.next()? {
                        '\\' => {
                            chars.next()?;
                        }
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '"' => {
                let mut q = String::from('"');
                loop {
                    let c = chars.next()?;
                    q.push(c);
                    match c {
                        '\\' => q.push(chars.next()?),
                        '"' => break,
                        _ => {}
                    }
                }
                tokens.push(AddressToken::Quoted(q));
            }
            c if word_char(c) => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !word_char(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                tokens.push(AddressToken::Word(w));
            }
            c => tokens.push(AddressToken::Special(c)),
        }
    }
    Some(tokens)
}

/// A character of an [`AddressToken::Word`]: `atext` (RFC 6532's non-ASCII, but no white space
/// or control character of any script) or a dot.
fn word_char(c: char) -> bool {
    c == '.' || (recipient::is_atext(c) && !c.is_whitespace() && !c.is_control() && c != '\u{feff}')
}

/// The address of tokens that make exactly one RFC 5322 `mailbox`: an `addr-spec`, or an
/// optional display name and `<addr-spec>`. Two addresses, a group, a route, an unclosed `<`,
/// an `@` in an unquoted name: `None`. Lenient parsers guess at such a field, and a guess is
/// not a sender.
fn one_mailbox(tokens: &[AddressToken]) -> Option<String> {
    use AddressToken::{Quoted, Special, Word};
    let addr_spec = |t: &[AddressToken]| match t {
        [local @ (Word(_) | Quoted(_)), Special('@'), Word(domain)] => {
            let local = match local {
                Word(w) if recipient::is_dot_atom(w) => w,
                Quoted(q) => q,
                _ => return None,
            };
            // A final dot is the fully qualified spelling of the domain.
            let bare = domain.strip_suffix('.').unwrap_or(domain);
            recipient::is_dot_atom(bare).then(|| format!("{local}@{domain}"))
        }
        _ => None,
    };
    match tokens.iter().position(|t| *t == Special('<')) {
        None => addr_spec(tokens),
        Some(open) => {
            let (name, rest) = tokens.split_at(open);
            let [Special('<'), inner @ .., Special('>')] = rest else {
                return None;
            };
            if name.iter().any(|t| matches!(t, Special(_))) {
                return None;
            }
            addr_spec(inner)
        }
    }
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
    /// RFC 8601 §2.2: a field of a version other than 1 is to be ignored, never guessed at.
    #[error("it is not version 1 of the format (RFC 8601)")]
    UnknownVersion,
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
    let version = c.run(|b| b.is_ascii_digit());
    if !version.is_empty() && version.trim_start_matches('0') != "1" {
        return Err(AuthResultsError::UnknownVersion);
    }
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
    c == '-' || space(c)
}

/// White space within a line, as people and word processors type it.
fn space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{a0}' | '\u{2009}' | '\u{202f}')
}

/// What joins the digit groups of a phone number, a range or a list of numbers besides white
/// space: `+49 (30) 123456`, `0171 / 123 456`, `030 - 123456`.
fn number_punctuation(c: char) -> bool {
    space(c)
        || matches!(
            c,
            '(' | ')' | '/' | '-' | '+' | '\u{2010}'..='\u{2015}' | '\u{2212}'
        )
}

/// A currency sign: `$`, `£`, `¥`, `€` and the rest of Unicode's currency symbols.
fn currency(c: char) -> bool {
    matches!(
        c,
        '$' | '¢'
            | '£'
            | '¤'
            | '¥'
            | '֏'
            | '؋'
            | '৲'
            | '৳'
            | '฿'
            | '៛'
            | '﷼'
            | '＄'
            | '￠'
            | '￡'
            | '￥'
            | '￦'
    ) || ('\u{20a0}'..='\u{20cf}').contains(&c)
}

/// A list of words written as one string (white space between them), as a set.
struct Words {
    list: &'static str,
    set: std::sync::OnceLock<HashSet<&'static str>>,
}

impl Words {
    const fn new(list: &'static str) -> Words {
        Words {
            list,
            set: std::sync::OnceLock::new(),
        }
    }

    fn contains(&self, word: &str) -> bool {
        self.set
            .get_or_init(|| self.list.split_whitespace().collect())
            .contains(word)
    }
}

/// Words that, right before a number, say what the number is when it is not a code: numbers of
/// things, telephones, banks, places and dates, currencies. Compounds ending in a number word
/// (`Kundennummer`, `Kunden-Nr.`) are found by [`NUMBER_WORDS`].
static LABELS: Words = Words::new(
    "\
    order ticket invoice case ref reference id no nr nº num customer account acct contract policy \
    tracking shipment parcel item sku article po rechnung bestellung auftrag vorgang kunde \
    vertrag aktenzeichen az konto kto sendung artikel commande facture dossier réf pedido \
    factura referencia bestelling factuur ordine fattura \
    tel tél tele telephone téléphone telefon telefono teléfono telefone telefoon phone ph fon \
    fax mob mobile mobil móvil mobiel cell cellulare handy portable whatsapp call ruf sms \
    iban bic swift blz plz zip postcode cp cap date datum fecha dated \
    eur usd chf gbp jpy cny rmb sek nok dkk pln czk huf rub inr aud cad nzd brl mxn krw hkd \
    sgd zar ils try euro euros fr sfr kr rs",
);

/// Endings of compound labels: `Kundennummer`, `Telefonnummer`, `order-number`, `Kd.-Nr.`.
const NUMBER_WORDS: &str = "nummer number numéro número numero -nr .nr -no -id";

/// Words that, right after a number, make it an amount or a measure: currencies, units, and
/// what is counted.
static UNITS: Words = Words::new(
    "\
    eur euro euros usd dollar dollars chf franken francs gbp pound pounds pfund jpy yen cny yuan \
    rmb sek nok dkk kr kronen pln zł zl czk kč huf rub inr aud cad nzd brl mxn krw hkd sgd zar \
    ils cent cents ct rappen pence \
    kg g mg lb lbs km cm mm mi ft ml kb mb gb tb kib mib gib bytes kwh mwh kw mw ha qm px dpi \
    meter meters metres kilometer kilometers kilometres miles meilen liter liters litres tons \
    tonnes tonnen grams gramm \
    users user nutzer benutzer people persons personen menschen customers kunden clients \
    members mitglieder employees mitarbeiter inhabitants einwohner visitors besucher views \
    aufrufe downloads subscribers abonnenten followers items pieces stück stk pcs units copies \
    exemplare times votes stimmen points punkte words lines pages seiten rows records accounts \
    mails emails e-mails messages nachrichten requests orders bestellungen tickets years jahre \
    jahren months monate days tage tagen hours stunden minutes minuten seconds sekunden \
    utilisateurs personnes usuarios personas gebruikers utenti usuários",
);

/// The word next to a number (`before` it or after it) with the punctuation around it,
/// split into its lower-case letters and what trails them.
fn neighbour_word(c: &[char], from: usize, before: bool) -> Option<(String, String)> {
    let word: String = if before {
        let end = (0..from).rev().find(|&k| !space(c[k]))? + 1;
        let start = (0..end).rev().find(|&k| space(c[k])).map_or(0, |k| k + 1);
        c[start..end].iter().collect()
    } else {
        let start = (from..c.len()).find(|&k| !space(c[k]))?;
        let end = (start..c.len()).find(|&k| space(c[k])).unwrap_or(c.len());
        c[start..end].iter().collect()
    };
    let core = word.trim_matches(|ch: char| !ch.is_alphanumeric() && ch != '-' && ch != '.');
    let core = core.trim_matches(['-', '.']);
    let trail = &word[word.find(core).map_or(word.len(), |i| i + core.len())..];
    Some((core.to_lowercase(), trail.to_string()))
}

/// Words that make a label before a colon part of a sentence ("the code on my phone: 123456").
static DETERMINERS: Words = Words::new(
    "my your the this mein meinem meinen meiner dem der vom im am mon ma le la mi el mijn het",
);

/// Whether the word before a number labels it as something else (`Order #`, `Tel.:`, `Ticket`,
/// `Kundennummer:`): a known label, then nothing but `.`, `:` or `#` before the number.
fn labelled(c: &[char], start: usize) -> bool {
    let Some((word, trail)) = neighbour_word(c, start, true) else {
        return false;
    };
    let trail_ok = trail
        .chars()
        .all(|ch| matches!(ch, '.' | ':' | '#' | '：' | ')'));
    if !trail_ok
        || !(LABELS.contains(&word) || NUMBER_WORDS.split_whitespace().any(|n| word.ends_with(n)))
    {
        return false;
    }
    // "… on my phone: 123456" introduces the code; "Phone: 123456" labels a number.
    let said = trail.contains([':', '：']) && {
        let label_start = (0..start)
            .rev()
            .find(|&k| !space(c[k]))
            .and_then(|end| (0..end).rev().find(|&k| space(c[k])));
        label_start
            .and_then(|k| neighbour_word(c, k, true))
            .is_some_and(|(w, t)| t.is_empty() && DETERMINERS.contains(&w))
    };
    !said
}

/// Whether the digits from `start` to `end` are only part of a number that goes on (joined to
/// more digits by phone-number punctuation), an amount, a measure, or a labelled number.
fn not_a_code(c: &[char], start: usize, end: usize, spaced: bool) -> bool {
    // More digits, joined by nothing but phone-number punctuation: `(030) 123 456`,
    // `0171 / 123 456`, `+49 30 123456`.
    let back = (0..start).rev().find(|&k| !number_punctuation(c[k]));
    let forward = (end..c.len()).find(|&k| !number_punctuation(c[k]));
    if back.is_some_and(|k| c[k].is_ascii_digit()) || forward.is_some_and(|k| c[k].is_ascii_digit())
    {
        return true;
    }
    if start > 0 && c[start - 1] == '+' {
        return true;
    }
    // Signs before and after: `€482 913`, `#482913`, `№ 482913`, `482913 %`.
    let prev = (0..start).rev().find(|&k| !space(c[k])).map(|k| c[k]);
    let next = (end..c.len()).find(|&k| !space(c[k])).map(|k| c[k]);
    if prev.is_some_and(|p| currency(p) || matches!(p, '#' | '№' | '＃'))
        || next.is_some_and(|n| currency(n) || matches!(n, '%' | '‰' | '°'))
    {
        return true;
    }
    if labelled(c, start) {
        return true;
    }
    let after = neighbour_word(c, end, false);
    if after.as_ref().is_some_and(|(w, _)| UNITS.contains(w)) {
        return true;
    }
    // Groups split by white space read as one code only on their own: at the end of the line
    // or sentence, with no number in the word before (`250 000 users`, `Der Code lautet 123 456`).
    if spaced {
        let word_after = after.is_some_and(|(w, _)| w.chars().any(char::is_alphanumeric));
        let number_before = neighbour_word(c, start, true)
            .is_some_and(|(w, t)| w.chars().chain(t.chars()).any(|ch| ch.is_ascii_digit()));
        if word_after || number_before {
            return true;
        }
    }
    false
}

/// Every distinct numeric code of exactly `digits` digits that stands on its own: not part of a
/// longer number, word, phone number or date, not an amount or a measure, not labelled as an
/// order, ticket or telephone number. Groups are allowed when they split the code evenly
/// (`123 456`, `1234-5678`, `12 34 56`); groups split by white space only where the code stands
/// on its own (the end of a line or sentence), as `250 000` in prose is a number.
pub fn numeric_codes(text: &str, digits: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in text.lines() {
        let c: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < c.len() {
            if !c[i].is_ascii_digit() || (i > 0 && c[i - 1].is_ascii_digit()) {
                i += 1;
                continue;
            }
            let start = i;
            let mut groups: Vec<usize> = Vec::new();
            let mut spaced = false;
            let mut j = i;
            loop {
                let g = c[j..].iter().take_while(|d| d.is_ascii_digit()).count();
                groups.push(g);
                j += g;
                if j + 1 < c.len() && group_separator(c[j]) && c[j + 1].is_ascii_digit() {
                    spaced |= space(c[j]);
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
                    || (matches!(ch, '.' | ',' | ':' | '/')
                        && next
                            .and_then(|n| c.get(n))
                            .is_some_and(char::is_ascii_digit))
            };
            let before = start.checked_sub(1);
            let after = (j < c.len()).then_some(j);
            if joined_to(before, before.and_then(|b| b.checked_sub(1)))
                || joined_to(after, Some(j + 1))
            {
                continue;
            }
            let (min, max) = (
                groups.iter().copied().min().unwrap_or(0),
                groups.iter().copied().max().unwrap_or(0),
            );
            let even = groups.len() == 1 || (min >= 2 && max - min <= 1 && groups.len() <= 4);
            if groups.iter().sum::<usize>() != digits || !even || not_a_code(&c, start, j, spaced) {
                continue;
            }
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
    fn numbers_in_prose_are_not_codes() {
        for text in [
            "(030) 123 456",
            "Tel. +49 (30) 123456",
            "Mob. 0171 / 123 456",
            "We have 250 000 users",
            "250 000 users",
            "Budget: 120 000 EUR",
            "€482 913",
            "€ 482913",
            "482913 €",
            "US$482913",
            "Order #482913",
            "Ticket 482913",
            "ticket 482913 is closed",
            "Date 251126",
            "Datum: 251126",
            "Rechnung Nr. 482913",
            "Kundennummer: 482913",
            "Kunden-Nr.: 482913",
            "Bestellung 482913",
            "Invoice no. 482913",
            "IBAN: 482913",
            "Phone: 123 456",
            "Tel: 123456",
            "Fax 030 123456-99",
            "Handy 0171-123456",
            "+123456",
            "030 - 123456",
            "123456 / 654321",
            "we grew 123456% this year",
            "weighs 123456 kg",
            "12 500 000 EUR",
            "call 123456 now",
        ] {
            assert_eq!(numeric_codes(text, 6), Vec::<String>::new(), "{text:?}");
        }
    }

    #[test]
    fn typed_codes_are_still_found() {
        for text in [
            "123456",
            "123 456",
            "123-456",
            "12 34 56",
            "  123 456  ",
            "my code is 123456",
            "my code is 123456, thanks",
            "Der Code lautet 123 456",
            "Der Code lautet 123 456.",
            "Code: 123 456",
            "the app shows 123 456\n",
            "code 123456 thanks",
            "the code on my phone: 123456",
            "Hier der Code vom Handy: 123456",
            "*123456*",
            "(123456)",
            "Code: 123456\n\nAlice\nTel: +49 30 123456\nMob. 0171 / 123 456\nOrder #654321",
            "123456\n\n--\nPhone: 654 321",
        ] {
            assert_eq!(numeric_codes(text, 6), vec!["123456"], "{text:?}");
        }
        // Two codes a person typed stay two (ambiguous), not one.
        assert_eq!(numeric_codes("123456 or 654321?", 6).len(), 2);
        assert_eq!(
            numeric_codes("Nein, nicht 123456. Richtig: 654 321", 6).len(),
            2
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

    fn screened(raw: &[u8]) -> Screened {
        screen(raw, &ReplyPolicy::default(), &Original::default()).unwrap()
    }

    #[test]
    fn an_mbox_envelope_line_is_skipped() {
        let msg = "From: Alice <alice@example.org>\r\nSubject: Re: x\r\n\r\n123456\r\n";
        for envelope in [
            "From alice@example.org Thu Dec  3 06:00:00 2026\n",
            "From alice@example.org  Thu Dec  3 06:00:00 2026\r\n",
            "From MAILER-DAEMON Thu Dec 3 06:00 2026\n",
            "From alice@example.org Thu Dec  3 06:00:00 +0100 2026\n",
            "From alice@example.org Thu Dec  3 06:00:00 2026 UTC\n",
            "From \"a b\"@example.org Thu Dec  3 06:00:00 2026\n",
        ] {
            let raw = format!("{envelope}{msg}");
            let Screened::Reply(r) = screened(raw.as_bytes()) else {
                panic!("{envelope:?}: set aside");
            };
            assert_eq!(r.from, "alice@example.org", "{envelope:?}");
            assert_eq!(numeric_codes(&r.fresh_text, 6), vec!["123456"]);
        }
        // Anything but that exact shape, and anything but the first line, stays.
        for envelope in [
            "From alice@example.org\n",
            "From  Thu Dec  3 06:00:00 2026\n",
            "From Thu Dec  3 06:00:00 2026\n",
            "From alice@example.org Thursday Dec  3 06:00:00 2026\n",
            "From alice@example.org Thu Dez  3 06:00:00 2026\n",
            "From alice@example.org Thu Dec 32 06:00:00 2026\n",
            "From alice@example.org Thu Dec  3 6:00:00 2026\n",
            "From alice@example.org Thu Dec  3 06:00:00 26\n",
            "From alice@example.org Thu Dec  3 06:00:00 2026 +0100 UTC\n",
            "From alice@example.org Thu Dec  3 06:00:00 2026\u{1b}\n",
            "from alice@example.org Thu Dec  3 06:00:00 2026\n",
            "From: alice@example.org Thu Dec  3 06:00:00 2026\n",
            "Received: x\nFrom alice@example.org Thu Dec  3 06:00:00 2026\n",
            "From alice@example.org Thu Dec  3 06:00:00 2026",
        ] {
            let raw = format!("{envelope}{msg}");
            assert_eq!(
                without_envelope(raw.as_bytes()),
                raw.as_bytes(),
                "{envelope:?}"
            );
        }
        let p = ReplyPolicy::default();
        let o = Original::default();
        assert!(matches!(
            screen(b"From alice@example.org Thu Dec  3 06:00:00 2026\n", &p, &o),
            Err(InboundError::NotAMessage)
        ));
    }

    #[test]
    fn automatic_mail_is_told_by_markers_it_does_not_echo() {
        let why = |headers: &str| match screened(
            format!("From: a@x.org\r\n{headers}To: b@y.org\r\n\r\n123456").as_bytes(),
        ) {
            Screened::SetAside(SetAside::Automatic { why }) => why,
            other => panic!("{headers:?}: {other:?}"),
        };
        for subject in [
            "Não é possível entregar: Your key",
            "=?utf-8?q?N=C3=A3o_=C3=A9_poss=C3=ADvel_entregar=3A_x?=",
            "Read: Your one-time key",
            "Gelesen: Your one-time key",
            "Lu : Your one-time key",
            "Lu\u{a0}: Your one-time key",
            "Leído: Your one-time key",
            "Автоответ: Your one-time key",
            "Odpowiedź automatyczna: Your one-time key",
            "Autosvar: Your one-time key",
            "自动回复: Your one-time key",
            "自動回覆：Your one-time key",
            "自動応答: Your one-time key",
            "[EXT] Read: x",
        ] {
            let w = why(&format!("Subject: {subject}\r\n"));
            assert!(
                w.starts_with("an automatic mail (the subject starts with"),
                "{subject}: {w}"
            );
        }
        for (header, want) in [
            (
                "Precedence: auto-reply",
                "an automatic mail (Precedence: auto-reply)",
            ),
            (
                "X-Failed-Recipients: a@x.org",
                "a bounce (it has X-Failed-Recipients)",
            ),
            (
                "X-MS-Exchange-Inbox-Rules-Loop: a@x.org",
                "an automatic mail (it has x-ms-exchange-inbox-rules-loop)",
            ),
            (
                "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent",
                "an automatic mail (it has x-ms-exchange-generated-message-source)",
            ),
            (
                "Content-Type: multipart/report; report-type=disposition-notification; boundary=b",
                "a delivery or read report (multipart/report)",
            ),
            (
                "Auto-Submitted: auto-replied",
                "an automatic mail (Auto-Submitted: auto-replied)",
            ),
            // The sender's own words are never repeated: only the marker's name.
            (
                "Auto-Submitted: \u{1b}[31mYOU HAVE BEEN HACKED, call +1 555 0100",
                "an automatic mail (it has Auto-Submitted)",
            ),
        ] {
            assert_eq!(
                why(&format!("{header}\r\nSubject: Re: x\r\n")),
                want,
                "{header}"
            );
        }
        // Not automatic: a subject that only looks like one, a request for a receipt.
        for headers in [
            "Subject: Re: Ready: your key\r\n",
            "Subject: Re: Lucky: your key\r\n",
            "Subject: Re: x\r\nDisposition-Notification-To: a@x.org\r\n",
            "Subject: Re: x\r\nPrecedence: first-class\r\n",
        ] {
            let raw = format!("From: a@x.org\r\n{headers}\r\n123456");
            assert!(
                matches!(screened(raw.as_bytes()), Screened::Reply(_)),
                "{headers}"
            );
        }
    }

    #[test]
    fn only_one_well_formed_mailbox_is_a_sender() {
        let from = |value: &str| match screened(
            format!("From: {value}\r\nSubject: Re: x\r\n\r\n1").as_bytes(),
        ) {
            Screened::Reply(r) => Ok(r.from),
            Screened::SetAside(s) => Err(s.folder()),
        };
        for (value, want) in [
            ("alice@example.org", "alice@example.org"),
            ("Alice <Alice@Example.org>", "alice@example.org"),
            ("\"Doe, Alice\" <alice@example.org>", "alice@example.org"),
            (
                "Alice (work) <alice@example.org> (comment)",
                "alice@example.org",
            ),
            ("alice@example.org (Alice)", "alice@example.org"),
            ("J. R. Doe <alice@example.org>", "alice@example.org"),
            (
                "=?utf-8?q?J=C3=BCrgen?= <alice@example.org>",
                "alice@example.org",
            ),
            ("Jürgen Müller <alice@example.org>", "alice@example.org"),
            ("<alice@example.org>", "alice@example.org"),
            ("\"lee\"@example.org", "lee@example.org"),
            ("Alice\r\n <alice@example.org>", "alice@example.org"),
        ] {
            assert_eq!(from(value), Ok(want.to_string()), "{value:?}");
        }
        for value in [
            "alice@example.org mallory@example.net",
            "<alice@example.org> mallory@example.net",
            "alice@example.org <mallory@example.net>",
            "Alice <alice@example.org",
            "Alice alice@example.org>",
            "<<alice@example.org>>",
            "Alice <alice@example.org> <mallory@example.net>",
            "alice@example.org, mallory@example.net",
            "Team: alice@example.org, mallory@example.net;",
            "Team: alice@example.org;",
            "undisclosed-recipients:;",
            "<@relay.example:alice@example.org>",
            "alice@@example.org",
            "alice@example.org@example.net",
            "alice.@example.org",
            "alice@example..org",
            "alice@[192.0.2.1]",
            "Alice (unclosed <alice@example.org>",
            "\"unclosed <alice@example.org>",
            "alice\u{a0}x@example.org",
        ] {
            assert_eq!(from(value), Err("unauthenticated"), "{value:?}");
        }
        assert!(matches!(
            screen(
                b"From: (nobody)\r\nSubject: x\r\n\r\n1",
                &ReplyPolicy::default(),
                &Original::default()
            ),
            Err(InboundError::NoSender)
        ));
    }

    #[test]
    fn authentication_results_of_another_version_are_not_believed() {
        assert_eq!(
            parse_authentication_results("mx.example.net 2; dmarc=pass header.from=example.org"),
            Err(AuthResultsError::UnknownVersion)
        );
        assert!(parse_authentication_results("mx.example.net 01; dmarc=pass").is_ok());
        let fields = |v: &str| {
            header_fields(
                format!("Authentication-Results: {v}\r\nFrom: a@example.org\r\n\r\nx").as_bytes(),
            )
        };
        let pass = "dmarc=pass header.from=example.org";
        assert!(
            authenticated(
                &fields(&format!("mx.example.net 1; {pass}")),
                "mx.example.net",
                "a@example.org"
            )
            .is_ok()
        );
        for v in [
            format!("mx.example.net 2; {pass}"),
            format!("mx.example.net (c) 10; {pass}"),
        ] {
            assert!(
                authenticated(&fields(&v), "mx.example.net", "a@example.org").is_err(),
                "{v}"
            );
        }
        // The topmost field of the trusted server decides, even when it cannot be read: a
        // version-1 pass below it (the sender's own) is not looked at.
        let both = header_fields(
            format!(
                "Authentication-Results: mx.example.net 2; {pass}\r\n\
                 Authentication-Results: mx.example.net 1; {pass}\r\nFrom: a@example.org\r\n\r\nx"
            )
            .as_bytes(),
        );
        assert!(authenticated(&both, "mx.example.net", "a@example.org").is_err());
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
