use std::path::PathBuf;

use anyhow::Context;
use dbbackup::archive::Format;
use dbbackup::backup::{self, BackupOptions};
use dbbackup::error::exit;
use dbbackup::runner::{self, Runner};

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
    /// Print one JSON object describing the backup on stdout.
    #[arg(long)]
    json: bool,
    /// Upload the verified backup as a workflow artifact (inside a GitHub Actions job); with
    /// --keep, also delete this backup's artifacts past the newest N.
    #[arg(long)]
    upload: bool,
    /// Artifact name base in place of the database name: artifacts are NAME-<stamp>.
    #[arg(long, value_name = "NAME", requires = "upload")]
    artifact_name: Option<String>,
    /// Days GitHub keeps the artifact (default: the repository's setting).
    #[arg(long, value_name = "D", requires = "upload")]
    retention_days: Option<u32>,
    #[command(flatten)]
    token: super::artifact::TokenArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let out = args
        .out
        .clone()
        .or(args.dir.clone())
        .ok_or_else(|| dbbackup::Error::Usage("give the backup directory: --out DIR".into()))?;
    let opts = BackupOptions {
        source: args.source.clone(),
        out,
        keep: args.keep,
        format: args.format,
        level: args.level,
    };
    if args.upload {
        return upload(&args, &opts);
    }
    let outcome = backup::run(&opts)
        .with_context(|| format!("backup of {} failed; nothing was rotated away", args.source))?;
    report_to_runner(&outcome)?;
    if args.json {
        let json = serde_json::json!({
            "path": outcome.path,
            "manifest_path": outcome.manifest_path,
            "bytes": outcome.manifest.compressed_bytes,
            "sha256": outcome.manifest.sha256,
            "seconds": outcome.seconds,
            "pruned": outcome.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "manifest": outcome.manifest,
        });
        super::print_json(&json);
    }
    Ok(exit::OK)
}

fn upload(args: &Args, opts: &BackupOptions) -> anyhow::Result<u8> {
    let github = match args.keep {
        Some(_) => Some(args.token.clone().github()?),
        None => None,
    };
    let done = backup::run_and_upload(
        opts,
        &backup::UploadOptions {
            artifact_name: args.artifact_name.clone(),
            retention_days: args.retention_days,
            github,
        },
    )
    .with_context(|| {
        format!(
            "backup with upload of {} failed; nothing was pruned (a backup already written stays in {})",
            args.source,
            opts.out.display()
        )
    })?;
    report_to_runner(&done.backup)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "path": done.backup.path,
            "manifest_path": done.backup.manifest_path,
            "bytes": done.backup.manifest.compressed_bytes,
            "sha256": done.backup.manifest.sha256,
            "seconds": done.backup.seconds,
            "pruned": done.backup.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "artifact": {"id": done.artifact.id, "name": done.artifact.name, "size": done.artifact.size},
            "pruned_artifacts": done.pruned_artifacts.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "manifest": done.backup.manifest,
        }));
    }
    Ok(exit::OK)
}

/// Step outputs and the job summary, when running in GitHub Actions.
fn report_to_runner(outcome: &backup::BackupOutcome) -> anyhow::Result<()> {
    let runner = Runner::detect();
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
