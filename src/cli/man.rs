//! `securemail man`: the manual page (roff), generated from the clap definitions.

use std::io::Write;

use super::Cli;
use crate::error::Error;

/// Writes the page to stdout.
pub fn execute() -> Result<(), Error> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(Error::Prompt)?;
    let _ = std::io::stdout().write_all(&page);
    Ok(())
}
