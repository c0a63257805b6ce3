//! Removing what nothing uses: images no container needs (`image prune`, `system prune`,
//! `system check --repair`), and named volumes no container mounts.
//!
//! Each removal decides under the metadata lock, where "is it in use" and "create a
//! container from it" cannot interleave, and does the slow part (deleting files) after it,
//! through a trash directory, as `rmi` and `rm` do.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::images::ImageRecord;
use super::layers::remove_tree;
use super::{Result, Store, io_err, unique_suffix};
use crate::image::digest::Digest;

/// Which images a removal may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Only an image without a name (`<none>`), as `image prune` without `-a`.
    Dangling,
    /// Any image no container uses.
    Unused,
}

/// What [`Store::remove_image_if`] did.
#[derive(Debug)]
pub enum Removal {
    Removed(Box<RemovedImage>),
    /// It is no longer in the store.
    Gone,
    /// A container uses it: these, by name.
    InUse(Vec<String>),
    /// It has a name, and only a dangling image was to go.
    Named,
}

/// An image taken out of the store.
#[derive(Debug)]
pub struct RemovedImage {
    pub record: ImageRecord,
    /// The layers that went with it (no other image used them), already in the trash.
    pub layers: Vec<Digest>,
    /// Bytes of those layers' files.
    pub reclaimed: u64,
}

impl Store {
    /// Removes image `id` if `condition` allows and no container uses it, with its layers no
    /// other image uses and its blobs. Layers go to the trash; call
    /// [`Store::purge_trash`] afterwards. Run inside nook's user namespace (layer files belong
    /// to subordinate ids).
    pub fn remove_image_if(&self, id: &Digest, condition: Condition) -> Result<Removal> {
        let removal = self.update_images(|index| -> Result<Removal> {
            let Some(pos) = index.images.iter().position(|i| &i.id == id) else {
                return Ok(Removal::Gone);
            };
            if condition == Condition::Dangling && !index.images[pos].names.is_empty() {
                return Ok(Removal::Named);
            }
            let users = self.containers_using_image(id)?;
            if !users.is_empty() {
                return Ok(Removal::InUse(users.into_iter().map(|c| c.name).collect()));
            }
            let record = index.images.remove(pos);
            let layers: Vec<Digest> = index
                .unused_layers(&record.layers)
                .into_iter()
                .cloned()
                .collect();
            let mut reclaimed = 0;
            for layer in &layers {
                reclaimed += self.layer_info(layer).map(|i| i.size).unwrap_or(0);
                self.trash_layer(layer)?;
            }
            Ok(Removal::Removed(Box::new(RemovedImage {
                record,
                layers,
                reclaimed,
            })))
        })?;
        if let Removal::Removed(removed) = &removal {
            let in_use = blobs_in_use(&self.images()?);
            for blob in image_blobs(&removed.record) {
                if !in_use.contains(&blob) {
                    self.remove_blob(&blob)?;
                }
            }
        }
        Ok(removal)
    }

    /// The names of the named volumes (`volumes/<name>/`), sorted.
    pub fn volume_names(&self) -> Result<Vec<String>> {
        let dir = self.root.join("volumes");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read directory", &dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// `volumes/<name>/_data`: what containers see.
    pub fn volume_data_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name).join("_data")
    }

    /// Removes volume `name` unless a container (in any state) mounts it; returns the bytes
    /// it held, or None when it is in use or gone. Run inside nook's user namespace.
    pub fn remove_volume_if_unused(&self, name: &str) -> Result<Option<u64>> {
        let dir = self.root.join("volumes").join(name);
        let trash = self.root.join("volumes/.trash");
        let target = trash.join(format!("{name}.{}.{}", std::process::id(), unique_suffix()));
        {
            let _guard = self.lock_metadata()?;
            let used = self.containers()?.iter().any(|c| {
                c.config.mounts.iter().any(|m| {
                    matches!(m, super::containers::MountSpec::Volume { name: n, .. } if n == name)
                })
            });
            if used || !dir.is_dir() {
                return Ok(None);
            }
            fs::create_dir_all(&trash).map_err(io_err("create directory", &trash))?;
            fs::rename(&dir, &target).map_err(io_err("move to the trash", &dir))?;
        }
        let size = super::containers::dir_size(&target);
        remove_tree(&target).map_err(io_err("remove", &target))?;
        Ok(Some(size))
    }
}

/// The blobs an image record names: its config, its manifest, and the manifests `push` kept
/// (named by its repo digests).
pub fn image_blobs(record: &ImageRecord) -> Vec<Digest> {
    let mut blobs = vec![record.id.clone(), record.manifest.clone()];
    for d in &record.repo_digests {
        if let Some(digest) = d
            .split_once('@')
            .and_then(|(_, d)| d.parse::<Digest>().ok())
            && !blobs.contains(&digest)
        {
            blobs.push(digest);
        }
    }
    blobs
}

/// Every blob some image in `index` names.
pub fn blobs_in_use(index: &super::images::ImageIndex) -> std::collections::HashSet<Digest> {
    index.images.iter().flat_map(image_blobs).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use crate::store::containers::{ContainerConfig, ContainerRecord, MountSpec};
    use chrono::Utc;

    fn image(store: &Store, n: u8, names: &[&str]) -> Digest {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "n": n,
            "rootfs": {"type": "layers", "diff_ids": []},
        })
        .to_string();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        store.add_local_image(config.as_bytes(), &names).unwrap().id
    }

    fn container(store: &Store, id: char, image: &Digest, volume: Option<&str>) {
        let mut config = ContainerConfig::default();
        if let Some(v) = volume {
            config.mounts.push(MountSpec::Volume {
                name: v.into(),
                destination: "/data".into(),
                read_only: false,
            });
        }
        store
            .create_container(&ContainerRecord {
                id: id.to_string().repeat(64),
                name: format!("c{id}"),
                image: "x".into(),
                image_id: image.clone(),
                created: Utc::now(),
                config,
            })
            .unwrap();
    }

    #[test]
    fn only_what_the_condition_allows_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let named = image(&store, 1, &["localhost/a:1"]);
        let dangling = image(&store, 2, &[]);
        let used = image(&store, 3, &[]);
        container(&store, 'a', &used, None);

        assert!(matches!(
            store.remove_image_if(&named, Condition::Dangling).unwrap(),
            Removal::Named
        ));
        match store.remove_image_if(&used, Condition::Unused).unwrap() {
            Removal::InUse(names) => assert_eq!(names, ["ca"]),
            other => panic!("{other:?}"),
        }
        match store
            .remove_image_if(&dangling, Condition::Dangling)
            .unwrap()
        {
            Removal::Removed(r) => assert_eq!(r.record.id, dangling),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.remove_image_if(&dangling, Condition::Unused).unwrap(),
            Removal::Gone
        ));
        assert!(matches!(
            store.read_blob(&dangling),
            Err(StoreError::BlobMissing { .. })
        ));
        assert!(matches!(
            store.remove_image_if(&named, Condition::Unused).unwrap(),
            Removal::Removed(_)
        ));
        let left: Vec<Digest> = store
            .images()
            .unwrap()
            .images
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(left, [used]);
    }

    #[test]
    fn a_mounted_volume_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let img = image(&store, 1, &["localhost/a:1"]);
        for v in ["kept", "free"] {
            fs::create_dir_all(store.volume_data_dir(v)).unwrap();
            fs::write(store.volume_data_dir(v).join("f"), b"12345").unwrap();
        }
        container(&store, 'b', &img, Some("kept"));
        assert_eq!(store.volume_names().unwrap(), ["free", "kept"]);
        assert_eq!(store.remove_volume_if_unused("kept").unwrap(), None);
        assert_eq!(store.remove_volume_if_unused("free").unwrap(), Some(5));
        assert_eq!(store.remove_volume_if_unused("free").unwrap(), None);
        assert_eq!(store.volume_names().unwrap(), ["kept"]);
        assert_eq!(
            fs::read_dir(dir.path().join("volumes/.trash"))
                .unwrap()
                .count(),
            0
        );
    }
}
