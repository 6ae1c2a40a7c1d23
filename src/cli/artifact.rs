use std::path::PathBuf;

use anyhow::Context;
use dbbackup::archive::encrypt;
use dbbackup::error::exit;
use dbbackup::runner::Runner;
use dbbackup::store::artifacts::{self, Artifact, ArtifactStore, Runtime, guard};
use dbbackup::util::file_name;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Upload a backup and its manifest as a workflow artifact (inside a GitHub Actions job).
    Upload(UploadArgs),
    /// Download a backup artifact of this repository and unpack it for restore-test.
    Download(DownloadArgs),
    /// List the backup artifacts of one name.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// The backup archive; its .manifest.json must sit beside it.
    file: PathBuf,
    /// Artifact name base in place of the database name: the artifact is NAME-<stamp>.
    #[arg(long)]
    name: Option<String>,
    /// Days GitHub keeps the artifact (default: the repository's setting).
    #[arg(long, value_name = "D")]
    retention_days: Option<u32>,
    /// Print one JSON object describing the artifact on stdout.
    #[arg(long)]
    json: bool,
    /// Upload a plain (unencrypted) backup even from a public repository, where any signed-in
    /// GitHub user can download it.
    #[arg(long)]
    allow_public_plaintext: bool,
    #[command(flatten)]
    token: super::TokenArgs,
}

#[derive(Debug, clap::Args)]
struct DownloadArgs {
    /// Backup name (the database's stem or the --artifact-name used at upload).
    #[arg(long, value_name = "PREFIX")]
    name: String,
    /// Take the newest of several matching artifacts (without it, several is an error).
    #[arg(long)]
    latest: bool,
    /// Only artifacts uploaded by this workflow run.
    #[arg(long, value_name = "ID")]
    run: Option<u64>,
    /// Directory to unpack the backup and its manifest into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    token: super::TokenArgs,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Backup name (the database's stem or the --artifact-name used at upload).
    #[arg(long, value_name = "PREFIX")]
    name: String,
    /// Print a JSON array on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    token: super::TokenArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        Command::Upload(a) => upload(a),
        Command::Download(a) => download(a),
        Command::List(a) => list(a),
    }
}

fn upload(args: UploadArgs) -> anyhow::Result<u8> {
    let runtime = Runtime::from_env()?;
    let (name, _) = artifacts::artifact_name(&file_name(&args.file), args.name.as_deref())?;
    let github = args.token.github().ok();
    let notice = guard::check_upload(
        encrypt::is_encrypted(&args.file),
        args.allow_public_plaintext,
        github.as_ref(),
    )?;
    let runner = Runner::detect();
    if let Some(notice) = &notice {
        super::say_notice(&runner, notice);
    }
    let store = ArtifactStore::for_upload(runtime, None, None, args.retention_days)?;
    let uploaded = store
        .upload(&args.file, &name)
        .with_context(|| format!("upload of {} failed", args.file.display()))?;
    tracing::info!("uploaded artifact {} (id {})", uploaded.name, uploaded.id);
    if let Some(notice) = notice {
        runner.append_summary(&notice.line)?;
    }
    if args.json {
        super::print_json(&serde_json::json!({
            "id": uploaded.id,
            "name": uploaded.name,
            "size": uploaded.size,
            "sha256": uploaded.sha256,
        }));
    }
    Ok(exit::OK)
}

fn download(args: DownloadArgs) -> anyhow::Result<u8> {
    let store = args.token.store()?;
    let candidates: Vec<Artifact> = store
        .backups(&args.name, false)?
        .into_iter()
        .filter(|a| args.run.is_none_or(|run| a.run_id == Some(run)))
        .collect();
    let chosen = match candidates.as_slice() {
        [] => anyhow::bail!(dbbackup::Error::Remote(format!(
            "no unexpired artifact named {} or {}-<stamp>{}",
            args.name,
            args.name,
            args.run.map(|r| format!(" in run {r}")).unwrap_or_default()
        ))),
        [only] => only,
        [newest, ..] if args.latest => newest,
        several => anyhow::bail!(dbbackup::Error::Usage(format!(
            "{} artifacts match {} (newest: {}): pass --latest to take the newest, or --run ID",
            several.len(),
            args.name,
            several[0].name
        ))),
    };
    let id = chosen.id.to_string();
    let files = store
        .download(&id, &chosen.name, &args.out)
        .with_context(|| format!("download of artifact {} failed", chosen.name))?;
    tracing::info!(
        "downloaded {} (id {}, created {}) → {}",
        chosen.name,
        chosen.id,
        chosen.created_at,
        args.out.display()
    );
    for file in files {
        println!("{}", file.display());
    }
    Ok(exit::OK)
}

fn list(args: ListArgs) -> anyhow::Result<u8> {
    let found = args.token.store()?.backups(&args.name, true)?;
    if args.json {
        super::print_json(&serde_json::to_value(&found)?);
        return Ok(exit::OK);
    }
    println!(
        "{:<40} {:>12} {:>12}  {:<20}  {:<7}  RUN",
        "NAME", "ID", "SIZE", "CREATED", "EXPIRED"
    );
    for a in &found {
        println!(
            "{:<40} {:>12} {:>12}  {:<20}  {:<7}  {}",
            a.name,
            a.id,
            a.size_in_bytes,
            a.created_at,
            if a.expired { "yes" } else { "no" },
            a.run_id.map(|r| r.to_string()).unwrap_or_default()
        );
    }
    Ok(exit::OK)
}
