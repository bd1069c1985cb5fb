//! Checking: the raw file becomes one [`Settings`] value, or an error naming the file, line,
//! column and key, with a hint — before any network or store I/O happens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use toml::Spanned;

use super::pg_url::{UrlOrigin, check_postgres_url};
use super::raw::*;
use super::report::{ConfigError, Reporter};
use super::settings::*;
use crate::otp::{OtpAlgorithm, OtpParams};

/// Reads, parses and checks the configuration file at `path`. A file in the per-user or
/// system-wide config directory keeps its data in the data directory (see
/// [`super::discover::data_dir_for`]); any other beside itself.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes));
    read.map_err(|e| ConfigError {
        file: path.to_path_buf(),
        at: None,
        message: format!(
            "cannot read the configuration file: {}",
            crate::io_reason(&e)
        ),
        hint: Some(
            "check --config / SECUREMAIL_CONFIG, or run `securemail init` to write a new one"
                .into(),
        ),
    })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError {
            file: path.to_path_buf(),
            at: None,
            message: format!(
                "the file is larger than {} KiB; this is not a securemail configuration",
                MAX_CONFIG_BYTES / 1024
            ),
            hint: Some("check --config / SECUREMAIL_CONFIG".into()),
        });
    }
    let source = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let r = Reporter {
            file: path,
            source: &text,
        };
        r.error(
            Some(offset..offset),
            "the file is not valid UTF-8".into(),
            Some("save the configuration file as UTF-8".into()),
        )
    })?;
    parse_with_data_dir(
        path,
        &source,
        super::discover::data_dir_for(path).as_deref(),
    )
}

/// Parses and checks configuration text; `path` is used for messages and to resolve paths.
/// Data defaults (store, outbox) go beside the file.
///
/// Long on purpose: one short step per table of the file, in the file's order, each delegating
/// to its own check; splitting it further would only scatter the list.
pub fn parse(path: &Path, source: &str) -> Result<Settings, ConfigError> {
    parse_with_data_dir(path, source, None)
}

/// [`parse`], with the store and outbox defaulting to `data_dir` when it is given. Paths written
/// in the file are still resolved against the file's directory.
pub fn parse_with_data_dir(
    path: &Path,
    source: &str,
    data_dir: Option<&Path>,
) -> Result<Settings, ConfigError> {
    let r = Reporter { file: path, source };
    let mut raw: RawConfig = toml::from_str(source).map_err(|e| r.toml_error(&e))?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            clean(&base.join(p))
        }
    };

    let sender = check_sender(&r, raw.sender)?;
    let delivery = match raw.smtp {
        None => Delivery::Outbox,
        Some(smtp) => Delivery::Smtp(check_smtp(&r, smtp, &resolve)?),
    };
    // Unset, the data paths go to the data directory if there is one, else beside the file.
    let data_path = |v: Option<Spanned<String>>, key: &str, name: &str| match (v, data_dir) {
        (None, Some(d)) => Ok(d.join(name)),
        (v, _) => path_value(&r, v, key, name).map(|p| resolve(&p)),
    };
    let outbox_dir = data_path(raw.outbox.dir, "[outbox] dir", "outbox")?;
    let postgres = check_postgres(&r, &mut raw.store, &resolve, data_dir)?;
    let store_path = data_path(raw.store.path, "[store] path", "securemail.db")?;
    let store_lock_timeout = match raw.store.lock_timeout {
        None => DEFAULT_LOCK_TIMEOUT,
        Some(v) => match humantime::parse_duration(v.get_ref()) {
            Ok(d) if d <= Duration::from_secs(600) => d,
            _ => {
                return Err(r.at(
                    &v,
                    format!(
                        "[store] lock_timeout = {:?} is not a duration up to 10 minutes",
                        v.get_ref()
                    ),
                    "write a duration such as \"5s\" or \"500ms\"",
                ));
            }
        },
    };
    // Unset: the templates built into the binary.
    let templates_dir = raw
        .templates
        .dir
        .map(|d| path_value(&r, Some(d), "[templates] dir", "").map(|p| resolve(&p)))
        .transpose()?;

    let otp = check_otp(&r, raw.otp)?;
    let key = check_key(&r, raw.key)?;
    let max_attempts = int_in(
        &r,
        raw.verify.max_attempts,
        "[verify] max_attempts",
        1..=1000,
        5,
        "5 is a common choice; after this many wrong codes in a row the code locks",
    )?;

    let limits = check_recipient_limits(&r, raw.limits)?;
    let dkim = raw.dkim.map(|d| check_dkim(&r, d, &resolve)).transpose()?;
    let log_file = raw
        .log
        .file
        .map(|f| path_value(&r, Some(f), "[log] file", "").map(|p| resolve(&p)))
        .transpose()?;

    let audit_file = check_audit(&r, raw.audit, &store_path, &resolve)?;

    let reply = raw
        .reply
        .map(|t| check_reply(&r, t))
        .transpose()?
        .unwrap_or_default();

    Ok(Settings {
        config_path: path.to_path_buf(),
        sender,
        delivery,
        outbox_dir,
        store_path,
        postgres,
        store_lock_timeout,
        templates_dir,
        otp,
        key,
        max_attempts: max_attempts as u32,
        limits,
        dkim,
        log_file,
        audit_file,
        reply,
    })
}

/// `[audit]`: the file, by default beside the store; `enabled = false` turns it off (and then a
/// `file` would be a contradiction, so it is refused).
fn check_audit(
    r: &Reporter<'_>,
    raw: RawAudit,
    store_path: &Path,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(enabled) = &raw.enabled
        && !*enabled.get_ref()
    {
        if let Some(file) = &raw.file {
            return Err(r.at(
                file,
                "[audit] file is set but enabled = false".into(),
                "remove one of them: the audit log is either written to file or not at all",
            ));
        }
        return Ok(None);
    }
    let file = match raw.file {
        Some(f) => resolve(&path_value(r, Some(f), "[audit] file", "")?),
        None => match store_path.parent() {
            Some(dir) => dir.join(crate::audit::DEFAULT_FILE_NAME),
            None => PathBuf::from(crate::audit::DEFAULT_FILE_NAME),
        },
    };
    Ok(Some(file))
}

fn check_reply(r: &Reporter<'_>, raw: Spanned<RawReply>) -> Result<ReplyPolicy, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let required = raw
        .require_authenticated
        .as_ref()
        .is_some_and(|v| *v.get_ref());
    let id = match raw.authserv_id {
        None => None,
        Some(v) => {
            let id = v.get_ref().trim().to_ascii_lowercase();
            // RFC 8601 authserv-id: a `value` (token or quoted-string); in practice a host name.
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(r.at(
                    &v,
                    format!("[reply] authserv_id = {:?} is not a host name", v.get_ref()),
                    "use the name your receiving server writes first in Authentication-Results, \
                     e.g. \"mx.google.com\" for Gmail",
                ));
            }
            Some(id)
        }
    };
    if !required {
        return Ok(ReplyPolicy { authserv_id: None });
    }
    match id {
        Some(id) => Ok(ReplyPolicy {
            authserv_id: Some(id),
        }),
        None => Err(r.error(
            Some(
                raw.require_authenticated
                    .map_or(span, |v| v.span()),
            ),
            "[reply] require_authenticated = true needs authserv_id".into(),
            Some(
                "set authserv_id to the name your receiving server writes in Authentication-Results \
                 (Gmail: \"mx.google.com\"; OpenDKIM/OpenDMARC: their AuthservID, by default the host name)"
                    .into(),
            ),
        )),
    }
}

fn check_dkim(
    r: &Reporter<'_>,
    raw: Spanned<RawDkim>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<DkimSettings, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let missing = |key: &str| {
        r.error(
            Some(span.clone()),
            format!("[dkim] {key} is missing"),
            Some(
                "[dkim] needs domain, selector and private_key_file; remove the table to send unsigned"
                    .into(),
            ),
        )
    };
    let label = |v: Spanned<String>, key: &str| -> Result<String, ConfigError> {
        let s = v.get_ref().trim().to_ascii_lowercase();
        if s.is_empty()
            || !s.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        {
            return Err(r.at(
                &v,
                format!("[dkim] {key} = {:?} is not a DNS name", v.get_ref()),
                "use the domain of [sender] from and a selector such as \"mail2026\"",
            ));
        }
        Ok(s)
    };
    let domain = label(raw.domain.ok_or_else(|| missing("domain"))?, "domain")?;
    let selector = label(raw.selector.ok_or_else(|| missing("selector"))?, "selector")?;
    let file = raw
        .private_key_file
        .ok_or_else(|| missing("private_key_file"))?;
    Ok(DkimSettings {
        domain,
        selector,
        private_key_file: resolve(file.get_ref()),
    })
}

/// Removes `.` and `dir/..` pairs so that messages show `outbox/x.eml`, not
/// `config/../outbox/x.eml`. Leading `..` (above the working directory) are kept.
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

fn check_sender(r: &Reporter<'_>, raw: Option<RawSender>) -> Result<SenderSettings, ConfigError> {
    let missing = || {
        r.error(
            None,
            "[sender] from is missing".into(),
            Some("add a [sender] table with from = \"Your Name <you@example.org>\"".into()),
        )
    };
    let raw = raw.ok_or_else(missing)?;
    let from = raw.from.ok_or_else(missing)?;
    let from_box = mailbox(r, &from, "[sender] from")?;
    let reply_to = raw
        .reply_to
        .map(|v| mailbox(r, &v, "[sender] reply_to"))
        .transpose()?;
    Ok(SenderSettings {
        from: from_box,
        reply_to,
    })
}

fn mailbox(r: &Reporter<'_>, v: &Spanned<String>, key: &str) -> Result<Mailbox, ConfigError> {
    let hint =
        "write a mailbox such as \"Example Admin <admin@example.org>\" or \"admin@example.org\"";
    if v.get_ref().contains(['\r', '\n']) {
        return Err(r.at(v, format!("{key} contains a line break"), hint));
    }
    v.get_ref().parse::<Mailbox>().map_err(|e| {
        r.at(
            v,
            format!("{key} = {:?} is not a valid mailbox ({e})", v.get_ref()),
            hint,
        )
    })
}

fn check_smtp(
    r: &Reporter<'_>,
    smtp: Spanned<RawSmtp>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<SmtpSettings, ConfigError> {
    let table_span = smtp.span();
    let smtp = smtp.into_inner();
    let host = smtp.host.ok_or_else(|| {
        r.error(
            Some(table_span.clone()),
            "[smtp] host is missing".into(),
            Some(
                "set host = \"smtp.example.org\", or remove the [smtp] table to write mail to \
                 the outbox instead"
                    .into(),
            ),
        )
    })?;
    let host_str = host.get_ref().trim().to_string();
    if host_str.is_empty() || host_str.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(r.at(
            &host,
            format!("[smtp] host = {:?} is not a host name", host.get_ref()),
            "write just the server's name, e.g. host = \"smtp.gmail.com\"",
        ));
    }

    let (port, security) = check_port_security(r, smtp.port.as_ref(), smtp.security.as_ref())?;

    let login = check_login(r, smtp.username, smtp.password_env, smtp.password_command)?;
    let ca_file = smtp.ca_file.map(|v| resolve(v.get_ref()));
    let limits = check_limits(
        r,
        smtp.timeout_secs,
        smtp.connections,
        smtp.max_per_minute,
        smtp.retries,
    )?;
    let hello_name = check_hello_name(r, smtp.hello_name)?;
    Ok(SmtpSettings {
        host: host_str,
        port,
        security,
        login,
        ca_file,
        timeout: limits.timeout,
        hello_name,
        connections: limits.connections,
        max_per_minute: limits.max_per_minute,
        retries: limits.retries,
    })
}

/// `port` and `security`: one may be inferred from the other (465 ⇔ TLS, 587 ⇔ STARTTLS); any
/// other port needs `security` spelled out, and a mismatch is refused.
fn check_port_security(
    r: &Reporter<'_>,
    port: Option<&Spanned<i64>>,
    security: Option<&Spanned<String>>,
) -> Result<(u16, Security), ConfigError> {
    let port = match port {
        Some(p) => {
            let n = *p.get_ref();
            if !(1..=65535).contains(&n) {
                return Err(r.at(
                    p,
                    format!("[smtp] port = {n} is out of range"),
                    "use 465 (TLS from the first byte) or 587 (STARTTLS)",
                ));
            }
            Some((n as u16, p.span()))
        }
        None => None,
    };

    let security = match security {
        Some(s) => Some(match s.get_ref().to_ascii_lowercase().as_str() {
            "tls" | "ssl" | "smtps" | "implicit" => Security::Tls,
            "starttls" => Security::StartTls,
            other => {
                return Err(r.at(
                    s,
                    format!("[smtp] security = {other:?} is not one of \"tls\", \"starttls\""),
                    "securemail only sends over verified TLS: use \"tls\" (port 465) or \
                     \"starttls\" (port 587)",
                ));
            }
        }),
        None => None,
    };

    Ok(match (port, security) {
        (None, None) => (465, Security::Tls),
        (None, Some(Security::Tls)) => (465, Security::Tls),
        (None, Some(Security::StartTls)) => (587, Security::StartTls),
        (Some((465, _)), None) => (465, Security::Tls),
        (Some((587, _)), None) => (587, Security::StartTls),
        (Some((p, span)), None) => {
            return Err(r.error(
                Some(span),
                format!("[smtp] port = {p} needs an explicit security setting"),
                Some(format!(
                    "securemail infers security only for ports 465 and 587; add security = \
                     \"tls\" if port {p} speaks TLS from the first byte, or security = \
                     \"starttls\" if it upgrades with STARTTLS"
                )),
            ));
        }
        (Some((465, span)), Some(Security::StartTls)) => {
            return Err(r.error(
                Some(span),
                "[smtp] port = 465 with security = \"starttls\": port 465 speaks TLS from the first byte".into(),
                Some("use security = \"tls\" with port 465, or port = 587 with security = \"starttls\"".into()),
            ));
        }
        (Some((587, span)), Some(Security::Tls)) => {
            return Err(r.error(
                Some(span),
                "[smtp] port = 587 with security = \"tls\": port 587 expects STARTTLS".into(),
                Some("use security = \"starttls\" with port 587, or port = 465 with security = \"tls\"".into()),
            ));
        }
        (Some((p, _)), Some(s)) => (p, s),
    })
}

/// `username` with `password_env` or `password_command` (or neither: asked on the terminal).
fn check_login(
    r: &Reporter<'_>,
    username: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_command: Option<Spanned<String>>,
) -> Result<Option<(String, PasswordSource)>, ConfigError> {
    let login = match username {
        None => {
            if let Some(v) = password_env.as_ref().or(password_command.as_ref()) {
                return Err(r.at(
                    v,
                    "a password source is set but [smtp] username is missing".into(),
                    "add username = \"you@example.org\", or remove the password setting if the \
                     server needs no login",
                ));
            }
            None
        }
        Some(user) => {
            let name = user.get_ref().clone();
            if name.is_empty() || name.contains(['\r', '\n', '\0']) {
                return Err(r.at(
                    &user,
                    "[smtp] username is empty or contains a control character".into(),
                    "write the login name, usually your full address",
                ));
            }
            let source = match (password_env, password_command) {
                (Some(_), Some(cmd)) => {
                    return Err(r.at(
                        &cmd,
                        "both password_env and password_command are set".into(),
                        "keep one of them: securemail would not know which to trust",
                    ));
                }
                (Some(env), None) => {
                    let var = env.get_ref().clone();
                    if !PasswordSource::is_env_name(&var) {
                        return Err(r.at(
                            &env,
                            format!("[smtp] password_env = {var:?} is not an environment variable name"),
                            "name the variable that holds the password, e.g. password_env = \"SECUREMAIL_PASSWORD\"",
                        ));
                    }
                    PasswordSource::Env(var)
                }
                (None, Some(cmd)) => {
                    if cmd.get_ref().trim().is_empty() {
                        return Err(r.at(
                            &cmd,
                            "[smtp] password_command is empty".into(),
                            "give a command that prints the password, e.g. \"pass show mail/gmail\"",
                        ));
                    }
                    PasswordSource::Command(cmd.get_ref().clone())
                }
                (None, None) => PasswordSource::Prompt,
            };
            Some((name, source))
        }
    };

    Ok(login)
}

/// `[smtp]`'s numbers that shape a batch.
struct Limits {
    timeout: Duration,
    connections: usize,
    max_per_minute: Option<u32>,
    retries: u32,
}

fn check_limits(
    r: &Reporter<'_>,
    timeout_secs: Option<Spanned<i64>>,
    connections: Option<Spanned<i64>>,
    max_per_minute: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
) -> Result<Limits, ConfigError> {
    let timeout = int_in(
        r,
        timeout_secs,
        "[smtp] timeout_secs",
        1..=3600,
        30,
        "give a number of seconds, e.g. timeout_secs = 30",
    )?;
    let connections = int_in(
        r,
        connections,
        "[smtp] connections",
        1..=32,
        DEFAULT_CONNECTIONS as i64,
        "most providers allow a few parallel connections; Gmail allows about 10",
    )?;
    let max_per_minute = match max_per_minute {
        None => None,
        some => Some(int_in(
            r,
            some,
            "[smtp] max_per_minute",
            1..=100_000,
            0,
            "give the provider's sending limit per minute, or remove the key",
        )? as u32),
    };

    let retries = int_in(
        r,
        retries,
        "[smtp] retries",
        0..=10,
        3,
        "retries after a 4xx, a timeout or a dropped connection, with backoff 0.5 s, 1 s, 2 s, …",
    )? as u32;

    Ok(Limits {
        timeout: Duration::from_secs(timeout as u64),
        connections: connections as usize,
        max_per_minute,
        retries,
    })
}

/// `hello_name`: what EHLO says (a domain name or address literal), "localhost" by default.
fn check_hello_name(r: &Reporter<'_>, v: Option<Spanned<String>>) -> Result<String, ConfigError> {
    Ok(match v {
        Some(v) => {
            let s = v.get_ref();
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
            {
                return Err(r.at(
                    &v,
                    format!("[smtp] hello_name = {s:?} is not a domain name"),
                    "use this machine's fully qualified name, or remove the key to say \"localhost\"",
                ));
            }
            s.clone()
        }
        None => "localhost".to_string(),
    })
}

fn check_otp(r: &Reporter<'_>, raw: RawOtp) -> Result<OtpPolicy, ConfigError> {
    let issuer = match raw.issuer {
        Some(v) => {
            let s = v.get_ref().trim();
            // It goes into the otpauth URI's label and the mail's subject: no ':' (the URI's
            // separator), no control characters (a header may not carry them).
            if s.is_empty() || s.contains(':') || s.chars().any(char::is_control) {
                return Err(r.at(
                    &v,
                    format!(
                        "[otp] issuer = {:?} must be non-empty and contain no ':' and no control \
                         characters",
                        v.get_ref()
                    ),
                    "authenticator apps show the issuer above the code: use your service's name",
                ));
            }
            s.to_string()
        }
        None => "securemail".to_string(),
    };
    let digits = int_in(
        r,
        raw.digits,
        "[otp] digits",
        6..=8,
        6,
        "use 6: many authenticator apps (Google Authenticator among them) ignore other values",
    )?;
    let period = int_in(
        r,
        raw.period,
        "[otp] period",
        15..=300,
        30,
        "use 30: many authenticator apps ignore other values",
    )?;
    let skew = int_in(
        r,
        raw.skew,
        "[otp] skew",
        0..=3,
        1,
        "1 step either side (RFC 6238's recommendation) absorbs clock drift",
    )?;
    let algorithm = match raw.algorithm {
        None => OtpAlgorithm::Sha1,
        Some(v) => OtpAlgorithm::parse(v.get_ref()).ok_or_else(|| {
            r.at(
                &v,
                format!(
                    "[otp] algorithm = {:?} is not SHA1, SHA256 or SHA512",
                    v.get_ref()
                ),
                "use \"SHA1\": it is what authenticator apps implement",
            )
        })?,
    };
    let ttl = duration(r, raw.ttl, "[otp] ttl", "24h")?;
    Ok(OtpPolicy {
        issuer,
        params: OtpParams {
            algorithm,
            digits: digits as u8,
            period: period as u64,
        },
        skew: skew as u8,
        ttl,
    })
}

fn check_key(r: &Reporter<'_>, raw: RawKey) -> Result<KeyPolicy, ConfigError> {
    let length = int_in(
        r,
        raw.length,
        "[key] length",
        MIN_KEY_LENGTH as i64..=MAX_KEY_LENGTH as i64,
        12,
        "each character carries 5 bits; 10 characters (50 bits) is the least securemail sends",
    )?;
    let ttl = duration(r, raw.ttl, "[key] ttl", "24h")?;
    Ok(KeyPolicy {
        length: length as usize,
        ttl,
    })
}

/// `[limits]`: the per-recipient budgets. The ranges keep them budgets: a cooldown of up to a
/// day (0 turns it off), and a day's codes and wrong attempts bounded so that the README's
/// success bound stays small.
fn check_recipient_limits(r: &Reporter<'_>, raw: RawLimits) -> Result<LimitsPolicy, ConfigError> {
    let defaults = LimitsPolicy::default();
    let resend_cooldown = match raw.resend_cooldown {
        None => defaults.resend_cooldown,
        Some(v) => match humantime::parse_duration(v.get_ref()) {
            Ok(d) if d <= Duration::from_secs(86400) && d.subsec_nanos() == 0 => d,
            _ => {
                return Err(r.at(
                    &v,
                    format!(
                        "[limits] resend_cooldown = {:?} is not a whole number of seconds up to 24 hours",
                        v.get_ref()
                    ),
                    "write a duration such as \"60s\" or \"5m\" (\"0s\" sends again at once)",
                ));
            }
        },
    };
    let codes_per_day = int_in(
        r,
        raw.codes_per_day,
        "[limits] codes_per_day",
        1..=100,
        i64::from(defaults.codes_per_day),
        "codes one recipient may be sent in any 24 hours; 5 covers lost mail and typos",
    )?;
    let wrong_attempts_per_day = int_in(
        r,
        raw.wrong_attempts_per_day,
        "[limits] wrong_attempts_per_day",
        1..=100,
        i64::from(defaults.wrong_attempts_per_day),
        "wrong codes one recipient may send in any 24 hours, across all their codes; each one \
         is a guess (see the README's Security section)",
    )?;
    Ok(LimitsPolicy {
        resend_cooldown,
        codes_per_day: codes_per_day as u32,
        wrong_attempts_per_day: wrong_attempts_per_day as u32,
    })
}

fn int_in(
    r: &Reporter<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    hint: &str,
) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(r.at(
            &v,
            format!(
                "{key} = {} is out of range ({}..={})",
                v.get_ref(),
                range.start(),
                range.end()
            ),
            hint,
        )),
    }
}

fn duration(
    r: &Reporter<'_>,
    v: Option<Spanned<String>>,
    key: &str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let hint = "write a duration such as \"24h\", \"90m\" or \"2d 12h\"";
    let Some(v) = v else {
        return humantime::parse_duration(default)
            .map_err(|e| r.error(None, format!("{key}: {e}"), None));
    };
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) if d >= Duration::from_secs(60) && d <= Duration::from_secs(366 * 86400) => Ok(d),
        Ok(_) => Err(r.at(
            &v,
            format!(
                "{key} = {:?} is out of range (1 minute to 1 year)",
                v.get_ref()
            ),
            hint,
        )),
        Err(e) => Err(r.at(
            &v,
            format!("{key} = {:?} is not a duration ({e})", v.get_ref()),
            hint,
        )),
    }
}

/// `[store] url` and the settings that only a PostgreSQL store has. `path` and `url` exclude
/// each other; the PostgreSQL-only keys need `url`.
fn check_postgres(
    r: &Reporter<'_>,
    store: &mut RawStore,
    resolve: &dyn Fn(&str) -> PathBuf,
    data_dir: Option<&Path>,
) -> Result<Option<PostgresSettings>, ConfigError> {
    let Some(url) = store.url.take() else {
        let only_pg = [
            (&store.password_env, "password_env"),
            (&store.password_command, "password_command"),
            (&store.ca_file, "ca_file"),
            (&store.key_file, "key_file"),
            (&store.lease, "lease"),
        ];
        if let Some((v, key)) = only_pg.iter().find_map(|(v, k)| v.as_ref().map(|v| (v, k))) {
            return Err(r.at(
                v,
                format!("[store] {key} is set but [store] url is not"),
                "it applies to a PostgreSQL store only: add url = \"postgres://user@host/db\", or remove it",
            ));
        }
        return Ok(None);
    };
    if let Some(path) = &store.path {
        return Err(r.at(
            path,
            "[store] sets both path (SQLite) and url (PostgreSQL)".into(),
            "keep one: path for a store on this machine, url for one shared by several hosts",
        ));
    }
    let target = check_postgres_url(url.get_ref(), UrlOrigin::Config).map_err(|e| {
        let hint = e.hint();
        r.at(&url, e.to_string(), hint)
    })?;
    let password = match (store.password_env.take(), store.password_command.take()) {
        (Some(_), Some(cmd)) => {
            return Err(r.at(
                &cmd,
                "both [store] password_env and password_command are set".into(),
                "keep one of them: securemail would not know which to trust",
            ));
        }
        (Some(env), None) => {
            let var = env.get_ref().clone();
            if !PasswordSource::is_env_name(&var) {
                return Err(r.at(
                    &env,
                    format!("[store] password_env = {var:?} is not an environment variable name"),
                    "name the variable that holds the password, e.g. password_env = \"SECUREMAIL_DB_PASSWORD\"",
                ));
            }
            Some(PasswordSource::Env(var))
        }
        (None, Some(cmd)) if cmd.get_ref().trim().is_empty() => {
            return Err(r.at(
                &cmd,
                "[store] password_command is empty".into(),
                "give a command that prints the password, e.g. \"pass show db/securemail\"",
            ));
        }
        (None, Some(cmd)) => Some(PasswordSource::Command(cmd.get_ref().clone())),
        (None, None) => None,
    };
    let ca_file = store
        .ca_file
        .take()
        .map(|f| {
            if !target.tls {
                return Err(r.at(
                    &f,
                    "[store] ca_file is set but the connection to the database does not use TLS".into(),
                    "add ?sslmode=require to [store] url to use TLS to a local server, or remove ca_file",
                ));
            }
            path_value(r, Some(f), "[store] ca_file", "").map(|p| resolve(&p))
        })
        .transpose()?;
    // Unset: in the data directory if there is one, else beside the file.
    let key_file = match (store.key_file.take(), data_dir) {
        (None, Some(d)) => d.join("securemail.key"),
        (v, _) => resolve(&path_value(r, v, "[store] key_file", "securemail.key")?),
    };
    let lease = match store.lease.take() {
        None => DEFAULT_LEASE,
        Some(v) => match humantime::parse_duration(v.get_ref()) {
            Ok(d) if LEASE_RANGE.contains(&d) => d,
            _ => {
                return Err(r.at(
                    &v,
                    format!(
                        "[store] lease = {:?} is not a duration from 1 second to 1 hour",
                        v.get_ref()
                    ),
                    "write a duration such as \"30s\": how long a host that stopped answering \
                     keeps its share of a list before the other hosts take it over",
                ));
            }
        },
    };
    Ok(Some(PostgresSettings {
        url: url.into_inner(),
        password,
        ca_file,
        tls: target.tls,
        key_file,
        lease,
        origin: UrlOrigin::Config,
    }))
}

fn path_value(
    r: &Reporter<'_>,
    v: Option<Spanned<String>>,
    key: &str,
    default: &str,
) -> Result<String, ConfigError> {
    match v {
        None => Ok(default.to_string()),
        Some(v) if v.get_ref().trim().is_empty() || v.get_ref().contains('\0') => Err(r.at(
            &v,
            format!("{key} is empty"),
            "give a path; relative paths are resolved against the config file's directory",
        )),
        Some(v) => Ok(v.into_inner()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Position;

    fn parse_str(src: &str) -> Result<Settings, ConfigError> {
        parse(Path::new("config/account.toml"), src)
    }

    const MIN: &str = "[sender]\nfrom = \"Admin <admin@example.org>\"\n";

    #[test]
    fn data_defaults_go_to_the_data_dir_written_paths_stay_beside_the_file() {
        let data = Path::new("/data/securemail");
        let cfg = Path::new("/home/kim/.config/securemail/account.toml");
        let s = parse_with_data_dir(cfg, MIN, Some(data)).unwrap();
        assert_eq!(s.store_path, Path::new("/data/securemail/securemail.db"));
        assert_eq!(s.outbox_dir, Path::new("/data/securemail/outbox"));
        assert_eq!(s.templates_dir, None);
        let src = format!("{MIN}[outbox]\ndir = \"sent\"\n[templates]\ndir = \"tpl\"\n");
        let s = parse_with_data_dir(cfg, &src, Some(data)).unwrap();
        assert_eq!(s.outbox_dir, Path::new("/home/kim/.config/securemail/sent"));
        assert_eq!(s.store_path, Path::new("/data/securemail/securemail.db"));
        assert_eq!(
            s.templates_dir.as_deref(),
            Some(Path::new("/home/kim/.config/securemail/tpl"))
        );
    }

    #[test]
    fn minimal_config_means_outbox_and_defaults() {
        let s = parse_str(MIN).unwrap();
        assert!(matches!(s.delivery, Delivery::Outbox));
        assert_eq!(s.outbox_dir, Path::new("config/outbox"));
        assert_eq!(s.store_path, Path::new("config/securemail.db"));
        assert_eq!(s.otp.params.digits, 6);
        assert_eq!(s.otp.params.period, 30);
        assert_eq!(s.otp.skew, 1);
        assert_eq!(s.key.ttl, Duration::from_secs(86400));
        assert_eq!(s.max_attempts, 5);
        assert_eq!(s.limits.resend_cooldown, Duration::from_secs(60));
        assert_eq!(s.limits.codes_per_day, 5);
        assert_eq!(s.limits.wrong_attempts_per_day, 10);
    }

    #[test]
    fn limits_are_read_and_checked_with_their_position() {
        let s = parse_str(&format!(
            "{MIN}[limits]\nresend_cooldown = \"0s\"\ncodes_per_day = 20\nwrong_attempts_per_day = 3\n"
        ))
        .unwrap();
        assert_eq!(s.limits.resend_cooldown, Duration::ZERO);
        assert_eq!(
            (s.limits.codes_per_day, s.limits.wrong_attempts_per_day),
            (20, 3)
        );
        for (line, column, bad) in [
            (4, 19, "resend_cooldown = \"2 days\""),
            (4, 19, "resend_cooldown = \"500ms\""),
            (4, 17, "codes_per_day = 0"),
            (4, 26, "wrong_attempts_per_day = 1000"),
        ] {
            let e = parse_str(&format!("{MIN}[limits]\n{bad}\n")).unwrap_err();
            assert_eq!(e.at, Some(Position { line, column }), "{bad}");
            assert!(e.message.starts_with("[limits] "), "{}", e.message);
            assert!(e.hint.is_some());
        }
        let e = parse_str(&format!("{MIN}[limits]\nresends = 3\n")).unwrap_err();
        assert!(e.message.contains("resends"), "{}", e.message);
    }

    #[test]
    #[cfg(feature = "postgres")]
    fn the_lease_is_read_only_with_a_url() {
        let url = "[store]\nurl = \"postgres://securemail@127.0.0.1/securemail\"\n";
        let s = parse_str(&format!("{MIN}{url}")).unwrap();
        assert_eq!(s.postgres.unwrap().lease, DEFAULT_LEASE);
        let s = parse_str(&format!("{MIN}{url}lease = \"2s\"\n")).unwrap();
        assert_eq!(s.postgres.unwrap().lease, Duration::from_secs(2));
        for bad in ["\"500ms\"", "\"2h\"", "\"soon\""] {
            let e = parse_str(&format!("{MIN}{url}lease = {bad}\n")).unwrap_err();
            assert_eq!(e.at, Some(Position { line: 5, column: 9 }), "{bad}");
            assert_eq!(
                e.message,
                format!("[store] lease = {bad} is not a duration from 1 second to 1 hour")
            );
            assert!(
                e.hint
                    .unwrap()
                    .starts_with("write a duration such as \"30s\"")
            );
        }
        let e = parse_str(&format!("{MIN}[store]\nlease = \"30s\"\n")).unwrap_err();
        assert_eq!(e.message, "[store] lease is set but [store] url is not");
        assert_eq!(e.at, Some(Position { line: 4, column: 9 }));
        assert!(e.hint.unwrap().contains("PostgreSQL store only"));
    }

    #[test]
    fn security_is_inferred_from_port() {
        let tls = parse_str(&format!("{MIN}[smtp]\nhost = \"h\"\nport = 465\n")).unwrap();
        let Delivery::Smtp(tls) = tls.delivery else {
            panic!()
        };
        assert_eq!(tls.security, Security::Tls);
        let st = parse_str(&format!("{MIN}[smtp]\nhost = \"h\"\nport = 587\n")).unwrap();
        let Delivery::Smtp(st) = st.delivery else {
            panic!()
        };
        assert_eq!(st.security, Security::StartTls);
    }

    #[test]
    fn other_ports_need_explicit_security() {
        let e = parse_str(&format!("{MIN}[smtp]\nhost = \"h\"\nport = 2525\n")).unwrap_err();
        assert_eq!(e.at, Some(Position { line: 5, column: 8 }));
        assert!(e.message.contains("needs an explicit security"), "{e}");
        let ok = parse_str(&format!(
            "{MIN}[smtp]\nhost = \"h\"\nport = 2525\nsecurity = \"starttls\"\n"
        ))
        .unwrap();
        assert!(matches!(
            ok.delivery,
            Delivery::Smtp(SmtpSettings { port: 2525, .. })
        ));
    }

    #[test]
    fn mismatched_port_and_security_is_refused() {
        let e = parse_str(&format!(
            "{MIN}[smtp]\nhost = \"h\"\nport = 465\nsecurity = \"starttls\"\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string().starts_with("config/account.toml:5:8: "),
            "{e}"
        );
    }

    #[test]
    fn plaintext_is_not_a_choice() {
        let e = parse_str(&format!(
            "{MIN}[smtp]\nhost = \"h\"\nport = 25\nsecurity = \"none\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("not one of"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_table_and_line() {
        let e = parse_str(&format!("{MIN}[smtp]\nhots = \"h\"\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config/account.toml:4:1: unknown key `hots` in [smtp]"
        );
        assert!(e.hint().unwrap().contains("host"), "{:?}", e.hint());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_str("[sender\nfrom = 1").unwrap_err();
        assert_eq!(e.at.map(|p| p.line), Some(1));
        assert!(e.message.starts_with("invalid TOML"), "{e}");
    }

    #[test]
    fn missing_from_is_reported() {
        let e = parse_str("[otp]\ndigits = 6\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config/account.toml: [sender] from is missing"
        );
    }

    #[test]
    fn bad_mailbox_is_reported_at_value() {
        let e = parse_str("[sender]\nfrom = \"not an address\"\n").unwrap_err();
        assert_eq!(e.at, Some(Position { line: 2, column: 8 }));
    }

    #[test]
    fn reply_policy() {
        let s = parse_str(MIN).unwrap();
        assert_eq!(s.reply, ReplyPolicy::default());
        let s = parse_str(&format!(
            "{MIN}[reply]\nrequire_authenticated = true\nauthserv_id = \"MX.Google.com\"\n"
        ))
        .unwrap();
        assert_eq!(s.reply.authserv_id.as_deref(), Some("mx.google.com"));
        let s = parse_str(&format!(
            "{MIN}[reply]\nrequire_authenticated = false\nauthserv_id = \"mx.example.org\"\n"
        ))
        .unwrap();
        assert_eq!(s.reply.authserv_id, None, "not required: not checked");
        let e = parse_str(&format!("{MIN}[reply]\nrequire_authenticated = true\n")).unwrap_err();
        assert_eq!(
            e.at,
            Some(Position {
                line: 4,
                column: 25
            })
        );
        assert!(e.message.contains("needs authserv_id"), "{}", e.message);
        let e = parse_str(&format!(
            "{MIN}[reply]\nrequire_authenticated = true\nauthserv_id = \"a b\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.at,
            Some(Position {
                line: 5,
                column: 15
            })
        );
        let e = parse_str(&format!("{MIN}[reply]\nrequire = true\n")).unwrap_err();
        assert!(
            e.message.contains("unknown key `require` in [reply]"),
            "{}",
            e.message
        );
    }

    #[test]
    fn short_keys_are_refused() {
        let e = parse_str(&format!("{MIN}[key]\nlength = 6\n")).unwrap_err();
        assert!(
            e.message.contains("[key] length = 6 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn password_sources_are_exclusive() {
        let e = parse_str(&format!(
            "{MIN}[smtp]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"P\"\npassword_command = \"echo\"\n"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("both password_env and password_command"),
            "{e}"
        );
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean(Path::new("config/../outbox")), Path::new("outbox"));
        assert_eq!(clean(Path::new("./../x/./y")), Path::new("../x/y"));
        assert_eq!(clean(Path::new("a/..")), Path::new("."));
        assert_eq!(clean(Path::new("/../a")), Path::new("/a"));
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let s = parse(
            Path::new("/etc/securemail/account.toml"),
            &format!("{MIN}[store]\npath = \"../var/codes.db\"\n[outbox]\ndir = \"/tmp/out\"\n"),
        )
        .unwrap();
        assert_eq!(s.store_path, Path::new("/etc/var/codes.db"));
        assert_eq!(s.outbox_dir, Path::new("/tmp/out"));
    }

    #[test]
    fn the_audit_log_is_on_by_default_beside_the_store() {
        let at = |extra: &str| {
            parse(
                Path::new("/etc/securemail/account.toml"),
                &format!("{MIN}[store]\npath = \"../var/codes.db\"\n{extra}"),
            )
        };
        let s = at("").unwrap();
        assert_eq!(
            s.audit_file.as_deref(),
            Some(Path::new("/etc/var/securemail-audit.log"))
        );
        let s = at("[audit]\nfile = \"audit/events.log\"\n").unwrap();
        assert_eq!(
            s.audit_file.as_deref(),
            Some(Path::new("/etc/securemail/audit/events.log"))
        );
        assert_eq!(at("[audit]\nenabled = false\n").unwrap().audit_file, None);
        let e = at("[audit]\nenabled = false\nfile = \"a.log\"\n").unwrap_err();
        assert!(e.message.contains("enabled = false"), "{e}");
        assert_eq!(e.at, Some(Position { line: 7, column: 8 }));
        let e = at("[audit]\nfile = \"\"\n").unwrap_err();
        assert!(e.message.contains("[audit] file is empty"), "{e}");
        let e = at("[audit]\nenable = false\n").unwrap_err();
        assert!(e.message.contains("enable"), "{e}");
    }
}
