//! Checks of the tables a restore has finished loading, run while the client loads the later
//! ones: `CHECK TABLE … EXTENDED` and the data-only dump that counts and sums their rows, on a
//! connection of their own. The restore keeps one of the server's cores busy (one statement at
//! a time on one connection), so these use the other instead of waiting for the whole dump.
//!
//! When a table is finished, soundly:
//! - the feeder ([`Boundaries`]) watches the dump's shape and, after the `UNLOCK TABLES` that
//!   ends a table's rows, writes a marker statement `SELECT '<nonce>';`. The client runs the
//!   dump's statements one at a time, in order, stopping at the first error, and prints the
//!   marker's result (`--unbuffered`: at once) only after the server has answered every
//!   statement before it; the rows were committed as they were inserted (autocommit: nothing
//!   in the dump turns it off, or the dump is not plain, below). So when the marker's line
//!   comes out of the client, the table holds everything the dump gives it.
//! - the table must then hold nothing more at the end: every line fed after it must be one of
//!   the shapes a plain data dump has (comments, `SET` of plain values, `DROP TABLE`/
//!   `CREATE TABLE` and the rows of *other* tables, each table's rows once). Any other line
//!   (a trigger, routine, view or event definition, a statement touching a finished table
//!   again, anything not recognised) makes the dump "tainted": every result taken early is
//!   thrown away and all tables are checked after the restore, as without this module.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, Sender};

use tracing::debug;

use super::conn::{ConnInfo, db_message};
use super::describe::{quote_ident, rows};
use crate::engine::rowsum::RowSum;

/// What the feeder and the client's output tell the checking thread, in order.
pub(super) enum Event {
    /// The dump's rows of this table follow; its marker comes after them.
    Loading(String),
    /// The client printed a marker: the oldest table still loading is loaded.
    Loaded,
    /// A line that is not part of a plain data dump: nothing checked early counts.
    Tainted(String),
}

/// Where the feeder is in the dump.
enum State {
    /// Between statements.
    Top,
    /// Inside `CREATE TABLE … (`, until the line that closes it.
    Create,
    /// Between `LOCK TABLES t WRITE` and `UNLOCK TABLES`.
    Section(String),
    /// Inside an `INSERT INTO t VALUES` whose rows span lines.
    Insert(String),
}

/// Follows the dump line by line (see the module's doc) and says where the markers go.
pub(super) struct Boundaries {
    marker: String,
    events: Sender<Event>,
    state: State,
    done: BTreeSet<String>,
    tainted: bool,
}

impl Boundaries {
    pub(super) fn new(nonce: &str, events: Sender<Event>) -> Self {
        Self {
            marker: format!("SELECT '{nonce}';\n"),
            events,
            state: State::Top,
            done: BTreeSet::new(),
            tainted: false,
        }
    }

    /// The statement to feed after `line` (a marker), if any.
    pub(super) fn after(&mut self, line: &[u8]) -> Option<&str> {
        if self.tainted {
            return None;
        }
        match self.step(line.trim_ascii_end()) {
            Ok(marker) => marker.then_some(self.marker.as_str()),
            Err(why) => {
                self.tainted = true;
                let _ = self.events.send(Event::Tainted(why));
                None
            }
        }
    }

    /// `Ok(true)` when `line` ends a table's rows.
    fn step(&mut self, line: &[u8]) -> Result<bool, String> {
        let unexpected = || {
            let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            format!("not part of a plain data dump: {shown}")
        };
        match std::mem::replace(&mut self.state, State::Top) {
            State::Insert(table) => {
                if !line.starts_with(b"(") {
                    return Err(unexpected());
                }
                self.state = if line.ends_with(b";") {
                    State::Section(table)
                } else {
                    State::Insert(table)
                };
                Ok(false)
            }
            State::Create => {
                if line.starts_with(b"  ") {
                    self.state = State::Create;
                } else if !(line.starts_with(b")")
                    && line.ends_with(b";")
                    && !contains_word(line, b"select"))
                {
                    return Err(unexpected());
                }
                Ok(false)
            }
            State::Section(table) => {
                if line == b"UNLOCK TABLES;" {
                    self.done.insert(table);
                    return Ok(true);
                }
                if let Some(rest) = line.strip_prefix(b"INSERT INTO ") {
                    let (name, rest) = ident(rest).ok_or_else(unexpected)?;
                    if name != table || !rest.starts_with(b" VALUES") {
                        return Err(unexpected());
                    }
                    if !line.ends_with(b";") {
                        self.state = State::Insert(table);
                        return Ok(false);
                    }
                } else if let Some(rest) = line.strip_prefix(b"/*!40000 ALTER TABLE ") {
                    let (name, rest) = ident(rest).ok_or_else(unexpected)?;
                    if name != table
                        || (rest != b" DISABLE KEYS */;" && rest != b" ENABLE KEYS */;")
                    {
                        return Err(unexpected());
                    }
                } else {
                    return Err(unexpected());
                }
                self.state = State::Section(table);
                Ok(false)
            }
            State::Top => {
                if line.is_empty()
                    || line.starts_with(b"--")
                    || line.starts_with(b"/*M!999999\\- enable the sandbox mode */")
                {
                    return Ok(false);
                }
                if plain_set(line) {
                    return Ok(false);
                }
                let fresh = |rest: &[u8], tail: &[u8]| -> Result<String, String> {
                    let (name, rest) = ident(rest).ok_or_else(unexpected)?;
                    if rest != tail || self.done.contains(&name) {
                        return Err(unexpected());
                    }
                    Ok(name)
                };
                if let Some(rest) = line.strip_prefix(b"DROP TABLE IF EXISTS ") {
                    fresh(rest, b";")?;
                } else if let Some(rest) = line.strip_prefix(b"CREATE TABLE ") {
                    fresh(rest, b" (")?;
                    self.state = State::Create;
                } else if let Some(rest) = line.strip_prefix(b"LOCK TABLES ") {
                    let name = fresh(rest, b" WRITE;")?;
                    let _ = self.events.send(Event::Loading(name.clone()));
                    self.state = State::Section(name);
                } else {
                    return Err(unexpected());
                }
                Ok(false)
            }
        }
    }
}

/// A `SET` of session or user variables to plain values (`/*!40101 SET NAMES utf8mb4 */;`,
/// `SET @OLD_X=@@X, X=0`): no parenthesis, so no function is called.
fn plain_set(line: &[u8]) -> bool {
    let mut rest = line;
    if let Some(r) = rest.strip_prefix(b"/*!") {
        let digits = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || !r[digits..].ends_with(b"*/;") {
            return false;
        }
        rest = &r[digits..];
        rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    }
    (rest.starts_with(b"SET ") || rest.starts_with(b"set "))
        && rest.ends_with(b";")
        && !rest.contains(&b'(')
        && !rest.contains(&b'\\')
}

fn contains_word(line: &[u8], word: &[u8]) -> bool {
    line.to_ascii_lowercase()
        .windows(word.len())
        .any(|w| w == word)
}

/// A backquoted name at the start of `text` (`` ` `` doubled inside) and what follows it.
fn ident(text: &[u8]) -> Option<(String, &[u8])> {
    let body = text.strip_prefix(b"`")?;
    let mut name = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'`' {
            if body.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some((String::from_utf8(name).ok()?, &body[i + 1..]));
        }
        name.push(body[i]);
        i += 1;
    }
    None
}

/// Reads the client's output to its end, telling the checking thread of each marker; other
/// lines (the dump's own `SELECT`s, if any) are ignored.
pub(super) fn watch_output(output: impl Read, nonce: String, events: Sender<Event>) {
    let mut lines = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim_ascii_end() == nonce.as_bytes() {
            // Gone when the checking thread gave up: the output is still read to its end, so
            // the client never blocks on it.
            let _ = events.send(Event::Loaded);
        }
    }
}

/// What was checked while the restore ran.
#[derive(Default)]
pub(super) struct Early {
    /// The tables checked and dumped.
    pub checked: BTreeSet<String>,
    /// `CHECK TABLE` rows that are not OK, as `table: kind: text`.
    pub problems: Vec<String>,
    /// The rows of the checked tables, summed from their dump.
    pub sums: BTreeMap<String, RowSum>,
}

/// Checks each table as soon as it is loaded, until the events end (the feeder and the
/// client's output are both done); `None` when the dump was tainted or a check could not run
/// (the caller then checks everything after the restore).
pub(super) fn check_while_loading(
    target: &ConnInfo,
    version: &str,
    events: Receiver<Event>,
) -> Option<Early> {
    let mut conn = None;
    let mut loading = VecDeque::new();
    let mut early = Early::default();
    while let Ok(first) = events.recv() {
        let mut loaded = Vec::new();
        for event in std::iter::once(first).chain(events.try_iter()) {
            match event {
                Event::Loading(table) => loading.push_back(table),
                Event::Loaded => loaded.extend(loading.pop_front()),
                Event::Tainted(why) => {
                    debug!("no table checked while the restore ran ({why})");
                    return None;
                }
            }
        }
        if loaded.is_empty() {
            continue;
        }
        let conn = match &mut conn {
            Some(conn) => conn,
            None => conn.insert(
                target
                    .connect(None)
                    .map_err(|e| debug!("no early checks: {e}"))
                    .ok()?,
            ),
        };
        let began = std::time::Instant::now();
        let (problems, sums) = std::thread::scope(|s| {
            let dumping = s.spawn(|| super::copysum::dump_sums(target, version, &loaded));
            (check_tables(conn, &target.dbname, &loaded), dumping.join())
        });
        let (problems, sums) = match (problems, sums) {
            (Ok(p), Ok(Ok(s))) => (p, s),
            (Err(e), _) => {
                debug!("no early checks: {e}");
                return None;
            }
            (_, Ok(Err(e))) => {
                debug!("no early checks: {e}");
                return None;
            }
            (_, Err(_)) => return None,
        };
        debug!(
            "checked and summed {} while the restore ran, in {:.2?}",
            loaded.join(", "),
            began.elapsed()
        );
        early.problems.extend(problems);
        early.sums.extend(sums);
        early.checked.extend(loaded);
    }
    Some(early)
}

/// `CHECK TABLE … EXTENDED` of `tables` one at a time on `conn`; the rows that are not OK.
pub(super) fn check_tables(
    conn: &mut mysql::Conn,
    db: &str,
    tables: &[String],
) -> Result<Vec<String>, String> {
    let mut checked = Vec::new();
    for table in tables {
        let sql = format!(
            "CHECK TABLE {}.{} EXTENDED",
            quote_ident(db),
            quote_ident(table)
        );
        checked.push(rows(conn, &sql).map_err(|e| db_message(&e))?);
    }
    Ok(problems(checked))
}

/// The rows of `CHECK TABLE` results (Table, Op, Msg_type, Msg_text) that are not OK.
pub(super) fn problems(checked: Vec<Vec<Vec<String>>>) -> Vec<String> {
    let mut problems = Vec::new();
    for r in checked.into_iter().flatten() {
        let (kind, text) = (r[2].to_ascii_lowercase(), &r[3]);
        let bad = kind == "error"
            || kind == "warning"
            || (kind == "status" && !text.eq_ignore_ascii_case("OK"));
        if bad {
            let table = r[0].rsplit('.').next().unwrap_or(&r[0]).to_string();
            problems.push(format!("{table}: {kind}: {text}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(dump: &str) -> (Vec<usize>, Vec<String>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut b = Boundaries::new("n", tx);
        let marked = (dump.lines().enumerate())
            .filter_map(|(i, l)| b.after(l.as_bytes()).map(|_| i + 1))
            .collect();
        drop(b);
        let events = rx
            .iter()
            .map(|e| match e {
                Event::Loading(t) => format!("loading {t}"),
                Event::Loaded => "loaded".into(),
                Event::Tainted(_) => "tainted".into(),
            })
            .collect();
        (marked, events)
    }

    const PLAIN: &str = "/*!40101 SET NAMES utf8mb4 */;\n\
        DROP TABLE IF EXISTS `a``b`;\n\
        CREATE TABLE `a``b` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\
        LOCK TABLES `a``b` WRITE;\n\
        /*!40000 ALTER TABLE `a``b` DISABLE KEYS */;\n\
        INSERT INTO `a``b` VALUES\n(1),\n(2);\n\
        /*!40000 ALTER TABLE `a``b` ENABLE KEYS */;\n\
        UNLOCK TABLES;\n\
        \n-- c\n\
        LOCK TABLES `c` WRITE;\n\
        INSERT INTO `c` VALUES (1);\n\
        UNLOCK TABLES;\n\
        /*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n";

    #[test]
    fn a_plain_dump_is_marked_after_each_tables_rows() {
        let (marked, events) = markers(PLAIN);
        assert_eq!(marked, [13, 18]);
        assert_eq!(events, ["loading a`b", "loading c"]);
    }

    #[test]
    fn anything_else_taints() {
        for late in [
            "INSERT INTO `a``b` VALUES (3);",
            "LOCK TABLES `a``b` WRITE;",
            "DROP TABLE IF EXISTS `a``b`;",
            "DELETE FROM `a``b`;",
            "SET @x = f();",
            "DELIMITER ;;",
            "CALL p();",
        ] {
            let (_, events) = markers(&format!("{PLAIN}{late}\n"));
            assert_eq!(events.last().unwrap(), "tainted", "{late}");
        }
    }
}
