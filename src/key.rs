//! Random one-time keys that people can read back.
//!
//! Keys use Crockford's base32 alphabet (no I, L, O or U), 5 bits a character, drawn from the OS
//! CSPRNG one byte per character (the low 5 bits of a uniform byte are uniform). They are shown
//! in groups of four joined by dashes. [`normalise`] undoes what people do when they type a key
//! back: lower case, spaces, dashes, and the look-alikes O→0, I/L→1.
//!
//! Every key ends in Crockford's check symbol: the value of the random characters (read as one
//! base-32 number) modulo 37, written with the 32 digits plus `*~$=U`. 37 is prime and 32 is not
//! a multiple of it, so every single wrong symbol and every swap of two neighbours changes the
//! remainder: [`is_well_formed`] refuses a mistyped key, or one made up of ordinary words, before
//! any record is looked at, and such a key costs the recipient no attempt. `[key] length` counts
//! the random characters only; the check symbol is one more.

use crate::secret::{self, RandomError, Secret};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Check symbols: the 32 digits, then the values 32..=36.
const CHECK_SYMBOLS: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// Characters per displayed group.
const GROUP: usize = 4;

/// A fresh key of `length` random characters and its check symbol, in canonical (ungrouped,
/// upper-case) form.
pub fn generate(length: usize) -> Result<Secret<String>, RandomError> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; length]);
    secret::fill_random(&mut bytes)?;
    let mut key: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 0x1f)] as char)
        .collect();
    // Every character was drawn from the alphabet, so there is always a check symbol.
    key.push(check_symbol(&key).unwrap_or('0'));
    Ok(Secret::new(key))
}

/// Crockford's check symbol for canonical key characters; `None` when one is not in the alphabet.
pub fn check_symbol(canonical: &str) -> Option<char> {
    let mut rem = 0usize;
    for b in canonical.bytes() {
        let v = ALPHABET.iter().position(|&a| a == b)?;
        rem = (rem * 32 + v) % 37;
    }
    Some(CHECK_SYMBOLS[rem] as char)
}

/// Whether a canonical key (see [`normalise`]) has at least one random character, only alphabet
/// characters, and the right check symbol at the end.
pub fn is_well_formed(canonical: &str) -> bool {
    match canonical.char_indices().last() {
        Some((at, last)) if at > 0 => check_symbol(&canonical[..at]) == Some(last),
        _ => false,
    }
}

/// Whether `c` may end a canonical key (a check symbol).
pub fn is_check_symbol(c: char) -> bool {
    c.is_ascii() && CHECK_SYMBOLS.contains(&(c as u8))
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

/// [`is_canonical`] for a key with its check symbol: alphabet characters, then one check symbol.
pub fn is_canonical_with_check(s: &str) -> bool {
    match s.char_indices().last() {
        Some((at, last)) => is_canonical(&s[..at]) && is_check_symbol(last),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_the_alphabet_and_length() {
        let k = generate(12).unwrap();
        assert_eq!(
            k.expose().len(),
            13,
            "12 random characters and the check symbol"
        );
        assert!(
            k.expose()[..12].bytes().all(|b| ALPHABET.contains(&b)),
            "{:?}",
            k.expose()
        );
        assert!(is_well_formed(k.expose()));
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
        let k = Secret::new(k.expose()[..4096].to_string());
        for &c in ALPHABET {
            assert!(k.expose().as_bytes().contains(&c), "{}", c as char);
        }
    }

    #[test]
    fn check_symbol_values() {
        // Crockford: the value modulo 37. "0" is 0; "Z" is 31; "10" is 32 -> '*'; "11" is 33.
        assert_eq!(check_symbol("0"), Some('0'));
        assert_eq!(check_symbol("Z"), Some('Z'));
        assert_eq!(check_symbol("10"), Some('*'));
        assert_eq!(check_symbol("11"), Some('~'));
        assert_eq!(check_symbol("12"), Some('$'));
        assert_eq!(check_symbol("13"), Some('='));
        assert_eq!(check_symbol("14"), Some('U'));
        assert_eq!(check_symbol("15"), Some('0'), "37 = 1*32 + 5");
        assert_eq!(check_symbol("1U"), None);
        assert!(is_well_formed("14U"));
        assert!(!is_well_formed("U"));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn every_substitution_and_neighbour_swap_is_caught() {
        let symbols: Vec<char> = CHECK_SYMBOLS.iter().map(|&b| b as char).collect();
        for _ in 0..20 {
            let key: Vec<char> = generate(12).unwrap().expose().chars().collect();
            assert!(is_well_formed(&key.iter().collect::<String>()));
            for i in 0..key.len() {
                // Data positions take the 32 digits, the last one any of the 37 check symbols.
                let choices = if i + 1 == key.len() {
                    &symbols[..]
                } else {
                    &symbols[..32]
                };
                for &c in choices {
                    if c == key[i] {
                        continue;
                    }
                    let mut typo = key.clone();
                    typo[i] = c;
                    let typo: String = typo.into_iter().collect();
                    assert!(!is_well_formed(&typo), "{typo} passes");
                }
                if i + 1 < key.len() && key[i] != key[i + 1] {
                    let mut swapped = key.clone();
                    swapped.swap(i, i + 1);
                    let swapped: String = swapped.into_iter().collect();
                    assert!(!is_well_formed(&swapped), "{swapped} passes");
                }
            }
        }
    }

    #[test]
    fn words_do_not_make_keys() {
        // (A single word of the right length passes one time in 37 — "international" does for
        // 12-character keys — which is why replies take keys only as key-shaped tokens.)
        for phrase in ["Here is the key", "Dear Example Admin"] {
            let n = normalise(phrase);
            assert!(!is_well_formed(n.expose()), "{phrase}");
        }
    }
}
