//! `chattr`/`lsattr` through the mount, compared with native ext4: the flags read and set,
//! who may set them, and that append-only and immutable are enforced.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Clears append-only and immutable under both trees on drop, so the scratch dirs can go.
struct ClearFlags<'a>(&'a MountGuard);

impl Drop for ClearFlags<'_> {
    fn drop(&mut self) {
        for dir in [&self.0.native, &self.0.backing] {
            let _ = Command::new("chattr")
                .arg("-R")
                .arg("-ia")
                .arg(dir)
                .output();
        }
    }
}

/// (exit code, stdout, stderr's errno text) of `sh -c script` with `$D` the tree's root, as
/// `uid` (root: this process's credentials), with the tree's path blanked in the output.
fn outcome_in(dir: &Path, uid: u32, script: &str) -> (Option<i32>, String) {
    let d = dir.to_string_lossy();
    let script = script.replace("$D", &d);
    let out = if uid == 0 {
        Command::new("sh").arg("-c").arg(&script).output().unwrap()
    } else {
        run_as(uid, uid, &script)
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text.replace(&*d, "$D"))
}

#[track_caller]
fn same(g: &MountGuard, uid: u32, script: &str) -> (Option<i32>, String) {
    let native = outcome_in(&g.native, uid, script);
    let mount = outcome_in(&g.mnt, uid, script);
    assert_eq!(
        mount, native,
        "{script} (as {uid}): mount differs from native ext4"
    );
    native
}

fn file_attributes(opts: &[&str]) {
    if !require_root_and_fuse() {
        return;
    }
    let g = MountGuard::new(opts);
    let _clear = ClearFlags(&g);
    same(
        &g,
        0,
        "echo a > $D/f && chown 1000:1000 $D/f && mkdir $D/d && echo b > $D/g",
    );
    // Reading flags, of a file and of a directory, and the project (FS_IOC_FSGETXATTR).
    same(&g, 0, "lsattr $D/f && lsattr -d $D/d && lsattr -p $D/f");
    // Append-only, set by root: appending works, anything else is refused.
    let (code, _) = same(&g, 0, "chattr +a $D/g && lsattr $D/g");
    assert_eq!(code, Some(0));
    same(&g, 0, "echo more >> $D/g && cat $D/g");
    let (code, _) = same(&g, 0, "echo over > $D/g");
    assert_ne!(code, Some(0), "overwriting an append-only file");
    same(&g, 0, "rm -f $D/g; mv $D/g $D/h; ls $D");
    same(&g, 0, "chattr -a $D/g && lsattr $D/g");
    // Immutable: no write, no rename, no unlink, no chmod, even for root.
    same(&g, 0, "chattr +i $D/g && lsattr $D/g");
    same(
        &g,
        0,
        "echo x >> $D/g; chmod 600 $D/g; rm -f $D/g; ls -l $D/g | cut -c1-10",
    );
    same(&g, 0, "chattr -i $D/g && rm $D/g && ls $D");
    // The owner may set nodump and noatime, not immutable or append-only (no
    // CAP_LINUX_IMMUTABLE); another user may set nothing.
    same(&g, 1000, "chattr +d $D/f && chattr +A $D/f && lsattr $D/f");
    let (code, _) = same(&g, 1000, "chattr +i $D/f");
    assert_ne!(code, Some(0), "an ordinary user set immutable");
    same(&g, 1000, "chattr +a $D/f; lsattr $D/f");
    same(&g, 2000, "chattr -d $D/f; lsattr $D/f");
    // Directories: append-only lets entries be made but not removed.
    same(
        &g,
        0,
        "chattr +a $D/d && touch $D/d/new && rm -f $D/d/new; ls $D/d",
    );
    same(&g, 0, "chattr -a $D/d && rm $D/d/new && lsattr -d $D/d");
}

#[test]
fn file_attributes_match_native_default() {
    file_attributes(&[]);
}

#[test]
fn file_attributes_match_native_without_default_permissions() {
    file_attributes(&["nodefault_permissions"]);
}

#[test]
fn file_attributes_match_native_passthrough() {
    file_attributes(&["passthrough"]);
}
