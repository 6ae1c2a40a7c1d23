//! The backup's JUnit report: the drift guard as a `<testsuite name="drift">` holding one
//! `<testcase name="drift">` (failed with expected and actual per table, skipped when nothing
//! was compared), then the restore test's suites as `restore-test --junit` writes them. Valid
//! against the Surefire/Jenkins XSD (`tests/data/junit-10.xsd`) like the other reports.

use std::io::Write;
use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::Report;
use crate::error::Result;
use crate::restore_test;
use crate::restore_test::junit::{suite, write_report, xml_safe};

/// Writes the report to `path`, atomically.
pub fn write_file(drift: &Report, tests: &[restore_test::Report], path: &Path) -> Result<()> {
    write_report(path, |out| write(drift, tests, out))
}

/// Writes the XML document.
pub fn write(
    drift: &Report,
    tests: &[restore_test::Report],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.get_mut()
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let count: usize = 1 + tests.iter().map(|r| r.checks.len()).sum::<usize>();
    let failures = usize::from(!drift.passed)
        + tests
            .iter()
            .map(|r| r.failed_checks().count())
            .sum::<usize>();
    // A fold from 0.0: an empty f64 sum is -0.0, which the XSD's time pattern refuses.
    let time = tests.iter().fold(0.0, |sum, r| sum + r.seconds);
    w.create_element("testsuites")
        .with_attributes([
            ("name", "dbbackup backup"),
            ("tests", &count.to_string()),
            ("failures", &failures.to_string()),
            ("errors", "0"),
            ("time", &format!("{time:.3}")),
        ])
        .write_inner_content(|w| {
            drift_suite(w, drift)?;
            tests.iter().try_for_each(|r| suite(w, r))
        })?;
    w.get_mut().write_all(b"\n")
}

fn drift_suite<W: Write>(w: &mut Writer<W>, drift: &Report) -> std::io::Result<()> {
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
                for (name, value) in props {
                    w.create_element("property")
                        .with_attributes([("name", name), ("value", xml_safe(&value).as_ref())])
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
