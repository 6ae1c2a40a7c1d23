//! The drift guard: a backup that exits 0 can still have lost data (a table emptied by a bad
//! migration, a truncated dump of a shrinking database). The new backup's manifest is compared
//! with the previous backup's, and a loss past the limit fails the backup before anything is
//! rotated away. New tables and growth never fail.

use crate::archive::manifest::Manifest;

/// How much a backup may shrink against the previous one before the guard fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Percent of rows (per table and in all) or of the dump's raw size that may go.
    pub max_shrink_percent: u8,
}

impl Default for Limit {
    fn default() -> Self {
        Self {
            max_shrink_percent: 50,
        }
    }
}

/// What shrank past the limit, one line each; empty when nothing did.
pub fn losses(previous: &Manifest, new: &Manifest, limit: Limit) -> Vec<String> {
    let mut found = Vec::new();
    let too_much = |before: u64, after: u64| {
        before > 0
            && (before - after.min(before)) * 100 > before * u64::from(limit.max_shrink_percent)
    };
    for old in &previous.snapshot.tables {
        match new.snapshot.tables.iter().find(|t| t.name == old.name) {
            None => found.push(format!(
                "table {} vanished (it had {} rows)",
                old.name, old.rows
            )),
            Some(now) if old.rows > 0 && now.rows == 0 => found.push(format!(
                "table {} is empty (it had {} rows)",
                old.name, old.rows
            )),
            Some(now) if too_much(old.rows, now.rows) => found.push(format!(
                "table {} shrank from {} to {} rows",
                old.name, old.rows, now.rows
            )),
            Some(_) => {}
        }
    }
    let (before, after) = (previous.snapshot.total_rows(), new.snapshot.total_rows());
    if too_much(before, after) {
        found.push(format!("the database shrank from {before} to {after} rows"));
    }
    // Sizes compare only within one format: a SQL dump is not a database file.
    let same_format = previous.format == new.format && previous.engine.name == new.engine.name;
    if same_format && too_much(previous.raw_bytes, new.raw_bytes) {
        found.push(format!(
            "the dump shrank from {} to {} bytes",
            previous.raw_bytes, new.raw_bytes
        ));
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
            "../tests/corpus/archive/tiny-20261125-204121.sqlite.gz.manifest.json"
        ))
        .unwrap();
        m.snapshot = snapshot;
        m.raw_bytes = raw_bytes;
        m
    }

    #[test]
    fn losses_past_the_limit_fail_and_growth_never_does() {
        let limit = Limit::default();
        let before = manifest(&[("a", 100), ("b", 10), ("c", 0)], 1000);
        let grown = manifest(&[("a", 200), ("b", 10), ("c", 0), ("new", 5)], 2000);
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
        };
        assert_eq!(losses(&before, &within, strict).len(), 2);
    }
}
