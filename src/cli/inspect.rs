use std::path::{Path, PathBuf};

use dbbackup::archive::codec::Codec;
use dbbackup::archive::encrypt::{self, Envelope};
use dbbackup::archive::manifest::{self, Manifest};
use dbbackup::error::exit;
use dbbackup::store::local;
use dbbackup::util::human_bytes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A backup (.gz or .zst next to its .manifest.json), or a directory: its newest backup.
    backup: PathBuf,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    identity: super::IdentityArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let archive = local::locate(&args.backup, false)?.remove(0);
    let identity = args.identity.load()?;
    let (manifest, envelope) =
        encrypt::open_manifest(&manifest::path_for(&archive), identity.as_deref())?;
    if args.json {
        super::print_json(&serde_json::json!({
            "path": archive,
            "manifest_path": manifest::path_for(&archive),
            "manifest": manifest,
            "encryption": envelope.as_ref().map(|e| serde_json::json!({
                "scheme": e.encryption.scheme,
                "recipients": e.encryption.recipients,
                "bytes": e.encrypted_bytes,
                "sha256": e.encrypted_sha256,
            })),
        }));
    } else {
        print!("{}", text(&archive, &manifest, envelope.as_ref()));
    }
    Ok(exit::OK)
}

/// The manifest as a person reads it, tables with their row counts.
fn text(archive: &Path, m: &Manifest, envelope: Option<&Envelope>) -> String {
    use std::fmt::Write as _;
    let tool = m
        .engine
        .dump_tool
        .as_deref()
        .map_or(String::new(), |t| format!(" (dumped with {t})"));
    let ratio = m.raw_bytes as f64 / m.compressed_bytes.max(1) as f64;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<10}{value}");
    };
    line("backup", archive.display().to_string());
    line(
        "engine",
        format!("{} {}{tool}", m.engine.name, m.engine.version),
    );
    line("created", m.created_at.clone());
    line("source", m.source.clone());
    line("format", m.format.to_string());
    line(
        "codec",
        match m.compression {
            // A stored tar: pg_dump compressed the files inside it.
            Some(c) if c.codec == Codec::None => "none (a tar of pg_dump's gzip files)".into(),
            Some(c) => format!("{} level {}", c.codec, c.level),
            // Written before the manifest recorded it: gzip, at a level it did not say.
            None => "gzip".to_string(),
        },
    );
    line(
        "size",
        format!(
            "{} compressed, {} raw ({ratio:.1}x)",
            human_bytes(m.compressed_bytes),
            human_bytes(m.raw_bytes)
        ),
    );
    line("sha256", m.sha256.clone());
    if let Some(e) = envelope {
        line(
            "encrypted",
            format!(
                "age, {} ({}, sha256 {}), to {}",
                e.archive,
                human_bytes(e.encrypted_bytes),
                e.encrypted_sha256,
                e.recipients_text()
            ),
        );
    }
    line("written", m.tool.clone());
    line(
        "tables",
        format!(
            "{} tables, {} rows",
            m.snapshot.tables.len(),
            m.snapshot.total_rows()
        ),
    );
    // Names longer than this are not worth aligning the column to; the bound also keeps the
    // width within what `format!` accepts (a manifest's table name can be of any length).
    const MAX_ALIGNED_NAME: usize = 64;
    let width = m.snapshot.tables.iter().map(|t| t.name.chars().count());
    let width = width.max().unwrap_or(0).min(MAX_ALIGNED_NAME);
    for t in &m.snapshot.tables {
        let _ = writeln!(out, "  {:<width$}  {:>10}", t.name, t.rows);
    }
    out
}
