//! Structured logging to stderr: logfmt (the Prometheus ecosystem's convention) or JSON lines.
//!
//! Callers pass only values that are safe to print: targets by their redacted names, never a
//! header value, a token or URL userinfo.

use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        ["debug", "info", "warn", "error"][self as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Logfmt,
    Json,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);

pub fn init(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(format == Format::Json, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

pub type Field<'a> = (&'a str, &'a dyn Display);

pub fn debug(msg: &str, fields: &[Field]) {
    log(Level::Debug, msg, fields)
}
pub fn info(msg: &str, fields: &[Field]) {
    log(Level::Info, msg, fields)
}
pub fn warn(msg: &str, fields: &[Field]) {
    log(Level::Warn, msg, fields)
}
pub fn error(msg: &str, fields: &[Field]) {
    log(Level::Error, msg, fields)
}

pub fn log(level: Level, msg: &str, fields: &[Field]) {
    if !enabled(level) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let line = render(now, level, msg, fields, JSON.load(Ordering::Relaxed));
    // One write per line, so lines from a metrics thread never interleave with ours.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn render(unix_ms: u64, level: Level, msg: &str, fields: &[Field], json: bool) -> String {
    let mut ts = [0u8; 24];
    let ts = timestamp(unix_ms, &mut ts);
    let mut out = String::with_capacity(128);
    let all = [
        ("ts", &ts as &dyn Display),
        ("level", &level.name()),
        ("msg", &msg),
    ];
    let mut value = String::new();
    for (i, (key, v)) in all.iter().chain(fields).enumerate() {
        value.clear();
        let _ = write!(value, "{v}");
        if json {
            out.push(if i == 0 { '{' } else { ',' });
            json_string(&mut out, key);
            out.push(':');
            json_string(&mut out, &value);
        } else {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(key);
            out.push('=');
            logfmt_value(&mut out, &value);
        }
    }
    out.push_str(if json { "}\n" } else { "\n" });
    out
}

fn logfmt_value(out: &mut String, v: &str) {
    let quote = v.is_empty()
        || v.chars()
            .any(|c| c <= ' ' || c == '"' || c == '=' || c == '\\');
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    escape_into(out, v);
    out.push('"');
}

/// `v` as a JSON string, quoted and escaped.
pub fn json_string(out: &mut String, v: &str) {
    out.push('"');
    escape_into(out, v);
    out.push('"');
}

/// The escaping JSON and go-logfmt share: quotes, backslashes and control characters.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Formats `2026-11-25T10:00:00.123Z` into `buf` without allocating, so the signal handler can
/// use it too.
pub fn timestamp(unix_ms: u64, buf: &mut [u8; 24]) -> &str {
    let secs = unix_ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let parts: [(u64, usize); 7] = [
        (y as u64, 4),
        (mo as u64, 2),
        (d as u64, 2),
        (sod / 3600, 2),
        (sod / 60 % 60, 2),
        (sod % 60, 2),
        (unix_ms % 1000, 3),
    ];
    let seps = b"--T::.Z";
    let mut i = 0;
    for ((mut n, width), sep) in parts.into_iter().zip(seps) {
        for k in (0..width).rev() {
            buf[i + k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        i += width;
        buf[i] = *sep;
        i += 1;
    }
    std::str::from_utf8(&buf[..i]).unwrap_or("")
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Whether the JSON format is on, for the signal handler's last line.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        let mut b = [0; 24];
        assert_eq!(timestamp(0, &mut b), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            timestamp(1_795_600_799_123, &mut b),
            "2026-11-25T09:59:59.123Z"
        );
        assert_eq!(
            timestamp(951_782_400_000, &mut b),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn renders_logfmt_with_quoting() {
        let line = render(
            0,
            Level::Warn,
            "reload failed",
            &[
                ("target", &"http://127.0.0.1:9090/-/reload"),
                ("body", &"bad \"x\"\nmore"),
                ("n", &3),
            ],
            false,
        );
        assert_eq!(
            line,
            "ts=1970-01-01T00:00:00.000Z level=warn msg=\"reload failed\" \
             target=http://127.0.0.1:9090/-/reload body=\"bad \\\"x\\\"\\nmore\" n=3\n"
        );
    }

    #[test]
    fn renders_json() {
        let line = render(0, Level::Info, "hi", &[("k", &"a\u{1}b"), ("e", &"")], true);
        assert_eq!(
            line,
            "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"hi\",\"k\":\"a\\u0001b\",\"e\":\"\"}\n"
        );
    }

    #[test]
    fn empty_and_equals_values_are_quoted() {
        let line = render(0, Level::Info, "m", &[("a", &""), ("b", &"x=y")], false);
        assert!(line.ends_with("msg=m a=\"\" b=\"x=y\"\n"), "{line}");
    }

    #[test]
    fn parses_levels() {
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse("WARN"), None);
        assert!(Level::Error > Level::Debug);
    }
}
