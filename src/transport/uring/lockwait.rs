//! Forwarded locks on the ring transport (`-o locks=forward`): SETLK and SETLKW decoded with
//! their `FUSE_LK_FLOCK` flag, and a SETLKW that must wait parked on its queue's retry timer
//! (`queue::Deferred`), so the queue thread keeps serving.

use std::time::Instant;

use crate::error::errno_code;
use crate::fs::Ctx;
use crate::fs::locks::{LockRequest, LockStep, LockWait};
use crate::locks::{LockKind, LockRange};
use crate::stats::Op;

use super::abi::fuse_file_lock;
use super::decode::{self, InHeader, Negotiated, Request};
use super::dispatch::{RingDispatch, Step, commit, malformed};
use super::queue::{Deferred, HEADER_SIZE};

/// The range of a lock as the wire carries it (the type travels as u32, `fcntl`'s int).
pub(super) fn lock_range(lock: &fuse_file_lock) -> LockRange {
    LockRange {
        kind: lock.r#type as i32,
        start: lock.start,
        end: lock.end,
    }
}

/// A SETLKW parked on the ring.
struct ParkedLock {
    wait: LockWait,
    unique: u64,
    ino: u64,
    started: Instant,
}

impl RingDispatch {
    /// SETLK and SETLKW: granted or refused at once, or parked until the lock is free or the
    /// caller is interrupted.
    pub(super) fn set_lock(
        &self,
        ctx: &Ctx,
        in_header: &InHeader,
        header: &[u8; HEADER_SIZE],
        op_in: &[u8],
    ) -> Step {
        let started = Instant::now();
        let unique = in_header.unique;
        let request = match decode::decode_with(header, op_in, &[], Negotiated::default()) {
            Ok((_, request)) => request,
            Err(err) => return Step::Reply(unique, Err(malformed(in_header, &err))),
        };
        let Request::SetLk {
            ino,
            fh,
            owner,
            lock,
            flock,
            wait,
        } = request
        else {
            return Step::Reply(unique, Err(libc::EINVAL));
        };
        let request = LockRequest {
            ino,
            fh,
            owner,
            kind: if flock {
                LockKind::Flock
            } else {
                LockKind::Posix
            },
            range: lock_range(&lock),
            pid: lock.pid,
        };
        match self.core.do_setlk(request, wait, ctx.pid) {
            LockStep::Done(res) => {
                let res = self.core.account(Op::SetLk, ino, started, res);
                Step::Reply(unique, res.map(|()| 0).map_err(|e| errno_code(&e)))
            }
            LockStep::Wait(wait) => Step::Later(Deferred {
                delay: wait.delay,
                state: Box::new(ParkedLock {
                    wait,
                    unique,
                    ino,
                    started,
                }),
            }),
        }
    }

    /// Tries a parked SETLKW again; `true` once its reply is in the entry.
    pub(super) fn retry_parked(
        &self,
        header: &mut [u8; HEADER_SIZE],
        deferred: &mut Deferred,
    ) -> bool {
        let Some(parked) = deferred.state.downcast_mut::<ParkedLock>() else {
            log::error!("a deferred ring request that is not a lock");
            return false;
        };
        match self.core.retry_lock(&mut parked.wait) {
            None => {
                deferred.delay = parked.wait.delay;
                false
            }
            Some(res) => {
                let res = self
                    .core
                    .account(Op::SetLk, parked.ino, parked.started, res);
                commit(
                    header,
                    parked.unique,
                    res.map(|()| 0).map_err(|e| errno_code(&e)),
                );
                true
            }
        }
    }
}
