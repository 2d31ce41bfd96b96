//! The fuser `Filesystem` impl: one thin handler per request, `do_*` then one reply.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::{Instant, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, FileHandle, Filesystem, Generation, INodeNo,
    IoctlFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::attr::{self};
use crate::buffer::AlignedBuf;
use crate::stats::Op;
use crate::sys::{self};

use super::fuser_replies::{reply_created, reply_opened, reply_statfs};
use super::locks::{LockRequest, LockStep};
use super::passthrough::BackingFile;
use super::xattr::XattrReply;
use super::{Ctx, DevFuse, Ttl, negative_entry_attr};
use crate::locks::{LockKind, LockRange};

thread_local! {
    /// Each worker's read buffer, reused: a fresh zeroed one per READ cost a memset of the
    /// whole request. Only the bytes a read filled are ever sent.
    static READ_BUFFER: std::cell::RefCell<AlignedBuf> =
        std::cell::RefCell::new(AlignedBuf::zeroed(0));
}

impl Filesystem for DevFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        self.negotiate_init(config);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let t = Instant::now();
        let res = self.do_lookup(&Ctx::from(req), parent.0, name);
        if let (Some(ttl), Err(err)) = (self.negative_ttl(), &res)
            && err.raw_os_error() == Some(libc::ENOENT)
        {
            // Nodeid 0: the kernel caches the name as missing for `ttl`.
            self.stats.record(Op::Lookup, t, false);
            return reply.entry(&ttl, &negative_entry_attr(), Generation(0));
        }
        self.reply_entry(Op::Lookup, parent.0, t, res, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let t = Instant::now();
        self.forget_lookups(ino.0, nlookup);
        self.stats.record(Op::Forget, t, false);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let t = Instant::now();
        match self.finish(Op::GetAttr, ino.0, t, self.do_getattr(ino.0)) {
            Ok(attr) => reply.attr(&self.ttl_of(&attr, Ttl::Attr), &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let t = Instant::now();
        let res = self.do_setattr(
            &Ctx::from(req),
            ino.0,
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh,
        );
        match self.finish(Op::SetAttr, ino.0, t, res) {
            Ok(attr) => reply.attr(&self.ttl_of(&attr, Ttl::Attr), &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let t = Instant::now();
        match self.finish(Op::ReadLink, ino.0, t, self.do_readlink(ino.0)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let (major, minor) = attr::decode_dev(rdev);
        let res = self.make_entry(&Ctx::from(req), parent.0, name, umask, |dir, name| {
            sys::mknodat(dir, name, mode, sys::makedev(major, minor))
        });
        self.reply_entry(Op::MkNod, parent.0, t, res, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = self.make_entry(&Ctx::from(req), parent.0, name, umask, |dir, name| {
            sys::mkdirat(dir, name, mode)
        });
        self.reply_entry(Op::MkDir, parent.0, t, res, reply);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        match self.finish(
            Op::Unlink,
            parent.0,
            t,
            self.do_remove(&Ctx::from(req), parent.0, name, 0),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        let res = self.do_remove(&Ctx::from(req), parent.0, name, libc::AT_REMOVEDIR);
        self.reply_empty(Op::RmDir, parent.0, t, res, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = sys::cstring(target.as_os_str()).and_then(|target| {
            // Symlinks are always 0777: no umask applies.
            self.make_entry(&Ctx::from(req), parent.0, link_name, 0, |dir, name| {
                sys::symlinkat(&target, dir, name)
            })
        });
        self.reply_entry(Op::Symlink, parent.0, t, res, reply);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_rename(&Ctx::from(req), parent.0, name, newparent.0, newname, flags);
        self.reply_empty(Op::Rename, parent.0, t, res, reply);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let t = Instant::now();
        let res = self.do_link(&Ctx::from(req), ino.0, newparent.0, newname);
        self.reply_entry(Op::Link, ino.0, t, res, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let t = Instant::now();
        let res = self.open_file(&Ctx::from(req), ino.0, flags.0, |fd| {
            reply.open_backing(fd).map(BackingFile::Fuser)
        });
        match self.finish(Op::Open, ino.0, t, res) {
            Ok(opened) => reply_opened(reply, opened),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let t = Instant::now();
        READ_BUFFER.with_borrow_mut(|buf| {
            buf.resize(size as usize);
            let res = self.do_read(&Ctx::from(req), ino.0, fh, offset, buf.as_mut_slice());
            match self.finish(Op::Read, ino.0, t, res) {
                Ok(len) => reply.data(buf.as_slice().get(..len).unwrap_or_default()),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let t = Instant::now();
        match self.finish(
            Op::Write,
            ino.0,
            t,
            self.do_write(&Ctx::from(req), ino.0, fh, offset, data, write_flags),
        ) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_flush(&Ctx::from(req), ino.0, fh, lock_owner.0);
        self.reply_empty(Op::Flush, ino.0, t, res, reply);
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        let t = Instant::now();
        let range = LockRange {
            kind: typ,
            start,
            end,
        };
        let res = self.do_getlk(ino.0, fh, lock_owner.0, range);
        match self.finish(Op::GetLk, ino.0, t, res) {
            Ok((held, pid)) => reply.locked(held.start, held.end, held.kind, pid),
            Err(e) => reply.error(e),
        }
    }

    /// Only POSIX locks arrive here: fuser does not pass on `FUSE_LK_FLOCK`, so `flock`
    /// locks are forwarded over the io_uring transport only (see `init`).
    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let request = LockRequest {
            ino: ino.0,
            fh,
            owner: lock_owner.0,
            kind: LockKind::Posix,
            range: LockRange {
                kind: typ,
                start,
                end,
            },
            pid,
        };
        match self.do_setlk(request, sleep, req.pid()) {
            LockStep::Done(res) => self.reply_empty(Op::SetLk, ino.0, t, res, reply),
            LockStep::Wait(wait) => self.wait_for_lock(wait, t, reply),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        flock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.release_file(ino.0, fh, flock_owner.map(|o| o.0));
        self.reply_empty(Op::Release, ino.0, t, res, reply);
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_fsync(&Ctx::from(req), ino.0, fh, datasync);
        self.reply_empty(Op::Fsync, ino.0, t, res, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let t = Instant::now();
        match self.finish(
            Op::OpenDir,
            ino.0,
            t,
            self.do_opendir(&Ctx::from(req), ino.0),
        ) {
            Ok(fh) => reply.opened(FileHandle(fh), self.dir_open_flags()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let t = Instant::now();
        let res = self.do_readdir(ino.0, fh, offset, &mut reply);
        match self.finish(Op::ReadDir, ino.0, t, res) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let t = Instant::now();
        let res = self.do_readdirplus(&Ctx::from(req), ino.0, fh, offset, &mut reply);
        match self.finish(Op::ReadDirPlus, ino.0, t, res) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.release_dir(ino.0, fh);
        self.reply_empty(Op::ReleaseDir, ino.0, t, res, reply);
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_fsyncdir(ino.0, fh, datasync);
        self.reply_empty(Op::FsyncDir, ino.0, t, res, reply);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let t = Instant::now();
        match self.finish(Op::StatFs, ino.0, t, self.do_statfs(ino.0)) {
            Ok(st) => reply_statfs(reply, &st),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_setxattr(&Ctx::from(req), ino.0, name, value, flags);
        self.reply_empty(Op::SetXattr, ino.0, t, res, reply);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let t = Instant::now();
        let res = self.do_getxattr(&Ctx::from(req), ino.0, name, size);
        match self.finish(Op::GetXattr, ino.0, t, res) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(data)) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let t = Instant::now();
        match self.finish(
            Op::ListXattr,
            ino.0,
            t,
            self.do_listxattr(&Ctx::from(req), ino.0, size),
        ) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(data)) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let t = Instant::now();
        match self.finish(
            Op::RemoveXattr,
            ino.0,
            t,
            self.do_removexattr(&Ctx::from(req), ino.0, name),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let t = Instant::now();
        let res = self.do_access(&Ctx::from(req), ino.0, mask.bits());
        self.reply_empty(Op::Access, ino.0, t, res, reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let t = Instant::now();
        let ctx = Ctx::from(req);
        let res = self.create_file(&ctx, parent.0, name, mode, umask, flags, |fd| {
            reply.open_backing(fd).map(BackingFile::Fuser)
        });
        match self.finish(Op::Create, parent.0, t, res) {
            Ok((entry, opened)) => {
                let ttl = self.ttl_of(&entry.attr, Ttl::Entry);
                reply_created(reply, &entry, ttl, &opened);
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let t = Instant::now();
        let res = self.do_fallocate(&Ctx::from(req), ino.0, fh, offset, length, mode);
        self.reply_empty(Op::Fallocate, ino.0, t, res, reply);
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let t = Instant::now();
        let res = self.do_lseek(ino.0, fh, offset, whence);
        match self.finish(Op::Lseek, ino.0, t, res) {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(e),
        }
    }

    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let t = Instant::now();
        let res = self.do_copy_file_range(
            &Ctx::from(req),
            ino_in.0,
            fh_in,
            offset_in,
            ino_out.0,
            fh_out,
            offset_out,
            len,
            flags.bits() as u32,
        );
        match self.finish(Op::CopyFileRange, ino_in.0, t, res) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        let t = Instant::now();
        let res = self.do_ioctl(&Ctx::from(req), ino.0, fh, flags, cmd, in_data);
        match self.finish(Op::Ioctl, ino.0, t, res) {
            Ok(data) => reply.ioctl(0, data.get(..out_size as usize).unwrap_or(&data)),
            Err(e) => reply.error(e),
        }
    }
}
