//! Image archives, as `docker save` / `docker load` and skopeo exchange them.
//!
//! - **docker-archive**: a tar with `manifest.json` (`[{Config, RepoTags, Layers}]`), the
//!   config as `<config hex>.json`, each layer as an uncompressed tar at `<diff-id hex>/layer.tar`
//!   and the legacy `repositories` file. Docker, skopeo and Podman read it.
//! - **OCI image layout** (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), as a tar
//!   (oci-archive) or a directory (oci-dir). Every blob is named by its digest.
//!
//! Writing ([`write`]) streams each layer's tar from a [`write::LayerSource`] (the store) and
//! checks that what it wrote hashes to the layer's diff id. Reading ([`read`]) treats the
//! archive as hostile: it indexes a seekable tar first, refuses entries that escape it (`..`,
//! absolute names, links pointing outside), notices truncation, and checks every digest the
//! archive states before anything is trusted. Neither side knows about the store or user
//! namespaces; the `save` and `load` commands wire them up.

pub mod read;
pub mod write;

use std::io;
use std::path::PathBuf;

use crate::image::digest::Digest;

/// `oci-layout`'s content: the only layout version there is.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The annotation on `index.json` entries naming the image (its tag, or as nook, Podman and
/// skopeo write it, a whole reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25's) annotation with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Image configs are small; anything bigger is not one.
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the archive")]
    Read {
        #[source]
        source: io::Error,
    },
    #[error("cannot write the archive")]
    Write {
        #[source]
        source: io::Error,
    },
    #[error("the input is empty; nook loads docker-archive and oci-archive files")]
    Empty,
    #[error(
        "the input is not a tar archive ({reason}); nook loads docker-archive and oci-archive files, uncompressed or compressed with gzip or zstd"
    )]
    NotTar { reason: String },
    #[error(
        "the input is {format}-compressed, which nook cannot read; decompress it first ({hint})"
    )]
    UnsupportedCompression {
        format: &'static str,
        hint: &'static str,
    },
    #[error("the archive has more than {limit} entries, which no image archive needs")]
    TooManyEntries { limit: usize },
    #[error("the archive is truncated: {detail}")]
    Truncated { detail: String },
    #[error("archive entry `{entry}` escapes the archive: {reason}")]
    Escape { entry: String, reason: String },
    #[error("archive entry `{entry}` is a {kind}, which image archives never hold")]
    UnexpectedEntry { entry: String, kind: String },
    #[error("archive entry `{entry}` is malformed")]
    Entry {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("the archive has no `{entry}`, which {needed_by} names")]
    Missing { entry: String, needed_by: String },
    #[error(
        "the archive holds neither `manifest.json` (docker-archive) nor `index.json` (oci-archive)"
    )]
    UnknownFormat,
    #[error("malformed {what}: {message}")]
    Malformed { what: String, message: String },
    #[error("`{entry}` is {size} bytes, more than the {limit} bytes a {what} may have")]
    TooLarge {
        entry: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error(
        "{what} hashes to {actual}, but the archive says {expected}: the archive is damaged or was altered"
    )]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{what} is {actual} bytes, but the archive says {expected}: the archive is damaged or was altered"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("cannot read layer {diff_id} from the store")]
    OpenLayer {
        diff_id: Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot read layer {diff_id} from the store")]
    ReadLayer {
        diff_id: Digest,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer {diff_id} read back from the store is {size} bytes hashing to {actual} (expected {expected_size} bytes); the store is damaged: pull or load the image again"
    )]
    LayerMismatch {
        diff_id: Digest,
        actual: Digest,
        size: u64,
        expected_size: u64,
    },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// The diff ids in an image config's `rootfs.diff_ids`, bottom layer first.
pub fn config_diff_ids(config: &[u8]) -> Result<Vec<Digest>> {
    crate::image::config::ConfigSummary::parse(config)
        .map(|s| s.diff_ids)
        .map_err(|e| ArchiveError::Malformed {
            what: "image config".into(),
            message: e.to_string(),
        })
}
