//! Unit tests of `encode.rs` (a child module: they see its private items).
use fuser::INodeNo;

use super::*;

/// Expected bytes, built field by field.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
}

fn file_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0x1122_3344_5566_7788),
        size: 0x1000,
        blocks: 8,
        atime: UNIX_EPOCH + Duration::from_millis(1250),
        mtime: UNIX_EPOCH - Duration::from_millis(1500),
        ctime: UNIX_EPOCH + Duration::from_secs(3),
        crtime: UNIX_EPOCH + Duration::from_secs(4), // not on Linux's wire
        kind: FileType::RegularFile,
        perm: 0o4755,
        nlink: 2,
        uid: 1000,
        gid: 100,
        rdev: 0x801,
        blksize: 4096,
        flags: 0xdead, // fuser sends 0 in its place on Linux
    }
}

/// What fuser 0.18's `fuse_attr_from_attr` makes of [`file_attr`], computed by hand.
fn attr_bytes() -> Bytes {
    Bytes::default()
        .u64(0x1122_3344_5566_7788)
        .u64(0x1000)
        .u64(8)
        .u64(1) // atime: 1.25 s
        .u64(-2i64 as u64) // mtime: -1.5 s is -2 s + 0.5 s
        .u64(3)
        .u32(250_000_000)
        .u32(500_000_000)
        .u32(0)
        .u32(0o104755) // S_IFREG | perm
        .u32(2)
        .u32(1000)
        .u32(100)
        .u32(0x801)
        .u32(4096)
        .u32(0)
}

fn entry_bytes(nodeid: u64) -> Bytes {
    let head = Bytes::default().u64(nodeid).u64(7).u64(1).u64(2);
    head.u32(500).u32(0).raw(&attr_bytes().0)
}

const TTL_1: Duration = Duration::from_nanos(1_000_000_500);

#[test]
fn attributes_are_what_fuser_sends() {
    let mut buf = [0xffu8; 88];
    fuse_attr_of(&file_attr())
        .write_at(&mut buf, 0)
        .expect("fits");
    assert_eq!(buf.to_vec(), attr_bytes().0);
}

#[test]
fn entry_attr_and_negative_entry() {
    let attr = file_attr();
    let mut buf = [0xffu8; 256];
    let entry = EntryOut::new(&attr, 7, TTL_1, Duration::from_secs(2));
    assert_eq!(encode_entry(&mut buf, &entry), Ok(128));
    assert_eq!(buf[..128].to_vec(), entry_bytes(0x1122_3344_5566_7788).0);

    assert_eq!(encode_negative_entry(&mut buf, TTL_1), Ok(128));
    let negative = Bytes::default().u64(0).u64(0).u64(1).u64(0).u32(500);
    assert_eq!(buf[..128].to_vec(), negative.raw(&[0; 92]).0);

    assert_eq!(encode_attr(&mut buf, &attr, TTL_1), Ok(104));
    let out = Bytes::default().u64(1).u32(500).u32(0).raw(&attr_bytes().0);
    assert_eq!(buf[..104].to_vec(), out.0);

    let short = encode_entry(&mut buf[..100], &entry);
    assert_eq!(
        short,
        Err(TooSmall {
            needed: 128,
            available: 100
        })
    );
}

#[test]
fn open_and_create() {
    let attr = file_attr();
    let open = OpenOut {
        fh: FileHandle(9),
        open_flags: FOPEN_KEEP_CACHE,
        backing_id: 3,
    };
    let open_bytes = Bytes::default().u64(9).u32(FOPEN_KEEP_CACHE).u32(3).0;
    let mut buf = [0xffu8; 256];
    assert_eq!(encode_open(&mut buf, &open), Ok(16));
    assert_eq!(buf[..16].to_vec(), open_bytes);
    let entry = EntryOut {
        nodeid: 42,
        ..EntryOut::new(&attr, 7, TTL_1, Duration::from_secs(2))
    };
    assert_eq!(encode_create(&mut buf, &entry, &open), Ok(144));
    assert_eq!(buf[..144].to_vec(), entry_bytes(42).raw(&open_bytes).0);
}

#[test]
fn dirents_are_padded_to_8_bytes() {
    let mut buf = [0xffu8; 4096];
    let mut dir = DirentWriter::new(&mut buf, 4096);
    assert!(dir.push(5, 1, FileType::Directory, b"a"));
    assert!(dir.push(6, 2, FileType::Symlink, b"hello_world"));
    assert_eq!(dir.len(), 32 + 40);
    let first = Bytes::default()
        .u64(5)
        .u64(1)
        .u32(1)
        .u32(libc::DT_DIR.into());
    let second = Bytes::default()
        .u64(6)
        .u64(2)
        .u32(11)
        .u32(libc::DT_LNK.into());
    let want = first
        .raw(b"a\0\0\0\0\0\0\0")
        .raw(&second.0)
        .raw(b"hello_world\0\0\0\0\0");
    assert_eq!(buf[..72].to_vec(), want.0);
    assert_eq!(buf[72], 0xff, "nothing written past the entries");
}

#[test]
fn dirent_writer_stops_at_the_request_size_and_skips_bad_names() {
    let mut buf = [0u8; 4096];
    let mut dir = DirentWriter::new(&mut buf, 40);
    assert!(dir.push(5, 1, FileType::RegularFile, b"a"));
    assert!(!dir.push(6, 2, FileType::RegularFile, b"b"), "32 + 32 > 40");
    assert!(dir.push(7, 3, FileType::RegularFile, b""));
    assert!(dir.push(7, 3, FileType::RegularFile, b"a/b"));
    assert_eq!((dir.len(), dir.skipped()), (32, 2));
}

#[test]
fn direntplus_entries_with_and_without_attributes() {
    let attr = file_attr();
    let entry = EntryOut::new(&attr, 7, TTL_1, Duration::from_secs(2));
    let mut buf = [0xffu8; 4096];
    let mut dir = DirentPlusWriter::new(&mut buf, 4096);
    assert!(dir.push(&entry, 1, b"abc"));
    assert!(dir.push_unattributed(99, 2, FileType::Directory, b"dir"));
    assert_eq!(dir.len(), 160 + 160);
    let dirent = |ino, off, kind: u8| Bytes::default().u64(ino).u64(off).u32(3).u32(kind.into());
    let first = entry_bytes(0x1122_3344_5566_7788)
        .raw(&dirent(0x1122_3344_5566_7788, 1, libc::DT_REG).0)
        .raw(b"abc\0\0\0\0\0");
    assert_eq!(buf[..160].to_vec(), first.0);
    let second = Bytes::default()
        .raw(&[0; 128])
        .raw(&dirent(99, 2, libc::DT_DIR).0);
    assert_eq!(buf[160..320].to_vec(), second.raw(b"dir\0\0\0\0\0").0);
}

#[test]
fn direntplus_writer_reports_full() {
    let attr = file_attr();
    let entry = EntryOut::new(&attr, 7, TTL_1, TTL_1);
    let mut buf = [0xffu8; 4096];
    let mut dir = DirentPlusWriter::new(&mut buf, 300);
    assert!(dir.push(&entry, 1, b"first"));
    assert!(!dir.push(&entry, 2, b"second"), "160 + 160 > 300");
    assert!(!dir.push_unattributed(3, 3, FileType::RegularFile, b"x"));
    assert_eq!(dir.len(), 160);
    assert!(
        buf[160..].iter().all(|&b| b == 0xff),
        "a full writer writes nothing"
    );
}

#[test]
fn ring_reply_header_and_payload_size() {
    let mut ring = [0xffu8; 288];
    commit_reply(&mut ring, 77, 0, 128).expect("fits");
    assert_eq!(
        ring[..16].to_vec(),
        Bytes::default().u32(144).u32(0).u64(77).0
    );
    assert_eq!(ring[272..276], 128u32.to_ne_bytes());
    commit_reply(&mut ring, 78, -libc::ENOENT, 128).expect("fits");
    let enoent = Bytes::default().u32(16).u32(-libc::ENOENT as u32).u64(78);
    assert_eq!(ring[..16].to_vec(), enoent.0);
    assert_eq!(ring[272..276], 0u32.to_ne_bytes(), "an error has no body");
    commit_reply(&mut ring, 79, libc::ENOENT, 0).expect("fits");
    assert_eq!(
        ring[4..8],
        (-libc::EIO).to_ne_bytes(),
        "a positive errno is a bug: EIO"
    );
    assert_eq!(
        ring[256..272],
        [0xff; 16],
        "flags and commit_id are the kernel's"
    );
}

#[test]
fn uring_cmd_area() {
    let area = uring_cmd(0x0102_0304_0506_0708, 3);
    assert_eq!(area[..8], [0; 8]);
    assert_eq!(area[8..16], 0x0102_0304_0506_0708u64.to_ne_bytes());
    assert_eq!(area[16..18], 3u16.to_ne_bytes());
    assert!(area[18..].iter().all(|&b| b == 0));
}

#[test]
fn small_replies() {
    let mut buf = [0xffu8; 64];
    assert_eq!(encode_write(&mut buf, 5), Ok(8));
    assert_eq!(buf[..8].to_vec(), Bytes::default().u32(5).u32(0).0);
    assert_eq!(encode_copied(&mut buf, 1 << 33), Ok(8));
    assert_eq!(buf[..8], (1u64 << 33).to_ne_bytes());
    assert_eq!(encode_lseek(&mut buf, 4096), Ok(8));
    assert_eq!(encode_xattr_size(&mut buf, 12), Ok(8));
    assert_eq!(encode_ioctl(&mut buf, -1, b"abc"), Ok(19));
    let ioctl = Bytes::default()
        .u32(-1i32 as u32)
        .u32(0)
        .u32(0)
        .u32(0)
        .raw(b"abc");
    assert_eq!(buf[..19].to_vec(), ioctl.0);
    assert_eq!(
        encode_data(&mut buf[..2], b"abc"),
        Err(TooSmall {
            needed: 3,
            available: 2
        })
    );
    assert_eq!(encode_empty(), 0);
}
