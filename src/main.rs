//! The `securemail` command: parse arguments, run, report the error once, exit with its code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match securemail::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return securemail::cli::usage_error(&e),
    };
    match securemail::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("securemail: error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
