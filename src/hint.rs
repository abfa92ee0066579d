//! A wake-up hint for Kubernetes volumes: inotify on each root directory for `..data` being
//! renamed (or created) into it, which the kubelet does exactly when the content changes.
//!
//! Only ever a hint. A hint makes the loop read where `..data` points and scan at once if it
//! moved; the full re-hash every `--interval` stays the truth, and catches whatever inotify
//! misses. A root that cannot be watched (a missing root, inotify limits, a network or FUSE
//! filesystem whose changes made elsewhere raise no events) makes the loop check `..data` on a
//! timer instead. A root replaced by a new directory loses its watch; it is watched again after
//! the next full scan.

use crate::poll::Hint;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// inotify on the roots of a scan, for `..data` only.
pub struct DataWatch {
    fd: OwnedFd,
    /// Each root's path and its watch descriptor (-1: not watched).
    roots: Vec<(CString, i32)>,
}

/// Filesystems whose changes made by other machines raise no inotify events.
const REMOTE: [i64; 8] = [
    0x6969,      // NFS
    0x6573_5546, // FUSE
    0xFF53_4D42, // CIFS
    0xFE53_4D42, // SMB2
    0x0102_1997, // 9p
    0x00C3_6400, // Ceph
    0x0BD0_0BD0, // Lustre
    0x4750_4653, // GPFS
];

const MASK: u32 = libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_ONLYDIR;

impl DataWatch {
    pub fn new(roots: &[PathBuf]) -> io::Result<DataWatch> {
        // SAFETY: inotify_init1 has no preconditions; a valid fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let roots = roots
            .iter()
            .map(|r| {
                (
                    CString::new(r.as_os_str().as_bytes()).unwrap_or_default(),
                    -1,
                )
            })
            .collect();
        // SAFETY: fd was just returned by inotify_init1 and is not owned elsewhere.
        Ok(DataWatch {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            roots,
        })
    }

    /// Reads every queued event; true if one of them matters.
    fn drain(&mut self) -> bool {
        #[repr(C, align(8))]
        struct Buf([u8; 4096]);
        let mut buf = Buf([0; 4096]);
        let mut hit = false;
        loop {
            // SAFETY: reading into our own buffer of the length given.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), buf.0.as_mut_ptr().cast(), buf.0.len()) };
            if n <= 0 {
                return hit;
            }
            hit |= events_matter(&buf.0[..n as usize], &mut self.roots);
        }
    }
}

impl Hint for DataWatch {
    /// Watches every root directory (again); true when every change of a `..data` in them will
    /// raise a hint. A root that is a single file has no `..data` and needs no watch.
    fn arm(&mut self) -> bool {
        let mut all = true;
        for (path, wd) in &mut self.roots {
            // SAFETY: path is NUL-terminated; the fd is ours.
            let new = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), MASK) };
            if new < 0 {
                let e = io::Error::last_os_error();
                *wd = -1;
                all &= e.raw_os_error() == Some(libc::ENOTDIR);
                continue;
            }
            if *wd >= 0 && *wd != new {
                // The path now names another directory; the old watch is on one we left.
                // SAFETY: removing a stale watch descriptor of our own fd.
                unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), *wd) };
            }
            *wd = new;
            all &= !is_remote(path);
        }
        all
    }

    /// Sleeps up to `d`; returns early, true, when `..data` was renamed or created in a root, a
    /// watch was lost, or events overflowed.
    fn wait(&mut self, d: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return false;
        }
        self.drain()
    }
}

/// Walks a buffer of `inotify_event` records: `..data` appearing, a lost watch (its root is
/// marked unwatched) or a queue overflow matter; anything else in a root does not.
fn events_matter(mut buf: &[u8], roots: &mut [(CString, i32)]) -> bool {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut hit = false;
    while buf.len() >= HEADER {
        let int = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
        let (wd, mask, len) = (int(0) as i32, int(4), int(12) as usize);
        let name = buf.get(HEADER..HEADER + len).unwrap_or_default();
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        if mask & libc::IN_IGNORED != 0 {
            for (_, w) in roots.iter_mut().filter(|(_, w)| *w == wd) {
                *w = -1;
            }
            hit = true;
        }
        hit |= mask & libc::IN_Q_OVERFLOW != 0 || name == b"..data";
        buf = buf.get(HEADER + len..).unwrap_or_default();
    }
    hit
}

fn is_remote(path: &CString) -> bool {
    // SAFETY: a zeroed statfs is a valid out-parameter; path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    REMOTE.contains(&(st.f_type as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hashreload-hint-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_data_rename_wakes_and_other_names_do_not() {
        let root = tmp("rename");
        let mut w = DataWatch::new(std::slice::from_ref(&root)).unwrap();
        assert!(w.arm());
        fs::write(root.join("other"), "x").unwrap();
        std::os::unix::fs::symlink("..2026", root.join("..data_tmp")).unwrap();
        assert!(
            !w.wait(Duration::from_millis(50)),
            "other names are no hint"
        );
        fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        let start = Instant::now();
        assert!(w.wait(Duration::from_secs(5)));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!w.wait(Duration::ZERO), "the queue was drained");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_replaced_root_loses_its_watch_until_armed_again() {
        let root = tmp("replaced");
        let mut w = DataWatch::new(std::slice::from_ref(&root)).unwrap();
        assert!(w.arm());
        fs::remove_dir_all(&root).unwrap();
        assert!(w.wait(Duration::from_secs(5)), "a lost watch is a hint");
        assert!(!w.arm(), "a missing root cannot be watched");
        fs::create_dir_all(&root).unwrap();
        assert!(w.arm());
        std::os::unix::fs::symlink("..2026", root.join("..data")).unwrap();
        assert!(w.wait(Duration::from_secs(5)));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_file_root_needs_no_watch() {
        let root = tmp("file");
        let file = root.join("f");
        fs::write(&file, "x").unwrap();
        let mut w = DataWatch::new(&[file]).unwrap();
        assert!(w.arm());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn parses_packed_events() {
        let event = |wd: i32, mask: u32, name: &[u8]| {
            let mut e = Vec::new();
            let len = name.len().div_ceil(16) * 16;
            for v in [wd as u32, mask, 0, len as u32] {
                e.extend_from_slice(&v.to_ne_bytes());
            }
            e.extend_from_slice(name);
            e.resize(16 + len, 0);
            e
        };
        let mut roots = vec![
            (CString::new("/a").unwrap(), 1),
            (CString::new("/b").unwrap(), 2),
        ];
        let mut buf = event(1, libc::IN_CREATE, b"..data_tmp");
        assert!(!events_matter(&buf, &mut roots));
        buf.extend(event(1, libc::IN_MOVED_TO, b"..data"));
        assert!(events_matter(&buf, &mut roots));
        assert!(events_matter(
            &event(-1, libc::IN_Q_OVERFLOW, b""),
            &mut roots
        ));
        assert!(events_matter(&event(2, libc::IN_IGNORED, b""), &mut roots));
        assert_eq!((roots[0].1, roots[1].1), (1, -1));
        assert!(!events_matter(
            &event(1, libc::IN_MOVED_TO, b"..data2"),
            &mut roots
        ));
    }
}
