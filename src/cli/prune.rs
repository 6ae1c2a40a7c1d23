use std::path::PathBuf;

use dbbackup::error::exit;
use dbbackup::store::{self, local::LocalStore};

use super::artifact::TokenArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of local backups to prune (or --artifacts).
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
        Some(dir) => {
            let local = LocalStore::open(dir)?;
            let pruned = store::prune(&local, &args.name, args.keep, None, args.dry_run)?;
            // What a crashed backup left: its manifest without the archive.
            if !args.dry_run {
                local.remove_orphan_manifests(&args.name);
            }
            pruned
        }
        None => {
            let remote = args.token.store()?;
            store::prune(&remote, &args.name, args.keep, None, args.dry_run)?
        }
    };
    for b in &pruned.deleted {
        tracing::info!("deleted {} ({})", b.name, b.id);
    }
    for b in &pruned.would_delete {
        tracing::info!("would delete {} ({})", b.name, b.id);
    }
    if args.json {
        let names =
            |v: &[store::StoredBackup]| v.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
        super::print_json(&serde_json::json!({
            "deleted": names(&pruned.deleted),
            "would_delete": names(&pruned.would_delete),
        }));
    }
    Ok(exit::OK)
}
