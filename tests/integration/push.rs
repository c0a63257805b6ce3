//! `nook push` against the loopback registries: blobs mounted or found instead of sent, layers
//! rebuilt from the store and compressed when they must be sent, digests that survive a round
//! trip and a second push, and images that skopeo (an independent client) reads and verifies.

use std::path::Path;

use nook::image::digest::Digest;

use crate::harness::fixtures::{self, skopeo_inspect_raw};
use crate::harness::registry::{AUTH_PASSWORD, AUTH_USER, auth_registry};
use crate::harness::{
    TestContext, assert_failure, assert_one_error_line, assert_success, registry, token_registry,
};

/// `TAG: digest: sha256:… size: N` → (digest, size).
fn digest_line(stdout: &str, tag: &str) -> (Digest, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("no `{tag}: digest:` line in:\n{stdout}"));
    let mut words = line.split_whitespace();
    let digest = words.nth(2).unwrap().parse().unwrap();
    let size = words.nth(1).unwrap().parse().unwrap();
    (digest, size)
}

fn push(ctx: &TestContext, args: &[&str]) -> (String, String) {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    let out = ctx.nook(&all);
    let stdout = assert_success(&out);
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.lines().filter(|l| l.contains(needle)).count()
}

/// `skopeo copy docker://REFERENCE oci:DIR:latest` (skopeo checks every blob's digest as it
/// copies), then every blob in the layout hashes to its name once more. Returns the layout.
fn copy_to_oci_layout(reference: &str, extra: &[&str]) -> tempfile::TempDir {
    let layout = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
        ])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:latest", layout.path().display()))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {reference} to an OCI layout failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blobs = layout.path().join("blobs/sha256");
    let mut n = 0;
    for entry in std::fs::read_dir(&blobs).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            Digest::of(&bytes).hex(),
            entry.file_name().to_string_lossy(),
            "blob {} in the layout does not match its name",
            entry.path().display()
        );
        n += 1;
    }
    assert!(n >= 3, "a manifest, a config and layers: {n} blobs");
    layout
}

/// `skopeo inspect` (not --raw: skopeo parses manifest and config) of a pushed image.
fn skopeo_inspect(reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn manifest_layer_types(manifest: &[u8]) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    value["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

fn layout_config_diff_ids(layout: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_pulled_image_pushed_to_another_repository_is_mounted_and_keeps_its_digest() {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dest = format!("{}/pushed/multi-layer:v1", registry().addr);

    let (stdout, stderr) = push(&ctx, &[&image.reference, &dest]);
    let (digest, size) = digest_line(&stdout, "v1");
    assert_eq!(
        digest, image.manifest_digest,
        "the manifest's own bytes, pushed again"
    );
    assert_eq!(size, image.manifest.len());
    assert!(
        stderr.contains(&format!(
            "The push refers to repository [{}/pushed/multi-layer]",
            registry().addr
        )),
        "{stderr}"
    );
    // The uncompressed third layer too: a registry's blob keeps its digest whatever it is.
    assert_eq!(
        count(&stderr, "Mounted from fixtures/multi-layer"),
        3,
        "{stderr}"
    );
    assert_eq!(count(&stderr, "Pushed"), 0, "{stderr}");

    // Again: everything is there already, and the digest is the same.
    let (stdout, stderr) = push(&ctx, &[&image.reference, &format!("docker://{dest}")]);
    assert_eq!(digest_line(&stdout, "v1").0, image.manifest_digest);
    assert_eq!(count(&stderr, "Layer already exists"), 3, "{stderr}");

    // What the registry serves is the pulled manifest, byte for byte.
    assert_eq!(skopeo_inspect_raw(&dest, &[]), image.manifest);
    let inspected = skopeo_inspect(&dest, &[]);
    assert_eq!(inspected["Digest"], image.manifest_digest.to_string());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);

    // A fresh store pulls it back with the same digest and image ID.
    let other = TestContext::new();
    let out = other.nook(&["pull", &dest]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("Digest: {}", image.manifest_digest)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id =
        |c: &TestContext, r: &str| assert_success(&c.nook(&["inspect", "--format", "{{.Id}}", r]));
    assert_eq!(id(&other, &dest), id(&ctx, &image.reference));

    // The pushed digest is one of the image's repo digests now.
    let digests = assert_success(&ctx.nook(&["images", "--digests", "--format", "{{.Digest}}"]));
    assert!(
        digests.contains(&image.manifest_digest.to_string()),
        "{digests}"
    );
}

#[test]
fn the_default_destination_is_the_image_s_own_name() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dest = format!("{}/pushed/renamed:1.0", registry().addr);
    assert_success(&ctx.nook(&["tag", &image.reference, &dest]));
    let out = ctx.nook(&["push", "-q", &dest]);
    let stdout = assert_success(&out);
    assert_eq!(stdout.trim(), dest, "-q prints the reference only");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(skopeo_inspect_raw(&dest, &[]), image.manifest);
}

#[test]
fn a_layer_the_registry_lacks_is_rebuilt_and_compressed_deterministically() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dest = format!("{}/pushed/single-zstd:latest", registry().addr);

    let (stdout, stderr) = push(
        &ctx,
        &["--compression-format", "zstd", &image.reference, &dest],
    );
    let (first, _) = digest_line(&stdout, "latest");
    assert_ne!(first, image.manifest_digest, "the layer was recompressed");
    assert_eq!(count(&stderr, ": Pushed"), 1, "{stderr}");
    let raw = skopeo_inspect_raw(&dest, &[]);
    assert_eq!(Digest::of(&raw), first);
    assert_eq!(
        manifest_layer_types(&raw),
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    );

    // skopeo reads the zstd layer and every digest verifies; the diff ids are the image's.
    let layout = copy_to_oci_layout(&dest, &[]);
    assert_eq!(
        layout_config_diff_ids(layout.path()),
        [image.layers[0].diff_id.to_string()]
    );

    // A second push finds the layer and pushes the same manifest.
    let (stdout, stderr) = push(
        &ctx,
        &["--compression-format", "zstd", &image.reference, &dest],
    );
    assert_eq!(digest_line(&stdout, "latest").0, first);
    assert_eq!(count(&stderr, "Layer already exists"), 1, "{stderr}");

    // Another store pulls it back and runs it.
    let other = TestContext::new();
    assert_success(&other.nook(&["pull", "-q", &dest]));
    let out = assert_success(&other.nook(&["run", "--rm", &dest, "cat", "/home/app/secret"]));
    assert_eq!(out, "owned by app\n");
}

#[test]
fn pushing_to_a_registry_that_needs_a_login() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let reg = auth_registry();
    let dest = format!("{}/pushed/busybox:1", reg.addr);

    let before = std::fs::read(ctx.data.join("nook/images.json")).unwrap();
    let err = assert_failure(&ctx.nook(&["push", &image.reference, &dest]), 125);
    assert_one_error_line(&err, "nook login");
    assert_eq!(
        std::fs::read(ctx.data.join("nook/images.json")).unwrap(),
        before,
        "a failed push changes nothing here"
    );

    assert_success(&ctx.nook_with_stdin(
        &["login", "-u", AUTH_USER, "--password-stdin", &reg.addr],
        format!("{AUTH_PASSWORD}\n").as_bytes(),
    ));
    // Another registry: nothing to mount, so the layer is rebuilt and gzipped (by nook's
    // own block compressor, so the blob and manifest are new ones).
    let (stdout, stderr) = push(&ctx, &[&image.reference, &dest]);
    assert_eq!(count(&stderr, ": Pushed"), 1, "{stderr}");
    let (digest, _) = digest_line(&stdout, "1");
    let creds = format!("--creds={AUTH_USER}:{AUTH_PASSWORD}");
    let inspected = skopeo_inspect(&dest, &[&creds]);
    assert_eq!(inspected["Digest"], digest.to_string());
    copy_to_oci_layout(
        &dest,
        &["--src-creds", &format!("{AUTH_USER}:{AUTH_PASSWORD}")],
    );
}

#[test]
fn mounting_across_repositories_with_token_auth() {
    let ctx = TestContext::new();
    let tr = token_registry();
    let creds = format!("{AUTH_USER}:{AUTH_PASSWORD}");
    let src = format!("{}/public/push-source:latest", tr.addr);
    fixtures::skopeo_copy(
        &fixtures::single_layer().reference,
        &src,
        &["--dest-creds", &creds],
    );
    assert_success(&ctx.nook(&["pull", "-q", &src]));
    let dest = format!("{}/private/pushed:latest", tr.addr);

    // Anonymous clients may pull public repositories, never push.
    let err = assert_failure(&ctx.nook(&["push", &src, &dest]), 125);
    assert_one_error_line(&err, "not allowed to push");

    assert_success(&ctx.nook_with_stdin(
        &["login", "-u", AUTH_USER, "--password-stdin", &tr.addr],
        format!("{AUTH_PASSWORD}\n").as_bytes(),
    ));
    let (stdout, stderr) = push(&ctx, &[&src, &dest]);
    assert_eq!(
        count(&stderr, "Mounted from public/push-source"),
        1,
        "{stderr}"
    );
    assert_eq!(
        digest_line(&stdout, "latest").0,
        fixtures::single_layer().manifest_digest
    );
    // The mount's token named both repositories.
    let asked_both = tr.server.requests().iter().any(|r| {
        r.scopes
            .iter()
            .any(|s| s == "repository:public/push-source:pull")
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:private/pushed:"))
    });
    assert!(asked_both, "{:#?}", *tr.server.requests());
}

#[test]
fn bad_pushes_say_why_in_one_line_and_leave_the_store_alone() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let snapshot = || {
        let mut blobs: Vec<String> = std::fs::read_dir(ctx.data.join("nook/blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        blobs.sort();
        (
            std::fs::read(ctx.data.join("nook/images.json")).unwrap(),
            blobs,
        )
    };
    let before = snapshot();

    let err = assert_failure(&ctx.nook(&["push", "nope:1"]), 125);
    assert_one_error_line(&err, "no such image: nope:1");
    // Nothing listens on port 1.
    let err = assert_failure(
        &ctx.nook(&["push", &image.reference, "127.0.0.1:1/x/y:1"]),
        125,
    );
    assert_one_error_line(&err, "cannot reach 127.0.0.1:1");
    for (bad, says) in [
        ("UPPER/case", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("oci:/tmp/layout", "registries only"),
    ] {
        let err = assert_failure(&ctx.nook(&["push", &image.reference, bad]), 125);
        assert_one_error_line(&err, says);
    }
    let err = assert_failure(
        &ctx.nook(&["push", "--compression-format", "lz4", &image.reference]),
        125,
    );
    assert!(err.contains("lz4"), "{err}");
    assert_eq!(snapshot(), before);
}

#[test]
fn a_committed_image_is_pushed_with_its_base_mounted_and_reads_back() {
    let ctx = TestContext::new();
    let base = fixtures::multi_layer();
    assert_success(&ctx.nook(&["pull", "-q", &base.reference]));
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "changed",
        &base.reference,
        "sh",
        "-c",
        "mkdir /new && echo pushed > /new/file && chown 1000:1000 /new/file && ln -s file /new/link",
    ]));
    assert_success(&ctx.nook(&["commit", "changed", "committed:1"]));
    let dest = format!("{}/pushed/committed:1", registry().addr);

    let (stdout, stderr) = push(&ctx, &["committed:1", &dest]);
    let (first, _) = digest_line(&stdout, "1");
    assert_eq!(
        count(&stderr, "Mounted from fixtures/multi-layer"),
        3,
        "{stderr}"
    );
    assert_eq!(count(&stderr, ": Pushed"), 1, "{stderr}");
    let raw = skopeo_inspect_raw(&dest, &[]);
    assert_eq!(Digest::of(&raw), first);
    let types = manifest_layer_types(&raw);
    assert_eq!(types.len(), 4);
    assert_eq!(
        types[3], "application/vnd.oci.image.layer.v1.tar+gzip",
        "the new layer is gzipped"
    );

    let (stdout, stderr) = push(&ctx, &["committed:1", &dest]);
    assert_eq!(
        digest_line(&stdout, "1").0,
        first,
        "the same image, the same digest"
    );
    assert_eq!(count(&stderr, "Layer already exists"), 4, "{stderr}");

    // skopeo verifies every blob; the diff ids are the image's.
    let layers = assert_success(&ctx.nook(&[
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "committed:1",
    ]));
    let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
    let layout = copy_to_oci_layout(&dest, &[]);
    assert_eq!(layout_config_diff_ids(layout.path()), layers);
    assert_eq!(skopeo_inspect(&dest, &[])["Digest"], first.to_string());

    // Another store pulls it and sees the committed files, owners and links.
    let other = TestContext::new();
    assert_success(&other.nook(&["pull", "-q", &dest]));
    let out = assert_success(&other.nook(&[
        "run",
        "--rm",
        &dest,
        "sh",
        "-c",
        "cat /new/file; stat -c '%u:%g' /new/file; readlink /new/link; cat /data/keep",
    ]));
    assert_eq!(out, "pushed\n1000:1000\nfile\nkeep\n");
}

/// 20 MiB that no compressor shrinks much: an xorshift stream.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn a_layer_larger_than_a_chunk_goes_up_in_chunks() {
    let ctx = TestContext::new();
    let mut t = fixtures::TarBuilder::new();
    t.dir("data", 0o755, 0, 0);
    t.file("data/noise", &incompressible(20 << 20), 0o644, 0, 0);
    // Uncompressed: cheap to build and pull; the push below compresses it.
    let image = fixtures::push_image(
        "push-large",
        fixtures::host_arch(),
        vec![fixtures::plain_layer(&t.finish())],
        &["sh"],
    );
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let dest = format!("{}/pushed/large:latest", registry().addr);
    let patches_before = count(&registry().log_text(), "http.request.method=PATCH");

    let (stdout, stderr) = push(
        &ctx,
        &["--compression-format", "zstd", &image.reference, &dest],
    );
    assert_eq!(count(&stderr, ": Pushed"), 1, "{stderr}");
    let (digest, _) = digest_line(&stdout, "latest");
    let raw = skopeo_inspect_raw(&dest, &[]);
    assert_eq!(Digest::of(&raw), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    assert!(
        size > 16 << 20,
        "the zstd layer is {size} bytes, not more than a chunk"
    );
    let patches = count(&registry().log_text(), "http.request.method=PATCH") - patches_before;
    assert!(
        patches >= 1,
        "no PATCH reached the registry; its log:\n{}",
        registry().log_text()
    );

    let layout = copy_to_oci_layout(&dest, &[]);
    assert_eq!(
        layout_config_diff_ids(layout.path()),
        [image.layers[0].diff_id.to_string()]
    );
}
