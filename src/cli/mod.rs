//! The command line: one thin file per subcommand, each parsing its arguments and calling the
//! library.

mod artifact;
mod backup;
mod check;
mod inspect;
mod keep;
mod notify;
mod pg_client;
mod prune;
mod remote;
mod restore;
mod restore_test;
mod summary;

use clap::{Parser, Subcommand};
use dbbackup::archive::encrypt::Identity;
use dbbackup::runner::Runner;
use dbbackup::store::artifacts::{ArtifactStore, GitHub, guard};

#[derive(Debug, Parser)]
#[command(
    name = "dbbackup",
    version,
    about = "Trustworthy database backups in CI"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print errors only (for cron): no progress, no log lines. Reports, step outputs and the
    /// job summary are still written.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: -v adds each step's details (the tools run, with their options but never
    /// their values; timings), -vv everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl Cli {
    /// The most detailed log events shown: errors only with --quiet, the steps by default.
    pub fn log_level(&self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match (self.quiet, self.verbose) {
            (true, _) => LevelFilter::ERROR,
            (false, 0) => LevelFilter::INFO,
            (false, 1) => LevelFilter::DEBUG,
            (false, _) => LevelFilter::TRACE,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back up a database: snapshot, verify, compress, write atomically, rotate.
    // Boxed: its many options make it the largest variant by far (clippy's
    // large_enum_variant).
    #[command(visible_alias = "run")]
    Backup(Box<backup::Args>),
    /// Restore-test backups into a throwaway copy; optionally write a JUnit report.
    RestoreTest(restore_test::Args),
    /// Restore a backup to a database file, after it passes the restore test.
    Restore(restore::Args),
    /// Show a backup's manifest: engine, time, format, sizes, tables and row counts.
    Inspect(inspect::Args),
    /// Upload, download and list backups kept as GitHub Actions artifacts.
    Artifact(artifact::Args),
    /// Delete the backups of one name that no rule keeps (the newest N, the newest of each of
    /// the last days, weeks, months, years), in a directory, a bucket or as artifacts.
    Prune(prune::Args),
    /// Fail (exit 10) when the newest backup of a name is missing, older than --max-age or
    /// smaller than --min-bytes: backups that stopped silently.
    Check(check::Args),
    /// List the backups of one name in an object store (`s3://`, `az://`, `gs://`), newest first.
    List(remote::ListArgs),
    /// Download a backup of one name from an object store into a directory, ready for
    /// `restore-test`.
    Fetch(remote::FetchArgs),
    /// Which pg_dump dbbackup would run for a PostgreSQL server (or a major release): exit 7,
    /// with the command that installs one, when none fits.
    PgClient(pg_client::Args),
    /// One table and one exit status (the highest) for many backups' reports: the JUnit
    /// reports and `backup --json` outputs of a workflow's matrix jobs.
    Summary(summary::Args),
}

/// Runs the parsed command; `Ok` carries the exit code for outcomes that are not errors.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Backup(args) => {
            let source = (args.sources.iter())
                .map(|s| dbbackup::engine::redact(s))
                .collect::<Vec<_>>()
                .join(", ");
            args.notify
                .clone()
                .around("backup", source, || backup::run(*args))
        }
        Command::RestoreTest(args) => {
            let backups = restore_test::subject(&args);
            (args.notify.clone()).around("restore test", backups, || restore_test::run(args))
        }
        Command::Restore(args) => {
            let what = restore::subject(&args);
            args.notify
                .clone()
                .around("restore", what, || restore::run(args))
        }
        Command::Inspect(args) => inspect::run(args),
        Command::Artifact(args) => artifact::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Check(args) => {
            let backups = check::subject(&args);
            (args.notify.clone()).around("check", backups, || check::run(args))
        }
        Command::List(args) => remote::list(args),
        Command::Fetch(args) => remote::fetch(args),
        Command::PgClient(args) => pg_client::run(args),
        Command::Summary(args) => summary::run(args),
    }
}

/// The library error's own code when there is one; anything else is internal.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<dbbackup::Error>())
        .map_or(dbbackup::error::exit::INTERNAL, dbbackup::Error::exit_code)
}

/// The secret key for encrypted backups, shared by the commands that decrypt.
#[derive(Debug, Clone, clap::Args)]
struct IdentityArgs {
    /// Secret key that opens encrypted backups: an age identity file (age-keygen) or an
    /// unencrypted OpenSSH private key. Default: the key's text in DBBACKUP_IDENTITY.
    #[arg(long, value_name = "FILE")]
    identity: Option<std::path::PathBuf>,
}

impl IdentityArgs {
    fn load(&self) -> dbbackup::Result<Option<std::sync::Arc<Identity>>> {
        Ok(Identity::from_sources(self.identity.as_deref())?.map(std::sync::Arc::new))
    }
}

/// Prints a JSON value on stdout. A closed pipe (`| head`) is not an error worth a panic.
fn print_json(value: &serde_json::Value) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{value:#}");
}

/// Where `prune` and `check` find the backups of a name: a directory, an object store URL, or
/// the repository's workflow artifacts.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    /// Directory of local backups, or an object store URL (`s3://`, `az://`, `gs://`), or
    /// --artifacts.
    #[arg(
        value_name = "DIR",
        required_unless_present = "artifacts",
        conflicts_with = "artifacts"
    )]
    dir: Option<std::path::PathBuf>,
    /// This repository's workflow artifacts instead of a directory.
    #[arg(long)]
    artifacts: bool,
    #[command(flatten)]
    token: TokenArgs,
}

/// GitHub REST access, shared by the commands that use it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TokenArgs {
    /// GitHub token (the job's GITHUB_TOKEN); the API root comes from GITHUB_API_URL.
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    github_token: Option<String>,
    /// The repository as OWNER/REPO (default: GITHUB_REPOSITORY, which GitHub Actions sets;
    /// give it from anywhere else).
    #[arg(long, env = "GITHUB_REPOSITORY", value_name = "OWNER/REPO")]
    repo: Option<String>,
}

impl TokenArgs {
    pub fn store(self) -> anyhow::Result<ArtifactStore> {
        Ok(ArtifactStore::connect(self.github()?)?)
    }

    pub fn github(self) -> dbbackup::Result<GitHub> {
        GitHub::for_repository(self.github_token, self.repo.as_deref().unwrap_or_default())
    }
}

/// Says the guard's notice: a warning when anyone may download the backup.
fn say_notice(runner: &Runner, notice: &guard::Notice) {
    if notice.public {
        tracing::warn!("{}", notice.line);
        runner.warning("plain backup, public repository", &notice.line);
    }
}

/// `--jobs` of `restore` and `restore-test`: 0 workers would restore nothing.
fn restore_jobs(jobs: Option<u32>) -> dbbackup::Result<Option<u32>> {
    match jobs {
        Some(0) => Err(dbbackup::Error::Usage(
            "--jobs 0: give the number of parallel pg_restore workers, 1 or more".into(),
        )),
        other => Ok(other),
    }
}
