//! Process-wide settings the binary makes first, before any thread starts, and what is left
//! behind by processes that are gone.

use std::path::Path;

/// Sets up the process for a backup run; call once, first thing in `main`.
pub fn configure() {
    ignore_file_size_signal();
}

/// Past a file size limit (`ulimit -f`) the kernel kills a writer with SIGXFSZ, and the backup
/// would end with no word of why. Ignored, the write fails with EFBIG instead, which is
/// reported like a full disk: which file, why, what to do.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Removes the directories in `dir` named `<prefix><pid>-…` whose process is gone: leftovers
/// of a crash or a SIGKILL, which skip every destructor and signal handler.
pub fn remove_abandoned_dirs(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// This machine, in 8 hex digits: a hash of its machine id (`/etc/machine-id`), else of its
/// host name. Scratch resources on a server several machines share (a database server CI
/// runners restore-test against) carry it, so that a run can tell its own machine's leftovers,
/// whose processes it can check, from another machine's, which it must never touch.
pub fn machine_tag() -> String {
    use sha2::{Digest, Sha256};
    let id = [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/proc/sys/kernel/hostname",
    ]
    .iter()
    .find_map(|p| {
        std::fs::read_to_string(p)
            .ok()
            .filter(|s| !s.trim().is_empty())
    })
    .unwrap_or_default();
    let digest = Sha256::digest(id.trim().as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether process `pid` of this machine is running.
pub fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Without a cheap portable check, assume alive: a leftover costs disk, a wrong
        // removal would cost a running backup.
        true
    }
}
