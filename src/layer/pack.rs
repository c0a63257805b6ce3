//! Writing a container's changes as a layer tar stream (for `commit`): what [`super::changes`]
//! lists, read from the container's upper directory (or vfs copy), in the form every OCI tool
//! reads: deletions as `.wh.NAME` entries, opaque directories with a `.wh..wh..opq` entry,
//! owners as the container sees them (this runs as root of nook's user namespace, where the
//! store's ids are the container's), modes, modification times, symlinks, hard links among
//! the changed files, and extended attributes as PAX `SCHILY.xattr.` records — except the
//! overlay drivers' own bookkeeping. [`NodeWriter`], the part that writes one file as tar
//! entries, also writes `export`'s flattened trees (see [`super::flatten`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::changes::{Change, ChangeKind};
use super::{OPAQUE_MARKER, WHITEOUT_PREFIX, is_opaque_dir, is_whiteout_device};

/// Extended attributes that are the overlay drivers' own, never the image's.
const DRIVER_XATTR_PREFIXES: &[&str] =
    &["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."];
/// Where the opaque marks may be.
const OPAQUE_XATTRS: &[&str] = &[
    "user.overlay.opaque",
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

#[derive(Debug, thiserror::Error)]
#[error("cannot {op} `{path}`")]
pub struct PackError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PackError + 'a {
    move |source| PackError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What was written, for the commit's report.
#[derive(Debug, Default)]
pub struct PackReport {
    pub entries: u64,
    pub bytes: u64,
}

/// Writes the layer for `changes` (sorted by path, as [`super::changes::changes`] returns
/// them) from `root`, the container's upper directory or copy, to `out`.
pub fn write_layer<W: Write>(
    out: W,
    root: &Path,
    changes: &[Change],
) -> Result<(W, PackReport), PackError> {
    let mut writer = NodeWriter::new(out);
    for change in changes {
        let rel = change.path.strip_prefix("/").unwrap_or(&change.path);
        if rel.as_os_str().is_empty() {
            continue;
        }
        if change.kind == ChangeKind::Deleted {
            let name = rel.file_name().unwrap_or_default();
            let mut whiteout = WHITEOUT_PREFIX.to_vec();
            whiteout.extend_from_slice(name.as_bytes());
            writer.marker(
                &rel.with_file_name(OsString::from_vec(whiteout)),
                &change.path,
            )?;
            continue;
        }
        let host = root.join(rel);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            // Gone since the listing (a running container): nothing to record.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err("inspect", &change.path)(e)),
        };
        if !writer.node(rel, &host, &meta, &change.path)? {
            continue;
        }
        if meta.is_dir()
            && is_opaque_dir(&host, OPAQUE_XATTRS).map_err(err("inspect", &change.path))?
        {
            writer.marker(
                &rel.join(std::ffi::OsStr::from_bytes(OPAQUE_MARKER)),
                &change.path,
            )?;
        }
    }
    writer.finish()
}

/// Writes file-system nodes as tar entries, one call each, in the form every OCI tool reads:
/// owners as this process sees them, modes, modification times, symlinks, hard links among
/// the nodes written (the first name written carries the content), device nodes, and
/// extended attributes as PAX `SCHILY.xattr.` records without the overlay drivers' own.
/// Shared by commit's layers and export's flattened tree, so both write files alike.
pub struct NodeWriter<W: Write> {
    builder: tar::Builder<W>,
    /// First path written for each (device, inode) with more than one link.
    linked: HashMap<(u64, u64), PathBuf>,
    report: PackReport,
}

impl<W: Write> NodeWriter<W> {
    pub fn new(out: W) -> NodeWriter<W> {
        NodeWriter {
            builder: tar::Builder::new(out),
            linked: HashMap::new(),
            report: PackReport::default(),
        }
    }

    /// An empty, root-owned regular file entry: a whiteout (`.wh.NAME`) or an opaque marker.
    pub fn marker(&mut self, rel: &Path, shown: &Path) -> Result<(), PackError> {
        let mut header = plain_header(tar::EntryType::Regular, 0o644);
        self.builder
            .append_data(&mut header, rel, io::empty())
            .map_err(err("write the tar entry for", shown))?;
        self.report.entries += 1;
        Ok(())
    }

    /// Writes the node at `host` (whose `lstat` is `meta`) as entry `rel`; `shown` names it in
    /// errors (its path in the container). Returns whether it was written: a whiteout device
    /// or a socket is not.
    pub fn node(
        &mut self,
        rel: &Path,
        host: &Path,
        meta: &fs::Metadata,
        shown: &Path,
    ) -> Result<bool, PackError> {
        let file_type = meta.file_type();
        if is_whiteout_device(meta) || file_type.is_socket() {
            return Ok(false);
        }
        let write_err = || err("write the tar entry for", shown);
        let builder = &mut self.builder;
        for (name, value) in xattrs(host).map_err(err("read the extended attributes of", shown))? {
            builder
                .append_pax_extensions([(
                    format!("SCHILY.xattr.{name}").as_str(),
                    value.as_slice(),
                )])
                .map_err(write_err())?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid().into());
        header.set_gid(meta.gid().into());
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            let mut path = rel.as_os_str().to_os_string();
            path.push("/");
            builder
                .append_data(&mut header, Path::new(&path), io::empty())
                .map_err(write_err())?;
        } else if file_type.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            let target = fs::read_link(host).map_err(err("read the link", shown))?;
            builder
                .append_link(&mut header, rel, &target)
                .map_err(write_err())?;
        } else if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.linked.get(&key) {
                    header.set_entry_type(tar::EntryType::Link);
                    builder
                        .append_link(&mut header, rel, first)
                        .map_err(write_err())?;
                    self.report.entries += 1;
                    return Ok(true);
                }
                self.linked.insert(key, rel.to_path_buf());
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(host)
                .map_err(err("open", shown))?;
            builder
                .append_data(&mut header, rel, Exactly::new(file, meta.len()))
                .map_err(err("read", shown))?;
            self.report.bytes += meta.len();
        } else {
            header.set_entry_type(if file_type.is_fifo() {
                tar::EntryType::Fifo
            } else if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            if !file_type.is_fifo() {
                let rdev = meta.rdev();
                header
                    .set_device_major(libc::major(rdev))
                    .map_err(write_err())?;
                header
                    .set_device_minor(libc::minor(rdev))
                    .map_err(write_err())?;
            }
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(write_err())?;
        }
        self.report.entries += 1;
        Ok(true)
    }

    /// Writes the end-of-archive blocks; the output and what was written.
    pub fn finish(self) -> Result<(W, PackReport), PackError> {
        let out = self
            .builder
            .into_inner()
            .map_err(err("finish the tar stream", Path::new("/")))?;
        Ok((out, self.report))
    }
}

fn plain_header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// The file's extended attributes, without the overlay drivers' own, sorted by name.
fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if DRIVER_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        match xattr::get(path, name) {
            Ok(Some(value)) => out.push((name.to_string(), value)),
            Ok(None) => {}
            // trusted.* of another kind cannot be read here: not the image's business either.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENODATA)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

/// Exactly `len` bytes of a file that a running container may be changing: cut when it grew,
/// padded with zeros when it shrank, so the tar entry stays the size its header says.
struct Exactly {
    file: io::Take<File>,
    left: u64,
}

impl Exactly {
    fn new(file: File, len: u64) -> Exactly {
        Exactly {
            file: file.take(len),
            left: len,
        }
    }
}

impl Read for Exactly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let mut n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
