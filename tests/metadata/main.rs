//! Metadata operations, each run on the mount and on a native ext4 dir with the same
//! arguments; results (or errnos) and the final trees must match.

mod attributes;
#[path = "../common/mod.rs"]
mod common;
mod links_and_renames;
mod names;
mod xattrs;

use common::*;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn setup_basic(root: &Path) {
    fs::write(root.join("file"), b"0123456789").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("dir/inner"), b"inner").unwrap();
    symlink("file", root.join("link")).unwrap();
}
