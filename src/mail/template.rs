//! The four mail templates (`otp.{txt,html}`, `key.{txt,html}`), compiled with minijinja.
//!
//! The templates shipped in `templates/` are built into the binary ([`BUILT_IN`]), so an
//! installed `securemail` needs no files beside it. `[templates] dir` overrides them file by
//! file: a directory holding only `otp.html` changes that one and keeps the other three.
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

/// The templates shipped in the repository's `templates/`, as built into the binary.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("otp.txt", include_str!("../../templates/otp.txt")),
    ("otp.html", include_str!("../../templates/otp.html")),
    ("key.txt", include_str!("../../templates/key.txt")),
    ("key.html", include_str!("../../templates/key.html")),
];

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

fn built_in(name: &str) -> &'static str {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, body)| body)
}

/// One template's text and where it came from: a file of the override directory, or `None`
/// for the built-in one.
struct Source {
    text: String,
    file: Option<PathBuf>,
}

impl Source {
    /// `name` from `dir` if it is there, else the built-in one. A directory that cannot be
    /// read at all is an error: the config names it, so it is meant to be used.
    fn read(dir: Option<&Path>, name: &'static str) -> Result<Source, MailError> {
        let Some(dir) = dir else {
            return Ok(Source::built_in(name));
        };
        if let Err(e) = std::fs::read_dir(dir) {
            return Err(MailError::TemplateDir {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Source {
                text,
                file: Some(path),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Source::built_in(name)),
            Err(e) => Err(MailError::TemplateRead { path, source: e }),
        }
    }

    fn built_in(name: &'static str) -> Source {
        Source {
            text: built_in(name).to_string(),
            file: None,
        }
    }
}

/// How a template is named in messages: its file, or `built-in otp.html`.
fn label(file: Option<&Path>, name: &str) -> PathBuf {
    file.map_or_else(
        || PathBuf::from(format!("built-in {name}")),
        Path::to_path_buf,
    )
}

/// The text of the four templates as `load` would use them (overrides, else built in);
/// unreadable files are left out. `reply` recognises quoted mails by them.
pub fn texts(dir: Option<&Path>) -> Vec<String> {
    BUILT_IN
        .iter()
        .filter_map(|(name, _)| Source::read(dir, name).ok().map(|s| s.text))
        .collect()
}

/// The four templates, compiled and checked.
pub struct Templates {
    env: Environment<'static>,
    /// Per template name, the file it came from (`None`: built in).
    files: BTreeMap<&'static str, Option<PathBuf>>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files)
            .finish()
    }
}

impl Templates {
    /// Compiles and checks the four templates: each from `dir` when it holds that file, else
    /// the built-in one.
    pub fn load(dir: Option<&Path>) -> Result<Templates, MailError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Auto-escape by file extension: .html escaped, .txt verbatim.
        env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
        let mut files = BTreeMap::new();
        for kind in [CodeKind::Otp, CodeKind::Key] {
            for name in template_names(kind) {
                let source = Source::read(dir, name)?;
                let path = label(source.file.as_deref(), name);
                add_checked(&mut env, kind, name, source.text, &path)?;
                files.insert(name, source.file);
            }
        }
        Ok(Templates { env, files })
    }

    /// Where template `name` came from, for messages.
    fn path(&self, name: &str) -> PathBuf {
        label(self.files.get(name).and_then(Option::as_deref), name)
    }

    /// Renders the text and HTML bodies for `kind`.
    pub fn render(&self, kind: CodeKind, vars: &TemplateVars<'_>) -> Result<Bodies, MailError> {
        let ctx = vars.to_value(kind);
        let [txt, html] = template_names(kind);
        let render = |name: &str| -> Result<Secret<String>, MailError> {
            let path = self.path(name);
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

/// Compiles `source` as template `name` and refuses variables securemail does not provide.
fn add_checked(
    env: &mut Environment<'static>,
    kind: CodeKind,
    name: &'static str,
    source: String,
    path: &Path,
) -> Result<(), MailError> {
    let syntax = |e: minijinja::Error| MailError::TemplateSyntax {
        path: path.to_path_buf(),
        detail: describe(&e),
    };
    env.add_template_owned(name, source).map_err(syntax)?;
    let tmpl = env.get_template(name).map_err(syntax)?;
    let available = vars_for(kind);
    let globals: Vec<String> = env.globals().map(|(n, _)| n.to_string()).collect();
    let mut unknown: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !available.contains(&v.as_str()) && !globals.contains(v))
        .collect();
    unknown.sort();
    match unknown.into_iter().next() {
        Some(variable) => Err(MailError::UnknownVariable {
            path: path.to_path_buf(),
            variable,
            available: available.join(", "),
        }),
        None => Ok(()),
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
        let t = Templates::load(Some(&d)).unwrap();
        let b = t.render(CodeKind::Otp, &vars("<b>&")).unwrap();
        assert_eq!(b.html.expose(), "<p>&lt;b&gt;&amp;</p>");
        assert_eq!(b.text.expose(), "Hi <b>&: ABCD EFGH 6");
    }

    #[test]
    fn unknown_variable_names_template_and_variable() {
        let (_t, d) = tmp();
        write_templates(&d, "<p>{{ nmae }}</p>");
        let e = Templates::load(Some(&d)).unwrap_err();
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
    fn built_in_templates_load_and_carry_the_code() {
        let t = Templates::load(None).unwrap();
        for kind in [CodeKind::Otp, CodeKind::Key] {
            let b = t.render(kind, &vars("Kim")).unwrap();
            assert!(b.text.expose().contains("ABCD EFGH"), "{kind:?}");
            assert!(b.html.expose().contains("cid:qr.1@example.org"), "{kind:?}");
        }
    }

    #[test]
    fn a_partial_override_replaces_only_its_file() {
        let (_t, d) = tmp();
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("otp.html"), "<p>mine {{ secret }}</p>").unwrap();
        let t = Templates::load(Some(&d)).unwrap();
        let b = t.render(CodeKind::Otp, &vars("Kim")).unwrap();
        assert_eq!(b.html.expose(), "<p>mine ABCD EFGH</p>");
        let builtin = Templates::load(None).unwrap();
        let expected = builtin.render(CodeKind::Otp, &vars("Kim")).unwrap();
        assert_eq!(b.text.expose(), expected.text.expose());
        // An unknown variable in an override names the file.
        std::fs::write(d.join("key.txt"), "{{ nope }}").unwrap();
        let e = Templates::load(Some(&d)).unwrap_err();
        assert!(
            e.to_string().contains("key.txt uses the variable `nope`"),
            "{e}"
        );
        // A missing directory is an error, not a silent fallback.
        let e = Templates::load(Some(&d.join("absent"))).unwrap_err();
        assert!(matches!(e, MailError::TemplateDir { .. }), "{e}");
    }

    #[test]
    fn key_templates_cannot_use_otp_variables() {
        let (_t, d) = tmp();
        write_templates(&d, "<p>ok</p>");
        std::fs::write(d.join("key.txt"), "{{ secret }}").unwrap();
        let e = Templates::load(Some(&d)).unwrap_err();
        assert!(
            matches!(e, MailError::UnknownVariable { ref variable, .. } if variable == "secret")
        );
    }
}
