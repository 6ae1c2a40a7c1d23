//! Progress for long work: a live bar on a terminal (percentage, bytes, rate and ETA when the
//! size is known, a spinner with bytes and rate when it is not), and plain log lines at a
//! bounded rate anywhere else (a pipe, a CI log), where carriage returns and escape sequences
//! would be noise. `--quiet` shows neither: the lines are log events at the `info` level.
//!
//! Sizes are in binary units, labelled as such (KiB, MiB, GiB), as everywhere else
//! ([`crate::util::human_bytes`]).
//!
//! A size may be exact (the SQLite snapshot, a backup's raw size in its manifest) or an estimate
//! (PostgreSQL's `pg_database_size`, MySQL's `data_length`: a dump is often smaller, sometimes
//! larger). An estimate is shown with `~`, and once the work passes it the bar becomes a
//! spinner with bytes and rate: it never goes past 100% nor stalls at 99%. Finished work is
//! 100% whatever the estimate said.

use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::util::human_bytes;

/// The one bar on screen, if any: log events hide it while they print (see [`Suspend`]) and an
/// interrupt clears it ([`clear_for_exit`]) so the shell gets a clean line.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Off while several backups run at once (`backup --parallel`): one bar cannot show them all,
/// so each reports by plain lines.
static BARS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns bars off (plain progress lines stay) for the rest of the process.
pub fn no_bars() {
    BARS.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// How often a plain progress line may be printed, by default. A test knob,
/// `DBBACKUP_PROGRESS_INTERVAL_MS`, sets it (0: a line for each new whole percent).
const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// How much work there is, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub bytes: u64,
    /// False for an estimate, which the work may pass or fall short of.
    pub exact: bool,
}

impl Total {
    pub fn exactly(bytes: u64) -> Self {
        Total { bytes, exact: true }
    }

    pub fn about(bytes: u64) -> Self {
        Total {
            bytes,
            exact: false,
        }
    }

    fn tilde(self) -> &'static str {
        if self.exact { "" } else { "~" }
    }
}

/// The whole percent of `total` that `done` is, while there is one to show: none without a
/// total, for an empty total, and once `done` is past it (an estimate exceeded). Never above 100.
pub fn percent(done: u64, total: Option<Total>) -> Option<u8> {
    let total = total.filter(|t| t.bytes > 0 && done <= t.bytes)?;
    Some((u128::from(done) * 100 / u128::from(total.bytes)) as u8)
}

/// The progress of one step, counted in bytes through [`Progress::writer`] or
/// [`Progress::reader`]. Dropped without [`Progress::finish`] (the step failed), it leaves no
/// trace on the terminal.
pub struct Progress {
    label: &'static str,
    bar: Option<ProgressBar>,
    /// Plain lines: at most one per this long.
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    done: u64,
    total: Option<Total>,
    started: Instant,
    /// When the first byte came: the rate and the time left are measured from there, not
    /// from the work before it (SQLite's snapshot, PostgreSQL's connection).
    first_byte: Option<Instant>,
    last_line: Instant,
    last_percent: Option<u8>,
    lines: usize,
    /// The bar became a spinner: its estimate was passed.
    spinning: bool,
}

impl Progress {
    /// A bar when a person is watching stderr; plain lines otherwise.
    pub fn new(label: &'static str) -> Self {
        Self::start(label, None)
    }

    /// [`Progress::new`] for work whose size is known from the start: the bar's first frame
    /// already has it.
    pub fn with_total(label: &'static str, total: Total) -> Self {
        Self::start(label, Some(total))
    }

    fn start(label: &'static str, total: Option<Total>) -> Self {
        let watched = BARS.load(std::sync::atomic::Ordering::Relaxed)
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && tracing::enabled!(tracing::Level::INFO);
        let bar = watched.then(|| {
            let target = ProgressDrawTarget::term_like_with_hz(
                Box::new(Narrow(console::Term::stderr())),
                20,
            );
            let bar = ProgressBar::with_draw_target(None, target).with_message(label);
            match total.filter(|t| t.bytes > 0) {
                Some(total) => {
                    bar.set_style(bar_style(total));
                    bar.set_length(total.bytes);
                }
                None => bar.set_style(spinner_style()),
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            *active() = Some(bar.clone());
            bar
        });
        let interval = std::env::var("DBBACKUP_PROGRESS_INTERVAL_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(LINE_INTERVAL, Duration::from_millis);
        let now = Instant::now();
        Progress {
            label,
            bar,
            interval,
            state: Mutex::new(State {
                done: 0,
                total,
                started: now,
                first_byte: None,
                last_line: now,
                last_percent: None,
                lines: 0,
                spinning: false,
            }),
        }
    }

    /// How much work there is, once known (an engine learns it during its dump).
    pub fn expect(&self, total: Total) {
        let mut state = self.lock();
        state.total = Some(total);
        if let Some(bar) = &self.bar {
            if percent(state.done, Some(total)).is_some() {
                bar.set_style(bar_style(total));
                bar.set_length(total.bytes);
                state.spinning = false;
            } else {
                state.spinning = true;
            }
        }
    }

    /// Counts `n` more bytes done.
    pub fn add(&self, n: u64) {
        let mut state = self.lock();
        if state.first_byte.is_none() && n > 0 {
            state.first_byte = Some(Instant::now());
            if let Some(bar) = &self.bar {
                bar.reset_eta();
            }
        }
        state.done += n;
        let shown = percent(state.done, state.total);
        if let Some(bar) = &self.bar {
            if shown.is_none() && state.total.is_some() && !state.spinning {
                // Past the estimate: a bar would sit at 100% (or go past it) with a
                // meaningless ETA.
                state.spinning = true;
                bar.unset_length();
                bar.set_style(spinner_style());
            }
            bar.inc(n);
            return;
        }
        let now = Instant::now();
        if now.duration_since(state.last_line) < self.interval {
            return;
        }
        // A line only says something new: a higher percentage (or more bytes without one).
        if shown.is_some() && shown <= state.last_percent {
            return;
        }
        tracing::info!("{}: {}", self.label, line(&state, now));
        state.last_line = now;
        state.last_percent = shown;
        state.lines += 1;
    }

    /// `inner` with every byte written through it counted.
    pub fn writer<W: Write>(&self, inner: W) -> Counted<'_, W> {
        Counted {
            progress: self,
            inner,
        }
    }

    /// `inner` with every byte read through it counted.
    pub fn reader<R: Read>(&self, inner: R) -> Counted<'_, R> {
        Counted {
            progress: self,
            inner,
        }
    }

    /// The step succeeded: the bar ends at 100% (an estimate too: the work is done) and stays
    /// on screen; in plain lines, a last line when any was printed.
    pub fn finish(self) {
        let state = self.lock();
        match &self.bar {
            Some(bar) => {
                if state.total.is_some() && !state.spinning {
                    // Done: the size is known now, an estimate's `~` goes.
                    bar.set_style(bar_style(Total::exactly(state.done)));
                    bar.set_length(state.done);
                } else {
                    bar.set_style(done_style());
                }
                bar.finish();
                // The bar stays; the cursor is at its end, short of the edge (see [`Narrow`]).
                if !bar.is_hidden() {
                    let _ = console::Term::stderr().write_line("");
                }
            }
            None if state.lines > 0 => {
                let elapsed = state.started.elapsed();
                tracing::info!(
                    "{}: {}{} in {}{}",
                    self.label,
                    if state.total.is_some() { "100%, " } else { "" },
                    human_bytes(state.done),
                    duration(elapsed),
                    shown_rate(rate(state.done, elapsed))
                );
            }
            None => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            // A finished bar stays; a failed step's is cleared.
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
            *active() = None;
        }
    }
}

/// A reader or writer that counts what passes through it.
pub struct Counted<'a, T> {
    progress: &'a Progress,
    inner: T,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// A writer for log events that hides the bar while it prints, so that a line logged during a
/// step does not land in the middle of the bar.
pub struct Suspend<W>(pub W);

impl<W: Write> Write for Suspend<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = active().clone();
        match bar {
            Some(bar) => bar.suspend(|| self.0.write(buf)),
            None => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Clears the bar on screen, for a process about to exit on an interrupt: the shell's prompt
/// then starts on a clean line (indicatif never hides the cursor, so there is none to show).
pub fn clear_for_exit() {
    if let Some(bar) = active().take() {
        bar.finish_and_clear();
    }
}

fn active() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// stderr as indicatif draws on it, three columns narrower than it is. indicatif pads the bar
/// with spaces to the terminal's width, leaving the cursor at its right edge; the `^C` a
/// terminal echoes for Ctrl-C then wraps onto a new line, and clearing the bar clears only that
/// line, leaving a half-drawn bar above the shell's prompt. With room to spare the echo stays on
/// the bar's line and is cleared with it.
#[derive(Debug)]
struct Narrow(console::Term);

impl TermLike for Narrow {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(3).max(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A plain progress line after the label: `42% (80 MiB of 190 MiB, 21 MiB/s, 5 s left)`, `~`
/// before an estimate, bytes and rate alone without a total or past an estimate.
fn line(state: &State, now: Instant) -> String {
    let elapsed = now.duration_since(state.first_byte.unwrap_or(state.started));
    let per_sec = rate(state.done, elapsed);
    let (done, shown) = (human_bytes(state.done), percent(state.done, state.total));
    match (state.total, shown) {
        (Some(total), Some(p)) => {
            let left = match per_sec {
                0 => String::new(),
                r => format!(
                    ", {}{} left",
                    total.tilde(),
                    duration(Duration::from_secs_f64(
                        (total.bytes - state.done) as f64 / r as f64
                    ))
                ),
            };
            format!(
                "{t}{p}% ({done} of {t}{}{}{left})",
                human_bytes(total.bytes),
                shown_rate(per_sec),
                t = total.tilde()
            )
        }
        (Some(total), None) => format!(
            "{done} (past the {}{} expected){}",
            total.tilde(),
            human_bytes(total.bytes),
            shown_rate(per_sec)
        ),
        (None, _) => format!("{done}{}", shown_rate(per_sec)),
    }
}

/// `, 20 MiB/s`, or nothing while the rate is unknown.
fn shown_rate(per_sec: u64) -> String {
    match per_sec {
        0 => String::new(),
        r => format!(", {}/s", human_bytes(r)),
    }
}

/// Bytes per second over `elapsed`; 0 (unknown) over less than half a second, which says
/// nothing yet.
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    match elapsed.as_secs_f64() {
        s if s >= 0.5 => (bytes as f64 / s) as u64,
        _ => 0,
    }
}

/// `9.1 s`, `42 s`, `3 min 20 s`, `1 h 5 min`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..10 => format!("{:.1} s", d.as_secs_f64()),
        10..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn bar_style(total: Total) -> ProgressStyle {
    let t = total.tilde();
    ProgressStyle::with_template(&format!(
        "{{msg}} [{{wide_bar}}] {t}{{percent:>3}}% {{binary_bytes}}/{t}{{binary_total_bytes}} \
         ({{binary_bytes_per_sec}}, ETA {t}{{eta}})"
    ))
    .expect("the template is valid")
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {msg}: {binary_bytes} ({binary_bytes_per_sec}, {elapsed})",
    )
    .expect("the template is valid")
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}: {binary_bytes} in {elapsed} ({binary_bytes_per_sec})")
        .expect("the template is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentage_never_passes_100_and_stops_past_an_estimate() {
        assert_eq!(percent(0, Some(Total::exactly(200))), Some(0));
        assert_eq!(percent(100, Some(Total::exactly(200))), Some(50));
        assert_eq!(percent(200, Some(Total::exactly(200))), Some(100));
        assert_eq!(percent(199, Some(Total::about(200))), Some(99));
        // An estimate passed: no percentage at all (a spinner), never 101%.
        assert_eq!(percent(201, Some(Total::about(200))), None);
        assert_eq!(percent(u64::MAX, Some(Total::about(u64::MAX - 1))), None);
        assert_eq!(
            percent(u64::MAX - 1, Some(Total::exactly(u64::MAX))),
            Some(99)
        );
        assert_eq!(percent(5, None), None);
        assert_eq!(percent(0, Some(Total::about(0))), None);
    }

    fn state(done: u64, total: Option<Total>, secs: u64) -> (State, Instant) {
        let started = Instant::now();
        let state = State {
            done,
            total,
            started,
            first_byte: None,
            last_line: started,
            last_percent: None,
            lines: 0,
            spinning: false,
        };
        (state, started + Duration::from_secs(secs))
    }

    #[test]
    fn plain_lines_say_percent_bytes_rate_and_time_left_in_binary_units() {
        let mib = 1 << 20;
        let (s, now) = state(80 * mib, Some(Total::exactly(200 * mib)), 4);
        assert_eq!(
            line(&s, now),
            "40% (80 MiB of 200 MiB, 20 MiB/s, 6.0 s left)"
        );
        let (s, now) = state(80 * mib, Some(Total::about(200 * mib)), 4);
        assert_eq!(
            line(&s, now),
            "~40% (80 MiB of ~200 MiB, 20 MiB/s, ~6.0 s left)"
        );
        let (s, now) = state(300 * mib, Some(Total::about(200 * mib)), 10);
        assert_eq!(
            line(&s, now),
            "300 MiB (past the ~200 MiB expected), 30 MiB/s"
        );
        let (s, now) = state(3 * mib / 2, None, 1);
        assert_eq!(line(&s, now), "1.5 MiB, 1.5 MiB/s");
        // Too early to tell a rate or the time left.
        let (s, now) = state(3 * mib / 2, Some(Total::exactly(3 * mib)), 0);
        assert_eq!(line(&s, now), "50% (1.5 MiB of 3.0 MiB)");
        assert_eq!(duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(duration(Duration::from_secs(3900)), "1 h 5 min");
    }

    #[test]
    fn a_bar_past_its_estimate_becomes_a_spinner_and_ends_at_100() {
        let mut progress = Progress::new("testing");
        // A bar drawn nowhere, as on a terminal.
        progress.bar = Some(ProgressBar::hidden());
        progress.expect(Total::about(1000));
        let bar = progress.bar.clone().unwrap();
        progress.add(999);
        assert_eq!(bar.length(), Some(1000));
        progress.add(2);
        assert_eq!(bar.length(), None, "past the estimate: a spinner");
        assert!(progress.lock().spinning);
        progress.add(500);
        progress.finish();
        assert!(bar.is_finished());
        assert_eq!(bar.position(), 1501);

        // Short of its estimate, a finished bar is at 100%: the work is done.
        let mut progress = Progress::new("testing");
        progress.bar = Some(ProgressBar::hidden());
        progress.expect(Total::about(1000));
        let bar = progress.bar.clone().unwrap();
        progress.add(400);
        progress.finish();
        assert_eq!((bar.position(), bar.length()), (400, Some(400)));
    }

    #[test]
    fn plain_lines_only_say_something_new() {
        // Not on a terminal under `cargo test`: plain lines, counted here.
        let mut progress = Progress::new("testing");
        assert!(progress.bar.is_none());
        progress.interval = Duration::ZERO;
        progress.expect(Total::exactly(100_000));
        for _ in 0..10 {
            progress.add(1);
        }
        assert_eq!(progress.lock().lines, 1, "0% is said once");
        progress.add(99_990);
        assert_eq!(progress.lock().lines, 2);
        // Past the total: bytes and rate, one line per new count of bytes.
        progress.add(10);
        assert_eq!(progress.lock().lines, 3);
        assert_eq!(progress.lock().last_percent, None);
    }
}
