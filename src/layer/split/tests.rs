use super::*;
use crate::layer::unpack::{UnpackOptions, unpack_recording};

fn opts() -> UnpackOptions {
    UnpackOptions {
        max_id: 0,
        chown: false,
    }
}

/// A layer with every kind of entry the record has to carry: directories, files (one empty,
/// one large enough for several reads), a long name (GNU or PAX extension records), PAX
/// xattrs, symlinks, a hard link, a whiteout, and junk after the end-of-archive blocks.
fn sample_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>,
               path: &str,
               kind: tar::EntryType,
               data: &[u8],
               link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        if let Some(link) = link {
            b.append_link(&mut h, path, link).unwrap();
        } else {
            b.append_data(&mut h, path, data).unwrap();
        }
    };
    add(&mut b, "etc/", tar::EntryType::Directory, b"", None);
    add(
        &mut b,
        "etc/hostname",
        tar::EntryType::Regular,
        b"nook\n",
        None,
    );
    add(&mut b, "etc/empty", tar::EntryType::Regular, b"", None);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    add(
        &mut b,
        "usr/lib/big.bin",
        tar::EntryType::Regular,
        &big,
        None,
    );
    let long = format!("usr/share/{}/file", "d".repeat(150));
    add(&mut b, &long, tar::EntryType::Regular, b"long name\n", None);
    add(
        &mut b,
        "etc/link",
        tar::EntryType::Symlink,
        b"",
        Some("hostname"),
    );
    add(
        &mut b,
        "etc/hard",
        tar::EntryType::Link,
        b"",
        Some("etc/hostname"),
    );
    add(&mut b, "etc/.wh.gone", tar::EntryType::Regular, b"", None);
    b.append_pax_extensions([("SCHILY.xattr.user.note", b"hello".as_slice())])
        .unwrap();
    add(
        &mut b,
        "etc/noted",
        tar::EntryType::Regular,
        b"with xattr\n",
        None,
    );
    let mut out = b.into_inner().unwrap();
    out.extend_from_slice(&[0u8; 4096]);
    out
}

fn record(stream: &[u8], root: &Path) -> (Digest, u64) {
    let diff = root.join("diff");
    std::fs::create_dir_all(&diff).unwrap();
    let (recorder, handle) = Recorder::create(stream, &root.join(FILE_NAME)).unwrap();
    let mut hashing = crate::image::digest::HashingReader::new(recorder);
    unpack_recording(&mut hashing, &diff, &opts(), Some(&handle)).unwrap();
    let out = hashing.finish().unwrap();
    handle.finish().unwrap();
    out
}

#[test]
fn a_recorded_layer_rebuilds_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let stream = sample_layer();
    let (digest, len) = record(&stream, dir.path());
    assert_eq!(digest, Digest::of(&stream));
    assert_eq!(len, stream.len() as u64);

    let mut rebuilt = Rebuilt::open(
        &dir.path().join("diff"),
        &dir.path().join(FILE_NAME),
        &digest,
    )
    .unwrap();
    assert_eq!(rebuilt.size(), stream.len() as u64);
    let mut out = Vec::new();
    rebuilt.read_to_end(&mut out).unwrap();
    assert!(out == stream, "the rebuilt stream differs");

    // The record is small: file content is not in it.
    let kept = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
    assert!(kept < 4096, "record of {kept} bytes");
}

#[test]
fn a_changed_file_makes_the_rebuild_fail() {
    let dir = tempfile::tempdir().unwrap();
    let stream = sample_layer();
    let (digest, _) = record(&stream, dir.path());
    let file = dir.path().join("diff/etc/hostname");
    // Same length, other bytes: only the digest can tell.
    std::fs::write(&file, b"kooN\n").unwrap();
    let mut rebuilt = Rebuilt::open(
        &dir.path().join("diff"),
        &dir.path().join(FILE_NAME),
        &digest,
    )
    .unwrap();
    let err = rebuilt.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("were changed"), "{err}");

    // Another length: named at once.
    std::fs::write(&file, b"longer than before\n").unwrap();
    let mut rebuilt = Rebuilt::open(
        &dir.path().join("diff"),
        &dir.path().join(FILE_NAME),
        &digest,
    )
    .unwrap();
    let err = rebuilt.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("/etc/hostname"), "{err}");
}

#[test]
fn a_damaged_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), b"not gzip").unwrap();
    assert!(stream_size(&dir.path().join(FILE_NAME)).is_err());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(MAGIC).unwrap();
    gz.write_all(&[RAW, 10, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    std::fs::write(dir.path().join(FILE_NAME), gz.finish().unwrap()).unwrap();
    let err = stream_size(&dir.path().join(FILE_NAME)).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn the_quick_check_notices_changed_sizes_only() {
    let dir = tempfile::tempdir().unwrap();
    let stream = sample_layer();
    record(&stream, dir.path());
    let (diff, split) = (dir.path().join("diff"), dir.path().join(FILE_NAME));
    assert_eq!(check_sizes(&diff, &split).unwrap(), None);
    // Same length, other bytes: only a full rebuild can tell.
    std::fs::write(diff.join("etc/hostname"), b"kooN\n").unwrap();
    assert_eq!(check_sizes(&diff, &split).unwrap(), None);
    std::fs::write(diff.join("etc/hostname"), b"n").unwrap();
    let why = check_sizes(&diff, &split).unwrap().unwrap();
    assert!(why.contains("`/etc/hostname` has 1 bytes"), "{why}");
    std::fs::remove_file(diff.join("etc/hostname")).unwrap();
    let why = check_sizes(&diff, &split).unwrap().unwrap();
    assert!(why.contains("cannot be read"), "{why}");
}
