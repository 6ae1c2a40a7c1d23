//! Process-wide settings the binary makes first, before any thread starts.

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
