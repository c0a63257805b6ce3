//! `nook pull` against the loopback registry: what lands in the store, and that nothing
//! half-written ever becomes visible.

use std::os::linux::fs::MetadataExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;

use crate::harness::fixtures::{self, host_arch, other_arch};
use crate::harness::{TestContext, assert_failure, assert_success};

/// Where a pulled image's layer directories are, bottom first.
pub fn layer_dirs(ctx: &TestContext, image: &str) -> Vec<PathBuf> {
    let out = assert_success(&ctx.nook(&[
        "inspect",
        "--format",
        "{{.GraphDriver.Data.LowerDir}}",
        image,
    ]));
    let mut dirs: Vec<PathBuf> = out.trim().split(':').map(PathBuf::from).collect();
    dirs.reverse();
    dirs
}

/// The host id that container id `inside` maps to for the test user (0 → the user itself).
fn host_id(ctx: &TestContext, file: &str, inside: u32) -> u32 {
    if inside == 0 {
        return if file == "/etc/subuid" {
            ctx.uid().as_raw()
        } else {
            ctx.gid().as_raw()
        };
    }
    let name = crate::harness::context::test_user_name();
    let uid = ctx.uid().as_raw().to_string();
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{uid}:")))
        .unwrap_or_else(|| panic!("no range for the test user in {file}"));
    let start: u32 = line.split(':').nth(1).unwrap().parse().unwrap();
    start + inside - 1
}

fn staging_is_empty(ctx: &TestContext) -> bool {
    let staging = ctx.data.join("nook/layers/.staging");
    std::fs::read_dir(&staging)
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

#[test]
fn pull_keeps_owners_modes_links_and_xattrs() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    let out = ctx.nook(&["pull", &image.reference]);
    let stdout = assert_success(&out);
    assert_eq!(stdout.trim(), image.reference);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Pull complete"), "{stderr}");
    assert!(
        stderr.contains(&format!("Digest: {}", image.manifest_digest)),
        "{stderr}"
    );

    let dirs = layer_dirs(&ctx, &image.reference);
    assert_eq!(dirs.len(), 1);
    let root = &dirs[0];
    let meta =
        |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));

    let app = meta("home/app");
    assert_eq!(app.st_uid(), host_id(&ctx, "/etc/subuid", 1000));
    assert_eq!(app.st_gid(), host_id(&ctx, "/etc/subgid", 1000));
    assert_eq!(app.permissions().mode() & 0o7777, 0o750);
    assert_eq!(meta("home/app/secret").permissions().mode() & 0o7777, 0o640);
    let busybox = meta("bin/busybox");
    assert_eq!(
        busybox.st_uid(),
        ctx.uid().as_raw(),
        "container root is the user"
    );
    assert_eq!(meta("bin/suid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(meta("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(meta("bin/hard").st_ino(), busybox.st_ino(), "hardlink kept");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert_eq!(
        xattr::get(root.join("etc/xattr"), "user.nook")
            .unwrap()
            .as_deref(),
        Some(&b"test"[..])
    );
    assert_eq!(meta("etc/passwd").st_mtime(), fixtures::MTIME as i64);
    assert!(staging_is_empty(&ctx));
}

#[test]
fn pull_applies_whiteouts_and_opaque_directories_in_overlay_form() {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dirs = layer_dirs(&ctx, &image.reference);
    assert_eq!(dirs.len(), 3);
    let top = &dirs[2];
    // The whiteout: a 0:0 character device (or the `.wh.` file fuse-overlayfs reads).
    match std::fs::symlink_metadata(top.join("data/gone")) {
        Ok(m) => {
            assert!(
                m.file_type().is_char_device(),
                "data/gone should be a whiteout device"
            );
            assert_eq!(m.st_rdev(), 0);
        }
        Err(_) => assert!(
            top.join("data/.wh.gone").exists(),
            "no whiteout for data/gone"
        ),
    }
    let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| xattr::get(top.join("opq"), name).ok().flatten().as_deref() == Some(&b"y"[..]))
        || top.join("opq/.wh..wh..opq").exists();
    assert!(opaque, "opq/ is not marked opaque");
    assert!(top.join("opq/new").is_file());
    assert!(!top.join("opq/.wh..wh..opq").exists() || !top.join("opq/old1").exists());
    assert!(
        dirs[1].join("data/gone").is_file(),
        "lower layers are untouched"
    );
}

#[test]
fn shared_layers_are_stored_once_and_a_second_pull_is_up_to_date() {
    let ctx = TestContext::new();
    let single = fixtures::single_layer();
    let multi = fixtures::multi_layer();
    assert_success(&ctx.nook(&["pull", "-q", &single.reference]));
    let out = ctx.nook(&["pull", &multi.reference]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Already exists"));
    let layers: Vec<_> = std::fs::read_dir(ctx.data.join("nook/layers"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(layers.len(), 3, "the base layer is shared");
    let again = ctx.nook(&["pull", &single.reference]);
    assert_success(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Image is up to date"));
}

#[test]
fn pull_by_digest_and_platform_selection() {
    let ctx = TestContext::new();
    let multi = fixtures::multi_platform();
    assert_success(&ctx.nook(&["pull", "-q", &multi.reference]));
    let arch_file = |ctx: &TestContext, reference: &str| {
        std::fs::read_to_string(layer_dirs(ctx, reference)[0].join("etc/arch")).unwrap()
    };
    assert_eq!(arch_file(&ctx, &multi.reference).trim(), host_arch());

    let other = TestContext::new();
    let platform = format!("linux/{}", other_arch());
    assert_success(&other.nook(&["pull", "-q", "--platform", &platform, &multi.reference]));
    assert_eq!(arch_file(&other, &multi.reference).trim(), other_arch());

    let err = assert_failure(
        &other.nook(&["pull", "--platform", "linux/s390x", &multi.reference]),
        125,
    );
    assert!(err.contains("s390x") && err.contains(host_arch()), "{err}");

    // By digest: stored without a tag, found again by the same digest.
    let by_digest = &multi.images[0].reference;
    let third = TestContext::new();
    let out = assert_success(&third.nook(&["pull", "-q", by_digest]));
    assert_eq!(out.trim(), by_digest.as_str());
    let listed = assert_success(&third.nook(&["images", "--format", "{{.Tag}}"]));
    assert_eq!(listed.trim(), "<none>");
    assert_success(&third.nook(&["inspect", by_digest]));
}

#[test]
fn concurrent_pulls_of_the_same_image_both_succeed() {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer();
    let children: Vec<_> = (0..3)
        .map(|_| {
            ctx.nook_cmd()
                .args(["pull", "-q", &image.reference])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert_success(&child.wait_with_output().unwrap());
    }
    let ids = assert_success(&ctx.nook(&["images", "-q"]));
    assert_eq!(ids.lines().count(), 1);
    assert!(staging_is_empty(&ctx));
}

#[test]
fn a_pull_killed_at_any_moment_leaves_nothing_visible_and_the_next_pull_completes() {
    use std::os::unix::process::CommandExt;
    let image = fixtures::multi_layer();
    // Delays spread over the whole pull (which takes tens of milliseconds here).
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let ctx = TestContext::new();
        let mut child = ctx
            .nook_cmd()
            .args(["pull", "-q", &image.reference])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        // Whatever moment it died at: either the whole image is there or none of it is.
        let listed = assert_success(&ctx.nook(&["images", "-q"]));
        if !listed.trim().is_empty() {
            assert_eq!(layer_dirs(&ctx, &image.reference).len(), 3);
        }
        assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
        let dirs = layer_dirs(&ctx, &image.reference);
        assert!(dirs.iter().all(|d| d.is_dir()), "delay {delay_ms} ms");
        assert!(dirs[2].join("opq/new").is_file());
        assert!(staging_is_empty(&ctx), "delay {delay_ms} ms");
    }
}

#[test]
fn zstd_and_uncompressed_layers_are_pulled() {
    use crate::harness::fixtures::{Layer, TarBuilder};
    use nook::image::digest::Digest;
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755, 0, 0);
    t.file("etc/zstd", b"compressed with zstd\n", 0o644, 0, 0);
    let tar = t.finish();
    let blob = zstd::encode_all(&tar[..], 3).unwrap();
    let layer = Layer {
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
        digest: Digest::of(&blob),
        size: blob.len() as u64,
        diff_id: Digest::of(&tar),
        blob,
    };
    let repository = format!("{}/fixtures/zstd", crate::harness::registry().addr);
    let image = fixtures::build_image(&repository, host_arch(), vec![layer], &["sh"]);
    fixtures::push_raw(&image, "latest");
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dirs = layer_dirs(&ctx, &image.reference);
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("etc/zstd")).unwrap(),
        "compressed with zstd\n"
    );
}

#[test]
fn hostile_layers_are_refused_or_neutralised() {
    use crate::harness::fixtures::{TarBuilder, gzip_layer};
    let ctx = TestContext::new();
    let push = |name: &str, tar: Vec<u8>| {
        let repository = format!("{}/fixtures/{name}", crate::harness::registry().addr);
        let image =
            fixtures::build_image(&repository, host_arch(), vec![gzip_layer(&tar)], &["sh"]);
        fixtures::push_raw(&image, "latest");
        image.reference
    };
    // A write through a symlink that points out of the layer.
    let outside = ctx.root().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let mut t = TarBuilder::new();
    t.symlink("escape", outside.to_str().unwrap());
    t.file("escape/owned", b"gotcha\n", 0o644, 0, 0);
    let reference = push("symlink-escape", t.finish());
    let err = assert_failure(&ctx.nook(&["pull", &reference]), 125);
    assert!(err.contains("symlink"), "{err}");
    assert!(!outside.join("owned").exists(), "wrote outside the layer");

    // A hardlink to a file outside the layer.
    let mut t = TarBuilder::new();
    t.raw(
        tar::EntryType::Link,
        "passwd",
        "../../../../../../etc/passwd",
        b"",
    );
    let reference = push("hardlink-escape", t.finish());
    let err = assert_failure(&ctx.nook(&["pull", &reference]), 125);
    assert!(
        err.contains("leaves the layer") || err.contains("outside"),
        "{err}"
    );

    // Absolute paths are taken as relative to the layer.
    let mut t = TarBuilder::new();
    t.raw(tar::EntryType::Regular, "/abs", "", b"relative now\n");
    let reference = push("absolute", t.finish());
    assert_success(&ctx.nook(&["pull", "-q", &reference]));
    assert!(layer_dirs(&ctx, &reference)[0].join("abs").is_file());
    assert_eq!(
        std::fs::read_dir(ctx.data.join("nook/layers/.staging"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn docker_schema2_images_are_pulled() {
    let src = fixtures::single_layer();
    let dest = format!(
        "{}/fixtures/docker-v2s2:latest",
        crate::harness::registry().addr
    );
    let copy = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{}", src.reference))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert_success(&copy);
    let raw = crate::harness::fixtures::skopeo_inspect_raw(&dest, &[]);
    assert!(
        String::from_utf8_lossy(&raw)
            .contains("application/vnd.docker.distribution.manifest.v2+json"),
        "skopeo did not write a Docker schema 2 manifest"
    );
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &dest]));
    assert!(layer_dirs(&ctx, &dest)[0].join("bin/busybox").is_file());
}
