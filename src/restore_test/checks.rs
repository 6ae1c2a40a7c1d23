//! The checks of a restore test, each comparing what was restored with what the manifest says
//! the source held. Each check is its own result, so a report shows exactly what broke.

use std::time::Instant;

use super::Options;
use super::report::{CheckKind, CheckResult, Difference};
use super::stream::ArchiveFacts;
use crate::archive::encrypt::Envelope;
use crate::archive::manifest::{self, Manifest, Snapshot};
use crate::engine::{IntegrityCheck, Scratch};
use crate::error::{Error, Result};

pub(super) fn archive_check(
    manifest: &Manifest,
    envelope: Option<&Envelope>,
    facts: &ArchiveFacts,
) -> CheckResult {
    let mut diffs = Vec::new();
    let mut differ = |what: &str, expected: String, actual: String| {
        if expected != actual {
            diffs.push(Difference {
                what: what.into(),
                expected,
                actual,
            });
        }
    };
    let codec = facts.codec;
    match &facts.stream_error {
        Some(err) if envelope.is_some() => differ(
            &format!("decrypted {codec} stream"),
            "complete".into(),
            err.clone(),
        ),
        Some(err) => differ(&format!("{codec} stream"), "complete".into(), err.clone()),
        None => {
            differ(
                &format!("data after the {codec} stream"),
                "0 bytes".into(),
                format!("{} bytes", facts.trailing_bytes),
            );
            differ(
                "uncompressed size",
                manifest.raw_bytes.to_string(),
                facts.raw_bytes.to_string(),
            );
        }
    }
    differ(
        "archive size",
        manifest.compressed_bytes.to_string(),
        facts.compressed_bytes.to_string(),
    );
    differ("sha256", manifest.sha256.clone(), facts.sha256.clone());
    let mut ok = format!(
        "{codec} stream complete, {} bytes, sha256 {}",
        facts.compressed_bytes, facts.sha256
    );
    if let Some(envelope) = envelope {
        let (bytes, sha256) = facts.ciphertext.clone().unwrap_or_default();
        differ(
            "encrypted archive size",
            envelope.encrypted_bytes.to_string(),
            bytes.to_string(),
        );
        differ(
            "encrypted archive sha256",
            envelope.encrypted_sha256.clone(),
            sha256.clone(),
        );
        ok = format!("age-encrypted archive authenticated, {bytes} bytes, sha256 {sha256}; {ok}");
    }
    CheckResult::new(CheckKind::Archive, "archive", ok, diffs)
}

/// Integrity, schema and data checks on a restored copy.
pub(super) fn restored_checks(
    scratch: &dyn Scratch,
    expected: &Snapshot,
    opts: &Options,
) -> Result<Vec<CheckResult>> {
    let mut checks = Vec::new();
    let started = Instant::now();
    match scratch.integrity(opts.quick) {
        Ok(results) => checks.extend(results.iter().map(integrity_check)),
        Err(err @ Error::Verify { .. }) => checks.push(CheckResult::failed(
            CheckKind::Integrity,
            "integrity",
            "integrity check",
            "ok",
            err.to_string(),
        )),
        Err(other) => return Err(other),
    }
    if let Some(first) = checks.first_mut() {
        first.seconds = started.elapsed().as_secs_f64();
    }
    let started = Instant::now();
    match scratch.describe() {
        Ok(actual) => {
            let may_differ = scratch.schema_checksum_may_differ();
            checks.push(schema_check(expected, &actual, may_differ).timed(started));
            checks.extend(data_checks(expected, &actual));
        }
        Err(err @ Error::Verify { .. }) => {
            checks.push(
                CheckResult::failed(
                    CheckKind::Schema,
                    "schema",
                    "description of the restored database",
                    "readable",
                    err.to_string(),
                )
                .timed(started),
            );
            checks.extend(skipped_tables(
                expected,
                "the restored database cannot be read",
            ));
        }
        Err(other) => return Err(other),
    }
    Ok(checks)
}

fn integrity_check(result: &IntegrityCheck) -> CheckResult {
    let diffs = result
        .problems
        .iter()
        .map(|p| Difference {
            what: result.name.clone(),
            expected: "ok".into(),
            actual: p.clone(),
        })
        .collect();
    CheckResult::new(
        CheckKind::Integrity,
        &result.name,
        format!("{}: ok", result.name),
        diffs,
    )
}

fn schema_check(
    expected: &Snapshot,
    actual: &Snapshot,
    checksum_may_differ: Option<String>,
) -> CheckResult {
    let mut diffs = Vec::new();
    let shown = |o: &manifest::SchemaObject| format!("{} {}", o.kind, o.name);
    for missing in expected
        .objects
        .iter()
        .filter(|o| !actual.objects.contains(o))
    {
        diffs.push(Difference {
            what: "schema object".into(),
            expected: shown(missing),
            actual: "missing".into(),
        });
    }
    for extra in actual
        .objects
        .iter()
        .filter(|o| !expected.objects.contains(o))
    {
        diffs.push(Difference {
            what: "schema object".into(),
            expected: "absent".into(),
            actual: shown(extra),
        });
    }
    let mut differ = |what: String, e: Option<&String>, a: Option<&String>| {
        if e != a {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(none)".into());
            diffs.push(Difference {
                what,
                expected: show(e),
                actual: show(a),
            });
        }
    };
    let tolerated = match checksum_may_differ {
        Some(why) if expected.schema_checksum != actual.schema_checksum => Some(format!(
            "; schema checksum {} differs from the source's {}, not failed: {why}",
            actual.schema_checksum, expected.schema_checksum
        )),
        _ => {
            differ(
                "schema checksum".into(),
                Some(&expected.schema_checksum),
                Some(&actual.schema_checksum),
            );
            None
        }
    };
    differ(
        "checksum algorithm".into(),
        Some(&expected.checksum_algorithm),
        Some(&actual.checksum_algorithm),
    );
    // What the manifest records is compared; a property a newer dbbackup describes and an
    // older manifest lacks is not a difference.
    for key in expected.properties.keys() {
        differ(
            format!("property {key}"),
            expected.properties.get(key),
            actual.properties.get(key),
        );
    }
    let mut ok = format!(
        "{} objects, schema checksum {}",
        actual.objects.len(),
        actual.schema_checksum
    );
    ok.push_str(tolerated.as_deref().unwrap_or_default());
    let derived = derived_tables(expected);
    if !derived.is_empty() {
        ok.push_str(&format!(
            "; rows not compared for {}: a materialized view is refreshed from its query on \
             restore, not copied, so rows that were stale (or came from random() or now()) \
             differ by design; its definition is compared here",
            derived.join(", ")
        ));
    }
    CheckResult::new(CheckKind::Schema, "schema", ok, diffs)
}

/// Tables whose rows a dump does not carry but rebuilds: materialized views, which `pg_dump`
/// refreshes at the end of the restore.
fn derived_tables(snapshot: &Snapshot) -> Vec<&str> {
    snapshot
        .objects
        .iter()
        .filter(|o| o.kind == "materialized view")
        .map(|o| o.name.as_str())
        .filter(|name| snapshot.tables.iter().any(|t| t.name == *name))
        .collect()
}

/// One result per table of either side: a table the manifest lists but the restored copy lacks
/// fails, and so does one the restored copy has but the manifest does not list.
fn data_checks(expected: &Snapshot, actual: &Snapshot) -> Vec<CheckResult> {
    let derived = derived_tables(expected);
    let derived_here = derived_tables(actual);
    let mut checks: Vec<CheckResult> = expected
        .tables
        .iter()
        .filter(|t| !derived.contains(&t.name.as_str()))
        .map(|want| {
            let name = format!("table {}", want.name);
            let Some(got) = actual.tables.iter().find(|t| t.name == want.name) else {
                let expected = format!("{} rows", want.rows);
                let actual = "missing".to_string();
                return CheckResult::failed(CheckKind::Data, &name, "table", &expected, actual);
            };
            let mut diffs = Vec::new();
            if want.rows != got.rows {
                diffs.push(Difference {
                    what: "rows".into(),
                    expected: want.rows.to_string(),
                    actual: got.rows.to_string(),
                });
            }
            if want.checksum != got.checksum {
                diffs.push(Difference {
                    what: "checksum".into(),
                    expected: want.checksum.clone(),
                    actual: got.checksum.clone(),
                });
            }
            let ok = format!("{} rows, checksum {}", got.rows, got.checksum);
            CheckResult::new(CheckKind::Data, &name, ok, diffs)
        })
        .collect();
    for extra in actual
        .tables
        .iter()
        .filter(|t| !expected.tables.iter().any(|w| w.name == t.name))
        .filter(|t| !derived_here.contains(&t.name.as_str()))
    {
        checks.push(CheckResult::failed(
            CheckKind::Data,
            &format!("table {}", extra.name),
            "table",
            "absent",
            format!("{} rows", extra.rows),
        ));
    }
    checks
}

/// The checks that need a restored copy, marked as not run.
pub(super) fn skipped_after_restore(expected: &Snapshot, opts: &Options) -> Vec<CheckResult> {
    let why = "nothing was restored";
    let integrity = if opts.quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    let mut checks = vec![
        CheckResult::skipped(CheckKind::Integrity, integrity, why),
        CheckResult::skipped(CheckKind::Schema, "schema", why),
    ];
    checks.extend(skipped_tables(expected, why));
    checks
}

fn skipped_tables(expected: &Snapshot, why: &str) -> Vec<CheckResult> {
    let derived = derived_tables(expected);
    expected
        .tables
        .iter()
        .filter(|t| !derived.contains(&t.name.as_str()))
        .map(|t| CheckResult::skipped(CheckKind::Data, &format!("table {}", t.name), why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::TableStats;
    use crate::restore_test::report::Status;

    fn table(name: &str, rows: u64, checksum: &str) -> TableStats {
        TableStats {
            name: name.into(),
            rows,
            checksum: checksum.into(),
        }
    }

    /// Across majors a schema checksum may differ by the deparser: said, not failed; a lost
    /// object still fails, and on one major the checksum must match.
    #[test]
    fn a_schema_checksum_that_may_differ_is_reported_not_failed() {
        let object = |name: &str| manifest::SchemaObject {
            kind: "table".into(),
            name: name.into(),
        };
        let expected = Snapshot {
            schema_checksum: "aaa".into(),
            objects: vec![object("t"), object("u")],
            ..Snapshot::default()
        };
        let mut actual = Snapshot {
            schema_checksum: "bbb".into(),
            ..expected.clone()
        };
        let why = || Some("another major".to_string());
        let check = schema_check(&expected, &actual, why());
        assert_eq!(check.status, Status::Passed, "{}", check.message);
        assert!(
            check
                .message
                .contains("differs from the source's aaa, not failed: another major")
        );
        assert_eq!(
            schema_check(&expected, &actual, None).status,
            Status::Failed
        );
        actual.objects.pop();
        assert_eq!(
            schema_check(&expected, &actual, why()).status,
            Status::Failed
        );
    }

    #[test]
    fn data_checks_name_missing_extra_and_changed_tables() {
        let expected = Snapshot {
            tables: vec![table("a", 3, "x"), table("b", 1, "y")],
            ..Snapshot::default()
        };
        let actual = Snapshot {
            tables: vec![table("a", 2, "z"), table("c", 5, "w")],
            ..Snapshot::default()
        };
        let checks = data_checks(&expected, &actual);
        let summary: Vec<(&str, Status, &str)> = checks
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "table a",
                    Status::Failed,
                    "rows: expected 3, actual 2; checksum: expected x, actual z"
                ),
                (
                    "table b",
                    Status::Failed,
                    "table: expected 1 rows, actual missing"
                ),
                (
                    "table c",
                    Status::Failed,
                    "table: expected absent, actual 5 rows"
                ),
            ]
        );
    }
}
