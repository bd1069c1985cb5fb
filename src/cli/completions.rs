//! `securemail completions SHELL`: shell completions generated from the clap definitions.

use clap::Args;

use super::Cli;
use crate::error::Error;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl CompletionsArgs {
    pub fn execute(self) -> Result<(), Error> {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        // Into memory first: clap_complete panics when its writer fails (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "securemail", &mut script);
        super::output::write_stdout(&script);
        Ok(())
    }
}
