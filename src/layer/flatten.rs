//! A container's whole root file system as one plain tar stream (for `export`): the image's
//! layers and the container's changes merged as the container sees them, whiteouts applied,
//! no overlay bookkeeping left.
//!
//! The tree is merged here, in user space, from the directories the store already has (the
//! container's upper directory, then its image's layers, top first; or a vfs copy read as it
//! is), rather than by mounting a read-only overlay of them and walking that:
//!
//! - **It works whatever the container is doing.** A second overlay whose lower layers include
//!   the upper directory of a running container's overlay is, in the kernel's words, undefined
//!   behaviour; reading the directories themselves is what `diff` and `commit` already do.
//! - **One reader for every form the store holds.** Layers extracted where the kernel refused
//!   0:0 devices carry whiteouts as `.wh.NAME` files, which only fuse-overlayfs reads; an upper
//!   directory written by fuse-overlayfs marks opaque directories its own way. The kernel
//!   overlay would show those as files; here both forms are read, by the same rules as
//!   [`super::changes`] (no `redirect_dir`: nook mounts with `userxattr`, which turns it off).
//! - **No mount, no helper, no `/dev/fuse`**: nothing to fall back from, nothing to clean up
//!   when export is killed, and the same code for overlay, fuse-overlayfs and vfs containers.
//!
//! As the overlay does: the topmost directory that has a name decides what it is; a whiteout
//! (0:0 character device or `.wh.NAME`) hides it below; a directory merges with the same
//! directory in the layers under it until one of them is opaque or a layer has something
//! else by that name. A directory's owner, mode and xattrs are its topmost copy's. Hard links
//! are kept among the names that are visible (the first one written carries the content).
//! Mount points nook made in the container (`/proc`, `/etc/hosts` …) are in its upper
//! directory as empty directories or files; what is mounted on them never is.
//!
//! Entries are written parents first, names in byte order, and the root directory itself is
//! not an entry, as in `docker export`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::pack::{NodeWriter, PackError, PackReport};
use super::{OPAQUE_MARKER, WHITEOUT_PREFIX, is_opaque_dir, is_whiteout_device};

/// The kernel overlay's (privileged, and `userxattr` in a user namespace) and
/// fuse-overlayfs's own opaque markers.
const OPAQUE_XATTRS: &[&str] = &[
    "user.overlay.opaque",
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

#[derive(Debug, thiserror::Error)]
pub enum FlattenError {
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Write(#[from] PackError),
}

type Result<T> = std::result::Result<T, FlattenError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FlattenError + 'a {
    move |source| FlattenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Where a root file system is read from.
#[derive(Debug, Clone, Copy)]
pub enum Tree<'a> {
    /// Directories in overlay form, TOP first: a container's upper directory, then its image's
    /// layers (or only the layers, for an image).
    Layers(&'a [PathBuf]),
    /// One complete tree (a vfs container's copy): everything in it is the file system, a
    /// `.wh.` name included.
    Copy(&'a Path),
}

/// Writes the merged file system of `tree` to `out` as a tar stream.
pub fn write_tree<W: Write>(out: W, tree: Tree<'_>) -> Result<(W, PackReport)> {
    let (top, overlay) = match tree {
        Tree::Layers(dirs) => (dirs.to_vec(), true),
        Tree::Copy(dir) => (vec![dir.to_path_buf()], false),
    };
    let mut walk = Walk {
        writer: NodeWriter::new(out),
        overlay,
    };
    walk.dir(Path::new(""), &top)?;
    Ok(walk.writer.finish()?)
}

struct Walk<W: Write> {
    writer: NodeWriter<W>,
    /// Whether whiteouts and opaque marks mean anything (not in a vfs copy).
    overlay: bool,
}

/// What the topmost layer that has a name holds by that name.
struct Node {
    host: PathBuf,
    meta: fs::Metadata,
    /// For a directory: the same directory in lower layers, top first, while they merge.
    below: Vec<PathBuf>,
    /// A lower layer had a whiteout or a non-directory by this name: layers further down no
    /// longer merge into the directory.
    closed: bool,
}

impl<W: Write> Walk<W> {
    /// Writes the entries of directory `rel`, merged from `sources` (its copies, top first).
    fn dir(&mut self, rel: &Path, sources: &[PathBuf]) -> Result<()> {
        // Each name as the topmost layer that mentions it decided: `None` for a whiteout.
        let mut decided: BTreeMap<OsString, Option<Node>> = BTreeMap::new();
        for source in sources {
            // A running container may remove a directory as it is read: gone is empty.
            let listed = match fs::read_dir(source) {
                Ok(listed) => listed,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read the directory", source)(e)),
            };
            let mut present = Vec::new();
            let mut whiteouts = Vec::new();
            for entry in listed {
                let name = entry
                    .map_err(io_err("read the directory", source))?
                    .file_name();
                let bytes = name.as_bytes();
                if self.overlay && bytes == OPAQUE_MARKER {
                    continue;
                }
                match bytes.strip_prefix(WHITEOUT_PREFIX) {
                    // `.wh..wh.*` is aufs bookkeeping, never a whiteout of a visible name.
                    Some(hidden) if self.overlay && !hidden.starts_with(WHITEOUT_PREFIX) => {
                        whiteouts.push(OsStr::from_bytes(hidden).to_os_string());
                    }
                    Some(_) if self.overlay => {}
                    _ => present.push(name),
                }
            }
            // Within one layer an entry wins over a whiteout of its own name (an entry that
            // came after the whiteout in the layer's tar), so entries are taken first.
            for name in present {
                let host = source.join(&name);
                let meta = match fs::symlink_metadata(&host) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err("look up", &host)(e)),
                };
                let whiteout = self.overlay && is_whiteout_device(&meta);
                match decided.get_mut(&name) {
                    None if whiteout => {
                        decided.insert(name, None);
                    }
                    None => {
                        decided.insert(
                            name,
                            Some(Node {
                                host,
                                meta,
                                below: Vec::new(),
                                closed: false,
                            }),
                        );
                    }
                    Some(Some(Node {
                        meta: top,
                        below,
                        closed,
                        ..
                    })) if top.is_dir() && !*closed => {
                        if meta.is_dir() {
                            below.push(host);
                        } else {
                            *closed = true;
                        }
                    }
                    Some(_) => {}
                }
            }
            for name in whiteouts {
                match decided.get_mut(&name) {
                    None => {
                        decided.insert(name, None);
                    }
                    Some(Some(node)) => node.closed = true,
                    Some(None) => {}
                }
            }
            if self.overlay && is_opaque(source)? {
                break;
            }
        }
        for (name, node) in decided {
            let Some(Node {
                host, meta, below, ..
            }) = node
            else {
                continue;
            };
            let child = rel.join(&name);
            let shown = Path::new("/").join(&child);
            if !self.writer.node(&child, &host, &meta, &shown)? || !meta.is_dir() {
                continue;
            }
            let mut sources = vec![host];
            sources.extend(below);
            self.dir(&child, &sources)?;
        }
        Ok(())
    }
}

fn is_opaque(dir: &Path) -> Result<bool> {
    match is_opaque_dir(dir, OPAQUE_XATTRS) {
        Ok(opaque) => Ok(opaque),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("read the xattrs of", dir)(e)),
    }
}

#[cfg(test)]
mod tests;
