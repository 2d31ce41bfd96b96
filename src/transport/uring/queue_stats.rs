//! What the FUSE-over-io_uring queues did: enters, SQEs and requests, for the daemon's
//! counters line (SIGUSR1, unmount) and `uringfs audit`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared by every queue thread.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// `io_uring_enter` calls (each submits what is queued and waits for a completion).
    pub enters: AtomicU64,
    /// SQEs those calls submitted: commits and fetches, backing reads and writes, timers.
    pub sqes: AtomicU64,
    /// FUSE requests the kernel handed over (fetch completions with a request).
    pub requests: AtomicU64,
    /// Backing reads and writes completed on the queue rings.
    pub io: AtomicU64,
    /// Retries of deferred requests (a waiting lock's timer firing).
    pub retries: AtomicU64,
}

impl QueueStats {
    /// Counts one `io_uring_enter` that submitted `sqes`.
    pub fn entered(&self, sqes: usize) {
        self.enters.fetch_add(1, Relaxed);
        self.sqes.fetch_add(sqes as u64, Relaxed);
    }

    /// One line: `transport: io_uring enters=E sqes=S requests=R io=N retries=T
    /// requests_per_enter=X sqes_per_enter=Y`.
    pub fn summary(&self) -> String {
        let enters = self.enters.load(Relaxed);
        let sqes = self.sqes.load(Relaxed);
        let requests = self.requests.load(Relaxed);
        let per = |n: u64| {
            if enters == 0 {
                0.0
            } else {
                n as f64 / enters as f64
            }
        };
        format!(
            "transport: io_uring enters={enters} sqes={sqes} requests={requests} io={} \
             retries={} requests_per_enter={:.2} sqes_per_enter={:.2}",
            self.io.load(Relaxed),
            self.retries.load(Relaxed),
            per(requests),
            per(sqes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_divides_by_enters() {
        let s = QueueStats::default();
        assert!(s.summary().contains("requests_per_enter=0.00"));
        s.entered(3);
        s.entered(1);
        s.requests.fetch_add(2, Relaxed);
        let line = s.summary();
        assert!(line.contains("enters=2 sqes=4 requests=2"), "{line}");
        assert!(
            line.contains("requests_per_enter=1.00 sqes_per_enter=2.00"),
            "{line}"
        );
    }
}
