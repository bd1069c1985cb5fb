//! `securemail templates export DIR`: the templates built into the binary, written out for
//! editing. Point `[templates] dir` at DIR afterwards; files removed from DIR fall back to the
//! built-in ones.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Printer;
use crate::error::Error;
use crate::mail::template::BUILT_IN;

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub action: TemplatesAction,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// Write otp.txt, otp.html, key.txt and key.html (0644) into DIR, creating it if needed.
    Export {
        /// Directory to write to.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Replace templates already in DIR.
        #[arg(long)]
        force: bool,
    },
}

/// `{"type":"template","path":"…"}`: one file written.
#[derive(Serialize)]
#[serde(tag = "type", rename = "template")]
struct Written<'a> {
    path: &'a Path,
}

impl TemplatesArgs {
    pub fn execute(self, out: Printer) -> Result<(), Error> {
        match self.action {
            TemplatesAction::Export { dir, force } => export(&dir, force, out),
        }
    }
}

fn export(dir: &Path, force: bool, out: Printer) -> Result<(), Error> {
    let io = |p: &Path, e: std::io::Error| Error::Input {
        message: format!("cannot write {}: {}", p.display(), crate::io_reason(&e)),
        hint: None,
    };
    // Refuse before writing anything, so that a refusal leaves DIR as it was.
    if !force {
        let present: Vec<String> = BUILT_IN
            .iter()
            .map(|(name, _)| dir.join(name))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !present.is_empty() {
            return Err(Error::Exists {
                message: format!(
                    "{} already exist{}",
                    present.join(", "),
                    match present.len() {
                        1 => "s",
                        _ => "",
                    }
                ),
                hint: "pass --force to replace them, or export to another directory".into(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, body) in BUILT_IN {
        let path = dir.join(name);
        crate::files::write_whole(&path, body.as_bytes(), 0o644, force)
            .map_err(|e| io(&path, e))?;
        out.emit(&Written { path: &path }, || {
            Some(format!("wrote {}", path.display()))
        });
    }
    out.human(&format!(
        "to use them, set [templates] dir = \"{}\" in the configuration",
        dir.display()
    ));
    Ok(())
}
