//! Test images, built here from `busybox-static` as OCI layouts and pushed once per test
//! process to [`registry()`] with `skopeo copy --all --preserve-digests`. Everything is
//! deterministic (fixed mtimes, gzip without timestamps) and pushed unchanged, so the digests
//! computed here are the digests the registry serves. (Images with an uncompressed layer are
//! pushed through the registry API instead: skopeo would gzip that layer.)

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use nook::image::digest::Digest;
use serde_json::json;
use tar::{EntryType, Header};

use super::registry::registry;

/// The mtime of every entry in every fixture layer.
pub const MTIME: u64 = 1_700_000_000;
/// The `created` time of every fixture config.
pub const CREATED: &str = "2023-11-14T22:13:20Z";
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// One layer as pushed.
#[derive(Clone, Debug)]
pub struct Layer {
    pub media_type: &'static str,
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    pub size: u64,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// The blob as stored.
    pub blob: Vec<u8>,
}

/// One single-platform image as pushed.
#[derive(Clone, Debug)]
pub struct Image {
    /// `127.0.0.1:PORT/fixtures/NAME:latest`, or `…/NAME@sha256:…` for an image in an index.
    pub reference: String,
    /// `127.0.0.1:PORT/fixtures/NAME`
    pub repository: String,
    /// GOARCH name: `amd64`, `arm64`, …
    pub architecture: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Layer>,
}

/// An image index with one image per platform.
#[derive(Clone, Debug)]
pub struct MultiPlatform {
    /// `127.0.0.1:PORT/fixtures/multi-platform:latest`
    pub reference: String,
    pub repository: String,
    pub index: Vec<u8>,
    pub index_digest: Digest,
    /// `images[0]` is for the host's architecture, `images[1]` for another one.
    pub images: Vec<Image>,
}

/// The host architecture as OCI/GOARCH names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// An architecture that is not the host's.
pub fn other_arch() -> &'static str {
    if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// One gzip layer: busybox with symlinks, passwd/group with user `app` (1000), `home/app`
/// (1000:1000, 0750) holding `home/app/secret` (1000:1000, 0640), setuid `bin/suid` (04755),
/// hardlink `bin/hard` → `bin/busybox`, `etc/xattr` with xattr `user.nook=test`, `tmp` (01777).
pub fn single_layer() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let layer = gzip_layer(&base_tar());
        push_image("single-layer", host_arch(), vec![layer], &["sh"])
    })
}

/// The [`single_layer`] base with `EXPOSE 80 443 53/udp` in its config.
pub fn exposing_ports() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let layer = gzip_layer(&base_tar());
        let config = json!({
            "Env": [PATH_ENV],
            "Cmd": ["sh"],
            "WorkingDir": "/",
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}},
        });
        push_image_with_config("exposing-ports", host_arch(), vec![layer], config)
    })
}

/// The [`single_layer`] base plus what network tests serve: `/www/index.html` for busybox
/// `httpd`, `/www/big` (8 MiB) and `/bin/udp-echo PORT`, a static UDP echo server (busybox
/// has no UDP server) compiled here from `harness/udp_echo.rs`.
pub fn network_tools() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut tools = TarBuilder::new();
        tools.dir("www", 0o755, 0, 0);
        tools.file("www/index.html", b"hello from nook\n", 0o644, 0, 0);
        tools.file("www/big", &vec![b'x'; 8 << 20], 0o644, 0, 0);
        tools.dir("bin", 0o755, 0, 0);
        tools.file("bin/udp-echo", &static_program("udp_echo"), 0o755, 0, 0);
        let layers = vec![gzip_layer(&base_tar()), gzip_layer(&tools.finish())];
        push_image("network-tools", host_arch(), layers, &["sh"])
    })
}

/// The [`single_layer`] base plus `/bin/probe`, the hostile program of the isolation tests
/// (compiled here from `harness/probe.rs`), and `/bin/probe-suid`, the same program setuid
/// root (04755, 0:0), so a non-root container user can try to gain privileges through it.
pub fn isolation_tools() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let probe = static_program("probe");
        let mut tools = TarBuilder::new();
        tools.dir("bin", 0o755, 0, 0);
        tools.file("bin/probe", &probe, 0o755, 0, 0);
        tools.file("bin/probe-suid", &probe, 0o4755, 0, 0);
        let layers = vec![gzip_layer(&base_tar()), gzip_layer(&tools.finish())];
        push_image("isolation-tools", host_arch(), layers, &["sh"])
    })
}

/// Compiles `harness/NAME.rs` (std only: the test crate's dependencies are not available to
/// a standalone rustc) into a statically linked program that runs in any image.
fn static_program(name: &str) -> Vec<u8> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/harness")
        .join(format!("{name}.rs"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&out)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("running {rustc}: {e}"));
    assert!(status.success(), "compiling {}", source.display());
    std::fs::read(&out).unwrap()
}

/// Three layers: (1) the [`single_layer`] base (gzip); (2) `data/keep`, `data/gone`,
/// `data/dir/a`, `opq/old1`, `opq/old2` (gzip); (3) whiteout `data/.wh.gone`, opaque
/// `opq/.wh..wh..opq` and `opq/new`, **uncompressed**. After applying: `data/keep`,
/// `data/dir/a`, `opq/new` exist; `data/gone`, `opq/old1`, `opq/old2` don't.
pub fn multi_layer() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut l2 = TarBuilder::new();
        l2.dir("data", 0o755, 0, 0);
        l2.file("data/keep", b"keep\n", 0o644, 0, 0);
        l2.file("data/gone", b"gone\n", 0o644, 0, 0);
        l2.dir("data/dir", 0o755, 0, 0);
        l2.file("data/dir/a", b"a\n", 0o644, 0, 0);
        l2.dir("opq", 0o755, 0, 0);
        l2.file("opq/old1", b"old1\n", 0o644, 0, 0);
        l2.file("opq/old2", b"old2\n", 0o644, 0, 0);

        let mut l3 = TarBuilder::new();
        l3.dir("data", 0o755, 0, 0);
        l3.file("data/.wh.gone", b"", 0o644, 0, 0);
        l3.dir("opq", 0o755, 0, 0);
        l3.file("opq/.wh..wh..opq", b"", 0o644, 0, 0);
        l3.file("opq/new", b"new\n", 0o644, 0, 0);

        let layers = vec![
            gzip_layer(&base_tar()),
            gzip_layer(&l2.finish()),
            plain_layer(&l3.finish()),
        ];
        push_image("multi-layer", host_arch(), layers, &["sh"])
    })
}

/// An OCI index for linux/[`host_arch`] and linux/[`other_arch`]; each image is one gzip layer
/// of busybox plus `etc/arch` holding its architecture name and a newline.
pub fn multi_platform() -> &'static MultiPlatform {
    static INDEX: OnceLock<MultiPlatform> = OnceLock::new();
    INDEX.get_or_init(|| {
        let name = "multi-platform";
        let repository = format!("{}/fixtures/{name}", registry().addr);
        let layout = tempfile::tempdir().expect("temp dir for an OCI layout");
        let mut images = Vec::new();
        let mut descriptors = Vec::new();
        for arch in [host_arch(), other_arch()] {
            let mut t = TarBuilder::new();
            busybox_entries(&mut t);
            t.dir("etc", 0o755, 0, 0);
            t.file("etc/arch", format!("{arch}\n").as_bytes(), 0o644, 0, 0);
            let layer = gzip_layer(&t.finish());
            let mut image = build_image(&repository, arch, vec![layer], &["sh"]);
            image.reference = format!("{repository}@{}", image.manifest_digest);
            write_image_blobs(layout.path(), &image);
            descriptors.push(json!({
                "mediaType": MEDIA_MANIFEST,
                "digest": image.manifest_digest.to_string(),
                "size": image.manifest.len(),
                "platform": {"architecture": arch, "os": "linux"},
            }));
            images.push(image);
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": descriptors,
        }))
        .unwrap();
        let index_digest = write_blob(layout.path(), &index);
        write_layout_index(layout.path(), MEDIA_INDEX, &index_digest, index.len());
        let reference = format!("{repository}:latest");
        skopeo_push(layout.path(), &reference);
        MultiPlatform {
            reference,
            repository,
            index,
            index_digest,
            images,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Layers

/// The busybox base of [`single_layer`] and [`multi_layer`], as an uncompressed tar.
pub fn base_tar() -> Vec<u8> {
    let mut t = TarBuilder::new();
    busybox_entries(&mut t);
    t.file("bin/suid", b"#!/bin/sh\necho setuid\n", 0o4755, 0, 0);
    t.hardlink("bin/hard", "bin/busybox");
    t.dir("etc", 0o755, 0, 0);
    t.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        0o644,
        0,
        0,
    );
    t.file("etc/group", b"root:x:0:\napp:x:1000:\n", 0o644, 0, 0);
    t.file_with_xattr(
        "etc/xattr",
        b"has an xattr\n",
        0o644,
        ("user.nook", b"test"),
    );
    t.dir("home", 0o755, 0, 0);
    t.dir("home/app", 0o750, 1000, 1000);
    t.file("home/app/secret", b"owned by app\n", 0o640, 1000, 1000);
    t.dir("root", 0o700, 0, 0);
    t.dir("tmp", 0o1777, 0, 0);
    t.finish()
}

/// `bin/busybox` (0755, root) and symlinks `bin/{sh,ls,cat,echo,true}` → busybox.
fn busybox_entries(t: &mut TarBuilder) {
    let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("reading {BUSYBOX}: {e}: install the Debian package busybox-static (helpers/install-deps)")
    });
    t.dir("bin", 0o755, 0, 0);
    t.file("bin/busybox", &busybox, 0o755, 0, 0);
    for applet in busybox_applets() {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
}

/// Every applet this busybox has (`busybox --list`), so containers have a full userland.
fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("running busybox --list");
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|n| !n.is_empty() && n != "busybox")
            .collect();
        names.sort();
        assert!(
            names.iter().any(|n| n == "sh"),
            "busybox --list printed no applets"
        );
        names
    })
}

pub fn gzip_layer(tar: &[u8]) -> Layer {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(tar).unwrap();
    let blob = gz.finish().unwrap();
    Layer {
        media_type: MEDIA_LAYER_GZIP,
        digest: Digest::of(&blob),
        size: blob.len() as u64,
        diff_id: Digest::of(tar),
        blob,
    }
}

pub fn plain_layer(tar: &[u8]) -> Layer {
    Layer {
        media_type: MEDIA_LAYER_TAR,
        digest: Digest::of(tar),
        size: tar.len() as u64,
        diff_id: Digest::of(tar),
        blob: tar.to_vec(),
    }
}

/// A deterministic tar writer: every entry has mtime [`MTIME`] and explicit owner and mode.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        TarBuilder::new()
    }
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder {
            inner: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) {
        let mut h = Self::header(EntryType::Directory, mode, uid, gid, 0);
        self.inner
            .append_data(&mut h, format!("{path}/"), &[][..])
            .unwrap();
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) {
        let mut h = Self::header(EntryType::Regular, mode, uid, gid, data.len() as u64);
        self.inner.append_data(&mut h, path, data).unwrap();
    }

    /// An entry whose name and link name are written into the header as given, bypassing the
    /// tar crate's checks: for hostile layers (`/abs`, `../x`).
    pub fn raw(&mut self, kind: EntryType, path: &str, link: &str, data: &[u8]) {
        let mut h = Self::header(kind, 0o644, 0, 0, data.len() as u64);
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.inner.append(&h, data).unwrap();
    }

    /// A root-owned file preceded by a PAX header carrying `SCHILY.xattr.NAME=VALUE`.
    pub fn file_with_xattr(&mut self, path: &str, data: &[u8], mode: u32, xattr: (&str, &[u8])) {
        let record = pax_record(&format!("SCHILY.xattr.{}", xattr.0), xattr.1);
        let mut pax = Self::header(EntryType::XHeader, 0o644, 0, 0, record.len() as u64);
        let pax_name = format!("PaxHeaders.0/{}", path.rsplit('/').next().unwrap());
        self.inner
            .append_data(&mut pax, pax_name, &record[..])
            .unwrap();
        self.file(path, data, mode, 0, 0);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        let mut h = Self::header(EntryType::Symlink, 0o777, 0, 0, 0);
        self.inner.append_link(&mut h, path, target).unwrap();
    }

    /// A hardlink to `target`, a path inside the same layer.
    pub fn hardlink(&mut self, path: &str, target: &str) {
        let mut h = Self::header(EntryType::Link, 0o755, 0, 0, 0);
        self.inner.append_link(&mut h, path, target).unwrap();
    }

    /// Appends `header` exactly as given (its size and checksum fields may lie) followed by
    /// `data`, padded to a block: for layers whose headers disagree with what follows them.
    pub fn raw_header(&mut self, header: &Header, data: &[u8]) {
        let out = self.inner.get_mut();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    /// A PAX extended header (`x`) with `records` for the entry that follows.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let mut h = Self::header(EntryType::XHeader, 0o644, 0, 0, data.len() as u64);
        self.inner
            .append_data(&mut h, "PaxHeaders.0/entry", &data[..])
            .unwrap();
    }

    /// A header of `kind` for `path` (at most 100 bytes) with mtime [`MTIME`], root's, the
    /// checksum set; change fields and call `set_cksum` again (or not) before
    /// [`raw_header`](Self::raw_header).
    pub fn make_header(kind: EntryType, path: &str, size: u64) -> Header {
        let mut h = Self::header(kind, 0o644, 0, 0, size);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        h
    }

    pub fn finish(self) -> Vec<u8> {
        self.inner.into_inner().unwrap()
    }

    /// The archive so far, without the end-of-archive blocks.
    pub fn unterminated(mut self) -> Vec<u8> {
        std::mem::take(self.inner.get_mut())
    }
}

/// A gzip stream of `prefix`, then `count` bytes of `fill`, then `suffix`, as concatenated
/// gzip members (which `gzip -d` and every layer reader accept): a gigabyte of filler costs
/// a megabyte and no gigabyte of compression work, since one compressed MiB is repeated.
pub fn gzip_with_filler(prefix: &[u8], fill: u8, count: u64, suffix: &[u8]) -> Vec<u8> {
    let member = |bytes: &[u8]| {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    };
    const MIB: u64 = 1 << 20;
    let mut out = member(prefix);
    let whole = member(&vec![fill; MIB as usize]);
    for _ in 0..count / MIB {
        out.extend_from_slice(&whole);
    }
    out.extend(member(&vec![fill; (count % MIB) as usize]));
    out.extend(member(suffix));
    out
}

/// One PAX record: `LEN KEY=VALUE\n`, where LEN counts the whole record including itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    debug_assert_eq!(record.len(), len);
    record
}

// ---------------------------------------------------------------------------------------------
// Images, layouts, pushing

/// Computes config and manifest for `layers`; the reference is `REPOSITORY:latest`.
pub fn build_image(repository: &str, arch: &str, layers: Vec<Layer>, cmd: &[&str]) -> Image {
    let container_config = json!({"Env": [PATH_ENV], "Cmd": cmd, "WorkingDir": "/"});
    build_image_with_config(repository, arch, layers, container_config)
}

/// [`build_image`] with the config's `config` object (Env, Cmd, ExposedPorts…) as given.
pub fn build_image_with_config(
    repository: &str,
    arch: &str,
    layers: Vec<Layer>,
    container_config: serde_json::Value,
) -> Image {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let history: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| json!({"created": CREATED, "created_by": format!("nook test fixture, layer {}", i + 1)}))
        .collect();
    let config = serde_json::to_vec(&json!({
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    let layer_descriptors: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": layer_descriptors,
    }))
    .unwrap();
    Image {
        reference: format!("{repository}:latest"),
        repository: repository.to_string(),
        architecture: arch.to_string(),
        manifest_digest: Digest::of(&manifest),
        manifest,
        config_digest,
        config,
        layers,
    }
}

/// Builds the image, writes it as an OCI layout tagged `latest`, and pushes it to
/// `REGISTRY/fixtures/NAME:latest`.
pub fn push_image(name: &str, arch: &str, layers: Vec<Layer>, cmd: &[&str]) -> Image {
    let container_config = json!({"Env": [PATH_ENV], "Cmd": cmd, "WorkingDir": "/"});
    push_image_with_config(name, arch, layers, container_config)
}

/// [`push_image`] with the config's `config` object as given.
pub fn push_image_with_config(
    name: &str,
    arch: &str,
    layers: Vec<Layer>,
    container_config: serde_json::Value,
) -> Image {
    let repository = format!("{}/fixtures/{name}", registry().addr);
    let image = build_image_with_config(&repository, arch, layers, container_config);
    let layout = tempfile::tempdir().expect("temp dir for an OCI layout");
    write_image_blobs(layout.path(), &image);
    write_layout_index(
        layout.path(),
        MEDIA_MANIFEST,
        &image.manifest_digest,
        image.manifest.len(),
    );
    if image.layers.iter().any(|l| l.media_type == MEDIA_LAYER_TAR) {
        // skopeo (c/image) always gzips uncompressed layers when pushing to a registry, even
        // with --preserve-digests, which would change the manifest: push these over HTTP.
        push_raw(&image, "latest");
    } else {
        skopeo_push(layout.path(), &image.reference);
    }
    image
}

/// Pushes `image` unchanged through the registry API: each blob (POST then PUT), then the
/// manifest as `TAG`.
pub fn push_raw(image: &Image, tag: &str) {
    let base = format!("http://{}", registry().addr);
    let name = image
        .repository
        .split_once('/')
        .map(|(_, n)| n)
        .expect("repository has a host");
    let blobs = image
        .layers
        .iter()
        .map(|l| (&l.digest, &l.blob[..]))
        .chain([(&image.config_digest, &image.config[..])]);
    for (digest, bytes) in blobs {
        let started = ureq::post(&format!("{base}/v2/{name}/blobs/uploads/"))
            .call()
            .unwrap_or_else(|e| panic!("starting a blob upload to {base}: {e}"));
        let location = started
            .header("Location")
            .expect("upload response has a Location")
            .to_string();
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{location}{sep}digest={digest}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("uploading blob {digest}: {e}"));
    }
    ureq::put(&format!("{base}/v2/{name}/manifests/{tag}"))
        .set("Content-Type", MEDIA_MANIFEST)
        .send_bytes(&image.manifest)
        .unwrap_or_else(|e| panic!("putting manifest {}: {e}", image.manifest_digest));
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Digest {
    let digest = Digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), bytes).unwrap();
    digest
}

fn write_image_blobs(layout: &Path, image: &Image) {
    for layer in &image.layers {
        write_blob(layout, &layer.blob);
    }
    write_blob(layout, &image.config);
    write_blob(layout, &image.manifest);
}

/// Writes `oci-layout` and an `index.json` naming `digest` as tag `latest`.
fn write_layout_index(layout: &Path, media_type: &str, digest: &Digest, size: usize) {
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// `skopeo copy --all oci:LAYOUT:latest docker://REFERENCE`, over plain HTTP.
fn skopeo_push(layout: &Path, reference: &str) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap_or_else(|e| {
            panic!("running skopeo: {e}: install the Debian package skopeo (helpers/install-deps)")
        });
    assert!(
        out.status.success(),
        "skopeo copy to {reference} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `skopeo copy docker://SRC docker://DEST` between test registries: TLS unverified (plain
/// HTTP allowed) on both sides, and `EXTRA` options (`--dest-creds USER:PASSWORD`).
pub fn skopeo_copy(src: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .arg(format!("docker://{src}"))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap_or_else(|e| {
            panic!("running skopeo: {e}: install the Debian package skopeo (helpers/install-deps)")
        });
    assert!(
        out.status.success(),
        "skopeo copy {src} to {dest} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `skopeo inspect --raw` of a reference on the test registry: the manifest bytes it serves.
pub fn skopeo_inspect_raw(reference: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
