//! The configuration file as written: serde structs that mirror `account.toml`, with spans kept
//! so that every later check can point at the line and column of the value it refuses.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) sender: Option<RawSender>,
    pub(super) smtp: Option<Spanned<RawSmtp>>,
    #[serde(default)]
    pub(super) outbox: RawOutbox,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) otp: RawOtp,
    #[serde(default)]
    pub(super) key: RawKey,
    #[serde(default)]
    pub(super) verify: RawVerify,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) templates: RawTemplates,
    pub(super) dkim: Option<Spanned<RawDkim>>,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) audit: RawAudit,
    pub(super) reply: Option<Spanned<RawReply>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReply {
    pub(super) require_authenticated: Option<Spanned<bool>>,
    pub(super) authserv_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub(super) domain: Option<Spanned<String>>,
    pub(super) selector: Option<Spanned<String>>,
    pub(super) private_key_file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) file: Option<Spanned<String>>,
    pub(super) enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSender {
    pub(super) from: Option<Spanned<String>>,
    pub(super) reply_to: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) security: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) password_command: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) timeout_secs: Option<Spanned<i64>>,
    pub(super) hello_name: Option<Spanned<String>>,
    pub(super) connections: Option<Spanned<i64>>,
    pub(super) max_per_minute: Option<Spanned<i64>>,
    pub(super) retries: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbox {
    pub(super) dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) password_command: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) lock_timeout: Option<Spanned<String>>,
    pub(super) lease: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOtp {
    pub(super) issuer: Option<Spanned<String>>,
    pub(super) digits: Option<Spanned<i64>>,
    pub(super) period: Option<Spanned<i64>>,
    pub(super) algorithm: Option<Spanned<String>>,
    pub(super) skew: Option<Spanned<i64>>,
    pub(super) ttl: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) length: Option<Spanned<i64>>,
    pub(super) ttl: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    pub(super) max_attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) resend_cooldown: Option<Spanned<String>>,
    pub(super) codes_per_day: Option<Spanned<i64>>,
    pub(super) wrong_attempts_per_day: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub(super) dir: Option<Spanned<String>>,
}
