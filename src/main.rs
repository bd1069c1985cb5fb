//! The `securemail` command: parse arguments, run, report the error once, exit with its code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use securemail::cli::Printer;

fn main() -> ExitCode {
    let cli = match securemail::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return securemail::cli::usage_error(&e),
    };
    let out = Printer::new(cli.json, cli.verbose);
    match securemail::run(cli, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
