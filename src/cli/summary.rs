//! `summary`: one table and one exit status for backups made in many jobs (a workflow's
//! matrix): reads their JUnit reports and `--json` outputs.

use std::path::PathBuf;

use dbbackup::error::exit;
use dbbackup::runner::Runner;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reports of backups: JUnit files (`backup --junit`, `restore-test --junit`) and
    /// `backup --json` outputs, or directories holding them (searched for `*.xml` and
    /// `*.json`, as downloaded artifacts land).
    #[arg(value_name = "REPORT", required = true)]
    reports: Vec<PathBuf>,
    /// Print the rows as one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let rows = dbbackup::summary::read(&args.reports)?;
    if rows.is_empty() {
        let given: Vec<String> = args
            .reports
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(dbbackup::Error::Usage(format!(
            "no backup report in {}: give the JUnit reports (--junit) or --json outputs of the \
             backups, or the directories they were downloaded to",
            given.join(", ")
        ))
        .into());
    }
    let code = dbbackup::summary::exit_code(&rows);
    let table = dbbackup::summary::markdown(&rows);
    let runner = Runner::detect();
    runner.append_summary(&table)?;
    runner.set_output("passed", &(code == exit::OK).to_string())?;
    match args.json {
        true => super::print_json(&serde_json::json!({
            "exit_code": code,
            "passed": code == exit::OK,
            "backups": rows,
        })),
        false => {
            use std::io::Write;
            let _ = write!(std::io::stdout().lock(), "{table}");
        }
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.exit_code != exit::OK)
        .map(|r| format!("{} (exit {})", r.database, r.exit_code))
        .collect();
    match failed.is_empty() {
        true => Ok(exit::OK),
        // The highest exit code of any backup, as a run of them all would end.
        false => {
            tracing::error!(
                "{} of {} backups failed: {}",
                failed.len(),
                rows.len(),
                failed.join(", ")
            );
            Ok(code)
        }
    }
}
