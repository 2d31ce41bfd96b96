//! `uringfs [OPTIONS] BACKING MOUNTPOINT`: command line, daemonizing, mount, signals.

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use fuser::{Config, MountOption, Session, SessionACL};
use log::{error, info};

use parking_lot::Mutex;
use uringfs::datapath::DataPath;
use uringfs::fs::{DevFuse, RingStart, UringFs};
use uringfs::logging;
use uringfs::options::{MountOptions, OPTIONS_HELP, parse_threads};
use uringfs::ring::{BATCH_BUCKET_LABELS, DEFAULT_RING_DEPTH, RingPool};
use uringfs::stats::OpStats;
use uringfs::sys;
use uringfs::transport::uring::dispatch::RingDispatch;
use uringfs::transport::uring::queue::Queues;
use uringfs::transport::uring::queue_stats::QueueStats;
use uringfs::transport::uring::setup::{self, RingPlan, RingSupport};

/// Mount a mirror of BACKING at MOUNTPOINT; the data path runs on io_uring.
#[derive(Debug, Parser)]
#[command(name = "uringfs", version, after_help = OPTIONS_HELP)]
struct Cli {
    /// Stay in the foreground (for systemd and tests) instead of daemonizing.
    #[arg(short, long)]
    foreground: bool,
    /// Log every request (like RUST_LOG=debug).
    #[arg(short, long)]
    debug: bool,
    /// Mount options, comma-separated (listed below with their defaults).
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    options: Vec<String>,
    /// FUSE worker threads (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
    /// The directory to mirror.
    backing: PathBuf,
    /// Where to mount it.
    mountpoint: PathBuf,
}

/// Everything checked before anything is mounted.
struct Plan {
    cli: Cli,
    opts: MountOptions,
    backing: CString,
    mountpoint: PathBuf,
    /// What the kernel offers above the floor (probed before forking, so `-o uring=on`
    /// without a ring is a pre-mount error).
    features: uringfs::probe::Features,
    /// The io_uring transport's queues, or `None` for `/dev/fuse`.
    ring: Option<RingPlan>,
    /// Which transport, and why: logged once the log is set up.
    transport: String,
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "audit") {
        return uringfs::audit::main(args.collect());
    }
    let cli: Cli = match uringfs::cli::parse("uringfs", std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match plan(cli) {
        Ok(plan) => run(plan),
        Err(msg) => {
            eprintln!("uringfs: {msg}");
            ExitCode::from(1)
        }
    }
}

fn plan(cli: Cli) -> Result<Plan, String> {
    let mut opts = MountOptions::default();
    for list in &cli.options {
        opts.apply(list)?;
    }
    if cli.threads.is_some() {
        opts.threads = cli.threads;
    }
    let caps = sys::thread_caps().map_or(0, |c| c.effective);
    if opts.passthrough && caps & uringfs::creds::CAP_SYS_ADMIN == 0 {
        return Err("-o passthrough needs CAP_SYS_ADMIN (run as root)".to_string());
    }
    check_dir(&cli.backing, "backing directory")?;
    check_dir(&cli.mountpoint, "mount point")?;
    sys::access_path(c"/dev/fuse", libc::R_OK | libc::W_OK).map_err(|e| {
        format!("cannot use /dev/fuse: {e} (an ordinary user needs it mode 0666, as distributions ship it)")
    })?;
    let backing = std::fs::canonicalize(&cli.backing)
        .map_err(|e| format!("backing directory {}: {e}", cli.backing.display()))?;
    let mountpoint = std::fs::canonicalize(&cli.mountpoint)
        .map_err(|e| format!("mount point {}: {e}", cli.mountpoint.display()))?;
    let backing = CString::new(backing.as_os_str().as_bytes())
        .map_err(|_| "backing path contains a NUL byte".to_string())?;
    let features = uringfs::probe::probe(opts.uring)?;
    let io_uring_usable = matches!(features.uring, uringfs::probe::Uring::Usable { .. });
    let (ring, transport) = setup::choose(&opts, &RingSupport::read(io_uring_usable))?;
    Ok(Plan {
        cli,
        opts,
        backing,
        mountpoint,
        features,
        ring,
        transport,
    })
}

fn check_dir(path: &Path, what: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{what} {} is not a directory", path.display())),
        Err(e) => Err(format!("{what} {}: {e}", path.display())),
    }
}

fn run(plan: Plan) -> ExitCode {
    if plan.cli.foreground {
        logging::init_stderr(plan.cli.debug);
        return match serve(&plan, None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("uringfs: {msg}");
                ExitCode::from(1)
            }
        };
    }
    if !logging::syslog_available() {
        eprintln!(
            "uringfs: no syslog socket (/dev/log) takes messages: the daemon's log is lost \
             in the background; run with -f to see it"
        );
    }
    // Fork while still single-threaded; the parent returns once the child says the mount
    // is live (or why it is not).
    let (ready_read, ready_write) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("uringfs: cannot create a pipe: {e}");
            return ExitCode::from(1);
        }
    };
    // SAFETY: no thread has been started yet: the mount, the workers and the signal thread
    // all start in the child.
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() };
    match forked {
        Err(e) => {
            eprintln!("uringfs: cannot fork: {e}");
            ExitCode::from(1)
        }
        Ok(sys::Forked::Parent(pid)) => {
            drop(ready_write);
            wait_ready(ready_read, pid)
        }
        Ok(sys::Forked::Child) => {
            drop(ready_read);
            logging::init_syslog(plan.cli.debug);
            if let Err(e) = detach() {
                report(&ready_write, &format!("cannot detach: {e}"));
                return ExitCode::from(1);
            }
            match serve(&plan, Some(&ready_write)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    report(&ready_write, &msg);
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Sends the parent one line: "ok" or the error.
fn report(ready: &OwnedFd, msg: &str) {
    let _ = sys::write(ready.as_fd(), format!("{msg}\n").as_bytes());
}

fn wait_ready(ready: OwnedFd, pid: i32) -> ExitCode {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while let Ok(n) = sys::read(ready.as_fd(), &mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"\n") {
            break;
        }
    }
    let msg = String::from_utf8_lossy(&buf);
    let msg = msg.trim();
    if msg == "ok" {
        return ExitCode::SUCCESS;
    }
    let _ = sys::waitpid(pid);
    if msg.is_empty() {
        eprintln!("uringfs: the daemon exited before the mount was live");
    } else {
        eprintln!("uringfs: {msg}");
    }
    ExitCode::from(1)
}

/// New session, stdio on /dev/null: the daemon must not hold its starter's terminal or pipes.
fn detach() -> std::io::Result<()> {
    sys::setsid()?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for target in 0..=2 {
        sys::dup2(null.as_fd(), target)?;
    }
    Ok(())
}

fn serve(plan: &Plan, ready: Option<&OwnedFd>) -> Result<(), String> {
    // Blocked before any thread starts (the data path's, the core's, fuser's), so that only
    // the signal thread receives them: a thread with SIGUSR1 unblocked would die of it.
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1];
    sys::block_signals(&signals).map_err(|e| format!("cannot block signals: {e}"))?;
    sys::umask(0);
    // Start-up only (before the mount is live): the one setting read by path.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20);
    if let Err(e) = sys::raise_nofile_limit(nr_open) {
        log::warn!("cannot raise RLIMIT_NOFILE: {e}");
    }
    let fd_budget = plan
        .opts
        .inode_fds
        .unwrap_or_else(|| uringfs::inode::fd_budget(sys::nofile_limit().unwrap_or(1024)));
    if !plan.opts.ignored.is_empty() {
        let ignored: Vec<String> = plan
            .opts
            .ignored
            .iter()
            .map(|(opt, why)| format!("{opt} ({why})"))
            .collect();
        info!("ignoring mount options: {}", ignored.join(", "));
    }
    let backing = sys::open_dir_path(&plan.backing, libc::O_PATH)
        .map_err(|e| format!("cannot open backing directory: {e}"))?;
    let backing_mount_flags = sys::fstatvfs(backing.as_fd())
        .map_err(|e| format!("cannot statfs the backing directory: {e}"))?
        .f_flag;
    let proc_self_fd = sys::open_dir_path(c"/proc/self/fd", libc::O_PATH)
        .map_err(|e| format!("cannot open /proc/self/fd: {e}"))?;
    let proc_root = sys::open_dir_path(c"/proc", libc::O_PATH)
        .map_err(|e| format!("cannot open /proc: {e}"))?;
    plan.features.log();
    let data = DataPath::start(&plan.features, DEFAULT_RING_DEPTH)?;
    let ring = data.ring().cloned();
    let stats = Arc::new(OpStats::default());
    let fs = UringFs::new(
        backing,
        proc_self_fd,
        proc_root,
        plan.opts.clone(),
        Arc::clone(&stats),
        data,
        fd_budget,
    )
    .map_err(|e| format!("cannot serve the backing directory: {e}"))?;

    let config = fuser_config(plan, backing_mount_flags);
    info!("FUSE transport: {}", plan.transport);
    let prepared = Arc::new(Mutex::new(None));
    let ring_start = plan.ring.map(|plan| RingStart {
        plan,
        prepared: Arc::clone(&prepared),
    });
    let core = Arc::new(fs);
    let devfuse = DevFuse::new(Arc::clone(&core), ring_start);
    let mut session = Session::new(devfuse, &plan.mountpoint, &config)
        .map_err(|e| format!("cannot mount {}: {e}", plan.mountpoint.display()))?;
    core.set_notifier(session.notifier());
    // INIT was negotiated inside Session::new: if it accepted the ring transport, the kernel
    // now holds every request until each queue registers, so they start at once, and a
    // failure ends the daemon (and with it the connection) rather than leaving a hung mount.
    let queues = match prepared.lock().take() {
        Some(prepared) => Some(
            prepared
                .start(
                    session.as_fd(),
                    Arc::new(RingDispatch::new(
                        Arc::clone(&core),
                        session
                            .as_fd()
                            .try_clone_to_owned()
                            .map_err(|e| format!("cannot dup /dev/fuse: {e}"))?,
                    )),
                )
                .map_err(|e| format!("cannot start the io_uring queues: {e}"))?,
        ),
        None => None,
    };
    info!(
        "mounted {} on {}",
        plan.backing.to_string_lossy(),
        plan.mountpoint.display()
    );
    if let Some(ready) = ready {
        report(ready, "ok");
    }
    let unmounter = session.unmount_callable();
    let mountpoint = plan.mountpoint.clone();
    let counters = Counters {
        ops: Arc::clone(&stats),
        ring,
        transport: queues.as_ref().map(Queues::stats),
    };
    let signal_counters = counters.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || handle_signals(&signals, unmounter, &mountpoint, &signal_counters))
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    let result = session.run();
    if let Some(queues) = queues {
        // The kernel ends the queues' commands with the connection; their threads then exit.
        queues.join();
    }
    info!("unmounted; {}", counters.summary());
    counters.log_transport();
    let _ = std::io::stderr().flush();
    result.map_err(|e| format!("session ended with an error: {e}"))
}

fn handle_signals(
    signals: &[i32],
    mut unmounter: fuser::SessionUnmounter,
    mountpoint: &Path,
    counters: &Counters,
) {
    loop {
        match sys::sigwait(signals) {
            Ok(libc::SIGUSR1) => {
                info!("{}", counters.summary());
                counters.log_transport();
            }
            Ok(sig) => {
                info!("signal {sig}: unmounting {}", mountpoint.display());
                if let Err(e) = unmounter.unmount() {
                    // Busy (a process has its cwd inside): detach so the session ends.
                    error!("unmount failed ({e}); detaching");
                    if let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes())
                        && let Err(e) = sys::umount_detach(&path)
                    {
                        error!("detach failed: {e}");
                    }
                }
                return;
            }
            Err(e) => {
                error!("sigwait: {e}");
                return;
            }
        }
    }
}

/// What SIGUSR1 and the unmount print.
#[derive(Clone)]
struct Counters {
    ops: Arc<OpStats>,
    ring: Option<RingPool>,
    /// The FUSE-over-io_uring queues', when they serve.
    transport: Option<Arc<QueueStats>>,
}

impl Counters {
    /// The io_uring transport's counters, on a line of their own (the `stats:` line's
    /// shape is what tools parse).
    fn log_transport(&self) {
        if let Some(transport) = &self.transport {
            info!("{}", transport.summary());
        }
    }

    /// One line: the ring's counters ("ops per enter" included), then the ops'.
    fn summary(&self) -> String {
        let ring = match &self.ring {
            Some(ring) => {
                let s = ring.stats();
                let per_enter = if s.enters == 0 {
                    0.0
                } else {
                    s.sqes_submitted as f64 / s.enters as f64
                };
                let hist: Vec<String> = BATCH_BUCKET_LABELS
                    .iter()
                    .zip(s.batch_histogram)
                    .map(|(label, n)| format!("{label}:{n}"))
                    .collect();
                format!(
                    "ring: rings={} sqes={} enters={} ops_per_enter={per_enter:.2} batches=[{}]",
                    s.rings_created,
                    s.sqes_submitted,
                    s.enters,
                    hist.join(" ")
                )
            }
            None => "ring: off".to_string(),
        };
        format!("stats: {ring} ops:{}", self.ops.summary())
    }
}

/// fuser's configuration; `backing_mount_flags` are BACKING's `statvfs` `f_flag`.
fn fuser_config(plan: &Plan, backing_mount_flags: u64) -> Config {
    let opts = &plan.opts;
    let mut config = Config::default();
    let fsname = opts
        .fsname
        .clone()
        .unwrap_or_else(|| plan.backing.to_string_lossy().into_owned());
    config.mount_options = vec![
        MountOption::FSName(fsname),
        MountOption::Subtype("uringfs".into()),
        if opts.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if opts.default_permissions {
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    // The mirror is no more permissive than BACKING's own mount: setuid and device files work
    // through it only where they work in BACKING (and only root may mount with them), else a
    // nosuid,nodev USB stick mirrored with allow_other would hand out root.
    let root = sys::geteuid() == 0;
    let allows = |flag: u64| backing_mount_flags & flag == 0;
    if root && !opts.nodev && allows(libc::ST_NODEV) {
        config.mount_options.push(MountOption::Dev);
    } else {
        config.mount_options.push(MountOption::NoDev);
    }
    if root && !opts.nosuid && allows(libc::ST_NOSUID) {
        config.mount_options.push(MountOption::Suid);
    } else {
        config.mount_options.push(MountOption::NoSuid);
    }
    if opts.noexec || !allows(libc::ST_NOEXEC) {
        config.mount_options.push(MountOption::NoExec);
    }
    if opts.noatime {
        config.mount_options.push(MountOption::NoAtime);
    }
    if opts.sync {
        config.mount_options.push(MountOption::Sync);
    }
    if opts.dirsync {
        config.mount_options.push(MountOption::DirSync);
    }
    if opts.auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
    }
    // The kernel knows only allow_other; allow_root is allow_other plus fuser turning away
    // everyone but root and the mounter.
    config.acl = if opts.allow_other {
        SessionACL::All
    } else if opts.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.unwrap_or_else(sys::available_cpus));
    // One /dev/fuse fd per worker: requests don't queue behind one reader.
    config.clone_fd = true;
    config
}
