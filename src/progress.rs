//! Progress for long work: a live bar on a terminal, nothing extra in CI or in a pipe, where
//! the plain log lines already say what happened.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte counter with throughput, shown only when a person is watching stderr.
pub fn bytes(label: &str) -> ProgressBar {
    // `--quiet` (the log shows errors only) shows no bar either.
    let watched = std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && tracing::enabled!(tracing::Level::INFO);
    if !watched {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(label.to_string());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {bytes} ({bytes_per_sec}, {elapsed})")
            .expect("the template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
