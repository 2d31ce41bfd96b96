//! What the kernel sends: the request header and each opcode's first in-arg.

use std::mem::{offset_of, size_of};

use super::Wire;

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
    /// STATX (7.39).
    pub struct fuse_statx_in [24] {
        pub getattr_flags: u32 => "`FUSE_GETATTR_FH`: `fh` is valid.",
        pub reserved: u32,
        pub fh: u64 => "Open file the statx came through.",
        pub sx_flags: u32 => "statx(2) `AT_STATX_*` sync flags.",
        pub sx_mask: u32 => "statx(2) `STATX_*` mask asked for.",
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
    /// FALLOCATE.
    pub struct fuse_fallocate_in [32] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "Start.",
        pub length: u64 => "Length.",
        pub mode: u32 => "fallocate(2) mode.",
        pub padding: u32,
    }
    /// LSEEK.
    pub struct fuse_lseek_in [24] {
        pub fh: u64 => "The handle.",
        pub offset: u64 => "Offset.",
        pub whence: u32 => "`SEEK_DATA` or `SEEK_HOLE` (others are handled by the kernel).",
        pub padding: u32,
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
}

/// Size of SETXATTR's first in-arg when `FUSE_SETXATTR_EXT` was not negotiated.
pub const FUSE_COMPAT_SETXATTR_IN_SIZE: usize = 8;

// Offsets checked by hand against the 6.18 header, beyond what the size asserts imply.
const _: () = assert!(offset_of!(fuse_in_header, total_extlen) == 36);
const _: () = assert!(offset_of!(fuse_setattr_in, atimensec) == 56);
const _: () = assert!(offset_of!(fuse_setattr_in, uid) == 76);
const _: () = assert!(offset_of!(fuse_read_in, lock_owner) == 24);
