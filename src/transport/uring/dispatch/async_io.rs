//! READ and WRITE without blocking the queue: the request becomes an I/O on the queue's own
//! ring (`AsyncIo`), into or from the entry's payload, answered when its CQE arrives.

use std::time::Instant;

use fuser::WriteFlags;

use crate::error::errno_code;
use crate::fs::Ctx;
use crate::stats::Op;
use crate::transport::uring::decode::{self, InHeader, Negotiated, Request};
use crate::transport::uring::queue::{AsyncIo, HEADER_SIZE};

use super::{RingDispatch, malformed};

impl RingDispatch {
    /// A READ or WRITE as an I/O for the queue's ring: `None` when it must run here instead
    /// (an unaligned write to an O_DIRECT file, which needs a bounce buffer).
    pub(super) fn async_io(
        &self,
        ctx: &Ctx,
        in_header: &InHeader,
        header: &[u8; HEADER_SIZE],
        op_in: &[u8],
        payload: &[u8],
    ) -> Result<Option<AsyncIo>, i32> {
        let core = &*self.core;
        let started = Instant::now();
        let request = match decode::decode_with(header, op_in, payload, Negotiated::default()) {
            Ok((_, request)) => request,
            Err(err) => return Err(malformed(in_header, &err)),
        };
        let (write, ino, fh, offset, len, flags_data) = match request {
            Request::Read {
                ino,
                fh,
                offset,
                size,
                ..
            } => (false, ino, fh, offset, size, None),
            Request::Write {
                ino,
                fh,
                offset,
                data,
                write_flags,
                ..
            } => {
                let len = u32::try_from(data.len()).map_err(|_| libc::EINVAL)?;
                let flags = WriteFlags::from_bits_retain(write_flags);
                (true, ino, fh, offset, len, Some((flags, data)))
            }
            _ => return Ok(None),
        };
        let op = if write { Op::Write } else { Op::Read };
        // Counted when it completes (or, run here, by the synchronous path); only a failure
        // to start it is counted now.
        match core.io_target(ctx, ino, fh, flags_data) {
            Ok(Some(target)) => Ok(Some(AsyncIo {
                write,
                fd: target.fd,
                offset,
                len,
                done: 0,
                identity: target.identity,
                keep: Box::new(target.file),
                unique: in_header.unique,
                ino,
                started,
            })),
            Ok(None) => Ok(None),
            Err(err) => {
                let code = errno_code(&err);
                let _ = core.account::<()>(op, ino, started, Err(err));
                Err(code)
            }
        }
    }
}
