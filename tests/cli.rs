//! The command line contract: errors before mounting, daemon mode, signals, and `-o` options.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args`, expecting it to exit by itself within the mount timeout.
/// Returns (exit code, stderr). If it is still running it is killed, whatever it mounted at
/// `mnt` is detached, and the test fails.
fn run_expect_exit(args: &[&OsStr], mnt: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn uringfs");
    let status = wait_timeout(&mut child, MOUNT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        if is_mounted(mnt) {
            lazy_unmount(mnt);
        }
        panic!("uringfs {args:?} kept running instead of exiting with an error");
    }
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr pipe")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.and_then(|s| s.code()), stderr)
}

/// Asserts the pre-mount error contract: exit code 1, exactly one non-empty stderr line, and
/// nothing mounted.
#[track_caller]
fn assert_usage_error(args: &[&OsStr], mnt: &Path) {
    let (code, stderr) = run_expect_exit(args, mnt);
    let mounted = is_mounted(mnt);
    if mounted {
        lazy_unmount(mnt);
    }
    assert_eq!(code, Some(1), "exit code for {args:?}; stderr: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr of {args:?} must be exactly one line, got {stderr:?}"
    );
    assert!(!lines[0].trim().is_empty(), "empty error line for {args:?}");
    assert!(!mounted, "{args:?} mounted something at {}", mnt.display());
}

#[test]
fn unknown_option_is_one_line_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let s = Scratch::new();
    for opt in ["no_such_option", "allow_other,bogus=1", "cache=sometimes"] {
        assert_usage_error(
            &[
                OsStr::new("-f"),
                OsStr::new("-o"),
                OsStr::new(opt),
                s.backing.as_os_str(),
                s.mnt.as_os_str(),
            ],
            &s.mnt,
        );
    }
}

#[test]
fn missing_backing_is_one_line_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let s = Scratch::new();
    let missing = s.root.join("does-not-exist");
    assert_usage_error(
        &[OsStr::new("-f"), missing.as_os_str(), s.mnt.as_os_str()],
        &s.mnt,
    );
}

#[test]
fn backing_that_is_a_file_is_one_line_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let s = Scratch::new();
    let file = s.root.join("a-file");
    fs::write(&file, b"not a dir").unwrap();
    assert_usage_error(
        &[OsStr::new("-f"), file.as_os_str(), s.mnt.as_os_str()],
        &s.mnt,
    );
}

#[test]
fn missing_mountpoint_is_one_line_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let s = Scratch::new();
    let missing = s.root.join("no-mountpoint");
    assert_usage_error(
        &[OsStr::new("-f"), s.backing.as_os_str(), missing.as_os_str()],
        &missing,
    );
    assert!(
        !missing.exists(),
        "the missing mount point must not be created"
    );
}

/// Pids of live processes whose command line mentions `needle` (used to find the daemon that
/// the non-foreground mode leaves behind).
fn pids_mentioning(needle: &Path) -> Vec<i32> {
    let needle = needle.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline"))
            && cmdline.split(|&b| b == 0).any(|arg| arg == needle)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn daemon_mode_returns_once_mounted_and_exits_on_unmount() {
    if !require_root_and_fuse() {
        return;
    }
    let s = Scratch::new();
    fs::write(s.backing.join("hello"), b"hello world\n").unwrap();
    let log = s.root.join("daemon.log");
    let logfile = fs::File::create(&log).unwrap();
    // Output goes to a file: a daemon that keeps the inherited stderr open would block a pipe.
    let mut child = Command::new(bin())
        .arg("-o")
        .arg("allow_other")
        .arg(&s.backing)
        .arg(&s.mnt)
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().unwrap())
        .stderr(logfile)
        .spawn()
        .expect("spawn uringfs");
    let status = wait_timeout(&mut child, MOUNT_TIMEOUT);
    // Check the mount immediately: the parent must not exit before it is live.
    let mounted = is_fuse_mounted(&s.mnt);
    let read = fs::read(s.mnt.join("hello"));
    let daemons = pids_mentioning(&s.mnt);
    let cleanup = |daemons: &[i32]| {
        if is_mounted(&s.mnt) {
            lazy_unmount(&s.mnt);
        }
        for &pid in daemons {
            // SAFETY: signalling a pid whose cmdline names our private scratch mount point.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        cleanup(&daemons);
        panic!("without -f uringfs must return once mounted; still running after 10 s");
    };
    if !(status.success() && mounted && read.is_ok()) {
        cleanup(&daemons);
    }
    assert!(
        status.success(),
        "exit status {status}; log: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(mounted, "exit 0 but no FUSE mount at {}", s.mnt.display());
    assert_eq!(
        read.expect("read through the mount right after startup"),
        b"hello world\n"
    );
    assert!(
        !daemons.is_empty(),
        "no daemon process left serving the mount"
    );

    // Unmount: the daemon must notice and exit by itself.
    let c = cpath(&s.mnt);
    // SAFETY: valid C string, live during the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), 0) };
    let err = std::io::Error::last_os_error();
    if rc != 0 {
        cleanup(&daemons);
        panic!("umount {}: {err}", s.mnt.display());
    }
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    while !pids_mentioning(&s.mnt).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = pids_mentioning(&s.mnt);
    cleanup(&left);
    assert!(
        left.is_empty(),
        "daemon {left:?} still running 10 s after its mount was unmounted"
    );
}

#[test]
fn sigterm_unmounts_cleanly_and_exits_0() {
    if !require_root_and_fuse() {
        return;
    }
    let mut g = MountGuard::new(&[]);
    fs::write(g.m("f"), b"data").expect("write through the mount");
    let status = g.stop(libc::SIGTERM);
    assert!(!is_mounted(&g.mnt), "mount still present after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_eq!(fs::read(g.b("f")).unwrap(), b"data");
}

#[test]
fn sigint_unmounts_cleanly_and_exits_0() {
    if !require_root_and_fuse() {
        return;
    }
    let mut g = MountGuard::new(&[]);
    let status = g.stop(libc::SIGINT);
    assert!(!is_mounted(&g.mnt), "mount still present after SIGINT");
    assert!(status.success(), "exit status after SIGINT: {status}");
}

#[test]
fn ro_option_rejects_writes_with_erofs() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["ro"], |root| {
        fs::write(root.join("f"), b"ro data").unwrap();
        fs::create_dir(root.join("d")).unwrap();
    });
    assert_eq!(fs::read(g.m("f")).unwrap(), b"ro data");
    let erofs = Some(libc::EROFS);
    assert_eq!(errno_of(&fs::write(g.m("new"), b"x")), erofs, "create");
    assert_eq!(
        errno_of(&fs::OpenOptions::new().write(true).open(g.m("f"))),
        erofs,
        "open O_WRONLY"
    );
    assert_eq!(errno_of(&fs::create_dir(g.m("d2"))), erofs, "mkdir");
    assert_eq!(errno_of(&fs::remove_file(g.m("f"))), erofs, "unlink");
    assert_eq!(errno_of(&chmod(&g.m("f"), 0o600)), erofs, "chmod");
    assert_eq!(
        errno_of(&lsetxattr(&g.m("f"), "user.x", b"1", 0)),
        erofs,
        "setxattr"
    );
    assert!(
        mount_at(&g.mnt).is_some_and(|m| m.mount_opts.split(',').any(|o| o == "ro")),
        "mount is not flagged ro: {:?}",
        mount_at(&g.mnt)
    );
    assert_eq!(fs::read(g.b("f")).unwrap(), b"ro data");
}

#[test]
fn fsname_option_sets_mount_source() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&["fsname=uringtest"]);
    let m = mount_at(&g.mnt).expect("mount present");
    assert_eq!(m.source, "uringtest", "{m:?}");
}

#[test]
fn threads_flag_and_option_mount_and_serve() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::start(Scratch::new(), &["--threads", "3"], &["threads=2"]);
    fs::write(g.m("a"), b"abc").unwrap();
    assert_eq!(fs::read(g.m("a")).unwrap(), b"abc");
    assert_eq!(fs::read(g.b("a")).unwrap(), b"abc");
}

#[test]
fn debug_flag_still_mounts() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::start(Scratch::new(), &["-d"], &[]);
    fs::write(g.m("a"), b"abc").unwrap();
    assert_eq!(fs::read(g.b("a")).unwrap(), b"abc");
}

/// With `cache=none` the mount must see changes made directly in the backing dir at once.
#[test]
fn cache_none_sees_backing_changes_immediately() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["cache=none"], |root| {
        fs::write(root.join("f"), b"one").unwrap();
    });
    assert_eq!(fs::read(g.m("f")).unwrap(), b"one");
    assert_eq!(fs::metadata(g.m("f")).unwrap().size(), 3);
    fs::OpenOptions::new()
        .append(true)
        .open(g.b("f"))
        .unwrap()
        .write_all(b" two")
        .unwrap();
    assert_eq!(fs::metadata(g.m("f")).unwrap().size(), 7, "stale size");
    assert_eq!(fs::read(g.m("f")).unwrap(), b"one two", "stale data");
    fs::remove_file(g.b("f")).unwrap();
    assert_eq!(
        errno_of(&fs::metadata(g.m("f"))),
        Some(libc::ENOENT),
        "stale dentry after the backing file was removed"
    );
    fs::write(g.b("g"), b"new").unwrap();
    assert_eq!(fs::read(g.m("g")).unwrap(), b"new");
}

#[test]
fn cache_modes_mount_and_round_trip() {
    if !require_root_and_fuse() {
        return;
    }
    for mode in ["cache=none", "cache=auto", "cache=always"] {
        let g = MountGuard::new(&[mode]);
        fs::write(g.m("f"), b"payload").unwrap_or_else(|e| panic!("{mode}: write: {e}"));
        assert_eq!(fs::read(g.m("f")).unwrap(), b"payload", "{mode}");
        assert_eq!(fs::read(g.b("f")).unwrap(), b"payload", "{mode}");
    }
}

/// A BACKING on a nosuid,nodev mount gives a nosuid,nodev mirror: the mount must not let a
/// setuid binary or a device node work that would not work in BACKING itself.
#[test]
fn mirror_is_no_more_permissive_than_backing() {
    if !require_root_and_fuse() {
        return;
    }
    let dirs = Scratch::new();
    let tmpfs = run(
        "mount",
        &[
            OsStr::new("-t"),
            OsStr::new("tmpfs"),
            OsStr::new("-o"),
            OsStr::new("nosuid,nodev,noexec"),
            OsStr::new("tmpfs"),
            dirs.backing.as_os_str(),
        ],
    );
    assert!(tmpfs.status.success(), "mount tmpfs: {tmpfs:?}");
    let g = MountGuard::start(dirs, &[], &[]);
    let info = mount_at(&g.mnt).expect("the mirror is mounted");
    let opts: Vec<&str> = info.mount_opts.split(',').collect();
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            opts.contains(&flag),
            "{flag} missing from {}",
            info.mount_opts
        );
    }
}
