//! The drift guard: a backup that exits 0 can still have lost data (a table emptied by a bad
//! migration, a truncated dump of a shrinking database). The new backup's manifest is compared
//! with the previous backup's, and a loss past the limit fails the backup before anything is
//! rotated away. New tables and growth never fail.
//!
//! The previous manifest comes from the local directory, else from a destination that can read
//! one without fetching the backup ([`crate::store::Store::manifest_bytes`]: a ranged read of
//! an artifact's zip, an object store's manifest object), or from `--compare-to FILE`. An
//! encrypted one is opened with the identity when given; without one the guard says that it
//! did not check, in the log, the job summary, JUnit and `--json` ([`Report::not_checked`]).

pub mod junit;

use std::path::Path;

use serde::Serialize;

use crate::archive::codec::Codec;
use crate::archive::encrypt::{self, Identity};
use crate::archive::manifest::Manifest;
use crate::error::Error;
use crate::runner::code_cell;

/// How much a backup may shrink against the previous one before the guard fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Percent of rows (per table and in all) or of the dump's raw size that may go.
    pub max_shrink_percent: u8,
    /// `--allow-shrink`: losses are reported but fail nothing (an intended change, one run).
    pub allow_shrink: bool,
}

impl Default for Limit {
    fn default() -> Self {
        Self {
            max_shrink_percent: 50,
            allow_shrink: false,
        }
    }
}

/// One loss past the limit, with what was expected and what was found (JUnit's failure body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// `table Genre`, `all rows`, `raw size`.
    pub what: String,
    pub before: u64,
    /// `None`: the table is gone.
    pub after: Option<u64>,
    /// The same loss as one sentence, for the log and the error.
    pub message: String,
    #[serde(skip)]
    pub expected: String,
}

/// One table's rows before and after (`None`: not in that backup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// What the guard did: the `drift` of `--json`, JUnit's `drift` case and the job summary's
/// section all show this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The previous backup compared with (its archive name, or the `--compare-to` file), when
    /// one was found.
    pub compared_with: Option<String>,
    pub checked: bool,
    /// Why it was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub max_shrink_percent: u8,
    pub allow_shrink: bool,
    /// False only when a loss past the limit fails the backup.
    pub passed: bool,
    /// Every table of either backup, the new backup's order first.
    pub tables: Vec<TableRows>,
    pub rows_before: Option<u64>,
    pub rows_after: Option<u64>,
    pub losses: Vec<Loss>,
}

impl Report {
    /// The new backup `new` against `previous` (named `compared_with`).
    pub fn compare(previous: &Manifest, new: &Manifest, compared_with: &str, limit: Limit) -> Self {
        let losses = losses(previous, new, limit);
        let mut tables: Vec<TableRows> = new
            .snapshot
            .tables
            .iter()
            .map(|t| TableRows {
                table: t.name.clone(),
                before: previous
                    .snapshot
                    .tables
                    .iter()
                    .find(|p| p.name == t.name)
                    .map(|p| p.rows),
                after: Some(t.rows),
            })
            .collect();
        for old in &previous.snapshot.tables {
            if !new.snapshot.tables.iter().any(|t| t.name == old.name) {
                tables.push(TableRows {
                    table: old.name.clone(),
                    before: Some(old.rows),
                    after: None,
                });
            }
        }
        Report {
            compared_with: Some(compared_with.to_string()),
            checked: true,
            reason: None,
            max_shrink_percent: limit.max_shrink_percent,
            allow_shrink: limit.allow_shrink,
            passed: limit.allow_shrink || losses.is_empty(),
            tables,
            rows_before: Some(previous.snapshot.total_rows()),
            rows_after: Some(new.snapshot.total_rows()),
            losses,
        }
    }

    /// Nothing compared: no previous backup (`compared_with` `None`), or one whose manifest
    /// could not be read (encrypted without an identity, damaged, unreachable).
    pub fn not_checked(compared_with: Option<String>, reason: String, limit: Limit) -> Self {
        Report {
            compared_with,
            checked: false,
            reason: Some(reason),
            max_shrink_percent: limit.max_shrink_percent,
            allow_shrink: limit.allow_shrink,
            passed: true,
            tables: Vec::new(),
            rows_before: None,
            rows_after: None,
            losses: Vec::new(),
        }
    }

    /// A previous backup exists and was not compared: worth a warning, not just a log line.
    pub fn unchecked_previous(&self) -> bool {
        !self.checked && self.compared_with.is_some()
    }

    /// One line for the log.
    pub fn line(&self) -> String {
        let with = self.compared_with.as_deref().unwrap_or("nothing");
        match (self.checked, self.passed, self.losses.is_empty()) {
            (false, _, _) => format!(
                "drift NOT checked: {}",
                self.reason.as_deref().unwrap_or("")
            ),
            (true, _, true) => format!("drift: no loss against {with}"),
            (true, true, false) => format!(
                "drift: accepted with --allow-shrink against {with}: {}",
                shown(&self.losses)
            ),
            (true, false, false) => format!("drift FAILED against {with}: {}", shown(&self.losses)),
        }
    }

    /// The error that fails the backup, when a loss does; `aside` is where the new backup was
    /// set aside.
    pub fn failure(&self, source: &str, aside: &Path) -> Option<Error> {
        if self.passed {
            return None;
        }
        Some(Error::Verify {
            object: format!("the new backup of {source}"),
            reason: format!(
                "it lost data against the previous backup {} ({}; more than {}% is a loss): it \
                 was set aside as {}, and nothing was rotated away; if the change is intended, \
                 pass --allow-shrink for this run",
                self.compared_with.as_deref().unwrap_or(""),
                shown(&self.losses),
                self.max_shrink_percent,
                aside.display()
            ),
        })
    }

    /// The job summary's section. `show_data` false (an encrypted backup, whose summary is as
    /// readable as its artifact) leaves out table names and row counts.
    pub fn summary_markdown(&self, show_data: bool) -> String {
        let with = self
            .compared_with
            .as_deref()
            .map(|w| format!(" against `{}`", code_cell(w)))
            .unwrap_or_default();
        if !self.checked {
            return format!(
                "#### Drift{with}: NOT checked\n\n{}\n",
                self.reason.as_deref().unwrap_or("")
            );
        }
        let verdict = match (self.passed, self.losses.is_empty()) {
            (_, true) => "passed".to_string(),
            (true, false) => "losses accepted with `--allow-shrink`".to_string(),
            (false, false) => format!(
                "FAILED (more than {}% lost, or a table vanished or emptied)",
                self.max_shrink_percent
            ),
        };
        let mut md = format!("#### Drift{with}: {verdict}\n\n");
        if !show_data {
            md.push_str(&format!(
                "{} loss(es); table names and row counts are not shown for an encrypted backup.\n",
                self.losses.len()
            ));
            return md;
        }
        for loss in &self.losses {
            md.push_str(&format!("- {}\n", code_cell(&loss.message)));
        }
        if !self.losses.is_empty() {
            md.push('\n');
        }
        md.push_str(
            "| table | rows before | rows after | change |\n| --- | ---: | ---: | ---: |\n",
        );
        let count = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        for t in &self.tables {
            let change = match (t.before, t.after) {
                (Some(b), Some(a)) => format!("{:+}", a as i128 - b as i128),
                (None, Some(_)) => "new".into(),
                (Some(_), None) => "vanished".into(),
                (None, None) => String::new(),
            };
            md.push_str(&format!(
                "| `{}` | {} | {} | {change} |\n",
                code_cell(&t.table),
                count(t.before),
                count(t.after)
            ));
        }
        md
    }
}

/// The manifest in a sidecar's bytes (a plain manifest, or an encrypted backup's envelope
/// opened with `identity`), or why it cannot be compared with.
pub fn open_previous(
    bytes: &[u8],
    name: &str,
    identity: Option<&Identity>,
) -> std::result::Result<Manifest, String> {
    match encrypt::open_manifest_bytes(bytes, Path::new(name), identity) {
        Ok((manifest, _)) => Ok(manifest),
        Err(Error::Identity(why)) if identity.is_none() => Err(format!(
            "the previous backup {name} is encrypted and no identity was given (--identity or \
             DBBACKUP_IDENTITY), so it could not be compared with ({why})"
        )),
        Err(e) => Err(format!(
            "the previous backup's manifest could not be read: {e}"
        )),
    }
}

/// The first few losses, and how many more: a dropped schema can lose hundreds of tables.
fn shown(lost: &[Loss]) -> String {
    const SHOWN: usize = 5;
    let mut text = lost
        .iter()
        .take(SHOWN)
        .map(|l| l.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    if lost.len() > SHOWN {
        text.push_str(&format!("; and {} more", lost.len() - SHOWN));
    }
    text
}

/// What shrank past the limit (whether or not `--allow-shrink` accepts it); empty when nothing
/// did.
pub fn losses(previous: &Manifest, new: &Manifest, limit: Limit) -> Vec<Loss> {
    let percent = u64::from(limit.max_shrink_percent);
    let mut found = Vec::new();
    let too_much = |before: u64, after: u64| {
        before > 0 && (before - after.min(before)) * 100 > before * percent
    };
    // The least that passes: a loss of at most `percent` of `before`.
    let least = |before: u64| before - before * percent / 100;
    let expected = |before: u64, unit: &str| {
        format!(
            "at least {} {unit} ({before} before, at most {percent}% lost)",
            least(before)
        )
    };
    for old in &previous.snapshot.tables {
        let what = format!("table {}", old.name);
        match new.snapshot.tables.iter().find(|t| t.name == old.name) {
            None => found.push(Loss {
                message: format!("table {} vanished (it had {} rows)", old.name, old.rows),
                expected: format!("the table, with {} rows before", old.rows),
                what,
                before: old.rows,
                after: None,
            }),
            Some(now) if old.rows > 0 && now.rows == 0 => found.push(Loss {
                message: format!("table {} is empty (it had {} rows)", old.name, old.rows),
                expected: format!(
                    "some rows ({} before; an emptied table always fails)",
                    old.rows
                ),
                what,
                before: old.rows,
                after: Some(0),
            }),
            Some(now) if too_much(old.rows, now.rows) => found.push(Loss {
                message: format!(
                    "table {} shrank from {} to {} rows",
                    old.name, old.rows, now.rows
                ),
                expected: expected(old.rows, "rows"),
                what,
                before: old.rows,
                after: Some(now.rows),
            }),
            Some(_) => {}
        }
    }
    let (before, after) = (previous.snapshot.total_rows(), new.snapshot.total_rows());
    if too_much(before, after) {
        found.push(Loss {
            what: "all rows".into(),
            message: format!("the database shrank from {before} to {after} rows"),
            expected: expected(before, "rows"),
            before,
            after: Some(after),
        });
    }
    // Sizes compare only within one format: a SQL dump is not a database file. A stored tar
    // (codec `none`) holds pg_dump's own gzip files, so its raw size is a compressed size: it
    // compares only with one stored the same way at the same level, never with a tar
    // compressed as a whole (whose raw size is the uncompressed tar).
    let same_format = previous.format == new.format && previous.engine.name == new.engine.name;
    let stored = |m: &Manifest| m.compression.is_some_and(|c| c.codec == Codec::None);
    let same_sizes = match stored(previous) || stored(new) {
        true => previous.compression == new.compression,
        false => true,
    };
    if same_format && same_sizes && too_much(previous.raw_bytes, new.raw_bytes) {
        found.push(Loss {
            what: "raw size".into(),
            message: format!(
                "the dump shrank from {} to {} bytes",
                previous.raw_bytes, new.raw_bytes
            ),
            expected: expected(previous.raw_bytes, "bytes"),
            before: previous.raw_bytes,
            after: Some(new.raw_bytes),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::{Snapshot, TableStats};

    fn manifest(tables: &[(&str, u64)], raw_bytes: u64) -> Manifest {
        let snapshot = Snapshot {
            tables: tables
                .iter()
                .map(|(name, rows)| TableStats {
                    name: name.to_string(),
                    rows: *rows,
                    checksum: String::new(),
                })
                .collect(),
            ..Snapshot::default()
        };
        let mut m: Manifest = serde_json::from_str(include_str!(
            "../../tests/corpus/archive/tiny-20261125-204121.sqlite.gz.manifest.json"
        ))
        .unwrap();
        m.snapshot = snapshot;
        m.raw_bytes = raw_bytes;
        m
    }

    /// A stored tar's raw size is pg_dump's gzip output: a tar compressed as a whole (zstd),
    /// or stored at another level, is not a smaller dump. Rows still compare.
    #[test]
    fn a_stored_tars_size_compares_only_with_one_stored_the_same_way() {
        use crate::archive::codec::Compression;
        let with = |codec, level, raw| {
            let mut m = manifest(&[("a", 100)], raw);
            m.compression = Some(Compression { codec, level });
            m
        };
        let messages = |a: &Manifest, b: &Manifest| -> Vec<String> {
            super::losses(a, b, Limit::default())
                .into_iter()
                .map(|l| l.message)
                .collect()
        };
        let zstd_tar = with(Codec::Zstd, 3, 5000);
        let stored = with(Codec::None, 6, 1000);
        assert!(messages(&zstd_tar, &stored).is_empty());
        assert!(messages(&with(Codec::None, 1, 2000), &stored).is_empty());
        assert_eq!(
            messages(&with(Codec::None, 6, 3000), &stored),
            ["the dump shrank from 3000 to 1000 bytes"]
        );
        assert_eq!(
            messages(&with(Codec::Gzip, 6, 3000), &with(Codec::Gzip, 9, 1000)),
            ["the dump shrank from 3000 to 1000 bytes"]
        );
    }

    #[test]
    fn losses_past_the_limit_fail_and_growth_never_does() {
        let limit = Limit::default();
        let before = manifest(&[("a", 100), ("b", 10), ("c", 0)], 1000);
        let grown = manifest(&[("a", 200), ("b", 10), ("c", 0), ("new", 5)], 2000);
        let losses = |a: &Manifest, b: &Manifest, l: Limit| -> Vec<String> {
            super::losses(a, b, l)
                .into_iter()
                .map(|l| l.message)
                .collect()
        };
        assert!(losses(&before, &grown, limit).is_empty());
        let within = manifest(&[("a", 51), ("b", 10), ("c", 0)], 1000);
        assert!(losses(&before, &within, limit).is_empty());
        let lost = manifest(&[("a", 40), ("c", 0)], 400);
        assert_eq!(
            losses(&before, &lost, limit),
            [
                "table a shrank from 100 to 40 rows",
                "table b vanished (it had 10 rows)",
                "the database shrank from 110 to 40 rows",
                "the dump shrank from 1000 to 400 bytes",
            ]
        );
        let emptied = manifest(&[("a", 100), ("b", 0), ("c", 0)], 990);
        assert_eq!(
            losses(&before, &emptied, limit),
            ["table b is empty (it had 10 rows)"]
        );
        let strict = Limit {
            max_shrink_percent: 10,
            allow_shrink: false,
        };
        assert_eq!(losses(&before, &within, strict).len(), 2);
    }
}
