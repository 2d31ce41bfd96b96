//! Running as the mounter: on a thread that really is uid 1000, compared with native.

use super::*;

/// Runs `f` on a new thread that really is `uid`/`gid` (real, effective and saved ids, no
/// supplementary groups, no capabilities), as a process of that user would be. The raw
/// syscalls change only the calling thread (glibc's wrappers would change every thread of
/// the test process); going from uid 0 to another uid clears the thread's capabilities.
pub(super) fn as_real_user<T: Send>(uid: u32, gid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: raw syscalls with integer arguments (and an empty group list) that
            // change only this thread's credentials.
            unsafe {
                let rc = libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                assert_eq!(rc, 0, "setgroups: {}", io::Error::last_os_error());
                let rc = libc::syscall(libc::SYS_setresgid, gid, gid, gid);
                assert_eq!(rc, 0, "setresgid: {}", io::Error::last_os_error());
                let rc = libc::syscall(libc::SYS_setresuid, uid, uid, uid);
                assert_eq!(rc, 0, "setresuid: {}", io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// [`as_real_user`] as the user who mounted.
pub(super) fn as_mounter<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    as_real_user(USER, GROUP, f)
}

/// Runs `f` as the mounter on `native/` and then on `mnt/`, asserts both outcomes (value
/// or errno) are equal, and returns the mount's.
#[track_caller]
pub(super) fn both_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) -> Outcome<T> {
    let (native, mount) = as_mounter(|| (outcome(f(&m.native)), outcome(f(&m.mnt))));
    assert!(
        mount == native,
        "{what}: mount and native ext4 differ\n  mount:  {}\n  native: {}",
        short_debug(&mount),
        short_debug(&native)
    );
    mount
}

/// [`both_as_mounter`], and both must succeed.
#[track_caller]
pub(super) fn both_ok_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) -> T {
    both_as_mounter(m, what, f).unwrap_or_else(|e| panic!("{what}: failed on both: {e}"))
}

/// [`both_as_mounter`], and both must fail with `errno`.
#[track_caller]
pub(super) fn both_err_as_mounter<T: PartialEq + Debug + Send>(
    m: &UserMount,
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Sync,
) {
    let got = both_as_mounter(m, what, f);
    assert_eq!(
        got,
        outcome::<T>(Err(io::Error::from_raw_os_error(errno))),
        "{what}: both gave the same, but not errno {errno}"
    );
}

/// As the mounter: the trees under `native/` and `mnt/` are equal (names, types, modes,
/// owners, sizes, link counts, contents, symlink targets, xattrs).
#[track_caller]
pub(super) fn assert_mount_equals_native(m: &UserMount) {
    let diffs = as_mounter(|| tree_diff(&m.native, &m.mnt, TreeOpts::default()));
    assert!(
        diffs.is_empty(),
        "mount and native differ:\n  {}",
        diffs.join("\n  ")
    );
}
