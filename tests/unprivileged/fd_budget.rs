//! Inodes past the fd budget: a daemon that cannot reopen by handle keeps every fd.

use super::*;

/// The daemon cannot reopen an inode by file handle, so it must keep every inode's fd, past
/// any budget: with `-o inode_fds=4`, forty files looked up and used again all still work
/// (an evicted fd would come back as EPERM), and the daemon holds an fd for each.
#[test]
fn inodes_past_the_fd_budget_keep_their_fds() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&["inode_fds=4"]);
    const FILES: usize = 40;
    let use_all = |r: &Path| -> io::Result<Vec<(Vec<u8>, Attr)>> {
        (0..FILES)
            .map(|i| {
                let p = r.join(format!("f{i}"));
                Ok((read_all(&p)?, attr(&p)?))
            })
            .collect()
    };
    both_ok_as_mounter(&m, "create forty files", |r| {
        for i in 0..FILES {
            fs::write(r.join(format!("f{i}")), format!("file {i}"))?;
        }
        use_all(r)
    });
    // Twice more, in the same and the opposite order: every inode's first fd is long past
    // the budget of four.
    both_ok_as_mounter(&m, "use them all again", |r| {
        let mut again = use_all(r)?;
        for i in (0..FILES).rev() {
            chmod(&r.join(format!("f{i}")), 0o600)?;
            fs::write(r.join(format!("f{i}")), format!("again {i}"))?;
        }
        again.extend(use_all(r)?);
        Ok(again)
    });
    let backing = m.backing.to_string_lossy().into_owned();
    let held = fs::read_dir(format!("/proc/{}/fd", m.pid()))
        .expect("read the daemon's fds")
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|t| {
            t.to_string_lossy()
                .strip_prefix(&backing)
                .is_some_and(|rest| rest.starts_with("/f"))
        })
        .count();
    assert!(
        held >= FILES,
        "the daemon holds fds for {held} of the {FILES} files the kernel holds"
    );
    assert_mount_equals_native(&m);
    m.unmount_cleanly();
}
