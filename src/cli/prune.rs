use std::path::PathBuf;

use dbbackup::error::exit;
use dbbackup::store::{self, DryRun, Store, local::LocalStore};

use super::TokenArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of local backups to prune, or an object store URL (`s3://BUCKET/PREFIX`), or
    /// --artifacts.
    #[arg(
        value_name = "DIR",
        required_unless_present = "artifacts",
        conflicts_with = "artifacts"
    )]
    dir: Option<PathBuf>,
    /// Prune this repository's workflow artifacts instead of a directory.
    #[arg(long)]
    artifacts: bool,
    /// Backup name: the database's stem (or the --artifact-name used at upload).
    #[arg(long, value_name = "PREFIX")]
    name: String,
    /// Keep the newest N backups of that name, delete older ones.
    #[arg(long, value_name = "N")]
    keep: usize,
    /// Only print what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    token: TokenArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let pruned = match &args.dir {
        Some(url) if store::is_remote(&url.to_string_lossy()) => {
            prune(&*store::open_remote(&url.to_string_lossy())?, &args)?
        }
        Some(dir) => {
            let local = LocalStore::open(dir)?;
            let pruned = prune(&local, &args)?;
            // What a crashed backup left: its manifest without the archive.
            if !args.dry_run {
                local.remove_orphan_manifests(&args.name);
            }
            pruned
        }
        None => prune(&args.token.clone().store()?, &args)?,
    };
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for b in &pruned.deleted {
        tracing::info!("{verb} {} ({})", b.name, b.id);
    }
    if args.json {
        let names: Vec<&str> = pruned.deleted.iter().map(|b| b.name.as_str()).collect();
        let none: [&str; 0] = [];
        super::print_json(&match args.dry_run {
            true => serde_json::json!({ "deleted": none, "would_delete": names }),
            false => serde_json::json!({ "deleted": names, "would_delete": none }),
        });
    }
    Ok(exit::OK)
}

/// The one retention rule on `target`; a dry run prunes through [`DryRun`], which deletes
/// nothing.
fn prune(target: &dyn Store, args: &Args) -> dbbackup::Result<store::Pruned> {
    match args.dry_run {
        true => store::prune(&DryRun(target), &args.name, args.keep, None),
        false => store::prune(target, &args.name, args.keep, None),
    }
}
