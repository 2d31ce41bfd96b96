//! Flag bits, by the field that carries them, and the INIT flags this transport reads.

// INIT flags this transport cares about (the INIT exchange itself is fuser's).
/// INIT: the extended 16-byte [`fuse_setxattr_in`](super::fuse_setxattr_in) (bit 29 of
/// `flags`).
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
