//! securemail's own files — store, key, lock and log — opened so that nobody else can choose
//! what they are: never through a symbolic link (`O_NOFOLLOW`), never a file with other hard
//! links, directories 0700 and files 0600 whatever the umask.
//!
//! Without this, a link planted at the lock file's path makes a send truncate the link's target,
//! and `umask 000` leaves the store's directory world-writable.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why a path is refused when it is a symbolic link.
pub const LINK_REFUSED: &str =
    "it is a symbolic link; securemail does not follow links for its own files";

/// Creates `dir` and its missing parents, each 0700. The mode given to `mkdir` is subject to
/// the umask, so each directory created here is set to 0700 afterwards; existing ones are left
/// as they are.
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dirs(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(0o700)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the parent directory of `path` (see [`create_private_dirs`]).
pub fn create_parent_dirs(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => create_private_dirs(dir),
        None => Ok(()),
    }
}

/// Refuses `path` if it is a symbolic link. A missing path is fine.
pub fn refuse_link(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::other(LINK_REFUSED)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` as `options` say, never following a symbolic link at `path`. When `create`,
/// a missing file is created 0600 (set explicitly: the mode given to `open` is subject to the
/// umask). The result must be a regular file with no other hard link.
pub fn open(path: &Path, options: &OpenOptions, create: bool) -> io::Result<File> {
    let mut options = options.clone();
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .create(false)
        .create_new(false);
    let file = if create {
        match options.clone().create_new(true).open(path) {
            Ok(f) => {
                f.set_permissions(Permissions::from_mode(0o600))
                    .map_err(|e| refusal(path, e))?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(path),
            Err(e) => Err(e),
        }
    } else {
        options.open(path)
    }
    .map_err(|e| refusal(path, e))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(io::Error::other(
            "it has other hard links; securemail writes only to files of its own",
        ));
    }
    Ok(file)
}

/// Opens `path` for reading, never following a symbolic link at `path`; it must be a regular
/// file. (Other hard links are harmless to a reader.) Opened non-blocking, so that a FIFO put
/// in its place is refused instead of hanging the open; for a regular file that changes nothing.
pub fn open_read(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| refusal(path, e))?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// Creates `path` (which must not exist) 0600 without following a link, see [`open`].
pub fn create_new(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let mut options = options.clone();
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .create_new(true);
    let file = options.open(path).map_err(|e| refusal(path, e))?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// `ELOOP` from `O_NOFOLLOW`, or `EEXIST` for a link at a path opened with `O_EXCL`, as the
/// refusal people can act on.
fn refusal(path: &Path, e: io::Error) -> io::Error {
    let is_link = || fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP)
        || (e.kind() == io::ErrorKind::AlreadyExists && is_link())
    {
        io::Error::other(LINK_REFUSED)
    } else {
        e
    }
}

/// Writes `path` whole or not at all: a temporary file beside it, given `mode` explicitly (the
/// umask does not decide), synced, renamed into place; over an existing file only if `replace`
/// (a rename replaces a link itself, never writes through it).
pub fn write_whole(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    let placed = if replace {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    placed.map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_refused_and_their_targets_untouched() {
        let dir = tempfile_dir("links");
        let target = dir.join("target");
        fs::write(&target, "precious").unwrap();
        let link = dir.join("link");
        symlink(&target, &link).unwrap();
        let mut rw = OpenOptions::new();
        rw.read(true).write(true);
        for create in [true, false] {
            let e = open(&link, &rw, create).unwrap_err();
            assert_eq!(e.to_string(), LINK_REFUSED);
        }
        assert_eq!(
            create_new(&link, &rw).unwrap_err().to_string(),
            LINK_REFUSED
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let hard = dir.join("hard");
        fs::hard_link(&target, &hard).unwrap();
        assert!(open(&hard, &rw, true).is_err());
    }

    #[test]
    fn created_files_and_dirs_are_private() {
        let dir = tempfile_dir("private");
        let deep = dir.join("a/b");
        create_private_dirs(&deep).unwrap();
        for d in [dir.join("a"), deep.clone()] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let mut w = OpenOptions::new();
        w.append(true);
        let f = deep.join("f");
        open(&f, &w, true).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // An existing file opens as it is.
        open(&f, &w, true).unwrap();
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("securemail-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}
