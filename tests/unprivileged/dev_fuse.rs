//! /dev/fuse for everyone

use super::*;

/// How many [`DevFuseForAll`] guards live, and the mode `/dev/fuse` had before the first.
static DEV_FUSE_USERS: Mutex<(usize, u32)> = Mutex::new((0, 0));

/// `/dev/fuse` is mode 0666 while any guard lives (the tests of this file run in parallel);
/// the last to drop restores the mode the first found, also when its test panicked.
pub(super) struct DevFuseForAll;

impl DevFuseForAll {
    pub(super) fn new() -> DevFuseForAll {
        let mut users = DEV_FUSE_USERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if users.0 == 0 {
            let mode = fs::metadata(DEV_FUSE).expect("stat /dev/fuse").mode() & 0o7777;
            fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(0o666))
                .expect("chmod 0666 /dev/fuse");
            users.1 = mode;
        }
        users.0 += 1;
        DevFuseForAll
    }
}

impl Drop for DevFuseForAll {
    fn drop(&mut self) {
        let mut users = DEV_FUSE_USERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users.0 -= 1;
        if users.0 == 0
            && let Err(e) = fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(users.1))
        {
            // No panic: this may run while a failing test unwinds.
            eprintln!(
                "warning: cannot restore /dev/fuse to mode {:o}: {e}",
                users.1
            );
        }
    }
}
