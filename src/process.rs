//! Our own process: SIGTERM/SIGINT, the COMMAND's process group, and reaping children.
//!
//! Shutdown must be immediate also while blocked in a read or a request, and also as PID 1, where
//! the kernel installs no default action. A handler that only sets a flag waits for the blocking
//! call to return (ureq retries interrupted reads), so the handler ends the COMMAND's process group
//! and calls `_exit(0)` itself. Everything in it is async-signal-safe: no allocation, no locks.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// The process group of the running COMMAND, or 0.
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);

pub fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

extern "C" fn on_signal(sig: libc::c_int) {
    let group = CHILD_GROUP.load(Ordering::SeqCst);
    // SAFETY: kill, clock_gettime, write and _exit are async-signal-safe.
    unsafe {
        if group > 0 {
            libc::kill(-group, libc::SIGKILL);
        }
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        let ms = ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
        let mut buf = [0u8; 160];
        let n = shutdown_line(ms, sig == libc::SIGINT, crate::log::is_json(), &mut buf);
        libc::write(2, buf.as_ptr().cast(), n);
        libc::_exit(0);
    }
}

/// The last log line, written into `buf` without allocating.
fn shutdown_line(unix_ms: u64, int: bool, json: bool, buf: &mut [u8; 160]) -> usize {
    let mut ts = [0u8; 24];
    let ts = crate::log::timestamp(unix_ms, &mut ts);
    let sig = if int { "INT" } else { "TERM" };
    let parts: [&str; 5] = if json {
        [
            "{\"ts\":\"",
            ts,
            "\",\"level\":\"info\",\"msg\":\"shutting down\",\"signal\":\"",
            sig,
            "\"}\n",
        ]
    } else {
        [
            "ts=",
            ts,
            " level=info msg=\"shutting down\" signal=",
            sig,
            "\n",
        ]
    };
    let mut n = 0;
    for p in parts {
        buf[n..n + p.len()].copy_from_slice(p.as_bytes());
        n += p.len();
    }
    n
}

/// Runs `f` with SIGTERM/SIGINT blocked in the calling thread, then restores its mask.
fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: plain sigset manipulation on local sets.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// Starts a thread that never takes SIGTERM/SIGINT (it inherits the blocked mask): only the
/// loop thread handles them, so a signal cannot land on another thread while the loop is
/// between forking the COMMAND and recording its process group.
pub fn spawn_thread<T: Send + 'static>(
    name: &str,
    stack: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    let builder = std::thread::Builder::new()
        .name(name.into())
        .stack_size(stack);
    with_signals_blocked(|| builder.spawn(f))
}

/// Runs `spawn` with SIGTERM/SIGINT blocked and records the child's process group, so a signal
/// can never land between the fork and the record and leave the child behind.
pub fn spawn_group<T>(spawn: impl FnOnce() -> io::Result<(T, i32)>) -> io::Result<T> {
    with_signals_blocked(|| {
        spawn().map(|(child, pid)| {
            CHILD_GROUP.store(pid, Ordering::SeqCst);
            child
        })
    })
}

/// The COMMAND has been waited for: nothing to end at shutdown any more.
pub fn clear_group() {
    CHILD_GROUP.store(0, Ordering::SeqCst);
}

/// Kills a whole process group.
pub fn kill_group(pgid: i32) {
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Whether we are PID 1 of our namespace, where orphans are handed to us (asked once: musl
/// makes getpid a syscall, and the loop asks at every wake).
pub fn is_init() -> bool {
    static INIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INIT.get_or_init(|| std::process::id() == 1)
}

/// Reaps every exited child without blocking: our COMMAND, and, as PID 1, the orphans the kernel
/// hands us. Returns the exit status of `pid` if it was among them.
pub fn reap(pid: i32) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return found;
        }
        if r == pid {
            found = Some(status);
        }
    }
}

/// A wait status as text: `exit status 3` or `killed by signal 9`.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether SIGTERM and SIGINT are blocked in the calling thread.
    fn both_blocked() -> bool {
        // SAFETY: reads the calling thread's mask into a local set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
            libc::sigismember(&set, libc::SIGTERM) == 1
                && libc::sigismember(&set, libc::SIGINT) == 1
        }
    }

    #[test]
    fn threads_we_start_never_take_sigterm_or_sigint() {
        assert!(
            !both_blocked(),
            "the test thread starts with them unblocked"
        );
        let inside = spawn_thread("t", 64 * 1024, both_blocked)
            .unwrap()
            .join()
            .unwrap();
        assert!(inside, "blocked in the new thread");
        assert!(!both_blocked(), "and unblocked again in the caller");
    }

    #[test]
    fn shutdown_line_in_both_formats() {
        let mut buf = [0; 160];
        let n = shutdown_line(0, false, false, &mut buf);
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "ts=1970-01-01T00:00:00.000Z level=info msg=\"shutting down\" signal=TERM\n"
        );
        let n = shutdown_line(0, true, true, &mut buf);
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"shutting down\",\"signal\":\"INT\"}\n"
        );
    }

    #[test]
    fn describes_wait_statuses() {
        assert_eq!(describe_status(3 << 8), "exit status 3");
        assert_eq!(describe_status(9), "killed by signal 9");
    }
}
