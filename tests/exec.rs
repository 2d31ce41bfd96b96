//! Executing files as another user: execute permission is what exec needs, natively and
//! through the mount; read permission is what reading (and an interpreter) needs.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// A copy of `/bin/true` and a `#!` script under `dir`, owned by root, mode `mode`.
fn programs(dir: &Path, mode: u32) {
    let bin = dir.join("prog");
    fs::copy("/bin/true", &bin).expect("copy /bin/true");
    chmod(&bin, mode).unwrap();
    let script = dir.join("script");
    fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    chmod(&script, mode).unwrap();
}

/// (exit code, stdout) of `sh -c cmd` as the unprivileged user.
fn user_runs(cmd: &str) -> (Option<i32>, String) {
    let out = run_as(USER, GROUP, cmd);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn exec_permissions(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    for mode in [0o711, 0o755, 0o744, 0o700] {
        for dir in [&g.native, &g.mnt] {
            programs(dir, mode);
        }
        for (what, cmd) in [
            ("run the binary", "\"$D/prog\" && echo ok"),
            ("run the script", "\"$D/script\""),
            ("read the binary", "cat \"$D/prog\" >/dev/null && echo read"),
            ("read the script", "cat \"$D/script\""),
        ] {
            let native = user_runs(&cmd.replace("$D", &g.native.to_string_lossy()));
            let mount = user_runs(&cmd.replace("$D", &g.mnt.to_string_lossy()));
            assert_eq!(
                mount, native,
                "{what} with mode {mode:o}: mount differs from native ext4"
            );
        }
    }
}

/// Mode 0711: the user runs the binary (execute is enough) but may not read it, and the script
/// fails as natively (its interpreter must read it). 0755, 0744 and 0700 for contrast.
#[test]
fn execute_only_files_run_but_do_not_read_default() {
    exec_permissions(&[]);
}

#[test]
fn execute_only_files_run_but_do_not_read_without_default_permissions() {
    exec_permissions(&["nodefault_permissions"]);
}

#[test]
fn execute_only_files_run_but_do_not_read_cache_none() {
    exec_permissions(&["cache=none"]);
}

#[test]
fn execute_only_files_run_but_do_not_read_passthrough() {
    exec_permissions(&["passthrough"]);
}
