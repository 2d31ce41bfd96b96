//! The `FUSE_*` opcodes and their names for logs.

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
    fn opcode_names() {
        assert_eq!(opcode_name(FUSE_TMPFILE), Some("FUSE_TMPFILE"));
        assert_eq!(
            opcode_name(FUSE_COPY_FILE_RANGE_64),
            Some("FUSE_COPY_FILE_RANGE_64")
        );
        assert_eq!(opcode_name(7), None);
    }
}
