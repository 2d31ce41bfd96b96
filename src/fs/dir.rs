//! Directory streams: opendir, readdir, and readdirplus with its batched lookups.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{FileAttr, FileHandle, FileType, INodeNo};
use log::error;
use parking_lot::Mutex;

use crate::attr::{self, STATX_MASK};
use crate::error::einval;
use crate::inode::Pinned;
use crate::sys::{self, EMPTY};

use super::{Ctx, STATX_EMPTY, Ttl, UringFs};

/// Bytes asked of `getdents64` at a time.
const DIRENT_BUF: usize = 32 * 1024;

/// The first guess at the kernel's readdirplus buffer: one page, its size on older kernels
/// (6.x sizes it from the reader's getdents buffer, often 32 KiB). A batch past the buffer
/// would look up entries only to forget them again.
const READDIRPLUS_FIRST_GUESS: usize = 4096;

/// An open directory stream.
#[derive(Debug)]
pub struct OpenDir {
    /// The inode it was opened on.
    pub(super) nodeid: u64,
    /// A real `O_RDONLY|O_DIRECTORY` fd: `getdents64` needs one.
    pub(super) fd: OwnedFd,
    /// Entries read but not yet given to the kernel; locked per readdir call.
    stream: Mutex<DirStream>,
}

/// One `getdents64` record.
#[derive(Debug, Clone)]
struct DirEntry {
    ino: u64,
    /// The offset of the entry after this one (what the kernel sends back to continue).
    next_offset: u64,
    d_type: u8,
    name: CString,
}

#[derive(Debug, Default)]
struct DirStream {
    /// Entries read ahead, in order.
    pending: VecDeque<DirEntry>,
    /// The kernel offset that `pending`'s first entry answers (0 on a fresh stream).
    offset: u64,
    /// The backing stream is at its end.
    eof: bool,
    /// Bytes of direntplus records the last readdirplus reply held when it filled up: the
    /// kernel's buffer size, which fuser does not tell (0 until a reply has filled).
    plus_reply_bytes: usize,
}

impl UringFs {
    pub(crate) fn do_opendir(&self, req: &Ctx, ino: u64) -> io::Result<u64> {
        let inode = self.inode(ino)?;
        let fd = {
            let _caller = self.as_caller(req)?;
            self.reopen(&inode, libc::O_RDONLY | libc::O_DIRECTORY)?
        };
        self.keep_atime(fd.as_fd());
        Ok(self.dirs.insert(OpenDir {
            nodeid: ino,
            fd,
            stream: Mutex::new(DirStream::default()),
        }))
    }

    /// Moves the stream to the kernel's `offset`, unless it is already there (the usual
    /// case: the kernel continues where the last reply ended).
    fn seek_dir(dir: &OpenDir, stream: &mut DirStream, offset: u64) -> io::Result<()> {
        if stream.offset != offset {
            let offset_i = i64::try_from(offset).map_err(|_| einval())?;
            sys::lseek(dir.fd.as_fd(), offset_i, libc::SEEK_SET)?;
            stream.pending.clear();
            stream.offset = offset;
            stream.eof = false;
        }
        Ok(())
    }

    /// Makes sure an entry is pending unless the directory is at its end.
    fn fill_pending(dir: &OpenDir, stream: &mut DirStream) -> io::Result<()> {
        if stream.pending.is_empty() && !stream.eof {
            let mut buf = vec![0u8; DIRENT_BUF];
            let len = sys::getdents64(dir.fd.as_fd(), &mut buf)?;
            if len == 0 {
                stream.eof = true;
            }
            stream
                .pending
                .extend(parse_dirents(&buf[..len.min(buf.len())]));
        }
        Ok(())
    }

    /// Closes directory stream `fh` of `ino`.
    pub(crate) fn release_dir(&self, ino: u64, fh: FileHandle) -> io::Result<()> {
        self.dir(ino, fh)?;
        self.dirs.remove(fh.0);
        Ok(())
    }

    /// fsync/fdatasync of directory stream `fh`.
    pub(crate) fn do_fsyncdir(&self, ino: u64, fh: FileHandle, datasync: bool) -> io::Result<()> {
        let dir = self.dir(ino, fh)?;
        self.data.fsync(dir.fd.as_fd(), datasync)
    }

    pub(crate) fn do_readdir(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        reply: &mut dyn DirSink,
    ) -> io::Result<()> {
        let dir = self.dir(ino, fh)?;
        let mut stream = dir.stream.lock();
        Self::seek_dir(&dir, &mut stream, offset)?;
        let mut added = false;
        loop {
            if let Err(err) = Self::fill_pending(&dir, &mut stream) {
                // What was already added stands; the next call meets the error again.
                return if added { Ok(()) } else { Err(err) };
            }
            let Some(entry) = stream.pending.front() else {
                return Ok(());
            };
            let kind = attr::dirent_type(entry.d_type);
            let full = reply.add(
                entry.ino,
                entry.next_offset,
                kind,
                OsStr::from_bytes(entry.name.as_bytes()),
            );
            if full {
                return Ok(());
            }
            added = true;
            let next = entry.next_offset;
            stream.pending.pop_front();
            stream.offset = next;
        }
    }

    /// Looks up a reply's worth of `names` in `parent` as the caller: one OPENAT batch and one
    /// STATX batch on the ring. A name the caller may not look up (a directory it can read
    /// but not search) must still be listed, as getdents lists it natively. A transport that
    /// can send an entry without attributes (`unattributed`) lists it so; over fuser's reply,
    /// which cannot, it is looked up again as the daemon, and the kernel hands its attributes
    /// to nobody who could not have searched the directory (default_permissions checks the
    /// walk; without it entries are not cached and every walk looks up as the walker).
    fn readdirplus_lookups(
        &self,
        req: &Ctx,
        parent: &Pinned,
        names: &[&CStr],
        unattributed: bool,
    ) -> io::Result<Vec<io::Result<(OwnedFd, libc::statx)>>> {
        let mut found = {
            let _caller = self.as_caller(req)?;
            self.data.lookup_batch(parent.fd(), names)
        };
        if unattributed {
            return Ok(found);
        }
        for (slot, name) in found.iter_mut().zip(names) {
            let denied = matches!(slot, Err(e) if e.raw_os_error() == Some(libc::EACCES));
            if denied {
                *slot = sys::openat(parent.fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .and_then(|fd| {
                        let stx = sys::statx(fd.as_fd(), EMPTY, STATX_EMPTY, STATX_MASK)?;
                        Ok((fd, stx))
                    });
            }
        }
        Ok(found)
    }

    pub(crate) fn do_readdirplus(
        &self,
        req: &Ctx,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        reply: &mut dyn DirPlusSink,
    ) -> io::Result<()> {
        let unattributed = reply.can_add_unattributed();
        let dir = self.dir(ino, fh)?;
        let parent = self.inode(ino)?;
        let mut stream = dir.stream.lock();
        Self::seek_dir(&dir, &mut stream, offset)?;
        // Once an entry is in the reply its lookup is the kernel's: a later error must not
        // throw the reply (and those lookups) away.
        let mut added = false;
        // Batch by what the last full reply held; without one, start at a page and double
        // while the reply keeps taking more. After the learnt size, probe with one entry: the
        // reply is most likely full by then.
        let mut used = 0;
        let learnt = stream.plus_reply_bytes;
        let mut probed = false;
        let mut batch_bytes = if learnt == 0 {
            READDIRPLUS_FIRST_GUESS
        } else {
            learnt
        };
        loop {
            let looked_up = Self::fill_pending(&dir, &mut stream).and_then(|()| {
                let batch = reply_batch(&stream.pending, batch_bytes);
                let names: Vec<&CStr> = batch
                    .iter()
                    .filter(|e| !is_dot_or_dotdot(e.name.as_bytes()))
                    .map(|e| e.name.as_c_str())
                    .collect();
                let found = self.readdirplus_lookups(req, &parent, &names, unattributed)?;
                Ok((batch, found))
            });
            let (batch, found) = match looked_up {
                Ok(done) => done,
                Err(err) => return if added { Ok(()) } else { Err(err) },
            };
            if batch.is_empty() {
                return Ok(());
            }
            let mut found = found.into_iter();
            for entry in &batch {
                let name = OsStr::from_bytes(entry.name.as_bytes());
                let full = if is_dot_or_dotdot(entry.name.as_bytes()) {
                    // The kernel makes no dentry for these and takes no lookup count.
                    let attr = dot_attr(entry);
                    let ttl = self.ttl_of(&attr, Ttl::Entry);
                    reply.add(entry.next_offset, name, &attr, ttl, 0)
                } else {
                    match found.next() {
                        Some(Ok((fd, stx))) => {
                            let e = self.adopt(fd, &stx);
                            let ttl = self.ttl_of(&e.attr, Ttl::Entry);
                            let full =
                                reply.add(entry.next_offset, name, &e.attr, ttl, e.generation);
                            if full {
                                // Not sent: the kernel never saw this lookup.
                                self.inodes.forget(e.attr.ino.0, 1);
                            }
                            full
                        }
                        // Gone since getdents: skip it, as a racing unlink would.
                        Some(Err(err)) if err.raw_os_error() == Some(libc::ENOENT) => false,
                        // The caller may not look it up: listed without attributes, as
                        // `ls -l` natively shows `?` for them.
                        Some(Err(err))
                            if unattributed && err.raw_os_error() == Some(libc::EACCES) =>
                        {
                            let kind = attr::dirent_type(entry.d_type);
                            reply.add_unattributed(entry.ino, entry.next_offset, kind, name)
                        }
                        // Anything else (EMFILE, EIO...) fails the listing rather than
                        // silently shortening it; what is already in the reply stands.
                        Some(Err(err)) => {
                            if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                                error!("readdirplus {:?}: {err}", entry.name);
                            }
                            return if added { Ok(()) } else { Err(err) };
                        }
                        None => false,
                    }
                };
                if full {
                    // The fds looked up for entries after this one just close.
                    stream.plus_reply_bytes = used;
                    return Ok(());
                }
                added = true;
                used += direntplus_size(entry);
                stream.pending.pop_front();
                stream.offset = entry.next_offset;
            }
            batch_bytes = if learnt == 0 || probed {
                used.clamp(READDIRPLUS_FIRST_GUESS, 1 << 20)
            } else if used < learnt {
                learnt - used
            } else {
                probed = true;
                1
            };
        }
    }
}

/// Where readdir puts its entries: the transport's reply buffer.
pub trait DirSink {
    /// Adds a name of type `kind` whose inode number is `ino`, continued at `offset`; true
    /// when the reply is full (and the entry was not added).
    fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool;
}

/// Where readdirplus puts its entries.
pub trait DirPlusSink {
    /// Adds an entry with its attributes (its nodeid is `attr.ino`); true when full.
    fn add(
        &mut self,
        offset: u64,
        name: &OsStr,
        attr: &FileAttr,
        ttl: Duration,
        generation: u64,
    ) -> bool;

    /// Whether this transport can send an entry without attributes (nodeid 0: the kernel
    /// lists the name and makes no dentry).
    fn can_add_unattributed(&self) -> bool;

    /// Adds such an entry; true when full. Only called when `can_add_unattributed`.
    fn add_unattributed(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool;
}

pub(super) fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// The bytes one entry takes in a readdirplus reply: `fuse_entry_out` (128 bytes) plus
/// `fuse_dirent` (24 bytes and the name, padded to 8).
fn direntplus_size(entry: &DirEntry) -> usize {
    (152 + entry.name.as_bytes().len()).next_multiple_of(8)
}

/// The leading pending entries that fit in `budget` bytes (at least one).
fn reply_batch(pending: &VecDeque<DirEntry>, budget: usize) -> Vec<DirEntry> {
    let mut used = 0;
    let fits = pending
        .iter()
        .take_while(|e| {
            used += direntplus_size(e);
            used <= budget
        })
        .count();
    pending.iter().take(fits.max(1)).cloned().collect()
}

/// Attributes for a `.`/`..` readdirplus entry; the kernel only uses the type.
fn dot_attr(entry: &DirEntry) -> FileAttr {
    FileAttr {
        ino: INodeNo(entry.ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: fuser::FileType::Directory,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The records of a `getdents64` buffer; a malformed record ends the list.
fn parse_dirents(buf: &[u8]) -> Vec<DirEntry> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const HEADER: usize = 19;
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= buf.len() {
        let rec = &buf[pos..];
        let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap_or([0; 8]));
        let next_offset = u64::from_ne_bytes(rec[8..16].try_into().unwrap_or([0; 8]));
        let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
        let d_type = rec[18];
        if reclen < HEADER || reclen > rec.len() {
            break;
        }
        let name_bytes = &rec[HEADER..reclen];
        let name_len = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        if let Ok(name) = CString::new(&name_bytes[..name_len]) {
            entries.push(DirEntry {
                ino,
                next_offset,
                d_type,
                name,
            });
        }
        pos += reclen;
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirents_parse_and_stop_at_garbage() {
        let mut buf = Vec::new();
        for (ino, off, name) in [(5u64, 1u64, &b"."[..]), (7, 2, b"file")] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let mut rec = vec![0u8; reclen];
            rec[0..8].copy_from_slice(&ino.to_ne_bytes());
            rec[8..16].copy_from_slice(&off.to_ne_bytes());
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[18] = libc::DT_REG;
            rec[19..19 + name.len()].copy_from_slice(name);
            buf.extend(rec);
        }
        buf.extend([0xff; 5]);
        let entries = parse_dirents(&buf);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].name.as_bytes(), b"file");
        assert_eq!((entries[1].ino, entries[1].next_offset), (7, 2));
    }
}
