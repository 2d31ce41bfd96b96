//! Replies into a ring entry: the out header into the header buffer's `in_out`, the body into
//! the payload buffer, its length into `ent_in_out.payload_sz`.
//!
//! The kernel (`fuse_uring_commit` -> `fuse_copy_out_args`) takes the body as the op's out-args
//! back to back, and wants `payload_sz` to equal their sizes exactly, or be smaller only for
//! the ops with a variable last arg (READ, READDIR*, READLINK, GETXATTR/LISTXATTR data, IOCTL
//! data). An error reply is the header alone. Attributes are converted exactly as fuser 0.18
//! converts `FileAttr` on `/dev/fuse`, so both transports tell the kernel the same thing.

use std::fmt;
use std::mem::offset_of;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileHandle, FileType};

use super::abi::*;

/// A reply that does not fit the buffer it was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall {
    /// Bytes the reply needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

impl fmt::Display for TooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reply needs {} bytes, buffer has {}",
            self.needed, self.available
        )
    }
}

impl std::error::Error for TooSmall {}

/// Writes `value` at `off`; the offset after it.
fn put<T: Wire>(buf: &mut [u8], off: usize, value: &T) -> Result<usize, TooSmall> {
    let end = off.saturating_add(T::SIZE);
    value.write_at(buf, off).ok_or(TooSmall {
        needed: end,
        available: buf.len(),
    })?;
    Ok(end)
}

/// Copies `bytes` to `off`; the offset after them.
fn put_bytes(buf: &mut [u8], off: usize, bytes: &[u8]) -> Result<usize, TooSmall> {
    let end = off.saturating_add(bytes.len());
    let available = buf.len();
    buf.get_mut(off..end)
        .ok_or(TooSmall {
            needed: end,
            available,
        })?
        .copy_from_slice(bytes);
    Ok(end)
}

/// A time as (seconds, nanoseconds) with the nanoseconds below 10^9 and seconds saturated,
/// as fuser's `time_from_system_time` gives it: -1.5 s is (-2, 500_000_000).
fn wire_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => match i64::try_from(d.as_secs()) {
            Ok(secs) => (secs, d.subsec_nanos()),
            Err(_) => (i64::MAX, 999_999_999),
        },
        Err(before) => {
            let d = before.duration();
            match i64::try_from(d.as_secs()) {
                Ok(secs) if d.subsec_nanos() == 0 => (-secs, 0),
                Ok(secs) => (-secs - 1, 1_000_000_000 - d.subsec_nanos()),
                Err(_) => (i64::MIN, 0),
            }
        }
    }
}

/// The `S_IFMT` bits of a file type.
fn type_bits(kind: FileType) -> u32 {
    match kind {
        FileType::NamedPipe => libc::S_IFIFO,
        FileType::CharDevice => libc::S_IFCHR,
        FileType::BlockDevice => libc::S_IFBLK,
        FileType::Directory => libc::S_IFDIR,
        FileType::RegularFile => libc::S_IFREG,
        FileType::Symlink => libc::S_IFLNK,
        FileType::Socket => libc::S_IFSOCK,
    }
}

/// `attr` as the kernel's `fuse_attr`, field for field what fuser 0.18 sends on Linux: `ino`
/// is `attr.ino`, `mode` the type bits or'ed with `perm`, times in [`wire_time`]'s form, and
/// `flags` 0 (fuser ignores `FileAttr::flags` outside macOS).
pub fn fuse_attr_of(attr: &FileAttr) -> fuse_attr {
    let (atime, atimensec) = wire_time(attr.atime);
    let (mtime, mtimensec) = wire_time(attr.mtime);
    let (ctime, ctimensec) = wire_time(attr.ctime);
    fuse_attr {
        ino: attr.ino.0,
        size: attr.size,
        blocks: attr.blocks,
        // The header declares the seconds u64; the kernel reads them back as signed.
        atime: atime as u64,
        mtime: mtime as u64,
        ctime: ctime as u64,
        atimensec,
        mtimensec,
        ctimensec,
        mode: type_bits(attr.kind) | u32::from(attr.perm),
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: attr.rdev,
        blksize: attr.blksize,
        flags: 0,
    }
}

/// A positive entry: what LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE, TMPFILE and each
/// READDIRPLUS entry reply. The reply hands the kernel one lookup of `nodeid`.
#[derive(Debug, Clone, Copy)]
pub struct EntryOut<'a> {
    /// The node's id (fuser's convention, kept here: `attr.ino`).
    pub nodeid: u64,
    /// Generation of the node.
    pub generation: u64,
    /// How long the kernel may cache the name.
    pub entry_ttl: Duration,
    /// How long the kernel may cache the attributes.
    pub attr_ttl: Duration,
    /// The attributes.
    pub attr: &'a FileAttr,
}

impl<'a> EntryOut<'a> {
    /// An entry for `attr`, whose `ino` is its nodeid.
    pub fn new(
        attr: &'a FileAttr,
        generation: u64,
        entry_ttl: Duration,
        attr_ttl: Duration,
    ) -> Self {
        EntryOut {
            nodeid: attr.ino.0,
            generation,
            entry_ttl,
            attr_ttl,
            attr,
        }
    }

    fn to_wire(self) -> fuse_entry_out {
        fuse_entry_out {
            nodeid: self.nodeid,
            generation: self.generation,
            entry_valid: self.entry_ttl.as_secs(),
            attr_valid: self.attr_ttl.as_secs(),
            entry_valid_nsec: self.entry_ttl.subsec_nanos(),
            attr_valid_nsec: self.attr_ttl.subsec_nanos(),
            attr: fuse_attr_of(self.attr),
        }
    }
}

/// An open file handle as OPEN, OPENDIR, CREATE and TMPFILE reply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOut {
    /// The daemon's handle.
    pub fh: FileHandle,
    /// `FOPEN_*`.
    pub open_flags: u32,
    /// With `FOPEN_PASSTHROUGH`: the backing file's id; otherwise 0.
    pub backing_id: i32,
}

impl OpenOut {
    fn to_wire(self) -> fuse_open_out {
        fuse_open_out {
            fh: self.fh.0,
            open_flags: self.open_flags,
            backing_id: self.backing_id,
        }
    }
}

/// LOOKUP and the mk* ops: a `fuse_entry_out`. Returns the payload length.
pub fn encode_entry(buf: &mut [u8], entry: &EntryOut<'_>) -> Result<usize, TooSmall> {
    put(buf, 0, &entry.to_wire())
}

/// LOOKUP of a missing name that the kernel may cache for `ttl`: nodeid 0, no attributes.
/// (A zero `ttl` caches nothing; replying `ENOENT` is equivalent then.)
pub fn encode_negative_entry(buf: &mut [u8], ttl: Duration) -> Result<usize, TooSmall> {
    let out = fuse_entry_out {
        entry_valid: ttl.as_secs(),
        entry_valid_nsec: ttl.subsec_nanos(),
        ..fuse_entry_out::default()
    };
    put(buf, 0, &out)
}

/// GETATTR and SETATTR: a `fuse_attr_out`.
pub fn encode_attr(buf: &mut [u8], attr: &FileAttr, ttl: Duration) -> Result<usize, TooSmall> {
    let out = fuse_attr_out {
        attr_valid: ttl.as_secs(),
        attr_valid_nsec: ttl.subsec_nanos(),
        dummy: 0,
        attr: fuse_attr_of(attr),
    };
    put(buf, 0, &out)
}

/// OPEN and OPENDIR: a `fuse_open_out`.
pub fn encode_open(buf: &mut [u8], open: &OpenOut) -> Result<usize, TooSmall> {
    put(buf, 0, &open.to_wire())
}

/// CREATE and TMPFILE: `fuse_entry_out` then `fuse_open_out`.
pub fn encode_create(
    buf: &mut [u8],
    entry: &EntryOut<'_>,
    open: &OpenOut,
) -> Result<usize, TooSmall> {
    let off = put(buf, 0, &entry.to_wire())?;
    put(buf, off, &open.to_wire())
}

/// WRITE and COPY_FILE_RANGE: a `fuse_write_out`.
pub fn encode_write(buf: &mut [u8], written: u32) -> Result<usize, TooSmall> {
    put(
        buf,
        0,
        &fuse_write_out {
            size: written,
            padding: 0,
        },
    )
}

/// COPY_FILE_RANGE_64: a `fuse_copy_file_range_out`.
pub fn encode_copied(buf: &mut [u8], copied: u64) -> Result<usize, TooSmall> {
    put(
        buf,
        0,
        &fuse_copy_file_range_out {
            bytes_copied: copied,
        },
    )
}

/// STATFS: a `fuse_statfs_out` (padding and spare zeroed whatever `st` holds).
pub fn encode_statfs(buf: &mut [u8], st: &fuse_kstatfs) -> Result<usize, TooSmall> {
    let st = fuse_kstatfs {
        padding: 0,
        spare: [0; 6],
        ..*st
    };
    put(buf, 0, &fuse_statfs_out { st })
}

/// GETLK: a `fuse_lk_out`, the conflicting lock (or the asked one with `F_UNLCK`).
pub fn encode_lock(buf: &mut [u8], lock: &fuse_file_lock) -> Result<usize, TooSmall> {
    put(buf, 0, lock)
}

/// GETXATTR and LISTXATTR with size 0: the size the value or list needs.
pub fn encode_xattr_size(buf: &mut [u8], size: u32) -> Result<usize, TooSmall> {
    put(buf, 0, &fuse_getxattr_out { size, padding: 0 })
}

/// READ, READLINK, and GETXATTR/LISTXATTR data: the bytes themselves. (A READ can instead
/// read straight into the payload buffer: its reply is nothing but the data.)
pub fn encode_data(buf: &mut [u8], data: &[u8]) -> Result<usize, TooSmall> {
    put_bytes(buf, 0, data)
}

/// LSEEK: a `fuse_lseek_out`.
pub fn encode_lseek(buf: &mut [u8], offset: i64) -> Result<usize, TooSmall> {
    put(
        buf,
        0,
        &fuse_lseek_out {
            offset: offset as u64,
        },
    )
}

/// IOCTL: a `fuse_ioctl_out` then the output data (at most the request's `out_size`). The
/// iovec counts are 0: the kernel reads them only with `FUSE_IOCTL_RETRY`.
pub fn encode_ioctl(buf: &mut [u8], result: i32, data: &[u8]) -> Result<usize, TooSmall> {
    let off = put(
        buf,
        0,
        &fuse_ioctl_out {
            result,
            ..fuse_ioctl_out::default()
        },
    )?;
    put_bytes(buf, off, data)
}

/// STATX: a `fuse_statx_out` from the backing `stx`, reported under inode number `ino`.
pub fn encode_statx(
    buf: &mut [u8],
    ino: u64,
    stx: &libc::statx,
    ttl: Duration,
) -> Result<usize, TooSmall> {
    let time = |t: &libc::statx_timestamp| fuse_sx_time {
        tv_sec: t.tv_sec,
        tv_nsec: t.tv_nsec,
        reserved: 0,
    };
    let stat = fuse_statx {
        mask: stx.stx_mask,
        blksize: stx.stx_blksize,
        attributes: stx.stx_attributes,
        nlink: stx.stx_nlink,
        uid: stx.stx_uid,
        gid: stx.stx_gid,
        mode: stx.stx_mode,
        ino,
        size: stx.stx_size,
        blocks: stx.stx_blocks,
        attributes_mask: stx.stx_attributes_mask,
        atime: time(&stx.stx_atime),
        btime: time(&stx.stx_btime),
        ctime: time(&stx.stx_ctime),
        mtime: time(&stx.stx_mtime),
        rdev_major: stx.stx_rdev_major,
        rdev_minor: stx.stx_rdev_minor,
        dev_major: stx.stx_dev_major,
        dev_minor: stx.stx_dev_minor,
        ..fuse_statx::default()
    };
    let out = fuse_statx_out {
        attr_valid: ttl.as_secs(),
        attr_valid_nsec: ttl.subsec_nanos(),
        stat,
        ..fuse_statx_out::default()
    };
    put(buf, 0, &out)
}

/// The ops whose success is the header alone (UNLINK, RMDIR, RENAME, SETXATTR, REMOVEXATTR,
/// FLUSH, RELEASE*, FSYNC*, ACCESS, FALLOCATE, DESTROY): payload length 0.
pub fn encode_empty() -> usize {
    0
}

/// The errors the kernel accepts in a ring reply: 0 and -1..=-511 (`fuse_uring_commit`
/// fails a request whose error is positive or at most -ERESTARTSYS with EINVAL); anything
/// else is sent as -EIO.
fn wire_error(error: i32) -> i32 {
    if (-511..=0).contains(&error) {
        error
    } else {
        -libc::EIO
    }
}

/// A `fuse_out_header` at the start of `buf` (a ring header's `in_out`, or a `/dev/fuse`
/// reply): `error` is 0 or a negative errno, `payload_len` the body's length (0 for errors).
pub fn out_header(
    buf: &mut [u8],
    unique: u64,
    error: i32,
    payload_len: usize,
) -> Result<(), TooSmall> {
    let len = payload_len.saturating_add(fuse_out_header::SIZE);
    let out = fuse_out_header {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        error: wire_error(error),
        unique,
    };
    put(buf, 0, &out).map(|_| ())
}

/// Completes a ring entry's reply: the out header into `in_out` and `payload_len` into
/// `ent_in_out.payload_sz` of the 288-byte `ring_header`; the body is already in the payload
/// buffer. Submit COMMIT_AND_FETCH with the entry's commit id next.
pub fn commit_reply(
    ring_header: &mut [u8],
    unique: u64,
    error: i32,
    payload_len: usize,
) -> Result<(), TooSmall> {
    let payload_len = if error == 0 { payload_len } else { 0 };
    out_header(
        ring_header
            .get_mut(RING_IN_OUT_OFFSET..)
            .unwrap_or_default(),
        unique,
        error,
        payload_len,
    )?;
    let sz_off = RING_ENT_IN_OUT_OFFSET + offset_of!(fuse_uring_ent_in_out, payload_sz);
    put(
        ring_header,
        sz_off,
        &u32::try_from(payload_len).unwrap_or(u32::MAX),
    )
    .map(|_| ())
}

/// The 80-byte command area of a REGISTER (`commit_id` 0) or COMMIT_AND_FETCH SQE.
pub fn uring_cmd(commit_id: u64, qid: u16) -> [u8; URING_CMD_AREA_SZ] {
    let mut area = [0u8; URING_CMD_AREA_SZ];
    let req = fuse_uring_cmd_req {
        commit_id,
        qid,
        ..fuse_uring_cmd_req::default()
    };
    // 24 bytes always fit in 80.
    let _ = req.write_at(&mut area, 0);
    area
}

/// Whether the kernel accepts `name` in a directory record (`parse_dirfile`: non-empty, no
/// '/'); a NUL would cut it short in every reader.
fn valid_dirent_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Appends one record (fixed part, name, zero padding to 8 bytes) if it fits.
fn push_record<T: Wire>(buf: &mut [u8], len: &mut usize, head: &T, name: &[u8]) -> bool {
    let size = fuse_dirent_align(T::SIZE + name.len());
    let Some(record) = len.checked_add(size).and_then(|end| buf.get_mut(*len..end)) else {
        return false;
    };
    record.fill(0);
    if head.write_at(record, 0).is_none() {
        return false;
    }
    let Some(dst) = record.get_mut(T::SIZE..T::SIZE + name.len()) else {
        return false;
    };
    dst.copy_from_slice(name);
    *len += size;
    true
}

/// READDIR's reply: `fuse_dirent` records, 8-byte aligned, never more than the request's
/// `size`.
#[derive(Debug)]
pub struct DirentWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    skipped: usize,
}

impl<'a> DirentWriter<'a> {
    /// A writer into the payload buffer `buf`, bounded by the request's `size`.
    pub fn new(buf: &'a mut [u8], size: u32) -> Self {
        let limit = buf.len().min(size as usize);
        DirentWriter {
            buf: buf.get_mut(..limit).unwrap_or_default(),
            len: 0,
            skipped: 0,
        }
    }

    /// Appends an entry; `off` is the cookie of the entry after it. Returns false, writing
    /// nothing, when the entry does not fit: the reply is full. A name the kernel would
    /// reject (empty, or holding '/' or NUL) is skipped and counted in [`Self::skipped`].
    pub fn push(&mut self, ino: u64, off: u64, kind: FileType, name: &[u8]) -> bool {
        if !valid_dirent_name(name) {
            self.skipped += 1;
            return true;
        }
        let head = fuse_dirent {
            ino,
            off,
            namelen: name.len() as u32,
            r#type: type_bits(kind) >> 12,
        };
        push_record(self.buf, &mut self.len, &head, name)
    }

    /// The payload length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written (the end of the directory, if nothing was skipped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Names skipped as invalid.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// READDIRPLUS's reply: `fuse_direntplus` records, 8-byte aligned, never more than the
/// request's `size`.
#[derive(Debug)]
pub struct DirentPlusWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    skipped: usize,
}

impl<'a> DirentPlusWriter<'a> {
    /// A writer into the payload buffer `buf`, bounded by the request's `size`.
    pub fn new(buf: &'a mut [u8], size: u32) -> Self {
        let limit = buf.len().min(size as usize);
        DirentPlusWriter {
            buf: buf.get_mut(..limit).unwrap_or_default(),
            len: 0,
            skipped: 0,
        }
    }

    /// Appends an entry with its lookup (one lookup of `entry.nodeid` handed to the kernel,
    /// unless the name is "." or ".."); the readdir inode number and type are `entry.attr`'s.
    /// Returns false, writing nothing, when it does not fit: the reply is full, and the
    /// lookup was not handed over. Invalid names are skipped as in [`DirentWriter::push`].
    pub fn push(&mut self, entry: &EntryOut<'_>, off: u64, name: &[u8]) -> bool {
        let ino = entry.attr.ino.0;
        let kind = entry.attr.kind;
        self.push_wire(entry.to_wire(), ino, off, kind, name)
    }

    /// Appends an entry without attributes: nodeid 0, so the kernel lists the name (with
    /// `ino`, which must not be 0 for readdir(3) to show it) but makes no dentry and takes no
    /// lookup. For names the caller may not look up.
    pub fn push_unattributed(&mut self, ino: u64, off: u64, kind: FileType, name: &[u8]) -> bool {
        self.push_wire(fuse_entry_out::default(), ino, off, kind, name)
    }

    fn push_wire(
        &mut self,
        entry_out: fuse_entry_out,
        ino: u64,
        off: u64,
        kind: FileType,
        name: &[u8],
    ) -> bool {
        if !valid_dirent_name(name) {
            self.skipped += 1;
            return true;
        }
        let dirent = fuse_dirent {
            ino,
            off,
            namelen: name.len() as u32,
            r#type: type_bits(kind) >> 12,
        };
        push_record(
            self.buf,
            &mut self.len,
            &fuse_direntplus { entry_out, dirent },
            name,
        )
    }

    /// The payload length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Names skipped as invalid.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
