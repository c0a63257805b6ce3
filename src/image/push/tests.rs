use std::cell::RefCell;
use std::io::Read;

use super::*;

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_GZ: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn blob(media_type: &str, name: &[u8], size: u64) -> Blob {
    Blob {
        media_type: media_type.to_string(),
        digest: Digest::of(name),
        size,
    }
}

fn candidate(media_type: &str, name: &[u8], repositories: &[&str]) -> Candidate {
    Candidate {
        blob: blob(media_type, name, 10),
        compression: manifest::layer_compression(media_type).unwrap(),
        repositories: repositories.iter().map(|s| s.to_string()).collect(),
    }
}

fn known(media_type: &str, config: &[u8], layers: &[Blob], repositories: &[&str]) -> KnownManifest {
    // Diff ids made up from the blobs' digests: layer `a` is always the same layer.
    let diff_ids = layers
        .iter()
        .map(|b| Digest::of(b.digest.to_string().as_bytes()))
        .collect();
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": 2},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&value).unwrap();
    let manifest::Manifest::Image(m) = manifest::parse(&bytes, None).unwrap() else {
        panic!("not an image manifest")
    };
    KnownManifest {
        bytes,
        media_type: media_type.to_string(),
        manifest: m,
        diff_ids,
        repositories: repositories.iter().map(|s| s.to_string()).collect(),
    }
}

fn diff_id_of(b: &Blob) -> Digest {
    Digest::of(b.digest.to_string().as_bytes())
}

/// A destination repository `127.0.0.1:5000/dst` that has `present` and can mount
/// `mountable` (digest, from) pairs; records every call.
struct FakeDest {
    present: Vec<Digest>,
    mountable: Vec<(Digest, String)>,
    denied_from: Vec<String>,
    calls: RefCell<Vec<String>>,
}

impl FakeDest {
    fn new() -> FakeDest {
        FakeDest {
            present: vec![],
            mountable: vec![],
            denied_from: vec![],
            calls: RefCell::new(vec![]),
        }
    }
    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl Destination for FakeDest {
    fn registry(&self) -> &str {
        "127.0.0.1:5000"
    }
    fn repository(&self) -> &str {
        "dst"
    }
    fn exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.calls
            .borrow_mut()
            .push(format!("HEAD {}", digest.short()));
        Ok(self.present.contains(digest))
    }
    fn mount(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        self.calls
            .borrow_mut()
            .push(format!("MOUNT {} from {from}", digest.short()));
        if self.denied_from.iter().any(|d| d == from) {
            return Err(RegistryError::PushDenied {
                registry: "127.0.0.1:5000".into(),
                repository: "dst".into(),
            });
        }
        Ok(self.mountable.iter().any(|(d, f)| d == digest && f == from))
    }
}

#[test]
fn candidates_merge_repositories_and_keep_the_own_manifest_first() {
    let a = blob(GZ, b"a", 10);
    let a_zstd = blob("application/vnd.oci.image.layer.v1.tar+zstd", b"a.zst", 9);
    let b = blob(GZ, b"b", 11);
    let own = known(
        manifest::MEDIA_OCI_MANIFEST,
        b"c",
        std::slice::from_ref(&a),
        &["r/src"],
    );
    let pushed_same = known(
        manifest::MEDIA_OCI_MANIFEST,
        b"c",
        std::slice::from_ref(&a),
        &["r/dst2"],
    );
    let mut pushed_zstd = known(
        manifest::MEDIA_OCI_MANIFEST,
        b"c",
        std::slice::from_ref(&a_zstd),
        &["r/dst"],
    );
    pushed_zstd.diff_ids = vec![diff_id_of(&a)];
    // Another image with `a` as its second layer (a commit on top of it).
    let other = known(
        manifest::MEDIA_OCI_MANIFEST,
        b"d",
        &[b.clone(), a.clone()],
        &["r/base"],
    );
    let all = [own, pushed_same, pushed_zstd, other];
    let c = candidates(&all, &diff_id_of(&a));
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].blob, a);
    assert_eq!(c[0].repositories, ["r/src", "r/dst2", "r/base"]);
    assert_eq!(c[1].blob, a_zstd);
    assert_eq!(c[1].compression, Compression::Zstd);
    let c = candidates(&all, &diff_id_of(&b));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].repositories, ["r/base"]);
    assert!(candidates(&all, &Digest::of(b"unknown")).is_empty());
}

#[test]
fn eligibility_follows_the_requested_compression_and_never_reuses_local_tars() {
    let pulled_gzip = candidate(GZ, b"a", &["r/x"]);
    let pulled_tar = candidate(TAR, b"b", &["r/x"]);
    let local_tar = candidate(TAR, b"c", &[]);
    let pushed_zstd = candidate("application/vnd.oci.image.layer.v1.tar+zstd", b"d", &[]);
    assert!(eligible(&pulled_gzip, None));
    assert!(
        eligible(&pulled_tar, None),
        "a registry's uncompressed blob keeps its digest"
    );
    assert!(
        !eligible(&local_tar, None),
        "a layer built here is compressed for the wire"
    );
    assert!(eligible(&pushed_zstd, None));
    assert!(eligible(&pulled_gzip, Some(Compression::Gzip)));
    assert!(!eligible(&pulled_gzip, Some(Compression::Zstd)));
    assert!(!eligible(&pulled_tar, Some(Compression::Gzip)));
    assert!(eligible(&pushed_zstd, Some(Compression::Zstd)));
}

#[test]
fn reuse_prefers_a_blob_the_destination_has() {
    let a = candidate(GZ, b"a", &["127.0.0.1:5000/src"]);
    let b = candidate(GZ, b"b", &["127.0.0.1:5000/dst"]);
    let mut dest = FakeDest::new();
    dest.present = vec![b.blob.digest.clone()];
    dest.mountable = vec![(a.blob.digest.clone(), "src".into())];
    let got = reuse(&dest, &[a.clone(), b.clone()], None).unwrap();
    assert_eq!(got, Some(Reused::Exists(b.blob.clone())));
    // Every HEAD before any mount.
    assert_eq!(
        dest.calls(),
        [
            format!("HEAD {}", a.blob.digest.short()),
            format!("HEAD {}", b.blob.digest.short())
        ]
    );
}

#[test]
fn reuse_mounts_from_other_repositories_of_the_same_registry_only() {
    let a = candidate(
        GZ,
        b"a",
        &[
            "docker.io/library/busybox",
            "127.0.0.1:5000/dst",
            "127.0.0.1:5000/denied",
            "127.0.0.1:5000/fixtures/src",
        ],
    );
    let mut dest = FakeDest::new();
    dest.mountable = vec![(a.blob.digest.clone(), "fixtures/src".into())];
    dest.denied_from = vec!["denied".into()];
    let got = reuse(&dest, std::slice::from_ref(&a), None).unwrap();
    assert_eq!(
        got,
        Some(Reused::Mounted(a.blob.clone(), "fixtures/src".into()))
    );
    let short = a.blob.digest.short();
    assert_eq!(
        dest.calls(),
        [
            format!("HEAD {short}"),
            format!("MOUNT {short} from denied"),
            format!("MOUNT {short} from fixtures/src"),
        ],
        "no mount from another registry or from the destination itself; a refused mount is skipped"
    );
}

#[test]
fn nothing_reusable_means_an_upload() {
    let a = candidate(GZ, b"a", &["127.0.0.1:5000/src"]);
    let dest = FakeDest::new();
    assert_eq!(reuse(&dest, std::slice::from_ref(&a), None).unwrap(), None);
    // With zstd wanted, the gzip blob is not even asked about.
    let dest = FakeDest::new();
    assert_eq!(reuse(&dest, &[a], Some(Compression::Zstd)).unwrap(), None);
    assert!(dest.calls().is_empty());
    // A config is known in one form and reused whatever the compression asked for.
    let mut dest = FakeDest::new();
    let config = blob(MEDIA_OCI_CONFIG, b"config", 2);
    dest.mountable = vec![(config.digest.clone(), "src".into())];
    assert_eq!(
        reuse_blob(&dest, &config, &["127.0.0.1:5000/src".to_string()]).unwrap(),
        Some(Reused::Mounted(config, "src".into()))
    );
}

#[test]
fn registry_errors_other_than_refusals_stop_the_decision() {
    struct Down;
    impl Destination for Down {
        fn registry(&self) -> &str {
            "h"
        }
        fn repository(&self) -> &str {
            "dst"
        }
        fn exists(&self, _: &Digest) -> Result<bool, RegistryError> {
            Err(RegistryError::Status {
                url: "u".into(),
                status: 503,
                message: String::new(),
            })
        }
        fn mount(&self, _: &Digest, _: &str) -> Result<bool, RegistryError> {
            unreachable!()
        }
    }
    let a = candidate(GZ, b"a", &["h/src"]);
    assert!(matches!(
        reuse(&Down, &[a], None),
        Err(RegistryError::Status { status: 503, .. })
    ));
}

#[test]
fn a_known_manifest_is_reused_only_for_exactly_its_blobs() {
    let a = blob(GZ, b"a", 10);
    let b = blob(GZ, b"b", 11);
    let own = known(
        manifest::MEDIA_DOCKER_MANIFEST,
        b"c",
        &[a.clone(), b.clone()],
        &[],
    );
    let pushed = known(
        manifest::MEDIA_OCI_MANIFEST,
        b"c",
        std::slice::from_ref(&a),
        &[],
    );
    let all = [own, pushed];
    let config = Digest::of(b"c");
    assert_eq!(
        reusable_manifest(&all, &config, &[a.clone(), b.clone()]),
        Some(0)
    );
    // Media types may differ (Docker's names in the stored one); digests decide.
    let b_oci_name = blob(DOCKER_GZ, b"b", 11);
    assert_eq!(
        reusable_manifest(&all, &config, &[a.clone(), b_oci_name]),
        Some(0)
    );
    assert_eq!(
        reusable_manifest(&all, &config, std::slice::from_ref(&a)),
        Some(1)
    );
    assert_eq!(
        reusable_manifest(&all, &config, &[b.clone(), a.clone()]),
        None
    );
    assert_eq!(reusable_manifest(&all, &Digest::of(b"other"), &[a]), None);
}

#[test]
fn manifest_format_and_bytes() {
    use ManifestFormat::*;
    assert_eq!(
        ManifestFormat::choose(manifest::MEDIA_DOCKER_MANIFEST, &[Compression::Gzip]),
        DockerV2
    );
    assert_eq!(
        ManifestFormat::choose(
            manifest::MEDIA_DOCKER_MANIFEST,
            &[Compression::Gzip, Compression::Zstd]
        ),
        Oci
    );
    assert_eq!(
        ManifestFormat::choose(manifest::MEDIA_OCI_MANIFEST, &[Compression::Gzip]),
        Oci
    );

    let config = Digest::of(b"config");
    let layers = [
        (blob(DOCKER_GZ, b"a", 10), Compression::Gzip),
        (blob(TAR, b"b", 11), Compression::None),
    ];
    let (bytes, media_type) = build_manifest(Oci, (&config, 6), &layers);
    assert_eq!(media_type, manifest::MEDIA_OCI_MANIFEST);
    assert_eq!(
        build_manifest(Oci, (&config, 6), &layers).0,
        bytes,
        "deterministic"
    );
    let manifest::Manifest::Image(m) = manifest::parse(&bytes, None).unwrap() else {
        panic!("not an image manifest")
    };
    assert_eq!(m.config().digest().to_string(), config.to_string());
    assert_eq!(m.config().size(), 6);
    assert_eq!(m.config().media_type().to_string(), MEDIA_OCI_CONFIG);
    let types: Vec<String> = m
        .layers()
        .iter()
        .map(|l| l.media_type().to_string())
        .collect();
    assert_eq!(
        types,
        [GZ, TAR],
        "layer media types follow the manifest format"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.starts_with("{\n  \"schemaVersion\": 2,\n  \"mediaType\""),
        "{text}"
    );

    let (bytes, media_type) = build_manifest(DockerV2, (&config, 6), &layers[..1]);
    assert_eq!(media_type, manifest::MEDIA_DOCKER_MANIFEST);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["config"]["mediaType"], MEDIA_DOCKER_CONFIG);
    assert_eq!(value["layers"][0]["mediaType"], DOCKER_GZ);
}

// ---- Uploads ----

/// Records what an upload sent: `start`, `chunk N`, `finish DIGEST N`, `cancel`; failing
/// the `fail_at`th call with a 503.
#[derive(Default)]
struct FakeSink {
    log: RefCell<Vec<String>>,
    bytes: RefCell<Vec<u8>>,
    fail_at: Option<usize>,
}

impl FakeSink {
    fn step(&self, what: String) -> Result<(), RegistryError> {
        self.log.borrow_mut().push(what);
        if Some(self.log.borrow().len()) == self.fail_at {
            return Err(RegistryError::Status {
                url: "u".into(),
                status: 503,
                message: "down".into(),
            });
        }
        Ok(())
    }
    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}

impl BlobSink for FakeSink {
    type Session = ();
    fn start(&self) -> Result<(), RegistryError> {
        self.step("start".into())
    }
    fn chunk(&self, _: &mut (), bytes: &[u8]) -> Result<(), RegistryError> {
        self.bytes.borrow_mut().extend_from_slice(bytes);
        self.step(format!("chunk {}", bytes.len()))
    }
    fn finish(&self, _: (), digest: &Digest, last: &[u8]) -> Result<(), RegistryError> {
        self.bytes.borrow_mut().extend_from_slice(last);
        assert_eq!(
            &Digest::of(&self.bytes.borrow()),
            digest,
            "the digest of what was sent"
        );
        self.step(format!("finish {}", last.len()))
    }
    fn cancel(&self, _: ()) {
        self.log.borrow_mut().push("cancel".into());
    }
}

/// Incompressible-ish test data: a simple PRNG, so chunks really fill.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_small_layer_goes_up_in_one_put() {
    let data = b"a small tar stream".repeat(100);
    let diff_id = Digest::of(&data);
    let sink = FakeSink::default();
    let counted = RefCell::new(0u64);
    let (digest, size) = upload_layer(
        &sink,
        &mut &data[..],
        &diff_id,
        Compression::Gzip,
        None,
        1024,
        &|n| *counted.borrow_mut() += n,
    )
    .unwrap();
    assert_eq!(sink.log(), ["start".to_string(), format!("finish {size}")]);
    assert_eq!(*counted.borrow(), data.len() as u64);
    let sent = sink.bytes.borrow().clone();
    assert_eq!(Digest::of(&sent), digest);
    assert_eq!(gunzip(&sent), data);
    // The gzip header carries no time and no name: the bytes are a function of the input.
    assert_eq!(&sent[4..8], &[0, 0, 0, 0]);
}

#[test]
fn a_large_layer_goes_up_in_chunks_then_a_put_with_the_rest() {
    let data = noise(10_000);
    let diff_id = Digest::of(&data);
    let sink = FakeSink::default();
    let (digest, size) = upload_layer(
        &sink,
        &mut &data[..],
        &diff_id,
        Compression::Gzip,
        None,
        4096,
        &|_| {},
    )
    .unwrap();
    let log = sink.log();
    assert_eq!(log[0], "start");
    assert_eq!(log[1], "chunk 4096");
    assert_eq!(log[2], "chunk 4096");
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[3], format!("finish {}", size - 2 * 4096));
    assert_eq!(gunzip(&sink.bytes.borrow()), data);

    // The same stream compresses to the same blob, in gzip and zstd alike.
    let again = FakeSink::default();
    let (digest2, _) = upload_layer(
        &again,
        &mut &data[..],
        &diff_id,
        Compression::Gzip,
        None,
        4096,
        &|_| {},
    )
    .unwrap();
    assert_eq!(digest, digest2);
    let z1 = FakeSink::default();
    let (zd1, _) = upload_layer(
        &z1,
        &mut &data[..],
        &diff_id,
        Compression::Zstd,
        None,
        4096,
        &|_| {},
    )
    .unwrap();
    let z2 = FakeSink::default();
    let (zd2, _) = upload_layer(
        &z2,
        &mut &data[..],
        &diff_id,
        Compression::Zstd,
        None,
        4096,
        &|_| {},
    )
    .unwrap();
    assert_eq!(zd1, zd2);
    assert_ne!(zd1, digest);
    let unzstd = zstd::stream::decode_all(&z1.bytes.borrow()[..]).unwrap();
    assert_eq!(unzstd, data);
}

#[test]
fn exactly_one_chunk_is_still_one_put() {
    let data = noise(5000);
    let diff_id = Digest::of(&data);
    let sink = FakeSink::default();
    let (_, size) = upload_layer(
        &sink,
        &mut &data[..],
        &diff_id,
        Compression::None,
        None,
        5000,
        &|_| {},
    )
    .unwrap();
    assert_eq!(size, 5000);
    assert_eq!(sink.log(), ["start", "finish 5000"]);
}

#[test]
fn a_stream_that_fails_its_last_read_is_never_completed() {
    // As the store's rebuilt tar does when its files no longer hash to the diff id.
    struct FailsAtEnd(Vec<u8>, usize);
    impl Read for FailsAtEnd {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == self.0.len() {
                return Err(io::Error::other(
                    "the rebuilt layer hashes to something else",
                ));
            }
            let n = buf.len().min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    // More than the gzip encoder holds back (a 1 MiB block per processor), so chunks went up
    // before the failure.
    let data = noise(12 << 20);
    let sink = FakeSink::default();
    let e = upload_layer(
        &sink,
        &mut FailsAtEnd(data.clone(), 0),
        &Digest::of(&data),
        Compression::Gzip,
        None,
        4096,
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(e, PushError::ReadLayer { .. }), "{e}");
    assert!(!e.is_transient());
    let log = sink.log();
    assert_eq!(log.last().map(String::as_str), Some("cancel"), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("finish")), "{log:?}");
}

#[test]
fn a_failed_chunk_cancels_the_upload_and_reports_the_registry_error() {
    let data = noise(20_000);
    let diff_id = Digest::of(&data);
    let sink = FakeSink {
        fail_at: Some(3), // start, chunk, *chunk*
        ..FakeSink::default()
    };
    let e = upload_layer(
        &sink,
        &mut &data[..],
        &diff_id,
        Compression::None,
        None,
        4096,
        &|_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            PushError::Registry(RegistryError::Status { status: 503, .. })
        ),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(sink.log(), ["start", "chunk 4096", "chunk 4096", "cancel"]);
}

#[test]
fn a_read_error_is_the_store_s_not_the_registry_s() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("file changed"))
        }
    }
    let sink = FakeSink::default();
    let e = upload_layer(
        &sink,
        &mut Broken,
        &Digest::of(b""),
        Compression::Gzip,
        None,
        4096,
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(e, PushError::ReadLayer { .. }), "{e}");
    assert!(!e.is_transient());
}

#[test]
fn small_and_large_byte_blobs() {
    let sink = FakeSink::default();
    upload_bytes(&sink, &Digest::of(b"{}"), b"{}", 4096).unwrap();
    assert_eq!(sink.log(), ["start", "finish 2"]);
    let data = noise(9000);
    let sink = FakeSink::default();
    upload_bytes(&sink, &Digest::of(&data), &data, 4096).unwrap();
    assert_eq!(
        sink.log(),
        ["start", "chunk 4096", "chunk 4096", "finish 808"]
    );
}

#[test]
fn retries_are_bounded_and_only_for_transient_failures() {
    let transient = || {
        PushError::Registry(RegistryError::Status {
            url: "u".into(),
            status: 502,
            message: String::new(),
        })
    };
    let mut attempts = 0;
    let mut notices = Vec::new();
    let r: Result<(), _> = with_retries(
        3,
        Duration::ZERO,
        |n| {
            attempts = n;
            Err(transient())
        },
        |n, _, _| notices.push(n),
    );
    assert!(r.is_err());
    assert_eq!(attempts, 3);
    assert_eq!(notices, [1, 2]);

    let mut attempts = 0;
    let r = with_retries(
        3,
        Duration::ZERO,
        |n| {
            attempts = n;
            if n < 2 { Err(transient()) } else { Ok(n) }
        },
        |_, _, _| {},
    );
    assert_eq!(r.unwrap(), 2);

    let mut attempts = 0;
    let r: Result<(), _> = with_retries(
        3,
        Duration::ZERO,
        |n| {
            attempts = n;
            Err(PushError::Registry(RegistryError::PushDenied {
                registry: "h".into(),
                repository: "r".into(),
            }))
        },
        |_, _, _| {},
    );
    assert!(r.is_err());
    assert_eq!(attempts, 1, "a refusal is final");
}
