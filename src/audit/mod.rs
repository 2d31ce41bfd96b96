//! `uringfs audit`: trace the daemon's own syscalls under a workload and report them.
//!
//! The audit mounts a scratch mirror with this very binary (or attaches to a running daemon
//! with `--pid`), attaches `strace -f -y -ttt -T` to every daemon thread once the mount is live,
//! runs the chosen workloads through the mount, unmounts, and turns the trace into a Markdown
//! report: syscall totals by category, path-based (TOCTOU-exposed) versus fd-relative calls,
//! statx/open/metadata calls per file, io_uring batching (from strace and from the daemon's
//! own counters), direct data I/O on backing files, a score and PASS/WARN/FAIL targets.
//! docs/AUDIT.md explains how to read it.
//!
//! Exit codes: 0 done (and with `--check`, all checked targets met), 1 error (one line on
//! stderr; nothing is left mounted), 2 `--check` found a missed target.

mod analysis;
mod classify;
mod counters;
mod daemon;
mod options;
mod report;
mod run;
mod score;
mod trace;
mod tracer;
mod transport;
mod workload;

use std::ffi::OsString;
use std::io::{Seek as _, Write as _};
use std::process::ExitCode;

pub use options::{AuditArgs, WorkloadKind, parse_size};

/// Runs `uringfs audit ARGS...` (`args` are the arguments after `audit`).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("uringfs audit")).chain(args.iter().cloned());
    let parsed: AuditArgs = match crate::cli::parse("uringfs audit", argv) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let outcome = match run::run(&parsed, &args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("uringfs audit: {msg}");
            return ExitCode::from(1);
        }
    };
    let written = match outcome.output {
        Some(mut file) => file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(outcome.report.as_bytes())),
        None => std::io::stdout().write_all(outcome.report.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!("uringfs audit: cannot write the report: {e}");
        return ExitCode::from(1);
    }
    if parsed.check && !outcome.failures.is_empty() {
        eprintln!(
            "uringfs audit: check failed: {}",
            outcome.failures.join("; ")
        );
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
