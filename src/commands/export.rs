//! `nook export [-o FILE] CONTAINER` (also `nook container export`): the container's root file
//! system, flattened (its image's layers, its changes, whiteouts applied), as one plain tar,
//! as `docker export` writes it.
//!
//! The tree is merged from the store's directories without mounting anything (see
//! layer::flatten for why), so a running container is exported as it is at that moment,
//! with any storage driver. `-o FILE` is written beside its target and renamed when whole.

use std::io::{BufWriter, IsTerminal, Write};

use anyhow::{Context, Result, bail};

use super::Ctx;
use super::diff::container_root;
use super::output::{check_file_target, write_file_atomically};
use crate::cli::ExportArgs;
use crate::layer::changes::Storage;
use crate::layer::flatten::{self, Tree};
use crate::runtime::userns;

pub fn run(args: ExportArgs, ctx: &Ctx) -> Result<i32> {
    match &args.output {
        None if std::io::stdout().is_terminal() => bail!(
            "refusing to write a tar archive to a terminal: use -o FILE or redirect standard output"
        ),
        None => {}
        Some(path) => check_file_target(path)?,
    }
    // The container's files belong to subordinate ids, in directories that may be mode 0700:
    // only root of the user namespace reads them all, and sees their owners as the
    // container does. Before any thread exists.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let root = container_root(&store, &record)?;
    let dirs: Vec<_>;
    let tree = if root.storage == Storage::FullCopy && root.copied {
        Tree::Copy(&root.upper)
    } else {
        // An overlay container, or a vfs one that never started (its root is the image's).
        dirs = if root.storage == Storage::OverlayUpper {
            std::iter::once(root.upper.clone())
                .chain(root.layers.iter().rev().cloned())
                .collect()
        } else {
            root.layers.iter().rev().cloned().collect()
        };
        Tree::Layers(&dirs)
    };
    let what = || format!("cannot export container {}", record.name);
    match &args.output {
        None => {
            let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let (mut out, _) = flatten::write_tree(out, tree).with_context(what)?;
            out.flush()
                .context("cannot write the archive to standard output")?;
        }
        Some(path) => write_file_atomically(path, |file| {
            let out = BufWriter::with_capacity(1 << 20, file);
            let (out, _) = flatten::write_tree(out, tree)?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write `{}`", path.display()))
        })
        .with_context(what)?,
    }
    Ok(0)
}
