//! Requests from a ring entry: the in header, the per-op struct and the payload into a
//! typed [`Request`].
//!
//! How the kernel lays a request out on the ring (`fs/fuse/dev_uring.c`,
//! `fuse_uring_args_to_ring`): the `fuse_in_header` goes into the header's `in_out`; the first
//! in-arg (the per-op struct) into `op_in`, unless its size is 0; every further in-arg (names,
//! symlink target, write data, xattr value, ioctl input, extensions) back to back in the
//! payload buffer, their total in `ent_in_out.payload_sz`. Since 6.14 name-only ops (LOOKUP,
//! UNLINK, RMDIR, SYMLINK, REMOVEXATTR) carry a zero-size first arg, and READLINK, STATFS and
//! DESTROY have none: `op_in` then holds whatever the previous request left and is not read.
//! Names are NUL-terminated; nothing in the ring gives their length.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileHandle, TimeOrNow};

use super::abi::*;

/// The request header: `len`, `opcode`, `unique`, `nodeid`, the caller's `uid`, `gid` and
/// `pid`, and `total_extlen`.
pub type InHeader = fuse_in_header;

/// SETATTR's fields, each present when its `FATTR_*` bit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetAttrIn {
    /// The raw `FATTR_*` mask, for bits without a field here.
    pub valid: u32,
    /// Open file the change came through (ftruncate, fchmod, futimens).
    pub fh: Option<FileHandle>,
    /// New mode (type bits included as the kernel sends them).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New atime.
    pub atime: Option<TimeOrNow>,
    /// New mtime.
    pub mtime: Option<TimeOrNow>,
    /// New ctime (sent with writeback caching).
    pub ctime: Option<SystemTime>,
    /// Lock owner of the caller.
    pub lock_owner: Option<u64>,
    /// `FATTR_KILL_SUIDGID`: clear setuid/setgid as a write by the caller would.
    pub kill_suidgid: bool,
}

/// One request, borrowing names and data from the ring entry's buffers.
// One line per opcode reads as a table; rustfmt would spread it over 200 lines.
#[rustfmt::skip]
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// LOOKUP.
    Lookup { parent: u64, name: &'a OsStr },
    /// GETATTR; `fh` when it came through an open file.
    GetAttr { ino: u64, fh: Option<FileHandle> },
    /// SETATTR.
    SetAttr { ino: u64, attr: SetAttrIn },
    /// READLINK.
    ReadLink { ino: u64 },
    /// SYMLINK: `name` in `parent` pointing at `target`.
    Symlink { parent: u64, name: &'a OsStr, target: &'a OsStr },
    /// MKNOD.
    MkNod { parent: u64, name: &'a OsStr, mode: u32, rdev: u32, umask: u32 },
    /// MKDIR.
    MkDir { parent: u64, name: &'a OsStr, mode: u32, umask: u32 },
    /// UNLINK.
    Unlink { parent: u64, name: &'a OsStr },
    /// RMDIR.
    RmDir { parent: u64, name: &'a OsStr },
    /// RENAME (`flags` 0) and RENAME2.
    Rename { parent: u64, name: &'a OsStr, newparent: u64, newname: &'a OsStr, flags: u32 },
    /// LINK: a new name for `ino`.
    Link { ino: u64, newparent: u64, newname: &'a OsStr },
    /// OPEN; `open_flags` is `FUSE_OPEN_KILL_SUIDGID` or 0.
    Open { ino: u64, flags: i32, open_flags: u32 },
    /// READ; the reply is up to `size` bytes of data.
    Read { ino: u64, fh: FileHandle, offset: u64, size: u32, flags: i32, lock_owner: Option<u64> },
    /// WRITE; `write_flags` are `FUSE_WRITE_*`, `flags` the file's open flags.
    Write {
        ino: u64, fh: FileHandle, offset: u64, data: &'a [u8],
        write_flags: u32, flags: i32, lock_owner: Option<u64>,
    },
    /// STATFS.
    StatFs { ino: u64 },
    /// RELEASE; `release_flags` are `FUSE_RELEASE_*`.
    Release { ino: u64, fh: FileHandle, flags: i32, release_flags: u32, lock_owner: u64 },
    /// FSYNC.
    Fsync { ino: u64, fh: FileHandle, datasync: bool },
    /// SETXATTR; `setxattr_flags` is 0 unless `FUSE_SETXATTR_EXT` was negotiated.
    SetXattr { ino: u64, name: &'a OsStr, value: &'a [u8], flags: i32, setxattr_flags: u32 },
    /// GETXATTR; `size` 0 asks for the value's size.
    GetXattr { ino: u64, name: &'a OsStr, size: u32 },
    /// LISTXATTR; `size` 0 asks for the list's size.
    ListXattr { ino: u64, size: u32 },
    /// REMOVEXATTR.
    RemoveXattr { ino: u64, name: &'a OsStr },
    /// FLUSH.
    Flush { ino: u64, fh: FileHandle, lock_owner: u64 },
    /// GETLK.
    GetLk { ino: u64, fh: FileHandle, owner: u64, lock: fuse_file_lock },
    /// SETLK and SETLKW (`wait`); `flock` for a flock(2) lock.
    SetLk { ino: u64, fh: FileHandle, owner: u64, lock: fuse_file_lock, flock: bool, wait: bool },
    /// OPENDIR.
    OpenDir { ino: u64, flags: i32 },
    /// READDIR; the reply holds at most `size` bytes of entries after cookie `offset`.
    ReadDir { ino: u64, fh: FileHandle, offset: u64, size: u32 },
    /// RELEASEDIR.
    ReleaseDir { ino: u64, fh: FileHandle, flags: i32 },
    /// FSYNCDIR.
    FsyncDir { ino: u64, fh: FileHandle, datasync: bool },
    /// ACCESS.
    Access { ino: u64, mask: i32 },
    /// CREATE.
    Create { parent: u64, name: &'a OsStr, mode: u32, umask: u32, flags: i32, open_flags: u32 },
    /// READDIRPLUS; as READDIR, with a lookup per entry.
    ReadDirPlus { ino: u64, fh: FileHandle, offset: u64, size: u32 },
    /// FALLOCATE.
    Fallocate { ino: u64, fh: FileHandle, offset: u64, length: u64, mode: i32 },
    /// LSEEK.
    Lseek { ino: u64, fh: FileHandle, offset: i64, whence: i32 },
    /// COPY_FILE_RANGE; `wide` for COPY_FILE_RANGE_64, whose reply is a 64-bit count.
    CopyFileRange {
        ino_in: u64, fh_in: FileHandle, offset_in: u64,
        ino_out: u64, fh_out: FileHandle, offset_out: u64,
        len: u64, flags: u64, wide: bool,
    },
    /// IOCTL; the reply carries at most `out_size` bytes.
    Ioctl {
        ino: u64, fh: FileHandle, flags: u32, cmd: u32, arg: u64,
        in_data: &'a [u8], out_size: u32,
    },
    /// STATX; `sx_mask` are the `STATX_*` fields asked for.
    Statx { ino: u64, fh: Option<FileHandle>, sx_flags: u32, sx_mask: u32 },
    /// TMPFILE: an unnamed file in `parent` (the kernel's name arg, "/", is not kept).
    Tmpfile { parent: u64, mode: u32, umask: u32, flags: i32, open_flags: u32 },
    /// DESTROY (fuseblk only; an ordinary mount never sends it).
    Destroy,
    /// Any other opcode; answer `ENOSYS` (FORGET, BATCH_FORGET and INTERRUPT never come on
    /// the ring, and need no such answer).
    Unsupported(u32),
}

/// What the kernel negotiated that changes how requests are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// `FUSE_SETXATTR_EXT`: SETXATTR's first arg is 16 bytes, not 8.
    pub setxattr_ext: bool,
}

/// Why a request could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A part was shorter than what it must hold.
    Truncated {
        part: &'static str,
        needed: usize,
        available: usize,
    },
    /// A name in the payload has no terminating NUL.
    UnterminatedName,
}

/// A request that could not be decoded: never a panic, always this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The header, when it was readable: the request to answer with `EIO`.
    pub header: Option<InHeader>,
    /// What was wrong.
    pub kind: Malformed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self
            .header
            .and_then(|h| opcode_name(h.opcode))
            .unwrap_or("request");
        match self.kind {
            Malformed::Truncated {
                part,
                needed,
                available,
            } => {
                write!(
                    f,
                    "malformed {op}: {part} needs {needed} bytes, has {available}"
                )
            }
            Malformed::UnterminatedName => write!(f, "malformed {op}: name without NUL"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn truncated(part: &'static str, needed: usize, available: usize) -> Malformed {
    Malformed::Truncated {
        part,
        needed,
        available,
    }
}

/// Reads a whole struct from the start of `bytes`.
fn read<T: Wire>(part: &'static str, bytes: &[u8]) -> Result<T, Malformed> {
    T::read_at(bytes, 0).ok_or(truncated(part, T::SIZE, bytes.len()))
}

/// The in header of a ring entry (its `in_out` area, or at least its first 40 bytes).
pub fn decode_in_header(in_header: &[u8]) -> Result<InHeader, DecodeError> {
    read("in header", in_header).map_err(|kind| DecodeError { header: None, kind })
}

/// The kernel's half of a ring header (288 bytes): commit id and payload size.
pub fn decode_ent_in_out(ring_header: &[u8]) -> Result<fuse_uring_ent_in_out, DecodeError> {
    fuse_uring_ent_in_out::read_at(ring_header, RING_ENT_IN_OUT_OFFSET).ok_or(DecodeError {
        header: None,
        kind: truncated(
            "ring header",
            size_of::<fuse_uring_req_header>(),
            ring_header.len(),
        ),
    })
}

/// A whole ring entry: its 288-byte header buffer and its payload buffer, bounded by the
/// `payload_sz` the kernel wrote. Returns the commit id with the request.
pub fn decode_ring_entry<'a>(
    ring_header: &[u8],
    payload: &'a [u8],
    negotiated: Negotiated,
) -> Result<(u64, InHeader, Request<'a>), DecodeError> {
    let ent = decode_ent_in_out(ring_header)?;
    let header = decode_in_header(ring_header)?;
    let used = payload.get(..ent.payload_sz as usize).ok_or(DecodeError {
        header: Some(header),
        kind: truncated("payload buffer", ent.payload_sz as usize, payload.len()),
    })?;
    let op_in = ring_header
        .get(RING_OP_IN_OFFSET..RING_OP_IN_OFFSET + FUSE_URING_OP_IN_OUT_SZ)
        .unwrap_or_default();
    let (header, request) = decode_with(ring_header, op_in, used, negotiated)?;
    Ok((ent.commit_id, header, request))
}

/// One request, as negotiated by default (no `FUSE_SETXATTR_EXT`, which the daemon does not
/// ask for). `payload` is the first `payload_sz` bytes of the payload buffer.
pub fn decode<'a>(
    in_header: &[u8],
    op_in: &[u8],
    payload: &'a [u8],
) -> Result<(InHeader, Request<'a>), DecodeError> {
    decode_with(in_header, op_in, payload, Negotiated::default())
}

/// One request, for a connection that negotiated `negotiated`.
pub fn decode_with<'a>(
    in_header: &[u8],
    op_in: &[u8],
    payload: &'a [u8],
    negotiated: Negotiated,
) -> Result<(InHeader, Request<'a>), DecodeError> {
    let header = decode_in_header(in_header)?;
    // Extensions (security contexts, supplementary groups) are the last in-arg; the daemon
    // negotiates neither, but cut them off so they never read as a name or data.
    let ext = usize::from(header.total_extlen) * 8;
    let body = payload
        .len()
        .checked_sub(ext)
        .and_then(|len| payload.get(..len))
        .ok_or(DecodeError {
            header: Some(header),
            kind: truncated("payload", ext, payload.len()),
        })?;
    let request = request(&header, op_in, body, negotiated).map_err(|kind| DecodeError {
        header: Some(header),
        kind,
    })?;
    Ok((header, request))
}

/// The payload's next NUL-terminated name and what follows it.
fn name(payload: &[u8]) -> Result<(&OsStr, &[u8]), Malformed> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .ok_or(Malformed::UnterminatedName)?;
    let (name, rest) = payload.split_at(end);
    Ok((OsStr::from_bytes(name), rest.get(1..).unwrap_or_default()))
}

/// The payload's first `len` bytes.
fn data(payload: &[u8], len: u32) -> Result<&[u8], Malformed> {
    payload
        .get(..len as usize)
        .ok_or(truncated("payload", len as usize, payload.len()))
}

/// A time as the kernel sends it: signed seconds and nanoseconds below 10^9, so -1.5 s is
/// (-2, 500_000_000). (fuser 0.18 subtracts the nanoseconds of a negative time instead.)
fn wire_to_system_time(secs: u64, nsec: u32) -> SystemTime {
    let secs = secs as i64;
    let nanos = Duration::from_nanos(u64::from(nsec.min(999_999_999)));
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    base.and_then(|t| t.checked_add(nanos))
        .unwrap_or(UNIX_EPOCH)
}

fn set_time(valid: u32, set: u32, now: u32, secs: u64, nsec: u32) -> Option<TimeOrNow> {
    if valid & set == 0 {
        None
    } else if valid & now != 0 {
        Some(TimeOrNow::Now)
    } else {
        Some(TimeOrNow::SpecificTime(wire_to_system_time(secs, nsec)))
    }
}

fn setattr(a: &fuse_setattr_in) -> SetAttrIn {
    let v = a.valid;
    let when = |bit: u32| v & bit != 0;
    SetAttrIn {
        valid: v,
        fh: when(FATTR_FH).then_some(FileHandle(a.fh)),
        mode: when(FATTR_MODE).then_some(a.mode),
        uid: when(FATTR_UID).then_some(a.uid),
        gid: when(FATTR_GID).then_some(a.gid),
        size: when(FATTR_SIZE).then_some(a.size),
        atime: set_time(v, FATTR_ATIME, FATTR_ATIME_NOW, a.atime, a.atimensec),
        mtime: set_time(v, FATTR_MTIME, FATTR_MTIME_NOW, a.mtime, a.mtimensec),
        ctime: when(FATTR_CTIME).then(|| wire_to_system_time(a.ctime, a.ctimensec)),
        lock_owner: when(FATTR_LOCKOWNER).then_some(a.lock_owner),
        kill_suidgid: when(FATTR_KILL_SUIDGID),
    }
}

/// The decode table: which in-args each opcode has, and where.
// One arm per opcode, each fitting a line or three, reads as a table; rustfmt's narrow
// struct-literal width would spread it over 300 lines.
#[rustfmt::skip]
fn request<'a>(
    h: &InHeader,
    op_in: &[u8],
    payload: &'a [u8],
    negotiated: Negotiated,
) -> Result<Request<'a>, Malformed> {
    let ino = h.nodeid;
    // open(2) flags travel as u32 and are open(2)'s int: the cast keeps the bits.
    let oflags = |flags: u32| flags as i32;
    let fh = FileHandle;
    Ok(match h.opcode {
        // Name-only ops: zero-size first arg since 6.14 (op_in is stale), the name in payload.
        FUSE_LOOKUP => Request::Lookup { parent: ino, name: name(payload)?.0 },
        FUSE_UNLINK => Request::Unlink { parent: ino, name: name(payload)?.0 },
        FUSE_RMDIR => Request::RmDir { parent: ino, name: name(payload)?.0 },
        FUSE_REMOVEXATTR => Request::RemoveXattr { ino, name: name(payload)?.0 },
        FUSE_SYMLINK => {
            let (name, rest) = name(payload)?;
            Request::Symlink { parent: ino, name, target: self::name(rest)?.0 }
        }
        // No in-args at all: op_in is stale.
        FUSE_READLINK => Request::ReadLink { ino },
        FUSE_STATFS => Request::StatFs { ino },
        FUSE_DESTROY => Request::Destroy,
        // Everything else: the per-op struct in op_in, further args in payload.
        FUSE_GETATTR => {
            let a: fuse_getattr_in = read("op_in", op_in)?;
            let fh = (a.getattr_flags & FUSE_GETATTR_FH != 0).then_some(fh(a.fh));
            Request::GetAttr { ino, fh }
        }
        FUSE_SETATTR => Request::SetAttr { ino, attr: setattr(&read("op_in", op_in)?) },
        FUSE_MKNOD => {
            let a: fuse_mknod_in = read("op_in", op_in)?;
            let name = name(payload)?.0;
            Request::MkNod { parent: ino, name, mode: a.mode, rdev: a.rdev, umask: a.umask }
        }
        FUSE_MKDIR => {
            let a: fuse_mkdir_in = read("op_in", op_in)?;
            Request::MkDir { parent: ino, name: name(payload)?.0, mode: a.mode, umask: a.umask }
        }
        FUSE_RENAME | FUSE_RENAME2 => {
            let (newparent, flags) = if h.opcode == FUSE_RENAME {
                (read::<fuse_rename_in>("op_in", op_in)?.newdir, 0)
            } else {
                let a: fuse_rename2_in = read("op_in", op_in)?;
                (a.newdir, a.flags)
            };
            let (name, rest) = name(payload)?;
            Request::Rename { parent: ino, name, newparent, newname: self::name(rest)?.0, flags }
        }
        FUSE_LINK => {
            let a: fuse_link_in = read("op_in", op_in)?;
            Request::Link { ino: a.oldnodeid, newparent: ino, newname: name(payload)?.0 }
        }
        FUSE_OPEN => {
            let a: fuse_open_in = read("op_in", op_in)?;
            Request::Open { ino, flags: oflags(a.flags), open_flags: a.open_flags }
        }
        FUSE_OPENDIR => {
            let a: fuse_open_in = read("op_in", op_in)?;
            Request::OpenDir { ino, flags: oflags(a.flags) }
        }
        FUSE_READ => {
            let a: fuse_read_in = read("op_in", op_in)?;
            let lock_owner = (a.read_flags & FUSE_READ_LOCKOWNER != 0).then_some(a.lock_owner);
            let (offset, size, flags) = (a.offset, a.size, oflags(a.flags));
            Request::Read { ino, fh: fh(a.fh), offset, size, flags, lock_owner }
        }
        FUSE_READDIR | FUSE_READDIRPLUS => {
            let a: fuse_read_in = read("op_in", op_in)?;
            let (fh, offset, size) = (fh(a.fh), a.offset, a.size);
            if h.opcode == FUSE_READDIR {
                Request::ReadDir { ino, fh, offset, size }
            } else {
                Request::ReadDirPlus { ino, fh, offset, size }
            }
        }
        FUSE_WRITE => {
            let a: fuse_write_in = read("op_in", op_in)?;
            let lock_owner = (a.write_flags & FUSE_WRITE_LOCKOWNER != 0).then_some(a.lock_owner);
            let (offset, data, flags) = (a.offset, data(payload, a.size)?, oflags(a.flags));
            let (fh, write_flags) = (fh(a.fh), a.write_flags);
            Request::Write { ino, fh, offset, data, write_flags, flags, lock_owner }
        }
        FUSE_RELEASE => {
            let a: fuse_release_in = read("op_in", op_in)?;
            let (fh, flags, release_flags) = (fh(a.fh), oflags(a.flags), a.release_flags);
            Request::Release { ino, fh, flags, release_flags, lock_owner: a.lock_owner }
        }
        FUSE_RELEASEDIR => {
            let a: fuse_release_in = read("op_in", op_in)?;
            Request::ReleaseDir { ino, fh: fh(a.fh), flags: oflags(a.flags) }
        }
        FUSE_FSYNC | FUSE_FSYNCDIR => {
            let a: fuse_fsync_in = read("op_in", op_in)?;
            let (fh, datasync) = (fh(a.fh), a.fsync_flags & FUSE_FSYNC_FDATASYNC != 0);
            if h.opcode == FUSE_FSYNC {
                Request::Fsync { ino, fh, datasync }
            } else {
                Request::FsyncDir { ino, fh, datasync }
            }
        }
        FUSE_SETXATTR => {
            // Without FUSE_SETXATTR_EXT the kernel copies only 8 bytes into op_in: the rest
            // is stale and must not be read as setxattr_flags.
            let (size, flags, setxattr_flags) = if negotiated.setxattr_ext {
                let a: fuse_setxattr_in = read("op_in", op_in)?;
                (a.size, a.flags, a.setxattr_flags)
            } else {
                let legacy = op_in.get(..FUSE_COMPAT_SETXATTR_IN_SIZE).unwrap_or(op_in);
                let a: fuse_getxattr_in = read("op_in", legacy)?; // the same two u32s
                (a.size, a.padding, 0)
            };
            let (name, rest) = name(payload)?;
            let value = data(rest, size)?;
            Request::SetXattr { ino, name, value, flags: flags as i32, setxattr_flags }
        }
        FUSE_GETXATTR => {
            let a: fuse_getxattr_in = read("op_in", op_in)?;
            Request::GetXattr { ino, name: name(payload)?.0, size: a.size }
        }
        FUSE_LISTXATTR => {
            let a: fuse_getxattr_in = read("op_in", op_in)?;
            Request::ListXattr { ino, size: a.size }
        }
        FUSE_FLUSH => {
            let a: fuse_flush_in = read("op_in", op_in)?;
            Request::Flush { ino, fh: fh(a.fh), lock_owner: a.lock_owner }
        }
        FUSE_GETLK => {
            let a: fuse_lk_in = read("op_in", op_in)?;
            Request::GetLk { ino, fh: fh(a.fh), owner: a.owner, lock: a.lk }
        }
        FUSE_SETLK | FUSE_SETLKW => {
            let a: fuse_lk_in = read("op_in", op_in)?;
            let flock = a.lk_flags & FUSE_LK_FLOCK != 0;
            let wait = h.opcode == FUSE_SETLKW;
            Request::SetLk { ino, fh: fh(a.fh), owner: a.owner, lock: a.lk, flock, wait }
        }
        FUSE_ACCESS => {
            let a: fuse_access_in = read("op_in", op_in)?;
            Request::Access { ino, mask: a.mask as i32 }
        }
        FUSE_CREATE | FUSE_TMPFILE => {
            let a: fuse_create_in = read("op_in", op_in)?;
            let (mode, umask, flags, open_flags) = (a.mode, a.umask, oflags(a.flags), a.open_flags);
            if h.opcode == FUSE_CREATE {
                let name = name(payload)?.0;
                Request::Create { parent: ino, name, mode, umask, flags, open_flags }
            } else {
                Request::Tmpfile { parent: ino, mode, umask, flags, open_flags }
            }
        }
        FUSE_FALLOCATE => {
            let a: fuse_fallocate_in = read("op_in", op_in)?;
            let (offset, length, mode) = (a.offset, a.length, a.mode as i32);
            Request::Fallocate { ino, fh: fh(a.fh), offset, length, mode }
        }
        FUSE_LSEEK => {
            let a: fuse_lseek_in = read("op_in", op_in)?;
            Request::Lseek { ino, fh: fh(a.fh), offset: a.offset as i64, whence: a.whence as i32 }
        }
        FUSE_COPY_FILE_RANGE | FUSE_COPY_FILE_RANGE_64 => {
            let a: fuse_copy_file_range_in = read("op_in", op_in)?;
            Request::CopyFileRange {
                ino_in: ino, fh_in: fh(a.fh_in), offset_in: a.off_in,
                ino_out: a.nodeid_out, fh_out: fh(a.fh_out), offset_out: a.off_out,
                len: a.len, flags: a.flags, wide: h.opcode == FUSE_COPY_FILE_RANGE_64,
            }
        }
        FUSE_IOCTL => {
            let a: fuse_ioctl_in = read("op_in", op_in)?;
            let (flags, cmd, arg, out_size) = (a.flags, a.cmd, a.arg, a.out_size);
            let (fh, in_data) = (fh(a.fh), data(payload, a.in_size)?);
            Request::Ioctl { ino, fh, flags, cmd, arg, in_data, out_size }
        }
        FUSE_STATX => {
            let a: fuse_statx_in = read("op_in", op_in)?;
            let fh = (a.getattr_flags & FUSE_GETATTR_FH != 0).then_some(fh(a.fh));
            Request::Statx { ino, fh, sx_flags: a.sx_flags, sx_mask: a.sx_mask }
        }
        other => Request::Unsupported(other),
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
