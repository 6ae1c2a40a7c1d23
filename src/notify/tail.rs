//! The last lines dbbackup logged, for the body of a `/fail` ping: what the pinged service
//! shows next to the failure, so the log need not be found on the machine. The log is already
//! written without secrets (sources redacted, one line per event), and this keeps exactly what
//! was written: it tees the log writer rather than formatting anything of its own.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

/// Lines kept; older ones are dropped. healthchecks.io keeps the first 100 kB of a ping's body,
/// far more than this.
const LINES: usize = 40;
/// A longer line is cut (a hostile table name can make a long one).
const LINE_BYTES: usize = 1000;

struct Tail {
    lines: VecDeque<String>,
    /// The unfinished line of the event being written.
    partial: Vec<u8>,
}

static TAIL: Mutex<Tail> = Mutex::new(Tail {
    lines: VecDeque::new(),
    partial: Vec::new(),
});

/// A log writer that writes to `W` and keeps the last lines written: wrap the one the log
/// subscriber writes through (inside `OneLinePerEvent`, so what it keeps is one line per
/// event too).
pub struct Tee<W>(pub W);

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        record(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn record(bytes: &[u8]) {
    let mut tail = TAIL.lock().unwrap_or_else(|e| e.into_inner());
    for &b in bytes {
        if b == b'\n' {
            let line = std::mem::take(&mut tail.partial);
            push(&mut tail.lines, &line);
        } else if tail.partial.len() < LINE_BYTES {
            tail.partial.push(b);
        }
    }
}

fn push(lines: &mut VecDeque<String>, line: &[u8]) {
    if lines.len() == LINES {
        lines.pop_front();
    }
    lines.push_back(String::from_utf8_lossy(line).into_owned());
}

/// The last lines logged, oldest first, each ending in a newline.
pub fn last_lines() -> String {
    let tail = TAIL.lock().unwrap_or_else(|e| e.into_inner());
    tail.lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test touches the process-wide tail, so nothing else races it.
    #[test]
    fn keeps_the_last_lines_bounded_and_writes_everything_through() {
        let mut out = Tee(Vec::new());
        for i in 0..LINES + 5 {
            writeln!(out, "line {i}").unwrap();
        }
        out.write_all(&vec![b'x'; LINE_BYTES * 2]).unwrap();
        out.write_all(b"\n").unwrap();
        let kept = last_lines();
        let lines: Vec<&str> = kept.lines().collect();
        assert_eq!(lines.len(), LINES);
        assert_eq!(lines[0], "line 6");
        assert_eq!(lines[LINES - 2], format!("line {}", LINES + 4));
        assert_eq!(lines[LINES - 1].len(), LINE_BYTES);
        assert!(out.0.len() > LINE_BYTES * 2, "everything reaches the log");
    }
}
