//! Table checksums for `--format directory`, taken from the data files `pg_dump -Fd` writes
//! while it writes them.
//!
//! Each table's rows are in a file of its own (`NNNN.dat`, or `NNNN.dat.gz` when `pg_dump`'s
//! workers gzip them), holding exactly the COPY text of the plain format's block, ended by
//! `\.` and two blank lines. Having the server hash every row again in the same snapshot made
//! it read and convert the data twice beside `pg_dump`'s workers on the same cores (1.51x
//! `pg_dump -Fd -j 2` + `tar`, BENCHMARKS.md). Instead a thread follows the directory while
//! `pg_dump` runs: each new file is read as it grows, inflated when gzipped, and its lines
//! summed as [`copysum`](super::copysum) sums the plain format's, so the manifest has the same
//! algorithm and values and the restore test compares them unchanged. Which table a file
//! holds is only known once `pg_dump` has written `toc.dat`, at its end ([`super::toc`]).
//!
//! A file is done when its text has reached `\.` and, gzipped, its gzip stream has ended; so
//! only files still being written stay open. After `pg_dump` exits, what is left is read to
//! its end, and a file that is then not done is an error.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::{Decompress, FlushDecompress, Status};

use super::copysum::{Block, RowLines, parse_header};
use super::toc;
use crate::engine::rowsum::RowSum;

/// How long the follower sleeps when the files grew by less than [`BUSY`]: following a file
/// that grows a few KiB at a time in a tight loop would spend the CPU `pg_dump`'s workers need
/// on system calls.
const POLL: Duration = Duration::from_millis(10);
/// Bytes read in one pass over the files above which the next pass follows without sleeping.
const BUSY: usize = 1 << 20;
/// Files open at once at most: only `--jobs` are written at a time, the rest wait their turn.
const MAX_OPEN: usize = 64;
/// Read from one file at most this much before turning to the others.
const TURN: usize = 8 << 20;

/// The thread following `pg_dump`'s directory; stopped and joined when dropped.
pub(super) struct Follower {
    exited: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<BTreeMap<String, RowSum>, String>>>,
    dir: PathBuf,
}

impl Follower {
    /// Starts following `dir`, which `pg_dump` is about to create.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        let exited = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("dirsum".into()).spawn({
            let (dir, exited) = (dir.to_path_buf(), exited.clone());
            move || {
                yield_to_pg_dump();
                follow(&dir, &exited)
            }
        })?;
        Ok(Self {
            exited,
            thread: Some(thread),
            dir: dir.to_path_buf(),
        })
    }

    /// After `pg_dump` has exited successfully: each data file's table (from `toc.dat`) and
    /// sums, as the plain format's stream gives them to `copysum::reconcile`.
    pub fn finish(mut self) -> Result<Vec<Block>, String> {
        let sums = self.stop()?;
        let toc = std::fs::read(self.dir.join("toc.dat"))
            .map_err(|e| format!("cannot read pg_dump's toc.dat: {e}"))?;
        let mut sums = sums;
        let mut blocks = Vec::new();
        for entry in toc::table_data(&toc)? {
            let stem = entry.file.strip_suffix(".dat").unwrap_or(&entry.file);
            let sum = sums.remove(stem).ok_or_else(|| {
                format!(
                    "pg_dump wrote no data file {} for its `{}`",
                    entry.file, entry.copy_stmt
                )
            })?;
            let (schema, table, columns) = parse_header(entry.copy_stmt.as_bytes())
                .map_err(|why| format!("{why} in toc.dat's `{}`", entry.copy_stmt))?;
            blocks.push(Block {
                schema,
                table,
                columns,
                sum,
            });
        }
        if let Some(stem) = sums.keys().next() {
            return Err(format!(
                "pg_dump wrote the data file {stem}.dat, which its toc.dat does not list"
            ));
        }
        Ok(blocks)
    }

    fn stop(&mut self) -> Result<BTreeMap<String, RowSum>, String> {
        self.exited.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(sums)) => sums,
            Some(Err(_)) => Err("the thread reading pg_dump's files panicked".into()),
            None => Err("already stopped".into()),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// Lowers this thread's priority (nice 10, Linux): on a machine whose cores `pg_dump`'s
/// workers and their server backends keep busy, the hashing takes the time they leave and
/// catches up after, rather than slowing the dump. Best effort: without it, the same work.
fn yield_to_pg_dump() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

/// `NNNN` of a data file's name (`NNNN.dat` or `NNNN.dat.gz`), and whether it is gzipped.
fn data_file(name: &str) -> Option<(&str, bool)> {
    let (stem, gzip) = match name.strip_suffix(".dat.gz") {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(".dat")?, false),
    };
    (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit())).then_some((stem, gzip))
}

/// Sums every data file appearing in `dir` until `exited` is set and all is read.
fn follow(dir: &Path, exited: &AtomicBool) -> Result<BTreeMap<String, RowSum>, String> {
    // Each file's stem, whether it is gzipped, and its sums once read.
    let mut seen: BTreeMap<String, (bool, Option<RowSum>)> = BTreeMap::new();
    let mut waiting: VecDeque<(String, bool)> = VecDeque::new();
    let mut open: Vec<(String, DataFile)> = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        // Read after `exited` is seen set: everything pg_dump wrote is on disk then.
        let last = exited.load(Ordering::Acquire);
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
                    let name = entry.file_name();
                    let Some((stem, gzip)) = name.to_str().and_then(data_file) else {
                        continue;
                    };
                    if let Some((was, _)) = seen.get(stem) {
                        if *was != gzip {
                            return Err(format!("pg_dump wrote {stem}.dat twice"));
                        }
                        continue;
                    }
                    seen.insert(stem.to_string(), (gzip, None));
                    waiting.push_back((stem.to_string(), gzip));
                }
            }
            // pg_dump has not made it yet (or failed to: its own error says why).
            Err(e) if e.kind() == ErrorKind::NotFound && !last => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
        }
        while open.len() < MAX_OPEN {
            let Some((stem, gzip)) = waiting.pop_front() else {
                break;
            };
            let name = format!("{stem}.dat{}", if gzip { ".gz" } else { "" });
            let file =
                File::open(dir.join(&name)).map_err(|e| format!("cannot open {name}: {e}"))?;
            open.push((stem, DataFile::new(file, name, gzip)));
        }
        let mut read = 0;
        let mut i = 0;
        while i < open.len() {
            // Once pg_dump has exited, each file is read to its end at once.
            read += open[i]
                .1
                .pump(&mut buf, if last { usize::MAX } else { TURN })?;
            if open[i].1.done() {
                let (stem, file) = open.swap_remove(i);
                seen.insert(stem, (file.gzip.is_some(), Some(file.lines.sum)));
            } else if last {
                return Err(open[i].1.unfinished());
            } else {
                i += 1;
            }
        }
        if last && waiting.is_empty() {
            return Ok(seen
                .into_iter()
                .map(|(stem, (_, sum))| (stem, sum.expect("every seen file was read")))
                .collect());
        }
        if read < BUSY && !last {
            std::thread::sleep(POLL);
        }
    }
}

/// One data file being read as it grows.
struct DataFile {
    file: File,
    name: String,
    gzip: Option<Gzip>,
    lines: RowLines,
    /// The line `\.` was seen; after it only newlines may follow.
    ended: bool,
}

struct Gzip {
    inflate: Decompress,
    out: Vec<u8>,
    ended: bool,
}

impl DataFile {
    fn new(file: File, name: String, gzip: bool) -> Self {
        Self {
            file,
            name,
            gzip: gzip.then(|| Gzip {
                inflate: Decompress::new_gzip(15),
                out: vec![0; 256 << 10],
                ended: false,
            }),
            lines: RowLines::default(),
            ended: false,
        }
    }

    fn done(&self) -> bool {
        self.ended && self.gzip.as_ref().is_none_or(|g| g.ended)
    }

    fn unfinished(&self) -> String {
        match self.ended {
            false => format!("pg_dump's {} ends before its `\\.` line", self.name),
            true => format!("pg_dump's {} ends inside its gzip stream", self.name),
        }
    }

    /// Reads what the file has now (up to `limit` bytes); how much was read.
    fn pump(&mut self, buf: &mut [u8], limit: usize) -> Result<usize, String> {
        let mut read = 0;
        while read < limit && !self.done() {
            let n = match self.file.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", self.name)),
            };
            read += n;
            self.bytes(&buf[..n])?;
        }
        Ok(read)
    }

    fn bytes(&mut self, mut input: &[u8]) -> Result<(), String> {
        let Some(gzip) = &mut self.gzip else {
            return text(&mut self.lines, &mut self.ended, &self.name, input);
        };
        loop {
            if gzip.ended {
                return match input.is_empty() {
                    true => Ok(()),
                    false => Err(format!("{} has bytes after its gzip stream", self.name)),
                };
            }
            let (before_in, before_out) = (gzip.inflate.total_in(), gzip.inflate.total_out());
            let status = (gzip.inflate)
                .decompress(input, &mut gzip.out, FlushDecompress::None)
                .map_err(|e| format!("{} is not valid gzip: {e}", self.name))?;
            let used = (gzip.inflate.total_in() - before_in) as usize;
            let made = (gzip.inflate.total_out() - before_out) as usize;
            input = &input[used..];
            text(
                &mut self.lines,
                &mut self.ended,
                &self.name,
                &gzip.out[..made],
            )?;
            if status == Status::StreamEnd {
                gzip.ended = true;
            } else if made < gzip.out.len() && (input.is_empty() || (used == 0 && made == 0)) {
                // All input taken and no output pending: more comes with the next read.
                return Ok(());
            }
        }
    }
}

/// The data file's text: rows up to `\.`, then only newlines.
fn text(
    lines: &mut RowLines,
    ended: &mut bool,
    name: &str,
    mut bytes: &[u8],
) -> Result<(), String> {
    if !*ended {
        match lines.push(bytes, true) {
            Some(used) => {
                *ended = true;
                bytes = &bytes[used..];
            }
            None => return Ok(()),
        }
    }
    match bytes.iter().all(|&b| b == b'\n') {
        true => Ok(()),
        false => Err(format!("{name} holds more after its `\\.` line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sums(rows: &[&str]) -> RowSum {
        let mut s = RowSum::default();
        rows.iter().for_each(|r| s.add(r.as_bytes()));
        s
    }

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    /// A file written in pieces while followed reads as the whole file: plain and gzipped,
    /// with the file growing between polls.
    #[test]
    fn follows_growing_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dump");
        let follower = Follower::start(&d).unwrap();
        std::thread::sleep(POLL * 3);
        std::fs::create_dir(&d).unwrap();
        let text = b"1\tx\n2\ty\\nz\n\\.\n\n\n";
        let mut plain = File::create(d.join("11.dat")).unwrap();
        let zipped = gz(text);
        let mut gzf = File::create(d.join("12.dat.gz")).unwrap();
        for (i, chunk) in text.chunks(3).enumerate() {
            plain.write_all(chunk).unwrap();
            plain.flush().unwrap();
            let z = zipped.len() * (i + 1) / text.chunks(3).count();
            let z0 = zipped.len() * i / text.chunks(3).count();
            gzf.write_all(&zipped[z0..z]).unwrap();
            std::thread::sleep(POLL * 2);
        }
        std::fs::write(d.join("13.dat"), b"\\.\n\n\n").unwrap();
        std::fs::write(d.join("blob_5.dat"), b"x").unwrap();
        let mut sums_of = follower.stop_for_test();
        assert_eq!(sums_of.remove("11").unwrap(), sums(&["1\tx", "2\ty\\nz"]));
        assert_eq!(sums_of.remove("12").unwrap(), sums(&["1\tx", "2\ty\\nz"]));
        assert_eq!(sums_of.remove("13").unwrap(), sums(&[]));
        assert!(sums_of.is_empty(), "{sums_of:?}");
    }

    fn trimmed(mut bytes: Vec<u8>, by: usize) -> Vec<u8> {
        bytes.truncate(bytes.len() - by);
        bytes
    }

    #[test]
    fn broken_files_are_errors() {
        for (name, bytes, why) in [
            ("1.dat", b"1\n".to_vec(), "before its `\\.`"),
            ("1.dat", b"1\n\\.\nx\n".to_vec(), "more after"),
            (
                "1.dat.gz",
                gz(b"1\n\\.\n")[..10].to_vec(),
                "before its `\\.`",
            ),
            (
                "1.dat.gz",
                trimmed(gz(b"1\n\\.\n\n\n"), 4),
                "inside its gzip",
            ),
            (
                "1.dat.gz",
                [gz(b"\\.\n"), gz(b"\\.\n")].concat(),
                "after its gzip",
            ),
            ("1.dat.gz", b"not gzip at all".to_vec(), "not valid gzip"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(name), &bytes).unwrap();
            let mut follower = Follower::start(dir.path()).unwrap();
            let err = follower.stop().unwrap_err();
            assert!(err.contains(why), "{name} {bytes:?}: {err}");
        }
    }

    impl Follower {
        fn stop_for_test(mut self) -> BTreeMap<String, RowSum> {
            self.stop().unwrap()
        }
    }
}
