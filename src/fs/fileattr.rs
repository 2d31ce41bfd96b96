//! File attributes (`chattr`/`lsattr`): the kernel forwards `FS_IOC_GETFLAGS`/`SETFLAGS` and
//! `FS_IOC_FSGETXATTR`/`FSSETXATTR` as FUSE ioctls on a file or directory it opened for the
//! purpose; each is made on the backing fd as the caller, so setting append-only or immutable
//! needs CAP_LINUX_IMMUTABLE as natively, and the backing fs then enforces the flags.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use fuser::{FileHandle, IoctlFlags};

use crate::error::{einval, os};
use crate::sys::{self, FSXATTR_SIZE};

use super::{Ctx, UringFs};

/// `FS_IOC_GETFLAGS` as the FUSE request names it (the low 32 bits of the ioctl number).
const GETFLAGS: u32 = 0x8008_6601;
/// `FS_IOC_SETFLAGS`.
const SETFLAGS: u32 = 0x4008_6602;
/// `FS_IOC_FSGETXATTR`.
const FSGETXATTR: u32 = 0x801c_581f;
/// `FS_IOC_FSSETXATTR`.
const FSSETXATTR: u32 = 0x401c_5820;

impl UringFs {
    /// Answers the ioctl `cmd` on the open file or directory `fh` of `ino`: the reply's data.
    /// Any other ioctl is `ENOTTY`, as ext4 answers one it does not know.
    pub(crate) fn do_ioctl(
        &self,
        req: &Ctx,
        ino: u64,
        fh: FileHandle,
        flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
    ) -> io::Result<Vec<u8>> {
        let dir;
        let file;
        let fd: BorrowedFd<'_> = if flags.contains(IoctlFlags::FUSE_IOCTL_DIR) {
            dir = self.dir(ino, fh)?;
            dir.fd.as_fd()
        } else {
            file = self.file(ino, fh)?;
            file.fd.as_fd()
        };
        let _caller = self.as_caller(req)?;
        match cmd {
            GETFLAGS => Ok(sys::get_inode_flags(fd)?.to_ne_bytes().to_vec()),
            SETFLAGS => {
                let bytes = in_data.get(..4).ok_or_else(einval)?;
                let flags = u32::from_ne_bytes(bytes.try_into().map_err(|_| einval())?);
                sys::set_inode_flags(fd, flags)?;
                Ok(Vec::new())
            }
            FSGETXATTR => Ok(sys::fsgetxattr(fd)?.to_vec()),
            FSSETXATTR => {
                let attr: [u8; FSXATTR_SIZE] = in_data
                    .get(..FSXATTR_SIZE)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(einval)?;
                sys::fssetxattr(fd, &attr)?;
                Ok(Vec::new())
            }
            _ => Err(os(libc::ENOTTY)),
        }
    }
}
