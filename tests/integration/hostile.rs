//! The hostile input catalogue: layer tars, image archives, registries, configs and
//! references made to hurt, each fed to the real `nook` end to end (`pull`, `load`, `import`,
//! `run`…) as the unprivileged test user. For every case:
//!
//! - it is **refused** (exit 125, exactly one `Error:` line that says why, the store as it
//!   was and nothing left in staging) or **contained** (accepted, with whatever was hostile
//!   kept inside the layer, and a warning where something was dropped);
//! - nothing is written outside the store: the test's directories other than the store are
//!   listed before and after, an `outside/` directory anyone may write is a target of the
//!   escapes, and so is `/tmp/nook-hostile-canary`;
//! - memory stays bounded: nook's peak RSS (`/usr/bin/time -f %M`) is under [`MAX_RSS_KIB`],
//!   though some cases declare a gigabyte;
//! - time stays bounded: under [`MAX_SECONDS`], with `[registry] timeout = 2` for the
//!   misbehaving registries.
//!
//! The cases run on a few threads; each prints its name and result, and the test ends with
//! the count line that the README quotes.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nook::image::digest::Digest;
use serde_json::json;
use tar::{EntryType, Header};

use crate::harness::context::store_state;
use crate::harness::fixtures::{
    self, Image, Layer, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, TarBuilder, gzip_layer,
    gzip_with_filler, host_arch, plain_layer,
};
use crate::harness::hostile_peer::{
    HostilePeer, Request, respond, respond_head, stall, stream_filler,
};
use crate::harness::{TestContext, registry, require};

/// nook's peak resident memory in any case, KiB. A pull's own is about 10 MiB; the cases
/// that declare a gigabyte would need that much if anything buffered it.
const MAX_RSS_KIB: u64 = 64 * 1024;
/// The longest any case may take, registry time-outs included.
const MAX_SECONDS: u64 = 30;
/// The registry time-out (config.toml) for the cases that use a misbehaving registry.
const TIMEOUT_SECS: u64 = 2;
/// Where a relative escape that climbs out of the store would land.
const CANARY: &str = "/tmp/nook-hostile-canary";
/// Enough `..` to climb from any staging directory to `/`.
const CLIMB: &str = "../../../../../../../../../../../..";
const GIB: u64 = 1 << 30;

/// Looks at a contained case's result: the context and nook's stderr.
type Check = Box<dyn Fn(&TestContext, &str) -> Result<(), String> + Send>;

/// What a case must come to.
enum Expect {
    /// Exit 125, one `Error:` line containing this.
    Refused(&'static str),
    /// Exit 0; the check looks at the result (the context and nook's stderr).
    Contained(Check),
}

/// One nook command and what it must come to.
struct Trial {
    args: Vec<String>,
    expect: Expect,
    /// Run with `[registry] timeout = TIMEOUT_SECS`.
    short_timeout: bool,
}

fn refused(args: &[&str], needle: &'static str) -> Trial {
    Trial {
        args: args.iter().map(|s| s.to_string()).collect(),
        expect: Expect::Refused(needle),
        short_timeout: false,
    }
}

fn contained(
    args: &[&str],
    check: impl Fn(&TestContext, &str) -> Result<(), String> + Send + 'static,
) -> Trial {
    Trial {
        args: args.iter().map(|s| s.to_string()).collect(),
        expect: Expect::Contained(Box::new(check)),
        short_timeout: false,
    }
}

fn slow_registry(mut trial: Trial) -> Trial {
    trial.short_timeout = true;
    trial
}

type Setup = Box<dyn FnOnce(&TestContext) -> Trial + Send>;

struct Case {
    name: &'static str,
    setup: Setup,
}

fn case(name: &'static str, setup: impl FnOnce(&TestContext) -> Trial + Send + 'static) -> Case {
    Case {
        name,
        setup: Box::new(setup),
    }
}

// ---------------------------------------------------------------------------------------------
// Building hostile artefacts

/// `outside/` in the case's directory: writable by anyone, so only nook can keep an escape
/// out of it.
fn outside(ctx: &TestContext) -> PathBuf {
    ctx.root().join("outside")
}

/// Pushes a one-layer image `hostile/NAME` to the real registry; its reference.
fn push_layer(name: &str, layer: Layer) -> String {
    let repository = format!("{}/hostile/{name}", registry().addr);
    let image = fixtures::build_image(&repository, host_arch(), vec![layer], &["sh"]);
    fixtures::push_raw(&image, "latest");
    image.reference
}

/// `nook pull` of a one-layer image made of `tar` (gzip).
fn pull_tar(name: &str, tar: Vec<u8>) -> String {
    push_layer(name, gzip_layer(&tar))
}

/// A gzip layer whose diff id is not checked because extraction must fail first.
fn unchecked_layer(blob: Vec<u8>) -> Layer {
    Layer {
        media_type: MEDIA_LAYER_GZIP,
        digest: Digest::of(&blob),
        size: blob.len() as u64,
        diff_id: Digest::of(b"never reached"),
        blob,
    }
}

/// A tar whose entry of `kind` declares `size` bytes of `fill`, which all follow, then a
/// regular file `after`: as gzip, cheaply, however large `size` is.
fn oversized_entry(kind: EntryType, size: u64, fill: u8) -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.file("before", b"fine\n", 0o644, 0, 0);
    let h = TarBuilder::make_header(kind, "././@LongLink", size);
    t.raw_header(&h, b"");
    let prefix = t.unterminated();
    let mut rest = vec![0u8; (size.div_ceil(512) * 512 - size) as usize];
    let mut after = TarBuilder::new();
    after.file("after", b"after\n", 0o644, 0, 0);
    rest.extend(after.finish());
    gzip_with_filler(&prefix, fill, size, &rest)
}

fn layer_dir(ctx: &TestContext) -> Result<PathBuf, String> {
    let layers = store_state(ctx).1;
    match &layers[..] {
        [one] => Ok(ctx.data.join("nook/layers").join(one).join("diff")),
        other => Err(format!("expected one layer in the store, found {other:?}")),
    }
}

fn expect(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.into()) }
}

fn file_is(ctx: &TestContext, rel: &str, content: &[u8]) -> Result<(), String> {
    let path = layer_dir(ctx)?.join(rel);
    match std::fs::read(&path) {
        Ok(c) if c == content => Ok(()),
        Ok(c) => Err(format!("{rel} holds {:?}", String::from_utf8_lossy(&c))),
        Err(e) => Err(format!("{rel}: {e}")),
    }
}

/// A docker-archive (as `docker save` writes it) of one image with `layers`, plus `extra`
/// entries written raw.
fn docker_archive(config: &[u8], layers: &[Vec<u8>], tags: &[&str]) -> Vec<u8> {
    let mut t = TarBuilder::new();
    let config_name = format!("{}.json", Digest::of(config).hex());
    t.file(&config_name, config, 0o644, 0, 0);
    let mut names = Vec::new();
    for layer in layers {
        let name = format!("{}/layer.tar", Digest::of(layer).hex());
        t.file(&name, layer, 0o644, 0, 0);
        names.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": names}]);
    t.file(
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
        0o644,
        0,
        0,
    );
    t.finish()
}

/// The config of a one-image archive with these layer tars.
fn config_for(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    serde_json::to_vec(&json!({
        "architecture": host_arch(), "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Writes `bytes` to `home/NAME` (readable by the test user); its path.
fn artefact(ctx: &TestContext, name: &str, bytes: &[u8]) -> String {
    let path = ctx.home.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// A small valid image (not pushed) for the hostile peer to serve in part.
fn peer_image(peer: &str, name: &str) -> Image {
    // Incompressible, so that the blob is as large as its content.
    let mut state = 0x9e37_79b9_u32;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    let mut t = TarBuilder::new();
    t.file("hello", &noise, 0o644, 0, 0);
    let repository = format!("{peer}/hostile/{name}");
    fixtures::build_image(
        &repository,
        host_arch(),
        vec![gzip_layer(&t.finish())],
        &["sh"],
    )
}

/// A peer that serves `image` correctly except for its layer blob, which `blob` answers.
fn peer_serving(
    name: &'static str,
    blob: fn(&Image, &mut TcpStream),
) -> (HostilePeer, std::sync::Arc<Mutex<Option<Image>>>) {
    let shared: std::sync::Arc<Mutex<Option<Image>>> = Default::default();
    let image = shared.clone();
    let peer = HostilePeer::start(move |req: &Request, stream: &mut TcpStream| {
        let image = image.lock().unwrap().clone().expect("image set");
        if req.manifest_ref().is_some() {
            respond(
                stream,
                200,
                &[("Content-Type", MEDIA_MANIFEST)],
                &image.manifest,
            );
        } else if req.blob_digest() == Some(&image.config_digest.to_string()) {
            respond(stream, 200, &[], &image.config);
        } else {
            blob(&image, stream);
        }
    });
    *shared.lock().unwrap() = Some(peer_image(&peer.addr, name));
    (peer, shared)
}

fn peer_reference(peer: &HostilePeer, name: &str) -> String {
    format!("{}/hostile/{name}:latest", peer.addr)
}

/// A peer that answers every manifest request with `body` (as an OCI manifest).
fn peer_manifest(body: Vec<u8>) -> HostilePeer {
    HostilePeer::start(move |_req, stream| {
        respond(stream, 200, &[("Content-Type", MEDIA_MANIFEST)], &body);
    })
}

fn manifest_with(config: &Digest, config_size: u64, layers: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config.to_string(), "size": config_size},
        "layers": layers,
    }))
    .unwrap()
}

/// The registry's file for blob `digest`.
fn registry_blob(digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    registry()
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Pushes a one-layer image to the real registry; the image.
fn push_fresh(name: &str) -> Image {
    let mut t = TarBuilder::new();
    t.file(
        "data",
        format!("{name}\n").repeat(20_000).as_bytes(),
        0o644,
        0,
        0,
    );
    let repository = format!("{}/hostile/{name}", registry().addr);
    let image = fixtures::build_image(
        &repository,
        host_arch(),
        vec![gzip_layer(&t.finish())],
        &["sh"],
    );
    fixtures::push_raw(&image, "latest");
    image
}

/// Pushes an image whose config is `config` (its manifest naming it) to the real registry.
fn push_with_config(name: &str, config: Vec<u8>) -> String {
    let mut t = TarBuilder::new();
    t.file("f", b"f\n", 0o644, 0, 0);
    let repository = format!("{}/hostile/{name}", registry().addr);
    let mut image = fixtures::build_image(
        &repository,
        host_arch(),
        vec![gzip_layer(&t.finish())],
        &["sh"],
    );
    image.config_digest = Digest::of(&config);
    image.config = config;
    let layers: Vec<_> = image
        .layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    image.manifest = manifest_with(
        &image.config_digest,
        image.config.len() as u64,
        json!(layers),
    );
    image.manifest_digest = Digest::of(&image.manifest);
    fixtures::push_raw(&image, "latest");
    image.reference
}

// ---------------------------------------------------------------------------------------------
// The catalogue

fn layer_cases() -> Vec<Case> {
    vec![
        case("layer: absolute path", |ctx| {
            let target = format!("{}/abs", outside(ctx).display());
            let mut t = TarBuilder::new();
            t.raw(EntryType::Regular, &target, "", b"kept inside\n");
            let reference = pull_tar("absolute", t.finish());
            contained(&["pull", &reference], move |ctx, _| {
                file_is(ctx, target.trim_start_matches('/'), b"kept inside\n")
            })
        }),
        case("layer: `..` path", |_| {
            let mut t = TarBuilder::new();
            t.raw(
                EntryType::Regular,
                &format!("{CLIMB}{CANARY}"),
                "",
                b"escaped\n",
            );
            refused(
                &["pull", &pull_tar("dotdot", t.finish())],
                "leaves the layer",
            )
        }),
        case("layer: `..` inside a path", |_| {
            let mut t = TarBuilder::new();
            t.dir("a", 0o755, 0, 0);
            t.raw(
                EntryType::Regular,
                &format!("a/{CLIMB}{CANARY}"),
                "",
                b"escaped\n",
            );
            refused(
                &["pull", &pull_tar("inner-dotdot", t.finish())],
                "leaves the layer",
            )
        }),
        case("layer: symlink out, then a write through it", |ctx| {
            let mut t = TarBuilder::new();
            t.symlink("escape", outside(ctx).to_str().unwrap());
            t.file("escape/owned", b"gotcha\n", 0o644, 0, 0);
            refused(
                &["pull", &pull_tar("symlink-write", t.finish())],
                "through the symlink",
            )
        }),
        case(
            "layer: relative symlink up, then a write through it",
            |_| {
                let mut t = TarBuilder::new();
                t.symlink("up", &format!("{CLIMB}/tmp"));
                t.file("up/nook-hostile-canary", b"gotcha\n", 0o644, 0, 0);
                refused(
                    &["pull", &pull_tar("symlink-up", t.finish())],
                    "through the symlink",
                )
            },
        ),
        case(
            "layer: directory replaced by a symlink, then a write",
            |ctx| {
                let mut t = TarBuilder::new();
                t.dir("d", 0o755, 0, 0);
                t.file("d/first", b"1\n", 0o644, 0, 0);
                t.symlink("d", outside(ctx).to_str().unwrap());
                t.file("d/second", b"gotcha\n", 0o644, 0, 0);
                refused(
                    &["pull", &pull_tar("dir-to-symlink", t.finish())],
                    "through the symlink",
                )
            },
        ),
        case("layer: hardlink to a file outside (`..`)", |_| {
            let mut t = TarBuilder::new();
            t.raw(
                EntryType::Link,
                "passwd",
                &format!("{CLIMB}/etc/passwd"),
                b"",
            );
            refused(
                &["pull", &pull_tar("hardlink-dotdot", t.finish())],
                "outside the layer",
            )
        }),
        case("layer: hardlink to an absolute path", |_| {
            let mut t = TarBuilder::new();
            t.raw(EntryType::Link, "passwd", "/etc/passwd", b"");
            refused(
                &["pull", &pull_tar("hardlink-absolute", t.finish())],
                "not in the layer",
            )
        }),
        case("layer: hardlink through a symlink", |_| {
            let mut t = TarBuilder::new();
            t.symlink("etc", "/etc");
            t.raw(EntryType::Link, "passwd", "etc/passwd", b"");
            refused(
                &["pull", &pull_tar("hardlink-symlink", t.finish())],
                "outside the layer",
            )
        }),
        case("layer: character device", |_| {
            let mut t = TarBuilder::new();
            let mut h = TarBuilder::make_header(EntryType::Char, "mem", 0);
            h.set_device_major(1).unwrap();
            h.set_device_minor(1).unwrap();
            h.set_cksum();
            t.raw_header(&h, b"");
            t.file("ok", b"ok\n", 0o644, 0, 0);
            let reference = pull_tar("char-device", t.finish());
            contained(&["pull", &reference], |ctx, stderr| {
                expect(stderr.contains("skipped device node /mem"), "no warning")?;
                expect(
                    !layer_dir(ctx)?.join("mem").exists(),
                    "the device was created",
                )?;
                file_is(ctx, "ok", b"ok\n")
            })
        }),
        case("layer: block device", |_| {
            let mut t = TarBuilder::new();
            let mut h = TarBuilder::make_header(EntryType::Block, "sda", 0);
            h.set_device_major(8).unwrap();
            h.set_device_minor(0).unwrap();
            h.set_cksum();
            t.raw_header(&h, b"");
            let reference = pull_tar("block-device", t.finish());
            contained(&["pull", &reference], |ctx, stderr| {
                expect(stderr.contains("skipped device node /sda"), "no warning")?;
                expect(
                    !layer_dir(ctx)?.join("sda").exists(),
                    "the device was created",
                )
            })
        }),
        case("layer: FIFO", |_| {
            let mut t = TarBuilder::new();
            t.raw(EntryType::Fifo, "pipe", "", b"");
            t.file("after", b"after\n", 0o644, 0, 0);
            let reference = pull_tar("fifo", t.finish());
            contained(&["pull", &reference], |ctx, _| {
                use std::os::unix::fs::FileTypeExt;
                let meta = std::fs::symlink_metadata(layer_dir(ctx)?.join("pipe"));
                expect(
                    meta.is_ok_and(|m| m.file_type().is_fifo()),
                    "no FIFO in the layer",
                )?;
                file_is(ctx, "after", b"after\n")
            })
        }),
        case("layer: size of a terabyte, stream ends", |_| {
            let mut t = TarBuilder::new();
            let h = TarBuilder::make_header(EntryType::Regular, "huge", 1 << 40);
            t.raw_header(&h, &[b'x'; 4096]);
            refused(&["pull", &pull_tar("huge-size", t.finish())], "truncated")
        }),
        case("layer: negative size (base-256)", |_| {
            let mut t = TarBuilder::new();
            let mut h = TarBuilder::make_header(EntryType::Regular, "negative", 0);
            h.as_old_mut().size = [0xff; 12];
            h.set_cksum();
            t.raw_header(&h, b"");
            refused(&["pull", &pull_tar("negative-size", t.finish())], "size")
        }),
        case("layer: size field that is not a number", |_| {
            let mut t = TarBuilder::new();
            let mut h = TarBuilder::make_header(EntryType::Regular, "nan", 0);
            h.as_old_mut().size = *b"12x4567z901\0";
            h.set_cksum();
            t.raw_header(&h, b"");
            refused(&["pull", &pull_tar("nan-size", t.finish())], "layer")
        }),
        case("layer: name longer than PATH_MAX", |_| {
            let mut t = TarBuilder::new();
            t.file(&format!("{}f", "d/".repeat(3000)), b"deep\n", 0o644, 0, 0);
            refused(
                &["pull", &pull_tar("long-name", t.finish())],
                "longer than Linux allows",
            )
        }),
        case("layer: name component of 300 bytes", |_| {
            let mut t = TarBuilder::new();
            t.file(&"n".repeat(300), b"long\n", 0o644, 0, 0);
            refused(
                &["pull", &pull_tar("long-component", t.finish())],
                "File name too long",
            )
        }),
        case("layer: GNU long name of 1 GiB", |_| {
            let blob = oversized_entry(EntryType::GNULongName, GIB, b'a');
            refused(
                &[
                    "pull",
                    &push_layer("gnu-longname-1g", unchecked_layer(blob)),
                ],
                "take more than 1048576 bytes",
            )
        }),
        case("layer: PAX header of 1 GiB", |_| {
            let blob = oversized_entry(EntryType::XHeader, GIB, b'a');
            refused(
                &["pull", &push_layer("pax-1g", unchecked_layer(blob))],
                "take more than 1048576 bytes",
            )
        }),
        case("layer: PAX path with `..`", |_| {
            let mut t = TarBuilder::new();
            t.pax(&[("path", format!("{CLIMB}{CANARY}").as_bytes())]);
            t.file("innocent", b"escaped\n", 0o644, 0, 0);
            refused(
                &["pull", &pull_tar("pax-path", t.finish())],
                "leaves the layer",
            )
        }),
        case("layer: PAX linkpath out of the layer", |_| {
            let mut t = TarBuilder::new();
            t.file("ok", b"ok\n", 0o644, 0, 0);
            t.pax(&[("linkpath", format!("{CLIMB}/etc/shadow").as_bytes())]);
            t.hardlink("shadow", "ok");
            refused(
                &["pull", &pull_tar("pax-linkpath", t.finish())],
                "outside the layer",
            )
        }),
        case("layer: PAX size disagreeing with the header", |_| {
            // Parsers that disagree about the size see different files; nook reads the PAX
            // size, as the tar crate and Go do, and the digest covers what it read.
            let mut t = TarBuilder::new();
            t.pax(&[("size", b"5")]);
            let h = TarBuilder::make_header(EntryType::Regular, "smuggled", 0);
            t.raw_header(&h, b"EVIL!");
            t.file("after", b"after\n", 0o644, 0, 0);
            let reference = pull_tar("pax-size", t.finish());
            contained(&["pull", &reference], |ctx, _| {
                file_is(ctx, "smuggled", b"EVIL!")?;
                file_is(ctx, "after", b"after\n")
            })
        }),
        case("layer: PAX uid beyond any namespace", |_| {
            let mut t = TarBuilder::new();
            t.pax(&[("uid", b"4294967296000"), ("gid", b"99999999999")]);
            t.file("owned", b"owned\n", 0o644, 0, 0);
            let reference = pull_tar("pax-uid", t.finish());
            contained(&["pull", &reference], |ctx, stderr| {
                expect(stderr.contains("appear as root's"), "no warning")?;
                file_is(ctx, "owned", b"owned\n")
            })
        }),
        case("layer: duplicated entries", |_| {
            let mut t = TarBuilder::new();
            t.file("twice", b"first\n", 0o644, 0, 0);
            t.file("twice", b"second\n", 0o644, 0, 0);
            t.dir("was-file", 0o755, 0, 0);
            t.file("was-file", b"now a file\n", 0o644, 0, 0);
            t.file("was-dir", b"a file\n", 0o644, 0, 0);
            t.dir("was-dir", 0o755, 0, 0);
            t.file("was-dir/inner", b"inner\n", 0o644, 0, 0);
            let reference = pull_tar("duplicates", t.finish());
            contained(&["pull", &reference], |ctx, _| {
                file_is(ctx, "twice", b"second\n")?;
                file_is(ctx, "was-file", b"now a file\n")?;
                file_is(ctx, "was-dir/inner", b"inner\n")
            })
        }),
        case("layer: sparse file of a petabyte", |_| {
            let mut h = Header::new_gnu();
            h.as_old_mut().name[..6].copy_from_slice(b"sparse");
            h.set_entry_type(EntryType::GNUSparse);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(fixtures::MTIME);
            h.set_size(512);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.set_real_size(1 << 50);
            gnu.sparse[0].set_offset((1 << 50) - 512);
            gnu.sparse[0].set_length(512);
            h.set_cksum();
            let mut t = TarBuilder::new();
            t.raw_header(&h, &[7u8; 512]);
            refused(
                &["pull", &pull_tar("sparse-petabyte", t.finish())],
                "sparse file",
            )
        }),
        case("layer: whiteout of `..`", |_| {
            let mut t = TarBuilder::new();
            t.raw(EntryType::Regular, ".wh...", "", b"");
            t.file("ok", b"ok\n", 0o644, 0, 0);
            let reference = pull_tar("whiteout-dotdot", t.finish());
            contained(&["pull", &reference], |ctx, stderr| {
                expect(stderr.contains("names no file"), "no warning")?;
                file_is(ctx, "ok", b"ok\n")
            })
        }),
        case("layer: overlay xattr smuggled in", |_| {
            let mut t = TarBuilder::new();
            t.file_with_xattr("f", b"f\n", 0o644, ("trusted.overlay.redirect", b"/etc"));
            let reference = pull_tar("overlay-xattr", t.finish());
            contained(&["pull", &reference], |ctx, stderr| {
                expect(
                    stderr.contains("overlay metadata cannot come from a layer"),
                    "no warning",
                )?;
                file_is(ctx, "f", b"f\n")
            })
        }),
        case("layer: not a tar at all", |_| {
            let noise: Vec<u8> = (0..8192u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            refused(&["pull", &pull_tar("noise", noise)], "layer")
        }),
        case("layer: says gzip, is a plain tar", |_| {
            let mut t = TarBuilder::new();
            t.file("f", b"f\n", 0o644, 0, 0);
            let mut layer = plain_layer(&t.finish());
            layer.media_type = MEDIA_LAYER_GZIP;
            refused(&["pull", &push_layer("not-gzip", layer)], "layer")
        }),
    ]
}

fn archive_cases() -> Vec<Case> {
    vec![
        case("import: `..` path", |ctx| {
            let mut t = TarBuilder::new();
            t.raw(
                EntryType::Regular,
                &format!("{CLIMB}{CANARY}"),
                "",
                b"escaped\n",
            );
            let file = artefact(ctx, "dotdot.tar", &t.finish());
            refused(&["import", &file, "hostile:1"], "leaves the layer")
        }),
        case("import: symlink out, then a write through it", |ctx| {
            let mut t = TarBuilder::new();
            t.symlink("escape", outside(ctx).to_str().unwrap());
            t.file("escape/owned", b"gotcha\n", 0o644, 0, 0);
            let file = artefact(ctx, "symlink.tar", &t.finish());
            refused(&["import", &file, "hostile:1"], "through the symlink")
        }),
        case("import: GNU long name of 1 GiB (gzip)", |ctx| {
            let file = artefact(
                ctx,
                "longname.tar.gz",
                &oversized_entry(EntryType::GNULongName, GIB, b'a'),
            );
            refused(
                &["import", &file, "hostile:1"],
                "take more than 1048576 bytes",
            )
        }),
        case("import: hardlink to a file outside", |ctx| {
            let mut t = TarBuilder::new();
            t.raw(
                EntryType::Link,
                "shadow",
                &format!("{CLIMB}/etc/shadow"),
                b"",
            );
            let file = artefact(ctx, "hardlink.tar", &t.finish());
            refused(&["import", &file, "hostile:1"], "outside the layer")
        }),
        case("load: archive entry with `..`", |ctx| {
            let mut t = TarBuilder::new();
            t.raw(
                EntryType::Regular,
                &format!("{CLIMB}{CANARY}"),
                "",
                b"escaped\n",
            );
            t.file("manifest.json", b"[]", 0o644, 0, 0);
            let file = artefact(ctx, "dotdot-archive.tar", &t.finish());
            refused(&["load", "-i", &file], "escapes the archive")
        }),
        case("load: archive symlink out of the archive", |ctx| {
            let mut t = TarBuilder::new();
            t.symlink("manifest.json", "/etc/passwd");
            let file = artefact(ctx, "symlink-archive.tar", &t.finish());
            refused(&["load", "-i", &file], "escapes the archive")
        }),
        case("load: archive PAX header of 256 MiB (gzip)", |ctx| {
            let blob = oversized_entry(EntryType::XHeader, 256 << 20, b'a');
            let file = artefact(ctx, "pax-archive.tar.gz", &blob);
            refused(&["load", "-i", &file], "take more than 1048576 bytes")
        }),
        case("load: 150,000 archive entries (gzip)", |ctx| {
            let mut t = TarBuilder::new();
            for i in 0..150_000 {
                t.file(&format!("f{i}"), b"", 0o644, 0, 0);
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&t.finish()).unwrap();
            let file = artefact(ctx, "many.tar.gz", &gz.finish().unwrap());
            refused(&["load", "-i", &file], "more than 100000 entries")
        }),
        case(
            "load: layer with a symlink, then a write through it",
            |ctx| {
                let mut t = TarBuilder::new();
                t.symlink("escape", outside(ctx).to_str().unwrap());
                t.file("escape/owned", b"gotcha\n", 0o644, 0, 0);
                let layers = vec![t.finish()];
                let archive = docker_archive(&config_for(&layers), &layers, &["hostile:1"]);
                let file = artefact(ctx, "layer-symlink.tar", &archive);
                refused(&["load", "-i", &file], "through the symlink")
            },
        ),
        case(
            "load: manifest naming a config outside the archive",
            |ctx| {
                let mut t = TarBuilder::new();
                let manifest = json!([{"Config": format!("{CLIMB}/etc/passwd"), "RepoTags": ["x:1"], "Layers": []}]);
                t.file(
                    "manifest.json",
                    &serde_json::to_vec(&manifest).unwrap(),
                    0o644,
                    0,
                    0,
                );
                let file = artefact(ctx, "config-escape.tar", &t.finish());
                refused(&["load", "-i", &file], "escapes the archive")
            },
        ),
        case("load: names that are not references", |ctx| {
            let mut t = TarBuilder::new();
            t.file("f", b"f\n", 0o644, 0, 0);
            let layers = vec![t.finish()];
            let tags = ["../../etc:passwd", "UPPER/case:1", "ok/name:1"];
            let archive = docker_archive(&config_for(&layers), &layers, &tags);
            let file = artefact(ctx, "bad-names.tar", &archive);
            contained(&["load", "-i", &file], |ctx, stderr| {
                expect(
                    stderr.contains("../../etc:passwd"),
                    "no warning for the bad name",
                )?;
                let names = String::from_utf8_lossy(
                    &ctx.nook(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
                        .stdout,
                )
                .into_owned();
                expect(names.trim() == "ok/name:1", format!("images: {names}"))
            })
        }),
        case("load: config that is not JSON", |ctx| {
            let mut t = TarBuilder::new();
            t.file("f", b"f\n", 0o644, 0, 0);
            let layers = vec![t.finish()];
            let archive = docker_archive(b"{not json", &layers, &["x:1"]);
            let file = artefact(ctx, "config-garbage.tar", &archive);
            refused(&["load", "-i", &file], "malformed")
        }),
    ]
}

fn registry_cases() -> Vec<Case> {
    vec![
        case("registry: blob with the wrong digest", |_| {
            let image = push_fresh("wrong-digest");
            let layer = &image.layers[0];
            let mut bytes = layer.blob.clone();
            let at = bytes.len() - 10;
            bytes[at] ^= 0xff;
            std::fs::write(registry_blob(&layer.digest), &bytes).unwrap();
            refused(&["pull", &image.reference], "the manifest promised")
        }),
        case("registry: truncated blob", |_| {
            let image = push_fresh("truncated");
            let layer = &image.layers[0];
            std::fs::write(
                registry_blob(&layer.digest),
                &layer.blob[..layer.blob.len() / 2],
            )
            .unwrap();
            refused(&["pull", &image.reference], "truncated")
        }),
        case("registry: config with the wrong digest", |_| {
            let image = push_fresh("wrong-config");
            let mut config = image.config.clone();
            config[1] ^= 0x20;
            std::fs::write(registry_blob(&image.config_digest), &config).unwrap();
            refused(&["pull", &image.reference], "expected")
        }),
        case("registry: endless redirect chain", |_| {
            let peer = HostilePeer::start(|req, stream| {
                let hop: u64 = req
                    .path
                    .rsplit_once("hop=")
                    .map_or(0, |(_, n)| n.parse().unwrap_or(0));
                let base = req.path.split('?').next().unwrap_or("/");
                let next = format!("{base}?hop={}", hop + 1);
                respond(stream, 307, &[("Location", &next)], b"");
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "redirects")],
                "redirected 5 times in a row",
            ))
        }),
        case("registry: 1 GiB manifest, announced", |_| {
            let peer = HostilePeer::start(|_req, stream| {
                let size = GIB.to_string();
                respond_head(
                    stream,
                    200,
                    &[("Content-Type", MEDIA_MANIFEST), ("Content-Length", &size)],
                );
                stream_filler(stream, b' ', GIB);
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "big")],
                "larger than the 4194304-byte limit",
            ))
        }),
        case("registry: 1 GiB manifest, chunked", |_| {
            let peer = HostilePeer::start(|_req, stream| {
                respond_head(
                    stream,
                    200,
                    &[
                        ("Content-Type", MEDIA_MANIFEST),
                        ("Transfer-Encoding", "chunked"),
                    ],
                );
                let chunk = [b' '; 65536];
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                for _ in 0..GIB / 65536 {
                    if stream.write_all(&frame).is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "chunked")],
                "larger than the 4194304-byte limit",
            ))
        }),
        case("registry: 1 GiB config", |_| {
            let config = Digest::of(b"a config that never comes");
            let manifest = manifest_with(&config, GIB, json!([]));
            let peer = HostilePeer::start(move |req, stream| {
                if req.manifest_ref().is_some() {
                    respond(stream, 200, &[("Content-Type", MEDIA_MANIFEST)], &manifest);
                } else {
                    respond_head(stream, 200, &[("Content-Length", &GIB.to_string())]);
                    stream_filler(stream, b'{', GIB);
                }
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "big-config")],
                "larger than",
            ))
        }),
        case("registry: stalled connection", |_| {
            let peer = HostilePeer::start(|_req, stream| stall(stream, Duration::from_secs(120)));
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "stall")],
                "did not answer",
            ))
        }),
        case("registry: manifest trickled a byte at a time", |_| {
            let peer = HostilePeer::start(|_req, stream| {
                respond_head(
                    stream,
                    200,
                    &[
                        ("Content-Type", MEDIA_MANIFEST),
                        ("Content-Length", "100000"),
                    ],
                );
                for _ in 0..600 {
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "trickle")],
                "did not answer",
            ))
        }),
        case("registry: blob stalls halfway", |_| {
            let (peer, _image) = peer_serving("blob-stall", |image, stream| {
                let blob = &image.layers[0].blob;
                respond_head(stream, 200, &[("Content-Length", &blob.len().to_string())]);
                let _ = stream.write_all(&blob[..blob.len() / 2]);
                stall(stream, Duration::from_secs(120));
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "blob-stall")],
                "did not answer",
            ))
        }),
        case("registry: blob trickled", |_| {
            let (peer, _image) = peer_serving("blob-trickle", |image, stream| {
                let blob = &image.layers[0].blob;
                respond_head(stream, 200, &[("Content-Length", &blob.len().to_string())]);
                for chunk in blob.chunks(100) {
                    if stream.write_all(chunk).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "blob-trickle")],
                "too slowly",
            ))
        }),
        case("registry: Content-Length longer than the blob", |_| {
            let (peer, _image) = peer_serving("short-body", |image, stream| {
                let blob = &image.layers[0].blob;
                respond_head(
                    stream,
                    200,
                    &[("Content-Length", &(blob.len() * 2).to_string())],
                );
                let _ = stream.write_all(&blob[..blob.len() / 2]);
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "short-body")],
                "truncated",
            ))
        }),
        case("registry: blob longer than the manifest says", |_| {
            let (peer, _image) = peer_serving("long-body", |image, stream| {
                let mut blob = image.layers[0].blob.clone();
                blob.extend(std::iter::repeat_n(0x1f, 1 << 20));
                respond(stream, 200, &[], &blob);
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "long-body")],
                "layer",
            ))
        }),
        case(
            "registry: another manifest than the digest asked for",
            |_| {
                let peer = peer_manifest(br#"{"schemaVersion":2,"layers":[]}"#.to_vec());
                let asked = Digest::of(b"what was asked for");
                let reference = format!("{}/hostile/by-digest@{asked}", peer.addr);
                slow_registry(refused(&["pull", &reference], "expected"))
            },
        ),
        case(
            "registry: error message with a newline and escape codes",
            |_| {
                let peer = HostilePeer::start(|_req, stream| {
                    let message = format!(
                        "no such image\nError: a forged line\u{1b}[2J{}",
                        "x".repeat(60_000)
                    );
                    let body =
                        serde_json::to_vec(&json!({"errors": [{"message": message}]})).unwrap();
                    respond(stream, 404, &[("Content-Type", "application/json")], &body);
                });
                slow_registry(refused(
                    &["pull", &peer_reference(&peer, "lies")],
                    "no such image\\nError: a forged line\\u{1b}[2J",
                ))
            },
        ),
    ]
}

fn config_cases() -> Vec<Case> {
    vec![
        case("manifest: not JSON", |_| {
            let peer = peer_manifest(b"<html>it works</html>".to_vec());
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "html")],
                "malformed manifest",
            ))
        }),
        case("manifest: schema 1", |_| {
            let peer = peer_manifest(br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#.to_vec());
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "schema1")],
                "schema 1",
            ))
        }),
        case("manifest: layer of an unknown media type", |_| {
            let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec();
            let digest = Digest::of(&config);
            let manifest = manifest_with(
                &digest,
                config.len() as u64,
                json!([
                    {"mediaType": "application/x-executable", "digest": digest.to_string(), "size": 1}
                ]),
            );
            let peer = HostilePeer::start(move |req, stream| {
                if req.manifest_ref().is_some() {
                    respond(stream, 200, &[("Content-Type", MEDIA_MANIFEST)], &manifest);
                } else {
                    respond(stream, 200, &[], &config);
                }
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "media-type")],
                "unsupported layer media type",
            ))
        }),
        case("manifest: layer digest that is not sha256", |_| {
            let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec();
            let digest = Digest::of(&config);
            let manifest = manifest_with(
                &digest,
                config.len() as u64,
                json!([
                    {"mediaType": MEDIA_LAYER_GZIP, "digest": "md5:d41d8cd98f00b204e9800998ecf8427e", "size": 1}
                ]),
            );
            let peer = HostilePeer::start(move |req, stream| {
                if req.manifest_ref().is_some() {
                    respond(stream, 200, &[("Content-Type", MEDIA_MANIFEST)], &manifest);
                } else {
                    respond(stream, 200, &[], &config);
                }
            });
            slow_registry(refused(&["pull", &peer_reference(&peer, "md5")], "md5"))
        }),
        case("manifest: index naming an index", |_| {
            let inner = serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": fixtures::MEDIA_INDEX, "manifests": []}),
            )
            .unwrap();
            let inner_digest = Digest::of(&inner);
            let outer = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": fixtures::MEDIA_INDEX,
                "manifests": [{"mediaType": MEDIA_MANIFEST, "digest": inner_digest.to_string(), "size": inner.len(),
                               "platform": {"architecture": host_arch(), "os": "linux"}}],
            }))
            .unwrap();
            let peer = HostilePeer::start(move |req, stream| {
                let body = if req.manifest_ref() == Some(&inner_digest.to_string()) {
                    &inner
                } else {
                    &outer
                };
                respond(
                    stream,
                    200,
                    &[("Content-Type", fixtures::MEDIA_INDEX)],
                    body,
                );
            });
            slow_registry(refused(
                &["pull", &peer_reference(&peer, "nested")],
                "itself an index",
            ))
        }),
        case("config: not JSON", |_| {
            refused(
                &[
                    "pull",
                    &push_with_config("config-garbage", b"\x00\x01 not json".to_vec()),
                ],
                "not valid JSON",
            )
        }),
        case("config: no rootfs", |_| {
            refused(
                &[
                    "pull",
                    &push_with_config("config-no-rootfs", br#"{"architecture":"amd64"}"#.to_vec()),
                ],
                "no rootfs.diff_ids",
            )
        }),
        case("config: diff id that is not a digest", |_| {
            let config =
                br#"{"rootfs":{"type":"layers","diff_ids":["../../etc/passwd"]}}"#.to_vec();
            refused(
                &["pull", &push_with_config("config-bad-diff-id", config)],
                "not a digest",
            )
        }),
        case("config: fewer diff ids than layers", |_| {
            refused(
                &[
                    "pull",
                    &push_with_config(
                        "config-no-diff-ids",
                        br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
                    ),
                ],
                "malformed",
            )
        }),
        case("config: fields of the wrong type", |_| {
            let config = serde_json::to_vec(&json!({
                "architecture": host_arch(), "os": "linux",
                "config": {"Cmd": 42, "Env": "PATH=/bin"},
                "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"f").to_string()]},
            }))
            .unwrap();
            let reference = push_with_config("config-types", config);
            refused(
                &["pull", &reference],
                "`config.Cmd` must be a list of strings, not a number",
            )
        }),
    ]
}

fn reference_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let long_name = "a".repeat(10_000);
    let long_tag = format!("busybox:{}", "t".repeat(200));
    let bad: Vec<(&'static str, String)> = vec![
        ("upper case", "UPPER/case".into()),
        ("empty path component", "a//b".into()),
        ("empty tag", "x:".into()),
        ("short digest", "a@sha256:12".into()),
        ("empty", String::new()),
        ("path climbing", "../../etc/passwd".into()),
        ("space", "a b".into()),
        ("non-ASCII", "ımage".into()),
        ("URL", "http://example.com/x".into()),
        ("two tags", "a:b:c".into()),
        (
            "digest without a name",
            "@sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        ),
        ("escape codes", "\u{1b}[31mred".into()),
        ("newline", "busybox\nError: forged".into()),
        ("name of 10,000 bytes", long_name),
        ("tag of 200 bytes", long_tag),
        ("port out of range", "host:99999999/x".into()),
    ];
    for (what, reference) in bad {
        let name: &'static str = Box::leak(format!("reference: {what} (pull)").into_boxed_str());
        cases.push(case(name, move |_| {
            refused(&["pull", &reference], "invalid reference format")
        }));
    }
    for (verb, args, needle) in [
        (
            "run",
            vec!["run", "--rm", "UPPER/case"],
            "invalid reference format",
        ),
        ("create", vec!["create", "a//b"], "invalid reference format"),
        ("push", vec!["push", "x:"], "invalid reference format"),
        (
            "tag",
            vec!["tag", "busybox", "../../etc/passwd"],
            "invalid reference format",
        ),
        (
            "save",
            vec!["save", "-o", "/dev/null", "a@sha256:12"],
            "invalid reference format",
        ),
        // inspect takes IDs and their prefixes too, so anything may be looked up.
        (
            "inspect",
            vec!["inspect", "--type", "image", "a b"],
            "no such image: a b",
        ),
    ] {
        let name: &'static str =
            Box::leak(format!("reference: not a reference ({verb})").into_boxed_str());
        cases.push(case(name, move |_| refused(&args, needle)));
    }
    cases.push(case("reference: not a reference (import)", |ctx| {
        let mut t = TarBuilder::new();
        t.file("f", b"f\n", 0o644, 0, 0);
        let file = artefact(ctx, "ok.tar", &t.finish());
        refused(&["import", &file, "../../x"], "invalid reference format")
    }));
    cases
}

// ---------------------------------------------------------------------------------------------
// The runner

/// Every file under the case's directory except the store and the measurement file: what
/// nook must not touch.
fn outside_listing(ctx: &TestContext) -> BTreeMap<PathBuf, (u64, u32)> {
    fn walk(dir: &Path, skip: &[PathBuf], out: &mut BTreeMap<PathBuf, (u64, u32)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            use std::os::unix::fs::MetadataExt;
            out.insert(path.clone(), (meta.len(), meta.mode()));
            if meta.is_dir() {
                walk(&path, skip, out);
            }
        }
    }
    let skip = [ctx.data.join("nook"), ctx.home.join(".peak-rss")];
    let mut out = BTreeMap::new();
    walk(ctx.root(), &skip, &mut out);
    out
}

struct Outcome {
    /// One line for the report.
    line: String,
    failure: Option<String>,
    peak_kib: u64,
    seconds: f64,
}

fn run_case(case: Case) -> Outcome {
    let ctx = TestContext::new();
    let out_dir = outside(&ctx);
    std::fs::create_dir(&out_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let name = case.name;
    let trial = (case.setup)(&ctx);
    if trial.short_timeout {
        let dir = ctx.config.join("nook");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!("[registry]\ntimeout = {TIMEOUT_SECS}\n"),
        )
        .unwrap();
    }
    let before_outside = outside_listing(&ctx);
    let before_store = store_state(&ctx);

    let peak_file = ctx.home.join(".peak-rss");
    let started = Instant::now();
    let out = ctx
        .command_as_user("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&peak_file)
        .arg(crate::harness::context::nook_bin())
        .args(&trial.args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running /usr/bin/time");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak_kib: u64 = std::fs::read_to_string(&peak_file)
        .ok()
        .and_then(|t| t.lines().last()?.trim().parse().ok())
        .unwrap_or(u64::MAX);

    let mut problems = Vec::new();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    let summary = match &trial.expect {
        Expect::Refused(needle) => {
            if out.status.code() != Some(125) {
                problems.push(format!("exit status {:?}, expected 125", out.status.code()));
            }
            match &errors[..] {
                [one] if one.contains(needle) => {}
                [_] => problems.push(format!("`{needle}` not in the error")),
                _ => problems.push(format!("{} Error lines", errors.len())),
            }
            let after = store_state(&ctx);
            if after != before_store {
                problems.push(format!("the store changed: {before_store:?} -> {after:?}"));
            }
            // The end of the line is the cause; its start names the command and artefact.
            let error = errors.first().copied().unwrap_or("");
            let chars: Vec<char> = error.chars().collect();
            let shown: String = if chars.len() > 180 {
                let tail: String = chars[chars.len() - 170..].iter().collect();
                format!("Error: …{tail}")
            } else {
                error.to_string()
            };
            format!("refused: {shown}")
        }
        Expect::Contained(check) => {
            if !out.status.success() {
                problems.push(format!("exit status {:?}, expected 0", out.status.code()));
            } else if let Err(e) = check(&ctx, &stderr) {
                problems.push(e);
            }
            if !store_state(&ctx).2 {
                problems.push("staging, trash or tmp is not empty".into());
            }
            let warning = stderr
                .lines()
                .find(|l| l.starts_with("Warning:"))
                .map(|w| format!(" ({})", w.chars().take(120).collect::<String>()))
                .unwrap_or_default();
            format!("contained{warning}")
        }
    };
    let after_outside = outside_listing(&ctx);
    if after_outside != before_outside {
        let added: Vec<_> = after_outside
            .keys()
            .filter(|k| !before_outside.contains_key(*k))
            .collect();
        problems.push(format!("written outside the store: {added:?}"));
    }
    if Path::new(CANARY).exists() {
        problems.push(format!("{CANARY} exists"));
    }
    if peak_kib > MAX_RSS_KIB {
        problems.push(format!("peak RSS {peak_kib} KiB"));
    }
    if seconds > MAX_SECONDS as f64 {
        problems.push(format!("took {seconds:.1} s"));
    }
    let line = format!(
        "{name}: {summary} [{:.1} MiB, {seconds:.1} s]",
        peak_kib as f64 / 1024.0
    );
    let failure = (!problems.is_empty()).then(|| {
        format!(
            "{name}: {}\n--- stderr ---\n{}",
            problems.join("; "),
            stderr.chars().take(3000).collect::<String>()
        )
    });
    Outcome {
        line,
        failure,
        peak_kib,
        seconds,
    }
}

#[test]
fn hostile_input_catalogue() {
    if !require(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is missing (Debian package `time`; helpers/install-deps installs it)",
    ) {
        return;
    }
    let _ = std::fs::remove_dir_all(CANARY);
    let mut cases = layer_cases();
    cases.extend(archive_cases());
    cases.extend(registry_cases());
    cases.extend(config_cases());
    cases.extend(reference_cases());
    let total = cases.len();
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some((i, case)) = next else { break };
                    let outcome = run_case(case);
                    eprintln!("{}", outcome.line);
                    results.lock().unwrap().push((i, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    println!("hostile input catalogue:");
    for (_, r) in &results {
        println!("  {}", r.line);
    }
    let failures: Vec<&String> = results
        .iter()
        .filter_map(|(_, r)| r.failure.as_ref())
        .collect();
    let peak = results.iter().map(|(_, r)| r.peak_kib).max().unwrap_or(0);
    let slowest = results.iter().map(|(_, r)| r.seconds).fold(0.0, f64::max);
    assert_eq!(results.len(), total);
    assert!(
        failures.is_empty(),
        "{} of {total} hostile input cases failed:\n\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    println!(
        "hostile input cases: {total}, all refused or contained (nook's peak RSS at most {:.1} MiB, slowest case {slowest:.1} s)",
        peak as f64 / 1024.0
    );
}
