//! `nook save`: images → docker-archive, oci-archive or an OCI layout directory.
//!
//! Layer tars are rebuilt from the store byte for byte (`Store::layer_tar`) and checked
//! against their diff ids as they are written. A file or directory given with `-o` is
//! written under a temporary name beside it and renamed when complete, so an interrupted
//! save never leaves a half archive under the name asked for.

use std::fs;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::output::{Cleanup, check_file_target, temporary_beside, write_file_atomically};
use super::{Ctx, find_image};
use crate::cli::{SaveArgs, SaveFormat};
use crate::image::archive::write::{
    DirSink, LayerSource, SaveImage, Sink, TarSink, write_docker_archive, write_oci_layout,
};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::runtime::userns;
use crate::store::Store;

pub fn run(args: SaveArgs, ctx: &Ctx) -> Result<i32> {
    match (&args.output, args.format) {
        (None, SaveFormat::OciDir) => {
            bail!("--format oci-dir writes a directory: name it with -o DIR")
        }
        (None, _) if std::io::stdout().is_terminal() => bail!(
            "refusing to write an image archive to a terminal: use -o FILE or redirect standard output"
        ),
        (Some(path), SaveFormat::DockerArchive | SaveFormat::OciArchive) => {
            check_file_target(path)?
        }
        _ => {}
    }
    let registries = ctx.registries()?;
    // Layer files belong to subordinate ids (and some are unreadable to their owner alone):
    // only root of the user namespace can read them all. Before any thread exists.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let images = collect(&store, &registries, &args.images)?;
    let progress = super::progress::Progress::new(args.quiet);
    let layers = StoreLayers(&store, &progress);
    let write = |sink: &mut dyn Sink| -> Result<()> {
        match args.format {
            SaveFormat::DockerArchive => write_docker_archive(sink, &images, &layers)?,
            SaveFormat::OciArchive | SaveFormat::OciDir => {
                write_oci_layout(sink, &images, &layers)?
            }
        }
        Ok(())
    };
    match (&args.output, args.format) {
        (None, _) => {
            let stdout = std::io::stdout().lock();
            let mut sink = TarSink::new(BufWriter::with_capacity(1 << 20, stdout));
            write(&mut sink)?;
            sink.finish()?
                .flush()
                .context("cannot write the archive to standard output")?;
        }
        (Some(dir), SaveFormat::OciDir) => {
            save_dir(dir, write).with_context(|| format!("cannot save to `{}`", dir.display()))?
        }
        (Some(file), _) => save_file(file, write)
            .with_context(|| format!("cannot save to `{}`", file.display()))?,
    }
    Ok(0)
}

/// The images named, each once; an image named twice keeps both names.
fn collect(
    store: &Store,
    registries: &crate::config::RegistriesConfig,
    inputs: &[String],
) -> Result<Vec<SaveImage>> {
    let index = store.images()?;
    let mut images: Vec<SaveImage> = Vec::new();
    for input in inputs {
        let (record, name) = find_image(&index, input, registries)
            .with_context(|| format!("cannot save {input}"))?;
        let name = name.map(|n| Reference::parse(&n)).transpose()?;
        if let Some(existing) = images.iter_mut().find(|i| i.config_digest == record.id) {
            if let Some(name) = name
                && !existing.names.contains(&name)
            {
                existing.names.push(name);
            }
            continue;
        }
        let config = store
            .read_blob(&record.id)
            .with_context(|| format!("cannot save {input}: reading its config"))?;
        let platform = (!record.architecture.is_empty() && !record.os.is_empty())
            .then(|| (record.architecture.clone(), record.os.clone()));
        images.push(SaveImage {
            config,
            config_digest: record.id.clone(),
            diff_ids: record.layers.clone(),
            names: name.into_iter().collect(),
            // Written unchanged only if it lists the uncompressed layers the archive holds.
            stored_manifest: store.read_blob(&record.manifest).ok(),
            platform,
        });
    }
    Ok(images)
}

struct StoreLayers<'a>(&'a Store, &'a super::progress::Progress);

impl LayerSource for StoreLayers<'_> {
    fn open(
        &self,
        diff_id: &Digest,
    ) -> std::result::Result<(Box<dyn Read + '_>, u64), Box<dyn std::error::Error + Send + Sync>>
    {
        let tar = self.0.layer_tar(diff_id)?;
        let size = tar.size();
        let tracked = self.1.track(tar, diff_id.short(), size, "Saving", "Saved");
        Ok((Box::new(tracked), size))
    }
}

fn save_file(path: &Path, write: impl FnOnce(&mut dyn Sink) -> Result<()>) -> Result<()> {
    write_file_atomically(path, |file| {
        let mut sink = TarSink::new(BufWriter::with_capacity(1 << 20, file));
        write(&mut sink)?;
        sink.finish()?
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write `{}`", path.display()))
    })
}

/// An OCI layout in a new directory, or in place of an empty one (rename replaces an empty
/// directory atomically). A layout that exists already is not added to.
fn save_dir(path: &Path, write: impl FnOnce(&mut dyn Sink) -> Result<()>) -> Result<()> {
    if let Ok(mut entries) = fs::read_dir(path)
        && entries.next().is_some()
    {
        bail!("the directory exists and is not empty; give a new or empty directory");
    }
    let tmp = temporary_beside(path)?;
    fs::create_dir(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let mut cleanup = Cleanup {
        path: Some(tmp.clone()),
        dir: true,
    };
    write(&mut DirSink::new(&tmp))?;
    crate::sys::syncfs(&tmp).with_context(|| format!("cannot flush `{}`", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot rename `{}`", tmp.display()))?;
    cleanup.path = None;
    Ok(())
}
