//! The one TLS client configuration securemail uses.
//!
//! rustls with the ring provider, TLS 1.2 and 1.3 only, full certificate-chain and host-name
//! verification against the operating system's trust store plus the optional `[smtp] ca_file`.
//! There is no switch to turn verification off, on purpose.
//!
//! Every certificate decision is rustls's own `WebPkiServerVerifier`'s. [`Naming`] wraps it only
//! to say, when it refuses, what the server presented (subject, issuer, names): without that, a
//! refusal reads `UnknownIssuer` or `Other(OtherError(CaUsedAsEndEntity))` and the operator
//! cannot tell a private CA from a self-signed certificate. [`classify`] turns every rustls
//! error into a sentence and, for certificates, into a [`TransportError`] with its own hint.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName,
    OtherError, PeerIncompatible, RootCertStore, SignatureScheme,
};

use super::{Presented, TransportError};
use crate::transport::cert;

/// Builds the client configuration: system roots plus the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots());

    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    if roots.is_empty() {
        return Err(TransportError::NoTrustAnchors);
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?
        // Not a custom policy: every decision is `webpki`'s (see `Naming`).
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Naming(webpki)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Adds the certificates of the PEM file `path` to `roots`; [`TransportError::CaFile`] says
/// why it cannot (also for `init`, which checks a CA file before writing it into a config).
pub fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TransportError> {
    let bad = |reason: String| TransportError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(crate::io_reason(&e)))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("a certificate in it is not usable ({e})")))?;
    }
    Ok(())
}

/// rustls's WebPkiServerVerifier, unchanged in every decision; a certificate it refuses comes
/// back as [`Refused`], carrying rustls's error and what the server presented.
#[derive(Debug)]
struct Naming(Arc<WebPkiServerVerifier>);

/// A certificate refusal with the certificate it concerns (read with [`cert::summarize`]).
#[derive(Debug)]
struct Refused {
    cause: CertificateError,
    presented: Option<Presented>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&certificate_reason(&self.cause))
    }
}

impl std::error::Error for Refused {}

impl ServerCertVerifier for Naming {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        verdict.map_err(|e| match e {
            rustls::Error::InvalidCertificate(cause) => {
                let presented = cert::summarize(end_entity).ok().map(|c| Presented {
                    subject: bounded(&c.subject),
                    issuer: bounded(&c.issuer),
                    names: (c.dns_names.iter().cloned())
                        .chain(c.ip_addresses.iter().map(ToString::to_string))
                        .map(|n| bounded(&n))
                        .take(8)
                        .collect(),
                });
                let refused = Refused { cause, presented };
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    refused,
                ))))
            }
            other => other,
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// A name from a certificate the server chose, cut to a length that fits an error line.
fn bounded(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The operating system's trust anchors. `rustls-native-certs` reads both the distribution's
/// bundle file and every file in `/etc/ssl/certs` (the same certificates again, ~300 files);
/// when the bundle exists and `SSL_CERT_FILE`/`SSL_CERT_DIR` are not set, reading just the
/// bundle gives the same set and saves a few milliseconds on every run.
fn system_roots() -> Vec<CertificateDer<'static>> {
    const BUNDLES: &[&str] = &[
        "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
        "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL, CentOS
        "/etc/ssl/ca-bundle.pem",             // openSUSE
        "/etc/ssl/cert.pem",                  // Alpine, BSDs
    ];
    let overridden =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    if !overridden && let Some(bundle) = BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
        let loaded = rustls_native_certs::load_certs_from_paths(Some(bundle), None);
        if !loaded.certs.is_empty() {
            return loaded.certs;
        }
    }
    rustls_native_certs::load_native_certs().certs
}

/// Classifies a failed handshake (or a TLS-level read/write error) for the user.
pub fn classify(host: &str, port: u16, err: &io::Error) -> Option<TransportError> {
    let tls = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(from_rustls(host, port, tls))
}

fn from_rustls(host: &str, port: u16, tls: &rustls::Error) -> TransportError {
    let host = host.to_string();
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            let (cause, presented) = match c {
                CertificateError::Other(OtherError(o)) => match o.downcast_ref::<Refused>() {
                    Some(r) => (&r.cause, r.presented.clone()),
                    None => (c, None),
                },
                _ => (c, None),
            };
            certificate(host, cause, presented)
        }
        rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        )
        | rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            TransportError::TlsVersion { host }
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TransportError::NotTls { host, port }
        }
        other => TransportError::TlsHandshake {
            host,
            reason: handshake_reason(other),
        },
    }
}

/// A refused certificate: what was wrong, and with it what the server presented.
#[allow(deprecated)] // rustls still returns the context-free variants from some paths
fn certificate(host: String, cause: &CertificateError, p: Option<Presented>) -> TransportError {
    let ca_as_leaf = matches!(cause, CertificateError::Other(OtherError(o))
        if matches!(o.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)));
    match (cause, p) {
        (_, Some(presented)) if ca_as_leaf => TransportError::CertIsCa { host, presented },
        // Self-signed. When its subject is also the name of a CA the machine trusts, the
        // verifier checks it against that CA's key and says "bad signature" (or, with another
        // key type, "unsupported algorithm"): it is still a self-signed certificate.
        (
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
            Some(p),
        ) if p.subject == p.issuer => TransportError::CertSelfSigned {
            host,
            subject: p.subject,
        },
        (CertificateError::UnknownIssuer, presented) => {
            TransportError::CertUntrusted { host, presented }
        }
        (
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            p,
        ) => TransportError::CertHostname {
            host,
            names: p.map(|p| p.names).unwrap_or_default(),
        },
        (CertificateError::Expired, _) => TransportError::CertExpired {
            host,
            not_after: None,
        },
        (CertificateError::ExpiredContext { not_after, .. }, _) => TransportError::CertExpired {
            host,
            not_after: Some(utc(*not_after)),
        },
        (CertificateError::NotValidYet, _) => TransportError::CertNotYetValid {
            host,
            not_before: None,
        },
        (CertificateError::NotValidYetContext { not_before, .. }, _) => {
            TransportError::CertNotYetValid {
                host,
                not_before: Some(utc(*not_before)),
            }
        }
        (other, presented) => TransportError::CertInvalid {
            host,
            reason: certificate_reason(other),
            presented,
        },
    }
}

/// `2021-01-01 00:00:00 UTC`.
fn utc(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{secs} seconds after 1970"),
    }
}

/// What is wrong with a certificate, as a sentence fragment ("it ...").
fn certificate_reason(e: &CertificateError) -> String {
    use CertificateError as C;
    #[allow(deprecated)]
    let text = match e {
        C::BadEncoding => "it is not a well-formed X.509 certificate",
        C::Expired | C::ExpiredContext { .. } => "it has expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet",
        C::Revoked => "it has been revoked by its CA",
        C::UnhandledCriticalExtension => {
            "it has a critical extension that certificate validation does not know"
        }
        C::UnknownIssuer => "it is not signed by a trusted CA",
        C::UnknownRevocationStatus => "its revocation status is unknown",
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            "the revocation list for it has expired"
        }
        C::BadSignature => "its signature does not verify with its issuer's key",
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm securemail does not accept (e.g. SHA-1 or MD5)"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for the server's name"
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "it is not meant for TLS servers (its extended key usage excludes serverAuth)"
        }
        C::InvalidOcspResponse => "the OCSP response stapled to it is invalid",
        C::ApplicationVerificationFailure => "it was refused by the verifier",
        C::Other(OtherError(o)) => {
            return match o.downcast_ref::<webpki::Error>() {
                Some(w) => webpki_reason(w),
                None => format!("it was refused: {o}"),
            };
        }
        other => return format!("it was refused ({other:?})"),
    };
    text.to_string()
}

/// webpki's refusals that rustls passes on as `CertificateError::Other`.
fn webpki_reason(e: &webpki::Error) -> String {
    use webpki::Error as W;
    let text = match e {
        W::CaUsedAsEndEntity => "it is a CA certificate, which no server may present as its own",
        W::EndEntityUsedAsCa => "a server certificate in its chain is used as a CA",
        W::CertDistrusted => "its CA is distrusted",
        W::EmptyEkuExtension => "its extended key usage extension is empty",
        W::ExtensionValueInvalid | W::MalformedExtensions => "it has a malformed extension",
        W::InvalidSerialNumber => "its serial number is invalid",
        W::MalformedDnsIdentifier => "it holds a malformed DNS name",
        W::MalformedNameConstraint => "a CA in its chain has a malformed name constraint",
        W::NameConstraintViolation => "it breaks a name constraint of a CA in its chain",
        W::PathLenConstraintViolated => "its chain is longer than a CA in it allows",
        W::MaximumNameConstraintComparisonsExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumPathDepthExceeded
        | W::MaximumSignatureChecksExceeded => "its chain is too long or too complex to verify",
        W::SignatureAlgorithmMismatch => "its two signature algorithm fields disagree",
        W::UnsupportedCertVersion => "it is not an X.509 version 3 certificate",
        W::UnsupportedCriticalExtension => {
            "it has a critical extension that certificate validation does not know"
        }
        W::UnsupportedNameType => "it names its subject in a form that cannot be checked",
        other => return format!("it breaks a rule of certificate validation ({other:?})"),
    };
    text.to_string()
}

/// Any other TLS failure, as a sentence.
fn handshake_reason(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::AlertReceived(a) => format!("the server ended it with the alert {}", alert_reason(*a)),
        E::PeerIncompatible(p) => format!(
            "the server and securemail share no acceptable TLS parameters \
             (cipher suite, key exchange group or signature scheme; rustls: {p:?})"
        ),
        E::PeerMisbehaved(p) => format!("the server broke the TLS protocol (rustls: {p:?})"),
        E::InappropriateHandshakeMessage { .. } => {
            "the server sent a handshake message out of order".into()
        }
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::UnsupportedNameType => "the host name cannot be used to verify a certificate".into(),
        E::DecryptError => "a record from the server could not be decrypted".into(),
        E::EncryptError => "a record could not be encrypted".into(),
        E::InvalidCertRevocationList(_) => "a certificate revocation list is invalid".into(),
        E::FailedToGetCurrentTime => "this machine's clock could not be read".into(),
        E::FailedToGetRandomBytes => "the operating system gave no random bytes".into(),
        E::HandshakeNotComplete => "the handshake did not complete".into(),
        E::PeerSentOversizedRecord => "the server sent a record larger than TLS allows".into(),
        E::NoApplicationProtocol => "the server shares no application protocol (ALPN)".into(),
        E::InvalidEncryptedClientHello(_) => "encrypted client hello failed".into(),
        E::General(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An alert the server sent, named as in RFC 8446 §6, with what it means here.
fn alert_reason(a: AlertDescription) -> String {
    use AlertDescription as A;
    let (name, meaning) = match a {
        A::CloseNotify => ("close_notify", "it closed the connection"),
        A::UnexpectedMessage => (
            "unexpected_message",
            "it did not expect what securemail sent",
        ),
        A::BadRecordMac | A::DecryptionFailed => {
            ("bad_record_mac", "a record was corrupted on the way")
        }
        A::RecordOverflow => ("record_overflow", "a record was too large"),
        A::HandshakeFailure => (
            "handshake_failure",
            "it found no cipher suite, key exchange or signature scheme it shares with securemail",
        ),
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
            ("bad_certificate", "it refused a certificate")
        }
        A::CertificateRequired | A::NoCertificate => (
            "certificate_required",
            "it wants a client certificate, which securemail does not send",
        ),
        A::IllegalParameter => ("illegal_parameter", "it refused a handshake parameter"),
        A::UnknownCA => ("unknown_ca", "it does not trust a CA"),
        A::AccessDenied => ("access_denied", "it does not let this client in"),
        A::DecodeError => ("decode_error", "it could not decode a message"),
        A::DecryptError => ("decrypt_error", "a handshake signature or check failed"),
        A::ProtocolVersion => ("protocol_version", "it does not speak TLS 1.2 or 1.3"),
        A::InsufficientSecurity => (
            "insufficient_security",
            "it wants stronger cipher suites than securemail offered",
        ),
        A::InternalError => ("internal_error", "it failed on its side"),
        A::InappropriateFallback => ("inappropriate_fallback", "it refused a version fallback"),
        A::UserCanceled => ("user_canceled", "it cancelled the handshake"),
        A::MissingExtension | A::UnsupportedExtension => (
            "missing_extension",
            "it needs a TLS extension that was not sent",
        ),
        A::UnrecognisedName => (
            "unrecognized_name",
            "it has no certificate for that host name; check [smtp] host",
        ),
        A::NoApplicationProtocol => ("no_application_protocol", "no ALPN protocol in common"),
        other => return format!("{other:?}"),
    };
    format!("{name} ({meaning})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::AlgorithmIdentifier;

    fn message(e: CertificateError, presented: Option<Presented>) -> String {
        let refused = Refused {
            cause: e,
            presented,
        };
        let wrapped = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
            Arc::new(refused),
        )));
        let io = io::Error::other(wrapped);
        classify("mx.example.org", 465, &io).unwrap().to_string()
    }

    fn presented(subject: &str, issuer: &str) -> Option<Presented> {
        Some(Presented {
            subject: subject.into(),
            issuer: issuer.into(),
            names: vec!["mail.example.net".into(), "192.0.2.1".into()],
        })
    }

    /// Every CertificateError variant this rustls has, each with its sentence.
    #[test]
    #[allow(deprecated)]
    fn every_certificate_error_is_a_sentence() {
        use CertificateError as C;
        let t = |s: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        let p = || presented("CN=mx.example.org", "CN=Private CA");
        let other = |w: webpki::Error| C::Other(OtherError(Arc::new(w)));
        let host = "the certificate of mx.example.org";
        let cases: Vec<(CertificateError, String)> = vec![
            (C::UnknownIssuer, format!("{host} (CN=mx.example.org, issued by CN=Private CA) is not signed by a trusted CA")),
            (C::BadEncoding, format!("{host} was rejected: it is not a well-formed X.509 certificate (CN=mx.example.org, issued by CN=Private CA)")),
            (C::Expired, format!("{host} has expired")),
            (C::ExpiredContext { time: t(1_700_000_000), not_after: t(1_609_459_200) }, format!("{host} has expired (on 2021-01-01 00:00:00 UTC)")),
            (C::NotValidYet, format!("{host} is not valid yet")),
            (C::NotValidYetContext { time: t(0), not_before: t(1_609_459_200) }, format!("{host} is not valid yet (from 2021-01-01 00:00:00 UTC)")),
            (C::Revoked, format!("{host} was rejected: it has been revoked by its CA (CN=mx.example.org, issued by CN=Private CA)")),
            (C::UnhandledCriticalExtension, format!("{host} was rejected: it has a critical extension that certificate validation does not know (CN=mx.example.org, issued by CN=Private CA)")),
            (C::UnknownRevocationStatus, format!("{host} was rejected: its revocation status is unknown (CN=mx.example.org, issued by CN=Private CA)")),
            (C::ExpiredRevocationList, format!("{host} was rejected: the revocation list for it has expired (CN=mx.example.org, issued by CN=Private CA)")),
            (C::ExpiredRevocationListContext { time: t(1), next_update: t(0) }, format!("{host} was rejected: the revocation list for it has expired (CN=mx.example.org, issued by CN=Private CA)")),
            (C::BadSignature, format!("{host} was rejected: its signature does not verify with its issuer's key (CN=mx.example.org, issued by CN=Private CA)")),
            (C::UnsupportedSignatureAlgorithm, format!("{host} was rejected: it is signed with an algorithm securemail does not accept (e.g. SHA-1 or MD5) (CN=mx.example.org, issued by CN=Private CA)")),
            (C::UnsupportedSignatureAlgorithmContext { signature_algorithm_id: vec![1], supported_algorithms: vec![AlgorithmIdentifier::from_slice(&[2])] }, format!("{host} was rejected: it is signed with an algorithm securemail does not accept (e.g. SHA-1 or MD5) (CN=mx.example.org, issued by CN=Private CA)")),
            (C::UnsupportedSignatureAlgorithmForPublicKeyContext { signature_algorithm_id: vec![1], public_key_algorithm_id: vec![2] }, format!("{host} was rejected: it is signed with an algorithm securemail does not accept (e.g. SHA-1 or MD5) (CN=mx.example.org, issued by CN=Private CA)")),
            (C::NotValidForName, "the certificate presented by mx.example.org is not valid for that name (it is for mail.example.net, 192.0.2.1)".into()),
            (C::NotValidForNameContext { expected: ServerName::try_from("mx.example.org").unwrap().to_owned(), presented: vec![] }, "the certificate presented by mx.example.org is not valid for that name (it is for mail.example.net, 192.0.2.1)".into()),
            (C::InvalidPurpose, format!("{host} was rejected: it is not meant for TLS servers (its extended key usage excludes serverAuth) (CN=mx.example.org, issued by CN=Private CA)")),
            (C::InvalidPurposeContext { required: rustls::ExtendedKeyPurpose::ServerAuth, presented: vec![rustls::ExtendedKeyPurpose::ClientAuth] }, format!("{host} was rejected: it is not meant for TLS servers (its extended key usage excludes serverAuth) (CN=mx.example.org, issued by CN=Private CA)")),
            (C::InvalidOcspResponse, format!("{host} was rejected: the OCSP response stapled to it is invalid (CN=mx.example.org, issued by CN=Private CA)")),
            (C::ApplicationVerificationFailure, format!("{host} was rejected: it was refused by the verifier (CN=mx.example.org, issued by CN=Private CA)")),
            (other(webpki::Error::CaUsedAsEndEntity), format!("{host} (CN=mx.example.org, issued by CN=Private CA) is a CA certificate, which no server may present as its own")),
            (other(webpki::Error::PathLenConstraintViolated), format!("{host} was rejected: its chain is longer than a CA in it allows (CN=mx.example.org, issued by CN=Private CA)")),
            (other(webpki::Error::NameConstraintViolation), format!("{host} was rejected: it breaks a name constraint of a CA in its chain (CN=mx.example.org, issued by CN=Private CA)")),
        ];
        for (e, want) in cases {
            let got = message(e.clone(), p());
            assert_eq!(got, want, "{e:?}");
            assert!(
                !got.contains("Context") && !got.contains("OtherError"),
                "{got}"
            );
        }
        // Self-signed: subject and issuer are one, also when the subject copies a trusted CA's
        // name (the verifier then tries that CA's key).
        for e in [
            C::UnknownIssuer,
            C::BadSignature,
            C::UnsupportedSignatureAlgorithm,
        ] {
            assert_eq!(
                message(e, presented("CN=mx", "CN=mx")),
                "the certificate of mx.example.org (CN=mx) is self-signed and not trusted"
            );
        }
        // Nothing read from the certificate: the sentence stands alone.
        assert_eq!(
            message(C::UnknownIssuer, None),
            "the certificate of mx.example.org is not signed by a trusted CA"
        );
    }

    #[test]
    fn alerts_and_other_tls_errors_are_sentences() {
        let msg = |e: rustls::Error| {
            classify("mx", 465, &io::Error::other(e))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            msg(rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
            )),
            "the TLS handshake with mx failed: the server ended it with the alert handshake_failure \
             (it found no cipher suite, key exchange or signature scheme it shares with securemail)"
        );
        assert_eq!(
            msg(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            )),
            "mx offers only TLS versions older than 1.2"
        );
        assert_eq!(
            msg(rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerDoesNotSupportTls12Or13
            )),
            "mx offers only TLS versions older than 1.2"
        );
        assert_eq!(
            msg(rustls::Error::NoCertificatesPresented),
            "the TLS handshake with mx failed: the server presented no certificate"
        );
        let alerts = [
            AlertDescription::CloseNotify,
            AlertDescription::UnexpectedMessage,
            AlertDescription::BadRecordMac,
            AlertDescription::BadCertificate,
            AlertDescription::CertificateRequired,
            AlertDescription::UnknownCA,
            AlertDescription::DecodeError,
            AlertDescription::InternalError,
            AlertDescription::UnrecognisedName,
            AlertDescription::InsufficientSecurity,
        ];
        for a in alerts {
            let m = msg(rustls::Error::AlertReceived(a));
            assert!(m.contains(" (it ") || m.contains(" (a "), "{a:?}: {m}");
        }
    }
}
