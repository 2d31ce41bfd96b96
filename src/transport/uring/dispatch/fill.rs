//! Requests whose replies fill the payload (READ run here, READDIR, READDIRPLUS): the data
//! goes straight into the entry's payload, directory entries through the ring's sinks.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use fuser::{FileAttr, FileType};

use crate::error::errno_code;
use crate::fs::Ctx;
use crate::fs::dir::{DirPlusSink, DirSink};
use crate::stats::Op;
use crate::transport::uring::abi;
use crate::transport::uring::decode::Request;
use crate::transport::uring::encode::{DirentPlusWriter, DirentWriter, EntryOut};

use super::RingDispatch;

/// Opcodes whose requests carry nothing in the payload and whose replies fill it.
/// Opcodes whose requests carry nothing in the payload and whose replies fill it.
pub(super) fn fills_payload(opcode: u32) -> bool {
    matches!(
        opcode,
        abi::FUSE_READ | abi::FUSE_READDIR | abi::FUSE_READDIRPLUS
    )
}

impl RingDispatch {
    /// READ, READDIR and READDIRPLUS: the data goes straight into `payload`.
    pub(super) fn fill(
        &self,
        ctx: &Ctx,
        request: Request<'_>,
        payload: &mut [u8],
    ) -> Result<usize, i32> {
        let core = &*self.core;
        let t = Instant::now();
        match request {
            Request::Read {
                ino,
                fh,
                offset,
                size,
                ..
            } => {
                let buf = payload.get_mut(..size as usize).ok_or(libc::EINVAL)?;
                let res = core.do_read(ctx, ino, fh, offset, buf);
                core.account(Op::Read, ino, t, res)
                    .map_err(|e| errno_code(&e))
            }
            Request::ReadDir {
                ino,
                fh,
                offset,
                size,
            } => {
                let mut writer = DirentWriter::new(payload, size);
                let res = core.do_readdir(ino, fh, offset, &mut Dirents(&mut writer));
                core.account(Op::ReadDir, ino, t, res)
                    .map(|()| writer.len())
                    .map_err(|e| errno_code(&e))
            }
            Request::ReadDirPlus {
                ino,
                fh,
                offset,
                size,
            } => {
                let mut writer = DirentPlusWriter::new(payload, size);
                let res = core.do_readdirplus(ctx, ino, fh, offset, &mut DirentsPlus(&mut writer));
                core.account(Op::ReadDirPlus, ino, t, res)
                    .map(|()| writer.len())
                    .map_err(|e| errno_code(&e))
            }
            _ => Err(libc::ENOSYS),
        }
    }
}

/// fuser-shaped readdir sink over the ring's dirent writer.
struct Dirents<'w, 'b>(&'w mut DirentWriter<'b>);

impl DirSink for Dirents<'_, '_> {
    fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool {
        !self.0.push(
            ino,
            offset,
            kind,
            std::os::unix::ffi::OsStrExt::as_bytes(name),
        )
    }
}

/// Readdirplus sink over the ring's direntplus writer, which can send an entry without
/// attributes (nodeid 0), unlike fuser's reply.
struct DirentsPlus<'w, 'b>(&'w mut DirentPlusWriter<'b>);

impl DirPlusSink for DirentsPlus<'_, '_> {
    fn add(
        &mut self,
        offset: u64,
        name: &OsStr,
        attr: &FileAttr,
        ttl: Duration,
        generation: u64,
    ) -> bool {
        let entry = EntryOut::new(attr, generation, ttl, ttl);
        !self
            .0
            .push(&entry, offset, std::os::unix::ffi::OsStrExt::as_bytes(name))
    }

    fn can_add_unattributed(&self) -> bool {
        true
    }

    fn add_unattributed(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool {
        !self.0.push_unattributed(
            ino,
            offset,
            kind,
            std::os::unix::ffi::OsStrExt::as_bytes(name),
        )
    }
}
