//! GitHub Actions glue: step outputs, the job summary, annotations, masking and log groups.
//!
//! The formats follow the runner's documented workflow commands and environment files (the
//! same ones `@actions/core` writes): outputs go to `$GITHUB_OUTPUT` as
//! `name<<DELIMITER\nvalue\nDELIMITER\n` so any value, multiline included, is safe; commands
//! such as `::error::` escape `%`, CR and LF in their message, and also `:` and `,` in their
//! properties. Outside Actions every function here does nothing, so callers need no checks.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::archive::Manifest;
use crate::error::{Error, Result};
use crate::util::human_bytes;

/// The runner environment, read once.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    active: bool,
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
}

impl Runner {
    /// Reads `GITHUB_ACTIONS`, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`.
    pub fn detect() -> Self {
        let file = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            active: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            output_file: file("GITHUB_OUTPUT"),
            summary_file: file("GITHUB_STEP_SUMMARY"),
        }
    }

    /// The same runner writing no step outputs: for one of several backups of one step, whose
    /// outputs would overwrite each other (the step's outputs then come once, for them all).
    pub fn without_outputs(&self) -> Self {
        Self {
            output_file: None,
            ..self.clone()
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Sets a step output. Values may hold anything, newlines included. A failure to write
    /// `$GITHUB_OUTPUT` is an output error (exit 4), like any file dbbackup cannot write.
    pub fn set_output(&self, name: &str, value: &str) -> Result<()> {
        let Some(path) = self.output_file.as_ref().filter(|_| self.active) else {
            return Ok(());
        };
        let delimiter = unique_delimiter(value);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| write!(f, "{name}<<{delimiter}\n{value}\n{delimiter}\n"))
            .map_err(|e| Error::output("write a step output to $GITHUB_OUTPUT", path, e))
    }

    /// Appends Markdown to the job summary (`$GITHUB_STEP_SUMMARY`; a failure is exit 4).
    pub fn append_summary(&self, markdown: &str) -> Result<()> {
        let Some(path) = self.summary_file.as_ref().filter(|_| self.active) else {
            return Ok(());
        };
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{markdown}"))
            .map_err(|e| Error::output("write the job summary to $GITHUB_STEP_SUMMARY", path, e))
    }

    /// An error annotation on the run's page.
    pub fn error(&self, title: &str, message: &str) {
        self.command("error", &[("title", title)], message);
    }

    pub fn warning(&self, title: &str, message: &str) {
        self.command("warning", &[("title", title)], message);
    }

    /// Tells the runner to hide `secret` in every log line from now on. Call it as soon as a
    /// secret is known, before anything could print it.
    pub fn mask(&self, secret: &str) {
        if !secret.is_empty() {
            self.command("add-mask", &[], secret);
        }
    }

    /// Commands go to stderr: the runner reads both streams for them, and stdout stays clean
    /// for `--json`.
    fn command(&self, name: &str, properties: &[(&str, &str)], message: &str) {
        if self.active {
            eprintln!("{}", format_command(name, properties, message));
        }
    }
}

/// `::name key=value,key=value::message`, escaped as the runner expects.
fn format_command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let props: Vec<String> = properties
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", escape_property(v)))
        .collect();
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{name}{props}::{}", escape_data(message))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A heredoc delimiter that cannot occur in the value.
fn unique_delimiter(value: &str) -> String {
    let mut n = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    loop {
        let candidate = format!("ghadelimiter_{n:016x}");
        if !value.contains(&candidate) {
            return candidate;
        }
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
}

/// A log writer that keeps every log event on one line: line breaks inside an event (a file or
/// table name may hold them) are written as `\n` and `\r`. Otherwise a database named
/// `"x\n::error::..."` could print a line that the runner takes for a workflow command, or
/// one that reads as dbbackup's own output.
pub struct OneLinePerEvent<W>(pub W);

impl<W: Write> Write for OneLinePerEvent<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            let mut escaped = Vec::with_capacity(buf.len() + 8);
            for &b in body {
                match b {
                    b'\n' => escaped.extend_from_slice(b"\\n"),
                    b'\r' => escaped.extend_from_slice(b"\\r"),
                    _ => escaped.push(b),
                }
            }
            escaped.extend_from_slice(end);
            self.0.write_all(&escaped)?;
        } else {
            self.0.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Environment variables whose values are secrets dbbackup may be handed.
const SECRET_VARS: [&str; 16] = [
    "PGPASSWORD",
    "MYSQL_PWD",
    "GITHUB_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "DBBACKUP_IDENTITY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    // Azure's as `object_store` reads them (its `AZURE_*` aliases included).
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    // A service account's JSON key (masked line by line too, below), or a token.
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_BEARER_TOKEN",
];

/// The secrets this process was given: passwords inside URL arguments (as written and
/// percent-decoded), `--github-token` values, the contents of an `--identity` file, the
/// webhook and ping URLs of `--notify`, `--ping`, `DBBACKUP_NOTIFY` and `DBBACKUP_PING` with
/// their tokens (`notify::url_secrets`), and the
/// values of [`SECRET_VARS`] (`DBBACKUP_IDENTITY` among them). Masking them
/// first thing means no later log line, error or summary can show them in a workflow log, even
/// when a user put a password where it does not belong.
pub fn known_secrets(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut secrets = Vec::new();
    let (mut token_next, mut identity_next, mut alert_next) = (false, false, false);
    for arg in args {
        if std::mem::take(&mut token_next) {
            secrets.push(arg.clone());
        }
        if arg == "--github-token" {
            token_next = true;
        } else if let Some(token) = arg.strip_prefix("--github-token=") {
            secrets.push(token.to_string());
        }
        if std::mem::take(&mut alert_next) {
            secrets.extend(crate::notify::url_secrets(&arg));
        }
        if arg == "--notify" || arg == "--ping" {
            alert_next = true;
        } else if let Some(url) = ["--notify=", "--ping="]
            .iter()
            .find_map(|flag| arg.strip_prefix(flag))
        {
            secrets.extend(crate::notify::url_secrets(url));
        }
        if std::mem::take(&mut identity_next) {
            secrets.extend(std::fs::read_to_string(&arg).ok());
        }
        if arg == "--identity" {
            identity_next = true;
        } else if let Some(file) = arg.strip_prefix("--identity=") {
            secrets.extend(std::fs::read_to_string(file).ok());
        }
        // A secret key given where a public one goes (refused before anything else runs).
        if crate::archive::encrypt::is_secret_key(&arg) {
            secrets.push(arg.clone());
        }
        // `--restore-into=postgres://…` carries its URL after the `=`.
        let value = arg
            .strip_prefix("--")
            .and_then(|a| a.split_once('='))
            .map(|(_, v)| v);
        secrets.extend(crate::util::url_passwords(value.unwrap_or(&arg)));
    }
    secrets.extend(SECRET_VARS.iter().filter_map(|v| std::env::var(v).ok()));
    for var in ["DBBACKUP_NOTIFY", "DBBACKUP_PING"] {
        let urls = std::env::var(var).unwrap_or_default();
        secrets.extend(urls.lines().flat_map(crate::notify::url_secrets));
    }
    // The runner matches a mask within one log line, so a key file (an SSH private key, an age
    // identity with comments) is masked line by line as well as whole.
    let lines: Vec<String> = secrets
        .iter()
        .filter(|s| s.contains('\n'))
        .flat_map(|s| {
            s.lines()
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|line| !line.starts_with('#') && !line.starts_with("-----"))
        .collect();
    secrets.extend(lines);
    secrets.retain(|s| !s.trim().is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// The run's page: `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`.
pub fn run_url() -> Option<String> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?.trim_end_matches('/'),
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

/// The artifact's page, as the run's page links it: [`run_url`]`/artifacts/ID`.
pub fn artifact_url(id: u64) -> Option<String> {
    Some(format!("{}/artifacts/{id}", run_url()?))
}

/// Log lines as a Markdown list: a line indented by two more spaces than the one before is an
/// item nested under it, so a failed check's differences render as its sub-list (indented
/// plain lines would render as a code block or run together).
pub fn markdown_list(lines: &[String]) -> String {
    let mut md = String::new();
    for line in lines {
        let text = line.trim_start();
        let depth = (line.len() - text.len()) / 2;
        md.push_str(&format!("{}- {text}\n", "  ".repeat(depth)));
    }
    md
}

/// The job summary of a command that failed: its error, one item per cause, so a run whose
/// upload was refused or failed still says why on its summary page.
pub fn failure_summary(what: &str, causes: &[String]) -> String {
    format!("### dbbackup: {what} failed\n\n{}", markdown_list(causes))
}

/// The job summary for an encrypted backup: only what its readable envelope shows (name, size,
/// sha256), since the summary is as readable as the artifact; table names and row counts are
/// data.
pub fn encrypted_backup_summary(archive: &str, bytes: u64, sha256: &str, seconds: f64) -> String {
    format!(
        "### dbbackup: `{archive}`\n\n| | |\n| --- | --- |\n| encryption | age |\n\
         | size | {} encrypted |\n| sha256 | `{sha256}` |\n| took | {seconds:.1} s |\n",
        human_bytes(bytes)
    )
}

/// The job summary for one backup: sizes, duration, and per table the row count with the
/// change since `previous` (the backup before it) when that is known.
pub fn backup_summary(manifest: &Manifest, seconds: f64, previous: Option<&Manifest>) -> String {
    let mut md = format!(
        "### dbbackup: `{}`\n\n| | |\n| --- | --- |\n| source | `{}` ({} {}) |\n| format | {} |\n\
         | size | {} compressed, {} raw |\n| sha256 | `{}` |\n| took | {seconds:.1} s |\n\n",
        manifest.archive,
        code_cell(&manifest.source),
        manifest.engine.name,
        manifest.engine.version,
        manifest.format,
        human_bytes(manifest.compressed_bytes),
        human_bytes(manifest.raw_bytes),
        manifest.sha256,
    );
    md.push_str("| table | rows | change |\n| --- | ---: | ---: |\n");
    for table in &manifest.snapshot.tables {
        let before = previous.and_then(|p| p.snapshot.tables.iter().find(|t| t.name == table.name));
        let change = match before {
            Some(b) => format!("{:+}", table.rows as i128 - b.rows as i128),
            None if previous.is_some() => "new".to_string(),
            None => String::new(),
        };
        md.push_str(&format!(
            "| `{}` | {} | {change} |\n",
            code_cell(&table.name),
            table.rows
        ));
    }
    md
}

/// Text for inline code in a Markdown table cell: a `|` would end the cell, a backtick the
/// code, and a line break the table, so names holding them are shown escaped.
pub(crate) fn code_cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_log_lines_become_nested_list_items() {
        let lines = [
            "restore FAILED: b: 1 of 5 checks failed".to_string(),
            "  data: main.t:".to_string(),
            "    rows: expected 3, actual 2".to_string(),
        ];
        assert_eq!(
            markdown_list(&lines),
            "- restore FAILED: b: 1 of 5 checks failed\n  - data: main.t:\n    - rows: \
             expected 3, actual 2\n"
        );
    }

    #[test]
    fn commands_escape_what_the_runner_would_misread() {
        assert_eq!(
            format_command("error", &[("title", "a: b, c")], "50% done\nnext"),
            "::error title=a%3A b%2C c::50%25 done%0Anext"
        );
        assert_eq!(
            format_command("add-mask", &[], "s3cret"),
            "::add-mask::s3cret"
        );
    }

    #[test]
    fn log_events_stay_on_one_line() {
        let mut out = OneLinePerEvent(Vec::new());
        out.write_all(b"dumped \xe2\x86\x92 a\n::error::b\r.db\n")
            .unwrap();
        out.write_all(b"plain\n").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "dumped → a\\n::error::b\\r.db\nplain\n"
        );
    }

    #[test]
    fn outputs_survive_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let runner = Runner {
            active: true,
            output_file: Some(path.clone()),
            summary_file: None,
        };
        runner.set_output("tables", "a\nb").unwrap();
        runner.set_output("passed", "true").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_output_file(&text);
        assert_eq!(
            parsed,
            [
                ("tables".into(), "a\nb".into()),
                ("passed".into(), "true".into())
            ]
        );
    }

    #[test]
    fn secrets_in_urls_and_token_flags_are_found() {
        let args = [
            "dbbackup",
            "backup",
            "postgres://app:p%40ss@db:5432/app",
            "--github-token",
            "ghs_abc",
            "--github-token=ghs_def",
            "sqlite:app.db",
        ];
        let found = known_secrets(args.iter().map(|s| s.to_string()));
        for secret in ["p%40ss", "p@ss", "ghs_abc", "ghs_def"] {
            assert!(found.iter().any(|f| f == secret), "{secret} in {found:?}");
        }
        assert!(!found.iter().any(|f| f.contains("app.db") || f == "backup"));
    }

    #[test]
    fn webhook_and_ping_urls_are_secrets_with_their_tokens() {
        let args = [
            "dbbackup",
            "backup",
            "--notify",
            "https://hooks.slack.com/services/T01/B02/Tok3nOne99",
            "--ping=https://hc-ping.com/0f9c-44aa-Tok3nTwo",
        ];
        let found = known_secrets(args.iter().map(|s| s.to_string()));
        for secret in [
            args[3],
            "Tok3nOne99",
            "https://hc-ping.com/0f9c-44aa-Tok3nTwo",
        ] {
            assert!(found.iter().any(|f| f == secret), "{secret} in {found:?}");
        }
        assert!(!found.iter().any(|f| f == "backup" || f == "services"));
    }

    #[test]
    fn identity_files_are_masked_whole_and_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(
            &key,
            "# public key: age1pub\nAGE-SECRET-KEY-1LINEONE\n-----END X-----\n",
        )
        .unwrap();
        let args = [
            "dbbackup",
            "restore-test",
            "b/",
            "--identity",
            key.to_str().unwrap(),
        ];
        let found = known_secrets(args.iter().map(|s| s.to_string()));
        assert!(
            found.iter().any(|f| f == "AGE-SECRET-KEY-1LINEONE"),
            "{found:?}"
        );
        assert!(
            found.iter().any(|f| f.contains("# public key")),
            "whole file too"
        );
        assert!(
            !found
                .iter()
                .any(|f| f == "# public key: age1pub" || f == "-----END X-----")
        );
    }

    #[test]
    fn inactive_runner_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let runner = Runner {
            active: false,
            output_file: Some(path.clone()),
            summary_file: Some(path.clone()),
        };
        runner.set_output("x", "y").unwrap();
        runner.append_summary("z").unwrap();
        assert!(!path.exists());
    }

    /// Reads `$GITHUB_OUTPUT` as the runner does: `name<<DELIM`, lines, `DELIM`.
    fn parse_output_file(text: &str) -> Vec<(String, String)> {
        let mut lines = text.lines();
        let mut out = Vec::new();
        while let Some(head) = lines.next() {
            let (name, delim) = head.split_once("<<").unwrap();
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delim {
                    break;
                }
                value.push(line);
            }
            out.push((name.to_string(), value.join("\n")));
        }
        out
    }
}
