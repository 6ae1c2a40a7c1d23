//! Runs a SQL script streamed from a reader, one statement at a time, so that a dump of any size
//! restores in the memory of its largest statement.
//!
//! Lines are gathered until SQLite's own `sqlite3_complete` says they end a statement (it knows
//! that a `;` inside a string, a comment or a `CREATE TRIGGER` body ends nothing), and each
//! complete chunk is run with `execute_batch`. This reads both this crate's dumps and the stock
//! `sqlite3 .dump` output, with one exception: statements must be UTF-8 (as rusqlite requires),
//! so a stock dump of text that is not UTF-8, which `.dump` writes raw, is refused with its line
//! number rather than altered. Our own dumps write such text in hex.

use std::ffi::c_char;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;

use crate::error::{Error, Result};

/// How many characters of a failing statement the error message quotes.
const QUOTED_CHARS: usize = 200;

/// Runs `script` on `conn`, meant to be a new, empty database (the dump may set its encoding).
///
/// A script that ends in the middle of a statement, or inside a transaction it opened, was cut
/// short (a truncated file): that is an error, and the open transaction is rolled back rather
/// than leaving a partial restore that looks complete.
pub fn run(conn: &Connection, script: &mut dyn Read) -> Result<()> {
    // Defensive mode would silently ignore `PRAGMA writable_schema=ON`, which dumps need to
    // restore virtual tables; this connection only ever holds a throwaway copy.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)
        .map_err(|e| failure(format!("cannot prepare the restore: {e}")))?;
    // A dump restores into this one database and never needs another; the script may come from
    // anywhere, and `ATTACH 'path'` or `VACUUM INTO 'path'` (which attaches internally) would
    // create or overwrite a file wherever it names. No database may be attached, so both fail.
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(|e| failure(format!("cannot prepare the restore: {e}")))?;
    let result = run_statements(conn, script);
    if !conn.is_autocommit() {
        // Best effort: the error being returned already says what went wrong.
        let _ = conn.execute_batch("ROLLBACK");
        result?;
        return Err(failure(
            "the script ended inside a transaction it began (no COMMIT): the dump is truncated",
        ));
    }
    result
}

fn run_statements(conn: &Connection, script: &mut dyn Read) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, script);
    let mut statement = Vec::new();
    let mut scanner = Scanner::default();
    let (mut line, mut first_line) = (0u64, 1u64);
    loop {
        let start = statement.len();
        let read = reader
            .read_until(b'\n', &mut statement)
            .map_err(|e| Error::unreadable(PathBuf::from("SQL dump"), e))?;
        if read == 0 {
            break;
        }
        line += 1;
        if !scanner.has_code {
            first_line = line;
        }
        let may_end = scanner
            .scan(&statement[start..])
            .map_err(|reason| failure(format!("line {line}: {reason}")))?;
        if may_end && is_complete(&mut statement) {
            execute(conn, &statement, first_line)?;
            statement.clear();
            scanner = Scanner::default();
        }
    }
    if scanner.has_code {
        return Err(failure(format!(
            "the script ends in the middle of the statement that starts at line {first_line}: \
             the dump is truncated"
        )));
    }
    Ok(())
}

/// Asks SQLite whether `sql` ends with a complete statement.
fn is_complete(sql: &mut Vec<u8>) -> bool {
    sql.push(0);
    // SAFETY: `sql` is NUL-terminated (and has no other NUL: the scanner refuses those), and
    // sqlite3_complete only reads up to that NUL.
    let complete = unsafe { rusqlite::ffi::sqlite3_complete(sql.as_ptr().cast::<c_char>()) } != 0;
    sql.pop();
    complete
}

fn execute(conn: &Connection, statement: &[u8], first_line: u64) -> Result<()> {
    let sql = std::str::from_utf8(statement).map_err(|e| {
        failure(format!(
            "statement at line {first_line} is not valid UTF-8 ({e})"
        ))
    })?;
    conn.execute_batch(sql).map_err(|e| {
        let quoted: String = sql.trim_start().chars().take(QUOTED_CHARS).collect();
        failure(format!(
            "statement at line {first_line} failed: {e}: {}",
            quoted.trim_end()
        ))
    })
}

fn failure(reason: impl std::fmt::Display) -> Error {
    Error::Verify {
        object: "SQL dump".into(),
        reason: reason.to_string(),
    }
}

/// Tracks, line by line, whether the text so far is inside a quoted string or identifier or a
/// comment, so that `sqlite3_complete` (which rescans the whole statement on every call) is only
/// asked after a line with a `;` in plain SQL. Without this, a long text value with many lines
/// holding `;` (source code, say) would be rescanned once per line: quadratic time.
#[derive(Default)]
struct Scanner {
    state: State,
    /// Whether anything but whitespace and comments was seen: the script cannot end here.
    has_code: bool,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum State {
    #[default]
    Code,
    /// Inside '...', "..." or `...`, closed by the same byte (a doubled one reopens).
    Quoted(u8),
    /// Inside [...].
    Bracketed,
    LineComment,
    BlockComment,
}

impl State {
    fn is_comment(self) -> bool {
        matches!(self, State::LineComment | State::BlockComment)
    }
}

impl Scanner {
    /// Scans one line; true if it has a `;` outside quotes and comments.
    fn scan(&mut self, line: &[u8]) -> std::result::Result<bool, &'static str> {
        let mut semicolon = false;
        let mut i = 0;
        while i < line.len() {
            let (b, next) = (line[i], line.get(i + 1).copied());
            if b == 0 {
                return Err("a NUL byte, which no SQL statement can hold");
            }
            let before = self.state;
            self.state = match (before, b) {
                (State::Code, b'\'' | b'"' | b'`') => State::Quoted(b),
                (State::Code, b'[') => State::Bracketed,
                (State::Code, b'-') if next == Some(b'-') => State::LineComment,
                (State::Code, b'/') if next == Some(b'*') => {
                    i += 1;
                    State::BlockComment
                }
                (State::Quoted(q), b) if b == q => State::Code,
                (State::Bracketed, b']') | (State::LineComment, b'\n') => State::Code,
                (State::BlockComment, b'*') if next == Some(b'/') => {
                    i += 1;
                    State::Code
                }
                (state, _) => state,
            };
            if !before.is_comment() && !self.state.is_comment() {
                self.has_code |= !b.is_ascii_whitespace();
            }
            semicolon |= self.state == State::Code && b == b';';
            i += 1;
        }
        Ok(semicolon)
    }
}
