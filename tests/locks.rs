//! `-o locks=forward`: POSIX record locks and flock locks taken through the mount are placed
//! on BACKING, so processes on the mirror and on BACKING exclude each other, as two processes
//! on ext4 do. Each case runs the same calls on the native directory for reference.
//!
//! Other processes are perl one-liners (perl-base is part of every Debian system): a lock's
//! owner is a process, and a test's threads share one.

mod common;

use common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use uringfs::sys::{self, RecordLock};

/// How long a test waits for something another process or the daemon does at once, before
/// calling it a failure; only a broken daemon comes near it.
const PATIENCE: Duration = Duration::from_secs(30);

fn lock(kind: i32, start: i64, len: i64) -> RecordLock {
    RecordLock {
        kind,
        start,
        len,
        pid: 0,
    }
}

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn setup(root: &Path) {
    fs::write(root.join("f"), vec![7u8; 4096]).unwrap();
}

/// The first lock conflicting with a write lock of the whole file, as `F_GETLK` reports it to
/// this process (`F_UNLCK` when there is none).
fn holder_of(path: &Path) -> RecordLock {
    let file = open_rw(path);
    sys::fcntl_lock(file.as_fd(), libc::F_GETLK, &lock(libc::F_WRLCK, 0, 0)).expect("F_GETLK")
}

/// A perl process that opens `path` read-write and runs `code` (with `$f` the file and `$l`
/// a `struct flock` for a write lock of the whole file), printing what it says on stdout.
fn perl(path: &Path, code: &str) -> (Child, BufReader<ChildStdout>) {
    let script = format!(
        "use Fcntl; $| = 1; open(my $f, '+<', $ARGV[0]) or die \"open: $!\"; \
         my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); {code}"
    );
    let mut child = Command::new("perl")
        .arg("-e")
        .arg(script)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn perl");
    let out = BufReader::new(child.stdout.take().expect("perl stdout"));
    (child, out)
}

/// A process holding a write lock of all of `path` (`F_SETLKW`) until its stdin closes.
fn holder(path: &Path) -> (Child, BufReader<ChildStdout>) {
    let (child, mut out) = perl(
        path,
        "fcntl($f, F_SETLKW, $l) or die \"lock: $!\"; print \"locked\\n\"; <STDIN>;",
    );
    assert_eq!(next_line(&mut out), "locked");
    (child, out)
}

fn next_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("read the child's output");
    line.trim().to_string()
}

/// Waits (up to [`PATIENCE`]) until `done()`; false if it never is.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn end(mut child: Child) -> std::process::ExitStatus {
    drop(child.stdin.take());
    let status = wait_timeout(&mut child, PATIENCE);
    status.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("a child process did not end within {PATIENCE:?}")
    })
}

#[test]
fn mirror_and_backing_locks_exclude_each_other_as_natively() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward"], setup);
    // Through the mount (or natively, through a first open file description): an OFD lock,
    // then a classic lock and a query from another description of the same file.
    let through = |first: &Path, second: &Path| {
        let a = open_rw(first);
        sys::fcntl_lock(a.as_fd(), libc::F_OFD_SETLK, &lock(libc::F_WRLCK, 0, 10)).unwrap();
        let b = open_rw(second);
        let refused = errno_of(&sys::fcntl_lock(
            b.as_fd(),
            libc::F_SETLK,
            &lock(libc::F_WRLCK, 5, 1),
        ));
        let free = sys::fcntl_lock(b.as_fd(), libc::F_SETLK, &lock(libc::F_WRLCK, 10, 5));
        let seen = sys::fcntl_lock(b.as_fd(), libc::F_OFD_GETLK, &lock(libc::F_RDLCK, 0, 0));
        (refused, free.is_ok(), seen.unwrap())
    };
    let native = through(&g.n("f"), &g.n("f"));
    assert_eq!(native.0, Some(libc::EAGAIN));
    assert_eq!(
        through(&g.m("f"), &g.b("f")),
        native,
        "mirror lock, then BACKING"
    );
    // The kernel releases a closed file asynchronously.
    assert!(unlocked_soon(&g.b("f")), "a lock outlived its file");
    assert_eq!(
        through(&g.b("f"), &g.m("f")),
        native,
        "BACKING lock, then mirror"
    );
    assert!(unlocked_soon(&g.b("f")), "a lock outlived its file");
}

/// Whether `path` is free of other holders' record locks, within [`PATIENCE`].
fn unlocked_soon(path: &Path) -> bool {
    eventually(|| holder_of(path).kind == libc::F_UNLCK)
}

/// Whether `path` can be flock()ed, within [`PATIENCE`].
fn flock_free_soon(path: &Path) -> bool {
    eventually(|| {
        let file = open_rw(path);
        sys::flock(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB).is_ok()
    })
}

#[test]
fn getlk_names_the_holding_process_as_natively() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward"], setup);
    let (native_holder, _out) = holder(&g.n("f"));
    let native = holder_of(&g.n("f"));
    assert_eq!(native.pid, native_holder.id() as i32);
    end(native_holder);
    // A process on BACKING holds it, seen through the mount; then one on the mount, seen
    // through the mount and from BACKING.
    for (held_at, seen_at) in [("b", "m"), ("m", "m")] {
        let path = |at: &str| if at == "b" { g.b("f") } else { g.m("f") };
        let (child, _out) = holder(&path(held_at));
        let seen = holder_of(&path(seen_at));
        let expected = RecordLock {
            pid: child.id() as i32,
            ..native
        };
        assert_eq!(seen, expected, "held on {held_at}, seen on {seen_at}");
        end(child);
    }
    let (child, _out) = holder(&g.m("f"));
    let from_backing = holder_of(&g.b("f"));
    // The daemon holds it as an open file description lock: no process to name natively.
    assert_eq!((from_backing.kind, from_backing.pid), (libc::F_WRLCK, -1));
    end(child);
}

#[test]
fn a_waiting_lock_pins_no_worker() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward", "threads=1"], setup);
    // This process holds BACKING's file, so its own waits through the mount conflict.
    let held = open_rw(&g.b("f"));
    sys::fcntl_lock(held.as_fd(), libc::F_SETLK, &lock(libc::F_WRLCK, 0, 0)).unwrap();
    let mnt_file = g.m("f");
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let path = mnt_file.clone();
            std::thread::spawn(move || {
                let file = open_rw(&path);
                let range = lock(libc::F_WRLCK, i * 100, 100);
                sys::fcntl_lock(file.as_fd(), libc::F_OFD_SETLKW, &range).map(|_| file)
            })
        })
        .collect();
    // Three waits in the daemon, one worker: it still answers everything else.
    for i in 0..20 {
        fs::write(g.m(&format!("other{i}")), b"x").unwrap();
        assert_eq!(fs::read(g.m(&format!("other{i}"))).unwrap(), b"x");
    }
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "a lock was granted while held"
    );
    sys::fcntl_lock(held.as_fd(), libc::F_SETLK, &lock(libc::F_UNLCK, 0, 0)).unwrap();
    let files: Vec<File> = waiters
        .into_iter()
        .map(|w| w.join().expect("waiter").expect("the lock once free"))
        .collect();
    let refused = sys::fcntl_lock(held.as_fd(), libc::F_SETLK, &lock(libc::F_WRLCK, 150, 1));
    assert_eq!(errno_of(&refused), Some(libc::EAGAIN));
    drop(files);
    assert!(
        unlocked_soon(&g.b("f")),
        "closing the files did not release their locks"
    );
}

/// Ctrl-C on a process waiting for a lock ends it, as natively, and leaves no lock behind.
#[test]
fn ctrl_c_ends_a_waiting_lock_as_natively() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward"], setup);
    let interrupted = |held_at: &Path, wait_at: &Path| {
        let held = open_rw(held_at);
        sys::fcntl_lock(held.as_fd(), libc::F_SETLK, &lock(libc::F_WRLCK, 0, 0)).unwrap();
        let (child, mut out) = perl(
            wait_at,
            "print \"waiting\\n\"; fcntl($f, F_SETLKW, $l); print \"returned $!\\n\"; <STDIN>;",
        );
        assert_eq!(next_line(&mut out), "waiting");
        // Let the request reach the daemon (or the native lock's wait queue); an earlier
        // signal ends the child the same way.
        std::thread::sleep(Duration::from_millis(200));
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        use std::os::unix::process::ExitStatusExt;
        let status = end(child).signal();
        drop(held);
        status
    };
    let native = interrupted(&g.n("f"), &g.n("f"));
    assert_eq!(native, Some(libc::SIGINT));
    assert_eq!(interrupted(&g.b("f"), &g.m("f")), native);
    // The daemon did not take the lock after all (or let it go with the file).
    assert!(unlocked_soon(&g.b("f")), "an interrupted wait left a lock");
}

#[test]
fn a_killed_holder_releases_its_locks() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward"], setup);
    let (mut child, _out) = holder(&g.m("f"));
    assert_eq!(holder_of(&g.b("f")).kind, libc::F_WRLCK);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(
        unlocked_soon(&g.b("f")),
        "the lock of a killed process stayed on BACKING"
    );
    // And the file can be locked through the mount again.
    let (child, _out) = holder(&g.m("f"));
    end(child);
}

/// flock locks are forwarded where the kernel says which locks are flock's: on the io_uring
/// transport. fuser 0.18 drops that flag, so over /dev/fuse they stay the kernel's.
#[test]
fn flock_through_the_mount() {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::with_setup(&["locks=forward"], setup);
    let excluded = |first: &Path, second: &Path| {
        let a = open_rw(first);
        sys::flock(a.as_fd(), libc::LOCK_EX | libc::LOCK_NB).unwrap();
        let b = open_rw(second);
        let res = errno_of(&sys::flock(b.as_fd(), libc::LOCK_EX | libc::LOCK_NB));
        drop(a);
        res
    };
    let native = excluded(&g.n("f"), &g.n("f"));
    assert_eq!(native, Some(libc::EWOULDBLOCK));
    if g.over_io_uring() {
        assert_eq!(excluded(&g.m("f"), &g.b("f")), native);
        // Released with its file (asynchronously, by RELEASE).
        assert!(flock_free_soon(&g.b("f")), "a flock outlived its file");
        assert_eq!(excluded(&g.b("f"), &g.m("f")), native);
    } else {
        assert_eq!(excluded(&g.m("f"), &g.b("f")), None);
    }
    // Within the mount, as natively, whichever transport.
    assert_eq!(excluded(&g.m("f"), &g.m("f")), native);
    let mut f = open_rw(&g.m("f"));
    f.write_all(b"still a file").unwrap();
}
