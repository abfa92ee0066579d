//! Scanning a watched root into a manifest: a plain directory, a single file, or a Kubernetes
//! volume whose truth is "the files under the directory `..data` points to".
//!
//! Kubernetes volumes are read as one snapshot: `..data` is resolved once, every file is read
//! through that timestamped directory, and `..data` must still point there at the end; if the
//! kubelet swapped or deleted it meanwhile, the scan is discarded and done again, so a digest
//! never mixes two snapshots. At the top level of every directory root, `..`-prefixed entries
//! (the kubelet's timestamped directories, `..data_tmp`) are skipped.

use crate::digest::{Entry, Hash, Hasher, Manifest, UNREADABLE};
use crate::log;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How often a snapshot is re-read when the kubelet swaps it mid-scan before giving up until the
/// next tick.
const SNAPSHOT_TRIES: usize = 5;

/// Why a scan concluded nothing: the loop keeps its last state and scans again later.
/// Equal errors are the same fault again (the loop logs a lasting one once).
#[derive(Debug)]
pub enum ScanError {
    /// A snapshot kept changing under the scan.
    Unstable(PathBuf),
    /// Out of file descriptors or memory: an unreadable marker would be a false change.
    Starved(PathBuf, io::Error),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ScanError::Unstable(root) => write!(
                f,
                "{}: ..data changed during {SNAPSHOT_TRIES} scans in a row",
                root.display()
            ),
            ScanError::Starved(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl PartialEq for ScanError {
    fn eq(&self, other: &ScanError) -> bool {
        match (self, other) {
            (ScanError::Unstable(a), ScanError::Unstable(b)) => a == b,
            (ScanError::Starved(a, e), ScanError::Starved(b, f)) => {
                a == b && e.kind() == f.kind() && e.raw_os_error() == f.raw_os_error()
            }
            _ => false,
        }
    }
}

impl Eq for ScanError {}

/// Why a walk stopped early.
enum Stop {
    /// The kubelet removed what we were reading: start the snapshot again.
    Torn,
    /// See `ScanError::Starved`.
    Starved(PathBuf, io::Error),
}

use Stop::Torn;

/// Errors that say nothing about the file: the process ran out of something.
fn is_starved(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
    )
}

/// Walks roots with one reused buffer and remembers what it warned about, so a problem is logged
/// once until it changes.
#[derive(Default)]
pub struct Scanner {
    hasher: Hasher,
    warned: HashSet<(PathBuf, &'static str)>,
    seen: HashSet<(PathBuf, &'static str)>,
    cache: Option<StatCache>,
    /// Files read and hashed so far (those taken from the stat cache are not).
    hashed: u64,
}

/// `--stat-cache`: the hash of a file is reused while its device, inode, size, mtime and ctime
/// stay the same. Git's racy-timestamp rule applies: a file modified less than `RACY` before
/// the scan that hashed it is hashed again next time, since a later write within the
/// timestamp's granularity could leave its times unchanged.
#[derive(Default)]
struct StatCache {
    files: HashMap<PathBuf, Cached>,
    /// Counts scans; entries not seen by the latest scan of their root are dropped.
    generation: u64,
    /// When the running scan began, in nanoseconds since the epoch.
    scan_start: i128,
}

const RACY: i128 = 2_000_000_000;

struct Cached {
    key: [i64; 7],
    hash: Hash,
    trusted: bool,
    generation: u64,
}

/// What must not change for a cached hash to hold, and what tells a file was replaced or
/// edited without reading it: device, inode, size, and the modification and change times (the
/// kubelet's swap gives a new inode; an edit in place a new size or time).
pub fn stat_key(m: &fs::Metadata) -> [i64; 7] {
    [
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ]
}

/// Where a walk reads from and how strict it is about files vanishing.
struct Walk {
    /// The directory the kubelet's snapshot lives in; vanishing files mean a torn read.
    snapshot: bool,
    /// Device and inode of every directory above the one being read, including the root's own
    /// ancestors: a symlink back to any of them is a loop (a link to `/` included).
    ancestors: Vec<(u64, u64)>,
    out: Vec<Entry>,
    bytes: u64,
}

impl Walk {
    fn new(snapshot: bool, ancestors: Vec<(u64, u64)>) -> Walk {
        Walk {
            snapshot,
            ancestors,
            out: Vec::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> Manifest {
        let mut m = Manifest::new(self.out);
        m.bytes = self.bytes;
        m
    }
}

impl Scanner {
    /// A scanner that reuses the hashes of files whose metadata did not change.
    pub fn with_stat_cache() -> Scanner {
        Scanner {
            cache: Some(StatCache::default()),
            ..Scanner::default()
        }
    }

    /// Scans every root, in order; a snapshot that kept changing fails the whole scan.
    pub fn scan_all(&mut self, roots: &[PathBuf]) -> Result<Vec<Manifest>, ScanError> {
        roots.iter().map(|r| self.scan(r)).collect()
    }

    /// Scans one root. A missing root has empty content.
    pub fn scan(&mut self, root: &Path) -> Result<Manifest, ScanError> {
        self.seen.clear();
        if let Some(c) = &mut self.cache {
            c.generation += 1;
            c.scan_start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128);
        }
        // A scan that concluded nothing says nothing about what went away.
        let manifest = self.scan_root(root)?;
        if let Some(c) = &mut self.cache {
            // Files of this root that are gone (or were in a snapshot that was replaced).
            let generation = c.generation;
            c.files
                .retain(|p, e| e.generation == generation || !p.starts_with(root));
        }
        // Forget warnings for problems that went away, so they are logged again if they return.
        let seen = std::mem::take(&mut self.seen);
        self.warned
            .retain(|w| seen.contains(w) || !w.0.starts_with(root));
        self.seen = seen;
        Ok(manifest)
    }

    fn scan_root(&mut self, root: &Path) -> Result<Manifest, ScanError> {
        let meta = match fs::metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Manifest::new(Vec::new())),
            Err(e) if is_starved(&e) => return Err(ScanError::Starved(root.to_path_buf(), e)),
            Err(e) => {
                self.warn_once(root, "unreadable", &e);
                return Ok(Manifest::new(vec![Entry {
                    path: b".".to_vec(),
                    hash: UNREADABLE,
                }]));
            }
        };
        if !meta.is_dir() {
            let name = root
                .file_name()
                .unwrap_or(root.as_os_str())
                .as_bytes()
                .to_vec();
            let mut walk = Walk::new(false, Vec::new());
            if let Err(Stop::Starved(path, e)) = self.file(&mut walk, root, name, Some(&meta)) {
                return Err(ScanError::Starved(path, e));
            }
            return Ok(walk.finish());
        }
        let data = root.join("..data");
        let is_link = fs::symlink_metadata(&data).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return match self.walk_root(root, root, false) {
                Ok(m) => Ok(m),
                Err(Torn) => Ok(Manifest::new(Vec::new())),
                Err(Stop::Starved(path, e)) => Err(ScanError::Starved(path, e)),
            };
        }
        for _ in 0..SNAPSHOT_TRIES {
            let Ok(before) = fs::read_link(&data) else {
                // `..data` went away: the layout changed, look again next tick.
                break;
            };
            match self.walk_root(root, &root.join(&before), true) {
                Ok(m) if fs::read_link(&data).is_ok_and(|after| after == before) => return Ok(m),
                Err(Stop::Starved(path, e)) => return Err(ScanError::Starved(path, e)),
                _ => {}
            }
            log::debug(
                "snapshot changed during scan, reading again",
                &[("root", &root.display())],
            );
        }
        Err(ScanError::Unstable(root.to_path_buf()))
    }

    fn walk_root(&mut self, root: &Path, dir: &Path, snapshot: bool) -> Result<Manifest, Stop> {
        let mut ancestors = Vec::new();
        if let Ok(canonical) = fs::canonicalize(root) {
            for a in canonical.ancestors().skip(1) {
                if let Ok(m) = fs::metadata(a) {
                    ancestors.push((m.dev(), m.ino()));
                }
            }
        }
        let mut walk = Walk::new(snapshot, ancestors);
        self.dir(&mut walk, dir, Vec::new())?;
        Ok(walk.finish())
    }

    /// Reads one directory; `rel` is its path relative to the root (empty for the root).
    fn dir(&mut self, walk: &mut Walk, dir: &Path, rel: Vec<u8>) -> Result<(), Stop> {
        let meta = match fs::metadata(dir) {
            Ok(m) => m,
            Err(e) => return self.unreadable(walk, dir, rel, &e),
        };
        let id = (meta.dev(), meta.ino());
        if walk.ancestors.contains(&id) {
            self.warn_once(
                dir,
                "symlink loop, not followed",
                &"links back to a directory above it",
            );
            return Ok(());
        }
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => return self.unreadable(walk, dir, rel, &e),
        };
        walk.ancestors.push(id);
        let mut result = Ok(());
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    result = self.unreadable(walk, dir, rel.clone(), &e);
                    break;
                }
            };
            let name = entry.file_name();
            if rel.is_empty() && name.as_bytes().starts_with(b"..") {
                continue;
            }
            let mut child_rel = rel.clone();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name.as_bytes());
            // A regular file by its directory entry is opened without a stat first (the open
            // file's own fstat decides); links and the rest are followed by `child`. The stat
            // cache needs the stat to decide without opening.
            let regular = self.cache.is_none() && entry.file_type().is_ok_and(|t| t.is_file());
            result = match regular {
                true => self.file(walk, &dir.join(&name), child_rel, None),
                false => self.child(walk, &dir.join(&name), child_rel),
            };
            if result.is_err() {
                break;
            }
        }
        walk.ancestors.pop();
        result
    }

    fn child(&mut self, walk: &mut Walk, path: &Path, rel: Vec<u8>) -> Result<(), Stop> {
        // Follows symlinks: a link to a file or directory counts as what it points to.
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => self.dir(walk, path, rel),
            Ok(m) if m.is_file() => self.file(walk, path, rel, Some(&m)),
            // FIFOs, sockets and devices are never opened: a FIFO blocks, /dev/zero never ends.
            Ok(_) => {
                self.note_once(path, "not a regular file, skipped");
                Ok(())
            }
            Err(e) if is_gone(&e) => {
                let dangling = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                if walk.snapshot && !dangling {
                    return Err(Torn);
                }
                if e.raw_os_error() == Some(libc::ELOOP) {
                    self.warn_once(path, "symlink loop, not followed", &e);
                } else {
                    self.note_once(path, "dangling symlink, skipped");
                }
                Ok(())
            }
            Err(e) => self.unreadable(walk, path, rel, &e),
        }
    }

    /// Hashes one regular file; `meta` is what the walk's stat saw, if it took one.
    fn file(
        &mut self,
        walk: &mut Walk,
        path: &Path,
        rel: Vec<u8>,
        meta: Option<&fs::Metadata>,
    ) -> Result<(), Stop> {
        if let (Some(c), Some(meta)) = (&mut self.cache, meta) {
            if let Some(e) = c.files.get_mut(path) {
                if e.trusted && e.key == stat_key(meta) {
                    e.generation = c.generation;
                    walk.bytes += meta.size();
                    walk.out.push(Entry {
                        path: rel,
                        hash: e.hash,
                    });
                    return Ok(());
                }
            }
        }
        // O_NONBLOCK: if a FIFO replaced the file since the stat, opening it must not block.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path);
        let mut file: File = match opened {
            Ok(f) => f,
            Err(e) if is_gone(&e) => return if walk.snapshot { Err(Torn) } else { Ok(()) },
            Err(e) => return self.unreadable(walk, path, rel, &e),
        };
        let opened_meta = match file.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                self.note_once(path, "not a regular file, skipped");
                return Ok(());
            }
            Err(e) => return self.unreadable(walk, path, rel, &e),
        };
        match self.hasher.hash_sized(&mut file, Some(opened_meta.len())) {
            Ok((hash, n)) => {
                self.hashed += 1;
                if let Some(c) = &mut self.cache {
                    let mtime = opened_meta.mtime() as i128 * 1_000_000_000
                        + opened_meta.mtime_nsec() as i128;
                    let entry = Cached {
                        key: stat_key(&opened_meta),
                        hash,
                        trusted: mtime < c.scan_start - RACY,
                        generation: c.generation,
                    };
                    c.files.insert(path.to_path_buf(), entry);
                }
                walk.bytes += n;
                walk.out.push(Entry { path: rel, hash });
                Ok(())
            }
            Err(e) => self.unreadable(walk, path, rel, &e),
        }
    }

    /// Lists a file or directory that could not be read with the marker, so fixing it is a change.
    fn unreadable(
        &mut self,
        walk: &mut Walk,
        path: &Path,
        rel: Vec<u8>,
        e: &io::Error,
    ) -> Result<(), Stop> {
        if is_gone(e) {
            // Deleted while we read: part of a torn snapshot, or simply gone from a plain tree.
            return if walk.snapshot { Err(Torn) } else { Ok(()) };
        }
        if is_starved(e) {
            let errno = e.raw_os_error().unwrap_or(libc::EMFILE);
            return Err(Stop::Starved(
                path.to_path_buf(),
                io::Error::from_raw_os_error(errno),
            ));
        }
        self.warn_once(path, "cannot read, listed as unreadable", e);
        let rel = if rel.is_empty() { b".".to_vec() } else { rel };
        walk.out.push(Entry {
            path: rel,
            hash: UNREADABLE,
        });
        Ok(())
    }

    fn warn_once(&mut self, path: &Path, what: &'static str, e: &dyn std::fmt::Display) {
        if self.first_time(path, what) {
            log::warn(what, &[("path", &path.display()), ("error", e)]);
        }
    }

    fn note_once(&mut self, path: &Path, what: &'static str) {
        if self.first_time(path, what) {
            log::debug(what, &[("path", &path.display())]);
        }
    }

    /// Marks `what` about `path` as seen in this scan; true unless it was already reported.
    fn first_time(&mut self, path: &Path, what: &'static str) -> bool {
        let key = (path.to_path_buf(), what);
        self.seen.insert(key.clone());
        self.warned.insert(key)
    }
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP)
}

/// A token that changes whenever a Kubernetes volume among `roots` is rewritten: where each
/// `..data` points (`readlink`, a few microseconds). Plain roots add nothing to it.
pub fn generation(data_links: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for link in data_links {
        fs::read_link(link).ok().hash(&mut h);
    }
    h.finish()
}

/// The name a root is known by in the state digest: the path as given.
pub fn root_label(root: &Path) -> &[u8] {
    OsStr::as_bytes(root.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hex;
    use std::os::unix::fs::symlink;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(name: &str) -> Tmp {
            let p = std::env::temp_dir()
                .join(format!("hashreload-volume-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Tmp(p)
        }
        fn write(&self, rel: &str, data: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn paths(m: &Manifest) -> Vec<String> {
        m.entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect()
    }

    #[test]
    fn walks_a_plain_tree_with_relative_paths() {
        let t = Tmp::new("plain");
        t.write("b.yml", "b");
        t.write("a/c.yml", "c");
        t.write("a/d/e.yml", "e");
        let m = Scanner::default().scan(&t.0).unwrap();
        assert_eq!(paths(&m), ["a/c.yml", "a/d/e.yml", "b.yml"]);
    }

    #[test]
    fn reads_through_data_and_ignores_dotdot_entries() {
        let t = Tmp::new("kube");
        t.write("..2026_01_01_00_00_00.1/prometheus.yml", "new");
        t.write("..2026_01_01_00_00_00.1/rules/a.yml", "rule");
        t.write("..2025_01_01_00_00_00.9/prometheus.yml", "orphan");
        symlink("..2026_01_01_00_00_00.1", t.0.join("..data")).unwrap();
        symlink("..data/prometheus.yml", t.0.join("prometheus.yml")).unwrap();
        symlink("..data/rules", t.0.join("rules")).unwrap();
        let m = Scanner::default().scan(&t.0).unwrap();
        assert_eq!(paths(&m), ["prometheus.yml", "rules/a.yml"]);
        // The same content in a plain directory has the same digest.
        let p = Tmp::new("kube-plain");
        p.write("prometheus.yml", "new");
        p.write("rules/a.yml", "rule");
        assert_eq!(
            hex(&m.digest),
            hex(&Scanner::default().scan(&p.0).unwrap().digest)
        );
    }

    #[test]
    fn generation_changes_with_data_only() {
        let t = Tmp::new("generation");
        t.write("..a/x", "1");
        t.write("..b/x", "2");
        let links = vec![t.0.join("..data"), PathBuf::from("/nonexistent/..data")];
        let none = generation(&links);
        symlink("..a", t.0.join("..data")).unwrap();
        let a = generation(&links);
        assert_ne!(a, none);
        assert_eq!(generation(&links), a, "stable while nothing changes");
        t.write("..a/x", "edited in place");
        assert_eq!(generation(&links), a, "only ..data counts");
        symlink("..b", t.0.join("..data_tmp")).unwrap();
        fs::rename(t.0.join("..data_tmp"), t.0.join("..data")).unwrap();
        assert_ne!(generation(&links), a);
    }

    /// Sets a file's mtime (and so its ctime to now).
    fn set_mtime(path: &Path, secs: i64) {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let times = [libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        }; 2];
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
            0
        );
    }

    #[test]
    fn the_stat_cache_reuses_hashes_only_while_metadata_holds() {
        let t = Tmp::new("statcache");
        t.write("old.yml", "aaaa");
        t.write("new.yml", "bbbb");
        let old = t.0.join("old.yml");
        set_mtime(&old, 1_000_000_000); // 2001: long settled
        let mut cached = Scanner::with_stat_cache();
        let first = cached.scan(&t.0).unwrap();
        // Same size, same mtime; only the ctime moves, so the cache must not trust it.
        fs::write(&old, "AAAA").unwrap();
        set_mtime(&old, 1_000_000_000);
        let second = cached.scan(&t.0).unwrap();
        assert_ne!(
            first.digest, second.digest,
            "a ctime change means hash again"
        );
        assert_eq!(second.digest, Scanner::default().scan(&t.0).unwrap().digest);
        // Unchanged metadata: the hash comes from the cache, even if bytes differ under it
        // (which only a write that restores every time stamp, ctime included, could do).
        let key = |p: &Path| stat_key(&fs::metadata(p).unwrap());
        let (before, hashed) = (key(&old), cached.hashed);
        let third = cached.scan(&t.0).unwrap();
        assert_eq!(key(&old), before);
        assert_eq!(third.digest, second.digest);
        assert_eq!(
            cached.hashed,
            hashed + 1,
            "only the racy new.yml was read again"
        );
        let c = cached.cache.as_ref().unwrap();
        assert!(c.files[&old].trusted, "an old mtime is trusted");
        assert!(
            !c.files[&t.0.join("new.yml")].trusted,
            "just written: racy, hashed every time"
        );
        // A removed file leaves the cache.
        fs::remove_file(&old).unwrap();
        cached.scan(&t.0).unwrap();
        assert!(!cached.cache.as_ref().unwrap().files.contains_key(&old));
    }

    #[test]
    fn single_file_root_uses_its_own_name() {
        let t = Tmp::new("single");
        t.write("prometheus.yml", "x");
        let m = Scanner::default()
            .scan(&t.0.join("prometheus.yml"))
            .unwrap();
        assert_eq!(paths(&m), ["prometheus.yml"]);
    }

    #[test]
    fn missing_root_is_empty() {
        let m = Scanner::default()
            .scan(Path::new("/nonexistent/hashreload"))
            .unwrap();
        assert!(m.entries.is_empty());
    }

    #[test]
    fn skips_loops_specials_and_dangling_links() {
        let t = Tmp::new("odd");
        t.write("real", "r");
        symlink(&t.0, t.0.join("loop")).unwrap();
        symlink("/", t.0.join("slash")).unwrap();
        symlink("/dev/zero", t.0.join("zero")).unwrap();
        symlink("nowhere", t.0.join("dangling")).unwrap();
        symlink("self", t.0.join("self")).unwrap();
        let fifo = std::ffi::CString::new(t.0.join("fifo").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let m = Scanner::default().scan(&t.0).unwrap();
        assert_eq!(paths(&m), ["real"]);
    }

    #[test]
    fn follows_symlinks_to_files_and_directories() {
        let t = Tmp::new("links");
        let other = Tmp::new("links-target");
        other.write("d/x", "x");
        other.write("f", "f");
        symlink(other.0.join("d"), t.0.join("d")).unwrap();
        symlink(other.0.join("f"), t.0.join("f")).unwrap();
        let m = Scanner::default().scan(&t.0).unwrap();
        assert_eq!(paths(&m), ["d/x", "f"]);
    }

    #[test]
    fn scan_errors_are_equal_when_the_same_fault_repeats() {
        let starved =
            |p: &str, errno| ScanError::Starved(p.into(), io::Error::from_raw_os_error(errno));
        assert_eq!(starved("/r/a", libc::EMFILE), starved("/r/a", libc::EMFILE));
        assert_ne!(starved("/r/a", libc::EMFILE), starved("/r/b", libc::EMFILE));
        assert_ne!(starved("/r/a", libc::EMFILE), starved("/r/a", libc::ENOMEM));
        let unstable = |p: &str| ScanError::Unstable(p.into());
        assert_eq!(unstable("/r"), unstable("/r"));
        assert_ne!(unstable("/r"), starved("/r", libc::EMFILE));
    }
}
