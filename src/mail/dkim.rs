//! DKIM signing (RFC 6376), with lettre's signer.
//!
//! The key file may hold an RSA key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, as
//! `openssl genrsa` writes) or an Ed25519 key (PKCS#8, as `openssl genpkey -algorithm ed25519`
//! writes, or the bare base64 seed lettre reads). [`Signer::dns_record`] gives the TXT record to
//! publish, so `securemail check` can show it.

use std::fmt;
use std::path::PathBuf;

use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;

use crate::config::DkimSettings;
use crate::exit;
use crate::secret::Secret;

/// The key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the DKIM key {}: {reason}", path.display())]
pub struct DkimError {
    pub path: PathBuf,
    pub reason: String,
}

impl DkimError {
    pub fn exit_code(&self) -> u8 {
        exit::CONFIG
    }

    pub fn hint(&self) -> Option<String> {
        Some(
            "give [dkim] private_key_file a PEM RSA key (openssl genrsa -out dkim.pem 2048) or \
             Ed25519 key (openssl genpkey -algorithm ed25519 -out dkim.pem)"
                .into(),
        )
    }
}

/// A loaded signing key with its selector and domain.
pub struct Signer {
    config: DkimConfig,
    record: String,
    settings: DkimSettings,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.settings.domain)
            .field("selector", &self.settings.selector)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads and checks the key file.
    pub fn load(settings: &DkimSettings, signed_headers: &[&str]) -> Result<Signer, DkimError> {
        let path = &settings.private_key_file;
        let err = |reason: String| DkimError {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map(Secret::new)
            .map_err(|e| err(crate::io_reason(&e)))?;
        let (key, record) = parse_key(text.expose().trim()).map_err(err)?;
        let headers = signed_headers
            .iter()
            .map(|h| HeaderName::new_from_ascii((*h).to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err("bad header name".into()))?;
        let config = DkimConfig::new(
            settings.selector.clone(),
            settings.domain.clone(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Signer {
            config,
            record,
            settings: settings.clone(),
        })
    }

    /// Adds a `DKIM-Signature` header.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }

    /// Where and what to publish: (`selector._domainkey.domain`, `v=DKIM1; k=…; p=…`).
    pub fn dns_record(&self) -> (String, String) {
        (
            format!(
                "{}._domainkey.{}",
                self.settings.selector, self.settings.domain
            ),
            self.record.clone(),
        )
    }
}

/// Builds lettre's key and the matching DNS record from PEM (or bare base64 Ed25519) text.
fn parse_key(text: &str) -> Result<(DkimSigningKey, String), String> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let rsa_key = if text.contains("BEGIN RSA PRIVATE KEY") {
        Some(
            rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .map_err(|e| format!("not an RSA key ({e})"))?,
        )
    } else if text.contains("BEGIN PRIVATE KEY") {
        match <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(
            text,
        ) {
            Ok(k) => return ed25519(&k),
            Err(_) => Some(
                rsa::RsaPrivateKey::from_pkcs8_pem(text)
                    .map_err(|e| format!("neither an RSA nor an Ed25519 key ({e})"))?,
            ),
        }
    } else {
        None
    };
    if let Some(k) = rsa_key {
        let bits = rsa::traits::PublicKeyParts::size(&k) * 8;
        if bits < 1024 {
            return Err(format!(
                "the RSA key has {bits} bits; DKIM verifiers want at least 1024 (use 2048)"
            ));
        }
        let pkcs1 = k
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let signing =
            DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string())?;
        let public = rsa::RsaPublicKey::from(&k)
            .to_public_key_der()
            .map_err(|e| e.to_string())?;
        return Ok((
            signing,
            format!("v=DKIM1; k=rsa; p={}", base64(public.as_bytes())),
        ));
    }
    // Bare base64 of the 32-byte Ed25519 seed.
    let seed = base64_decode(text).ok_or("not a PEM key or a base64 Ed25519 key")?;
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| "a bare base64 Ed25519 key must be 32 bytes".to_string())?;
    ed25519(&ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn ed25519(k: &ed25519_dalek::SigningKey) -> Result<(DkimSigningKey, String), String> {
    let seed = Secret::new(base64(&k.to_bytes()));
    let signing = DkimSigningKey::new(seed.expose(), DkimSigningAlgorithm::Ed25519)
        .map_err(|e| e.to_string())?;
    Ok((
        signing,
        format!(
            "v=DKIM1; k=ed25519; p={}",
            base64(k.verifying_key().as_bytes())
        ),
    ))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64 written by hand: whitespace and padding are optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(compact.trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_pkcs8_and_bare_seed_give_the_same_record() {
        let seed = [7u8; 32];
        let k = ed25519_dalek::SigningKey::from_bytes(&seed);
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let pem = k.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let (_, a) = parse_key(pem.as_str()).unwrap();
        let (_, b) = parse_key(&base64(&seed)).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse_key("hello").is_err());
        assert!(parse_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }

    #[test]
    fn base64_round_trip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0xff, 0, 7, 200]] {
            assert_eq!(base64_decode(&base64(s)).unwrap(), s);
        }
    }
}
