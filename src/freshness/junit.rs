//! The check as a JUnit XML report, so the same reporting actions that show restore tests show
//! a stale backup as a failed check: one `<testsuite>` per backup name holding one
//! `<testcase name="freshness">`, with what was found as `<properties>`. Valid against the
//! Surefire/Jenkins XSD (`tests/data/junit-10.xsd`), like the restore test's report.

use std::io::Write;
use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::{Freshness, Rule};
use crate::error::Result;
use crate::restore_test::junit::{write_report, xml_safe};

/// Writes the report to `path`, atomically.
pub fn write_file(
    findings: &[Freshness],
    rule: &Rule,
    checked_at: &str,
    path: &Path,
) -> Result<()> {
    write_report(path, |out| write(findings, rule, checked_at, out))
}

/// Writes the XML document.
pub fn write(
    findings: &[Freshness],
    rule: &Rule,
    checked_at: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.get_mut()
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    let failures = findings.iter().filter(|f| !f.passed).count();
    w.create_element("testsuites")
        .with_attributes([
            ("name", "dbbackup check"),
            ("tests", &findings.len().to_string()),
            ("failures", &failures.to_string()),
            ("errors", "0"),
            ("time", "0.000"),
        ])
        .write_inner_content(|w| {
            findings
                .iter()
                .try_for_each(|f| suite(w, f, rule, checked_at))
        })?;
    w.get_mut().write_all(b"\n")
}

fn suite<W: Write>(
    w: &mut Writer<W>,
    f: &Freshness,
    rule: &Rule,
    checked_at: &str,
) -> std::io::Result<()> {
    let name = xml_safe(&f.name);
    w.create_element("testsuite")
        .with_attributes([
            ("name", name.as_ref()),
            ("tests", "1"),
            ("failures", if f.passed { "0" } else { "1" }),
            ("errors", "0"),
            ("skipped", "0"),
            ("time", "0.000"),
            ("timestamp", checked_at),
        ])
        .write_inner_content(|w| {
            w.create_element("properties")
                .write_inner_content(|w| properties(w, f, rule))?;
            let case = w.create_element("testcase").with_attributes([
                ("name", "freshness"),
                ("classname", name.as_ref()),
                ("time", "0.000"),
            ]);
            match f.passed {
                true => case.write_empty().map(drop),
                false => case
                    .write_inner_content(|w| {
                        w.create_element("failure")
                            .with_attributes([
                                ("type", "freshness"),
                                ("message", xml_safe(&f.message).as_ref()),
                            ])
                            .write_text_content(BytesText::new(&xml_safe(&f.message)))
                            .map(drop)
                    })
                    .map(drop),
            }
        })?;
    Ok(())
}

fn properties<W: Write>(w: &mut Writer<W>, f: &Freshness, rule: &Rule) -> std::io::Result<()> {
    let mut props = vec![
        ("store", f.store.clone()),
        ("max_age", rule.max_age_text.clone()),
    ];
    let optional = [
        ("min_bytes", rule.min_bytes.map(|b| b.to_string())),
        ("newest", f.newest.clone()),
        ("created_at", f.created_at.clone()),
        ("age_seconds", f.age_seconds.map(|s| s.to_string())),
        ("bytes", f.bytes.map(|b| b.to_string())),
    ];
    props.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
    for (name, value) in props {
        w.create_element("property")
            .with_attributes([("name", name), ("value", xml_safe(&value).as_ref())])
            .write_empty()?;
    }
    Ok(())
}
