//! The one place where an `io::Error` becomes the errno the kernel sees.

use std::io;

use fuser::Errno;

/// The errno for `err`; an error without an OS code is `EIO`, never 0 (which the kernel
/// would take for success).
pub fn errno(err: &io::Error) -> Errno {
    Errno::from_i32(errno_code(err))
}

/// The errno for `err` as a positive number; `EIO` for an error without an OS code.
pub fn errno_code(err: &io::Error) -> i32 {
    match err.raw_os_error() {
        Some(code) if code > 0 => code,
        _ => libc::EIO,
    }
}

/// An `io::Error` carrying `code`.
pub fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// `EBADF`: a file handle the kernel sent that we never gave out, or for another inode.
pub fn ebadf() -> io::Error {
    os(libc::EBADF)
}

/// `EINVAL`.
pub fn einval() -> io::Error {
    os(libc::EINVAL)
}

/// `ENOENT`: an inode number the kernel sent that is not in the table.
pub fn enoent() -> io::Error {
    os(libc::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_keep_their_code() {
        assert_eq!(
            errno(&os(libc::ENOTEMPTY)),
            Errno::from_i32(libc::ENOTEMPTY)
        );
    }

    #[test]
    fn errors_without_a_code_become_eio() {
        assert_eq!(errno(&io::Error::other("no code")), Errno::EIO);
    }
}
