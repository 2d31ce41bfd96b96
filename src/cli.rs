//! Command-line parsing shared by `uringfs` and `uringfs audit`: a usage error is one line on
//! stderr and exit code 1, before anything is mounted.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parses `argv` (program name first) into `P`. `--help`/`--version` print and give
/// `Err(SUCCESS)`; any other error prints `PROGRAM: <first line>` and gives `Err(1)`.
///
/// # Errors
/// The exit code to return at once.
pub fn parse<P: Parser>(
    program: &str,
    argv: impl IntoIterator<Item = OsString>,
) -> Result<P, ExitCode> {
    match P::try_parse_from(argv) {
        Ok(parsed) => Ok(parsed),
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            Err(ExitCode::SUCCESS)
        }
        Err(err) => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{program}: {}", first.trim_start_matches("error: "));
            Err(ExitCode::from(1))
        }
    }
}
