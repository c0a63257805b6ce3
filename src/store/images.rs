//! Image records and tags, kept together in `images.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, lock};
use crate::image::digest::Digest;

use super::INDEX_VERSION as FORMAT_VERSION;
use crate::image::config::ConfigSummary;

/// The media type of a layer in the manifest of an image built here: the uncompressed tar
/// the store can rebuild, named by its diff id.
pub const LOCAL_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// One image: its config digest is its ID, as in Docker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub id: Digest,
    /// Full references: `docker.io/library/busybox:latest`.
    pub names: Vec<String>,
    /// `docker.io/library/busybox@sha256:…`: the manifest digest per repository.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The platform manifest the image came from.
    pub manifest: Digest,
    /// Diff ids, bottom layer first.
    pub layers: Vec<Digest>,
    /// Bytes of the extracted layers.
    pub size: u64,
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// When the image was last pulled or tagged here.
    pub added: DateTime<Utc>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageIndex {
    pub version: u32,
    pub images: Vec<ImageRecord>,
}

impl super::IndexFile for ImageIndex {
    fn version(&self) -> u32 {
        self.version
    }
}

impl ImageIndex {
    pub fn get(&self, id: &Digest) -> Option<&ImageRecord> {
        self.images.iter().find(|i| &i.id == id)
    }

    /// Adds or merges a record; a name it carries is taken from any other image (which then
    /// shows as `<none>` if that was its last name, as in Docker).
    pub fn upsert(&mut self, record: ImageRecord) {
        for other in self.images.iter_mut().filter(|i| i.id != record.id) {
            other.names.retain(|n| !record.names.contains(n));
        }
        match self.images.iter_mut().find(|i| i.id == record.id) {
            Some(existing) => {
                for n in record.names {
                    if !existing.names.contains(&n) {
                        existing.names.push(n);
                    }
                }
                for d in record.repo_digests {
                    if !existing.repo_digests.contains(&d) {
                        existing.repo_digests.push(d);
                    }
                }
                existing.added = record.added;
            }
            None => self.images.push(record),
        }
    }

    /// Points `name` at image `id`, taking it from whichever image had it.
    pub fn tag(&mut self, id: &Digest, name: &str) -> bool {
        let Some(pos) = self.images.iter().position(|i| &i.id == id) else {
            return false;
        };
        for other in self.images.iter_mut() {
            other.names.retain(|n| n != name);
        }
        let image = &mut self.images[pos];
        image.names.push(name.to_string());
        image.added = Utc::now();
        true
    }

    /// Layers no remaining image uses, among `candidates`.
    pub fn unused_layers<'a>(&self, candidates: &'a [Digest]) -> Vec<&'a Digest> {
        candidates
            .iter()
            .filter(|d| !self.images.iter().any(|i| i.layers.contains(d)))
            .collect()
    }

    /// Whether any remaining image still refers to blob `digest` (as manifest or config).
    pub fn uses_blob(&self, digest: &Digest) -> bool {
        self.images
            .iter()
            .any(|i| &i.id == digest || &i.manifest == digest)
    }
}

impl Store {
    fn images_path(&self) -> std::path::PathBuf {
        self.root.join("images.json")
    }

    /// Reads the image index without locking (see [`super::read_index`]).
    pub fn images(&self) -> Result<ImageIndex> {
        super::read_index(&self.images_path())
    }

    /// Read-modify-write of the image index under the metadata lock. `change` sees the
    /// current index; when it returns Ok the result is written atomically.
    pub fn update_images<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut ImageIndex) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let _guard = self.lock_metadata()?;
        let mut index = self.images()?;
        let out = change(&mut index)?;
        index.version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&index).expect("image index serialises");
        self.write_atomic(&self.images_path(), &bytes)?;
        Ok(out)
    }

    /// Records an image built here (commit, import, load): its config blob, a local OCI
    /// manifest listing its layers as the uncompressed tars they are stored as (digest = diff
    /// id), and its record, which takes `names` (full references) from any other image.
    /// Every layer must be in the store already.
    pub fn add_local_image(&self, config: &[u8], names: &[String]) -> anyhow::Result<ImageRecord> {
        use anyhow::Context;
        let summary = ConfigSummary::parse(config)?;
        let mut layers = Vec::new();
        let mut size = 0;
        for diff_id in &summary.diff_ids {
            let info = self
                .layer_info(diff_id)
                .with_context(|| format!("layer {diff_id} of the new image"))?;
            let tar_size = info.tar_size.ok_or_else(|| StoreError::NoTarSplit {
                diff_id: diff_id.clone(),
            })?;
            size += info.size;
            layers.push(serde_json::json!({
                "mediaType": LOCAL_LAYER_MEDIA_TYPE,
                "digest": diff_id.to_string(),
                "size": tar_size,
            }));
        }
        let config_digest = Digest::of(config);
        let manifest = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers,
        }))
        .expect("manifest serialises");
        let manifest_digest = Digest::of(&manifest);
        self.put_blob(&config_digest, config)?;
        self.put_blob(&manifest_digest, &manifest)?;
        let record = ImageRecord {
            id: config_digest,
            names: names.to_vec(),
            repo_digests: vec![],
            manifest: manifest_digest,
            layers: summary.diff_ids.clone(),
            size,
            created: summary.created,
            added: Utc::now(),
            architecture: summary.architecture,
            os: summary.os,
        };
        self.record_image(&record)?;
        Ok(record)
    }

    /// Adds or merges `record` in the index, the last step of every way an image arrives
    /// (pull, load, commit, import): refused if any of its layers is missing, as one a
    /// concurrent `rmi` removed after it was found present would be.
    pub fn record_image(&self, record: &ImageRecord) -> Result<()> {
        self.update_images(|index| -> Result<()> {
            if let Some(missing) = record.layers.iter().find(|d| !self.has_layer(d)) {
                return Err(StoreError::LayerMissing {
                    diff_id: missing.clone(),
                });
            }
            index.upsert(record.clone());
            Ok(())
        })
    }

    pub fn lock_metadata(&self) -> Result<lock::LockGuard> {
        lock::exclusive(&self.root.join("locks/metadata.lock"), "the image store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8, names: &[&str], layers: &[u8]) -> ImageRecord {
        ImageRecord {
            id: Digest::of(&[n]),
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            manifest: Digest::of(&[n, n]),
            layers: layers.iter().map(|l| Digest::of(&[100 + l])).collect(),
            size: 1,
            created: None,
            added: Utc::now(),
            architecture: "amd64".into(),
            os: "linux".into(),
        }
    }

    #[test]
    fn a_name_moves_to_the_newer_image() {
        let mut index = ImageIndex::default();
        index.upsert(record(1, &["docker.io/library/a:latest"], &[1, 2]));
        index.upsert(record(2, &["docker.io/library/a:latest"], &[1, 3]));
        assert!(index.get(&Digest::of(&[1])).unwrap().names.is_empty());
        assert_eq!(
            index.get(&Digest::of(&[2])).unwrap().names,
            ["docker.io/library/a:latest"]
        );
        assert!(index.tag(&Digest::of(&[1]), "docker.io/library/b:1"));
        assert!(!index.tag(&Digest::of(&[9]), "docker.io/library/b:1"));
    }

    #[test]
    fn shared_layers_are_kept() {
        let mut index = ImageIndex::default();
        index.upsert(record(1, &["x:1"], &[1, 2]));
        let removed = record(2, &["y:1"], &[1, 3]);
        assert_eq!(
            index.unused_layers(&removed.layers),
            vec![&Digest::of(&[103])]
        );
        assert!(index.uses_blob(&Digest::of(&[1])));
        assert!(!index.uses_blob(&Digest::of(&[2])));
    }

    #[test]
    fn index_round_trips_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.images().unwrap().images.is_empty());
        store
            .update_images(|i| -> Result<()> {
                i.upsert(record(1, &["x:1"], &[1]));
                Ok(())
            })
            .unwrap();
        assert_eq!(store.images().unwrap().images.len(), 1);
        std::fs::write(dir.path().join("images.json"), b"{ not json").unwrap();
        assert!(matches!(store.images(), Err(StoreError::Corrupt { .. })));
    }
}
