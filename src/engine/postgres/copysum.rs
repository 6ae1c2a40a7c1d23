//! Table checksums taken from the `COPY` data of a plain `pg_dump` as it passes through.
//!
//! Asking the server for `hashtextextended(row::text)` of every row while `pg_dump` reads the
//! same rows made the server read and convert every row twice, on the same cores. The plain
//! dump already holds each row as one line of `COPY` text, so each line is hashed on its way
//! into the archive ([`RowSum`]): the manifest then describes exactly the rows the archive
//! holds. The restore test prints the restored rows the same way (`COPY … TO STDOUT`, same
//! columns, same output settings) and hashes them with [`RowLines`].
//!
//! A table's data is the lines between a `COPY schema.table (col, …) FROM stdin;` line at the
//! top level of the script and the line `\.`. In COPY text a raw newline always ends a row
//! (newlines inside values are written `\n`), so no row is held whole: pieces go to the hash.
//! "Top level" matters: a function body, a comment string or a view may hold a line that
//! reads like a COPY header, so the SQL around the data is followed lexically (quotes with
//! doubling, `E''` strings, dollar quotes, quoted identifiers, both kinds of comments, psql
//! meta-commands). What the stream holds is then checked against what the snapshot lists
//! ([`reconcile`]): a table without its block, a second block or an unknown one is an error.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::engine::rowsum::{RowHasher, RowSum};

/// A `COPY` header line longer than this is not one pg_dump writes (1600 columns of 63-byte
/// names, quoted, stay under 250 KiB): refused rather than buffered without bound.
const MAX_HEADER: usize = 1 << 20;

/// One table's data block in the dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub sum: RowSum,
}

/// The rows of one table arriving as COPY text in pieces of any size; rows end at `\n`.
#[derive(Default)]
pub struct RowLines {
    hasher: RowHasher,
    /// The first bytes of the current line, held back until it is clear it is not `\.`.
    held: Vec<u8>,
    /// Whether the current line went to the hasher already (it is not `\.`).
    flushed: bool,
    pub sum: RowSum,
}

impl RowLines {
    /// Hashes `bytes`; with `end_marker`, a line `\.` ends the data and the number of bytes
    /// consumed up to and including its newline is returned.
    pub fn push(&mut self, bytes: &[u8], end_marker: bool) -> Option<usize> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            match find_newline(rest) {
                Some(nl) => {
                    at += nl + 1;
                    if self.end_line(&rest[..nl], end_marker) {
                        return Some(at);
                    }
                }
                None => {
                    self.piece(rest, end_marker);
                    at = bytes.len();
                }
            }
        }
        None
    }

    fn piece(&mut self, mut piece: &[u8], end_marker: bool) {
        if !self.flushed {
            if end_marker {
                while self.held.len() < 2 && !piece.is_empty() {
                    self.held.push(piece[0]);
                    piece = &piece[1..];
                }
                let may_be_end = b"\\.".starts_with(&self.held) && piece.is_empty();
                if may_be_end {
                    return;
                }
            }
            self.hasher.update(&self.held);
            self.held.clear();
            self.flushed = true;
        }
        self.hasher.update(piece);
    }

    /// Ends a line whose last piece is `last`; true when it was the end marker.
    fn end_line(&mut self, last: &[u8], end_marker: bool) -> bool {
        if !self.flushed && self.held.is_empty() && !(end_marker && last == b"\\.") {
            // A whole line in one buffer (nearly all of them): hashed in one call, which
            // costs less than the streaming state's reset and digest for a short row.
            self.sum.add(last);
            return false;
        }
        if end_marker && !self.flushed && self.held.len() + last.len() == 2 {
            let mut line = self.held.clone();
            line.extend_from_slice(last);
            if line == b"\\." {
                self.held.clear();
                return true;
            }
        }
        self.piece(last, false);
        self.hasher.finish(&mut self.sum);
        self.flushed = false;
        false
    }

    /// Whether a line has begun and not ended.
    pub fn mid_line(&self) -> bool {
        self.flushed || !self.held.is_empty()
    }
}

/// The first `\n` in `bytes`: `BufRead::skip_until` searches with the standard library's
/// memchr, which is optimised even in this crate's debug builds.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    use std::io::BufRead;
    let mut reader = bytes;
    let skipped = reader.skip_until(b'\n').unwrap_or_default();
    (skipped > 0 && bytes[skipped - 1] == b'\n').then(|| skipped - 1)
}

/// Where the lexer is in the SQL text around the data.
#[derive(Debug)]
enum Lex {
    Normal,
    /// A psql meta-command (`\connect`, `\restrict`), to the end of the line.
    Meta,
    LineComment,
    BlockComment {
        depth: u32,
    },
    /// A string literal; `escapes` for `E''` (and for any after
    /// `SET standard_conforming_strings = off`); `quote` after a `'` that may be doubled.
    Single {
        escapes: bool,
        quote: bool,
        backslash: bool,
    },
    Double {
        quote: bool,
    },
    DollarTag(Vec<u8>),
    Dollar {
        delim: Vec<u8>,
        matched: usize,
    },
    /// A line at the start of a statement that may be a COPY header (or the
    /// standard_conforming_strings setting), held until that is decided.
    Candidate(Vec<u8>),
    Data(Box<Copying>),
}

#[derive(Debug)]
struct Copying {
    block: Block,
    lines: RowLines,
}

impl std::fmt::Debug for RowLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowLines").field("sum", &self.sum).finish()
    }
}

const COPY: &[u8] = b"COPY ";
const SCS: &[u8] = b"SET standard_conforming_strings = ";

/// Follows a plain dump's text and sums each table's COPY data.
#[derive(Debug)]
pub struct CopySums {
    lex: Lex,
    /// The two bytes before this one in normal SQL text (0 when there is none).
    prev: u8,
    prev2: u8,
    /// Whether the statement had begun before `prev` (a `--` or `/*` turns out not to begin it).
    stmt_before_prev: bool,
    line_start: bool,
    stmt_start: bool,
    /// `standard_conforming_strings` as the dump set it (pg_dump follows the server's).
    standard_strings: bool,
    blocks: Vec<Block>,
    error: Option<String>,
}

impl Default for CopySums {
    fn default() -> Self {
        Self {
            lex: Lex::Normal,
            prev: 0,
            prev2: 0,
            stmt_before_prev: true,
            line_start: true,
            stmt_start: true,
            standard_strings: true,
            blocks: Vec::new(),
            error: None,
        }
    }
}

fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl CopySums {
    /// Follows the next bytes of the dump. After an error it stops following (the dump still
    /// passes through); [`CopySums::finish`] reports it.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.error.is_none() {
            if let Lex::Data(copying) = &mut self.lex {
                match copying.lines.push(bytes, true) {
                    Some(used) => {
                        bytes = &bytes[used..];
                        let Lex::Data(copying) = std::mem::replace(&mut self.lex, Lex::Normal)
                        else {
                            unreachable!()
                        };
                        let Copying { mut block, lines } = *copying;
                        block.sum = lines.sum;
                        self.blocks.push(block);
                        self.line_start = true;
                        self.stmt_start = true;
                        self.prev = 0;
                        self.prev2 = 0;
                    }
                    None => return,
                }
            } else {
                self.step(bytes[0]);
                bytes = &bytes[1..];
            }
        }
    }

    /// The blocks of the whole dump, or why the dump could not be followed.
    pub fn finish(self) -> Result<Vec<Block>, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        match self.lex {
            Lex::Data(copying) => Err(format!(
                "the dump ended inside the COPY data of {}.{}",
                copying.block.schema, copying.block.table
            )),
            Lex::Candidate(line) if line.starts_with(COPY) => {
                Err("the dump ended inside a COPY line".into())
            }
            _ => Ok(self.blocks),
        }
    }

    fn fail(&mut self, why: String) {
        self.error.get_or_insert(why);
    }

    fn step(&mut self, b: u8) {
        match &mut self.lex {
            Lex::Normal => self.normal(b),
            Lex::Meta => {
                if b == b'\n' {
                    self.lex = Lex::Normal;
                    self.new_line_of_statement();
                }
            }
            Lex::LineComment => {
                if b == b'\n' {
                    self.lex = Lex::Normal;
                    self.line_start = true;
                    self.prev = 0;
                }
            }
            Lex::BlockComment { depth } => {
                if self.prev == b'*' && b == b'/' {
                    *depth -= 1;
                    self.prev = 0;
                    if *depth == 0 {
                        self.lex = Lex::Normal;
                    }
                } else if self.prev == b'/' && b == b'*' {
                    *depth += 1;
                    self.prev = 0;
                } else {
                    self.prev = b;
                }
            }
            Lex::Single {
                escapes,
                quote,
                backslash,
            } => {
                if *backslash {
                    *backslash = false;
                } else if *quote {
                    *quote = false;
                    if b != b'\'' {
                        self.lex = Lex::Normal;
                        self.prev = b'\'';
                        self.prev2 = 0;
                        self.normal(b);
                    }
                } else if b == b'\'' {
                    *quote = true;
                } else if b == b'\\' && *escapes {
                    *backslash = true;
                }
            }
            Lex::Double { quote } => {
                if *quote {
                    *quote = false;
                    if b != b'"' {
                        self.lex = Lex::Normal;
                        self.prev = b'"';
                        self.prev2 = 0;
                        self.normal(b);
                    }
                } else if b == b'"' {
                    *quote = true;
                }
            }
            Lex::DollarTag(tag) => {
                if b == b'$' {
                    let mut delim = vec![b'$'];
                    delim.append(tag);
                    delim.push(b'$');
                    self.lex = Lex::Dollar { delim, matched: 0 };
                } else if ident_byte(b) && b != b'$' && !(tag.is_empty() && b.is_ascii_digit()) {
                    tag.push(b);
                } else {
                    // `$1` or a lone `$`: no quote began.
                    self.lex = Lex::Normal;
                    self.prev = b'$';
                    self.normal(b);
                }
            }
            Lex::Dollar { delim, matched } => {
                if b == delim[*matched] {
                    *matched += 1;
                    if *matched == delim.len() {
                        self.lex = Lex::Normal;
                        self.prev = b'$';
                        self.prev2 = 0;
                    }
                } else {
                    *matched = usize::from(b == b'$');
                }
            }
            Lex::Candidate(line) => {
                if b == b'\n' {
                    let line = std::mem::take(line);
                    self.lex = Lex::Normal;
                    self.decide(line);
                    return;
                }
                line.push(b);
                let full = |prefix: &[u8]| line.len() >= prefix.len() && line.starts_with(prefix);
                let partial = |prefix: &[u8]| prefix.starts_with(line);
                if full(COPY) || full(SCS) {
                    if line.len() > MAX_HEADER {
                        self.fail("a COPY line of more than 1 MiB".into());
                    }
                } else if !partial(COPY) && !partial(SCS) {
                    let line = std::mem::take(line);
                    self.replay(line);
                }
            }
            Lex::Data(_) => unreachable!("data is fed by lines"),
        }
    }

    /// Bytes held as a possible COPY line that turned out to be ordinary SQL.
    fn replay(&mut self, line: Vec<u8>) {
        self.lex = Lex::Normal;
        self.line_start = false;
        for b in line {
            self.step(b);
        }
    }

    /// A whole line held as a candidate: a COPY header, the strings setting, or other SQL.
    fn decide(&mut self, line: Vec<u8>) {
        if line.starts_with(COPY) {
            match parse_header(&line) {
                Ok((schema, table, columns)) => {
                    self.lex = Lex::Data(Box::new(Copying {
                        block: Block {
                            schema,
                            table,
                            columns,
                            sum: RowSum::default(),
                        },
                        lines: RowLines::default(),
                    }));
                }
                Err(why) => self.fail(format!(
                    "{why} in the dump's COPY line {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                )),
            }
            return;
        }
        if let Some(value) = line.strip_prefix(SCS) {
            self.standard_strings = !value.starts_with(b"off") && !value.starts_with(b"'off'");
        }
        let mut line = line;
        line.push(b'\n');
        self.replay(line);
    }

    fn new_line_of_statement(&mut self) {
        self.line_start = true;
        self.stmt_start = true;
        self.prev = 0;
        self.prev2 = 0;
    }

    fn normal(&mut self, b: u8) {
        if self.line_start && self.stmt_start && (b == b'C' || b == b'S') {
            self.line_start = false;
            self.lex = Lex::Candidate(vec![b]);
            return;
        }
        let (prev, prev2) = (self.prev, self.prev2);
        let stmt_before = self.stmt_start;
        self.prev2 = prev;
        self.prev = b;
        match b {
            b'\n' => {
                self.line_start = true;
                return;
            }
            b' ' | b'\t' | b'\r' | 0x0c => {
                self.line_start = false;
                return;
            }
            _ => {}
        }
        self.line_start = false;
        match b {
            b';' => self.stmt_start = true,
            b'\\' if stmt_before => self.lex = Lex::Meta,
            b'-' if prev == b'-' => {
                self.stmt_start = self.stmt_before_prev;
                self.lex = Lex::LineComment;
            }
            b'*' if prev == b'/' => {
                self.stmt_start = self.stmt_before_prev;
                self.prev = 0;
                self.lex = Lex::BlockComment { depth: 1 };
            }
            b'\'' => {
                let e_string = matches!(prev, b'E' | b'e') && !ident_byte(prev2);
                self.stmt_start = false;
                self.lex = Lex::Single {
                    escapes: e_string || !self.standard_strings,
                    quote: false,
                    backslash: false,
                };
            }
            b'"' => {
                self.stmt_start = false;
                self.lex = Lex::Double { quote: false };
            }
            b'$' if !ident_byte(prev) => {
                self.stmt_start = false;
                self.lex = Lex::DollarTag(Vec::new());
            }
            _ => self.stmt_start = false,
        }
        self.stmt_before_prev = stmt_before;
    }
}

/// `COPY schema.table (a, "B") FROM stdin;` as (schema, table, columns), names unquoted as
/// pg_dump's `fmtId` quoted them (bare names are lowercase letters, digits and `_`).
pub(super) fn parse_header(line: &[u8]) -> Result<(String, String, Vec<String>), String> {
    let mut rest = &line[COPY.len()..];
    let schema = ident(&mut rest)?;
    rest = rest
        .strip_prefix(b".")
        .ok_or("no schema-qualified table name")?;
    let table = ident(&mut rest)?;
    let mut columns = Vec::new();
    if let Some(list) = rest.strip_prefix(b" (") {
        rest = list;
        loop {
            columns.push(ident(&mut rest)?);
            if let Some(r) = rest.strip_prefix(b", ") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix(b")") {
                rest = r;
                break;
            } else {
                return Err("a column list that does not parse".into());
            }
        }
    } else {
        // A table without columns to copy: pg_dump prints an empty list, and so two spaces.
        rest = rest.strip_prefix(b" ").ok_or("no column list")?;
    }
    if rest != b" FROM stdin;" {
        return Err("no ' FROM stdin;' at the end".into());
    }
    Ok((schema, table, columns))
}

fn ident(rest: &mut &[u8]) -> Result<String, String> {
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| "a name that is not UTF-8");
    if let Some(mut r) = rest.strip_prefix(b"\"") {
        let mut name = Vec::new();
        loop {
            match r {
                [b'"', b'"', tail @ ..] => {
                    name.push(b'"');
                    r = tail;
                }
                [b'"', tail @ ..] => {
                    *rest = tail;
                    return Ok(text(name)?);
                }
                [b, tail @ ..] => {
                    name.push(*b);
                    r = tail;
                }
                [] => return Err("an unterminated quoted name".into()),
            }
        }
    }
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
        .count();
    if len == 0 {
        return Err("a name that does not parse".into());
    }
    let name = rest[..len].to_vec();
    *rest = &rest[len..];
    Ok(text(name)?)
}

/// A writer that passes everything to `out` and follows it with `sums`.
pub struct Tee<'a> {
    pub out: &'a mut dyn Write,
    pub sums: &'a mut CopySums,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sums.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A table whose rows the dump stream must carry, with the columns pg_dump copies (not the
/// generated ones), in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyTable {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
}

/// Each of `expected`'s sums, in its order, from `blocks`: every expected table must have
/// exactly one block with its columns; a block of a table in `tolerated` (an extension's
/// configuration table, a partition pg_dump loads through its root) is passed over; any other
/// block is an error.
pub fn reconcile(
    blocks: Vec<Block>,
    expected: &[CopyTable],
    tolerated: &[(String, String)],
) -> Result<Vec<RowSum>, String> {
    let index: BTreeMap<(&str, &str), usize> = expected
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.schema.as_str(), t.table.as_str()), i))
        .collect();
    let mut sums: Vec<Option<RowSum>> = vec![None; expected.len()];
    // Quoted as pg_dump quotes them, which an error message shows unambiguously.
    let shown = |s: &str, t: &str| {
        let quoted = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        format!("{}.{}", quoted(s), quoted(t))
    };
    for block in blocks {
        let key = (block.schema.as_str(), block.table.as_str());
        match index.get(&key) {
            Some(&i) => {
                let want = &expected[i];
                if sums[i].is_some() {
                    return Err(format!(
                        "the dump holds the rows of {} twice",
                        shown(key.0, key.1)
                    ));
                }
                if block.columns != want.columns {
                    return Err(format!(
                        "the dump copies the columns ({}) of {}, the snapshot has ({})",
                        block.columns.join(", "),
                        shown(key.0, key.1),
                        want.columns.join(", ")
                    ));
                }
                sums[i] = Some(block.sum);
            }
            None if tolerated
                .iter()
                .any(|(s, t)| (s.as_str(), t.as_str()) == key) => {}
            None => {
                return Err(format!(
                    "the dump holds rows of {}, a table the snapshot does not list",
                    shown(key.0, key.1)
                ));
            }
        }
    }
    sums.into_iter()
        .zip(expected)
        .map(|(sum, t)| {
            sum.ok_or_else(|| {
                format!(
                    "the dump holds no COPY data for table {}",
                    shown(&t.schema, &t.table)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump with the traps a line-based reader falls into: COPY-looking lines in a function
    /// body, a comment string, an E'' string, a quoted identifier and a block comment.
    const DUMP: &str = "\\restrict abc\n\
SET standard_conforming_strings = on;\n\
--\n-- Name: f; Type: FUNCTION\n--\n\n\
CREATE FUNCTION public.f() RETURNS text\n    LANGUAGE sql\n    AS $_$\nSELECT 1;\nCOPY public.x (a) FROM stdin;\nSELECT 'it''s'\n$_$;\n\n\
COMMENT ON TABLE public.t IS 'a;\n\
COPY public.x (a) FROM stdin;\n\
it''s';\n\
COMMENT ON COLUMN public.t.a IS E'b\\';\n\
COPY public.x (a) FROM stdin;\n';\n\
CREATE TABLE \"weird;\n\
COPY public.x (a) FROM stdin;\n\" (a int);\n\
/* a /* nested */;\n\
COPY public.x (a) FROM stdin;\n*/ still\n*/\n\
CREATE FUNCTION public.g() RETURNS int AS $$\nSELECT 1;\nCOPY public.x (a) FROM stdin;\n$$ LANGUAGE sql;\n\
SELECT $1\n;\n\
--\n-- Data for Name: t; Type: TABLE DATA\n--\n\n\
COPY public.t (a, \"B c\", \"q\"\"d\") FROM stdin;\n\
1\tx\t\\N\n\
\\\\.\tCOPY public.x (a) FROM stdin;\t\n\
\n\
\\.\n\n\n\
COPY \"Odd\"\"S\".\"T.1\"  FROM stdin;\n\
\n\
\\.\n\n\
\\unrestrict abc\n";

    fn sums(rows: &[&str]) -> RowSum {
        let mut s = RowSum::default();
        rows.iter().for_each(|r| s.add(r.as_bytes()));
        s
    }

    fn follow(chunks: &[&[u8]]) -> Result<Vec<Block>, String> {
        let mut c = CopySums::default();
        chunks.iter().for_each(|b| c.feed(b));
        c.finish()
    }

    fn expected_blocks() -> Vec<Block> {
        vec![
            Block {
                schema: "public".into(),
                table: "t".into(),
                columns: vec!["a".into(), "B c".into(), "q\"d".into()],
                sum: sums(&["1\tx\t\\N", "\\\\.\tCOPY public.x (a) FROM stdin;\t", ""]),
            },
            Block {
                schema: "Odd\"S".into(),
                table: "T.1".into(),
                columns: vec![],
                sum: sums(&[""]),
            },
        ]
    }

    #[test]
    fn only_top_level_copy_blocks_count() {
        assert_eq!(follow(&[DUMP.as_bytes()]).unwrap(), expected_blocks());
    }

    #[test]
    fn split_at_every_byte_reads_the_same() {
        let dump = DUMP.as_bytes();
        for at in 0..=dump.len() {
            let (a, b) = dump.split_at(at);
            assert_eq!(follow(&[a, b]).unwrap(), expected_blocks(), "split at {at}");
        }
        let bytes: Vec<&[u8]> = dump.chunks(1).collect();
        assert_eq!(follow(&bytes).unwrap(), expected_blocks());
    }

    #[test]
    fn a_huge_row_is_hashed_in_pieces() {
        let row = "y".repeat(3 << 20);
        let dump = format!("COPY public.big (v) FROM stdin;\n{row}\n\\.\n");
        let blocks = follow(&dump.as_bytes().chunks(65536).collect::<Vec<_>>()).unwrap();
        assert_eq!(blocks[0].sum, sums(&[&row]));
    }

    #[test]
    fn off_standard_strings_take_backslash_escapes() {
        let dump = "SET standard_conforming_strings = off;\n\
                    COMMENT ON TABLE public.t IS 'a\\'\nCOPY public.x (a) FROM stdin;\n';\n\
                    COPY public.t (a) FROM stdin;\n1\n\\.\n";
        let blocks = follow(&[dump.as_bytes()]).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].table, "t");
    }

    #[test]
    fn broken_dumps_are_errors() {
        for (dump, why) in [
            ("COPY public.t (a) FROM stdin;\n1\n", "ended inside"),
            ("COPY public.T (a) FROM stdin;\n\\.\n", "does not parse"),
            ("COPY public.t (a) FROM stdout;\n\\.\n", "FROM stdin"),
            ("COPY t (a) FROM stdin;\n\\.\n", "schema-qualified"),
            ("COPY public.\"t (a) FROM stdin;\n\\.\n", "unterminated"),
        ] {
            let err = follow(&[dump.as_bytes()]).unwrap_err();
            assert!(err.contains(why), "{dump:?}: {err}");
        }
    }

    #[test]
    fn restore_side_lines_hash_like_the_dump() {
        let mut lines = RowLines::default();
        for piece in [
            "1\tx\t\\N\n\\\\.\tCOPY public.x (a) FROM stdin;\t",
            "\n",
            "\n",
        ] {
            assert_eq!(lines.push(piece.as_bytes(), false), None);
        }
        assert!(!lines.mid_line());
        assert_eq!(lines.sum, expected_blocks()[0].sum);
    }

    #[test]
    fn reconcile_wants_each_table_once_with_its_columns() {
        let table = |t: &str, cols: &[&str]| CopyTable {
            schema: "public".into(),
            table: t.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
        };
        let block = |t: &str, cols: &[&str]| Block {
            schema: "public".into(),
            table: t.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            sum: sums(&[t]),
        };
        let expected = [table("a", &["x"]), table("b", &[])];
        let tolerated = [("public".to_string(), "cfg".to_string())];
        let ok = reconcile(
            vec![block("b", &[]), block("cfg", &["z"]), block("a", &["x"])],
            &expected,
            &tolerated,
        )
        .unwrap();
        assert_eq!(ok, vec![sums(&["a"]), sums(&["b"])]);
        for (blocks, why) in [
            (
                vec![block("a", &["x"])],
                "no COPY data for table \"public\".\"b\"",
            ),
            (
                vec![block("a", &["x"]), block("b", &[]), block("b", &[])],
                "twice",
            ),
            (vec![block("a", &["y"]), block("b", &[])], "columns (y)"),
            (
                vec![block("a", &["x"]), block("b", &[]), block("c", &[])],
                "does not list",
            ),
        ] {
            let err = reconcile(blocks, &expected, &tolerated).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
