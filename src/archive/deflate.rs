//! Raw deflate that compresses at gzip's levels: zlib's own match parameters for each level.
//!
//! flate2's zlib-rs backend follows zlib-ng, which runs levels 3–6 with a faster "medium"
//! algorithm whose output is larger than `gzip -6`'s, so a backup was bigger than the command
//! it replaces. zlib's `deflateTune` sets the match parameters; zlib-rs's lazy-matching
//! algorithm (its levels 7–9) given zlib's level-N parameters compresses like `gzip -N` and
//! `pigz -N` do, for somewhat more CPU than medium (figures: BENCHMARKS.md, "SQLite backup").
//! flate2 does not expose `deflateTune`, so this drives libz-rs-sys, zlib-rs's
//! zlib-compatible API, directly; it is the same Rust code flate2 runs, without its wrapper.

use std::io;

use libz_rs_sys::{
    Z_DEFAULT_STRATEGY, Z_DEFLATED, Z_FINISH, Z_OK, Z_STREAM_END, Z_SYNC_FLUSH, deflate,
    deflateEnd, deflateInit2_, deflateReset, deflateSetDictionary, deflateTune, z_stream,
    zlibVersion,
};

/// A raw deflate stream (no zlib or gzip framing) at one of gzip's levels 1–9.
pub struct Deflater {
    /// Boxed because zlib-rs's state points back at the stream: it must never move.
    stream: Box<z_stream>,
    tune: Option<Tune>,
}

/// zlib's `configuration_table` entries: good_length, max_lazy, nice_length, max_chain.
type Tune = [i32; 4];

/// The zlib-rs level whose algorithm zlib uses at `level`, and zlib's parameters for it
/// when zlib-rs's own differ.
fn zlib_level(level: u32) -> (i32, Option<Tune>) {
    match level {
        // zlib's deflate_fast; zlib-rs's level 2 is deflate_fast with zlib's level-1 values.
        1 => (2, None),
        2 => (2, Some([4, 5, 16, 8])),
        3 => (2, Some([4, 6, 32, 32])),
        // zlib's deflate_slow (lazy matching); zlib-rs runs it from level 7.
        4 => (7, Some([4, 4, 16, 16])),
        5 => (7, Some([8, 16, 32, 32])),
        6 => (7, Some([8, 16, 128, 128])),
        // Levels 7–9 are zlib's in zlib-rs already.
        n => (n.clamp(7, 9) as i32, None),
    }
}

impl Deflater {
    /// `level` is gzip's 1–9, as `gzip -N`.
    pub fn new(level: u32) -> io::Result<Self> {
        let (base, tune) = zlib_level(level);
        let mut stream = Box::new(z_stream::default());
        // SAFETY: `stream` is a default-initialised z_stream (null buffers, zlib-rs's
        // allocator) that outlives every call on it and never moves (it is boxed).
        let code = unsafe {
            deflateInit2_(
                &mut *stream,
                base,
                Z_DEFLATED,
                -15, // raw deflate with the full 32 KiB window
                8,
                Z_DEFAULT_STRATEGY,
                zlibVersion(),
                std::mem::size_of::<z_stream>() as i32,
            )
        };
        check("deflateInit2", code)?;
        let mut deflater = Self { stream, tune };
        deflater.apply_tune()?;
        Ok(deflater)
    }

    /// Starts a new stream, keeping the allocated tables. zlib's reset also resets the match
    /// parameters to the base level's, so they are set again.
    pub fn reset(&mut self) -> io::Result<()> {
        // SAFETY: the stream was initialised by deflateInit2_ in `new`.
        check("deflateReset", unsafe { deflateReset(&mut *self.stream) })?;
        self.apply_tune()
    }

    /// Primes the window with `dictionary`, as if it had just been compressed.
    pub fn set_dictionary(&mut self, dictionary: &[u8]) -> io::Result<()> {
        let len = u32::try_from(dictionary.len())
            .map_err(|_| io::Error::other("deflate dictionary over 4 GiB"))?;
        // SAFETY: the stream is initialised; `dictionary` is valid for `len` bytes for the
        // call, and zlib copies it into its own window.
        let code = unsafe { deflateSetDictionary(&mut *self.stream, dictionary.as_ptr(), len) };
        check("deflateSetDictionary", code)
    }

    /// Compresses all of `input` onto the end of `out`, then either ends the stream
    /// (`finish`) or sync-flushes it, so the output ends on a byte boundary and the next
    /// stream's output can follow it.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>, finish: bool) -> io::Result<()> {
        let flush = if finish { Z_FINISH } else { Z_SYNC_FLUSH };
        let mut rest = input;
        loop {
            if out.capacity() - out.len() < 16 * 1024 {
                out.reserve(64 * 1024);
            }
            let spare = out.spare_capacity_mut();
            let room = u32::try_from(spare.len()).unwrap_or(u32::MAX);
            let offered = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            self.stream.next_in = rest.as_ptr();
            self.stream.avail_in = offered;
            self.stream.next_out = spare.as_mut_ptr().cast::<u8>();
            self.stream.avail_out = room;
            // SAFETY: next_in/avail_in describe bytes of `rest` and next_out/avail_out the
            // spare capacity of `out`; both stay valid and unaliased for the call.
            let code = unsafe { deflate(&mut *self.stream, flush) };
            let written = (room - self.stream.avail_out) as usize;
            let consumed = (offered - self.stream.avail_in) as usize;
            self.stream.next_in = std::ptr::null();
            self.stream.next_out = std::ptr::null_mut();
            // SAFETY: deflate initialised exactly `written` bytes of the spare capacity.
            unsafe { out.set_len(out.len() + written) };
            rest = &rest[consumed..];
            if code == Z_STREAM_END {
                return Ok(());
            }
            check("deflate", code)?;
            // A flush is complete once all input is in and deflate left output room unused.
            if !finish && rest.is_empty() && self.stream.avail_out > 0 {
                return Ok(());
            }
        }
    }

    fn apply_tune(&mut self) -> io::Result<()> {
        let Some([good, lazy, nice, chain]) = self.tune else {
            return Ok(());
        };
        // SAFETY: the stream is initialised.
        let code = unsafe { deflateTune(&mut *self.stream, good, lazy, nice, chain) };
        check("deflateTune", code)
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        // SAFETY: the stream is initialised and not used after this.
        unsafe { deflateEnd(&mut *self.stream) };
    }
}

fn check(call: &str, code: i32) -> io::Result<()> {
    if code == Z_OK {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{call} failed (zlib code {code})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use std::io::Read;

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        DeflateDecoder::new(data).read_to_end(&mut back).unwrap();
        back
    }

    /// `data` through a new level-6 stream, ended or sync-flushed.
    fn level_six(data: &[u8], finish: bool) -> Vec<u8> {
        let mut out = Vec::new();
        Deflater::new(6)
            .unwrap()
            .compress(data, &mut out, finish)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        let text = b"the quick brown fox jumps over the lazy dog 0123456789";
        (0..len).map(|i| text[(i * 7 + i / 1000) % 53]).collect()
    }

    #[test]
    fn every_level_round_trips_and_a_reset_stream_is_used_again() {
        let data = sample(300_000);
        for level in 1..=9 {
            let mut d = Deflater::new(level).unwrap();
            for _ in 0..2 {
                let mut out = Vec::new();
                d.compress(&data, &mut out, true).unwrap();
                assert_eq!(inflate(&out), data, "level {level}");
                d.reset().unwrap();
            }
        }
    }

    #[test]
    fn a_sync_flushed_stream_continues_from_its_dictionary() {
        let data = sample(200_000);
        let (a, b) = data.split_at(120_000);
        let mut d = Deflater::new(6).unwrap();
        let mut out = Vec::new();
        d.compress(a, &mut out, false).unwrap();
        d.reset().unwrap();
        d.set_dictionary(&a[a.len() - 32 * 1024..]).unwrap();
        d.compress(b, &mut out, true).unwrap();
        assert_eq!(inflate(&out), data);
    }

    /// A sync flush whose output ends exactly where the buffer does takes one more call to
    /// finish; that call must not count as an error (zlib answers it with Z_BUF_ERROR unless
    /// it marked the flush as unfinished).
    #[test]
    fn a_flush_that_exactly_fills_the_buffer_completes() {
        let mut x = 1u32;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b'a' + (x >> 16) as u8 % 16
            })
            .collect();
        let probe = level_six(&data, false);
        for exact in [probe.len(), probe.len() - 1, probe.len() + 1] {
            let mut out = Vec::with_capacity(exact);
            assert!(out.capacity() >= 16 * 1024);
            let mut d = Deflater::new(6).unwrap();
            d.compress(&data, &mut out, false)
                .unwrap_or_else(|e| panic!("capacity {exact}: {e}"));
            d.compress(&[], &mut out, true).unwrap();
            assert_eq!(inflate(&out), data, "capacity {exact}");
        }
    }

    /// The point of this module: at the same level, output clearly smaller than zlib-ng's
    /// medium algorithm, which flate2 runs for levels 3–6.
    #[test]
    fn level_six_is_smaller_than_flate2s() {
        let data: Vec<u8> = (0..400_000u32)
            .flat_map(|i| {
                format!(
                    "row {} city {} total {}.{:02};",
                    i,
                    i % 7,
                    i * 31 % 997,
                    i % 100
                )
                .into_bytes()
            })
            .collect();
        let ours = level_six(&data, true);
        let mut theirs =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut theirs, &data).unwrap();
        let theirs = theirs.finish().unwrap();
        // Lazy matching wins about 6% on this text; medium would be within 0.1%.
        assert!(
            ours.len() * 100 < theirs.len() * 98,
            "ours {} bytes, flate2's {}",
            ours.len(),
            theirs.len()
        );
        assert_eq!(inflate(&ours), data);
    }
}
