use std::path::PathBuf;

use anyhow::Context;
use dbbackup::verify::{self, Options, Verdict, workdir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore: a .gz next to its .manifest.json, or a directory (its newest).
    backup: PathBuf,
    /// The database to write (SQLite: a file path; PostgreSQL: postgres://USER@HOST:PORT/DB, a
    /// database on the server the copy is restored on).
    target: PathBuf,
    /// Replace TARGET if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    identity: super::IdentityArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    workdir::remove_on_interrupt()?;
    let archive = verify::locate(&args.backup, false)?.remove(0);
    let opts = Options {
        identity: args.identity.load()?,
        ..Options::default()
    };
    let report = verify::restore(&archive, &args.target, args.force, &opts)
        .with_context(|| format!("restore of {} failed", archive.display()))?;
    for line in report.summary_lines() {
        tracing::info!("{line}");
    }
    // A PostgreSQL target is a URL that may carry a password: never log it as given.
    let target = dbbackup::engine::redact_source(&args.target.to_string_lossy());
    if report.verdict == Verdict::Passed {
        tracing::info!("restored → {target}");
    } else {
        tracing::info!("{target} was not written: the backup failed its restore test");
    }
    Ok(report.verdict.exit_code())
}
