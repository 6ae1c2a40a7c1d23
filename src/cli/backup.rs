use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use dbbackup::archive::Format;
use dbbackup::archive::encrypt::Recipients;
use dbbackup::backup::{self, BackupOptions, BackupOutcome, UploadOptions, UploadedBackup};
use dbbackup::error::exit;
use dbbackup::runner::{self, Runner};
use dbbackup::verify::{self, junit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Database to back up: a SQLite path or `sqlite:` URL, or `postgres://USER@HOST:PORT/DB`
    /// (missing parts from PG* variables and ~/.pgpass).
    source: String,
    /// Directory for backups (same as --out).
    #[arg(value_name = "DIR", conflicts_with = "out")]
    dir: Option<PathBuf>,
    /// Directory for backups.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep the newest N backups of this database in DIR (and, with --upload, as artifacts),
    /// delete older ones.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// native: the database file itself (SQLite's default); sql: a SQL text dump (PostgreSQL's
    /// default); custom: pg_dump -Fc, for pg_restore.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// gzip compression level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    level: u32,
    /// Give up after this long (PostgreSQL: pg_dump and the snapshot queries): 90s, 15m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = backup::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Restore-test the new backup (as `restore-test` does) before rotating anything away.
    #[arg(long)]
    restore_test: bool,
    /// Write the restore test's JUnit XML report to FILE (implies --restore-test).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// The engine's quick integrity check (SQLite: quick_check, without the index lookups) on
    /// the snapshot, and with --restore-test on the restored copy too. Without --quick a
    /// backup checks fully once: the snapshot, or with --restore-test the restored copy.
    #[arg(long)]
    quick: bool,
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
    /// Encrypt the backup and its manifest with age to this public key before it is written
    /// under its name or uploaded (`age1…` or an SSH public key; repeatable, or several
    /// separated by commas or newlines). The file becomes `….gz.age`.
    #[arg(long, value_name = "RECIPIENT", env = "DBBACKUP_RECIPIENTS")]
    encrypt_to: Vec<String>,
    /// With --upload: upload a plain (unencrypted) backup even from a public repository,
    /// where any signed-in GitHub user can download it.
    #[arg(long, requires = "upload")]
    allow_public_plaintext: bool,
    #[command(flatten)]
    identity: super::IdentityArgs,
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
        timeout: args.timeout,
        restore_test: match args.restore_test || args.junit.is_some() {
            true => Some(verify::Options {
                quick: args.quick,
                identity: args.identity.load()?,
                ..Default::default()
            }),
            false => None,
        },
        encrypt_to: Recipients::parse(&args.encrypt_to)?.map(Arc::new),
        quick: args.quick,
    };
    let done = if args.upload {
        upload(&args, &opts)?
    } else {
        let backup = backup::run(&opts).map_err(|e| failed(e, &args.source, &opts.out, false))?;
        UploadedBackup {
            backup,
            artifact: None,
            pruned_artifacts: Vec::new(),
            notice: None,
        }
    };
    report(&args, &done)?;
    if !done.backup.verified() {
        return Err(dbbackup::Error::Verify {
            object: done.backup.path.display().to_string(),
            reason: "the new backup failed its restore test; it was set aside as .failed, \
                     not uploaded, and nothing was rotated away"
                .into(),
        }
        .into());
    }
    Ok(exit::OK)
}

fn upload(args: &Args, opts: &BackupOptions) -> anyhow::Result<UploadedBackup> {
    // Pruning needs the token; without --keep it only serves the public-repository guard.
    let github = match args.keep {
        Some(_) => Some(args.token.clone().github()?),
        None => args.token.clone().github().ok(),
    };
    let upload = UploadOptions {
        artifact_name: args.artifact_name.clone(),
        retention_days: args.retention_days,
        github,
        allow_public_plaintext: args.allow_public_plaintext,
    };
    backup::run_and_upload(opts, &upload).map_err(|e| failed(e, &args.source, &opts.out, true))
}

/// The error of a failed backup, with what happened to the backups. Pruning is the last step,
/// so when it is what failed the new backup exists (and was uploaded) and some old ones may be
/// gone: saying "nothing was rotated away" then would be wrong.
fn failed(err: dbbackup::Error, source: &str, out: &Path, upload: bool) -> anyhow::Error {
    let source = dbbackup::engine::redact_source(source);
    let context = match (&err, upload) {
        (dbbackup::Error::Prune { .. }, _) => format!(
            "the backup of {source} succeeded (the new backup is in {}), but deleting old \
             backups past --keep failed",
            out.display()
        ),
        (_, false) => format!("backup of {source} failed; nothing was rotated away"),
        (_, true) => format!(
            "backup with upload of {source} failed; nothing was pruned (a backup already \
             written stays in {})",
            out.display()
        ),
    };
    anyhow::Error::new(err).context(context)
}

/// The JUnit report, GitHub Actions outputs and summary, and `--json`.
fn report(args: &Args, done: &UploadedBackup) -> anyhow::Result<()> {
    let runner = Runner::detect();
    let outcome = &done.backup;
    let (file_bytes, file_sha256) = outcome.on_disk();
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
    report_to_runner(&runner, done)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "path": outcome.path,
            "manifest_path": outcome.manifest_path,
            "bytes": file_bytes,
            "sha256": file_sha256,
            "encrypted": outcome.sealed.is_some(),
            "seconds": outcome.seconds,
            "pruned": outcome.pruned.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "restore_test": outcome.restore_test,
            "artifact": done.artifact.as_ref().map(|a| serde_json::json!({
                "id": a.id, "name": a.name, "size": a.size,
            })),
            "pruned_artifacts": done.pruned_artifacts.iter().map(|b| &b.name).collect::<Vec<_>>(),
            "manifest": outcome.manifest,
        }));
    }
    Ok(())
}

/// Step outputs and the job summary, when running in GitHub Actions.
fn report_to_runner(runner: &Runner, done: &UploadedBackup) -> anyhow::Result<()> {
    let BackupOutcome {
        manifest: m,
        path,
        manifest_path,
        ..
    } = &done.backup;
    let (bytes, sha256) = done.backup.on_disk();
    let mut outputs = vec![
        ("backup-path", path.display().to_string()),
        ("manifest-path", manifest_path.display().to_string()),
        ("backup-size", bytes.to_string()),
        ("sha256", sha256.to_string()),
        ("tables", m.snapshot.tables.len().to_string()),
        ("rows", m.snapshot.total_rows().to_string()),
    ];
    let artifact_url = done
        .artifact
        .as_ref()
        .and_then(|a| runner::artifact_url(a.id));
    if let Some(artifact) = &done.artifact {
        outputs.push(("artifact-id", artifact.id.to_string()));
    }
    if let Some(url) = &artifact_url {
        outputs.push(("artifact-url", url.clone()));
    }
    for (name, value) in outputs {
        runner
            .set_output(name, &value)
            .context("write a step output to $GITHUB_OUTPUT")?;
    }
    // The summary is as readable as the artifact: an encrypted backup's shows no data.
    let mut summary = match &done.backup.sealed {
        Some(_) => runner::encrypted_backup_summary(&m.archive, bytes, sha256, done.backup.seconds),
        None => runner::backup_summary(m, done.backup.seconds, done.backup.previous.as_ref()),
    };
    if let Some(notice) = &done.notice {
        summary.push_str(&format!("\n{notice}\n"));
    }
    if let (Some(artifact), Some(url)) = (&done.artifact, &artifact_url) {
        summary.push_str(&format!(
            "\nUploaded as artifact [{}]({url}).\n",
            artifact.name
        ));
    }
    runner
        .append_summary(&summary)
        .context("write the job summary to $GITHUB_STEP_SUMMARY")
}
