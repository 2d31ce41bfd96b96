//! The FUSE kernel ABI as the ring transport needs it: the structs of
//! `include/uapi/linux/fuse.h` (protocol 7.45, Linux 6.18; the ring arrived in 7.42, Linux 6.14)
//! with their exact sizes and field order, and their byte form.
//!
//! The names are the kernel's, so a field can be looked up in the header by grep. Every struct
//! is `#[repr(C)]` with its size asserted at compile time, and implements [`Wire`]: reading and
//! writing it field by field at `offset_of!` positions, in native byte order (the kernel's own,
//! since both ends run on the same machine). No transmutes and no pointer casts: the crate keeps
//! `unsafe` in `sys/`, `ring/` and the queues.
//!
//! By part: `wire.rs` (the byte form), `requests.rs` (what the kernel sends), `replies.rs`
//! (what the daemon answers, directory records included), `ring_entry.rs` (a ring entry's
//! header and the ring commands), `flags.rs` (flag bits by field), `opcodes.rs` (the opcodes).
#![allow(non_camel_case_types)]

// First, and with `#[macro_use]`: the files after it declare their structs with its
// `wire_struct!`, and a `macro_rules!` macro is in scope only below its definition.
#[macro_use]
mod wire;
mod flags;
mod opcodes;
mod replies;
mod requests;
mod ring_entry;

pub use flags::*;
pub use opcodes::*;
pub use replies::*;
pub use requests::*;
pub use ring_entry::*;
pub use wire::Wire;

/// Protocol major version.
pub const FUSE_KERNEL_VERSION: u32 = 7;
/// Minor version of the header these structs follow (Linux 6.18).
pub const FUSE_KERNEL_MINOR_VERSION: u32 = 45;
/// First minor version with FUSE-over-io_uring.
pub const FUSE_URING_MINOR_VERSION: u32 = 42;
/// The root's nodeid.
pub const FUSE_ROOT_ID: u64 = 1;
/// Set in `unique` of a request the kernel resends after `FUSE_NOTIFY_RESEND`.
pub const FUSE_UNIQUE_RESEND: u64 = 1 << 63;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel_header() {
        assert_eq!(fuse_in_header::SIZE, 40);
        assert_eq!(fuse_attr::SIZE, 88);
        assert_eq!(fuse_entry_out::SIZE, 128);
        assert_eq!(fuse_attr_out::SIZE, 104);
        assert_eq!(fuse_setattr_in::SIZE, 88);
        assert_eq!(fuse_read_in::SIZE, 40);
        assert_eq!(fuse_write_in::SIZE, 40);
        assert_eq!(
            fuse_direntplus::SIZE,
            fuse_entry_out::SIZE + fuse_dirent::SIZE
        );
        assert_eq!(fuse_statx_out::SIZE, 288);
        assert_eq!(size_of::<fuse_uring_req_header>(), 288);
        assert_eq!(FUSE_NAME_OFFSET, 24);
        assert_eq!(FUSE_NAME_OFFSET_DIRENTPLUS, 152);
        assert_eq!(fuse_dirent_size(1), 32);
        assert_eq!(fuse_dirent_size(8), 32);
        assert_eq!(fuse_dirent_size(9), 40);
        assert_eq!(fuse_direntplus_size(3), 160);
    }
}
