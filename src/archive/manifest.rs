//! The manifest: a JSON sidecar describing one backup, taken from the same snapshot as the dump.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Format;
use super::codec::Compression;
use crate::error::{Error, Result};

/// Bumped when a field changes meaning; readers refuse versions they do not know.
pub const MANIFEST_VERSION: u32 = 1;

/// The sidecar's file name suffix, appended to the archive's file name.
pub const SUFFIX: &str = ".manifest.json";

/// The largest manifest read. A manifest is read whole and may come from anywhere (a downloaded
/// artifact); a real one takes a few hundred bytes per table, so this leaves room for hundreds
/// of thousands of tables while a file claiming billions is refused before it fills memory.
pub const MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    /// `dbbackup <version>` that wrote this backup.
    pub tool: String,
    pub engine: EngineInfo,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Where the data came from, with any password removed.
    pub source: String,
    pub format: Format,
    /// The compressor and level the archive was written with. Absent in manifests written
    /// before zstd was offered: those archives are gzip. Readers go by the archive's content
    /// all the same ([`crate::archive::codec::Codec::sniff`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// File name of the archive this manifest describes (no directory: the pair moves together).
    pub archive: String,
    pub snapshot: Snapshot,
    /// Bytes of the dump before compression.
    pub raw_bytes: u64,
    /// Bytes of the archive on disk.
    pub compressed_bytes: u64,
    /// sha256 of the archive file, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// `sqlite` or `postgres`.
    pub name: String,
    /// Version of the database engine (server) the snapshot was taken from.
    pub version: String,
    /// Version of the dump tool, where one is used (e.g. `pg_dump (PostgreSQL) 15.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_tool: Option<String>,
    /// Where that tool was, when dbbackup chose it among several installed versions
    /// (PostgreSQL's `pg_dump`: the newest major at least the server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_tool_path: Option<String>,
}

/// What a database holds, described the same way on the source and on a restored copy, so the
/// restore test can compare the two field by field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Names the content checksum algorithm, so a reader never compares checksums of two kinds.
    pub checksum_algorithm: String,
    /// sha256 over the schema objects' definitions, in a stable order.
    pub schema_checksum: String,
    pub objects: Vec<SchemaObject>,
    pub tables: Vec<TableStats>,
    /// Engine-specific facts worth restoring faithfully (SQLite: user_version, application_id).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// What the dump carries, or the source holds, that the restore test does not compare,
    /// each with why: the report lists them, so a green test claims no more than it checked.
    /// Described from the source; the restored copy's own list is not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaObject {
    /// `table`, `index`, `view`, `trigger`, ...
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub name: String,
    pub rows: u64,
    /// Content checksum that depends on the rows only, never on page layout.
    pub checksum: String,
}

impl Snapshot {
    /// Saturates rather than overflowing: the counts come from a file that may be hostile.
    pub fn total_rows(&self) -> u64 {
        self.tables
            .iter()
            .fold(0u64, |sum, t| sum.saturating_add(t.rows))
    }
}

/// The manifest path that belongs to an archive path.
pub fn path_for(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(SUFFIX);
    PathBuf::from(name)
}

impl Manifest {
    /// Reads and checks a manifest file. Errors are "unreadable backup" errors, naming the file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let unreadable = |e: std::io::Error| {
            Error::unreadable(path, format!("manifest missing or unreadable: {e}"))
        };
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|file| file.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(Error::unreadable(
                path,
                format!(
                    "the manifest is larger than {MAX_BYTES} bytes, which no dbbackup manifest is; \
                     it was not written by dbbackup"
                ),
            ));
        }
        Self::parse(&bytes).map_err(|reason| Error::unreadable(path, reason))
    }

    /// Parses manifest bytes; the error says what is wrong with them.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a dbbackup manifest ({e})"))?;
        if m.manifest_version != MANIFEST_VERSION {
            return Err(format!(
                "manifest version {} is not supported by this dbbackup (knows {}): upgrade dbbackup",
                m.manifest_version, MANIFEST_VERSION
            ));
        }
        Ok(m)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }
}
