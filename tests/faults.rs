//! Faults: the daemon killed in the middle of a workload, and BACKING changed behind the
//! mount's back (also under inodes whose fd the LRU closed).
//!
//! Each test runs on both FUSE transports: `_default` takes the default (FUSE over io_uring
//! where the fuse module offers it), `_devfuse` forces `/dev/fuse`.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// How long a client may stay blocked after the daemon died before the test calls it hung.
/// A hang detector only: an aborted connection fails every request at once.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// The default cache's TTL (`cache=auto`), and how much later than it a change made in
/// BACKING may show through the mount: the slack is for a loaded machine, not a tolerance of
/// the daemon (a revalidation it answers takes milliseconds).
const TTL: Duration = Duration::from_secs(1);
const TTL_SLACK: Duration = Duration::from_secs(2);

/// The transport option of each test variant.
const DEFAULT: &[&str] = &[];
const DEVFUSE: &[&str] = &["transport=devfuse"];

/// Whether the daemon logged that it serves requests over FUSE over io_uring.
fn serves_over_io_uring(g: &MountGuard) -> bool {
    g.log_text().contains("FUSE transport: FUSE over io_uring")
}

/// `len` bytes that name `tag` over and over: two different tags never give the same bytes,
/// so whatever a read returns says which file (and which version of it) it came from.
fn content(tag: &str, len: usize) -> Vec<u8> {
    format!("<{tag}>").bytes().cycle().take(len).collect()
}

/// The errno of an error (-1 for an error without one).
fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// An errno's name, for messages.
fn errno_name(code: i32) -> String {
    let name = match code {
        libc::ENOENT => "ENOENT",
        libc::ESTALE => "ESTALE",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECANCELED => "ECANCELED",
        libc::EIO => "EIO",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        _ => "",
    };
    format!("{name}({code})")
}

// ---------------------------------------------------------------------------------------------
// The daemon killed in the middle of a workload
// ---------------------------------------------------------------------------------------------

/// What one client did and saw.
#[derive(Debug, Default)]
struct ClientReport {
    /// Client number (its directory is `c<id>`).
    id: usize,
    /// The CPU it was pinned to.
    cpu: usize,
    /// Files it created, wrote, fsynced and renamed into place, all before the kill.
    fsynced: usize,
    /// Files it must find in BACKING with exactly these contents: each was fsynced and renamed
    /// into place, and not unlinked since (name relative to the mount root).
    present: BTreeMap<String, Vec<u8>>,
    /// Files it unlinked successfully: they must be gone from BACKING.
    absent: BTreeSet<String>,
    /// The operation that failed first and its errno: the request the kill caught.
    first_error: Option<(String, i32)>,
    /// The operations it tried after that, each with its errno (or 0 if it succeeded).
    after: Vec<(String, i32)>,
    /// Anything wrong it saw (a bad read, an error before the kill).
    problems: Vec<String>,
}

/// How far the test is with the daemon, as the clients see it.
#[derive(Default)]
struct Phase {
    /// SIGKILL is about to be sent: from now on requests may fail.
    killed: AtomicBool,
    /// The daemon is reaped and the connection aborted: new requests fail with ENOTCONN.
    aborted: AtomicBool,
}

/// The current thread's kernel thread id.
fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed; pid 0 = this thread.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", io::Error::last_os_error());
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`. FUSE over io_uring queues a request on the queue of the
/// CPU the caller runs on, so clients pinned to every CPU put requests on every queue.
fn pin_to(cpu: usize) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from allowed_cpus, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 = this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity({cpu}): {}",
        io::Error::last_os_error()
    );
}

/// Where the kernel has thread `tid` of this process waiting (`/proc/self/task/TID/wchan`).
fn wchan(tid: i32) -> String {
    fs::read_to_string(format!("/proc/self/task/{tid}/wchan")).unwrap_or_default()
}

/// One client's loop: in its own directory `c<id>` of the mount, create a file, write it in
/// two pieces, fsync it, rename it into place, read the previous one back, unlink the one
/// three files back; until an operation fails (the kill). Then it tries a few more
/// operations, new ones and on a file it held open all along, and reports every errno.
fn client(mnt: &Path, id: usize, cpu: usize, phase: &Phase, fsynced: &AtomicU64) -> ClientReport {
    pin_to(cpu);
    let mut r = ClientReport {
        id,
        cpu,
        ..ClientReport::default()
    };
    let dir = format!("c{id}");
    let held_path = mnt.join(&dir).join("held");
    let mut held = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&held_path)
    {
        Ok(f) => f,
        Err(e) => {
            r.problems
                .push(format!("open {}: {e}", held_path.display()));
            return r;
        }
    };
    let fail = |r: &mut ClientReport, op: String, e: io::Error| {
        if !phase.killed.load(Ordering::SeqCst) {
            r.problems.push(format!("{op} failed before the kill: {e}"));
        }
        r.first_error = Some((op, errno(&e)));
    };
    for n in 0usize.. {
        let name = format!("{dir}/f{n}");
        let tmp = mnt.join(format!("{name}.tmp"));
        let data = content(&name, 1 + (n * 7919 + id * 104_729) % 65_536);
        let (first, second) = data.split_at(data.len() / 2);
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(first)?;
            f.write_all(second)?;
            f.sync_all()
        });
        if let Err(e) = written {
            fail(&mut r, format!("create/write/fsync {name}.tmp"), e);
            break;
        }
        if let Err(e) = fs::rename(&tmp, mnt.join(&name)) {
            fail(&mut r, format!("rename {name}.tmp"), e);
            break;
        }
        r.present.insert(name.clone(), data);
        r.fsynced += 1;
        fsynced.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = held.write_all_at(name.as_bytes(), 0) {
            fail(&mut r, "write to the held file".into(), e);
            break;
        }
        if n >= 1 {
            let prev = format!("{dir}/f{}", n - 1);
            match fs::read(mnt.join(&prev)) {
                Ok(got) if r.present.get(&prev) == Some(&got) => {}
                Ok(got) => r
                    .problems
                    .push(format!("read {prev} through the mount: {}", digest(&got))),
                Err(e) => {
                    fail(&mut r, format!("read {prev}"), e);
                    break;
                }
            }
        }
        if n >= 3 {
            let old = format!("{dir}/f{}", n - 3);
            // Whatever the outcome, the old file no longer has to be there: an unlink the
            // kill interrupted may or may not have reached BACKING.
            r.present.remove(&old);
            if let Err(e) = fs::remove_file(mnt.join(&old)) {
                fail(&mut r, format!("unlink {old}"), e);
                break;
            }
            r.absent.insert(old);
        }
    }
    // Once the connection is aborted every further request must fail at once with ENOTCONN,
    // also on an fd opened before the kill. (While the dying daemon's fds go one by one, a new
    // request can still be queued, and then fails like the one the kill caught.)
    let deadline = Instant::now() + HANG_LIMIT;
    while !phase.aborted.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Only what must reach the daemon: a stat may be answered from the attributes the
    // kernel still caches (the TTL), dead connection or not.
    let probes: Vec<(&str, io::Result<()>)> = vec![
        (
            "open and read of its first file",
            fs::read(mnt.join(format!("{dir}/f0"))).map(drop),
        ),
        (
            "create",
            File::create(mnt.join(format!("{dir}/late"))).map(drop),
        ),
        ("pwrite on the held fd", held.write_all_at(b"late", 0)),
        ("fsync on the held fd", held.sync_all()),
    ];
    for (what, res) in probes {
        r.after
            .push((what.to_string(), res.err().map_or(0, |e| errno(&e))));
    }
    let _ = held.flush();
    r
}

/// Kills the daemon (SIGKILL) while at least two clients per CPU have requests in flight, and
/// checks what the clients see, what BACKING kept, and that the mount point can be unmounted
/// and mounted again.
fn killed_daemon(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let mut g = MountGuard::new(opts);
    let over_uring = serves_over_io_uring(&g);
    let cpus = allowed_cpus();
    let n_clients = (2 * cpus.len()).max(4);
    for id in 0..n_clients {
        fs::create_dir(g.m(&format!("c{id}"))).expect("mkdir a client's directory");
    }

    let phase = Arc::new(Phase::default());
    let fsynced: Arc<Vec<AtomicU64>> =
        Arc::new((0..n_clients).map(|_| AtomicU64::new(0)).collect());
    let (tx, rx) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    for id in 0..n_clients {
        let (mnt, phase, fsynced, tx, tid_tx) = (
            g.mnt.clone(),
            phase.clone(),
            fsynced.clone(),
            tx.clone(),
            tid_tx.clone(),
        );
        let cpu = cpus[id % cpus.len()];
        // Detached: a client the kill left blocked must not block the test; it is reported.
        std::thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                tid_tx.send((id, gettid())).expect("send tid");
                let report = client(&mnt, id, cpu, &phase, &fsynced[id]);
                let _ = tx.send(report);
            })
            .expect("spawn client");
    }
    drop(tx);
    let mut tids: Vec<(usize, i32)> = tid_rx.iter().take(n_clients).collect();
    tids.sort();

    // Let every client get a few files fsynced, then freeze the daemon (SIGSTOP) so the
    // clients' next requests stay in flight, and kill it once every client waits for an
    // answer: then the kill catches requests from every CPU, so on every io_uring queue.
    let deadline = Instant::now() + HANG_LIMIT;
    while fsynced.iter().any(|n| n.load(Ordering::SeqCst) < 3) {
        assert!(
            Instant::now() < deadline,
            "the clients did not get 3 files each fsynced within {HANG_LIMIT:?}: {:?}",
            fsynced
                .iter()
                .map(|n| n.load(Ordering::SeqCst))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own unreaped child.
    assert_eq!(
        unsafe { libc::kill(g.pid() as libc::pid_t, libc::SIGSTOP) },
        0
    );
    let deadline = Instant::now() + HANG_LIMIT;
    loop {
        let waits: Vec<String> = tids.iter().map(|&(_, tid)| wchan(tid)).collect();
        // Waiting for an answer, or for a page whose READ is in flight (readahead).
        if waits
            .iter()
            .all(|w| w == "request_wait_answer" || w == "folio_wait_bit_common")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "with the daemon stopped, not every client waits for a FUSE answer within \
             {HANG_LIMIT:?}: {waits:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    phase.killed.store(true, Ordering::SeqCst);
    g.stop(libc::SIGKILL);
    // Reaped is not yet aborted: the kernel may release the daemon's io_uring (which holds
    // its /dev/fuse file) in a work item after the process is gone, and until that last
    // /dev/fuse reference goes the connection still queues requests and later fails them as
    // it fails those the kill caught. Probe with creates until one says ENOTCONN.
    let deadline = Instant::now() + HANG_LIMIT;
    let mut window = BTreeSet::new();
    for n in 0.. {
        match File::create(g.m(&format!("probe{n}"))) {
            Err(e) if errno(&e) == libc::ENOTCONN => break,
            res => {
                window.insert(res.map_err(|e| errno_name(errno(&e))).map(drop));
            }
        }
        assert!(
            Instant::now() < deadline,
            "the connection is not aborted {HANG_LIMIT:?} after the daemon was reaped: {window:?}"
        );
    }
    phase.aborted.store(true, Ordering::SeqCst);

    let deadline = Instant::now() + HANG_LIMIT;
    let mut reports = Vec::new();
    while reports.len() < n_clients {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => reports.push(r),
            Err(_) => {
                let done: BTreeSet<usize> = reports.iter().map(|r: &ClientReport| r.id).collect();
                let hung: Vec<String> = tids
                    .iter()
                    .filter(|(id, _)| !done.contains(id))
                    .map(|&(id, tid)| format!("client {id} (wchan {})", wchan(tid)))
                    .collect();
                panic!("{HANG_LIMIT:?} after the daemon was killed, still blocked: {hung:?}");
            }
        }
    }
    reports.sort_by_key(|r| r.id);

    // The request the kill caught fails with the abort's errno: ECONNABORTED, and over
    // io_uring also ECANCELED (as Linux 6.18 answers them). It can be ENOTCONN too: a
    // revalidating LOOKUP that fails makes fuse drop the dentry, and the VFS's fresh lookup
    // then meets the dead connection. Every later request fails with ENOTCONN.
    let in_flight: &[i32] = if over_uring {
        &[libc::ECANCELED, libc::ECONNABORTED, libc::ENOTCONN]
    } else {
        &[libc::ECONNABORTED, libc::ENOTCONN]
    };
    let mut seen = BTreeSet::new();
    for r in &reports {
        assert!(r.problems.is_empty(), "client {}: {:?}", r.id, r.problems);
        let (op, code) = r
            .first_error
            .clone()
            .unwrap_or_else(|| panic!("client {} saw no error", r.id));
        seen.insert(errno_name(code));
        assert!(
            in_flight.contains(&code),
            "client {} (cpu {}): {op} in flight at the kill failed with {}, expected one of {:?}",
            r.id,
            r.cpu,
            errno_name(code),
            in_flight.iter().map(|&c| errno_name(c)).collect::<Vec<_>>()
        );
        for (what, code) in &r.after {
            assert_eq!(
                *code,
                libc::ENOTCONN,
                "client {}: {what} after the kill: {} instead of ENOTCONN",
                r.id,
                errno_name(*code)
            );
        }
    }
    eprintln!(
        "killed_daemon (io_uring: {over_uring}): clients {:?}; in-flight errnos {seen:?}; \
         creates between the reaping and the abort: {window:?}",
        reports
            .iter()
            .map(|r| (r.id, r.cpu, r.fsynced, r.first_error.clone()))
            .collect::<Vec<_>>()
    );

    // Everything fsynced and renamed into place before the kill is in BACKING as written.
    for r in &reports {
        for (name, data) in &r.present {
            match fs::read(g.b(name)) {
                Ok(got) => assert!(
                    got == *data,
                    "client {}: {name} in BACKING is {}, was fsynced as {}",
                    r.id,
                    digest(&got),
                    digest(data)
                ),
                Err(e) => panic!("client {}: {name} fsynced before the kill: {e}", r.id),
            }
        }
        for name in &r.absent {
            assert!(
                !g.b(name).exists(),
                "client {}: {name} was unlinked before the kill but is in BACKING",
                r.id
            );
        }
    }

    // The dead mount answers ENOTCONN (once the root's cached attributes expire),
    // fusermount3 -u removes it, and a new daemon serves the same mount point.
    expect_seen(
        "the dead mount's root",
        false,
        || {
            fs::metadata(&g.mnt)
                .map(drop)
                .map_err(|e| errno_name(errno(&e)))
        },
        |v| *v == Err(errno_name(libc::ENOTCONN)),
    );
    let out = run("fusermount3", &["-u".as_ref(), g.mnt.as_os_str()]);
    assert!(
        out.status.success(),
        "fusermount3 -u of the dead mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&g.mnt), "still mounted after fusermount3 -u");

    // The second daemon's Scratch shares backing/ and mnt/ but has its own root for its log,
    // so dropping it removes only that; the first guard removes the rest after it.
    let fresh = std::mem::ManuallyDrop::new(Scratch::new());
    let again = MountGuard::start(
        Scratch {
            root: fresh.root.clone(),
            backing: g.backing.clone(),
            mnt: g.mnt.clone(),
            native: fresh.native.clone(),
        },
        &[],
        opts,
    );
    for r in &reports {
        for (name, data) in &r.present {
            let got = fs::read(again.m(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
            assert!(
                got == *data,
                "{name} through the new mount: {}",
                digest(&got)
            );
        }
    }
    let data = content("after the restart", 10_000);
    fs::write(again.m("new"), &data).expect("write through the new mount");
    assert!(read_all(&again.m("new")).expect("read back") == data);
    assert!(read_all(&again.b("new")).expect("read in BACKING") == data);
    drop(again);
    assert!(
        !is_mounted(&g.mnt),
        "the second daemon's mount outlived its guard"
    );
}

#[test]
fn killed_daemon_mid_workload_default() {
    killed_daemon(DEFAULT);
}

#[test]
fn killed_daemon_mid_workload_devfuse() {
    killed_daemon(DEVFUSE);
}

// ---------------------------------------------------------------------------------------------
// BACKING changed behind the mount's back
// ---------------------------------------------------------------------------------------------

/// Waits until `observe` (through the mount) returns what `want` says is the change: at once
/// (cache=none: the first observation must already show it), or within the TTL plus slack.
/// Panics with the last observation otherwise.
#[track_caller]
fn expect_seen<T: std::fmt::Debug>(
    what: &str,
    at_once: bool,
    mut observe: impl FnMut() -> T,
    want: impl Fn(&T) -> bool,
) {
    let start = Instant::now();
    loop {
        let got = observe();
        if want(&got) {
            return;
        }
        assert!(
            !at_once,
            "{what}: with cache=none the mount must show it at once; it shows {}",
            short_debug(&got)
        );
        assert!(
            start.elapsed() < TTL + TTL_SLACK,
            "{what}: not shown through the mount within {:?}; it shows {}",
            TTL + TTL_SLACK,
            short_debug(&got)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a path shows through the mount: the size and contents of the file it opens, or the
/// errno. Both come from the one open file: a `stat` of the path and a later open can meet two
/// different files when the name's cached entry expires in between.
fn file_view(p: &Path) -> Result<(u64, Vec<u8>), i32> {
    let mut file = File::open(p).map_err(|e| errno(&e))?;
    let size = file.metadata().map_err(|e| errno(&e))?.len();
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| errno(&e))?;
    Ok((size, data))
}

/// Files written, truncated, renamed, chmodded and deleted, and directory entries added and
/// removed, directly in BACKING while mounted: each change shows through the mount, at once
/// with `cache=none`, within the TTL with the default cache. Every path is looked at through
/// the mount before it changes, so the kernel has it cached.
fn backing_changes(opts: &[&str], at_once: bool) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let f = g.m("file");
    let has = |data: &[u8]| {
        let data = data.to_vec();
        move |v: &Result<(u64, Vec<u8>), i32>| v == &Ok((data.len() as u64, data.clone()))
    };

    // Looked up (and not found) first, then created in BACKING.
    assert_eq!(file_view(&f), Err(libc::ENOENT));
    fs::write(g.b("file"), b"one").expect("create in BACKING");
    expect_seen("a new file", at_once, || file_view(&f), has(b"one"));

    // Written (grown), held open through the mount meanwhile.
    let held = File::open(&f).expect("open through the mount");
    let mut grown = b"one".to_vec();
    grown.extend(content("grown", 100_000));
    fs::write(g.b("file"), &grown).expect("rewrite in BACKING");
    expect_seen("a rewritten file", at_once, || file_view(&f), has(&grown));
    if at_once {
        // Direct I/O: an fd opened before the change reads the new data too.
        let mut buf = vec![0; grown.len() + 10];
        let n = held.read_at(&mut buf, 0).expect("read the held fd");
        assert!(
            buf[..n] == grown[..],
            "the held fd reads {}",
            digest(&buf[..n])
        );
    }
    drop(held);

    // Truncated, then chmodded.
    truncate(&g.b("file"), 2).expect("truncate in BACKING");
    expect_seen("a truncated file", at_once, || file_view(&f), has(b"on"));
    fs::set_permissions(g.b("file"), fs::Permissions::from_mode(0o600)).expect("chmod");
    expect_seen(
        "a chmodded file",
        at_once,
        || {
            fs::metadata(&f)
                .map(|m| m.mode() & 0o7777)
                .map_err(|e| errno(&e))
        },
        |v| *v == Ok(0o600),
    );

    // Renamed: the old name goes, the new one comes with the data.
    let r = g.m("renamed");
    assert_eq!(file_view(&r), Err(libc::ENOENT));
    fs::rename(g.b("file"), g.b("renamed")).expect("rename in BACKING");
    expect_seen(
        "a rename's old name",
        at_once,
        || file_view(&f),
        |v| *v == Err(libc::ENOENT),
    );
    expect_seen("a rename's new name", at_once, || file_view(&r), has(b"on"));
    let names = |p: &Path| {
        dir_names(p).map(|n| {
            n.into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
    };
    expect_seen(
        "a rename in a listing",
        at_once,
        || names(&g.mnt).map_err(|e| errno(&e)),
        |v| *v == Ok(vec!["renamed".to_string()]),
    );

    // Deleted.
    fs::remove_file(g.b("renamed")).expect("unlink in BACKING");
    expect_seen(
        "a deleted file",
        at_once,
        || file_view(&r),
        |v| *v == Err(libc::ENOENT),
    );
    expect_seen(
        "a deletion in a listing",
        at_once,
        || names(&g.mnt).map_err(|e| errno(&e)),
        |v| *v == Ok(vec![]),
    );

    // A directory's entries, and the directory itself.
    fs::create_dir(g.b("d")).expect("mkdir in BACKING");
    expect_seen(
        "a new directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Ok(vec![]),
    );
    fs::write(g.b("d/x"), b"x").expect("create in BACKING");
    expect_seen(
        "an entry in a directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Ok(vec!["x".to_string()]),
    );
    fs::remove_file(g.b("d/x")).expect("unlink in BACKING");
    fs::remove_dir(g.b("d")).expect("rmdir in BACKING");
    expect_seen(
        "a deleted directory",
        at_once,
        || names(&g.m("d")).map_err(|e| errno(&e)),
        |v| *v == Err(libc::ENOENT),
    );

    // And the daemon still serves.
    fs::write(g.m("last"), b"last").expect("create through the mount");
    assert_eq!(fs::read(g.b("last")).expect("read in BACKING"), b"last");
}

#[test]
fn backing_changes_show_at_once_with_cache_none_default() {
    backing_changes(&["cache=none"], true);
}

#[test]
fn backing_changes_show_at_once_with_cache_none_devfuse() {
    backing_changes(&["cache=none", "transport=devfuse"], true);
}

#[test]
fn backing_changes_show_within_the_ttl_default() {
    backing_changes(DEFAULT, false);
}

#[test]
fn backing_changes_show_within_the_ttl_devfuse() {
    backing_changes(DEVFUSE, false);
}

// ---------------------------------------------------------------------------------------------
// Stale inodes, also of inodes whose fd the LRU closed
// ---------------------------------------------------------------------------------------------

/// How many files the stale-inode test touches: more than twice the `inode_fds=16` budget.
const STALE_FILES: usize = 40;

/// Version `generation` of file `i`: a different length for every file and version, and
/// contents that name both.
fn version(i: usize, generation: usize) -> Vec<u8> {
    content(
        &format!("f{i:02} v{generation}"),
        3000 + i * 37 + generation * 1001,
    )
}

/// What a path shows through the mount, classified: which version of which file its size and
/// contents are, or the errno.
#[derive(Debug, Clone, PartialEq)]
enum View {
    /// The size and contents of `(file, version)`.
    Is(usize, usize),
    /// An errno from stat or read.
    Errno(i32),
    /// Anything else: another file's data, or a mix.
    Other(String),
}

fn view_of(p: &Path) -> View {
    match file_view(p) {
        Err(code) => View::Errno(code),
        Ok((size, data)) => {
            for i in 0..STALE_FILES {
                for generation in 0..2 {
                    let v = version(i, generation);
                    if data == v && size == v.len() as u64 {
                        return View::Is(i, generation);
                    }
                }
            }
            View::Other(format!(
                "size {size}, data {}",
                short_debug(&String::from_utf8_lossy(&data[..data.len().min(40)]))
            ))
        }
    }
}

/// Files stat'ed and read through a mount with `inode_fds=16`, so the LRU closes the fds of
/// the early ones, are then deleted, replaced or renamed over directly in BACKING and looked
/// at through the mount again. Each look must answer ENOENT, ESTALE, the path's current file
/// in BACKING or (only while the default cache's TTL runs) the file it named before, never
/// another file's data or a mix; within the TTL plus slack it must answer what BACKING has.
/// Fds opened through the mount before the change go on reading the file they opened, as
/// natively. The daemon must serve on afterwards.
fn stale_inodes(opts: &[&str], cache_none: bool) {
    if !require_root_and_fuse() {
        return;
    }
    let mut all = vec!["inode_fds=16"];
    all.extend_from_slice(opts);
    let g = MountGuard::new(&all);
    let name = |i: usize| format!("f{i:02}");
    for i in 0..STALE_FILES {
        fs::write(g.b(&name(i)), version(i, 0)).expect("create in BACKING");
    }
    // Two held open through the mount, then every file stat'ed and read.
    let held: Vec<File> = (0..2)
        .map(|i| File::open(g.m(&name(i))).expect("open through the mount"))
        .collect();
    for i in 0..STALE_FILES {
        assert_eq!(
            view_of(&g.m(&name(i))),
            View::Is(i, 0),
            "{} first read",
            name(i)
        );
    }
    // The LRU closed the early inodes' fds: no daemon fd names f02..f09 any more.
    let fds = g.daemon_fds();
    for i in 2..10 {
        let p = g.b(&name(i)).to_string_lossy().into_owned();
        assert!(
            !fds.contains(&p),
            "{} still has an fd in the daemon with inode_fds=16: {fds:?}",
            name(i)
        );
    }

    // What each name must come to show; `None` = gone.
    let mut expected: BTreeMap<usize, Option<(usize, usize)>> = BTreeMap::new();
    let before: BTreeMap<usize, u64> = (0..STALE_FILES)
        .map(|i| (i, fs::metadata(g.b(&name(i))).expect("stat").ino()))
        .collect();
    // Held open (fd evicted from the LRU or not): replaced, and deleted.
    fs::remove_file(g.b(&name(0))).expect("unlink");
    fs::write(g.b(&name(0)), version(0, 1)).expect("replace");
    expected.insert(0, Some((0, 1)));
    fs::remove_file(g.b(&name(1))).expect("unlink");
    expected.insert(1, None);
    // Evicted, only stat'ed and read: replaced (the new files may reuse the inode numbers),
    // deleted, and renamed over (f08 becomes f09's file).
    for i in 2..6 {
        fs::remove_file(g.b(&name(i))).expect("unlink");
        fs::write(g.b(&name(i)), version(i, 1)).expect("replace");
        expected.insert(i, Some((i, 1)));
    }
    for i in 6..8 {
        fs::remove_file(g.b(&name(i))).expect("unlink");
        expected.insert(i, None);
    }
    fs::rename(g.b(&name(9)), g.b(&name(8))).expect("rename over");
    expected.insert(8, Some((9, 0)));
    expected.insert(9, None);
    // Recent, fd still open in the daemon: replaced and deleted.
    fs::remove_file(g.b(&name(35))).expect("unlink");
    fs::write(g.b(&name(35)), version(35, 1)).expect("replace");
    expected.insert(35, Some((35, 1)));
    fs::remove_file(g.b(&name(36))).expect("unlink");
    expected.insert(36, None);
    // Which names now hold an inode number a deleted file had (ext4 reuses them at once):
    // there only the generation in the daemon's file handle tells the files apart.
    let reused: Vec<String> = (0..STALE_FILES)
        .filter_map(|i| {
            let ino = fs::metadata(g.b(&name(i))).ok()?.ino();
            let (&was, _) = before.iter().find(|&(&j, &old)| old == ino && j != i)?;
            Some(format!("{} has {}'s", name(i), name(was)))
        })
        .chain(
            expected
                .iter()
                .filter(|&(&i, e)| {
                    e.is_some_and(|(f, _)| f == i)
                        && fs::metadata(g.b(&name(i))).is_ok_and(|m| m.ino() == before[&i])
                })
                .map(|(&i, _)| format!("{} has its own old one", name(i))),
        )
        .collect();
    eprintln!("stale_inodes: replacements that reuse an inode number: {reused:?}");

    // The held fds read the files they opened, as natively.
    let mut buf = vec![0; 20_000];
    for (i, f) in held.iter().enumerate() {
        let n = f.read_at(&mut buf, 0).expect("read a held fd");
        assert!(
            buf[..n] == version(i, 0)[..],
            "{} held open before the change reads {}",
            name(i),
            digest(&buf[..n])
        );
    }

    // Every changed name: allowed answers only, until BACKING's.
    for (&i, &want) in &expected {
        let p = g.m(&name(i));
        let old = View::Is(i, 0);
        let want = want.map_or(View::Errno(libc::ENOENT), |(f, v)| View::Is(f, v));
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let v = view_of(&p);
            if !seen.contains(&v) {
                seen.push(v.clone());
            }
            if v == want {
                break;
            }
            let allowed =
                matches!(v, View::Errno(libc::ENOENT | libc::ESTALE)) || (v == old && !cache_none);
            assert!(
                allowed,
                "{} after its change in BACKING: {v:?} (expected {want:?}; seen {seen:?})",
                name(i)
            );
            assert!(
                start.elapsed() < TTL + TTL_SLACK,
                "{} shows {v:?}, not {want:?}, {:?} after its change in BACKING (seen {seen:?})",
                name(i),
                TTL + TTL_SLACK
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if seen.len() > 1 {
            eprintln!("stale_inodes: {} answered {seen:?}", name(i));
        }
    }

    // The untouched files (all evicted long ago or not) still read right, and the daemon
    // serves new work.
    for i in (10..STALE_FILES).filter(|i| !expected.contains_key(i)) {
        assert_eq!(
            view_of(&g.m(&name(i))),
            View::Is(i, 0),
            "untouched {}",
            name(i)
        );
    }
    drop(held);
    fs::write(g.m("new"), b"new").expect("create through the mount");
    assert_eq!(fs::read(g.b("new")).expect("read in BACKING"), b"new");
}

#[test]
fn stale_inodes_after_lru_eviction_default() {
    stale_inodes(DEFAULT, false);
}

#[test]
fn stale_inodes_after_lru_eviction_devfuse() {
    stale_inodes(DEVFUSE, false);
}

#[test]
fn stale_inodes_after_lru_eviction_cache_none_default() {
    stale_inodes(&["cache=none"], true);
}

#[test]
fn stale_inodes_after_lru_eviction_cache_none_devfuse() {
    stale_inodes(&["cache=none", "transport=devfuse"], true);
}
