//! Metadata syscalls inline against the same operations as io_uring SQEs: what moving a
//! request's OPENAT or STATX onto a ring would cost or save, for one SQE per enter (a
//! lone request: `cp`, `ls`, `rm` wait for every reply) and for batches (a readdirplus
//! reply's entries).
//!
//! `cargo bench --bench meta_ring [-- [--cold] DIR [FILES]]`: makes FILES empty files
//! (default 20,000) in a fresh directory under DIR (default /var/tmp; a real disk, not
//! tmpfs), then looks every name up in rounds that alternate the variants, and prints for
//! each the median over the rounds of the time per name, and its ratio to the inline
//! syscall measured in the same rounds. Warm by default; `--cold` (root) drops the page,
//! dentry and inode caches before every measurement, so each lookup may read the disk.
//! Figures are of this machine and this moment; only the ratios mean anything across runs.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;
use std::{env, fs, io, process};

use uringfs::ring::RingPool;
use uringfs::sys;

const ROUNDS: usize = 7;
const MASK: u32 = libc::STATX_BASIC_STATS;

/// One way of looking up every name of the directory.
struct Variant {
    name: &'static str,
    run: fn(&Ctx) -> io::Result<()>,
}

struct Ctx {
    dir: OwnedFd,
    names: Vec<CString>,
    ring: RingPool,
}

impl Ctx {
    fn names(&self) -> Vec<&CStr> {
        self.names.iter().map(CString::as_c_str).collect()
    }
    fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

fn statx_inline(c: &Ctx) -> io::Result<()> {
    for name in &c.names {
        sys::statx(c.dir(), name, libc::AT_SYMLINK_NOFOLLOW, MASK)?;
    }
    Ok(())
}

fn statx_ring(c: &Ctx, batch: usize) -> io::Result<()> {
    for chunk in c.names().chunks(batch) {
        for res in c.ring.statx_at_batch(c.dir(), chunk, MASK) {
            res?;
        }
    }
    Ok(())
}

fn openat_inline(c: &Ctx) -> io::Result<()> {
    for name in &c.names {
        drop(sys::openat(
            c.dir(),
            name,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )?);
    }
    Ok(())
}

fn openat_ring(c: &Ctx, batch: usize) -> io::Result<()> {
    for chunk in c.names().chunks(batch) {
        for res in c
            .ring
            .openat_batch(c.dir(), chunk, libc::O_PATH | libc::O_NOFOLLOW)
        {
            drop(res?);
        }
    }
    Ok(())
}

const VARIANTS: [Variant; 8] = [
    Variant {
        name: "statx inline",
        run: statx_inline,
    },
    Variant {
        name: "statx ring, 1 per enter",
        run: |c| statx_ring(c, 1),
    },
    Variant {
        name: "statx ring, 16 per enter",
        run: |c| statx_ring(c, 16),
    },
    Variant {
        name: "statx ring, 64 per enter",
        run: |c| statx_ring(c, 64),
    },
    Variant {
        name: "openat O_PATH inline",
        run: openat_inline,
    },
    Variant {
        name: "openat O_PATH ring, 1 per enter",
        run: |c| openat_ring(c, 1),
    },
    Variant {
        name: "openat O_PATH ring, 16 per enter",
        run: |c| openat_ring(c, 16),
    },
    Variant {
        name: "openat O_PATH ring, 64 per enter",
        run: |c| openat_ring(c, 64),
    },
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Err(err) = run() {
        eprintln!("meta_ring: {err}");
        process::exit(1);
    }
}

fn run() -> io::Result<()> {
    // `cargo bench` passes `--bench`; the rest are ours.
    let mut args: Vec<String> = env::args().skip(1).filter(|a| a != "--bench").collect();
    let cold = args.first().is_some_and(|a| a == "--cold");
    if cold {
        args.remove(0);
    }
    let parent = args.first().map_or("/var/tmp", String::as_str);
    let files: usize = match args.get(1) {
        Some(n) => n
            .parse()
            .map_err(|_| io::Error::other("FILES must be a number"))?,
        None => 20_000,
    };
    let dir_path = std::path::Path::new(parent).join(format!("meta_ring.{}", process::id()));
    fs::create_dir(&dir_path)?;
    let result = measure(&dir_path, files, cold);
    fs::remove_dir_all(&dir_path)?;
    result
}

fn drop_caches() -> io::Result<()> {
    fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| io::Error::new(e.kind(), format!("--cold: drop_caches: {e} (needs root)")))
}

fn measure(dir_path: &std::path::Path, files: usize, cold: bool) -> io::Result<()> {
    let names: Vec<CString> = (0..files)
        .map(|i| CString::new(format!("f{i:06}")).expect("no NUL"))
        .collect();
    for name in &names {
        fs::File::create(dir_path.join(name.to_str().expect("ascii")))?;
    }
    if cold {
        // Written inodes are dirty until written back; drop_caches keeps dirty ones.
        process::Command::new("sync").status()?;
    }
    let dir_c = CString::new(dir_path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let ctx = Ctx {
        dir: sys::open_dir_path(&dir_c, libc::O_RDONLY)?,
        names,
        ring: RingPool::new(64)?,
    };
    // Warm the dentry and inode caches (and the ring's io-wq workers).
    for v in &VARIANTS {
        (v.run)(&ctx)?;
    }
    let mut ns_per_name: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..ROUNDS {
        for k in 0..VARIANTS.len() {
            // Rotate the order so that a slow moment of the machine hits all variants.
            let i = (k + round) % VARIANTS.len();
            if cold {
                drop_caches()?;
            }
            let start = Instant::now();
            (VARIANTS[i].run)(&ctx)?;
            ns_per_name[i].push(start.elapsed().as_nanos() as f64 / files as f64);
        }
    }
    let state = if cold { "cold" } else { "warm" };
    println!("{files} names, {state}, {ROUNDS} rounds, median time per name:");
    let medians: Vec<f64> = ns_per_name.into_iter().map(median).collect();
    for (i, v) in VARIANTS.iter().enumerate() {
        // Each group of four starts with its inline baseline.
        let base = medians[i - i % 4];
        println!(
            "  {:<34} {:>8.2} us  {:>5.2}x inline",
            v.name,
            medians[i] / 1000.0,
            medians[i] / base
        );
    }
    Ok(())
}
