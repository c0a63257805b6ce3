//! The on-disk truth: content-addressed blobs, extracted layers, image records.
//!
//! # Design
//!
//! Metadata lives in atomically replaced files rather than an embedded database. Each change
//! is written to a temporary file, fsynced, renamed over the old one and the directory fsynced,
//! under an exclusive `flock` held only for the read-modify-write (milliseconds, never during
//! a download). We chose this over SQLite because the store's metadata is small (one record
//! per image, read whole by `images` and `ps`), because a rename is exactly as atomic as a
//! database commit for a single file and needs no C library, WAL files or recovery step, and
//! because the files stay readable with `cat` and `jq` when something goes wrong.
//!
//! Layout under the data directory (`$XDG_DATA_HOME/nook`, or `--root`):
//!
//! ```text
//! images.json              every image record and tag; replaced atomically
//! blobs/sha256/<hex>       manifests and configs, named by their digest, verified on read
//! layers/<diff-id hex>/    one extracted layer: diff/ (overlay form), layer.json, and
//!                          tar-split.gz (what rebuilds its tar byte for byte: push, save)
//! layers/.staging/<hex>    a layer being extracted; renamed into place when whole
//! layers/.trash/<name>     a removed layer waiting to be deleted
//! locks/                   metadata.lock, gc.lock and one lock per layer being extracted
//! tmp/                     staged small files before their rename
//! containers.json          every container record; containers/<id>/ holds each one's files
//! volumes/<name>/_data     named volumes (`run -v NAME:/path`)
//! driver                   the storage driver the first container settled on
//! ```
//!
//! What makes it crash-safe: a layer directory exists under its final name only once every
//! file in it was written, verified against its diff id and flushed (`syncfs`); an image
//! record is written only after all its layers and blobs exist. A process killed at any
//! moment leaves at most a staging directory, which the next extraction of that layer (under
//! the same per-layer lock) removes, or a trash entry, which the next removal purges.
//! Layers are keyed by diff id (the digest of the uncompressed tar), so identical layers are
//! stored once however they were compressed.
//!
//! Between storing a layer or blob and recording the image that uses it, the data is used by
//! nothing on disk: only the command adding it knows it is wanted. Such commands (pull, load,
//! commit, import, push) hold `locks/gc.lock` shared for as long as they add
//! ([`Store::hold_additions`]); whatever removes data no image uses (`system check --repair`,
//! `system prune`) holds it exclusively ([`Store::lock_collection`]), so it never sees a
//! half-added image as garbage. [`check`] is that collector, and the store's checker.

pub mod check;
pub mod containers;
pub mod images;
pub mod layers;
pub mod lock;
pub mod logs;
pub mod names;
pub mod prune;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::image::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("store file `{path}` is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "blob {digest} in the store is damaged (its content hashes to {actual}); pull the image again"
    )]
    BlobDamaged { digest: Digest, actual: Digest },
    #[error("blob {digest} is missing from the store; pull the image again")]
    BlobMissing { digest: Digest },
    #[error("layer {diff_id} is not in the store; pull the image again")]
    LayerMissing { diff_id: Digest },
    #[error(
        "layer {diff_id} was stored by an older nook without a record of its tar stream, so it cannot be exported as the same layer; remove the image and pull it again"
    )]
    NoTarSplit { diff_id: Digest },
    #[error(transparent)]
    TarSplit(#[from] crate::layer::split::SplitError),
    #[error("blob content does not match its digest {expected} (got {actual})")]
    BlobMismatch { expected: Digest, actual: Digest },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A handle on the store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store, creating its directories on first use.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [
            store.root.join("blobs/sha256"),
            store.root.join("layers/.staging"),
            store.root.join("layers/.trash"),
            store.root.join("locks"),
            store.root.join("tmp"),
        ] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        Ok(store)
    }

    /// A handle that creates nothing, for readers of the index files only (completion):
    /// [`Store::images`] and [`Store::containers`] read without a lock and find a missing
    /// store empty.
    pub fn read_only(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Held (shared) by a command while it adds layers and blobs that no image record names
    /// yet, so the store's collector leaves them alone; any number of such commands run at
    /// once. Take it before the metadata or a layer lock.
    pub fn hold_additions(&self) -> Result<lock::LockGuard> {
        lock::shared(&self.gc_lock_path(), "the store's clean-up")
    }

    /// Held (exclusively) while data no image uses is found and removed: waits for every
    /// command that is adding data (see [`Store::hold_additions`]) to finish.
    pub fn lock_collection(&self) -> Result<lock::LockGuard> {
        lock::exclusive(&self.gc_lock_path(), "commands adding to the store")
    }

    fn gc_lock_path(&self) -> PathBuf {
        self.root.join("locks/gc.lock")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Stores a small blob (manifest, config) under its digest after checking it.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(StoreError::BlobMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    /// Reads a blob and verifies it, so a damaged file is reported, never used.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing {
                    digest: digest.clone(),
                });
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::BlobDamaged {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Writes `path` so that it holds either its old content or all of `bytes`, even across
    /// a crash: a staged file in `tmp/`, fsync, rename, fsync of the directory.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.replace_file(path, bytes, true)
    }

    /// Like [`Store::write_atomic`], but without the flushes: for state that a crash may
    /// roll back as long as it never tears (a container's running state, which `ps`
    /// corrects from the processes anyway). Saves two disk flushes on `run`'s hot path.
    pub fn write_replace(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.replace_file(path, bytes, false)
    }

    fn replace_file(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
            std::process::id(),
            unique_suffix()
        ));
        let result = (|| {
            let mut file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
            file.write_all(bytes).map_err(io_err("write", &tmp))?;
            if durable {
                file.sync_all().map_err(io_err("flush", &tmp))?;
            }
            fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
            if !durable {
                return Ok(());
            }
            let dir = path.parent().unwrap_or(&self.root);
            crate::sys::fsync_dir(dir).map_err(io_err("flush directory", dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// An index file (`images.json`, `containers.json`): a format version and records.
pub(crate) trait IndexFile: serde::de::DeserializeOwned + Default {
    fn version(&self) -> u32;
}

/// The format version of every index file this nook writes.
pub(crate) const INDEX_VERSION: u32 = 1;

/// Reads an index file without locking: it is only ever replaced whole by rename, so a
/// reader sees either the old or the new file. A missing file is an empty index.
pub(crate) fn read_index<T: IndexFile>(path: &Path) -> Result<T> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let corrupt = |message: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let index: T = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if index.version() != INDEX_VERSION {
        return Err(corrupt(format!(
            "format version {} is not the {INDEX_VERSION} this nook understands",
            index.version()
        )));
    }
    Ok(index)
}

/// A suffix unique within this process, for staged file names.
pub(crate) fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
