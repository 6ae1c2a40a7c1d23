//! SIGKILL of a run at a chosen moment, for the crash tests (`chaos_crash`,
//! `chaos_crash_mysql`): after a time, or as soon as a log line appears; and kill times
//! spread over a measured run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// This long after the spawn.
    After(Duration),
    /// As soon as a log line containing this text appears on stderr.
    OnLine(&'static str),
}

/// Log lines of one run with the time each appeared, from the spawn.
pub type Timeline = Vec<(Duration, String)>;

/// What a run under [`run_and_kill`] did.
pub struct Killed {
    /// Whether the kill found it running (false: it had already exited).
    pub killed: bool,
    pub pid: u32,
    pub status: std::process::ExitStatus,
    pub timeline: Timeline,
}

/// Spawns `cmd` (its stderr read line by line) and SIGKILLs it at `kill` (`None`: lets it
/// finish).
pub fn run_and_kill(mut cmd: Command, kill: Option<Kill>) -> Killed {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send((started.elapsed(), line.unwrap_or_default()));
        }
    });
    let mut timeline = Vec::new();
    let mut killed = false;
    match kill {
        None => {}
        Some(Kill::After(at)) => {
            thread::sleep(at.saturating_sub(started.elapsed()));
            killed = child.try_wait().unwrap().is_none();
            let _ = child.kill();
        }
        Some(Kill::OnLine(marker)) => {
            for (at, line) in rx.iter() {
                let hit = line.contains(marker);
                timeline.push((at, line));
                if hit {
                    killed = child.try_wait().unwrap().is_none();
                    let _ = child.kill();
                    break;
                }
            }
        }
    }
    let pid = child.id();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    timeline.extend(rx.try_iter());
    Killed {
        killed,
        pid,
        status,
        timeline,
    }
}

/// The kills of a crash test: one on each of `markers` (log lines), then `timed` spread over
/// `run` (the measured length of an uninterrupted run) and a little past its end, since a kill
/// that comes too late must change nothing either.
pub fn kill_plan(markers: &[&'static str], run: Duration, timed: u32) -> Vec<Kill> {
    let mut kills: Vec<Kill> = markers.iter().copied().map(Kill::OnLine).collect();
    kills.extend(
        kill_times(run.mul_f64(1.05), timed)
            .into_iter()
            .map(Kill::After),
    );
    kills
}

/// Stratified kill times from a fixed seed: one in each of `n` equal slices of `span`.
fn kill_times(span: Duration, n: u32) -> Vec<Duration> {
    let mut state: u64 = 0x5eed_c0ff_ee15_900d;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let jitter = (state % 1000) as f64 / 1000.0;
            span.mul_f64((f64::from(i) + jitter) / f64::from(n))
        })
        .collect()
}
