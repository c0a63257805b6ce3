//! `nook load`: a docker-archive or oci-archive → verified layers → image records.
//!
//! All or nothing: the archive is indexed and every digest it states is checked before a
//! layer is extracted, layers go in through `Store::import_layer` (staged, checked against
//! their diff ids, renamed into place), and the image records are written last. If anything
//! fails after some layers went in, the layers this load added (and no image uses) are
//! removed again, so a bad archive leaves the store as it was.

use std::collections::HashSet;
use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use super::progress::{Counted, Progress};
use super::{Ctx, familiar_repo_tag, print_out};
use crate::cli::LoadArgs;
use crate::image::archive::read::{
    self, Archive, Format, Input, PlannedImage, layer_stream, seekable_tar, verify_blob,
};
use crate::image::config::ConfigSummary;
use crate::image::digest::{Digest, HashingReader};
use crate::image::manifest::PlatformSpec;
use crate::runtime::userns::{self, Namespace};
use crate::store::Store;
use crate::store::images::ImageRecord;

pub fn run(args: LoadArgs, ctx: &Ctx) -> Result<i32> {
    if args.input.is_none() && std::io::stdin().is_terminal() {
        bail!(
            "no archive on standard input: give one with -i FILE or redirect it (nook load < FILE)"
        );
    }
    // Before any thread exists: layers are extracted as root of the user namespace so that
    // their files keep the owners the archive gives them.
    let ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let (input, source) = match &args.input {
        Some(path) if path.is_dir() => bail!(
            "`{}` is a directory; nook loads archive files (tar an OCI layout directory first)",
            path.display()
        ),
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open `{}`", path.display()))?;
            (Input::File(file), format!("`{}`", path.display()))
        }
        None => (stdin_input()?, "standard input".to_string()),
    };
    let loaded = load(&store, input, ns, args.quiet)
        .with_context(|| format!("cannot load the archive from {source}"))?;
    let mut out = String::new();
    for image in &loaded {
        if image.names.is_empty() {
            out.push_str(&format!("Loaded image ID: {}\n", image.id));
        }
        for name in &image.names {
            let (repo, tag) = familiar_repo_tag(name);
            out.push_str(&format!("Loaded image: {repo}:{tag}\n"));
        }
    }
    print_out(&out)?;
    Ok(0)
}

/// Standard input as a file, so that a redirected regular file is read in place.
fn stdin_input() -> Result<Input> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot use standard input")?;
    Ok(Input::File(std::fs::File::from(fd)))
}

struct Loaded {
    id: Digest,
    names: Vec<String>,
}

fn load(store: &Store, input: Input, ns: Namespace, quiet: bool) -> Result<Vec<Loaded>> {
    // Layers and blobs stored before the image records name them must not look unused to
    // the store's clean-up (system check --repair, system prune).
    let _adding = store.hold_additions()?;
    let progress = Progress::new(quiet);
    let reading = progress.spinner("Reading and checking the archive");
    let file = seekable_tar(input, &store.root().join("tmp"))?;
    let archive = Archive::index(file)?;
    let plan = read::plan(&archive, &PlatformSpec::host())?;
    if !quiet {
        for warning in &plan.warnings {
            crate::error::warn(&warning.to_string());
        }
    }
    // Every blob digest the archive states, before anything is extracted: a blob that lies
    // never reaches the store.
    let mut checked = HashSet::new();
    for image in &plan.images {
        for layer in &image.layers {
            if checked.insert(layer.entry.clone()) {
                verify_blob(&archive, layer)?;
            }
        }
    }
    reading.clear();
    let mut added: Vec<Digest> = Vec::new();
    let result = import_and_record(
        store,
        &archive,
        plan.format,
        &plan.images,
        ns,
        &progress,
        &mut added,
    );
    if result.is_err() && !added.is_empty() {
        roll_back(store, &added);
    }
    result
}

fn import_and_record(
    store: &Store,
    archive: &Archive,
    format: Format,
    images: &[PlannedImage],
    ns: Namespace,
    progress: &Progress,
    added: &mut Vec<Digest>,
) -> Result<Vec<Loaded>> {
    let mut done: HashSet<Digest> = HashSet::new();
    for image in images {
        for layer in &image.layers {
            if !done.insert(layer.diff_id.clone()) {
                continue;
            }
            let what = || format!("layer {} (`{}`)", layer.diff_id, layer.entry);
            let stream = layer_stream(archive, layer)?;
            let short = layer.diff_id.short();
            if store.has_layer(&layer.diff_id) {
                // Nothing to extract, but the archive must still hold what it says.
                let task = progress.counter(short, "Verifying");
                let (actual, _) = HashingReader::new(Counted {
                    inner: stream,
                    task: &task,
                })
                .finish()
                .inspect_err(|_| task.fail())
                .with_context(what)?;
                if actual != layer.diff_id {
                    bail!(
                        "{}: the uncompressed layer hashes to {actual}; the archive is damaged or was altered",
                        what()
                    );
                }
                task.finish("Already exists");
                continue;
            }
            let task = progress.counter(short, "Loading");
            let mut counted = Counted {
                inner: stream,
                task: &task,
            };
            let imported = store
                .import_layer(&mut counted, Some(&layer.diff_id), ns)
                .inspect_err(|_| task.fail())
                .with_context(what)?;
            added.push(layer.diff_id.clone());
            if !progress.is_quiet() {
                for warning in &imported.warnings {
                    crate::error::warn(&format!("layer {short}: {warning}"));
                }
            }
            task.finish("Loaded");
        }
    }
    let mut loaded = Vec::new();
    for image in images {
        let record = match (&image.manifest, format) {
            (Some((digest, bytes)), Format::OciArchive) => {
                add_image_keeping_manifest(store, image, digest, bytes)?
            }
            _ => store.add_local_image(&image.config, &image.names)?,
        };
        loaded.push(Loaded {
            id: record.id,
            names: image.names.clone(),
        });
    }
    Ok(loaded)
}

/// Records an image from an OCI archive with the archive's own manifest, so its manifest
/// digest survives (the store keeps manifests whose layers it holds only extracted, as after
/// a pull).
fn add_image_keeping_manifest(
    store: &Store,
    image: &PlannedImage,
    manifest_digest: &Digest,
    manifest: &[u8],
) -> Result<ImageRecord> {
    let summary = ConfigSummary::parse(&image.config)?;
    let mut size = 0;
    for diff_id in &summary.diff_ids {
        size += store
            .layer_info(diff_id)
            .with_context(|| format!("layer {diff_id}"))?
            .size;
    }
    store.put_blob(&image.config_digest, &image.config)?;
    store.put_blob(manifest_digest, manifest)?;
    let record = ImageRecord {
        id: image.config_digest.clone(),
        names: image.names.clone(),
        repo_digests: vec![],
        manifest: manifest_digest.clone(),
        layers: summary.diff_ids,
        size,
        created: summary.created,
        added: Utc::now(),
        architecture: summary.architecture,
        os: summary.os,
    };
    store.record_image(&record)?;
    Ok(record)
}

/// Removes the layers this load added that no image uses. Best effort: the load has failed
/// already, and its error is the one to report.
fn roll_back(store: &Store, added: &[Digest]) {
    let trashed = store.update_images(|index| -> Result<()> {
        for layer in index.unused_layers(added) {
            store.trash_layer(layer)?;
        }
        Ok(())
    });
    if let Err(e) = trashed.and_then(|()| Ok(store.purge_trash()?)) {
        crate::error::warn(&format!(
            "cannot remove the layers of the failed load: {e:#}"
        ));
    }
}
