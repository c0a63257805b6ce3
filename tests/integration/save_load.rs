//! `nook save` and `nook load`: round trips that keep digests and files, archives written and
//! read by skopeo, several images in one archive, and bad archives refused without a trace.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use nook::image::digest::Digest;

use crate::harness::context::store_state;
use crate::harness::fixtures::{self, Image, TarBuilder, gzip_layer, host_arch};
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

/// Two layers: the busybox base, then entries with owners, modes, links and xattrs that a
/// round trip must keep: `data/owned` (1000:1000 0640), `data/suid` (0:1000 04750),
/// `data/shared/` (1000:1000 01777), `data/link` → `owned`, `data/hard` (hard link to
/// `data/owned`), `data/xattr` (`user.nook=round trip`), `data/ro/` (0555, holding `f`).
fn fixture() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut t = TarBuilder::new();
        t.dir("data", 0o755, 0, 0);
        t.file("data/owned", b"owned by app\n", 0o640, 1000, 1000);
        t.file("data/suid", b"#!/bin/sh\n", 0o4750, 0, 1000);
        t.dir("data/shared", 0o1777, 1000, 1000);
        t.symlink("data/link", "owned");
        t.hardlink("data/hard", "data/owned");
        t.file_with_xattr("data/xattr", b"x\n", 0o600, ("user.nook", b"round trip"));
        t.dir("data/ro", 0o555, 0, 0);
        t.file("data/ro/f", b"in a read-only dir\n", 0o444, 0, 0);
        let layers = vec![gzip_layer(&fixtures::base_tar()), gzip_layer(&t.finish())];
        fixtures::push_image("save-load", host_arch(), layers, &["sh"])
    })
}

const PATHS: &str = "/data/owned /data/suid /data/shared /data/link /data/hard /data/xattr /data/ro /data/ro/f /home/app /home/app/secret /bin/suid /bin/hard /bin/sh /tmp /etc/passwd";

/// Owner, group, mode, link count and name (with a symlink's target) of every interesting
/// path, and a hash of every regular file, as the container sees them.
fn files_seen(ctx: &TestContext, image: &str) -> String {
    let script = format!(
        "stat -c '%u %g %a %h %N' {PATHS} && sha256sum /data/owned /data/suid /data/xattr /data/ro/f /bin/busybox /etc/passwd"
    );
    assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        &script,
    ]))
}

fn image_id(ctx: &TestContext, image: &str) -> String {
    assert_success(&ctx.nook(&["inspect", "--format", "{{.Id}}", image]))
        .trim()
        .to_string()
}

/// A directory the test user may write and root (skopeo) may read.
fn work_dir(ctx: &TestContext) -> PathBuf {
    let dir = ctx.home.join("work");
    assert_success(&ctx.run_as_user("mkdir", &["-p", dir.to_str().unwrap()]));
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `nook ARGS` with stdout going to `out`.
fn nook_to_file(ctx: &TestContext, args: &[&str], out: &Path) -> Output {
    let file = File::create(out).unwrap();
    ctx.nook_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// `nook ARGS` with stdin read from `input`.
fn nook_from_file(ctx: &TestContext, args: &[&str], input: &Path) -> Output {
    ctx.nook_cmd()
        .args(args)
        .stdin(File::open(input).unwrap())
        .output()
        .unwrap()
}

/// The layer directory of `diff_id` in the test user's store.
fn layer_dir(ctx: &TestContext, diff_id: &Digest) -> PathBuf {
    ctx.data
        .join("nook/layers")
        .join(diff_id.hex())
        .join("diff")
}

fn round_trip(format: &str, through_pipes: bool) {
    let image = fixture();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let before = files_seen(&ctx, &image.reference);
    assert!(before.contains("1000 1000 640 2 /data/owned\n"), "{before}");
    assert_eq!(
        image_id(&ctx, &image.reference),
        image.config_digest.to_string()
    );

    let dir = work_dir(&ctx);
    let archive = dir.join(format!("saved-{format}.tar"));
    if through_pipes {
        let out = nook_to_file(
            &ctx,
            &["save", "--format", format, &image.reference],
            &archive,
        );
        assert_success(&out);
    } else {
        assert_success(&ctx.nook(&[
            "save",
            "--format",
            format,
            "-o",
            path_str(&archive),
            &image.reference,
        ]));
    }
    // No temporary file is left beside the archive.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    assert_success(&ctx.nook(&["rmi", &image.reference]));
    assert!(!layer_dir(&ctx, &image.layers[1].diff_id).exists());
    let out = if through_pipes {
        // Piped and gzip-compressed: the archive is spooled and decompressed.
        let gz = dir.join("saved.tar.gz");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gzip -c < '{}' > '{}'",
                archive.display(),
                gz.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = ctx
            .nook_cmd()
            .arg("load")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let bytes = std::fs::read(&gz).unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        child.wait_with_output().unwrap()
    } else {
        // `nook load < FILE`: a regular file on stdin is read in place.
        nook_from_file(&ctx, &["load"], &archive)
    };
    let stdout = assert_success(&out);
    assert_eq!(stdout, format!("Loaded image: {}\n", image.reference));

    assert_eq!(
        image_id(&ctx, &image.reference),
        image.config_digest.to_string()
    );
    let after = files_seen(&ctx, &image.reference);
    assert_eq!(before, after);
    for layer in &image.layers {
        assert!(layer_dir(&ctx, &layer.diff_id).is_dir(), "same diff ids");
    }
    assert_eq!(
        xattr::get(
            layer_dir(&ctx, &image.layers[1].diff_id).join("data/xattr"),
            "user.nook"
        )
        .unwrap()
        .as_deref(),
        Some(&b"round trip"[..])
    );
    assert_eq!(
        xattr::get(
            layer_dir(&ctx, &image.layers[0].diff_id).join("etc/xattr"),
            "user.nook"
        )
        .unwrap()
        .as_deref(),
        Some(&b"test"[..])
    );

    // Saved again, the archive is the same bytes: the layers are rebuilt exactly.
    let again = dir.join("again.tar");
    assert_success(&ctx.nook(&[
        "save",
        "--format",
        format,
        "-o",
        path_str(&again),
        &image.reference,
    ]));
    if format == "docker-archive" {
        assert_eq!(
            std::fs::read(&archive).unwrap(),
            std::fs::read(&again).unwrap()
        );
    }
}

#[test]
fn save_load_round_trip_docker_archive() {
    round_trip("docker-archive", false);
}

#[test]
fn save_load_round_trip_oci_archive_through_pipes_and_gzip() {
    round_trip("oci-archive", true);
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes a file root wrote readable by the test user.
fn share(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn save_load_archives_written_by_skopeo_load_and_run() {
    let image = fixture();
    let ctx = TestContext::new();
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker.tar");
    let oci = dir.path().join("oci.tar");
    let source = format!("docker://{}", image.reference);
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &source,
        &format!("docker-archive:{}:skopeo/docker:v1", docker.display()),
    ]);
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &source,
        &format!("oci-archive:{}:skopeo/oci:v2", oci.display()),
    ]);
    share(&docker);
    share(&oci);
    // The temp dir is root's 0700: give the user a way in.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = assert_success(&ctx.nook(&["load", "-i", path_str(&docker)]));
    assert_eq!(out, "Loaded image: skopeo/docker:v1\n");
    let out = assert_success(&ctx.nook(&["load", "-q", "-i", path_str(&oci)]));
    assert_eq!(out, "Loaded image: skopeo/oci:v2\n");
    for name in ["skopeo/docker:v1", "skopeo/oci:v2"] {
        assert_eq!(
            image_id(&ctx, name),
            image.config_digest.to_string(),
            "{name}"
        );
        let seen = files_seen(&ctx, name);
        assert!(seen.contains("1000 1000 640 2 /data/owned\n"), "{seen}");
        assert!(seen.contains("'/data/link' -> 'owned'"), "{seen}");
    }
    // `--all` from a multi-platform image: an index inside the index; the host's image is
    // chosen, as pull chooses it.
    let multi = fixtures::multi_platform();
    let all = dir.path().join("all.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}", multi.reference),
        &format!("oci-archive:{}:skopeo/multi:all", all.display()),
    ]);
    share(&all);
    let out = assert_success(&ctx.nook(&["load", "-i", path_str(&all)]));
    assert_eq!(out, "Loaded image: skopeo/multi:all\n");
    assert_eq!(
        image_id(&ctx, "skopeo/multi:all"),
        multi.images[0].config_digest.to_string()
    );
    let arch = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--network",
        "none",
        "skopeo/multi:all",
        "cat",
        "/etc/arch",
    ]));
    assert_eq!(arch, format!("{}\n", host_arch()));
    assert_success(&ctx.nook(&["rmi", "skopeo/multi:all"]));

    // Both name the same image, whose layers are stored once.
    let ids = assert_success(&ctx.nook(&["images", "-q"]));
    let unique: std::collections::BTreeSet<&str> = ids.lines().collect();
    assert_eq!(unique.len(), 1, "{ids}");
}

#[test]
fn save_archives_are_read_by_skopeo() {
    let image = fixture();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dir = work_dir(&ctx);
    let docker = dir.join("docker.tar");
    let oci = dir.join("oci.tar");
    assert_success(&ctx.nook(&["save", "-o", path_str(&docker), &image.reference]));
    assert_success(&ctx.nook(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        path_str(&oci),
        &image.reference,
    ]));
    let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();

    let inspected: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", docker.display()),
    ]))
    .unwrap();
    assert_eq!(
        inspected["Layers"],
        serde_json::json!(diff_ids),
        "{inspected}"
    );
    let config: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("docker-archive:{}", docker.display()),
    ]))
    .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));

    // skopeo copies both archives to OCI layouts whose every blob hashes to its name.
    for (name, source) in [
        ("from-oci", format!("oci-archive:{}", oci.display())),
        (
            "from-docker",
            format!("docker-archive:{}", docker.display()),
        ),
    ] {
        let layout = dir.join(name);
        skopeo(&[
            "copy",
            "--quiet",
            &source,
            &format!("oci:{}:x", layout.display()),
        ]);
        let mut blobs = 0;
        for entry in std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .flatten()
        {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert_eq!(
                Digest::of(&bytes).hex(),
                entry.file_name().to_str().unwrap(),
                "{name}"
            );
            blobs += 1;
        }
        assert_eq!(blobs, 4, "{name}: 2 layers, config, manifest");
        // (From a docker-archive skopeo converts the config to OCI's form: a new blob.)
        let config = layout.join("blobs/sha256").join(image.config_digest.hex());
        assert!(
            name == "from-docker" || config.is_file(),
            "{name}: the config is kept byte for byte"
        );
    }
    // The oci-archive's name is what Podman and skopeo use to pick an image.
    skopeo(&[
        "inspect",
        &format!("oci-archive:{}:{}", oci.display(), image.reference),
    ]);
}

/// The images list, as `REPOSITORY:TAG ID` lines.
fn images(ctx: &TestContext) -> Vec<String> {
    let out = assert_success(&ctx.nook(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]));
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn save_several_images_in_one_archive() {
    let one = fixture();
    let two = fixtures::multi_layer();
    for format in ["docker-archive", "oci-archive"] {
        let ctx = TestContext::new();
        assert_success(&ctx.nook(&["pull", "-q", &one.reference]));
        assert_success(&ctx.nook(&["pull", "-q", &two.reference]));
        assert_success(&ctx.nook(&["tag", &one.reference, "second-name:1"]));
        let listed = images(&ctx);
        assert_eq!(listed.len(), 3, "{listed:?}");
        let dir = work_dir(&ctx);
        let archive = dir.join("all.tar");
        assert_success(&ctx.nook(&[
            "save",
            "--format",
            format,
            "-o",
            path_str(&archive),
            &one.reference,
            "second-name:1",
            &two.reference,
        ]));
        assert_success(&ctx.nook(&["rmi", "-f", &one.reference, "second-name:1", &two.reference]));
        assert!(images(&ctx).is_empty());
        let out = assert_success(&ctx.nook(&["load", "-i", path_str(&archive)]));
        let mut loaded: Vec<&str> = out.lines().collect();
        loaded.sort();
        let mut expected = vec![
            format!("Loaded image: {}", one.reference),
            "Loaded image: second-name:1".to_string(),
            format!("Loaded image: {}", two.reference),
        ];
        expected.sort();
        assert_eq!(loaded, expected, "{format}");
        assert_eq!(images(&ctx), listed, "{format}");
        // The whiteouts and the opaque directory of the multi-layer image still apply.
        let out = assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            "none",
            &two.reference,
            "sh",
            "-c",
            "ls /data /opq",
        ]));
        assert_eq!(out, "/data:\ndir\nkeep\n\n/opq:\nnew\n", "{format}");
    }
}

/// The regular files of a tar, in order.
fn tar_files(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A tar of `files`, in order; names are written raw (so `../x` survives).
fn make_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut t = TarBuilder::new();
    for (name, data) in files {
        if name.len() < 100 {
            t.raw(tar::EntryType::Regular, name, "", data);
        } else {
            t.file(name, data, 0o644, 0, 0);
        }
    }
    t.finish()
}

#[test]
fn save_load_refuses_bad_archives_and_keeps_nothing() {
    let image = fixture();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dir = work_dir(&ctx);
    let good_docker = dir.join("good-docker.tar");
    let good_oci = dir.join("good-oci.tar");
    assert_success(&ctx.nook(&["save", "-o", path_str(&good_docker), &image.reference]));
    assert_success(&ctx.nook(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        path_str(&good_oci),
        &image.reference,
    ]));
    assert_success(&ctx.nook(&["rmi", &image.reference]));
    let before = store_state(&ctx);
    assert!(before.2);

    let docker = std::fs::read(&good_docker).unwrap();
    let oci = std::fs::read(&good_oci).unwrap();
    let docker_files = tar_files(&docker);
    let oci_files = tar_files(&oci);
    let top_hex = image.layers[1].diff_id.hex().to_string();
    let base_hex = image.layers[0].diff_id.hex().to_string();

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            docker[..docker.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "truncated-oci",
            oci[..oci.len() - 2000].to_vec(),
            "truncated",
        ),
        (
            "not-an-archive",
            b"hello, I am not a tar file\n".repeat(40),
            "not a tar archive",
        ),
        ("empty", Vec::new(), "empty"),
    ];
    // An OCI layer blob whose content is not what its digest says.
    let lying_blob: Vec<_> = oci_files
        .iter()
        .map(|(n, d)| {
            let mut d = d.clone();
            if n == &format!("blobs/sha256/{top_hex}") {
                let at = d.len() / 3;
                d[at] ^= 1;
            }
            (n.clone(), d)
        })
        .collect();
    cases.push(("lying-blob", make_tar(&lying_blob), "hashes to"));
    // A docker-archive whose top layer is not the one the config names: the base goes in
    // first (it is not in the store yet) and must be taken out again.
    let lying_layer: Vec<_> = docker_files
        .iter()
        .map(|(n, d)| {
            if n == &format!("{top_hex}/layer.tar") {
                let mut t = TarBuilder::new();
                t.file("evil", b"not the layer\n", 0o644, 0, 0);
                (n.clone(), t.finish())
            } else {
                (n.clone(), d.clone())
            }
        })
        .collect();
    cases.push(("lying-diff-id", make_tar(&lying_layer), "hashes to"));
    // An entry that escapes.
    let mut escaping = docker_files.clone();
    escaping.insert(0, ("../escaped".to_string(), b"x".to_vec()));
    cases.push(("dot-dot", make_tar(&escaping), "escapes the archive"));
    // A config whose name is not its digest.
    let config_name = format!("{}.json", image.config_digest.hex());
    let lying_config: Vec<_> = docker_files
        .iter()
        .map(|(n, d)| {
            if n == &config_name {
                let text = String::from_utf8(d.clone())
                    .unwrap()
                    .replace("\"sh\"", "\"ls\"");
                (n.clone(), text.into_bytes())
            } else {
                (n.clone(), d.clone())
            }
        })
        .collect();
    cases.push(("lying-config", make_tar(&lying_config), "hashes to"));

    // Nothing of the fixture is left: its base layer is new to the store on every load.
    assert!(!layer_dir(&ctx, &Digest::from_hex(&base_hex).unwrap()).exists());
    for (name, bytes, needle) in cases {
        let path = dir.join(format!("{name}.tar"));
        std::fs::write(&path, &bytes).unwrap();
        share(&path);
        let out = ctx.nook(&["load", "-i", path_str(&path)]);
        let err = assert_failure(&out, 125);
        assert_one_error_line(&err, needle);
        assert_eq!(store_state(&ctx), before, "{name}: {err}");
        // The same through a pipe (spooled to the store's tmp/, which must end empty).
        let out = ctx.nook_with_stdin(&["load"], &bytes);
        let err = assert_failure(&out, 125);
        assert_one_error_line(&err, needle);
        assert_eq!(store_state(&ctx), before, "{name} (stdin): {err}");
    }
    // The lying docker-archive's base layer was new to the store: check it was imported and
    // removed, not merely never reached, by loading the good archive now.
    let out = assert_success(&ctx.nook(&["load", "-i", path_str(&good_docker)]));
    assert_eq!(out, format!("Loaded image: {}\n", image.reference));
}

#[test]
fn save_refuses_bad_requests_and_leaves_no_half_archive() {
    let ctx = TestContext::new();
    let image = fixture();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dir = work_dir(&ctx);
    let target = dir.join("out.tar");
    let err = assert_failure(
        &ctx.nook(&[
            "save",
            "-o",
            path_str(&target),
            &image.reference,
            "no-such-image",
        ]),
        125,
    );
    assert_one_error_line(&err, "no such image: no-such-image");
    let err = assert_failure(
        &ctx.nook(&["save", "--format", "oci-dir", &image.reference]),
        125,
    );
    assert_one_error_line(&err, "-o DIR");
    // Binary on a terminal, as Docker: refused (and `load` will not wait for a terminal).
    let bin = crate::harness::context::nook_bin().display().to_string();
    for (command, needle) in [
        (format!("{bin} save {}", image.reference), "to a terminal"),
        (format!("{bin} load"), "no archive on standard input"),
    ] {
        let out = ctx
            .command_as_user("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{command}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_one_error_line(&text, needle);
    }

    // oci-dir: a new directory holding a layout skopeo reads, named by the full reference.
    let layout = dir.join("layout");
    assert_success(&ctx.nook(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        path_str(&layout),
        &image.reference,
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        image.reference
    );
    let copied = dir.join("copied");
    skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:{}", layout.display(), image.reference),
        &format!("oci:{}:x", copied.display()),
    ]);
    std::fs::remove_dir_all(&copied).unwrap();
    // An existing layout is not added to.
    let err = assert_failure(
        &ctx.nook(&[
            "save",
            "--format",
            "oci-dir",
            "-o",
            path_str(&layout),
            &image.reference,
        ]),
        125,
    );
    assert_one_error_line(&err, "not empty");
    std::fs::remove_dir_all(&layout).unwrap();

    // A layer whose files changed since it was stored cannot be saved as the same layer, and
    // the half-written archive is removed.
    let top = layer_dir(&ctx, &image.layers[1].diff_id);
    std::fs::OpenOptions::new()
        .append(true)
        .open(top.join("data/owned"))
        .unwrap()
        .write_all(b"changed\n")
        .unwrap();
    for format in ["docker-archive", "oci-archive", "oci-dir"] {
        let err = assert_failure(
            &ctx.nook(&[
                "save",
                "--format",
                format,
                "-o",
                path_str(&target),
                &image.reference,
            ]),
            125,
        );
        assert_one_error_line(&err, &image.layers[1].diff_id.to_string());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(names.is_empty(), "{format}: {names:?}");
    }
}

#[test]
fn save_load_an_image_committed_here() {
    let image = fixture();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "maker",
        "--network",
        "none",
        &image.reference,
        "sh",
        "-c",
        "echo made > /data/made && chown 1000:1000 /data/made && ln -s made /data/made-link && rm /data/suid",
    ]));
    let id = assert_success(&ctx.nook(&["commit", "-q", "maker", "made:1"]));
    assert_success(&ctx.nook(&["rm", "maker"]));
    let script = "stat -c '%u %g %a %N' /data/made /data/made-link; cat /data/made; ls /data/suid 2>&1; true";
    let run = |ctx: &TestContext| {
        assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            "none",
            "made:1",
            "sh",
            "-c",
            script,
        ]))
    };
    let before = run(&ctx);
    assert!(before.contains("1000 1000 644 /data/made\n"), "{before}");
    assert!(before.contains("No such file"), "{before}");
    let dir = work_dir(&ctx);
    for format in ["docker-archive", "oci-archive"] {
        let archive = dir.join(format!("{format}.tar"));
        assert_success(&ctx.nook(&[
            "save",
            "--format",
            format,
            "-o",
            path_str(&archive),
            "made:1",
        ]));
        assert_success(&ctx.nook(&["rmi", "made:1"]));
        let out = assert_success(&ctx.nook(&["load", "-i", path_str(&archive)]));
        assert_eq!(out, "Loaded image: made:1\n");
        assert_eq!(image_id(&ctx, "made:1"), id.trim(), "{format}");
        assert_eq!(run(&ctx), before, "{format}");
    }
}
