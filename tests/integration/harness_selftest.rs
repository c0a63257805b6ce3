//! Tests of the harness itself: the test user, the registry, the fixtures.

use crate::harness::fixtures::{self, host_arch, other_arch, skopeo_inspect_raw};
use crate::harness::registry::v2_status;
use crate::harness::{TestContext, assert_success, registry};
use nook::image::digest::Digest;

#[test]
fn commands_run_as_the_test_user() {
    let ctx = TestContext::new();
    let uid: u32 = assert_success(&ctx.run_as_user("/usr/bin/id", &["-u"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(uid, ctx.uid().as_raw());
    if nix::unistd::Uid::effective().is_root() {
        assert_ne!(uid, 0, "nook must never run as real root in tests");
    }
    // The environment is exactly the context's.
    let env = assert_success(&ctx.run_as_user("/usr/bin/env", &[]));
    let mut lines: Vec<&str> = env.lines().collect();
    lines.sort();
    let mut expected: Vec<String> = ctx.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn the_test_user_owns_the_context_dirs() {
    let ctx = TestContext::new();
    for dir in [&ctx.home, &ctx.data, &ctx.runtime, &ctx.config] {
        let file = dir.join("probe");
        assert_success(&ctx.run_as_user("/usr/bin/touch", &[file.to_str().unwrap()]));
    }
    let out = assert_success(&ctx.run_as_user(
        "/usr/bin/stat",
        &["-c", "%a", ctx.runtime.to_str().unwrap()],
    ));
    assert_eq!(out.trim(), "700");
}

#[test]
fn the_nook_binary_runs_as_the_test_user() {
    let ctx = TestContext::new();
    let out = ctx.nook(&["--help"]);
    // Only that it ran: what `--help` prints is the CLI's business.
    assert!(out.status.code().is_some(), "nook was killed: {out:?}");
}

#[test]
fn the_registry_answers() {
    let r = registry();
    assert!(r.addr.starts_with("127.0.0.1:"));
    assert_eq!(
        v2_status(&r.addr).as_deref(),
        Some("200"),
        "log:\n{}",
        r.log_text()
    );
    // Once per process.
    assert_eq!(registry().addr, r.addr);
}

fn check_image(image: &fixtures::Image) {
    let raw = skopeo_inspect_raw(&image.reference, &[]);
    assert_eq!(Digest::of(&raw), image.manifest_digest);
    assert_eq!(raw, image.manifest);
    let config = skopeo_inspect_raw(&image.reference, &["--config"]);
    assert_eq!(Digest::of(&config), image.config_digest);
}

#[test]
fn single_layer_is_pushed_as_computed() {
    let image = fixtures::single_layer();
    assert!(image.reference.ends_with("/fixtures/single-layer:latest"));
    assert_eq!(image.layers.len(), 1);
    check_image(image);
}

#[test]
fn multi_layer_is_pushed_as_computed() {
    let image = fixtures::multi_layer();
    let media: Vec<_> = image.layers.iter().map(|l| l.media_type).collect();
    assert_eq!(
        media,
        [
            fixtures::MEDIA_LAYER_GZIP,
            fixtures::MEDIA_LAYER_GZIP,
            fixtures::MEDIA_LAYER_TAR
        ]
    );
    // The base layer is the very same blob as single-layer's.
    assert_eq!(
        image.layers[0].digest,
        fixtures::single_layer().layers[0].digest
    );
    check_image(image);
}

#[test]
fn multi_platform_is_pushed_as_computed() {
    let index = fixtures::multi_platform();
    let raw = skopeo_inspect_raw(&index.reference, &[]);
    assert_eq!(Digest::of(&raw), index.index_digest);
    let archs: Vec<_> = index
        .images
        .iter()
        .map(|i| i.architecture.as_str())
        .collect();
    assert_eq!(archs, [host_arch(), other_arch()]);
    for image in &index.images {
        check_image(image);
    }
    assert_ne!(
        index.images[0].layers[0].diff_id,
        index.images[1].layers[0].diff_id
    );
}

#[test]
fn fixture_layers_are_reproducible() {
    assert_eq!(fixtures::base_tar(), fixtures::base_tar());
    assert_eq!(
        fixtures::gzip_layer(&fixtures::base_tar()).digest,
        fixtures::single_layer().layers[0].digest
    );
}

#[test]
fn base_layer_has_the_promised_entries() {
    let tar = fixtures::base_tar();
    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let h = entry.header().clone();
        let xattr = entry.pax_extensions().unwrap().and_then(|mut exts| {
            exts.find_map(|e| {
                e.ok()
                    .filter(|e| e.key() == Ok("SCHILY.xattr.user.nook"))
                    .map(|e| e.value_bytes().to_vec())
            })
        });
        seen.insert(
            path,
            (
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                xattr,
            ),
        );
    }
    assert_eq!(seen["bin/busybox"].1, 0o755);
    assert_eq!(seen["bin/suid"].1, 0o4755);
    assert_eq!(seen["bin/hard"].0, tar::EntryType::Link);
    assert_eq!(seen["bin/sh"].0, tar::EntryType::Symlink);
    assert_eq!(seen["home/app/"].1, 0o750);
    assert_eq!((seen["home/app/"].2, seen["home/app/"].3), (1000, 1000));
    assert_eq!(seen["home/app/secret"].1, 0o640);
    assert_eq!(seen["tmp/"].1, 0o1777);
    assert_eq!(seen["etc/xattr"].4.as_deref(), Some(&b"test"[..]));
}
