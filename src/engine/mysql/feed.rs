//! What a dump passes through on its way into a scratch database.
//!
//! - `DEFINER=`user`@`host`` clauses (views, routines, triggers, events) become
//!   `DEFINER=CURRENT_USER`: a restore test runs on whatever server is at hand, which rarely has
//!   the source's users, and a definer it lacks would fail the restore (or need `SUPER`). The
//!   report says how many were rewritten, as the PostgreSQL engine does for owners.
//! - A statement that switches or creates a database (`USE`, `CREATE DATABASE`) is refused: a
//!   dump of one database (no `--databases`) never has one, and obeying it would write into
//!   another database than the scratch one, the source's perhaps.
//!
//! Lines of data (`INSERT INTO`) pass untouched.

use std::io::{BufRead, BufReader, Read, Write};

use super::early::Boundaries;

/// How feeding a dump ended.
pub enum Feed {
    /// Fed whole; how many DEFINER clauses were rewritten.
    Done(usize),
    ReadFailed(std::io::Error),
    WriteFailed(std::io::Error),
    /// A statement the scratch restore refuses, with its line number.
    Refused(usize, String),
}

/// With `boundaries`, a marker statement follows each table's rows (see [`super::early`]).
pub fn feed(
    dump: &mut dyn Read,
    to: &mut dyn Write,
    mut boundaries: Option<&mut Boundaries>,
) -> Feed {
    let mut reader = BufReader::with_capacity(1 << 20, dump);
    let mut to = std::io::BufWriter::with_capacity(1 << 20, to);
    let mut line = Vec::new();
    let mut rewritten = 0;
    let mut number = 0;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => number += 1,
            Err(e) => return Feed::ReadFailed(e),
        }
        let out: std::borrow::Cow<[u8]> = if line.starts_with(b"INSERT INTO ") {
            (&line[..]).into()
        } else {
            if let Some(refused) = switches_database(&line) {
                return Feed::Refused(number, refused);
            }
            match rewrite_definer(&line) {
                Some(new) => {
                    rewritten += 1;
                    new.into()
                }
                None => (&line[..]).into(),
            }
        };
        if let Err(e) = to.write_all(&out) {
            return Feed::WriteFailed(e);
        }
        if let Some(marker) = boundaries.as_mut().and_then(|b| b.after(&line))
            && let Err(e) = to.write_all(marker.as_bytes())
        {
            return Feed::WriteFailed(e);
        }
    }
    match to.flush() {
        Ok(()) => Feed::Done(rewritten),
        Err(e) => Feed::WriteFailed(e),
    }
}

/// `USE db` or `CREATE DATABASE` at the start of a line (plain or in a `/*!NNNNN ... */`
/// comment, as mysqldump writes them with `--databases`).
fn switches_database(line: &[u8]) -> Option<String> {
    // The statement's first words are all it looks at, found without copying the line (a row
    // of data can be a long one).
    let skip_space = |mut i: usize| {
        while line.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut at = skip_space(0);
    if line[at..].starts_with(b"/*!") {
        at += 3;
        while line.get(at).is_some_and(|b| b.is_ascii_digit()) {
            at += 1;
        }
        at = skip_space(at);
    }
    let upper = line[at..line.len().min(at + 16)].to_ascii_uppercase();
    let refused = upper.starts_with(b"USE ")
        || upper.starts_with(b"USE`")
        || upper.starts_with(b"CREATE DATABASE")
        || upper.starts_with(b"CREATE SCHEMA");
    refused.then(|| {
        String::from_utf8_lossy(line)
            .trim_end()
            .chars()
            .take(200)
            .collect()
    })
}

/// The line with every `DEFINER=<user>@<host>` replaced by `DEFINER=CURRENT_USER`, or `None`
/// when it has none.
fn rewrite_definer(line: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"DEFINER=";
    // Most lines (rows of data) have none: found by a fast search, not byte by byte.
    memchr::memmem::find(line, KEY)?;
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    let mut changed = false;
    while i < line.len() {
        if line[i..].starts_with(KEY) {
            let start = i + KEY.len();
            if let Some(end) = account_end(line, start) {
                out.extend_from_slice(b"DEFINER=CURRENT_USER");
                i = end;
                changed = true;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// Where `user@host` starting at `at` ends: each part backquoted (`` ` `` doubled inside) or
/// single-quoted, as `SHOW CREATE` prints them; `None` when it is not an account.
fn account_end(line: &[u8], at: usize) -> Option<usize> {
    let user_end = quoted_end(line, at)?;
    if line.get(user_end) != Some(&b'@') {
        return None;
    }
    quoted_end(line, user_end + 1)
}

fn quoted_end(line: &[u8], at: usize) -> Option<usize> {
    let quote = *line.get(at)?;
    if quote != b'`' && quote != b'\'' {
        return None;
    }
    let mut i = at + 1;
    while i < line.len() {
        if line[i] == quote {
            if line.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dump: &str) -> (String, Feed) {
        let mut out = Vec::new();
        let fed = feed(&mut dump.as_bytes(), &mut out, None);
        (String::from_utf8(out).unwrap(), fed)
    }

    #[test]
    fn definers_are_rewritten_outside_data_only() {
        let dump = "/*!50013 DEFINER=`gone`@`%` SQL SECURITY DEFINER */\n\
                    CREATE DEFINER=`o``dd`@`local host` PROCEDURE `p`()\n\
                    INSERT INTO `t` VALUES ('DEFINER=`x`@`y`');\n\
                    /*!50003 CREATE*/ /*!50017 DEFINER=`a`@`b`*/ /*!50003 TRIGGER t */;\n";
        let (out, fed) = run(dump);
        assert!(matches!(fed, Feed::Done(3)));
        assert_eq!(
            out,
            "/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n\
             CREATE DEFINER=CURRENT_USER PROCEDURE `p`()\n\
             INSERT INTO `t` VALUES ('DEFINER=`x`@`y`');\n\
             /*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER t */;\n"
        );
    }

    #[test]
    fn switching_database_is_refused() {
        for line in [
            "USE `sakila`;\n",
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `x`;\n",
            "/*!40000 CREATE DATABASE x */;\n",
            &format!("/*!40000{}create database x */;\n", " ".repeat(100)),
            &format!("{}\tUSE `x`;\n", " ".repeat(100)),
        ] {
            let (_, fed) = run(&format!("SET NAMES utf8mb4;\n{line}"));
            assert!(matches!(fed, Feed::Refused(2, _)), "{line}");
        }
        let (_, fed) = run("INSERT INTO `t` VALUES ('USE x');\n");
        assert!(matches!(fed, Feed::Done(0)));
    }
}
