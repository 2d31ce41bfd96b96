//! Mounting and unmounting as the user: through fusermount3, by SIGTERM, in the background.

use super::*;

/// The daemon mounts as the user through fusermount3, runs with the user's ids and no
/// capabilities, states its fd budget, and exits 0 when the user unmounts.
#[test]
fn mounts_through_fusermount3_and_unmounts_with_it() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    let info = mount_at(&m.mnt).expect("mounted");
    assert_eq!(info.fstype, "fuse.uringfs", "{info:?}");
    assert_eq!(info.source, m.backing.to_string_lossy(), "{info:?}");
    let super_opts: Vec<&str> = info.super_opts.split(',').collect();
    for opt in [
        format!("user_id={USER}"),
        format!("group_id={GROUP}"),
        "default_permissions".to_string(),
    ] {
        assert!(super_opts.contains(&opt.as_str()), "{opt}: {info:?}");
    }
    assert!(!super_opts.contains(&"allow_other"), "{info:?}");
    let mount_opts: Vec<&str> = info.mount_opts.split(',').collect();
    assert!(
        mount_opts.contains(&"nosuid") && mount_opts.contains(&"nodev"),
        "a user mount is nosuid,nodev: {info:?}"
    );

    let pid = m.pid();
    let uid = proc_status(pid, "Uid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        [USER.to_string().as_str(); 4],
        "the daemon's real, effective, saved and fs uid"
    );
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(pid, "CapPrm"), "0000000000000000");

    let log = m.log_text();
    let nofile = nofile_hard_limit();
    let inodes = uringfs::inode::fd_budget(nofile);
    let line = fd_budget_line(&log)
        .unwrap_or_else(|| panic!("no fd-budget line in the daemon's log:\n{log}"));
    let expected = format!(
        "RLIMIT_NOFILE {nofile} holds {inodes} inodes with {} fds left",
        nofile - inodes as u64
    );
    assert!(line.contains(&expected), "{line:?} lacks {expected:?}");
    assert!(line.contains("CAP_DAC_READ_SEARCH"), "{line:?}");

    both_ok_as_mounter(&m, "write and read a file", |r| {
        fs::write(r.join("hello"), b"hello from uid 1000\n")?;
        let md = fs::symlink_metadata(r.join("hello"))?;
        Ok((read_all(&r.join("hello"))?, attr_of(&md)))
    });
    assert_eq!(
        fs::metadata(m.backing.join("hello"))
            .expect("stat backing")
            .uid(),
        USER,
        "the backing file belongs to the user"
    );
    m.unmount_cleanly();
}

/// SIGTERM makes the user's daemon unmount itself, which for a user goes through
/// `fusermount3` (`umount2` is root's), and exit 0.
#[test]
fn sigterm_unmounts_through_fusermount3() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let mut m = UserMount::new(&[]);
    both_ok_as_mounter(&m, "a file", |r| fs::write(r.join("f"), b"x"));
    let status = m.stop(libc::SIGTERM);
    let log = m.log_text();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM\n{log}");
    assert!(
        !is_mounted(&m.mnt),
        "still mounted after SIGTERM: {:?}\n{log}",
        mount_at(&m.mnt)
    );
    assert!(!log.contains(" ERROR "), "{log}");
}

/// `uringfs SRC MNT` without `-f`, as a user runs it: the command returns 0 once the mount
/// is live, the daemon serves in the background as the user, and it exits once the user
/// unmounts with `fusermount3 -u`.
#[test]
fn background_mount_as_user() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let mut d = BackgroundDaemon {
        dirs: user_scratch(),
        pid: None,
    };
    let out = d.dirs.root.join("starter.out");
    let outfile = File::create(&out).expect("create starter output");
    let mut cmd = Command::new(bin());
    cmd.arg(&d.dirs.backing)
        .arg(&d.dirs.mnt)
        .uid(USER)
        .gid(GROUP)
        .current_dir("/")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(outfile.try_clone().expect("dup output fd"))
        .stderr(outfile);
    let mut starter = cmd.spawn().expect("spawn uringfs as the user");
    let status = wait_timeout(&mut starter, MOUNT_TIMEOUT);
    if status.is_none() {
        let _ = starter.kill();
        let _ = starter.wait();
    }
    let said = fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the starter's exit\n{said}"
    );
    assert!(
        is_fuse_mounted(&d.dirs.mnt),
        "the starter returned before the mount was live\n{said}"
    );
    let pid = daemon_serving(&d.dirs.mnt).expect("the background daemon's pid");
    d.pid = Some(pid);
    let uid = proc_status(pid as u32, "Uid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        [USER.to_string().as_str(); 4]
    );

    let native = d.dirs.native.clone();
    let mnt = d.dirs.mnt.clone();
    let run = |r: &Path| -> io::Result<(Vec<u8>, Attr)> {
        fs::write(r.join("f"), b"served in the background")?;
        Ok((read_all(&r.join("f"))?, attr(&r.join("f"))?))
    };
    let (n, m) = as_mounter(|| (outcome(run(&native)), outcome(run(&mnt))));
    assert_eq!(m, n, "mount vs native");
    assert!(m.is_ok(), "{m:?}");

    let (status, stderr) = fusermount_unmount(&d.dirs.mnt);
    assert!(status.success(), "fusermount3 -u: {status}: {stderr}");
    assert!(!is_mounted(&d.dirs.mnt));
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the background daemon {pid} still runs {MOUNT_TIMEOUT:?} after fusermount3 -u"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.pid = None;
}

/// A daemon running in the background, not this process's child: drop unmounts and
/// SIGKILLs it if a test failed before it was done.
struct BackgroundDaemon {
    /// Its directories, removed after it.
    dirs: Scratch,
    /// Its pid, once found; `None` once it exited.
    pid: Option<i32>,
}

impl Drop for BackgroundDaemon {
    fn drop(&mut self) {
        if is_mounted(&self.dirs.mnt) {
            let _ = fusermount_unmount(&self.dirs.mnt);
        }
        if is_mounted(&self.dirs.mnt) {
            lazy_unmount(&self.dirs.mnt);
        }
        if let Some(pid) = self.pid
            && daemon_serving(&self.dirs.mnt) == Some(pid)
        {
            // SAFETY: plain syscall on the pid just seen serving this test's mount point.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The pid of a live uringfs process run by the user with `mnt` on its command line.
fn daemon_serving(mnt: &Path) -> Option<i32> {
    let bin = bin();
    fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let ours = args.first() == Some(&bin.as_os_str().as_encoded_bytes())
            && args.contains(&mnt.as_os_str().as_encoded_bytes())
            && process_alive(pid);
        ours.then_some(pid)
    })
}

/// Whether `pid` exists and is not a zombie (a daemon the test did not start is reaped by
/// init, if at all).
fn process_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}
