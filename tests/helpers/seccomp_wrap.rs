//! `seccomp_wrap [--errno=ENOSYS|EPERM] LIST PROGRAM [ARGS...]`: runs PROGRAM with the syscalls
//! in LIST failing with that errno (ENOSYS by default), as on a kernel that lacks them.
//!
//! LIST is comma-separated: `fchmodat2` (452), `xattrat` (463-466: setxattrat, getxattrat,
//! listxattrat, removexattrat), `io_uring` (425-427: setup, enter, register, which Docker's
//! default profile refuses), or raw syscall numbers. These numbers are the same on every
//! architecture (the unified table from 424 on), so the filter checks no `arch`.
//!
//! Two uses, one source: `tests/fallbacks/` includes this file as a module and installs the
//! filter in a `pre_exec` hook of the daemon's `Command`; `scripts/referees` compiles it alone
//! (`rustc --edition 2024 tests/helpers/seccomp_wrap.rs`) for its `fallbacks` mode. So it uses
//! no crate, not even `libc`. Not a shipped binary: a test helper.
#![allow(dead_code)]

use std::ffi::{c_int, c_ulong};
use std::io;

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const PR_SET_SECCOMP: c_int = 22;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const SECCOMP_MODE_FILTER: c_ulong = 2;

/// `ENOSYS`: what a kernel without the syscall answers.
pub const ENOSYS: u32 = 38;
/// `EPERM`: what Docker's default profile answers.
pub const EPERM: u32 = 1;

unsafe extern "C" {
    fn prctl(option: c_int, ...) -> c_int;
}

/// The syscall numbers LIST names.
///
/// # Errors
/// A message naming an entry that is neither a known name nor a number.
pub fn syscall_numbers(list: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry {
            "fchmodat2" => out.push(452),
            "xattrat" => out.extend(463..=466),
            "io_uring" => out.extend(425..=427),
            n => out.push(
                n.parse()
                    .map_err(|_| format!("unknown syscall '{n}' in '{list}'"))?,
            ),
        }
    }
    Ok(out)
}

/// A filter that answers `errno` to each syscall in `numbers` and allows everything else.
pub fn filter(numbers: &[u32], errno: u32) -> Vec<SockFilter> {
    let n = numbers.len();
    let mut prog = vec![SockFilter {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0, // seccomp_data.nr
    }];
    for (i, &nr) in numbers.iter().enumerate() {
        // Instruction i+1 jumps, when equal, to the ERRNO return at index n+2.
        let to_errno = u8::try_from(n - i).expect("at most 255 syscalls");
        prog.push(SockFilter {
            code: BPF_JMP_JEQ_K,
            jt: to_errno,
            jf: 0,
            k: nr,
        });
    }
    prog.push(SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ALLOW,
    });
    prog.push(SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ERRNO | (errno & 0xffff),
    });
    prog
}

/// Sets no_new_privs and installs `prog` on the calling thread; it is inherited across fork
/// and exec. Allocates nothing, so it may run in a `pre_exec` hook.
///
/// # Errors
/// The errno of `prctl(2)`.
pub fn install(prog: &[SockFilter]) -> io::Result<()> {
    let fprog = SockFprog {
        len: u16::try_from(prog.len()).unwrap_or(u16::MAX),
        filter: prog.as_ptr(),
    };
    // SAFETY: plain integer arguments.
    if unsafe {
        prctl(
            PR_SET_NO_NEW_PRIVS,
            1 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, valid for `len` instructions during the call (the
    // kernel copies the program).
    if unsafe {
        prctl(
            PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            &fprog as *const SockFprog,
            0 as c_ulong,
            0 as c_ulong,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn main() {
    use std::os::unix::process::CommandExt;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: seccomp_wrap [--errno=ENOSYS|EPERM] LIST PROGRAM [ARGS...]";
    let mut errno = ENOSYS;
    if let Some(value) = args.first().and_then(|a| a.strip_prefix("--errno=")) {
        errno = match value {
            "ENOSYS" => ENOSYS,
            "EPERM" => EPERM,
            other => {
                eprintln!("seccomp_wrap: unknown errno '{other}'; {usage}");
                std::process::exit(2);
            }
        };
        args.remove(0);
    }
    if args.len() < 2 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let numbers = match syscall_numbers(&args[0]) {
        Ok(n) => n,
        Err(msg) => {
            eprintln!("seccomp_wrap: {msg}");
            std::process::exit(2);
        }
    };
    if let Err(e) = install(&filter(&numbers, errno)) {
        eprintln!("seccomp_wrap: cannot install the filter: {e}");
        std::process::exit(1);
    }
    let err = std::process::Command::new(&args[1]).args(&args[2..]).exec();
    eprintln!("seccomp_wrap: cannot run {}: {err}", args[1]);
    std::process::exit(127);
}
