//! Secrets and where their randomness comes from.
//!
//! Every one-time code, TOTP secret, store key and password passes through [`Secret`]: its `Debug`
//! prints `Secret(<redacted>)`, it has no `Display`, and its memory is wiped on drop. Reading the
//! value takes an explicit [`Secret::expose`], which is easy to grep for in review.
//!
//! All randomness comes from the operating system's CSPRNG ([`rand::rngs::SysRng`], i.e.
//! `getrandom(2)`), never from a seeded or thread-local generator.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::{Zeroize, Zeroizing};

/// A value that must never reach a log, an error message or a terminal by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value. Every call site is a place where the secret leaves this type.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

/// The operating system refused to hand out random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    SysRng
        .try_fill_bytes(buf)
        .map_err(|e| RandomError(e.to_string()))
}

/// `N` random bytes from the OS CSPRNG, wiped when dropped.
pub fn random_bytes<const N: usize>() -> Result<Secret<[u8; N]>, RandomError> {
    let mut buf = Zeroizing::new([0u8; N]);
    fill_random(buf.as_mut())?;
    Ok(Secret::new(*buf))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::new(String::from("hunter2"));
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<20>().unwrap();
        let b = random_bytes::<20>().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), &[0u8; 20]);
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
