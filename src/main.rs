//! pyscry: a sampling profiler for CPython that reads a running interpreter from the
//! outside. This file only parses the command line, dispatches, and turns errors into
//! messages and exit codes; everything else is in the library (`src/lib.rs`).

use clap::Parser;
use pyscry::{cli, commands};

fn main() {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Record(args) => commands::record::run(args),
        cli::Command::Dump(args) => commands::dump::run(args),
        cli::Command::Top(args) => commands::top::run(args),
        cli::Command::Report(args) => commands::report::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        // As other command-line tools do when their reader stops reading.
        Err(error) if error.is_broken_pipe() => std::process::exit(0),
        Err(error) => {
            eprintln!("pyscry: error: {error}");
            std::process::exit(error.exit_code());
        }
    }
}
