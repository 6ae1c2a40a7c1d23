//! Runs a SQL script streamed from a reader (being written by a helper; see issue 3).

use std::io::Read;

use rusqlite::Connection;

use crate::error::{Error, Result};

pub fn run(_conn: &Connection, _script: &mut dyn Read) -> Result<()> {
    Err(Error::Internal("SQL restore not implemented yet".into()))
}
