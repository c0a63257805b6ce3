//! `nook export` and `nook import`: a container's flattened file system, exported while it
//! runs or after it exited, on each storage driver, re-imported as a one-layer image that is
//! file for file what the container saw; `-c`, `-m`, compressed input on stdin; bad input
//! refused without a trace.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use crate::harness::context::store_state;
use crate::harness::fixtures::{self, Image, TarBuilder, gzip_layer, host_arch, plain_layer};
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

/// Three layers: the busybox base; `data/` with owners, modes, links and an xattr
/// (`data/owned` 1000:1000 0640, `data/hard` its hard link, `data/link` → `owned`,
/// `data/suid` 0:1000 04750, `data/shared/` 1000:1000 01777, `data/xattr` with
/// `user.nook=exported`, `data/ro/` 0555 holding `f`, `data/wiped`, `opq/{old}`); then a
/// whiteout of `data/wiped` and `opq/` made opaque with `opq/new`.
fn fixture() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut t = TarBuilder::new();
        t.dir("data", 0o755, 0, 0);
        t.file("data/owned", b"owned by app\n", 0o640, 1000, 1000);
        t.hardlink("data/hard", "data/owned");
        t.symlink("data/link", "owned");
        t.file("data/suid", b"#!/bin/sh\n", 0o4750, 0, 1000);
        t.dir("data/shared", 0o1777, 1000, 1000);
        t.file_with_xattr("data/xattr", b"x\n", 0o600, ("user.nook", b"exported"));
        t.dir("data/ro", 0o555, 0, 0);
        t.file("data/ro/f", b"in a read-only dir\n", 0o444, 0, 0);
        t.file("data/wiped", b"wiped by the next layer\n", 0o644, 0, 0);
        t.dir("data/old", 0o755, 0, 0);
        t.file("data/old/a", b"a\n", 0o644, 0, 0);
        t.dir("opq", 0o755, 0, 0);
        t.file("opq/old", b"old\n", 0o644, 0, 0);
        let mut top = TarBuilder::new();
        top.dir("data", 0o755, 0, 0);
        top.file("data/.wh.wiped", b"", 0o644, 0, 0);
        top.dir("opq", 0o755, 0, 0);
        top.file("opq/.wh..wh..opq", b"", 0o644, 0, 0);
        top.file("opq/new", b"new\n", 0o644, 0, 0);
        let layers = vec![
            gzip_layer(&fixtures::base_tar()),
            gzip_layer(&t.finish()),
            plain_layer(&top.finish()),
        ];
        fixtures::push_image("export-import", host_arch(), layers, &["sh"])
    })
}

/// What the container changes: files with owners, modes and links added, an image file
/// changed (copied up with a new owner), a file and a tree of the image deleted, the opaque
/// directory replaced again, a file of the base layer deleted and one of its hard links kept.
const SCRIPT: &str = "mkdir -p /new/dir && echo x > /new/dir/file && chown 1234:5678 /new/dir/file \
                      && chmod 640 /new/dir/file && ln -s dir/file /new/link && ln /new/dir/file /new/hard \
                      && echo more >> /etc/passwd && chown 1000:1000 /etc/group && rm /home/app/secret \
                      && rm -r /data/old && rm /data/suid && rm -r /opq && mkdir /opq && echo y > /opq/fresh \
                      && mkfifo /new/fifo && chmod 2755 /new/dir";

/// Every path of the root file system but nook's mount points, sorted: owner, group, mode
/// (and for non-directories link count, type and symlink target), then a hash of every
/// regular file. Directory link counts are left out: the overlay reports 1 for merged ones.
const LISTING: &str = r#"cd / && P='( -path ./proc -o -path ./sys -o -path ./dev -o -path ./etc/hosts -o -path ./etc/hostname -o -path ./etc/resolv.conf ) -prune -o'
{ find . -xdev $P -type d -exec stat -c '%n %u %g %a directory' {} + ;
  find . -xdev $P ! -type d -exec stat -c '%n %u %g %a %h %F %N' {} + ;
  find . -xdev $P -type f -exec sha256sum {} + ; } | sort"#;

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory the test user may write and root may read.
fn work_dir(ctx: &TestContext) -> PathBuf {
    let dir = ctx.home.join("work");
    assert_success(&ctx.run_as_user("mkdir", &["-p", path_str(&dir)]));
    dir
}

/// `nook ARGS` with stdout going to `out`.
fn nook_to_file(ctx: &TestContext, args: &[&str], out: &Path) -> Output {
    ctx.nook_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// `nook ARGS` with stdin read from `input`; through a pipe when `pipe`.
fn nook_from(ctx: &TestContext, args: &[&str], input: &Path, pipe: bool) -> Output {
    if !pipe {
        return ctx
            .nook_cmd()
            .args(args)
            .stdin(File::open(input).unwrap())
            .output()
            .unwrap();
    }
    let mut child = ctx
        .nook_cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(input).unwrap();
    // nook may stop reading early (bad input): a broken pipe is then fine.
    let _ = child.stdin.take().unwrap().write_all(&bytes);
    child.wait_with_output().unwrap()
}

/// One tar entry: name, type and PAX records.
type TarEntry = (String, tar::EntryType, Vec<(String, Vec<u8>)>);

/// Each entry of a tar.
fn tar_entries(path: &Path) -> Vec<TarEntry> {
    let bytes = std::fs::read(path).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
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
            (name, e.header().entry_type(), xattrs)
        })
        .collect()
}

/// The diff id of a one-layer image, from `inspect`.
fn only_layer(ctx: &TestContext, image: &str) -> String {
    let inspect: serde_json::Value =
        serde_json::from_str(&assert_success(&ctx.nook(&["inspect", image]))).unwrap();
    let layers = inspect[0]["RootFS"]["Layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), 1, "{inspect}");
    layers[0].as_str().unwrap().to_string()
}

/// Checks what every export holds: the container's files as it sees them, nook's mount points
/// as empty directories, nothing deleted, the layers' xattrs, hard links as links.
/// `image_links`: whether the container sees the image's hard links as such (the vfs driver
/// copies each name as a file of its own).
fn check_archive(archive: &Path, image_links: bool) {
    let entries = tar_entries(archive);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    for present in [
        "new/dir/file",
        "opq/fresh",
        "data/owned",
        "data/hard",
        "etc/xattr",
    ] {
        assert!(names.contains(&present), "{present} missing: {names:?}");
    }
    for absent in [
        "home/app/secret",
        "data/old/",
        "data/old/a",
        "data/suid",
        "data/wiped",
        "opq/old",
        "opq/new",
    ] {
        assert!(!names.contains(&absent), "{absent} present: {names:?}");
    }
    // No overlay bookkeeping: no whiteouts, no opaque markers, no devices.
    assert!(
        names
            .iter()
            .all(|n| !n.rsplit('/').any(|c| c.starts_with(".wh."))),
        "{names:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| !matches!(e.1, tar::EntryType::Char | tar::EntryType::Block)),
        "{names:?}"
    );
    // nook's mount points are empty directories, as in `docker export`.
    for dir in ["proc/", "sys/", "dev/"] {
        assert!(names.contains(&dir), "{dir} missing: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with(dir) && *n != dir),
            "{dir} has contents: {names:?}"
        );
    }
    let xattrs = |name: &str| {
        entries
            .iter()
            .find(|e| e.0 == name)
            .map(|e| e.2.clone())
            .unwrap()
    };
    assert!(
        xattrs("data/xattr").contains(&("SCHILY.xattr.user.nook".into(), b"exported".to_vec())),
        "{:?}",
        xattrs("data/xattr")
    );
    assert!(
        xattrs("etc/xattr").contains(&("SCHILY.xattr.user.nook".into(), b"test".to_vec())),
        "{:?}",
        xattrs("etc/xattr")
    );
    // Exactly one of the two names of a hard link carries the content.
    let kinds = |a: &str, b: &str| -> Vec<tar::EntryType> {
        entries
            .iter()
            .filter(|e| e.0 == a || e.0 == b)
            .map(|e| e.1)
            .collect()
    };
    let linked = [tar::EntryType::Regular, tar::EntryType::Link];
    assert_eq!(kinds("new/dir/file", "new/hard"), linked);
    if image_links {
        assert_eq!(kinds("data/hard", "data/owned"), linked);
    } else {
        assert_eq!(
            kinds("data/hard", "data/owned"),
            [tar::EntryType::Regular; 2]
        );
    }
}

/// Imports `archive` as `name`, runs [`LISTING`] in it on overlay (the vfs driver copies each
/// hard link as a file of its own), and checks the xattrs reached the stored layer.
fn imported_listing(ctx: &TestContext, archive: &Path, name: &str) -> String {
    let id = assert_success(&ctx.nook(&["import", path_str(archive), name]));
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let diff_id = only_layer(ctx, name);
    let layer = ctx
        .data
        .join("nook/layers")
        .join(diff_id.trim_start_matches("sha256:"))
        .join("diff");
    for (file, value) in [("data/xattr", &b"exported"[..]), ("etc/xattr", b"test")] {
        assert_eq!(
            xattr::get(layer.join(file), "user.nook")
                .unwrap()
                .as_deref(),
            Some(value),
            "{file}"
        );
    }
    assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--storage-driver",
        "overlay",
        name,
        "sh",
        "-c",
        LISTING,
    ]))
}

fn exited_round_trip(driver: &str) {
    let ctx = TestContext::new();
    let image = &fixture().reference;
    assert_success(&ctx.nook(&["pull", "-q", image]));
    let script = format!("{SCRIPT} && {LISTING}");
    let seen = assert_success(&ctx.nook(&[
        "run",
        "--name",
        "changed",
        "--network",
        "none",
        "--storage-driver",
        driver,
        image,
        "sh",
        "-c",
        &script,
    ]));
    assert!(
        seen.contains("./new/dir/file 1234 5678 640 2 regular file"),
        "{seen}"
    );
    assert!(seen.contains("./new/fifo 0 0 644 1 fifo"), "{seen}");
    let dir = work_dir(&ctx);
    let archive = dir.join("changed.tar");
    assert_success(&ctx.nook(&["export", "-o", path_str(&archive), "changed"]));
    // No temporary file is left beside the archive.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    check_archive(&archive, driver != "vfs");
    let after = imported_listing(&ctx, &archive, "flat:1");
    assert_eq!(seen, after, "storage driver {driver}");
    // The image is the archive's one layer, for this machine, with Docker's history entry.
    let history = assert_success(&ctx.nook(&["history", "--no-trunc", "flat:1"]));
    assert!(
        history.contains(&format!("import {}", archive.display())),
        "{history}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&assert_success(&ctx.nook(&["inspect", "flat:1"]))).unwrap();
    assert_eq!(inspect[0]["Architecture"], host_arch(), "{inspect}");
    assert_eq!(inspect[0]["Os"], "linux", "{inspect}");
}

#[test]
fn export_of_an_exited_container_reimports_file_for_file_on_overlay() {
    exited_round_trip("overlay");
}

#[test]
fn export_of_an_exited_container_reimports_file_for_file_on_fuse_overlayfs() {
    exited_round_trip("fuse-overlayfs");
}

#[test]
fn export_of_an_exited_container_reimports_file_for_file_on_vfs() {
    exited_round_trip("vfs");
}

#[test]
fn export_of_a_running_container_to_stdout() {
    let ctx = TestContext::new();
    let image = &fixture().reference;
    assert_success(&ctx.nook(&["pull", "-q", image]));
    let script = format!("{SCRIPT} && touch /ready && exec sleep 600");
    assert_success(&ctx.nook(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        &script,
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ctx
        .nook(&["exec", "busy", "test", "-e", "/ready"])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seen = assert_success(&ctx.nook(&["exec", "busy", "sh", "-c", LISTING]));
    let dir = work_dir(&ctx);
    let archive = dir.join("busy.tar");
    assert_success(&nook_to_file(
        &ctx,
        &["container", "export", "busy"],
        &archive,
    ));
    check_archive(&archive, true);
    // Still running, and what it was running with is not in the archive beyond mount points.
    assert_success(&ctx.nook(&["exec", "busy", "true"]));
    let after = imported_listing(&ctx, &archive, "flat:running");
    assert_eq!(seen, after);
    assert_success(&ctx.nook(&["rm", "-f", "busy"]));
}

#[test]
fn import_applies_changes_and_message_and_reads_gzip_from_stdin() {
    let ctx = TestContext::new();
    let image = &fixture().reference;
    assert_success(&ctx.nook(&["pull", "-q", image]));
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        "echo 'from x' > /x && mkdir /srv",
    ]));
    let dir = work_dir(&ctx);
    let archive = dir.join("src.tar");
    assert_success(&ctx.nook(&["export", "-o", path_str(&archive), "src"]));

    // -c and -m, untagged: `<none>` in the list, the command given runs.
    let id = assert_success(&ctx.nook(&[
        "import",
        "-c",
        r#"CMD ["cat","/x"]"#,
        "-c",
        "ENV GREETING=hello",
        "-c",
        "WORKDIR /srv",
        "-m",
        "flattened by a test",
        path_str(&archive),
    ]));
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = assert_success(&ctx.nook(&["images"]));
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(&id[7..19])),
        "{images}"
    );
    let out = assert_success(&ctx.nook(&["run", "--rm", "--network", "none", &id]));
    assert_eq!(out, "from x\n");
    let out = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--network",
        "none",
        &id,
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ]));
    assert_eq!(out, "hello\n/srv\n");
    let history = assert_success(&ctx.nook(&["history", "--no-trunc", &id]));
    assert!(history.contains("flattened by a test"), "{history}");

    // gzip through a pipe, and zstd from a file on stdin: the same layer as the plain tar.
    let plain_layer = only_layer(&ctx, &id);
    let gz = dir.join("src.tar.gz");
    let zst = dir.join("src.tar.zst");
    let mut encoder =
        flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::default());
    encoder
        .write_all(&std::fs::read(&archive).unwrap())
        .unwrap();
    encoder.finish().unwrap();
    std::fs::write(
        &zst,
        zstd::encode_all(File::open(&archive).unwrap(), 3).unwrap(),
    )
    .unwrap();
    for (input, name, pipe) in [(&gz, "from-gzip:1", true), (&zst, "from-zstd:1", false)] {
        let out = nook_from(&ctx, &["import", "-", name], input, pipe);
        let printed = assert_success(&out);
        assert!(printed.trim().starts_with("sha256:"), "{printed}");
        assert_eq!(only_layer(&ctx, name), plain_layer, "{name}");
        let out = assert_success(&ctx.nook(&["run", "--rm", name, "cat", "/x"]));
        assert_eq!(out, "from x\n");
    }
    let history = assert_success(&ctx.nook(&["history", "--no-trunc", "from-gzip:1"]));
    assert!(history.contains("import -"), "{history}");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let ctx = TestContext::new();
    let image = &fixture().reference;
    assert_success(&ctx.nook(&["pull", "-q", image]));
    assert_success(&ctx.nook(&["run", "--name", "c", "--network", "none", image, "true"]));
    let dir = work_dir(&ctx);
    let good = dir.join("good.tar");
    assert_success(&ctx.nook(&["export", "-o", path_str(&good), "c"]));
    let before = store_state(&ctx);
    assert!(before.2);

    // Export: an unknown container, -o into a directory that does not exist or onto a
    // directory; nothing is written anywhere.
    let err = assert_failure(&ctx.nook(&["export", "-o", "x.tar", "nosuch"]), 125);
    assert_one_error_line(&err, "nosuch");
    let missing = dir.join("missing/out.tar");
    let err = assert_failure(&ctx.nook(&["export", "-o", path_str(&missing), "c"]), 125);
    assert_one_error_line(&err, "does not exist");
    let err = assert_failure(&ctx.nook(&["export", "-o", path_str(&dir), "c"]), 125);
    assert_one_error_line(&err, "is a directory");
    // A tar on a terminal, as Docker: refused (and import will not wait for a terminal).
    let bin = crate::harness::context::nook_bin().display().to_string();
    for (command, needle) in [
        (format!("{bin} export c"), "to a terminal"),
        (format!("{bin} import -"), "no archive on standard input"),
    ] {
        let out = ctx
            .command_as_user("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{command}: {out:?}");
        assert_one_error_line(&String::from_utf8_lossy(&out.stdout), needle);
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["good.tar"]);
    assert!(!ctx.home.join("x.tar").exists());

    // Import: archives that are not tars, cut short, or leave their directory.
    let good_bytes = std::fs::read(&good).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good_bytes).unwrap();
    let gz = gz.finish().unwrap();
    // Where the header of an entry in the middle starts: the tar reader would stop there.
    let boundary = {
        let mut archive = tar::Archive::new(good_bytes.as_slice());
        let starts: Vec<u64> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().raw_header_position())
            .collect();
        starts[starts.len() / 2] as usize
    };
    let mut escaping = TarBuilder::new();
    escaping.file("fine", b"fine\n", 0o644, 0, 0);
    escaping.raw(tar::EntryType::Regular, "../escaped", "", b"out\n");
    let mut text = Vec::new();
    for i in 0..200 {
        writeln!(text, "line {i} of a file that is not a tar").unwrap();
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text.tar", text, "not a tar archive"),
        ("short.tar", b"hello\n".to_vec(), "not a tar archive"),
        ("empty.tar", Vec::new(), "empty"),
        ("cut.tar.gz", gz[..gz.len() * 2 / 3].to_vec(), "truncated"),
        ("trailer.tar.gz", gz[..gz.len() - 4].to_vec(), "truncated"),
        (
            "cut.tar",
            good_bytes[..good_bytes.len() / 2 + 100].to_vec(),
            "truncated",
        ),
        ("boundary.tar", good_bytes[..boundary].to_vec(), "truncated"),
        ("escaping.tar", escaping.finish(), "leaves the layer"),
        ("x.tar.xz", b"\xfd7zXZ\0rest".to_vec(), "xz"),
    ];
    for (name, bytes, needle) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = assert_failure(&ctx.nook(&["import", path_str(&path), "bad:1"]), 125);
        assert_one_error_line(&err, needle);
        let err = assert_failure(
            &nook_from(&ctx, &["import", "-", "bad:1"], &path, true),
            125,
        );
        assert_one_error_line(&err, needle);
        assert_eq!(store_state(&ctx), before, "{name}");
    }
    for (args, needle) in [
        (
            vec!["import", "https://example.com/rootfs.tar"],
            "does not download",
        ),
        (vec!["import", path_str(&dir)], "is a directory"),
        (vec!["import", "/no/such.tar"], "/no/such.tar"),
        (
            vec!["import", "-c", "RUN make", path_str(&good)],
            "RUN make",
        ),
        (
            vec!["import", path_str(&good), "Bad:Name:1"],
            "invalid reference",
        ),
    ] {
        let err = assert_failure(&ctx.nook(&args), 125);
        assert_one_error_line(&err, needle);
        assert_eq!(store_state(&ctx), before, "{args:?}");
    }
}
