//! What `check` tells an operator about the certificates a server showed, as `openssl s_client`
//! would: for the leaf, subject, issuer, validity, SHA-256 fingerprint and subject alternative
//! names (DNS names and IP addresses); for every certificate of the chain as sent, its subject
//! and issuer.
//!
//! The DER is read with RustCrypto's `x509-cert` (it shares `der`, `spki` and `const-oid` with
//! the `rsa` crate we already use). rustls has verified the leaf before anything here runs, but
//! the other certificates of the chain are only what the server sent, so every input is treated
//! as untrusted: anything that does not decode completely is a [`ReadError`] saying why, never a
//! guess, and nothing that reaches a terminal carries control characters.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

/// What `check` shows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Attributes in the order they are encoded, e.g. `C=DE, O=Example, CN=smtp.example.org`
    /// (values escaped as in RFC 4514).
    pub subject: String,
    pub issuer: String,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
    /// SHA-256 of the DER, colon-separated uppercase hex (as `openssl x509 -fingerprint -sha256`).
    pub sha256: String,
    /// `dNSName` entries of the subject alternative names, in order.
    pub dns_names: Vec<String>,
    /// `iPAddress` entries of the subject alternative names, in order.
    pub ip_addresses: Vec<IpAddr>,
}

/// A validity bound, to the second, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(der::DateTime);

impl UtcTime {
    /// RFC 3339, e.g. `2026-01-01T00:00:00Z` (for `--json`).
    pub fn rfc3339(&self) -> String {
        self.0.to_string()
    }
}

/// `2026-01-01 00:00:00 UTC` (for people).
impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds()
        )
    }
}

/// The bytes are not a certificate `check` can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not read the certificate: {reason}")]
pub struct ReadError {
    pub reason: String,
}

impl ReadError {
    fn new(what: &str, detail: impl fmt::Display) -> ReadError {
        ReadError {
            reason: printable(&format!("{what}: {detail}")),
        }
    }
}

/// Reads one DER certificate. The whole input must be exactly one certificate.
pub fn summarize(der: &[u8]) -> Result<CertSummary, ReadError> {
    let cert = Certificate::from_der(der).map_err(|e| ReadError::new("not X.509 DER", e))?;
    let tbs = &cert.tbs_certificate;
    let (dns_names, ip_addresses) = alt_names(&cert)?;
    Ok(CertSummary {
        subject: name(&tbs.subject).map_err(|e| ReadError::new("subject", e))?,
        issuer: name(&tbs.issuer).map_err(|e| ReadError::new("issuer", e))?,
        not_before: UtcTime(tbs.validity.not_before.to_date_time()),
        not_after: UtcTime(tbs.validity.not_after.to_date_time()),
        sha256: fingerprint(der),
        dns_names,
        ip_addresses,
    })
}

/// `AB:CD:…`, as openssl prints fingerprints.
fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// A Name in encoding order (as openssl prints it, unlike RFC 4514's reversed order), each
/// attribute in x509-cert's RFC 4514 form.
fn name(name: &Name) -> Result<String, fmt::Error> {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // `write!`, not `to_string()`: an attribute that cannot be shown is an error, not a panic.
        write!(out, "{rdn}")?;
    }
    Ok(printable(&out))
}

/// The DNS names and IP addresses among the subject alternative names.
fn alt_names(cert: &Certificate) -> Result<(Vec<String>, Vec<IpAddr>), ReadError> {
    let bad = |e: &dyn fmt::Display| ReadError::new("subject alternative names", e);
    let Some((_critical, SubjectAltName(names))) = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .map_err(|e| bad(&e))?
    else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for general in names {
        match general {
            GeneralName::DnsName(n) => dns.push(printable(n.as_str())),
            GeneralName::IpAddress(octets) => ips.push(match *octets.as_bytes() {
                [a, b, c, d] => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                ref b => match <[u8; 16]>::try_from(b) {
                    Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                    Err(_) => {
                        return Err(bad(&format_args!("an IP address of {} bytes", b.len())));
                    }
                },
            }),
            _ => {}
        }
    }
    Ok((dns, ips))
}

/// Control characters (which could drive the terminal) become `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf signed by a separate CA, made with openssl and committed as a fuzz seed. The
    /// expected values below are what `openssl x509 -noout -subject -issuer -dates -fingerprint
    /// -sha256 -ext subjectAltName` prints for it.
    const OPENSSL_LEAF: &[u8] = include_bytes!("../../fuzz/corpus/certificate/seed-ec-sans");

    #[test]
    fn reads_an_openssl_certificate_as_openssl_does() {
        let s = summarize(OPENSSL_LEAF).unwrap();
        assert_eq!(s.subject, r"C=DE, O=Example\, Mail, CN=smtp.example.org");
        assert_eq!(s.issuer, "C=DE, O=Example, CN=Example Test CA");
        assert_eq!(s.not_before.to_string(), "2026-11-25 18:45:31 UTC");
        assert_eq!(s.not_after.to_string(), "2029-02-27 18:45:31 UTC");
        assert_eq!(s.not_before.rfc3339(), "2026-11-25T18:45:31Z");
        assert_eq!(s.not_after.rfc3339(), "2029-02-27T18:45:31Z");
        assert_eq!(
            s.sha256,
            "39:BB:46:E7:CB:2F:BF:78:98:54:9A:40:CA:9D:7F:93:C1:63:9A:4C:5D:BB:75:BE:B9:7D:A1:A4:90:1D:0D:74"
        );
        assert_eq!(s.dns_names, ["smtp.example.org", "*.mail.example.org"]);
        let ips: Vec<IpAddr> = vec![
            "192.0.2.25".parse().unwrap(),
            "2001:db8::25".parse().unwrap(),
        ];
        assert_eq!(s.ip_addresses, ips);
    }

    #[test]
    fn reads_an_rcgen_certificate() {
        let mut params = rcgen::CertificateParams::new(vec![
            "mail.example.org".to_string(),
            "10.1.2.3".to_string(),
        ])
        .unwrap();
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
        assert_eq!(s.not_before.to_string(), "2024-01-02 00:00:00 UTC");
        assert_eq!(s.not_after.to_string(), "2051-03-04 00:00:00 UTC");
        assert_eq!(s.not_after.rfc3339(), "2051-03-04T00:00:00Z");
        assert_eq!(s.dns_names, ["mail.example.org"]);
        assert_eq!(s.ip_addresses, [IpAddr::from([10, 1, 2, 3])]);
    }

    #[test]
    fn truncated_or_garbage_input_gives_none() {
        // The whole certificate reads; no proper prefix of it does, and neither does it with a
        // byte too many.
        assert!(summarize(OPENSSL_LEAF).is_ok());
        for cut in 0..OPENSSL_LEAF.len() {
            let err = summarize(&OPENSSL_LEAF[..cut]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("could not read the certificate: ")
            );
        }
        let mut longer = OPENSSL_LEAF.to_vec();
        longer.push(0);
        assert!(summarize(&longer).is_err());
        // A bent length byte deep inside (in the issuer) is refused, not skipped over.
        let mut bent = OPENSSL_LEAF.to_vec();
        let subject_at = bent
            .windows(3)
            .position(|w| w == [0x55, 0x04, 0x0a])
            .unwrap();
        bent[subject_at - 3] ^= 0x40;
        assert!(summarize(&bent).is_err());
        // Garbage: a length larger than the input, a run of SEQUENCE tags, pseudo-random bytes.
        assert!(summarize(b"\x30\x84\xff\xff\xff\xff").is_err());
        assert!(summarize(&[0x30; 64]).is_err());
        let mut x: u32 = 0x9e37_79b9;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in [1, 2, 17, 530, 4096] {
            assert!(summarize(&noise[..len]).is_err(), "{len} bytes of noise");
        }
    }

    #[test]
    fn every_single_byte_corruption_reads_or_is_refused_without_panicking() {
        let mut refused = 0;
        for at in 0..OPENSSL_LEAF.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bent = OPENSSL_LEAF.to_vec();
                bent[at] ^= flip;
                crate::fuzz::certificate(&bent);
                refused += usize::from(summarize(&bent).is_err());
            }
        }
        // Most corruptions hit a tag, a length or a string's rules; some only change a value
        // (a key or signature byte) and still read.
        assert!(refused > 0 && refused < OPENSSL_LEAF.len() * 3, "{refused}");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        let mut params = rcgen::CertificateParams::new(vec!["a\x1b[2Jb".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "evil\u{9b}31m");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = summarize(cert.der()).unwrap();
        assert!(!s.subject.chars().any(char::is_control), "{s:?}");
        assert!(s.subject.contains("O=evil?31m"), "{s:?}");
        assert_eq!(s.dns_names, ["a?[2Jb"]);
    }
}
