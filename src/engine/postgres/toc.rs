//! The `TABLE DATA` entries of the `toc.dat` that `pg_dump -Fd` writes: which data file holds
//! which table's rows, and the `COPY` statement they load with.
//!
//! `pg_restore -l` lists the entries but not their `COPY` statements, and its names are not
//! quoted, so the binary TOC is read directly. Its layout is `ReadHead` and `ReadToc` in
//! PostgreSQL's `src/bin/pg_dump/pg_backup_archiver.c`, plus the file name the directory
//! format appends to each entry (`_ReadExtraToc` in `pg_backup_directory.c`). Archive versions
//! 1.12 to 1.16 are read (written by `pg_dump` 9.x to 18): an archive of any other version is
//! refused rather than guessed at.

/// One `TABLE DATA` entry with a data file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TableData {
    /// `COPY schema.table (cols) FROM stdin;` (the trailing newline removed).
    pub copy_stmt: String,
    /// The file's name as the TOC gives it (`NNNN.dat`; `pg_dump` adds `.gz` when it
    /// compresses).
    pub file: String,
}

/// The newest `pg_dump` major (as `version::major` gives it) whose archive version (1.16) this
/// reader knows; a newer one's directory dumps are summed by the server instead.
pub(super) const NEWEST_PG_DUMP: u32 = 180000;

const fn version(major: u32, minor: u32) -> u32 {
    (major * 256 + minor) * 256
}

struct Reader<'a> {
    bytes: &'a [u8],
    int_size: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.bytes.split_first().ok_or("toc.dat ends early")?;
        self.bytes = rest;
        Ok(b)
    }

    /// `ReadInt`: a sign byte, then `int_size` bytes, least significant first.
    fn int(&mut self) -> Result<i64, String> {
        let negative = self.byte()? != 0;
        let mut value: i64 = 0;
        for i in 0..self.int_size {
            let b = i64::from(self.byte()?);
            if i < 8 {
                value |= b << (8 * i);
            }
        }
        Ok(if negative { -value } else { value })
    }

    /// `ReadStr`: a length (`-1` for NULL), then that many bytes.
    fn str(&mut self) -> Result<Option<Vec<u8>>, String> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| "a string length out of range in toc.dat")?;
        if len > self.bytes.len() {
            return Err("toc.dat ends inside a string".into());
        }
        let (s, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(Some(s.to_vec()))
    }

    fn text(&mut self) -> Result<Option<String>, String> {
        self.str()?
            .map(|s| String::from_utf8(s).map_err(|_| "a string in toc.dat is not UTF-8".into()))
            .transpose()
    }
}

/// The `TABLE DATA` entries of a directory-format `toc.dat` that have a data file.
pub(super) fn table_data(toc: &[u8]) -> Result<Vec<TableData>, String> {
    let rest = toc
        .strip_prefix(b"PGDMP")
        .ok_or("toc.dat does not begin with PGDMP")?;
    let mut r = Reader {
        bytes: rest,
        int_size: 4,
    };
    let (major, minor, rev) = (r.byte()?, r.byte()?, r.byte()?);
    let v = version(major.into(), minor.into()) + u32::from(rev);
    if !(version(1, 12)..version(1, 17)).contains(&v) {
        return Err(format!(
            "toc.dat is of archive version {major}.{minor}, which dbbackup cannot read \
             (1.12 to 1.16)"
        ));
    }
    r.int_size = r.byte()?.into();
    if !(1..=32).contains(&r.int_size) {
        return Err(format!("toc.dat gives an integer size of {}", r.int_size));
    }
    let _off_size = r.byte()?;
    let format = r.byte()?;
    // archDirectory in pg_backup.h's ArchiveFormat.
    if format != 3 {
        return Err(format!(
            "toc.dat is of archive format {format}, not the directory format (3)"
        ));
    }
    if v >= version(1, 15) {
        let _compression_algorithm = r.byte()?;
    } else {
        let _compression = r.int()?;
    }
    for _ in 0..7 {
        let _created = r.int()?;
    }
    let _dbname = r.str()?;
    let _server_version = r.str()?;
    let _pg_dump_version = r.str()?;

    let count = r.int()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let _dump_id = r.int()?;
        let _had_dumper = r.int()?;
        let _tableoid = r.str()?;
        let _oid = r.str()?;
        let tag = r.text()?.unwrap_or_default();
        let desc = r.text()?.unwrap_or_default();
        let _section = r.int()?;
        let _defn = r.str()?;
        let _drop = r.str()?;
        let copy_stmt = r.text()?;
        let _namespace = r.str()?;
        let _tablespace = r.str()?;
        if v >= version(1, 14) {
            let _tableam = r.str()?;
        }
        if v >= version(1, 16) {
            let _relkind = r.int()?;
        }
        let _owner = r.str()?;
        let _with_oids = r.str()?;
        while r.str()?.is_some() {} // dependencies, ended by a NULL
        let file = r.text()?.unwrap_or_default();
        if desc != "TABLE DATA" || file.is_empty() {
            continue;
        }
        let copy_stmt = copy_stmt
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("the TABLE DATA entry of {tag} in toc.dat has no COPY"))?;
        entries.push(TableData {
            copy_stmt: copy_stmt.trim_end_matches('\n').to_string(),
            file,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(out: &mut Vec<u8>, v: i64) {
        out.push(u8::from(v < 0));
        out.extend_from_slice(&(v.unsigned_abs() as u32).to_le_bytes());
    }

    fn str(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => int(out, -1),
            Some(s) => {
                int(out, s.len() as i64);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// A TOC as `pg_dump` 17 writes it (archive 1.16): a schema entry, two TABLE DATA.
    fn toc(minor: u8) -> Vec<u8> {
        let mut t = b"PGDMP".to_vec();
        t.extend_from_slice(&[1, minor, 0, 4, 8, 3]);
        if minor >= 15 {
            t.push(1);
        } else {
            int(&mut t, 0);
        }
        (0..7).for_each(|_| int(&mut t, 1));
        for s in ["db", "17.0", "17.0"] {
            str(&mut t, Some(s));
        }
        int(&mut t, 3);
        for (id, desc, copy, file) in [
            (1, "TABLE", None, ""),
            (
                2,
                "TABLE DATA",
                Some("COPY public.\"a b\" (x) FROM stdin;\n"),
                "2.dat",
            ),
            (
                3,
                "TABLE DATA",
                Some("COPY public.c  FROM stdin;\n"),
                "3.dat",
            ),
        ] {
            int(&mut t, id);
            int(&mut t, 1);
            str(&mut t, Some("1259"));
            str(&mut t, Some("16384"));
            str(&mut t, Some("tag"));
            str(&mut t, Some(desc));
            int(&mut t, 2);
            str(&mut t, Some(""));
            str(&mut t, Some(""));
            str(&mut t, copy);
            str(&mut t, Some("public"));
            str(&mut t, Some(""));
            if minor >= 14 {
                str(&mut t, Some("heap"));
            }
            if minor >= 16 {
                int(&mut t, i64::from(b'r'));
            }
            str(&mut t, Some("postgres"));
            str(&mut t, Some("false"));
            str(&mut t, Some("1"));
            str(&mut t, None);
            str(&mut t, Some(file));
        }
        t
    }

    #[test]
    fn reads_table_data_entries_of_each_version() {
        for minor in [14, 15, 16] {
            let entries = table_data(&toc(minor)).unwrap();
            assert_eq!(
                entries,
                [
                    TableData {
                        copy_stmt: "COPY public.\"a b\" (x) FROM stdin;".into(),
                        file: "2.dat".into()
                    },
                    TableData {
                        copy_stmt: "COPY public.c  FROM stdin;".into(),
                        file: "3.dat".into()
                    }
                ],
                "1.{minor}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let mut t = toc(16);
        t[6] = 17;
        assert!(table_data(&t).unwrap_err().contains("1.17"));
        let t = toc(16);
        assert!(table_data(&t[..t.len() - 3]).unwrap_err().contains("ends"));
        assert!(table_data(b"PGDMX").unwrap_err().contains("PGDMP"));
    }
}
