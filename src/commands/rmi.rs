//! `nook rmi`: untag, and delete an image when its last name goes.

use anyhow::{Context, Result, bail};

use super::{Ctx, familiar_repo_tag, find_image, print_out};
use crate::cli::RmiArgs;
use crate::image::digest::Digest;
use crate::runtime::userns;

pub fn run(args: RmiArgs, ctx: &Ctx) -> Result<i32> {
    let config = ctx.registries()?;
    // Layer files belong to subordinate ids: only root of the user namespace may delete them.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    // Waits for commands that are storing layers or making containers (they hold it shared):
    // a layer a commit has just stored, or the image a `run` has just found, must not vanish
    // before their record names it.
    let _collecting = store.lock_collection()?;
    let mut failed = 0;
    for name in &args.images {
        match remove_one(&store, &config, name, args.force) {
            Ok(lines) => print_out(&lines)?,
            Err(e) => {
                crate::error::eprint_line(&crate::error::render(
                    &e.context(format!("cannot remove image {name}")),
                ));
                failed += 1;
            }
        }
    }
    // The files of removed layers go last, outside any lock: the records are already gone.
    store
        .purge_trash()
        .context("cannot delete removed layers")?;
    Ok(if failed > 0 {
        crate::error::EXIT_NOOK_ERROR
    } else {
        0
    })
}

fn remove_one(
    store: &crate::store::Store,
    config: &crate::config::RegistriesConfig,
    name: &str,
    force: bool,
) -> Result<String> {
    let mut out = String::new();
    let removed: Option<(Vec<Digest>, Vec<Digest>, Digest)> = store.update_images(|index| -> Result<_> {
        let (image, named) = find_image(index, name, config)?;
        let pos = index.images.iter().position(|i| i.id == image.id).expect("found above");
        if let Some(full) = named
            && index.images[pos].names.len() > 1
        {
            // One of several names: untag only.
            index.images[pos].names.retain(|n| n != &full);
            let (repo, tag) = familiar_repo_tag(&full);
            out.push_str(&format!("Untagged: {repo}:{tag}\n"));
            return Ok(None);
        }
        if image.names.len() > 1 && !force {
            bail!(
                "image {} is referenced in multiple repositories ({}); remove it by name, or use -f to remove every name",
                image.id.short(),
                image.names.iter().map(|n| { let (r, t) = familiar_repo_tag(n); format!("{r}:{t}") }).collect::<Vec<_>>().join(", ")
            );
        }
        // nook's rule, even with -f: an image a container uses (running or not) stays.
        if let Some(c) = store.containers_using_image(&image.id)?.first() {
            bail!(
                "image is in use by container {} ({}): remove the container first",
                &c.id[..12],
                c.name
            );
        }
        let image = index.images.remove(pos);
        for n in &image.names {
            let (repo, tag) = familiar_repo_tag(n);
            out.push_str(&format!("Untagged: {repo}:{tag}\n"));
        }
        for d in &image.repo_digests {
            let (repo, digest) = super::familiar_digest(d);
            out.push_str(&format!("Untagged: {repo}@{digest}\n"));
        }
        let unused: Vec<Digest> = index.unused_layers(&image.layers).into_iter().cloned().collect();
        for layer in &unused {
            store.trash_layer(layer)?;
        }
        out.push_str(&format!("Deleted: {}\n", image.id));
        // The manifests `push` kept (named by repo digests) go with the image.
        let mut manifests = vec![image.manifest.clone()];
        manifests.extend(
            image
                .repo_digests
                .iter()
                .filter_map(|d| d.split_once('@')?.1.parse::<Digest>().ok())
                .filter(|d| d != &image.manifest),
        );
        Ok(Some((unused, manifests, image.id.clone())))
    })?;
    if let Some((_, manifests, config_blob)) = removed {
        let index = store.images()?;
        for blob in manifests.into_iter().chain([config_blob]) {
            if !index.uses_blob(&blob) {
                store.remove_blob(&blob)?;
            }
        }
    }
    Ok(out)
}
