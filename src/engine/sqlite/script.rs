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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
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
    let budget = Budget::install(conn);
    let result = run_statements(conn, script, &budget);
    budget.uninstall(conn);
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

fn run_statements(conn: &Connection, script: &mut dyn Read, budget: &Budget) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, script);
    let mut bytes_read = 0u64;
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
        bytes_read += read as u64;
        line += 1;
        if !scanner.has_code {
            first_line = line;
        }
        let may_end = scanner
            .scan(&statement[start..])
            .map_err(|reason| failure(format!("line {line}: {reason}")))?;
        if may_end && is_complete(&mut statement) {
            budget.allow(conn, bytes_read, &statement)?;
            execute(conn, &statement, first_line, budget)?;
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

fn execute(conn: &Connection, statement: &[u8], first_line: u64, budget: &Budget) -> Result<()> {
    let sql = std::str::from_utf8(statement).map_err(|e| {
        failure(format!(
            "statement at line {first_line} is not valid UTF-8 ({e})"
        ))
    })?;
    conn.execute_batch(sql).map_err(|e| {
        // A full disk under the restored copy is this machine's failure, never the dump's.
        if let Some(io) = disk_full(conn, &e) {
            let path = conn.path().unwrap_or("the restored database");
            return Error::output("write the restored database", path, io);
        }
        let quoted: String = sql.trim_start().chars().take(QUOTED_CHARS).collect();
        let why = budget.explain(&e).unwrap_or_else(|| e.to_string());
        failure(format!(
            "statement at line {first_line} failed: {why}: {}",
            quoted.trim_end()
        ))
    })
}

/// The disk under the restored copy filled up. SQLite says "full" both for that and for the
/// growth bound below, and keeps no OS error for it (its unix VFS stores 0 on ENOSPC); a failed
/// statement is rolled back, so the size reached is gone too. What can be told is whether the
/// disk could have held the database up to the bound: when it could not (free space plus the
/// file so far is less than the bound), the disk is what ran out.
fn disk_full(conn: &Connection, err: &rusqlite::Error) -> Option<std::io::Error> {
    if err.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) {
        return None;
    }
    let path = std::path::Path::new(conn.path()?);
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, u64>(0));
    let bound = pragma("max_page_count")
        .ok()?
        .saturating_mul(pragma("page_size").ok()?);
    let file = std::fs::metadata(path).map_or(0, |m| m.len());
    let room = free_bytes(path.parent()?)?;
    (room.saturating_add(file) < bound).then(|| std::io::ErrorKind::StorageFull.into())
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
#[cfg(not(unix))]
fn free_bytes(_dir: &std::path::Path) -> Option<u64> {
    None
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
#[cfg(unix)]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs struct to fill, both ours.
    let ok = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } == 0;
    ok.then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Bounds what a script can make SQLite do, in proportion to its size.
///
/// Every statement of a dump creates an object or inserts rows it spells out, so the work it
/// needs and the database it builds grow with the text read so far. A hostile script needs
/// neither: one line of `WITH RECURSIVE` loops for ever, or inserts until the disk is full.
/// Each statement may run `BASE_STEPS + STEPS_PER_BYTE` × (bytes read) virtual-machine
/// instructions, and the database may grow to `BASE_BYTES + BYTES_PER_BYTE` × (1 + indexes
/// created so far, at most `MAX_INDEXES_COUNTED`) × (bytes read). Every index can be as large
/// as its table, and a table's rows are about as large as their text, so a real dump's
/// database grows with its indexes: a 15 MB dump with 24 indexes over every column built a
/// 325 MB database (21.6x its text), past a flat 16x. Small enough still that a few hostile
/// bytes stop within a second, and bounded linearly in the script's size.
struct Budget {
    /// Progress-handler calls left to the running statement.
    ticks_left: Arc<AtomicU64>,
    /// Set while we change `max_page_count` ourselves; the script may not.
    ours: Arc<AtomicBool>,
    /// Bytes read when `max_page_count` was last set.
    sized_at: AtomicU64,
    /// `CREATE INDEX` statements run so far.
    indexes: AtomicU64,
}

const TICK: i32 = 1000;
const BASE_STEPS: u64 = 100_000_000;
const STEPS_PER_BYTE: u64 = 1024;
const BASE_BYTES: u64 = 64 << 20;
const BYTES_PER_BYTE: u64 = 16;
const MAX_INDEXES_COUNTED: u64 = 64;

impl Budget {
    fn install(conn: &Connection) -> Self {
        let budget = Budget {
            ticks_left: Arc::new(AtomicU64::new(0)),
            ours: Arc::new(AtomicBool::new(false)),
            sized_at: AtomicU64::new(u64::MAX),
            indexes: AtomicU64::new(0),
        };
        let ticks = Arc::clone(&budget.ticks_left);
        conn.progress_handler(
            TICK,
            Some(move || {
                ticks
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
                    .is_err()
            }),
        );
        let ours = Arc::clone(&budget.ours);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
            // The growth bound is ours to set; a directory for temporary files would let
            // the script write outside the restore's own directory.
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if (pragma_name.eq_ignore_ascii_case("max_page_count")
                && !ours.load(Ordering::Relaxed))
                || pragma_name.eq_ignore_ascii_case("temp_store_directory")
                || pragma_name.eq_ignore_ascii_case("data_store_directory") =>
            {
                Authorization::Deny
            }
            _ => Authorization::Allow,
        }));
        budget
    }

    fn uninstall(&self, conn: &Connection) {
        conn.progress_handler(0, None::<fn() -> bool>);
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    }

    /// Grants the next statement, `statement`, its share, `bytes_read` bytes into the script.
    fn allow(&self, conn: &Connection, bytes_read: u64, statement: &[u8]) -> Result<()> {
        let creates_index = creates_index(statement);
        if creates_index {
            self.indexes.fetch_add(1, Ordering::Relaxed);
        }
        let steps = BASE_STEPS.saturating_add(STEPS_PER_BYTE.saturating_mul(bytes_read));
        self.ticks_left
            .store(steps / TICK as u64, Ordering::Relaxed);
        // Setting the bound costs two statements: once per MiB of script is often enough.
        let sized_at = self.sized_at.load(Ordering::Relaxed);
        if !creates_index && sized_at != u64::MAX && bytes_read < sized_at + (1 << 20) {
            return Ok(());
        }
        self.sized_at.store(bytes_read, Ordering::Relaxed);
        let bytes = BASE_BYTES.saturating_add(self.per_byte().saturating_mul(bytes_read));
        self.ours.store(true, Ordering::Relaxed);
        let set = conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, u64>(0))
            .and_then(|page| {
                conn.query_row(
                    &format!("PRAGMA max_page_count = {}", (bytes / page.max(1)).max(1)),
                    [],
                    |_| Ok(()),
                )
            });
        self.ours.store(false, Ordering::Relaxed);
        set.map_err(|e| failure(format!("cannot bound the restore: {e}")))
    }

    /// How many bytes of database each byte of script may make.
    fn per_byte(&self) -> u64 {
        let indexes = self
            .indexes
            .load(Ordering::Relaxed)
            .min(MAX_INDEXES_COUNTED);
        BYTES_PER_BYTE * (1 + indexes)
    }

    /// What a failure the budget may have caused means; `None` for any other failure.
    fn explain(&self, err: &rusqlite::Error) -> Option<String> {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code()? {
            ErrorCode::OperationInterrupted if self.ticks_left.load(Ordering::Relaxed) == 0 => {
                Some(
                    "it ran far longer than any statement of a dump this size needs (a loop \
                     in a damaged or hostile script?); stopped"
                        .into(),
                )
            }
            // A failed statement is rolled back, so whether the bound or the disk was
            // reached cannot be told apart afterwards: say both.
            ErrorCode::DiskFull => Some(format!(
                "the disk is full, or the database outgrew what a script of this size can \
                 hold ({} MiB + {}x the script read so far, {}x per byte and index: a damaged \
                 or hostile script?)",
                BASE_BYTES >> 20,
                self.per_byte(),
                BYTES_PER_BYTE
            )),
            _ => None,
        }
    }
}

fn failure(reason: impl std::fmt::Display) -> Error {
    Error::Verify {
        object: "SQL dump".into(),
        reason: reason.to_string(),
    }
}

/// Whether a statement is `CREATE [UNIQUE] INDEX` (leading comments and blanks aside).
fn creates_index(statement: &[u8]) -> bool {
    let text = String::from_utf8_lossy(statement);
    let mut words = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .flat_map(str::split_whitespace);
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    let third = words.next().unwrap_or_default();
    first.eq_ignore_ascii_case("CREATE")
        && (second.eq_ignore_ascii_case("INDEX")
            || (second.eq_ignore_ascii_case("UNIQUE") && third.eq_ignore_ascii_case("INDEX")))
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
