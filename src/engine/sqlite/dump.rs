//! SQL text dump of a SQLite database (being written by a helper; see issue 2).

use std::io::Write;

use rusqlite::Connection;

use crate::error::{Error, Result};

pub fn write_sql(_conn: &Connection, _out: &mut dyn Write) -> Result<()> {
    Err(Error::Internal("SQL dump not implemented yet".into()))
}
