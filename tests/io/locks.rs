//! POSIX and flock locks conflicting between processes.

use super::*;

/// Forks a child that opens `path` and tries `op` on it without blocking; returns the child's
/// errno (0 = success). The child only makes async-signal-safe calls.
fn try_lock_in_child(path: &Path, op: fn(i32) -> i32) -> i32 {
    let c = cpath(path);
    // SAFETY: the child only calls open/fcntl/flock/_exit (async-signal-safe) before exiting.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; `c` was built before the fork.
        unsafe {
            let fd = libc::open(c.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                libc::_exit(100);
            }
            libc::_exit(op(fd));
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "lock child died: status {status}");
    let code = libc::WEXITSTATUS(status);
    assert_ne!(code, 100, "lock child could not open {}", path.display());
    code
}

fn errno_now() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(99)
}

fn setlk(fd: i32, kind: i32) -> i32 {
    // SAFETY: zeroed flock is valid; the fd is open.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: fcntl F_SETLK with a valid flock struct.
    if unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) } < 0 {
        errno_now()
    } else {
        0
    }
}

#[test]
fn posix_locks_conflict_between_processes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let both_sides = |root: &Path| -> (i32, i32, i32) {
        let p = root.join("locked");
        fs::write(&p, b"lock me").unwrap();
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        assert_eq!(setlk(f.as_raw_fd(), libc::F_WRLCK), 0, "parent F_SETLK");
        let held = try_lock_in_child(&p, |fd| setlk(fd, libc::F_WRLCK));
        let read_held = try_lock_in_child(&p, |fd| setlk(fd, libc::F_RDLCK));
        assert_eq!(setlk(f.as_raw_fd(), libc::F_UNLCK), 0, "parent unlock");
        let free = try_lock_in_child(&p, |fd| setlk(fd, libc::F_WRLCK));
        (held, read_held, free)
    };
    let n = both_sides(&g.native);
    let m = both_sides(&g.mnt);
    assert_eq!(n, (libc::EAGAIN, libc::EAGAIN, 0), "native");
    assert_eq!(m, n, "POSIX locks through the mount vs native");
}

fn flock_nb(fd: i32) -> i32 {
    // SAFETY: plain syscall on an open fd.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        errno_now()
    } else {
        0
    }
}

#[test]
fn flock_conflicts_between_processes() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(&[]);
    let both_sides = |root: &Path| -> (i32, i32) {
        let p = root.join("flocked");
        fs::write(&p, b"flock me").unwrap();
        let f = File::open(&p).unwrap();
        // SAFETY: plain syscall on an open fd.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        let held = try_lock_in_child(&p, flock_nb);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) }, 0);
        let free = try_lock_in_child(&p, flock_nb);
        (held, free)
    };
    let n = both_sides(&g.native);
    let m = both_sides(&g.mnt);
    assert_eq!(n, (libc::EWOULDBLOCK, 0), "native");
    assert_eq!(m, n, "flock through the mount vs native");
}
