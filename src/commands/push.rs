//! `nook push`: each layer reuses a blob the registry has or can mount, or is rebuilt from
//! the store, compressed and uploaded; then the config; then the manifest. The image record
//! learns the pushed digest last, so a failed push changes nothing here, and the registry
//! gets a manifest only once every blob it names is there. (The decisions themselves are in
//! `image::push`.)

use anyhow::{Context, Result, anyhow, bail};

use super::progress::{Progress, Task};
use super::{Ctx, find_image, print_out};
use crate::cli::{CompressionFormat, PushArgs};
use crate::config::{Endpoint, RegistriesConfig};
use crate::image::digest::Digest;
use crate::image::manifest::{self, Compression, Manifest};
use crate::image::push::{
    self, Blob, Candidate, KnownManifest, ManifestFormat, Repository, Reused,
};
use crate::image::reference::Reference;
use crate::image::registry::Client;
use crate::runtime::userns;
use crate::store::Store;
use crate::store::images::ImageRecord;

/// Layers pushed at once: as for pull, enough to overlap compression and network, few
/// enough for a two-core machine.
const PARALLEL_LAYERS: usize = 3;

/// Transports of containers-transports(5) that name no registry; `docker://` is stripped.
const OTHER_TRANSPORTS: &[&str] = &[
    "oci",
    "oci-archive",
    "docker-archive",
    "docker-daemon",
    "dir",
    "containers-storage",
];

pub fn run(args: PushArgs, ctx: &Ctx) -> Result<i32> {
    let config = ctx.registries()?;
    let store = ctx.store()?;
    // Everything that can be wrong with the input is found here, before the user namespace
    // is entered, so it costs no re-execution.
    let (record, name) = find_image(&store.images()?, &args.image, &config)
        .with_context(|| format!("cannot push {}", args.image))?;
    let dest = destination(args.destination.as_deref(), name.as_deref(), &args.image)?;
    let endpoint = push_endpoint(&config, &dest, args.tls_verify)
        .with_context(|| format!("cannot push {} to {dest}", args.image))?;
    if let Some(level) = args.compression_level
        && level > 9
        && args.compression_format != Some(CompressionFormat::Zstd)
    {
        anyhow::bail!(
            "--compression-level {level} is out of range for gzip (1 to 9); levels up to 19 are for --compression-format zstd"
        );
    }
    // Before any thread exists (entering a user namespace needs a single-threaded process):
    // a layer's files belong to ids of the namespace, and rebuilding its tar reads them.
    let _ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let progress = Progress::new(args.quiet);
    let wanted = args.compression_format.map(|f| match f {
        CompressionFormat::Gzip => Compression::Gzip,
        CompressionFormat::Zstd => Compression::Zstd,
    });
    let pushed = push_image(
        &store,
        ctx,
        &record,
        &dest,
        &endpoint,
        wanted,
        args.compression_level,
        &progress,
    )
    .with_context(|| format!("cannot push {} to {dest}", args.image))?;
    if args.quiet {
        print_out(&format!("{dest}\n"))?;
    } else {
        // Docker's last line, which scripts parse.
        print_out(&format!(
            "{}: digest: {} size: {}\n",
            dest.tag_or_latest(),
            pushed.digest,
            pushed.size
        ))?;
    }
    Ok(0)
}

/// The reference to push to: DEST (a registry reference, `docker://` allowed as Podman
/// allows it), else the name the image was found by.
fn destination(given: Option<&str>, name: Option<&str>, image: &str) -> Result<Reference> {
    let text = match given {
        Some(d) => match d.strip_prefix("docker://") {
            Some(rest) => rest,
            None => {
                if let Some((transport, _)) = d.split_once(':')
                    && OTHER_TRANSPORTS.contains(&transport)
                {
                    bail!(
                        "cannot push to `{d}`: nook pushes to registries only, not to the {transport} transport (give HOST/PATH[:TAG] or docker://HOST/PATH[:TAG])"
                    );
                }
                d
            }
        },
        None => name.ok_or_else(|| {
            anyhow!(
                "cannot push {image}: an image ID names no repository; give a destination, e.g. nook push {image} HOST/PATH:TAG"
            )
        })?,
    };
    let reference =
        Reference::parse(text).with_context(|| format!("cannot push {image} to `{text}`"))?;
    if reference.digest.is_some() {
        bail!(
            "cannot push {image} to `{text}`: a destination is a tag, not a digest (the registry names what it stores by digest itself)"
        );
    }
    Ok(reference)
}

/// The registry itself: mirrors are for pulling.
fn push_endpoint(
    config: &RegistriesConfig,
    dest: &Reference,
    tls_verify: Option<bool>,
) -> Result<Endpoint> {
    config
        .endpoints(dest, tls_verify)?
        .pop()
        .ok_or_else(|| anyhow!("no endpoint for {dest}"))
}

struct Pushed {
    digest: Digest,
    size: usize,
}

/// How one layer got to the registry.
struct LayerResult {
    blob: Blob,
    compression: Compression,
}

#[allow(clippy::too_many_arguments)]
fn push_image(
    store: &Store,
    ctx: &Ctx,
    record: &ImageRecord,
    dest: &Reference,
    endpoint: &Endpoint,
    wanted: Option<Compression>,
    level: Option<i32>,
    progress: &Progress,
) -> Result<Pushed> {
    let credentials = ctx.auth_files().lookup(&dest.registry)?;
    let client = Client::with_timeout(
        endpoint.into(),
        credentials,
        ctx.nook_config()?.registry_timeout(),
    );
    let repo = Repository {
        client: &client,
        registry: dest.registry.clone(),
        path: endpoint.repository.clone(),
    };
    let known = known_manifests(store, record)?;
    let base = &known[0];
    let config_bytes = store.read_blob(&record.id)?;

    progress.message(&format!("The push refers to repository [{}]", dest.name()));
    let layers = push_layers(store, &repo, record, &known, wanted, level, progress)?;

    // The config: the destination may have it, another repository of the registry may
    // lend it, or it goes up from the store.
    let config_blob = Blob {
        media_type: push::MEDIA_OCI_CONFIG.to_string(),
        digest: record.id.clone(),
        size: config_bytes.len() as u64,
    };
    // Only the image's own manifests name this config.
    let config_sources: Vec<String> = known
        .iter()
        .filter(|m| m.manifest.config().digest().to_string() == record.id.to_string())
        .flat_map(|m| m.repositories.iter().cloned())
        .collect();
    if push::reuse_blob(&repo, &config_blob, &config_sources)?.is_none() {
        push::with_retries(
            push::UPLOAD_ATTEMPTS,
            push::FIRST_BACKOFF,
            |_| {
                Ok(push::upload_bytes(
                    &repo,
                    &record.id,
                    &config_bytes,
                    push::CHUNK_SIZE,
                )?)
            },
            |n, e, pause| {
                progress.message(&format!(
                    "config {}: attempt {n} failed ({e}); retrying in {} s",
                    record.id.short(),
                    pause.as_secs()
                ))
            },
        )
        .context("uploading the image config")?;
    }

    let blobs: Vec<Blob> = layers.iter().map(|l| l.blob.clone()).collect();
    let (bytes, media_type) = match push::reusable_manifest(&known, &record.id, &blobs) {
        Some(i) => (known[i].bytes.clone(), known[i].media_type.clone()),
        None => {
            let compressions: Vec<Compression> = layers.iter().map(|l| l.compression).collect();
            let format = ManifestFormat::choose(&base.media_type, &compressions);
            let pairs: Vec<(Blob, Compression)> = layers
                .iter()
                .map(|l| (l.blob.clone(), l.compression))
                .collect();
            let (bytes, media_type) =
                push::build_manifest(format, (&record.id, config_bytes.len() as u64), &pairs);
            (bytes, media_type.to_string())
        }
    };
    let digest = client.put_manifest(
        &endpoint.repository,
        dest.tag_or_latest(),
        &media_type,
        &bytes,
    )?;

    // Remember what went where, so the next push reuses these blobs and this manifest. The
    // manifest blob is unnamed until the record lists its repo digest: the store's clean-up
    // must wait.
    let _adding = store.hold_additions()?;
    store.put_blob(&digest, &bytes)?;
    let repo_digest = format!("{}@{digest}", dest.name());
    store.update_images(|index| -> Result<()> {
        if let Some(image) = index.images.iter_mut().find(|i| i.id == record.id)
            && !image.repo_digests.contains(&repo_digest)
        {
            image.repo_digests.push(repo_digest.clone());
        }
        Ok(())
    })?;
    Ok(Pushed {
        digest,
        size: bytes.len(),
    })
}

/// The manifests nook holds for `record` (its own first: the one it was pulled or built
/// with, then each one it was pushed with), then those of every other image sharing a layer
/// with it, whose blobs may stand for the shared layers.
fn known_manifests(store: &Store, record: &ImageRecord) -> Result<Vec<KnownManifest>> {
    let mut known = image_manifests(store, record).ok_or_else(|| {
        anyhow!(
            "the stored manifest {} of image {} is not an image manifest for it; the store is damaged (pull or build the image again)",
            record.manifest,
            record.id.short()
        )
    })?;
    for other in store.images()?.images {
        if other.id != record.id && other.layers.iter().any(|d| record.layers.contains(d)) {
            // Another image's damaged blob is only a blob fewer to reuse.
            known.extend(image_manifests(store, &other).unwrap_or_default());
        }
    }
    Ok(known)
}

/// One image's manifests, its own first; None when its own is unreadable.
fn image_manifests(store: &Store, record: &ImageRecord) -> Option<Vec<KnownManifest>> {
    let own = store.read_blob(&record.manifest).ok()?;
    let mut own = known_manifest(own, record)?;
    let mut pushed: Vec<KnownManifest> = Vec::new();
    for entry in &record.repo_digests {
        let Some((name, digest)) = entry.split_once('@') else {
            continue;
        };
        let Ok(digest) = digest.parse::<Digest>() else {
            continue;
        };
        // A pull records the digest it asked for, often an index's (not kept): the
        // repository then holds the image's own manifest. A push records the manifest it
        // pushed, which is kept as a blob.
        let other = (digest != record.manifest)
            .then(|| store.read_blob(&digest).ok())
            .flatten()
            .and_then(|bytes| known_manifest(bytes, record));
        match other {
            Some(mut m) => match pushed.iter_mut().find(|p| p.bytes == m.bytes) {
                Some(p) => p.repositories.push(name.to_string()),
                None => {
                    m.repositories.push(name.to_string());
                    pushed.push(m);
                }
            },
            None => own.repositories.push(name.to_string()),
        }
    }
    let mut all = vec![own];
    all.extend(pushed);
    Some(all)
}

/// `bytes` as an image manifest of `record`: its config, as many layers.
fn known_manifest(bytes: Vec<u8>, record: &ImageRecord) -> Option<KnownManifest> {
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or(manifest::MEDIA_OCI_MANIFEST)
        .to_string();
    match manifest::parse(&bytes, Some(&media_type)).ok()? {
        Manifest::Image(m)
            if m.config().digest().to_string() == record.id.to_string()
                && m.layers().len() == record.layers.len() =>
        {
            Some(KnownManifest {
                bytes,
                media_type,
                manifest: m,
                diff_ids: record.layers.clone(),
                repositories: Vec::new(),
            })
        }
        _ => None,
    }
}

fn push_layers(
    store: &Store,
    repo: &Repository<'_>,
    record: &ImageRecord,
    known: &[KnownManifest],
    wanted: Option<Compression>,
    level: Option<i32>,
    progress: &Progress,
) -> Result<Vec<LayerResult>> {
    super::parallel::map(&record.layers, PARALLEL_LAYERS, |diff_id| {
        let candidates = push::candidates(known, diff_id);
        push_layer(store, repo, diff_id, &candidates, wanted, level, progress)
    })
}

fn push_layer(
    store: &Store,
    repo: &Repository<'_>,
    diff_id: &Digest,
    candidates: &[Candidate],
    wanted: Option<Compression>,
    level: Option<i32>,
    progress: &Progress,
) -> Result<LayerResult> {
    let label = diff_id.short();
    if let Some(reused) =
        push::reuse(repo, candidates, wanted).with_context(|| format!("layer {diff_id}"))?
    {
        let task = progress.task_with_message(label, 0, "Preparing");
        let compression = candidates
            .iter()
            .find(|c| &c.blob == reused.blob())
            .map(|c| c.compression)
            .unwrap_or(Compression::Gzip);
        match &reused {
            Reused::Exists(_) => task.finish("Layer already exists"),
            Reused::Mounted(_, from) => task.finish(&format!("Mounted from {from}")),
        }
        return Ok(LayerResult {
            blob: reused.blob().clone(),
            compression,
        });
    }
    let compression = wanted.unwrap_or(Compression::Gzip);
    let first = store.layer_tar(diff_id)?;
    let task = progress.task_with_message(label, first.size(), "Pushing");
    let mut tar = Some(first);
    let result = push::with_retries(
        push::UPLOAD_ATTEMPTS,
        push::FIRST_BACKOFF,
        |attempt| {
            let mut stream = match tar.take() {
                Some(t) => t,
                // A retry starts the stream again.
                None => store
                    .layer_tar(diff_id)
                    .map_err(|e| push::PushError::ReadLayer {
                        diff_id: diff_id.clone(),
                        source: std::io::Error::other(e),
                    })?,
            };
            if attempt > 1 {
                task.restart("Pushing");
            }
            push::upload_layer(
                repo,
                &mut stream,
                diff_id,
                compression,
                level,
                push::CHUNK_SIZE,
                &|n| task.advance(n),
            )
        },
        |n, e, pause| retry_notice(progress, &task, label, n, e, pause),
    );
    match result {
        Ok((digest, size)) => {
            task.finish("Pushed");
            Ok(LayerResult {
                blob: Blob {
                    media_type: ManifestFormat::Oci
                        .layer_media_type(compression)
                        .to_string(),
                    digest,
                    size,
                },
                compression,
            })
        }
        Err(e) => {
            task.fail();
            Err(anyhow::Error::new(e).context(format!("layer {diff_id}")))
        }
    }
}

fn retry_notice(
    progress: &Progress,
    task: &Task,
    label: &str,
    attempt: u32,
    error: &push::PushError,
    pause: std::time::Duration,
) {
    task.restart("Retrying");
    progress.message(&format!(
        "{label}: attempt {attempt} failed ({error}); retrying in {} s",
        pause.as_secs()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let d = destination(Some("docker://127.0.0.1:5000/a/b:1"), None, "x").unwrap();
        assert_eq!(d.to_string(), "127.0.0.1:5000/a/b:1");
        let d = destination(None, Some("127.0.0.1:5000/a/b:latest"), "x").unwrap();
        assert_eq!(d.to_string(), "127.0.0.1:5000/a/b:latest");
        let d = destination(Some("127.0.0.1:5000/a/b"), None, "x").unwrap();
        assert_eq!(d.tag_or_latest(), "latest");
        let e = destination(Some("oci:/tmp/layout"), None, "x").unwrap_err();
        assert!(format!("{e:#}").contains("registries only"), "{e:#}");
        let e = destination(None, None, "3f57d9401f8d").unwrap_err();
        assert!(format!("{e:#}").contains("give a destination"), "{e:#}");
        let e = destination(Some("Bad//Ref"), None, "x").unwrap_err();
        assert!(format!("{e:#}").contains("invalid reference"), "{e:#}");
        let at = format!("127.0.0.1:5000/a@{}", Digest::of(b"m"));
        let e = destination(Some(&at), None, "x").unwrap_err();
        assert!(format!("{e:#}").contains("not a digest"), "{e:#}");
    }
}
