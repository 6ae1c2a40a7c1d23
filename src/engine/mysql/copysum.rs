//! The rows of a restored copy, dumped data-only by the same tool and data options as a
//! backup's and summed as the backup's were (`dumpsum`): a faithful copy sums the same. Apart
//! from the scratch database's life (`scratch`) so that the checks run while the restore
//! loads (`early`) use it too.

use std::collections::BTreeMap;
use std::process::Stdio;

use tracing::debug;

use super::conn::ConnInfo;
use super::dumpsum::{self, DumpSums};
use super::{MARIADB_DUMP, MYSQLDUMP};
use crate::engine::tool::Running;
use crate::error::{Error, Result};

/// Each table's rows, summed from a dump's data sections.
pub type Sections = BTreeMap<String, crate::engine::rowsum::RowSum>;

/// Dumps the rows of `tables` of `target.dbname` (all when none are named; data only: no
/// definitions, triggers, routines or events) and sums them per table.
pub fn dump_sums(target: &ConnInfo, version: &str, tables: &[String]) -> Result<Sections> {
    let began = std::time::Instant::now();
    let mariadb = version.contains("MariaDB");
    let tool = if mariadb { MARIADB_DUMP } else { MYSQLDUMP };
    let options = target.option_file()?;
    let mut command = super::dump_command(
        target,
        &options,
        mariadb,
        &["--no-create-info", "--skip-triggers", "--no-tablespaces"],
    );
    command
        .arg("--")
        .arg(&target.dbname)
        .args(tables)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tool.spawn(&mut command)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let running = Running::watch(&tool, child, None);
    let mut sums = DumpSums::new();
    let copied = dumpsum::copy_summing(&mut stdout, &mut std::io::sink(), &mut sums);
    drop(stdout);
    let finished = running.finish()?;
    let db = &target.dbname;
    if !finished.status.success() {
        return Err(restore_error(
            db,
            format!(
                "{} of the restored copy failed ({}): {}",
                tool.name, finished.status, finished.stderr
            ),
        ));
    }
    copied.map_err(|e| restore_error(db, format!("reading {}'s output: {e}", tool.name)))?;
    debug!(
        "dumped and summed the copy's rows in {:.2?}",
        began.elapsed()
    );
    sums.finish().map_err(|e| {
        restore_error(
            db,
            format!(
                "cannot count and checksum the rows of {}'s output: {e}",
                tool.name
            ),
        )
    })
}

pub fn restore_error(database: &str, reason: String) -> Error {
    Error::Verify {
        object: format!("restore into database {database}"),
        reason,
    }
}
