//! The store's secrets: one 32-byte key file beside the database, from which two keys derive —
//! an HMAC key for one-time keys (only their MAC is stored) and an XChaCha20-Poly1305 key that
//! seals TOTP secrets, bound to their row's recipient and creation time. A copy of the database
//! alone reveals no secret.
//!
//! The database records the key's id ([`Vault::id`]); [`super::db`] refuses a key file whose id
//! differs and a store whose key file is missing, and only a new, empty store gets a new key.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::StoreError;
use super::record::Record;
use crate::CodeKind;
use crate::files;
use crate::secret::{self, Secret};

const NONCE_LEN: usize = 24;

/// The key file that belongs to a database: `securemail.db` → `securemail.key`.
pub fn key_file_path(db: &Path) -> PathBuf {
    db.with_extension("key")
}

/// The keys derived from the key file. `path` (the database's) names the store in errors.
#[derive(Clone)]
pub struct Vault {
    path: PathBuf,
    id: String,
    seal: Secret<[u8; 32]>,
    mac: Secret<[u8; 32]>,
}

/// HMAC-SHA256 keyed with a 32-byte key. HMAC pads short keys with zeros to the 64-byte block
/// (RFC 2104), so padding here gives the same MAC without a fallible constructor.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = zeroize::Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let mut m = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn derive(master: &[u8; 32], label: &str) -> Secret<[u8; 32]> {
    Secret::new(hmac(master, &[label.as_bytes()]))
}

fn cipher(key: &Secret<[u8; 32]>) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*key.expose()).into())
}

impl Vault {
    /// Reads the key file beside `db`; `None` if there is none. Only [`Vault::create`] makes one.
    pub fn load(db: &Path) -> Result<Option<Vault>, StoreError> {
        Vault::load_from(&key_file_path(db), db)
    }

    /// Reads the key file `key` of the store named `db` in errors; `None` if there is none.
    pub fn load_from(key: &Path, db: &Path) -> Result<Option<Vault>, StoreError> {
        Ok(read_key(key)?.map(|master| Vault::from_master(db, &master)))
    }

    /// Creates the key file beside `db` (0600, atomically), or reads the one another process
    /// created a moment before. Only for a store with nothing sealed yet.
    pub fn create(db: &Path) -> Result<Vault, StoreError> {
        Vault::create_at(key_file_path(db), db)
    }

    /// [`Vault::create`] with the key file at `path`.
    pub fn create_at(path: PathBuf, db: &Path) -> Result<Vault, StoreError> {
        create_key(&path)?;
        match read_key(&path)? {
            Some(master) => Ok(Vault::from_master(db, &master)),
            None => Err(StoreError::KeyFile {
                path,
                reason: "it vanished as it was created".into(),
            }),
        }
    }

    fn from_master(db: &Path, master: &[u8; 32]) -> Vault {
        let id = hmac(master, &[b"securemail/key-id/v1"]);
        Vault {
            path: db.to_path_buf(),
            id: id[..8].iter().map(|b| format!("{b:02x}")).collect(),
            seal: derive(master, "securemail/seal/v1"),
            mac: derive(master, "securemail/mac/v1"),
        }
    }

    /// The key's id: 16 hex digits of an HMAC under the key, recorded in the database so that a
    /// missing or different key file is noticed. It reveals nothing about the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(recipient: &str, created: i64) -> Vec<u8> {
        format!("securemail/otp/v1\0{recipient}\0{created}").into_bytes()
    }

    /// The MAC stored for a key.
    pub fn key_mac(&self, recipient: &str, canonical: &str) -> [u8; 32] {
        hmac(
            self.mac.expose(),
            &[
                b"securemail/key/v1\0",
                recipient.as_bytes(),
                b"\0",
                canonical.as_bytes(),
            ],
        )
    }

    /// Seals a TOTP secret for the row of `recipient` created at `created`.
    pub fn seal(
        &self,
        recipient: &str,
        created: i64,
        secret: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let nonce = secret::random_bytes::<NONCE_LEN>()?;
        let ct = cipher(&self.seal)
            .encrypt(
                &XNonce::from(*nonce.expose()),
                Payload {
                    msg: secret,
                    aad: &Vault::aad(recipient, created),
                },
            )
            .map_err(|_| StoreError::Unseal {
                path: self.path.clone(),
            })?;
        let mut out = nonce.expose().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The TOTP secret of `record`.
    pub fn unseal_otp(&self, record: &Record) -> Result<Secret<Vec<u8>>, StoreError> {
        let bad = || StoreError::Unseal {
            path: self.path.clone(),
        };
        if record.kind != CodeKind::Otp || record.sealed.len() <= NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ct) = record.sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| bad())?;
        cipher(&self.seal)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &Vault::aad(&record.recipient, record.created),
                },
            )
            .map(Secret::new)
            .map_err(|_| bad())
    }

    /// Whether `canonical` is the key of `record`, compared in constant time.
    pub fn key_matches(&self, record: &Record, canonical: &str) -> bool {
        record.kind == CodeKind::Key
            && secret::constant_time_eq(&self.key_mac(&record.recipient, canonical), &record.sealed)
    }
}

/// Creates the key file with a fresh key unless it exists: written under a temporary name and
/// hard-linked into place, so that it is never seen half-written and two processes creating it
/// at once end up with the same key.
fn create_key(path: &Path) -> Result<(), StoreError> {
    let err = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    files::refuse_link(path).map_err(|e| err(crate::io_reason(&e)))?;
    if path.exists() {
        return Ok(());
    }
    let fresh = secret::random_bytes::<32>()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A 0600 temporary file (O_EXCL, deleted again if anything below fails).
    let mut f = tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| err(crate::io_reason(&e)))?;
    f.write_all(fresh.expose())
        .and_then(|()| f.as_file().sync_all())
        .map_err(|e| err(crate::io_reason(&e)))?;
    // Linked into place without following a link at `path`, and never over an existing file:
    // if another process created the key first, we use theirs.
    match f.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(crate::io_reason(&e.error))),
    }
}

/// Reads the key file; `None` if it does not exist.
fn read_key(path: &Path) -> Result<Option<zeroize::Zeroizing<[u8; 32]>>, StoreError> {
    let err = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    // Not a key file securemail wrote: a configuration matter (restore it), not an I/O error.
    let damaged = |reason: String| StoreError::KeyFileDamaged {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err(damaged(
                "it is a symbolic link; securemail does not follow links for its own files (put \
                 the key file itself there)"
                    .into(),
            ));
        }
        if !m.is_file() {
            return Err(damaged("it is not a regular file".into()));
        }
    }
    let mut f = match files::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(crate::io_reason(&e))),
    };
    let meta = f.metadata().map_err(|e| err(crate::io_reason(&e)))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::KeyFileOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() != 32 {
        return Err(damaged(format!("it is {} bytes, not 32", meta.len())));
    }
    let mut master = zeroize::Zeroizing::new([0u8; 32]);
    f.read_exact(master.as_mut())
        .map_err(|e| err(crate::io_reason(&e)))?;
    Ok(Some(master))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn racing_first_opens_share_one_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("securemail.key");
        let start = std::sync::Barrier::new(8);
        let macs: Vec<[u8; 32]> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        create_key(&path)
                            .and_then(|()| read_key(&path))
                            .map(|k| *k.unwrap())
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().unwrap().unwrap())
                .collect()
        });
        // Everyone has the key in the file: none was replaced after another had read it.
        let key: [u8; 32] = fs::read(&path).unwrap().try_into().unwrap();
        assert!(macs.iter().all(|m| *m == key));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // The losers' temporary files are gone.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
