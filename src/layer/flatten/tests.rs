use super::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

/// Path (directories with `/`), type letter, mode, link target or content.
fn listing(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => "d",
                tar::EntryType::Regular => "f",
                tar::EntryType::Symlink => "s",
                tar::EntryType::Link => "h",
                other => panic!("unexpected {other:?}"),
            };
            let mode = e.header().mode().unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = String::new();
            e.read_to_string(&mut content).unwrap();
            format!(
                "{kind} {path} {mode:o} {}",
                link.unwrap_or(content).trim_end()
            )
        })
        .collect()
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn marker(dir: &Path, name: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), b"").unwrap();
}

#[test]
fn layers_and_upper_merge_as_the_overlay_shows_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (bottom, middle, upper) = (
        tmp.path().join("bottom"),
        tmp.path().join("middle"),
        tmp.path().join("upper"),
    );
    // bottom: a/{x,y}, opq/{old}, gone/{deep}, swap/{k}, hard + hard2 (one inode), link → hard
    write(&bottom.join("a/x"), "x0");
    write(&bottom.join("a/y"), "y0");
    write(&bottom.join("opq/old"), "old");
    write(&bottom.join("gone/deep"), "deep");
    write(&bottom.join("swap/k"), "k");
    write(&bottom.join("hard"), "linked");
    fs::hard_link(bottom.join("hard"), bottom.join("hard2")).unwrap();
    fs::hard_link(bottom.join("hard"), bottom.join("hard3")).unwrap();
    std::os::unix::fs::symlink("hard", bottom.join("link")).unwrap();
    // middle: x deleted, y replaced, opq made opaque with new content, swap a file now,
    // gone deleted as a whole (the fuse `.wh.` form throughout)
    marker(&middle.join("a"), ".wh.x");
    write(&middle.join("a/y"), "y1");
    marker(&middle.join("opq"), ".wh..wh..opq");
    write(&middle.join("opq/new"), "new");
    write(&middle.join("swap"), "a file");
    marker(&middle, ".wh.gone");
    // upper: a/z added, swap a directory again (above a file: nothing below merges),
    // hard2 deleted, a/y's directory mode changed, bookkeeping that must not show
    write(&upper.join("a/z"), "z");
    fs::set_permissions(upper.join("a"), fs::Permissions::from_mode(0o700)).unwrap();
    write(&upper.join("swap/mine"), "mine");
    marker(&upper, ".wh.hard2");
    marker(&upper, ".wh..wh.plnk");
    let _ = xattr::set(upper.join("a/z"), "user.overlay.origin", b"x");

    let layers = [upper, middle, bottom];
    let (tar, report) = write_tree(Vec::new(), Tree::Layers(&layers)).unwrap();
    assert_eq!(
        listing(&tar),
        [
            "d a/ 700 ",
            "f a/y 644 y1",
            "f a/z 644 z",
            "f hard 644 linked",
            "h hard3 644 hard",
            "s link 777 hard",
            "d opq/ 755 ",
            "f opq/new 644 new",
            "d swap/ 755 ",
            "f swap/mine 644 mine",
        ]
    );
    assert_eq!(report.bytes, "y1zlinkednewmine".len() as u64);
    // Only the user's xattrs travel.
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if let Some(pax) = entry.pax_extensions().unwrap() {
            for ext in pax {
                let key = ext.unwrap().key().unwrap().to_string();
                assert!(!key.contains("overlay"), "{key}");
            }
        }
    }
}

#[test]
fn a_copy_is_written_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy");
    write(&copy.join("etc/.wh.kept"), "a file of that name");
    write(&copy.join("etc/passwd"), "root");
    let (tar, _) = write_tree(Vec::new(), Tree::Copy(&copy)).unwrap();
    assert_eq!(
        listing(&tar),
        [
            "d etc/ 755 ",
            "f etc/.wh.kept 644 a file of that name",
            "f etc/passwd 644 root"
        ]
    );
}

#[test]
fn an_upper_directory_that_is_missing_reads_as_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    write(&layer.join("f"), "f");
    let dirs = [tmp.path().join("never-made"), layer];
    let (tar, _) = write_tree(Vec::new(), Tree::Layers(&dirs)).unwrap();
    assert_eq!(listing(&tar), ["f f 644 f"]);
}
