//! How one long read, write or splice is cut into SQEs: the offset and length of each chunk.

use std::io;

use super::CURRENT_POSITION;

/// Largest length one read/write moves (`MAX_RW_COUNT` in the kernel); larger requests are
/// short, so we ask for no more and loop.
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// io_uring takes an offset as a signed `loff_t`: `-1` (our [`CURRENT_POSITION`]) means the file
/// position, every other negative value is EINVAL. Rejecting those here also means
/// `offset + done` can never overflow.
pub(super) fn check_offset(offset: u64) -> io::Result<()> {
    if offset == CURRENT_POSITION || i64::try_from(offset).is_ok() {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// Offset of the next chunk after `done` bytes: the file position advances by itself.
pub(super) fn chunk_offset(offset: u64, done: usize) -> u64 {
    if offset == CURRENT_POSITION {
        CURRENT_POSITION
    } else {
        offset.saturating_add(done as u64)
    }
}

/// Length for one read/write/splice SQE: at most `MAX_RW_COUNT`, which fits a `u32`.
pub(super) fn rw_len(len: usize) -> u32 {
    u32::try_from(len.min(MAX_RW_COUNT)).unwrap_or(u32::MAX >> 1)
}

/// `chunk_offset` as the `i64` that `Splice` wants (`-1` for the file position).
pub(super) fn splice_offset(offset: u64, done: usize) -> i64 {
    i64::try_from(chunk_offset(offset, done)).unwrap_or(-1)
}
