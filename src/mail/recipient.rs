//! A recipient as securemail keys and addresses it: parsed from `--to`, a list line or a reply's
//! `From:`, with header values checked so that nothing typed can break out of its header line.

use lettre::Address;
use lettre::message::Mailbox;

use super::error::MailError;

/// Longest display name we put in a header.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest subject we put in a header.
pub const MAX_SUBJECT_CHARS: usize = 250;

/// Refuses header values that could break out of their header line.
pub fn check_header_value(what: &'static str, value: &str, max: usize) -> Result<(), MailError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(MailError::ControlCharacter { what });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(MailError::TooLong { what, chars, max });
    }
    Ok(())
}

/// Longest address we accept (RFC 5321's path limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// A checked recipient.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// For the `To:` header, with the display name when one was given; its address is the
    /// canonical one.
    pub mailbox: Mailbox,
    /// The canonical address ([`canonical`]): the key under which codes are stored, and the
    /// address the mail goes to (RCPT TO and `To:`).
    pub address: String,
}

/// The one form of an address that securemail stores, sends to and compares: two inputs share a
/// record only if they name the same mailbox.
///
/// - The domain goes through UTS #46 (the `idna` crate, STD3 rules) to its lower-case A-label:
///   `Bücher.Example` and `xn--bcher-kva.example` are one domain.
/// - An ASCII local part is compared without regard to case (`Alice` = `alice`), as every
///   mail system in practice does.
/// - A non-ASCII local part is put in Unicode NFC and otherwise kept exactly: Unicode case
///   mapping can turn a non-ASCII letter into an ASCII one (U+212A KELVIN SIGN lower-cases to
///   `k`), which would fold another person's mailbox onto this one. One whose NFC form gains
///   ASCII letters (the Kelvin sign is canonically `K`) is refused as a look-alike. Sending to a
///   non-ASCII local part needs a server that offers SMTPUTF8; the transport refuses otherwise.
pub fn canonical(address: &Address) -> Result<Address, MailError> {
    let bad = |reason: String| MailError::BadAddress {
        input: address.to_string(),
        reason,
    };
    let domain = address.domain();
    let domain = if domain.starts_with('[') {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(domain).map_err(|_| {
            bad(format!(
                "{} is not a valid domain name",
                crate::quote(domain)
            ))
        })?
    };
    let user = local_part(address.user()).map_err(bad)?;
    Address::new(user, domain).map_err(|e| bad(e.to_string()))
}

/// A local part as [`canonical`] keys it: ASCII in lower case; non-ASCII in NFC, refused when NFC
/// turns some of it into ASCII letters.
fn local_part(user: &str) -> Result<String, String> {
    if user.is_ascii() {
        return Ok(user.to_ascii_lowercase());
    }
    let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(user);
    // NFC maps some characters to ASCII ones (U+212A KELVIN SIGN is canonically `K`): an
    // address written with them stands for another, plain one. Refuse rather than guess
    // which mailbox is meant.
    let ascii = |s: &str| s.chars().filter(char::is_ascii).count();
    if ascii(&nfc) > ascii(user) {
        let odd: String = user
            .chars()
            .filter(|c| !c.is_ascii())
            .map(|c| format!("U+{:04X} ", u32::from(c)))
            .collect();
        return Err(format!(
            "its local part uses {odd}which stands for a plain ASCII letter; write the address \
             with ASCII letters"
        ));
    }
    Ok(nfc.into_owned())
}

/// [`canonical`] for an address as a mail system writes it, e.g. a reply's `From:`: the same
/// mailbox in the spellings RFC 5321/5322 allow for it is one key. A quoted local part whose
/// content needs no quoting (`"alice"@example.org`) is that plain local part, and a domain
/// written fully qualified (`example.org.`) is that domain.
pub fn canonical_str(input: &str) -> Result<Address, MailError> {
    let bad = |reason: String| MailError::BadAddress {
        input: input.to_string(),
        reason,
    };
    let trimmed = input.trim();
    let (user, domain) = trimmed
        .rsplit_once('@')
        .ok_or_else(|| bad("it has no @".into()))?;
    let user = match user.strip_prefix('"').and_then(|u| u.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() && is_dot_atom(inner) => inner,
        _ => user,
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // Keyed first: the address syntax check refuses a lone combining mark (NFD `e` + U+0301).
    let user = local_part(user).map_err(bad)?;
    let address = Address::new(user, domain).map_err(|e| bad(e.to_string()))?;
    canonical(&address)
}

/// RFC 5322 dot-atom text (ASCII atext, or any non-ASCII as RFC 6532 allows, in dot-separated
/// non-empty runs): a local part that needs no quotes.
pub(crate) fn is_dot_atom(s: &str) -> bool {
    s.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// RFC 5322 `atext`, with any non-ASCII character as RFC 6532 allows.
pub(crate) fn is_atext(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

impl Recipient {
    /// Parses `--to` (an address, or `Name <address>`) and the optional `--name`.
    pub fn parse(input: &str, name: Option<&str>) -> Result<Recipient, MailError> {
        check_header_value(
            "recipient address",
            input,
            MAX_ADDRESS_CHARS + MAX_NAME_CHARS,
        )?;
        if let Some(n) = name {
            check_header_value("name", n, MAX_NAME_CHARS)?;
        }
        let mut mailbox: Mailbox =
            input
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::BadAddress {
                    input: input.to_string(),
                    reason: e.to_string(),
                })?;
        mailbox.email = canonical(&mailbox.email)?;
        let address = mailbox.email.to_string();
        if address.chars().count() > MAX_ADDRESS_CHARS {
            return Err(MailError::TooLong {
                what: "recipient address",
                chars: address.chars().count(),
                max: MAX_ADDRESS_CHARS,
            });
        }
        if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
            mailbox.name = Some(n.to_string());
        }
        if let Some(n) = &mailbox.name {
            check_header_value("name", n, MAX_NAME_CHARS)?;
        }
        Ok(Recipient { address, mailbox })
    }

    /// The display name, or "" when none was given.
    pub fn name(&self) -> &str {
        self.mailbox.name.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &str) -> String {
        Recipient::parse(input, None).unwrap().address
    }

    #[test]
    fn one_mailbox_one_key() {
        assert_eq!(key("Alice@Example.ORG"), "alice@example.org");
        // An IDN domain and its A-label are one domain.
        assert_eq!(key("bob@Bücher.example"), "bob@xn--bcher-kva.example");
        assert_eq!(
            key("bob@xn--bcher-kva.example"),
            "bob@xn--bcher-kva.example"
        );
        // The mail goes to the canonical form too.
        let r = Recipient::parse("Bob <bob@BÜCHER.example>", None).unwrap();
        assert_eq!(r.mailbox.email.to_string(), "bob@xn--bcher-kva.example");
        assert_eq!(r.name(), "Bob");
    }

    #[test]
    fn non_ascii_local_parts_are_never_folded_into_ascii() {
        // U+212A KELVIN SIGN lower-cases (and NFC-normalises) to ASCII 'k': refused, never
        // kelly's key.
        let kelvin = Recipient::parse("\u{212A}elly@example.org", None).unwrap_err();
        assert!(kelvin.to_string().contains("U+212A"), "{kelvin}");
        assert_eq!(key("r\u{e9}ne@Example.org"), "r\u{e9}ne@example.org");
        // But non-ASCII letters are not case-folded at all.
        assert_ne!(key("\u{c9}lise@example.org"), key("\u{e9}lise@example.org"));
    }

    #[test]
    fn a_mail_systems_spellings_of_one_mailbox_are_one_key() {
        let key = |s: &str| canonical_str(s).unwrap().to_string();
        for spelling in [
            "alice@example.org",
            "Alice@EXAMPLE.org",
            "\"alice\"@example.org",
            "alice@example.org.",
            " ALICE@Example.Org. ",
        ] {
            assert_eq!(key(spelling), "alice@example.org", "{spelling}");
        }
        assert_eq!(key("bob@B\u{fc}cher.example"), "bob@xn--bcher-kva.example");
        // NFD and NFC are one local part; non-ASCII capitals stay capitals.
        assert_eq!(key("ren\u{65}\u{301}@example.org"), "ren\u{e9}@example.org");
        assert_eq!(key("CAF\u{c9}@example.org"), "CAF\u{c9}@example.org");
        // Quotes that are needed stay; the Kelvin sign is refused, as for --to.
        assert_eq!(key("\"a b\"@example.org"), "\"a b\"@example.org");
        assert!(canonical_str("\u{212A}elly@example.org").is_err());
        assert!(canonical_str("\"\u{212A}elly\"@example.org").is_err());
        assert!(canonical_str("no-at-sign").is_err());
    }

    #[test]
    fn bad_domains_are_refused() {
        assert!(matches!(
            Recipient::parse("a@exa mple.org", None),
            Err(MailError::BadAddress { .. })
        ));
        assert!(matches!(
            Recipient::parse("a@-bad-.example", None),
            Err(MailError::BadAddress { .. })
        ));
    }

    #[test]
    fn recipients_are_checked_and_keyed_in_lower_case() {
        let r = Recipient::parse("Alice <Alice@Example.org>", None).unwrap();
        assert_eq!(r.address, "alice@example.org");
        assert_eq!(r.name(), "Alice");
        let r = Recipient::parse("bob@example.org", Some("Bob B")).unwrap();
        assert_eq!(r.name(), "Bob B");
        assert!(matches!(
            Recipient::parse("bob@example.org\r\nBcc: x@y.z", None),
            Err(MailError::ControlCharacter { .. })
        ));
        assert!(matches!(
            Recipient::parse("bob@example.org", Some("B\nob")),
            Err(MailError::ControlCharacter { what: "name" })
        ));
        assert!(matches!(
            Recipient::parse("not-an-address", None),
            Err(MailError::BadAddress { .. })
        ));
    }

    #[test]
    fn header_values_refuse_line_breaks() {
        assert!(check_header_value("subject", "ok", 10).is_ok());
        assert!(matches!(
            check_header_value("subject", "a\r\nBcc: x@y", 100),
            Err(MailError::ControlCharacter { what: "subject" })
        ));
        assert!(matches!(
            check_header_value("name", &"x".repeat(11), 10),
            Err(MailError::TooLong { chars: 11, .. })
        ));
    }
}
