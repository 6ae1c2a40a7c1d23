//! One table for many backups: `dbbackup summary` reads the JUnit reports (`--junit`) and
//! `--json` outputs of backups made in many jobs (a workflow's matrix, one database per job)
//! and `backup SRC1 SRC2 ...` shows its own backups the same way. Each backup becomes a
//! [`Row`]; the rows render as one job-summary table and give one exit status, the highest
//! exit code among them.
//!
//! What a row shows comes from the backup's drift suite (whose properties name the backup, its
//! source, engine, size, rows and duration), its restore-test suite (the verdict), or a
//! `backup` suite of one failed case for a backup that failed before it was made; from JSON,
//! the same facts under the keys `backup --json` prints.

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde::Serialize;

use crate::error::{Error, Result, exit};
use crate::runner::code_cell;
use crate::util::human_bytes;

/// One backup, as far as its report tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The source (password removed); for an encrypted backup its archive name, as its job
    /// summary shows only the envelope.
    pub database: String,
    /// The archive's file name, when the backup was made: two reports of one backup (its JUnit
    /// and its JSON) make one row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Size as stored (compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Not shown for an encrypted backup: row counts are data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub encrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The restore test's verdict (`passed`, `failed`, `unreadable`, `locked`), when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<String>,
    /// The drift guard: `passed`, `failed` or `not checked`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    fn key(&self) -> String {
        match &self.backup {
            Some(backup) => backup.clone(),
            None => format!(
                "{}\u{0}{}",
                self.database,
                self.error.as_deref().unwrap_or("")
            ),
        }
    }

    /// Exit code from what the report says failed, when it carries none of its own.
    fn settle(mut self) -> Self {
        if self.exit_code == exit::OK {
            self.exit_code = match (self.restore_test.as_deref(), self.drift.as_deref()) {
                (Some("unreadable"), _) => exit::UNREADABLE,
                (Some("locked"), _) => exit::IDENTITY,
                (Some("failed"), _) | (_, Some("failed")) => exit::CHECK_FAILED,
                _ => exit::OK,
            };
        }
        if self.encrypted {
            self.rows = None;
            if let Some(backup) = &self.backup {
                self.database = backup.clone();
            }
        }
        self
    }
}

/// The highest exit code of any row: 0 when every backup passed.
pub fn exit_code(rows: &[Row]) -> u8 {
    rows.iter().map(|r| r.exit_code).max().unwrap_or(exit::OK)
}

/// Rows from `backup --json` output: one backup's object (made, or failed with `error` and
/// `exit_code`), or several sources' `{"backups": [...]}`; and from `restore-test --json`,
/// whose `backups` are restore tests (a `verdict` and their `checks`).
pub fn from_json(value: &serde_json::Value) -> Vec<Row> {
    if let Some(all) = value.get("backups").and_then(|b| b.as_array()) {
        return all.iter().flat_map(from_json).collect();
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    if let (Some(_), Some(verdict)) = (value.get("checks"), text(&value["verdict"])) {
        return vec![restore_test_row(value, verdict)];
    }
    let manifest = &value["manifest"];
    let encrypted = value["encrypted"].as_bool().unwrap_or(false);
    let backup = text(&manifest["archive"]).or_else(|| {
        value["path"]
            .as_str()
            .map(|p| crate::util::file_name(Path::new(p)))
    });
    let drift = match (&value["drift"]["checked"], &value["drift"]["passed"]) {
        (_, serde_json::Value::Bool(false)) => Some("failed".to_string()),
        (serde_json::Value::Bool(false), _) => Some("not checked".to_string()),
        (serde_json::Value::Bool(true), _) => Some("passed".to_string()),
        _ => None,
    };
    vec![
        Row {
            database: text(&manifest["source"])
                .or_else(|| text(&value["source"]))
                .unwrap_or_default(),
            backup,
            engine: text(&manifest["engine"]["name"]),
            bytes: value["bytes"].as_u64(),
            rows: manifest["snapshot"]["tables"]
                .as_array()
                .map(|tables| tables.iter().filter_map(|t| t["rows"].as_u64()).sum()),
            encrypted,
            seconds: value["seconds"].as_f64(),
            restore_test: text(&value["restore_test"]["verdict"]),
            drift,
            exit_code: value["exit_code"]
                .as_u64()
                .map_or(exit::OK, |c| c.min(255) as u8),
            error: text(&value["error"]),
        }
        .settle(),
    ]
}

/// One restore test of `restore-test --json`: what its manifest said (`info`, absent when the
/// backup could not be read) and its verdict, which settles the exit code.
fn restore_test_row(value: &serde_json::Value, verdict: String) -> Row {
    let info = &value["info"];
    let backup = value["backup"]
        .as_str()
        .map(|p| crate::util::file_name(Path::new(p)));
    Row {
        database: (info["source"].as_str().map(str::to_owned))
            .or_else(|| backup.clone())
            .unwrap_or_default(),
        encrypted: backup.as_deref().is_some_and(|b| b.ends_with(".age")),
        backup,
        engine: info["engine"].as_str().map(str::to_owned),
        bytes: info["compressed_bytes"].as_u64(),
        rows: info["rows"].as_u64(),
        seconds: value["seconds"].as_f64(),
        restore_test: Some(verdict),
        ..Row::default()
    }
    .settle()
}

/// One `<testsuite>` as read: its name, failure count and properties.
#[derive(Debug, Default)]
struct Suite {
    name: String,
    failures: u64,
    time: Option<f64>,
    props: Vec<(String, String)>,
    first_failure: Option<String>,
}

impl Suite {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Rows from a JUnit report of `backup --junit` or `restore-test --junit`: a drift suite and
/// the restore-test suites after it make one row; a restore-test suite alone is one row; a
/// `backup` suite is a backup that failed before it was made. Other suites (`check`'s) count
/// only when they failed.
pub fn from_junit(xml: &str) -> std::result::Result<Vec<Row>, String> {
    let mut rows: Vec<Row> = Vec::new();
    let mut suites_seen = false;
    for suite in suites(xml)? {
        suites_seen = true;
        let prop = |name| suite.prop(name).map(str::to_owned);
        let number = |name| suite.prop(name).and_then(|v| v.parse().ok());
        match suite.name.as_str() {
            "drift" => rows.push(Row {
                database: prop("source").unwrap_or_default(),
                backup: prop("backup"),
                engine: prop("engine"),
                bytes: number("compressed_bytes"),
                rows: number("rows"),
                encrypted: suite.prop("encrypted") == Some("true"),
                seconds: suite.prop("backup_seconds").and_then(|v| v.parse().ok()),
                restore_test: None,
                drift: Some(
                    match (suite.prop("checked"), suite.failures) {
                        (_, 1..) => "failed",
                        (Some("false"), _) => "not checked",
                        _ => "passed",
                    }
                    .to_string(),
                ),
                // A run that failed after the backup was made (an upload) says so here.
                exit_code: number("exit_code").map_or(exit::OK, |c: u64| c.min(255) as u8),
                error: prop("error"),
            }),
            "backup" if suite.prop("exit_code").is_some() => rows.push(Row {
                database: prop("source").unwrap_or_default(),
                exit_code: number("exit_code")
                    .unwrap_or(exit::INTERNAL as u64)
                    .min(255) as u8,
                error: suite.first_failure.clone(),
                ..Row::default()
            }),
            // A failure after the checks (an upload): the drift suite's row already carries
            // its error and exit code.
            "store" if rows.last().is_some_and(|r| r.backup.is_some()) => {}
            _ if suite.prop("verdict").is_some() => {
                let name = suite
                    .prop("backup")
                    .map(|b| crate::util::file_name(Path::new(b)));
                let verdict = prop("verdict");
                match rows.last_mut() {
                    // The restore test of the backup whose drift suite came just before.
                    Some(row) if row.backup.is_some() && row.backup == name => {
                        row.restore_test = verdict;
                    }
                    _ => rows.push(Row {
                        database: prop("source").unwrap_or_else(|| suite.name.clone()),
                        backup: name,
                        engine: prop("engine"),
                        bytes: number("compressed_bytes"),
                        rows: number("rows"),
                        encrypted: suite.prop("backup").is_some_and(|b| b.ends_with(".age")),
                        seconds: suite.time,
                        restore_test: verdict,
                        ..Row::default()
                    }),
                }
            }
            _ if suite.failures > 0 => rows.push(Row {
                database: suite.name.clone(),
                exit_code: exit::CHECK_FAILED,
                error: suite.first_failure.clone(),
                ..Row::default()
            }),
            _ => {}
        }
    }
    if !suites_seen {
        return Err("it holds no <testsuite>: not a JUnit report".into());
    }
    Ok(rows.into_iter().map(Row::settle).collect())
}

/// The suites of a JUnit document, with their properties and first failure's message.
fn suites(xml: &str) -> std::result::Result<Vec<Suite>, String> {
    let mut reader = Reader::from_str(xml);
    let mut suites = Vec::new();
    let mut current: Option<Suite> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let (element, is_start) = match event {
            Event::Eof => break,
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(e) => {
                if e.name().as_ref() == "testsuite" {
                    suites.extend(current.take());
                }
                continue;
            }
            _ => continue,
        };
        let attr = |name: &str| {
            element
                .try_get_attribute(name)
                .ok()
                .flatten()
                .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
                .map(|v| v.into_owned())
        };
        match element.name().as_ref() {
            "testsuite" => {
                let suite = Suite {
                    name: attr("name").unwrap_or_default(),
                    failures: attr("failures").and_then(|f| f.parse().ok()).unwrap_or(0),
                    time: attr("time").and_then(|t| t.parse().ok()),
                    ..Suite::default()
                };
                match is_start {
                    true => current = Some(suite),
                    false => suites.push(suite),
                }
            }
            "property" => {
                if let (Some(suite), Some(name)) = (current.as_mut(), attr("name")) {
                    suite.props.push((name, attr("value").unwrap_or_default()));
                }
            }
            "failure" | "error" => {
                if let Some(suite) = current.as_mut() {
                    suite.first_failure = suite.first_failure.take().or(attr("message"));
                }
            }
            _ => {}
        }
    }
    Ok(suites)
}

/// Reads reports: files (each must be a JUnit report or `backup --json` output) and
/// directories (searched for `*.xml` and `*.json` files, as a downloaded artifact lands;
/// files there that are neither are passed over). Two reports of one backup make one row.
pub fn read(paths: &[PathBuf]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for path in paths {
        if path.is_dir() {
            for file in report_files(path)? {
                rows.extend(read_file(&file).unwrap_or_default());
            }
        } else {
            rows.extend(read_file(path)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(row.key()));
    Ok(rows)
}

/// The `*.xml` and `*.json` files under `dir`, sorted, so the table's order is stable.
fn report_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::Usage(format!("{}: cannot list it ({e})", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "xml" || e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reports bigger than this are not reports (a backup given by mistake).
const MAX_REPORT_BYTES: u64 = 64 << 20;

/// One report given by name: not a report is a usage error (exit 2) naming what is wanted.
fn read_file(path: &Path) -> Result<Vec<Row>> {
    let refused = |reason: String| {
        Error::Usage(format!(
            "{}: {reason}; give the JUnit reports (--junit) or --json outputs of backups",
            path.display()
        ))
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_REPORT_BYTES) {
        return Err(refused("larger than any report".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(format!("cannot read it ({e})")))?;
    let neither = || refused("neither a JUnit report nor JSON".into());
    let text = String::from_utf8(bytes).map_err(|_| neither())?;
    match text.trim_start().chars().next() {
        Some('<') => from_junit(&text).map_err(refused),
        Some('{') => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| refused(format!("not JSON: {e}")))?;
            let rows = from_json(&value);
            match rows.iter().all(|r| r.backup.is_none() && r.error.is_none()) {
                true => Err(refused(
                    "not the JSON of `backup --json` or `restore-test --json`".into(),
                )),
                false => Ok(rows),
            }
        }
        _ => Err(neither()),
    }
}

/// The job-summary table: one line per backup, the failed ones with their error.
pub fn markdown(rows: &[Row]) -> String {
    let failed = rows.iter().filter(|r| r.exit_code != exit::OK).count();
    let mut md = format!(
        "### dbbackup: {} backup(s), {}\n\n",
        rows.len(),
        match failed {
            0 => "all passed".to_string(),
            n => format!("{n} failed"),
        }
    );
    md.push_str(
        "| database | engine | size | rows | took | restore test | drift | result |\n\
         | --- | --- | ---: | ---: | ---: | --- | --- | --- |\n",
    );
    for row in rows {
        let result = match (row.exit_code, &row.error) {
            (exit::OK, _) => "passed".to_string(),
            (code, Some(error)) => format!("**failed** (exit {code}): {}", code_cell(error)),
            (code, None) => format!("**failed** (exit {code}: {})", exit::meaning(code)),
        };
        let rows = match (row.encrypted, row.rows) {
            (true, _) => "encrypted".to_string(),
            (false, Some(n)) => n.to_string(),
            (false, None) => String::new(),
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {rows} | {} | {} | {} | {result} |\n",
            code_cell(&row.database),
            row.engine.as_deref().unwrap_or(""),
            row.bytes.map(human_bytes).unwrap_or_default(),
            row.seconds.map(|s| format!("{s:.1} s")).unwrap_or_default(),
            row.restore_test.as_deref().unwrap_or(""),
            row.drift.as_deref().unwrap_or(""),
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup JUnit report as `backup --junit` writes one: the drift guard failed the first
    /// backup; the second (encrypted) failed its restore test; the third was never made.
    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="dbbackup backup" tests="5" failures="3" errors="0" time="1.000">
  <testsuite name="drift" tests="1" failures="1" errors="0" skipped="0" time="0.000">
    <properties>
      <property name="checked" value="true"/>
      <property name="backup" value="app-20261130-010000.sqlite.gz"/>
      <property name="source" value="app.db"/>
      <property name="engine" value="sqlite"/>
      <property name="compressed_bytes" value="2048"/>
      <property name="rows" value="10"/>
      <property name="encrypted" value="false"/>
      <property name="backup_seconds" value="1.500"/>
    </properties>
    <testcase name="drift" classname="drift" time="0.000"><failure type="drift" message="lost"/></testcase>
  </testsuite>
  <testsuite name="drift" tests="1" failures="0" errors="0" skipped="0" time="0.000">
    <properties>
      <property name="checked" value="true"/>
      <property name="backup" value="shop-20261130-010000.sql.gz.age"/>
      <property name="source" value="postgres://u@h/shop"/>
      <property name="rows" value="99"/>
      <property name="encrypted" value="true"/>
    </properties>
    <testcase name="drift" classname="drift" time="0.000"/>
  </testsuite>
  <testsuite name="shop-20261130-010000.sql.gz.age" tests="1" failures="1" errors="0" skipped="0" time="0.5">
    <properties>
      <property name="backup" value="/out/shop-20261130-010000.sql.gz.age"/>
      <property name="verdict" value="failed"/>
    </properties>
    <testcase name="rows" classname="data" time="0.1"><failure type="data" message="x"/></testcase>
  </testsuite>
  <testsuite name="backup" tests="1" failures="1" errors="0" skipped="0" time="0.000">
    <properties>
      <property name="source" value="mysql://u@h/crm"/>
      <property name="exit_code" value="8"/>
    </properties>
    <testcase name="mysql://u@h/crm" classname="backup" time="0.000"><failure type="backup" message="refused | denied"/></testcase>
  </testsuite>
</testsuites>
"#;

    #[test]
    fn a_junit_report_gives_one_row_per_backup_with_its_exit_code() {
        let rows = from_junit(REPORT).unwrap();
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(rows[0].database, "app.db");
        assert_eq!(rows[0].drift.as_deref(), Some("failed"));
        assert_eq!(rows[0].exit_code, exit::CHECK_FAILED);
        assert_eq!(rows[0].rows, Some(10));
        // Encrypted: named by its archive, its row count not shown.
        assert_eq!(rows[1].database, "shop-20261130-010000.sql.gz.age");
        assert_eq!(rows[1].rows, None);
        assert_eq!(rows[1].restore_test.as_deref(), Some("failed"));
        assert_eq!(rows[2].exit_code, exit::REMOTE);
        assert_eq!(rows[2].error.as_deref(), Some("refused | denied"));
        assert_eq!(exit_code(&rows), exit::REMOTE);
        let md = markdown(&rows);
        assert!(md.contains("3 backup(s), 3 failed"), "{md}");
        assert!(md.contains("| encrypted |"), "{md}");
        // A `|` in an error does not end its cell.
        assert!(md.contains("refused \\| denied"), "{md}");
    }

    #[test]
    fn json_of_one_backup_and_of_a_failed_one() {
        let made = serde_json::json!({
            "bytes": 100, "encrypted": false, "seconds": 2.0, "exit_code": 0,
            "manifest": {"archive": "a-1.sqlite.gz", "source": "a.db", "engine": {"name": "sqlite"},
                         "snapshot": {"tables": [{"rows": 3}, {"rows": 4}]}},
            "restore_test": {"verdict": "passed"},
            "drift": {"checked": false, "passed": true},
        });
        let rows = from_json(
            &serde_json::json!({"backups": [made, {"source": "b.db", "exit_code": 3, "error": "gone"}]}),
        );
        assert_eq!(rows[0].rows, Some(7));
        assert_eq!(rows[0].drift.as_deref(), Some("not checked"));
        assert_eq!(rows[0].exit_code, exit::OK);
        assert_eq!(rows[1].database, "b.db");
        assert_eq!(exit_code(&rows), exit::SOURCE);
        assert!(from_junit("<testsuites/>").is_err());
    }
}
