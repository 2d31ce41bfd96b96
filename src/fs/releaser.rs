//! Closing the last fd of an unlinked file off the request's path.
//!
//! When an unlink or a rename removes a file's last link, the table's `O_PATH` fd is all
//! that keeps the file in the backing fs, and closing it makes ext4 free the inode and its
//! blocks: reading bitmaps, journaling, on a cold cache a disk read or two. Natively
//! unlink(2) pays that before it returns, and so did UNLINK here, which made `rm -rf` of the
//! bench tree take 1.0-2.2 s where closing at the kernel's FORGET took 0.59-0.67 s. A
//! thread of its own closes them instead, while the caller goes on to its next request;
//! and, so that space is free whenever anyone through the mount could see it missing,
//! every request that allocates or reports space first waits for the closes handed over
//! before it (`settle`). Natively the space is free when unlink returns; through the mount
//! it is free before any later request of the mount can tell. (A process writing into
//! BACKING itself, not through the mount, may find it missing for the microseconds the
//! close takes; and under `-o passthrough`, whose writes reach BACKING without a request,
//! unlinks close inline as before.)

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{Sender, channel};
use std::thread;

use log::warn;
use parking_lot::{Condvar, Mutex};

/// Hands fds to the closing thread and waits for it.
#[derive(Debug)]
pub struct Releaser {
    /// The closing thread's queue; `None` if the thread could not start (fds then close at
    /// once, as before).
    queue: Option<Sender<Arc<OwnedFd>>>,
    pending: Arc<Pending>,
}

/// How many fds were handed over and are not closed yet.
#[derive(Debug, Default)]
struct Pending {
    /// Read without the lock: the common case is nothing to wait for.
    count: AtomicUsize,
    lock: Mutex<()>,
    closed: Condvar,
}

impl Pending {
    fn done(&self) {
        // Decrement under the lock, so a `settle` between its check and its wait cannot
        // miss the wake-up.
        let _guard = self.lock.lock();
        self.count.fetch_sub(1, SeqCst);
        self.closed.notify_all();
    }
}

impl Releaser {
    /// Starts the closing thread.
    pub fn new() -> Releaser {
        let pending = Arc::new(Pending::default());
        let (tx, rx) = channel::<Arc<OwnedFd>>();
        let worker_pending = Arc::clone(&pending);
        let started = thread::Builder::new()
            .name("release-fds".into())
            .spawn(move || {
                for fd in rx {
                    drop(fd);
                    worker_pending.done();
                }
            });
        let queue = match started {
            Ok(_) => Some(tx),
            Err(err) => {
                warn!("cannot start the release-fds thread ({err}): unlinked files close inline");
                None
            }
        };
        Releaser { queue, pending }
    }

    /// Closes `fd` soon, on the closing thread (if a request still holds a clone, that
    /// request's drop closes it).
    pub fn close_later(&self, fd: Arc<OwnedFd>) {
        let Some(tx) = self.queue.as_ref() else {
            drop(fd);
            return;
        };
        self.pending.count.fetch_add(1, SeqCst);
        if let Err(returned) = tx.send(fd) {
            // The thread is gone: close here.
            drop(returned.0);
            self.pending.done();
        }
    }

    /// Returns once every fd handed over before this call is closed.
    pub fn settle(&self) {
        if self.pending.count.load(SeqCst) == 0 {
            return;
        }
        let mut guard = self.pending.lock.lock();
        while self.pending.count.load(SeqCst) != 0 {
            self.pending.closed.wait(&mut guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use std::os::fd::AsFd;

    /// An fd handed over is closed by the time `settle` returns: the read end of a pipe
    /// whose write end went to the releaser sees end of file.
    #[test]
    fn settle_waits_for_the_closes_handed_over() {
        let releaser = Releaser::new();
        let mut pipes = Vec::new();
        for _ in 0..100 {
            let (read_end, write_end) = sys::pipe().expect("pipe");
            releaser.close_later(Arc::new(write_end));
            pipes.push(read_end);
        }
        releaser.settle();
        for read_end in &pipes {
            let mut buf = [0u8; 1];
            assert_eq!(sys::read(read_end.as_fd(), &mut buf).expect("read"), 0);
        }
        assert_eq!(releaser.pending.count.load(SeqCst), 0);
    }

    /// With nothing handed over, `settle` returns at once.
    #[test]
    fn settle_with_nothing_pending_returns() {
        Releaser::new().settle();
    }
}
