use std::path::PathBuf;

use anyhow::Context;
use dbbackup::archive::Format;
use dbbackup::backup::{self, BackupOptions};
use dbbackup::error::exit;

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
    /// Keep the newest N backups of this database in DIR, delete older ones.
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
        timeout: args.timeout,
    })
    .with_context(|| {
        format!(
            "backup of {} failed; nothing was rotated away",
            dbbackup::engine::redact_source(&args.source)
        )
    })?;
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
