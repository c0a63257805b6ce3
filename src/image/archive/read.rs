//! Reading a docker-archive or an oci-archive: input → seekable tar → index of entries →
//! a plan of images (configs, layers, names), every stated digest checked.
//!
//! The tar is indexed before anything else because `docker save` writes `manifest.json`
//! last, after the layers it names: a streaming reader would have to extract layers before
//! knowing which image (and which diff ids) they belong to. Compressed input, and input
//! from a pipe, is first decompressed into an unlinked temporary file, as Podman and skopeo
//! do; an uncompressed archive in a file is read in place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveError, MAX_CONFIG_BYTES, Result,
    config_diff_ids,
};
use crate::image::digest::{Digest, HashingReader};
use crate::image::manifest::{self, Compression, MAX_MANIFEST_BYTES, Manifest, PlatformSpec};
use crate::image::reference::Reference;
use crate::layer::headers::budgeted;

/// How deep symlinks to symlinks, and indexes inside indexes, may go.
const MAX_INDIRECTION: usize = 8;
/// Entries an image archive may have: a few per layer and image, so this is far more than
/// any real one, and few enough that their index stays small in memory.
const MAX_ENTRIES: usize = 100_000;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const BZIP2_MAGIC: &[u8] = b"BZh";

/// What the first bytes of a stream say it is.
fn sniff(head: &[u8]) -> Result<Compression> {
    if head.starts_with(GZIP_MAGIC) {
        Ok(Compression::Gzip)
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Compression::Zstd)
    } else if head.starts_with(XZ_MAGIC) {
        Err(ArchiveError::UnsupportedCompression {
            format: "xz",
            hint: "xz -d",
        })
    } else if head.starts_with(BZIP2_MAGIC) {
        Err(ArchiveError::UnsupportedCompression {
            format: "bzip2",
            hint: "bunzip2",
        })
    } else {
        Ok(Compression::None)
    }
}

fn decoder<'a>(compression: Compression, input: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => input,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input)
                .map_err(|source| ArchiveError::Read { source })?,
        ),
    })
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
fn read_head(reader: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Where an archive comes from.
pub enum Input {
    /// A file opened by name (`-i FILE`), or stdin when it is one.
    File(File),
    /// A pipe, a terminal, a socket.
    Stream(Box<dyn Read>),
}

/// The archive as a seekable, uncompressed tar file: `input` itself when it is one,
/// else a copy decompressed into an unlinked file in `spool_dir` (gone when closed, however
/// the process ends).
pub fn seekable_tar(input: Input, spool_dir: &Path) -> Result<File> {
    let read_err = |source| ArchiveError::Read { source };
    let mut stream: Box<dyn Read> = match input {
        Input::File(mut file) => {
            let meta = file.metadata().map_err(read_err)?;
            let at_start = file.stream_position().map(|p| p == 0).unwrap_or(false);
            if meta.is_file() && at_start {
                let mut head = [0u8; 6];
                let n = file.read_at(&mut head, 0).map_err(read_err)?;
                if n == 0 {
                    return Err(ArchiveError::Empty);
                }
                if sniff(&head[..n])? == Compression::None {
                    return Ok(file);
                }
            }
            Box::new(file)
        }
        Input::Stream(s) => s,
    };
    let head = read_head(&mut stream, 6).map_err(read_err)?;
    if head.is_empty() {
        return Err(ArchiveError::Empty);
    }
    let compression = sniff(&head)?;
    let whole: Box<dyn Read> = Box::new(io::Cursor::new(head).chain(stream));
    let mut decoded = decoder(compression, whole)?;
    let (mut spool, path) = spool_file(spool_dir)?;
    // Unlinked at once: a killed load leaves nothing behind.
    std::fs::remove_file(&path).map_err(|source| ArchiveError::Io {
        op: "remove",
        path: path.clone(),
        source,
    })?;
    let copied = copy_tagged(&mut decoded, &mut spool, &path);
    match copied {
        Err(ArchiveError::Read { source })
            if compression != Compression::None
                && source.kind() == io::ErrorKind::UnexpectedEof =>
        {
            return Err(ArchiveError::Truncated {
                detail: format!("the {compression:?} stream ends early").to_lowercase(),
            });
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    spool.rewind().map_err(read_err)?;
    Ok(spool)
}

fn spool_file(dir: &Path) -> Result<(File, std::path::PathBuf)> {
    let path = dir.join(format!(
        "load.{}.{}",
        std::process::id(),
        SPOOL_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| ArchiveError::Io {
            op: "create",
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

static SPOOL_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `io::copy` that says which side failed.
fn copy_tagged(from: &mut dyn Read, to: &mut File, path: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ArchiveError::Read { source }),
        };
        to.write_all(&buf[..n]).map_err(|source| ArchiveError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        })?;
        total += n as u64;
    }
}

#[derive(Debug, Clone)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link; the target is a normalised archive path.
    Link {
        target: String,
    },
}

/// An indexed tar: every regular file's place, links resolved on use.
#[derive(Debug)]
pub struct Archive {
    file: File,
    entries: HashMap<String, Node>,
}

/// `a/./b/` → `a/b`; `None` for `..` anywhere or an absolute name.
fn normalise(name: &str) -> std::result::Result<String, &'static str> {
    if name.starts_with('/') {
        return Err("it is an absolute name");
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("it has a `..` component"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target against the link's directory; `None` if it leaves the archive.
fn resolve_symlink(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Whether the archive starts with a tar header (its checksum adds up), so that any other
/// file is called what it is rather than reported through a parser's complaint about it.
fn check_first_header(file: &File, len: u64) -> Result<()> {
    let not_tar = |reason: &str| ArchiveError::NotTar {
        reason: reason.to_string(),
    };
    if len < 512 {
        return Err(not_tar("it is shorter than one tar block"));
    }
    let mut block = [0u8; 512];
    file.read_exact_at(&mut block, 0)
        .map_err(|source| ArchiveError::Read { source })?;
    if !is_tar_header(&block) {
        return Err(not_tar("its first block is not a tar header"));
    }
    Ok(())
}

/// Whether `block` (512 bytes) is a tar header: its checksum field states the sum of its
/// bytes (the field itself counted as spaces), which is as true of v7 headers as of ustar,
/// GNU and PAX ones, and almost never of anything else.
pub fn is_tar_header(block: &[u8; 512]) -> bool {
    let field = std::str::from_utf8(&block[148..156]).unwrap_or("");
    let stated = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8);
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    stated == Ok(sum)
}

/// `input` decompressed as its first bytes say (gzip or zstd; anything else is passed on as
/// it is), for a stream read once from start to end (`nook import`); `None` when it is empty.
/// A compressed stream that ends early fails with an error that calls it truncated.
pub fn decompressed<'a>(mut input: Box<dyn Read + 'a>) -> Result<Option<Box<dyn Read + 'a>>> {
    let head = read_head(&mut input, 6).map_err(|source| ArchiveError::Read { source })?;
    if head.is_empty() {
        return Ok(None);
    }
    let compression = sniff(&head)?;
    let whole: Box<dyn Read + 'a> = Box::new(io::Cursor::new(head).chain(input));
    let decoded = decoder(compression, whole)?;
    Ok(Some(match compression {
        Compression::None => decoded,
        _ => Box::new(NamedTruncation {
            inner: decoded,
            compression,
        }),
    }))
}

/// Says what an early end of a compressed stream means: the decoders' own word for it is
/// "unexpected end of file", which names no file.
struct NamedTruncation<'a> {
    inner: Box<dyn Read + 'a>,
    compression: Compression,
}

impl Read for NamedTruncation<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the input is truncated: its {} stream ends early",
                        format!("{:?}", self.compression).to_lowercase()
                    ),
                )
            } else {
                e
            }
        })
    }
}

/// A parser's message made fit for one error line: the tar crate quotes header bytes, which
/// may hold anything.
fn one_line(message: &str) -> String {
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    clean
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Archive {
    /// Indexes `file`, refusing escaping entries, device files and truncation.
    pub fn index(file: File) -> Result<Archive> {
        let len = file
            .metadata()
            .map_err(|source| ArchiveError::Read { source })?
            .len();
        if len == 0 {
            return Err(ArchiveError::Empty);
        }
        check_first_header(&file, len)?;
        let mut entries = HashMap::new();
        // Where the data of the last entry ends, rounded to a block: the end-of-archive
        // marker must follow.
        let mut end = 0u64;
        let mut last_name: Option<String> = None;
        // The tar crate reads long names and PAX records whole: cap them (see
        // layer::headers), and the number of entries, whose names are kept here.
        let (reader, budget) = budgeted(&file);
        let mut tar = tar::Archive::new(reader);
        let mut iter = tar
            .entries_with_seek()
            .map_err(|source| ArchiveError::Read { source })?;
        while let Some(entry) = budget.next(&mut iter) {
            if entries.len() >= MAX_ENTRIES {
                return Err(ArchiveError::TooManyEntries { limit: MAX_ENTRIES });
            }
            let entry = match entry {
                Ok(e) => e,
                Err(source) => {
                    return Err(match &last_name {
                        _ if budget.exceeded() => ArchiveError::Entry {
                            entry: match &last_name {
                                Some(after) => format!("after `{after}`"),
                                None => "at the start".into(),
                            },
                            source,
                        },
                        None => ArchiveError::NotTar {
                            reason: one_line(&source.to_string()),
                        },
                        Some(_) if end + 512 > len => ArchiveError::Truncated {
                            detail: "it ends inside an entry header".into(),
                        },
                        Some(after) => ArchiveError::Entry {
                            entry: format!("after `{after}`"),
                            source: io::Error::new(source.kind(), one_line(&source.to_string())),
                        },
                    });
                }
            };
            let raw_name = utf8(&entry.path_bytes());
            let offset = entry.raw_file_position();
            let size = entry.size();
            let data_end = offset.saturating_add(size);
            if data_end > len {
                return Err(ArchiveError::Truncated {
                    detail: format!(
                        "entry `{raw_name}` needs {size} bytes but only {} remain",
                        len.saturating_sub(offset)
                    ),
                });
            }
            end = data_end.div_ceil(512) * 512;
            last_name = Some(raw_name.clone());
            let escape = |reason: String| ArchiveError::Escape {
                entry: raw_name.clone(),
                reason,
            };
            let name = normalise(&raw_name).map_err(|r| escape(r.to_string()))?;
            use tar::EntryType as T;
            let kind = entry.header().entry_type();
            let node = match kind {
                T::Regular | T::Continuous => Some(Node::File { offset, size }),
                T::Directory | T::XGlobalHeader => None,
                T::Symlink | T::Link => {
                    let target = utf8(&entry.link_name_bytes().unwrap_or_default());
                    let resolved = if kind == T::Symlink {
                        resolve_symlink(&name, &target)
                    } else {
                        normalise(&target).ok()
                    };
                    let resolved = resolved.ok_or_else(|| {
                        escape(format!("it links to `{target}`, outside the archive"))
                    })?;
                    Some(Node::Link { target: resolved })
                }
                other => {
                    return Err(ArchiveError::UnexpectedEntry {
                        entry: raw_name,
                        kind: format!("{other:?}").to_lowercase(),
                    });
                }
            };
            if let Some(node) = node
                && !name.is_empty()
            {
                entries.insert(name, node);
            }
        }
        if last_name.is_none() {
            return Err(ArchiveError::NotTar {
                reason: "it holds no entries".into(),
            });
        }
        let mut marker = [0u8; 512];
        let n = file
            .read_at(&mut marker, end)
            .map_err(|source| ArchiveError::Read { source })?;
        if n < 512 || marker.iter().any(|&b| b != 0) {
            return Err(ArchiveError::Truncated {
                detail: "it ends without the end-of-archive marker".into(),
            });
        }
        Ok(Archive { file, entries })
    }

    pub fn contains(&self, name: &str) -> bool {
        normalise(name).is_ok_and(|n| self.entries.contains_key(&n))
    }

    /// The place of regular file `name`, following links inside the archive.
    fn locate(&self, name: &str, needed_by: &str) -> Result<(u64, u64)> {
        let mut current = normalise(name).map_err(|reason| ArchiveError::Escape {
            entry: name.to_string(),
            reason: reason.to_string(),
        })?;
        for _ in 0..MAX_INDIRECTION {
            match self.entries.get(&current) {
                Some(Node::File { offset, size }) => return Ok((*offset, *size)),
                Some(Node::Link { target }) => current = target.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing {
            entry: name.to_string(),
            needed_by: needed_by.to_string(),
        })
    }

    /// The content of `name` (a regular file, or a link to one) and its size.
    pub fn open(&self, name: &str, needed_by: &str) -> Result<(EntryReader<'_>, u64)> {
        let (offset, size) = self.locate(name, needed_by)?;
        Ok((
            EntryReader {
                file: &self.file,
                pos: offset,
                end: offset + size,
            },
            size,
        ))
    }

    /// Reads a small file whole, refusing more than `limit` bytes.
    fn read_small(
        &self,
        name: &str,
        needed_by: &str,
        what: &'static str,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let (mut reader, size) = self.open(name, needed_by)?;
        if size > limit {
            return Err(ArchiveError::TooLarge {
                entry: name.to_string(),
                what,
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| ArchiveError::Read { source })?;
        Ok(bytes)
    }
}

/// One entry's bytes, read at their offset (several may be open at once).
pub struct EntryReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive file shrank while being read",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::DockerArchive => "docker-archive",
            Format::OciArchive => "oci-archive",
        })
    }
}

/// What to load.
#[derive(Debug)]
pub struct Plan {
    pub format: Format,
    pub images: Vec<PlannedImage>,
    /// One line each: names that could not be used, and similar.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct PlannedImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// From the config's `rootfs.diff_ids`, bottom first; `layers[i]` must hash to `diff_ids[i]`.
    pub diff_ids: Vec<Digest>,
    pub layers: Vec<PlannedLayer>,
    /// Full, normalised references with a tag.
    pub names: Vec<String>,
    /// The image manifest (digest, bytes) from an OCI archive, checked against its digest.
    pub manifest: Option<(Digest, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// The archive entry holding the layer blob.
    pub entry: String,
    /// The blob's digest and size, when the archive states them (OCI descriptors, and
    /// docker-archive entries named `blobs/sha256/<hex>`).
    pub blob_digest: Option<Digest>,
    pub blob_size: Option<u64>,
    /// From the OCI media type; `None` (docker-archive) means: look at the first bytes.
    pub compression: Option<Compression>,
    pub diff_id: Digest,
}

/// `blobs/sha256/<hex>` → that digest.
fn digest_in_blob_path(path: &str) -> Option<Digest> {
    let n = normalise(path).ok()?;
    Digest::from_hex(n.strip_prefix("blobs/sha256/")?).ok()
}

/// Reads what `archive` holds: a docker-archive when it has `manifest.json` (Docker 25's
/// archives have both files; their manifest.json carries the tags), else an OCI layout.
/// Images in an index are chosen for `platform`.
pub fn plan(archive: &Archive, platform: &PlatformSpec) -> Result<Plan> {
    if archive.contains("manifest.json") {
        plan_docker(archive)
    } else if archive.contains("index.json") {
        plan_oci(archive, platform)
    } else {
        Err(ArchiveError::UnknownFormat)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn malformed(what: &str, message: impl ToString) -> ArchiveError {
    ArchiveError::Malformed {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// Turns names found in an archive into full references with a tag; the others become
/// warnings (a digest-only name cannot be a tag).
fn usable_name(raw: &str, warnings: &mut Vec<String>) -> Option<String> {
    match Reference::parse(raw) {
        Ok(r) if r.tag.is_some() && r.digest.is_none() => Some(r.to_string()),
        Ok(_) => {
            warnings.push(format!("ignoring name `{raw}`: it is not a tag"));
            None
        }
        Err(e) => {
            warnings.push(format!("ignoring name `{raw}`: {e}"));
            None
        }
    }
}

/// Adds an image, or merges its names into an earlier entry for the same config.
fn push_image(images: &mut Vec<PlannedImage>, image: PlannedImage) {
    match images
        .iter_mut()
        .find(|i| i.config_digest == image.config_digest)
    {
        Some(existing) => {
            for n in image.names {
                if !existing.names.contains(&n) {
                    existing.names.push(n);
                }
            }
        }
        None => images.push(image),
    }
}

fn plan_docker(archive: &Archive) -> Result<Plan> {
    let bytes = archive.read_small(
        "manifest.json",
        "a docker-archive",
        "manifest",
        MAX_MANIFEST_BYTES,
    )?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|e| malformed("manifest.json", e))?;
    if entries.is_empty() {
        return Err(malformed("manifest.json", "it lists no images"));
    }
    let mut warnings = Vec::new();
    let mut images = Vec::new();
    for entry in entries {
        let config = archive.read_small(
            &entry.config,
            "manifest.json",
            "image config",
            MAX_CONFIG_BYTES,
        )?;
        let config_digest = Digest::of(&config);
        // `<hex>.json` (docker save, skopeo) and `blobs/sha256/<hex>` (Docker 25) name the
        // config by its digest: a name that disagrees is a lie about the content.
        let stated = digest_in_blob_path(&entry.config).or_else(|| {
            let file = entry.config.rsplit('/').next()?;
            Digest::from_hex(file.strip_suffix(".json")?).ok()
        });
        if let Some(stated) = stated
            && stated != config_digest
        {
            return Err(ArchiveError::DigestMismatch {
                what: format!("image config `{}`", entry.config),
                expected: stated,
                actual: config_digest,
            });
        }
        let diff_ids = config_diff_ids(&config)?;
        if diff_ids.len() != entry.layers.len() {
            return Err(malformed(
                "manifest.json",
                format!(
                    "image {} lists {} layers but its config has {} diff ids",
                    config_digest,
                    entry.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let layers = entry
            .layers
            .iter()
            .zip(&diff_ids)
            .map(|(path, diff_id)| {
                let (_, size) = archive.open(path, "manifest.json")?;
                let blob_digest = digest_in_blob_path(path);
                Ok(PlannedLayer {
                    entry: path.clone(),
                    blob_size: blob_digest.as_ref().map(|_| size),
                    blob_digest,
                    compression: None,
                    diff_id: diff_id.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let names = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|n| usable_name(n, &mut warnings))
            .collect();
        push_image(
            &mut images,
            PlannedImage {
                config,
                config_digest,
                diff_ids,
                layers,
                names,
                manifest: None,
            },
        );
    }
    Ok(Plan {
        format: Format::DockerArchive,
        images,
        warnings,
    })
}

/// Reads blob `digest` of at most `limit` bytes and checks its size and digest.
fn read_blob(
    archive: &Archive,
    digest: &Digest,
    size: u64,
    what: &'static str,
    limit: u64,
) -> Result<Vec<u8>> {
    let path = format!("blobs/sha256/{}", digest.hex());
    let bytes = archive.read_small(&path, "index.json", what, limit)?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(ArchiveError::DigestMismatch {
            what: format!("{what} `{path}`"),
            expected: digest.clone(),
            actual,
        });
    }
    if bytes.len() as u64 != size {
        return Err(ArchiveError::SizeMismatch {
            what: format!("{what} `{path}`"),
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

fn descriptor_digest(d: &oci_spec::image::Descriptor, what: &str) -> Result<Digest> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e| malformed(what, e))
}

fn plan_oci(archive: &Archive, platform: &PlatformSpec) -> Result<Plan> {
    if !archive.contains("oci-layout") {
        return Err(ArchiveError::Missing {
            entry: "oci-layout".into(),
            needed_by: "an OCI image layout".into(),
        });
    }
    let layout = archive.read_small("oci-layout", "an OCI image layout", "oci-layout", 4096)?;
    let version = serde_json::from_slice::<serde_json::Value>(&layout)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
    if version.is_none() {
        return Err(malformed("oci-layout", "no imageLayoutVersion"));
    }
    let bytes = archive.read_small(
        "index.json",
        "an OCI image layout",
        "index",
        MAX_MANIFEST_BYTES,
    )?;
    let index = match manifest::parse(&bytes, None).map_err(|e| malformed("index.json", e))? {
        Manifest::Index(i) => i,
        Manifest::Image(_) => return Err(malformed("index.json", "it is not an image index")),
    };
    if index.manifests().is_empty() {
        return Err(malformed("index.json", "it lists no images"));
    }
    let mut warnings = Vec::new();
    let mut images = Vec::new();
    for top in index.manifests() {
        let annotations = top.annotations().clone().unwrap_or_default();
        let names: Vec<String> = annotations
            .get(ANNOTATION_IMAGE_NAME)
            .or_else(|| annotations.get(ANNOTATION_REF_NAME))
            .and_then(|n| usable_name(n, &mut warnings))
            .into_iter()
            .collect();
        let mut descriptor = top.clone();
        let mut depth = 0;
        let (manifest_digest, manifest_bytes, image) = loop {
            let digest = descriptor_digest(&descriptor, "index.json")?;
            let bytes = read_blob(
                archive,
                &digest,
                descriptor.size(),
                "manifest",
                MAX_MANIFEST_BYTES,
            )?;
            match manifest::parse(&bytes, Some(descriptor.media_type().as_ref()))
                .map_err(|e| malformed(&format!("manifest {digest}"), e))?
            {
                Manifest::Image(m) => break (digest, bytes, m),
                Manifest::Index(i) => {
                    depth += 1;
                    if depth > MAX_INDIRECTION {
                        return Err(malformed("index.json", "indexes nest too deeply"));
                    }
                    descriptor = manifest::select_platform(&i, platform)
                        .map_err(|e| malformed(&format!("index {digest}"), e))?;
                }
            }
        };
        let config_digest = descriptor_digest(image.config(), "manifest")?;
        let config = read_blob(
            archive,
            &config_digest,
            image.config().size(),
            "image config",
            MAX_CONFIG_BYTES,
        )?;
        let diff_ids = config_diff_ids(&config)?;
        if diff_ids.len() != image.layers().len() {
            return Err(malformed(
                &format!("manifest {manifest_digest}"),
                format!(
                    "it lists {} layers but the image config has {} diff ids",
                    image.layers().len(),
                    diff_ids.len()
                ),
            ));
        }
        let layers = image
            .layers()
            .iter()
            .zip(&diff_ids)
            .map(|(layer, diff_id)| {
                let digest = descriptor_digest(layer, "manifest")?;
                let compression = manifest::layer_compression(layer.media_type().as_ref())
                    .map_err(|e| malformed(&format!("manifest {manifest_digest}"), e))?;
                let entry = format!("blobs/sha256/{}", digest.hex());
                archive.open(&entry, &format!("manifest {manifest_digest}"))?;
                Ok(PlannedLayer {
                    entry,
                    blob_digest: Some(digest),
                    blob_size: Some(layer.size()),
                    compression: Some(compression),
                    diff_id: diff_id.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        push_image(
            &mut images,
            PlannedImage {
                config,
                config_digest,
                diff_ids,
                layers,
                names,
                manifest: Some((manifest_digest, manifest_bytes)),
            },
        );
    }
    Ok(Plan {
        format: Format::OciArchive,
        images,
        warnings,
    })
}

/// Hashes a layer blob and compares it with what the archive says, before any of it is
/// extracted: a blob that lies never reaches the store.
pub fn verify_blob(archive: &Archive, layer: &PlannedLayer) -> Result<()> {
    let Some(expected) = &layer.blob_digest else {
        return Ok(());
    };
    let (reader, _) = archive.open(&layer.entry, "the manifest")?;
    let (actual, size) = HashingReader::new(reader)
        .finish()
        .map_err(|source| ArchiveError::Read { source })?;
    if &actual != expected {
        return Err(ArchiveError::DigestMismatch {
            what: format!("layer `{}`", layer.entry),
            expected: expected.clone(),
            actual,
        });
    }
    if let Some(stated) = layer.blob_size
        && stated != size
    {
        return Err(ArchiveError::SizeMismatch {
            what: format!("layer `{}`", layer.entry),
            expected: stated,
            actual: size,
        });
    }
    Ok(())
}

/// The layer's uncompressed tar stream. A docker-archive does not say how a layer is
/// compressed (Docker writes them plain but loads gzip too), so its first bytes decide.
pub fn layer_stream<'a>(archive: &'a Archive, layer: &PlannedLayer) -> Result<Box<dyn Read + 'a>> {
    let (mut reader, _) = archive.open(&layer.entry, "the manifest")?;
    let compression = match layer.compression {
        Some(c) => c,
        None => {
            let mut head = [0u8; 6];
            let n = read_head(&mut reader, head.len())
                .map_err(|source| ArchiveError::Read { source })?;
            head[..n.len()].copy_from_slice(&n);
            let c = sniff(&head[..n.len()])?;
            reader = archive.open(&layer.entry, "the manifest")?.0;
            c
        }
    };
    decoder(compression, Box::new(reader))
}

#[cfg(test)]
mod tests {
    use super::super::write::tests::{MemoryLayers, files_of, image, layer_tar};
    use super::super::write::{TarSink, write_docker_archive, write_oci_layout};
    use super::*;

    fn host() -> PlatformSpec {
        PlatformSpec::host()
    }

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }

    fn index(bytes: &[u8]) -> Result<Archive> {
        Archive::index(file_with(bytes))
    }

    fn layer_bytes(archive: &Archive, layer: &PlannedLayer) -> Vec<u8> {
        verify_blob(archive, layer).unwrap();
        let mut out = Vec::new();
        layer_stream(archive, layer)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn saved(oci: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
        let base = layer_tar("a", b"base");
        let top = layer_tar("b", b"top");
        let one = image(&[&base, &top], &["busybox:latest", "127.0.0.1:5000/x/y:1"]);
        let two = image(&[&base], &[]);
        let layers = MemoryLayers::new(&[base.clone(), top.clone()]);
        let mut sink = TarSink::new(Vec::new());
        if oci {
            write_oci_layout(&mut sink, &[one, two], &layers).unwrap();
        } else {
            write_docker_archive(&mut sink, &[one, two], &layers).unwrap();
        }
        (sink.finish().unwrap(), vec![base, top])
    }

    #[test]
    fn what_nook_saves_it_loads() {
        for oci in [false, true] {
            let (bytes, tars) = saved(oci);
            let archive = index(&bytes).unwrap();
            let plan = plan(&archive, &host()).unwrap();
            assert_eq!(
                plan.format,
                if oci {
                    Format::OciArchive
                } else {
                    Format::DockerArchive
                }
            );
            assert_eq!(plan.images.len(), 2, "oci: {oci}");
            let one = &plan.images[0];
            assert_eq!(
                one.names,
                ["docker.io/library/busybox:latest", "127.0.0.1:5000/x/y:1"]
            );
            assert_eq!(one.config_digest, Digest::of(&one.config));
            assert_eq!(one.layers.len(), 2);
            assert_eq!(layer_bytes(&archive, &one.layers[0]), tars[0]);
            assert_eq!(layer_bytes(&archive, &one.layers[1]), tars[1]);
            assert!(plan.images[1].names.is_empty());
            assert_eq!(one.manifest.is_some(), oci);
            assert!(plan.warnings.is_empty());
        }
    }

    #[test]
    fn compressed_archives_are_spooled() {
        let (bytes, _) = saved(false);
        let spool = tempfile::tempdir().unwrap();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&bytes[..], 1).unwrap();
        for compressed in [&gz, &zst, &bytes] {
            for as_file in [false, true] {
                let input = if as_file {
                    Input::File(file_with(compressed))
                } else {
                    Input::Stream(Box::new(io::Cursor::new(compressed.clone())))
                };
                let file = seekable_tar(input, spool.path()).unwrap();
                let archive = Archive::index(file).unwrap();
                assert_eq!(plan(&archive, &host()).unwrap().images.len(), 2);
            }
        }
        // Spool files are unlinked as soon as they are made.
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
        for compressed in [&gz, &zst] {
            let cut = &compressed[..compressed.len() / 2];
            let err = seekable_tar(
                Input::Stream(Box::new(io::Cursor::new(cut.to_vec()))),
                spool.path(),
            )
            .unwrap_err();
            assert!(matches!(err, ArchiveError::Truncated { .. }), "{err}");
        }
        let xz = [XZ_MAGIC, b"rest"].concat();
        let err = seekable_tar(Input::File(file_with(&xz)), spool.path()).unwrap_err();
        assert!(err.to_string().contains("xz -d"), "{err}");
    }

    #[test]
    fn truncation_is_noticed_everywhere() {
        let (bytes, _) = saved(true);
        // Cut inside data, inside a header, at an entry boundary, and just before the marker.
        let mut cuts = vec![
            bytes.len() / 2,
            700,
            bytes.len() - 1024,
            bytes.len() - 1024 + 100,
        ];
        // An entry boundary: right after the first entry's data.
        cuts.push(512 + OCI_LAYOUT_LEN.div_ceil(512) * 512);
        for cut in cuts {
            match index(&bytes[..cut]) {
                Err(ArchiveError::Truncated { .. }) => {}
                Err(e) => panic!("cut at {cut}: {e}"),
                Ok(_) => panic!("cut at {cut}: accepted"),
            }
        }
    }

    const OCI_LAYOUT_LEN: usize = super::super::OCI_LAYOUT.len();

    #[test]
    fn non_archives_are_refused() {
        assert!(matches!(index(b""), Err(ArchiveError::Empty)));
        let err = index(&[b'x'; 2000]).unwrap_err();
        assert!(matches!(err, ArchiveError::NotTar { .. }), "{err}");
        let spool = tempfile::tempdir().unwrap();
        let err = seekable_tar(
            Input::Stream(Box::new(io::Cursor::new(Vec::new()))),
            spool.path(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Empty), "{err}");
        // A tar, but neither format.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_cksum();
        b.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
        let archive = index(&b.into_inner().unwrap()).unwrap();
        assert!(matches!(
            plan(&archive, &host()),
            Err(ArchiveError::UnknownFormat)
        ));
    }

    /// A tar with raw names (the tar crate refuses to write `..`).
    fn raw_tar(entries: &[(tar::EntryType, &str, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (kind, name, link, data) in entries {
            let mut h = tar::Header::new_old();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// The tar crate would read a long name or PAX header whole, however large.
    #[test]
    fn oversized_headers_and_too_many_entries_are_refused() {
        use tar::EntryType as T;
        let big = vec![b'a'; crate::layer::headers::MAX_HEADER_BYTES as usize + 1];
        for kind in [T::XHeader, T::GNULongName] {
            let mut b = tar::Builder::new(Vec::new());
            for (kind, name, data) in [
                (T::Regular, "first", &b"1"[..]),
                (kind, "x", &big),
                (T::Regular, "after", &b"2"[..]),
            ] {
                // ustar: the tar crate ignores extension headers in the old format.
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(kind);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data).unwrap();
            }
            let bytes = b.into_inner().unwrap();
            let err = index(&bytes).err();
            assert!(
                matches!(&err, Some(ArchiveError::Entry { entry, .. }) if entry == "after `first`"),
                "{kind:?}: {err:?}"
            );
        }
        let many: Vec<_> = (0..MAX_ENTRIES + 1).map(|i| format!("f{i}")).collect();
        let entries: Vec<_> = many
            .iter()
            .map(|n| (T::Regular, n.as_str(), "", &b""[..]))
            .collect();
        let err = index(&raw_tar(&entries)).err();
        assert!(
            matches!(err, Some(ArchiveError::TooManyEntries { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn escaping_entries_are_refused() {
        use tar::EntryType as T;
        for entries in [
            vec![(T::Regular, "../evil", "", &b"x"[..])],
            vec![(T::Regular, "a/../../evil", "", &b"x"[..])],
            vec![(T::Regular, "/etc/evil", "", &b"x"[..])],
            vec![(T::Symlink, "manifest.json", "/etc/passwd", &b""[..])],
            vec![(T::Symlink, "a/link", "../../etc/passwd", &b""[..])],
            vec![(T::Link, "manifest.json", "../x", &b""[..])],
        ] {
            let err = index(&raw_tar(&entries)).err();
            assert!(
                matches!(err, Some(ArchiveError::Escape { .. })),
                "{entries:?}: {err:?}"
            );
        }
        let err = index(&raw_tar(&[(T::Char, "dev", "", &b""[..])])).err();
        assert!(
            matches!(err, Some(ArchiveError::UnexpectedEntry { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn links_inside_the_archive_are_followed() {
        // Docker's own `docker save` links a repeated layer to its first copy.
        let (bytes, tars) = saved(false);
        let files = files_of(&bytes);
        let base_path = format!("{}/layer.tar", Digest::of(&tars[0]).hex());
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&files["manifest.json"]).unwrap();
        manifest[1]["Layers"][0] = "other/layer.tar".into();
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &files {
            let data = if name == "manifest.json" {
                serde_json::to_vec(&manifest).unwrap()
            } else {
                data.clone()
            };
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "other/layer.tar", format!("../{base_path}"))
            .unwrap();
        let archive = index(&b.into_inner().unwrap()).unwrap();
        let plan = plan(&archive, &host()).unwrap();
        assert_eq!(layer_bytes(&archive, &plan.images[1].layers[0]), tars[0]);
    }

    /// Rewrites one file of a saved archive.
    fn with_file(bytes: &[u8], name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (n, data) in files_of(bytes) {
            let data = if n == name { content.to_vec() } else { data };
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, &n, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn lies_about_digests_are_caught() {
        // An OCI layer blob whose content differs from its name.
        let (bytes, tars) = saved(true);
        let path = format!("blobs/sha256/{}", Digest::of(&tars[1]).hex());
        let forged = layer_tar("b", b"TOP");
        let archive = index(&with_file(&bytes, &path, &forged)).unwrap();
        let plan = plan(&archive, &host()).unwrap();
        let err = verify_blob(&archive, &plan.images[0].layers[1]).unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");

        // A docker-archive config whose name is not its digest.
        let (bytes, _) = saved(false);
        let files = files_of(&bytes);
        let config_name = files
            .keys()
            .find(|n| n.ends_with(".json") && *n != "manifest.json")
            .unwrap()
            .clone();
        let mut config: serde_json::Value = serde_json::from_slice(&files[&config_name]).unwrap();
        config["config"]["Cmd"] = serde_json::json!(["evil"]);
        let archive = index(&with_file(
            &bytes,
            &config_name,
            &serde_json::to_vec(&config).unwrap(),
        ))
        .unwrap();
        let err = super::plan(&archive, &host()).unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");

        // An OCI manifest that lies about its config.
        let (bytes, _) = saved(true);
        let files = files_of(&bytes);
        let index_json: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let manifest_hex = index_json["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let manifest_path = format!("blobs/sha256/{manifest_hex}");
        let archive = index(&with_file(&bytes, &manifest_path, b"{}")).unwrap();
        let err = super::plan(&archive, &host()).unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn compressed_layers_inside_are_read() {
        let tar_bytes = layer_tar("a", b"gzipped");
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar_bytes).unwrap();
            e.finish().unwrap()
        };
        let (bytes, tars) = saved(false);
        let path = format!("{}/layer.tar", Digest::of(&tars[0]).hex());
        let archive = index(&with_file(&bytes, &path, &gz)).unwrap();
        let plan = plan(&archive, &host()).unwrap();
        // The diff id check belongs to the import; here the stream is just decompressed.
        assert_eq!(layer_bytes(&archive, &plan.images[1].layers[0]), tar_bytes);
    }

    #[test]
    fn names_found_in_archives() {
        // skopeo's `oci-archive:FILE:name:tag` writes the name as ref.name; a bare tag is
        // read as a name, as Podman does.
        let mut warnings = Vec::new();
        assert_eq!(
            usable_name("loaded:v1", &mut warnings).as_deref(),
            Some("docker.io/library/loaded:v1")
        );
        assert_eq!(
            usable_name("v1", &mut warnings).as_deref(),
            Some("docker.io/library/v1:latest")
        );
        assert_eq!(usable_name("Not Valid", &mut warnings), None);
        assert_eq!(warnings.len(), 1);
    }
}
