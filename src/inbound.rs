//! Reading the code out of a reply email.
//!
//! Recipients usually answer the mail with their code. This turns an RFC 5322 message (parsed
//! by `mail-parser`, which undoes quoted-printable, base64 and charsets such as ISO-8859-1) into
//! who sent it, which of our messages it answers, and the code they typed — looking only above
//! the quoted original: `>` lines, "On … wrote:" and similar attribution lines, Outlook's
//! "-----Original Message-----" and `From:`/`Sent:` header blocks end the search, since the
//! original mail itself carries the key. HTML-only replies are turned into text first.

use mail_parser::{HeaderValue, MessageParser};

use crate::exit;

/// Largest reply message we read.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What securemail needs from a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The `From` address, lower case.
    pub from: String,
    /// Message-IDs named by `In-Reply-To` and `References`, with angle brackets.
    pub answers: Vec<String>,
    /// The reply's own text above the quote (for code extraction).
    pub fresh_text: String,
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

/// Parses a reply.
pub fn parse(raw: &[u8]) -> Result<Reply, InboundError> {
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
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@') && !a.chars().any(char::is_control))
        .ok_or(InboundError::NoSender)?;
    let mut answers = ids(msg.in_reply_to());
    for id in ids(msg.references()) {
        if !answers.contains(&id) {
            answers.push(id);
        }
    }
    let text = msg
        .body_text(0)
        .map(|t| t.into_owned())
        .ok_or(InboundError::NoText)?;
    Ok(Reply {
        from,
        answers,
        fresh_text: above_quote(&text),
    })
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

/// The lines a person wrote, before the quoted original starts.
pub fn above_quote(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if is_quote_start(t) {
            break;
        }
        if t.starts_with('>') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn is_quote_start(line: &str) -> bool {
    let lower = line.to_lowercase();
    // "On Tue, 24 Nov 2026 at 10:00, Admin <a@x> wrote:" and its cousins in other languages.
    let attribution = [
        "wrote:",
        "a écrit :",
        "a écrit:",
        "schrieb:",
        "escribió:",
        "ha scritto:",
        "schreef:",
    ];
    (attribution.iter().any(|a| lower.ends_with(a)) && lower.len() < 300)
        || lower.starts_with("-----original message-----")
        || lower.starts_with("-----ursprüngliche nachricht-----")
        || lower.starts_with("________________________________")
        || (lower.starts_with("from:") && lower.contains('@'))
        || lower.starts_with("sent from my ")
}

/// The first run of `digits` digits (spaces or dashes allowed between groups, as apps show
/// "123 456"), not part of a longer number.
pub fn find_numeric_code(text: &str, digits: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut code = String::new();
        let mut j = i;
        while j < chars.len() && code.len() <= digits {
            let c = chars[j];
            if c.is_ascii_digit() {
                code.push(c);
            } else if (c == ' ' || c == '-')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && j > i
                && chars[j - 1].is_ascii_digit()
            {
                // a single separator inside the code
            } else {
                break;
            }
            j += 1;
        }
        if code.len() == digits {
            return Some(code);
        }
        i = j.max(i + 1);
    }
    None
}

/// The first word (letters, digits, dashes, spaces between groups) that normalises to a key of
/// `length` characters from the key alphabet.
pub fn find_key(text: &str, length: usize) -> Option<String> {
    for line in text.lines() {
        // Try each run of key-ish characters, and also runs joined by single spaces.
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ' '))
            .collect();
        for w in words {
            let tokens: Vec<&str> = w.split(' ').filter(|t| !t.is_empty()).collect();
            for start in 0..tokens.len() {
                let mut joined = String::new();
                for t in &tokens[start..] {
                    joined.push_str(t);
                    let canonical = crate::key::normalise(&joined);
                    let c = canonical.expose();
                    if c.len() == length && crate::key::is_canonical(c) {
                        return Some(c.clone());
                    }
                    if c.len() > length {
                        break;
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut() {
        let t = "123456\n\nOn Tue, 24 Nov 2026, Admin <a@x.org> wrote:\n> Key: 999999\n";
        assert_eq!(above_quote(t), "123456\n\n");
        let t = "> 111111\nmy code is 222 333\n";
        assert_eq!(
            find_numeric_code(&above_quote(t), 6).as_deref(),
            Some("222333")
        );
        let t = "Here: 424242\n-----Original Message-----\nFrom: a@x.org\n 999999";
        assert_eq!(above_quote(t), "Here: 424242\n");
    }

    #[test]
    fn numeric_codes() {
        assert_eq!(
            find_numeric_code("code 123456 thanks", 6).as_deref(),
            Some("123456")
        );
        assert_eq!(
            find_numeric_code("code 123-456", 6).as_deref(),
            Some("123456")
        );
        assert_eq!(
            find_numeric_code("call 0123456789 or 654321", 6).as_deref(),
            Some("654321")
        );
        assert_eq!(find_numeric_code("on 24/11/2026 at 10:00", 6), None);
        assert_eq!(find_numeric_code("12345", 6), None);
        assert_eq!(
            find_numeric_code("12345678", 8).as_deref(),
            Some("12345678")
        );
    }

    #[test]
    fn keys() {
        assert_eq!(
            find_key("my key is 7kq2-9xmd-4htp ok", 12).as_deref(),
            Some("7KQ29XMD4HTP")
        );
        assert_eq!(
            find_key("7KQ2 9XMD 4HTP", 12).as_deref(),
            Some("7KQ29XMD4HTP")
        );
        assert_eq!(
            find_key("Thanks, here it is:\n7KQ29XMD4HTP", 12).as_deref(),
            Some("7KQ29XMD4HTP")
        );
        assert_eq!(find_key("hello world", 12), None);
    }

    #[test]
    fn parses_sender_and_threading() {
        let raw = b"From: Alice <Alice@Example.org>\r\nTo: admin@example.org\r\nSubject: Re: x\r\n\
In-Reply-To: <abc@example.org>\r\nReferences: <zzz@example.org> <abc@example.org>\r\n\r\n123456\r\n";
        let r = parse(raw).unwrap();
        assert_eq!(r.from, "alice@example.org");
        assert_eq!(r.answers, vec!["<abc@example.org>", "<zzz@example.org>"]);
        assert_eq!(
            find_numeric_code(&r.fresh_text, 6).as_deref(),
            Some("123456")
        );
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert!(parse(b"\x00\x01\x02 not mail at all").is_err());
        assert!(matches!(
            parse(b"Subject: hi\r\n\r\nbody"),
            Err(InboundError::NoSender)
        ));
        assert!(matches!(
            parse(&vec![b'a'; MAX_MESSAGE_BYTES + 1]),
            Err(InboundError::TooLarge)
        ));
    }
}
