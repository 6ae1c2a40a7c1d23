//! The backup archive: what a backup is on disk.
//!
//! A backup is two files side by side:
//! - `<stem>-<yyyymmdd-HHMMSS>[-N].<ext>.gz`: the dump itself, a plain gzip stream, so that
//!   `gunzip` plus the engine's own tools restore it without dbbackup; `.zst` in place of `.gz`
//!   with `--compression zstd`, a plain zstd frame for `zstd -d` (see [`codec`]);
//! - the same name plus `.manifest.json`: what the dump holds (tables, row counts, checksums)
//!   and the archive's size and sha256.
//!
//! The manifest is a sidecar rather than something inside the gzip stream because it records
//! the archive's own sha256, and because standard tools must see nothing but the dump.
//!
//! An encrypted backup (`--encrypt-to`) is the same pair with `.age` after `.gz` or `.zst`, its manifest
//! sealed inside a readable envelope: see [`encrypt`].

pub mod codec;
pub mod compress;
mod deflate;
pub mod encrypt;
pub mod manifest;
pub mod naming;

pub use manifest::Manifest;

use serde::{Deserialize, Serialize};

/// How the dump inside the archive is encoded. Which formats an engine writes, and the file
/// extension of each, is the engine's to say (`engine::Engine::formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The engine's own file (SQLite: the database file itself).
    Native,
    /// A SQL text script.
    Sql,
    /// PostgreSQL's custom format (`pg_dump -Fc`), restorable with `pg_restore`.
    Custom,
    /// PostgreSQL's directory format (`pg_dump -Fd`, dumped by parallel workers with
    /// `--jobs`), stored as one tar of that directory, restorable with `pg_restore -j`.
    Directory,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Native => "native",
            Format::Sql => "sql",
            Format::Custom => "custom",
            Format::Directory => "directory",
        })
    }
}
