//! Hashing and the content digest.
//!
//! A root's digest is the SHA-256 of its manifest: one line per regular file, exactly as GNU
//! `sha256sum` (coreutils 9.1) prints it, sorted by path bytes. So `sha256sum -c --strict` run
//! from the root accepts the manifest, and `sha256sum` of the manifest is the root digest. The
//! state digest, which targets acknowledge, combines the roots in the order they were given.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// Stands in for the hash of a file (or directory) that could not be read. It is a well-formed
/// manifest line, so the file stays listed, fixing it is a change, and `sha256sum -c` reports it
/// as FAILED: what cannot be read cannot be verified.
pub const UNREADABLE: Hash = [0; 32];

/// Bytes read per `read(2)`; the one buffer is reused for every file.
pub const BUF_SIZE: usize = 64 * 1024;

/// One manifest line: a file's path relative to its root and the hash of its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub hash: Hash,
}

/// The scanned content of one root: its entries sorted by path bytes, and their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    pub digest: Hash,
    /// Bytes hashed to make it (for metrics; not part of the digest).
    pub bytes: u64,
}

impl Manifest {
    /// Sorts the entries and computes the digest.
    pub fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let mut hasher = Sha256::new();
        let mut line = Vec::with_capacity(128);
        for e in &entries {
            line.clear();
            write_line(&mut line, &e.hash, &e.path);
            hasher.update(&line);
        }
        Manifest {
            entries,
            digest: hasher.finalize().into(),
            bytes: 0,
        }
    }

    /// The manifest text, as `sha256sum` prints it.
    pub fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            write_line(&mut out, &e.hash, &e.path);
        }
        out
    }
}

/// Appends `<hex>  <path>\n`, escaped as GNU sha256sum does: a name holding `\`, newline or
/// carriage return gets a leading `\` on the line and those bytes are written `\\`, `\n`, `\r`.
pub fn write_line(out: &mut Vec<u8>, hash: &Hash, path: &[u8]) {
    let escape = path.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    if escape {
        out.push(b'\\');
    }
    out.extend_from_slice(hex(hash).as_bytes());
    out.extend_from_slice(b"  ");
    for &b in path {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
}

/// The digest targets acknowledge: with one root, that root's digest; with several, the SHA-256
/// of `<root digest>  <root as given>\n` per root, in the order given. Either way, the SHA-256 of
/// `state_text`.
pub fn state_digest(roots: &[(&[u8], &Manifest)]) -> Hash {
    match roots {
        [(_, only)] => only.digest,
        _ => Sha256::digest(state_text(roots)).into(),
    }
}

/// What `hashreload digest` prints: one root's manifest, or for several roots one line per root
/// in the same format. Its SHA-256 is the state digest.
pub fn state_text(roots: &[(&[u8], &Manifest)]) -> Vec<u8> {
    match roots {
        [(_, only)] => only.text(),
        _ => {
            let mut text = Vec::new();
            for (name, m) in roots {
                write_line(&mut text, &m.digest, name);
            }
            text
        }
    }
}

/// The lines of a manifest as (escaped name, hex hash), for naming what differs; lines that are
/// not in the format are skipped.
pub fn manifest_lines(text: &[u8]) -> Vec<(&[u8], &[u8])> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_prefix(b"\\").unwrap_or(line);
            let (hash, rest) = (line.get(..64)?, line.get(64..)?);
            let name = rest
                .strip_prefix(b"  ")
                .or_else(|| rest.strip_prefix(b" *"))?;
            hash.iter()
                .all(u8::is_ascii_hexdigit)
                .then_some((name, hash))
        })
        .collect()
}

/// 64 hex digits to a hash.
pub fn from_hex(s: &str) -> Option<Hash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Lower-case hex, as sha256sum prints it.
pub fn hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The first 12 hex digits, for logs.
pub fn short(hash: &Hash) -> String {
    let mut h = hex(hash);
    h.truncate(12);
    h
}

/// A digest as logs show it: `short`, or `hidden` for one that covers a `--secret-path`.
pub fn shown(hash: &Hash, hide: bool) -> String {
    match hide {
        true => "hidden".to_string(),
        false => short(hash),
    }
}

/// Streams a reader through SHA-256 with one reused buffer, so memory never grows with file size.
pub struct Hasher {
    buf: Vec<u8>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            buf: vec![0; BUF_SIZE],
        }
    }
}

impl Hasher {
    /// The hash of everything `r` yields, and how many bytes that was.
    pub fn hash(&mut self, r: &mut impl Read) -> io::Result<(Hash, u64)> {
        self.hash_sized(r, None)
    }

    /// As `hash`, for a regular file whose size was `len`: a short read that brings the total to
    /// `len` is its end (a regular file reads short only at its end), which saves the read that
    /// would return 0. A file that grew meanwhile is read on to its end.
    pub fn hash_sized(&mut self, r: &mut impl Read, len: Option<u64>) -> io::Result<(Hash, u64)> {
        let mut sha = Sha256::new();
        let mut total = 0;
        loop {
            match r.read(&mut self.buf) {
                Ok(0) => return Ok((sha.finalize().into(), total)),
                Ok(n) => {
                    sha.update(&self.buf[..n]);
                    total += n as u64;
                    if n < self.buf.len() && Some(total) == len {
                        return Ok((sha.finalize().into(), total));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(data: &[u8]) -> Hash {
        Hasher::default().hash(&mut &data[..]).unwrap().0
    }

    /// Yields `data` in reads of at most `chunk` bytes, counting the reads.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
        reads: usize,
    }
    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_short_read_completing_the_size_ends_the_file() {
        let data = vec![7u8; BUF_SIZE + 100];
        let read = |len, chunk| {
            let mut r = Chunked {
                data: &data,
                chunk,
                reads: 0,
            };
            let (hash, n) = Hasher::default().hash_sized(&mut r, len).unwrap();
            (hash, n, r.reads)
        };
        let full = (h(&data), data.len() as u64);
        // Full buffer, then 100 bytes that complete the size: no read for the end.
        assert_eq!(
            read(Some(data.len() as u64), usize::MAX),
            (full.0, full.1, 2)
        );
        // Without a size, or a file that grew past it: read to the end.
        assert_eq!(read(None, usize::MAX), (full.0, full.1, 3));
        assert_eq!(read(Some(50), usize::MAX), (full.0, full.1, 3));
        // Short reads that do not complete the size go on, until one does (66 reads of 1000).
        assert_eq!(read(Some(data.len() as u64), 1000), (full.0, full.1, 66));
    }

    fn entry(path: &[u8], data: &[u8]) -> Entry {
        Entry {
            path: path.to_vec(),
            hash: h(data),
        }
    }

    #[test]
    fn hashes_known_vectors() {
        assert_eq!(
            hex(&h(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&h(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Longer than the buffer, so several reads feed one hash.
        let big = vec![b'x'; BUF_SIZE * 2 + 7];
        assert_eq!(h(&big), <[u8; 32]>::from(Sha256::digest(&big)));
    }

    // Printed by GNU coreutils 9.1 `sha256sum *` in a directory holding these four files.
    #[test]
    fn manifest_matches_sha256sum_escaping() {
        let m = Manifest::new(vec![
            entry(b"plain", b"d"),
            entry(b"new\nline", b"b"),
            entry(b"cr\rx", b"c"),
            entry(b"back\\slash", b"a"),
        ]);
        let want = "\\ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  back\\\\slash\n\
                    \\2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6  cr\\rx\n\
                    \\3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  new\\nline\n\
                    18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4  plain\n";
        assert_eq!(String::from_utf8(m.text()).unwrap(), want);
        assert_eq!(m.digest, <[u8; 32]>::from(Sha256::digest(want.as_bytes())));
    }

    #[test]
    fn sorts_by_path_bytes() {
        // '.' (0x2e) sorts before '/' (0x2f), as `LC_ALL=C sort` does.
        let m = Manifest::new(vec![entry(b"a/b", b"1"), entry(b"a.txt", b"2")]);
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, vec![b"a.txt".to_vec(), b"a/b".to_vec()]);
    }

    #[test]
    fn empty_root_is_the_hash_of_nothing() {
        assert_eq!(Manifest::new(vec![]).digest, h(b""));
    }

    #[test]
    fn unreadable_marker_is_a_well_formed_line() {
        let mut line = Vec::new();
        write_line(&mut line, &UNREADABLE, b"secret.key");
        assert_eq!(
            line,
            format!("{}  secret.key\n", "0".repeat(64)).into_bytes()
        );
    }

    #[test]
    fn state_digest_of_one_root_is_its_digest() {
        let m = Manifest::new(vec![entry(b"a", b"1")]);
        assert_eq!(state_digest(&[(b"/etc/x", &m)]), m.digest);
    }

    #[test]
    fn state_digest_of_several_roots_follows_their_order() {
        let a = Manifest::new(vec![entry(b"a", b"1")]);
        let b = Manifest::new(vec![entry(b"b", b"2")]);
        let text = format!("{}  /r/a\n{}  /r/b\n", hex(&a.digest), hex(&b.digest));
        let ab = state_digest(&[(b"/r/a", &a), (b"/r/b", &b)]);
        assert_eq!(ab, <[u8; 32]>::from(Sha256::digest(text.as_bytes())));
        assert_ne!(ab, state_digest(&[(b"/r/b", &b), (b"/r/a", &a)]));
    }

    #[test]
    fn state_text_hashes_to_the_state_digest() {
        let a = Manifest::new(vec![entry(b"a", b"1")]);
        let b = Manifest::new(vec![entry(b"b", b"2")]);
        for roots in [
            &[(&b"/r/a"[..], &a)][..],
            &[(&b"/r/a"[..], &a), (&b"/r/b"[..], &b)],
        ] {
            let text = state_text(roots);
            assert_eq!(<[u8; 32]>::from(Sha256::digest(&text)), state_digest(roots));
        }
    }

    #[test]
    fn reads_manifest_lines_back() {
        let m = Manifest::new(vec![entry(b"new\nline", b"b"), entry(b"plain", b"d")]);
        let text = m.text();
        let lines = manifest_lines(&text);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, b"new\\nline");
        assert_eq!(
            lines[1],
            (&b"plain"[..], hex(&m.entries[1].hash).as_bytes())
        );
        assert!(manifest_lines(b"garbage\n\n").is_empty());
        assert_eq!(from_hex(&hex(&m.digest)), Some(m.digest));
        assert_eq!(from_hex("xyz"), None);
    }

    #[test]
    fn short_is_twelve_hex_digits() {
        assert_eq!(short(&h(b"abc")), "ba7816bf8f01");
    }
}
