//! Serving one ring entry: decode the request the kernel wrote into it, run it on the core,
//! and encode the reply into the same buffers. The ring transport's twin of the fuser
//! `Filesystem` impl (fs/handlers.rs), over the same operations.
//!
//! A request's names and write data are read in place from the payload buffer, and the reply
//! is written over them once the operation is done with them; READ and the directory
//! listings, which have no payload arguments, write their data straight into the payload.
//!
//! Here: `RingDispatch`, serving an entry, and the table of requests run on the core (`run`).
//! By part: `async_io.rs` (READ and WRITE on the queue's ring), `fill.rs` (replies that fill
//! the payload: READ run here, the directory listings), `reply.rs` (`Reply` and its encoding).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use fuser::{FileHandle, RenameFlags, WriteFlags};
use log::warn;

use crate::creds::Caller;
use crate::error::{errno_code, os};
use crate::fs::file::Opened;
use crate::fs::passthrough::BackingFile;
use crate::fs::{Ctx, Ttl, UringFs};

use crate::stats::Op;
use crate::sys;

use super::abi;
use super::decode::{self, InHeader, Negotiated, Request};
use super::encode;
use super::lockwait::lock_range;
use super::queue::{AsyncIo, Deferred, HEADER_SIZE, Serve, Served};

mod async_io;
mod fill;
mod reply;

use fill::fills_payload;
use reply::{Reply, statfs, xattr};

/// The ring transport's request server, over the core it shares with `/dev/fuse`.
#[derive(Debug)]
pub struct RingDispatch {
    pub(super) core: Arc<UringFs>,
    /// The FUSE connection, where passthrough backing files are registered.
    dev: Arc<OwnedFd>,
}

impl RingDispatch {
    /// Serves requests on `core` for the FUSE connection `dev`.
    pub fn new(core: Arc<UringFs>, dev: OwnedFd) -> RingDispatch {
        RingDispatch {
            core,
            dev: Arc::new(dev),
        }
    }

    /// Registers `file` as a passthrough backing file on this connection.
    fn register(&self, file: BorrowedFd<'_>) -> io::Result<BackingFile> {
        BackingFile::register(&self.dev, file)
    }
}

impl Serve for RingDispatch {
    fn serve(&self, _qid: u16, header: &mut [u8; HEADER_SIZE], payload: &mut [u8]) -> Served {
        match self.serve_entry(header, payload) {
            Step::Reply(unique, result) => {
                commit(header, unique, result);
                Served::Done
            }
            Step::Io(io) => Served::Io(io),
            Step::Later(deferred) => Served::Later(deferred),
        }
    }

    fn retry(
        &self,
        header: &mut [u8; HEADER_SIZE],
        _payload: &mut [u8],
        deferred: &mut Deferred,
    ) -> bool {
        self.retry_parked(header, deferred)
    }

    fn register_personality(
        &self,
        identity: &Caller,
        register: &mut dyn FnMut() -> io::Result<u16>,
    ) -> io::Result<u16> {
        self.core.as_identity(identity, register)
    }

    fn complete(
        &self,
        header: &mut [u8; HEADER_SIZE],
        payload: &mut [u8],
        io: AsyncIo,
        result: i32,
    ) {
        let op = if io.write { Op::Write } else { Op::Read };
        let res = if result < 0 {
            Err(os(-result))
        } else {
            Ok(result.unsigned_abs())
        };
        let reply = match self.core.account(op, io.ino, io.started, res) {
            Ok(n) if io.write => encode::encode_write(payload, n).map_err(|err| {
                warn!("ring reply does not fit: {err}");
                libc::EIO
            }),
            Ok(n) => Ok(n as usize),
            Err(err) => Err(errno_code(&err)),
        };
        commit(header, io.unique, reply);
    }
}

/// What serving one entry came to: its reply (length, or a positive errno), or a read or
/// write to run first.
pub(super) enum Step {
    Reply(u64, Result<usize, i32>),
    Io(AsyncIo),
    Later(Deferred),
}

/// Writes the out header and payload size of a reply into the entry's header.
pub(super) fn commit(header: &mut [u8; HEADER_SIZE], unique: u64, result: Result<usize, i32>) {
    let (error, len) = match result {
        Ok(len) => (0, len),
        Err(code) => (-code, 0),
    };
    if let Err(err) = encode::commit_reply(header, unique, error, len) {
        warn!("ring reply for request {unique} does not fit: {err}");
    }
}

impl RingDispatch {
    /// Serves one entry: the request's unique id, and the reply's length or a (positive)
    /// errno.
    fn serve_entry(&self, header: &[u8; HEADER_SIZE], payload: &mut [u8]) -> Step {
        let in_header = match decode::decode_in_header(header) {
            Ok(h) => h,
            // Without its unique id the request cannot be answered at all; 0 tells the kernel
            // the reply is malformed, which ends the request with an error.
            Err(err) => {
                warn!("undecodable ring entry: {err}");
                return Step::Reply(0, Err(libc::EIO));
            }
        };
        let unique = in_header.unique;
        let used = decode::decode_ent_in_out(header)
            .map(|e| e.payload_sz as usize)
            .unwrap_or(0)
            .min(payload.len());
        let op_in = header.get(128..256).unwrap_or_default();
        let ctx = Ctx {
            uid: in_header.uid,
            gid: in_header.gid,
            pid: in_header.pid,
        };
        if matches!(in_header.opcode, abi::FUSE_SETLK | abi::FUSE_SETLKW) {
            return self.set_lock(&ctx, &in_header, header, op_in);
        }
        if matches!(in_header.opcode, abi::FUSE_READ | abi::FUSE_WRITE) {
            match self.async_io(&ctx, &in_header, header, op_in, &payload[..used]) {
                Ok(Some(io)) => return Step::Io(io),
                Ok(None) => {}
                Err(code) => return Step::Reply(unique, Err(code)),
            }
        }
        let result = if fills_payload(in_header.opcode) {
            match decode::decode_with(header, op_in, &[], Negotiated::default()) {
                Ok((_, request)) => self.fill(&ctx, request, payload),
                Err(err) => Err(malformed(&in_header, &err)),
            }
        } else {
            let reply =
                match decode::decode_with(header, op_in, &payload[..used], Negotiated::default()) {
                    Ok((_, request)) => self.run(&ctx, &in_header, request),
                    Err(err) => Err(malformed(&in_header, &err)),
                };
            reply.and_then(|reply| self.encode(reply, payload))
        };
        Step::Reply(unique, result)
    }

    /// Every other request: runs it while it borrows the payload, and returns what its reply
    /// needs.
    fn run(&self, ctx: &Ctx, header: &InHeader, request: Request<'_>) -> Result<Reply, i32> {
        let core = &*self.core;
        let t = Instant::now();
        let ino = header.nodeid;
        let (op, res): (Op, io::Result<Reply>) = match request {
            Request::Lookup { parent, name } => {
                let res = core.do_lookup(ctx, parent, name);
                if let (Some(ttl), Err(err)) = (core.negative_ttl(), &res)
                    && err.raw_os_error() == Some(libc::ENOENT)
                {
                    (Op::Lookup, Ok(Reply::Negative(ttl)))
                } else {
                    (Op::Lookup, res.map(|e| self.entry(e.attr, e.generation)))
                }
            }
            Request::GetAttr { ino, .. } => (
                Op::GetAttr,
                core.do_getattr(ino).map(|attr| self.attr(attr)),
            ),
            Request::SetAttr { ino, attr } => (
                Op::SetAttr,
                core.do_setattr(
                    ctx, ino, attr.mode, attr.uid, attr.gid, attr.size, attr.atime, attr.mtime,
                    attr.fh,
                )
                .map(|attr| self.attr(attr)),
            ),
            Request::ReadLink { ino } => (Op::ReadLink, core.do_readlink(ino).map(Reply::Bytes)),
            Request::Symlink {
                parent,
                name,
                target,
            } => {
                let res = sys::cstring(target).and_then(|target| {
                    core.make_entry(ctx, parent, name, 0, |dir, name| {
                        sys::symlinkat(&target, dir, name)
                    })
                });
                (Op::Symlink, res.map(|e| self.entry(e.attr, e.generation)))
            }
            Request::MkNod {
                parent,
                name,
                mode,
                rdev,
                umask,
            } => {
                let (major, minor) = crate::attr::decode_dev(rdev);
                let res = core.make_entry(ctx, parent, name, umask, |dir, name| {
                    sys::mknodat(dir, name, mode, sys::makedev(major, minor))
                });
                (Op::MkNod, res.map(|e| self.entry(e.attr, e.generation)))
            }
            Request::MkDir {
                parent,
                name,
                mode,
                umask,
            } => {
                let res = core.make_entry(ctx, parent, name, umask, |dir, name| {
                    sys::mkdirat(dir, name, mode)
                });
                (Op::MkDir, res.map(|e| self.entry(e.attr, e.generation)))
            }
            Request::Unlink { parent, name } => (
                Op::Unlink,
                core.do_remove(ctx, parent, name, 0).map(|()| Reply::Empty),
            ),
            Request::RmDir { parent, name } => (
                Op::RmDir,
                core.do_remove(ctx, parent, name, libc::AT_REMOVEDIR)
                    .map(|()| Reply::Empty),
            ),
            Request::Rename {
                parent,
                name,
                newparent,
                newname,
                flags,
            } => (
                Op::Rename,
                core.do_rename(
                    ctx,
                    parent,
                    name,
                    newparent,
                    newname,
                    RenameFlags::from_bits_retain(flags),
                )
                .map(|()| Reply::Empty),
            ),
            Request::Link {
                ino,
                newparent,
                newname,
            } => (
                Op::Link,
                core.do_link(ctx, ino, newparent, newname)
                    .map(|e| self.entry(e.attr, e.generation)),
            ),
            Request::Open { ino, flags, .. } => (
                Op::Open,
                core.open_file(ctx, ino, flags, |fd| self.register(fd))
                    .map(Reply::Open),
            ),
            Request::Write {
                ino,
                fh,
                offset,
                data,
                write_flags,
                ..
            } => (
                Op::Write,
                core.do_write(
                    ctx,
                    ino,
                    fh,
                    offset,
                    data,
                    WriteFlags::from_bits_retain(write_flags),
                )
                .map(Reply::Written),
            ),
            Request::StatFs { ino } => (Op::StatFs, core.do_statfs(ino).map(|st| statfs(&st))),
            Request::Release {
                ino,
                fh,
                release_flags,
                lock_owner,
                ..
            } => {
                let flock_owner =
                    (release_flags & abi::FUSE_RELEASE_FLOCK_UNLOCK != 0).then_some(lock_owner);
                (
                    Op::Release,
                    core.release_file(ino, fh, flock_owner)
                        .map(|()| Reply::Empty),
                )
            }
            Request::Fsync { ino, fh, datasync } => (
                Op::Fsync,
                core.do_fsync(ctx, ino, fh, datasync).map(|()| Reply::Empty),
            ),
            Request::SetXattr {
                ino,
                name,
                value,
                flags,
                ..
            } => (
                Op::SetXattr,
                core.do_setxattr(ctx, ino, name, value, flags)
                    .map(|()| Reply::Empty),
            ),
            Request::GetXattr { ino, name, size } => (
                Op::GetXattr,
                core.do_getxattr(ctx, ino, name, size).map(xattr),
            ),
            Request::ListXattr { ino, size } => {
                (Op::ListXattr, core.do_listxattr(ctx, ino, size).map(xattr))
            }
            Request::RemoveXattr { ino, name } => (
                Op::RemoveXattr,
                core.do_removexattr(ctx, ino, name).map(|()| Reply::Empty),
            ),
            Request::GetLk {
                ino,
                fh,
                owner,
                lock,
            } => {
                let res = core.do_getlk(ino, fh, owner, lock_range(&lock));
                let reply = res.map(|(held, pid)| {
                    Reply::Lock(abi::fuse_file_lock {
                        start: held.start,
                        end: held.end,
                        r#type: held.kind as u32,
                        pid,
                    })
                });
                (Op::GetLk, reply)
            }
            Request::Flush {
                ino,
                fh,
                lock_owner,
            } => (
                Op::Flush,
                core.do_flush(ctx, ino, fh, lock_owner)
                    .map(|()| Reply::Empty),
            ),
            Request::OpenDir { ino, .. } => (
                Op::OpenDir,
                core.do_opendir(ctx, ino).map(|fh| {
                    Reply::Open(Opened {
                        fh: FileHandle(fh),
                        flags: core.dir_open_flags(),
                        backing: None,
                    })
                }),
            ),
            Request::ReleaseDir { ino, fh, .. } => (
                Op::ReleaseDir,
                core.release_dir(ino, fh).map(|()| Reply::Empty),
            ),
            Request::FsyncDir { ino, fh, datasync } => (
                Op::FsyncDir,
                core.do_fsyncdir(ino, fh, datasync).map(|()| Reply::Empty),
            ),
            Request::Access { ino, mask } => (
                Op::Access,
                core.do_access(ctx, ino, mask).map(|()| Reply::Empty),
            ),
            Request::Create {
                parent,
                name,
                mode,
                umask,
                flags,
                ..
            } => (
                Op::Create,
                core.create_file(ctx, parent, name, mode, umask, flags, |fd| {
                    self.register(fd)
                })
                .map(|(e, opened)| {
                    let ttl = core.ttl_of(&e.attr, Ttl::Entry);
                    Reply::Create(e.attr, e.generation, ttl, opened)
                }),
            ),
            Request::Fallocate {
                ino,
                fh,
                offset,
                length,
                mode,
            } => (
                Op::Fallocate,
                core.do_fallocate(ctx, ino, fh, offset, length, mode)
                    .map(|()| Reply::Empty),
            ),
            Request::Lseek {
                ino,
                fh,
                offset,
                whence,
            } => (
                Op::Lseek,
                core.do_lseek(ino, fh, offset, whence).map(Reply::Offset),
            ),
            Request::CopyFileRange {
                ino_in,
                fh_in,
                offset_in,
                ino_out,
                fh_out,
                offset_out,
                len,
                flags,
                ..
            } => (
                Op::CopyFileRange,
                u32::try_from(flags)
                    .map_err(|_| os(libc::EINVAL))
                    .and_then(|flags| {
                        core.do_copy_file_range(
                            ctx, ino_in, fh_in, offset_in, ino_out, fh_out, offset_out, len, flags,
                        )
                    })
                    .map(Reply::Written),
            ),
            Request::Ioctl {
                ino,
                fh,
                flags,
                cmd,
                in_data,
                out_size,
                ..
            } => (
                Op::Ioctl,
                core.do_ioctl(
                    ctx,
                    ino,
                    fh,
                    fuser::IoctlFlags::from_bits_retain(flags),
                    cmd,
                    in_data,
                )
                .map(|mut data| {
                    data.truncate(out_size as usize);
                    Reply::Ioctl(data)
                }),
            ),
            Request::Tmpfile {
                parent,
                mode,
                umask,
                flags,
                ..
            } => (
                Op::Tmpfile,
                core.tmpfile_file(ctx, parent, mode, umask, flags)
                    .map(|(e, opened)| {
                        let ttl = core.ttl_of(&e.attr, Ttl::Entry);
                        Reply::Create(e.attr, e.generation, ttl, opened)
                    }),
            ),
            // STATX and the rest: the kernel falls back on ENOSYS, as over /dev/fuse.
            other => {
                log::debug!(
                    "ring request {:?} ino={ino}: not served",
                    opcode_name(&other)
                );
                return Err(libc::ENOSYS);
            }
        };
        core.account(op, ino, t, res).map_err(|e| errno_code(&e))
    }
}

pub(super) fn malformed(header: &InHeader, err: &decode::DecodeError) -> i32 {
    warn!("malformed ring request (opcode {}): {err}", header.opcode);
    libc::EIO
}

fn opcode_name(request: &Request<'_>) -> &'static str {
    match request {
        Request::Statx { .. } => "STATX",
        Request::Destroy => "DESTROY",
        _ => "other",
    }
}
