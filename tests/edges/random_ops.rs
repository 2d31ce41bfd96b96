//! A seeded random mix of the above and ordinary operations.

use super::*;

/// The seed of [`random_ops`]; `EDGES_SEED=<n>` (decimal or 0x-hex) replays another.
const SEED: u64 = 0x0BAD_1A9E_5EED_0012;

/// How many of [`random_ops`]'s names come first and are drawn most often.
const COMMON_NAMES: usize = 7;

/// How many operations one run applies.
const RANDOM_OPS: usize = 400;

/// One random operation. Paths are relative to the side's root.
#[derive(Debug, Clone)]
enum Op {
    Open {
        path: String,
        flags: i32,
        mode: u32,
    },
    Write {
        path: String,
        off: i64,
        len: usize,
        append: bool,
    },
    Read {
        path: String,
        off: i64,
        len: usize,
    },
    Truncate {
        path: String,
        len: i64,
    },
    Fallocate {
        path: String,
        mode: i32,
        off: i64,
        len: i64,
    },
    Seek {
        path: String,
        off: i64,
        whence: i32,
    },
    Copy {
        from: String,
        to: String,
        src: i64,
        dst: i64,
        len: usize,
    },
    Rename {
        from: String,
        to: String,
        flags: u32,
    },
    Link {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        path: String,
    },
    Unlink {
        path: String,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    Rmdir {
        path: String,
    },
    SetXattr {
        path: String,
        name: String,
        len: usize,
        flags: i32,
    },
    GetXattr {
        path: String,
        name: String,
        cap: usize,
    },
    RemoveXattr {
        path: String,
        name: String,
    },
}

/// Draws operations. Huge offsets are only ones that fail or change no size (a file of ext4's
/// largest size would make comparing the trees read 16 TiB).
struct Gen {
    rng: Rng,
    max: i64,
    names: Vec<String>,
}

impl Gen {
    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.rng.below(from.len() as u64) as usize].clone()
    }

    /// One of the common names mostly, one of the edge ones (long, missing parent) otherwise.
    fn path(&mut self) -> String {
        let names = self.names.clone();
        if self.rng.below(10) < 7 {
            self.pick(&names[..COMMON_NAMES])
        } else {
            self.pick(&names)
        }
    }

    /// A small offset most of the time, an edge one otherwise.
    fn off(&mut self) -> i64 {
        if self.rng.below(4) > 0 {
            self.pick(&[0, 1, 100, 4095, 4096, 5000, 65_536, 1 << 20])
        } else {
            let max = self.max;
            self.pick(&[max, max + 1, i64::MAX - 1, i64::MAX, -1, i64::MIN])
        }
    }

    fn len(&mut self) -> usize {
        self.pick(&[0, 1, 10, 4096, 10_000, 200_000])
    }

    fn xattr_name(&mut self) -> String {
        // The long names stay short in the ops' log: `user.X255` stands for 255 bytes.
        let long = |n: usize| format!("user.X{n}");
        let names = [
            "user.a".to_string(),
            "user.b".to_string(),
            "trusted.t".to_string(),
            long(255),
            long(256),
            "user.".to_string(),
            "bogus.x".to_string(),
        ];
        self.pick(&names)
    }

    fn op(&mut self) -> Op {
        use libc::*;
        match self.rng.below(17) {
            0 | 1 => {
                let mut flags = self.pick(&[O_RDONLY, O_WRONLY, O_RDWR, O_ACCMODE]);
                for (bit, one_in) in [
                    (O_CREAT, 2),
                    (O_EXCL, 5),
                    (O_TRUNC, 4),
                    (O_APPEND, 4),
                    (O_DIRECTORY, 6),
                    (O_NOFOLLOW, 6),
                    (1 << 30, 6),
                ] {
                    if self.rng.below(one_in) == 0 {
                        flags |= bit;
                    }
                }
                Op::Open {
                    path: self.path(),
                    flags,
                    mode: self.pick(&[0o644, 0o600, 0o7777, 0o000]),
                }
            }
            2 | 3 => Op::Write {
                path: self.path(),
                off: self.off(),
                len: self.len(),
                append: self.rng.below(5) == 0,
            },
            4 => Op::Read {
                path: self.path(),
                off: self.off(),
                len: self.pick(&[0, 1, 4096, 100_000, 64 << 20]),
            },
            5 => {
                let max = self.max;
                let len = if self.rng.below(3) == 0 {
                    self.pick(&[max + 1, i64::MAX, -1, i64::MIN])
                } else {
                    self.pick(&[0, 1, 4096, 12_345, 300_000])
                };
                Op::Truncate {
                    path: self.path(),
                    len,
                }
            }
            6 => Op::Fallocate {
                path: self.path(),
                mode: self.pick(&[
                    0,
                    FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_PUNCH_HOLE,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_ZERO_RANGE,
                    0x100,
                    -1,
                ]),
                off: self.off(),
                len: self.pick(&[0, 1, 4096, 100_000, -1, i64::MAX]),
            },
            7 => {
                let whence = self.pick(&[SEEK_DATA, SEEK_HOLE, SEEK_SET, SEEK_END, 9]);
                // FUSE files may be positioned past ext4's largest size, natively EINVAL
                // (the kernel's FUSE limit is larger, and it answers these lseeks itself).
                let off = if whence == SEEK_SET || whence == SEEK_END {
                    self.pick(&[0, 1, 4096, 1 << 20, 1 << 40, -1, -5000, i64::MIN])
                } else {
                    self.off()
                };
                Op::Seek {
                    path: self.path(),
                    off,
                    whence,
                }
            }
            // No destination offsets at or past ext4's largest size: with nothing to copy
            // (len 0, source at EOF) native ext4 says EFBIG, while the kernel's FUSE limit
            // lets the call through to return 0 without asking the daemon.
            8 => Op::Copy {
                from: self.path(),
                to: self.path(),
                src: self.off(),
                dst: self.pick(&[0, 1, 4095, 4096, 5000, 1 << 20, -1, i64::MIN]),
                len: self.pick(&[0, 1, 5000, 1 << 20, usize::MAX]),
            },
            9 => Op::Rename {
                from: self.path(),
                to: self.path(),
                flags: self.pick(&[
                    0,
                    0,
                    RENAME_NOREPLACE,
                    RENAME_EXCHANGE,
                    RENAME_WHITEOUT,
                    RENAME_NOREPLACE | RENAME_EXCHANGE,
                    1 << 5,
                ]),
            },
            10 => Op::Link {
                from: self.path(),
                to: self.path(),
            },
            11 => Op::Symlink {
                target: self.pick(&["a", "d", "d/c", "missing", "s"]).to_string(),
                path: self.path(),
            },
            12 => Op::Unlink { path: self.path() },
            13 => Op::Mkdir {
                path: self.path(),
                mode: self.pick(&[0o755, 0o700, 0o7777]),
            },
            14 => Op::Rmdir { path: self.path() },
            15 => Op::SetXattr {
                path: self.path(),
                name: self.xattr_name(),
                len: self.pick(&[0, 1, 100, 3000, 4096, 65_536, 65_537]),
                flags: self.pick(&[0, 0, XATTR_CREATE, XATTR_REPLACE, 3, 4]),
            },
            _ => {
                if self.rng.below(4) == 0 {
                    Op::RemoveXattr {
                        path: self.path(),
                        name: self.xattr_name(),
                    }
                } else {
                    Op::GetXattr {
                        path: self.path(),
                        name: self.xattr_name(),
                        cap: self.pick(&[0, 1, 10, 4096, 65_536, 1 << 20]),
                    }
                }
            }
        }
    }
}

/// `r/rel`, with the path components `N255` and `N256` (short in the ops' log) spelled out as
/// names of 255 and 256 bytes.
fn at(r: &Path, rel: &str) -> std::path::PathBuf {
    rel.split('/').fold(r.to_path_buf(), |p, c| match c {
        "N255" => p.join(name('n', 255)),
        "N256" => p.join(name('n', 256)),
        _ => p.join(c),
    })
}

/// An xattr name of the ops' log as bytes: `user.X<n>` is `user.` and `x`s, `n` bytes in all.
fn xattr_name(alias: &str) -> Vec<u8> {
    match alias
        .strip_prefix("user.X")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => format!("user.{}", name('x', n - 5)).into_bytes(),
        None => alias.as_bytes().to_vec(),
    }
}

/// Applies `op` under `r`; the result describes what came back and the state of the paths
/// involved afterwards (lstat without times), so both sides compare on more than the errno.
fn apply(r: &Path, op: &Op) -> io::Result<String> {
    let after = |p: &str| format!("{:?}", outcome(attr(&at(r, p))));
    let done = match op {
        Op::Open { path, flags, mode } => {
            let f = open_raw(&at(r, path), *flags, *mode)?;
            format!("{:?}", getfl(&f)?)
        }
        Op::Write {
            path,
            off,
            len,
            append,
        } => {
            let f = if *append {
                OpenOptions::new().append(true).open(at(r, path))?
            } else {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(at(r, path))?
            };
            pwrite(&f, &pattern(*len, *off as u64), *off)?.to_string()
        }
        Op::Read { path, off, len } => digest(&pread(&File::open(at(r, path))?, *len, *off)?),
        Op::Truncate { path, len } => {
            truncate(&at(r, path), *len)?;
            String::new()
        }
        Op::Fallocate {
            path,
            mode,
            off,
            len,
        } => {
            fallocate(&rw(&at(r, path))?, *mode, *off, *len)?;
            String::new()
        }
        // Directories are left out: FUSE positions them with generic_file_llseek, ext4 with
        // its own htree cookies (SEEK_END + 5000 on a dir: native EINVAL, the mount i_size + 5000).
        Op::Seek { path, .. } if fs::metadata(at(r, path)).is_ok_and(|m| m.is_dir()) => {
            "a dir".to_string()
        }
        // SEEK_DATA/SEEK_HOLE inside a file with unwritten extents (fallocate) depend on what
        // BACKING's page cache holds (ext4 counts cached pages of unwritten extents as data),
        // and the daemon's reads fill it differently from a native reader's readahead: only
        // the offsets past EOF (ENXIO) or negative are compared.
        Op::Seek { path, off, whence }
            if (*whence == libc::SEEK_DATA || *whence == libc::SEEK_HOLE)
                && fs::metadata(at(r, path)).is_ok_and(|m| (0..m.len() as i64).contains(off)) =>
        {
            "inside".to_string()
        }
        Op::Seek { path, off, whence } => {
            lseek(&File::open(at(r, path))?, *off, *whence)?.to_string()
        }
        Op::Copy {
            from,
            to,
            src,
            dst,
            len,
        } => {
            let out = OpenOptions::new().write(true).open(at(r, to))?;
            format!(
                "{:?}",
                copy_range(&File::open(at(r, from))?, *src, &out, *dst, *len)?
            )
        }
        Op::Rename { from, to, flags } => {
            renameat2(&at(r, from), &at(r, to), *flags)?;
            after(from)
        }
        Op::Link { from, to } => {
            fs::hard_link(at(r, from), at(r, to))?;
            String::new()
        }
        Op::Symlink { target, path } => {
            std::os::unix::fs::symlink(target, at(r, path))?;
            String::new()
        }
        Op::Unlink { path } => {
            fs::remove_file(at(r, path))?;
            String::new()
        }
        Op::Mkdir { path, mode } => {
            std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), *mode)
                .create(at(r, path))?;
            String::new()
        }
        Op::Rmdir { path } => {
            fs::remove_dir(at(r, path))?;
            String::new()
        }
        Op::SetXattr {
            path,
            name,
            len,
            flags,
        } => {
            setxattr(
                &at(r, path),
                &xattr_name(name),
                &pattern(*len, *len as u64),
                *flags,
            )?;
            String::new()
        }
        Op::GetXattr { path, name, cap } => {
            let (n, v) = getxattr(&at(r, path), &xattr_name(name), *cap)?;
            format!("{n} {}", digest(&v))
        }
        Op::RemoveXattr { path, name } => {
            removexattr(&at(r, path), &xattr_name(name))?;
            String::new()
        }
    };
    let path = match op {
        Op::Open { path, .. }
        | Op::Write { path, .. }
        | Op::Read { path, .. }
        | Op::Truncate { path, .. }
        | Op::Fallocate { path, .. }
        | Op::Seek { path, .. }
        | Op::Symlink { path, .. }
        | Op::Unlink { path }
        | Op::Mkdir { path, .. }
        | Op::Rmdir { path }
        | Op::SetXattr { path, .. }
        | Op::GetXattr { path, .. }
        | Op::RemoveXattr { path, .. } => path,
        Op::Copy { to, .. } | Op::Rename { to, .. } | Op::Link { to, .. } => to,
    };
    Ok(format!("{done} -> {}", after(path)))
}

fn random_ops(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let seed = match std::env::var("EDGES_SEED") {
        Ok(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
            .expect("EDGES_SEED: a decimal or 0x-hex number"),
        Err(_) => SEED,
    };
    let g = mount(opts);
    let start = Instant::now();
    let mut names: Vec<String> = ["a", "b", "s", "d", "d/c", "d/e", "e", "missing/x"]
        .map(String::from)
        .to_vec();
    names.extend(["N255", "d/N255", "N256"].map(String::from));
    let mut draw = Gen {
        // xorshift stays 0 from 0: spread the seed first.
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        max: ext4_max(&g),
        names,
    };
    both_ok(&g, "setup", |r| {
        fs::write(r.join("a"), pattern(10_000, 1))?;
        fs::create_dir(r.join("d"))?;
        fs::write(r.join("d/c"), b"c")
    });
    let mut log: Vec<String> = Vec::new();
    let mut succeeded = 0;
    for i in 0..RANDOM_OPS {
        let op = draw.op();
        log.push(format!("{i}: {op:?}"));
        let (native, mount) = (outcome(apply(&g.native, &op)), outcome(apply(&g.mnt, &op)));
        assert!(
            native == mount,
            "EDGES_SEED={seed:#x}: op {i} differs\n  mount:  {mount:?}\n  native: {native:?}\n\
             ops so far:\n  {}",
            log.join("\n  ")
        );
        if native.is_ok() {
            succeeded += 1;
        }
        if i % 100 == 99 || i == RANDOM_OPS - 1 {
            let diffs = tree_diff(&g.native, &g.mnt, TreeOpts::default());
            assert!(
                diffs.is_empty(),
                "EDGES_SEED={seed:#x}: after op {i} the trees differ:\n  {}\nops:\n  {}",
                diffs.join("\n  "),
                log.join("\n  ")
            );
        }
    }
    assert_trees_equal(&g.native, &g.backing, TreeOpts::default());
    eprintln!(
        "EDGES_SEED={seed:#x}: {RANDOM_OPS} random ops agree ({succeeded} succeeded), in {:?}",
        start.elapsed()
    );
}

#[test]
fn random_ops_default() {
    random_ops(&[]);
}

#[test]
fn random_ops_devfuse() {
    random_ops(DEVFUSE);
}
