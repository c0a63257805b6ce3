//! gzip for layers being pushed: deterministic, parallel, and quick on incompressible data.
//!
//! The input is cut into 1 MiB blocks, each compressed on its own (as `pigz -i` and Go's
//! pgzip, which Podman pushes with, do) into raw deflate ending with a sync flush, so the
//! pieces join into one valid deflate stream in one gzip member. Blocks are compressed on
//! as many threads as there are processors, and written in order. A block whose first
//! 64 KiB do not shrink at the fastest level is stored instead of compressed: random or
//! already compressed data (a tarball inside the image, media, packed binaries) would cost
//! the full compression effort for nothing, which is where zlib spends most of its time.
//!
//! The output depends only on the input, the level and those fixed rules — never on the
//! number of threads or on how the writes were cut — so pushing the same layer twice gives
//! the same blob digest.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress};

const BLOCK: usize = 1024 * 1024;
const SAMPLE: usize = 64 * 1024;
/// A block is stored when its sample compresses to more than this fraction of its size.
const STORE_ABOVE: f64 = 0.97;
/// The largest stored deflate block.
const STORED_MAX: usize = 65_535;

/// A gzip encoder writing to `out` (see the module documentation).
pub struct ParallelGzip<W: Write> {
    out: Option<W>,
    level: u32,
    threads: usize,
    /// Whole blocks waiting for a batch, and the one being filled (last).
    pending: Vec<Vec<u8>>,
    crc: flate2::Crc,
    size: u64,
    header_written: bool,
    finished: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32) -> ParallelGzip<W> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        ParallelGzip {
            out: Some(out),
            level,
            threads,
            pending: vec![Vec::with_capacity(BLOCK)],
            crc: flate2::Crc::new(),
            size: 0,
            header_written: false,
            finished: false,
        }
    }

    fn out(&mut self) -> &mut W {
        self.out.as_mut().expect("used after finish")
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, no time, no extra flags, unknown OS: no byte that
            // varies with the machine or the moment.
            self.out()
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Compresses and writes every whole block held.
    fn flush_blocks(&mut self, include_last: bool) -> io::Result<()> {
        let mut blocks = std::mem::take(&mut self.pending);
        let keep = if include_last { None } else { blocks.pop() };
        self.header()?;
        let level = self.level;
        for batch in blocks.chunks(self.threads) {
            let compressed: Vec<Vec<u8>> = if batch.len() == 1 {
                vec![deflate_block(&batch[0], level)]
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = batch
                        .iter()
                        .map(|b| scope.spawn(move || deflate_block(b, level)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("compression does not panic"))
                        .collect()
                })
            };
            for piece in compressed {
                self.out().write_all(&piece)?;
            }
        }
        self.pending = vec![keep.unwrap_or_else(|| Vec::with_capacity(BLOCK))];
        Ok(())
    }

    /// Writes the rest and the gzip trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        Ok(self.out.take().expect("finished once"))
    }

    /// Writes the rest and the gzip trailer, keeping the writer.
    pub fn try_finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        if self.pending.last().is_some_and(|b| b.is_empty()) {
            self.pending.pop();
        }
        self.flush_blocks(true)?;
        // An empty final stored block ends the deflate stream.
        let crc = self.crc.sum();
        // ISIZE is the length modulo 2^32, as RFC 1952 has it.
        let size = self.size as u32;
        let out = self.out();
        out.write_all(&[0x01, 0x00, 0x00, 0xff, 0xff])?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&size.to_le_bytes())?;
        out.flush()?;
        self.pending.clear();
        self.finished = true;
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let current = self
            .pending
            .last_mut()
            .expect("always one block being filled");
        let n = buf.len().min(BLOCK - current.len());
        current.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        if current.len() == BLOCK {
            self.pending.push(Vec::with_capacity(BLOCK));
            // A batch for every thread, plus the block being filled.
            if self.pending.len() > self.threads {
                self.flush_blocks(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }
}

/// One block as raw deflate, byte-aligned at its end and not final.
fn deflate_block(block: &[u8], level: u32) -> Vec<u8> {
    if block.is_empty() {
        return Vec::new();
    }
    let sample = &block[..block.len().min(SAMPLE)];
    if compressed_len(sample, 1) as f64 > sample.len() as f64 * STORE_ABOVE {
        return stored(block);
    }
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    let mut compress = Compress::new(Compression::new(level), false);
    loop {
        let consumed = compress.total_in() as usize;
        out.reserve(64 * 1024);
        compress
            .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate of memory cannot fail");
        if compress.total_in() as usize == block.len() && out.len() < out.capacity() {
            break;
        }
    }
    // Compression that did not pay is stored after all.
    if out.len() >= block.len() {
        return stored(block);
    }
    out
}

fn compressed_len(data: &[u8], level: u32) -> usize {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    let _ = compress.compress_vec(data, &mut out, FlushCompress::Finish);
    out.len()
}

/// Stored (uncompressed) deflate blocks, none final.
fn stored(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + block.len() / STORED_MAX * 5 + 5);
    for piece in block.chunks(STORED_MAX) {
        let len = piece.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize, piece: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), 6);
        gz.threads = threads;
        for chunk in data.chunks(piece.max(1)) {
            gz.write_all(chunk).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_and_does_not_depend_on_threads_or_write_sizes() {
        let mut data = random(3 * BLOCK + 12345, 7);
        // A compressible stretch between random ones.
        data.extend(std::iter::repeat_n(b"layer text ".as_slice(), 200_000).flatten());
        data.extend(random(BLOCK, 9));
        let one = gzip(&data, 1, 4096);
        assert_eq!(gunzip(&one), data);
        assert_eq!(gzip(&data, 4, 1 << 20), one);
        assert_eq!(gzip(&data, 3, 777), one);
        // The random stretches were stored, the text compressed.
        assert!(
            one.len() < data.len() - 2_000_000 + 100_000,
            "{}",
            one.len()
        );
    }

    #[test]
    fn empty_and_exact_block_inputs() {
        assert_eq!(gunzip(&gzip(&[], 2, 10)), b"");
        let data = vec![7u8; 2 * BLOCK];
        let out = gzip(&data, 2, BLOCK);
        assert_eq!(gunzip(&out), data);
        assert!(out.len() < 50_000);
    }
}
