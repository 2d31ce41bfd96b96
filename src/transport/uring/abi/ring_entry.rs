//! The FUSE-over-io_uring part of the ABI: a ring entry's header buffer and the command area
//! of the SQEs that register an entry and commit its replies.

use std::mem::{offset_of, size_of};

use super::Wire;

wire_struct! {
    /// The kernel's half of a ring entry's header: `fuse_uring_req_header.ring_ent_in_out`.
    pub struct fuse_uring_ent_in_out [32] {
        pub flags: u64 => "No flags are defined.",
        pub commit_id: u64 => "Names the request in COMMIT_AND_FETCH (equals its `unique`).",
        pub payload_sz: u32 => "Payload bytes used: in-args after the first; reply body.",
        pub padding: u32,
        pub reserved: u64,
    }
    /// The 80-byte command area of a `FUSE_IO_URING_CMD_*` SQE (only the first 24 are used).
    pub struct fuse_uring_cmd_req [24] {
        pub flags: u64 => "No flags are defined in 6.18.",
        pub commit_id: u64 => "COMMIT_AND_FETCH: the request answered.",
        pub qid: u16 => "The queue (CPU) the entry belongs to.",
        pub padding: [u8; 6],
    }
}

/// A ring entry's header buffer, `iov[0]` of REGISTER: 288 bytes the kernel keeps a pointer
/// to for the entry's life.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fuse_uring_req_header {
    /// [`fuse_in_header`](super::fuse_in_header) on fetch,
    /// [`fuse_out_header`](super::fuse_out_header) on commit.
    pub in_out: [u8; FUSE_URING_IN_OUT_HEADER_SZ],
    /// The request's first in-arg (its per-op struct), when that has a size; stale otherwise.
    pub op_in: [u8; FUSE_URING_OP_IN_OUT_SZ],
    /// Commit id and payload size.
    pub ring_ent_in_out: fuse_uring_ent_in_out,
}
const _: () = assert!(size_of::<fuse_uring_req_header>() == 288);

/// Size of a ring header's `in_out` area.
pub const FUSE_URING_IN_OUT_HEADER_SZ: usize = 128;
/// Size of a ring header's `op_in` area.
pub const FUSE_URING_OP_IN_OUT_SZ: usize = 128;
/// Offset of `in_out` in a ring header.
pub const RING_IN_OUT_OFFSET: usize = offset_of!(fuse_uring_req_header, in_out);
/// Offset of `op_in` in a ring header.
pub const RING_OP_IN_OFFSET: usize = offset_of!(fuse_uring_req_header, op_in);
/// Offset of `ring_ent_in_out` in a ring header.
pub const RING_ENT_IN_OUT_OFFSET: usize = offset_of!(fuse_uring_req_header, ring_ent_in_out);
/// Bytes of an SQE128's command area (`fuse_uring_cmd_req` and zeros).
pub const URING_CMD_AREA_SZ: usize = 80;
/// `cmd_op` of the SQE that registers an entry's buffers and fetches its first request.
pub const FUSE_IO_URING_CMD_REGISTER: u32 = 1;
/// `cmd_op` of the SQE that commits a reply and re-arms the entry.
pub const FUSE_IO_URING_CMD_COMMIT_AND_FETCH: u32 = 2;

// Offsets checked by hand against the 6.18 header, beyond what the size asserts imply.
const _: () = assert!(RING_OP_IN_OFFSET == 128 && RING_ENT_IN_OUT_OFFSET == 256);
const _: () = assert!(offset_of!(fuse_uring_ent_in_out, payload_sz) == 16);
const _: () = assert!(offset_of!(fuse_uring_cmd_req, qid) == 16);
