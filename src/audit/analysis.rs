//! Turning the traced calls into the report's figures.
//!
//! Calls are split by time (strace `-ttt` entry timestamps against the wall clock recorded
//! around each workload command and the unmount): the **window** runs from strace's attach
//! (after the mount is live) until the unmount is requested; calls after that are
//! **teardown**. Inside the window each call is attributed to the workload that was running
//! when it was entered.

use std::collections::{BTreeMap, HashMap};

use super::classify::{
    self, Category, DataTarget, Resolution, category, data_target, is_open, is_stat, path_use_in,
};
use super::trace::{Call, parse_fd};
use super::transport::{Hints, TransportTrace};
use crate::ring::BATCH_BUCKETS;

/// A span of time in which one workload ran.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Workload name (`copy`).
    pub name: String,
    /// Wall-clock start.
    pub start: f64,
    /// Wall-clock end.
    pub end: f64,
    /// Files of the tree this workload touches (created, for copy).
    pub files: u64,
    /// getattr and setattr requests the daemon served during it (from its counters): each
    /// answers with exactly one statx of the inode, whatever the file's history.
    pub attr_replies: Option<u64>,
}

/// Count, errors and time of one syscall.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Calls.
    pub calls: u64,
    /// Calls that returned an errno.
    pub errors: u64,
    /// Seconds spent in them (`-T`).
    pub time: f64,
}

impl Tally {
    fn add(&mut self, call: &Call) {
        self.calls += 1;
        self.errors += u64::from(call.errno.is_some());
        self.time += call.duration.unwrap_or(0.0);
    }
}

/// Per-workload counts of the calls that matter per file.
#[derive(Clone, Debug, Default)]
pub struct PhaseStats {
    /// Workload name.
    pub name: String,
    /// Files it touched.
    pub files: u64,
    /// Direct stat-family calls (statx, newfstatat, fstat, ...).
    pub stat: u64,
    /// open/openat/openat2/creat calls.
    pub open: u64,
    /// Calls in the metadata category (stat family included).
    pub metadata: u64,
    /// io_uring_enter calls.
    pub enters: u64,
    /// All calls.
    pub total: u64,
    /// See [`Phase::attr_replies`].
    pub attr_replies: Option<u64>,
}

/// `io_uring_enter` and `io_uring_setup` as strace saw them.
#[derive(Clone, Debug, Default)]
pub struct UringTrace {
    /// `io_uring_setup` calls (rings created).
    pub setups: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Sum of the `to_submit` argument.
    pub sqes: u64,
    /// Enters with `to_submit == 0` (waiting only).
    pub wait_only: u64,
    /// Submitting enters bucketed like the daemon's histogram (1, 2-3, ..., 64+).
    pub histogram: [u64; BATCH_BUCKETS],
}

impl UringTrace {
    /// SQEs per enter (all enters, as the daemon counts them).
    pub fn per_enter(&self) -> f64 {
        if self.enters == 0 {
            0.0
        } else {
            self.sqes as f64 / self.enters as f64
        }
    }
}

/// One listed call: when, which workload, and the call itself.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The workload running at the time ("teardown", "between workloads").
    pub phase: String,
    /// How its path was resolved (the worst of its path arguments).
    pub resolution: Option<Resolution>,
    /// The call.
    pub call: Call,
}

/// Everything the report shows.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Calls per syscall inside the window.
    pub window: BTreeMap<String, Tally>,
    /// Calls per syscall after the unmount was requested.
    pub teardown: BTreeMap<String, Tally>,
    /// Path-based calls inside the window.
    pub path_based: Vec<Listed>,
    /// Path-based calls during teardown.
    pub teardown_path_based: Vec<Listed>,
    /// fd-relative calls inside the window, per syscall and resolution.
    pub fd_relative: BTreeMap<String, BTreeMap<Resolution, u64>>,
    /// Possible symlink follows inside the window.
    pub follows: Vec<Listed>,
    /// Data syscalls inside the window per (syscall, target).
    pub data: BTreeMap<(String, DataTarget), u64>,
    /// Data syscalls on backing files inside the window.
    pub backing_data: Vec<Listed>,
    /// Kernel-fallback calls inside the window ([`Category::Fallback`]), whatever their
    /// resolution: also listed, never only counted.
    pub fallbacks: Vec<Listed>,
    /// Per-workload figures.
    pub phases: Vec<PhaseStats>,
    /// io_uring inside the window: the data path's rings (`ring.rs`), not the ring
    /// transport's queue rings, so strace and the daemon's ring counters count the same.
    pub uring: UringTrace,
    /// The FUSE transport: the queue rings, and `/dev/fuse` reads and writes in the window.
    pub transport: TransportTrace,
    /// Threads that made calls.
    pub threads: BTreeMap<u32, u64>,
    /// First and last call timestamps seen.
    pub first_ts: Option<f64>,
    /// See `first_ts`.
    pub last_ts: Option<f64>,
}

/// Name of calls in the window but outside every workload (e.g. the SIGUSR1 log line).
pub const BETWEEN: &str = "between workloads";
/// Name of calls after the unmount was requested.
pub const TEARDOWN: &str = "teardown";

/// Analyses `calls`. `fds` maps fds strace printed raw to paths (seeded from /proc at attach
/// and updated from every `-y` annotation); `cwds` maps threads to their cwd at attach (then
/// updated from each `fchdir`/`chdir`, and inherited by threads cloned later); `backing` is
/// BACKING's canonical path; `unmount` is when the unmount was requested, if it was;
/// `hints` names the threads and the rings known at attach (for the transport's figures).
pub fn analyse(
    calls: &[Call],
    mut fds: HashMap<i64, String>,
    mut cwds: HashMap<u32, String>,
    backing: Option<&str>,
    phases: &[Phase],
    unmount: Option<f64>,
    hints: &Hints,
) -> Analysis {
    let mut a = Analysis {
        transport: TransportTrace::new(hints),
        phases: phases
            .iter()
            .map(|p| PhaseStats {
                name: p.name.clone(),
                files: p.files,
                attr_replies: p.attr_replies,
                ..PhaseStats::default()
            })
            .collect(),
        ..Analysis::default()
    };
    for call in calls {
        learn_fds(call, &mut fds);
        a.first_ts = Some(a.first_ts.map_or(call.ts, |t: f64| t.min(call.ts)));
        a.last_ts = Some(a.last_ts.map_or(call.ts, |t: f64| t.max(call.ts)));
        *a.threads.entry(call.tid).or_default() += 1;
        let usage = path_use_in(call, &fds, cwds.get(&call.tid).map(String::as_str));
        learn_cwd(call, &fds, &mut cwds);
        let in_teardown = unmount.is_some_and(|u| call.ts >= u);
        let target = data_target(call, &fds, backing);
        let fuse_path = (target == Some(DataTarget::Fuse)).then_some("/dev/fuse");
        let queue_enter = a.transport.add(call, fuse_path, !in_teardown);
        if in_teardown {
            a.teardown.entry(call.name.clone()).or_default().add(call);
            if usage.is_path_based() {
                a.teardown_path_based.push(Listed {
                    phase: TEARDOWN.to_string(),
                    resolution: usage.main(),
                    call: call.clone(),
                });
            }
            continue;
        }
        let phase_index = phases
            .iter()
            .position(|p| call.ts >= p.start && call.ts < p.end);
        let phase_name = phase_index
            .and_then(|i| phases.get(i))
            .map_or(BETWEEN.to_string(), |p| p.name.clone());
        a.window.entry(call.name.clone()).or_default().add(call);
        if let Some(stats) = phase_index.and_then(|i| a.phases.get_mut(i)) {
            stats.total += 1;
            stats.stat += u64::from(is_stat(&call.name));
            stats.open += u64::from(is_open(&call.name));
            stats.metadata += u64::from(category(&call.name) == Category::Metadata);
            stats.enters += u64::from(call.name == "io_uring_enter");
        }
        let listed = || Listed {
            phase: phase_name.clone(),
            resolution: usage.main(),
            call: call.clone(),
        };
        if usage.is_path_based() {
            a.path_based.push(listed());
        } else if !usage.resolutions.is_empty() {
            let per = a.fd_relative.entry(call.name.clone()).or_default();
            for r in &usage.resolutions {
                *per.entry(*r).or_default() += 1;
            }
        }
        if usage.may_follow {
            a.follows.push(listed());
        }
        if category(&call.name) == Category::Fallback {
            a.fallbacks.push(listed());
        }
        if let Some(target) = target {
            *a.data.entry((call.name.clone(), target)).or_default() += 1;
            if target == DataTarget::Backing {
                a.backing_data.push(listed());
            }
        }
        match call.name.as_str() {
            "io_uring_setup" => a.uring.setups += 1,
            "io_uring_enter" if !queue_enter => {
                a.uring.enters += 1;
                let to_submit = call.arg(1).parse::<u64>().unwrap_or(0);
                a.uring.sqes += to_submit;
                if to_submit == 0 {
                    a.uring.wait_only += 1;
                } else if let Some(slot) = a.uring.histogram.get_mut(bucket(to_submit)) {
                    *slot += 1;
                }
            }
            _ => {}
        }
    }
    a
}

/// The batch-size bucket of `n >= 1` SQEs: 2^k..2^(k+1)-1 is bucket k, the last is open.
pub fn bucket(n: u64) -> usize {
    if n == 0 {
        return 0;
    }
    ((63 - n.leading_zeros()) as usize).min(BATCH_BUCKETS - 1)
}

/// Follows the calling thread's cwd: a successful `fchdir` to an fd whose path is known, a
/// `chdir` to an absolute path (a relative one makes it unknown), and a new thread starts in
/// its creator's (the daemon unshares `CLONE_FS` before it moves a worker's cwd, so one
/// thread's `fchdir` moves no other's).
fn learn_cwd(call: &Call, fds: &HashMap<i64, String>, cwds: &mut HashMap<u32, String>) {
    if call.errno.is_some() {
        return;
    }
    match call.name.as_str() {
        "fchdir" => match parse_fd(call.arg(0)) {
            Some((fd, path)) => match path.map(str::to_string).or_else(|| fds.get(&fd).cloned()) {
                Some(path) => {
                    cwds.insert(call.tid, path);
                }
                None => {
                    cwds.remove(&call.tid);
                }
            },
            None => {
                cwds.remove(&call.tid);
            }
        },
        "chdir" => match super::trace::parse_string(call.arg(0)) {
            Some(p) if p.starts_with('/') => {
                cwds.insert(call.tid, p.to_string());
            }
            _ => {
                cwds.remove(&call.tid);
            }
        },
        "clone" | "clone3" | "fork" | "vfork" => {
            if let (Ok(child), Some(cwd)) = (call.ret.parse::<u32>(), cwds.get(&call.tid)) {
                let cwd = cwd.clone();
                cwds.insert(child, cwd);
            }
        }
        _ => {}
    }
}

/// Records the fd paths `-y` printed in a call's arguments and return value.
fn learn_fds(call: &Call, fds: &mut HashMap<i64, String>) {
    for text in call.args.iter().chain(std::iter::once(&call.ret)) {
        if let Some((fd, Some(path))) = parse_fd(text)
            && fd >= 0
        {
            fds.insert(fd, path.to_string());
        }
    }
}

impl Analysis {
    /// Distinct syscall names among `listed`, with counts.
    pub fn classes(listed: &[Listed]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for l in listed {
            *out.entry(l.call.name.clone()).or_default() += 1;
        }
        out
    }

    /// Direct stat calls per created file in the copy workload, if it ran, beyond the one
    /// statx each getattr/setattr reply needs (the workload's own `utimensat`, `fchmod` and
    /// the kernel's refresh of the parent directory): what it costs the daemon to learn a
    /// new file. Without the daemon's counters, the raw figure.
    pub fn stat_per_new_file(&self) -> Option<f64> {
        self.copy_phase()
            .map(|p| p.stat.saturating_sub(p.attr_replies.unwrap_or(0)) as f64 / p.files as f64)
    }

    /// All direct stat calls per created file in the copy workload, attribute replies included.
    pub fn raw_stat_per_new_file(&self) -> Option<f64> {
        self.copy_phase().map(|p| p.stat as f64 / p.files as f64)
    }

    fn copy_phase(&self) -> Option<&PhaseStats> {
        self.phases.iter().find(|p| p.name == "copy" && p.files > 0)
    }

    /// Calls and time per category inside the window.
    pub fn categories(&self) -> BTreeMap<Category, Tally> {
        let mut out: BTreeMap<Category, Tally> = BTreeMap::new();
        for (name, t) in &self.window {
            let c = out.entry(classify::category(name)).or_default();
            c.calls += t.calls;
            c.errors += t.errors;
            c.time += t.time;
        }
        out
    }

    /// Total calls and time inside the window.
    pub fn window_total(&self) -> Tally {
        self.window.values().fold(Tally::default(), |mut acc, t| {
            acc.calls += t.calls;
            acc.errors += t.errors;
            acc.time += t.time;
            acc
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::trace::parse;

    const TRACE: &str = "\
10 100.0 openat(AT_FDCWD, \"/etc/x\", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000010>
10 101.0 openat(3</b>, \"f\", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0100600) = 11</b/f> <0.000300>
10 101.1 statx(11</b/f>, \"\", AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH, STATX_BASIC_STATS, {stx_mask=STATX_BASIC_STATS}) = 0 <0.000010>
11 101.2 openat(4</proc/9/fd>, \"11\", O_RDONLY|O_CLOEXEC|O_PATH) = 12</b/f> <0.000015>
11 101.3 io_uring_enter(13<anon_inode:[io_uring]>, 3, 3, IORING_ENTER_GETEVENTS, NULL, 128) = 3 <0.000052>
11 101.4 io_uring_enter(13<anon_inode:[io_uring]>, 0, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 0 <0.000052>
11 101.5 pwrite64(12</b/f>, \"x\", 1, 0) = 1 <0.000010>
11 101.6 writev(7</dev/fuse>, [{iov_base=\"x\", iov_len=16}], 1) = 16 <0.000016>
11 101.7 syscall_0x1d0(0x4, 0x7ff911001cd0, 0, 0x7ff911001cb0, 0x7ff9, 0x10) = -1 ENODATA (No data available) <0.000021>
10 103.0 umount2(\"/m\", 0) = -1 EINVAL (Invalid argument) <0.000017>
";

    #[test]
    fn splits_window_phases_and_teardown() {
        let (calls, unparsed) = parse(TRACE);
        assert_eq!(unparsed, 0);
        let mut fds = HashMap::new();
        fds.insert(4, "/proc/9/fd".to_string());
        let phases = [Phase {
            name: "copy".into(),
            start: 101.0,
            end: 102.0,
            files: 1,
            attr_replies: None,
        }];
        let a = analyse(
            &calls,
            fds,
            HashMap::new(),
            Some("/b"),
            &phases,
            Some(102.5),
            &Hints::default(),
        );
        assert_eq!(a.path_based.len(), 1);
        assert_eq!(a.path_based[0].phase, BETWEEN);
        assert_eq!(a.teardown_path_based.len(), 1);
        assert_eq!(a.teardown_path_based[0].call.name, "umount2");
        assert_eq!(a.backing_data.len(), 1);
        assert_eq!(a.backing_data[0].call.name, "pwrite64");
        assert_eq!(a.data.get(&("writev".into(), DataTarget::Fuse)), Some(&1));
        assert_eq!(a.stat_per_new_file(), Some(1.0));
        assert_eq!(a.phases[0].open, 2);
        assert_eq!((a.uring.enters, a.uring.sqes, a.uring.wait_only), (2, 3, 1));
        assert_eq!(a.uring.histogram[1], 1);
        assert!((a.uring.per_enter() - 1.5).abs() < 1e-9);
        let rel = a.fd_relative.get("openat").expect("openat");
        assert_eq!(rel.get(&Resolution::Dirfd), Some(&1));
        assert_eq!(rel.get(&Resolution::ProcFd), Some(&1));
        let x = a
            .fd_relative
            .get("getxattrat")
            .expect("raw xattrat is named");
        assert_eq!(x.get(&Resolution::ProcFd), Some(&1));
        assert_eq!(a.follows.len(), 1, "only the AT_FDCWD open may follow");
        assert_eq!(a.window.get("umount2"), None);
        assert_eq!(a.teardown.get("umount2").map(|t| t.errors), Some(1));
    }

    /// The xattr fallback: a worker moves its cwd to the pinned /proc/self/fd and calls the
    /// path xattr calls on fd numbers; chmod goes through fchmodat on the same directory.
    const FALLBACK_TRACE: &str = "\
12 200.0 getxattr(\"9\", \"user.a\", NULL, 0) = -1 ENODATA (No data available) <0.000010>
12 200.1 unshare(CLONE_FS) = 0 <0.000010>
12 200.2 fchdir(4</proc/9/fd>) = 0 <0.000010>
12 200.3 getxattr(\"11\", \"user.a\", NULL, 0) = -1 ENODATA (No data available) <0.000010>
12 200.4 clone3({flags=CLONE_VM|CLONE_FS, exit_signal=0}, 88) = 14 <0.000010>
14 200.5 listxattr(\"11\", NULL, 0) = 0 <0.000010>
13 200.6 setxattr(\"11\", \"user.a\", \"1\", 1, 0) = 0 <0.000010>
13 200.7 fchmodat(4</proc/9/fd>, \"11\", 0640) = 0 <0.000010>
15 200.8 lgetxattr(\"/proc/self/fd/11\", \"user.a\", NULL, 0) = -1 ENODATA (x) <0.000010>
";

    #[test]
    fn fallbacks_are_listed_and_fd_relative_from_a_proc_fd_cwd() {
        let (calls, unparsed) = parse(FALLBACK_TRACE);
        assert_eq!(unparsed, 0);
        // Thread 13 was already in /proc/9/fd when strace attached.
        let cwds = HashMap::from([(13, "/proc/9/fd".to_string())]);
        let a = analyse(
            &calls,
            HashMap::new(),
            cwds,
            Some("/b"),
            &[],
            None,
            &Hints::default(),
        );
        let fallbacks: Vec<(&str, Option<Resolution>)> = a
            .fallbacks
            .iter()
            .map(|l| (l.call.name.as_str(), l.resolution))
            .collect();
        assert_eq!(
            fallbacks,
            [
                ("getxattr", Some(Resolution::Cwd)),
                ("fchdir", None),
                ("getxattr", Some(Resolution::ProcFdCwd)),
                ("listxattr", Some(Resolution::ProcFdCwd)),
                ("setxattr", Some(Resolution::ProcFdCwd)),
                ("fchmodat", Some(Resolution::ProcFd)),
                ("lgetxattr", Some(Resolution::Absolute)),
            ]
        );
        // Path-based: only the call before the fchdir and the absolute /proc path.
        let path_based: Vec<&str> = a.path_based.iter().map(|l| l.call.name.as_str()).collect();
        assert_eq!(path_based, ["getxattr", "lgetxattr"]);
        let per = a.fd_relative.get("getxattr").expect("fd-relative getxattr");
        assert_eq!(per.get(&Resolution::ProcFdCwd), Some(&1));
        assert_eq!(
            a.categories().get(&Category::Fallback).map(|t| t.calls),
            Some(7)
        );
    }

    /// Queue thread 20 enters its queue ring (fd 9) and its data ring (fd 16); fuser worker
    /// 21 reads a FORGET inside the window and fails a read during teardown.
    const RING_TRANSPORT_TRACE: &str = "\
20 100.0 io_uring_enter(9<anon_inode:[io_uring]>, 1, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 1 <0.000100>
20 100.1 io_uring_enter(16<anon_inode:[io_uring]>, 20, 20, IORING_ENTER_GETEVENTS, NULL, 128) = 20 <0.000100>
20 100.2 io_uring_enter(9<anon_inode:[io_uring]>, 2, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 2 <0.000100>
21 100.3 read(8</dev/fuse>, \"0\\0\\0\\0\\2\\0\\0\\0\\6\\0\\0\\0\\0\\0\\0\\0\"..., 1052672) = 48 <0.1>
21 103.0 read(8</dev/fuse>, 0x7f0000, 1052672) = -1 ENODEV (No such device) <0.1>
20 103.1 io_uring_enter(9<anon_inode:[io_uring]>, 0, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 0 <0.000100>
";

    #[test]
    fn queue_rings_are_the_transports_not_the_data_paths() {
        use crate::audit::transport::{data_ring_entries, queue_ring_entries};
        let (calls, unparsed) = parse(RING_TRANSPORT_TRACE);
        assert_eq!(unparsed, 0);
        let hints = Hints {
            threads: BTreeMap::from([(20, "fuse-uring-0".into()), (21, "fuser-0".into())]),
            ring_entries: HashMap::from([(9, queue_ring_entries()), (16, data_ring_entries())]),
            log_line: None,
        };
        let a = analyse(
            &calls,
            HashMap::new(),
            HashMap::new(),
            Some("/b"),
            &[],
            Some(102.5),
            &hints,
        );
        // The data path: only the data ring's enter, as the daemon's ring counters count.
        assert_eq!((a.uring.enters, a.uring.sqes), (1, 20));
        let t = &a.transport;
        assert_eq!(
            (t.queue.enters, t.queue.sqes, t.queue.data_ring_enters),
            (2, 3, 1)
        );
        // The teardown read and enter are not in the window.
        assert_eq!((t.dev_fuse.reads, t.dev_fuse.forgetish()), (1, 1));
        assert_eq!(t.dev_fuse.stray(), 0);
        assert_eq!(a.window.get("io_uring_enter").map(|t| t.calls), Some(3));
    }

    #[test]
    fn buckets_match_the_daemon() {
        assert_eq!(
            [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 1000].map(bucket),
            [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
        );
    }
}
