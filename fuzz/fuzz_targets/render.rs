//! The config renderer: any bytes, gzipped or not, render without a panic and within the limit,
//! the same read whole or a byte at a time, fail only with a fixed message (never content), and
//! a plain input renders as Go's `ReplaceAllFunc` with the operator's regexp does.
#![no_main]

use hashreload::render::{reference, render_stream};
use libfuzzer_sys::fuzz_target;
use std::io::{self, Read};

const LIMIT: u64 = 1 << 20;

fn vars(name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"A" => Some(b"alpha".to_vec()),
        b"E" => Some(Vec::new()),
        b"BIG" => Some(vec![b'b'; 4096]),
        _ => None,
    }
}

/// One byte per read.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn render(input: &mut dyn Read) -> Result<(Vec<u8>, u64, Vec<String>), String> {
    let mut out = Vec::new();
    let stats = render_stream(input, &mut out, LIMIT, &vars).map_err(|e| e.to_string())?;
    assert_eq!(stats.bytes, out.len() as u64);
    assert!(stats.bytes <= LIMIT);
    assert!(stats.unset_names.len() <= 64 && stats.unset_names.len() as u64 <= stats.unset);
    Ok((out, stats.unset, stats.unset_names))
}

fuzz_target!(|data: &[u8]| {
    let whole = render(&mut &data[..]);
    assert_eq!(whole, render(&mut Trickle(data)));
    match &whole {
        Ok((out, ..)) if !data.starts_with(&[0x1f, 0x8b, 8]) => {
            assert_eq!(*out, reference(data, &vars))
        }
        Ok(_) => {}
        Err(e) => assert!(
            e == "truncated gzip data"
                || e.starts_with("corrupt gzip data (")
                || e.starts_with("more than 1 MiB"),
            "{e}"
        ),
    }
});
