//! `nook pull`: registry → digest check → decompress → extract inside the user namespace →
//! staged layer → rename; the image record last, so a killed pull leaves nothing visible.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;

use super::progress::{Counted, Progress, Task};
use super::{Ctx, print_out};
use crate::cli::PullArgs;
use crate::config::Endpoint;
use crate::image::config::ConfigSummary;
use crate::image::digest::{Digest, HashingReader};
use crate::image::manifest::{self, Compression, Manifest, PlatformSpec};
use crate::image::reference::Reference;
use crate::image::registry::{self, Client, RegistryError};
use crate::layer::unpack::{UnpackError, UnpackOptions};
use crate::runtime::userns::{self, Namespace};
use crate::store::Store;
use crate::store::images::ImageRecord;
use crate::store::layers::{LayerImportError, LayerInfo};

/// Layers downloaded at once: enough to overlap network and disk, few enough not to thrash
/// a two-core laptop.
const PARALLEL_LAYERS: usize = 3;
const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

pub fn run(args: PullArgs, ctx: &Ctx) -> Result<i32> {
    let reference = Reference::parse(&args.image)?;
    let config = ctx.registries()?;
    let platform = match &args.platform {
        Some(p) => PlatformSpec::parse(p)?,
        None => PlatformSpec::host(),
    };
    // Before any thread exists: entering a user namespace needs a single-threaded process.
    let ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let progress = Progress::new(args.quiet);
    let pulled = pull(
        &store,
        ctx,
        &config,
        &reference,
        args.tls_verify,
        &platform,
        ns,
        &progress,
    )
    .with_context(|| format!("cannot pull {}", args.image))?;
    if args.quiet {
        // For `run -q`: stdout is the container's.
        if !args.for_run {
            print_out(&format!("{}\n", pulled.name))?;
        }
    } else {
        progress.message(&format!("Digest: {}", pulled.digest));
        progress.message(&format!(
            "Status: {} for {}",
            if pulled.fresh {
                "Downloaded newer image"
            } else {
                "Image is up to date"
            },
            args.image
        ));
        if !args.for_run {
            print_out(&format!("{}\n", pulled.name))?;
        }
    }
    Ok(0)
}

pub struct Pulled {
    /// The full reference that now names the image.
    pub name: String,
    pub digest: Digest,
    pub fresh: bool,
}

/// Pulls `reference`, trying each unqualified-search registry and each mirror in turn.
#[allow(clippy::too_many_arguments)]
pub fn pull(
    store: &Store,
    ctx: &Ctx,
    config: &crate::config::RegistriesConfig,
    reference: &Reference,
    tls_verify: Option<bool>,
    platform: &PlatformSpec,
    ns: Namespace,
    progress: &Progress,
) -> Result<Pulled> {
    let candidates = config.candidates(reference);
    if candidates.is_empty() {
        bail!(
            "`{reference}` names no registry and the configuration (registries.toml, or [registries] in config.toml) lists no unqualified-search registries; give the full name, e.g. docker.io/{}",
            reference.repository
        );
    }
    // Layers and blobs stored before the image record names them must not look unused to
    // the store's clean-up (system check --repair, system prune).
    let _adding = store.hold_additions()?;
    let auth = ctx.auth_files();
    let timeout = ctx.nook_config()?.registry_timeout();
    let mut last_error: Option<anyhow::Error> = None;
    for candidate in &candidates {
        for endpoint in config.endpoints(candidate, tls_verify)? {
            let credentials = auth.lookup(&candidate.registry)?;
            let client = Client::with_timeout((&endpoint).into(), credentials, timeout);
            match client.get_manifest(&endpoint.repository, &candidate.reference_for_registry()) {
                Ok(fetched) => {
                    if candidates.len() > 1 || endpoint.host != candidate.registry {
                        progress.message(&format!(
                            "Trying to pull {candidate} from {}",
                            endpoint.host
                        ));
                    }
                    return pull_from(
                        store, &client, &endpoint, candidate, fetched, platform, ns, progress,
                    );
                }
                Err(e @ (RegistryError::NotFound { .. } | RegistryError::Unreachable { .. })) => {
                    last_error = Some(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("no registry to pull from")))
}

struct LayerJob {
    digest: Digest,
    size: u64,
    compression: Compression,
    diff_id: Digest,
}

#[allow(clippy::too_many_arguments)]
fn pull_from(
    store: &Store,
    client: &Client,
    endpoint: &Endpoint,
    reference: &Reference,
    fetched: registry::FetchedManifest,
    platform: &PlatformSpec,
    ns: Namespace,
    progress: &Progress,
) -> Result<Pulled> {
    let repository = &endpoint.repository;
    let top_digest = fetched.digest.clone();
    let (manifest_bytes, manifest_digest, image) =
        match manifest::parse(&fetched.bytes, fetched.content_type.as_deref())? {
            Manifest::Image(m) => (fetched.bytes, fetched.digest, m),
            Manifest::Index(index) => {
                let chosen = manifest::select_platform(&index, platform)?;
                let digest: Digest = chosen.digest().to_string().parse()?;
                let inner = client.get_manifest(repository, &digest.to_string())?;
                match manifest::parse(&inner.bytes, inner.content_type.as_deref())? {
                    Manifest::Image(m) => (inner.bytes, inner.digest, m),
                    Manifest::Index(_) => bail!(
                        "the manifest for {platform} is itself an index, which is not a valid image"
                    ),
                }
            }
        };
    let config_digest: Digest = image.config().digest().to_string().parse()?;
    let config_bytes = client.get_blob_bytes(repository, &config_digest, MAX_CONFIG_BYTES)?;
    let summary = ConfigSummary::parse(&config_bytes)?;
    let layers = image.layers();
    if layers.len() != summary.diff_ids.len() {
        bail!(
            "the manifest lists {} layers but the image config has {} diff ids; the image is malformed",
            layers.len(),
            summary.diff_ids.len()
        );
    }
    let jobs = layers
        .iter()
        .zip(&summary.diff_ids)
        .map(|(layer, diff_id)| {
            Ok(LayerJob {
                digest: layer.digest().to_string().parse()?,
                size: layer.size(),
                compression: manifest::layer_compression(layer.media_type().as_ref())?,
                diff_id: diff_id.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let name = match (&reference.tag, &reference.digest) {
        (Some(_), _) | (None, None) => Some(reference.to_string()),
        (None, Some(_)) => None,
    };
    let already = store.images()?.get(&config_digest).is_some()
        && summary.diff_ids.iter().all(|d| store.has_layer(d));
    if !already {
        progress.message(&format!(
            "{}: Pulling from {}",
            reference.tag_or_latest(),
            reference.name()
        ));
        fetch_layers(store, client, repository, &jobs, ns, progress)?;
    }
    store.put_blob(&manifest_digest, &manifest_bytes)?;
    store.put_blob(&config_digest, &config_bytes)?;

    let mut sizes = 0u64;
    for d in &summary.diff_ids {
        sizes += store.layer_info(d).map(|i| i.size).unwrap_or(0);
    }
    let record = ImageRecord {
        id: config_digest.clone(),
        names: name.iter().cloned().collect(),
        repo_digests: vec![format!("{}@{}", reference.name(), top_digest)],
        manifest: manifest_digest,
        layers: summary.diff_ids.clone(),
        size: sizes,
        created: summary.created,
        added: Utc::now(),
        architecture: summary.architecture,
        os: summary.os,
    };
    store.record_image(&record)?;
    Ok(Pulled {
        name: name.unwrap_or_else(|| format!("{}@{}", reference.name(), top_digest)),
        digest: top_digest,
        fresh: !already,
    })
}

fn fetch_layers(
    store: &Store,
    client: &Client,
    repository: &str,
    jobs: &[LayerJob],
    ns: Namespace,
    progress: &Progress,
) -> Result<()> {
    super::parallel::map(jobs, PARALLEL_LAYERS, |job| {
        fetch_layer(store, client, repository, job, ns, progress)
    })?;
    Ok(())
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    repository: &str,
    job: &LayerJob,
    ns: Namespace,
    progress: &Progress,
) -> Result<()> {
    let task = progress.task(job.digest.short(), job.size);
    let _lock = store.lock_layer(&job.diff_id)?;
    if store.has_layer(&job.diff_id) {
        task.finish("Already exists");
        return Ok(());
    }
    let result = download_and_extract(store, client, repository, job, ns, &task);
    match &result {
        Ok(()) => task.finish("Pull complete"),
        Err(_) => task.fail(),
    }
    result.with_context(|| format!("layer {}", job.digest))
}

fn download_and_extract(
    store: &Store,
    client: &Client,
    repository: &str,
    job: &LayerJob,
    ns: Namespace,
    task: &Task,
) -> Result<()> {
    let staged = store.stage_layer(&job.diff_id)?;
    let body = client.get_blob(repository, &job.digest)?;
    // A registry that sends more than the manifest promised is cut off one byte past it, so
    // the size check below fails instead of reading forever.
    let limited = Counted {
        inner: body.take(job.size + 1),
        task,
    };
    let mut compressed = HashingReader::new(limited);
    let opts = UnpackOptions {
        max_id: ns.max_id,
        chown: ns.can_chown,
    };
    let extracted = {
        let mut decoder: Box<dyn Read + '_> = match job.compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut compressed)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(&mut compressed)
                    .context("cannot start zstd decompression")?,
            ),
            Compression::None => Box::new(&mut compressed),
        };
        store.extract_layer(&staged, &mut decoder, &opts)
    };
    let (diff_id, tar_size, report) = match extracted {
        Ok(done) => done,
        Err(e) => {
            // A damaged blob reads as a decompression or tar error long before its digest
            // can be checked; the digest says what really happened, so read the rest of the
            // blob (at most what the manifest promised) to learn it.
            if is_stream_error(&e) && std::io::copy(&mut compressed, &mut std::io::sink()).is_ok() {
                let (digest, size) = compressed.finish().context("reading the layer")?;
                if size != job.size || digest != job.digest {
                    return Err(not_as_promised(size, &digest, job));
                }
            }
            return Err(truncation_hint(e.into(), &job.digest));
        }
    };
    let (digest, size) = compressed
        .finish()
        .context("reading the rest of the layer")?;
    if size != job.size || digest != job.digest {
        return Err(not_as_promised(size, &digest, job));
    }
    if diff_id != job.diff_id {
        bail!(
            "the uncompressed layer hashes to {diff_id} but the image config says {}; the image is malformed",
            job.diff_id
        );
    }
    for warning in &report.warnings {
        crate::error::warn(&format!("layer {}: {warning}", job.digest.short()));
    }
    store.commit_layer(
        staged,
        &LayerInfo {
            diff_id: job.diff_id.clone(),
            size: report.bytes,
            entries: report.entries,
            extracted: Utc::now(),
            tar_size: Some(tar_size),
        },
    )?;
    Ok(())
}

fn not_as_promised(size: u64, digest: &Digest, job: &LayerJob) -> anyhow::Error {
    anyhow!(
        "the registry sent {size} bytes hashing to {digest}, but the manifest promised {} bytes with digest {}; the blob is damaged or truncated on the registry, or was altered in transit",
        job.size,
        job.digest
    )
}

/// Whether extraction failed on what it read (bad compression, a bad tar header, data that
/// ends early), which a damaged blob causes, rather than on what the layer asks for or on
/// the network (a time-out, which reading on would only repeat).
fn is_stream_error(err: &LayerImportError) -> bool {
    let io = match err {
        LayerImportError::Stream { source } => source,
        LayerImportError::Unpack(
            UnpackError::Stream { source }
            | UnpackError::Header { source, .. }
            | UnpackError::Read { source, .. },
        ) => source,
        LayerImportError::Unpack(UnpackError::Truncated { .. }) => return true,
        _ => return false,
    };
    matches!(
        io.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::Other
    )
}

/// A stream that ends early shows up as a decompression or tar error; say what it means.
fn truncation_hint(err: anyhow::Error, digest: &Digest) -> anyhow::Error {
    let eof = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
    });
    if eof {
        err.context(format!(
            "blob {digest} ended early: the download was truncated"
        ))
    } else {
        err
    }
}
