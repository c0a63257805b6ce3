//! Writing images as a docker-archive or an OCI layout, to a tar stream or a directory.
//!
//! Output is deterministic (fixed owners, modes and mtimes, sorted JSON), so saving the same
//! images twice gives the same bytes. Layers go out uncompressed, as `docker save` writes
//! them: their blob digest is then their diff id, known before a byte is read, and no CPU is
//! spent compressing what usually goes straight to `docker load` or a disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveError, MEDIA_OCI_CONFIG,
    MEDIA_OCI_LAYER_TAR, OCI_LAYOUT, Result,
};
use crate::image::digest::{Digest, HashingReader};
use crate::image::manifest::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::image::reference::Reference;

/// Where layer tar streams come from: the store, or memory in tests.
pub trait LayerSource {
    /// The uncompressed tar stream of layer `diff_id` and its exact length in bytes.
    #[allow(clippy::type_complexity)]
    fn open(
        &self,
        diff_id: &Digest,
    ) -> std::result::Result<(Box<dyn Read + '_>, u64), Box<dyn std::error::Error + Send + Sync>>;
}

/// One image to write.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// The config exactly as stored: its digest is the image ID, which must survive.
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// Bottom layer first.
    pub diff_ids: Vec<Digest>,
    /// Names to record (tags); empty for an image saved by ID.
    pub names: Vec<Reference>,
    /// The image's stored manifest, written unchanged to an OCI layout when it already
    /// describes exactly the uncompressed layers written (an image loaded or built here), so
    /// its manifest digest survives a round trip.
    pub stored_manifest: Option<Vec<u8>>,
    /// `architecture` and `os` from the config, for the OCI index's platform field.
    pub platform: Option<(String, String)>,
}

/// Where the files of an archive go.
pub trait Sink {
    fn dir(&mut self, path: &str) -> Result<()>;
    /// Adds file `path` with exactly `size` bytes from `data` (which may hold more).
    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()>;
}

/// A tar stream. Entries are owned by 0:0, mode 0644 (0755 for directories), mtime 0, in GNU
/// format so that layers past 8 GiB still get a size field.
pub struct TarSink<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> TarSink<W> {
    pub fn new(out: W) -> TarSink<W> {
        TarSink {
            builder: tar::Builder::new(out),
        }
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .map_err(|source| ArchiveError::Write { source })
    }

    fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> Result<tar::Header> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_path(path)
            .map_err(|source| ArchiveError::Write { source })?;
        h.set_cksum();
        Ok(h)
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn dir(&mut self, path: &str) -> Result<()> {
        let h = Self::header(tar::EntryType::Directory, &format!("{path}/"), 0o755, 0)?;
        self.builder
            .append(&h, io::empty())
            .map_err(|source| ArchiveError::Write { source })
    }

    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let h = Self::header(tar::EntryType::Regular, path, 0o644, size)?;
        let mut counted = Counting {
            inner: data.take(size),
            count: 0,
        };
        self.builder
            .append(&h, &mut counted)
            .map_err(|source| ArchiveError::Write { source })?;
        if counted.count != size {
            // The tar crate pads what it got; the header promised more. Callers notice the
            // short source (a layer's digest no longer matches) and fail the whole archive.
            return Err(ArchiveError::Write {
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("`{path}` ended after {} of {size} bytes", counted.count),
                ),
            });
        }
        Ok(())
    }
}

/// A directory (oci-dir). It must exist; files are created inside it.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: &Path) -> DirSink {
        DirSink {
            root: root.to_path_buf(),
        }
    }
}

impl Sink for DirSink {
    fn dir(&mut self, path: &str) -> Result<()> {
        let p = self.root.join(path);
        match fs::create_dir(&p) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(ArchiveError::Io {
                op: "create directory",
                path: p,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let p = self.root.join(path);
        let io_err = |op, source| ArchiveError::Io {
            op,
            path: p.clone(),
            source,
        };
        let mut file = fs::File::create(&p).map_err(|e| io_err("create", e))?;
        let copied = io::copy(&mut data.take(size), &mut file).map_err(|e| io_err("write", e))?;
        if copied != size {
            return Err(io_err(
                "write",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the source ended after {copied} of {size} bytes"),
                ),
            ));
        }
        Ok(())
    }
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A layer stream that remembers its own read error, so that a failing store read is
/// reported as such and not as a failure to write the archive.
struct LayerReader<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for LayerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// Writes layer `diff_id` as `path` and checks it hashes to its diff id. Returns its size.
fn write_layer(
    sink: &mut dyn Sink,
    path: &str,
    diff_id: &Digest,
    layers: &dyn LayerSource,
) -> Result<u64> {
    let (stream, size) = layers
        .open(diff_id)
        .map_err(|source| ArchiveError::OpenLayer {
            diff_id: diff_id.clone(),
            source,
        })?;
    let mut hashing = HashingReader::new(LayerReader {
        inner: stream.take(size),
        error: None,
    });
    let written = sink.file(path, size, &mut hashing);
    if let Some(source) = hashing.get_mut().error.take() {
        return Err(ArchiveError::ReadLayer {
            diff_id: diff_id.clone(),
            source,
        });
    }
    let (actual, count) = hashing.finish().map_err(|source| ArchiveError::ReadLayer {
        diff_id: diff_id.clone(),
        source,
    })?;
    if &actual != diff_id || count != size {
        return Err(ArchiveError::LayerMismatch {
            diff_id: diff_id.clone(),
            actual,
            size: count,
            expected_size: size,
        });
    }
    written?;
    Ok(size)
}

fn write_bytes(sink: &mut dyn Sink, path: &str, bytes: &[u8]) -> Result<()> {
    sink.file(path, bytes.len() as u64, &mut &bytes[..])
}

/// `busybox:latest`, `127.0.0.1:5000/x:1`: a name as `docker save` writes it in RepoTags.
fn familiar(name: &Reference) -> Option<String> {
    name.tag
        .as_ref()
        .map(|tag| format!("{}:{tag}", name.familiar_name()))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    /// `null` for an untagged image, as Docker writes it.
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes `images` in `docker save`'s layout.
pub fn write_docker_archive(
    sink: &mut dyn Sink,
    images: &[SaveImage],
    layers: &dyn LayerSource,
) -> Result<()> {
    let mut written: HashSet<String> = HashSet::new();
    let mut manifest = Vec::new();
    // repository → tag → top layer's directory name, the legacy `repositories` file that old
    // loaders read when there is no manifest.json.
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let mut paths = Vec::new();
        for diff_id in &image.diff_ids {
            let dir = diff_id.hex().to_string();
            let path = format!("{dir}/layer.tar");
            if written.insert(path.clone()) {
                sink.dir(&dir)?;
                write_layer(sink, &path, diff_id, layers)?;
            }
            paths.push(path);
        }
        let config_path = format!("{}.json", image.config_digest.hex());
        if written.insert(config_path.clone()) {
            write_bytes(sink, &config_path, &image.config)?;
        }
        let tags: Vec<String> = image.names.iter().filter_map(familiar).collect();
        if let Some(top) = image.diff_ids.last() {
            for name in &image.names {
                if let Some(tag) = &name.tag {
                    repositories
                        .entry(name.familiar_name())
                        .or_default()
                        .insert(tag.clone(), top.hex().to_string());
                }
            }
        }
        manifest.push(DockerManifestEntry {
            config: config_path,
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers: paths,
        });
    }
    let json = serde_json::to_vec(&manifest).expect("manifest.json serialises");
    write_bytes(sink, "manifest.json", &json)?;
    if !repositories.is_empty() {
        let json = serde_json::to_vec(&repositories).expect("repositories serialises");
        write_bytes(sink, "repositories", &json)?;
    }
    Ok(())
}

/// An OCI descriptor with sorted annotations, so that output is deterministic (oci-spec's
/// type keeps annotations in a HashMap).
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct OutDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<OutPlatform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Clone)]
struct OutPlatform {
    architecture: String,
    os: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutManifest {
    schema_version: u32,
    media_type: &'static str,
    config: OutDescriptor,
    layers: Vec<OutDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<OutDescriptor>,
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> OutDescriptor {
    OutDescriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// The OCI manifest of an image whose layers are the uncompressed tars `layers` (diff id,
/// size). The same bytes for the same image every time.
pub fn local_manifest(config: &[u8], layers: &[(Digest, u64)]) -> Vec<u8> {
    let manifest = OutManifest {
        schema_version: 2,
        media_type: MEDIA_OCI_MANIFEST,
        config: descriptor(MEDIA_OCI_CONFIG, &Digest::of(config), config.len() as u64),
        layers: layers
            .iter()
            .map(|(d, size)| descriptor(MEDIA_OCI_LAYER_TAR, d, *size))
            .collect(),
    };
    serde_json::to_vec(&manifest).expect("manifest serialises")
}

/// Whether `stored` describes exactly this config and these uncompressed layers, so it may
/// be written unchanged.
fn stored_manifest_fits(stored: &[u8], config_digest: &Digest, layers: &[(Digest, u64)]) -> bool {
    let Ok(crate::image::manifest::Manifest::Image(m)) =
        crate::image::manifest::parse(stored, None)
    else {
        return false;
    };
    m.config().digest().to_string() == config_digest.to_string()
        && m.layers().len() == layers.len()
        && m.layers().iter().zip(layers).all(|(l, (d, size))| {
            l.media_type().to_string() == MEDIA_OCI_LAYER_TAR
                && l.digest().to_string() == d.to_string()
                && l.size() == *size
        })
}

/// Writes `images` as an OCI image layout. Each name becomes one `index.json` entry whose
/// `org.opencontainers.image.ref.name` (and containerd's `io.containerd.image.name`) is the
/// full reference, as Podman writes it; an image without names gets one entry without.
pub fn write_oci_layout(
    sink: &mut dyn Sink,
    images: &[SaveImage],
    layers: &dyn LayerSource,
) -> Result<()> {
    write_bytes(sink, "oci-layout", OCI_LAYOUT)?;
    sink.dir("blobs")?;
    sink.dir("blobs/sha256")?;
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    let mut written: HashSet<Digest> = HashSet::new();
    let mut entries = Vec::new();
    for image in images {
        let mut described = Vec::new();
        for diff_id in &image.diff_ids {
            let size = match sizes.get(diff_id) {
                Some(size) => *size,
                None => {
                    let path = format!("blobs/sha256/{}", diff_id.hex());
                    let size = write_layer(sink, &path, diff_id, layers)?;
                    sizes.insert(diff_id.clone(), size);
                    written.insert(diff_id.clone());
                    size
                }
            };
            described.push((diff_id.clone(), size));
        }
        if written.insert(image.config_digest.clone()) {
            let path = format!("blobs/sha256/{}", image.config_digest.hex());
            write_bytes(sink, &path, &image.config)?;
        }
        let manifest = match &image.stored_manifest {
            Some(stored) if stored_manifest_fits(stored, &image.config_digest, &described) => {
                stored.clone()
            }
            _ => local_manifest(&image.config, &described),
        };
        let manifest_digest = Digest::of(&manifest);
        if written.insert(manifest_digest.clone()) {
            let path = format!("blobs/sha256/{}", manifest_digest.hex());
            write_bytes(sink, &path, &manifest)?;
        }
        let mut entry = descriptor(MEDIA_OCI_MANIFEST, &manifest_digest, manifest.len() as u64);
        entry.platform = image
            .platform
            .as_ref()
            .map(|(architecture, os)| OutPlatform {
                architecture: architecture.clone(),
                os: os.clone(),
            });
        let names: Vec<String> = image
            .names
            .iter()
            .filter(|n| n.tag.is_some())
            .map(|n| n.to_string())
            .collect();
        if names.is_empty() {
            entries.push(entry.clone());
        }
        for name in names {
            let mut named = entry.clone();
            named
                .annotations
                .insert(ANNOTATION_IMAGE_NAME.to_string(), name.clone());
            named
                .annotations
                .insert(ANNOTATION_REF_NAME.to_string(), name);
            entries.push(named);
        }
    }
    let index = OutIndex {
        schema_version: 2,
        media_type: MEDIA_OCI_INDEX,
        manifests: entries,
    };
    let json = serde_json::to_vec(&index).expect("index.json serialises");
    write_bytes(sink, "index.json", &json)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Layers in memory, keyed by their diff id.
    pub struct MemoryLayers(pub HashMap<Digest, Vec<u8>>);

    impl MemoryLayers {
        pub fn new(tars: &[Vec<u8>]) -> MemoryLayers {
            MemoryLayers(tars.iter().map(|t| (Digest::of(t), t.clone())).collect())
        }
    }

    impl LayerSource for MemoryLayers {
        fn open(
            &self,
            diff_id: &Digest,
        ) -> std::result::Result<(Box<dyn Read + '_>, u64), Box<dyn std::error::Error + Send + Sync>>
        {
            let bytes = self.0.get(diff_id).ok_or("no such layer")?;
            Ok((Box::new(&bytes[..]), bytes.len() as u64))
        }
    }

    /// A one-file layer tar.
    pub fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    pub fn image(tars: &[&Vec<u8>], names: &[&str]) -> SaveImage {
        let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        SaveImage {
            config_digest: Digest::of(&config),
            config,
            diff_ids,
            names: names.iter().map(|n| Reference::parse(n).unwrap()).collect(),
            stored_manifest: None,
            platform: Some(("amd64".into(), "linux".into())),
        }
    }

    /// The regular files of a tar, by name.
    pub fn files_of(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut archive = tar::Archive::new(tar_bytes);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(name, data);
        }
        out
    }

    #[test]
    fn docker_archive_has_docker_save_layout() {
        let base = layer_tar("a", b"base");
        let top = layer_tar("b", b"top");
        let one = image(&[&base, &top], &["busybox:latest", "127.0.0.1:5000/x/y:1"]);
        let two = image(&[&base], &[]);
        let layers = MemoryLayers::new(&[base.clone(), top.clone()]);
        let mut sink = TarSink::new(Vec::new());
        write_docker_archive(&mut sink, &[one.clone(), two.clone()], &layers).unwrap();
        let files = files_of(&sink.finish().unwrap());

        let base_path = format!("{}/layer.tar", Digest::of(&base).hex());
        let top_path = format!("{}/layer.tar", Digest::of(&top).hex());
        assert_eq!(files[&base_path], base);
        assert_eq!(files[&top_path], top);
        assert_eq!(
            files[&format!("{}.json", one.config_digest.hex())],
            one.config
        );
        let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!([
                {
                    "Config": format!("{}.json", one.config_digest.hex()),
                    "RepoTags": ["busybox:latest", "127.0.0.1:5000/x/y:1"],
                    "Layers": [base_path, top_path],
                },
                {
                    "Config": format!("{}.json", two.config_digest.hex()),
                    "RepoTags": null,
                    "Layers": [base_path],
                },
            ])
        );
        let repositories: serde_json::Value =
            serde_json::from_slice(&files["repositories"]).unwrap();
        assert_eq!(
            repositories["busybox"]["latest"],
            Digest::of(&top).hex().to_string()
        );
        // The shared base layer is written once.
        assert_eq!(files.len(), 6);
    }

    #[test]
    fn oci_layout_names_every_tag_and_verifies_as_a_layout() {
        let base = layer_tar("a", b"base");
        let one = image(&[&base], &["busybox:latest", "busybox:1"]);
        let layers = MemoryLayers::new(std::slice::from_ref(&base));
        let mut sink = TarSink::new(Vec::new());
        write_oci_layout(&mut sink, std::slice::from_ref(&one), &layers).unwrap();
        let files = files_of(&sink.finish().unwrap());
        assert_eq!(files["oci-layout"], OCI_LAYOUT);
        for (name, bytes) in &files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(Digest::of(bytes).hex(), hex, "{name}");
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0]["annotations"][ANNOTATION_REF_NAME],
            "docker.io/library/busybox:latest"
        );
        assert_eq!(entries[0]["digest"], entries[1]["digest"]);
        assert_eq!(entries[0]["platform"]["architecture"], "amd64");
        let manifest_hex = entries[0]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&files[&format!("blobs/sha256/{manifest_hex}")]).unwrap();
        assert_eq!(manifest["config"]["digest"], one.config_digest.to_string());
        assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_OCI_LAYER_TAR);
        assert_eq!(manifest["layers"][0]["size"], base.len());
    }

    #[test]
    fn a_fitting_stored_manifest_is_kept_and_another_is_replaced() {
        let base = layer_tar("a", b"base");
        let layers = MemoryLayers::new(std::slice::from_ref(&base));
        let mut one = image(&[&base], &["x:1"]);
        let described = [(Digest::of(&base), base.len() as u64)];
        // Same content, other key order: a manifest a different tool wrote.
        let mut kept: serde_json::Value =
            serde_json::from_slice(&local_manifest(&one.config, &described)).unwrap();
        kept["annotations"] = serde_json::json!({"made.by": "someone else"});
        let kept = serde_json::to_vec_pretty(&kept).unwrap();
        one.stored_manifest = Some(kept.clone());
        let mut sink = TarSink::new(Vec::new());
        write_oci_layout(&mut sink, std::slice::from_ref(&one), &layers).unwrap();
        let files = files_of(&sink.finish().unwrap());
        assert_eq!(
            files.get(&format!("blobs/sha256/{}", Digest::of(&kept).hex())),
            Some(&kept)
        );

        // A registry manifest with a gzip layer does not describe what is written.
        let gzip = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": one.config_digest.to_string(), "size": one.config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(b"gz").to_string(), "size": 2}],
        }))
        .unwrap();
        one.stored_manifest = Some(gzip.clone());
        let mut sink = TarSink::new(Vec::new());
        write_oci_layout(&mut sink, std::slice::from_ref(&one), &layers).unwrap();
        let files = files_of(&sink.finish().unwrap());
        assert!(!files.contains_key(&format!("blobs/sha256/{}", Digest::of(&gzip).hex())));
        assert!(files.contains_key(&format!(
            "blobs/sha256/{}",
            Digest::of(&local_manifest(&one.config, &described)).hex()
        )));
    }

    #[test]
    fn saving_twice_gives_the_same_bytes() {
        let base = layer_tar("a", b"base");
        let one = image(&[&base], &["a:1", "b:2"]);
        let layers = MemoryLayers::new(std::slice::from_ref(&base));
        let save = |oci: bool| {
            let mut sink = TarSink::new(Vec::new());
            if oci {
                write_oci_layout(&mut sink, std::slice::from_ref(&one), &layers).unwrap();
            } else {
                write_docker_archive(&mut sink, std::slice::from_ref(&one), &layers).unwrap();
            }
            sink.finish().unwrap()
        };
        assert_eq!(save(true), save(true));
        assert_eq!(save(false), save(false));
    }

    /// A store whose layer no longer matches its diff id.
    struct Damaged(Vec<u8>);

    impl LayerSource for Damaged {
        fn open(
            &self,
            _: &Digest,
        ) -> std::result::Result<(Box<dyn Read + '_>, u64), Box<dyn std::error::Error + Send + Sync>>
        {
            Ok((Box::new(&self.0[..]), self.0.len() as u64))
        }
    }

    #[test]
    fn a_layer_that_does_not_hash_to_its_diff_id_fails_the_save() {
        let base = layer_tar("a", b"base");
        let one = image(&[&base], &["a:1"]);
        let damaged = Damaged(layer_tar("a", b"BASE"));
        let mut sink = TarSink::new(Vec::new());
        let err =
            write_docker_archive(&mut sink, std::slice::from_ref(&one), &damaged).unwrap_err();
        assert!(matches!(err, ArchiveError::LayerMismatch { .. }), "{err}");
        // A stream shorter than it said.
        struct Short;
        impl LayerSource for Short {
            fn open(
                &self,
                _: &Digest,
            ) -> std::result::Result<
                (Box<dyn Read + '_>, u64),
                Box<dyn std::error::Error + Send + Sync>,
            > {
                Ok((Box::new(&b"abc"[..]), 10))
            }
        }
        let mut sink = TarSink::new(Vec::new());
        let err = write_oci_layout(&mut sink, std::slice::from_ref(&one), &Short).unwrap_err();
        assert!(matches!(err, ArchiveError::LayerMismatch { .. }), "{err}");
    }

    #[test]
    fn oci_dir_writes_files() {
        let base = layer_tar("a", b"base");
        let one = image(&[&base], &["a:1"]);
        let layers = MemoryLayers::new(std::slice::from_ref(&base));
        let dir = tempfile::tempdir().unwrap();
        write_oci_layout(&mut DirSink::new(dir.path()), &[one], &layers).unwrap();
        assert_eq!(fs::read(dir.path().join("oci-layout")).unwrap(), OCI_LAYOUT);
        assert_eq!(
            fs::read(
                dir.path()
                    .join("blobs/sha256")
                    .join(Digest::of(&base).hex())
            )
            .unwrap(),
            base
        );
    }
}
