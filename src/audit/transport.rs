//! The FUSE transport's figures: which transport served the workload, how the ring
//! transport's queue threads batched (`io_uring_enter` calls, SQEs, requests per enter), and
//! what still went through `read`/`write` on `/dev/fuse` after INIT.
//!
//! Over io_uring the kernel keeps only FORGET, BATCH_FORGET and INTERRUPT (and the daemon's
//! notifications, `unique` 0) on `/dev/fuse` (Linux `fs/fuse/dev_uring.c`: once every queue
//! has registered, `fuse_io_uring_ops` sends requests to the ring and forgets and interrupts
//! to the `/dev/fuse` queue). Over `/dev/fuse` everything goes there. strace `-s 64` prints the
//! first bytes of each `/dev/fuse` read, so the request's `fuse_in_header` (len, opcode,
//! unique) is decoded from the trace; each write's `fuse_out_header` (len, error, unique)
//! tells a reply from a notification.
//!
//! The requests a queue thread serves are CQEs, not syscalls: their count comes from the
//! daemon's own counters (all ops but `forget`, which counts forgotten nodes and arrives on
//! `/dev/fuse` anyway).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::trace::{Call, parse_fd};
use crate::ring::DEFAULT_RING_DEPTH;
use crate::transport::uring::abi::{FUSE_BATCH_FORGET, FUSE_FORGET, FUSE_INTERRUPT, opcode_name};
use crate::transport::uring::setup::QUEUE_DEPTH;

/// The thread name prefix of the ring transport's queue threads (src/transport/uring/queue.rs).
pub const QUEUE_THREAD_PREFIX: &str = "fuse-uring-";

/// The prefix of the daemon's start-up line naming its transport (src/main.rs).
pub const LOG_PREFIX: &str = "FUSE transport: ";

/// The daemon's line when it chose the ring but could not prepare it before the INIT reply
/// (src/fs/handlers.rs): the session then stays on `/dev/fuse`.
pub const FALLBACK_PREFIX: &str = "FUSE requests stay on /dev/fuse: ";

/// SQ entries of a queue's ring: `Prepared::new` builds it with twice the queue depth, and
/// the kernel rounds up to a power of two.
pub fn queue_ring_entries() -> u32 {
    (u32::from(QUEUE_DEPTH) * 2).next_power_of_two()
}

/// SQ entries of a data-path ring (`ring.rs`, one per thread, `DEFAULT_RING_DEPTH`).
pub fn data_ring_entries() -> u32 {
    DEFAULT_RING_DEPTH.next_power_of_two()
}

/// What is known about the daemon's transport besides the trace.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Thread id -> name of every thread seen in `/proc/PID/task` (at attach and again
    /// before the unmount, so queue threads started late are known too).
    pub threads: BTreeMap<u32, String>,
    /// io_uring fd -> SQ entries, from `/proc/PID/fdinfo` at attach (`SqMask` + 1).
    pub ring_entries: HashMap<i64, u32>,
    /// The daemon's `FUSE transport: ...` start-up line (after the prefix), if its log is
    /// readable.
    pub log_line: Option<String>,
}

impl Hints {
    /// Thread ids of the ring transport's queue threads.
    pub fn queue_threads(&self) -> BTreeSet<u32> {
        self.threads
            .iter()
            .filter(|(_, comm)| comm.starts_with(QUEUE_THREAD_PREFIX))
            .map(|(tid, _)| *tid)
            .collect()
    }
}

/// Which transport served the workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// FUSE over io_uring: queue threads exist, or the start-up line says so.
    IoUring,
    /// `read`/`write` on `/dev/fuse`.
    DevFuse,
    /// Neither the threads nor the log tell (an attached daemon whose log is unreadable and
    /// an older binary).
    #[default]
    Unknown,
}

impl Kind {
    /// Short label for the report.
    pub fn label(self) -> &'static str {
        match self {
            Kind::IoUring => "io_uring",
            Kind::DevFuse => "/dev/fuse",
            Kind::Unknown => "unknown",
        }
    }
}

/// `io_uring_enter` on the queue threads' queue rings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueRings {
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Sum of their `to_submit` (commits, registers, backing reads and writes, retry timers).
    pub sqes: u64,
    /// Enters that submitted nothing and only waited.
    pub wait_only: u64,
    /// The queue rings' fds.
    pub fds: BTreeSet<i64>,
    /// Per queue thread: (enters, SQEs).
    pub per_thread: BTreeMap<u32, (u64, u64)>,
    /// Enters by queue threads on their other ring (the per-thread data ring of `ring.rs`,
    /// e.g. a readdirplus's OPENAT/STATX batches); counted with the data path, not here.
    pub data_ring_enters: u64,
}

/// `read`/`write` family calls on `/dev/fuse` inside the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DevFuse {
    /// Read calls (`read`, `readv`, ...), whatever they returned.
    pub reads: u64,
    /// Requests delivered by successful reads, per opcode.
    pub requests: BTreeMap<u32, u64>,
    /// Successful reads whose header strace did not show.
    pub undecoded: u64,
    /// Reads that failed (`EINTR`, `ENOENT` for an aborted request, `ENODEV` at unmount).
    pub read_errors: u64,
    /// Write calls (`write`, `writev`, ...).
    pub writes: u64,
    /// Writes answering a request (`unique` != 0, or a header strace did not show).
    pub replies: u64,
    /// Writes with `unique` 0: notifications.
    pub notifications: u64,
    /// Writes that failed.
    pub write_errors: u64,
}

impl DevFuse {
    /// Requests of opcode `op` read from `/dev/fuse`.
    pub fn requests_of(&self, op: u32) -> u64 {
        self.requests.get(&op).copied().unwrap_or(0)
    }

    /// FORGET, BATCH_FORGET and INTERRUPT requests: what the kernel keeps on `/dev/fuse`
    /// with the ring transport.
    pub fn forgetish(&self) -> u64 {
        [FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT]
            .iter()
            .map(|&op| self.requests_of(op))
            .sum()
    }

    /// Every other request read (undecoded ones included).
    pub fn other_requests(&self) -> u64 {
        self.requests.values().sum::<u64>() - self.forgetish() + self.undecoded
    }

    /// Replies beyond one per INTERRUPT (fuser answers an INTERRUPT with ENOSYS; FORGETs
    /// get none).
    pub fn excess_replies(&self) -> u64 {
        self.replies
            .saturating_sub(self.requests_of(FUSE_INTERRUPT))
    }

    /// `/dev/fuse` traffic the ring transport should have carried: requests other than
    /// FORGET/BATCH_FORGET/INTERRUPT, and replies other than to INTERRUPTs.
    pub fn stray(&self) -> u64 {
        self.other_requests() + self.excess_replies()
    }

    /// All read and write calls.
    pub fn calls(&self) -> u64 {
        self.reads + self.writes
    }
}

/// The transport's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportTrace {
    /// Queue thread ids (from [`Hints::threads`]).
    pub queue_threads: BTreeSet<u32>,
    /// The queue rings.
    pub queue: QueueRings,
    /// `/dev/fuse` reads and writes in the window.
    pub dev_fuse: DevFuse,
    /// Rings created in the trace (fd -> SQ entries) and known at attach.
    ring_entries: HashMap<i64, u32>,
    /// Rings created in the trace, by thread: a queue thread's own rings are data rings
    /// (queue rings are made on the main thread before the queue threads start).
    created_by: HashMap<i64, u32>,
}

impl Default for TransportTrace {
    fn default() -> Self {
        TransportTrace::new(&Hints::default())
    }
}

impl TransportTrace {
    /// An empty tally for a daemon described by `hints`.
    pub fn new(hints: &Hints) -> TransportTrace {
        TransportTrace {
            queue_threads: hints.queue_threads(),
            queue: QueueRings::default(),
            dev_fuse: DevFuse::default(),
            ring_entries: hints.ring_entries.clone(),
            created_by: HashMap::new(),
        }
    }

    /// Whether `fd`, entered by queue thread `tid`, is its queue ring: not a ring the
    /// thread created itself in the trace, and not of the data rings' size (unless the two
    /// sizes coincide); a ring of unknown size on a queue thread counts as its queue ring.
    fn is_queue_ring(&self, tid: u32, fd: i64) -> bool {
        if !self.queue_threads.contains(&tid) {
            return false;
        }
        if self.created_by.get(&fd).is_some_and(|&t| t == tid) {
            return false;
        }
        let data_sized = |n: u32| n == data_ring_entries() && n != queue_ring_entries();
        !self.ring_entries.get(&fd).is_some_and(|&n| data_sized(n))
    }

    /// Takes one call; `in_window` is false for teardown calls, which only update the ring
    /// bookkeeping. Returns true if it was an enter on a queue ring (the data-path figures
    /// leave those out).
    pub fn add(&mut self, call: &Call, fd_path: Option<&str>, in_window: bool) -> bool {
        match call.name.as_str() {
            "io_uring_setup" => {
                if let Some((fd, _)) = parse_fd(&call.ret)
                    && fd >= 0
                {
                    if let Some(n) = sq_entries(call.arg(1)) {
                        self.ring_entries.insert(fd, n);
                    }
                    self.created_by.insert(fd, call.tid);
                }
                false
            }
            "io_uring_enter" => {
                let Some((fd, _)) = parse_fd(call.arg(0)) else {
                    return false;
                };
                if !self.is_queue_ring(call.tid, fd) {
                    if in_window && self.queue_threads.contains(&call.tid) {
                        self.queue.data_ring_enters += 1;
                    }
                    return false;
                }
                if in_window {
                    let to_submit = call.arg(1).parse::<u64>().unwrap_or(0);
                    self.queue.enters += 1;
                    self.queue.sqes += to_submit;
                    self.queue.wait_only += u64::from(to_submit == 0);
                    self.queue.fds.insert(fd);
                    let slot = self.queue.per_thread.entry(call.tid).or_default();
                    slot.0 += 1;
                    slot.1 += to_submit;
                }
                true
            }
            name if in_window && fd_path == Some("/dev/fuse") => {
                self.dev_fuse_call(name, call);
                false
            }
            _ => false,
        }
    }

    fn dev_fuse_call(&mut self, name: &str, call: &Call) {
        let d = &mut self.dev_fuse;
        if READS.contains(&name) {
            d.reads += 1;
            if call.errno.is_some() || call.ret.parse::<i64>().is_ok_and(|n| n <= 0) {
                d.read_errors += 1;
                return;
            }
            match header(call.arg(1)) {
                Some(h) => *d.requests.entry(h.1).or_default() += 1,
                None => d.undecoded += 1,
            }
        } else if WRITES.contains(&name) {
            d.writes += 1;
            if call.errno.is_some() {
                d.write_errors += 1;
            }
            match header(call.arg(1)) {
                Some((_, _, 0)) => d.notifications += 1,
                _ => d.replies += 1,
            }
        }
    }

    /// Which transport served the workload: queue threads decide; else the start-up line;
    /// else `/dev/fuse` requests other than forgets mean `/dev/fuse`.
    pub fn kind(&self, log_line: Option<&str>) -> Kind {
        if !self.queue_threads.is_empty() {
            return Kind::IoUring;
        }
        match log_line {
            Some(l) if l.starts_with("FUSE over io_uring") => Kind::IoUring,
            Some(_) => Kind::DevFuse,
            None if self.dev_fuse.other_requests() > 0 => Kind::DevFuse,
            None => Kind::Unknown,
        }
    }
}

/// Read syscalls counted on `/dev/fuse`.
const READS: [&str; 5] = ["read", "readv", "pread64", "preadv", "preadv2"];
/// Write syscalls counted on `/dev/fuse`.
const WRITES: [&str; 5] = ["write", "writev", "pwrite64", "pwritev", "pwritev2"];

/// `sq_entries=N` in an `io_uring_setup` params struct as strace prints it.
fn sq_entries(params: &str) -> Option<u32> {
    let rest = &params[params.find("sq_entries=")? + "sq_entries=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The first 16 bytes of a `/dev/fuse` buffer argument (a string, or an iovec array whose
/// first `iov_base` holds the header) as (len, opcode or error, unique).
pub fn header(arg: &str) -> Option<(u32, u32, u64)> {
    let bytes = unescape(first_string(arg)?);
    let word = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
    let unique: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
    Some((
        u32::from_ne_bytes(word(0)?),
        u32::from_ne_bytes(word(4)?),
        u64::from_ne_bytes(unique),
    ))
}

/// The contents of the first `"..."` string in `arg` (still escaped).
fn first_string(arg: &str) -> Option<&str> {
    let start = arg.find('"')? + 1;
    let mut escaped = false;
    for (i, c) in arg[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(&arg[start..start + i]),
            _ => {}
        }
    }
    None
}

/// The bytes of a string as strace quotes it: `\\`, `\"`, `\n`, `\t`, `\r`, `\v`, `\f`,
/// octal `\N`..`\NNN` (three digits when a digit follows) and `\xNN` (with `-x`).
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = bytes.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'x' => {
                let hex: String = bytes[i..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .map(|&c| char::from(c))
                    .collect();
                i += hex.len();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'x'));
            }
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                let mut digits = 1;
                while digits < 3
                    && let Some(&d) = bytes.get(i)
                    && (b'0'..=b'7').contains(&d)
                {
                    value = value * 8 + u32::from(d - b'0');
                    i += 1;
                    digits += 1;
                }
                out.push(u8::try_from(value & 0xff).unwrap_or(0));
            }
            other => out.push(other),
        }
    }
    out
}

/// An opcode's name without the `FUSE_` prefix (`FORGET`), or its number.
pub fn op_label(op: u32) -> String {
    opcode_name(op).map_or_else(
        || format!("opcode {op}"),
        |n| n.trim_start_matches("FUSE_").to_string(),
    )
}

/// The `FUSE transport: ...` start-up line of a log, after the prefix (the last one, in case
/// the log holds several starts); when the daemon then fell back to `/dev/fuse` (its ring
/// could not be prepared), a line starting with `/dev/fuse` that says so.
pub fn from_log(log: &str) -> Option<String> {
    let after = |prefix: &str| {
        log.lines().rev().find_map(|l| {
            l.find(prefix)
                .map(|at| l[at + prefix.len()..].trim().to_string())
        })
    };
    match (after(LOG_PREFIX), after(FALLBACK_PREFIX)) {
        (Some(chosen), Some(why)) => Some(format!(
            "/dev/fuse (chose {chosen}, then {FALLBACK_PREFIX}{why})"
        )),
        (None, Some(why)) => Some(format!("/dev/fuse ({FALLBACK_PREFIX}{why})")),
        (chosen, None) => chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::trace::parse;

    #[test]
    fn unescapes_strace_strings() {
        assert_eq!(unescape(r"8\0\0\0\2\0\0\0"), [b'8', 0, 0, 0, 2, 0, 0, 0]);
        // Three octal digits when a digit follows; \20 is 16.
        assert_eq!(unescape(r"\0001\20"), [0, b'1', 16]);
        assert_eq!(
            unescape(r#"\\\"\n\t\377\x41"#),
            [b'\\', b'"', b'\n', b'\t', 255, b'A']
        );
    }

    #[test]
    fn decodes_in_and_out_headers() {
        // fuse_in_header of a FORGET: len 48, opcode 2, unique 6.
        let read = r#""0\0\0\0\2\0\0\0\6\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"..."#;
        assert_eq!(header(read), Some((48, 2, 6)));
        let writev = r#"[{iov_base="\20\0\0\0\0\0\0\0\f\0\0\0\0\0\0\0", iov_len=16}, {iov_base="x", iov_len=1}]"#;
        assert_eq!(header(writev), Some((16, 0, 12)));
        assert_eq!(header("0x7ffd1000"), None);
        assert_eq!(header(r#""\1\0""#), None);
    }

    #[test]
    fn reads_the_log_line_and_sizes() {
        let log = "[..] INFO uringfs] FUSE transport: FUSE over io_uring, 2 queues\n[..] mounted";
        assert_eq!(
            from_log(log).as_deref(),
            Some("FUSE over io_uring, 2 queues")
        );
        assert_eq!(from_log("nothing"), None);
        let fell_back = format!("{log}\n[..] ERROR x] FUSE requests stay on /dev/fuse: ENOMEM");
        let line = from_log(&fell_back).expect("a line");
        assert!(
            line.starts_with("/dev/fuse (chose FUSE over io_uring"),
            "{line}"
        );
        assert_eq!(TransportTrace::default().kind(Some(&line)), Kind::DevFuse);
        assert_eq!(
            TransportTrace::default().kind(from_log(log).as_deref()),
            Kind::IoUring
        );
        assert_eq!(
            sq_entries("256, {flags=IORING_SETUP_CLAMP, sq_entries=256, cq_entries=512}"),
            Some(256)
        );
        assert_eq!(op_label(42), "BATCH_FORGET");
        assert_eq!(op_label(7), "opcode 7");
    }

    /// Queue thread 20 enters its queue ring (fd 9, known from fdinfo at attach) and the data
    /// ring it creates in the trace (fd 16); a fuser worker reads forgets from /dev/fuse.
    const RING_TRACE: &str = r#"20 1.0 io_uring_enter(9<anon_inode:[io_uring]>, 0, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 0 <0.9>
20 1.1 io_uring_enter(9<anon_inode:[io_uring]>, 2, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 2 <0.1>
20 1.2 io_uring_setup(256, {flags=IORING_SETUP_CLAMP, sq_entries=256, cq_entries=512}) = 16<anon_inode:[io_uring]> <0.00003>
20 1.3 io_uring_enter(16<anon_inode:[io_uring]>, 20, 20, IORING_ENTER_GETEVENTS, NULL, 128) = 20 <0.0001>
20 1.4 io_uring_enter(9<anon_inode:[io_uring]>, 3, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 3 <0.1>
21 1.5 read(8</dev/fuse>, "0\0\0\0\2\0\0\0\6\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"..., 1052672) = 48 <0.1>
21 1.6 read(8</dev/fuse>, "\240\0\0\0*\0\0\0\7\0\0\0\0\0\0\0"..., 1052672) = 160 <0.1>
21 1.7 read(8</dev/fuse>, 0x7f0000, 1052672) = -1 ENODEV (No such device) <0.1>
22 1.8 io_uring_enter(6<anon_inode:[io_uring]>, 1, 1, IORING_ENTER_GETEVENTS, NULL, 128) = 1 <0.0001>
"#;

    fn tally(trace: &str, hints: &Hints) -> TransportTrace {
        let (calls, unparsed) = parse(trace);
        assert_eq!(unparsed, 0);
        let mut t = TransportTrace::new(hints);
        for c in &calls {
            let path = parse_fd(c.arg(0)).and_then(|(_, p)| p);
            t.add(c, path, true);
        }
        t
    }

    #[test]
    fn queue_rings_and_forgets_over_io_uring() {
        let hints = Hints {
            threads: BTreeMap::from([
                (20, "fuse-uring-0".into()),
                (21, "fuser-0".into()),
                (22, "fuser-1".into()),
            ]),
            ring_entries: HashMap::from([(9, queue_ring_entries()), (6, data_ring_entries())]),
            log_line: None,
        };
        let t = tally(RING_TRACE, &hints);
        assert_eq!((t.queue.enters, t.queue.sqes, t.queue.wait_only), (3, 5, 1));
        assert_eq!(t.queue.fds, BTreeSet::from([9]));
        assert_eq!(t.queue.per_thread.get(&20), Some(&(3, 5)));
        assert_eq!(t.queue.data_ring_enters, 1);
        let d = &t.dev_fuse;
        assert_eq!((d.reads, d.read_errors, d.undecoded), (3, 1, 0));
        assert_eq!(d.requests_of(FUSE_FORGET), 1);
        assert_eq!(d.requests_of(FUSE_BATCH_FORGET), 1);
        assert_eq!((d.forgetish(), d.other_requests(), d.stray()), (2, 0, 0));
        assert_eq!(t.kind(None), Kind::IoUring);
    }

    const DEVFUSE_TRACE: &str = r#"21 1.0 read(8</dev/fuse>, "8\0\0\0\1\0\0\0\10\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"..., 1052672) = 56 <0.1>
21 1.1 writev(8</dev/fuse>, [{iov_base="\220\0\0\0\0\0\0\0\10\0\0\0\0\0\0\0", iov_len=16}, {iov_base="\2\0", iov_len=128}], 2) = 144 <0.0001>
21 1.2 read(8</dev/fuse>, "(\0\0\0$\0\0\0\11\0\0\0\0\0\0\0"..., 1052672) = 40 <0.1>
21 1.3 writev(8</dev/fuse>, [{iov_base="\20\0\0\0\332\377\377\377\11\0\0\0\0\0\0\0", iov_len=16}], 1) = 16 <0.0001>
21 1.4 writev(8</dev/fuse>, [{iov_base="(\0\0\0\2\0\0\0\0\0\0\0\0\0\0\0", iov_len=16}, {iov_base="\1", iov_len=24}], 2) = 40 <0.0001>
"#;

    #[test]
    fn requests_replies_and_notifications_over_dev_fuse() {
        let t = tally(DEVFUSE_TRACE, &Hints::default());
        let d = &t.dev_fuse;
        assert_eq!((d.reads, d.writes), (2, 3));
        assert_eq!(d.requests_of(1), 1, "a LOOKUP");
        assert_eq!(d.requests_of(FUSE_INTERRUPT), 1);
        // The LOOKUP's reply and the INTERRUPT's ENOSYS are replies; unique 0 notifies.
        assert_eq!((d.replies, d.notifications), (2, 1));
        assert_eq!(
            (d.other_requests(), d.excess_replies(), d.stray()),
            (1, 1, 2)
        );
        assert_eq!(t.queue.enters, 0);
        assert_eq!(t.kind(None), Kind::DevFuse);
        assert_eq!(
            t.kind(Some("/dev/fuse (-o transport=devfuse)")),
            Kind::DevFuse
        );
        assert_eq!(TransportTrace::default().kind(None), Kind::Unknown);
    }
}
