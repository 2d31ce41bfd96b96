//! One audit, start to end: checks, tree, mount (or attach), trace, workloads, unmount,
//! analysis, report.
//!
//! Every resource is a guard declared in acquisition order, so an error at any step drops them
//! in reverse: strace is stopped first, then the audit's files in an attached mount are
//! removed, then a mount we made is detached and its daemon killed, then the scratch
//! directory is removed. Nothing is left mounted.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::analysis::{Analysis, Phase, analyse};
use super::counters::{self, RingCounters};
use super::daemon::{Daemon, mount_containing, now};
use super::options::{AuditArgs, WorkloadKind};
use super::report::{self, Context};
use super::score::{self, Inputs};
use super::trace;
use super::tracer::{self, Tracer};
use super::transport::{self, Hints};
use super::workload::{self, Tree, shell_quote};
use crate::sys;

/// What a finished audit produced.
pub struct Outcome {
    /// The Markdown report.
    pub report: String,
    /// Where to write it (`None`: stdout), already opened (checked before mounting).
    pub output: Option<File>,
    /// The `--check` targets that failed.
    pub failures: Vec<String>,
}

/// Signals that end an audit early. They are blocked and taken by a thread, so the audit
/// stops at the next step and its guards unmount and clean up (a default SIGINT would kill it
/// and leave the mount behind). Children inherit the blocked mask (strace showed it: it
/// waited with SIGINT blocked), so a Ctrl-C ends the audit after the running workload command
/// rather than during it, and strace is stopped with SIGPIPE (tracer.rs).
const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Set by the signal thread when a [`STOP_SIGNALS`] signal arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Routes [`STOP_SIGNALS`] to a thread that sets [`INTERRUPTED`]; without it (if blocking
/// fails) the signals keep their default action.
fn catch_stop_signals() {
    if sys::block_signals(&STOP_SIGNALS).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("audit-signals".into())
        .spawn(|| {
            while sys::sigwait(&STOP_SIGNALS).is_ok() {
                INTERRUPTED.store(true, Ordering::Relaxed);
            }
        });
    if spawned.is_err() {
        log::warn!("cannot start the audit's signal thread");
    }
}

/// An error if a stop signal arrived.
fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err("interrupted by a signal; cleaned up".to_string())
    } else {
        Ok(())
    }
}

/// Removes a directory tree on drop.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Runs the audit described by `args`; `argv` is the command line after `audit`.
pub fn run(args: &AuditArgs, argv: &[OsString]) -> Result<Outcome, String> {
    catch_stop_signals();
    // Everything that can be wrong with the input is checked before anything is mounted.
    let strace_version = tracer::check_installed()?;
    let output = match &args.output {
        Some(path) => Some(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let steps = args.workload.steps();
    for (tool, package) in workload::required_tools(&steps) {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "{tool} is needed by the workload but not installed (apt-get install -y {package})"
            ));
        }
    }
    let attached = match args.pid {
        Some(pid) => Some(Daemon::attach(pid)?),
        None => None,
    };
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
    };
    if attached.is_none() {
        if !fs::metadata(&bin).is_ok_and(|m| m.is_file()) {
            return Err(format!("uringfs binary {} not found", bin.display()));
        }
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing; the audit needs FUSE".to_string());
        }
    }
    let scratch_parent = args
        .scratch
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let scratch_parent = fs::canonicalize(&scratch_parent)
        .map_err(|e| format!("scratch directory {}: {e}", scratch_parent.display()))?;
    let scratch_fstype =
        mount_containing(&scratch_parent).map_or_else(|| "unknown".to_string(), |(_, t)| t);
    let run_dir = scratch_parent.join(format!(
        "uringfs-audit.{}.{}",
        std::process::id(),
        (now() * 1e6) as u64 % 1_000_000
    ));
    fs::create_dir(&run_dir).map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let _run_dir_guard = RemoveOnDrop(Some(run_dir.clone()));

    let tree = workload::generate(&run_dir.join("src"), args.files, args.size)
        .map_err(|e| format!("cannot generate the tree in {}: {e}", run_dir.display()))?;
    check_interrupted()?;
    let needs_tree = !steps.contains(&WorkloadKind::Copy);
    let mut setup = Vec::new();

    let (mut daemon, target) = match attached {
        Some(daemon) => {
            let target = daemon
                .mnt
                .join(format!("uringfs-audit.{}", std::process::id()));
            (daemon, target)
        }
        None => {
            let backing = run_dir.join("backing");
            let mnt = run_dir.join("mnt");
            for d in [&backing, &mnt] {
                fs::create_dir(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            if needs_tree {
                // Without copy, the other workloads need the tree in BACKING already.
                let cmd = format!(
                    "cp -a {} {}/",
                    shell_quote(&tree.root.join(".")),
                    shell_quote(&backing)
                );
                workload::run(&cmd)?;
                setup.push(format!("{cmd}   # untraced, before mounting"));
            }
            let daemon = Daemon::spawn(
                &bin,
                &backing,
                &mnt,
                &run_dir.join("daemon.log"),
                args.mount_options.as_deref(),
            )?;
            (daemon, mnt)
        }
    };
    let mut target_guard = RemoveOnDrop(None);
    if !daemon.owned() {
        fs::create_dir(&target)
            .map_err(|e| format!("cannot create {} in the mount: {e}", target.display()))?;
        target_guard.0 = Some(target.clone());
        setup.push(format!("mkdir {}   # untraced", shell_quote(&target)));
        if needs_tree {
            let cmd = format!(
                "cp -a {} {}/",
                shell_quote(&tree.root.join(".")),
                shell_quote(&target)
            );
            workload::run(&cmd)?;
            setup.push(format!("{cmd}   # untraced, before strace attaches"));
        }
    }

    let trace_path = run_dir.join("daemon.strace");
    check_interrupted()?;
    let mut tracer = Tracer::attach(daemon.pid, &trace_path, &run_dir.join("strace.err"))?;
    let window_start = now();
    let start_counters = snapshot(&daemon);

    let owner = if sys::geteuid() == 0 {
        (65534, 65534)
    } else {
        let meta = fs::metadata(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        (meta.uid(), meta.gid())
    };
    let mut phases = Vec::new();
    let mut step_commands = Vec::new();
    for kind in &steps {
        let cmds = workload::commands(*kind, &tree, &target, owner);
        let before = snapshot(&daemon);
        let start = now();
        for c in &cmds {
            workload::run(c).and_then(|()| check_interrupted())?;
        }
        let end = now();
        let after = snapshot(&daemon);
        let attr_replies = before.zip(after).map(|(b, a)| {
            ["getattr", "setattr"]
                .iter()
                .map(|op| a.op_requests(op).saturating_sub(b.op_requests(op)))
                .sum()
        });
        phases.push(Phase {
            name: kind.name().to_string(),
            start,
            end,
            // A copy creates the directories too, and each new entry is learnt the same way.
            files: if *kind == WorkloadKind::Copy {
                tree.files + tree.dirs
            } else {
                tree.files
            },
            attr_replies,
        });
        step_commands.push((kind.name().to_string(), cmds));
    }

    // Thread names once more while the daemon still runs: a queue thread started after the
    // attach (strace follows it with -f) is named here.
    let mut hints = Hints {
        threads: tracer
            .tasks
            .iter()
            .chain(tracer::tasks(daemon.pid).iter())
            .map(|t| (t.tid, t.comm.clone()))
            .collect(),
        ring_entries: tracer.ring_entries.clone(),
        log_line: None,
    };
    let (window_end, unmounted, end_counters, counters_note) = if daemon.owned() {
        let requested = daemon.unmount()?;
        tracer.wait_exit()?;
        let log = daemon.log_text();
        let end = counters::unmount_line(&log);
        let note = if end.is_some() {
            "unmount line minus the SIGUSR1 snapshot at window start"
        } else {
            "no unmount line in the daemon's log"
        };
        (requested, true, end, note.to_string())
    } else {
        let end = snapshot(&daemon);
        let ended = now();
        tracer.stop()?;
        let note = match &daemon.log {
            Some(l) if end.is_some() => format!(
                "SIGUSR1 lines in {} at window end minus window start",
                l.display()
            ),
            Some(l) => format!("no stats line appeared in {}", l.display()),
            None => "the daemon's stderr is not a regular file (background mode sends it to \
                     /dev/null); start it with -f 2>LOG to get them"
                .to_string(),
        };
        (ended, false, end, note)
    };
    drop(target_guard);
    hints.log_line = transport::from_log(&daemon.log_text());
    let fuse_requests = match (&end_counters, &start_counters) {
        (Some(end), Some(start)) => Some(end.requests_since(start)),
        _ => None,
    };
    let counters = match (end_counters, start_counters) {
        (Some(end), Some(start)) => Some(end.since(&start)),
        (end, _) => end,
    };

    let text = fs::read_to_string(&trace_path)
        .map_err(|e| format!("cannot read the trace {}: {e}", trace_path.display()))?;
    let (calls, unparsed) = trace::parse(&text);
    let backing = daemon
        .backing
        .as_deref()
        .map(|b| b.to_string_lossy().into_owned());
    let analysis = analyse(
        &calls,
        tracer.fds.clone(),
        tracer.cwds.clone(),
        backing.as_deref(),
        &phases,
        unmounted.then_some(window_end),
        &hints,
    );
    let mut inputs = inputs(&analysis, counters.as_ref(), unmounted);
    inputs.transport = analysis.transport.kind(hints.log_line.as_deref());
    let score = score::score(&inputs);
    let targets = score::targets(&inputs, &score);
    let failures = score::check_failures(&targets);

    let audit_command = std::iter::once("uringfs audit".to_string())
        .chain(argv.iter().map(|a| shell_quote(Path::new(a))))
        .collect::<Vec<_>>()
        .join(" ");
    let ctx = Context {
        audit_command,
        attached: args.pid.is_some(),
        pid: daemon.pid,
        daemon_command: daemon.command.clone(),
        strace_command: tracer.command.clone(),
        strace_version,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |k| k.trim().to_string()),
        mnt: daemon.mnt.display().to_string(),
        backing: backing.unwrap_or_else(|| "unknown".into()),
        scratch: run_dir.display().to_string(),
        scratch_fstype,
        tree: tree_shape(&tree),
        setup,
        steps: step_commands,
        unmount_command: unmounted.then(|| format!("umount {}", shell_quote(&daemon.mnt))),
        window_start,
        window_end,
        unmounted,
        tasks: tracer.tasks.clone(),
        counters,
        counters_note,
        unparsed,
        transport_line: hints.log_line.clone(),
        threads: hints.threads.clone(),
        fuse_requests,
    };
    let report = report::render(&ctx, &analysis, &inputs, &score, &targets);
    Ok(Outcome {
        report,
        output,
        failures,
    })
}

fn tree_shape(tree: &Tree) -> (u64, u64, u64) {
    (tree.files, tree.dirs, tree.size)
}

/// The score's inputs from the analysis.
fn inputs(a: &Analysis, counters: Option<&RingCounters>, unmounted: bool) -> Inputs {
    Inputs {
        path_based: Analysis::classes(&a.path_based),
        follows: Analysis::classes(&a.follows),
        backing_data: Analysis::classes(&a.backing_data),
        stat_per_new_file: a.stat_per_new_file(),
        raw_stat_per_new_file: a.raw_stat_per_new_file(),
        teardown_path_based: a.teardown_path_based.len() as u64,
        teardown_observed: unmounted,
        enters: a.uring.enters,
        ring_off: counters.is_some_and(|c| c.ring_off),
        transport: a.transport.kind(None),
        dev_fuse_stray: a.transport.dev_fuse.stray(),
        dev_fuse_forgetish: a.transport.dev_fuse.forgetish(),
    }
}

/// Sends SIGUSR1 and returns the counters line it produces in the daemon's log, if the log
/// is readable.
fn snapshot(daemon: &Daemon) -> Option<RingCounters> {
    daemon.log.as_ref()?;
    let count = |text: &str| text.lines().filter(|l| l.contains("stats: ring:")).count();
    let before = count(&daemon.log_text());
    daemon.request_counters().ok()?;
    // Generous: under load the daemon's signal thread may be slow to log.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let text = daemon.log_text();
        if count(&text) > before {
            return counters::last_in_log(&text);
        }
        sleep(Duration::from_millis(10));
    }
    None
}
