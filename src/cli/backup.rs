use std::path::PathBuf;

use anyhow::Context;
use dbbackup::archive::Format;
use dbbackup::backup::{self, BackupOptions};
use dbbackup::error::exit;
use dbbackup::runner::{self, Runner};
use dbbackup::verify::{self, junit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Database to back up: a SQLite path or `sqlite:` URL.
    source: String,
    /// Directory for backups (same as --out).
    #[arg(value_name = "DIR", conflicts_with = "out")]
    dir: Option<PathBuf>,
    /// Directory for backups.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep the newest N backups of this database in DIR, delete older ones.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// native: the database file itself; sql: a SQL text dump.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// gzip compression level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    level: u32,
    /// Restore-test the new backup (as `restore-test` does) before rotating anything away.
    #[arg(long)]
    restore_test: bool,
    /// Write the restore test's JUnit XML report to FILE (implies --restore-test).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// With --restore-test: the engine's quick integrity check instead of the full one.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object describing the backup on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let out = args
        .out
        .or(args.dir)
        .ok_or_else(|| dbbackup::Error::Usage("give the backup directory: --out DIR".into()))?;
    let outcome = backup::run(&BackupOptions {
        source: args.source.clone(),
        out,
        keep: args.keep,
        format: args.format,
        level: args.level,
        restore_test: (args.restore_test || args.junit.is_some())
            .then_some(verify::Options { quick: args.quick }),
    })
    .with_context(|| format!("backup of {} failed; nothing was rotated away", args.source))?;
    let runner = Runner::detect();
    if let Some(report) = &outcome.restore_test {
        if let Some(path) = &args.junit {
            junit::write_file(std::slice::from_ref(report), path)?;
        }
        super::restore_test::report_to_runner(
            &runner,
            std::slice::from_ref(report),
            args.junit.as_deref(),
        )?;
    }
    report_to_runner(&runner, &outcome)?;
    if args.json {
        let json = serde_json::json!({
            "path": outcome.path,
            "manifest_path": outcome.manifest_path,
            "bytes": outcome.manifest.compressed_bytes,
            "sha256": outcome.manifest.sha256,
            "seconds": outcome.seconds,
            "pruned": outcome.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "restore_test": outcome.restore_test,
            "manifest": outcome.manifest,
        });
        super::print_json(&json);
    }
    if !outcome.verified() {
        return Err(dbbackup::Error::Verify {
            object: outcome.path.display().to_string(),
            reason: "the new backup failed its restore test; it was set aside as .failed and \
                     nothing was rotated away"
                .into(),
        }
        .into());
    }
    Ok(exit::OK)
}

/// Step outputs and the job summary, when running in GitHub Actions.
fn report_to_runner(runner: &Runner, outcome: &backup::BackupOutcome) -> anyhow::Result<()> {
    let m = &outcome.manifest;
    for (name, value) in [
        ("backup-path", outcome.path.display().to_string()),
        ("manifest-path", outcome.manifest_path.display().to_string()),
        ("backup-size", m.compressed_bytes.to_string()),
        ("sha256", m.sha256.clone()),
        ("tables", m.snapshot.tables.len().to_string()),
        ("rows", m.snapshot.total_rows().to_string()),
    ] {
        runner
            .set_output(name, &value)
            .context("write a step output to $GITHUB_OUTPUT")?;
    }
    runner
        .append_summary(&runner::backup_summary(
            m,
            outcome.seconds,
            outcome.previous.as_ref(),
        ))
        .context("write the job summary to $GITHUB_STEP_SUMMARY")
}
