//! Per-table row counts and checksums taken from `mariadb-dump`'s (or `mysqldump`'s) own
//! output as it streams through dbbackup, instead of a second read of every row by the server.
//!
//! The dump writes a table's rows as the tuples of extended `INSERT INTO `t` VALUES (…),(…);`
//! statements. Each tuple's text, from after its `(` to before its matching `)` (outside string
//! literals), is hashed as one row ([`RowSum`]): the restore test prints the restored copy's
//! rows with the same tool and the same data options, so a faithful copy hashes the same, in
//! whatever order and however the tool splits its statements.
//!
//! Only statements at the top level count, as the client that restores the dump splits them:
//! the stream is lexed like the `mariadb` client does (string literals with backslash
//! escapes, `` `identifiers` ``, `-- `/`#`/`/* */` comments, `/*!…*/` executable comments as
//! code, `DELIMITER` commands), so the text of a routine, trigger or event body, a view, a
//! comment or a string is never mistaken for data. Data sections are checked: each table's
//! rows come from one `LOCK TABLES `t` WRITE; … UNLOCK TABLES;` section naming it, every
//! `INSERT` is inside the section of its own table, and a data statement of any other form
//! (`INSERT IGNORE`, `REPLACE`, no backquotes) fails loudly rather than being miscounted.
//!
//! Nothing is buffered beyond an identifier (a row of hundreds of MB is hashed in pieces), and
//! the hot loop is `memchr` over the row text.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::archive::manifest::TableStats;
use crate::engine::rowsum::{RowHasher, RowSum};

/// The manifest's name for these checksums.
pub const ALGORITHM: &str = "mysql-dump-xxh3-sum-v1";

/// Engines whose tables the dump tools write no rows for (`mysqldump.c`: a MERGE table's rows
/// are its underlying tables', a FEDERATED table's live on another server).
pub const DATA_NOT_DUMPED: [&str; 3] = ["MRG_MyISAM", "MRG_ISAM", "FEDERATED"];

/// The longest identifier accepted (64 characters of up to 4 bytes, backquotes doubled).
const MAX_IDENT: usize = 1024;
/// The longest `DELIMITER` accepted.
const MAX_DELIMITER: usize = 16;

/// The dump stream was not in the form the checksums rely on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dump's text at byte {offset}: {reason}")]
pub struct DumpSumError {
    pub offset: u64,
    pub reason: String,
}

/// Where the lexer of a statement other than a data one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    Single,
    SingleEsc,
    Double,
    DoubleEsc,
    Backtick,
    Dash,
    DashDash,
    Slash,
    SlashStar,
    SlashStarM,
    LineComment,
    BlockComment,
    BlockStar,
}

/// What a statement's first words can be (compared case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Insert,
    Lock,
    Unlock,
    Delimiter,
    Sandbox,
    Replace,
}

const HEADS: [(Head, &[u8]); 6] = [
    (Head::Insert, b"INSERT INTO `"),
    (Head::Lock, b"LOCK TABLES `"),
    (Head::Unlock, b"UNLOCK TABLES;"),
    (Head::Delimiter, b"DELIMITER "),
    // mariadb-dump's first line, a client command in a comment, with no delimiter after it.
    (Head::Sandbox, b"/*M!999999\\-"),
    (Head::Replace, b"REPLACE "),
];

/// What an identifier that was just read names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdentOf {
    Insert,
    Lock,
    Column,
}

/// After a fixed text is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// `VALUES`: whitespace, then the first tuple.
    Values,
    /// The end of `LOCK TABLES `t` WRITE;`.
    Locked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between statements.
    Between,
    /// Matching a statement's first bytes against [`HEADS`]; `head` holds them.
    Head,
    /// Any other statement, until the delimiter; `started`: code (not only comments) seen.
    Other { lex: Lex, started: bool },
    /// The rest of a line that is skipped (mariadb-dump's sandbox command).
    SkipLine,
    /// A `DELIMITER` command's argument, to the end of its line.
    Delimiter,
    /// In a backquoted identifier; `tick`: a backquote was just seen (end, or doubled).
    Ident { of: IdentOf, tick: bool },
    /// After an `INSERT`'s table name: ` VALUES` or ` (` (a column list).
    AfterTable { space: bool },
    /// Between the identifiers of a column list.
    Columns { comma: bool },
    /// Matching the fixed text `lit` (`matched` bytes of it so far).
    Expect {
        lit: &'static [u8],
        matched: usize,
        then: Then,
    },
    /// After `VALUES`, before the first tuple.
    ValuesSpace,
    /// Inside a tuple, outside strings.
    Tuple,
    /// Inside a string of a tuple.
    TupleString,
    /// After a backslash in a string of a tuple.
    TupleEscape,
    /// After a quote that ended a string of a tuple (or began a doubled one).
    TupleQuote,
    /// After a tuple: `,` or the end of the statement.
    AfterTuple,
    /// After a tuple's `,`: whitespace, then the next tuple.
    AfterComma,
    /// A previous error; the rest is not parsed.
    Failed,
}

/// The push parser: fed the dump in pieces of any size ([`DumpSums::update`]), it sums the rows
/// of every table's data section.
pub struct DumpSums {
    state: State,
    delimiter: Vec<u8>,
    /// How much of the delimiter the last code bytes matched.
    dmatch: usize,
    head: Vec<u8>,
    alive: [bool; HEADS.len()],
    ident: Vec<u8>,
    /// The table whose `INSERT` is being read.
    insert_table: Option<String>,
    /// The open data section: its table and its rows so far.
    open: Option<(String, RowSum)>,
    sections: BTreeMap<String, RowSum>,
    hasher: RowHasher,
    /// Bytes before the current piece.
    offset: u64,
    error: Option<DumpSumError>,
}

impl Default for DumpSums {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpSums {
    pub fn new() -> Self {
        Self {
            state: State::Between,
            delimiter: b";".to_vec(),
            dmatch: 0,
            head: Vec::new(),
            alive: [true; HEADS.len()],
            ident: Vec::new(),
            insert_table: None,
            open: None,
            sections: BTreeMap::new(),
            hasher: RowHasher::default(),
            offset: 0,
            error: None,
        }
    }

    /// Parses the next piece of the dump. After an error the rest is ignored: [`Self::finish`]
    /// reports it.
    pub fn update(&mut self, piece: &[u8]) {
        if self.state == State::Failed {
            self.offset += piece.len() as u64;
            return;
        }
        if let Err(reason) = self.parse(piece) {
            self.state = State::Failed;
            self.error = Some(DumpSumError {
                offset: self.offset + reason.0 as u64,
                reason: reason.1,
            });
        }
        self.offset += piece.len() as u64;
    }

    /// The rows of each table that had a data section, once the whole dump was given.
    pub fn finish(self) -> Result<BTreeMap<String, RowSum>, DumpSumError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let fail = |reason: String| {
            Err(DumpSumError {
                offset: self.offset,
                reason,
            })
        };
        if let Some((table, _)) = &self.open {
            return fail(format!(
                "the dump ended inside the data section of table `{table}`"
            ));
        }
        match self.state {
            State::Between
            | State::Other {
                started: false,
                lex: Lex::Code | Lex::LineComment,
            } => Ok(self.sections),
            _ => fail("the dump ended inside a statement".into()),
        }
    }

    fn parse(&mut self, buf: &[u8]) -> Result<(), (usize, String)> {
        let mut at = 0;
        // Where the text of the tuple being read starts in `buf`, when inside one.
        let mut tuple_from: Option<usize> = match self.state {
            State::Tuple | State::TupleString | State::TupleEscape | State::TupleQuote => Some(0),
            _ => None,
        };
        while at < buf.len() {
            let b = buf[at];
            match self.state {
                State::Failed => return Ok(()),
                State::Between => {
                    if !b.is_ascii_whitespace() {
                        self.state = State::Head;
                        self.head.clear();
                        self.alive = [true; HEADS.len()];
                        continue;
                    }
                    at += 1;
                }
                State::Head => {
                    let n = self.head.len();
                    let up = b.to_ascii_uppercase();
                    let mut any = false;
                    for (i, (_, lit)) in HEADS.iter().enumerate() {
                        self.alive[i] = self.alive[i] && lit.get(n) == Some(&up);
                        any |= self.alive[i];
                    }
                    if !any {
                        self.not_a_head().map_err(|e| (at, e))?;
                        continue;
                    }
                    self.head.push(b);
                    at += 1;
                    let done = HEADS
                        .iter()
                        .enumerate()
                        .find(|(i, (_, lit))| self.alive[*i] && lit.len() == n + 1);
                    if let Some((_, (head, _))) = done {
                        self.start(*head).map_err(|e| (at, e))?;
                    }
                }
                State::Other { lex, started } => {
                    at = self.other(buf, at, lex, started);
                }
                State::SkipLine => match memchr::memchr(b'\n', &buf[at..]) {
                    Some(i) => {
                        at += i + 1;
                        self.state = State::Between;
                    }
                    None => at = buf.len(),
                },
                State::Delimiter => {
                    at += 1;
                    if b == b'\n' {
                        self.set_delimiter().map_err(|e| (at, e))?;
                    } else {
                        self.head.push(b);
                        if self.head.len() > MAX_DELIMITER + 16 {
                            return Err((at, "a DELIMITER command longer than a line".into()));
                        }
                    }
                }
                State::Ident { of, tick } => {
                    if tick {
                        if b == b'`' {
                            self.ident.push(b);
                            self.state = State::Ident { of, tick: false };
                            at += 1;
                        } else {
                            self.ident_done(of).map_err(|e| (at, e))?;
                        }
                        continue;
                    }
                    match memchr::memchr(b'`', &buf[at..]) {
                        Some(i) => {
                            self.push_ident(&buf[at..at + i]).map_err(|e| (at, e))?;
                            at += i + 1;
                            self.state = State::Ident { of, tick: true };
                        }
                        None => {
                            self.push_ident(&buf[at..]).map_err(|e| (at, e))?;
                            at = buf.len();
                        }
                    }
                }
                State::AfterTable { space } => {
                    at += 1;
                    self.state = match (space, b) {
                        (false, b' ') => State::AfterTable { space: true },
                        (true, b'V') => State::Expect {
                            lit: b"ALUES",
                            matched: 0,
                            then: Then::Values,
                        },
                        (true, b'(') => State::Columns { comma: true },
                        _ => return Err((at, self.unexpected_insert(b))),
                    };
                }
                State::Columns { comma } => {
                    at += 1;
                    self.state = match (comma, b) {
                        (true, b'`') => State::Ident {
                            of: IdentOf::Column,
                            tick: false,
                        },
                        (true, b' ') => State::Columns { comma: true },
                        (false, b',') => State::Columns { comma: true },
                        (false, b')') => State::Expect {
                            lit: b" VALUES",
                            matched: 0,
                            then: Then::Values,
                        },
                        _ => return Err((at, self.unexpected_insert(b))),
                    };
                }
                State::Expect { lit, matched, then } => {
                    if lit[matched] != b {
                        return Err((at, self.unexpected_insert(b)));
                    }
                    at += 1;
                    self.state = if matched + 1 < lit.len() {
                        State::Expect {
                            lit,
                            matched: matched + 1,
                            then,
                        }
                    } else {
                        match then {
                            Then::Values => State::ValuesSpace,
                            Then::Locked => {
                                self.lock().map_err(|e| (at, e))?;
                                State::Between
                            }
                        }
                    };
                }
                State::ValuesSpace | State::AfterComma => {
                    at += 1;
                    match b {
                        b' ' | b'\n' | b'\r' | b'\t' => {}
                        b'(' => {
                            self.state = State::Tuple;
                            tuple_from = Some(at);
                        }
                        _ => return Err((at, self.unexpected_insert(b))),
                    }
                }
                State::Tuple => match memchr::memchr3(b'\'', b')', b'(', &buf[at..]) {
                    None => at = buf.len(),
                    Some(i) => {
                        at += i;
                        match buf[at] {
                            b'\'' => self.state = State::TupleString,
                            b')' => {
                                let from = tuple_from.take().unwrap_or(at);
                                self.end_tuple(&buf[from..at]);
                                self.state = State::AfterTuple;
                            }
                            _ => {
                                return Err((at, "a '(' inside a row, outside its strings".into()));
                            }
                        }
                        at += 1;
                    }
                },
                State::TupleString => match memchr::memchr2(b'\'', b'\\', &buf[at..]) {
                    None => at = buf.len(),
                    Some(i) => {
                        at += i;
                        if buf[at] == b'\\' {
                            if at + 1 < buf.len() {
                                at += 2;
                            } else {
                                self.state = State::TupleEscape;
                                at += 1;
                            }
                        } else {
                            self.state = State::TupleQuote;
                            at += 1;
                        }
                    }
                },
                State::TupleEscape => {
                    at += 1;
                    self.state = State::TupleString;
                }
                State::TupleQuote => {
                    if b == b'\'' {
                        // A doubled quote: still inside the string.
                        self.state = State::TupleString;
                        at += 1;
                    } else {
                        self.state = State::Tuple;
                    }
                }
                State::AfterTuple => {
                    at += 1;
                    match b {
                        b',' => self.state = State::AfterComma,
                        b';' => {
                            self.insert_table = None;
                            self.state = State::Between;
                        }
                        _ => return Err((at, self.unexpected_insert(b))),
                    }
                }
            }
        }
        if let Some(from) = tuple_from {
            self.hasher.update(&buf[from..]);
        }
        Ok(())
    }

    /// A statement whose first bytes are none of [`HEADS`]: lexed as any statement, from the
    /// bytes already seen.
    fn not_a_head(&mut self) -> Result<(), String> {
        let upper = self.head.to_ascii_uppercase();
        if upper.starts_with(b"INSERT") {
            return Err(format!(
                "a data statement of an unexpected form ({}…): only `INSERT INTO `table` \
                 [(columns)] VALUES (…),…;` is summed",
                String::from_utf8_lossy(&self.head)
            ));
        }
        self.state = State::Other {
            lex: Lex::Code,
            started: false,
        };
        // What matched a head is letters, spaces or the start of `/*M!999999\-`: it holds no
        // delimiter, so it cannot end the statement.
        let head = std::mem::take(&mut self.head);
        let mut at = 0;
        while at < head.len() {
            let State::Other { lex, started } = self.state else {
                unreachable!("a head holds no delimiter")
            };
            at = self.other_byte(&head, at, lex, started);
        }
        Ok(())
    }

    /// A statement whose first bytes matched `head` whole.
    fn start(&mut self, head: Head) -> Result<(), String> {
        self.head.clear();
        self.state = match head {
            Head::Insert | Head::Lock => {
                if self.delimiter != b";" {
                    return Err(format!(
                        "a data statement while the delimiter is {:?}",
                        String::from_utf8_lossy(&self.delimiter)
                    ));
                }
                self.ident.clear();
                State::Ident {
                    of: if head == Head::Insert {
                        IdentOf::Insert
                    } else {
                        IdentOf::Lock
                    },
                    tick: false,
                }
            }
            Head::Unlock => {
                if self.delimiter != b";" {
                    return Err("UNLOCK TABLES while the delimiter is not ';'".into());
                }
                let Some((table, sum)) = self.open.take() else {
                    return Err("UNLOCK TABLES without a data section".into());
                };
                self.sections.insert(table, sum);
                State::Between
            }
            Head::Delimiter => State::Delimiter,
            Head::Sandbox => State::SkipLine,
            Head::Replace => {
                return Err("a REPLACE statement: only INSERT INTO rows are summed".into());
            }
        };
        Ok(())
    }

    fn set_delimiter(&mut self) -> Result<(), String> {
        let arg = std::mem::take(&mut self.head);
        let text = String::from_utf8_lossy(&arg);
        let new = text.split_whitespace().next().unwrap_or("");
        let allowed = |c: char| {
            c.is_ascii_graphic()
                && !c.is_ascii_alphanumeric()
                && !matches!(c, '\'' | '"' | '`' | '-' | '#' | '/' | '*' | '\\' | '!')
        };
        if new.is_empty() || new.len() > MAX_DELIMITER || !new.chars().all(allowed) {
            return Err(format!("an unexpected DELIMITER {new:?}"));
        }
        self.delimiter = new.as_bytes().to_vec();
        self.dmatch = 0;
        self.state = State::Between;
        Ok(())
    }

    fn push_ident(&mut self, piece: &[u8]) -> Result<(), String> {
        self.ident.extend_from_slice(piece);
        match self.ident.len() > MAX_IDENT {
            true => Err("an identifier longer than any table's name".into()),
            false => Ok(()),
        }
    }

    fn ident_done(&mut self, of: IdentOf) -> Result<(), String> {
        let mut name = || {
            String::from_utf8(std::mem::take(&mut self.ident))
                .map_err(|_| "a table name that is not UTF-8".to_string())
        };
        self.state = match of {
            IdentOf::Column => {
                self.ident.clear();
                State::Columns { comma: false }
            }
            IdentOf::Lock => {
                let table = name()?;
                self.insert_table = Some(table);
                State::Expect {
                    lit: b" WRITE;",
                    matched: 0,
                    then: Then::Locked,
                }
            }
            IdentOf::Insert => {
                let table = name()?;
                match &self.open {
                    Some((open, _)) if *open == table => {}
                    Some((open, _)) => {
                        return Err(format!(
                            "rows for table `{table}` inside the data section of `{open}`"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "rows for table `{table}` outside a data section (LOCK TABLES … \
                             UNLOCK TABLES)"
                        ));
                    }
                }
                self.insert_table = Some(table);
                State::AfterTable { space: false }
            }
        };
        Ok(())
    }

    /// `LOCK TABLES `t` WRITE;` read whole: the data section of `t` opens.
    fn lock(&mut self) -> Result<(), String> {
        let table = self.insert_table.take().unwrap_or_default();
        if let Some((open, _)) = &self.open {
            return Err(format!(
                "a data section for `{table}` inside the one of `{open}`"
            ));
        }
        if self.sections.contains_key(&table) {
            return Err(format!("a second data section for table `{table}`"));
        }
        self.open = Some((table, RowSum::default()));
        Ok(())
    }

    fn unexpected_insert(&self, b: u8) -> String {
        format!(
            "an INSERT for table `{}` of an unexpected form (at {:?})",
            self.insert_table.as_deref().unwrap_or(""),
            b as char
        )
    }

    fn end_tuple(&mut self, text: &[u8]) {
        let Some((_, sum)) = self.open.as_mut() else {
            unreachable!("an INSERT is only read inside its table's data section")
        };
        if self.hasher.started() {
            self.hasher.update(text);
            self.hasher.finish(sum);
        } else {
            sum.add(text);
        }
    }

    /// Lexes any other statement from `buf[at]` on, as far as it goes in `buf`.
    fn other(&mut self, buf: &[u8], mut at: usize, mut lex: Lex, mut started: bool) -> usize {
        loop {
            at = self.other_byte(buf, at, lex, started);
            match self.state {
                State::Other { lex: l, started: s } if at < buf.len() => {
                    lex = l;
                    started = s;
                }
                _ => return at,
            }
        }
    }

    /// One step of [`Self::other`]: consumes `buf[at]` (or, at a comment's or string's inside,
    /// up to its end) and returns where it stopped.
    fn other_byte(&mut self, buf: &[u8], at: usize, lex: Lex, started: bool) -> usize {
        let b = buf[at];
        let next = |lex: Lex, started: bool| State::Other { lex, started };
        let (state, used) = match lex {
            Lex::Code => {
                if self.delimiter.get(self.dmatch) == Some(&b) {
                    self.dmatch += 1;
                    if self.dmatch == self.delimiter.len() {
                        self.dmatch = 0;
                        (State::Between, 1)
                    } else {
                        (next(Lex::Code, true), 1)
                    }
                } else if self.dmatch > 0 {
                    // A partial delimiter: this byte starts afresh.
                    self.dmatch = 0;
                    (next(Lex::Code, started), 0)
                } else {
                    let lex = match b {
                        b'\'' => Lex::Single,
                        b'"' => Lex::Double,
                        b'`' => Lex::Backtick,
                        b'-' => Lex::Dash,
                        b'/' => Lex::Slash,
                        b'#' => Lex::LineComment,
                        _ => Lex::Code,
                    };
                    let code = !b.is_ascii_whitespace()
                        && !matches!(lex, Lex::Dash | Lex::Slash | Lex::LineComment);
                    (next(lex, started || code), 1)
                }
            }
            Lex::Single | Lex::Double => {
                let quote = if lex == Lex::Single { b'\'' } else { b'"' };
                match memchr::memchr2(quote, b'\\', &buf[at..]) {
                    None => (next(lex, started), buf.len() - at),
                    Some(i) if buf[at + i] == b'\\' => {
                        let esc = if lex == Lex::Single {
                            Lex::SingleEsc
                        } else {
                            Lex::DoubleEsc
                        };
                        (next(esc, started), i + 1)
                    }
                    Some(i) => (next(Lex::Code, started), i + 1),
                }
            }
            Lex::SingleEsc => (next(Lex::Single, started), 1),
            Lex::DoubleEsc => (next(Lex::Double, started), 1),
            Lex::Backtick => match memchr::memchr(b'`', &buf[at..]) {
                None => (next(lex, started), buf.len() - at),
                Some(i) => (next(Lex::Code, started), i + 1),
            },
            Lex::Dash => match b {
                b'-' => (next(Lex::DashDash, started), 1),
                _ => (next(Lex::Code, true), 0),
            },
            Lex::DashDash => match b {
                // `--` alone on its line: a comment that ends here.
                b'\n' if started => (next(Lex::Code, true), 1),
                b'\n' => (State::Between, 1),
                // `--` starts a comment when a space or a control character follows.
                0..=b' ' => (next(Lex::LineComment, started), 1),
                _ => (next(Lex::Code, true), 0),
            },
            Lex::Slash => match b {
                b'*' => (next(Lex::SlashStar, started), 1),
                _ => (next(Lex::Code, true), 0),
            },
            Lex::SlashStar => match b {
                // `/*!…*/` and `/*M!…*/` hold code the server runs.
                b'!' => (next(Lex::Code, true), 1),
                b'M' => (next(Lex::SlashStarM, started), 1),
                _ => (next(Lex::BlockComment, started), 0),
            },
            Lex::SlashStarM => match b {
                b'!' => (next(Lex::Code, true), 1),
                _ => (next(Lex::BlockComment, started), 0),
            },
            Lex::LineComment => match memchr::memchr(b'\n', &buf[at..]) {
                None => (next(lex, started), buf.len() - at),
                Some(i) if started => (next(Lex::Code, true), i + 1),
                Some(i) => (State::Between, i + 1),
            },
            Lex::BlockComment => match memchr::memchr(b'*', &buf[at..]) {
                None => (next(lex, started), buf.len() - at),
                Some(i) => (next(Lex::BlockStar, started), i + 1),
            },
            Lex::BlockStar => match b {
                b'/' if started => (next(Lex::Code, true), 1),
                b'/' => (State::Between, 1),
                b'*' => (next(Lex::BlockStar, started), 1),
                _ => (next(Lex::BlockComment, started), 1),
            },
        };
        self.state = state;
        at + used
    }
}

/// Copies the dump from `from` to `to`, summing it on the way; read and write errors are the
/// copy's, the dump's form is [`DumpSums::finish`]'s to judge.
pub fn copy_summing(
    from: &mut dyn Read,
    to: &mut dyn Write,
    sums: &mut DumpSums,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sums.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The manifest's tables: each of `listed` (name and engine of the snapshot's data tables, in
/// the manifest's order) with the rows of its data section. A listed table without one fails
/// (unless its engine's rows are never dumped: those are returned apart), and so does a
/// section for a table that is not listed.
pub fn table_stats(
    listed: &[(String, String)],
    mut sections: BTreeMap<String, RowSum>,
) -> Result<(Vec<TableStats>, Vec<String>), String> {
    let mut tables = Vec::with_capacity(listed.len());
    let mut not_dumped = Vec::new();
    for (name, engine) in listed {
        match sections.remove(name) {
            Some(sum) => tables.push(TableStats {
                name: name.clone(),
                rows: sum.rows,
                checksum: sum.checksum(),
            }),
            None if DATA_NOT_DUMPED
                .iter()
                .any(|e| e.eq_ignore_ascii_case(engine)) =>
            {
                not_dumped.push(name.clone())
            }
            None => {
                return Err(format!(
                    "table {name}: the dump has no data section for it, so its rows cannot be \
                     counted and checksummed"
                ));
            }
        }
    }
    if let Some(extra) = sections.keys().next() {
        return Err(format!(
            "the dump has rows for table {extra}, which the snapshot does not list as a table"
        ));
    }
    Ok((tables, not_dumped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_of(pieces: &[&[u8]]) -> Result<BTreeMap<String, RowSum>, DumpSumError> {
        let mut s = DumpSums::new();
        for p in pieces {
            s.update(p);
        }
        s.finish()
    }

    fn sum(rows: &[&str]) -> RowSum {
        let mut s = RowSum::default();
        rows.iter().for_each(|r| s.add(r.as_bytes()));
        s
    }

    /// The same result whole, and split in two at every byte, and fed a byte at a time.
    fn check_splits(dump: &[u8]) -> Result<BTreeMap<String, RowSum>, DumpSumError> {
        let whole = sums_of(&[dump]);
        for at in 0..=dump.len() {
            let split = sums_of(&[&dump[..at], &dump[at..]]);
            assert_eq!(
                split.as_ref().map_err(|e| e.reason.clone()),
                whole.as_ref().map_err(|e| e.reason.clone()),
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = dump.chunks(1).collect();
        assert_eq!(
            sums_of(&bytes).map_err(|e| e.reason),
            whole.clone().map_err(|e| e.reason)
        );
        whole
    }

    const SECTION: &str = "--\n-- Dumping data for table `t`\n--\n\nLOCK TABLES `t` WRITE;\n\
         /*!40000 ALTER TABLE `t` DISABLE KEYS */;\n";
    const END: &str = "/*!40000 ALTER TABLE `t` ENABLE KEYS */;\nUNLOCK TABLES;\n";

    #[test]
    fn rows_of_mariadb_and_mysql_forms_with_awkward_values() {
        let rows = [
            r"1,'a\'b\\c\nd),(',0x00FF,NULL,'😀𝄞'",
            r"2,'',NULL,-1.5e-7,'x\r\0\Z\''",
            r"3,'it''s',0x,'(',')'",
        ];
        let mariadb = format!(
            "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n{SECTION}\
             INSERT INTO `t` VALUES ({}),\n({});\nINSERT INTO `t` VALUES\n({});\n{END}\
             -- Dump completed\n",
            rows[0], rows[1], rows[2]
        );
        let got = check_splits(mariadb.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["t"], sum(&rows));
        assert_eq!(got["t"].rows, 3);
        // MySQL's mysqldump: one line, `),(`; a column list; the same rows sum the same.
        let mysql = format!(
            "{SECTION}INSERT INTO `t` (`a`, `b ``c`, `d`, `e`, `f`) VALUES ({}),({}),({});\n{END}",
            rows[2], rows[0], rows[1]
        );
        assert_eq!(check_splits(mysql.as_bytes()).unwrap()["t"], sum(&rows));
    }

    #[test]
    fn routine_trigger_view_and_comment_bodies_are_not_data() {
        let fake = "INSERT INTO `t` VALUES (666);";
        let dump = format!(
            "-- {fake}\n# {fake}\n/* {fake} it's */\n\
             CREATE TABLE `t` (`a` int) COMMENT='{fake}\nLOCK TABLES `t` WRITE;';\n\
             /*!50001 CREATE VIEW `v` AS select '{fake}' AS `x` */;\n\
             {SECTION}INSERT INTO `t` VALUES (1);\n{END}\
             DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN\n\
             {fake}\n-- don't ;; \"\n# it's\nUNLOCK TABLES;\nEND */;;\nDELIMITER ;\n\
             DELIMITER ;;\nCREATE PROCEDURE `p`()\nBEGIN\n/* ' */\n{fake}\nSELECT '{fake}\n;;';\nEND ;;\n\
             DELIMITER ;\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n"
        );
        let got = check_splits(dump.as_bytes()).unwrap();
        assert_eq!(got["t"], sum(&["1"]));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn sections_are_checked() {
        let bad = |dump: String, wanted: &str| {
            let err = check_splits(dump.as_bytes()).unwrap_err();
            assert!(err.reason.contains(wanted), "{wanted}: {err}");
        };
        bad(
            "INSERT INTO `t` VALUES (1);\n".into(),
            "outside a data section",
        );
        bad(
            format!("{SECTION}INSERT INTO `u` VALUES (1);\n{END}"),
            "inside the data section of `t`",
        );
        bad(
            format!("{SECTION}{END}{SECTION}{END}"),
            "a second data section",
        );
        bad(
            format!("{SECTION}INSERT IGNORE INTO `t` VALUES (1);\n{END}"),
            "unexpected form",
        );
        bad(
            format!("{SECTION}insert into t values (1);\n{END}"),
            "unexpected form",
        );
        bad(
            format!("{SECTION}REPLACE INTO `t` VALUES (1);\n{END}"),
            "REPLACE",
        );
        bad(
            format!("{SECTION}INSERT INTO `t` VALUES (1,(2));\n{END}"),
            "'('",
        );
        bad(format!("{SECTION}INSERT INTO `t` VALUES (1)"), "inside");
        bad(SECTION.to_string(), "ended inside the data section");
        bad("UNLOCK TABLES;\n".into(), "without a data section");
        bad("DELIMITER ab\n".into(), "DELIMITER");
        bad(
            "DELIMITER ;;\nINSERT INTO `t` VALUES (1);;\n".into(),
            "delimiter",
        );
        // An empty section: a table with no rows.
        let empty = check_splits(format!("{SECTION}{END}").as_bytes()).unwrap();
        assert_eq!(empty["t"], RowSum::default());
    }

    #[test]
    fn a_large_row_streams_in_pieces() {
        let big = format!("1,'{}',0x{}", "\\'x".repeat(700_000), "AB".repeat(600_000));
        let dump = format!("{SECTION}INSERT INTO `t` VALUES ({big}),\n(2,'');\n{END}");
        let pieces: Vec<&[u8]> = dump.as_bytes().chunks(4093).collect();
        assert_eq!(sums_of(&pieces).unwrap()["t"], sum(&[&big, "2,''"]));
        let mut out = Vec::new();
        let mut sums = DumpSums::new();
        copy_summing(&mut dump.as_bytes(), &mut out, &mut sums).unwrap();
        assert_eq!(out, dump.as_bytes());
        assert_eq!(sums.finish().unwrap()["t"].rows, 2);
    }

    #[test]
    fn listed_tables_take_their_sections() {
        let listed = |names: &[(&str, &str)]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_string()))
                .collect()
        };
        let mut sections = BTreeMap::new();
        sections.insert("a".to_string(), sum(&["1", "2"]));
        let (tables, skipped) = table_stats(
            &listed(&[("a", "InnoDB"), ("m", "MRG_MyISAM")]),
            sections.clone(),
        )
        .unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].rows, 2);
        assert_eq!(tables[0].checksum.len(), 32);
        assert_eq!(skipped, ["m"]);
        assert!(
            table_stats(
                &listed(&[("a", "InnoDB"), ("b", "InnoDB")]),
                sections.clone()
            )
            .unwrap_err()
            .contains("table b")
        );
        assert!(
            table_stats(&listed(&[]), sections)
                .unwrap_err()
                .contains("table a")
        );
    }
}
