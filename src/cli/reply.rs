//! `securemail reply`: check the code a recipient sent back.

use serde_json::json;

use super::{Output, ReplyArgs, value_or_prompt};
use crate::CodeKind;
use crate::config::Settings;
use crate::error::Error;
use crate::message::Recipient;
use crate::store::Store;
use crate::unix_now;
use crate::verify::{self, VerifyError};

pub(super) fn run(settings: &Settings, out: Output, args: ReplyArgs) -> Result<(), Error> {
    let to = value_or_prompt(args.to, "--to", "Recipient address")?;
    let to = Recipient::parse(&to, None)?;
    let code = value_or_prompt(args.code, "--code", "Code")?;
    if code.chars().count() > 256 || code.chars().any(char::is_control) {
        return Err(Error::Input {
            message: "the code is not a one-time code (too long or has control characters)".into(),
            hint: Some(
                "pass the digits from the authenticator app, or the key from the mail".into(),
            ),
        });
    }

    let mut store = Store::open(&settings.store_path)?;
    match verify::verify(&mut store, settings, &to.address, &code, unix_now()) {
        Ok(accepted) => {
            let what = match (accepted.kind, accepted.first) {
                (CodeKind::Otp, true) => "TOTP enrolment confirmed",
                (CodeKind::Otp, false) => "TOTP code accepted",
                (CodeKind::Key, _) => "key accepted (now used up)",
            };
            out.human(&format!("accepted: {} — {what}", accepted.recipient));
            out.json(&json!({
                "recipient": accepted.recipient,
                "kind": accepted.kind.as_str(),
                "result": "accepted",
                "confirmed_enrolment": accepted.kind == CodeKind::Otp && accepted.first,
            }));
            Ok(())
        }
        Err(VerifyError::Refused(r)) => {
            out.json(&json!({
                "recipient": to.address,
                "result": "refused",
                "reason": r.reason(),
            }));
            Err(Error::Refused(r))
        }
        Err(e) => Err(e.into()),
    }
}
