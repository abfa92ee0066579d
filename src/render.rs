//! Renders `--config-file` into `--config-envsubst-file` as prometheus-operator's config
//! reloader does (thanos `pkg/reloader`, `normalize` and `expandEnv`): gunzip the file when it
//! starts with the gzip magic, replace each `$(NAME)` by that variable's value, write the result
//! atomically. Unlike the incumbent it streams: fixed buffers (about 80 KiB with the inflate
//! state), never the whole config in memory, and at most `limit` bytes decompressed or rendered,
//! so a gzip bomb stops at the limit instead of filling memory or the disk.

use crate::digest::Hash;
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The most a config may be when read, decompressed or rendered: 64 MiB. The operator's Secret
/// holds at most 1 MiB of gzip, a real config inflates far below this; a gzip bomb (1 GiB of
/// zeros is about 1 MB gzipped) stops here.
pub const LIMIT: u64 = 64 << 20;

/// The longest NAME in `$(NAME)` that is looked up. A longer run of name bytes is no reference
/// and stays verbatim: the operator's regexp has no cap, but no variable name is this long, and
/// the cap bounds what is held while a reference is incomplete.
pub const NAME_MAX: usize = 1024;

/// Distinct unset names kept for the log; occurrences are counted past it.
const NAMES_KEPT: usize = 64;

/// Bytes per read of the input and per write of the output.
const BUF: usize = 16 * 1024;

/// Deflate's window: the inflater's output buffer is also its dictionary.
const WINDOW: usize = 32 * 1024;

/// What `render` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// SHA-256 of the output's content now: of the bytes written, or of those already there.
    pub digest: Hash,
    pub bytes: u64,
    /// False when the output already held exactly these bytes and was left alone.
    pub written: bool,
    /// References to unset variables, left as written.
    pub unset: u64,
    /// Their distinct names (at most 64): identifiers, not content, so they may be logged.
    pub unset_names: Vec<String>,
}

/// What one rendering produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes: u64,
    pub unset: u64,
    pub unset_names: Vec<String>,
}

/// One line naming the path and the cause; never config content or a variable's value.
#[derive(Debug)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

/// Why `render_stream` stopped: the input (unreadable, corrupt, over the limit) or the output.
#[derive(Debug)]
pub enum StreamError {
    Input(String),
    Output(io::Error),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            StreamError::Input(s) => f.write_str(s),
            StreamError::Output(e) => e.fmt(f),
        }
    }
}

/// What the output file is now, to notice it was changed or removed by someone else
/// (`volume::stat_key`); `None` when it is missing.
pub fn stamp(output: &Path) -> Option<[i64; 7]> {
    fs::metadata(output)
        .ok()
        .map(|m| crate::volume::stat_key(&m))
}

/// The StatefulSet ordinal in a pod name: its trailing ASCII digits, empty if none (the
/// operator's `\d+$` on POD_NAME, which becomes STATEFULSET_ORDINAL_NUMBER).
pub fn ordinal(value: &[u8]) -> &[u8] {
    let digits = value
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    &value[value.len() - digits..]
}

/// Renders `input` into `output` when that changes its bytes. Pass 1, when there is an output,
/// renders into a hash only and compares it with the output's; pass 2 renders into `<output>.tmp` in the same directory,
/// fsyncs it, renames it over `output` and fsyncs the directory. On an error the previous output
/// is untouched and no temp file is left. Pass 2 reads the input again, so the digest is the
/// one of the bytes written even if the input changed in between.
pub fn render(
    input: &Path,
    output: &Path,
    limit: u64,
    vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Outcome, RenderError> {
    // Pass 1 pays off only with an output to compare with (not on a pod's first render).
    if fs::metadata(output).is_ok_and(|m| m.is_file()) {
        let mut hasher = Sha256::new();
        let stats = render_file(input, output, &mut hasher, limit, vars)?;
        let digest: Hash = hasher.finalize().into();
        if unchanged(output, &digest, stats.bytes) {
            return Ok(outcome(digest, stats, false));
        }
    }
    let tmp = tmp_path(output);
    let result = write_tmp(input, &tmp, limit, vars).and_then(|done| {
        fs::rename(&tmp, output).map_err(|e| output_error(output, &e))?;
        Ok(done)
    });
    let (digest, stats) = result.inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    // The new bytes are in place: a directory that refuses fsync (some file systems do) is no
    // reason to report a failure that would hide them.
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(outcome(digest, stats, true))
}

fn outcome(digest: Hash, stats: Stats, written: bool) -> Outcome {
    Outcome {
        digest,
        bytes: stats.bytes,
        written,
        unset: stats.unset,
        unset_names: stats.unset_names,
    }
}

/// `<output>.tmp`, as the incumbent names it.
fn tmp_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn input_error(input: &Path, cause: &dyn std::fmt::Display) -> RenderError {
    RenderError(format!("--config-file {}: {cause}", input.display()))
}

fn output_error(output: &Path, cause: &dyn std::fmt::Display) -> RenderError {
    RenderError(format!(
        "--config-envsubst-file {}: {cause}",
        output.display()
    ))
}

/// Renders the file `input` into `out`; output errors name `out_path`.
fn render_file(
    input: &Path,
    out_path: &Path,
    out: &mut dyn Write,
    limit: u64,
    vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Stats, RenderError> {
    let mut file = File::open(input).map_err(|e| input_error(input, &e))?;
    render_stream(&mut file, out, limit, vars).map_err(|e| match e {
        StreamError::Input(s) => input_error(input, &s),
        StreamError::Output(e) => output_error(out_path, &e),
    })
}

/// Pass 2: the rendered bytes in `tmp` (0644 before the umask; std opens with O_CLOEXEC),
/// synced, and their digest.
fn write_tmp(
    input: &Path,
    tmp: &Path,
    limit: u64,
    vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<(Hash, Stats), RenderError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(tmp)
        .map_err(|e| output_error(tmp, &e))?;
    let mut tee = Tee {
        file,
        hasher: Sha256::new(),
    };
    let stats = render_file(input, tmp, &mut tee, limit, vars)?;
    tee.file.sync_all().map_err(|e| output_error(tmp, &e))?;
    Ok((tee.hasher.finalize().into(), stats))
}

/// Writes to the file and hashes what it accepted.
struct Tee {
    file: File,
    hasher: Sha256,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether `path` is a regular file holding exactly `bytes` bytes with this digest. Anything
/// unreadable counts as changed: pass 2 then reports what is wrong with it.
fn unchanged(path: &Path, digest: &Hash, bytes: u64) -> bool {
    // O_NONBLOCK: a FIFO there must not block the open.
    let open = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let Ok(file) = open else { return false };
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() == bytes => {}
        _ => return false,
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0; BUF];
    let mut seen = 0u64;
    // One byte past `bytes` tells a file that grew meanwhile.
    let mut rest = file.take(bytes + 1);
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                seen += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    seen == bytes && hasher.finalize()[..] == digest[..]
}

/// Renders any reader into any writer (pass 1 and 2 of `render`; tests and fuzzing): gunzips
/// when the input starts with `1f 8b 08`, substitutes, and stops with an error as soon as more
/// than `limit` bytes are read, decompressed or rendered.
pub fn render_stream(
    input: &mut dyn Read,
    out: &mut dyn Write,
    limit: u64,
    vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Stats, StreamError> {
    let mut src = Source {
        r: input,
        buf: vec![0; BUF],
        start: 0,
        end: 0,
        read: 0,
        limit,
    };
    let mut sub = Substitute {
        out: Sink {
            w: out,
            buf: Vec::with_capacity(BUF),
            bytes: 0,
            limit,
        },
        vars,
        scan: Scan::Text,
        name: Vec::with_capacity(NAME_MAX),
        stats: Stats::default(),
    };
    if src.fill_to(3)?.starts_with(&[0x1f, 0x8b, 8]) {
        gunzip(&mut src, &mut sub, limit)?;
    } else {
        loop {
            let data = src.fill_to(1)?;
            let n = data.len();
            if n == 0 {
                break;
            }
            sub.feed(data)?;
            src.consume(n);
        }
    }
    sub.finish()
}

/// "64 MiB", or the exact byte count of a limit that is no whole number of MiB.
fn too_big(limit: u64, when: &str) -> StreamError {
    let size = match limit % (1 << 20) {
        0 if limit > 0 => format!("{} MiB", limit >> 20),
        _ => format!("{limit} bytes"),
    };
    StreamError::Input(format!("more than {size}{when} (the limit)"))
}

fn truncated() -> StreamError {
    StreamError::Input("truncated gzip data".into())
}

fn corrupt(what: &str) -> StreamError {
    StreamError::Input(format!("corrupt gzip data ({what})"))
}

/// The input, read into one fixed buffer.
struct Source<'a> {
    r: &'a mut dyn Read,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes read so far, checked against `limit`.
    read: u64,
    limit: u64,
}

impl Source<'_> {
    /// The buffered bytes, at least `n` (at most BUF) unless the input ends first; empty at the
    /// end of the input.
    fn fill_to(&mut self, n: usize) -> Result<&[u8], StreamError> {
        while self.end - self.start < n {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(k) => {
                    self.end += k;
                    self.read += k as u64;
                    if self.read > self.limit {
                        return Err(too_big(self.limit, ""));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Input(e.to_string())),
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// One byte of gzip framing; the input may not end here.
    fn byte(&mut self) -> Result<u8, StreamError> {
        let b = *self.fill_to(1)?.first().ok_or_else(truncated)?;
        self.consume(1);
        Ok(b)
    }
}

const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// Every gzip member, concatenated as Go's multistream reader takes them: after a member the
/// input ends, or another member starts; anything else is an error.
fn gunzip(src: &mut Source, sub: &mut Substitute, limit: u64) -> Result<(), StreamError> {
    let mut inflater = Box::<DecompressorOxide>::default();
    let mut window = vec![0; WINDOW];
    let mut total = 0u64;
    loop {
        header(src)?;
        let (crc, size) = inflate(src, &mut inflater, &mut window, sub, &mut total, limit)?;
        let mut trailer = [0; 8];
        for b in &mut trailer {
            *b = src.byte()?;
        }
        let [c0, c1, c2, c3, s0, s1, s2, s3] = trailer;
        if u32::from_le_bytes([c0, c1, c2, c3]) != crc {
            return Err(corrupt("bad CRC-32"));
        }
        if u32::from_le_bytes([s0, s1, s2, s3]) != size {
            return Err(corrupt("bad length"));
        }
        if src.fill_to(1)?.is_empty() {
            return Ok(());
        }
    }
}

/// One byte of a member header, added to the header's CRC-32.
fn header_byte(src: &mut Source, crc: &mut u32) -> Result<u8, StreamError> {
    let b = src.byte()?;
    *crc = crc32(*crc, &[b]);
    Ok(b)
}

/// Reads a member header (RFC 1952, 2.3.1); only its framing matters here.
fn header(src: &mut Source) -> Result<(), StreamError> {
    let mut crc = 0;
    // After a member, anything but another member is an error, as in Go's multistream reader.
    for want in [0x1f, 0x8b, 8] {
        if header_byte(src, &mut crc)? != want {
            return Err(corrupt("trailing garbage"));
        }
    }
    let flags = header_byte(src, &mut crc)?;
    if flags & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
        return Err(corrupt("reserved header flags"));
    }
    // MTIME, XFL, OS.
    for _ in 0..6 {
        header_byte(src, &mut crc)?;
    }
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes([header_byte(src, &mut crc)?, header_byte(src, &mut crc)?]);
        for _ in 0..len {
            header_byte(src, &mut crc)?;
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            while header_byte(src, &mut crc)? != 0 {}
        }
    }
    if flags & FHCRC != 0 {
        let want = crc as u16;
        if u16::from_le_bytes([src.byte()?, src.byte()?]) != want {
            return Err(corrupt("bad header CRC"));
        }
    }
    Ok(())
}

/// Inflates one member's raw deflate data into `sub`; its CRC-32 and length mod 2^32.
fn inflate(
    src: &mut Source,
    inflater: &mut DecompressorOxide,
    window: &mut [u8],
    sub: &mut Substitute,
    total: &mut u64,
    limit: u64,
) -> Result<(u32, u32), StreamError> {
    inflater.init();
    let (mut pos, mut crc, mut size) = (0, 0, 0u32);
    loop {
        let input = src.fill_to(1)?;
        let flags = match input.is_empty() {
            true => 0,
            false => inflate_flags::TINFL_FLAG_HAS_MORE_INPUT,
        };
        let (status, used, written) = decompress(inflater, input, window, pos, flags);
        src.consume(used);
        let out = &window[pos..pos + written];
        crc = crc32(crc, out);
        size = size.wrapping_add(written as u32);
        sub.feed(out)?;
        *total += written as u64;
        if *total > limit {
            return Err(too_big(limit, " when decompressed"));
        }
        pos = (pos + written) % WINDOW;
        match status {
            TINFLStatus::Done => return Ok((crc, size)),
            TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput if used + written > 0 => {}
            TINFLStatus::NeedsMoreInput
            | TINFLStatus::HasMoreOutput
            | TINFLStatus::FailedCannotMakeProgress => return Err(truncated()),
            _ => return Err(corrupt("bad deflate data")),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses), one table lookup per byte.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Where the scan of `\$\(([a-zA-Z_0-9]+)\)` stands between two bytes.
#[derive(Clone, Copy)]
enum Scan {
    Text,
    /// After a `$`.
    Dollar,
    /// After `$(` and the name bytes in `Substitute::name` (maybe none yet).
    Name,
    /// In a run of name bytes longer than NAME_MAX: no reference, copied as it is.
    Long,
}

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Replaces `$(NAME)` as Go's `regexp.ReplaceAllFunc` with `\$\(([a-zA-Z_0-9]+)\)` does
/// (leftmost-first, non-overlapping), a byte at a time, so a reference may straddle any buffer
/// boundary. Only `$(` and a name are ever held back, and a name ends at NAME_MAX bytes.
struct Substitute<'a> {
    out: Sink<'a>,
    vars: &'a dyn Fn(&[u8]) -> Option<Vec<u8>>,
    scan: Scan,
    name: Vec<u8>,
    stats: Stats,
}

impl Substitute<'_> {
    fn feed(&mut self, data: &[u8]) -> Result<(), StreamError> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.scan {
                Scan::Text => {
                    let run = data[i..].iter().position(|&c| c == b'$');
                    let run = run.unwrap_or(data.len() - i);
                    self.out.write(&data[i..i + run])?;
                    i += run;
                    if i < data.len() {
                        self.scan = Scan::Dollar;
                        i += 1;
                    }
                    continue;
                }
                Scan::Dollar if b == b'(' => {
                    self.name.clear();
                    self.scan = Scan::Name;
                }
                Scan::Dollar => {
                    self.out.write(b"$")?;
                    if b != b'$' {
                        self.scan = Scan::Text;
                        continue;
                    }
                }
                Scan::Name if is_name(b) && self.name.len() < NAME_MAX => self.name.push(b),
                Scan::Name if b == b')' && !self.name.is_empty() => {
                    self.reference()?;
                    self.scan = Scan::Text;
                }
                // No match can start inside `$(name`: the byte that ended it is scanned again.
                Scan::Name => {
                    self.pending()?;
                    self.scan = match is_name(b) {
                        true => Scan::Long,
                        false => Scan::Text,
                    };
                    continue;
                }
                Scan::Long => {
                    let run = data[i..].iter().position(|&c| !is_name(c));
                    let run = run.unwrap_or(data.len() - i);
                    self.out.write(&data[i..i + run])?;
                    i += run;
                    if i < data.len() {
                        self.scan = Scan::Text;
                    }
                    continue;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// `$(` and the name so far, verbatim.
    fn pending(&mut self) -> Result<(), StreamError> {
        self.out.write(b"$(")?;
        self.out.write(&self.name)
    }

    /// `$(name)` complete: its value, or itself when the variable is unset.
    fn reference(&mut self) -> Result<(), StreamError> {
        if let Some(value) = (self.vars)(&self.name) {
            return self.out.write(&value);
        }
        let stats = &mut self.stats;
        stats.unset += 1;
        let known = stats.unset_names.iter().any(|n| n.as_bytes() == self.name);
        if !known && stats.unset_names.len() < NAMES_KEPT {
            let name = String::from_utf8_lossy(&self.name).into_owned();
            stats.unset_names.push(name);
        }
        self.pending()?;
        self.out.write(b")")
    }

    /// Flushes what was held back at the end of the input.
    fn finish(mut self) -> Result<Stats, StreamError> {
        match self.scan {
            Scan::Dollar => self.out.write(b"$")?,
            Scan::Name => self.pending()?,
            Scan::Text | Scan::Long => {}
        }
        self.out.flush()?;
        self.out.w.flush().map_err(StreamError::Output)?;
        self.stats.bytes = self.out.bytes;
        Ok(self.stats)
    }
}

/// The output, through one fixed buffer, counted against the limit.
struct Sink<'a> {
    w: &'a mut dyn Write,
    buf: Vec<u8>,
    bytes: u64,
    limit: u64,
}

impl Sink<'_> {
    fn write(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.bytes += data.len() as u64;
        if self.bytes > self.limit {
            return Err(too_big(self.limit, " when rendered"));
        }
        if self.buf.len() + data.len() > BUF {
            self.flush()?;
        }
        if data.len() > BUF {
            return self.w.write_all(data).map_err(StreamError::Output);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.w.write_all(&self.buf).map_err(StreamError::Output)?;
        self.buf.clear();
        Ok(())
    }
}

/// Go's `ReplaceAllFunc` with the operator's regular expression, spelled out over a whole
/// input in memory: at each position, a match or one byte copied. The specification the
/// streaming substitution is tested and fuzzed against; never called by the program.
#[doc(hidden)]
pub fn reference(input: &[u8], vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"$(") {
            let n = input[i + 2..].iter().take_while(|&&b| is_name(b)).count();
            let end = i + 2 + n;
            if (1..=NAME_MAX).contains(&n) && input.get(end) == Some(&b')') {
                match vars(&input[i + 2..end]) {
                    Some(v) => out.extend(v),
                    None => out.extend(&input[i..=end]),
                }
                i = end + 1;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::MetadataExt;

    // Made once with `printf 'a: $(A)\n' | gzip -n | xxd -i`.
    const SIMPLE: [u8; 28] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4b, 0xb4, 0x52, 0x50, 0xd1,
        0x70, 0xd4, 0xe4, 0x02, 0x00, 0x71, 0x1f, 0xd0, 0xf6, 0x08, 0x00, 0x00, 0x00,
    ];
    // `(printf 'x: $(A' | gzip -n; printf ')\n' | gzip -n) | xxd -i`: a reference straddling
    // two members.
    const TWO_MEMBERS: [u8; 48] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0xb0, 0x52, 0x50, 0xd1,
        0x70, 0x04, 0x00, 0x86, 0x10, 0xd2, 0x7e, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x8b, 0x08, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xd3, 0xe4, 0x02, 0x00, 0x0a, 0x64, 0x4a, 0xe5, 0x02,
        0x00, 0x00, 0x00,
    ];
    // python3: gzip.GzipFile(filename="prometheus.yaml", mtime=0) of b'global: {}\n' (FNAME).
    const FNAME_SET: [u8; 47] = [
        0x1f, 0x8b, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x70, 0x72, 0x6f, 0x6d, 0x65,
        0x74, 0x68, 0x65, 0x75, 0x73, 0x2e, 0x79, 0x61, 0x6d, 0x6c, 0x00, 0x4b, 0xcf, 0xc9, 0x4f,
        0x4a, 0xcc, 0xb1, 0x52, 0xa8, 0xae, 0xe5, 0x02, 0x00, 0x67, 0xd1, 0x13, 0xf3, 0x0b, 0x00,
        0x00, 0x00,
    ];
    // python3, by hand: FTEXT|FHCRC|FEXTRA|FCOMMENT, extra "xyz", comment "a comment", the
    // header CRC, zlib raw deflate of b'pod: $(POD)\n', CRC-32 and ISIZE.
    const ALL_FLAGS: [u8; 49] = [
        0x1f, 0x8b, 0x08, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x03, 0x00, 0x78, 0x79, 0x7a,
        0x61, 0x20, 0x63, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74, 0x00, 0x58, 0xd8, 0x2b, 0xc8, 0x4f,
        0xb1, 0x52, 0x50, 0xd1, 0x08, 0xf0, 0x77, 0xd1, 0xe4, 0x02, 0x00, 0xe8, 0xe7, 0xbf, 0xfe,
        0x0c, 0x00, 0x00, 0x00,
    ];

    fn vars(name: &[u8]) -> Option<Vec<u8>> {
        match name {
            b"A" => Some(b"alpha".to_vec()),
            b"EMPTY" => Some(Vec::new()),
            b"POD" => Some(b"prometheus-k8s-1".to_vec()),
            _ => None,
        }
    }

    /// Returns one byte per read, with an interruption before each.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let Some((&b, rest)) = self.data.split_first() else {
                return Ok(0);
            };
            buf[0] = b;
            self.data = rest;
            Ok(1)
        }
    }

    fn whole(
        input: &[u8],
        limit: u64,
        vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<(Vec<u8>, Stats), String> {
        let mut out = Vec::new();
        let stats = render_stream(&mut &input[..], &mut out, limit, vars);
        stats.map(|s| (out, s)).map_err(|e| e.to_string())
    }

    /// Renders `input` whole and a byte at a time; both must agree.
    fn run_with(
        input: &[u8],
        limit: u64,
        vars: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<(Vec<u8>, Stats), String> {
        let mut out = Vec::new();
        let mut trickle = Trickle {
            data: input,
            interrupt: false,
        };
        let bytewise = render_stream(&mut trickle, &mut out, limit, vars);
        let bytewise = bytewise.map(|s| (out, s)).map_err(|e| e.to_string());
        let whole = whole(input, limit, vars);
        assert_eq!(whole, bytewise, "{input:?}");
        whole
    }

    fn run(input: &[u8]) -> Result<Vec<u8>, String> {
        run_with(input, LIMIT, &vars).map(|(out, _)| out)
    }

    fn text(input: &[u8]) -> String {
        String::from_utf8(run(input).unwrap()).unwrap()
    }

    #[test]
    fn substitutes_like_the_operator_regexp() {
        let cases: [(&str, &str); 16] = [
            ("", ""),
            ("a: $(A)\n", "a: alpha\n"),
            ("$($(A))", "$(alpha)"),
            ("$$(A)$", "$alpha$"),
            ("$(A)$(A)", "alphaalpha"),
            ("[$(EMPTY)]", "[]"),
            ("$()", "$()"),
            ("$(A-B)", "$(A-B)"),
            ("$(A", "$(A"),
            ("$(", "$("),
            ("$", "$"),
            ("$(A)(A)", "alpha(A)"),
            ("$(a)", "$(a)"),
            ("$(AB$(A)", "$(ABalpha"),
            ("$ (A)", "$ (A)"),
            ("é$(A)é", "éalphaé"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn agrees_with_the_regexp_at_every_buffer_boundary() {
        let tokens: [&[u8]; 10] = [
            b"$", b"(", b")", b"A", b"EMPTY", b"B", b"-", b"x", b"$(", b"$(A)",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut input = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..seed % 24 {
                input.extend(tokens[((seed >> (2 * k + 8)) % 10) as usize]);
            }
            assert_eq!(run(&input).unwrap(), reference(&input, &vars), "{input:?}");
        }
    }

    #[test]
    fn counts_unset_references_and_keeps_their_distinct_names() {
        let (out, stats) = run_with(b"$(B) $(A) $(C) $(B)", LIMIT, &vars).unwrap();
        assert_eq!(out, b"$(B) alpha $(C) $(B)");
        assert_eq!(stats.unset, 3);
        assert_eq!(stats.unset_names, ["B", "C"]);
        assert_eq!(stats.bytes, out.len() as u64);
        let many: String = (0..100).map(|i| format!("$(V{i})")).collect();
        let (out, stats) = run_with(many.as_bytes(), LIMIT, &vars).unwrap();
        assert_eq!(out, many.as_bytes());
        assert_eq!(stats.unset, 100);
        assert_eq!(stats.unset_names.len(), NAMES_KEPT);
        assert_eq!(stats.unset_names[63], "V63");
    }

    #[test]
    fn a_name_longer_than_the_cap_is_no_reference() {
        let len = |name: &[u8]| Some(format!("<{}>", name.len()).into_bytes());
        let at = |n: usize| format!("$({})", "x".repeat(n));
        let (out, _) = run_with(at(NAME_MAX).as_bytes(), LIMIT, &len).unwrap();
        assert_eq!(out, b"<1024>");
        let long = at(NAME_MAX + 1);
        let (out, stats) = run_with(long.as_bytes(), LIMIT, &len).unwrap();
        assert_eq!(out, long.as_bytes());
        assert_eq!(stats.unset, 0);
        let then = format!("$({}$(A)", "x".repeat(3000));
        let want = format!("$({}<1>", "x".repeat(3000));
        assert_eq!(
            run_with(then.as_bytes(), LIMIT, &len).unwrap().0,
            want.as_bytes()
        );
    }

    #[test]
    fn ordinal_is_the_trailing_digits() {
        let cases: [(&str, &str); 7] = [
            ("prometheus-k8s-12", "12"),
            ("alertmanager-main-0", "0"),
            ("web", ""),
            ("", ""),
            ("a1b2", "2"),
            ("123", "123"),
            ("pod-١", ""),
        ];
        for (pod, want) in cases {
            assert_eq!(ordinal(pod.as_bytes()), want.as_bytes(), "{pod:?}");
        }
    }

    #[test]
    fn gunzips_whatever_the_header_and_members() {
        assert_eq!(text(&SIMPLE), "a: alpha\n");
        assert_eq!(text(&TWO_MEMBERS), "x: alpha\n");
        assert_eq!(text(&FNAME_SET), "global: {}\n");
        assert_eq!(text(&ALL_FLAGS), "pod: prometheus-k8s-1\n");
        let twice = [&SIMPLE[..], &FNAME_SET].concat();
        assert_eq!(text(&twice), "a: alpha\nglobal: {}\n");
        // Not the 3-byte magic: bytes as they are.
        for plain in [&b"\x1f\x8b"[..], b"\x1f\x8b\x07rest", b"\x1f"] {
            assert_eq!(run(plain).unwrap(), plain);
        }
    }

    #[test]
    fn rejects_truncated_and_corrupt_gzip() {
        for member in [&SIMPLE[..], &FNAME_SET, &ALL_FLAGS, &TWO_MEMBERS] {
            for cut in 3..member.len() {
                // A cut between two members leaves a whole stream.
                if member == TWO_MEMBERS && cut == 26 {
                    assert_eq!(text(&member[..cut]), "x: $(A");
                    continue;
                }
                let e = run(&member[..cut]).unwrap_err();
                assert_eq!(e, "truncated gzip data", "{cut}");
            }
        }
        let with = |i: usize, b: u8| {
            let mut bad = SIMPLE.to_vec();
            bad[i] = b;
            run(&bad).unwrap_err()
        };
        assert_eq!(with(20, 0x72), "corrupt gzip data (bad CRC-32)");
        assert_eq!(with(24, 9), "corrupt gzip data (bad length)");
        // BTYPE 11 is reserved.
        assert_eq!(with(10, 0x07), "corrupt gzip data (bad deflate data)");
        assert_eq!(with(3, 0x20), "corrupt gzip data (reserved header flags)");
        let mut bad = ALL_FLAGS.to_vec();
        bad[25] ^= 1;
        assert_eq!(run(&bad).unwrap_err(), "corrupt gzip data (bad header CRC)");
        for tail in [&b"\n"[..], b"\x1f\x8b\x07", b"\0\0\0\0"] {
            let e = run(&[&SIMPLE[..], tail].concat()).unwrap_err();
            assert_eq!(e, "corrupt gzip data (trailing garbage)", "{tail:?}");
        }
        for tail in [&b"\x1f"[..], b"\x1f\x8b", b"\x1f\x8b\x08\x00"] {
            let e = run(&[&SIMPLE[..], tail].concat()).unwrap_err();
            assert_eq!(e, "truncated gzip data", "{tail:?}");
        }
    }

    /// A gzip member of `1 + 258 * copies` zeros made by hand: one fixed-Huffman block, a
    /// literal 0 and then `copies` matches of length 258 at distance 1, 13 bits each. Without
    /// `trailer` its CRC-32 and length are zeros (a test that stops early never reaches them).
    fn bomb(copies: usize, trailer: bool) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        let (mut acc, mut n) = (0u32, 0);
        let mut put = |out: &mut Vec<u8>, bits: u32, len: u32| {
            acc |= bits << n;
            n += len;
            while n >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                n -= 8;
            }
        };
        // Huffman codes go most significant bit first.
        let code = |c: u32, len: u32| c.reverse_bits() >> (32 - len);
        put(&mut out, 0b011, 3); // BFINAL, BTYPE 01: fixed codes
        put(&mut out, code(0x30, 8), 8); // literal 0
        for _ in 0..copies {
            put(&mut out, code(0xc5, 8), 8); // length 258
            put(&mut out, 0, 5); // distance 1
        }
        put(&mut out, 0, 7 + 7); // end of block, then the last byte padded
        let size = 1 + 258 * copies;
        let crc = match trailer {
            true => crc32(0, &vec![0; size]),
            false => 0,
        };
        out.extend(crc.to_le_bytes());
        out.extend((size as u32 * u32::from(trailer)).to_le_bytes());
        out
    }

    /// Counts what is read through it.
    struct Counting<'a> {
        data: &'a [u8],
        read: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (&self.data[self.read..]).read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    #[test]
    fn stops_a_gzip_bomb_at_the_limit() {
        let (out, _) = run_with(&bomb(100, true), 1 << 20, &vars).unwrap();
        assert_eq!(out, vec![0; 25801]);
        let bomb = bomb(260_000, false); // 64 MiB of zeros in 412 KiB
        let mut input = Counting {
            data: &bomb,
            read: 0,
        };
        let e = render_stream(&mut input, &mut io::sink(), 1 << 20, &vars).unwrap_err();
        assert_eq!(e.to_string(), "more than 1 MiB when rendered (the limit)");
        assert!(
            input.read <= 2 * BUF,
            "read {} of {}",
            input.read,
            bomb.len()
        );
        // 1 GiB of zeros in 6.5 MB against the real limit.
        let bomb = super::tests::bomb(1 << 22, false);
        let mut input = Counting {
            data: &bomb,
            read: 0,
        };
        let e = render_stream(&mut input, &mut io::sink(), LIMIT, &vars).unwrap_err();
        assert_eq!(e.to_string(), "more than 64 MiB when rendered (the limit)");
        assert!(
            input.read < 500_000,
            "read {} of {}",
            input.read,
            bomb.len()
        );
        // References to empty values shrink the output, not what is read or decompressed.
        let empty = |_: &[u8]| Some(Vec::new());
        let refs = b"$(E)".repeat(1 << 18); // 1 MiB
        let over = [&refs[..], b"x"].concat();
        assert_eq!(whole(&refs, 1 << 20, &empty).unwrap().0, b"");
        let e = whole(&over, 1 << 20, &empty).unwrap_err();
        assert_eq!(e, "more than 1 MiB (the limit)");
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        gz.extend(miniz_oxide::deflate::compress_to_vec(&over, 6));
        let e = whole(&gz, 1 << 20, &empty).unwrap_err();
        assert_eq!(e, "more than 1 MiB when decompressed (the limit)");
        // At the limit exactly, no error; a limit in bytes says so.
        let (out, _) = whole(&refs, 1 << 20, &vars).unwrap();
        assert_eq!(out.len(), 1 << 20);
        let e = whole(&[&refs[..], b"$(A)"].concat(), (1 << 20) + 4, &vars).unwrap_err();
        assert_eq!(e, "more than 1048580 bytes when rendered (the limit)");
    }

    fn scratch(name: &str) -> PathBuf {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("hashreload-render-{pid}-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_atomically_and_only_when_the_bytes_change() {
        let dir = scratch("write");
        let (input, output) = (dir.join("prometheus.yaml.gz"), dir.join("out.yaml"));
        fs::write(&input, SIMPLE).unwrap();
        fs::write(dir.join("out.yaml.tmp"), "left by a crash").unwrap();
        let first = render(&input, &output, LIMIT, &vars).unwrap();
        assert!(first.written);
        assert_eq!(fs::read(&output).unwrap(), b"a: alpha\n");
        assert_eq!(
            first.digest,
            <[u8; 32]>::from(Sha256::digest(b"a: alpha\n"))
        );
        assert_eq!((first.bytes, first.unset), (9, 0));
        assert_eq!(files(&dir), ["out.yaml", "prometheus.yaml.gz"]);
        let before = fs::metadata(&output).unwrap();
        let again = render(&input, &output, LIMIT, &vars).unwrap();
        assert!(!again.written);
        assert_eq!(again.digest, first.digest);
        let after = fs::metadata(&output).unwrap();
        assert_eq!(after.ino(), before.ino());
        assert_eq!(after.mtime_nsec(), before.mtime_nsec());
        // Same length, other bytes: rewritten.
        fs::write(&output, b"a: alpha!").unwrap();
        assert!(render(&input, &output, LIMIT, &vars).unwrap().written);
        assert_eq!(fs::read(&output).unwrap(), b"a: alpha\n");
        // A plain input, an unset variable.
        fs::write(&input, "b: $(B)\n").unwrap();
        let before = fs::metadata(&output).unwrap();
        let plain = render(&input, &output, LIMIT, &vars).unwrap();
        assert!(plain.written);
        assert_eq!((plain.unset, plain.unset_names), (1, vec!["B".to_string()]));
        assert_eq!(fs::read(&output).unwrap(), b"b: $(B)\n");
        assert_ne!(fs::metadata(&output).unwrap().ino(), before.ino());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_the_digest_of_the_bytes_written() {
        let dir = scratch("digest");
        let (input, output) = (dir.join("in.yaml"), dir.join("out.yaml"));
        fs::write(&input, "v: $(V)\n").unwrap();
        fs::write(&output, "old").unwrap();
        // The value changes between pass 1 and pass 2.
        let calls = Cell::new(0);
        let vars = |_: &[u8]| {
            calls.set(calls.get() + 1);
            Some(format!("{}", calls.get()).into_bytes())
        };
        let done = render(&input, &output, LIMIT, &vars).unwrap();
        assert_eq!(calls.get(), 2);
        assert_eq!(fs::read(&output).unwrap(), b"v: 2\n");
        assert_eq!(done.digest, <[u8; 32]>::from(Sha256::digest(b"v: 2\n")));
        // With no output yet there is nothing to compare with: one pass, straight to the file.
        fs::remove_file(&output).unwrap();
        let done = render(&input, &output, LIMIT, &vars).unwrap();
        assert_eq!(calls.get(), 3);
        assert!(done.written);
        assert_eq!(fs::read(&output).unwrap(), b"v: 3\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_error_leaves_the_previous_output_and_no_temp_file() {
        let dir = scratch("error");
        let (input, output) = (dir.join("in.yaml.gz"), dir.join("out.yaml"));
        fs::write(&output, "old").unwrap();
        let mut bad = SIMPLE.to_vec();
        bad[20] ^= 1;
        fs::write(&input, &bad).unwrap();
        let e = render(&input, &output, LIMIT, &vars)
            .unwrap_err()
            .to_string();
        let want = format!(
            "--config-file {}: corrupt gzip data (bad CRC-32)",
            input.display()
        );
        assert_eq!(e, want);
        // Pass 2 fails: the value grows past the limit after pass 1.
        fs::write(&input, "secret: $(V)\n").unwrap();
        let calls = Cell::new(0);
        let vars = |_: &[u8]| {
            calls.set(calls.get() + 1);
            Some(vec![b's'; calls.get() * 600_000])
        };
        let e = render(&input, &output, 1 << 20, &vars)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(": more than 1 MiB when rendered (the limit)"),
            "{e}"
        );
        assert!(!e.contains("secret") && !e.contains("sss"), "{e}");
        assert_eq!(calls.get(), 2);
        assert_eq!(fs::read(&output).unwrap(), b"old");
        assert_eq!(files(&dir), ["in.yaml.gz", "out.yaml"]);
        // The rename fails: a directory is in the way.
        let blocked = dir.join("blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        let e = render(&input, &blocked, LIMIT, &super::tests::vars).unwrap_err();
        let want = format!("--config-envsubst-file {}: ", blocked.display());
        assert!(e.to_string().starts_with(&want), "{e}");
        assert_eq!(files(&dir), ["blocked", "in.yaml.gz", "out.yaml"]);
        let e = render(&dir.join("none"), &output, LIMIT, &vars).unwrap_err();
        assert!(e.to_string().contains("none: No such file"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
