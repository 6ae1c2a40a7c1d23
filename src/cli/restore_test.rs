use std::path::{Path, PathBuf};

use dbbackup::engine::Fallback;
use dbbackup::restore_test::{self, Options, Report, Verdict, junit};
use dbbackup::runner::Runner;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backup files (the .gz or .zst next to its .manifest.json), or directories: their newest backup.
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
    /// PostgreSQL: restore on this server (postgres://USER@HOST:PORT/DB; DB is only used to
    /// connect) instead of the one in the backup's manifest.
    #[arg(long, value_name = "URL")]
    restore_into: Option<String>,
    /// PostgreSQL, MySQL: without --restore-into, restore on the server the PG* / MYSQL_*
    /// variables name (localhost by default), never on the source server in the manifest: a
    /// pull-request check restores into its job's service container, not production.
    #[arg(long)]
    not_on_source: bool,
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
    let opts = Options {
        quick: args.quick,
        restore_into: args.restore_into,
        otherwise: match args.not_on_source {
            true => Fallback::Environment,
            false => Fallback::Source,
        },
        identity: args.identity.load()?,
        jobs: super::restore_jobs(args.jobs)?,
    };
    let reports = restore_test::restore_test_all(&args.backups, args.all, &opts)?;
    for report in &reports {
        for line in report.summary_lines() {
            tracing::info!("{line}");
        }
    }
    let code = restore_test::exit_code(&reports);
    if let Some(path) = &args.junit {
        junit::write_file(&reports, path)?;
    }
    report_to_runner(&Runner::detect(), &reports, args.junit.as_deref(), true)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "exit_code": code,
            "backups": reports,
        }));
    }
    match restore_test::failure(&reports, "these backups are not proven to restore") {
        Some(err) => Err(err.into()),
        None => Ok(code),
    }
}

/// Step outputs (`passed`, `report-path`, and `tables`, `rows` when `counts`: `backup` writes
/// its own, once), an annotation per failed check and the result in the job summary, when
/// running in GitHub Actions.
pub fn report_to_runner(
    runner: &Runner,
    reports: &[Report],
    junit: Option<&Path>,
    counts: bool,
) -> anyhow::Result<()> {
    let passed = reports.iter().all(|r| r.verdict == Verdict::Passed);
    let mut outputs = vec![("passed", passed.to_string())];
    if let Some(path) = junit {
        outputs.push(("report-path", path.display().to_string()));
    }
    if let [report] = reports
        && counts
        && let Some(info) = &report.info
    {
        outputs.push(("tables", info.tables.to_string()));
        outputs.push(("rows", info.rows.to_string()));
    }
    for (name, value) in outputs {
        runner.set_output(name, &value)?;
    }
    let mut summary = String::from("### dbbackup restore test\n\n");
    for report in reports {
        summary.push_str(&dbbackup::runner::markdown_list(&report.summary_lines()));
        for check in report.failed_checks() {
            runner.error(
                &format!("restore test failed: {}", report.name()),
                &format!("{}: {}", check.name, check.message),
            );
        }
    }
    Ok(runner.append_summary(&summary)?)
}

/// The backups tested, for a notification.
pub fn subject(args: &Args) -> String {
    let names: Vec<String> = args
        .backups
        .iter()
        .map(|b| b.display().to_string())
        .collect();
    names.join(", ")
}
