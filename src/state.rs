//! The state file: what each target has acknowledged, so a restarted sidecar (or the next
//! `--once` run) delivers exactly what was missed. One line per target, `<digest>  <target>\n`,
//! written atomically: a temp file in the same directory, fsync, rename, fsync of the directory.

use crate::digest::{from_hex, hex, Hash};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The recorded digest per target name; `None` if there is no file yet.
pub fn read(path: &Path) -> io::Result<Option<Vec<(String, Hash)>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let parsed = line
            .split_once("  ")
            .and_then(|(h, name)| Some((name, from_hex(h)?)));
        let Some((name, hash)) = parsed else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a state file line: {line:?}"),
            ));
        };
        out.push((name.to_string(), hash));
    }
    Ok(Some(out))
}

/// The digest recorded for `target`, if any.
pub fn lookup(state: &[(String, Hash)], target: &str) -> Option<Hash> {
    state.iter().find(|(n, _)| n == target).map(|(_, h)| *h)
}

/// Replaces the file atomically: a reader sees the old state or the new one, never a mix.
pub fn write(path: &Path, entries: &[(&str, Hash)]) -> io::Result<()> {
    let mut text = String::new();
    for (name, hash) in entries {
        text.push_str(&hex(hash));
        text.push_str("  ");
        text.push_str(name);
        text.push('\n');
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("hashreload-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("state");
        assert_eq!(read(&f).unwrap(), None);
        write(
            &f,
            &[
                ("http://127.0.0.1:9090/-/reload", [1; 32]),
                ("exec:sh", [2; 32]),
            ],
        )
        .unwrap();
        let s = read(&f).unwrap().unwrap();
        assert_eq!(lookup(&s, "exec:sh"), Some([2; 32]));
        assert_eq!(lookup(&s, "http://127.0.0.1:9090/-/reload"), Some([1; 32]));
        assert_eq!(lookup(&s, "other"), None);
        write(&f, &[("exec:sh", [3; 32])]).unwrap();
        assert_eq!(
            read(&f).unwrap().unwrap(),
            vec![("exec:sh".to_string(), [3; 32])]
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["state"]);
        fs::write(&f, "garbage\n").unwrap();
        assert!(read(&f).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
