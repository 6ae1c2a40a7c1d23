//! Streaming gzip with the sizes and sha256 the manifest needs, computed on the way through so
//! no byte is read twice and nothing is held in memory whole.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

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

/// Gzip-compresses into `W`, counting raw bytes and hashing the compressed output.
pub struct GzipWriter<W: Write> {
    encoder: GzEncoder<HashingWriter<W>>,
    raw_bytes: u64,
}

impl<W: Write> GzipWriter<W> {
    /// `level` is gzip's 1-9, as `gzip -N`.
    pub fn new(inner: W, level: u32) -> Self {
        Self {
            encoder: GzEncoder::new(HashingWriter::new(inner), Compression::new(level)),
            raw_bytes: 0,
        }
    }

    /// Ends the gzip stream and returns the inner writer with what was measured.
    pub fn finish(self) -> io::Result<(W, Summary)> {
        let hashing = self.encoder.finish()?;
        let (inner, compressed_bytes, sha256) = hashing.finish();
        Ok((
            inner,
            Summary {
                raw_bytes: self.raw_bytes,
                compressed_bytes,
                sha256,
            },
        ))
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.raw_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
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

    #[test]
    fn round_trip_measures_sizes_and_hash() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut w = GzipWriter::new(Vec::new(), 6);
        w.write_all(&data).unwrap();
        let (out, summary) = w.finish().unwrap();
        assert_eq!(summary.raw_bytes, data.len() as u64);
        assert_eq!(summary.compressed_bytes, out.len() as u64);
        assert_eq!(summary.sha256, hex(&Sha256::digest(&out)));
        let mut back = Vec::new();
        GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
