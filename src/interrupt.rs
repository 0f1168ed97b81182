//! Ctrl-C, SIGTERM and SIGHUP end a command with complete files only: every
//! write of a temporary file, up to its rename or removal, runs while holding
//! one lock, and the signal handler takes that lock before it exits. So the
//! process never stops between creating a `.tmp` file and renaming it, and the
//! reports written so far (map's index.html, bench's JSON) stay valid.

use std::sync::{Mutex, PoisonError};

/// Held for the whole life of each temporary file.
static WRITING: Mutex<()> = Mutex::new(());

/// The exit status after an interrupt (128 + SIGINT, as shells report Ctrl-C).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Runs `write`, which creates a temporary file and renames or removes it
/// before returning, so that an interrupt arriving meanwhile waits for it.
/// `write` must not call this again (the lock is not re-entrant).
pub fn uninterrupted<T>(write: impl FnOnce() -> T) -> T {
    let _writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
    write()
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP: wait for a write under
/// way, say what was kept, exit with [`EXIT_INTERRUPTED`]. Call once, in main.
pub fn exit_cleanly_on_interrupt() -> Result<(), String> {
    ctrlc::set_handler(|| {
        // Never released: no temporary file is started after this.
        let _writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
        eprintln!("\ninterrupted: stopped; every file written so far is complete");
        exit_now(EXIT_INTERRUPTED);
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))
}

/// Ends the process at once with `code`. Every file is complete (the lock above), and stderr
/// is unbuffered. `std::process::exit` would run C atexit handlers, among them the GPU
/// driver's, which tear down its state while the main thread may be inside a submit: on
/// lavapipe that sometimes killed the process by a signal instead of exiting with `code`.
#[cfg(unix)]
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns; nothing after it relies on cleanup.
    unsafe { libc::_exit(code) }
}

#[cfg(not(unix))]
fn exit_now(code: i32) -> ! {
    std::process::exit(code)
}
