//! The daemon killed in the middle of a workload.

use super::*;

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
