//! Just enough X.509 to tell an operator whose certificate a server showed: subject, issuer and
//! validity, read from the DER of a certificate that rustls has already verified.
//!
//! A full X.509 crate would add a dozen dependencies for four fields, so this walks the DER
//! (X.690) by hand: every length is checked against the bytes left, nothing indexes past a
//! slice, and anything unexpected gives `None` rather than a guess.

/// What `check` prints about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// e.g. `CN=smtp.gmail.com`.
    pub subject: String,
    pub issuer: String,
    /// `2026-01-01 00:00:00 UTC`.
    pub not_before: String,
    pub not_after: String,
}

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers do not occur in the fields we read
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads a certificate's subject, issuer and validity.
pub fn summarize(der: &[u8]) -> Option<CertSummary> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // version [0] EXPLICIT, optional
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    let (0x02, _, rest) = tlv(rest)? else {
        return None;
    }; // serialNumber
    let (0x30, _, rest) = tlv(rest)? else {
        return None;
    }; // signature algorithm
    let (0x30, issuer, rest) = tlv(rest)? else {
        return None;
    };
    let (0x30, validity, rest) = tlv(rest)? else {
        return None;
    };
    let (0x30, subject, _) = tlv(rest)? else {
        return None;
    };
    let (t1, nb, v) = tlv(validity)?;
    let (t2, na, _) = tlv(v)?;
    Some(CertSummary {
        subject: name(subject)?,
        issuer: name(issuer)?,
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
    })
}

/// An X.501 Name as `CN=…, O=…`.
fn name(mut seq: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !seq.is_empty() {
        let (0x31, set, rest) = tlv(seq)? else {
            return None;
        };
        seq = rest;
        let mut set = set;
        while !set.is_empty() {
            let (0x30, atv, rest) = tlv(set)? else {
                return None;
            };
            set = rest;
            let (0x06, oid, value) = tlv(atv)? else {
                return None;
            };
            let (_, text, _) = tlv(value)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN".to_string(),
                [0x55, 0x04, 0x06] => "C".to_string(),
                [0x55, 0x04, 0x07] => "L".to_string(),
                [0x55, 0x04, 0x08] => "ST".to_string(),
                [0x55, 0x04, 0x0a] => "O".to_string(),
                [0x55, 0x04, 0x0b] => "OU".to_string(),
                other => oid_text(other)?,
            };
            let value: String = String::from_utf8_lossy(text)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            parts.push(format!("{key}={value}"));
        }
    }
    Some(parts.join(", "))
}

/// Dotted form of an OID, for attributes without a short name.
fn oid_text(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut out = format!("{}.{}", first / 40, first % 40);
    let mut acc: u64 = 0;
    for &b in rest {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            out.push_str(&format!(".{acc}"));
            acc = 0;
        }
    }
    Some(out)
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as `YYYY-MM-DD HH:MM:SS UTC`.
fn time(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: u32 = s[..2].parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_rcgen_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["mail.example.org".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mail.example.org");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2051, 3, 4);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = summarize(cert.der()).unwrap();
        assert!(s.subject.contains("CN=mail.example.org"), "{s:?}");
        assert!(s.subject.contains("O=Example"), "{s:?}");
        assert_eq!(s.issuer, s.subject);
        assert_eq!(s.not_before, "2024-01-02 00:00:00 UTC");
        assert_eq!(s.not_after, "2051-03-04 00:00:00 UTC");
    }

    #[test]
    fn truncated_or_garbage_input_gives_none() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            let _ = summarize(&der[..cut]);
        }
        assert_eq!(summarize(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(summarize(&[0x30; 64]), None);
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).unwrap(),
            "1.2.840.113549"
        );
    }
}
