//! Reads an archive once for both the restore and the archive check: the gzip decoder feeds the
//! engine while the compressed bytes are hashed and counted underneath, so checking a large
//! backup costs no second pass over it.

use std::fs::File;
use std::io::{self, BufReader, Read};

use flate2::bufread::GzDecoder;

use crate::archive::compress::HashingReader;

/// What reading the whole archive found.
#[derive(Debug, Clone)]
pub struct ArchiveFacts {
    pub compressed_bytes: u64,
    pub sha256: String,
    /// Bytes the gzip stream decoded to (complete only without a stream error).
    pub raw_bytes: u64,
    /// The first error decoding the gzip stream: truncated, corrupt, bad checksum.
    pub stream_error: Option<String>,
    /// Bytes after the end of the gzip stream (a backup has none).
    pub trailing_bytes: u64,
}

/// The decompressed dump as a reader. The decoder reads from a buffer it consumes exactly, so
/// whatever follows the gzip stream is still there to count afterwards.
pub struct ArchiveStream {
    decoder: GzDecoder<BufReader<HashingReader<File>>>,
    raw_bytes: u64,
    error: Option<String>,
}

impl ArchiveStream {
    pub fn new(file: File) -> Self {
        let buffered = BufReader::with_capacity(1 << 20, HashingReader::new(file));
        Self {
            decoder: GzDecoder::new(buffered),
            raw_bytes: 0,
            error: None,
        }
    }

    /// Reads what the engine left (a restore may stop at the end of its data), then the rest of
    /// the file, so the sha256 covers every byte whatever happened before.
    pub fn finish(mut self) -> ArchiveFacts {
        if self.error.is_none() {
            let _ = io::copy(&mut self, &mut io::sink());
        }
        let mut rest = self.decoder.into_inner();
        let trailing_bytes = match io::copy(&mut rest, &mut io::sink()) {
            Ok(n) => n,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("reading the archive failed: {e}"));
                0
            }
        };
        let (compressed_bytes, sha256) = rest.into_inner().finish();
        ArchiveFacts {
            compressed_bytes,
            sha256,
            raw_bytes: self.raw_bytes,
            stream_error: self.error,
            trailing_bytes,
        }
    }
}

impl Read for ArchiveStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.decoder.read(buf) {
            Ok(n) => {
                self.raw_bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.error.get_or_insert_with(|| e.to_string());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::archive::compress::hex;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> (Vec<u8>, ArchiveFacts) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let mut stream = ArchiveStream::new(File::open(tmp.path()).unwrap());
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        (out, stream.finish())
    }

    fn data() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect()
    }

    #[test]
    fn complete_stream_is_measured() {
        let gz = gzip(&data());
        let (out, facts) = read_all(&gz);
        assert_eq!(out, data());
        assert_eq!(facts.stream_error, None);
        assert_eq!(facts.trailing_bytes, 0);
        assert_eq!(facts.raw_bytes, data().len() as u64);
        assert_eq!(facts.compressed_bytes, gz.len() as u64);
        assert_eq!(facts.sha256, hex(&Sha256::digest(&gz)));
    }

    #[test]
    fn trailing_data_is_counted_and_hashed() {
        let mut gz = gzip(&data());
        gz.extend_from_slice(b"garbage!");
        let (_, facts) = read_all(&gz);
        assert_eq!(facts.stream_error, None);
        assert_eq!(facts.trailing_bytes, 8);
        assert_eq!(facts.sha256, hex(&Sha256::digest(&gz)));
    }

    #[test]
    fn truncated_stream_is_an_error_and_still_hashed() {
        let gz = gzip(&data());
        let cut = &gz[..gz.len() / 2];
        let (_, facts) = read_all(cut);
        assert!(facts.stream_error.is_some(), "{facts:?}");
        assert_eq!(facts.compressed_bytes, cut.len() as u64);
        assert_eq!(facts.sha256, hex(&Sha256::digest(cut)));
    }
}
