//! `uringfs audit`: the full run gated by `--check`, and its error contract.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// The tests check that no audit mount is left behind, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Whether strace can run. Under `CI=true` a missing strace is a broken CI and panics loudly;
/// elsewhere the test reports the skip in the runner's output ([`skip`]).
fn require_strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || skip("strace is not installed (apt-get install -y strace); the audit test needs it")
}

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uringfs"))
        .arg("audit")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run uringfs audit")
}

/// Mounts of scratch trees the audit made and failed to remove.
fn leftover_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("uringfs-audit."))
        .map(str::to_string)
        .collect()
}

#[test]
fn audit_all_meets_its_targets() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !require_root_and_fuse() || !require_strace() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(dir).expect("target tmpdir");
    let report_path = dir.join("audit-all-50x4k.md");
    let _ = fs::remove_file(&report_path);
    let out = audit(&[
        "--workload",
        "all",
        "--files",
        "50",
        "--size",
        "4k",
        "--check",
        "--output",
        report_path.to_str().expect("utf-8 path"),
        "--scratch",
        dir.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = fs::read_to_string(&report_path).unwrap_or_default();
    let targets = report
        .split("## Targets")
        .nth(1)
        .and_then(|t| t.split("## ").next())
        .unwrap_or("(no targets section)");
    assert!(leftover_mounts().is_empty(), "audit left a mount behind");
    assert!(
        out.status.success(),
        "uringfs audit --check exited {:?}: {stderr}\ntargets:{targets}\nfull report: {}",
        out.status.code(),
        report_path.display()
    );
    for headline in [
        "| path-based calls (window) | 0 | 0 |",
        "| possible symlink follows |",
        "| statx per new file (copy; beyond one per getattr/setattr reply) |",
        "| direct reads/writes on backing files | 0 | 0 |",
        "| SQEs per io_uring_enter (strace) |",
        "| SQEs per io_uring_enter (daemon counters) |",
        "| security score |",
        "## Reproduce",
    ] {
        assert!(
            report.contains(headline),
            "report lacks {headline:?}:\n{report}"
        );
    }
    assert!(
        !report.contains("(daemon counters) | unavailable"),
        "the daemon's unmount counters were not read:\n{report}"
    );
}

/// Asserts the error contract: exit 1, one non-empty stderr line, no report written.
#[track_caller]
fn assert_one_line_error(args: &[&str], mentions: &str) {
    let out = audit(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: stderr {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got {stderr:?}");
    assert!(
        lines[0].contains(mentions),
        "{args:?}: {:?} does not mention {mentions:?}",
        lines[0]
    );
    assert!(leftover_mounts().is_empty(), "{args:?} left a mount behind");
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !require_strace() {
        return;
    }
    // pid 1 is init (or the container's first process), never a uringfs daemon.
    assert_one_line_error(&["--pid", "1", "--files", "1"], "not a uringfs daemon");
    assert_one_line_error(&["--pid", "4194304", "--files", "1"], "no process");
    assert_one_line_error(
        &["--files", "1", "--output", "/proc/no/such/dir/report.md"],
        "cannot write the report",
    );
    assert_one_line_error(&["--size", "12q"], "invalid size");
    assert_one_line_error(&["--workload", "dance"], "dance");
}
