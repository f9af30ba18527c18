//! The power-cut file system keeps exactly what was fsynced: file bytes by file fsync, names by directory fsync.

use std::fs::{self, File};
use std::io::Write;

use bianmin_powercut::{Failure, PowerCut};

fn sync_dir(p: &std::path::Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

#[test]
fn a_cut_keeps_synced_bytes_and_names_and_drops_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = PowerCut::mount(tmp.path()).unwrap();
    let root = fs.path().to_path_buf();

    // Durable: data synced, then the directory.
    let mut f = File::create(root.join("kept")).unwrap();
    f.write_all(b"kept bytes").unwrap();
    f.sync_all().unwrap();
    sync_dir(&root);
    // Appended after the sync: lost.
    f.write_all(b" and more").unwrap();
    drop(f);
    // Name synced but data never: comes back empty.
    fs::write(root.join("empty"), b"never synced").unwrap();
    sync_dir(&root);
    // Data synced but the name never: lost.
    let mut g = File::create(root.join("unnamed")).unwrap();
    g.write_all(b"x").unwrap();
    g.sync_all().unwrap();
    drop(g);
    // A rename over a durable file that is not synced in the directory: the old name's bytes stay.
    fs::write(root.join("new.tmp"), b"new").unwrap();
    File::open(root.join("new.tmp"))
        .unwrap()
        .sync_all()
        .unwrap();
    fs::rename(root.join("new.tmp"), root.join("kept")).unwrap();
    assert_eq!(fs::read(root.join("kept")).unwrap(), b"new");

    let report = fs.cut().unwrap();
    assert!(
        report.files_reverted >= 1 && report.dirs_reverted >= 1,
        "{report:?}"
    );
    assert_eq!(fs::read(root.join("kept")).unwrap(), b"kept bytes");
    assert!(!root.join("unnamed").exists());
    assert!(!root.join("new.tmp").exists());
    assert_eq!(fs::read(root.join("empty")).unwrap(), b"");

    // A directory made durable with its parent and its own entries survives whole.
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/a"), b"a").unwrap();
    File::open(root.join("d/a")).unwrap().sync_all().unwrap();
    sync_dir(&root.join("d"));
    sync_dir(&root);
    fs.cut().unwrap();
    assert_eq!(fs::read(root.join("d/a")).unwrap(), b"a");
}

#[test]
fn a_failing_disk_refuses_writes_and_syncs_until_healed() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = PowerCut::mount(tmp.path()).unwrap();
    let root = fs.path().to_path_buf();
    let mut f = File::create(root.join("f")).unwrap();
    fs.fail_with(Failure::Io);
    assert_eq!(
        f.write_all(b"x").unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    assert!(File::create(root.join("g")).is_err());
    fs.fail_with(Failure::Full);
    assert_eq!(
        f.write_all(b"x").unwrap_err().raw_os_error(),
        Some(libc::ENOSPC)
    );
    assert_eq!(fs4_free(&root), 0);
    fs.heal();
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    assert!(fs.syncs() >= 1);
}

fn fs4_free(p: &std::path::Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}
