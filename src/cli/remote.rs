//! `list` and `fetch`: the backups of one name in an object store (`s3://`, `az://`, `gs://`),
//! and bringing one back to a directory, ready for `restore-test`.

use std::path::PathBuf;

use dbbackup::error::exit;
use dbbackup::store::{self, StoredBackup};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Object store: `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX` or `gs://BUCKET/PREFIX`
    /// (credentials from AWS_*, AZURE_STORAGE_* or GOOGLE_* variables).
    url: String,
    /// Backup name: the database's stem.
    #[arg(long, value_name = "STEM")]
    name: String,
    /// Print one JSON array on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Object store: `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX` or `gs://BUCKET/PREFIX`
    /// (credentials from AWS_*, AZURE_STORAGE_* or GOOGLE_* variables).
    url: String,
    /// Backup name: the database's stem.
    #[arg(long, value_name = "STEM")]
    name: String,
    /// The newest backup of that name (the default).
    #[arg(long, conflicts_with = "backup")]
    latest: bool,
    /// This backup (its archive's file name, as `list` shows it) instead of the newest.
    #[arg(long, value_name = "FILE")]
    backup: Option<String>,
    /// Directory to download the archive and its manifest into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn list(args: ListArgs) -> anyhow::Result<u8> {
    let remote = store::open_remote(&args.url)?;
    let listed = remote.list(&args.name)?;
    if args.json {
        super::print_json(&serde_json::json!(
            listed
                .iter()
                .map(|b| serde_json::json!({ "name": b.name, "bytes": b.bytes }))
                .collect::<Vec<_>>()
        ));
    } else {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for b in &listed {
            let size = b.bytes.map_or("?".into(), dbbackup::util::human_bytes);
            let _ = writeln!(out, "{}\t{size}", b.name);
        }
    }
    Ok(exit::OK)
}

pub fn fetch(args: FetchArgs) -> anyhow::Result<u8> {
    let remote = store::open_remote(&args.url)?;
    let listed = remote.list(&args.name)?;
    let chosen: Option<&StoredBackup> = match &args.backup {
        Some(file) => listed.iter().find(|b| &b.name == file),
        None => listed.first(),
    };
    let Some(chosen) = chosen else {
        return Err(dbbackup::Error::Remote(format!(
            "{} holds no backup {} of {}",
            remote.describe(),
            args.backup.as_deref().unwrap_or("at all"),
            args.name
        ))
        .into());
    };
    let path = remote.fetch(chosen, &args.out)?;
    tracing::info!("fetched {} from {}", chosen.name, remote.describe());
    if args.json {
        super::print_json(&serde_json::json!({
            "path": path,
            "manifest_path": dbbackup::archive::manifest::path_for(&path),
            "bytes": chosen.bytes,
        }));
    } else {
        println!("{}", path.display());
    }
    Ok(exit::OK)
}
