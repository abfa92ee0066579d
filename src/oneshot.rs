//! One pass, for jobs and pipelines: `hashreload digest` (print the manifest or the state digest,
//! check it with `--expect`) and `--once` (deliver if the content differs from the state file,
//! then record it). Exit codes: 0 unchanged or delivered, 1 a delivery failed (state untouched),
//! 2 usage, 3 the content is not the expected one.

use crate::approval::{self, Expect};
use crate::cli::{DigestConfig, Output};
use crate::digest::{self, hex, Hash, Manifest};
use crate::poll::{self, Clock, Settings};
use crate::target::Deliver;
use crate::{log, state, volume, Exit};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Scans every root once (a snapshot that keeps changing is a runtime failure).
fn scan(paths: &[PathBuf]) -> Result<Vec<Manifest>, volume::ScanError> {
    volume::Scanner::default().scan_all(paths)
}

fn labels(paths: &[PathBuf]) -> Vec<&[u8]> {
    paths.iter().map(|p| volume::root_label(p)).collect()
}

/// `hashreload digest`.
pub fn digest_command(cfg: DigestConfig) -> Exit {
    let manifests = match scan(&cfg.paths) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("hashreload: {e}");
            return Exit::Failed;
        }
    };
    let labels = labels(&cfg.paths);
    let roots: Vec<(&[u8], &Manifest)> = labels.iter().copied().zip(&manifests).collect();
    let text = digest::state_text(&roots);
    let digest = digest::state_digest(&roots);
    let out = match cfg.output {
        Output::Manifest => text.clone(),
        Output::Sum => format!("{}\n", hex(&digest)).into_bytes(),
        Output::Json => json(&roots, &digest).into_bytes(),
    };
    if std::io::stdout().lock().write_all(&out).is_err() {
        return Exit::Failed;
    }
    match cfg
        .expect
        .map(|e| approval::check(&text, &digest, &e, false))
    {
        Some(Err(msg)) => {
            eprintln!("hashreload: {msg}");
            Exit::Differs
        }
        _ => Exit::Ok,
    }
}

/// Roots, files, hashes and the state digest as one JSON document. Names that are not UTF-8 are
/// shown with U+FFFD; an unreadable file has `"sha256": null`.
fn json(roots: &[(&[u8], &Manifest)], digest: &Hash) -> String {
    let mut o = String::from("{\"digest\":\"");
    o.push_str(&hex(digest));
    o.push_str("\",\"roots\":[");
    for (i, (label, m)) in roots.iter().enumerate() {
        o.push_str(if i == 0 { "{\"root\":" } else { ",{\"root\":" });
        log::json_string(&mut o, &String::from_utf8_lossy(label));
        o.push_str(&format!(",\"digest\":\"{}\",\"files\":[", hex(&m.digest)));
        for (j, e) in m.entries.iter().enumerate() {
            o.push_str(if j == 0 { "{\"path\":" } else { ",{\"path\":" });
            log::json_string(&mut o, &String::from_utf8_lossy(&e.path));
            if e.hash == digest::UNREADABLE {
                o.push_str(",\"sha256\":null}");
            } else {
                o.push_str(&format!(",\"sha256\":\"{}\"}}", hex(&e.hash)));
            }
        }
        o.push_str("]}");
    }
    o.push_str("]}\n");
    o
}

/// `--once`: one scan, `--expect`, then delivery to every target whose recorded digest differs,
/// and the state written only when all of them succeeded.
pub fn once<C: Clock, T: Deliver>(
    clock: &C,
    paths: &[PathBuf],
    targets: &mut [T],
    settings: &Settings,
    attempts: u32,
    state_file: Option<&Path>,
    expect: Option<&Expect>,
) -> Exit {
    let manifests = match scan(paths) {
        Ok(m) => m,
        Err(e) => {
            log::error("scan failed", &[("error", &e)]);
            return Exit::Failed;
        }
    };
    let labels = labels(paths);
    let roots: Vec<(&[u8], &Manifest)> = labels.iter().copied().zip(&manifests).collect();
    let digest = digest::state_digest(&roots);
    let files: usize = manifests.iter().map(|m| m.entries.len()).sum();
    log::info(
        "scanned once",
        &[("digest", &settings.shown(&digest)), ("files", &files)],
    );
    if let Some(expect) = expect {
        let text = digest::state_text(&roots);
        if let Err(msg) = approval::check(&text, &digest, expect, settings.hides()) {
            log::error("refusing to deliver", &[("reason", &msg)]);
            return Exit::Differs;
        }
    }
    let recorded = match state_file.map(state::read).transpose() {
        Ok(r) => r.flatten(),
        Err(e) => {
            log::warn(
                "state file unreadable, delivering to every target",
                &[("error", &e)],
            );
            None
        }
    };
    let pending: Vec<bool> = targets
        .iter()
        .map(|t| recorded.as_deref().and_then(|r| state::lookup(r, t.name())) != Some(digest))
        .collect();
    if !pending.contains(&true) {
        log::info(
            "unchanged since the recorded state, nothing to deliver",
            &[],
        );
        return Exit::Ok;
    }
    if !poll::deliver_once(clock, targets, &pending, &digest, attempts, settings) {
        return Exit::Failed;
    }
    if let Some(f) = state_file {
        let entries: Vec<(&str, Hash)> = targets.iter().map(|t| (t.name(), digest)).collect();
        if let Err(e) = state::write(f, &entries) {
            log::error(
                "cannot write the state file",
                &[("path", &f.display()), ("error", &e)],
            );
            return Exit::Failed;
        }
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_roots_files_and_the_digest() {
        let m = Manifest::new(vec![
            digest::Entry {
                path: b"a \"q\"".to_vec(),
                hash: [1; 32],
            },
            digest::Entry {
                path: b"bad\xff".to_vec(),
                hash: digest::UNREADABLE,
            },
        ]);
        let j = json(&[(b"/r", &m)], &m.digest);
        assert!(j.starts_with(&format!(
            "{{\"digest\":\"{}\",\"roots\":[{{\"root\":\"/r\"",
            hex(&m.digest)
        )));
        assert!(
            j.contains("{\"path\":\"a \\\"q\\\"\",\"sha256\":\"0101"),
            "{j}"
        );
        assert!(
            j.contains("{\"path\":\"bad\u{fffd}\",\"sha256\":null}"),
            "{j}"
        );
    }
}
