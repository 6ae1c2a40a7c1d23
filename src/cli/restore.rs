use std::path::PathBuf;

use anyhow::Context;
use dbbackup::restore_test::{self, Options};
use dbbackup::store::local;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore: a .gz or .zst next to its .manifest.json, or a directory (its newest).
    backup: PathBuf,
    /// The database to write (SQLite: a file path; PostgreSQL: postgres://USER@HOST:PORT/DB, a
    /// database on the server the copy is restored on).
    target: PathBuf,
    /// Replace TARGET if it exists.
    #[arg(long)]
    force: bool,
    /// PostgreSQL directory-format backups: restore with N parallel pg_restore workers
    /// (default: this machine's cores, at most 4).
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    #[command(flatten)]
    identity: super::IdentityArgs,
    #[command(flatten)]
    pub notify: super::notify::NotifyArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    // TARGET is the database file to write, never a directory to write into (--force would
    // only fail later, after a whole restore, with "Is a directory").
    if args.target.is_dir() {
        return Err(dbbackup::Error::Usage(format!(
            "TARGET {} is a directory: give the path of the database file to create (such as \
             {})",
            args.target.display(),
            args.target.join("restored.db").display()
        ))
        .into());
    }
    // A database on a server: an existing one is refused before a whole restore is spent.
    if !args.force {
        dbbackup::engine::refuse_existing_target(&args.target.to_string_lossy())?;
    }
    let archive = local::locate(&args.backup, false)?.remove(0);
    let opts = Options {
        identity: args.identity.load()?,
        jobs: super::restore_jobs(args.jobs)?,
        ..Options::default()
    };
    let report = restore_test::restore(&archive, &args.target, args.force, &opts)
        .with_context(|| format!("restore of {} failed", archive.display()))?;
    for line in report.summary_lines() {
        tracing::info!("{line}");
    }
    // A PostgreSQL target is a URL that may carry a password: never log it as given.
    let target = dbbackup::engine::redact(&args.target.to_string_lossy());
    let not_written = format!("{target} was not written");
    if let Some(err) = restore_test::failure(std::slice::from_ref(&report), &not_written) {
        return Err(err.into());
    }
    tracing::info!("restored → {target}");
    Ok(report.verdict.exit_code())
}

/// The backup and the target (redacted: a PostgreSQL target may carry a password), for a
/// notification.
pub fn subject(args: &Args) -> String {
    format!(
        "{} → {}",
        args.backup.display(),
        dbbackup::engine::redact(&args.target.to_string_lossy())
    )
}
