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
        clap_complete::generate(self.shell, &mut cmd, "securemail", &mut std::io::stdout());
        Ok(())
    }
}
