//! Tar-split: what it takes to rebuild a layer's tar stream byte for byte from its extracted
//! files, so a pulled layer can be pushed or saved with the diff id its image config names.
//!
//! The store keeps layers extracted, not as the tars they came in. While a stream is being
//! extracted, [`Recorder`] keeps every byte that is not a regular file's content (headers,
//! PAX records, padding, the end-of-archive blocks and whatever follows them) and, for each
//! file's content, only the path it was written to and its length. [`Rebuilt`] reads that
//! record back, splicing the files' bytes in, and checks the result against the diff id, so a
//! layer whose files were changed is reported rather than passed on. containers/storage keeps
//! the same kind of record (its "tar-split") for the same reason.
//!
//! The record is a gzip stream of segments: `R` length bytes (verbatim stream bytes), `F`
//! length path-length path (that many bytes from the file), and `E` total-length at the end.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::image::digest::{Digest, Hasher};

/// The record's file name beside a layer's `diff/` directory.
pub const FILE_NAME: &str = "tar-split.gz";

const MAGIC: &[u8] = b"nook-tar-split 1\n";
const RAW: u8 = b'R';
const FILE: u8 = b'F';
const END: u8 = b'E';
/// Verbatim bytes are written out in pieces of at most this size.
const RAW_PIECE: usize = 64 * 1024;

type Sink = flate2::write::GzEncoder<BufWriter<File>>;

struct State {
    sink: Option<Sink>,
    error: Option<io::Error>,
    /// Stream offset of the next byte read.
    position: u64,
    /// Verbatim bytes not yet written as a segment.
    raw: Vec<u8>,
    /// Bytes of the current file's content still to come.
    content_left: u64,
}

impl State {
    fn emit(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Some(sink) = self.sink.as_mut()
            && let Err(e) = sink.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.raw);
        let mut head = vec![RAW];
        head.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        self.emit(&head);
        self.emit(&raw);
        self.raw = raw;
        self.raw.clear();
    }
}

/// The side of a recording that the extractor talks to: it announces each file's content
/// just before reading it.
#[derive(Clone)]
pub struct SplitHandle(Rc<RefCell<State>>);

impl SplitHandle {
    /// The next `size` bytes of the stream, which start at stream offset `at`, are the content
    /// of the file written to `path` (relative to the layer's root). An announcement that does
    /// not line up with the stream is ignored: those bytes are then kept verbatim, which costs
    /// space but never correctness.
    pub fn content(&self, path: &Path, size: u64, at: u64) {
        let mut state = self.0.borrow_mut();
        if size == 0 || at != state.position || state.content_left != 0 {
            return;
        }
        state.flush_raw();
        let name = path.as_os_str().as_bytes();
        let mut head = vec![FILE];
        head.extend_from_slice(&size.to_le_bytes());
        head.extend_from_slice(&(name.len() as u32).to_le_bytes());
        head.extend_from_slice(name);
        state.emit(&head);
        state.content_left = size;
    }

    /// Ends the record once the whole stream has been read through the recorder.
    pub fn finish(self) -> io::Result<()> {
        let mut state = self.0.borrow_mut();
        state.flush_raw();
        let mut end = vec![END];
        end.extend_from_slice(&state.position.to_le_bytes());
        state.emit(&end);
        if let Some(e) = state.error.take() {
            return Err(e);
        }
        match state.sink.take() {
            Some(sink) => {
                let file = sink.finish()?.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()
            }
            None => Ok(()),
        }
    }
}

/// A reader that records the stream it passes on (see the module documentation).
pub struct Recorder<R> {
    inner: R,
    state: SplitHandle,
}

impl<R: Read> Recorder<R> {
    /// Records `inner` into a new file at `record`.
    pub fn create(inner: R, record: &Path) -> io::Result<(Recorder<R>, SplitHandle)> {
        let file = File::create(record)?;
        let mut sink =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        sink.write_all(MAGIC)?;
        let state = SplitHandle(Rc::new(RefCell::new(State {
            sink: Some(sink),
            error: None,
            position: 0,
            raw: Vec::new(),
            content_left: 0,
        })));
        Ok((
            Recorder {
                inner,
                state: state.clone(),
            },
            state,
        ))
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.0.borrow_mut();
        let skipped = (n as u64).min(state.content_left) as usize;
        state.content_left -= skipped as u64;
        state.position += n as u64;
        state.raw.extend_from_slice(&buf[skipped..n]);
        if state.raw.len() >= RAW_PIECE {
            state.flush_raw();
        }
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("cannot read the tar-split record `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the tar-split record `{path}` is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// The exact length of the stream a record rebuilds, read from its end.
pub fn stream_size(record: &Path) -> Result<u64, SplitError> {
    let mut segments = Segments::open(record)?;
    loop {
        match segments.next_segment()? {
            Segment::Raw(len) => segments.skip(len)?,
            Segment::File { .. } => {}
            Segment::End(total) => return Ok(total),
        }
    }
}

/// A quick look at whether the files a record names are still there with the sizes their tar
/// entries had, without reading their content (what `system check --quick` does; a full check
/// rebuilds the stream with [`Rebuilt`]). `Some(why)` for the first file that is not.
pub fn check_sizes(root: &Path, record: &Path) -> Result<Option<String>, SplitError> {
    let mut segments = Segments::open(record)?;
    loop {
        match segments.next_segment()? {
            Segment::Raw(len) => segments.skip(len)?,
            Segment::File { size, path } => {
                let shown = format!("/{}", path.display());
                match std::fs::symlink_metadata(root.join(&path)) {
                    Ok(meta) if !meta.is_file() => {
                        return Ok(Some(format!(
                            "the layer's file `{shown}` is no longer a regular file"
                        )));
                    }
                    Ok(meta) if meta.len() != size => {
                        return Ok(Some(format!(
                            "the layer's file `{shown}` has {} bytes where its tar entry had {size}",
                            meta.len()
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Ok(Some(format!(
                            "the layer's file `{shown}` cannot be read: {e}"
                        )));
                    }
                }
            }
            Segment::End(_) => return Ok(None),
        }
    }
}

enum Segment {
    Raw(u64),
    File { size: u64, path: PathBuf },
    End(u64),
}

struct Segments {
    path: PathBuf,
    input: flate2::read::GzDecoder<io::BufReader<File>>,
}

impl Segments {
    fn open(path: &Path) -> Result<Segments, SplitError> {
        let read_err = |source| SplitError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let mut segments = Segments {
            path: path.to_path_buf(),
            input: flate2::read::GzDecoder::new(io::BufReader::new(file)),
        };
        let mut magic = vec![0u8; MAGIC.len()];
        segments.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(segments.corrupt("it does not start with the expected header"));
        }
        Ok(segments)
    }

    fn corrupt(&self, message: &str) -> SplitError {
        SplitError::Corrupt {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SplitError> {
        self.input.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt("it ends early")
            } else {
                SplitError::Read {
                    path: self.path.clone(),
                    source,
                }
            }
        })
    }

    fn u64(&mut self) -> Result<u64, SplitError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn next_segment(&mut self) -> Result<Segment, SplitError> {
        let mut kind = [0u8];
        self.read_exact(&mut kind)?;
        match kind[0] {
            RAW => Ok(Segment::Raw(self.u64()?)),
            FILE => {
                let size = self.u64()?;
                let mut len = [0u8; 4];
                self.read_exact(&mut len)?;
                let len = u32::from_le_bytes(len) as usize;
                if len > 64 * 1024 {
                    return Err(self.corrupt("a path is implausibly long"));
                }
                let mut name = vec![0u8; len];
                self.read_exact(&mut name)?;
                Ok(Segment::File {
                    size,
                    path: PathBuf::from(std::ffi::OsString::from_vec(name)),
                })
            }
            END => Ok(Segment::End(self.u64()?)),
            _ => Err(self.corrupt("unknown segment")),
        }
    }

    fn skip(&mut self, len: u64) -> Result<(), SplitError> {
        let copied =
            io::copy(&mut (&mut self.input).take(len), &mut io::sink()).map_err(|source| {
                SplitError::Read {
                    path: self.path.clone(),
                    source,
                }
            })?;
        if copied != len {
            return Err(self.corrupt("it ends early"));
        }
        Ok(())
    }
}

/// A layer's tar stream rebuilt from its files and record (see the module documentation).
/// Reading fails with `InvalidData` when the result would not be the original stream.
pub struct Rebuilt {
    segments: Segments,
    root: PathBuf,
    expected: Digest,
    size: u64,
    hasher: Hasher,
    produced: u64,
    current: Current,
    done: bool,
}

enum Current {
    Idle,
    Raw(u64),
    File {
        file: File,
        left: u64,
        path: PathBuf,
    },
}

impl Rebuilt {
    /// `root` is the layer's `diff/` directory, `record` its tar-split, `expected` its diff id.
    pub fn open(root: &Path, record: &Path, expected: &Digest) -> Result<Rebuilt, SplitError> {
        let size = stream_size(record)?;
        Ok(Rebuilt {
            segments: Segments::open(record)?,
            root: root.to_path_buf(),
            expected: expected.clone(),
            size,
            hasher: Hasher::new(),
            produced: 0,
            current: Current::Idle,
            done: false,
        })
    }

    /// The exact length of the stream.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn invalid(message: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, message)
    }

    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.current {
                Current::Idle => match self.segments.next_segment().map_err(io::Error::other)? {
                    Segment::Raw(len) => self.current = Current::Raw(len),
                    Segment::File { size, path } => {
                        let full = self.root.join(&path);
                        let file = std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&full)
                            .map_err(|e| {
                                Self::invalid(format!(
                                    "the layer's file `/{}` cannot be read: {e}",
                                    path.display()
                                ))
                            })?;
                        let actual = file.metadata()?.len();
                        if actual != size {
                            return Err(Self::invalid(format!(
                                "the layer's file `/{}` has {actual} bytes where its tar entry had {size}; the layer was changed after it was stored",
                                path.display()
                            )));
                        }
                        self.current = Current::File {
                            file,
                            left: size,
                            path,
                        };
                    }
                    Segment::End(total) => {
                        self.done = true;
                        if total != self.produced {
                            return Err(Self::invalid(format!(
                                "the tar-split record promises {total} bytes but rebuilds {}",
                                self.produced
                            )));
                        }
                        let actual = std::mem::take(&mut self.hasher).finish();
                        if actual != self.expected {
                            return Err(Self::invalid(format!(
                                "the rebuilt layer hashes to {actual}, not its diff id {}; the layer's files were changed after it was stored",
                                self.expected
                            )));
                        }
                        return Ok(0);
                    }
                },
                Current::Raw(left) => {
                    if *left == 0 {
                        self.current = Current::Idle;
                        continue;
                    }
                    let want = buf.len().min(*left as usize);
                    let n = self.segments.input.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(Self::invalid("the tar-split record ends early".into()));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                Current::File { file, left, path } => {
                    if *left == 0 {
                        self.current = Current::Idle;
                        continue;
                    }
                    let want = buf.len().min(*left as usize);
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(Self::invalid(format!(
                            "the layer's file `/{}` became shorter while it was read",
                            path.display()
                        )));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

impl Read for Rebuilt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.fill(buf)?;
        self.hasher.update(&buf[..n]);
        self.produced += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
