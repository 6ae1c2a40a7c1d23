//! Scratch databases on a server: how they are named and which leftovers a run may drop.
//! Shared by the engines that restore on a server (PostgreSQL, MySQL).
//!
//! A scratch database is `dbbackup_scratch_<pid>_<machine>_<random>`. A SIGKILL runs no
//! handler, so the next restore test on the same machine drops the ones whose process is gone.
//! `<machine>` (see `process::machine_tag`) lets runs on machines that share a server (CI
//! runners against one staging server) tell their own leftovers, whose processes they can
//! check, from another machine's, which they never touch.

use std::hash::{BuildHasher, Hasher};

/// What every scratch database's name starts with.
pub const PREFIX: &str = "dbbackup_scratch_";

/// A new scratch database's name: this process, this machine, and a random part.
pub fn new_name() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(
        "{PREFIX}{}_{}_{:08x}",
        std::process::id(),
        crate::process::machine_tag(),
        random as u32
    )
}

/// Whether `name` is a scratch database of this machine whose process is gone. Names
/// without a machine tag (older versions) are never, since whose they are cannot be told.
pub fn abandoned_here(name: &str) -> bool {
    abandoned(name, &crate::process::machine_tag())
}

fn abandoned(name: &str, ours: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.split('_');
    let (Some(pid), Some(tag), Some(_random), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    tag == ours && pid.parse().is_ok_and(|pid| !crate::process::alive(pid))
}

/// Why the restore test stopped when the login may not create its scratch database, and what
/// to do: a least-privilege backup role usually may not, and loading production with a nightly
/// restore is better avoided anyway, so the way out is another server.
pub fn may_not_create(user: &str, right: &str, example_url: &str) -> String {
    format!(
        "'{user}' may not create databases (it lacks {right}), and the restore test restores \
         into a scratch database of its own: restore-test on another server with \
         --restore-into {example_url} (in GitHub Actions a `services:` container of the job, \
         action input `restore-into`), or grant {right}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_scratch_of_dead_processes_is_abandoned() {
        let ours = crate::process::machine_tag();
        let live = std::process::id();
        // A pid above the kernel's maximum (4194304) never runs.
        let dead = 4_194_399;
        assert!(abandoned(
            &format!("dbbackup_scratch_{dead}_{ours}_0badcafe"),
            &ours
        ));
        assert!(!abandoned(
            &format!("dbbackup_scratch_{live}_{ours}_0badcafe"),
            &ours
        ));
        assert!(!abandoned(
            &format!("dbbackup_scratch_{dead}_00000000_0badcafe"),
            &ours
        ));
        assert!(!abandoned(
            &format!("dbbackup_scratch_{dead}_0badcafe"),
            &ours
        ));
        assert!(!abandoned(
            &format!("dbbackup_scratch_{dead}_{ours}_x_y"),
            &ours
        ));
        assert!(!abandoned(&format!("app_{dead}_{ours}_0badcafe"), &ours));
        let made = new_name();
        assert!(
            made.starts_with(&format!("{PREFIX}{live}_{ours}_")),
            "{made}"
        );
        assert!(!abandoned_here(&made), "a live run's own");
    }
}
