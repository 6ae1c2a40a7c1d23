//! Reads an archive once for both the restore and the archive check: the decoder feeds the
//! engine while the compressed bytes are hashed and counted underneath, so checking a large
//! backup costs no second pass over it. An encrypted archive is decrypted on the way, with its
//! ciphertext hashed and counted as well.
//!
//! The decoder is chosen by the stream's first bytes (gzip, zstd or a stored tar,
//! [`Codec::sniff`]; after
//! decryption for an encrypted archive), never by the file's name, so a renamed backup reads.
//!
//! The decoder stops after the number of bytes the manifest says the dump has: a small archive
//! can decompress to almost any size (a gzip or zstd bomb), and the restore writes what it decodes to
//! disk, so a damaged or hostile archive must not get to write more than the backup it claims
//! to be.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use age::stream::StreamReader;
use flate2::bufread::GzDecoder;
use sha2::{Digest, Sha256};

use crate::archive::codec::Codec;
use crate::archive::compress::{HashingReader, hex};
use crate::error::Result;

/// What reading the whole archive found.
#[derive(Debug, Clone)]
pub struct ArchiveFacts {
    /// The compressor the stream's content shows (gzip when it shows neither).
    pub codec: Codec,
    pub compressed_bytes: u64,
    pub sha256: String,
    /// Bytes the compressed stream decoded to (complete only without a stream error).
    pub raw_bytes: u64,
    /// The first error decoding the compressed stream: truncated, corrupt, bad checksum.
    pub stream_error: Option<String>,
    /// Bytes after the end of the gzip member or zstd frame (a backup has none).
    pub trailing_bytes: u64,
    /// An encrypted archive's size and sha256 as stored (the fields above are then those of
    /// the compressed stream inside).
    pub ciphertext: Option<(u64, String)>,
}

/// The archive's compressed bytes: the file itself, or the plaintext of its age encryption.
enum Payload {
    Plain(File),
    Age(StreamReader<BufReader<CiphertextReader>>),
}

impl Read for Payload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Payload::Plain(file) => file.read(buf),
            // age releases a chunk only once its tag checks out, so a damaged byte stops the
            // stream here instead of reaching the restore.
            Payload::Age(reader) => reader.read(buf).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "age could not authenticate the encrypted archive, it is damaged or \
                         was altered ({e})"
                    ),
                )
            }),
        }
    }
}

/// What the ciphertext reader has seen; shared because age's reader keeps its input.
type Tally = Arc<Mutex<(Sha256, u64)>>;

/// Hashes and counts the `.age` file as the decryptor reads it.
pub struct CiphertextReader {
    file: File,
    tally: Tally,
}

impl CiphertextReader {
    fn count(tally: &Tally, bytes: &[u8]) {
        let mut tally = tally.lock().expect("the tally is never poisoned");
        tally.0.update(bytes);
        tally.1 += bytes.len() as u64;
    }
}

impl Read for CiphertextReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        Self::count(&self.tally, &buf[..n]);
        Ok(n)
    }
}

/// The tally and a second handle on the `.age` file: after a decryption error stops the
/// stream, the rest of the file is read through it (the handles share one position), so the
/// size and sha256 still cover every byte.
struct Ciphertext {
    tally: Tally,
    rest: File,
}

impl Ciphertext {
    fn finish(mut self) -> io::Result<(u64, String)> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match self.rest.read(&mut buf)? {
                0 => break,
                n => CiphertextReader::count(&self.tally, &buf[..n]),
            }
        }
        let (hasher, bytes) = self
            .tally
            .lock()
            .expect("the tally is never poisoned")
            .clone();
        Ok((bytes, hex(&hasher.finalize())))
    }
}

/// The compressed bytes, hashed and counted, buffered for the decoder.
type Compressed = BufReader<HashingReader<Payload>>;

/// Either decoder. Each reads one gzip member or one zstd frame and consumes exactly its
/// bytes from the buffer, so whatever follows is still there to count afterwards.
enum Decoder {
    Gzip(Box<GzDecoder<Compressed>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Compressed>>),
    /// A stored tar ([`Codec::None`]): read as it is, still bounded by the manifest's size.
    None(Box<Compressed>),
}

impl Decoder {
    /// The decoder for what `input` starts with; gzip's when it is neither, whose error then
    /// says what is wrong. An error reading the first bytes is kept for the caller: the
    /// decoder will meet it again.
    fn sniffing(mut input: Compressed) -> io::Result<(Self, Codec, Option<String>)> {
        let (codec, error) = match input.fill_buf() {
            Ok(head) => (Codec::sniff(head).unwrap_or(Codec::Gzip), None),
            Err(e) => (Codec::Gzip, Some(e.to_string())),
        };
        let decoder = match codec {
            Codec::Gzip => Decoder::Gzip(Box::new(GzDecoder::new(input))),
            Codec::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(input)?.single_frame();
                Decoder::Zstd(Box::new(decoder))
            }
            Codec::None => Decoder::None(Box::new(input)),
        };
        Ok((decoder, codec, error))
    }

    fn into_inner(self) -> Compressed {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::None(d) => *d,
        }
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::None(d) => d.read(buf),
        }
    }
}

/// The decompressed dump as a reader.
pub struct ArchiveStream {
    decoder: Decoder,
    codec: Codec,
    ciphertext: Option<Ciphertext>,
    raw_bytes: u64,
    /// The most the stream may decode to: the manifest's `raw_bytes`.
    max_raw_bytes: u64,
    error: Option<String>,
}

impl ArchiveStream {
    /// Reads `file`, which must decode to no more than `max_raw_bytes`; decoding more is a
    /// stream error and stops there.
    pub fn new(file: File, max_raw_bytes: u64) -> Result<Self> {
        Self::of(Payload::Plain(file), None, max_raw_bytes)
    }

    /// An encrypted archive: `decrypt` opens the age stream on the (hashed) file, or fails
    /// with the reason (a missing or wrong identity, a damaged header).
    pub fn encrypted(
        file: File,
        max_raw_bytes: u64,
        decrypt: impl FnOnce(
            BufReader<CiphertextReader>,
        ) -> Result<StreamReader<BufReader<CiphertextReader>>>,
    ) -> Result<Self> {
        let tally = Tally::default();
        // Failing to duplicate a descriptor is this machine's trouble (too many open files),
        // not the backup's.
        let rest = file.try_clone().map_err(|e| {
            crate::error::Error::output("open the archive a second time", "the archive", e)
        })?;
        let reader = CiphertextReader {
            file,
            tally: tally.clone(),
        };
        let plain = decrypt(BufReader::with_capacity(1 << 20, reader))?;
        Self::of(
            Payload::Age(plain),
            Some(Ciphertext { tally, rest }),
            max_raw_bytes,
        )
    }

    fn of(payload: Payload, ciphertext: Option<Ciphertext>, max_raw_bytes: u64) -> Result<Self> {
        let buffered = BufReader::with_capacity(1 << 20, HashingReader::new(payload));
        // Only allocating the decoder's state fails here: this machine's trouble.
        let (decoder, codec, error) = Decoder::sniffing(buffered)
            .map_err(|e| crate::error::Error::output("start decompressing", "the archive", e))?;
        Ok(Self {
            decoder,
            codec,
            ciphertext,
            raw_bytes: 0,
            max_raw_bytes,
            error,
        })
    }

    /// The compressor the content shows (gzip when it shows neither).
    pub fn codec(&self) -> Codec {
        self.codec
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
        let ciphertext = match self.ciphertext.map(Ciphertext::finish).transpose() {
            Ok(measured) => measured,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("reading the archive failed: {e}"));
                None
            }
        };
        ArchiveFacts {
            codec: self.codec,
            compressed_bytes,
            sha256,
            raw_bytes: self.raw_bytes,
            stream_error: self.error,
            trailing_bytes,
            ciphertext,
        }
    }
}

impl Read for ArchiveStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the bound is enough to tell a longer stream from one that ends there.
        let room = (self.max_raw_bytes - self.raw_bytes).saturating_add(1);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        match self.decoder.read(&mut buf[..len]) {
            Ok(n) if self.raw_bytes + n as u64 > self.max_raw_bytes => {
                let e = format!(
                    "the {} stream decompresses to more than the manifest's {} bytes; \
                     stopped there",
                    self.codec, self.max_raw_bytes
                );
                self.error.get_or_insert_with(|| e.clone());
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
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

    /// `data` compressed by each codec's reference encoder.
    fn each_codec(data: &[u8]) -> Vec<(Codec, Vec<u8>)> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
        enc.write_all(data).unwrap();
        // dbbackup's own zstd writer: it sets the frame checksum the library leaves off.
        let compression = crate::archive::codec::Compression::new(Codec::Zstd, None).unwrap();
        let mut zstd = compression.encoder(Vec::new()).unwrap();
        zstd.write_all(data).unwrap();
        let (zstd, _) = zstd.finish().unwrap();
        vec![(Codec::Gzip, enc.finish().unwrap()), (Codec::Zstd, zstd)]
    }

    fn read_all(bytes: &[u8]) -> (Vec<u8>, ArchiveFacts) {
        read_at_most(bytes, u64::MAX)
    }

    fn read_at_most(bytes: &[u8], max_raw_bytes: u64) -> (Vec<u8>, ArchiveFacts) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let mut stream =
            ArchiveStream::new(File::open(tmp.path()).unwrap(), max_raw_bytes).unwrap();
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
        for (codec, gz) in each_codec(&data()) {
            let (out, facts) = read_all(&gz);
            assert_eq!(facts.codec, codec);
            assert_eq!(out, data());
            assert_eq!(facts.stream_error, None);
            assert_eq!(facts.trailing_bytes, 0);
            assert_eq!(facts.raw_bytes, data().len() as u64);
            assert_eq!(facts.compressed_bytes, gz.len() as u64);
            assert_eq!(facts.sha256, hex(&Sha256::digest(&gz)));
        }
    }

    #[test]
    fn decoding_stops_at_the_manifest_size() {
        for (_, gz) in each_codec(&data()) {
            let len = data().len() as u64;
            let (out, facts) = read_at_most(&gz, len);
            assert_eq!((out.len() as u64, facts.stream_error), (len, None));
            let (out, facts) = read_at_most(&gz, len - 1);
            assert!((out.len() as u64) < len);
            let err = facts.stream_error.unwrap();
            assert!(err.contains("more than the manifest's"), "{err}");
            assert_eq!(facts.sha256, hex(&Sha256::digest(&gz)));
        }
    }

    #[test]
    fn trailing_data_is_counted_and_hashed() {
        for (_, mut gz) in each_codec(&data()) {
            gz.extend_from_slice(b"garbage!");
            let (_, facts) = read_all(&gz);
            assert_eq!(facts.stream_error, None);
            assert_eq!(facts.trailing_bytes, 8);
            assert_eq!(facts.sha256, hex(&Sha256::digest(&gz)));
        }
    }

    #[test]
    fn truncated_stream_is_an_error_and_still_hashed() {
        for (codec, gz) in each_codec(&data()) {
            let cut = &gz[..gz.len() / 2];
            let (_, facts) = read_all(cut);
            assert!(facts.stream_error.is_some(), "{codec}: {facts:?}");
            assert_eq!(facts.compressed_bytes, cut.len() as u64);
            assert_eq!(facts.sha256, hex(&Sha256::digest(cut)));
        }
    }

    /// A flipped byte inside a zstd frame is caught (by the frame's checksum at the latest).
    #[test]
    fn a_damaged_zstd_frame_is_an_error() {
        let (_, mut zst) = each_codec(&data()).remove(1);
        let middle = zst.len() / 2;
        zst[middle] ^= 0x55;
        let (_, facts) = read_all(&zst);
        assert_eq!(facts.codec, Codec::Zstd);
        assert!(facts.stream_error.is_some(), "{facts:?}");
    }
}
