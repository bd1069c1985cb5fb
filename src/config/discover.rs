//! Where the configuration file is when the command line does not say, and where its data goes.
//!
//! An installed `securemail` must work from any directory, and a clone must keep working from its
//! own; so, like msmtp and himalaya, the file is looked for in a fixed order:
//!
//! 1. `--config PATH`;
//! 2. `$SECUREMAIL_CONFIG`;
//! 3. `./config/account.toml` (a clone's own, relative to the working directory);
//! 4. `$XDG_CONFIG_HOME/securemail/account.toml` (`~/.config/securemail/account.toml` when
//!    `XDG_CONFIG_HOME` is unset, empty or relative, as the XDG spec says);
//! 5. `/etc/securemail/account.toml`.
//!
//! The first one that exists wins; explicit choices (1, 2) win even when missing, so that a typo
//! is reported instead of silently using another file. A config in the per-user or system-wide
//! directory keeps its data (store, key file, outbox) in a data directory rather than beside
//! itself: `$XDG_DATA_HOME/securemail/` (`~/.local/share/securemail/`) or `/var/lib/securemail/`.
//! See [`data_dir_for`].

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The variable that names the configuration file.
pub const CONFIG_ENV: &str = "SECUREMAIL_CONFIG";
/// A clone's own configuration, relative to the working directory.
pub const CLONE_PATH: &str = "config/account.toml";
/// The system-wide configuration.
pub const SYSTEM_PATH: &str = "/etc/securemail/account.toml";
/// Where a system-wide configuration keeps its data (store, key file, outbox) by default.
pub const SYSTEM_DATA_DIR: &str = "/var/lib/securemail";

/// How the configuration file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--config`.
    Flag,
    /// `$SECUREMAIL_CONFIG`.
    Env,
    /// `./config/account.toml`.
    Clone,
    /// The per-user XDG config directory.
    User,
    /// `/etc/securemail/`.
    System,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "from --config",
            Source::Env => "from $SECUREMAIL_CONFIG",
            Source::Clone => "the clone's, in the working directory",
            Source::User => "the per-user one, in $XDG_CONFIG_HOME/securemail",
            Source::System => "the system-wide one, in /etc/securemail",
        })
    }
}

/// The configuration file to use, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub source: Source,
}

/// No configuration file in any of the places looked at.
#[derive(Debug, thiserror::Error)]
#[error("no configuration file: tried {}", list(.tried))]
pub struct NotFound {
    /// Every place tried, in order.
    pub tried: Vec<PathBuf>,
    /// Where `securemail init` writes by default, if there is a home directory.
    pub init_path: Option<PathBuf>,
}

impl NotFound {
    pub fn hint(&self) -> String {
        let init = match &self.init_path {
            Some(p) => format!("`securemail init` writes one to {}", p.display()),
            None => "`securemail init --config PATH` writes one".to_string(),
        };
        format!("{init}; or pass --config PATH (or set {CONFIG_ENV})")
    }
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// What the environment says, read once (tests build it by hand).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub config: Option<OsString>,
    pub xdg_config_home: Option<OsString>,
    pub xdg_data_home: Option<OsString>,
    pub home: Option<PathBuf>,
    /// The working directory, to name the clone's configuration absolutely.
    pub cwd: Option<PathBuf>,
}

impl Environment {
    /// The process's environment.
    pub fn current() -> Environment {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            config: var(CONFIG_ENV),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME").map(PathBuf::from).or_else(std::env::home_dir),
            cwd: std::env::current_dir().ok(),
        }
    }

    /// `$XDG_CONFIG_HOME/securemail`, or `~/.config/securemail`.
    pub fn user_config_dir(&self) -> Option<PathBuf> {
        xdg_dir(
            self.xdg_config_home.as_ref(),
            self.home.as_deref(),
            ".config",
        )
        .map(|d| d.join("securemail"))
    }

    /// `$XDG_DATA_HOME/securemail`, or `~/.local/share/securemail`.
    pub fn user_data_dir(&self) -> Option<PathBuf> {
        xdg_dir(
            self.xdg_data_home.as_ref(),
            self.home.as_deref(),
            ".local/share",
        )
        .map(|d| d.join("securemail"))
    }

    /// The configuration file to use (see the module docs for the order).
    pub fn find(
        &self,
        flag: Option<&Path>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<Found, NotFound> {
        if let Some(path) = flag {
            return Ok(Found {
                path: path.to_path_buf(),
                source: Source::Flag,
            });
        }
        if let Some(path) = &self.config {
            return Ok(Found {
                path: PathBuf::from(path),
                source: Source::Env,
            });
        }
        let user = self.user_config_dir().map(|d| d.join("account.toml"));
        let candidates = [
            Some((PathBuf::from(CLONE_PATH), Source::Clone)),
            user.map(|p| (p, Source::User)),
            Some((PathBuf::from(SYSTEM_PATH), Source::System)),
        ];
        let mut tried = Vec::new();
        for (path, source) in candidates.into_iter().flatten() {
            if exists(&path) {
                return Ok(Found { path, source });
            }
            // Named absolute in the error: "tried config/account.toml" leaves open where from.
            match (&self.cwd, path.is_relative()) {
                (Some(cwd), true) => tried.push(cwd.join(path)),
                _ => tried.push(path),
            }
        }
        Err(NotFound {
            tried,
            init_path: self.init_path(),
        })
    }

    /// Where `securemail init` writes when not told: the per-user config file.
    pub fn init_path(&self) -> Option<PathBuf> {
        self.user_config_dir().map(|d| d.join("account.toml"))
    }

    /// The directory for a config's data defaults (store, key file, outbox), when the config
    /// lives in the per-user or system-wide config directory; `None` means "beside the config",
    /// as for a clone's or any other file.
    pub fn data_dir_for(&self, config: &Path) -> Option<PathBuf> {
        let dir = config.parent()?;
        // Lexically first: `init` asks before it creates the directory.
        let same = |other: &Path| {
            dir == other
                || match (dir.canonicalize(), other.canonicalize()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
        };
        if self.user_config_dir().is_some_and(|d| same(&d)) {
            return self.user_data_dir();
        }
        match Path::new(SYSTEM_PATH).parent() {
            Some(system) if same(system) => Some(PathBuf::from(SYSTEM_DATA_DIR)),
            _ => None,
        }
    }
}

/// An XDG base directory: the variable when it holds an absolute path (the spec says relative
/// ones are to be ignored), else `$HOME/<fallback>`.
fn xdg_dir(var: Option<&OsString>, home: Option<&Path>, fallback: &str) -> Option<PathBuf> {
    match var.map(PathBuf::from) {
        Some(p) if p.is_absolute() => Some(p),
        _ => home.map(|h| h.join(fallback)),
    }
}

/// The configuration file to use, from `--config` (`flag`) and the process's environment.
pub fn find(flag: Option<&Path>) -> Result<Found, NotFound> {
    Environment::current().find(flag, Path::exists)
}

/// A configuration found in the working directory that securemail will not use: it can run
/// commands (`password_command`), so a `config/account.toml` that someone else could have put
/// in a shared directory (`cd /tmp; securemail status`) must not be read unasked.
#[derive(Debug, thiserror::Error)]
#[error("not using {}: {reason}", .path.display())]
pub struct Untrusted {
    pub path: PathBuf,
    pub reason: String,
}

impl Untrusted {
    pub fn hint(&self) -> String {
        format!(
            "a configuration in the working directory must be yours and writable only by you \
             (as must its directory): chmod go-w it, or pass --config {} to use it anyway",
            self.path.display()
        )
    }
}

/// Checks a configuration that was found rather than named: one from the working directory
/// ([`Source::Clone`]) must be owned by the user (or root) and writable by nobody else (group
/// write only for the user's own group), and so must its directory, like ssh's StrictModes. Named files (`--config`,
/// `$SECUREMAIL_CONFIG`) and those in the user's or system's config directory are not checked.
pub fn trusted(found: &Found) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt as _;
    if found.source != Source::Clone {
        return Ok(());
    }
    let me = rustix::process::geteuid().as_raw();
    let dir = found.path.parent().unwrap_or(Path::new("."));
    for (what, path) in [("it", found.path.as_path()), ("its directory", dir)] {
        let untrusted = |reason: String| Untrusted {
            path: found.path.clone(),
            reason,
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| untrusted(format!("cannot read {what}: {}", crate::io_reason(&e))))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(untrusted(format!(
                "{what} belongs to another user (uid {})",
                meta.uid()
            )));
        }
        // Group-writable is fine for a group nobody else is in (a user-private group, as
        // umask 002 on Debian and Ubuntu makes files).
        let others = if meta.mode() & 0o002 != 0 {
            Some("everyone")
        } else if meta.mode() & 0o020 != 0 && !private_group(meta.gid(), me) {
            Some("a group others are in")
        } else {
            None
        };
        if let Some(who) = others {
            return Err(untrusted(format!(
                "{what} is writable by {who} (mode {:o})",
                meta.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Where `securemail init` writes by default: `$XDG_CONFIG_HOME/securemail/account.toml`
/// (`~/.config/securemail/account.toml`); `None` without a home directory.
pub fn default_init_path() -> Option<PathBuf> {
    Environment::current().init_path()
}

/// The directory for `config`'s data defaults (see [`Environment::data_dir_for`]).
pub fn data_dir_for(config: &Path) -> Option<PathBuf> {
    Environment::current().data_dir_for(config)
}

/// Whether group `gid` holds nobody but user `uid`: no other member listed in `/etc/group`, no
/// other account with it as its primary group in `/etc/passwd`. A group not found there (from
/// LDAP, say) is not known to be private.
fn private_group(gid: u32, uid: u32) -> bool {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    private_group_in(&read("/etc/group"), &read("/etc/passwd"), gid, uid)
}

fn private_group_in(group: &str, passwd: &str, gid: u32, uid: u32) -> bool {
    let fields = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 4)
            .collect()
    };
    let number = |f: &str| f.parse::<u32>().ok();
    let accounts = fields(passwd);
    let Some(me) = accounts.iter().find(|a| number(&a[2]) == Some(uid)) else {
        return false;
    };
    let Some(entry) = fields(group)
        .into_iter()
        .find(|g| number(&g[2]) == Some(gid))
    else {
        return false;
    };
    let other_member = entry[3].split(',').any(|m| !m.is_empty() && m != me[0]);
    let other_primary = accounts
        .iter()
        .any(|a| number(&a[3]) == Some(gid) && number(&a[2]) != Some(uid));
    !other_member && !other_primary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &str) -> Environment {
        Environment {
            home: Some(PathBuf::from(home)),
            ..Environment::default()
        }
    }

    #[test]
    fn order_is_flag_env_clone_user_system() {
        let mut e = env("/home/kim");
        e.config = Some("/srv/env.toml".into());
        let all = |_: &Path| true;
        let f = e.find(Some(Path::new("flag.toml")), all).unwrap();
        assert_eq!(
            (f.path.as_path(), f.source),
            (Path::new("flag.toml"), Source::Flag)
        );
        // Explicit choices win even when the file is missing.
        let f = e.find(None, |_| false).unwrap();
        assert_eq!(
            (f.path.as_path(), f.source),
            (Path::new("/srv/env.toml"), Source::Env)
        );
        e.config = None;
        let f = e.find(None, all).unwrap();
        assert_eq!(f.source, Source::Clone);
        let f = e.find(None, |p| p != Path::new(CLONE_PATH)).unwrap();
        assert_eq!(
            (f.path.as_path(), f.source),
            (
                Path::new("/home/kim/.config/securemail/account.toml"),
                Source::User
            )
        );
        let f = e.find(None, |p| p == Path::new(SYSTEM_PATH)).unwrap();
        assert_eq!(f.source, Source::System);
    }

    #[test]
    fn a_private_group_has_nobody_else() {
        let passwd = "root:x:0:0::/root:/bin/sh\nkim:x:1000:1000::/home/kim:/bin/sh\n\
                      lee:x:1001:1001::/home/lee:/bin/sh\nops:x:1002:100::/:/bin/sh\n";
        let group = "root:x:0:\nkim:x:1000:\nlee:x:1001:kim\nusers:x:100:kim\nstaff:x:50:\n";
        assert!(private_group_in(group, passwd, 1000, 1000));
        // Another member, another account's primary group, an unknown group or user.
        assert!(!private_group_in(group, passwd, 1001, 1001));
        assert!(!private_group_in(group, passwd, 100, 1000));
        assert!(!private_group_in(group, passwd, 4242, 1000));
        assert!(!private_group_in(group, passwd, 1000, 4242));
    }

    #[test]
    fn nothing_found_names_every_place() {
        let mut e = env("/home/kim");
        e.xdg_config_home = Some("/cfg".into());
        let err = e.find(None, |_| false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no configuration file: tried config/account.toml, \
             /cfg/securemail/account.toml, /etc/securemail/account.toml"
        );
        assert!(
            err.hint()
                .contains("securemail init` writes one to /cfg/securemail/account.toml")
        );
    }

    #[test]
    fn relative_xdg_variables_are_ignored() {
        let mut e = env("/home/kim");
        e.xdg_config_home = Some("relative/cfg".into());
        e.xdg_data_home = Some("relative/data".into());
        assert_eq!(
            e.user_config_dir().unwrap(),
            Path::new("/home/kim/.config/securemail")
        );
        assert_eq!(
            e.user_data_dir().unwrap(),
            Path::new("/home/kim/.local/share/securemail")
        );
        let none = Environment::default();
        assert_eq!(none.init_path(), None);
        assert!(
            none.find(None, |_| false)
                .unwrap_err()
                .hint()
                .contains("init --config PATH")
        );
    }

    #[test]
    fn data_goes_to_the_data_dir_only_for_the_user_config() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("cfg/securemail");
        std::fs::create_dir_all(&cfg).unwrap();
        let mut e = env("/nonexistent");
        e.xdg_config_home = Some(t.path().join("cfg").into());
        e.xdg_data_home = Some(t.path().join("data").into());
        assert_eq!(
            e.data_dir_for(&cfg.join("account.toml")),
            Some(t.path().join("data/securemail"))
        );
        assert_eq!(e.data_dir_for(Path::new("config/account.toml")), None);
        assert_eq!(e.data_dir_for(&t.path().join("account.toml")), None);
    }
}
