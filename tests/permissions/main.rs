//! Ownership and permission checks as root and as unprivileged users, each compared with the
//! same operation by the same user on native ext4.

#[path = "../common/mod.rs"]
mod common;
mod denied;
mod groups_and_acls;
mod mode_bits;
mod ownership;
mod search;

use common::*;
use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, symlink};
use std::path::Path;

/// Another unprivileged user, in none of [`GROUP`]'s groups.
const OTHER: u32 = 2000;

/// A group [`USER`] is in only as a *supplementary* group (its primary group is [`GROUP`]).
/// The kernel knows groups by number only, so no `/etc/group` entry is needed: a process or
/// thread whose group list holds it is in it.
const SUPP: u32 = 3000;

/// [`both`] run with the filesystem credentials of `uid`/`gid`.
#[track_caller]
fn user_both<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> io::Result<T> {
    let what = format!("{what} (as {uid}:{gid})");
    as_user(uid, gid, || both(g, &what, f))
}

/// [`both`] run with the filesystem credentials of `uid`/`gid` and the supplementary groups
/// `groups`.
#[track_caller]
fn groups_both<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    (uid, gid, groups): (u32, u32, &[u32]),
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> io::Result<T> {
    let what = format!("{what} (as {uid}:{gid}, groups {groups:?})");
    as_user_with_groups(uid, gid, groups, || both(g, &what, f))
}

#[track_caller]
fn groups_ok<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    who: (u32, u32, &[u32]),
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> T {
    groups_both(g, who, what, f).unwrap_or_else(|e| panic!("{what} as {who:?}: {e}"))
}

#[track_caller]
fn groups_err<T: Debug + Send>(
    g: &MountGuard,
    (uid, gid, groups): (u32, u32, &[u32]),
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) {
    let what = format!("{what} (as {uid}:{gid}, groups {groups:?})");
    as_user_with_groups(uid, gid, groups, || both_err(g, &what, errno, f))
}

#[track_caller]
fn user_ok<T: PartialEq + Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) -> T {
    user_both(g, uid, gid, what, f).unwrap_or_else(|e| panic!("{what} as {uid}: {e}"))
}

#[track_caller]
fn user_err<T: Debug + Send>(
    g: &MountGuard,
    uid: u32,
    gid: u32,
    what: &str,
    errno: i32,
    f: impl Fn(&Path) -> io::Result<T> + Send + Sync,
) {
    let what = format!("{what} (as {uid}:{gid})");
    as_user(uid, gid, || both_err(g, &what, errno, f))
}

fn mode_of(p: &Path) -> io::Result<u32> {
    Ok(fs::symlink_metadata(p)?.mode())
}

fn user_dir(r: &Path, name: &str, uid: u32, gid: u32, mode: u32) {
    fs::create_dir(r.join(name)).unwrap();
    chown(&r.join(name), uid, gid).unwrap();
    chmod(&r.join(name), mode).unwrap();
}
