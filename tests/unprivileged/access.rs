//! Who gets in without `allow_other`.

use super::*;

/// Without `allow_other`, FUSE lets in only processes whose every uid and gid are the
/// mounter's: root gets EACCES, so does another user, and so does a root thread that only
/// switched its fsuid to the mounter's.
#[test]
fn only_the_mounter_gets_in_without_allow_other() {
    if !require_unprivileged_mount() {
        return;
    }
    let _fuse = DevFuseForAll::new();
    let m = UserMount::new(&[]);
    as_mounter(|| fs::write(m.mnt.join("f"), b"mine")).expect("the mounter writes");

    let refused = |who: &str, r: &dyn Fn() -> Vec<Option<i32>>| {
        let errnos = r();
        assert!(
            errnos.iter().all(|&e| e == Some(libc::EACCES)),
            "{who}: expected EACCES everywhere, got {errnos:?}"
        );
    };
    let attempts = |mnt: &Path| -> Vec<Option<i32>> {
        vec![
            errno_of(&fs::metadata(mnt)),
            errno_of(&fs::read_dir(mnt)),
            errno_of(&fs::metadata(mnt.join("f"))),
            errno_of(&fs::read(mnt.join("f"))),
            errno_of(&fs::write(mnt.join("g"), b"x")),
            errno_of(&lgetxattr(&mnt.join("f"), "user.x")),
        ]
    };
    refused("root", &|| attempts(&m.mnt));
    refused("another user", &|| {
        as_real_user(OTHER_USER, OTHER_USER, || attempts(&m.mnt))
    });
    refused("root with the mounter's fsuid", &|| {
        as_user(USER, GROUP, || attempts(&m.mnt))
    });
    // The native equivalent of each refusal is a permission the user granted: the file
    // stays as the mounter left it.
    assert_eq!(
        fs::read(m.backing.join("f")).expect("read backing"),
        b"mine"
    );
    assert!(!m.backing.join("g").exists());
    m.unmount_cleanly();
}
