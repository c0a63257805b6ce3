//! Applying one OCI/Docker layer tar stream to an empty directory, in the form overlayfs reads
//! as a layer: whiteouts become character devices 0:0 (or `.wh.` files for fuse-overlayfs),
//! opaque directories get an overlay xattr.
//!
//! The stream is hostile input. Every path is taken relative to the destination, `..` is
//! refused, and nothing is ever created through a symlink that an earlier entry planted, so
//! a layer cannot write outside its directory.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::split::SplitHandle;
use super::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, mkfifo};
use tar::EntryType;

pub struct UnpackOptions {
    /// Highest uid/gid that exists in the current user namespace (65535 with a subordinate
    /// range, 0 with a single-id mapping).
    pub max_id: u32,
    /// Whether to chown entries to their tar owners (false when running as an ordinary user
    /// outside any user namespace, e.g. some unit tests).
    pub chown: bool,
}

#[derive(Debug, Default)]
pub struct UnpackReport {
    /// One human-readable line each.
    pub warnings: Vec<String>,
    pub entries: u64,
    /// Total size of the regular files written.
    pub bytes: u64,
    /// Some whiteout was written as an empty `.wh.NAME` file because the kernel refused a
    /// 0:0 character device; only fuse-overlayfs understands that form.
    pub whiteout_files: bool,
    /// Some directory was marked opaque with `user.overlay.opaque` (trusted.* was refused),
    /// which the kernel overlay honours only when mounted with `userxattr`.
    pub opaque_user_xattr: bool,
    /// Some directory was marked opaque with an empty `.wh..wh..opq` file because no overlay
    /// xattr could be set; only fuse-overlayfs understands that form.
    pub opaque_files: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot read the layer stream")]
    Stream {
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{path}` has a malformed header")]
    Header {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the content of layer entry `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{path}` is truncated: {actual} of {expected} bytes")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error(
        "the headers of a layer entry{} take more than {limit} bytes (a name, PAX record or sparse map that large is not a real file's)",
        after.as_ref().map(|a| format!(" after `{a}`")).unwrap_or_default()
    )]
    HeadersTooLarge { after: Option<String>, limit: u64 },
    #[error(
        "layer entry `{shown}` has a {what} of {len} bytes, longer than Linux allows ({PATH_MAX})"
    )]
    NameTooLong {
        shown: String,
        what: &'static str,
        len: usize,
    },
    #[error(
        "layer entry `{path}` is a sparse file of {size} bytes; nook expands at most {limit} bytes of sparse files per layer"
    )]
    SparseTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("layer entry `{path}` leaves the layer")]
    PathEscape { path: PathBuf },
    #[error("layer entry `{path}` would be written through the symlink `{link}`")]
    SymlinkEscape { path: PathBuf, link: PathBuf },
    #[error("layer entry `{path}` needs `{parent}` to be a directory, but it is not")]
    NotADirectory { path: PathBuf, parent: PathBuf },
    #[error("hard link `{path}` points to `{target}`, which is outside the layer")]
    LinkEscape { path: PathBuf, target: PathBuf },
    #[error("hard link `{path}` points to `{target}`, which is not in the layer")]
    LinkTargetMissing { path: PathBuf, target: PathBuf },
    #[error("cannot inspect `{path}`")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove `{path}` to replace it")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create `{path}`")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create hard link `{path}` to `{target}`")]
    Link {
        path: PathBuf,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot change the owner of `{path}`")]
    Chown {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot change the mode of `{path}`")]
    Chmod {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot set the times of `{path}`")]
    Times {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = UnpackError> = std::result::Result<T, E>;

/// How much of a layer's sparse files may be holes, all told (see `Unpacker::regular`).
pub const MAX_SPARSE_BYTES: u64 = 64 << 30;
const COPY_BUFFER: usize = 64 * 1024;
/// What a hole reads as, to compare with (slice equality is a memcmp).
static ZEROS: [u8; COPY_BUFFER] = [0; COPY_BUFFER];

/// Linux's limit on a path, terminating NUL included: no longer name can be created.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// Applies the layer tar `reader` to `dest`, which must be an empty directory.
pub fn unpack<R: Read>(
    reader: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, UnpackError> {
    unpack_recording(reader, dest, opts, None)
}

/// [`unpack`], telling `split` where each regular file's content went, so the stream can be
/// rebuilt later (see the split module). `reader` must pass through that recording.
pub fn unpack_recording<R: Read>(
    reader: R,
    dest: &Path,
    opts: &UnpackOptions,
    split: Option<&SplitHandle>,
) -> Result<UnpackReport, UnpackError> {
    let (reader, budget) = super::headers::budgeted(reader);
    let mut archive = tar::Archive::new(reader);
    let mut unpacker = Unpacker {
        dest,
        opts,
        split,
        report: UnpackReport::default(),
        pending_dirs: BTreeMap::new(),
        whiteouts: HashMap::new(),
        above_max_id: 0,
        sparse_bytes: 0,
    };
    let mut entries = archive
        .entries()
        .map_err(|source| UnpackError::Stream { source })?;
    let mut last: Option<PathBuf> = None;
    while let Some(entry) = budget.next(&mut entries) {
        let mut entry = entry.map_err(|source| {
            if budget.exceeded() {
                UnpackError::HeadersTooLarge {
                    after: last.take().map(|p| shorten(&p)),
                    limit: super::headers::MAX_HEADER_BYTES,
                }
            } else {
                UnpackError::Stream { source }
            }
        })?;
        last = Some(entry.path().map(|p| p.into_owned()).unwrap_or_default());
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()
}

#[derive(Clone, Copy)]
enum WhiteoutForm {
    Device,
    File,
}

struct Unpacker<'a> {
    dest: &'a Path,
    opts: &'a UnpackOptions,
    split: Option<&'a SplitHandle>,
    report: UnpackReport,
    /// Directory mode and mtime, applied at the end: adding children changes a directory's
    /// mtime, and a read-only mode would stop an unprivileged user from adding them.
    pending_dirs: BTreeMap<PathBuf, (u32, TimeSpec)>,
    /// Whiteouts written so far, keyed by the name they hide, so that a later entry of the
    /// same name (which the spec says wins within one layer) can take their place.
    whiteouts: HashMap<PathBuf, WhiteoutForm>,
    above_max_id: u64,
    /// The expanded size of the sparse files so far.
    sparse_bytes: u64,
}

struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, rel: &Path) -> Result<Meta> {
        let bad = |source| UnpackError::Header {
            path: rel.to_path_buf(),
            source,
        };
        let header = entry.header();
        let uid = header.uid().map_err(bad)?;
        let gid = header.gid().map_err(bad)?;
        let mode = header.mode().map_err(bad)? & 0o7777;
        let mut mtime = TimeSpec::new(
            i64::try_from(header.mtime().map_err(bad)?).unwrap_or(i64::MAX),
            0,
        );
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for ext in pax {
                let ext = ext.map_err(bad)?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key == "mtime"
                    && let Some(t) = ext.value().ok().and_then(parse_pax_time)
                {
                    mtime = t;
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }
}

/// Parses a PAX time such as `1700000000.123456789` or `-1.5`.
fn parse_pax_time(value: &str) -> Option<TimeSpec> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let negative = secs.starts_with('-');
    let mut secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut nanos: i64 = digits.parse().ok()?;
    if negative && nanos > 0 {
        secs -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Some(TimeSpec::new(secs, nanos))
}

/// The entry's path relative to the layer root, or `None` if it climbs out with `..`.
fn sanitize(raw: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// How a path inside the layer is shown in warnings.
fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

fn lstat(host: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(host) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Unpacker<'_> {
    fn host(&self, rel: &Path) -> PathBuf {
        self.dest.join(rel)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.report.entries += 1;
        let raw = entry
            .path()
            .map_err(|source| UnpackError::Stream { source })?
            .into_owned();
        if raw.as_os_str().len() >= PATH_MAX {
            return Err(UnpackError::NameTooLong {
                shown: shorten(&raw),
                what: "name",
                len: raw.as_os_str().len(),
            });
        }
        let rel = sanitize(&raw).ok_or(UnpackError::PathEscape { path: raw })?;
        let meta = Meta::read(entry, &rel)?;

        if let Some(name) = rel.file_name()
            && name.as_bytes().starts_with(WHITEOUT_PREFIX)
        {
            return self.whiteout_entry(&rel, name);
        }
        if rel.as_os_str().is_empty() && kind != EntryType::Directory {
            self.report.warnings.push(format!(
                "skipped a {kind:?} entry for the layer root (it can only be a directory)"
            ));
            return Ok(());
        }

        match kind {
            EntryType::Directory => self.directory(&rel, &meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &rel, &meta)
            }
            EntryType::Symlink => {
                let target = link_name(entry, &rel)?;
                self.prepare(&rel)?;
                std::os::unix::fs::symlink(&target, self.host(&rel)).map_err(|source| {
                    UnpackError::Create {
                        path: rel.clone(),
                        source,
                    }
                })?;
                self.apply_meta(&rel, &meta, false)
            }
            EntryType::Link => {
                let target = link_name(entry, &rel)?;
                self.hardlink(&rel, &target)
            }
            EntryType::Fifo => {
                self.prepare(&rel)?;
                mkfifo(&self.host(&rel), Mode::from_bits_truncate(0o600)).map_err(|e| {
                    UnpackError::Create {
                        path: rel.clone(),
                        source: e.into(),
                    }
                })?;
                self.apply_meta(&rel, &meta, true)
            }
            EntryType::Char | EntryType::Block => {
                let header = entry.header();
                let bad = |source| UnpackError::Header {
                    path: rel.clone(),
                    source,
                };
                let major = header.device_major().map_err(bad)?.unwrap_or(0);
                let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
                if kind == EntryType::Char && major == 0 && minor == 0 {
                    // Layers made from an overlay upper directory carry whiteouts in this form.
                    self.ensure_parents(&rel)?;
                    self.whiteout(&rel)
                } else {
                    self.report.warnings.push(format!(
                        "skipped device node {} (device files cannot be created without privileges)",
                        shown(&rel)
                    ));
                    Ok(())
                }
            }
            other => {
                self.report.warnings.push(format!(
                    "skipped {} (unsupported tar entry type {other:?})",
                    shown(&rel)
                ));
                Ok(())
            }
        }
    }

    fn directory(&mut self, rel: &Path, meta: &Meta) -> Result<()> {
        if !rel.as_os_str().is_empty() {
            self.ensure_parents(rel)?;
            self.clear_whiteout(rel)?;
            if !self.make_room(rel, true)? {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(self.host(rel))
                    .map_err(|source| UnpackError::Create {
                        path: rel.to_path_buf(),
                        source,
                    })?;
            }
        }
        self.chown(rel, meta)?;
        self.set_xattrs(rel, meta);
        self.pending_dirs
            .insert(rel.to_path_buf(), (meta.mode, meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        meta: &Meta,
    ) -> Result<()> {
        let sparse = entry.header().entry_type() == EntryType::GNUSparse;
        if sparse {
            // Its holes are read as zeros (the tar crate offers no way past them), so even
            // written as holes they cost time: a few hundred bytes may claim an exabyte.
            self.sparse_bytes = self.sparse_bytes.saturating_add(entry.size());
            if self.sparse_bytes > MAX_SPARSE_BYTES {
                return Err(UnpackError::SparseTooLarge {
                    path: rel.to_path_buf(),
                    size: entry.size(),
                    limit: MAX_SPARSE_BYTES,
                });
            }
        }
        self.prepare(rel)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.host(rel))
            .map_err(|source| UnpackError::Create {
                path: rel.to_path_buf(),
                source,
            })?;
        // Sparse entries carry their data in a form of their own: those bytes stay verbatim.
        if let Some(split) = self.split
            && matches!(
                entry.header().entry_type(),
                EntryType::Regular | EntryType::Continuous
            )
        {
            split.content(rel, entry.size(), entry.raw_file_position());
        }
        // A plain loop rather than io::copy so read and write failures get their own errors.
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Read {
                        path: rel.to_path_buf(),
                        source,
                    });
                }
            };
            let write = |file: &mut fs::File| {
                if sparse && buf[..n] == ZEROS[..n] {
                    // A hole stays a hole; the final length is set below.
                    file.seek(io::SeekFrom::Current(n as i64)).map(drop)
                } else {
                    file.write_all(&buf[..n])
                }
            };
            write(&mut file).map_err(|source| UnpackError::Write {
                path: rel.to_path_buf(),
                source,
            })?;
            written += n as u64;
        }
        if sparse {
            file.set_len(written).map_err(|source| UnpackError::Write {
                path: rel.to_path_buf(),
                source,
            })?;
        }
        // The tar crate ends an entry's content quietly when the stream ends early.
        let expected = entry.size();
        if entry.header().entry_type() == EntryType::Regular && written != expected {
            return Err(UnpackError::Truncated {
                path: rel.to_path_buf(),
                expected,
                actual: written,
            });
        }
        drop(file);
        self.report.bytes += written;
        self.apply_meta(rel, meta, true)
    }

    fn hardlink(&mut self, rel: &Path, raw_target: &Path) -> Result<()> {
        let escape = || UnpackError::LinkEscape {
            path: rel.to_path_buf(),
            target: raw_target.to_path_buf(),
        };
        let missing = || UnpackError::LinkTargetMissing {
            path: rel.to_path_buf(),
            target: raw_target.to_path_buf(),
        };
        let target = sanitize(raw_target).ok_or_else(escape)?;
        if target.as_os_str().is_empty() || self.whiteouts.contains_key(&target) {
            return Err(missing());
        }
        let mut prefix = PathBuf::new();
        for component in target.components() {
            prefix.push(component);
            let meta = lstat(&self.host(&prefix)).map_err(|source| UnpackError::Stat {
                path: prefix.clone(),
                source,
            })?;
            match meta {
                None => return Err(missing()),
                Some(_) if prefix == target => {}
                Some(m) if m.file_type().is_symlink() => return Err(escape()),
                Some(m) if m.is_dir() => {}
                Some(_) => return Err(missing()),
            }
        }
        if target == rel {
            return Ok(());
        }
        self.prepare(rel)?;
        // No metadata is applied: the inode already carries its own entry's, and changing it
        // here would change it for every name.
        fs::hard_link(self.host(&target), self.host(rel)).map_err(|source| UnpackError::Link {
            path: rel.to_path_buf(),
            target,
            source,
        })
    }

    fn whiteout_entry(&mut self, rel: &Path, name: &OsStr) -> Result<()> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        let name = name.as_bytes();
        if name == OPAQUE_MARKER {
            self.ensure_parents(rel)?;
            return self.opaque(dir);
        }
        if name.starts_with(b".wh..wh.") {
            // aufs bookkeeping (`.wh..wh.plnk` and the like): meaningless to overlay.
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            self.report.warnings.push(format!(
                "skipped whiteout {} (it names no file)",
                shown(rel)
            ));
            return Ok(());
        }
        let target = dir.join(OsStr::from_bytes(hidden));
        self.ensure_parents(&target)?;
        self.whiteout(&target)
    }

    /// Hides `target` from the lower layers.
    fn whiteout(&mut self, target: &Path) -> Result<()> {
        let host = self.host(target);
        let existing = lstat(&host).map_err(|source| UnpackError::Stat {
            path: target.to_path_buf(),
            source,
        })?;
        // A whiteout only hides lower layers; a same-named entry of this layer stays.
        if existing.is_some() || self.whiteouts.contains_key(target) {
            return Ok(());
        }
        let form = match mknod(&host, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)) {
            Ok(()) => WhiteoutForm::Device,
            // Kernels before 5.8 refuse even the 0:0 device to unprivileged users.
            Err(Errno::EPERM) => {
                let file = whiteout_file_path(target);
                create_empty(&self.host(&file))
                    .map_err(|source| UnpackError::Create { path: file, source })?;
                self.report.whiteout_files = true;
                WhiteoutForm::File
            }
            Err(e) => {
                return Err(UnpackError::Create {
                    path: target.to_path_buf(),
                    source: e.into(),
                });
            }
        };
        self.whiteouts.insert(target.to_path_buf(), form);
        Ok(())
    }

    /// Removes the whiteout for `rel`, if this layer wrote one, because a later entry of the
    /// same name replaces it.
    fn clear_whiteout(&mut self, rel: &Path) -> Result<()> {
        let Some(form) = self.whiteouts.remove(rel) else {
            return Ok(());
        };
        let path = match form {
            WhiteoutForm::Device => rel.to_path_buf(),
            WhiteoutForm::File => whiteout_file_path(rel),
        };
        fs::remove_file(self.host(&path)).map_err(|source| UnpackError::Remove { path, source })
    }

    fn opaque(&mut self, dir: &Path) -> Result<()> {
        let host = self.host(dir);
        // trusted.* needs real root; inside a user namespace only the user.* form (read by
        // overlay mounted with `userxattr`) can be set.
        if xattr::set(&host, "trusted.overlay.opaque", b"y").is_ok() {
            return Ok(());
        }
        if xattr::set(&host, "user.overlay.opaque", b"y").is_ok() {
            self.report.opaque_user_xattr = true;
            return Ok(());
        }
        let marker = dir.join(OsStr::from_bytes(OPAQUE_MARKER));
        match create_empty(&self.host(&marker)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(UnpackError::Create {
                    path: marker,
                    source,
                });
            }
        }
        self.report.opaque_files = true;
        Ok(())
    }

    /// Readies `rel` for a new non-directory: parents exist, nothing is in the way.
    fn prepare(&mut self, rel: &Path) -> Result<()> {
        self.ensure_parents(rel)?;
        self.clear_whiteout(rel)?;
        self.make_room(rel, false)?;
        Ok(())
    }

    /// Creates the missing parents of `rel`, refusing to go through symlinks or non-directories.
    fn ensure_parents(&mut self, rel: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            self.clear_whiteout(&prefix)?;
            let host = self.host(&prefix);
            let meta = lstat(&host).map_err(|source| UnpackError::Stat {
                path: prefix.clone(),
                source,
            })?;
            match meta {
                Some(m) if m.file_type().is_symlink() => {
                    return Err(UnpackError::SymlinkEscape {
                        path: rel.to_path_buf(),
                        link: prefix,
                    });
                }
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    return Err(UnpackError::NotADirectory {
                        path: rel.to_path_buf(),
                        parent: prefix,
                    });
                }
                None => {
                    let create = |source| UnpackError::Create {
                        path: prefix.clone(),
                        source,
                    };
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&host)
                        .map_err(create)?;
                    // Explicitly, so the umask does not decide.
                    fs::set_permissions(&host, Permissions::from_mode(0o755)).map_err(
                        |source| UnpackError::Chmod {
                            path: prefix.clone(),
                            source,
                        },
                    )?;
                    if self.opts.chown {
                        fchownat(
                            None,
                            &host,
                            Some(Uid::from_raw(0)),
                            Some(Gid::from_raw(0)),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(|e| UnpackError::Chown {
                            path: prefix.clone(),
                            source: e.into(),
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes whatever an earlier entry left at `rel`, except that a directory replacing a
    /// directory keeps it (and its children). Returns whether a directory was kept.
    fn make_room(&mut self, rel: &Path, new_is_dir: bool) -> Result<bool> {
        let host = self.host(rel);
        let existing = lstat(&host).map_err(|source| UnpackError::Stat {
            path: rel.to_path_buf(),
            source,
        })?;
        let remove = |source| UnpackError::Remove {
            path: rel.to_path_buf(),
            source,
        };
        match existing {
            None => Ok(false),
            Some(m) if m.is_dir() && new_is_dir => Ok(true),
            Some(m) if m.is_dir() => {
                // remove_dir_all does not follow symlinks inside the tree.
                fs::remove_dir_all(&host).map_err(remove)?;
                self.pending_dirs.retain(|path, _| !path.starts_with(rel));
                self.whiteouts.retain(|path, _| !path.starts_with(rel));
                Ok(false)
            }
            Some(_) => {
                fs::remove_file(&host).map_err(remove)?;
                Ok(false)
            }
        }
    }

    /// Owner, mode, xattrs and times of a non-directory, in the order that keeps them all:
    /// chown clears setuid bits and file capabilities.
    fn apply_meta(&mut self, rel: &Path, meta: &Meta, has_mode: bool) -> Result<()> {
        self.chown(rel, meta)?;
        if has_mode {
            fs::set_permissions(self.host(rel), Permissions::from_mode(meta.mode)).map_err(
                |source| UnpackError::Chmod {
                    path: rel.to_path_buf(),
                    source,
                },
            )?;
        }
        self.set_xattrs(rel, meta);
        self.set_times(rel, meta.mtime)
    }

    fn chown(&mut self, rel: &Path, meta: &Meta) -> Result<()> {
        if !self.opts.chown {
            return Ok(());
        }
        let max = u64::from(self.opts.max_id);
        if meta.uid > max || meta.gid > max {
            self.above_max_id += 1;
        }
        // Ids the namespace lacks cannot be set at all; root's is the least surprising stand-in.
        let id = |id: u64| if id > max { 0 } else { id as u32 };
        fchownat(
            None,
            &self.host(rel),
            Some(Uid::from_raw(id(meta.uid))),
            Some(Gid::from_raw(id(meta.gid))),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| UnpackError::Chown {
            path: rel.to_path_buf(),
            source: e.into(),
        })
    }

    fn set_xattrs(&mut self, rel: &Path, meta: &Meta) {
        let host = self.host(rel);
        for (name, value) in &meta.xattrs {
            // Overlay metadata from a layer could redirect lookups or hide lower files.
            if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                self.report.warnings.push(format!(
                    "ignored xattr {name} on {} (overlay metadata cannot come from a layer)",
                    shown(rel)
                ));
                continue;
            }
            if let Err(e) = xattr::set(&host, name, value) {
                self.report
                    .warnings
                    .push(format!("could not set xattr {name} on {}: {e}", shown(rel)));
            }
        }
    }

    fn set_times(&self, rel: &Path, mtime: TimeSpec) -> Result<()> {
        utimensat(
            None,
            &self.host(rel),
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| UnpackError::Times {
            path: rel.to_path_buf(),
            source: e.into(),
        })
    }

    fn finish(mut self) -> Result<UnpackReport> {
        let mut dirs: Vec<_> = std::mem::take(&mut self.pending_dirs).into_iter().collect();
        // Deepest first, so setting a child's times does not disturb its parent's afterwards.
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (rel, (mode, mtime)) in dirs {
            fs::set_permissions(self.host(&rel), Permissions::from_mode(mode)).map_err(
                |source| UnpackError::Chmod {
                    path: rel.clone(),
                    source,
                },
            )?;
            self.set_times(&rel, mtime)?;
        }
        if self.above_max_id > 0 {
            let max = self.opts.max_id;
            self.report.warnings.push(format!(
                "{} files owned by ids above {max} appear as root's (the user namespace maps only \
                 0-{max}; an administrator can give your user a range of {} ids: {})",
                self.above_max_id,
                crate::doctor::RANGE_SIZE,
                crate::doctor::add_range_fix_for_me()
            ));
        }
        Ok(self.report)
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, rel: &Path) -> Result<PathBuf> {
    let target = entry
        .link_name()
        .map_err(|source| UnpackError::Header {
            path: rel.to_path_buf(),
            source,
        })?
        .map(|n| n.into_owned())
        .unwrap_or_default();
    if target.as_os_str().len() >= PATH_MAX {
        return Err(UnpackError::NameTooLong {
            shown: shorten(rel),
            what: "link target",
            len: target.as_os_str().len(),
        });
    }
    Ok(target)
}

/// The start of a name too long to show whole in a one-line error.
fn shorten(path: &Path) -> String {
    const SHOWN: usize = 80;
    let text = path.to_string_lossy();
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

/// `dir/NAME` → `dir/.wh.NAME`, the fuse-overlayfs form of a whiteout.
fn whiteout_file_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().as_bytes();
    let file = [WHITEOUT_PREFIX, name].concat();
    target.with_file_name(OsStr::from_bytes(&file))
}

fn create_empty(host: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(host)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::Header;

    /// Builds layers header by header: names are written raw so that hostile ones (which
    /// `Header::set_path` refuses) can be expressed.
    struct Layer(tar::Builder<Vec<u8>>);

    fn header(path: &str, kind: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    impl Layer {
        fn new() -> Layer {
            Layer(tar::Builder::new(Vec::new()))
        }
        fn push(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }
        fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            self.push(
                header(path, EntryType::Regular, data.len() as u64, 0o644),
                data,
            )
        }
        fn dir(&mut self, path: &str, mode: u32, mtime: u64) -> &mut Self {
            let mut h = header(path, EntryType::Directory, 0, mode);
            h.set_mtime(mtime);
            self.push(h, b"")
        }
        fn link(&mut self, path: &str, kind: EntryType, target: &str) -> &mut Self {
            let mut h = header(path, kind, 0, 0o777);
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            self.push(h, b"")
        }
        /// A PAX extended header for the next entry.
        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            let mut data = Vec::new();
            for (key, value) in records {
                let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
                // The length prefix counts itself.
                let mut len = body.len() + 1;
                while (len.to_string().len() + body.len()) != len {
                    len += 1;
                }
                data.extend_from_slice(len.to_string().as_bytes());
                data.extend_from_slice(&body);
            }
            self.push(
                header("pax", EntryType::XHeader, data.len() as u64, 0o644),
                &data,
            )
        }
        fn bytes(&mut self) -> Vec<u8> {
            std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
                .into_inner()
                .unwrap()
        }
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn opts() -> UnpackOptions {
        // Only root can chown here; an unprivileged test run has no user namespace.
        UnpackOptions {
            max_id: if is_root() { 65535 } else { 0 },
            chown: is_root(),
        }
    }

    /// A destination inside a scratch directory, so "outside the layer" is observable.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        fs::create_dir(&dest).unwrap();
        (tmp, dest)
    }

    fn apply(layer: &mut Layer, dest: &Path) -> Result<UnpackReport> {
        unpack(&layer.bytes()[..], dest, &opts())
    }

    #[test]
    fn regular_file_content_mode_and_mtime() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.pax(&[("mtime", b"1700000000.123456789")]).push(
            header("usr/bin/tool", EntryType::Regular, 5, 0o4755),
            b"hello",
        );
        let report = apply(&mut layer, &dest).unwrap();
        let path = dest.join("usr/bin/tool");
        // Before reading the content, which moves atime.
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(meta.mode() & 0o7777, 0o4755);
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert_eq!(meta.mtime_nsec(), 123_456_789);
        assert_eq!(meta.atime(), 1_700_000_000);
        assert_eq!(report.entries, 1);
        assert_eq!(report.bytes, 5);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // Implicit parents.
        let usr = fs::metadata(dest.join("usr")).unwrap();
        assert!(usr.is_dir());
        assert_eq!(usr.mode() & 0o7777, 0o755);
    }

    #[test]
    fn directory_mode_and_mtime_survive_children() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .dir("./", 0o750, 42)
            .dir("d/", 0o555, 1000)
            .dir("d/e/", 0o700, 2000)
            .file("d/f", b"x")
            .file("d/e/g", b"y");
        apply(&mut layer, &dest).unwrap();
        let d = fs::metadata(dest.join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o555, 1000));
        let e = fs::metadata(dest.join("d/e")).unwrap();
        assert_eq!((e.mode() & 0o7777, e.mtime()), (0o700, 2000));
        let root = fs::metadata(&dest).unwrap();
        assert_eq!((root.mode() & 0o7777, root.mtime()), (0o750, 42));
        // Let the TempDir clean up as an unprivileged user.
        fs::set_permissions(dest.join("d"), Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn symlink_target_kept_verbatim_and_not_followed() {
        let (tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.link("abs", EntryType::Symlink, "/etc/passwd").link(
            "rel",
            EntryType::Symlink,
            "../../outside",
        );
        apply(&mut layer, &dest).unwrap();
        assert_eq!(
            fs::read_link(dest.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::read_link(dest.join("rel")).unwrap(),
            Path::new("../../outside")
        );
        assert_eq!(
            fs::symlink_metadata(dest.join("abs")).unwrap().mtime(),
            1_000_000
        );
        assert!(!tmp.path().join("outside").exists());
    }

    #[test]
    fn hardlink_shares_the_inode() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .file("a/orig", b"data")
            .link("b/copy", EntryType::Link, "/a/orig");
        apply(&mut layer, &dest).unwrap();
        let orig = fs::metadata(dest.join("a/orig")).unwrap();
        let copy = fs::metadata(dest.join("b/copy")).unwrap();
        assert_eq!(orig.ino(), copy.ino());
        assert_eq!(orig.nlink(), 2);
    }

    #[test]
    fn fifo() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.push(header("run/pipe", EntryType::Fifo, 0, 0o620), b"");
        apply(&mut layer, &dest).unwrap();
        let meta = fs::symlink_metadata(dest.join("run/pipe")).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.mode() & 0o7777, 0o620);
    }

    #[test]
    fn dotdot_is_refused() {
        for name in ["../x", "a/../../x", "./../x", "a/.."] {
            let (tmp, dest) = scratch();
            let mut layer = Layer::new();
            layer.file(name, b"evil");
            let err = apply(&mut layer, &dest).unwrap_err();
            assert!(
                matches!(&err, UnpackError::PathEscape { path } if path == Path::new(name)),
                "{name}: {err:?}"
            );
            assert!(!tmp.path().join("x").exists());
        }
    }

    #[test]
    fn absolute_path_is_neutralised() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.file("/abs/file", b"a").file("./dot/file", b"b");
        apply(&mut layer, &dest).unwrap();
        assert_eq!(fs::read(dest.join("abs/file")).unwrap(), b"a");
        assert_eq!(fs::read(dest.join("dot/file")).unwrap(), b"b");
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let (tmp, dest) = scratch();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        for name in ["a/x", "a/sub/x", "a/.wh.x", "a/.wh..wh..opq"] {
            let mut layer = Layer::new();
            layer
                .link("a", EntryType::Symlink, outside.to_str().unwrap())
                .file(name, b"evil");
            let err = unpack(&layer.bytes()[..], &dest, &opts()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::SymlinkEscape { link, .. } if link == Path::new("a")),
                "{name}: {err:?}"
            );
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{name}");
            fs::remove_file(dest.join("a")).unwrap();
        }
    }

    #[test]
    fn hardlink_outside_the_layer_is_refused() {
        let (tmp, dest) = scratch();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"s").unwrap();

        let mut layer = Layer::new();
        layer.link("h", EntryType::Link, "../outside/secret");
        let err = apply(&mut layer, &dest).unwrap_err();
        assert!(matches!(err, UnpackError::LinkEscape { .. }), "{err:?}");

        let mut layer = Layer::new();
        layer
            .link("s", EntryType::Symlink, outside.to_str().unwrap())
            .link("h", EntryType::Link, "s/secret");
        let err = apply(&mut layer, &dest).unwrap_err();
        assert!(matches!(err, UnpackError::LinkEscape { .. }), "{err:?}");

        let mut layer = Layer::new();
        layer.link("h2", EntryType::Link, "missing");
        let err = apply(&mut layer, &dest).unwrap_err();
        assert!(
            matches!(err, UnpackError::LinkTargetMissing { .. }),
            "{err:?}"
        );
        assert!(!dest.join("h").exists() && !dest.join("h2").exists());
        assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn device_nodes_are_skipped_with_a_warning() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        let mut h = header("dev/sda", EntryType::Block, 0, 0o660);
        h.set_device_major(8).unwrap();
        h.set_device_minor(0).unwrap();
        layer.push(h, b"");
        let report = apply(&mut layer, &dest).unwrap();
        assert!(fs::symlink_metadata(dest.join("dev/sda")).is_err());
        assert_eq!(
            report.warnings,
            ["skipped device node /dev/sda (device files cannot be created without privileges)"]
        );
    }

    fn assert_whiteout(dest: &Path, rel: &str, report: &UnpackReport) {
        let target = dest.join(rel);
        if report.whiteout_files {
            assert!(fs::symlink_metadata(&target).is_err());
            let file = whiteout_file_path(Path::new(rel));
            assert!(fs::metadata(dest.join(file)).unwrap().is_file());
        } else {
            let meta = fs::symlink_metadata(&target).unwrap();
            assert!(meta.file_type().is_char_device(), "{rel}");
            assert_eq!(meta.rdev(), 0);
        }
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.file("dir/.wh.gone", b"").file(".wh.top", b"");
        let mut h = header("dir/char", EntryType::Char, 0, 0);
        h.set_device_major(0).unwrap();
        h.set_device_minor(0).unwrap();
        layer.push(h, b"");
        let report = apply(&mut layer, &dest).unwrap();
        assert_whiteout(&dest, "dir/gone", &report);
        assert_whiteout(&dest, "top", &report);
        assert_whiteout(&dest, "dir/char", &report);
        if !report.whiteout_files {
            assert!(fs::symlink_metadata(dest.join("dir/.wh.gone")).is_err());
        }
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn same_layer_entries_win_over_whiteouts() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .file("before", b"1")
            .file(".wh.before", b"")
            .file(".wh.after", b"")
            .file("after", b"2")
            .file(".wh.d", b"")
            .file("d/child", b"3");
        let report = apply(&mut layer, &dest).unwrap();
        assert_eq!(fs::read(dest.join("before")).unwrap(), b"1");
        assert_eq!(fs::read(dest.join("after")).unwrap(), b"2");
        assert_eq!(fs::read(dest.join("d/child")).unwrap(), b"3");
        let names: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?} {report:?}");
    }

    #[test]
    fn opaque_marker_marks_the_directory() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.dir("d/", 0o755, 5).file("d/.wh..wh..opq", b"");
        let report = apply(&mut layer, &dest).unwrap();
        let dir = dest.join("d");
        let marker = dir.join(".wh..wh..opq");
        if report.opaque_files {
            assert!(marker.is_file());
        } else {
            assert!(!marker.exists());
            let name = if report.opaque_user_xattr {
                "user.overlay.opaque"
            } else {
                "trusted.overlay.opaque"
            };
            assert_eq!(xattr::get(&dir, name).unwrap().as_deref(), Some(&b"y"[..]));
        }
        if is_root() {
            assert!(!report.opaque_user_xattr && !report.opaque_files);
        }
        assert_eq!(fs::metadata(&dir).unwrap().mtime(), 5);
    }

    #[test]
    fn duplicate_entries_last_wins() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .file("f", b"first")
            .file("f", b"second")
            .dir("d/", 0o700, 1)
            .file("d/kept", b"k")
            .dir("d/", 0o755, 2)
            .file("x/inner", b"i")
            .file("x", b"now a file")
            .file("y", b"soon a dir")
            .dir("y/", 0o755, 3)
            .link("l", EntryType::Symlink, "f")
            .file("l", b"not through the link");
        apply(&mut layer, &dest).unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), b"second");
        assert_eq!(fs::read(dest.join("d/kept")).unwrap(), b"k");
        let d = fs::metadata(dest.join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o755, 2));
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"now a file");
        assert!(fs::metadata(dest.join("y")).unwrap().is_dir());
        assert!(fs::symlink_metadata(dest.join("l")).unwrap().is_file());
    }

    /// A gzip layer of a few megabytes can declare a header of a gigabyte; the tar crate
    /// would read it whole into memory.
    #[test]
    fn oversized_headers_are_refused_before_they_are_read() {
        use crate::layer::headers::MAX_HEADER_BYTES;
        let big = MAX_HEADER_BYTES as usize + 1;
        for kind in [
            EntryType::XHeader,
            EntryType::GNULongName,
            EntryType::GNULongLink,
        ] {
            let (_tmp, dest) = scratch();
            let mut layer = Layer::new();
            layer.file("before", b"fine");
            // The stream ends long before the declared size: a reader that tried to
            // buffer it would fail with a truncation, not with this error.
            let mut h = header("././@LongLink", kind, 1 << 40, 0o644);
            h.set_cksum();
            let mut bytes = layer.bytes();
            bytes.truncate(bytes.len() - 1024); // the end-of-archive blocks
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend(std::iter::repeat_n(b'a', big + 4096));
            let err = unpack(&bytes[..], &dest, &opts()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::HeadersTooLarge { after: Some(a), .. } if a == "before"),
                "{kind:?}: {err:?}"
            );
            assert!(err.to_string().contains("after `before`"), "{err}");
        }
    }

    #[test]
    fn headers_within_the_budget_and_large_files_between_them_pass() {
        let (_tmp, dest) = scratch();
        let long = format!("{}/{}", "d".repeat(200), "f".repeat(200));
        let mut layer = Layer::new();
        // A 3 MiB file: skipping its data is not header reading.
        layer.file("big", &vec![1u8; 3 << 20]);
        layer.pax(&[
            ("path", long.as_bytes()),
            ("SCHILY.xattr.user.x", &[7u8; 60_000]),
        ]);
        layer.file("short", b"long one");
        layer.dir("dir/", 0o755, 1);
        layer
            .0
            .append_data(
                &mut header("", EntryType::Regular, 2, 0o644),
                &long,
                &b"gn"[..],
            )
            .unwrap();
        apply(&mut layer, &dest).unwrap();
        assert_eq!(fs::read(dest.join(&long)).unwrap(), b"gn");
        assert_eq!(fs::metadata(dest.join("big")).unwrap().len(), 3 << 20);
    }

    #[test]
    fn names_longer_than_linux_allows_are_refused_by_length() {
        let (_tmp, dest) = scratch();
        let name = "n/".repeat(3000);
        let mut layer = Layer::new();
        layer.pax(&[("path", name.as_bytes())]).file("x", b"");
        let err = apply(&mut layer, &dest).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, UnpackError::NameTooLong { len: 6000, .. }),
            "{err:?}"
        );
        assert!(text.len() < 200, "{text}");

        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .pax(&[("linkpath", "t".repeat(5000).as_bytes())])
            .link("l", EntryType::Symlink, "x");
        let err = apply(&mut layer, &dest).unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::NameTooLong {
                    what: "link target",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn sparse_layer(name: &str, real: u64) -> Layer {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(512);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(real);
        gnu.sparse[0].set_offset(real - 512);
        gnu.sparse[0].set_length(512);
        let mut layer = Layer::new();
        layer.push(h, &[9u8; 512]);
        layer
    }

    /// A GNU sparse entry costs a few hundred bytes whatever size it claims: its holes are
    /// not written out as zeros, and a layer may not claim more than MAX_SPARSE_BYTES of them.
    #[test]
    fn sparse_holes_cost_no_disk_and_are_bounded() {
        let (_tmp, dest) = scratch();
        let real = 1u64 << 30;
        apply(&mut sparse_layer("sparse", real), &dest).unwrap();
        let meta = fs::metadata(dest.join("sparse")).unwrap();
        assert_eq!(meta.len(), real);
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let mut tail = vec![0u8; 512];
        use std::os::unix::fs::FileExt;
        fs::File::open(dest.join("sparse"))
            .unwrap()
            .read_exact_at(&mut tail, real - 512)
            .unwrap();
        assert_eq!(tail, [9u8; 512]);

        let (_tmp, dest) = scratch();
        let started = std::time::Instant::now();
        let err = apply(&mut sparse_layer("huge", 1 << 50), &dest).unwrap_err();
        assert!(matches!(err, UnpackError::SparseTooLarge { .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(!dest.join("huge").exists());
    }

    #[test]
    fn parent_that_is_a_file_is_an_error() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.file("a", b"").file("a/b", b"");
        let err = apply(&mut layer, &dest).unwrap_err();
        assert!(
            matches!(&err, UnpackError::NotADirectory { parent, .. } if parent == Path::new("a")),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer.file("f", &[7u8; 2000]);
        let bytes = layer.bytes();
        let err = unpack(&bytes[..512 + 1000], &dest, &opts()).unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::Truncated { .. } | UnpackError::Stream { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn overlay_xattrs_from_the_layer_are_ignored() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        layer
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.nook.test", b"v"),
            ])
            .dir("d/", 0o755, 1);
        let report = apply(&mut layer, &dest).unwrap();
        let dir = dest.join("d");
        assert_eq!(
            xattr::get(&dir, "trusted.overlay.opaque").ok().flatten(),
            None
        );
        assert!(report.warnings[0].starts_with("ignored xattr trusted.overlay.opaque on /d"));
        // user.* xattrs need filesystem support (tmpfs gained it in 6.6).
        match xattr::get(&dir, "user.nook.test").ok().flatten() {
            Some(v) => assert_eq!(v, b"v"),
            None => assert!(report.warnings[1].starts_with("could not set xattr user.nook.test")),
        }
    }

    #[test]
    fn ids_above_the_namespace_become_root() {
        let (_tmp, dest) = scratch();
        let mut layer = Layer::new();
        for (name, id) in [("high", 100_000), ("higher", 200_000), ("low", 5)] {
            let mut h = header(name, EntryType::Regular, 0, 0o2755);
            h.set_uid(id);
            h.set_gid(id);
            layer.push(h, b"");
        }
        let bytes = layer.bytes();
        if is_root() {
            let opts = UnpackOptions {
                max_id: 65535,
                chown: true,
            };
            let report = unpack(&bytes[..], &dest, &opts).unwrap();
            let owner = |n: &str| {
                let m = fs::metadata(dest.join(n)).unwrap();
                (m.uid(), m.gid(), m.mode() & 0o7777)
            };
            assert_eq!(owner("high"), (0, 0, 0o2755));
            assert_eq!(owner("higher"), (0, 0, 0o2755));
            assert_eq!(owner("low"), (5, 5, 0o2755));
            assert_eq!(report.warnings.len(), 1);
            let warning = &report.warnings[0];
            assert!(
                warning.starts_with(
                    "2 files owned by ids above 65535 appear as root's (the user namespace \
                     maps only 0-65535; an administrator can give your user a range of 65536 \
                     ids: sudo usermod --add-subuids "
                ),
                "{warning}"
            );
        } else {
            let opts = UnpackOptions {
                max_id: 0,
                chown: false,
            };
            let report = unpack(&bytes[..], &dest, &opts).unwrap();
            let me = nix::unistd::geteuid().as_raw();
            assert_eq!(fs::metadata(dest.join("high")).unwrap().uid(), me);
            assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        }
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(parse_pax_time("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(
            parse_pax_time("-1.25"),
            Some(TimeSpec::new(-2, 750_000_000))
        );
        assert_eq!(
            parse_pax_time("1.1234567891"),
            Some(TimeSpec::new(1, 123_456_789))
        );
        assert_eq!(parse_pax_time("x"), None);
        assert_eq!(parse_pax_time("1.-5"), None);
    }
}
