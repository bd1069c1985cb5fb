//! TOTP (RFC 6238) secrets, key URIs and code checks, on top of `totp-rs`.
//!
//! A secret is 160 bits from the OS CSPRNG (RFC 4226's recommendation). The key URI uses the
//! Google Authenticator format, `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer`, and
//! leaves `algorithm`, `digits` and `period` out when they are the defaults so that apps that
//! ignore them still compute the right codes.
//!
//! Checking returns the matched time step rather than a boolean: the caller must refuse a step
//! that was already accepted (RFC 6238 §5.2), which `totp-rs` leaves to us.

use totp_rs::{Algorithm, Builder, Totp};

use crate::secret::{self, RandomError, Secret};

/// Bytes in a freshly generated secret (160 bits).
pub const SECRET_LEN: usize = 20;

/// HMAC algorithm for TOTP. SHA1 is what Google Authenticator and most apps implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl OtpAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpAlgorithm::Sha1 => "SHA1",
            OtpAlgorithm::Sha256 => "SHA256",
            OtpAlgorithm::Sha512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<OtpAlgorithm> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(OtpAlgorithm::Sha1),
            "SHA256" => Some(OtpAlgorithm::Sha256),
            "SHA512" => Some(OtpAlgorithm::Sha512),
            _ => None,
        }
    }
}

/// What an authenticator app needs besides the secret. Stored with each enrolment, so that a
/// later change to `[otp]` does not break authenticators already set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpParams {
    pub algorithm: OtpAlgorithm,
    pub digits: u8,
    pub period: u64,
}

/// Why a TOTP could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    #[error(transparent)]
    Random(#[from] RandomError),
    /// totp-rs refused the parameters; the message never contains the secret.
    #[error("cannot build the TOTP key URI for {account:?}: {reason}")]
    Build { account: String, reason: String },
}

/// A TOTP secret bound to its parameters.
pub struct OtpKey {
    totp: Totp,
}

impl std::fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpKey")
            .field("digits", &self.totp.digits())
            .field("step", &self.totp.step())
            .finish_non_exhaustive()
    }
}

fn algorithm(a: OtpAlgorithm) -> Algorithm {
    match a {
        OtpAlgorithm::Sha1 => Algorithm::SHA1,
        OtpAlgorithm::Sha256 => Algorithm::SHA256,
        OtpAlgorithm::Sha512 => Algorithm::SHA512,
    }
}

impl OtpKey {
    /// A new random secret for `account` (the recipient's address).
    pub fn generate(params: OtpParams, issuer: &str, account: &str) -> Result<OtpKey, OtpError> {
        let secret = secret::random_bytes::<SECRET_LEN>()?;
        OtpKey::from_secret(params, issuer, account, secret.expose())
    }

    /// Rebuilds a key from stored secret bytes.
    pub fn from_secret(
        params: OtpParams,
        issuer: &str,
        account: &str,
        secret: &[u8],
    ) -> Result<OtpKey, OtpError> {
        let totp = Builder::new()
            .with_algorithm(algorithm(params.algorithm))
            .with_digits(params.digits)
            .with_skew(0)
            .with_step_duration(params.period)
            .with_secret(secret.to_vec())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(|e| OtpError::Build {
                account: account.to_string(),
                reason: e.to_string(),
            })?;
        Ok(OtpKey { totp })
    }

    /// The parameters an authenticator app needs.
    pub fn params(&self) -> OtpParams {
        let algorithm = match self.totp.algorithm() {
            Algorithm::SHA256 => OtpAlgorithm::Sha256,
            Algorithm::SHA512 => OtpAlgorithm::Sha512,
            _ => OtpAlgorithm::Sha1,
        };
        OtpParams {
            algorithm,
            digits: self.totp.digits(),
            period: self.totp.step(),
        }
    }

    /// The raw secret bytes, for encrypted storage.
    pub fn secret_bytes(&self) -> Secret<Vec<u8>> {
        Secret::new(self.totp.secret().as_bytes().to_vec())
    }

    /// The secret in base32 without padding, grouped by four for people typing it in.
    pub fn secret_base32_grouped(&self) -> Secret<String> {
        let plain = self.totp.secret().to_base32();
        let grouped = plain
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        Secret::new(grouped)
    }

    /// The `otpauth://` key URI that the QR code carries.
    pub fn uri(&self) -> Result<Secret<String>, OtpError> {
        self.totp
            .to_url()
            .map(Secret::new)
            .map_err(|e| OtpError::Build {
                account: self.totp.account_name().to_string(),
                reason: e.to_string(),
            })
    }

    /// The time step that `unix_time` falls in.
    pub fn step_of(&self, unix_time: u64) -> u64 {
        unix_time / self.totp.step()
    }

    /// The code for time step `step`.
    pub fn code_at_step(&self, step: u64) -> Secret<String> {
        Secret::new(
            self.totp
                .generate(step.saturating_mul(self.totp.step()))
                .to_string(),
        )
    }

    /// Finds the step within `skew` steps of `unix_time` whose code equals `code`, comparing in
    /// constant time and looking at every step in the window whatever matches.
    pub fn matching_step(&self, code: &str, unix_time: u64, skew: u8) -> Option<u64> {
        let now = self.step_of(unix_time);
        let mut found = None;
        for step in now.saturating_sub(u64::from(skew))..=now.saturating_add(u64::from(skew)) {
            let expected = self.code_at_step(step);
            if secret::constant_time_eq(expected.expose().as_bytes(), code.as_bytes())
                && found.is_none()
            {
                found = Some(step);
            }
        }
        found
    }
}

/// Strips what people type around a numeric code: spaces, dashes, dots.
pub fn normalise_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '_'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(digits: u8) -> OtpParams {
        OtpParams {
            algorithm: OtpAlgorithm::Sha1,
            digits,
            period: 30,
        }
    }

    /// RFC 6238 appendix B, SHA1 column.
    #[test]
    fn rfc6238_vectors() {
        let key = OtpKey::from_secret(
            policy(8),
            "Example",
            "a@example.org",
            b"12345678901234567890",
        )
        .unwrap();
        for (t, code) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(key.code_at_step(key.step_of(t)).expose(), code, "T={t}");
            assert_eq!(key.matching_step(code, t, 0), Some(t / 30));
        }
    }

    #[test]
    fn skew_window_and_step() {
        let key = OtpKey::from_secret(
            policy(6),
            "Example",
            "a@example.org",
            b"12345678901234567890",
        )
        .unwrap();
        let t = 1_700_000_000;
        let prev = key.code_at_step(key.step_of(t) - 1);
        assert_eq!(
            key.matching_step(prev.expose(), t, 1),
            Some(key.step_of(t) - 1)
        );
        assert_eq!(key.matching_step(prev.expose(), t, 0), None);
        let far = key.code_at_step(key.step_of(t) - 2);
        if far.expose() != prev.expose() {
            assert_eq!(key.matching_step(far.expose(), t, 1), None);
        }
    }

    #[test]
    fn uri_has_google_authenticator_shape() {
        let key = OtpKey::generate(policy(6), "Example", "alice@example.org").unwrap();
        let uri = key.uri().unwrap();
        let uri = uri.expose();
        assert!(
            uri.starts_with("otpauth://totp/Example:alice%40example.org?secret="),
            "{uri}"
        );
        assert!(uri.ends_with("&issuer=Example"), "{uri}");
        assert!(
            !uri.contains("digits=") && !uri.contains("period=") && !uri.contains("algorithm=")
        );
        // 160-bit secret: 32 base32 characters.
        let secret = uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert_eq!(secret.len(), 32);
    }

    #[test]
    fn fresh_secrets_differ() {
        let a = OtpKey::generate(policy(6), "Example", "a@example.org").unwrap();
        let b = OtpKey::generate(policy(6), "Example", "a@example.org").unwrap();
        assert_ne!(a.secret_bytes().expose(), b.secret_bytes().expose());
        assert_eq!(a.secret_bytes().expose().len(), SECRET_LEN);
    }

    #[test]
    fn normalise_strips_separators() {
        assert_eq!(normalise_code(" 123 456\n"), "123456");
        assert_eq!(normalise_code("123-456"), "123456");
    }
}
