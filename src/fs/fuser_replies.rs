//! Answering with fuser's replies what the core returned: opens and creates (with their
//! passthrough backing id), statfs, and the directory sinks (`DirSink`, `DirPlusSink`) over
//! fuser's directory replies.

use std::ffi::OsStr;
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileType, Generation, INodeNo, ReplyCreate, ReplyDirectory,
    ReplyDirectoryPlus, ReplyOpen, ReplyStatfs,
};
use log::error;

use super::Entry;
use super::dir::{DirPlusSink, DirSink};
use super::file::Opened;
use super::passthrough::BackingFile;

/// The fuser registration of a backing file, which its replies need. The io_uring transport's
/// registrations never reach here: while it runs, every open comes over it.
fn fuser_backing(backing: &BackingFile) -> Result<&fuser::BackingId, Errno> {
    match backing {
        BackingFile::Fuser(id) => Ok(id),
        BackingFile::Ring { id, .. } => {
            error!("passthrough backing id {id} of the io_uring transport in a /dev/fuse reply");
            Err(Errno::EIO)
        }
    }
}

/// Answers an open, with its passthrough backing id if it has one.
pub(super) fn reply_opened(reply: ReplyOpen, opened: Opened) {
    match opened {
        Opened {
            fh,
            flags,
            backing: Some(backing),
        } => match fuser_backing(&backing) {
            Ok(id) => reply.opened_passthrough(fh, flags, id),
            Err(e) => reply.error(e),
        },
        opened => reply.opened(opened.fh, opened.flags),
    }
}

/// Answers a create with its new entry (valid for `ttl`) and the open file, with its
/// passthrough backing id if it has one.
pub(super) fn reply_created(reply: ReplyCreate, entry: &Entry, ttl: Duration, opened: &Opened) {
    let generation = Generation(entry.generation);
    match opened.backing.as_deref().map(fuser_backing) {
        Some(Ok(id)) => {
            reply.created_passthrough(&ttl, &entry.attr, generation, opened.fh, opened.flags, id)
        }
        Some(Err(e)) => reply.error(e),
        None => reply.created(&ttl, &entry.attr, generation, opened.fh, opened.flags),
    }
}

/// Answers a statfs with the backing fs's numbers.
pub(super) fn reply_statfs(reply: ReplyStatfs, st: &libc::statvfs) {
    reply.statfs(
        st.f_blocks,
        st.f_bfree,
        st.f_bavail,
        st.f_files,
        st.f_ffree,
        u32::try_from(st.f_bsize).unwrap_or(4096),
        u32::try_from(st.f_namemax).unwrap_or(255),
        u32::try_from(st.f_frsize).unwrap_or(4096),
    );
}

impl DirSink for ReplyDirectory {
    fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool {
        ReplyDirectory::add(self, INodeNo(ino), offset, kind, name)
    }
}

/// fuser's reply takes the nodeid from the attributes and makes the dirent's inode number the
/// same, so it cannot send an entry without attributes (a 0 would hide the name from readdir).
impl DirPlusSink for ReplyDirectoryPlus {
    fn add(
        &mut self,
        offset: u64,
        name: &OsStr,
        attr: &FileAttr,
        ttl: Duration,
        generation: u64,
    ) -> bool {
        ReplyDirectoryPlus::add(
            self,
            attr.ino,
            offset,
            name,
            &ttl,
            attr,
            Generation(generation),
        )
    }

    fn can_add_unattributed(&self) -> bool {
        false
    }

    fn add_unattributed(
        &mut self,
        _ino: u64,
        _offset: u64,
        _kind: FileType,
        _name: &OsStr,
    ) -> bool {
        // Never called: can_add_unattributed says no. Ending the reply here is harmless.
        true
    }
}
