//! Conversion of the backing `statx` into what fuser sends the kernel.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

/// The statx fields every reply needs.
pub const STATX_MASK: u32 = libc::STATX_BASIC_STATS;

/// The file type bits of a mode.
pub fn file_type(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// The file type of a `d_type` from `getdents64`.
pub fn dirent_type(d_type: u8) -> FileType {
    file_type(u32::from(d_type) << 12)
}

fn system_time(ts: &libc::statx_timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(ts.tv_nsec.min(999_999_999)));
    if ts.tv_sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(ts.tv_sec as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(ts.tv_sec.unsigned_abs()) + nanos
    }
}

/// The kernel's `new_encode_dev`: FUSE carries device numbers as 32 bits in this form.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The kernel's `new_decode_dev`: (major, minor) of a FUSE `rdev`.
pub fn decode_dev(rdev: u32) -> (u32, u32) {
    (
        (rdev & 0xfff00) >> 8,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    )
}

/// `stx` as fuser's attributes, reported under inode number `ino` (the nodeid, which is
/// the backing `st_ino` unless the inode table had to remap it).
pub fn to_file_attr(ino: u64, stx: &libc::statx) -> FileAttr {
    let mode = u32::from(stx.stx_mode);
    FileAttr {
        ino: INodeNo(ino),
        size: stx.stx_size,
        blocks: stx.stx_blocks,
        atime: system_time(&stx.stx_atime),
        mtime: system_time(&stx.stx_mtime),
        ctime: system_time(&stx.stx_ctime),
        crtime: system_time(&stx.stx_btime),
        kind: file_type(mode),
        perm: (mode & 0o7777) as u16,
        nlink: stx.stx_nlink,
        uid: stx.stx_uid,
        gid: stx.stx_gid,
        rdev: encode_dev(stx.stx_rdev_major, stx.stx_rdev_minor),
        blksize: stx.stx_blksize,
        flags: 0,
    }
}

/// The backing device of `stx` as one number, the key half next to `stx_ino`.
pub fn device(stx: &libc::statx) -> u64 {
    libc::makedev(stx.stx_dev_major, stx.stx_dev_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        for (major, minor) in [(0, 0), (1, 3), (8, 17), (259, 65_536), (4095, 1_048_575)] {
            assert_eq!(decode_dev(encode_dev(major, minor)), (major, minor));
        }
    }

    #[test]
    fn negative_times_are_before_the_epoch() {
        let mut ts = crate::sys::statx_zeroed().stx_atime;
        ts.tv_sec = -2;
        ts.tv_nsec = 500_000_000;
        assert_eq!(
            UNIX_EPOCH.duration_since(system_time(&ts)).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn modes_map_to_types() {
        assert_eq!(file_type(libc::S_IFDIR | 0o755), FileType::Directory);
        assert_eq!(file_type(libc::S_IFLNK | 0o777), FileType::Symlink);
        assert_eq!(dirent_type(libc::DT_FIFO), FileType::NamedPipe);
        assert_eq!(dirent_type(libc::DT_REG), FileType::RegularFile);
    }
}
