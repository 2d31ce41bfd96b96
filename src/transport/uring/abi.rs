//! The FUSE kernel ABI as the ring transport needs it: the structs of
//! `include/uapi/linux/fuse.h` (protocol 7.45, Linux 6.18; the ring arrived in 7.42, Linux 6.14)
//! with their exact sizes and field order, and their byte form.
//!
//! The names are the kernel's, so a field can be looked up in the header by grep. Every struct
//! is `#[repr(C)]` with its size asserted at compile time, and implements [`Wire`]: reading and
//! writing it field by field at `offset_of!` positions, in native byte order (the kernel's own,
//! since both ends run on the same machine). No transmutes and no pointer casts: the crate keeps
//! `unsafe` in `sys/`, `ring.rs` and the queues.
#![allow(non_camel_case_types)]

use std::mem::{offset_of, size_of};

/// A fixed-size value with a byte form on the FUSE wire.
pub trait Wire: Sized {
    /// Bytes the value occupies.
    const SIZE: usize;
    /// The value stored at `off` in `bytes`; `None` if the bytes end before it does.
    fn read_at(bytes: &[u8], off: usize) -> Option<Self>;
    /// Stores the value at `off` in `bytes` (padding zeroed); `None` if it does not fit.
    fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SIZE: usize = size_of::<$t>();
            fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
                let raw = bytes.get(off..off.checked_add(Self::SIZE)?)?;
                Some(<$t>::from_ne_bytes(raw.try_into().ok()?))
            }
            fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
                let raw = bytes.get_mut(off..off.checked_add(Self::SIZE)?)?;
                raw.copy_from_slice(&self.to_ne_bytes());
                Some(())
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, i32, i64);

impl<T: Wire + Copy + Default, const N: usize> Wire for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
        let mut out = [T::default(); N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = T::read_at(bytes, off.checked_add(i.checked_mul(T::SIZE)?)?)?;
        }
        Some(out)
    }
    fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
        for (i, item) in self.iter().enumerate() {
            item.write_at(bytes, off.checked_add(i.checked_mul(T::SIZE)?)?)?;
        }
        Some(())
    }
}

/// Declares a kernel struct, asserts its size, and implements [`Wire`] from its field list.
macro_rules! wire_struct {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident [$size:literal] {
            $(pub $field:ident: $ty:ty $(=> $doc:literal)?,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[doc = $doc])? pub $field: $ty,)*
        }
        // The size, and no padding the compiler added: the field list is the whole layout.
        const _: () = assert!(size_of::<$name>() == $size && 0 $(+ size_of::<$ty>())* == $size);
        impl Wire for $name {
            const SIZE: usize = $size;
            fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
                let raw = bytes.get(off..off.checked_add($size)?)?;
                Some($name { $($field: <$ty as Wire>::read_at(raw, offset_of!($name, $field))?,)* })
            }
            fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
                let raw = bytes.get_mut(off..off.checked_add($size)?)?;
                raw.fill(0);
                $(self.$field.write_at(raw, offset_of!($name, $field))?;)*
                Some(())
            }
        }
    )*};
}

wire_struct! {
    /// Precedes every request (on the ring: in the header's `in_out`).
    pub struct fuse_in_header [40] {
        pub len: u32 => "Header plus all in-args, as counted for `/dev/fuse` (on the ring too).",
        pub opcode: u32 => "`FUSE_*` opcode.",
        pub unique: u64 => "Request id; the reply's `unique` and the ring's `commit_id`.",
        pub nodeid: u64 => "The inode the request is about (the parent directory for name ops).",
        pub uid: u32 => "Caller's fsuid.",
        pub gid: u32 => "Caller's fsgid.",
        pub pid: u32 => "Caller's thread-group id (0 for requests on nobody's behalf).",
        pub total_extlen: u16 => "Extensions after the last in-arg, in 8-byte units (7.38).",
        pub padding: u16,
    }
    /// Precedes every reply (on the ring: in the header's `in_out`).
    pub struct fuse_out_header [16] {
        pub len: u32 => "Header plus reply body.",
        pub error: i32 => "0 or a negative errno.",
        pub unique: u64 => "The request's `unique`.",
    }
    /// Attributes as the kernel caches them.
    pub struct fuse_attr [88] {
        pub ino: u64 => "Inode number shown by stat (not necessarily the nodeid).",
        pub size: u64 => "Size in bytes.",
        pub blocks: u64 => "512-byte blocks.",
        pub atime: u64 => "Seconds (signed, stored as u64).",
        pub mtime: u64 => "Seconds (signed, stored as u64).",
        pub ctime: u64 => "Seconds (signed, stored as u64).",
        pub atimensec: u32 => "Nanoseconds, below 10^9.",
        pub mtimensec: u32 => "Nanoseconds, below 10^9.",
        pub ctimensec: u32 => "Nanoseconds, below 10^9.",
        pub mode: u32 => "Type and permission bits.",
        pub nlink: u32 => "Link count.",
        pub uid: u32 => "Owner.",
        pub gid: u32 => "Group.",
        pub rdev: u32 => "Device number in the kernel's `new_encode_dev` form.",
        pub blksize: u32 => "Preferred I/O size.",
        pub flags: u32 => "`FUSE_ATTR_*`.",
    }
    /// Filesystem statistics (`fuse_statfs_out.st`).
    pub struct fuse_kstatfs [80] {
        pub blocks: u64 => "Total blocks of `frsize`.",
        pub bfree: u64 => "Free blocks.",
        pub bavail: u64 => "Free blocks for unprivileged users.",
        pub files: u64 => "Total inodes.",
        pub ffree: u64 => "Free inodes.",
        pub bsize: u32 => "Block size.",
        pub namelen: u32 => "Longest name.",
        pub frsize: u32 => "Fragment size.",
        pub padding: u32,
        pub spare: [u32; 6],
    }
    /// Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK; first half of CREATE's and TMPFILE's.
    pub struct fuse_entry_out [128] {
        pub nodeid: u64 => "The node's id; 0 in a LOOKUP reply is a cacheable negative entry.",
        pub generation: u64 => "nodeid:generation must be unique for the filesystem's life.",
        pub entry_valid: u64 => "Seconds the name may be cached.",
        pub attr_valid: u64 => "Seconds the attributes may be cached.",
        pub entry_valid_nsec: u32 => "Nanoseconds of `entry_valid`.",
        pub attr_valid_nsec: u32 => "Nanoseconds of `attr_valid`.",
        pub attr: fuse_attr => "The attributes.",
    }
    /// FORGET (on `/dev/fuse` only, never on the ring).
    pub struct fuse_forget_in [8] {
        pub nlookup: u64 => "Lookups to drop.",
    }
    /// GETATTR.
    pub struct fuse_getattr_in [16] {
        pub getattr_flags: u32 => "`FUSE_GETATTR_FH`: `fh` is valid.",
        pub dummy: u32,
        pub fh: u64 => "Open file the getattr came through (fstat).",
    }
    /// Reply to GETATTR and SETATTR.
    pub struct fuse_attr_out [104] {
        pub attr_valid: u64 => "Seconds the attributes may be cached.",
        pub attr_valid_nsec: u32 => "Nanoseconds of `attr_valid`.",
        pub dummy: u32,
        pub attr: fuse_attr => "The attributes.",
    }
    /// STATX (7.39).
    pub struct fuse_statx_in [24] {
        pub getattr_flags: u32 => "`FUSE_GETATTR_FH`: `fh` is valid.",
        pub reserved: u32,
        pub fh: u64 => "Open file the statx came through.",
        pub sx_flags: u32 => "statx(2) `AT_STATX_*` sync flags.",
        pub sx_mask: u32 => "statx(2) `STATX_*` mask asked for.",
    }
    /// A statx(2) timestamp.
    pub struct fuse_sx_time [16] {
        pub tv_sec: i64 => "Seconds.",
        pub tv_nsec: u32 => "Nanoseconds.",
        pub reserved: i32,
    }
    /// Bit-for-bit the first 256 bytes of statx(2)'s `struct statx`.
    pub struct fuse_statx [256] {
        pub mask: u32 => "`STATX_*` fields that are valid.",
        pub blksize: u32 => "Preferred I/O size.",
        pub attributes: u64 => "`STATX_ATTR_*`.",
        pub nlink: u32 => "Link count.",
        pub uid: u32 => "Owner.",
        pub gid: u32 => "Group.",
        pub mode: u16 => "Type and permission bits.",
        pub spare0: [u16; 1],
        pub ino: u64 => "Inode number.",
        pub size: u64 => "Size in bytes.",
        pub blocks: u64 => "512-byte blocks.",
        pub attributes_mask: u64 => "`STATX_ATTR_*` the filesystem supports.",
        pub atime: fuse_sx_time => "Access time.",
        pub btime: fuse_sx_time => "Birth time.",
        pub ctime: fuse_sx_time => "Change time.",
        pub mtime: fuse_sx_time => "Modification time.",
        pub rdev_major: u32 => "Device number of a device file.",
        pub rdev_minor: u32 => "Device number of a device file.",
        pub dev_major: u32 => "Device of the filesystem (ignored by the kernel).",
        pub dev_minor: u32 => "Device of the filesystem (ignored by the kernel).",
        pub spare2: [u64; 14],
    }
    /// Reply to STATX.
    pub struct fuse_statx_out [288] {
        pub attr_valid: u64 => "Seconds the attributes may be cached.",
        pub attr_valid_nsec: u32 => "Nanoseconds of `attr_valid`.",
        pub flags: u32 => "No flags are defined.",
        pub spare: [u64; 2],
        pub stat: fuse_statx => "The attributes.",
    }
    /// MKNOD; the name follows in the payload.
    pub struct fuse_mknod_in [16] {
        pub mode: u32 => "Type and permission bits (unmasked under `FUSE_DONT_MASK`).",
        pub rdev: u32 => "Device number (`new_encode_dev`).",
        pub umask: u32 => "Caller's umask.",
        pub padding: u32,
    }
    /// MKDIR; the name follows in the payload.
    pub struct fuse_mkdir_in [8] {
        pub mode: u32 => "Permission bits (unmasked under `FUSE_DONT_MASK`).",
        pub umask: u32 => "Caller's umask.",
    }
    /// RENAME; old and new names follow in the payload.
    pub struct fuse_rename_in [8] {
        pub newdir: u64 => "New parent directory.",
    }
    /// RENAME2 (7.23); old and new names follow in the payload.
    pub struct fuse_rename2_in [16] {
        pub newdir: u64 => "New parent directory.",
        pub flags: u32 => "`RENAME_NOREPLACE`, `RENAME_EXCHANGE`, `RENAME_WHITEOUT`.",
        pub padding: u32,
    }
    /// LINK; the new name follows in the payload, the header's nodeid is the new parent.
    pub struct fuse_link_in [8] {
        pub oldnodeid: u64 => "The inode to link.",
    }
    /// SETATTR; `valid` says which fields mean something.
    pub struct fuse_setattr_in [88] {
        pub valid: u32 => "`FATTR_*`.",
        pub padding: u32,
        pub fh: u64 => "With `FATTR_FH`: the open file (ftruncate, futimens).",
        pub size: u64 => "With `FATTR_SIZE`.",
        pub lock_owner: u64 => "With `FATTR_LOCKOWNER`.",
        pub atime: u64 => "With `FATTR_ATIME` and not `FATTR_ATIME_NOW`: seconds (signed).",
        pub mtime: u64 => "With `FATTR_MTIME` and not `FATTR_MTIME_NOW`: seconds (signed).",
        pub ctime: u64 => "With `FATTR_CTIME`: seconds (signed).",
        pub atimensec: u32 => "Nanoseconds of `atime`.",
        pub mtimensec: u32 => "Nanoseconds of `mtime`.",
        pub ctimensec: u32 => "Nanoseconds of `ctime`.",
        pub mode: u32 => "With `FATTR_MODE`.",
        pub unused4: u32,
        pub uid: u32 => "With `FATTR_UID`.",
        pub gid: u32 => "With `FATTR_GID`.",
        pub unused5: u32,
    }
    /// OPEN and OPENDIR.
    pub struct fuse_open_in [8] {
        pub flags: u32 => "open(2) flags (without `O_CREAT|O_EXCL|O_NOCTTY`).",
        pub open_flags: u32 => "`FUSE_OPEN_KILL_SUIDGID`.",
    }
    /// CREATE and TMPFILE; the name follows in the payload.
    pub struct fuse_create_in [16] {
        pub flags: u32 => "open(2) flags.",
        pub mode: u32 => "Type and permission bits (unmasked under `FUSE_DONT_MASK`).",
        pub umask: u32 => "Caller's umask.",
        pub open_flags: u32 => "`FUSE_OPEN_KILL_SUIDGID`.",
    }
    /// Reply to OPEN and OPENDIR; second half of CREATE's and TMPFILE's.
    pub struct fuse_open_out [16] {
        pub fh: u64 => "The daemon's handle, echoed in later requests.",
        pub open_flags: u32 => "`FOPEN_*`.",
        pub backing_id: i32 => "With `FOPEN_PASSTHROUGH`: the backing file's id (7.40).",
    }
    /// RELEASE and RELEASEDIR.
    pub struct fuse_release_in [24] {
        pub fh: u64 => "The handle.",
        pub flags: u32 => "The file's open(2) flags.",
        pub release_flags: u32 => "`FUSE_RELEASE_*`.",
        pub lock_owner: u64 => "Lock owner, for `FUSE_RELEASE_FLOCK_UNLOCK`.",
    }
    /// FLUSH.
    pub struct fuse_flush_in [24] {
        pub fh: u64 => "The handle.",
        pub unused: u32,
        pub padding: u32,
        pub lock_owner: u64 => "Lock owner of the closing file table.",
    }
    /// One lock: GETLK's reply (`fuse_lk_out`, the conflicting lock and its holder).
    pub struct fuse_file_lock [24] {
        pub start: u64 => "First byte.",
        pub end: u64 => "Last byte, inclusive (`OFFSET_MAX`: to the end of the file).",
        pub r#type: u32 => "`F_RDLCK`, `F_WRLCK` or `F_UNLCK`.",
        pub pid: u32 => "The locking process; in GETLK's reply, the holder.",
    }
    /// GETLK, SETLK and SETLKW.
    pub struct fuse_lk_in [48] {
        pub fh: u64 => "The handle.",
        pub owner: u64 => "Lock owner: a process's file table (POSIX), an open file (flock).",
        pub lk: fuse_file_lock => "The lock.",
        pub lk_flags: u32 => "`FUSE_LK_FLOCK`.",
        pub padding: u32,
    }
    /// READ, READDIR and READDIRPLUS.
    pub struct fuse_read_in [40] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "File offset, or the directory cookie to continue after.",
        pub size: u32 => "Most bytes the reply may carry.",
        pub read_flags: u32 => "`FUSE_READ_LOCKOWNER`.",
        pub lock_owner: u64 => "With `FUSE_READ_LOCKOWNER`.",
        pub flags: u32 => "The file's open(2) flags.",
        pub padding: u32,
    }
    /// WRITE; `size` bytes of data follow in the payload.
    pub struct fuse_write_in [40] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "File offset.",
        pub size: u32 => "Bytes of data.",
        pub write_flags: u32 => "`FUSE_WRITE_*`.",
        pub lock_owner: u64 => "With `FUSE_WRITE_LOCKOWNER`.",
        pub flags: u32 => "The file's open(2) flags.",
        pub padding: u32,
    }
    /// Reply to WRITE and COPY_FILE_RANGE.
    pub struct fuse_write_out [8] {
        pub size: u32 => "Bytes written.",
        pub padding: u32,
    }
    /// Reply to STATFS.
    pub struct fuse_statfs_out [80] {
        pub st: fuse_kstatfs => "The statistics.",
    }
    /// FSYNC and FSYNCDIR.
    pub struct fuse_fsync_in [16] {
        pub fh: u64 => "The handle.",
        pub fsync_flags: u32 => "`FUSE_FSYNC_FDATASYNC`.",
        pub padding: u32,
    }
    /// SETXATTR once `FUSE_SETXATTR_EXT` is negotiated (7.33); without it the kernel sends
    /// only the first [`FUSE_COMPAT_SETXATTR_IN_SIZE`] bytes. Name and value follow.
    pub struct fuse_setxattr_in [16] {
        pub size: u32 => "Bytes of value.",
        pub flags: u32 => "`XATTR_CREATE`, `XATTR_REPLACE`.",
        pub setxattr_flags: u32 => "`FUSE_SETXATTR_ACL_KILL_SGID` (extended form only).",
        pub padding: u32,
    }
    /// GETXATTR (name follows) and LISTXATTR.
    pub struct fuse_getxattr_in [8] {
        pub size: u32 => "Buffer size; 0 asks for the size alone.",
        pub padding: u32,
    }
    /// Reply to a GETXATTR or LISTXATTR of size 0.
    pub struct fuse_getxattr_out [8] {
        pub size: u32 => "Bytes the value or list needs.",
        pub padding: u32,
    }
    /// ACCESS.
    pub struct fuse_access_in [8] {
        pub mask: u32 => "access(2) mask.",
        pub padding: u32,
    }
    /// INTERRUPT (on `/dev/fuse` only, never on the ring).
    pub struct fuse_interrupt_in [8] {
        pub unique: u64 => "The request to interrupt.",
    }
    /// IOCTL; `in_size` bytes of input follow in the payload.
    pub struct fuse_ioctl_in [32] {
        pub fh: u64 => "The handle.",
        pub flags: u32 => "`FUSE_IOCTL_*`.",
        pub cmd: u32 => "The ioctl number.",
        pub arg: u64 => "The caller's argument (a user pointer for most commands).",
        pub in_size: u32 => "Bytes of input.",
        pub out_size: u32 => "Most bytes of output the reply may carry.",
    }
    /// Reply to IOCTL; output data follows.
    pub struct fuse_ioctl_out [16] {
        pub result: i32 => "The ioctl's return value.",
        pub flags: u32 => "`FUSE_IOCTL_RETRY` for unrestricted ioctls.",
        pub in_iovs: u32 => "Only read with `FUSE_IOCTL_RETRY`.",
        pub out_iovs: u32 => "Only read with `FUSE_IOCTL_RETRY`.",
    }
    /// FALLOCATE.
    pub struct fuse_fallocate_in [32] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "Start.",
        pub length: u64 => "Length.",
        pub mode: u32 => "fallocate(2) mode.",
        pub padding: u32,
    }
    /// One READDIR entry's fixed part; `namelen` name bytes follow, then zeros up to 8-byte
    /// alignment ([`fuse_dirent_size`]).
    pub struct fuse_dirent [24] {
        pub ino: u64 => "Inode number shown by readdir.",
        pub off: u64 => "Cookie of the next entry.",
        pub namelen: u32 => "Name length (no NUL).",
        pub r#type: u32 => "`DT_*` type (mode >> 12).",
    }
    /// One READDIRPLUS entry's fixed part; name and padding follow as for [`fuse_dirent`]
    /// ([`fuse_direntplus_size`]). An `entry_out.nodeid` of 0 lists the name without
    /// attributes or a lookup.
    pub struct fuse_direntplus [152] {
        pub entry_out: fuse_entry_out => "Lookup reply for the entry.",
        pub dirent: fuse_dirent => "The readdir entry.",
    }
    /// LSEEK.
    pub struct fuse_lseek_in [24] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "Offset.",
        pub whence: u32 => "`SEEK_DATA` or `SEEK_HOLE` (others are handled by the kernel).",
        pub padding: u32,
    }
    /// Reply to LSEEK.
    pub struct fuse_lseek_out [8] {
        pub offset: u64 => "Resulting offset.",
    }
    /// COPY_FILE_RANGE and COPY_FILE_RANGE_64; the header's nodeid is the source.
    pub struct fuse_copy_file_range_in [56] {
        pub fh_in: u64 => "Source handle.",
        pub off_in: u64 => "Source offset.",
        pub nodeid_out: u64 => "Destination node.",
        pub fh_out: u64 => "Destination handle.",
        pub off_out: u64 => "Destination offset.",
        pub len: u64 => "Bytes to copy.",
        pub flags: u64 => "copy_file_range(2) flags.",
    }
    /// Reply to COPY_FILE_RANGE_64 (7.45); COPY_FILE_RANGE replies [`fuse_write_out`].
    pub struct fuse_copy_file_range_out [8] {
        pub bytes_copied: u64 => "Bytes copied.",
    }
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
    /// [`fuse_in_header`] on fetch, [`fuse_out_header`] on commit.
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
const _: () = assert!(offset_of!(fuse_in_header, total_extlen) == 36);
const _: () = assert!(offset_of!(fuse_entry_out, attr) == 40);
const _: () = assert!(offset_of!(fuse_attr_out, attr) == 16);
const _: () = assert!(offset_of!(fuse_attr, mode) == 60 && offset_of!(fuse_attr, flags) == 84);
const _: () = assert!(offset_of!(fuse_setattr_in, atimensec) == 56);
const _: () = assert!(offset_of!(fuse_setattr_in, uid) == 76);
const _: () = assert!(offset_of!(fuse_read_in, lock_owner) == 24);
const _: () =
    assert!(offset_of!(fuse_statx, atime) == 64 && offset_of!(fuse_statx, rdev_major) == 128);
const _: () = assert!(offset_of!(fuse_statx_out, stat) == 32);
const _: () = assert!(offset_of!(fuse_uring_cmd_req, qid) == 16);

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
/// Size of SETXATTR's first in-arg when `FUSE_SETXATTR_EXT` was not negotiated.
pub const FUSE_COMPAT_SETXATTR_IN_SIZE: usize = 8;
/// Offset of the name in a [`fuse_dirent`] record.
pub const FUSE_NAME_OFFSET: usize = size_of::<fuse_dirent>();
/// Offset of the name in a [`fuse_direntplus`] record.
pub const FUSE_NAME_OFFSET_DIRENTPLUS: usize = size_of::<fuse_direntplus>();

/// `FUSE_REC_ALIGN`/`FUSE_DIRENT_ALIGN`: directory records are padded to 8 bytes.
pub const fn fuse_dirent_align(len: usize) -> usize {
    (len + 7) & !7
}

/// `FUSE_DIRENT_SIZE`: bytes of a [`fuse_dirent`] record with a name of `namelen` bytes.
pub const fn fuse_dirent_size(namelen: usize) -> usize {
    fuse_dirent_align(FUSE_NAME_OFFSET + namelen)
}

/// `FUSE_DIRENTPLUS_SIZE`: bytes of a [`fuse_direntplus`] record with a name of `namelen` bytes.
pub const fn fuse_direntplus_size(namelen: usize) -> usize {
    fuse_dirent_align(FUSE_NAME_OFFSET_DIRENTPLUS + namelen)
}

// INIT flags this transport cares about (the INIT exchange itself is fuser's).
/// INIT: the extended 16-byte [`fuse_setxattr_in`] (bit 29 of `flags`).
pub const FUSE_SETXATTR_EXT: u64 = 1 << 29;
/// INIT: requests travel over io_uring (bit 9 of `flags2`).
pub const FUSE_OVER_IO_URING: u64 = 1 << 41;

/// Declares flag constants, one line each, documented with the field they belong to.
macro_rules! flags {
    ($($field:literal { $($name:ident = $value:expr => $doc:literal;)* })*) => {
        $($(#[doc = concat!("`", $field, "`: ", $doc)] pub const $name: u32 = $value;)*)*
    };
}

flags! {
    "fuse_setattr_in.valid" {
        FATTR_MODE = 1 << 0 => "mode.";
        FATTR_UID = 1 << 1 => "uid.";
        FATTR_GID = 1 << 2 => "gid.";
        FATTR_SIZE = 1 << 3 => "size.";
        FATTR_ATIME = 1 << 4 => "atime.";
        FATTR_MTIME = 1 << 5 => "mtime.";
        FATTR_FH = 1 << 6 => "fh.";
        FATTR_ATIME_NOW = 1 << 7 => "atime is \"now\" (comes with `FATTR_ATIME`).";
        FATTR_MTIME_NOW = 1 << 8 => "mtime is \"now\" (comes with `FATTR_MTIME`).";
        FATTR_LOCKOWNER = 1 << 9 => "lock_owner.";
        FATTR_CTIME = 1 << 10 => "ctime.";
        FATTR_KILL_SUIDGID = 1 << 11 => "clear setuid/setgid as a write would (KILLPRIV_V2).";
    }
    "fuse_open_out.open_flags" {
        FOPEN_DIRECT_IO = 1 << 0 => "bypass the page cache.";
        FOPEN_KEEP_CACHE = 1 << 1 => "keep the page cache.";
        FOPEN_NONSEEKABLE = 1 << 2 => "not seekable.";
        FOPEN_CACHE_DIR = 1 << 3 => "cache directory contents.";
        FOPEN_STREAM = 1 << 4 => "stream-like, no file position.";
        FOPEN_NOFLUSH = 1 << 5 => "no FLUSH on close.";
        FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6 => "parallel direct writes.";
        FOPEN_PASSTHROUGH = 1 << 7 => "I/O through `backing_id`.";
    }
    "fuse_open_in.open_flags" {
        FUSE_OPEN_KILL_SUIDGID = 1 << 0 => "kill suid/sgid (an O_TRUNC open; also CREATE).";
    }
    "fuse_getattr_in.getattr_flags" {
        FUSE_GETATTR_FH = 1 << 0 => "`fh` is valid (also STATX).";
    }
    "fuse_release_in.release_flags" {
        FUSE_RELEASE_FLUSH = 1 << 0 => "flush too.";
        FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1 => "drop flock locks of `lock_owner`.";
    }
    "fuse_write_in.write_flags" {
        FUSE_WRITE_CACHE = 1 << 0 => "writeback from the page cache; `fh` is a guess.";
        FUSE_WRITE_LOCKOWNER = 1 << 1 => "`lock_owner` is valid.";
        FUSE_WRITE_KILL_SUIDGID = 1 << 2 => "clear setuid/setgid (KILLPRIV_V2).";
    }
    "fuse_lk_in.lk_flags" {
        FUSE_LK_FLOCK = 1 << 0 => "a flock(2) lock, not a POSIX one.";
    }
    "fuse_read_in.read_flags" {
        FUSE_READ_LOCKOWNER = 1 << 1 => "`lock_owner` is valid.";
    }
    "fuse_fsync_in.fsync_flags" {
        FUSE_FSYNC_FDATASYNC = 1 << 0 => "data only.";
    }
    "fuse_setxattr_in.setxattr_flags" {
        FUSE_SETXATTR_ACL_KILL_SGID = 1 << 0 => "clear setgid when setting an access ACL.";
    }
    "fuse_attr.flags" {
        FUSE_ATTR_SUBMOUNT = 1 << 0 => "the inode is a submount's root.";
        FUSE_ATTR_DAX = 1 << 1 => "DAX for this inode.";
    }
    "fuse_ioctl_in.flags" {
        FUSE_IOCTL_COMPAT = 1 << 0 => "32-bit compat ioctl.";
        FUSE_IOCTL_UNRESTRICTED = 1 << 1 => "unrestricted (CUSE) ioctl.";
        FUSE_IOCTL_RETRY = 1 << 2 => "retry with iovecs (in `fuse_ioctl_out.flags`).";
        FUSE_IOCTL_32BIT = 1 << 3 => "32-bit ioctl.";
        FUSE_IOCTL_DIR = 1 << 4 => "on a directory.";
        FUSE_IOCTL_COMPAT_X32 = 1 << 5 => "x32 compat ioctl.";
    }
}

macro_rules! opcodes {
    ($($name:ident = $value:literal, $doc:literal;)*) => {
        $(#[doc = $doc] pub const $name: u32 = $value;)*
        /// The opcode's name, for logs; `None` for an opcode this header does not know.
        pub fn opcode_name(opcode: u32) -> Option<&'static str> {
            match opcode {
                $($value => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

opcodes! {
    FUSE_LOOKUP = 1, "Look up a name; first in-arg has size 0 since 6.14.";
    FUSE_FORGET = 2, "Drop lookups; no reply; `/dev/fuse` only.";
    FUSE_GETATTR = 3, "Get attributes.";
    FUSE_SETATTR = 4, "Set attributes.";
    FUSE_READLINK = 5, "Read a symlink; no in-args.";
    FUSE_SYMLINK = 6, "Make a symlink; first in-arg has size 0 since 6.14.";
    FUSE_MKNOD = 8, "Make a node.";
    FUSE_MKDIR = 9, "Make a directory.";
    FUSE_UNLINK = 10, "Remove a name; first in-arg has size 0 since 6.14.";
    FUSE_RMDIR = 11, "Remove a directory; first in-arg has size 0 since 6.14.";
    FUSE_RENAME = 12, "Rename.";
    FUSE_LINK = 13, "Make a hard link.";
    FUSE_OPEN = 14, "Open a file.";
    FUSE_READ = 15, "Read.";
    FUSE_WRITE = 16, "Write.";
    FUSE_STATFS = 17, "Filesystem statistics; no in-args.";
    FUSE_RELEASE = 18, "Close a file.";
    FUSE_FSYNC = 20, "Sync a file.";
    FUSE_SETXATTR = 21, "Set an xattr.";
    FUSE_GETXATTR = 22, "Get an xattr.";
    FUSE_LISTXATTR = 23, "List xattrs.";
    FUSE_REMOVEXATTR = 24, "Remove an xattr; first in-arg has size 0 since 6.14.";
    FUSE_FLUSH = 25, "A close(2) of a file descriptor.";
    FUSE_INIT = 26, "Protocol negotiation; `/dev/fuse` only.";
    FUSE_OPENDIR = 27, "Open a directory.";
    FUSE_READDIR = 28, "Read a directory.";
    FUSE_RELEASEDIR = 29, "Close a directory.";
    FUSE_FSYNCDIR = 30, "Sync a directory.";
    FUSE_GETLK = 31, "Test a POSIX lock.";
    FUSE_SETLK = 32, "Set a POSIX lock.";
    FUSE_SETLKW = 33, "Set a POSIX lock, waiting.";
    FUSE_ACCESS = 34, "access(2).";
    FUSE_CREATE = 35, "Create and open a file.";
    FUSE_INTERRUPT = 36, "Interrupt a request; `/dev/fuse` only.";
    FUSE_BMAP = 37, "Block map (fuseblk only).";
    FUSE_DESTROY = 38, "Unmount (fuseblk and virtiofs only); no in-args.";
    FUSE_IOCTL = 39, "ioctl(2).";
    FUSE_POLL = 40, "poll(2).";
    FUSE_NOTIFY_REPLY = 41, "Data for a retrieve notification.";
    FUSE_BATCH_FORGET = 42, "Drop lookups of many nodes; no reply; `/dev/fuse` only.";
    FUSE_FALLOCATE = 43, "fallocate(2).";
    FUSE_READDIRPLUS = 44, "Read a directory with lookups.";
    FUSE_RENAME2 = 45, "Rename with flags.";
    FUSE_LSEEK = 46, "SEEK_DATA/SEEK_HOLE.";
    FUSE_COPY_FILE_RANGE = 47, "copy_file_range(2), 32-bit result.";
    FUSE_SETUPMAPPING = 48, "DAX mapping (virtiofs).";
    FUSE_REMOVEMAPPING = 49, "DAX unmapping (virtiofs).";
    FUSE_SYNCFS = 50, "syncfs(2) (virtiofs and submounts).";
    FUSE_TMPFILE = 51, "O_TMPFILE (7.37).";
    FUSE_STATX = 52, "statx(2) (7.39).";
    FUSE_COPY_FILE_RANGE_64 = 53, "copy_file_range(2), 64-bit result (7.45, tried first in 6.18).";
    CUSE_INIT = 4096, "CUSE negotiation.";
}

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

    #[test]
    fn wire_round_trip_keeps_field_order() {
        let rd = fuse_read_in {
            fh: 0x0102_0304_0506_0708,
            offset: 9,
            size: 10,
            read_flags: FUSE_READ_LOCKOWNER,
            lock_owner: 11,
            flags: 12,
            padding: 0,
        };
        let mut buf = [0xffu8; 41];
        rd.write_at(&mut buf, 1).expect("fits");
        assert_eq!(buf[0], 0xff, "bytes before the struct are untouched");
        assert_eq!(&buf[1..9], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&buf[17..21], &10u32.to_ne_bytes());
        assert_eq!(&buf[25..33], &11u64.to_ne_bytes());
        assert_eq!(fuse_read_in::read_at(&buf, 1), Some(rd));
        assert_eq!(fuse_read_in::read_at(&buf, 2), None, "one byte short");
        assert_eq!(rd.write_at(&mut buf, 2), None);
    }

    #[test]
    fn opcode_names() {
        assert_eq!(opcode_name(FUSE_TMPFILE), Some("FUSE_TMPFILE"));
        assert_eq!(
            opcode_name(FUSE_COPY_FILE_RANGE_64),
            Some("FUSE_COPY_FILE_RANGE_64")
        );
        assert_eq!(opcode_name(7), None);
    }
}
