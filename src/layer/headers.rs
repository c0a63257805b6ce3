//! A cap on what the tar crate reads into memory on its own.
//!
//! Between two entries, `tar::Entries::next` reads GNU long names (`L`, `K`), PAX records
//! (`x`) and GNU sparse maps, each whole into a `Vec`, however large the archive says it is.
//! A layer is hostile input, and a gzip layer of a few megabytes can declare a 1 GB PAX
//! header of zeros: without a cap, extracting it allocates 1 GB. [`Budgeted`] wraps the
//! stream the archive reads and [`HeaderBudget::next`] replaces the iterator's `next`: while
//! the archive looks for the next entry, it may read no further than the end of the previous
//! entry's data plus [`MAX_HEADER_BYTES`]; beyond that the read fails and the budget says
//! why. Reads of an entry's own data (by the caller) are not limited here: they stream.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

/// What one entry's headers (its own, long names, PAX records, sparse map) may take. Real
/// ones are at most a few kilobytes: a path is at most 4 KiB, an xattr value 64 KiB.
pub const MAX_HEADER_BYTES: u64 = 1024 * 1024;

const BLOCK: u64 = 512;

#[derive(Debug)]
struct State {
    /// Position in the underlying stream.
    pos: Cell<u64>,
    /// While the archive looks for the next entry: the position it may not pass.
    limit: Cell<u64>,
    armed: Cell<bool>,
    tripped: Cell<bool>,
}

/// The stream given to `tar::Archive::new`, counting where it is.
pub struct Budgeted<R> {
    inner: R,
    state: Rc<State>,
}

/// The other end of a [`Budgeted`] stream: steps the archive's entries within the budget.
pub struct HeaderBudget {
    state: Rc<State>,
}

/// Wraps `inner` (at position 0 of a tar stream).
pub fn budgeted<R>(inner: R) -> (Budgeted<R>, HeaderBudget) {
    let state = Rc::new(State {
        pos: Cell::new(0),
        limit: Cell::new(MAX_HEADER_BYTES),
        armed: Cell::new(false),
        tripped: Cell::new(false),
    });
    (
        Budgeted {
            inner,
            state: state.clone(),
        },
        HeaderBudget { state },
    )
}

impl HeaderBudget {
    /// The next entry, as `entries.next()`, except that the archive may read at most
    /// [`MAX_HEADER_BYTES`] of headers for it. When it tries to read more, the error is an
    /// `io::Error` and [`exceeded`](Self::exceeded) is true.
    pub fn next<'a, R: Read>(
        &self,
        entries: &mut tar::Entries<'a, R>,
    ) -> Option<io::Result<tar::Entry<'a, R>>> {
        self.state.armed.set(true);
        let mut next = entries.next();
        self.state.armed.set(false);
        if let Some(Ok(entry)) = &mut next {
            // The archive has read up to the start of this entry's data; it may skip that
            // data (padded to a block) and then read headers for the next entry.
            let stored = stored_size(entry);
            let data_end = stored
                .checked_add(BLOCK - 1)
                .map(|s| s & !(BLOCK - 1))
                .and_then(|s| self.state.pos.get().checked_add(s));
            let limit = data_end.and_then(|e| e.checked_add(MAX_HEADER_BYTES));
            self.state.limit.set(limit.unwrap_or(u64::MAX));
        }
        next
    }

    /// Whether a read was refused for going over the budget.
    pub fn exceeded(&self) -> bool {
        self.state.tripped.get()
    }
}

/// The bytes of `entry`'s data in the archive: its header's size, or its PAX `size`. (For a
/// GNU sparse file, `Entry::size` is the expanded size instead.)
fn stored_size<R: Read>(entry: &mut tar::Entry<'_, R>) -> u64 {
    let header = entry.header().entry_size().unwrap_or(0);
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
        // Asking would read this entry's own records, whole.
        return header;
    }
    // The records of a preceding PAX header are already in memory.
    let pax = entry.pax_extensions().ok().flatten().and_then(|records| {
        records
            .flatten()
            .find(|r| r.key() == Ok("size"))
            .and_then(|r| r.value().ok()?.parse::<u64>().ok())
    });
    pax.unwrap_or(header)
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &self.state;
        let mut want = buf.len();
        if state.armed.get() {
            let room = state.limit.get().saturating_sub(state.pos.get());
            if room == 0 && want > 0 {
                state.tripped.set(true);
                return Err(io::Error::other(format!(
                    "an entry's headers (long names, PAX records, sparse map) take more than \
                     {MAX_HEADER_BYTES} bytes"
                )));
            }
            want = want.min(usize::try_from(room).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..want])?;
        state.pos.set(state.pos.get() + n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Budgeted<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = self.inner.seek(to)?;
        self.state.pos.set(pos);
        Ok(pos)
    }
}
