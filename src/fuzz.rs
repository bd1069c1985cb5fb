//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their corpus
//! (`tests/integration/fuzz_corpus.rs`), so that both exercise exactly the same code. Each one
//! takes arbitrary bytes and checks the properties the rest of securemail relies on; a panic is
//! a finding.

use std::io::Cursor;
use std::path::Path;

use crate::transport::{Reply, smtp};
use crate::{config, inbound, key, otp, recipients};

/// A reply email: parse, look above the quote, extract codes.
pub fn reply_message(data: &[u8]) {
    let policy = config::ReplyPolicy {
        authserv_id: Some("mx.example.org".into()),
    };
    let original =
        inbound::Original::from_templates(["Reply to this mail with the key to confirm"]);
    for policy in [&config::ReplyPolicy::default(), &policy] {
        if let Ok(inbound::Screened::Reply(reply)) = inbound::screen(data, policy, &original) {
            assert!(!reply.from.chars().any(char::is_control));
            codes_in(&reply.fresh_text);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = inbound::parse_authentication_results(text);
        let plain = inbound::html_to_text(text);
        codes_in(&plain);
    }
    let text = String::from_utf8_lossy(data);
    let above = inbound::above_quote(&text);
    assert!(above.len() <= text.len() + text.lines().count() + 1);
    codes_in(&above);
}

fn codes_in(text: &str) {
    for digits in [6, 8] {
        for c in inbound::numeric_codes(text, digits) {
            assert_eq!(c.len(), digits);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    for length in [10, 12, 16] {
        for k in inbound::keys(text, length).keys {
            assert_eq!(
                k.len(),
                length + 1,
                "random characters and the check symbol"
            );
            assert!(key::is_well_formed(&k));
        }
    }
}

/// Configuration text.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(s) = config::parse(Path::new("fuzz/account.toml"), text)
    {
        assert!((6..=8).contains(&s.otp.params.digits));
        assert!(s.key.length >= config::MIN_KEY_LENGTH);
        assert!(s.max_attempts >= 1);
    }
}

/// A recipient list.
pub fn list(data: &[u8]) {
    let _ = recipients::stream_from(Cursor::new(data), Path::new("fuzz.csv"), |entry| {
        if let recipients::Entry::Valid { recipient, .. } = entry {
            assert!(!recipient.address.chars().any(char::is_control));
            assert!(!recipient.name().chars().any(char::is_control));
            assert_eq!(recipient.address, recipient.address.to_lowercase());
        }
        true
    });
}

/// What people type as a code.
pub fn codes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let k = key::normalise(&text);
    assert!(!k.expose().chars().any(|c| c.is_whitespace() || c == '-'));
    assert_eq!(
        key::normalise(k.expose()).expose(),
        k.expose(),
        "normalising twice changes nothing"
    );
    let n = otp::normalise_code(&text);
    assert!(!n.chars().any(char::is_whitespace));
    codes_in(&text);
}

/// A server certificate (DER), as `check` reads it: every field it prints, and every reason it
/// gives for not reading one, is free of control characters.
pub fn certificate(data: &[u8]) {
    match crate::transport::cert::summarize(data) {
        Ok(c) => {
            let times = [c.not_before, c.not_after].map(|t| [t.to_string(), t.rfc3339()]);
            let texts = [&c.subject, &c.issuer, &c.sha256]
                .into_iter()
                .chain(&c.dns_names)
                .chain(times.iter().flatten());
            for s in texts {
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
            assert_eq!(c.sha256.len(), 32 * 3 - 1);
        }
        Err(e) => assert!(!e.to_string().chars().any(char::is_control)),
    }
}

/// Server reply lines, as the SMTP client reads them, and an EHLO reply's keywords.
pub fn smtp_replies(data: &[u8]) {
    let mut lines = Vec::new();
    let mut code = 0;
    for raw in data.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw)).into_owned();
        if let Ok((c, _more, text)) = smtp::reply_line(&line) {
            assert!((200..600).contains(&c));
            code = c;
            lines.push(text.to_string());
        }
    }
    let ext = smtp::Extensions::parse(&Reply { code, lines });
    assert!(
        ext.auth
            .iter()
            .all(|m| m.chars().all(|c| !c.is_lowercase()))
    );
}
