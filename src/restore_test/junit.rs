//! The restore test as a JUnit XML report, the format CI servers and GitHub reporting actions
//! show as checks: one `<testsuite>` per backup with its metadata as `<properties>`, one
//! `<testcase>` per check and per table, a `<failure>` holding expected and actual values.
//!
//! Written with quick-xml rather than the junit-report crate: junit-report (0.9) cannot write
//! `<properties>`, which carry the backup's metadata here, so its output would have to be
//! parsed and rewritten. The layout follows the Surefire/Jenkins XSD (`junit-10.xsd`), which
//! the integration tests validate against.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::{CheckResult, Report, Status};
use crate::error::{Error, Result};

/// Writes the report for `reports` to `path`, atomically (a CI step never reads half a file).
pub fn write_file(reports: &[Report], path: &Path) -> Result<()> {
    write_report(path, |out| write(reports, out))
}

/// Writes a JUnit report to `path` through a temporary file beside it, so a CI step never
/// reads half a file: the one way every command's `--junit` lands.
pub(crate) fn write_report(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::output("write JUnit report in", dir, e))?;
    write(&mut tmp).map_err(|e| Error::output("write JUnit report", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::output("write JUnit report", path, e.error))?;
    Ok(())
}

/// Writes the XML document.
pub fn write(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.get_mut()
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let tests: usize = reports.iter().map(|r| r.checks.len()).sum();
    let failures = reports
        .iter()
        .map(|r| r.failed_checks().count())
        .sum::<usize>();
    let time: f64 = reports.iter().map(|r| r.seconds).sum();
    w.create_element("testsuites")
        .with_attributes([
            ("name", "dbbackup restore-test"),
            ("tests", &tests.to_string()),
            ("failures", &failures.to_string()),
            ("errors", "0"),
            ("time", &seconds(time)),
        ])
        .write_inner_content(|w| reports.iter().try_for_each(|r| suite(w, r)))?;
    w.get_mut().write_all(b"\n")
}

pub(crate) fn suite<W: Write>(w: &mut Writer<W>, report: &Report) -> std::io::Result<()> {
    let skipped = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .count();
    let name = report.name();
    let file = report.backup.display().to_string();
    w.create_element("testsuite")
        .with_attributes([
            ("name", xml_safe(&name).as_ref()),
            ("tests", &report.checks.len().to_string()),
            ("failures", &report.failed_checks().count().to_string()),
            ("errors", "0"),
            ("skipped", &skipped.to_string()),
            ("time", &seconds(report.seconds)),
            ("timestamp", &report.started_at),
            ("file", xml_safe(&file).as_ref()),
        ])
        .write_inner_content(|w| {
            w.create_element("properties")
                .write_inner_content(|w| properties(w, report))?;
            report.checks.iter().try_for_each(|c| case(w, c))
        })?;
    Ok(())
}

fn properties<W: Write>(w: &mut Writer<W>, report: &Report) -> std::io::Result<()> {
    let mut props = vec![
        ("backup", report.backup.display().to_string()),
        ("verdict", format!("{:?}", report.verdict).to_lowercase()),
    ];
    if let Some(info) = &report.info {
        props.extend([
            ("engine", info.engine.clone()),
            ("engine_version", info.engine_version.clone()),
            ("format", info.format.clone()),
            ("created_at", info.created_at.clone()),
            ("source", info.source.clone()),
            ("tool", info.tool.clone()),
            ("compressed_bytes", info.compressed_bytes.to_string()),
            ("raw_bytes", info.raw_bytes.to_string()),
            ("sha256", info.sha256.clone()),
            ("tables", info.tables.to_string()),
            ("rows", info.rows.to_string()),
        ]);
        if !info.not_compared.is_empty() {
            props.push(("not_compared", info.not_compared.join("; ")));
        }
    }
    for (name, value) in props {
        w.create_element("property")
            .with_attributes([("name", name), ("value", xml_safe(&value).as_ref())])
            .write_empty()?;
    }
    Ok(())
}

fn case<W: Write>(w: &mut Writer<W>, check: &CheckResult) -> std::io::Result<()> {
    let element = w.create_element("testcase").with_attributes([
        ("name", xml_safe(&check.name).as_ref()),
        ("classname", check.kind.as_str()),
        ("time", &seconds(check.seconds)),
    ]);
    match check.status {
        Status::Passed => element.write_empty().map(drop),
        Status::Skipped => element
            .write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute(("message", xml_safe(&check.message).as_ref()))
                    .write_empty()
                    .map(drop)
            })
            .map(drop),
        Status::Failed => element
            .write_inner_content(|w| {
                w.create_element("failure")
                    .with_attributes([
                        ("type", check.kind.as_str()),
                        ("message", xml_safe(&check.message).as_ref()),
                    ])
                    .write_text_content(BytesText::new(&xml_safe(&failure_text(check))))
                    .map(drop)
            })
            .map(drop),
    }
}

/// The failure's body: every difference with its expected and actual value.
fn failure_text(check: &CheckResult) -> String {
    check
        .differences
        .iter()
        .map(|d| {
            format!(
                "{}\n  expected: {}\n  actual:   {}",
                d.what, d.expected, d.actual
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Surefire's time format: seconds with a dot, no exponent.
pub(crate) fn seconds(s: f64) -> String {
    format!("{s:.3}")
}

/// XML 1.0 cannot carry most control characters even escaped, nor U+FFFE and U+FFFF, and
/// table names or error text from a damaged database may hold them: they become U+FFFD so the
/// report stays parseable. Every other character, emoji and the rest beyond U+FFFF included,
/// is kept so names appear exactly as in the database.
pub(crate) fn xml_safe(s: &str) -> Cow<'_, str> {
    let allowed = |c: char| {
        (!c.is_control() || matches!(c, '\t' | '\n' | '\r'))
            && !matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    if s.chars().all(allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if allowed(c) { c } else { '\u{fffd}' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_replacement_characters() {
        assert_eq!(xml_safe("a\u{1}b\tc\u{ffff}"), "a\u{fffd}b\tc\u{fffd}");
        assert!(matches!(xml_safe("table \u{1f389}"), Cow::Borrowed(_)));
        assert!(matches!(xml_safe("plain <&>"), Cow::Borrowed(_)));
    }
}
