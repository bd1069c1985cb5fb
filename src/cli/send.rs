//! `securemail send`: generate a code for one recipient, mail it, record it.
//!
//! Order matters: everything that can fail without side effects (arguments, templates, TLS
//! trust, password) is checked before the store is touched; the record is written as `sending`
//! before the mail leaves and becomes `pending` only once the server (or the outbox) has it, so a
//! failed send never supersedes the recipient's previous code.

use serde_json::json;

use super::{Output, SendArgs, unix_now, value_or_prompt};
use crate::CodeKind;
use crate::config::{Delivery, Settings};
use crate::error::Error;
use crate::message::{
    self, Code, Composed, MAX_SUBJECT_CHARS, Recipient, Templates, check_header_value,
};
use crate::store::{Material, Store};
use crate::transport::{Reply, SmtpTarget, TransportError, outbox};

/// How a mail left.
enum Delivered {
    Outbox(std::path::PathBuf),
    Smtp { reply: Reply, tls: String },
}

pub(super) fn run(settings: &Settings, out: Output, args: SendArgs) -> Result<(), Error> {
    let kind = if args.otp {
        CodeKind::Otp
    } else {
        CodeKind::Key
    };
    let to = value_or_prompt(args.to, "--to", "Recipient address")?;
    let to = Recipient::parse(&to, args.name.as_deref())?;
    let subject = args
        .subject
        .unwrap_or_else(|| message::default_subject(kind, &settings.otp.issuer));
    check_header_value("subject", &subject, MAX_SUBJECT_CHARS)?;
    let templates = Templates::load(&settings.templates_dir)?;

    if args.dry_run {
        let composed = message::compose(settings, &templates, kind, &to, &subject, unix_now())?;
        let path = outbox::write(&settings.outbox_dir, &composed.mail)?;
        out.human(&format!(
            "dry run: wrote the {} for {} to {} (nothing sent, nothing recorded)",
            kind.describe(),
            to.address,
            path.display()
        ));
        out.json(&json!({
            "recipient": to.address,
            "kind": kind.as_str(),
            "delivery": "dry-run",
            "path": path,
            "message_id": composed.mail.message_id,
        }));
        return Ok(());
    }

    let target = match &settings.delivery {
        Delivery::Outbox => None,
        Delivery::Smtp(s) => Some(SmtpTarget::prepare(s)?),
    };
    let mut store = Store::open(&settings.store_path)?;
    let composed = message::compose(settings, &templates, kind, &to, &subject, unix_now())?;
    let id = record(&mut store, &to, &composed)?;

    let delivered = match &target {
        None => outbox::write(&settings.outbox_dir, &composed.mail).map(Delivered::Outbox),
        Some(t) => smtp_send(t, &composed, out),
    };
    let delivered = match delivered {
        Ok(d) => d,
        Err(e) => {
            // The mail never left: the record must never verify. The send error is what matters.
            let _ = store.mark_failed(id, unix_now());
            return Err(e.into());
        }
    };
    store.mark_delivered(id, unix_now())?;

    let expires = message::human_time(composed.expires);
    let mut report = json!({
        "recipient": to.address,
        "kind": kind.as_str(),
        "message_id": composed.mail.message_id,
        "expires": composed.expires,
    });
    match delivered {
        Delivered::Outbox(path) => {
            out.human(&format!(
                "wrote the {} for {} to {} (no [smtp] in {}); it expires {expires}",
                kind.describe(),
                to.address,
                path.display(),
                settings.config_path.display()
            ));
            report["delivery"] = json!("outbox");
            report["path"] = json!(path);
        }
        Delivered::Smtp { reply, tls } => {
            let s = target.as_ref().map(|t| &t.settings);
            let server = s
                .map(|s| format!("{}:{}", s.host, s.port))
                .unwrap_or_default();
            out.human(&format!(
                "sent the {} to {} via {server} ({tls}): {reply}; it expires {expires}",
                kind.describe(),
                to.address,
            ));
            report["delivery"] = json!("smtp");
            report["server"] = json!(server);
            report["tls"] = json!(tls);
            report["reply"] = json!(reply.to_string());
        }
    }
    out.json(&report);
    Ok(())
}

/// Stores the new code in state `sending`.
fn record(store: &mut Store, to: &Recipient, composed: &Composed) -> Result<i64, Error> {
    let id = match &composed.code {
        Code::Otp(otp) => {
            let secret = otp.secret_bytes();
            let params = otp.params();
            store.insert_sending(
                &to.address,
                Material::Otp(&secret, params),
                composed.created,
                composed.expires,
                &composed.mail.message_id,
            )?
        }
        Code::Key(k) => store.insert_sending(
            &to.address,
            Material::Key(k),
            composed.created,
            composed.expires,
            &composed.mail.message_id,
        )?,
    };
    Ok(id)
}

fn smtp_send(
    target: &SmtpTarget,
    composed: &Composed,
    out: Output,
) -> Result<Delivered, TransportError> {
    let mut session = target.open(out.smtp_trace())?;
    let tls = session.tls().map(|t| t.version.clone()).unwrap_or_default();
    let mail = &composed.mail;
    let reply = session.send(&mail.from, &mail.to, mail.bytes.expose())?;
    session.quit();
    Ok(Delivered::Smtp { reply, tls })
}
