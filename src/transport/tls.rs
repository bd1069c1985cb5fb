//! The one TLS client configuration securemail uses.
//!
//! rustls with the ring provider, TLS 1.2 and 1.3 only, full certificate-chain and host-name
//! verification against the operating system's trust store plus the optional `[smtp] ca_file`.
//! There is no switch to turn verification off, on purpose.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use super::TransportError;

/// Builds the client configuration: system roots plus the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots());

    if let Some(path) = ca_file {
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
    }
    if roots.is_empty() {
        return Err(TransportError::NoTrustAnchors);
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
    let host = host.to_string();
    Some(match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                TransportError::CertUntrusted { host }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TransportError::CertHostname { host }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TransportError::CertExpired { host }
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TransportError::CertNotYetValid { host }
            }
            other => TransportError::CertInvalid {
                host,
                reason: format!("{other:?}"),
            },
        },
        rustls::Error::PeerIncompatible(_)
        | rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            TransportError::TlsVersion { host }
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TransportError::NotTls { host, port }
        }
        other => TransportError::TlsHandshake {
            host,
            reason: other.to_string(),
        },
    })
}
