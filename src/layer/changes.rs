//! What a container changed in its root file system, as `docker diff` reports it: each path
//! added (A), changed (C) or deleted (D) relative to the image.
//!
//! Two shapes of container storage are compared against the image's layers (overlay form,
//! BOTTOM first as an image record lists them):
//!
//! - **An overlay upper directory** (`overlay`, `fuse-overlayfs`): it holds only what the
//!   container wrote, so every entry in it is a change. As in moby's `OverlayChanges`, an
//!   entry the image also has is C and one it lacks is A, and a whiteout is D. An opaque
//!   directory (the container deleted the image's and made it again) is C, and whatever the
//!   image has under it that the upper directory does not is D: what Docker prints when it
//!   compares the mounted trees (`ChangesDirs`, its "naive diff", the default on kernels with
//!   overlay's `redirect_dir`); its overlay-native walk would print the directory as D and
//!   nothing for the entries that went with it, which says less.
//! - **A full copy** (`vfs`): every entry is compared with the image's (type, mode, owner,
//!   size, modification time, link target); what differs is C, what only the copy has is A,
//!   what only the image has is D.
//!
//! Either way a directory the image also has is C when something under it changed or its
//! own mode, owner or time differ, so writing `/etc/passwd` shows `C /etc` and
//! `C /etc/passwd`. Whiteouts and opaque directories are read in both forms the store and
//! the overlay drivers write: a 0:0 character device or an empty `.wh.NAME` file, and the
//! `*.overlay.opaque`/`user.fuseoverlayfs.opaque` xattr or an empty `.wh..wh..opq` file.
//!
//! Only metadata is read (lstat, readdir, getxattr), never file contents.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::{OPAQUE_MARKER, WHITEOUT_PREFIX};

/// The kernel overlay's (privileged, and `userxattr` in a user namespace) and
/// fuse-overlayfs's own opaque markers.
const OPAQUE_XATTRS: &[&str] = &[
    "user.overlay.opaque",
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

/// Docker's `ChangeType` numbers, as its API returns them in `Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute inside the container: `/etc/passwd`.
    pub path: PathBuf,
    pub kind: ChangeKind,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot {op} `{path}`")]
pub struct ChangesError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

type Result<T> = std::result::Result<T, ChangesError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ChangesError + 'a {
    move |source| ChangesError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How the container's storage holds its root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Only what the container wrote, with whiteouts (overlay, fuse-overlayfs).
    OverlayUpper,
    /// A complete copy of the image that the container changed in place (vfs).
    FullCopy,
}

/// What `container` (upper directory or full copy) changed relative to the image whose
/// layer directories are `layers_bottom_first`, sorted as `docker diff` prints them (parents
/// before their entries). `nook_mount_points` are absolute paths nook itself creates as
/// mount points when the image lacks them (`/proc`, `/etc/hosts` …): Docker keeps those in
/// a hidden init layer, so they are not the container's changes.
pub fn changes(
    container: &Path,
    storage: Storage,
    layers_bottom_first: &[PathBuf],
    nook_mount_points: &[&str],
) -> Result<Vec<Change>> {
    let walk = Walk {
        storage,
        image: ImageTree {
            layers_top_first: layers_bottom_first.iter().rev().cloned().collect(),
        },
        mount_points: nook_mount_points
            .iter()
            .map(|p| Path::new(p).strip_prefix("/").unwrap_or(Path::new(p)))
            .map(Path::to_path_buf)
            .collect(),
    };
    let mut out = Vec::new();
    walk.dir(
        container,
        Path::new(""),
        storage == Storage::FullCopy,
        false,
        &mut out,
    )?;
    // Path's order compares component by component: the order of a tree walk.
    out.sort();
    Ok(out)
}

struct Walk {
    storage: Storage,
    image: ImageTree,
    /// Relative to the root.
    mount_points: Vec<PathBuf>,
}

impl Walk {
    /// Records the changes under `rel` (whose container directory is `dir`); returns whether
    /// there were any. `image_hidden`: the image's entries under `rel` are not visible in the
    /// container unless `dir` has them too (an opaque directory, or a full copy).
    /// `new_dir`: the image has no `rel` at all, so nothing under it needs looking up there
    /// (a container that wrote 10,000 files into a new directory costs 10,000 fewer lookups).
    fn dir(
        &self,
        dir: &Path,
        rel: &Path,
        image_hidden: bool,
        new_dir: bool,
        out: &mut Vec<Change>,
    ) -> Result<bool> {
        // A running container may remove what was just listed: what is gone by the time it
        // is looked at is read as never written.
        let listed = match fs::read_dir(dir) {
            Ok(listed) => listed,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.as_os_str().is_empty() => {
                return Ok(false);
            }
            Err(e) => return Err(io_err("read the directory", dir)(e)),
        };
        let mut entries: Vec<OsString> = listed
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(io_err("read the directory", dir))?;
        entries.sort();
        // Names the container has, or deleted: the image's other entries are left alone.
        let mut accounted = BTreeSet::new();
        let mut changed = false;
        for name in entries {
            let bytes = name.as_bytes();
            if bytes == OPAQUE_MARKER {
                continue;
            }
            if let Some(hidden) = bytes.strip_prefix(WHITEOUT_PREFIX) {
                let hidden = OsStr::from_bytes(hidden).to_os_string();
                changed |= self.deleted(&rel.join(&hidden), out)?;
                accounted.insert(hidden);
                continue;
            }
            accounted.insert(name.clone());
            let path = dir.join(&name);
            let child = rel.join(&name);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("look up", &path)(e)),
            };
            if super::is_whiteout_device(&meta) {
                changed |= self.deleted(&child, out)?;
                continue;
            }
            let in_image = if new_dir {
                None
            } else {
                self.image.lookup(&child)?
            };
            let made_by_nook = self.is_mount_point_or_parent(&child);
            if made_by_nook && in_image.is_none() && !meta.is_dir() {
                continue;
            }
            let kind = if meta.is_dir() {
                let opaque = self.storage == Storage::OverlayUpper && is_opaque(&path)?;
                let below = self.dir(
                    &path,
                    &child,
                    image_hidden || opaque,
                    in_image.is_none(),
                    out,
                )?;
                match &in_image {
                    None if made_by_nook && !below => None,
                    None => Some(ChangeKind::Added),
                    Some((image_path, image_meta)) => {
                        let differs = !image_meta.is_dir()
                            || opaque
                            || attributes_differ(&meta, image_meta)
                            // Creating nook's mount points touched the directory's time.
                            || (!made_by_nook && time_differs(&meta, image_meta))
                            || (self.storage == Storage::FullCopy
                                && xattrs_differ(&path, image_path)?);
                        (below || differs).then_some(ChangeKind::Modified)
                    }
                }
            } else {
                match &in_image {
                    None => Some(ChangeKind::Added),
                    // Everything in an upper directory was written (or copied up) by the container.
                    Some(_) if self.storage == Storage::OverlayUpper => Some(ChangeKind::Modified),
                    Some((image_path, image_meta)) => {
                        node_differs(&path, &meta, image_path, image_meta)?
                            .then_some(ChangeKind::Modified)
                    }
                }
            };
            if let Some(kind) = kind {
                out.push(Change {
                    path: Path::new("/").join(&child),
                    kind,
                });
                changed = true;
            }
        }
        if image_hidden && !new_dir {
            for name in self.image.children(rel)? {
                if !accounted.contains(&name) {
                    changed |= self.deleted(&rel.join(name), out)?;
                }
            }
        }
        Ok(changed)
    }

    /// Records `rel` as deleted if the image has it (a whiteout of nothing changes nothing).
    fn deleted(&self, rel: &Path, out: &mut Vec<Change>) -> Result<bool> {
        if self.image.lookup(rel)?.is_none() {
            return Ok(false);
        }
        out.push(Change {
            path: Path::new("/").join(rel),
            kind: ChangeKind::Deleted,
        });
        Ok(true)
    }

    fn is_mount_point_or_parent(&self, rel: &Path) -> bool {
        self.mount_points.iter().any(|m| m.starts_with(rel))
    }
}

/// The image's merged view, read from its layer directories without copying them.
struct ImageTree {
    layers_top_first: Vec<PathBuf>,
}

/// What one layer says about a path.
enum InLayer {
    /// Nothing; `hides_below`: an ancestor is opaque in this layer, so lower layers do not count.
    Silent {
        hides_below: bool,
    },
    /// A whiteout of the path or of an ancestor, or an ancestor that is not a directory.
    Deleted,
    Present(PathBuf, fs::Metadata),
}

impl ImageTree {
    /// The path (in its topmost layer) and metadata of `rel` in the image, if it has it.
    fn lookup(&self, rel: &Path) -> Result<Option<(PathBuf, fs::Metadata)>> {
        for layer in &self.layers_top_first {
            match in_layer(layer, rel)? {
                InLayer::Present(path, meta) => return Ok(Some((path, meta))),
                InLayer::Deleted | InLayer::Silent { hides_below: true } => return Ok(None),
                InLayer::Silent { hides_below: false } => {}
            }
        }
        Ok(None)
    }

    /// The names in the image's directory `rel`, merged over the layers.
    fn children(&self, rel: &Path) -> Result<BTreeSet<OsString>> {
        // Names some higher layer already decided on, present or deleted.
        let mut decided = BTreeSet::new();
        let mut present = BTreeSet::new();
        for layer in &self.layers_top_first {
            let (dir, meta) = match in_layer(layer, rel)? {
                InLayer::Present(dir, meta) => (dir, meta),
                InLayer::Silent { hides_below: false } => continue,
                InLayer::Silent { hides_below: true } | InLayer::Deleted => break,
            };
            if !meta.is_dir() {
                break;
            }
            for entry in fs::read_dir(&dir).map_err(io_err("read the directory", &dir))? {
                let name = entry
                    .map_err(io_err("read the directory", &dir))?
                    .file_name();
                let bytes = name.as_bytes();
                if bytes == OPAQUE_MARKER {
                    continue;
                }
                if let Some(hidden) = bytes.strip_prefix(WHITEOUT_PREFIX) {
                    decided.insert(OsStr::from_bytes(hidden).to_os_string());
                    continue;
                }
                let path = dir.join(&name);
                let meta = fs::symlink_metadata(&path).map_err(io_err("look up", &path))?;
                if decided.insert(name.clone()) && !super::is_whiteout_device(&meta) {
                    present.insert(name);
                }
            }
            if is_opaque(&dir)? {
                break;
            }
        }
        Ok(present)
    }
}

fn in_layer(layer: &Path, rel: &Path) -> Result<InLayer> {
    let names: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut dir = layer.to_path_buf();
    let mut hides_below = false;
    for (i, name) in names.iter().enumerate() {
        let mut whiteout = WHITEOUT_PREFIX.to_vec();
        whiteout.extend_from_slice(name.as_bytes());
        if exists(&dir.join(OsStr::from_bytes(&whiteout)))? {
            return Ok(InLayer::Deleted);
        }
        let path = dir.join(name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(InLayer::Silent { hides_below });
            }
            Err(e) => return Err(io_err("look up", &path)(e)),
        };
        if super::is_whiteout_device(&meta) {
            return Ok(InLayer::Deleted);
        }
        if i + 1 == names.len() {
            return Ok(InLayer::Present(path, meta));
        }
        if !meta.is_dir() {
            return Ok(InLayer::Deleted);
        }
        hides_below |= is_opaque(&path)?;
        dir = path;
    }
    // The root itself.
    let meta = fs::symlink_metadata(layer).map_err(io_err("look up", layer))?;
    Ok(InLayer::Present(layer.to_path_buf(), meta))
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("look up", path)(e)),
    }
}

fn is_opaque(dir: &Path) -> Result<bool> {
    super::is_opaque_dir(dir, OPAQUE_XATTRS).map_err(io_err("read the xattrs of", dir))
}

/// Type, permission bits and owner.
fn attributes_differ(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid()
}

fn time_differs(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec()
}

/// For a full copy: whether a non-directory differs from the image's in anything but its
/// content (reading every file would make `diff` as slow as a copy; a write changes the
/// time, and a tool that puts the time back also keeps the size only by chance).
fn node_differs(
    path: &Path,
    meta: &fs::Metadata,
    image_path: &Path,
    image_meta: &fs::Metadata,
) -> Result<bool> {
    if attributes_differ(meta, image_meta)
        || time_differs(meta, image_meta)
        || meta.size() != image_meta.size()
        || meta.rdev() != image_meta.rdev()
    {
        return Ok(true);
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(io_err("read the symlink", path))?;
        let image_target =
            fs::read_link(image_path).map_err(io_err("read the symlink", image_path))?;
        if target != image_target {
            return Ok(true);
        }
    }
    xattrs_differ(path, image_path)
}

/// Whether the user-visible xattrs differ (overlay bookkeeping is not the container's).
fn xattrs_differ(a: &Path, b: &Path) -> Result<bool> {
    Ok(visible_xattrs(a)? != visible_xattrs(b)?)
}

fn visible_xattrs(path: &Path) -> Result<Vec<(OsString, Option<Vec<u8>>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list the xattrs of", path)(e)),
    };
    let mut out = Vec::new();
    for name in names {
        let text = name.to_string_lossy();
        if text.starts_with("user.overlay.")
            || text.starts_with("user.fuseoverlayfs.")
            || text.starts_with("trusted.")
        {
            continue;
        }
        let value = xattr::get(path, &name).map_err(io_err("read the xattrs of", path))?;
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
