//! Extracted layers: staged under `layers/.staging`, renamed into place when whole.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, io_err, lock, unique_suffix};
use crate::image::digest::{Digest, HashingReader};
use crate::layer::split;
use crate::layer::unpack::{UnpackError, UnpackOptions, UnpackReport, unpack_recording};
use crate::runtime::userns::Namespace;

/// Why a layer stream could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum LayerImportError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("cannot read the layer stream")]
    Stream {
        #[source]
        source: io::Error,
    },
    #[error("cannot write the layer's tar-split record `{path}`")]
    Record {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the layer stream hashes to {actual}, but its image config says {expected}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `layer.json` records beside a layer's `diff/` directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Bytes of regular files in the layer.
    pub size: u64,
    pub entries: u64,
    pub extracted: DateTime<Utc>,
    /// Length of the layer's tar stream, when its tar-split was recorded (layers stored by
    /// nook before it kept one have none, and cannot be pushed or saved).
    #[serde(default)]
    pub tar_size: Option<u64>,
}

/// What [`Store::import_layer`] stored.
#[derive(Debug, Clone)]
pub struct ImportedLayer {
    pub diff_id: Digest,
    /// Bytes of regular files in the layer.
    pub size: u64,
    /// Length of the tar stream.
    pub tar_size: u64,
    /// One human-readable line each: entries skipped or adapted.
    pub warnings: Vec<String>,
}

/// A layer's tar stream as it was stored (see [`Store::layer_tar`]).
pub type LayerTar = crate::layer::split::Rebuilt;

/// A layer directory being filled; removed on drop unless committed.
pub struct StagedLayer {
    path: PathBuf,
    committed: bool,
}

impl StagedLayer {
    /// Where the layer's files go.
    pub fn diff_dir(&self) -> PathBuf {
        self.path.join("diff")
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_tree(&self.path);
        }
    }
}

impl Store {
    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The directory holding a layer's files in overlay form.
    pub fn layer_diff_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layer_path(diff_id).join("diff")
    }

    /// Whether a complete layer is present: only whole layers ever have their final name.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_path(diff_id).join("layer.json").is_file()
    }

    pub fn layer_info(&self, diff_id: &Digest) -> Result<LayerInfo> {
        let path = self.layer_path(diff_id).join("layer.json");
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Serialises extraction of one layer across processes: a second pull of the same layer
    /// waits, then finds it done.
    pub fn lock_layer(&self, diff_id: &Digest) -> Result<lock::LockGuard> {
        lock::exclusive(
            &self.layer_lock_path(diff_id),
            &format!("layer {}", diff_id.short()),
        )
    }

    /// The file [`Store::lock_layer`] locks.
    pub(crate) fn layer_lock_path(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join("locks")
            .join(format!("layer-{}.lock", diff_id.hex()))
    }

    /// A fresh staging directory for `diff_id`. Call with the layer lock held: whatever a
    /// killed earlier attempt left there is removed first.
    pub fn stage_layer(&self, diff_id: &Digest) -> Result<StagedLayer> {
        let path = self.root.join("layers/.staging").join(diff_id.hex());
        if fs::symlink_metadata(&path).is_ok() {
            remove_tree(&path).map_err(io_err("remove leftover staging directory", &path))?;
        }
        let diff = path.join("diff");
        fs::create_dir_all(&diff).map_err(io_err("create directory", &diff))?;
        Ok(StagedLayer {
            path,
            committed: false,
        })
    }

    /// A staging directory for a layer whose diff id is known only once its stream has been
    /// read (commit, import).
    pub fn stage_anonymous_layer(&self) -> Result<StagedLayer> {
        let path = self.root.join("layers/.staging").join(format!(
            "new-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        let diff = path.join("diff");
        fs::create_dir_all(&diff).map_err(io_err("create directory", &diff))?;
        Ok(StagedLayer {
            path,
            committed: false,
        })
    }

    /// Extracts an uncompressed layer stream into `staged`, recording its tar-split beside
    /// it; returns the stream's digest and length with the extraction's report. Reads the
    /// stream to its end (past the tar's end blocks, which belong to the digest too).
    pub fn extract_layer(
        &self,
        staged: &StagedLayer,
        tar: &mut dyn Read,
        opts: &UnpackOptions,
    ) -> std::result::Result<(Digest, u64, UnpackReport), LayerImportError> {
        let record = staged.path.join(split::FILE_NAME);
        let (recorder, handle) =
            split::Recorder::create(tar, &record).map_err(|source| LayerImportError::Record {
                path: record.clone(),
                source,
            })?;
        let mut hashing = HashingReader::new(recorder);
        let report = unpack_recording(&mut hashing, &staged.diff_dir(), opts, Some(&handle))?;
        let (digest, length) = hashing
            .finish()
            .map_err(|source| LayerImportError::Stream { source })?;
        handle.finish().map_err(|source| LayerImportError::Record {
            path: record,
            source,
        })?;
        Ok((digest, length, report))
    }

    /// Extracts an uncompressed layer tar stream into the store (see [`Store::extract_layer`])
    /// and publishes it under its diff id. `expected`, when the caller knows the diff id (pull,
    /// load), must match. A layer that is already there is left as it is (the stream is
    /// still read and checked). Run as root of nook's user namespace, so files keep their
    /// owners.
    pub fn import_layer(
        &self,
        tar: &mut dyn Read,
        expected: Option<&Digest>,
        ns: Namespace,
    ) -> anyhow::Result<ImportedLayer> {
        let _lock = match expected {
            Some(d) => Some(self.lock_layer(d)?),
            None => None,
        };
        let staged = match expected {
            Some(d) => self.stage_layer(d)?,
            None => self.stage_anonymous_layer()?,
        };
        let opts = UnpackOptions {
            max_id: ns.max_id,
            chown: ns.can_chown,
        };
        let (diff_id, tar_size, report) = self.extract_layer(&staged, tar, &opts)?;
        if let Some(expected) = expected
            && expected != &diff_id
        {
            return Err(LayerImportError::DiffIdMismatch {
                expected: expected.clone(),
                actual: diff_id,
            }
            .into());
        }
        let _lock = match _lock {
            Some(l) => l,
            None => self.lock_layer(&diff_id)?,
        };
        let imported = ImportedLayer {
            diff_id: diff_id.clone(),
            size: report.bytes,
            tar_size,
            warnings: report.warnings,
        };
        if self.has_layer(&diff_id) {
            return Ok(imported);
        }
        self.commit_layer(
            staged,
            &LayerInfo {
                diff_id,
                size: report.bytes,
                entries: report.entries,
                extracted: Utc::now(),
                tar_size: Some(tar_size),
            },
        )?;
        Ok(imported)
    }

    /// The layer's tar stream exactly as it was stored, rebuilt from its files and its
    /// tar-split (so it hashes to `diff_id`; reading fails if it would not). Run as root of
    /// nook's user namespace: the files keep the container's owners and modes.
    pub fn layer_tar(&self, diff_id: &Digest) -> Result<LayerTar> {
        let dir = self.layer_path(diff_id);
        let record = dir.join(split::FILE_NAME);
        if !self.has_layer(diff_id) {
            return Err(StoreError::LayerMissing {
                diff_id: diff_id.clone(),
            });
        }
        if !record.exists() {
            return Err(StoreError::NoTarSplit {
                diff_id: diff_id.clone(),
            });
        }
        Ok(split::Rebuilt::open(&dir.join("diff"), &record, diff_id)?)
    }

    /// Makes a staged layer visible: its record is written, everything is flushed to disk,
    /// and one rename publishes it.
    pub fn commit_layer(&self, mut staged: StagedLayer, info: &LayerInfo) -> Result<()> {
        let record = staged.path.join("layer.json");
        let bytes = serde_json::to_vec_pretty(info).expect("layer info serialises");
        fs::write(&record, bytes).map_err(io_err("write", &record))?;
        crate::sys::syncfs(&staged.path).map_err(io_err("flush", &staged.path))?;
        let dest = self.layer_path(&info.diff_id);
        fs::rename(&staged.path, &dest).map_err(io_err("rename into place", &dest))?;
        staged.committed = true;
        let layers = self.root.join("layers");
        crate::sys::fsync_dir(&layers).map_err(io_err("flush directory", &layers))
    }

    /// Removes a layer: a rename into the trash makes it vanish at once; the files are
    /// deleted afterwards, by `purge_trash`.
    pub fn trash_layer(&self, diff_id: &Digest) -> Result<()> {
        let path = self.layer_path(diff_id);
        let dest = self.root.join("layers/.trash").join(format!(
            "{}.{}.{}",
            diff_id.hex(),
            std::process::id(),
            unique_suffix()
        ));
        match fs::rename(&path, &dest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("move to trash", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Deletes everything in the trash. Safe to run at any time by anyone holding no
    /// reference into it.
    pub fn purge_trash(&self) -> Result<()> {
        let trash = self.root.join("layers/.trash");
        let entries = match fs::read_dir(&trash) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read directory", &trash)(e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            remove_tree(&path).map_err(io_err("remove", &path))?;
        }
        Ok(())
    }
}

/// `rm -rf` that also copes with directories whose mode forbids writing (layers may contain
/// read-only directories, which `remove_dir_all` cannot empty).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path, &|p: &Path| {
                let meta = fs::symlink_metadata(p)?;
                if meta.is_dir() {
                    let mode = meta.permissions().mode() | 0o700;
                    fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
                }
                Ok(())
            })?;
            fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

fn make_writable(path: &Path, fix: &dyn Fn(&Path) -> io::Result<()>) -> io::Result<()> {
    fix(path)?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                make_writable(&entry.path(), fix)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(d: &Digest) -> LayerInfo {
        LayerInfo {
            diff_id: d.clone(),
            size: 3,
            entries: 1,
            extracted: Utc::now(),
            tar_size: None,
        }
    }

    #[test]
    fn a_layer_is_visible_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        {
            let staged = store.stage_layer(&d).unwrap();
            fs::write(staged.diff_dir().join("f"), b"abc").unwrap();
            assert!(!store.has_layer(&d));
            // dropped without commit: an interrupted extraction
        }
        assert!(!dir.path().join("layers/.staging").join(d.hex()).exists());
        let staged = store.stage_layer(&d).unwrap();
        fs::write(staged.diff_dir().join("f"), b"abc").unwrap();
        store.commit_layer(staged, &info(&d)).unwrap();
        assert!(store.has_layer(&d));
        assert_eq!(
            fs::read(store.layer_diff_dir(&d).join("f")).unwrap(),
            b"abc"
        );
        assert_eq!(store.layer_info(&d).unwrap().size, 3);
        store.trash_layer(&d).unwrap();
        assert!(!store.has_layer(&d));
        store.purge_trash().unwrap();
        assert_eq!(
            fs::read_dir(dir.path().join("layers/.trash"))
                .unwrap()
                .count(),
            0
        );
    }

    fn tar_with(file: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, file, data).unwrap();
        b.into_inner().unwrap()
    }

    fn unprivileged() -> Namespace {
        Namespace {
            max_id: 0,
            can_chown: false,
        }
    }

    #[test]
    fn an_imported_layer_gives_back_its_exact_stream() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stream = tar_with("hello.txt", b"hello\n");
        let layer = store
            .import_layer(&mut stream.as_slice(), None, unprivileged())
            .unwrap();
        assert_eq!(layer.diff_id, Digest::of(&stream));
        assert_eq!(layer.tar_size, stream.len() as u64);
        assert_eq!(
            store.layer_info(&layer.diff_id).unwrap().tar_size,
            Some(layer.tar_size)
        );
        let mut rebuilt = store.layer_tar(&layer.diff_id).unwrap();
        assert_eq!(rebuilt.size(), stream.len() as u64);
        let mut out = Vec::new();
        rebuilt.read_to_end(&mut out).unwrap();
        assert!(out == stream);
        // Again, and with the digest known: nothing changes.
        let again = store
            .import_layer(&mut stream.as_slice(), Some(&layer.diff_id), unprivileged())
            .unwrap();
        assert_eq!(again.diff_id, layer.diff_id);

        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        })
        .to_string();
        let record = store
            .add_local_image(config.as_bytes(), &["localhost/mine:latest".into()])
            .unwrap();
        assert_eq!(record.id, Digest::of(config.as_bytes()));
        let manifest: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&record.manifest).unwrap()).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], layer.diff_id.to_string());
        assert_eq!(manifest["layers"][0]["size"], stream.len() as u64);
        assert_eq!(
            store.images().unwrap().images[0].names,
            ["localhost/mine:latest"]
        );
    }

    #[test]
    fn a_layer_that_lies_about_its_digest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stream = tar_with("a", b"a");
        let wrong = Digest::of(b"something else");
        let err = store
            .import_layer(&mut stream.as_slice(), Some(&wrong), unprivileged())
            .unwrap_err();
        assert!(err.to_string().contains("hashes to"), "{err}");
        assert!(!store.has_layer(&wrong));
        assert!(!store.has_layer(&Digest::of(&stream)));
        assert_eq!(
            fs::read_dir(dir.path().join("layers/.staging"))
                .unwrap()
                .count(),
            0
        );
        assert!(matches!(
            store.layer_tar(&wrong),
            Err(StoreError::LayerMissing { .. })
        ));
    }

    #[test]
    fn leftovers_of_a_killed_extraction_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        let leftover = dir
            .path()
            .join("layers/.staging")
            .join(d.hex())
            .join("diff/ro");
        fs::create_dir_all(&leftover).unwrap();
        fs::write(leftover.join("half"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&leftover, fs::Permissions::from_mode(0o555)).unwrap();
        let staged = store.stage_layer(&d).unwrap();
        assert_eq!(fs::read_dir(staged.diff_dir()).unwrap().count(), 0);
    }
}
