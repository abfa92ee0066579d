//! A SIGHUP whose outcome is confirmed through Prometheus' runtimeinfo API
//! (`GET /api/v1/status/runtimeinfo`), as prometheus-operator's ProcessSignal reload strategy
//! wants: a signal has no answer, but Prometheus reports whether its last reload worked
//! (`data.reloadConfigSuccess`) and when its config last loaded (`data.lastConfigTime`).
//!
//! One delivery reads the status, signals, then polls until the config time moves on (reloaded),
//! the status turns from success to failure (rejected), or the delivery timeout passes.
//! `lastConfigTime` has one-second resolution (Prometheus 2.42 reports `...T01:56:17Z`), so a
//! reload within the second of the previous one would look like no reload: the signal waits
//! until the wall clock has left that second.

use crate::duration::format_duration;
use crate::signal::{Select, Signal};
use crate::target::HttpUrl;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runtimeinfo is a few hundred bytes; more is not Prometheus.
const BODY_LIMIT: u64 = 64 * 1024;

/// How often the status is read after the signal (a reload takes milliseconds to seconds).
const POLL: Duration = Duration::from_millis(200);

/// A signal target (`signal:NAME`) that succeeds only once Prometheus reports the new config.
pub struct Confirmed {
    signal: Signal,
    url: HttpUrl,
    timeout: Duration,
}

impl Confirmed {
    /// SIGHUP to the processes named `process_name` (as `--process` finds them), confirmed at
    /// `runtimeinfo` within `timeout`.
    pub fn new(process_name: String, runtimeinfo: HttpUrl, timeout: Duration) -> Confirmed {
        Confirmed {
            signal: Signal::new(Select::Process(process_name), libc::SIGHUP),
            url: runtimeinfo,
            timeout,
        }
    }

    pub fn name(&self) -> &str {
        self.signal.name()
    }

    pub fn deliver(&self) -> Result<String, String> {
        confirm(&Wall, self.timeout, &mut |t| self.fetch(t), &mut || {
            self.signal.deliver()
        })
    }

    fn fetch(&self, timeout: Duration) -> Result<Status, String> {
        let name = self.url.name();
        let (code, body) = crate::target::get(&self.url, timeout, BODY_LIMIT)
            .map_err(|e| format!("GET {name}: {e}"))?;
        if !(200..300).contains(&code) {
            return Err(format!("GET {name}: HTTP {code}"));
        }
        parse_status(&body).map_err(|e| format!("GET {name}: {e}"))
    }
}

/// Time as a delivery needs it; a fake in tests, so they never sleep.
trait Clock {
    fn now(&self) -> Instant;
    /// Wall-clock time since the Unix epoch, to compare with `lastConfigTime`.
    fn unix(&self) -> Duration;
    fn sleep(&self, d: Duration);
}

struct Wall;

impl Clock for Wall {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn unix(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// What runtimeinfo says about the config.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Status {
    success: bool,
    /// `lastConfigTime` as Unix seconds and nanoseconds, for comparing.
    time: (i64, u32),
    /// `lastConfigTime` as the server wrote it, for messages (a validated timestamp).
    text: String,
}

/// Reads the status, signals, and waits for the outcome; `fetch` gets the time it may take.
fn confirm(
    clock: &impl Clock,
    timeout: Duration,
    fetch: &mut dyn FnMut(Duration) -> Result<Status, String>,
    signal: &mut dyn FnMut() -> Result<String, String>,
) -> Result<String, String> {
    let deadline = clock.now() + timeout;
    let before = fetch(timeout)?;
    // The first second after `lastConfigTime`'s own (none to wait for before 1970).
    let next = u64::try_from(before.time.0 + 1).map_or(Duration::ZERO, Duration::from_secs);
    loop {
        let wait = next.saturating_sub(clock.unix());
        if wait.is_zero() {
            break;
        }
        if clock.now() + wait > deadline {
            return Err(format!(
                "lastConfigTime {} is ahead of this host's clock; no signal sent",
                before.text
            ));
        }
        clock.sleep(wait);
    }
    let sent = signal()?;
    loop {
        clock.sleep(POLL.min(deadline.saturating_duration_since(clock.now())));
        // At the deadline, one last short look.
        let left = deadline.saturating_duration_since(clock.now());
        let seen = match fetch(left.max(Duration::from_millis(100))) {
            Ok(s) if s.success && s.time > before.time => {
                return Ok(format!("{sent}; config reloaded at {}", s.text));
            }
            Ok(s) if before.success && !s.success => {
                return Err(format!(
                    "{sent}, but the server rejected the new config (reloadConfigSuccess false)"
                ));
            }
            Ok(s) => format!(
                "reloadConfigSuccess {}, lastConfigTime {}",
                s.success, s.text
            ),
            Err(e) => e,
        };
        if clock.now() >= deadline {
            return Err(format!(
                "{sent}, but no reload seen within {} (last seen: {seen})",
                format_duration(timeout)
            ));
        }
    }
}

/// `status`, `data.reloadConfigSuccess` and `data.lastConfigTime` from a runtimeinfo body.
fn parse_status(body: &[u8]) -> Result<Status, String> {
    let mut r = Reader { b: body, i: 0 };
    let top = r
        .value(32)
        .ok_or_else(|| format!("the body is not JSON (at byte {})", r.i))?;
    match top.field("status") {
        Some(Value::Str(s)) if s == "success" => {}
        Some(Value::Str(s)) if s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(format!("status \"{s}\", not \"success\""));
        }
        _ => return Err("no \"status\": \"success\" in the body".to_string()),
    }
    let data = top.field("data");
    let success = match data.and_then(|d| d.field("reloadConfigSuccess")) {
        Some(Value::Bool(b)) => *b,
        _ => return Err("no boolean data.reloadConfigSuccess in the body".to_string()),
    };
    let Some(Value::Str(text)) = data.and_then(|d| d.field("lastConfigTime")) else {
        return Err("no data.lastConfigTime in the body".to_string());
    };
    let time = parse_time(text).ok_or("data.lastConfigTime is not an RFC 3339 time")?;
    Ok(Status {
        success,
        time,
        text: text.clone(),
    })
}

/// The JSON we look into: objects, strings and booleans; the rest is only checked.
#[derive(Debug)]
enum Value {
    Obj(Vec<(String, Value)>),
    Str(String),
    Bool(bool),
    Other,
}

impl Value {
    /// A member of an object; the last of duplicates, as Go's decoder does.
    fn field(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(f) => f.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A small JSON reader: `i` is where it stopped, also on an error.
struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    /// Skips white space; true if the next byte is `c` (then consumed).
    fn eat(&mut self, c: u8) -> bool {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
        let found = self.b.get(self.i) == Some(&c);
        self.i += usize::from(found);
        found
    }

    /// One value, nested at most `depth` deep.
    fn value(&mut self, depth: u32) -> Option<Value> {
        if self.eat(b'"') {
            return self.string().map(Value::Str);
        }
        if self.eat(b'{') {
            let mut fields = Vec::new();
            if depth == 0 || self.eat(b'}') {
                return (depth > 0).then_some(Value::Obj(fields));
            }
            loop {
                if !self.eat(b'"') {
                    return None;
                }
                let key = self.string()?;
                if !self.eat(b':') {
                    return None;
                }
                fields.push((key, self.value(depth - 1)?));
                if self.eat(b'}') {
                    return Some(Value::Obj(fields));
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        if self.eat(b'[') {
            if depth == 0 || self.eat(b']') {
                return (depth > 0).then_some(Value::Other);
            }
            loop {
                self.value(depth - 1)?;
                if self.eat(b']') {
                    return Some(Value::Other);
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        let start = self.i;
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') = self.b.get(self.i) {
            self.i += 1;
        }
        match &self.b[start..self.i] {
            b"true" => Some(Value::Bool(true)),
            b"false" => Some(Value::Bool(false)),
            b"null" => Some(Value::Other),
            [b'-' | b'0'..=b'9', ..] => Some(Value::Other),
            _ => None,
        }
    }

    /// The rest of a string after its `"`. A `\u` escape of a UTF-16 surrogate (half of a
    /// character outside the BMP) becomes U+FFFD: no key or value we read has one.
    fn string(&mut self) -> Option<String> {
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            let ch = match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => e as char,
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            let n = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            char::from_u32(n).unwrap_or('\u{fffd}')
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {
                    out.push(c);
                    continue;
                }
            };
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
}

/// RFC 3339 as Go marshals a `time.Time`: `2026-12-01T01:56:17Z`, `...17.123456789+02:00`;
/// Unix seconds and nanoseconds.
fn parse_time(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at + len)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(at, c)| b.get(at) != Some(&c)) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(i + 1, digits)? * 10i64.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let offset = match (b.get(i), b.len() - i) {
        (Some(b'Z'), 1) => 0,
        (Some(&sign @ (b'+' | b'-')), 6) if b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            (oh * 3600 + om * 60) * if sign == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        28 + i64::from(leap),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[mo as usize - 1] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some((secs, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date; Howard Hinnant's algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    /// `curl http://127.0.0.1:PORT/api/v1/status/runtimeinfo` from Debian's Prometheus 2.42,
    /// just after a SIGHUP with a good config.
    const PROMETHEUS_2_42: &str = r#"{"status":"success","data":{"startTime":"2026-12-01T01:56:14.382698773Z","CWD":"/tmp","reloadConfigSuccess":true,"lastConfigTime":"2026-12-01T01:56:17Z","corruptionCount":0,"goroutineCount":24,"GOMAXPROCS":2,"GOGC":"","GODEBUG":"","storageRetention":"15d"}}"#;

    fn status(success: bool, text: &str) -> Status {
        Status {
            success,
            time: parse_time(text).unwrap(),
            text: text.to_string(),
        }
    }

    #[test]
    fn reads_prometheus_bodies() {
        assert_eq!(
            parse_status(PROMETHEUS_2_42.as_bytes()),
            Ok(status(true, "2026-12-01T01:56:17Z"))
        );
        // After a SIGHUP with a broken config: the time stays, the flag drops.
        let rejected = PROMETHEUS_2_42.replace(
            r#""reloadConfigSuccess":true"#,
            r#""reloadConfigSuccess":false"#,
        );
        assert_eq!(
            parse_status(rejected.as_bytes()),
            Ok(status(false, "2026-12-01T01:56:17Z"))
        );
        // Escapes, white space, nesting and keys in any order; the last duplicate wins.
        let body = "\r\n{ \"data\" : {\"x\":[1,-2.5e+3,{\"a\":[]},\"\\\"}\"],\"reloadConfigSuccess\":false,\n\
                    \"lastConfig\\u0054ime\":\"2026-12-01T01:56:17.5Z\",\"reloadConfigSuccess\" :\ttrue},\
                    \"st\\u0061tus\":\"\\u0073uccess\",\"warnings\":null,\"\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\\\":{}}";
        assert_eq!(
            parse_status(body.as_bytes()),
            Ok(Status {
                success: true,
                time: (1_796_090_177, 500_000_000),
                text: "2026-12-01T01:56:17.5Z".to_string()
            })
        );
    }

    #[test]
    fn bad_bodies_say_what_is_wrong_without_repeating_the_body() {
        let cases: &[(&str, &str)] = &[
            ("", "the body is not JSON (at byte 0)"),
            ("<html>secret</html>", "the body is not JSON (at byte 0)"),
            (
                r#"{"status":"success""#,
                "the body is not JSON (at byte 19)",
            ),
            (r#"{"status":"succ"#, "the body is not JSON (at byte 15)"),
            (
                r#"{"status":"success","data":{"a":tru}}"#,
                "the body is not JSON (at byte 35)",
            ),
            (r#"{"status":"\x"}"#, "the body is not JSON (at byte 13)"),
            (
                r#"{"status":"\u12G4"}"#,
                "the body is not JSON (at byte 17)",
            ),
            ("{\"status\":\"a\nb\"}", "the body is not JSON (at byte 13)"),
            (
                r#"{"status":"success",}"#,
                "the body is not JSON (at byte 20)",
            ),
            (
                r#"{"status":"error","error":"secret"}"#,
                "status \"error\", not \"success\"",
            ),
            (
                r#"{"status":"secret secret"}"#,
                "no \"status\": \"success\" in the body",
            ),
            (
                r#"["status","success"]"#,
                "no \"status\": \"success\" in the body",
            ),
            (
                r#"{"status":"success"}"#,
                "no boolean data.reloadConfigSuccess in the body",
            ),
            (
                r#"{"status":"success","data":{"reloadConfigSuccess":"true"}}"#,
                "no boolean data.reloadConfigSuccess in the body",
            ),
            (
                r#"{"status":"success","data":{"reloadConfigSuccess":true,"lastConfigTime":0}}"#,
                "no data.lastConfigTime in the body",
            ),
            (
                r#"{"status":"success","data":{"reloadConfigSuccess":true,"lastConfigTime":"secret"}}"#,
                "data.lastConfigTime is not an RFC 3339 time",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse_status(body.as_bytes()).unwrap_err(), *want, "{body}");
        }
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_status(deep.as_bytes())
            .unwrap_err()
            .contains("not JSON"));
        let deep = format!(
            "{{\"status\":\"success\",\"data\":{}}}",
            "{\"a\":".repeat(40) + "1" + &"}".repeat(40)
        );
        assert!(parse_status(deep.as_bytes())
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn parses_rfc_3339_times_as_go_writes_them() {
        // Expected values from GNU date: `date -u -d TIME +%s`.
        let ok = [
            ("2026-12-01T01:56:17Z", (1_796_090_177, 0)),
            (
                "2026-12-01T01:56:17.382698773Z",
                (1_796_090_177, 382_698_773),
            ),
            ("2026-12-01T07:26:17+05:30", (1_796_090_177, 0)),
            ("2026-11-30T20:56:17-05:00", (1_796_090_177, 0)),
            ("2026-12-01T01:56:17.1-00:00", (1_796_090_177, 100_000_000)),
            ("1970-01-01T00:00:00Z", (0, 0)),
            ("1969-12-31T23:59:59Z", (-1, 0)),
            ("2000-02-29T12:00:00Z", (951_825_600, 0)),
            ("2024-02-29T23:59:59.5+00:00", (1_709_251_199, 500_000_000)),
            ("0001-01-01T00:00:00Z", (-62_135_596_800, 0)),
            ("9999-12-31T23:59:59Z", (253_402_300_799, 0)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_time(s), Some(want), "{s}");
        }
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T01:56:17",
            "2026-12-01 01:56:17Z",
            "2026-12-01t01:56:17z",
            "2026-12-01T01:56:17+0530",
            "2026-12-01T01:56:17+05:30Z",
            "2026-12-01T01:56:17Z ",
            "2026-12-01T01:56:17.Z",
            "2026-12-01T01:56:17.1234567890Z",
            "2026-12-01T01:56:17+24:00",
            "2026-12-01T01:56:17+05:60",
            "2026-13-01T01:56:17Z",
            "2026-00-01T01:56:17Z",
            "2026-02-29T01:56:17Z",
            "1900-02-29T01:56:17Z",
            "2026-04-31T01:56:17Z",
            "2026-12-00T01:56:17Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T01:60:17Z",
            "2026-12-01T01:56:60Z",
            "+026-12-01T01:56:17Z",
            "2026-12-01T01:56:1xZ",
            "20261-12-01T01:56:17Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// Time that passes only by `sleep`; the wall clock starts at `unix0`.
    struct Fake {
        start: Instant,
        unix0: Duration,
        elapsed: Cell<Duration>,
    }

    impl Clock for Fake {
        fn now(&self) -> Instant {
            self.start + self.elapsed.get()
        }
        fn unix(&self) -> Duration {
            self.unix0 + self.elapsed.get()
        }
        fn sleep(&self, d: Duration) {
            self.elapsed.set(self.elapsed.get() + d)
        }
    }

    /// What `confirm` did against a scripted server: its result, the fake wall-clock time of the
    /// signal (if sent) and the time each read was allowed.
    struct Run {
        result: Result<String, String>,
        signalled_at: Option<Duration>,
        timeouts: Vec<Duration>,
        elapsed: Duration,
    }

    /// `confirm` with a wall clock at `unix0` and a 10 s timeout, the server answering from
    /// `script` (first the read before the signal; the last answer repeats).
    fn run(unix0: Duration, script: Vec<Result<Status, String>>) -> Run {
        let clock = Fake {
            start: Instant::now(),
            unix0,
            elapsed: Cell::new(Duration::ZERO),
        };
        let script = RefCell::new(VecDeque::from(script));
        let timeouts = RefCell::new(Vec::new());
        let signalled_at = Cell::new(None);
        let result = confirm(
            &clock,
            Duration::from_secs(10),
            &mut |t| {
                timeouts.borrow_mut().push(t);
                let mut s = script.borrow_mut();
                if s.len() > 1 {
                    s.pop_front().unwrap()
                } else {
                    s[0].clone()
                }
            },
            &mut || {
                assert!(signalled_at.get().is_none(), "signalled twice");
                signalled_at.set(Some(clock.unix()));
                Ok("SIGHUP sent to process 42".to_string())
            },
        );
        Run {
            result,
            signalled_at: signalled_at.get(),
            timeouts: timeouts.into_inner(),
            elapsed: clock.elapsed.get(),
        }
    }

    const T0: &str = "2026-12-01T01:56:17Z";
    const T1: &str = "2026-12-01T01:56:19Z";
    /// Long after T0.
    const LATER: Duration = Duration::from_secs(1_796_100_000);

    #[test]
    fn a_later_config_time_is_a_reload() {
        let r = run(
            LATER,
            vec![
                Ok(status(true, T0)),
                Ok(status(true, T0)),
                Ok(status(true, T1)),
            ],
        );
        assert_eq!(
            r.result.as_deref(),
            Ok("SIGHUP sent to process 42; config reloaded at 2026-12-01T01:56:19Z")
        );
        assert_eq!(
            r.signalled_at,
            Some(LATER),
            "no wait when the second is long past"
        );
        assert_eq!(r.elapsed, 2 * POLL);
        // After a failed reload, a good one counts once its time moves on.
        let r = run(
            LATER,
            vec![
                Ok(status(false, T0)),
                Ok(status(false, T0)),
                Ok(status(true, T1)),
            ],
        );
        assert!(r
            .result
            .unwrap()
            .ends_with("config reloaded at 2026-12-01T01:56:19Z"));
    }

    #[test]
    fn the_signal_waits_for_the_next_second_of_the_config_time() {
        // The config loaded at T0 and the clock is 300 ms into that second.
        let now = Duration::new(1_796_090_177, 300_000_000);
        let r = run(now, vec![Ok(status(true, T0)), Ok(status(true, T1))]);
        assert!(r.result.is_ok(), "{:?}", r.result);
        assert_eq!(r.signalled_at, Some(Duration::from_secs(1_796_090_178)));
        // Fractions of the config time do not matter: still its whole second.
        let t = "2026-12-01T01:56:17.9Z";
        let r = run(now, vec![Ok(status(true, t)), Ok(status(true, T1))]);
        assert_eq!(r.signalled_at, Some(Duration::from_secs(1_796_090_178)));
        // A config time beyond the timeout is not waited for.
        let r = run(
            Duration::from_secs(1_796_090_000),
            vec![Ok(status(true, T0))],
        );
        assert_eq!(
            r.result.unwrap_err(),
            "lastConfigTime 2026-12-01T01:56:17Z is ahead of this host's clock; no signal sent"
        );
        assert_eq!((r.signalled_at, r.elapsed), (None, Duration::ZERO));
    }

    #[test]
    fn a_success_turning_to_failure_is_a_rejection_at_once() {
        let r = run(
            LATER,
            vec![
                Ok(status(true, T0)),
                Ok(status(true, T0)),
                Ok(status(false, T0)),
            ],
        );
        assert_eq!(
            r.result.unwrap_err(),
            "SIGHUP sent to process 42, but the server rejected the new config (reloadConfigSuccess false)"
        );
        assert_eq!(r.elapsed, 2 * POLL);
    }

    #[test]
    fn the_deadline_names_what_was_seen_last() {
        // Still failing from before: nothing tells a new failure from the old one.
        let r = run(LATER, vec![Ok(status(false, T0))]);
        assert_eq!(
            r.result.unwrap_err(),
            "SIGHUP sent to process 42, but no reload seen within 10s (last seen: \
             reloadConfigSuccess false, lastConfigTime 2026-12-01T01:56:17Z)"
        );
        assert_eq!(r.elapsed, Duration::from_secs(10));
        assert!(r.timeouts.iter().all(|t| *t <= Duration::from_secs(10)));
        assert_eq!(
            r.timeouts.len(),
            1 + 50,
            "one read before, then every 200ms"
        );
        // A read that fails after the signal is retried until the deadline.
        let r = run(
            LATER,
            vec![
                Ok(status(true, T0)),
                Err("GET u: timed out".into()),
                Ok(status(true, T1)),
            ],
        );
        assert!(r.result.is_ok(), "{:?}", r.result);
        let r = run(
            LATER,
            vec![Ok(status(true, T0)), Err("GET u: HTTP 503".into())],
        );
        assert_eq!(
            r.result.unwrap_err(),
            "SIGHUP sent to process 42, but no reload seen within 10s (last seen: GET u: HTTP 503)"
        );
    }

    #[test]
    fn no_signal_without_a_status_first() {
        let r = run(LATER, vec![Err("GET u: connection refused".into())]);
        assert_eq!(r.result.unwrap_err(), "GET u: connection refused");
        assert_eq!(r.signalled_at, None);
    }

    /// A runtimeinfo server on 127.0.0.1 that answers `before` until `hups` has a line, then
    /// `after`; stopped on drop.
    struct FakeServer {
        port: u16,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl FakeServer {
        fn start(hups: std::path::PathBuf, before: String, after: String) -> FakeServer {
            use std::io::{Read, Write};
            use std::sync::atomic::Ordering;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let st = stop.clone();
            let thread = std::thread::spawn(move || {
                while !st.load(Ordering::SeqCst) {
                    let Ok((mut conn, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut req = Vec::new();
                    let mut buf = [0; 1024];
                    while !req.ends_with(b"\r\n\r\n") && req.len() < 8192 {
                        match conn.read(&mut buf) {
                            Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                    }
                    let hupped = std::fs::read_to_string(&hups).is_ok_and(|s| !s.is_empty());
                    let body = if hupped { &after } else { &before };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            FakeServer {
                port,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self) -> HttpUrl {
            HttpUrl::parse(&format!(
                "http://localhost:{}/prefix/api/v1/status/runtimeinfo",
                self.port
            ))
            .unwrap()
        }
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// A shell under a name of its own (its argv[0]) that survives SIGHUP and writes a line to
    /// `dir/hups` for each; it ends by itself after ~30 s and is killed on drop.
    struct Hupped {
        child: std::process::Child,
        name: String,
        hups: std::path::PathBuf,
        dir: std::path::PathBuf,
    }

    impl Hupped {
        fn start() -> Hupped {
            use std::os::unix::process::CommandExt;
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let name = format!("hr-ri-{}-{n}", std::process::id());
            let dir = std::env::temp_dir().join(&name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let hups = dir.join("hups");
            let child = std::process::Command::new("/bin/sh")
                .arg0(&name)
                .arg("-c")
                .arg(
                    "trap 'echo hup >> \"$DIR/hups\"' HUP; : > \"$DIR/ready\"; i=0; \
                     while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
                )
                .env("DIR", &dir)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !dir.join("ready").exists() {
                assert!(Instant::now() < deadline, "the shell did not start");
                std::thread::sleep(Duration::from_millis(5));
            }
            Hupped {
                child,
                name,
                hups,
                dir,
            }
        }

        fn hups(&self) -> usize {
            std::fs::read_to_string(&self.hups).map_or(0, |s| s.lines().count())
        }
    }

    impl Drop for Hupped {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn body(success: bool, time: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"reloadConfigSuccess":{success},"lastConfigTime":"{time}"}}}}"#
        )
    }

    #[test]
    fn signals_a_real_process_and_reads_the_outcome_over_http() {
        let p = Hupped::start();
        let pid = p.child.id();
        let old = "2020-01-01T00:00:00Z";
        let server = FakeServer::start(
            p.hups.clone(),
            body(true, old),
            body(true, "2020-01-01T01:00:05.25+01:00"),
        );
        let c = Confirmed::new(p.name.clone(), server.url(), Duration::from_secs(10));
        assert_eq!(c.name(), format!("signal:{}", p.name));
        assert_eq!(
            c.deliver(),
            Ok(format!(
                "SIGHUP sent to process {pid}; config reloaded at 2020-01-01T01:00:05.25+01:00"
            ))
        );
        assert_eq!(p.hups(), 1);
        drop(server);

        let server = FakeServer::start(p.hups.clone(), body(true, old), body(false, old));
        std::fs::write(&p.hups, "").unwrap();
        let c = Confirmed::new(p.name.clone(), server.url(), Duration::from_secs(10));
        assert_eq!(
            c.deliver().unwrap_err(),
            format!(
                "SIGHUP sent to process {pid}, but the server rejected the new config \
                 (reloadConfigSuccess false)"
            )
        );
        assert_eq!(p.hups(), 1);
    }

    #[test]
    fn no_signal_when_the_server_does_not_answer() {
        let p = Hupped::start();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = HttpUrl::parse(&format!(
            "http://127.0.0.1:{port}/api/v1/status/runtimeinfo"
        ))
        .unwrap();
        let c = Confirmed::new(p.name.clone(), url, Duration::from_secs(5));
        let e = c.deliver().unwrap_err();
        assert!(
            e.starts_with(&format!(
                "GET http://127.0.0.1:{port}/api/v1/status/runtimeinfo: "
            )),
            "{e}"
        );
        assert_eq!(p.hups(), 0);
        // Nor when the body is too large to be runtimeinfo.
        let big = body(true, "2020-01-01T00:00:00Z") + &" ".repeat(64 * 1024);
        let server = FakeServer::start(p.hups.clone(), big, String::new());
        let c = Confirmed::new(p.name.clone(), server.url(), Duration::from_secs(5));
        let e = c.deliver().unwrap_err();
        assert!(
            e.ends_with("runtimeinfo: the body is larger than 65536 bytes"),
            "{e}"
        );
        assert_eq!(p.hups(), 0);
        // Nor without a process.
        let server = FakeServer::start(
            p.hups.clone(),
            body(true, "2020-01-01T00:00:00Z"),
            String::new(),
        );
        let c = Confirmed::new(
            "no-such-process-hashreload".into(),
            server.url(),
            Duration::from_secs(5),
        );
        assert_eq!(
            c.deliver().unwrap_err(),
            "no process named 'no-such-process-hashreload' found"
        );
    }
}
