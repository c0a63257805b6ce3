//! Pushing, as decisions and streams: which blob a layer can reuse (one the destination has,
//! or can mount from another repository of the same registry), how a layer that must be sent
//! is compressed and uploaded (monolithic or in chunks, retried), and which manifest names
//! the result.
//!
//! # Design
//!
//! The store keeps extracted layers, not the compressed blobs they were pulled as. A layer is
//! therefore *reused* when a blob it is known by (from the manifest it was pulled with, or one
//! nook pushed it in before) is in the destination repository or can be mounted there, and
//! *rebuilt* otherwise: its tar stream, byte-exact from the store, compressed here.
//!
//! Repeated pushes give the same manifest digest for two reasons: compression is
//! deterministic (gzip in fixed 1 MiB blocks at a fixed level with a zeroed header time, see
//! the gzip module; zstd at a fixed level, single-threaded), and when every blob a known manifest names is reused, that
//! manifest's own bytes are pushed again rather than a re-serialisation. A pulled image pushed
//! to another repository of its registry thus keeps the digest it was pulled with.
//!
//! A new manifest is Docker schema 2 when the image's own manifest was (so an image pulled
//! from a Docker-format registry stays in that format, which older clients need) unless a
//! layer is zstd, which schema 2 cannot express; it is OCI otherwise.
//!
//! The registry sits behind two small traits ([`Destination`], [`BlobSink`]), so all of this
//! is tested without one.

use std::io::{self, Read, Write};
use std::time::Duration;

use oci_spec::image::ImageManifest;
use serde::Serialize;

use crate::image::digest::{Digest, Hasher};
use crate::image::gzip::ParallelGzip;
use crate::image::manifest::{self, Compression};
use crate::image::registry::{Client, Mount, RegistryError, Upload};

/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size, so no more
/// than this is ever held in memory per layer, and a registry that limits request bodies
/// still takes them.
pub const CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// gzip level unless `--compression-level` says otherwise: the fastest. On real layers
/// (binaries, libraries, text) it compresses to about 10 % more than zlib's default level 6
/// but three times as fast, and a push is mostly waiting for the compressor otherwise.
/// Fixed, because the bytes (and so the digest) depend on it.
pub const GZIP_LEVEL: u32 = 1;
/// zstd's default level, as Podman uses.
pub const ZSTD_LEVEL: i32 = 3;
/// Attempts at one blob upload before giving up, and the pause before the second (doubled
/// for each further one).
pub const UPLOAD_ATTEMPTS: u32 = 3;
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),

    #[error("cannot read layer {diff_id} from the store")]
    ReadLayer {
        diff_id: Digest,
        #[source]
        source: io::Error,
    },

    #[error("cannot compress layer {diff_id}")]
    Compress {
        diff_id: Digest,
        #[source]
        source: io::Error,
    },
}

impl PushError {
    /// Whether trying the upload again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            PushError::Registry(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blob {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// A form a layer is known to exist in: a blob named by a manifest nook holds, and the
/// repositories (`registry/path`) known to have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub blob: Blob,
    pub compression: Compression,
    pub repositories: Vec<String>,
}

/// A manifest nook holds: the one an image was pulled or built with, or one nook pushed it
/// with, and the repositories it came from or went to. Those of the image being pushed come
/// first; those of other images sharing layers with it follow (a committed image's base
/// layers are known as blobs only through the image it was built on).
#[derive(Debug, Clone)]
pub struct KnownManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub manifest: ImageManifest,
    /// The diff id of each of the manifest's layers, from its image's config.
    pub diff_ids: Vec<Digest>,
    pub repositories: Vec<String>,
}

impl KnownManifest {
    /// The manifest's layer blobs and its config blob.
    fn blobs(&self) -> (Vec<Blob>, Blob) {
        let layers = self.manifest.layers().iter().map(blob_of).collect();
        (layers, blob_of(self.manifest.config()))
    }
}

fn blob_of(d: &oci_spec::image::Descriptor) -> Blob {
    Blob {
        media_type: d.media_type().to_string(),
        // Only sha256 manifests are ever stored (pull verifies them), so this parses; a
        // descriptor that did not would simply match nothing.
        digest: d
            .digest()
            .to_string()
            .parse()
            .unwrap_or_else(|_| Digest::of(d.digest().to_string().as_bytes())),
        size: d.size(),
    }
}

/// The forms the layer `diff_id` is known in, the first manifest's first, one entry per blob.
pub fn candidates(known: &[KnownManifest], diff_id: &Digest) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let layers = known.iter().flat_map(|m| {
        m.diff_ids
            .iter()
            .zip(m.manifest.layers())
            .filter(|(d, _)| *d == diff_id)
            .map(move |(_, layer)| (m, layer))
    });
    for (m, layer) in layers {
        let blob = blob_of(layer);
        let Ok(compression) = manifest::layer_compression(&blob.media_type) else {
            continue;
        };
        match out.iter_mut().find(|c| c.blob.digest == blob.digest) {
            Some(c) => {
                for r in &m.repositories {
                    if !c.repositories.contains(r) {
                        c.repositories.push(r.clone());
                    }
                }
            }
            None => out.push(Candidate {
                blob,
                compression,
                repositories: m.repositories.clone(),
            }),
        }
    }
    out
}

/// Whether a known blob may stand for the layer. With `--compression-format`, only blobs in
/// that format may. An uncompressed blob only when it came from a registry: the local
/// manifest of an image built here names its layers uncompressed, and those are always
/// compressed for the wire.
pub fn eligible(c: &Candidate, wanted: Option<Compression>) -> bool {
    match wanted {
        Some(w) => c.compression == w,
        None => c.compression != Compression::None || !c.repositories.is_empty(),
    }
}

/// The destination repository, as the reuse decision needs it.
pub trait Destination {
    /// `host[:port]` as references name it (`docker.io`, `127.0.0.1:5000`).
    fn registry(&self) -> &str;
    /// The repository's path on the registry (`team/app`).
    fn repository(&self) -> &str;
    fn exists(&self, digest: &Digest) -> Result<bool, RegistryError>;
    /// Mounts `digest` from `from` (a path on the same registry); false when the registry
    /// did not.
    fn mount(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reused {
    /// The destination has it.
    Exists(Blob),
    /// Mounted from this repository path.
    Mounted(Blob, String),
}

impl Reused {
    pub fn blob(&self) -> &Blob {
        match self {
            Reused::Exists(b) | Reused::Mounted(b, _) => b,
        }
    }
}

/// Finds a blob for the layer that needs no upload: first one the destination has (one HEAD
/// per eligible candidate), then one it can mount from a repository of the same registry.
pub fn reuse(
    dest: &dyn Destination,
    candidates: &[Candidate],
    wanted: Option<Compression>,
) -> Result<Option<Reused>, RegistryError> {
    let eligible: Vec<(&Blob, &[String])> = candidates
        .iter()
        .filter(|c| eligible(c, wanted))
        .map(|c| (&c.blob, &c.repositories[..]))
        .collect();
    find_reusable(dest, &eligible)
}

/// [`reuse`] for a blob known in one form only (an image config).
pub fn reuse_blob(
    dest: &dyn Destination,
    blob: &Blob,
    repositories: &[String],
) -> Result<Option<Reused>, RegistryError> {
    find_reusable(dest, &[(blob, repositories)])
}

/// A mount the credentials may not make (no `pull` on the source) is not an error: the
/// blob is then uploaded.
fn find_reusable(
    dest: &dyn Destination,
    blobs: &[(&Blob, &[String])],
) -> Result<Option<Reused>, RegistryError> {
    for (blob, _) in blobs {
        if dest.exists(&blob.digest)? {
            return Ok(Some(Reused::Exists((*blob).clone())));
        }
    }
    for (blob, repositories) in blobs {
        for from in mount_sources(dest, repositories) {
            match dest.mount(&blob.digest, &from) {
                Ok(true) => return Ok(Some(Reused::Mounted((*blob).clone(), from))),
                Ok(false)
                | Err(RegistryError::Unauthorized { .. } | RegistryError::PushDenied { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(None)
}

/// The paths of `repositories` that are other repositories of the destination's registry.
fn mount_sources(dest: &dyn Destination, repositories: &[String]) -> Vec<String> {
    repositories
        .iter()
        .filter_map(|r| r.split_once('/'))
        .filter(|(registry, path)| *registry == dest.registry() && *path != dest.repository())
        .map(|(_, path)| path.to_string())
        .collect()
}

/// The index of a known manifest that names exactly `config` and `layers` (by digest and
/// size), whose bytes can then be pushed unchanged.
pub fn reusable_manifest(
    known: &[KnownManifest],
    config: &Digest,
    layers: &[Blob],
) -> Option<usize> {
    known.iter().position(|m| {
        let (known_layers, known_config) = m.blobs();
        &known_config.digest == config
            && known_layers.len() == layers.len()
            && known_layers
                .iter()
                .zip(layers)
                .all(|(a, b)| a.digest == b.digest && a.size == b.size)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Oci,
    DockerV2,
}

impl ManifestFormat {
    /// Docker schema 2 when the image's manifest was, unless a layer is zstd.
    pub fn choose(base_media_type: &str, layers: &[Compression]) -> ManifestFormat {
        if base_media_type == manifest::MEDIA_DOCKER_MANIFEST
            && !layers.contains(&Compression::Zstd)
        {
            ManifestFormat::DockerV2
        } else {
            ManifestFormat::Oci
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => manifest::MEDIA_OCI_MANIFEST,
            ManifestFormat::DockerV2 => manifest::MEDIA_DOCKER_MANIFEST,
        }
    }

    pub fn layer_media_type(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (ManifestFormat::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (ManifestFormat::Oci, Compression::Gzip) => {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            }
            (ManifestFormat::Oci, Compression::Zstd) => {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            }
            (ManifestFormat::DockerV2, Compression::None) => {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
            // Schema 2 has no zstd type; `choose` never picks it for zstd layers.
            (ManifestFormat::DockerV2, Compression::Gzip | Compression::Zstd) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
        }
    }

    fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => MEDIA_OCI_CONFIG,
            ManifestFormat::DockerV2 => MEDIA_DOCKER_CONFIG,
        }
    }
}

/// A new image manifest: `(bytes, media type)`. Layer media types follow the format (a
/// reused Docker layer in an OCI manifest gets the OCI name of its compression).
pub fn build_manifest(
    format: ManifestFormat,
    config: (&Digest, u64),
    layers: &[(Blob, Compression)],
) -> (Vec<u8>, &'static str) {
    // Field order as Docker and Podman write them; serde keeps declaration order, so the
    // bytes (and digest) are a function of the inputs alone.
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        config: Blob,
        layers: Vec<Blob>,
    }
    let out = Out {
        schema_version: 2,
        media_type: format.media_type(),
        config: Blob {
            media_type: format.config_media_type().to_string(),
            digest: config.0.clone(),
            size: config.1,
        },
        layers: layers
            .iter()
            .map(|(b, c)| Blob {
                media_type: format.layer_media_type(*c).to_string(),
                digest: b.digest.clone(),
                size: b.size,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&out).expect("a manifest serialises");
    (bytes, format.media_type())
}

// ---- Uploading ----

/// Where blob bytes go: a registry's upload API, or a fake in tests.
pub trait BlobSink {
    type Session;
    fn start(&self) -> Result<Self::Session, RegistryError>;
    fn chunk(&self, session: &mut Self::Session, bytes: &[u8]) -> Result<(), RegistryError>;
    fn finish(
        &self,
        session: Self::Session,
        digest: &Digest,
        last: &[u8],
    ) -> Result<(), RegistryError>;
    fn cancel(&self, session: Self::Session);
}

/// Uploads `bytes` (an image config) as blob `digest`.
pub fn upload_bytes<S: BlobSink>(
    sink: &S,
    digest: &Digest,
    bytes: &[u8],
    chunk_size: usize,
) -> Result<(), RegistryError> {
    let mut session = sink.start()?;
    let result = (|| {
        let mut rest = bytes;
        while rest.len() > chunk_size {
            let (chunk, tail) = rest.split_at(chunk_size);
            sink.chunk(&mut session, chunk)?;
            rest = tail;
        }
        Ok(rest)
    })();
    match result {
        Ok(rest) => sink.finish(session, digest, rest),
        Err(e) => {
            sink.cancel(session);
            Err(e)
        }
    }
}

/// Compresses the tar stream `tar` and uploads it: one PUT when the compressed layer fits in
/// `chunk_size`, else PATCH chunks as they fill and the rest with the PUT. Returns the blob's
/// digest and size. `progress` gets the uncompressed byte counts.
///
/// The stream checks itself: the store's rebuilt tar fails its last read when it does not
/// hash to its diff id (`store::layers::LayerTar`), and the upload is only completed after
/// that read, so a layer whose files changed is never published.
pub fn upload_layer<S: BlobSink>(
    sink: &S,
    tar: &mut dyn Read,
    diff_id: &Digest,
    compression: Compression,
    level: Option<i32>,
    chunk_size: usize,
    progress: &dyn Fn(u64),
) -> Result<(Digest, u64), PushError> {
    let mut out = ChunkWriter {
        sink,
        session: None,
        buffer: Vec::with_capacity(chunk_size.min(1 << 20)),
        chunk_size,
        hasher: Hasher::new(),
        size: 0,
        error: None,
    };
    let result = compress(tar, &mut out, diff_id, compression, level, progress);
    let result = result.and_then(|()| {
        let digest = out.hasher.clone().finish();
        let session = match out.session.take() {
            Some(s) => s,
            None => sink.start()?,
        };
        sink.finish(session, &digest, &out.buffer)?;
        Ok((digest, out.size))
    });
    if result.is_err()
        && let Some(session) = out.session.take()
    {
        sink.cancel(session);
    }
    result
}

fn compress<S: BlobSink>(
    tar: &mut dyn Read,
    out: &mut ChunkWriter<'_, S>,
    diff_id: &Digest,
    compression: Compression,
    level: Option<i32>,
    progress: &dyn Fn(u64),
) -> Result<(), PushError> {
    let compress_err = |out: &mut ChunkWriter<'_, S>, source: io::Error| match out.error.take() {
        Some(e) => PushError::Registry(e),
        None => PushError::Compress {
            diff_id: diff_id.clone(),
            source,
        },
    };
    let mut encoder: Box<dyn Encoder + '_> = match compression {
        Compression::Gzip => Box::new(ParallelGzip::new(
            &mut *out,
            level.map_or(GZIP_LEVEL, |l| l.clamp(1, 9) as u32),
        )),
        Compression::Zstd => Box::new(
            zstd::stream::write::Encoder::new(&mut *out, level.unwrap_or(ZSTD_LEVEL)).map_err(
                |source| PushError::Compress {
                    diff_id: diff_id.clone(),
                    source,
                },
            )?,
        ),
        Compression::None => Box::new(Plain(&mut *out)),
    };
    let mut buf = vec![0u8; 256 * 1024];
    let written = loop {
        let n = match tar.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                drop(encoder);
                return Err(PushError::ReadLayer {
                    diff_id: diff_id.clone(),
                    source,
                });
            }
        };
        progress(n as u64);
        if let Err(e) = encoder.write_all(&buf[..n]) {
            break Err(e);
        }
    };
    let finished = written.and_then(|()| encoder.finish_stream());
    drop(encoder);
    finished.map_err(|source| compress_err(out, source))
}

/// A compressor that can be finished through a `dyn` reference.
trait Encoder: Write {
    fn finish_stream(&mut self) -> io::Result<()>;
}

impl<W: Write> Encoder for ParallelGzip<W> {
    fn finish_stream(&mut self) -> io::Result<()> {
        self.try_finish()
    }
}

impl<W: Write> Encoder for zstd::stream::write::Encoder<'_, W> {
    fn finish_stream(&mut self) -> io::Result<()> {
        // `do_finish` writes the frame's end; `finish` would need the encoder by value.
        self.do_finish()
    }
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Encoder for Plain<W> {
    fn finish_stream(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Hashes and counts the compressed stream, sending a chunk whenever `chunk_size` bytes are
/// waiting (starting the upload with the first). What is left at the end goes with the PUT.
struct ChunkWriter<'a, S: BlobSink> {
    sink: &'a S,
    session: Option<S::Session>,
    buffer: Vec<u8>,
    chunk_size: usize,
    hasher: Hasher,
    size: u64,
    /// The registry's error behind a failed write (io::Error cannot carry it whole).
    error: Option<RegistryError>,
}

impl<S: BlobSink> ChunkWriter<'_, S> {
    fn send_chunk(&mut self) -> Result<(), RegistryError> {
        let session = match &mut self.session {
            Some(s) => s,
            None => self.session.insert(self.sink.start()?),
        };
        let chunk: Vec<u8> = self.buffer.drain(..self.chunk_size).collect();
        self.sink.chunk(session, &chunk)
    }
}

impl<S: BlobSink> Write for ChunkWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.buffer.extend_from_slice(buf);
        // Strictly more than a chunk: a blob of exactly one chunk still goes in one PUT.
        while self.buffer.len() > self.chunk_size {
            if let Err(e) = self.send_chunk() {
                self.error = Some(e);
                return Err(io::Error::other("the upload failed"));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `attempt` up to `attempts` times while it fails transiently, pausing `backoff`,
/// then twice that, and so on, in between; `on_retry` hears of each failure that is retried
/// (attempt number that failed, the error, the pause).
pub fn with_retries<T>(
    attempts: u32,
    backoff: Duration,
    mut attempt: impl FnMut(u32) -> Result<T, PushError>,
    mut on_retry: impl FnMut(u32, &PushError, Duration),
) -> Result<T, PushError> {
    let mut pause = backoff;
    let mut n = 1;
    loop {
        match attempt(n) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && n < attempts => {
                on_retry(n, &e, pause);
                std::thread::sleep(pause);
                pause *= 2;
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

// ---- The registry as destination and sink ----

/// One repository of a registry, seen through the [`Client`].
pub struct Repository<'a> {
    pub client: &'a Client,
    /// As references name the registry (for mount decisions).
    pub registry: String,
    pub path: String,
}

impl Destination for Repository<'_> {
    fn registry(&self) -> &str {
        &self.registry
    }

    fn repository(&self) -> &str {
        &self.path
    }

    fn exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        Ok(self.client.blob_exists(&self.path, digest)?.is_some())
    }

    fn mount(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        match self.client.mount_blob(&self.path, digest, from)? {
            Mount::Mounted => Ok(true),
            Mount::Started(upload) => {
                // The blob will come by an upload of its own (possibly recompressed); this
                // session would only linger on the registry.
                self.client.cancel_upload(upload);
                Ok(false)
            }
        }
    }
}

impl BlobSink for Repository<'_> {
    type Session = Upload;

    fn start(&self) -> Result<Upload, RegistryError> {
        self.client.start_upload(&self.path)
    }

    fn chunk(&self, session: &mut Upload, bytes: &[u8]) -> Result<(), RegistryError> {
        self.client.upload_chunk(session, bytes)
    }

    fn finish(&self, session: Upload, digest: &Digest, last: &[u8]) -> Result<(), RegistryError> {
        self.client.finish_upload(session, digest, last)
    }

    fn cancel(&self, session: Upload) {
        self.client.cancel_upload(session)
    }
}

#[cfg(test)]
mod tests;
