//! Pushing SQEs, entering the kernel and reaping the CQEs that answer them.
//!
//! Every function here returns only once each SQE it pushed has its CQE (or never reached the
//! kernel): the invariant that lets callers point SQEs at borrowed memory.
#![allow(unsafe_code)]

use std::io;
use std::thread;
use std::time::Duration;

use io_uring::{EnterFlags, squeue};
use log::error;

use super::stats::Counters;
use super::thread_ring::ThreadRing;
use super::{EAGAIN_RETRIES, RingPool};

/// How often a submit that fails with EBUSY/EAGAIN is retried, with nothing in flight, before
/// the ring is given up as broken.
const BUSY_RETRIES: u32 = 1000;

/// A raw CQE result: bytes/fd on success, `-errno` on failure.
#[derive(Clone, Copy, Debug)]
pub(super) struct CqeResult(i32);

impl From<CqeResult> for io::Result<u32> {
    fn from(CqeResult(res): CqeResult) -> Self {
        u32::try_from(res).map_err(|_| io::Error::from_raw_os_error(res.saturating_neg()))
    }
}

impl CqeResult {
    pub(super) fn into_result(self) -> io::Result<u32> {
        self.into()
    }
}

/// The errno to report for `err`; an error without one becomes EIO, never 0.
fn errno_of(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(libc::EIO)
}

pub(super) fn is_retryable(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EINTR | libc::EAGAIN))
}

impl RingPool {
    /// One SQE, retried on EINTR/EAGAIN, on this thread's ring.
    ///
    /// # Safety
    ///
    /// Memory `entry` points to must stay valid until this returns.
    pub(super) unsafe fn run_simple(&self, entry: &squeue::Entry) -> io::Result<u32> {
        self.with_ring(|tr| {
            let mut attempts = 0u32;
            loop {
                // SAFETY: forwarded from our caller's contract.
                let res = unsafe { self.run_one(tr, entry) }.into_result();
                match res {
                    Err(err) if is_retryable(&err) && attempts < EAGAIN_RETRIES => attempts += 1,
                    res => return res,
                }
            }
        })
    }

    /// # Safety
    ///
    /// Memory `entry` points to must stay valid until this returns.
    pub(super) unsafe fn run_one(&self, tr: &mut ThreadRing, entry: &squeue::Entry) -> CqeResult {
        // SAFETY: forwarded from our caller's contract.
        let results = unsafe { self.run_batch(tr, std::slice::from_ref(entry)) };
        results.first().copied().unwrap_or(CqeResult(-libc::EIO))
    }

    /// `run_batch` on this thread's ring, re-running entries that came back EINTR/EAGAIN.
    ///
    /// # Safety
    ///
    /// As [`RingPool::run_batch`]; the entries must be safe to re-issue.
    pub(super) unsafe fn run_batch_retrying(&self, entries: &[squeue::Entry]) -> Vec<CqeResult> {
        let outcome = self.with_ring(|tr| {
            // SAFETY: forwarded from our caller's contract.
            let mut results = unsafe { self.run_batch(tr, entries) };
            for _ in 0..EAGAIN_RETRIES {
                let retry: Vec<usize> = results
                    .iter()
                    .enumerate()
                    .filter(|(_, res)| matches!(-res.0, libc::EINTR | libc::EAGAIN))
                    .map(|(i, _)| i)
                    .collect();
                if retry.is_empty() {
                    break;
                }
                let again: Vec<squeue::Entry> = retry
                    .iter()
                    .filter_map(|&i| entries.get(i).cloned())
                    .collect();
                // SAFETY: forwarded from our caller's contract.
                let redone = unsafe { self.run_batch(tr, &again) };
                for (i, res) in retry.into_iter().zip(redone) {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = res;
                    }
                }
            }
            Ok(results)
        });
        outcome.unwrap_or_else(|err| vec![CqeResult(-errno_of(&err)); entries.len()])
    }

    /// Pushes `entries` in chunks of the SQ size, one enter per chunk, and waits for all their
    /// CQEs. Returns one result per entry, in order; entries that never reached the kernel
    /// (ring broken) get the enter's errno.
    ///
    /// # Safety
    ///
    /// Every pointer in `entries` (buffer, path, statx buffer) must stay valid, and not be
    /// accessed by anyone else, until this returns. Entries must produce exactly one CQE each
    /// (no multishot, no CQE_SKIP_SUCCESS) and must not set user_data (it is overwritten). A
    /// link chain must not straddle a multiple of the SQ size.
    pub(super) unsafe fn run_batch(
        &self,
        tr: &mut ThreadRing,
        entries: &[squeue::Entry],
    ) -> Vec<CqeResult> {
        let mut slots: Vec<Option<i32>> = vec![None; entries.len()];
        if tr.broken.is_none() {
            let capacity = tr.ring.params().sq_entries().max(1) as usize;
            for (chunk, chunk_slots) in entries.chunks(capacity).zip(slots.chunks_mut(capacity)) {
                tr.seq = tr.seq.wrapping_add(1);
                let seq = tr.seq;
                let mut pushed = 0usize;
                {
                    let mut sq = tr.ring.submission();
                    for (index, entry) in chunk.iter().enumerate() {
                        let entry = entry.clone().user_data(user_data(seq, index));
                        // SAFETY: our caller keeps what `entry` points to alive until we return,
                        // and `drive` below does not return while any pushed SQE is in flight.
                        if unsafe { sq.push(&entry) }.is_err() {
                            break;
                        }
                        pushed += 1;
                    }
                }
                Counters::add(&self.inner.counters.sqes_submitted, pushed);
                if let Err(err) = self.drive(tr, seq, pushed, chunk_slots) {
                    tr.broken = Some(errno_of(&err));
                    break;
                }
                if pushed < chunk.len() {
                    // The SQ is empty at the start of each chunk, so this is a broken invariant.
                    error!(
                        "io_uring: SQ full with {pushed} of {} SQEs pushed",
                        chunk.len()
                    );
                    tr.broken = Some(libc::EBUSY);
                    break;
                }
            }
        }
        let fallback = tr.broken.unwrap_or(libc::EIO);
        slots
            .into_iter()
            .map(|slot| CqeResult(slot.unwrap_or(-fallback)))
            .collect()
    }

    /// Submits what is in the SQ and reaps until all `pushed` SQEs of chunk `seq` have their
    /// CQE in `slots`, or were left unsubmitted in the SQ by an enter error (then `Err`, and
    /// the ring must be discarded). Never returns while one of them is in flight.
    fn drive(
        &self,
        tr: &mut ThreadRing,
        seq: u32,
        pushed: usize,
        slots: &mut [Option<i32>],
    ) -> io::Result<()> {
        let counters = &self.inner.counters;
        let mut reaped = 0usize;
        let mut submit_error: Option<io::Error> = None;
        let mut busy = 0u32;
        let mut wait_failures = 0u32;
        loop {
            let in_sq = tr.ring.submission().len();
            // Consumed by the kernel, CQE not reaped yet: the ones we must wait for.
            let in_flight = pushed.saturating_sub(reaped).saturating_sub(in_sq);
            if in_flight == 0 && (in_sq == 0 || submit_error.is_some()) {
                return match submit_error {
                    Some(err) if in_sq > 0 => Err(err),
                    _ => Ok(()),
                };
            }
            let submitting = in_sq > 0 && submit_error.is_none();
            let want = in_flight + if submitting { in_sq } else { 0 };
            Counters::add(&counters.enters, 1);
            let ret = if submitting {
                // If the kernel stops early (an SQE failed to prep), it skips the wait and
                // returns the count consumed; the loop then submits the rest.
                tr.ring.submit_and_wait(want)
            } else {
                // Wait without submitting: after a failed submit the SQ leftovers must never
                // reach the kernel, but what is in flight must still be waited for.
                // SAFETY: to_submit is 0 so no SQE is consumed, and no argument pointer is
                // passed.
                unsafe {
                    tr.ring.submitter().enter::<libc::sigset_t>(
                        0,
                        u32::try_from(want).unwrap_or(u32::MAX),
                        EnterFlags::GETEVENTS.bits(),
                        None,
                    )
                }
            };
            match ret {
                Ok(submitted) => {
                    if submitting {
                        counters.record_batch(submitted);
                    }
                    busy = 0;
                }
                Err(err) => match err.raw_os_error() {
                    Some(libc::EINTR) => Counters::add(&counters.enter_retries, 1),
                    // EBUSY: the CQ overflow backlog is full; reaping below makes room.
                    // EAGAIN: the kernel is short of memory for requests; back off.
                    Some(libc::EBUSY | libc::EAGAIN) => {
                        Counters::add(&counters.enter_retries, 1);
                        busy += 1;
                        if submitting && in_flight == 0 && busy > BUSY_RETRIES {
                            submit_error = Some(err);
                        } else if busy > 16 {
                            thread::sleep(Duration::from_micros(100));
                        }
                    }
                    _ if submitting => {
                        error!("io_uring: submit failed with {in_flight} in flight: {err}");
                        submit_error = Some(err);
                    }
                    _ => {
                        // Returning now would free buffers the kernel may still write to, so
                        // keep waiting, however long it takes.
                        wait_failures += 1;
                        if wait_failures == 1 {
                            error!(
                                "io_uring: waiting for {in_flight} CQEs failed: {err}; retrying"
                            );
                        }
                        thread::sleep(Duration::from_millis(u64::from(wait_failures.min(100))));
                    }
                },
            }
            let mut completed = 0usize;
            for cqe in tr.ring.completion() {
                let tag = cqe.user_data();
                let slot = slots.get_mut((tag & u64::from(u32::MAX)) as usize);
                match slot {
                    Some(slot) if tag >> 32 == u64::from(seq) && slot.is_none() => {
                        *slot = Some(cqe.result());
                        reaped += 1;
                    }
                    _ => error!(
                        "io_uring: stray CQE user_data={tag:#x} res={}",
                        cqe.result()
                    ),
                }
                completed += 1;
            }
            Counters::add(&counters.cqes_reaped, completed);
        }
    }
}

/// user_data of entry `index` of chunk `seq`.
fn user_data(seq: u32, index: usize) -> u64 {
    (u64::from(seq) << 32) | (index as u64 & u64::from(u32::MAX))
}
