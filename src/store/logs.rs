//! Container logs: `containers/<id>/ctr.log`, one JSON object per line in Docker's
//! `json-file` shape:
//!
//! ```text
//! {"log":"text\n","stream":"stdout","time":"2026-11-29T07:45:43.123456789Z"}
//! ```
//!
//! The monitor process appends with [`LogWriter`]; `nook logs` reads with [`read_entries`] or
//! follows with [`LogFollower`]. Each entry is appended with a single `write(2)` on an
//! `O_APPEND` descriptor, so a reader sees whole lines except after a crash mid-write: that
//! torn line is skipped by readers, and the next [`LogWriter::open`] ends it with a newline
//! so the following entry stays readable.
//!
//! Text that is not UTF-8 is stored with U+FFFD replacements, as Docker's JSON encoder does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The longest line kept whole; a longer one is written in pieces of this size (partial
/// entries, whose text does not end in a newline), as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One line (or piece of a line) a container printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    /// Ends with `\n` unless it is a partial entry (a line cut at [`MAX_LINE`], or the last
    /// output of a container that did not end it).
    pub text: Vec<u8>,
}

#[derive(Serialize)]
struct WireOut<'a> {
    log: &'a str,
    stream: Stream,
    time: String,
}

#[derive(Deserialize)]
struct WireIn {
    log: String,
    stream: Stream,
    time: DateTime<Utc>,
}

/// RFC 3339 with nine fractional digits, UTC (`…T07:45:43.123456789Z`), as Docker prints it.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Appends a container's output to its log, one entry per line.
#[derive(Debug)]
pub struct LogWriter {
    /// None: the `none` log driver, which keeps nothing.
    file: Option<File>,
    /// The unfinished line of each stream (stdout, stderr), waiting for its newline.
    partial: [Vec<u8>; 2],
    path: PathBuf,
    rotation: Option<Rotation>,
    /// Bytes in the current file.
    size: u64,
}

/// `--log-opt max-size` and `max-file`: once the log would pass `max_size` bytes it becomes
/// `ctr.log.1` (older ones move up to `ctr.log.<max_file - 1>`, the oldest is deleted) and
/// a new one starts; with `max_file` 1 the full log is deleted. No file passes `max_size`
/// but one holding a single longer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_file: u32,
}

/// `ctr.log.N`: the Nth most recent rotated file.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl LogWriter {
    /// Opens (creating with mode 0600) the log for appending. If the file ends in a torn
    /// line (a writer was killed mid-write), a newline is added so it stays one bad line.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        LogWriter::open_rotating(path, None)
    }

    /// [`open`](Self::open), rotating the log as `rotation` says.
    pub fn open_rotating(path: &Path, rotation: Option<Rotation>) -> io::Result<LogWriter> {
        let file = open_for_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            file: Some(file),
            partial: [Vec::new(), Vec::new()],
            path: path.to_path_buf(),
            rotation,
            size,
        })
    }

    /// A writer that keeps nothing, for `--log-driver none`.
    pub fn discard() -> LogWriter {
        LogWriter {
            file: None,
            partial: [Vec::new(), Vec::new()],
            path: PathBuf::new(),
            rotation: None,
            size: 0,
        }
    }

    /// Records output of `stream`: every complete line becomes an entry; the rest waits for
    /// its newline (or [`flush_partial`](Self::flush_partial)), but never grows beyond
    /// [`MAX_LINE`] bytes: a longer line is written in partial entries of that size.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let now = Utc::now();
        let mut out = Vec::new();
        let pending = &mut self.partial[stream.index()];
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = MAX_LINE - pending.len();
            let window = &rest[..rest.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    pending.extend_from_slice(&window[..=pos]);
                    rest = &rest[pos + 1..];
                    encode_entry(&mut out, now, stream, pending);
                    pending.clear();
                }
                None => {
                    pending.extend_from_slice(window);
                    rest = &rest[window.len()..];
                    if pending.len() == MAX_LINE {
                        encode_entry(&mut out, now, stream, pending);
                        pending.clear();
                    }
                }
            }
        }
        self.append(&out)
    }

    /// Writes the unfinished lines as partial entries: call it when the streams end, and
    /// before recording the container's exit, so that `logs -f` (which stops once the
    /// container is no longer running and the log has no new data) sees every line.
    pub fn flush_partial(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let now = Utc::now();
        let mut out = Vec::new();
        for (index, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            if !self.partial[index].is_empty() {
                encode_entry(&mut out, now, stream, &self.partial[index]);
                self.partial[index].clear();
            }
        }
        self.append(&out)
    }

    /// Appends whole entries, each run of them in one write; with rotation, as many as fit
    /// in the file, then the rest in the next. An entry larger than the limit gets a file of
    /// its own.
    fn append(&mut self, mut out: &[u8]) -> io::Result<()> {
        while !out.is_empty() {
            let take = match self.rotation {
                None => out.len(),
                Some(rotation) => {
                    let room = rotation.max_size.saturating_sub(self.size);
                    let room = room.min(out.len() as u64) as usize;
                    match out[..room].iter().rposition(|&b| b == b'\n') {
                        Some(end) => end + 1,
                        None if self.size > 0 => {
                            self.rotate(rotation)?;
                            continue;
                        }
                        None => out
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(out.len(), |end| end + 1),
                    }
                }
            };
            if let Some(file) = self.file.as_mut() {
                file.write_all(&out[..take])?;
            }
            self.size += take as u64;
            out = &out[take..];
        }
        Ok(())
    }

    /// Readers hold the file they read, so moving it away loses them nothing: they finish
    /// it, then open the new one at the same path.
    fn rotate(&mut self, rotation: Rotation) -> io::Result<()> {
        let keep = rotation.max_file.saturating_sub(1);
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..keep).rev() {
                let from = rotated_path(&self.path, n);
                match std::fs::rename(&from, rotated_path(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
        }
        self.file = Some(open_for_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// Opens (creating with mode 0600) a log for appending, ending a torn last line.
fn open_for_append(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

fn encode_entry(out: &mut Vec<u8>, time: DateTime<Utc>, stream: Stream, text: &[u8]) {
    let log = String::from_utf8_lossy(text);
    let wire = WireOut {
        log: &log,
        stream,
        time: format_time(&time),
    };
    // Serializing a struct of strings into a Vec cannot fail.
    serde_json::to_writer(&mut *out, &wire).expect("log entry serializes");
    out.push(b'\n');
}

/// Parses one line of the log; None for a line that is not a whole entry.
fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let wire: WireIn = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        time: wire.time,
        stream: wire.stream,
        text: wire.log.into_bytes(),
    })
}

/// Parses the complete lines of `bytes` into `entries` and returns how many bytes they
/// span; the rest is an unfinished (or torn) last line. Unparseable lines are skipped.
fn parse_complete_lines(bytes: &[u8], entries: &mut Vec<LogEntry>) -> usize {
    let mut consumed = 0;
    while let Some(pos) = bytes[consumed..].iter().position(|&b| b == b'\n') {
        let line = &bytes[consumed..consumed + pos];
        if let Some(entry) = parse_line(line) {
            entries.push(entry);
        }
        consumed += pos + 1;
    }
    consumed
}

/// Every entry of the log, oldest first. A log that does not exist yet (a container never
/// started) is empty; a torn last line (a crash mid-write) and any line that does not parse
/// are skipped.
pub fn read_entries(path: &Path) -> io::Result<Vec<LogEntry>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    parse_complete_lines(&bytes, &mut entries);
    Ok(entries)
}

/// Reads a log as it grows, for `logs -f`: each call returns the entries appended since the
/// previous one. Starting from the beginning returns the existing entries first (those of
/// rotated files, oldest first, then the current file's), so nothing is lost or repeated
/// between "print what is there" and "follow". Polls the file (no inotify):
/// [`wait_new`](Self::wait_new) checks every 100 ms.
///
/// The file being read is held open, so a rotation (which renames or deletes it) costs none
/// of its last entries: it is read to the end, then the new file at the path is followed.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    /// The unfinished last line seen so far (its writer is between two writes, or died).
    pending: Vec<u8>,
    /// The rotated files are still to be read (following from the start).
    rotated_first: bool,
}

/// How often `wait_new` looks at the file.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

impl LogFollower {
    /// Follows from the first entry (the first `read_new` returns everything there is).
    pub fn from_start(path: &Path) -> LogFollower {
        LogFollower {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            pending: Vec::new(),
            rotated_first: true,
        }
    }

    /// Follows from the current end of the log: only entries appended later are returned.
    pub fn from_end(path: &Path) -> io::Result<LogFollower> {
        let mut follower = LogFollower::from_start(path);
        follower.rotated_first = false;
        match File::open(path) {
            Ok(file) => {
                follower.offset = file.metadata()?.len();
                follower.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(follower),
            Err(e) => return Err(e),
        }
        // An unfinished line at the end would be completed by the next write: read from
        // its start so it is not cut in half.
        if follower.offset > 0 {
            follower.resync_to_line_start()?;
        }
        Ok(follower)
    }

    fn resync_to_line_start(&mut self) -> io::Result<()> {
        let Some(mut file) = self.file.as_ref() else {
            return Ok(());
        };
        let start = self.offset.saturating_sub(MAX_LINE as u64 * 8);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.take(self.offset - start).read_to_end(&mut tail)?;
        match tail.iter().rposition(|&b| b == b'\n') {
            Some(pos) => self.offset = start + pos as u64 + 1,
            None if start == 0 => self.offset = 0,
            None => {}
        }
        Ok(())
    }

    /// The entries appended since the last call (possibly none); never blocks.
    pub fn read_new(&mut self) -> io::Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        if std::mem::take(&mut self.rotated_first) {
            // A rotation between these reads and opening the current file could repeat or
            // skip one file's entries; containers without --log-opt max-size never rotate.
            let count = (1..)
                .take_while(|&n| rotated_path(&self.path, n).exists())
                .count() as u32;
            for n in (1..=count).rev() {
                entries.extend(read_entries(&rotated_path(&self.path, n))?);
            }
        }
        loop {
            let file = match &self.file {
                Some(file) => file,
                None => match File::open(&self.path) {
                    Ok(file) => {
                        self.offset = 0;
                        self.pending.clear();
                        self.file.insert(file)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(entries),
                    Err(e) => return Err(e),
                },
            };
            // Looked at before reading: once the path names another file, the writer has
            // stopped writing to this one, so reading it to its end finishes it. No file at
            // the path is a rotation half done; the new one is picked up next time.
            let held = file.metadata()?;
            let replaced = match std::fs::metadata(&self.path) {
                Ok(now) => (now.dev(), now.ino()) != (held.dev(), held.ino()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            self.read_held(&mut entries)?;
            if !replaced {
                return Ok(entries);
            }
            self.file = None;
        }
    }

    /// Appends the complete entries the held file has beyond what was read.
    fn read_held(&mut self, entries: &mut Vec<LogEntry>) -> io::Result<()> {
        let Some(mut file) = self.file.as_ref() else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len < self.offset + self.pending.len() as u64 {
            // Truncated: start over.
            self.offset = 0;
            self.pending.clear();
        }
        let seen = self.offset + self.pending.len() as u64;
        if len == seen {
            return Ok(());
        }
        file.seek(SeekFrom::Start(seen))?;
        let mut bytes = std::mem::take(&mut self.pending);
        file.take(len - seen).read_to_end(&mut bytes)?;
        let consumed = parse_complete_lines(&bytes, entries);
        self.offset += consumed as u64;
        self.pending = bytes.split_off(consumed);
        Ok(())
    }

    /// Waits up to `timeout` for new entries, looking every [`FOLLOW_POLL`]; returns as soon
    /// as there are some, or an empty list when the time is up.
    pub fn wait_new(&mut self, timeout: Duration) -> io::Result<Vec<LogEntry>> {
        let deadline = Instant::now() + timeout;
        loop {
            let entries = self.read_new()?;
            let now = Instant::now();
            if !entries.is_empty() || now >= deadline {
                return Ok(entries);
            }
            std::thread::sleep(FOLLOW_POLL.min(deadline - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(entries: &[LogEntry]) -> Vec<(Stream, String)> {
        entries
            .iter()
            .map(|e| (e.stream, String::from_utf8(e.text.clone()).unwrap()))
            .collect()
    }

    fn numbered(from: usize, to: usize) -> Vec<(Stream, String)> {
        (from..=to)
            .map(|n| (Stream::Stdout, format!("{n}\n")))
            .collect()
    }

    /// One entry of `N\n` written at a fixed time is this many bytes.
    fn entry_len(n: usize) -> u64 {
        let mut out = Vec::new();
        encode_entry(
            &mut out,
            Utc::now(),
            Stream::Stdout,
            format!("{n}\n").as_bytes(),
        );
        out.len() as u64
    }

    #[test]
    fn rotation_keeps_max_file_files_of_at_most_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        // Room for three entries of one digit per file.
        let max_size = entry_len(1) * 3;
        let rotation = Rotation {
            max_size,
            max_file: 3,
        };
        let mut w = LogWriter::open_rotating(&path, Some(rotation)).unwrap();
        for n in 1..=9 {
            w.write(Stream::Stdout, format!("{n}\n").as_bytes())
                .unwrap();
        }
        // A file rotates when the next write would overfill it.
        assert_eq!(
            texts(&read_entries(&rotated_path(&path, 2)).unwrap()),
            numbered(1, 3)
        );
        assert_eq!(
            texts(&read_entries(&rotated_path(&path, 1)).unwrap()),
            numbered(4, 6)
        );
        assert_eq!(texts(&read_entries(&path).unwrap()), numbered(7, 9));
        w.write(Stream::Stdout, b"x\n").unwrap();
        assert!(
            !rotated_path(&path, 3).exists(),
            "never more than max-file files"
        );
        for file in [path.clone(), rotated_path(&path, 1), rotated_path(&path, 2)] {
            assert!(std::fs::metadata(&file).unwrap().len() <= max_size);
        }
        // `logs` reads the rotated files oldest first.
        let mut all = numbered(4, 9);
        all.push((Stream::Stdout, "x\n".into()));
        assert_eq!(
            texts(&LogFollower::from_start(&path).read_new().unwrap()),
            all
        );

        // A burst of lines in one write is split among files all the same.
        let burst = dir.path().join("burst.log");
        let mut w = LogWriter::open_rotating(&burst, Some(rotation)).unwrap();
        let text: String = (1..=9).map(|n| format!("{n}\n")).collect();
        w.write(Stream::Stdout, text.as_bytes()).unwrap();
        assert_eq!(
            texts(&read_entries(&rotated_path(&burst, 2)).unwrap()),
            numbered(1, 3)
        );
        assert_eq!(
            texts(&read_entries(&rotated_path(&burst, 1)).unwrap()),
            numbered(4, 6)
        );
        assert_eq!(texts(&read_entries(&burst).unwrap()), numbered(7, 9));
        // An entry longer than max-size has a file to itself.
        let long = "y".repeat(max_size as usize) + "\n";
        w.write(Stream::Stdout, long.as_bytes()).unwrap();
        w.write(Stream::Stdout, b"z\n").unwrap();
        assert_eq!(
            texts(&read_entries(&rotated_path(&burst, 1)).unwrap()),
            [(Stream::Stdout, long.clone())]
        );
        assert_eq!(
            texts(&read_entries(&burst).unwrap()),
            [(Stream::Stdout, "z\n".into())]
        );

        // max-file 1: the full log is dropped.
        let single = dir.path().join("single.log");
        let mut w = LogWriter::open_rotating(
            &single,
            Some(Rotation {
                max_size,
                max_file: 1,
            }),
        )
        .unwrap();
        for n in 1..=4 {
            w.write(Stream::Stdout, format!("{n}\n").as_bytes())
                .unwrap();
        }
        assert_eq!(texts(&read_entries(&single).unwrap()), numbered(4, 4));
        assert!(!rotated_path(&single, 1).exists());
    }

    #[test]
    fn a_follower_loses_nothing_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        for max_file in [1, 2] {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(rotated_path(&path, 1));
            let rotation = Rotation {
                max_size: entry_len(1) * 2,
                max_file,
            };
            let mut w = LogWriter::open_rotating(&path, Some(rotation)).unwrap();
            let mut follower = LogFollower::from_end(&path).unwrap();
            let mut seen = Vec::new();
            // Several rotations between two reads, and reads between rotations.
            for n in 1..=9 {
                w.write(Stream::Stdout, format!("{n}\n").as_bytes())
                    .unwrap();
                if n % 3 == 0 {
                    seen.extend(texts(&follower.read_new().unwrap()));
                }
            }
            // The file it held when the writer moved on is read to its end (1-2, then 4);
            // 7-8 went to a file opened and rotated away between two reads, as in Docker.
            let mut expected = numbered(1, 6);
            expected.extend(numbered(9, 9));
            assert_eq!(seen, expected, "max-file {max_file}");
        }
    }

    #[test]
    fn splits_lines_and_holds_partial_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"err\n").unwrap();
        assert_eq!(
            texts(&read_entries(&path).unwrap()),
            [
                (Stream::Stdout, "one\n".into()),
                (Stream::Stderr, "err\n".into())
            ]
        );
        w.write(Stream::Stdout, b"o\nthree\n\nend").unwrap();
        w.flush_partial().unwrap();
        w.flush_partial().unwrap();
        assert_eq!(
            texts(&read_entries(&path).unwrap()),
            [
                (Stream::Stdout, "one\n".into()),
                (Stream::Stderr, "err\n".into()),
                (Stream::Stdout, "two\n".into()),
                (Stream::Stdout, "three\n".into()),
                (Stream::Stdout, "\n".into()),
                (Stream::Stdout, "end".into()),
            ]
        );
    }

    #[test]
    fn file_is_docker_json_file_shape_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, "héllo \"q\"\n".as_bytes()).unwrap();
        w.write(Stream::Stdout, b"bad \xff\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["log"], "héllo \"q\"\n");
        assert_eq!(v["stream"], "stdout");
        let time = v["time"].as_str().unwrap();
        // 2026-11-29T07:45:43.123456789Z
        assert_eq!(time.len(), 30, "{time}");
        assert!(time.ends_with('Z'));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(lines[1]).unwrap()["log"],
            "bad \u{fffd}\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        let mut line = vec![b'a'; MAX_LINE * 2 + 10];
        line.push(b'\n');
        // In small writes, as a pipe would deliver it.
        for chunk in line.chunks(1000) {
            w.write(Stream::Stderr, chunk).unwrap();
        }
        let entries = read_entries(&path).unwrap();
        let lens: Vec<usize> = entries.iter().map(|e| e.text.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 11]);
        assert!(entries[2].text.ends_with(b"\n"));
        assert!(!entries[0].text.ends_with(b"\n"));
        // Exactly 16 KiB including the newline stays one entry.
        let mut exact = vec![b'b'; MAX_LINE - 1];
        exact.push(b'\n');
        w.write(Stream::Stdout, &exact).unwrap();
        let entries = read_entries(&path).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[3].text, exact);
    }

    #[test]
    fn torn_last_line_is_skipped_and_repaired_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"kept\n").unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"log":"torn\n","str"#).unwrap();
        drop(f);
        assert_eq!(
            texts(&read_entries(&path).unwrap()),
            [(Stream::Stdout, "kept\n".into())]
        );
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"after\n").unwrap();
        assert_eq!(
            texts(&read_entries(&path).unwrap()),
            [
                (Stream::Stdout, "kept\n".into()),
                (Stream::Stdout, "after\n".into())
            ]
        );
    }

    #[test]
    fn writer_and_follower_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<LogWriter>();
        assert_send::<LogFollower>();
    }

    #[test]
    fn missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_entries(&dir.path().join("nope")).unwrap().is_empty());
        let mut f = LogFollower::from_start(&dir.path().join("nope"));
        assert!(f.read_new().unwrap().is_empty());
    }

    #[test]
    fn follower_sees_appends_once_and_waits_for_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"a\n").unwrap();
        let mut from_start = LogFollower::from_start(&path);
        let mut from_end = LogFollower::from_end(&path).unwrap();
        assert_eq!(texts(&from_start.read_new().unwrap()).len(), 1);
        assert!(from_end.read_new().unwrap().is_empty());

        // Half an entry is written: neither follower returns it yet.
        let mut entry = Vec::new();
        encode_entry(&mut entry, Utc::now(), Stream::Stderr, b"b\n");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&entry[..10]).unwrap();
        assert!(from_start.read_new().unwrap().is_empty());
        let mut late = LogFollower::from_end(&path).unwrap();
        f.write_all(&entry[10..]).unwrap();
        for follower in [&mut from_start, &mut from_end, &mut late] {
            assert_eq!(
                texts(&follower.read_new().unwrap()),
                [(Stream::Stderr, "b\n".into())]
            );
            assert!(follower.read_new().unwrap().is_empty());
        }

        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            w.write(Stream::Stdout, b"c\n").unwrap();
        });
        let got = from_start.wait_new(Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        assert_eq!(texts(&got), [(Stream::Stdout, "c\n".into())]);
        assert!(
            from_start
                .wait_new(Duration::from_millis(50))
                .unwrap()
                .is_empty()
        );
    }
}
