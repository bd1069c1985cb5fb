//! The four mail templates (`otp.{txt,html}`, `key.{txt,html}`), compiled with minijinja.
//!
//! Templates are loaded and checked once ([`Templates::load`]): a variable securemail does not
//! provide is an error naming the template and the variable, before anything is generated or
//! sent. HTML templates are auto-escaped; text templates are not.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};

use super::error::MailError;
use crate::CodeKind;
use crate::secret::Secret;

/// Variables every template gets.
const COMMON_VARS: &[&str] = &[
    "name",
    "recipient",
    "issuer",
    "sender",
    "sender_address",
    "expires",
    "valid_for",
    "qr_cid",
    "qr_size",
];
const OTP_VARS: &[&str] = &["secret", "digits", "period"];
const KEY_VARS: &[&str] = &["key"];

fn template_names(kind: CodeKind) -> [&'static str; 2] {
    match kind {
        CodeKind::Otp => ["otp.txt", "otp.html"],
        CodeKind::Key => ["key.txt", "key.html"],
    }
}

fn vars_for(kind: CodeKind) -> Vec<&'static str> {
    let extra = match kind {
        CodeKind::Otp => OTP_VARS,
        CodeKind::Key => KEY_VARS,
    };
    COMMON_VARS.iter().chain(extra).copied().collect()
}

/// The four templates, compiled and checked.
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish()
    }
}

impl Templates {
    /// Reads and compiles `otp.{txt,html}` and `key.{txt,html}` from `dir`.
    pub fn load(dir: &Path) -> Result<Templates, MailError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Auto-escape by file extension: .html escaped, .txt verbatim.
        env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
        for kind in [CodeKind::Otp, CodeKind::Key] {
            let available = vars_for(kind);
            for name in template_names(kind) {
                let path = dir.join(name);
                let source =
                    std::fs::read_to_string(&path).map_err(|e| MailError::TemplateRead {
                        path: path.clone(),
                        source: e,
                    })?;
                env.add_template_owned(name, source)
                    .map_err(|e| MailError::TemplateSyntax {
                        path: path.clone(),
                        detail: describe(&e),
                    })?;
                let tmpl = env
                    .get_template(name)
                    .map_err(|e| MailError::TemplateSyntax {
                        path: path.clone(),
                        detail: describe(&e),
                    })?;
                let globals: Vec<String> = env.globals().map(|(n, _)| n.to_string()).collect();
                let mut unknown: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !available.contains(&v.as_str()) && !globals.contains(v))
                    .collect();
                unknown.sort();
                if let Some(variable) = unknown.into_iter().next() {
                    return Err(MailError::UnknownVariable {
                        path,
                        variable,
                        available: available.join(", "),
                    });
                }
            }
        }
        Ok(Templates {
            env,
            dir: dir.to_path_buf(),
        })
    }

    /// Renders the text and HTML bodies for `kind`.
    pub fn render(&self, kind: CodeKind, vars: &TemplateVars<'_>) -> Result<Bodies, MailError> {
        let ctx = vars.to_value(kind);
        let [txt, html] = template_names(kind);
        let render = |name: &str| -> Result<Secret<String>, MailError> {
            let path = self.dir.join(name);
            let tmpl = self.env.get_template(name).map_err(|e| MailError::Render {
                path: path.clone(),
                detail: describe(&e),
            })?;
            tmpl.render(&ctx)
                .map(Secret::new)
                .map_err(|e| MailError::Render {
                    path,
                    detail: describe(&e),
                })
        };
        Ok(Bodies {
            text: render(txt)?,
            html: render(html)?,
        })
    }
}

/// minijinja's error without the source excerpt (which could show template text at length).
fn describe(e: &minijinja::Error) -> String {
    let mut s = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// Rendered bodies. They contain the secret.
pub struct Bodies {
    pub text: Secret<String>,
    pub html: Secret<String>,
}

/// What the templates can say.
pub struct TemplateVars<'a> {
    pub name: &'a str,
    pub recipient: &'a str,
    pub issuer: &'a str,
    pub sender: &'a str,
    /// The From address, for "if you did not expect this mail, tell …".
    pub sender_address: &'a str,
    /// The absolute expiry time in UTC (`2026-11-25 10:49 UTC`).
    pub expires: &'a str,
    /// The validity as a duration (`24 hours`).
    pub valid_for: &'a str,
    pub qr_cid: &'a str,
    pub qr_size: u32,
    /// The secret (base32, grouped) or key (grouped) shown in the bodies.
    pub code_text: &'a str,
    pub digits: u8,
    pub period: u64,
}

impl TemplateVars<'_> {
    fn to_value(&self, kind: CodeKind) -> Value {
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        m.insert("name", Value::from(self.name));
        m.insert("recipient", Value::from(self.recipient));
        m.insert("issuer", Value::from(self.issuer));
        m.insert("sender", Value::from(self.sender));
        m.insert("sender_address", Value::from(self.sender_address));
        m.insert("expires", Value::from(self.expires));
        m.insert("valid_for", Value::from(self.valid_for));
        m.insert("qr_cid", Value::from(self.qr_cid));
        m.insert("qr_size", Value::from(self.qr_size));
        match kind {
            CodeKind::Otp => {
                m.insert("secret", Value::from(self.code_text));
                m.insert("digits", Value::from(self.digits));
                m.insert("period", Value::from(self.period));
            }
            CodeKind::Key => {
                m.insert("key", Value::from(self.code_text));
            }
        }
        Value::from(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_templates(dir: &Path, otp_html: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("otp.txt"),
            "Hi {{ name }}: {{ secret }} {{ digits }}",
        )
        .unwrap();
        std::fs::write(dir.join("otp.html"), otp_html).unwrap();
        std::fs::write(dir.join("key.txt"), "{{ key }}").unwrap();
        std::fs::write(
            dir.join("key.html"),
            "<p>{{ key }}</p><img src=\"cid:{{ qr_cid }}\">",
        )
        .unwrap();
    }

    /// A fresh templates directory (not yet created) in a temporary directory removed on drop.
    fn tmp() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("templates");
        (t, d)
    }

    fn vars<'a>(name: &'a str) -> TemplateVars<'a> {
        TemplateVars {
            name,
            recipient: "a@example.org",
            issuer: "Example",
            sender: "Admin",
            sender_address: "admin@example.org",
            expires: "2026-01-01 00:00 UTC",
            valid_for: "24 hours",
            qr_cid: "qr.1@example.org",
            qr_size: 200,
            code_text: "ABCD EFGH",
            digits: 6,
            period: 30,
        }
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let (_t, d) = tmp();
        write_templates(&d, "<p>{{ name }}</p>");
        let t = Templates::load(&d).unwrap();
        let b = t.render(CodeKind::Otp, &vars("<b>&")).unwrap();
        assert_eq!(b.html.expose(), "<p>&lt;b&gt;&amp;</p>");
        assert_eq!(b.text.expose(), "Hi <b>&: ABCD EFGH 6");
    }

    #[test]
    fn unknown_variable_names_template_and_variable() {
        let (_t, d) = tmp();
        write_templates(&d, "<p>{{ nmae }}</p>");
        let e = Templates::load(&d).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "template {} uses the variable `nmae`, which securemail does not provide",
                d.join("otp.html").display()
            )
        );
        assert!(e.hint().unwrap().contains("name, recipient"));
    }

    #[test]
    fn key_templates_cannot_use_otp_variables() {
        let (_t, d) = tmp();
        write_templates(&d, "<p>ok</p>");
        std::fs::write(d.join("key.txt"), "{{ secret }}").unwrap();
        let e = Templates::load(&d).unwrap_err();
        assert!(
            matches!(e, MailError::UnknownVariable { ref variable, .. } if variable == "secret")
        );
    }
}
