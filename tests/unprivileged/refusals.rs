//! Options a user's daemon refuses before serving, in one line.

use super::*;

/// Runs `uringfs -f -o OPTS` as the user, which must refuse to serve: exit 1 within the
/// mount timeout, leave no mount, and print exactly one `uringfs: ` error line, returned.
#[track_caller]
fn refused_as_user(opts: &[&str]) -> String {
    let dirs = user_scratch();
    let log = dirs.root.join("uringfs.log");
    let mut child = spawn_as_user(&dirs, opts, &log);
    let status = wait_timeout(&mut child, MOUNT_TIMEOUT);
    let mounted = is_mounted(&dirs.mnt);
    if mounted {
        let _ = fusermount_unmount(&dirs.mnt);
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(!mounted, "-o {opts:?} mounted for a user:\n{text}");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "exit status of -o {opts:?}\n{text}"
    );
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("uringfs: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{text}");
    errors[0].to_string()
}

/// `-o allow_other` is for users only where /etc/fuse.conf says `user_allow_other`
/// (fusermount3 checks). Without it the daemon fails before serving, with fusermount3's
/// reason on one line, and leaves no mount; with it, root gets in.
#[test]
fn allow_other_follows_fuse_conf() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let conf = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "user_allow_other") {
        let m = UserMount::new(&["allow_other"]);
        let info = mount_at(&m.mnt).expect("mounted");
        assert!(info.super_opts.contains("allow_other"), "{info:?}");
        as_mounter(|| fs::write(m.mnt.join("f"), b"shared")).expect("the mounter writes");
        assert_eq!(fs::read(m.mnt.join("f")).expect("root reads"), b"shared");
        m.unmount_cleanly();
    } else {
        let error = refused_as_user(&["allow_other"]);
        assert!(
            error.contains("user_allow_other"),
            "the error names the setting: {error}"
        );
    }
}

/// `-o passthrough` needs CAP_SYS_ADMIN for every backing file: a user's daemon refuses it
/// before mounting, in one line, rather than mounting and failing each open.
#[test]
fn passthrough_as_user_is_one_error() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let error = refused_as_user(&["passthrough"]);
    assert!(
        error.contains("passthrough") && error.contains("root"),
        "the error says why: {error}"
    );
}
