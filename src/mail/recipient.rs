//! A recipient as securemail keys and addresses it: parsed from `--to`, a list line or a reply's
//! `From:`, with header values checked so that nothing typed can break out of its header line.

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
    /// For the `To:` header, with the display name when one was given.
    pub mailbox: Mailbox,
    /// The address in lower case: the key under which codes are stored.
    pub address: String,
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
        Ok(Recipient {
            address: address.to_lowercase(),
            mailbox,
        })
    }

    /// The display name, or "" when none was given.
    pub fn name(&self) -> &str {
        self.mailbox.name.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
