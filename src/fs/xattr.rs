//! Extended attributes: set, get, list, remove. On a kernel without the `*xattrat` calls
//! (before 6.13) each uses the path call relative to the thread's cwd instead (`sys::*_cwd`);
//! both act on the inode the fd pins, a symlink's own xattrs included.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use crate::sys::{self};

use super::{Ctx, UringFs};

impl UringFs {
    pub(crate) fn do_setxattr(
        &self,
        req: &Ctx,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        let inode = self.inode(ino)?;
        let name = sys::cstring(name)?;
        self.settle_releases();
        let _caller = self.as_caller(req)?;
        let setxattr = if self.kernel.xattrat {
            sys::setxattrat
        } else {
            sys::setxattr_cwd
        };
        setxattr(
            self.proc_fd.as_fd(),
            &sys::fd_name(inode.fd()),
            &name,
            value,
            flags,
        )
    }

    pub(crate) fn do_getxattr(
        &self,
        req: &Ctx,
        ino: u64,
        name: &OsStr,
        size: u32,
    ) -> io::Result<XattrReply> {
        let inode = self.inode(ino)?;
        let name = sys::cstring(name)?;
        let path = sys::fd_name(inode.fd());
        // With default_permissions the kernel has made every check a read of this attribute
        // needs, as the caller (xattr_permission: read permission for user.*, CAP_SYS_ADMIN
        // for trusted.*), and the backing fs makes none of its own on a get. Half of these
        // are the kernel's own reads (security.capability before each write, ACLs for a
        // permission check, security.selinux for ls), which natively check nothing either;
        // as the daemon they cost no read of the caller's /proc status.
        let _caller = if self.opts.default_permissions {
            None
        } else {
            Some(self.as_caller(req)?)
        };
        let mut buf = vec![0u8; size as usize];
        let getxattr = if self.kernel.xattrat {
            sys::getxattrat
        } else {
            sys::getxattr_cwd
        };
        let len = getxattr(self.proc_fd.as_fd(), &path, &name, &mut buf)?;
        Ok(xattr_reply(buf, len, size))
    }

    pub(crate) fn do_listxattr(&self, req: &Ctx, ino: u64, size: u32) -> io::Result<XattrReply> {
        let inode = self.inode(ino)?;
        let path = sys::fd_name(inode.fd());
        let _caller = self.as_caller(req)?;
        let mut buf = vec![0u8; size as usize];
        let listxattr = if self.kernel.xattrat {
            sys::listxattrat
        } else {
            sys::listxattr_cwd
        };
        let len = listxattr(self.proc_fd.as_fd(), &path, &mut buf)?;
        Ok(xattr_reply(buf, len, size))
    }

    pub(crate) fn do_removexattr(&self, req: &Ctx, ino: u64, name: &OsStr) -> io::Result<()> {
        let inode = self.inode(ino)?;
        // The kernel removes file capabilities itself when a write, truncate or chown kills
        // privileges (security_inode_killpriv), by a REMOVEXATTR in the writer's name; natively
        // that removal is internal and checks nothing. An explicit removal has already passed
        // the VFS's own check of the caller (CAP_SETFCAP, cap_inode_removexattr) by the time
        // it gets here. So this one name is removed as the daemon, whoever asks.
        let _caller = if name.as_bytes() == b"security.capability" {
            None
        } else {
            Some(self.as_caller(req)?)
        };
        let name = sys::cstring(name)?;
        let removexattr = if self.kernel.xattrat {
            sys::removexattrat
        } else {
            sys::removexattr_cwd
        };
        removexattr(self.proc_fd.as_fd(), &sys::fd_name(inode.fd()), &name)
    }
}

/// What a getxattr/listxattr reply is: a size (the probe) or the data.
pub(crate) enum XattrReply {
    /// The size a probe (size 0) asked for.
    Size(u32),
    /// The value or list.
    Data(Vec<u8>),
}

fn xattr_reply(mut buf: Vec<u8>, len: usize, size: u32) -> XattrReply {
    if size == 0 {
        XattrReply::Size(u32::try_from(len).unwrap_or(u32::MAX))
    } else {
        buf.truncate(len);
        XattrReply::Data(buf)
    }
}
