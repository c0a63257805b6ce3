//! Layer tar streams: applying them to a directory (with hostile-input guards), writing a
//! container's changes as a layer, and a container's merged file system as one tar (export).
//! Pure file-tree code, no namespaces or HTTP.

pub mod changes;
pub mod flatten;
pub mod headers;
pub mod pack;
pub mod split;
pub mod unpack;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The name of the file that marks an opaque directory where xattrs cannot.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// `.wh.NAME`: the file form of a whiteout of NAME.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// A whiteout as overlay stores it: a 0:0 character device.
pub fn is_whiteout_device(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether `dir` is opaque (it hides what lower layers have under it): one of `xattrs` says
/// `y`, or it holds an [`OPAQUE_MARKER`]. A file system without xattrs, or a `trusted.*` name
/// this process may not read, leaves the marker file to decide.
pub fn is_opaque_dir(dir: &Path, xattrs: &[&str]) -> io::Result<bool> {
    for name in xattrs {
        match xattr::get(dir, name) {
            Ok(Some(v)) if v == b"y" => return Ok(true),
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) => {}
            Err(e) => return Err(e),
        }
    }
    match fs::symlink_metadata(dir.join(std::ffi::OsStr::from_bytes(OPAQUE_MARKER))) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
