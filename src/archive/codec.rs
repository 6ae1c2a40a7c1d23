//! Which compressor a backup's dump goes through (`--compression gzip|zstd`), at which level,
//! and the one encoder seam the backup pipeline writes into.
//!
//! gzip stays the default: every machine has `gunzip`. zstd compresses several times faster at
//! a similar ratio and decompresses faster still, which shortens backups and restore tests of
//! large databases; `zstd -d` restores it without dbbackup.
//!
//! Readers never trust the name alone: [`Codec::sniff`] tells the two apart by their magic
//! bytes (RFC 1952 §2.3.1 for gzip, RFC 8878 §3.1.1 for zstd frames), so a renamed file still
//! reads.
//!
//! A third codec, [`Codec::None`], is never asked for on the command line: it is how a
//! PostgreSQL directory-format backup is stored when `pg_dump`'s own workers already compressed
//! each file (`--format directory` with gzip), a plain tar that compressing again would only
//! slow down. It is sniffed as a tar (`ustar` at offset 257, POSIX.1-2001 `ustar` header).

use std::io::{self, Write};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::compress::{GzipWriter, HashingWriter, Summary};
use crate::error::{Error, Result};

/// A compressor, as `--compression` names it and the manifest records it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Gzip,
    Zstd,
    /// Stored as it is: only a tar whose members are compressed already (see the module docs).
    #[value(skip)]
    None,
}

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// A zstd frame's magic number, 0xFD2FB528 little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Where a ustar header's magic `ustar` sits (POSIX.1-2001, pax "ustar Interchange Format":
/// the field `magic` at offset 257 of the 512-byte header; GNU tar writes `ustar  `).
const TAR_MAGIC_AT: usize = 257;
const TAR_MAGIC: &[u8] = b"ustar";
/// How many first bytes [`Codec::sniff`] needs to tell a tar.
pub const SNIFF_LEN: usize = TAR_MAGIC_AT + TAR_MAGIC.len();

impl Codec {
    pub const ALL: [Codec; 3] = [Codec::Gzip, Codec::Zstd, Codec::None];

    /// The file name suffix, after the engine's extension: `app-….sqlite.gz`; none for a
    /// stored tar (`app-….tar`).
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
            Codec::None => "",
        }
    }

    /// The levels `--level` takes, as the codec's own command-line tool numbers them (`gzip -N`,
    /// `zstd -N`; zstd's 20-22 "ultra" levels need windows too large for a CI runner's memory).
    pub fn levels(self) -> RangeInclusive<u32> {
        match self {
            Codec::Gzip => 1..=9,
            Codec::Zstd => 1..=19,
            Codec::None => 0..=0,
        }
    }

    /// The level without `--level`: each tool's own default.
    pub fn default_level(self) -> u32 {
        match self {
            Codec::Gzip => 6,
            Codec::Zstd => 3,
            Codec::None => 0,
        }
    }

    /// The codec whose magic bytes `head` (the first bytes of a stream) starts with.
    pub fn sniff(head: &[u8]) -> Option<Codec> {
        if head.starts_with(&ZSTD_MAGIC) {
            Some(Codec::Zstd)
        } else if head.starts_with(&GZIP_MAGIC) {
            Some(Codec::Gzip)
        } else if head.get(TAR_MAGIC_AT..SNIFF_LEN) == Some(TAR_MAGIC) {
            Some(Codec::None)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::None => "none",
        })
    }
}

/// A codec at a level within its range: what the manifest records as `compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    pub codec: Codec,
    pub level: u32,
}

impl Compression {
    /// `codec` at `level`, or at its default level; a level outside the codec's range is a
    /// usage error that says the range.
    pub fn new(codec: Codec, level: Option<u32>) -> Result<Self> {
        // Only the pipeline stores a tar of compressed files as it is; asked for, `none` would
        // store any dump uncompressed under a name rotation does not take as a backup.
        if codec == Codec::None {
            return Err(Error::Usage(
                "compression none is not a choice: give gzip or zstd (a directory-format backup \
                 with gzip is stored as a plain tar of pg_dump's gzipped files by itself)"
                    .into(),
            ));
        }
        let level = level.unwrap_or(codec.default_level());
        let range = codec.levels();
        if !range.contains(&level) {
            return Err(Error::Usage(format!(
                "--level {level} is out of range for {codec} ({}-{}): give a level in that \
                 range, or leave --level out for {codec}'s default {}",
                range.start(),
                range.end(),
                codec.default_level()
            )));
        }
        Ok(Self { codec, level })
    }

    /// A compressor into `inner` that measures what the manifest needs on the way through.
    pub fn encoder<W: Write>(self, inner: W) -> io::Result<Encoder<W>> {
        Ok(match self.codec {
            Codec::Gzip => Encoder::Gzip(GzipWriter::new(inner, self.level)),
            Codec::Zstd => Encoder::Zstd(ZstdWriter::new(inner, self.level)?),
            Codec::None => Encoder::None(HashingWriter::new(inner)),
        })
    }
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            codec: Codec::Gzip,
            level: Codec::Gzip.default_level(),
        }
    }
}

/// The encoder seam: either compressor, or none, finished the same way.
pub enum Encoder<W: Write> {
    Gzip(GzipWriter<W>),
    Zstd(ZstdWriter<W>),
    /// Stored: raw and compressed bytes are the same bytes.
    None(HashingWriter<W>),
}

impl<W: Write> Encoder<W> {
    /// Ends the stream and returns the inner writer with what was measured.
    pub fn finish(self) -> io::Result<(W, Summary)> {
        match self {
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
            Encoder::None(w) => {
                let (inner, bytes, sha256) = w.finish();
                Ok((
                    inner,
                    Summary {
                        raw_bytes: bytes,
                        compressed_bytes: bytes,
                        sha256,
                    },
                ))
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// zstd on every core: the library's own multithreaded compressor (`ZSTD_c_nbWorkers`, as
/// `zstd -T0`) writes one ordinary frame, with its content checksum so that `zstd -d` and the
/// restore test notice a damaged byte.
pub struct ZstdWriter<W: Write> {
    inner: zstd::stream::write::Encoder<'static, HashingWriter<W>>,
    raw_bytes: u64,
}

impl<W: Write> ZstdWriter<W> {
    pub fn new(inner: W, level: u32) -> io::Result<Self> {
        let level = i32::try_from(level).map_err(io::Error::other)?;
        let mut inner = zstd::stream::write::Encoder::new(HashingWriter::new(inner), level)?;
        inner.include_checksum(true)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        inner.multithread(u32::try_from(workers).unwrap_or(1))?;
        Ok(Self {
            inner,
            raw_bytes: 0,
        })
    }

    pub fn finish(self) -> io::Result<(W, Summary)> {
        let mut out = self.inner.finish()?;
        out.flush()?;
        let (inner, compressed_bytes, sha256) = out.finish();
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

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.raw_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::archive::compress::hex;

    fn sample(len: usize) -> Vec<u8> {
        let text = b"the quick brown fox jumps over the lazy dog 0123456789";
        (0..len).map(|i| text[(i * 7 + i / 1000) % 53]).collect()
    }

    #[test]
    fn levels_are_checked_per_codec() {
        assert_eq!(Compression::new(Codec::Zstd, None).unwrap().level, 3);
        assert_eq!(Compression::new(Codec::Gzip, None).unwrap().level, 6);
        assert_eq!(Compression::new(Codec::Zstd, Some(15)).unwrap().level, 15);
        let err = Compression::new(Codec::Gzip, Some(15)).unwrap_err();
        assert!(
            err.to_string()
                .contains("--level 15 is out of range for gzip (1-9)"),
            "{err}"
        );
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        assert_eq!(
            Compression::new(Codec::None, None).unwrap_err().exit_code(),
            crate::error::exit::USAGE
        );
        for (codec, level) in [(Codec::Zstd, 20), (Codec::Zstd, 0), (Codec::Gzip, 0)] {
            assert!(
                Compression::new(codec, Some(level)).is_err(),
                "{codec} {level}"
            );
        }
    }

    #[test]
    fn sniffs_content() {
        assert_eq!(
            Codec::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Codec::Zstd)
        );
        assert_eq!(Codec::sniff(&[0x1f, 0x8b, 8]), Some(Codec::Gzip));
        assert_eq!(Codec::sniff(b"SQLite format 3"), None);
        assert_eq!(Codec::sniff(&[0x28, 0xb5]), None);
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        tar.append_data(&mut header, "dump/toc.dat", &b"x"[..])
            .unwrap();
        assert_eq!(Codec::sniff(&tar.into_inner().unwrap()), Some(Codec::None));
        assert_eq!(Codec::sniff(&[b'x'; SNIFF_LEN - 1]), None);
    }

    #[test]
    fn zstd_round_trips_through_a_standard_decoder_and_is_measured() {
        for len in [0, 1, 3 << 20] {
            let data = sample(len);
            let mut w = Compression::new(Codec::Zstd, None)
                .unwrap()
                .encoder(Vec::new())
                .unwrap();
            for piece in data.chunks(77_777) {
                w.write_all(piece).unwrap();
            }
            let (out, summary) = w.finish().unwrap();
            assert_eq!(Codec::sniff(&out), Some(Codec::Zstd));
            assert_eq!(summary.raw_bytes, len as u64);
            assert_eq!(summary.compressed_bytes, out.len() as u64);
            assert_eq!(summary.sha256, hex(&Sha256::digest(&out)));
            let mut back = Vec::new();
            zstd::stream::read::Decoder::new(&out[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "round trip of {len} bytes");
        }
    }
}
