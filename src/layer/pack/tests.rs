use super::*;
use std::os::unix::fs::PermissionsExt;

fn change(path: &str, kind: ChangeKind) -> Change {
    Change {
        path: PathBuf::from(path),
        kind,
    }
}

/// Path, type, mode, link target and PAX records of each entry.
type Entry = (
    String,
    tar::EntryType,
    u64,
    Option<String>,
    Vec<(String, Vec<u8>)>,
);

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let mode = e.header().mode().unwrap() as u64;
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let xattrs = e
                .pax_extensions()
                .unwrap()
                .map(|p| {
                    p.map(|x| {
                        let x = x.unwrap();
                        (x.key().unwrap().to_string(), x.value_bytes().to_vec())
                    })
                    .collect()
                })
                .unwrap_or_default();
            (path, kind, mode, link, xattrs)
        })
        .collect()
}

#[test]
fn changes_become_a_layer_with_whiteouts_links_and_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("etc/opaque")).unwrap();
    fs::write(root.join("etc/passwd"), b"root:x:0:0\n").unwrap();
    fs::set_permissions(root.join("etc/passwd"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd.hard")).unwrap();
    std::os::unix::fs::symlink("passwd", root.join("etc/link")).unwrap();
    let xattr_ok = xattr::set(root.join("etc/passwd"), "user.note", b"kept").is_ok()
        && xattr::set(root.join("etc/passwd"), "user.overlay.origin", b"dropped").is_ok();
    fs::write(
        root.join("etc/opaque")
            .join(std::ffi::OsStr::from_bytes(OPAQUE_MARKER)),
        b"",
    )
    .unwrap();
    let changes = vec![
        change("/etc", ChangeKind::Modified),
        change("/etc/gone", ChangeKind::Deleted),
        change("/etc/link", ChangeKind::Added),
        change("/etc/opaque", ChangeKind::Modified),
        change("/etc/passwd", ChangeKind::Modified),
        change("/etc/passwd.hard", ChangeKind::Added),
        change("/etc/vanished", ChangeKind::Added),
    ];
    let (tar, report) = write_layer(Vec::new(), root, &changes).unwrap();
    assert_eq!(report.bytes, 11);
    let got = entries(&tar);
    let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/.wh.gone",
            "etc/link",
            "etc/opaque/",
            "etc/opaque/.wh..wh..opq",
            "etc/passwd",
            "etc/passwd.hard",
        ]
    );
    assert_eq!(got[2].1, tar::EntryType::Symlink);
    assert_eq!(got[2].3.as_deref(), Some("passwd"));
    assert_eq!(got[5].2, 0o600);
    assert_eq!(got[6].1, tar::EntryType::Link);
    assert_eq!(got[6].3.as_deref(), Some("etc/passwd"));
    if xattr_ok {
        assert_eq!(
            got[5].4,
            [("SCHILY.xattr.user.note".to_string(), b"kept".to_vec())]
        );
    }
}

#[test]
fn a_file_that_shrinks_while_read_keeps_the_entry_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"abc").unwrap();
    let mut r = Exactly::new(File::open(&path).unwrap(), 6);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"abc\0\0\0");
}
