//! What a ring request's reply carries, and its encoding into the entry's payload.

use std::time::Duration;

use fuser::FileAttr;
use log::warn;

use crate::fs::Ttl;
use crate::fs::file::Opened;
use crate::fs::passthrough::BackingFile;
use crate::fs::xattr::XattrReply;
use crate::transport::uring::abi::{self, fuse_kstatfs};
use crate::transport::uring::encode::{self, EntryOut, OpenOut};

use super::RingDispatch;

/// What a request's reply carries, owned: made while the request still borrows the payload,
/// encoded into it afterwards.
pub(super) enum Reply {
    Empty,
    Entry(FileAttr, u64, Duration),
    Negative(Duration),
    Attr(FileAttr, Duration),
    Open(Opened),
    Create(FileAttr, u64, Duration, Opened),
    Written(u32),
    Bytes(Vec<u8>),
    XattrSize(u32),
    StatFs(fuse_kstatfs),
    Offset(i64),
    Ioctl(Vec<u8>),
    Lock(abi::fuse_file_lock),
}

impl RingDispatch {
    /// A new entry's reply, with its entry TTL.
    pub(super) fn entry(&self, attr: FileAttr, generation: u64) -> Reply {
        let ttl = self.core.ttl_of(&attr, Ttl::Entry);
        Reply::Entry(attr, generation, ttl)
    }

    /// An attributes reply, with its attribute TTL.
    pub(super) fn attr(&self, attr: FileAttr) -> Reply {
        let ttl = self.core.ttl_of(&attr, Ttl::Attr);
        Reply::Attr(attr, ttl)
    }

    /// Writes `reply` at the start of `payload`: its length, or `ERANGE`-like failure when it
    /// does not fit (it always does: the kernel sizes the payload for its largest reply).
    pub(super) fn encode(&self, reply: Reply, payload: &mut [u8]) -> Result<usize, i32> {
        let res = match reply {
            Reply::Empty => Ok(encode::encode_empty()),
            Reply::Entry(attr, generation, ttl) => {
                encode::encode_entry(payload, &EntryOut::new(&attr, generation, ttl, ttl))
            }
            Reply::Negative(ttl) => encode::encode_negative_entry(payload, ttl),
            Reply::Attr(attr, ttl) => encode::encode_attr(payload, &attr, ttl),
            Reply::Open(opened) => encode::encode_open(payload, &open_out(&opened)),
            Reply::Create(attr, generation, ttl, opened) => encode::encode_create(
                payload,
                &EntryOut::new(&attr, generation, ttl, ttl),
                &open_out(&opened),
            ),
            Reply::Written(n) => encode::encode_write(payload, n),
            Reply::Bytes(data) => encode::encode_data(payload, &data),
            Reply::XattrSize(n) => encode::encode_xattr_size(payload, n),
            Reply::StatFs(st) => encode::encode_statfs(payload, &st),
            Reply::Offset(off) => encode::encode_lseek(payload, off),
            Reply::Ioctl(data) => encode::encode_ioctl(payload, 0, &data),
            Reply::Lock(lock) => encode::encode_lock(payload, &lock),
        };
        res.map_err(|err| {
            warn!("ring reply does not fit: {err}");
            libc::EIO
        })
    }
}

fn open_out(opened: &Opened) -> OpenOut {
    let (backing_id, passthrough_flag) = match opened.backing.as_deref() {
        Some(BackingFile::Ring { id, .. }) => {
            (i32::try_from(*id).unwrap_or(0), abi::FOPEN_PASSTHROUGH)
        }
        _ => (0, 0),
    };
    OpenOut {
        fh: opened.fh,
        open_flags: opened.flags.bits() | passthrough_flag,
        backing_id,
    }
}

/// A getxattr or listxattr reply: the size asked for, or the data.
pub(super) fn xattr(reply: XattrReply) -> Reply {
    match reply {
        XattrReply::Size(n) => Reply::XattrSize(n),
        XattrReply::Data(data) => Reply::Bytes(data),
    }
}

/// A statfs reply from the backing fs's numbers, narrowed to the wire's 32-bit fields.
pub(super) fn statfs(st: &libc::statvfs) -> Reply {
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Reply::StatFs(fuse_kstatfs {
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
        bsize: narrow(st.f_bsize),
        namelen: narrow(st.f_namemax),
        frsize: narrow(st.f_frsize),
        ..fuse_kstatfs::default()
    })
}
