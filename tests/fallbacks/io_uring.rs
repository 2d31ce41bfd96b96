//! Without io_uring: plain syscalls, or one error line when io_uring was demanded.

use super::*;

/// io_uring_setup refused (ENOSYS, or Docker's EPERM): the daemon starts with plain syscalls
/// and one warning, and its data I/O works.
#[test]
fn without_io_uring_the_daemon_uses_plain_syscalls() {
    if !require_root_and_fuse() {
        return;
    }
    for errno in [seccomp_wrap::ENOSYS, seccomp_wrap::EPERM] {
        let mut m = Mount::start("io_uring", errno, &[], |_| {});
        let line = m.probe_line();
        assert!(line.contains(" WARN "), "{line}");
        assert!(line.contains("lacks io_uring (io_uring_setup: "), "{line}");
        assert!(line.contains("data I/O: plain syscalls)"), "{line}");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(m.dirs.mnt.join("f"), &data).expect("write through the mount");
        assert_eq!(fs::read(m.dirs.mnt.join("f")).expect("read"), data);
        assert_eq!(fs::read(m.dirs.backing.join("f")).expect("backing"), data);
        fs::create_dir(m.dirs.mnt.join("d")).expect("mkdir");
        for i in 0..50 {
            fs::write(m.dirs.mnt.join(format!("d/{i}")), b"x").expect("create");
        }
        assert_eq!(
            fs::read_dir(m.dirs.mnt.join("d")).expect("readdir").count(),
            50
        );
        let log = m.stop();
        assert!(log.contains("stats: ring: off"), "{log}");
        let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
        assert_eq!(warnings, 1, "one warning line:\n{log}");
    }
}

/// `-o uring=on` without io_uring: one line on stderr, exit 1, nothing mounted (in the
/// foreground and daemonized).
#[test]
fn uring_on_without_io_uring_is_one_line_and_exit_1() {
    if !require_root_and_fuse() {
        return;
    }
    let dirs = Dirs::new();
    for foreground in [true, false] {
        let mut cmd = daemon_command("io_uring", seccomp_wrap::ENOSYS);
        if foreground {
            cmd.arg("-f");
        }
        let out = cmd
            .args(["-o", "allow_other,uring=on"])
            .arg(&dirs.backing)
            .arg(&dirs.mnt)
            .stdin(Stdio::null())
            .output()
            .expect("run uringfs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "foreground {foreground}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.contains("io_uring") && stderr.contains("uring=on"),
            "{stderr}"
        );
        assert!(!is_fuse_mounted(&dirs.mnt));
    }
    // uring=off asks nothing of io_uring and starts.
    let mut m = Mount::start("io_uring", seccomp_wrap::ENOSYS, &["uring=off"], |_| {});
    assert!(m.probe_line().contains("io_uring off (-o uring=off)"));
    assert!(m.stop().contains("stats: ring: off"));
}
