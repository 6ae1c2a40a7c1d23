//! The backup's JUnit report: the drift guard as a `<testsuite name="drift">` holding one
//! `<testcase name="drift">` (failed with expected and actual per table, skipped when nothing
//! was compared), then the restore test's suites as `restore-test --junit` writes them, then,
//! when the run failed after all of them passed (an upload), a failed `<testsuite name="store">`. Valid
//! against the Surefire/Jenkins XSD (`tests/data/junit-10.xsd`) like the other reports.

use std::io::Write;
use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::Report;
use crate::error::Result;
use crate::restore_test;
use crate::restore_test::junit::{suite, write_report, xml_safe};

/// One backup's part of the report: what `summary` needs to show it without its `--json`
/// (the drift suite's properties), its drift guard and its restore tests; or, for a backup that
/// failed before it was made, the error (a suite `backup` with one failed case).
pub enum Entry<'a> {
    Made {
        /// The new backup's archive name.
        backup: &'a str,
        manifest: &'a crate::archive::Manifest,
        encrypted: bool,
        seconds: f64,
        drift: &'a Report,
        tests: &'a [restore_test::Report],
        /// The run's error and exit code when it failed after the backup was made (a failed
        /// upload, or the drift guard or restore test itself).
        failed: Option<(&'a str, u8)>,
    },
    Failed {
        /// The source, its password removed.
        source: &'a str,
        error: &'a str,
        exit_code: u8,
    },
}

/// Writes the report to `path`, atomically.
pub fn write_file(entries: &[Entry<'_>], path: &Path) -> Result<()> {
    write_report(path, |out| write(entries, out))
}

/// Writes the XML document: for each backup its drift suite then its restore-test suites, so
/// a reader ties each restore test to the drift suite before it.
pub fn write(entries: &[Entry<'_>], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.get_mut()
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let (mut count, mut failures, mut time) = (0, 0, 0.0);
    for entry in entries {
        match entry {
            Entry::Made {
                drift,
                tests,
                failed,
                ..
            } => {
                let after = usize::from(failed_after_checks(failed, drift, tests));
                count += 1 + after + tests.iter().map(|r| r.checks.len()).sum::<usize>();
                failures += after
                    + usize::from(!drift.passed)
                    + tests
                        .iter()
                        .map(|r| r.failed_checks().count())
                        .sum::<usize>();
                // A fold from 0.0: an empty f64 sum is -0.0, which the XSD's time pattern
                // refuses.
                time = tests.iter().fold(time, |sum, r| sum + r.seconds);
            }
            Entry::Failed { .. } => {
                count += 1;
                failures += 1;
            }
        }
    }
    w.create_element("testsuites")
        .with_attributes([
            ("name", "dbbackup backup"),
            ("tests", &count.to_string()),
            ("failures", &failures.to_string()),
            ("errors", "0"),
            ("time", &format!("{time:.3}")),
        ])
        .write_inner_content(|w| {
            entries.iter().try_for_each(|entry| match entry {
                Entry::Made {
                    backup,
                    manifest,
                    encrypted,
                    seconds,
                    drift,
                    tests,
                    failed,
                } => {
                    let mut about = vec![
                        ("backup", backup.to_string()),
                        ("source", manifest.source.clone()),
                        ("engine", manifest.engine.name.clone()),
                        ("compressed_bytes", manifest.compressed_bytes.to_string()),
                        ("rows", manifest.snapshot.total_rows().to_string()),
                        ("encrypted", encrypted.to_string()),
                        ("backup_seconds", format!("{seconds:.3}")),
                    ];
                    if let Some((error, code)) = failed {
                        about.push(("exit_code", code.to_string()));
                        about.push(("error", error.to_string()));
                    }
                    drift_suite(w, drift, &about)?;
                    tests.iter().try_for_each(|r| suite(w, r))?;
                    match failed {
                        Some((error, _)) if failed_after_checks(failed, drift, tests) => {
                            store_suite(w, backup, error)
                        }
                        _ => Ok(()),
                    }
                }
                Entry::Failed {
                    source,
                    error,
                    exit_code,
                } => failed_suite(w, source, error, *exit_code),
            })
        })?;
    w.get_mut().write_all(b"\n")
}

/// Whether the run failed after the drift guard and every restore test passed (an upload, a
/// prune): without a case of its own, the report would show only passing cases for it.
fn failed_after_checks(
    failed: &Option<(&str, u8)>,
    drift: &Report,
    tests: &[restore_test::Report],
) -> bool {
    failed.is_some() && drift.passed && tests.iter().all(|r| r.failed_checks().count() == 0)
}

/// What failed after the checks passed: suite `store`, one failed case named after the
/// backup (`summary` reads the error from the drift suite's properties).
fn store_suite<W: Write>(w: &mut Writer<W>, backup: &str, error: &str) -> std::io::Result<()> {
    one_failed_case(w, "store", &[], backup, error)
}

/// A backup that failed before there was one to test: suite `backup`, one failed case named
/// after the source.
fn failed_suite<W: Write>(
    w: &mut Writer<W>,
    source: &str,
    error: &str,
    exit_code: u8,
) -> std::io::Result<()> {
    let properties = [
        ("source", source.to_string()),
        ("exit_code", exit_code.to_string()),
    ];
    one_failed_case(w, "backup", &properties, source, error)
}

/// A suite `name` holding `properties` (none: no element) and one case `case`, failed with
/// `error`; the case's class and the failure's type are the suite's name.
fn one_failed_case<W: Write>(
    w: &mut Writer<W>,
    name: &str,
    properties: &[(&str, String)],
    case: &str,
    error: &str,
) -> std::io::Result<()> {
    w.create_element("testsuite")
        .with_attributes([
            ("name", name),
            ("tests", "1"),
            ("failures", "1"),
            ("errors", "0"),
            ("skipped", "0"),
            ("time", "0.000"),
        ])
        .write_inner_content(|w| {
            if !properties.is_empty() {
                w.create_element("properties").write_inner_content(|w| {
                    for (name, value) in properties {
                        w.create_element("property")
                            .with_attributes([("name", *name), ("value", xml_safe(value).as_ref())])
                            .write_empty()?;
                    }
                    Ok(())
                })?;
            }
            w.create_element("testcase")
                .with_attributes([
                    ("name", xml_safe(case).as_ref()),
                    ("classname", name),
                    ("time", "0.000"),
                ])
                .write_inner_content(|w| {
                    w.create_element("failure")
                        .with_attributes([("type", name), ("message", xml_safe(error).as_ref())])
                        .write_empty()
                        .map(drop)
                })
                .map(drop)
        })?;
    Ok(())
}

fn drift_suite<W: Write>(
    w: &mut Writer<W>,
    drift: &Report,
    about: &[(&str, String)],
) -> std::io::Result<()> {
    let with = drift.compared_with.clone().unwrap_or_default();
    w.create_element("testsuite")
        .with_attributes([
            ("name", "drift"),
            ("tests", "1"),
            ("failures", if drift.passed { "0" } else { "1" }),
            ("errors", "0"),
            ("skipped", if drift.checked { "0" } else { "1" }),
            ("time", "0.000"),
        ])
        .write_inner_content(|w| {
            w.create_element("properties").write_inner_content(|w| {
                let props = [
                    ("compared_with", with.clone()),
                    ("checked", drift.checked.to_string()),
                    ("max_shrink_percent", drift.max_shrink_percent.to_string()),
                    ("allow_shrink", drift.allow_shrink.to_string()),
                ];
                for (name, value) in props.iter().chain(about) {
                    w.create_element("property")
                        .with_attributes([("name", *name), ("value", xml_safe(value).as_ref())])
                        .write_empty()?;
                }
                Ok(())
            })?;
            let case = w.create_element("testcase").with_attributes([
                ("name", "drift"),
                ("classname", "drift"),
                ("time", "0.000"),
            ]);
            let line = drift.line();
            match (drift.checked, drift.passed) {
                (false, _) => case
                    .write_inner_content(|w| {
                        w.create_element("skipped")
                            .with_attribute(("message", xml_safe(&line).as_ref()))
                            .write_empty()
                            .map(drop)
                    })
                    .map(drop),
                (true, true) => case.write_empty().map(drop),
                (true, false) => case
                    .write_inner_content(|w| {
                        w.create_element("failure")
                            .with_attributes([
                                ("type", "drift"),
                                ("message", xml_safe(&line).as_ref()),
                            ])
                            .write_text_content(BytesText::new(&xml_safe(&failure_text(drift))))
                            .map(drop)
                    })
                    .map(drop),
            }
        })?;
    Ok(())
}

/// Every loss with what was expected and what was found, as the restore test's failures read.
fn failure_text(drift: &Report) -> String {
    drift
        .losses
        .iter()
        .map(|l| {
            let actual = match l.after {
                Some(n) if l.what == "raw size" => format!("{n} bytes"),
                Some(n) => format!("{n} rows"),
                None => "no such table".to_string(),
            };
            format!(
                "{}\n  expected: {}\n  actual:   {actual}",
                l.what, l.expected
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
