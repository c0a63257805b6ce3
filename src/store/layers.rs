//! Extracted layers: staged under `layers/.staging`, renamed into place when whole.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, io_err, lock, unique_suffix};
use crate::image::digest::Digest;

/// What `layer.json` records beside a layer's `diff/` directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Bytes of regular files in the layer.
    pub size: u64,
    pub entries: u64,
    pub extracted: DateTime<Utc>,
}

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
        let path = self
            .root
            .join("locks")
            .join(format!("layer-{}.lock", diff_id.hex()));
        lock::exclusive(&path, &format!("layer {}", diff_id.short()))
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
