//! Bad input: one `Error:` line naming the cause, exit 125, and a store left as it was.

use std::path::Path;

use crate::harness::fixtures::{self, Layer, MEDIA_LAYER_GZIP, TarBuilder, gzip_layer};
use crate::harness::registry::{AUTH_PASSWORD, AUTH_USER, auth_registry};
use crate::harness::{
    TestContext, assert_failure, assert_one_error_line as one_error_line, assert_success, registry,
    require,
};

/// The store's visible content: image records and complete layers.
fn store_snapshot(ctx: &TestContext) -> (String, Vec<String>) {
    let images = std::fs::read_to_string(ctx.data.join("nook/images.json")).unwrap_or_default();
    let mut layers: Vec<String> = std::fs::read_dir(ctx.data.join("nook/layers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    layers.retain(|n| !n.starts_with('.'));
    layers.sort();
    (images, layers)
}

fn staging_empty(ctx: &TestContext) -> bool {
    std::fs::read_dir(ctx.data.join("nook/layers/.staging"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

#[test]
fn unknown_image_unreachable_registry_and_bad_references() {
    let ctx = TestContext::new();
    let missing = format!("{}/fixtures/does-not-exist:1", registry().addr);
    let err = assert_failure(&ctx.nook(&["pull", &missing]), 125);
    one_error_line(&err, "not found");
    // Nothing listens on port 1.
    let err = assert_failure(&ctx.nook(&["pull", "127.0.0.1:1/x/y"]), 125);
    one_error_line(&err, "cannot reach 127.0.0.1:1");
    for bad in ["UPPER/case", "a//b", "x:", "a@sha256:12", ""] {
        let err = assert_failure(&ctx.nook(&["pull", bad]), 125);
        one_error_line(&err, "invalid reference format");
    }
    assert_eq!(store_snapshot(&ctx).1.len(), 0);
}

/// Pushes a one-layer image whose blobs the test may then damage in the registry's storage.
fn push_fresh(name: &str, content: &[u8]) -> fixtures::Image {
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755, 0, 0);
    t.file("etc/data", content, 0o644, 0, 0);
    let layer = gzip_layer(&t.finish());
    fixtures::push_image(name, fixtures::host_arch(), vec![layer], &["sh"])
}

fn registry_blob(digest: &nook::image::digest::Digest) -> std::path::PathBuf {
    let hex = digest.hex();
    registry()
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_kept() {
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &fixtures::single_layer().reference]));
    let before = store_snapshot(&ctx);

    let image = push_fresh("corrupted", b"the original content\n");
    let layer: &Layer = &image.layers[0];
    assert_eq!(layer.media_type, MEDIA_LAYER_GZIP);
    // Same length, different bytes: the registry serves it under the old digest.
    let mut bytes = layer.blob.clone();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(registry_blob(&layer.digest), &bytes).unwrap();
    let err = assert_failure(&ctx.nook(&["pull", &image.reference]), 125);
    one_error_line(&err, &layer.digest.to_string());
    assert_eq!(store_snapshot(&ctx), before, "the store changed");
    assert!(staging_empty(&ctx));
}

#[test]
fn a_truncated_blob_is_refused_and_nothing_is_kept() {
    let ctx = TestContext::new();
    let image = push_fresh("truncated", &vec![b'x'; 100_000]);
    let layer = &image.layers[0];
    std::fs::write(
        registry_blob(&layer.digest),
        &layer.blob[..layer.blob.len() / 2],
    )
    .unwrap();
    let err = assert_failure(&ctx.nook(&["pull", &image.reference]), 125);
    assert!(err.contains("Error: "), "{err}");
    assert_eq!(store_snapshot(&ctx).1.len(), 0);
    assert!(staging_empty(&ctx));
    assert_eq!(assert_success(&ctx.nook(&["images", "-q"])), "");
}

#[test]
fn a_config_that_disagrees_with_its_manifest_is_malformed() {
    let ctx = TestContext::new();
    let mut t = TarBuilder::new();
    t.file("only", b"x", 0o644, 0, 0);
    let layer = gzip_layer(&t.finish());
    // Two layers in the manifest, but the config lists one diff id.
    let repository = format!("{}/fixtures/malformed", registry().addr);
    let mut image = fixtures::build_image(
        &repository,
        fixtures::host_arch(),
        vec![layer.clone()],
        &["sh"],
    );
    image.layers.push(layer);
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    let mut manifest = manifest;
    let first = manifest["layers"][0].clone();
    manifest["layers"].as_array_mut().unwrap().push(first);
    image.manifest = serde_json::to_vec(&manifest).unwrap();
    image.manifest_digest = nook::image::digest::Digest::of(&image.manifest);
    fixtures::push_raw(&image, "latest");
    let err = assert_failure(&ctx.nook(&["pull", &image.reference]), 125);
    one_error_line(&err, "malformed");
    assert_eq!(store_snapshot(&ctx).1.len(), 0);
}

#[test]
fn login_logout_and_refused_credentials() {
    let ctx = TestContext::new();
    let reg = auth_registry();
    // Give the auth registry an image: copy the fixture over with skopeo.
    let src = fixtures::single_layer();
    let dest = format!("{}/private/busybox:latest", reg.addr);
    let copy = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(["--dest-creds", &format!("{AUTH_USER}:{AUTH_PASSWORD}")])
        .arg(format!("docker://{}", src.reference))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert_success(&copy);

    let err = assert_failure(&ctx.nook(&["pull", &dest]), 125);
    one_error_line(&err, "nook login");

    let login = |password: &str| {
        use std::io::Write;
        let mut child = ctx
            .nook_cmd()
            .args(["login", "-u", AUTH_USER, "--password-stdin", &reg.addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let err = assert_failure(&login("wrong"), 125);
    one_error_line(&err, "refused the username or password");
    assert!(!ctx.runtime.join("containers/auth.json").exists());

    let out = assert_success(&login(AUTH_PASSWORD));
    assert!(out.contains("Login Succeeded"));
    let auth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.runtime.join("containers/auth.json")).unwrap())
            .unwrap();
    assert!(auth["auths"][&reg.addr]["auth"].is_string());
    assert_success(&ctx.nook(&["pull", "-q", &dest]));

    assert_success(&ctx.nook(&["logout", &reg.addr]));
    let err = assert_failure(&ctx.nook(&["logout", &reg.addr]), 125);
    one_error_line(&err, "not logged in");

    // Docker's config file is read too.
    let docker = ctx.home.join(".docker");
    let token = base64_encode(&format!("{AUTH_USER}:{AUTH_PASSWORD}"));
    let config = format!(
        "{{\"auths\":{{\"{}\":{{\"auth\":\"{token}\"}}}}}}",
        reg.addr
    );
    assert_success(&ctx.run_as_user("/bin/mkdir", &["-p", docker.to_str().unwrap()]));
    assert_success(&ctx.run_as_user(
        "/bin/sh",
        &[
            "-c",
            &format!("printf '%s' '{config}' > {}/config.json", docker.display()),
        ],
    ));
    assert_success(&ctx.nook(&["rmi", &dest]));
    assert_success(&ctx.nook(&["pull", "-q", &dest]));
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_full_disk_fails_cleanly_and_loses_nothing() {
    if !require(
        crate::harness::context::running_as_root(),
        "mounting a small tmpfs as --root needs the test process to be root",
    ) {
        return;
    }
    let ctx = TestContext::new();
    let small = ctx.root().join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1500k,mode=0755", "tmpfs"])
        .arg(&small)
        .output()
        .unwrap();
    assert_success(&mount);
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(&small);
    nix::unistd::chown(&small, Some(ctx.uid()), Some(ctx.gid())).unwrap();
    let root = small.to_str().unwrap();

    let tiny = push_fresh("tiny", b"small\n");
    assert_success(&ctx.nook(&["--root", root, "pull", "-q", &tiny.reference]));
    let images_before = std::fs::read_to_string(small.join("images.json")).unwrap();
    // busybox (about 2 MB) does not fit in what is left.
    let err = assert_failure(
        &ctx.nook(&["--root", root, "pull", &fixtures::single_layer().reference]),
        125,
    );
    one_error_line(&err, "No space left on device");
    // The fix `nook system doctor` names for a nearly full disk.
    assert!(
        err.contains("Hint: the disk is full: nook system prune (or export NOOK_ROOT="),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(small.join("images.json")).unwrap(),
        images_before
    );
    let listed =
        assert_success(&ctx.nook(&["--root", root, "images", "--format", "{{.Repository}}"]));
    assert_eq!(listed.trim(), tiny.repository);
    assert_eq!(
        std::fs::read_dir(small.join("layers/.staging"))
            .unwrap()
            .count(),
        0
    );
    // The store as a whole is sound, not just its index.
    assert_success(&ctx.nook(&["--root", root, "system", "check"]));
}

#[test]
fn without_xdg_runtime_dir_credentials_go_to_a_private_tmp_dir_with_a_warning() {
    let ctx = TestContext::new();
    let out = ctx
        .nook_cmd()
        .env_remove("XDG_RUNTIME_DIR")
        .args(["logout", "--all"])
        .output()
        .unwrap();
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("XDG_RUNTIME_DIR is not set"), "{err}");
    let dir = format!("/tmp/nook-run-{}", ctx.uid());
    let meta = std::fs::metadata(&dir).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.uid(), ctx.uid().as_raw());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

#[test]
fn nook_root_moves_the_store() {
    let ctx = TestContext::new();
    let root = ctx.home.join("elsewhere");
    let out = ctx
        .nook_cmd()
        .env("NOOK_ROOT", &root)
        .args(["pull", "-q", &fixtures::single_layer().reference])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(root.join("images.json").is_file());
    assert!(!ctx.data.join("nook/images.json").exists());
}
