//! `check`: fails (exit 10) when the newest backup of a name is missing, older than
//! `--max-age` or smaller than `--min-bytes`, in a directory, an object store or the
//! repository's artifacts. It downloads nothing: listing is enough.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dbbackup::error::exit;
use dbbackup::freshness::{self, Freshness, Rule};
use dbbackup::runner::Runner;
use dbbackup::store::{self, Store, local::LocalStore};
use time::OffsetDateTime;

use super::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backups: a directory, an object store, or the repository's artifacts (listed only,
    /// nothing downloaded).
    #[command(flatten)]
    target: TargetArgs,
    /// Backup name: the database's stem, or the --artifact-name used at upload; repeatable.
    /// A directory holding backups of one name only needs none.
    #[arg(
        long = "name",
        value_name = "PREFIX",
        required_if_eq("artifacts", "true")
    )]
    names: Vec<String>,
    /// Fail when the newest backup is older than this (by the time in its name): `26h`, `8d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
    max_age: MaxAge,
    /// Fail when the newest backup is smaller than N bytes (as stored: compressed).
    #[arg(long, value_name = "N")]
    min_bytes: Option<u64>,
    /// Write a JUnit XML report to FILE: one test case `freshness` per name.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `--max-age`, kept as written too, so messages quote it back as the user wrote it.
#[derive(Debug, Clone)]
struct MaxAge(Duration, String);

fn parse_max_age(text: &str) -> Result<MaxAge, String> {
    Ok(MaxAge(
        dbbackup::util::parse_duration(text)?,
        text.to_string(),
    ))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let rule = Rule {
        max_age: args.max_age.0,
        max_age_text: args.max_age.1.clone(),
        min_bytes: args.min_bytes,
    };
    // Whole seconds, as backups' names and reports carry times.
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let findings = match &args.target.dir {
        Some(url) if store::is_remote(&url.to_string_lossy()) => {
            if args.names.is_empty() {
                return Err(dbbackup::Error::Usage(
                    "check of an object store needs the backup name: --name STEM".into(),
                )
                .into());
            }
            check_all(
                &*store::open_remote(&url.to_string_lossy())?,
                &args.names,
                &rule,
                now,
            )?
        }
        Some(dir) => check_dir(dir, &args.names, &rule, now)?,
        None => check_all(&args.target.token.clone().store()?, &args.names, &rule, now)?,
    };
    for f in findings.iter().filter(|f| f.passed) {
        tracing::info!("fresh: {}", f.message);
    }
    let checked_at = dbbackup::util::rfc3339(now);
    if let Some(path) = &args.junit {
        freshness::junit::write_file(&findings, &rule, &checked_at, path)?;
    }
    let failure = freshness::failure(&findings);
    let runner = Runner::detect();
    runner.set_output("passed", &failure.is_none().to_string())?;
    if let Some(path) = &args.junit {
        runner.set_output("report-path", &path.display().to_string())?;
    }
    runner.append_summary(&freshness::summary(&findings, &rule))?;
    if args.json {
        super::print_json(&serde_json::json!({
            "passed": failure.is_none(),
            "exit_code": failure.as_ref().map_or(exit::OK, dbbackup::Error::exit_code),
            "checked_at": checked_at,
            "max_age": rule.max_age_text,
            "min_bytes": rule.min_bytes,
            "backups": findings,
        }));
    }
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(exit::OK),
    }
}

fn check_all(
    target: &dyn Store,
    names: &[String],
    rule: &Rule,
    now: OffsetDateTime,
) -> dbbackup::Result<Vec<Freshness>> {
    names
        .iter()
        .map(|name| freshness::check(target, name, rule, now))
        .collect()
}

/// A directory: the names given, or the one name it holds. A directory that is not there
/// holds no backup: that is the finding (exit 10), with the path to check.
fn check_dir(
    dir: &Path,
    names: &[String],
    rule: &Rule,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<Freshness>> {
    if !dir.exists() {
        return Err(dbbackup::Error::Stale(format!(
            "no backup: {} does not exist (check the path, and that backups are written there)",
            dir.display()
        ))
        .into());
    }
    if !dir.is_dir() {
        return Err(dbbackup::Error::Usage(format!(
            "{} is not a directory: give the directory backups are written to",
            dir.display()
        ))
        .into());
    }
    let held = LocalStore::names_in(dir)?;
    let names = match (names, held.as_slice()) {
        ([], []) => {
            return Err(dbbackup::Error::Stale(format!(
                "no backup in {}: it holds no dbbackup backup (files named \
                 <db>-<yyyymmdd-HHMMSS>.<ext>.gz with their manifest)",
                dir.display()
            ))
            .into());
        }
        ([], [one]) => std::slice::from_ref(one),
        ([], several) => {
            return Err(dbbackup::Error::Usage(format!(
                "{} holds backups of several names ({}): say which to check with --name \
                 (repeatable)",
                dir.display(),
                several.join(", ")
            ))
            .into());
        }
        (given, _) => given,
    };
    let mut findings = check_all(&LocalStore::existing(dir), names, rule, now)?;
    for f in findings.iter_mut().filter(|f| f.newest.is_none()) {
        if !held.is_empty() {
            f.message = format!(
                "{} (it holds backups named {}; --name is the database's name, the part \
                 before -<timestamp>)",
                f.message,
                held.join(", ")
            );
        }
    }
    Ok(findings)
}
