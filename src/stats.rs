//! Per-operation counters: requests, errors and time spent, printed on SIGUSR1 and at unmount.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

macro_rules! ops {
    ($($name:ident => $text:literal),* $(,)?) => {
        /// The FUSE operations the daemon counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Op { $($name),* }

        impl Op {
            /// Every operation, in counter order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];

            /// The operation's name in logs and reports.
            pub fn name(self) -> &'static str {
                match self { $(Op::$name => $text),* }
            }
        }
    };
}

ops! {
    Lookup => "lookup", Forget => "forget", GetAttr => "getattr", SetAttr => "setattr",
    ReadLink => "readlink", MkNod => "mknod", MkDir => "mkdir", Unlink => "unlink",
    RmDir => "rmdir", Symlink => "symlink", Rename => "rename", Link => "link",
    Open => "open", Read => "read", Write => "write", Flush => "flush",
    Release => "release", Fsync => "fsync", OpenDir => "opendir", ReadDir => "readdir",
    ReadDirPlus => "readdirplus", ReleaseDir => "releasedir", FsyncDir => "fsyncdir",
    StatFs => "statfs", SetXattr => "setxattr", GetXattr => "getxattr",
    ListXattr => "listxattr", RemoveXattr => "removexattr", Access => "access",
    Create => "create", Fallocate => "fallocate", Lseek => "lseek",
    CopyFileRange => "copy_file_range", Ioctl => "ioctl", Tmpfile => "tmpfile",
    GetLk => "getlk", SetLk => "setlk",
}

#[derive(Debug, Default)]
struct Counter {
    requests: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
}

/// Counters for every operation, and the gauges tests and operators read off the summary.
#[derive(Debug)]
pub struct OpStats {
    counters: Vec<Counter>,
    /// Opens and creates answered with a kernel passthrough backing id.
    passthrough_opens: AtomicU64,
    /// Inodes the kernel holds (the table's entries, the root included).
    live_inodes: AtomicU64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            counters: Op::ALL.iter().map(|_| Counter::default()).collect(),
            passthrough_opens: AtomicU64::new(0),
            live_inodes: AtomicU64::new(0),
        }
    }
}

impl OpStats {
    /// Counts one request of `op` that started at `started`.
    pub fn record(&self, op: Op, started: Instant, failed: bool) {
        if let Some(c) = self.counters.get(op as usize) {
            c.requests.fetch_add(1, Ordering::Relaxed);
            if failed {
                c.errors.fetch_add(1, Ordering::Relaxed);
            }
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            c.nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Counts an open answered with a passthrough backing id.
    pub fn record_passthrough_open(&self) {
        self.passthrough_opens.fetch_add(1, Ordering::Relaxed);
    }

    /// Opens answered with a passthrough backing id so far.
    pub fn passthrough_opens(&self) -> u64 {
        self.passthrough_opens.load(Ordering::Relaxed)
    }

    /// Sets the number of inodes the kernel holds.
    pub fn set_live_inodes(&self, n: usize) {
        self.live_inodes
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// (requests, errors, nanoseconds) of `op`.
    pub fn get(&self, op: Op) -> (u64, u64, u64) {
        self.counters.get(op as usize).map_or((0, 0, 0), |c| {
            (
                c.requests.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
                c.nanos.load(Ordering::Relaxed),
            )
        })
    }

    /// One line: the gauges, then `op=requests/errors/microseconds` for every op that was
    /// seen.
    pub fn summary(&self) -> String {
        let mut line = format!(
            " inodes={} passthrough_opens={}",
            self.live_inodes.load(Ordering::Relaxed),
            self.passthrough_opens()
        );
        for &op in Op::ALL {
            let (requests, errors, nanos) = self.get(op);
            if requests > 0 {
                let _ = write!(
                    line,
                    " {}={}/{}/{}us",
                    op.name(),
                    requests,
                    errors,
                    nanos / 1000
                );
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_requests_and_errors() {
        let stats = OpStats::default();
        stats.record(Op::Lookup, Instant::now(), false);
        stats.record(Op::Lookup, Instant::now(), true);
        let (requests, errors, _) = stats.get(Op::Lookup);
        assert_eq!((requests, errors), (2, 1));
        assert!(stats.summary().contains(" lookup=2/1/"));
        assert!(!stats.summary().contains("write"));
    }
}
