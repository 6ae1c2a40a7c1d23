use std::path::PathBuf;

use dbbackup::verify::{self, Options, junit, workdir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backup files (the .gz next to its .manifest.json), or directories: their newest backup.
    #[arg(value_name = "BACKUP", required = true)]
    backups: Vec<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Run the engine's quick integrity check (SQLite: quick_check) instead of the full one.
    #[arg(long)]
    quick: bool,
    /// For a directory, test every backup in it, not just the newest.
    #[arg(long)]
    all: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    workdir::remove_on_interrupt()?;
    let opts = Options { quick: args.quick };
    let reports = verify::restore_test_all(&args.backups, args.all, &opts)?;
    for report in &reports {
        for line in report.summary_lines() {
            tracing::info!("{line}");
        }
    }
    let code = verify::exit_code(&reports);
    if let Some(path) = &args.junit {
        junit::write_file(&reports, path)?;
    }
    if args.json {
        super::print_json(&serde_json::json!({
            "exit_code": code,
            "backups": reports,
        }));
    }
    Ok(code)
}
