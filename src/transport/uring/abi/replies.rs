//! What the daemon answers: the reply header, each opcode's reply struct, and the directory
//! records of READDIR and READDIRPLUS with their sizes.

use std::mem::{offset_of, size_of};

use super::Wire;

wire_struct! {
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
    /// Reply to GETATTR and SETATTR.
    pub struct fuse_attr_out [104] {
        pub attr_valid: u64 => "Seconds the attributes may be cached.",
        pub attr_valid_nsec: u32 => "Nanoseconds of `attr_valid`.",
        pub dummy: u32,
        pub attr: fuse_attr => "The attributes.",
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
    /// Reply to OPEN and OPENDIR; second half of CREATE's and TMPFILE's.
    pub struct fuse_open_out [16] {
        pub fh: u64 => "The daemon's handle, echoed in later requests.",
        pub open_flags: u32 => "`FOPEN_*`.",
        pub backing_id: i32 => "With `FOPEN_PASSTHROUGH`: the backing file's id (7.40).",
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
    /// Reply to a GETXATTR or LISTXATTR of size 0.
    pub struct fuse_getxattr_out [8] {
        pub size: u32 => "Bytes the value or list needs.",
        pub padding: u32,
    }
    /// Reply to IOCTL; output data follows.
    pub struct fuse_ioctl_out [16] {
        pub result: i32 => "The ioctl's return value.",
        pub flags: u32 => "`FUSE_IOCTL_RETRY` for unrestricted ioctls.",
        pub in_iovs: u32 => "Only read with `FUSE_IOCTL_RETRY`.",
        pub out_iovs: u32 => "Only read with `FUSE_IOCTL_RETRY`.",
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
    /// Reply to LSEEK.
    pub struct fuse_lseek_out [8] {
        pub offset: u64 => "Resulting offset.",
    }
    /// Reply to COPY_FILE_RANGE_64 (7.45); COPY_FILE_RANGE replies [`fuse_write_out`].
    pub struct fuse_copy_file_range_out [8] {
        pub bytes_copied: u64 => "Bytes copied.",
    }
}

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

// Offsets checked by hand against the 6.18 header, beyond what the size asserts imply.
const _: () = assert!(offset_of!(fuse_entry_out, attr) == 40);
const _: () = assert!(offset_of!(fuse_attr_out, attr) == 16);
const _: () = assert!(offset_of!(fuse_attr, mode) == 60 && offset_of!(fuse_attr, flags) == 84);
const _: () =
    assert!(offset_of!(fuse_statx, atime) == 64 && offset_of!(fuse_statx, rdev_major) == 128);
const _: () = assert!(offset_of!(fuse_statx_out, stat) == 32);
