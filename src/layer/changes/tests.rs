//! Whiteouts and opaque directories are written in their file forms (`.wh.NAME`,
//! `.wh..wh..opq`), which need no privilege; the character-device and xattr forms, which the
//! kernel overlay writes, are covered by a test that needs root.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use super::*;

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn mkdir(root: &Path, rel: &str) {
    fs::create_dir_all(root.join(rel)).unwrap();
}

/// The same modification time on every entry of both trees, as a faithful copy has.
fn settle_times(root: &Path) {
    let time = TimeSpec::new(1_700_000_000, 0);
    for entry in walk(root) {
        utimensat(None, &entry, &time, &time, UtimensatFlags::NoFollowSymlink).unwrap();
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn render(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {}\n", c.kind.letter(), c.path.display()))
        .collect()
}

/// Two layers: the base, and one deleting `/data/gone` and making `/opq` opaque.
fn image(dir: &Path) -> Vec<PathBuf> {
    let base = dir.join("l1");
    write(&base, "etc/passwd", "root\n");
    write(&base, "etc/group", "root\n");
    write(&base, "bin/sh", "sh\n");
    write(&base, "data/keep", "keep\n");
    write(&base, "data/gone", "gone\n");
    write(&base, "opq/old", "old\n");
    write(&base, "tree/a/b", "b\n");
    mkdir(&base, "home/app");
    let top = dir.join("l2");
    write(&top, "data/.wh.gone", "");
    write(&top, "opq/.wh..wh..opq", "");
    write(&top, "opq/new", "new\n");
    let layers = vec![base, top];
    for layer in &layers {
        settle_times(layer);
    }
    layers
}

fn overlay(upper: &Path, layers: &[PathBuf], mount_points: &[&str]) -> String {
    render(&changes(upper, Storage::OverlayUpper, layers, mount_points).unwrap())
}

#[test]
fn upper_entries_are_added_or_changed_and_their_parents_changed() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    write(&upper, "etc/passwd", "root\napp\n");
    write(&upper, "new/dir/file", "x");
    write(&upper, "home/app/notes", "x");
    assert_eq!(
        overlay(&upper, &layers, &[]),
        "C /etc\nC /etc/passwd\nC /home\nC /home/app\nA /home/app/notes\n\
         A /new\nA /new/dir\nA /new/dir/file\n"
    );
}

#[test]
fn whiteouts_are_deletions_of_what_the_image_has() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    write(&upper, "bin/.wh.sh", "");
    write(&upper, ".wh.tree", "");
    // Already deleted by the image's own layer: nothing the container did.
    write(&upper, "data/.wh.gone", "");
    settle_times(&upper);
    assert_eq!(
        overlay(&upper, &layers, &[]),
        "C /bin\nD /bin/sh\nD /tree\n"
    );
}

#[test]
fn an_opaque_directory_deletes_what_the_image_had_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    // `rm -rf /tree /etc && mkdir -p /tree/a /etc && echo > /tree/a/c /etc/group`
    write(&upper, "tree/.wh..wh..opq", "");
    write(&upper, "tree/a/c", "c\n");
    write(&upper, "etc/.wh..wh..opq", "");
    write(&upper, "etc/group", "root\n");
    settle_times(&upper);
    assert_eq!(
        overlay(&upper, &layers, &[]),
        "C /etc\nC /etc/group\nD /etc/passwd\nC /tree\nC /tree/a\nD /tree/a/b\nA /tree/a/c\n"
    );
}

#[test]
fn an_image_directory_hidden_by_its_own_opaque_layer_does_not_show_lower_entries() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    // `opq/old` was hidden by the image's top layer: re-creating it adds it.
    write(&upper, "opq/old", "again\n");
    write(&upper, "data/gone", "again\n");
    assert_eq!(
        overlay(&upper, &layers, &[]),
        "C /data\nA /data/gone\nC /opq\nA /opq/old\n"
    );
}

#[test]
fn directories_only_copied_up_show_as_changed_only_for_what_is_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    mkdir(&upper, "data");
    settle_times(&upper);
    assert_eq!(overlay(&upper, &layers, &[]), "");
    // A new time (an entry created and removed again) is a change, as in Docker.
    utimensat(
        None,
        &upper.join("data"),
        &TimeSpec::new(1, 0),
        &TimeSpec::new(1, 0),
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    assert_eq!(overlay(&upper, &layers, &[]), "C /data\n");
}

#[test]
fn nooks_own_mount_points_are_not_changes() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    write(&upper, "etc/hostname", "");
    write(&upper, "etc/hosts", "");
    mkdir(&upper, "proc");
    mkdir(&upper, "dev");
    let points = ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname"];
    assert_eq!(overlay(&upper, &layers, &points), "");
    // What the container writes next to them still counts.
    write(&upper, "etc/motd", "hi");
    write(&upper, "dev/x", "");
    assert_eq!(
        overlay(&upper, &layers, &points),
        "A /dev\nA /dev/x\nC /etc\nA /etc/motd\n"
    );
}

#[test]
fn a_full_copy_is_compared_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    // The merged image, as the vfs driver copies it.
    let copy = dir.path().join("copy");
    write(&copy, "etc/passwd", "root\n");
    write(&copy, "etc/group", "root\n");
    write(&copy, "bin/sh", "sh\n");
    write(&copy, "data/keep", "keep\n");
    write(&copy, "opq/new", "new\n");
    write(&copy, "tree/a/b", "b\n");
    mkdir(&copy, "home/app");
    settle_times(&copy);
    let full =
        |points: &[&str]| render(&changes(&copy, Storage::FullCopy, &layers, points).unwrap());
    assert_eq!(full(&[]), "");

    write(&copy, "etc/passwd", "root\napp\n");
    fs::remove_dir_all(copy.join("tree")).unwrap();
    fs::remove_file(copy.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", copy.join("bin/sh")).unwrap();
    write(&copy, "new/file", "x");
    write(&copy, "etc/hostname", "");
    assert_eq!(
        full(&["/etc/hostname"]),
        "C /bin\nC /bin/sh\nC /etc\nC /etc/passwd\nA /new\nA /new/file\nD /tree\n"
    );
}

#[test]
fn whiteout_devices_and_opaque_xattrs_as_the_kernel_writes_them() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: creating a 0:0 character device (an overlay whiteout) needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = image(dir.path());
    let upper = dir.path().join("upper");
    mkdir(&upper, "bin");
    mknod(
        &upper.join("bin/sh"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0),
        0,
    )
    .unwrap();
    mkdir(&upper, "tree");
    if let Err(e) = xattr::set(upper.join("tree"), "user.overlay.opaque", b"y") {
        eprintln!("skipped: this file system takes no user xattrs ({e})");
        return;
    }
    settle_times(&upper);
    assert_eq!(
        overlay(&upper, &layers, &[]),
        "C /bin\nD /bin/sh\nC /tree\nD /tree/a\n"
    );
}
