//! Random one-time keys that people can read back.
//!
//! Keys use Crockford's base32 alphabet (no I, L, O or U), 5 bits a character, drawn from the OS
//! CSPRNG one byte per character (the low 5 bits of a uniform byte are uniform). They are shown
//! in groups of four joined by dashes. [`normalise`] undoes what people do when they type a key
//! back: lower case, spaces, dashes, and the look-alikes O→0, I/L→1.

use crate::secret::{self, RandomError, Secret};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters per displayed group.
const GROUP: usize = 4;

/// A fresh key of `length` characters, in canonical (ungrouped, upper-case) form.
pub fn generate(length: usize) -> Result<Secret<String>, RandomError> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; length]);
    secret::fill_random(&mut bytes)?;
    let key: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 0x1f)] as char)
        .collect();
    Ok(Secret::new(key))
}

/// The canonical key grouped for display: `7KQ2-9XMD-4HTP`.
pub fn display(canonical: &str) -> Secret<String> {
    let grouped = canonical
        .as_bytes()
        .chunks(GROUP)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-");
    Secret::new(grouped)
}

/// Brings typed input to canonical form. Characters outside the alphabet are kept (upper-cased)
/// so that the comparison fails rather than silently matching a shorter key.
pub fn normalise(input: &str) -> Secret<String> {
    let canonical = input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '.'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    Secret::new(canonical)
}

/// Whether `s` consists only of key-alphabet characters (upper case).
pub fn is_canonical(s: &str) -> bool {
    s.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_the_alphabet_and_length() {
        let k = generate(12).unwrap();
        assert_eq!(k.expose().len(), 12);
        assert!(
            k.expose().bytes().all(|b| ALPHABET.contains(&b)),
            "{:?}",
            k.expose()
        );
        assert_ne!(generate(12).unwrap().expose(), k.expose());
    }

    #[test]
    fn display_groups_by_four() {
        assert_eq!(display("7KQ29XMD4HTP").expose(), "7KQ2-9XMD-4HTP");
        assert_eq!(display("7KQ29XMD4H").expose(), "7KQ2-9XMD-4H");
    }

    #[test]
    fn normalise_undoes_typing() {
        assert_eq!(normalise("7kq2 9xmd-4htp").expose(), "7KQ29XMD4HTP");
        assert_eq!(normalise("o1IL").expose(), "0111");
        assert_eq!(normalise("ab-u").expose(), "ABU");
    }

    #[test]
    fn all_characters_appear() {
        // 32 characters over 4096 draws: each must appear (the chance one is missing is ~1e-54).
        let k = generate(4096).unwrap();
        for &c in ALPHABET {
            assert!(k.expose().as_bytes().contains(&c), "{}", c as char);
        }
    }
}
