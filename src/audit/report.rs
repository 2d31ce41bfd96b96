//! The Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::analysis::{Analysis, Listed};
use super::classify::{Category, Resolution, category};
use super::counters::RingCounters;
use super::score::{Inputs, RULE, Score, Target};
use super::tracer::Task;
use super::transport::{self, Kind};
use crate::ring::BATCH_BUCKET_LABELS;

/// At most this many calls are printed per listing; the rest are counted.
const MAX_LISTED: usize = 200;

/// Calls are printed up to this many characters.
const MAX_CALL_CHARS: usize = 220;

/// Everything about the run that is not in the trace.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The audit's own command line.
    pub audit_command: String,
    /// Attached to a running daemon (`--pid`) rather than a scratch mount.
    pub attached: bool,
    /// The daemon's pid.
    pub pid: u32,
    /// How the daemon was started.
    pub daemon_command: String,
    /// The strace command.
    pub strace_command: String,
    /// strace's version line.
    pub strace_version: String,
    /// Kernel release.
    pub kernel: String,
    /// Mount point.
    pub mnt: String,
    /// BACKING.
    pub backing: String,
    /// Where the tree was generated, and that filesystem's type.
    pub scratch: String,
    /// See `scratch`.
    pub scratch_fstype: String,
    /// Generated tree: files, directories, bytes per file.
    pub tree: (u64, u64, u64),
    /// Untraced preparation commands (run before strace attached).
    pub setup: Vec<String>,
    /// Per workload: its name and its commands, in order.
    pub steps: Vec<(String, Vec<String>)>,
    /// The unmount command, when the audit unmounted.
    pub unmount_command: Option<String>,
    /// When strace had attached to every thread.
    pub window_start: f64,
    /// When the unmount was requested (or the attached run ended).
    pub window_end: f64,
    /// True if `window_end` is an unmount request.
    pub unmounted: bool,
    /// The daemon's threads when strace attached.
    pub tasks: Vec<Task>,
    /// Ring counters over the window (unmount line minus the snapshot at window start).
    pub counters: Option<RingCounters>,
    /// Where the counters come from, or why there are none.
    pub counters_note: String,
    /// Trace lines the parser did not understand.
    pub unparsed: u64,
    /// The daemon's `FUSE transport: ...` start-up line (after the prefix), if in its log.
    pub transport_line: Option<String>,
    /// Thread id -> name, at attach and before the unmount.
    pub threads: BTreeMap<u32, String>,
    /// FUSE requests the daemon served in the window (its counters: every op but forget).
    pub fuse_requests: Option<u64>,
}

/// Renders the report.
pub fn render(
    ctx: &Context,
    a: &Analysis,
    inputs: &Inputs,
    score: &Score,
    targets: &[Target],
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# uringfs syscall audit\n");
    let _ = writeln!(
        o,
        "`{}` — daemon pid {} ({}), kernel {}, {}.\n",
        ctx.audit_command,
        ctx.pid,
        if ctx.attached {
            "attached with --pid"
        } else {
            "scratch mount started by the audit"
        },
        ctx.kernel,
        ctx.strace_version
    );
    headline(&mut o, ctx, a, inputs, score);
    targets_section(&mut o, targets);
    score_section(&mut o, score);
    window_section(&mut o, ctx, a);
    path_based_section(&mut o, a);
    follows_section(&mut o, a);
    fd_relative_section(&mut o, a);
    fallbacks_section(&mut o, a);
    per_file_section(&mut o, a);
    uring_section(&mut o, ctx, a);
    transport_section(&mut o, ctx, a, inputs);
    data_section(&mut o, a);
    totals_section(&mut o, a);
    teardown_section(&mut o, ctx, a);
    commands_section(&mut o, ctx);
    o
}

fn headline(o: &mut String, ctx: &Context, a: &Analysis, inputs: &Inputs, score: &Score) {
    let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    let _ = writeln!(o, "## Headline figures\n");
    let _ = writeln!(o, "| figure | value | target |");
    let _ = writeln!(o, "|---|---|---|");
    let _ = writeln!(
        o,
        "| path-based calls (window) | {} | 0 |",
        sum(&inputs.path_based)
    );
    let _ = writeln!(
        o,
        "| possible symlink follows | {} | 0 |",
        sum(&inputs.follows)
    );
    let _ = writeln!(
        o,
        "| statx per new file (copy; beyond one per getattr/setattr reply) | {} | <= 1.0 |",
        inputs
            .stat_per_new_file
            .map_or("not measured".into(), |s| format!("{s:.2}"))
    );
    let _ = writeln!(
        o,
        "| statx per new file (copy; all, attribute replies included) | {} | (info) |",
        inputs
            .raw_stat_per_new_file
            .map_or("not measured".into(), |s| format!("{s:.2}"))
    );
    let _ = writeln!(
        o,
        "| direct reads/writes on backing files | {} | 0 |",
        sum(&inputs.backing_data)
    );
    let _ = writeln!(
        o,
        "| SQEs per io_uring_enter (strace) | {:.2} ({} SQEs / {} enters) | - |",
        a.uring.per_enter(),
        a.uring.sqes,
        a.uring.enters
    );
    let _ = writeln!(
        o,
        "| SQEs per io_uring_enter (daemon counters) | {} | - |",
        ctx.counters
            .as_ref()
            .map_or("unavailable".into(), |c| format!(
                "{:.2} ({} SQEs / {} enters)",
                c.ops_per_enter(),
                c.sqes,
                c.enters
            ))
    );
    transport_headline(o, ctx, a, inputs);
    let _ = writeln!(o, "| security score | {}/100 | >= 80 |\n", score.points);
}

/// `x / y` with two decimals, or "n/a" when `y` is 0.
fn ratio(x: u64, y: u64) -> String {
    if y == 0 {
        "n/a".to_string()
    } else {
        format!("{:.2}", x as f64 / y as f64)
    }
}

fn transport_headline(o: &mut String, ctx: &Context, a: &Analysis, inputs: &Inputs) {
    let t = &a.transport;
    let q = &t.queue;
    let d = &t.dev_fuse;
    let _ = writeln!(
        o,
        "| FUSE transport | {}{} | - |",
        inputs.transport.label(),
        ctx.transport_line
            .as_deref()
            .map_or(String::new(), |l| format!(" (`{l}`)"))
    );
    if inputs.transport == Kind::IoUring {
        let _ = writeln!(
            o,
            "| FUSE requests per io_uring_enter (queue rings) | {} ({} requests / {} enters) | - |",
            ctx.fuse_requests
                .map_or("unavailable".to_string(), |r| ratio(r, q.enters)),
            ctx.fuse_requests
                .map_or("unavailable".to_string(), |r| r.to_string()),
            q.enters
        );
        let _ = writeln!(
            o,
            "| SQEs per io_uring_enter (queue rings) | {} ({} SQEs / {} enters) | - |",
            ratio(q.sqes, q.enters),
            q.sqes,
            q.enters
        );
    }
    let _ = writeln!(
        o,
        "| /dev/fuse reads+writes after INIT | {} ({} reads: {} forget/interrupt requests, {} other requests; {} writes) | {} |",
        d.calls(),
        d.reads,
        d.forgetish(),
        d.other_requests(),
        d.writes,
        if inputs.transport == Kind::IoUring {
            "io_uring: forgets and interrupts only"
        } else {
            "-"
        }
    );
}

fn targets_section(o: &mut String, targets: &[Target]) {
    let _ = writeln!(o, "## Targets\n");
    let _ = writeln!(o, "```");
    for t in targets {
        let _ = writeln!(
            o,
            "{:<4}  {}: {} (target {}){}",
            t.status.to_string(),
            t.what,
            t.value,
            t.goal,
            if t.checked { "  [--check]" } else { "" }
        );
    }
    let _ = writeln!(o, "```\n");
    let _ = writeln!(
        o,
        "`--check` exits non-zero when a `[--check]` line is FAIL; WARN lines are reported only.\n"
    );
}

fn score_section(o: &mut String, score: &Score) {
    let _ = writeln!(o, "## Security score: {}/100\n", score.points);
    let _ = writeln!(o, "Rule: {RULE}\n");
    if score.deductions.is_empty() {
        let _ = writeln!(o, "Nothing was deducted.\n");
    } else {
        for (why, points) in &score.deductions {
            let _ = writeln!(o, "- -{points}: {why}");
        }
        let _ = writeln!(o);
    }
}

fn window_section(o: &mut String, ctx: &Context, a: &Analysis) {
    let _ = writeln!(o, "## Window\n");
    let len = ctx.window_end - ctx.window_start;
    let _ = writeln!(
        o,
        "- **Counted**: from {:.6} (strace attached to every thread; the mount was already live) \
         to {:.6} ({}), {len:.3} s.",
        ctx.window_start,
        ctx.window_end,
        if ctx.unmounted {
            "unmount requested"
        } else {
            "workloads done; the attached daemon keeps running"
        }
    );
    let _ = writeln!(
        o,
        "- **Start-up**: none traced. strace attaches after the mount is live, so the daemon's \
         start-up (by docs/ARCHITECTURE.md: opening BACKING, `/proc/self/fd` and `/proc` by \
         path, then mounting) is not in the trace."
    );
    if ctx.unmounted {
        let n: u64 = a.teardown.values().map(|t| t.calls).sum();
        let _ = writeln!(
            o,
            "- **Teardown**: {n} calls after the unmount was requested, listed separately \
             below (never hidden, not scored)."
        );
    } else {
        let _ = writeln!(o, "- **Teardown**: none (the audit did not unmount).");
    }
    let workers: Vec<&Task> = ctx.tasks.iter().filter(|t| t.io_worker).collect();
    let traced: Vec<String> = ctx
        .tasks
        .iter()
        .filter(|t| !t.io_worker)
        .map(|t| format!("{} ({})", t.tid, t.comm))
        .collect();
    let _ = writeln!(
        o,
        "- **Threads**: strace attached to {} threads at start: {}; {} threads made calls in \
         the trace (new threads are followed with -f).",
        traced.len(),
        traced.join(", "),
        a.threads.len()
    );
    let _ = writeln!(
        o,
        "- **Not traced**: io_uring's `iou-wrk-*` workers are kernel threads; strace cannot \
         attach to them (and SQEs are not syscalls). {} were present at attach. The ring's op \
         counts therefore come from the daemon's own counters (below).",
        workers.len()
    );
    let _ = writeln!(
        o,
        "- Only the daemon is traced: the workload's own processes (cp, find, cat, ls, ...) \
         never count."
    );
    if ctx.unparsed > 0 {
        let _ = writeln!(o, "- {} trace lines could not be parsed.", ctx.unparsed);
    }
    let _ = writeln!(o);
}

fn listing(o: &mut String, calls: &[Listed]) {
    let _ = writeln!(o, "```");
    for l in calls.iter().take(MAX_LISTED) {
        let how = l.resolution.map_or("", Resolution::label);
        let _ = writeln!(
            o,
            "[{}] {} {:.6} {}  # {how}",
            l.phase,
            l.call.tid,
            l.call.ts,
            l.call.display(MAX_CALL_CHARS)
        );
    }
    if calls.len() > MAX_LISTED {
        let _ = writeln!(o, "... and {} more", calls.len() - MAX_LISTED);
    }
    let _ = writeln!(o, "```\n");
}

fn class_table(o: &mut String, calls: &[Listed]) {
    let _ = writeln!(o, "| syscall | calls |");
    let _ = writeln!(o, "|---|---|");
    for (name, n) in Analysis::classes(calls) {
        let _ = writeln!(o, "| `{name}` | {n} |");
    }
    let _ = writeln!(o);
}

fn path_based_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## Path-based calls (goal: zero)\n");
    let _ = writeln!(
        o,
        "Every call that resolved a path from `AT_FDCWD` or an absolute path inside the window \
         (path-only syscalls such as `open`, `stat`, `access`, `chmod`, `*xattr` with a path, \
         `execve`, `umount2`; `*at` syscalls with `AT_FDCWD`; any absolute path).\n"
    );
    if a.path_based.is_empty() {
        let _ = writeln!(o, "None.\n");
        return;
    }
    class_table(o, &a.path_based);
    listing(o, &a.path_based);
}

fn follows_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## Possible symlink follows (goal: zero)\n");
    let _ = writeln!(
        o,
        "A call on a non-empty name, not under `/proc`, without `O_NOFOLLOW` (open flags), \
         `AT_SYMLINK_NOFOLLOW` (`*at` flags) or `RESOLVE_NO_SYMLINKS` (openat2); `linkat` only \
         with `AT_SYMLINK_FOLLOW`; path-only syscalls that follow (`stat`, `chown`, \
         `getxattr`, ...); or a name with a `/` in it (O_NOFOLLOW guards only the last \
         component). Re-opening a pinned fd as `openat(<pinned /proc/self/fd>, \"N\")` follows \
         a magic link to an inode the daemon already holds, not a name, and is not counted.\n"
    );
    if a.follows.is_empty() {
        let _ = writeln!(o, "None.\n");
        return;
    }
    class_table(o, &a.follows);
    listing(o, &a.follows);
}

fn fd_relative_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## fd-relative calls\n");
    let kinds = [
        Resolution::Dirfd,
        Resolution::EmptyPath,
        Resolution::ProcFd,
        Resolution::ProcRoot,
        Resolution::ProcFdCwd,
    ];
    let _ = write!(o, "| syscall |");
    for k in kinds {
        let _ = write!(o, " {} |", k.label());
    }
    let _ = writeln!(o, " total |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let mut totals = [0u64; 5];
    for (name, per) in &a.fd_relative {
        let _ = write!(o, "| `{name}` |");
        let mut row = 0;
        for (i, k) in kinds.iter().enumerate() {
            let n = per.get(k).copied().unwrap_or(0);
            row += n;
            if let Some(t) = totals.get_mut(i) {
                *t += n;
            }
            let _ = write!(o, " {n} |");
        }
        let _ = writeln!(o, " {row} |");
    }
    let _ = write!(o, "| **all** |");
    for t in totals {
        let _ = write!(o, " {t} |");
    }
    let _ = writeln!(o, " {} |\n", totals.iter().sum::<u64>());
    let _ = writeln!(
        o,
        "\"via pinned /proc/self/fd\" is `openat`/`linkat`/`*xattrat` relative to the \
         `/proc/self/fd` directory the daemon opened at start (strace -y shows it as \
         `N</proc/PID/fd>`), with an fd number as the name; \"via pinned /proc\" is \
         `openat(<pinned /proc>, \"TID/status\")` for non-root callers' groups (the workloads \
         run as the audit's user, so with root there are none); \"fd number from a cwd = \
         pinned /proc/self/fd\" is the xattr fallback of kernels without `*xattrat` (below).\n"
    );
}

fn fallbacks_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## Kernel fallbacks\n");
    let _ = writeln!(
        o,
        "Calls the daemon makes only on a kernel that lacks a newer syscall (its start-up line \
         says which, src/probe.rs): `fchmodat(<pinned /proc/self/fd>, \"N\")` instead of \
         `fchmodat2`; `setxattr`/`getxattr`/`listxattr`/`removexattr` of `\"N\"` from the \
         worker's cwd, which one `fchdir` per worker points at the pinned `/proc/self/fd`, \
         instead of the `*xattrat` calls. Each follows the magic link of an fd the daemon \
         holds, so it is fd-relative; one made from another cwd, or with an absolute \
         `/proc/self/fd/N` path, is a lookup from the cwd or the root, and is also counted \
         under path-based calls above.\n"
    );
    if a.fallbacks.is_empty() {
        let _ = writeln!(
            o,
            "None: the kernel has `fchmodat2` and the `*xattrat` calls.\n"
        );
        return;
    }
    let mut per: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for l in &a.fallbacks {
        let how = l.resolution.map_or("(no path)", Resolution::label);
        *per.entry((l.call.name.clone(), how)).or_default() += 1;
    }
    let _ = writeln!(o, "| syscall | resolution | calls |");
    let _ = writeln!(o, "|---|---|---|");
    for ((name, how), n) in &per {
        let _ = writeln!(o, "| `{name}` | {how} | {n} |");
    }
    let _ = writeln!(o);
    listing(o, &a.fallbacks);
}

fn per_file_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## Per file\n");
    let _ = writeln!(
        o,
        "Direct syscalls by the daemon during each workload divided by the files it touched \
         (for copy: the files and directories created). \"statx\" counts the stat family (statx, newfstatat, \
         fstat, ...); \"metadata\" the whole metadata category.\n"
    );
    let _ = writeln!(
        o,
        "| workload | files | statx | statx/file | open | open/file | metadata | metadata/file | io_uring_enter/file | all calls/file |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for p in &a.phases {
        let per = |n: u64| {
            if p.files == 0 {
                0.0
            } else {
                n as f64 / p.files as f64
            }
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {:.2} | {:.2} |",
            p.name,
            p.files,
            p.stat,
            per(p.stat),
            p.open,
            per(p.open),
            p.metadata,
            per(p.metadata),
            per(p.enters),
            per(p.total)
        );
    }
    let _ = writeln!(o);
}

fn histogram_row(o: &mut String, label: &str, h: &[u64]) {
    let _ = write!(o, "| {label} |");
    for n in h {
        let _ = write!(o, " {n} |");
    }
    let _ = writeln!(o);
}

fn uring_section(o: &mut String, ctx: &Context, a: &Analysis) {
    let u = &a.uring;
    let _ = writeln!(o, "## io_uring\n");
    let _ = writeln!(
        o,
        "- strace, data-path rings only (the ring transport's queue rings are under FUSE \
         transport below): {} `io_uring_setup` (rings created in the window; rings are per \
         thread and lazy), {} `io_uring_enter`, {} SQEs submitted (sum of each enter's `to_submit`, its \
         2nd argument), **{:.2} SQEs per enter**; {} enters only waited (`to_submit` 0).",
        u.setups,
        u.enters,
        u.sqes,
        u.per_enter(),
        u.wait_only
    );
    match &ctx.counters {
        Some(c) if c.ring_off => {
            let _ = writeln!(o, "- daemon counters: ring off (`-o uring=off`).");
        }
        Some(c) => {
            let _ = writeln!(
                o,
                "- daemon counters ({}): rings={} sqes={} enters={} **ops_per_enter={:.2}**.",
                ctx.counters_note,
                c.rings,
                c.sqes,
                c.enters,
                c.ops_per_enter()
            );
            if !c.ops.is_empty() {
                let _ = writeln!(
                    o,
                    "- daemon op counters (requests/errors/time, whole daemon life): `{}`",
                    c.ops
                );
            }
        }
        None => {
            let _ = writeln!(o, "- daemon counters: unavailable ({}).", ctx.counters_note);
        }
    }
    let _ = writeln!(o, "\nBatch sizes (SQEs per submitting enter):\n");
    let _ = write!(o, "| source |");
    for l in BATCH_BUCKET_LABELS {
        let _ = write!(o, " {l} |");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    histogram_row(o, "strace", &u.histogram);
    if let Some(c) = ctx.counters.as_ref().filter(|c| !c.ring_off) {
        histogram_row(o, "daemon counters", &c.batches);
    }
    let _ = writeln!(o);
}

fn transport_section(o: &mut String, ctx: &Context, a: &Analysis, inputs: &Inputs) {
    let t = &a.transport;
    let q = &t.queue;
    let d = &t.dev_fuse;
    let _ = writeln!(o, "## FUSE transport\n");
    let queue_threads: Vec<String> = t
        .queue_threads
        .iter()
        .map(|tid| {
            let name = ctx.threads.get(tid).map_or("?", String::as_str);
            format!("`{name}` ({tid})")
        })
        .collect();
    let _ = writeln!(
        o,
        "- **Transport**: **{}**. The daemon's start-up line: {}; queue threads (`{}*`): {}.",
        inputs.transport.label(),
        ctx.transport_line.as_deref().map_or(
            "not in its log (attached daemon without a log, or an older binary)".to_string(),
            |l| format!("`{}{l}`", transport::LOG_PREFIX)
        ),
        transport::QUEUE_THREAD_PREFIX,
        if queue_threads.is_empty() {
            "none".to_string()
        } else {
            queue_threads.join(", ")
        }
    );
    if inputs.transport == Kind::IoUring {
        let fds: Vec<String> = q.fds.iter().map(i64::to_string).collect();
        let _ = writeln!(
            o,
            "- **Queue rings** (`io_uring_enter` by the queue threads on their queue rings, \
             fds {}): {} enters, {} SQEs submitted (`to_submit`: COMMIT_AND_FETCHes, REGISTERs, \
             backing READs and WRITEs, retry timers), {} enters only waited; **{} SQEs per \
             enter**.",
            if fds.is_empty() {
                "none seen".to_string()
            } else {
                fds.join(", ")
            },
            q.enters,
            q.sqes,
            q.wait_only,
            ratio(q.sqes, q.enters)
        );
        match ctx.fuse_requests {
            Some(r) => {
                let _ = writeln!(
                    o,
                    "- **Requests served** (the daemon's counters over the window, every op but \
                     `forget`; over io_uring these are the ring's requests, strace cannot see \
                     them): {r}; **{} requests per enter**.",
                    ratio(r, q.enters)
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "- **Requests served**: unavailable ({}).",
                    ctx.counters_note
                );
            }
        }
        let _ = writeln!(
            o,
            "- The queue threads also entered their per-thread data rings {} times (a \
             readdirplus's OPENAT/STATX batches run there); those count under io_uring above, \
             not here.\n",
            q.data_ring_enters
        );
        if !q.per_thread.is_empty() {
            let _ = writeln!(o, "| queue thread | enters | SQEs | SQEs/enter |");
            let _ = writeln!(o, "|---|---|---|---|");
            for (tid, (enters, sqes)) in &q.per_thread {
                let name = ctx.threads.get(tid).map_or("?", String::as_str);
                let _ = writeln!(
                    o,
                    "| `{name}` ({tid}) | {enters} | {sqes} | {} |",
                    ratio(*sqes, *enters)
                );
            }
            let _ = writeln!(o);
        }
    } else if let Some(r) = ctx.fuse_requests {
        let delivered: u64 = d.requests.values().sum::<u64>() + d.undecoded;
        let _ = writeln!(
            o,
            "- **Requests served** (the daemon's counters over the window, every op but \
             `forget`): {r}. Every request is a `read` of `/dev/fuse` and every reply a \
             `write`: {delivered} reads delivered a request ({} of them \
             FORGET/BATCH_FORGET/INTERRUPT, which the counters leave out), {} writes \
             replied; {} `/dev/fuse` calls per counted request.\n",
            d.forgetish(),
            d.replies,
            ratio(d.calls(), r)
        );
    } else {
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "`/dev/fuse` after INIT (the window opens once the mount is live, after INIT; the request header of each read and the reply header of each write are decoded from strace's `-s 64` buffer):\n"
    );
    let _ = writeln!(o, "| call | what | calls |");
    let _ = writeln!(o, "|---|---|---|");
    for (op, n) in &d.requests {
        let _ = writeln!(
            o,
            "| read | {} request{} | {n} |",
            transport::op_label(*op),
            if *n == 1 { "" } else { "s" }
        );
    }
    if d.undecoded > 0 {
        let _ = writeln!(o, "| read | request, header not shown | {} |", d.undecoded);
    }
    let _ = writeln!(
        o,
        "| read | no request (failed: EINTR, ENOENT, ENODEV at unmount) | {} |",
        d.read_errors
    );
    let _ = writeln!(o, "| write | replies | {} |", d.replies);
    let _ = writeln!(
        o,
        "| write | notifications (`unique` 0) | {} |",
        d.notifications
    );
    let _ = writeln!(o, "| **all** | | **{}** |\n", d.calls());
    if inputs.transport == Kind::IoUring {
        let _ = writeln!(
            o,
            "Over io_uring the kernel keeps only FORGET, BATCH_FORGET and INTERRUPT on \
             `/dev/fuse` (and the daemon's notifications); every other request, and so every \
             reply but fuser's ENOSYS to an INTERRUPT, belongs on the ring. `--check` fails on \
             any: here {} ({} other requests, {} replies beyond the INTERRUPTs). The rule \
             counts where requests went, not how many or how fast, so no timing can fail it.\n",
            d.stray(),
            d.other_requests(),
            d.excess_replies()
        );
    } else {
        let _ = writeln!(
            o,
            "Over `/dev/fuse` every request and reply goes through it; the io_uring rule is \
             not applied.\n"
        );
    }
}

fn data_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "## Direct data syscalls (goal on backing files: zero)\n");
    let _ = writeln!(
        o,
        "`read`/`write`/`pread64`/`pwrite64`/`readv`/`writev`/`preadv*`/`pwritev*` by fd \
         target (strace -y path). Data on backing files should go through the ring; `/dev/fuse` \
         is the FUSE channel.\n"
    );
    let _ = writeln!(o, "| syscall | target | calls |");
    let _ = writeln!(o, "|---|---|---|");
    for ((name, target), n) in &a.data {
        let _ = writeln!(o, "| `{name}` | {} | {n} |", target.label());
    }
    let _ = writeln!(o);
    if !a.backing_data.is_empty() {
        let _ = writeln!(o, "On backing files:\n");
        listing(o, &a.backing_data);
    }
}

fn totals_section(o: &mut String, a: &Analysis) {
    let total = a.window_total();
    let _ = writeln!(o, "## Syscall totals (window)\n");
    let _ = writeln!(
        o,
        "{} calls, {} errors, {:.3} s inside syscalls (summed over threads; idle FUSE workers \
         blocked in `read(/dev/fuse)` dominate the time).\n",
        total.calls, total.errors, total.time
    );
    let _ = writeln!(
        o,
        "| category | syscall | calls | errors | time (s) | time share |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let share = |t: f64| {
        if total.time > 0.0 {
            100.0 * t / total.time
        } else {
            0.0
        }
    };
    let cats = a.categories();
    for cat in Category::ALL {
        let Some(ct) = cats.get(&cat) else {
            continue;
        };
        let _ = writeln!(
            o,
            "| **{}** | | **{}** | {} | {:.6} | {:.1}% |",
            cat.label(),
            ct.calls,
            ct.errors,
            ct.time,
            share(ct.time)
        );
        let mut rows: Vec<(&String, _)> = a
            .window
            .iter()
            .filter(|(n, _)| category(n) == cat)
            .collect();
        rows.sort_by(|x, y| y.1.calls.cmp(&x.1.calls).then(x.0.cmp(y.0)));
        for (name, t) in rows {
            let _ = writeln!(
                o,
                "| | `{name}` | {} | {} | {:.6} | {:.1}% |",
                t.calls,
                t.errors,
                t.time,
                share(t.time)
            );
        }
    }
    let _ = writeln!(o);
}

fn teardown_section(o: &mut String, ctx: &Context, a: &Analysis) {
    let _ = writeln!(o, "## Teardown (after the unmount was requested)\n");
    if !ctx.unmounted {
        let _ = writeln!(
            o,
            "Not observed: the audit attached to a running daemon and left it mounted.\n"
        );
        return;
    }
    let _ = writeln!(
        o,
        "Unmount requested at {:.6}. Calls entered after that, per syscall:\n",
        ctx.window_end
    );
    let _ = writeln!(o, "| syscall | calls | errors |");
    let _ = writeln!(o, "|---|---|---|");
    for (name, t) in &a.teardown {
        let _ = writeln!(o, "| `{name}` | {} | {} |", t.calls, t.errors);
    }
    let _ = writeln!(o);
    if a.teardown_path_based.is_empty() {
        let _ = writeln!(o, "No path-based calls during teardown.\n");
    } else {
        let _ = writeln!(o, "Path-based calls during teardown:\n");
        listing(o, &a.teardown_path_based);
    }
}

fn commands_section(o: &mut String, ctx: &Context) {
    let _ = writeln!(o, "## Reproduce\n");
    let _ = writeln!(o, "```sh");
    let _ = writeln!(o, "{}", ctx.audit_command);
    let _ = writeln!(o, "# equivalent to:");
    let (files, dirs, size) = ctx.tree;
    let _ = writeln!(
        o,
        "# 1. the audit writes {files} files of {size} bytes (pseudo-random) into {dirs} \
         director{} of <= 50 under {}/src ({} filesystem)",
        if dirs == 1 { "y" } else { "ies" },
        ctx.scratch,
        ctx.scratch_fstype
    );
    for c in &ctx.setup {
        let _ = writeln!(o, "{c}");
    }
    let _ = writeln!(
        o,
        "# 2. the daemon (mount: {}, backing: {})",
        ctx.mnt, ctx.backing
    );
    let _ = writeln!(o, "{}", ctx.daemon_command);
    let _ = writeln!(o, "# 3. once the mount is in /proc/self/mountinfo:");
    let _ = writeln!(o, "{}", ctx.strace_command);
    let _ = writeln!(o, "kill -USR1 {}   # counters at window start", ctx.pid);
    for (name, cmds) in &ctx.steps {
        let _ = writeln!(o, "# workload: {name}");
        for c in cmds {
            let _ = writeln!(o, "{c}");
        }
    }
    match &ctx.unmount_command {
        Some(u) => {
            let _ = writeln!(
                o,
                "{u}   # the window ends here; strace stays attached through teardown"
            );
        }
        None => {
            let _ = writeln!(
                o,
                "kill -USR1 {}   # counters at window end; then strace is detached",
                ctx.pid
            );
        }
    }
    let _ = writeln!(o, "```");
}
