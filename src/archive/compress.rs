//! Streaming gzip with the sizes and sha256 the manifest needs, computed on the way through so
//! no byte is read twice and nothing is held in memory whole.

use std::io::{self, Read, Write};

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::deflate::Deflater;

/// What compression measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    pub sha256: String,
}

/// A writer that passes bytes through while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes read so far and their sha256.
    pub fn finish(self) -> (u64, String) {
        (self.bytes, hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Gzip-compresses into `W` on every core, counting raw bytes and hashing the compressed
/// output.
///
/// Compression is the slowest step of a backup, and a single deflate stream uses one core. Like
/// pigz, input is cut into blocks that worker threads compress independently, each primed with
/// the last 32 KiB of the block before it (deflate's whole window, so the ratio barely changes)
/// and ended with a sync flush so the blocks join into one ordinary gzip member that any
/// `gunzip` reads. The CRC-32 of the blocks is combined in order. At most two blocks per worker
/// are in flight, which bounds memory to a few MiB whatever the database size.
pub struct GzipWriter<W: Write> {
    out: HashingWriter<W>,
    level: u32,
    pool: WorkerPool,
    /// Input not yet handed to a worker.
    pending: Vec<u8>,
    /// The tail of the last block handed out: the next block's dictionary.
    window: Arc<Vec<u8>>,
    /// Results in submission order.
    in_flight: VecDeque<Receiver<io::Result<Block>>>,
    crc: crc32fast::Hasher,
    raw_bytes: u64,
    header_written: bool,
    /// Buffers of blocks already written, used again: a fresh 1 MiB buffer per block made the
    /// allocator keep freed ones around, and resident memory grew with the database.
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
}

const BLOCK: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;

struct Job {
    data: Vec<u8>,
    dictionary: Arc<Vec<u8>>,
    last: bool,
    /// An emptied output buffer of an earlier block, to fill again.
    out: Vec<u8>,
    done: SyncSender<io::Result<Block>>,
}

struct Block {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
    /// The input, handed back so its buffer is used again.
    data: Vec<u8>,
}

impl<W: Write> GzipWriter<W> {
    /// `level` is gzip's 1-9, as `gzip -N`.
    pub fn new(inner: W, level: u32) -> Self {
        Self {
            out: HashingWriter::new(inner),
            level,
            pool: WorkerPool::new(level),
            pending: Vec::with_capacity(BLOCK),
            window: Arc::new(Vec::new()),
            in_flight: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            raw_bytes: 0,
            header_written: false,
            spare_inputs: Vec::new(),
            spare_outputs: Vec::new(),
        }
    }

    /// Ends the gzip stream and returns the inner writer with what was measured.
    pub fn finish(mut self) -> io::Result<(W, Summary)> {
        self.submit(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(self.raw_bytes as u32).to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()?;
        let raw_bytes = self.raw_bytes;
        let (inner, compressed_bytes, sha256) = self.out.finish();
        Ok((
            inner,
            Summary {
                raw_bytes,
                compressed_bytes,
                sha256,
            },
        ))
    }

    /// Hands the pending input to a worker, writing finished blocks while too many are queued.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.in_flight.len() >= 2 * self.pool.workers {
            self.write_oldest()?;
        }
        let next = self
            .spare_inputs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK));
        let data = std::mem::replace(&mut self.pending, next);
        let dictionary = std::mem::replace(&mut self.window, Arc::new(tail(&data)));
        let (done, result) = sync_channel(1);
        self.pool.send(Job {
            data,
            dictionary,
            last,
            out: self.spare_outputs.pop().unwrap_or_default(),
            done,
        })?;
        self.in_flight.push_back(result);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(result) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let block = result
            .recv()
            .map_err(|_| io::Error::other("a compression worker stopped"))??;
        if !self.header_written {
            self.out.write_all(&gzip_header(self.level))?;
            self.header_written = true;
        }
        self.out.write_all(&block.deflated)?;
        self.crc.combine(&block.crc);
        let (mut data, mut deflated) = (block.data, block.deflated);
        data.clear();
        deflated.clear();
        self.spare_inputs.push(data);
        self.spare_outputs.push(deflated);
        Ok(())
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        self.raw_bytes += n as u64;
        if self.pending.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Blocks are only complete at their end, so there is nothing useful to flush early.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tail(data: &[u8]) -> Vec<u8> {
    data[data.len().saturating_sub(WINDOW)..].to_vec()
}

/// RFC 1952 header: deflate, no name, no mtime (so equal input gives equal archives), and the
/// extra-flags byte gzip sets for its fastest and best levels.
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Compresses one block with `z`, a worker's own deflate state, reset rather than made anew
/// for each block (it holds a few hundred KiB of tables).
fn deflate_block(job: Job, z: &mut Deflater) -> io::Result<Block> {
    z.reset()?;
    if !job.dictionary.is_empty() {
        z.set_dictionary(&job.dictionary)?;
    }
    let mut deflated = job.out;
    deflated.reserve(job.data.len() / 2 + 1024);
    z.compress(&job.data, &mut deflated, job.last)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&job.data);
    Ok(Block {
        deflated,
        crc,
        data: job.data,
    })
}

/// Worker threads that compress blocks; they stop when the pool is dropped.
struct WorkerPool {
    jobs: Option<Sender<Job>>,
    workers: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WorkerPool {
    fn new(level: u32) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..workers)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let mut z = Deflater::new(level);
                    loop {
                        let job = match queue.lock().map(|q| q.recv()) {
                            Ok(Ok(job)) => job,
                            _ => return,
                        };
                        let done = job.done.clone();
                        let result = match &mut z {
                            Ok(z) => deflate_block(job, z),
                            Err(e) => Err(io::Error::other(e.to_string())),
                        };
                        let _ = done.send(result);
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(jobs),
            workers,
            threads,
        }
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .ok_or_else(|| io::Error::other("the compression workers stopped"))
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Lowercase hex, as `sha256sum` prints it.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn compress(data: &[u8], level: u32) -> (Vec<u8>, Summary) {
        let mut w = GzipWriter::new(Vec::new(), level);
        // Odd-sized writes, so block boundaries fall inside writes.
        for piece in data.chunks(77_777) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    /// Text-like data that compresses, with matches reaching back across block boundaries.
    fn sample(len: usize) -> Vec<u8> {
        let text = b"the quick brown fox jumps over the lazy dog 0123456789";
        (0..len).map(|i| text[(i * 7 + i / 1000) % 53]).collect()
    }

    #[test]
    fn every_size_round_trips_through_a_standard_decoder() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let data = sample(len);
            let (out, summary) = compress(&data, 6);
            assert_eq!(summary.raw_bytes, len as u64);
            let mut back = Vec::new();
            GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
            assert!(back == data, "round trip of {len} bytes");
        }
    }

    #[test]
    fn parallel_blocks_compress_as_well_as_one_stream() {
        let data = sample(4 * BLOCK);
        let (parallel, _) = compress(&data, 6);
        let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        assert!(
            parallel.len() as f64 <= single.len() as f64 * 1.01 + 64.0,
            "parallel {} vs single {}",
            parallel.len(),
            single.len()
        );
    }

    #[test]
    fn round_trip_measures_sizes_and_hash() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (out, summary) = compress(&data, 6);
        assert_eq!(summary.raw_bytes, data.len() as u64);
        assert_eq!(summary.compressed_bytes, out.len() as u64);
        assert_eq!(summary.sha256, hex(&Sha256::digest(&out)));
        let mut back = Vec::new();
        GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
