//! Manifest lines, escaped as GNU sha256sum escapes them: any path gives exactly one line, which
//! reads back to the same hash and, unescaped, to the same path bytes.
#![no_main]

use hashreload::digest::{hex, manifest_lines, write_line};
use libfuzzer_sys::fuzz_target;

fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = name.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'\\') => out.push(b'\\'),
            other => panic!("bad escape {other:?} in {name:?}"),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((hash, path)) = data.split_first_chunk::<32>() else {
        return;
    };
    let mut line = Vec::new();
    write_line(&mut line, hash, path);
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(line.last(), Some(&b'\n'));
    let escaped = path.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    assert_eq!(line[0] == b'\\', escaped, "{line:?}");
    let lines = manifest_lines(&line);
    assert_eq!(lines.len(), 1, "{line:?}");
    let (name, h) = lines[0];
    assert_eq!(h, hex(hash).as_bytes());
    let name = if escaped {
        unescape(name)
    } else {
        name.to_vec()
    };
    assert_eq!(name, path);
});
