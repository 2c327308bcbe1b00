//! The `docket` command line. This file only parses and dispatches; each
//! subcommand lives in `cli/<name>.rs`.
//!
//! Exit codes: 0 success (for `step run`: the step continued or routed),
//! 1 the step rejected the case, 2 a failure or a usage error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    cli::init_tracing(args.verbose);
    match args.command.run() {
        Ok(code) => code,
        Err(err) => {
            #[allow(clippy::print_stderr, reason = "the CLI reports errors on stderr")]
            {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}
