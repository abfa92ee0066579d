//! `--expect`: the content a run may deliver, as a state digest or as a manifest (`@FILE`, as
//! `hashreload digest` prints it) whose lines also name what differs. `hashreload digest` and
//! `--once` check it once; the daemon holds content that is not the approved one (`Gate`), and
//! re-reads FILE at every full scan, so the approval can be a ConfigMap a pipeline updates.

use crate::digest::{self, hex, Hash};
use crate::log;
use std::path::PathBuf;

/// The content a run must find.
#[derive(Debug, PartialEq, Eq)]
pub enum Expect {
    Digest(Hash),
    /// A manifest, and the file it was read from.
    Manifest(Vec<u8>, PathBuf),
}

impl Expect {
    /// `DIGEST` (64 hex digits, either case) or `@FILE`; the error names `flag`.
    pub fn parse(flag: &str, v: &str) -> Result<Expect, String> {
        if let Some(file) = v.strip_prefix('@') {
            return match std::fs::read(file) {
                Ok(text) => Ok(Expect::Manifest(text, PathBuf::from(file))),
                Err(e) => Err(format!("{flag} @{file}: {e}")),
            };
        }
        match digest::from_hex(&v.to_ascii_lowercase()) {
            Some(h) => Ok(Expect::Digest(h)),
            None => Err(format!(
                "{flag} {v}: expected a SHA-256 digest (64 hex digits) or @FILE holding a manifest"
            )),
        }
    }

    /// The state digest this expects: a manifest's is its SHA-256.
    pub fn digest(&self) -> Hash {
        match self {
            Expect::Digest(h) => *h,
            Expect::Manifest(m, _) => {
                use sha2::Digest as _;
                sha2::Sha256::digest(m).into()
            }
        }
    }

    /// The approved manifest's file, for `@FILE`.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Expect::Digest(_) => None,
            Expect::Manifest(_, f) => Some(f),
        }
    }
}

/// What differs from an expected manifest, by name (escaped as in the manifest).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Differences<'a> {
    pub changed: Vec<&'a [u8]>,
    pub missing: Vec<&'a [u8]>,
    pub unexpected: Vec<&'a [u8]>,
}

impl Differences<'_> {
    /// Each kind of difference by the name the messages give it.
    pub fn kinds(&self) -> [(&'static str, &[&[u8]]); 3] {
        [
            ("changed", &self.changed),
            ("missing", &self.missing),
            ("unexpected", &self.unexpected),
        ]
    }
}

/// Compares the content's state text with the expected manifest, line by line.
pub fn differences<'a>(text: &'a [u8], expected: &'a [u8]) -> Differences<'a> {
    let (have, want) = (
        digest::manifest_lines(text),
        digest::manifest_lines(expected),
    );
    let lookup = |lines: &[(&[u8], &[u8])], name: &[u8]| {
        lines
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.to_vec())
    };
    let mut d = Differences::default();
    for (name, hash) in &want {
        match lookup(&have, name) {
            None => d.missing.push(*name),
            Some(h) if h != *hash => d.changed.push(*name),
            Some(_) => {}
        }
    }
    for (name, _) in &have {
        if lookup(&want, name).is_none() {
            d.unexpected.push(*name);
        }
    }
    d
}

/// `--once` and `digest`: Ok when the content is the expected one, else a message naming both
/// digests (unless `hide`) and, for a manifest, one line per file that differs.
pub fn check(text: &[u8], found: &Hash, expect: &Expect, hide: bool) -> Result<(), String> {
    let want = expect.digest();
    if want == *found {
        return Ok(());
    }
    let mut msg = match hide {
        true => "content does not match the expected digest".to_string(),
        false => format!(
            "content does not match: expected {}, found {}",
            hex(&want),
            hex(found)
        ),
    };
    if let Expect::Manifest(m, _) = expect {
        let d = differences(text, m);
        for (kind, names) in d.kinds() {
            for name in names {
                msg.push_str(&format!("\n{kind}: {}", String::from_utf8_lossy(name)));
            }
        }
    }
    Err(msg)
}

/// Names for a log field: the first few, then how many more.
fn listed(names: &[&[u8]]) -> String {
    const SHOWN: usize = 10;
    let mut s = String::new();
    for (i, name) in names.iter().take(SHOWN).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&String::from_utf8_lossy(name));
    }
    if names.len() > SHOWN {
        s.push_str(&format!(",+{} more", names.len() - SHOWN));
    }
    s
}

/// The daemon's `--expect`: which state digest may be delivered, kept current from FILE.
pub struct Gate {
    expect: Expect,
    want: Hash,
    /// The last error reading FILE, logged once until it changes.
    read_error: Option<String>,
    /// The content and expectation last reported as held: each pair is logged once.
    logged: Option<(Hash, Hash)>,
    /// Digests are not logged (`--secret-path`).
    hide: bool,
}

impl Gate {
    pub fn new(expect: Expect, hide: bool) -> Gate {
        Gate {
            want: expect.digest(),
            expect,
            read_error: None,
            logged: None,
            hide,
        }
    }

    /// Reads FILE again; a new approved manifest replaces the old one. An unreadable FILE keeps
    /// the last one (a gate that opened because its ConfigMap went away would not be a gate).
    pub fn refresh(&mut self) {
        let Some(file) = self.expect.file().cloned() else {
            return;
        };
        match std::fs::read(&file) {
            Ok(text) => {
                if self.read_error.take().is_some() {
                    log::info("--expect file readable again", &[("path", &file.display())]);
                }
                if matches!(&self.expect, Expect::Manifest(m, _) if *m != text) {
                    self.expect = Expect::Manifest(text, file.clone());
                    self.want = self.expect.digest();
                    let expected = self.shown(&self.want);
                    log::info(
                        "approved manifest changed",
                        &[("path", &file.display()), ("expected", &expected)],
                    );
                }
            }
            Err(e) => {
                let e = e.to_string();
                if self.read_error.as_ref() != Some(&e) {
                    log::warn(
                        "cannot read the --expect file, keeping the last approved manifest",
                        &[("path", &file.display()), ("error", &e)],
                    );
                    self.read_error = Some(e);
                }
            }
        }
    }

    /// True when content with this state digest may be delivered. Content that may not is
    /// reported once per (content, approval) pair, naming the files that differ (`text` is
    /// the content's state text, made only when needed).
    pub fn approves(&mut self, found: &Hash, text: impl FnOnce() -> Vec<u8>) -> bool {
        if *found == self.want {
            if self.logged.take().is_some() {
                log::info("content approved", &[("digest", &self.shown(found))]);
            }
            return true;
        }
        if self.logged == Some((*found, self.want)) {
            return false;
        }
        self.logged = Some((*found, self.want));
        let (expected, found) = (self.shown(&self.want), self.shown(found));
        let mut fields: Vec<(&str, String)> = vec![("expected", expected), ("found", found)];
        if let Expect::Manifest(m, _) = &self.expect {
            let text = text();
            let d = differences(&text, m);
            for (kind, names) in d.kinds() {
                if !names.is_empty() {
                    fields.push((kind, listed(names)));
                }
            }
        }
        let fields: Vec<log::Field> = fields
            .iter()
            .map(|(k, v)| (*k, v as &dyn std::fmt::Display))
            .collect();
        log::warn("content is not the approved one, holding it", &fields);
        false
    }

    fn shown(&self, h: &Hash) -> String {
        digest::shown(h, self.hide)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Entry, Manifest};

    fn e(p: &str, h: u8) -> Entry {
        Entry {
            path: p.as_bytes().to_vec(),
            hash: [h; 32],
        }
    }

    fn manifest(text: &[u8]) -> Expect {
        Expect::Manifest(text.to_vec(), PathBuf::from("/approved"))
    }

    #[test]
    fn check_names_what_differs_given_a_manifest() {
        let approved = Manifest::new(vec![e("a", 1), e("b", 1), e("c", 1)]);
        let mounted = Manifest::new(vec![e("a", 1), e("b", 2), e("d", 1)]);
        let text = mounted.text();
        let want = manifest(&approved.text());
        assert!(check(&approved.text(), &approved.digest, &want, false).is_ok());
        let msg = check(&text, &mounted.digest, &want, false).unwrap_err();
        assert!(
            msg.starts_with("content does not match: expected "),
            "{msg}"
        );
        assert!(
            msg.ends_with("\nchanged: b\nmissing: c\nunexpected: d"),
            "{msg}"
        );
        let msg = check(
            &text,
            &mounted.digest,
            &Expect::Digest(approved.digest),
            false,
        );
        let msg = msg.unwrap_err();
        assert!(
            !msg.contains('\n'),
            "a bare digest cannot name files: {msg}"
        );
        let hidden = check(&text, &mounted.digest, &want, true).unwrap_err();
        assert!(!hidden.contains(&hex(&mounted.digest)[..12]), "{hidden}");
        assert!(hidden.ends_with("\nunexpected: d"), "{hidden}");
    }

    #[test]
    fn parses_a_digest_in_either_case_or_a_file() {
        let h = "AB".repeat(32);
        assert_eq!(
            Expect::parse("--expect", &h),
            Ok(Expect::Digest([0xab; 32]))
        );
        let err = Expect::parse("--expect", "abc").unwrap_err();
        assert!(
            err.starts_with("--expect abc: expected a SHA-256 digest"),
            "{err}"
        );
        let err = Expect::parse("--expect", "@/nonexistent/m").unwrap_err();
        assert!(err.starts_with("--expect @/nonexistent/m: "), "{err}");
        let m = manifest(b"x");
        assert_eq!(
            m.digest(),
            digest::from_hex("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
                .unwrap()
        );
    }

    #[test]
    fn the_gate_follows_its_file_and_keeps_the_last_manifest_when_it_is_gone() {
        let dir = std::env::temp_dir().join(format!("hashreload-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("manifest");
        let (one, two) = (
            Manifest::new(vec![e("a", 1)]),
            Manifest::new(vec![e("a", 2)]),
        );
        std::fs::write(&file, one.text()).unwrap();
        let expect = Expect::Manifest(one.text(), file.clone());
        let mut gate = Gate::new(expect, false);
        assert!(gate.approves(&one.digest, || one.text()));
        assert!(!gate.approves(&two.digest, || two.text()));
        std::fs::write(&file, two.text()).unwrap();
        gate.refresh();
        assert!(gate.approves(&two.digest, || two.text()));
        assert!(!gate.approves(&one.digest, || one.text()));
        std::fs::remove_file(&file).unwrap();
        gate.refresh();
        assert!(gate.approves(&two.digest, || two.text()), "kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_digest_gate_needs_no_text_and_lists_are_capped() {
        let mut gate = Gate::new(Expect::Digest([1; 32]), true);
        assert!(!gate.approves(&[2; 32], || unreachable!("no manifest to compare with")));
        assert!(gate.approves(&[1; 32], Vec::new));
        let names: Vec<&[u8]> = (0..12).map(|_| b"f".as_slice()).collect();
        assert_eq!(listed(&names[..2]), "f,f");
        assert_eq!(listed(&names), "f,f,f,f,f,f,f,f,f,f,+2 more");
    }
}
