//! The rules a PostgreSQL URL must meet, wherever it is written: `[store] url` in the config, or
//! `store migrate --to` on the command line. One function, so that the two can never disagree on
//! what is safe (no password in the URL, one host, verified TLS to anything that is not this
//! machine).

use std::fmt;

/// Where the URL was written: what its errors name and how their hints say to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlOrigin {
    /// `[store] url` in the configuration file.
    Config,
    /// `securemail store migrate --to URL`.
    MigrateTo,
}

impl UrlOrigin {
    /// The name of the setting, as the user wrote it.
    fn name(self) -> &'static str {
        match self {
            UrlOrigin::Config => "[store] url",
            UrlOrigin::MigrateTo => "--to",
        }
    }

    /// How to write a good URL in this place.
    fn example(self) -> &'static str {
        match self {
            UrlOrigin::Config => {
                "write url = \"postgres://securemail@db.example.org:5432/securemail\""
            }
            UrlOrigin::MigrateTo => {
                "write --to postgres://securemail@db.example.org:5432/securemail"
            }
        }
    }
}

/// What [`check_postgres_url`] learnt from a good URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresTarget {
    /// Whether the connection uses verified TLS.
    pub tls: bool,
}

/// What is wrong with the URL. No variant holds a URL that contains a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    NotPostgres {
        url: String,
    },
    Invalid {
        reason: String,
    },
    /// The URL is not repeated: it holds a password.
    Password,
    NoUser {
        url: String,
    },
    NotOneHost {
        url: String,
    },
    TlsOverSocket,
    TlsOffRemote {
        url: String,
    },
    SslMode {
        mode: String,
    },
    /// This securemail was built without the `postgres` feature.
    NotBuilt,
}

/// A URL that breaks the rules, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UrlError {
    pub origin: UrlOrigin,
    pub problem: UrlProblem,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.origin.name();
        // `[store] url = "…"`, `--to "…"`.
        let named = |url: &str| match self.origin {
            UrlOrigin::Config => format!("{name} = {url:?}"),
            UrlOrigin::MigrateTo => format!("{name} {url:?}"),
        };
        match &self.problem {
            UrlProblem::NotPostgres { url } => write!(f, "{} is not a postgres:// URL", named(url)),
            UrlProblem::Invalid { reason } => {
                write!(f, "{name} is not a valid PostgreSQL URL: {reason}")
            }
            UrlProblem::Password => write!(f, "{name} contains a password"),
            UrlProblem::NoUser { url } => write!(f, "{} names no database user", named(url)),
            UrlProblem::NotOneHost { url } => {
                write!(f, "{} does not name exactly one host", named(url))
            }
            UrlProblem::TlsOverSocket => write!(
                f,
                "{name} asks for TLS (sslmode=require) over a Unix socket"
            ),
            UrlProblem::TlsOffRemote { url } => write!(
                f,
                "{name} turns TLS off (sslmode=disable) to the remote host in {url:?}"
            ),
            UrlProblem::SslMode { mode } => {
                write!(
                    f,
                    "{name} has sslmode={mode}, which securemail does not use"
                )
            }
            UrlProblem::NotBuilt => write!(
                f,
                "{name} selects PostgreSQL, but this securemail was built without it"
            ),
        }
    }
}

impl UrlError {
    pub fn hint(&self) -> String {
        let origin = self.origin;
        match &self.problem {
            UrlProblem::NotPostgres { .. } | UrlProblem::Invalid { .. } => origin.example().into(),
            UrlProblem::Password => match origin {
                UrlOrigin::Config => "remove it from the URL (config files get copied and shown) \
                                      and set [store] password_env or password_command instead"
                    .into(),
                UrlOrigin::MigrateTo => "remove it from the URL (a command line is visible to \
                                         every user of the machine) and pass --password-env VAR \
                                         or --password-command CMD instead"
                    .into(),
            },
            UrlProblem::NoUser { .. } => {
                "write the user before the host: postgres://securemail@host/db".into()
            }
            UrlProblem::NotOneHost { .. } => {
                "name the one database server: postgres://user@host:5432/db".into()
            }
            UrlProblem::TlsOverSocket => {
                "PostgreSQL has no TLS on Unix sockets; remove sslmode, or connect over TCP".into()
            }
            UrlProblem::TlsOffRemote { .. } => "securemail talks to a database on another machine \
                                                over verified TLS only; remove sslmode=disable"
                .into(),
            UrlProblem::SslMode { .. } => "remove sslmode: TLS with certificate and host-name \
                                           verification is required for a remote host \
                                           (sslmode=require turns it on for a local one)"
                .into(),
            UrlProblem::NotBuilt => match origin {
                UrlOrigin::Config => "build securemail with the default features (cargo feature \
                                      \"postgres\"), or use [store] path"
                    .into(),
                UrlOrigin::MigrateTo => "build securemail with the default features (cargo \
                                         feature \"postgres\")"
                    .into(),
            },
        }
    }
}

/// A `postgres://` URL with one host, a user and no password. TLS is required unless the host
/// is a Unix socket directory or a loopback address; there it is used when the URL says
/// `sslmode=require`. `sslmode=prefer` (silently plaintext when the server has no TLS) is refused.
#[cfg(feature = "postgres")]
pub fn check_postgres_url(text: &str, origin: UrlOrigin) -> Result<PostgresTarget, UrlError> {
    use postgres::config::Host;
    let bad = |problem: UrlProblem| Err(UrlError { origin, problem });
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return bad(UrlProblem::NotPostgres { url: text.into() });
    }
    let config: postgres::Config = match text.parse() {
        Ok(c) => c,
        Err(e) => {
            return bad(UrlProblem::Invalid {
                reason: e.to_string(),
            });
        }
    };
    if config.get_password().is_some() {
        return bad(UrlProblem::Password);
    }
    if config.get_user().is_none() {
        return bad(UrlProblem::NoUser { url: text.into() });
    }
    let (local, unix) = match config.get_hosts() {
        [Host::Tcp(host)] => (
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()),
            false,
        ),
        [Host::Unix(_)] => (true, true),
        _ => return bad(UrlProblem::NotOneHost { url: text.into() }),
    };
    // `hostaddr=` is where the driver really connects (the host name then only names the
    // certificate): the connection is local only if that address is too.
    let local = local && config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
    let query = text.split_once('?').map_or("", |(_, q)| q);
    let sslmode = query.split('&').find_map(|kv| kv.strip_prefix("sslmode="));
    let tls = match sslmode {
        None => !local,
        Some("require") if unix => return bad(UrlProblem::TlsOverSocket),
        Some("require") => true,
        Some("disable") if local => false,
        Some("disable") => return bad(UrlProblem::TlsOffRemote { url: text.into() }),
        Some(other) => {
            return bad(UrlProblem::SslMode { mode: other.into() });
        }
    };
    Ok(PostgresTarget { tls })
}

/// Without the `postgres` feature every URL is refused, saying why.
#[cfg(not(feature = "postgres"))]
pub fn check_postgres_url(_text: &str, origin: UrlOrigin) -> Result<PostgresTarget, UrlError> {
    Err(UrlError {
        origin,
        problem: UrlProblem::NotBuilt,
    })
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    fn tls(url: &str) -> Result<bool, UrlProblem> {
        check_postgres_url(url, UrlOrigin::Config)
            .map(|t| t.tls)
            .map_err(|e| e.problem)
    }

    #[test]
    fn tls_is_required_unless_the_server_is_this_machine() {
        assert_eq!(tls("postgres://u@db.example.org/db"), Ok(true));
        assert_eq!(tls("postgres://u@127.0.0.1:5432/db"), Ok(false));
        assert_eq!(tls("postgres://u@[::1]:5432/db"), Ok(false));
        assert_eq!(tls("postgres://u@localhost/db?sslmode=require"), Ok(true));
        assert_eq!(tls("postgresql://u@%2Frun%2Fpostgresql/db"), Ok(false));
        // hostaddr= is where the driver connects: a local name in front of it changes nothing.
        assert_eq!(
            tls("postgres://u@localhost:5432/db?hostaddr=192.0.2.2"),
            Ok(true)
        );
        assert_eq!(
            tls("postgres://u@localhost:5432/db?hostaddr=192.0.2.2&sslmode=disable"),
            Err(UrlProblem::TlsOffRemote {
                url: "postgres://u@localhost:5432/db?hostaddr=192.0.2.2&sslmode=disable".into()
            })
        );
        assert_eq!(
            tls("postgres://u@localhost:5432/db?hostaddr=127.0.0.1"),
            Ok(false)
        );
        assert_eq!(
            tls("postgres://u@db.example.org/db?sslmode=disable"),
            Err(UrlProblem::TlsOffRemote {
                url: "postgres://u@db.example.org/db?sslmode=disable".into()
            })
        );
        assert_eq!(
            tls("postgres://u@127.0.0.1/db?sslmode=prefer"),
            Err(UrlProblem::SslMode {
                mode: "prefer".into()
            })
        );
        assert_eq!(
            tls("postgresql://u@%2Frun%2Fpostgresql/db?sslmode=require"),
            Err(UrlProblem::TlsOverSocket)
        );
    }

    #[test]
    fn a_password_is_refused_and_never_repeated() {
        for origin in [UrlOrigin::Config, UrlOrigin::MigrateTo] {
            let e =
                check_postgres_url("postgres://u:hunter2@db.example.org/db", origin).unwrap_err();
            assert_eq!(e.problem, UrlProblem::Password);
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!e.hint().contains("hunter2"));
        }
    }

    #[test]
    fn messages_name_where_the_url_was_written() {
        let url = "mysql://u@db.example.org/db";
        let config = check_postgres_url(url, UrlOrigin::Config).unwrap_err();
        assert_eq!(
            config.to_string(),
            "[store] url = \"mysql://u@db.example.org/db\" is not a postgres:// URL"
        );
        assert!(config.hint().starts_with("write url = "));
        let flag = check_postgres_url(url, UrlOrigin::MigrateTo).unwrap_err();
        assert_eq!(
            flag.to_string(),
            "--to \"mysql://u@db.example.org/db\" is not a postgres:// URL"
        );
        assert!(flag.hint().starts_with("write --to postgres://"));
        assert_eq!(
            tls("postgres://db.example.org/db"),
            Err(UrlProblem::NoUser {
                url: "postgres://db.example.org/db".into()
            })
        );
        assert_eq!(
            tls("postgres://u@a.example.org,b.example.org/db"),
            Err(UrlProblem::NotOneHost {
                url: "postgres://u@a.example.org,b.example.org/db".into()
            })
        );
    }
}
