//! Unit tests of `decode.rs` (a child module: they see its private items).
use super::*;

const HEADER: InHeader = InHeader {
    len: 0,
    opcode: 0,
    unique: 77,
    nodeid: 1,
    uid: 1000,
    gid: 100,
    pid: 42,
    total_extlen: 0,
    padding: 0,
};

/// `value` in a 128-byte area, the rest stale as the kernel leaves `op_in`.
fn area<T: Wire>(value: &T) -> Vec<u8> {
    let mut area = vec![0xaa; FUSE_URING_OP_IN_OUT_SZ];
    value.write_at(&mut area, 0).expect("fits");
    area
}

fn header(opcode: u32) -> Vec<u8> {
    area(&InHeader { opcode, ..HEADER })
}

fn ok<'a>(opcode: u32, op_in: &[u8], payload: &'a [u8]) -> Request<'a> {
    decode(&header(opcode), op_in, payload).expect("decodes").1
}

fn err(opcode: u32, op_in: &[u8], payload: &[u8]) -> Malformed {
    let e = decode(&header(opcode), op_in, payload).expect_err("malformed");
    assert_eq!(e.header.map(|h| h.unique), Some(77), "kept for the reply");
    e.kind
}

fn os(name: &str) -> &OsStr {
    OsStr::new(name)
}

#[test]
fn lookup_reads_the_name_and_not_the_stale_op_in() {
    let stale = vec![0xaa; FUSE_URING_OP_IN_OUT_SZ];
    let (h, req) = decode(&header(FUSE_LOOKUP), &stale, b"hello\0").expect("decodes");
    assert_eq!(
        h,
        InHeader {
            opcode: FUSE_LOOKUP,
            ..HEADER
        }
    );
    assert_eq!(
        req,
        Request::Lookup {
            parent: 1,
            name: os("hello")
        }
    );
}

#[test]
fn write_takes_size_bytes_of_payload() {
    let w = fuse_write_in {
        fh: 3,
        offset: 4096,
        size: 5,
        write_flags: FUSE_WRITE_LOCKOWNER | FUSE_WRITE_KILL_SUIDGID,
        lock_owner: 9,
        flags: libc::O_WRONLY as u32,
        padding: 0,
    };
    let want = Request::Write {
        ino: 1,
        fh: FileHandle(3),
        offset: 4096,
        data: b"abcde",
        write_flags: FUSE_WRITE_LOCKOWNER | FUSE_WRITE_KILL_SUIDGID,
        flags: libc::O_WRONLY,
        lock_owner: Some(9),
    };
    assert_eq!(ok(FUSE_WRITE, &area(&w), b"abcdeXYZ"), want);
}

#[test]
fn setattr_keeps_only_valid_fields() {
    let a = fuse_setattr_in {
        valid: FATTR_MODE
            | FATTR_SIZE
            | FATTR_FH
            | FATTR_KILL_SUIDGID
            | FATTR_ATIME
            | FATTR_ATIME_NOW
            | FATTR_MTIME,
        fh: 5,
        size: 10,
        mode: 0o100600,
        uid: 1234, // FATTR_UID not set: ignored
        mtime: -2i64 as u64,
        mtimensec: 500_000_000,
        ..Default::default()
    };
    let Request::SetAttr { ino: 1, attr } = ok(FUSE_SETATTR, &area(&a), b"") else {
        panic!("not a setattr");
    };
    assert_eq!(attr.fh, Some(FileHandle(5)));
    assert_eq!(
        (attr.mode, attr.size, attr.uid),
        (Some(0o100600), Some(10), None)
    );
    assert_eq!(attr.atime, Some(TimeOrNow::Now));
    let before = UNIX_EPOCH - Duration::from_millis(1500);
    assert_eq!(attr.mtime, Some(TimeOrNow::SpecificTime(before)));
    assert!(attr.kill_suidgid);
}

#[test]
fn rename_and_rename2_read_two_names() {
    let want = |flags| Request::Rename {
        parent: 1,
        name: os("a"),
        newparent: 5,
        newname: os("bc"),
        flags,
    };
    let flags = libc::RENAME_NOREPLACE;
    let r2 = fuse_rename2_in {
        newdir: 5,
        flags,
        padding: 0,
    };
    assert_eq!(ok(FUSE_RENAME2, &area(&r2), b"a\0bc\0"), want(flags));
    let r = fuse_rename_in { newdir: 5 };
    assert_eq!(ok(FUSE_RENAME, &area(&r), b"a\0bc\0"), want(0));
}

#[test]
fn create_reads_its_struct_and_name() {
    let c = fuse_create_in {
        flags: 0o1101,
        mode: 0o100644,
        umask: 0o022,
        open_flags: FUSE_OPEN_KILL_SUIDGID,
    };
    let want = Request::Create {
        parent: 1,
        name: os("new"),
        mode: 0o100644,
        umask: 0o022,
        flags: 0o1101,
        open_flags: FUSE_OPEN_KILL_SUIDGID,
    };
    assert_eq!(ok(FUSE_CREATE, &area(&c), b"new\0"), want);
}

#[test]
fn setxattr_legacy_form_ignores_the_stale_half() {
    let flags = libc::XATTR_CREATE as u32;
    let want = |setxattr_flags| Request::SetXattr {
        ino: 1,
        name: os("user.x"),
        value: b"VAL",
        flags: libc::XATTR_CREATE,
        setxattr_flags,
    };
    // The 8-byte form is two u32s, size and flags; the 0xaa after them is stale.
    let legacy = fuse_getxattr_in {
        size: 3,
        padding: flags,
    };
    assert_eq!(
        ok(FUSE_SETXATTR, &area(&legacy), b"user.x\0VALrest"),
        want(0)
    );
    let setxattr_flags = FUSE_SETXATTR_ACL_KILL_SGID;
    let ext = fuse_setxattr_in {
        size: 3,
        flags,
        setxattr_flags,
        padding: 0,
    };
    let ext_on = Negotiated { setxattr_ext: true };
    let h = header(FUSE_SETXATTR);
    let (_, req) = decode_with(&h, &area(&ext), b"user.x\0VAL", ext_on).expect("decodes");
    assert_eq!(req, want(setxattr_flags));
}

#[test]
fn ring_entry_is_bounded_by_payload_sz() {
    let mut ring = vec![0u8; size_of::<fuse_uring_req_header>()];
    let h = InHeader {
        opcode: FUSE_UNLINK,
        unique: 9,
        ..HEADER
    };
    h.write_at(&mut ring, RING_IN_OUT_OFFSET).expect("fits");
    let ent = fuse_uring_ent_in_out {
        commit_id: 9,
        payload_sz: 2,
        ..Default::default()
    };
    ent.write_at(&mut ring, RING_ENT_IN_OUT_OFFSET)
        .expect("fits");
    let payload = b"x\0stale name\0";
    let entry = decode_ring_entry(&ring, payload, Negotiated::default()).expect("decodes");
    assert_eq!(
        entry,
        (
            9,
            h,
            Request::Unlink {
                parent: 1,
                name: os("x")
            }
        )
    );
    let ent = fuse_uring_ent_in_out {
        payload_sz: 99,
        ..ent
    };
    ent.write_at(&mut ring, RING_ENT_IN_OUT_OFFSET)
        .expect("fits");
    assert!(decode_ring_entry(&ring, payload, Negotiated::default()).is_err());
}

#[test]
fn malformed_requests_are_errors() {
    let short = [0u8; 8];
    let op_in = |needed| Malformed::Truncated {
        part: "op_in",
        needed,
        available: 8,
    };
    assert_eq!(err(FUSE_GETATTR, &short, b""), op_in(16));
    assert_eq!(err(FUSE_WRITE, &short, b"data"), op_in(40));
    assert_eq!(
        err(FUSE_LOOKUP, &[], b"no-nul"),
        Malformed::UnterminatedName
    );
    assert_eq!(
        err(FUSE_SYMLINK, &[], b"name\0target"),
        Malformed::UnterminatedName
    );
    let mkdir = fuse_mkdir_in {
        mode: 0o755,
        umask: 0,
    };
    assert_eq!(
        err(FUSE_MKDIR, &area(&mkdir), b""),
        Malformed::UnterminatedName
    );
    let w = fuse_write_in {
        size: 10,
        ..Default::default()
    };
    let payload = Malformed::Truncated {
        part: "payload",
        needed: 10,
        available: 4,
    };
    assert_eq!(err(FUSE_WRITE, &area(&w), b"abcd"), payload);
    let x = fuse_getxattr_in {
        size: 4,
        padding: 0,
    };
    let value = Malformed::Truncated {
        part: "payload",
        needed: 4,
        available: 2,
    };
    assert_eq!(err(FUSE_SETXATTR, &area(&x), b"n\0ab"), value);
    let e = decode(&[0u8; 39], &[], b"").expect_err("short header");
    assert_eq!(e.header, None);
    let ext = area(&InHeader {
        opcode: FUSE_LOOKUP,
        total_extlen: 1,
        ..HEADER
    });
    assert!(
        decode(&ext, &[], b"a\0").is_err(),
        "8 bytes of extensions, 2 of payload"
    );
}

#[test]
fn lock_requests_keep_owner_range_and_kind() {
    let lk = fuse_file_lock {
        start: 10,
        end: u64::MAX >> 1,
        r#type: libc::F_WRLCK as u32,
        pid: 4242,
    };
    let a = fuse_lk_in {
        fh: 5,
        owner: 0xfeed,
        lk,
        lk_flags: FUSE_LK_FLOCK,
        padding: 0,
    };
    let expected = Request::SetLk {
        ino: 1,
        fh: FileHandle(5),
        owner: 0xfeed,
        lock: lk,
        flock: true,
        wait: true,
    };
    assert_eq!(ok(FUSE_SETLKW, &area(&a), b""), expected);
    let posix = fuse_lk_in { lk_flags: 0, ..a };
    assert!(matches!(
        ok(FUSE_SETLK, &area(&posix), b""),
        Request::SetLk {
            flock: false,
            wait: false,
            ..
        }
    ));
    let get = ok(FUSE_GETLK, &area(&posix), b"");
    assert_eq!(
        get,
        Request::GetLk {
            ino: 1,
            fh: FileHandle(5),
            owner: 0xfeed,
            lock: lk
        }
    );
}

#[test]
fn other_opcodes_are_unsupported() {
    assert_eq!(ok(FUSE_BMAP, &[], b""), Request::Unsupported(FUSE_BMAP));
    assert_eq!(ok(FUSE_SYNCFS, &[], b""), Request::Unsupported(FUSE_SYNCFS));
    assert_eq!(ok(FUSE_STATFS, &[], b""), Request::StatFs { ino: 1 });
}
