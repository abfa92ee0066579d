//! The command line: one table of flags drives parsing, `--help` and the README's flag table.
//!
//! Parsing stops at `--` or at the first argument that is not an option; the rest is the COMMAND,
//! so its own flags (curl's `-X`, `-H`) are never taken as ours. Every value is checked here, once:
//! the rest of the program trusts a `Config`.

use crate::log::{Format, Level};
use crate::target::{self, HttpUrl};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One command-line flag. `value` is the placeholder of a flag that takes a value.
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    pub value: Option<&'static str>,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const fn flag(
    short: Option<char>,
    long: &'static str,
    value: Option<&'static str>,
    default: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        short,
        long,
        value,
        default,
        help,
    }
}

#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    flag(Some('p'), "path", Some("PATH"), None,
        "Directory (walked recursively) or file to watch; repeatable, at least one"),
    flag(Some('u'), "url", Some("URL"), None,
        "Reload endpoint, http:// only; repeatable. Userinfo becomes basic auth"),
    flag(Some('X'), "method", Some("METHOD"), Some("POST"), "HTTP method of reload requests"),
    flag(None, "status", Some("CODES"), Some("any 2xx"),
        "HTTP statuses that count as success, a comma list such as 200,204"),
    flag(None, "timeout", Some("DUR"), Some("10s"),
        "Limit for one delivery attempt (request or COMMAND run)"),
    flag(Some('H'), "header", Some("'NAME: VALUE'"), None,
        "Extra request header; repeatable. Values never reach a log"),
    flag(None, "bearer-token-file", Some("FILE"), None,
        "Send 'Authorization: Bearer <file content>', re-read at every request"),
    flag(Some('i'), "interval", Some("DUR"), Some("1s"), "Full re-hash interval"),
    flag(None, "retry-interval", Some("DUR"), Some("1s"),
        "First wait after a failed delivery, doubling (with jitter) up to --max-backoff"),
    flag(None, "max-backoff", Some("DUR"), Some("5m"), "Longest wait between delivery attempts"),
    flag(None, "settle", Some("DUR"), Some("0"),
        "For non-atomic writers: deliver once two scans DUR apart agree (at most 10 x DUR)"),
    flag(None, "reload-on-start", None, None, "Deliver once after the first scan"),
    flag(None, "listen-address", Some("ADDR"), Some("off"),
        "Serve /metrics and /healthz on ADDR, such as 127.0.0.1:9533 or :9533"),
    flag(None, "log-format", Some("FORMAT"), Some("logfmt"), "logfmt or json"),
    flag(None, "log-level", Some("LEVEL"), Some("info"), "debug, info, warn or error"),
    flag(Some('v'), "verbose", None, None, "Same as --log-level debug"),
    flag(Some('q'), "quiet", None, None, "Same as --log-level warn"),
    flag(Some('h'), "help", None, None, "Print this help"),
    flag(Some('V'), "version", None, None, "Print the version"),
];

/// Everything the program needs, checked.
#[derive(Debug)]
pub struct Config {
    pub paths: Vec<PathBuf>,
    pub urls: Vec<HttpUrl>,
    pub method: String,
    /// Accepted statuses; empty means any 2xx.
    pub statuses: Vec<u16>,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub bearer_token_file: Option<PathBuf>,
    pub interval: Duration,
    pub retry_interval: Duration,
    pub max_backoff: Duration,
    pub settle: Duration,
    pub reload_on_start: bool,
    pub log_format: Format,
    pub log_level: Level,
    pub listen_address: Option<SocketAddr>,
    /// The resolved program path, then its arguments.
    pub command: Option<(PathBuf, Vec<OsString>)>,
}

#[derive(Debug)]
pub enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

/// A bad command line: one line naming the flag or path and what is expected. Exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

pub fn parse(args: Vec<OsString>) -> Result<Parsed, UsageError> {
    let (options, command) = split(args)?;
    let has = |name: &str| options.iter().any(|(f, _)| f.long == name);
    if has("help") {
        return Ok(Parsed::Help);
    }
    if has("version") {
        return Ok(Parsed::Version);
    }
    // Repeatable flags keep argv order; a single-valued flag given twice takes the last value.
    let values = |name: &str| -> Vec<OsString> {
        options
            .iter()
            .filter(|(f, _)| f.long == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    };
    let last = |name: &str| values(name).pop();
    let paths: Vec<PathBuf> = values("path").into_iter().map(PathBuf::from).collect();
    let urls = values("url");
    let headers = values("header");
    let method = last("method");
    let status = last("status");
    let timeout = last("timeout");
    let bearer = last("bearer-token-file");
    let interval = last("interval");
    let retry_interval = last("retry-interval");
    let max_backoff = last("max-backoff");
    let settle = last("settle");
    let log_format = last("log-format");
    let log_level = last("log-level");
    let listen = last("listen-address");
    let reload_on_start = has("reload-on-start");
    let verbose = has("verbose");
    let quiet = has("quiet");

    if paths.is_empty() {
        return usage("--path: at least one directory or file to watch is required");
    }
    for p in &paths {
        check_path(p)?;
    }
    let urls = urls
        .iter()
        .map(|u| HttpUrl::parse(&utf8("--url", u)?).map_err(|e| UsageError(format!("--url: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let command = match command.split_first() {
        None => None,
        Some((program, rest)) => match target::find_program(program) {
            Some(path) => Some((path, rest.to_vec())),
            None => {
                return usage(format!(
                    "COMMAND '{}': not found or not executable (searched PATH)",
                    program.to_string_lossy()
                ))
            }
        },
    };
    if urls.is_empty() && command.is_none() {
        return usage("nothing to reload: give --url URL or a COMMAND after the options");
    }
    let method = match method {
        None => "POST".to_string(),
        Some(m) => parse_method(&utf8("--method", &m)?)?,
    };
    let statuses = match status {
        None => Vec::new(),
        Some(s) => parse_statuses(&utf8("--status", &s)?)?,
    };
    let headers = headers
        .iter()
        .map(|h| parse_header(&utf8("--header", h)?))
        .collect::<Result<Vec<_>, _>>()?;
    let bearer_token_file = bearer.map(PathBuf::from);
    if let Some(f) = &bearer_token_file {
        if let Err(e) = std::fs::read(f) {
            return usage(format!("--bearer-token-file {}: {e}", f.display()));
        }
        if urls.iter().any(|u| u.has_userinfo()) {
            return usage("--bearer-token-file: cannot be combined with userinfo in --url");
        }
    }
    let dur = |name: &str, v: Option<OsString>, default: Duration, zero_ok: bool| {
        let Some(v) = v else { return Ok(default) };
        let s = utf8(name, &v)?;
        match parse_duration(&s) {
            Some(d) if zero_ok || !d.is_zero() => Ok(d),
            Some(_) => usage(format!("{name} {s}: must be more than 0")),
            None => usage(format!(
                "{name} {s}: expected a duration such as 250ms, 2s, 1m, 1h or 1m30s"
            )),
        }
    };
    let timeout = dur("--timeout", timeout, Duration::from_secs(10), false)?;
    let interval = dur("--interval", interval, Duration::from_secs(1), false)?;
    let retry_interval = dur(
        "--retry-interval",
        retry_interval,
        Duration::from_secs(1),
        false,
    )?;
    let max_backoff = dur(
        "--max-backoff",
        max_backoff,
        Duration::from_secs(300),
        false,
    )?;
    let settle = dur("--settle", settle, Duration::ZERO, true)?;
    if max_backoff < retry_interval {
        return usage(format!(
            "--max-backoff {}: must be at least --retry-interval ({})",
            format_duration(max_backoff),
            format_duration(retry_interval)
        ));
    }
    let log_format = match log_format.as_deref().map(|s| s.to_str()) {
        None | Some(Some("logfmt")) => Format::Logfmt,
        Some(Some("json")) => Format::Json,
        Some(_) => return usage("--log-format: expected logfmt or json"),
    };
    if verbose && quiet {
        return usage("--verbose and --quiet: choose one");
    }
    let log_level = match log_level {
        Some(l) => match l.to_str().and_then(Level::parse) {
            Some(l) => l,
            None => return usage("--log-level: expected debug, info, warn or error"),
        },
        None if verbose => Level::Debug,
        None if quiet => Level::Warn,
        None => Level::Info,
    };
    let listen_address = match listen {
        None => None,
        Some(a) => {
            let a = utf8("--listen-address", &a)?;
            match parse_listen(&a) {
                Some(addr) => Some(addr),
                None => return usage(format!("--listen-address {a}: expected HOST:PORT such as 127.0.0.1:9533, [::1]:9533 or :9533")),
            }
        }
    };
    Ok(Parsed::Run(Box::new(Config {
        paths,
        urls,
        method,
        statuses,
        timeout,
        headers,
        bearer_token_file,
        interval,
        retry_interval,
        max_backoff,
        settle,
        reload_on_start,
        log_format,
        log_level,
        listen_address,
        command,
    })))
}

type Options = Vec<(&'static Flag, Option<OsString>)>;

/// Splits argv into our options, in argv order with their values, and the COMMAND.
/// Unknown flags and missing values are caught here.
fn split(args: Vec<OsString>) -> Result<(Options, Vec<OsString>), UsageError> {
    let mut options = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            // The first free argument starts the COMMAND.
            return Ok((options, std::iter::once(arg).chain(args).collect()));
        }
        let text = arg.to_string_lossy();
        let (flag, inline) = if let Some(long) = bytes.strip_prefix(b"--") {
            let (key, value) = match long.iter().position(|&b| b == b'=') {
                Some(i) => (&long[..i], Some(&long[i + 1..])),
                None => (long, None),
            };
            match FLAGS.iter().find(|f| f.long.as_bytes() == key) {
                Some(f) => (f, value),
                None => return usage(format!("unknown flag '--{}'", String::from_utf8_lossy(key))),
            }
        } else {
            // `-p VALUE`, `-p=VALUE` or `-pVALUE`.
            let rest = &bytes[2..];
            match FLAGS
                .iter()
                .find(|f| f.short.map(|c| c as u8) == Some(bytes[1]))
            {
                Some(f) if rest.is_empty() => (f, None),
                Some(f) if f.value.is_some() => (f, Some(rest.strip_prefix(b"=").unwrap_or(rest))),
                _ => return usage(format!("unknown flag '{text}'")),
            }
        };
        // SAFETY: `inline` is a suffix of an OsStr, cut right after an ASCII byte.
        let inline = inline.map(|v| unsafe { OsStr::from_encoded_bytes_unchecked(v) }.to_owned());
        let value = match (flag.value, inline) {
            (None, Some(_)) => return usage(format!("--{} takes no value", flag.long)),
            (None, None) => None,
            (Some(_), Some(v)) => Some(v),
            (Some(placeholder), None) => match args.next() {
                Some(v) => Some(v),
                None => return usage(format!("--{}: expects a value: {placeholder}", flag.long)),
            },
        };
        options.push((flag, value));
    }
    Ok((options, args.collect()))
}

fn utf8(flag: &str, v: &OsStr) -> Result<String, UsageError> {
    match v.to_str() {
        Some(s) => Ok(s.to_string()),
        None => usage(format!("{flag}: value is not valid UTF-8")),
    }
}

fn check_path(p: &PathBuf) -> Result<(), UsageError> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(_) => usage(format!(
            "--path {}: not a directory or regular file",
            p.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            usage(format!("--path {}: no such file or directory", p.display()))
        }
        Err(e) => usage(format!("--path {}: {e}", p.display())),
    }
}

fn parse_method(m: &str) -> Result<String, UsageError> {
    if !m.is_empty() && m.bytes().all(is_token) {
        Ok(m.to_string())
    } else {
        usage(format!(
            "--method '{m}': expected an HTTP method such as POST, PUT or GET"
        ))
    }
}

/// RFC 9110 `tchar`: what may appear in a method or header name.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_statuses(s: &str) -> Result<Vec<u16>, UsageError> {
    s.split(',')
        .map(|c| match c.trim().parse::<u16>() {
            Ok(n) if (100..=599).contains(&n) => Ok(n),
            _ => usage(format!(
                "--status '{s}': expected HTTP status codes (100-599) separated by commas, such as 200,204"
            )),
        })
        .collect()
}

fn parse_header(h: &str) -> Result<(String, String), UsageError> {
    let Some((name, value)) = h.split_once(':') else {
        return usage("--header: expected 'Name: value'");
    };
    if name.is_empty() || !name.bytes().all(is_token) {
        return usage("--header: the name before ':' must be a valid HTTP header name");
    }
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return usage(format!(
            "--header {name}: the value must not contain CR, LF or other control characters"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `HOST:PORT`, `[V6]:PORT`, `:PORT` (every interface) or `localhost:PORT`, resolved without DNS.
fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Some(port) = s.strip_prefix(':') {
        return Some(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            port.parse::<u16>().ok()?,
        )));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return Some(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port.parse::<u16>().ok()?,
        )));
    }
    s.parse().ok()
}

/// `0`, or a sequence of numbers with units: `250ms`, `2s`, `1m30s`, `1.5h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    (total < 1e9).then(|| Duration::from_secs_f64(total))
}

/// The inverse of `parse_duration`, for logs: `250ms`, `2s`, `1m30s`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms % 1000 != 0 {
        let secs = format!("{:.3}", d.as_secs_f64());
        return format!("{}s", secs.trim_end_matches('0'));
    }
    let s = d.as_secs();
    let mut out = String::new();
    for (unit, n) in [("h", s / 3600), ("m", s / 60 % 60), ("s", s % 60)] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

pub fn help() -> String {
    let mut out = format!(
        "hashreload {VERSION}\n\
         Watches config files by content and reloads a server when it changes.\n\n\
         Usage: hashreload [OPTIONS] [--] [COMMAND [ARGS...]]\n\n\
         COMMAND runs (without a shell) after each change; exit status 0 counts as success.\n\n\
         Options:\n"
    );
    for f in FLAGS {
        let short = f.short.map_or("    ".to_string(), |c| format!("-{c}, "));
        let left = format!("{short}--{} {}", f.long, f.value.unwrap_or(""));
        let default = f
            .default
            .map_or(String::new(), |d| format!(" [default: {d}]"));
        out.push_str(&format!("  {left:<38} {}{default}\n", f.help));
    }
    out.push_str(
        "\nDurations: 250ms, 2s, 1m, 1h, 1m30s.\n\
         Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime failure, 2 usage or config error.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn config(s: &[&str]) -> Config {
        match parse(args(s)) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn error(s: &[&str]) -> String {
        match parse(args(s)) {
            Err(UsageError(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parses_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("0"), Some(ms(0)));
        assert_eq!(parse_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_duration("2s"), Some(ms(2000)));
        assert_eq!(parse_duration("1m"), Some(ms(60_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
        for bad in [
            "",
            "1",
            "s",
            "1x",
            "-1s",
            "1.2.3s",
            "ms",
            "1sm",
            "99999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_durations() {
        let ms = Duration::from_millis;
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(1000)), "1s");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(300_000)), "5m");
    }

    #[test]
    fn defaults() {
        let c = config(&["-p", "/", "-u", "http://127.0.0.1:9090/-/reload"]);
        assert_eq!(c.method, "POST");
        assert!(c.statuses.is_empty());
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.retry_interval, Duration::from_secs(1));
        assert_eq!(c.max_backoff, Duration::from_secs(300));
        assert_eq!(c.settle, Duration::ZERO);
        assert!(!c.reload_on_start);
        assert_eq!(c.log_format, Format::Logfmt);
        assert_eq!(c.log_level, Level::Info);
        assert!(c.command.is_none());
    }

    #[test]
    fn every_spelling_of_a_value() {
        for a in [
            &["-p", "/tmp", "-u", "http://h/"][..],
            &["--path", "/tmp", "--url", "http://h/"],
            &["--path=/tmp", "--url=http://h/"],
            &["-p=/tmp", "-u=http://h/"],
            &["-p/tmp", "-uhttp://h/"],
        ] {
            let c = config(a);
            assert_eq!(c.paths, vec![PathBuf::from("/tmp")], "{a:?}");
            assert_eq!(c.urls[0].name(), "http://h/", "{a:?}");
        }
    }

    #[test]
    fn repeated_urls_keep_argv_order_across_spellings() {
        let c = config(&[
            "-p",
            "/",
            "-u",
            "http://a/",
            "--url",
            "http://b/",
            "-u",
            "http://c/",
        ]);
        let names: Vec<_> = c.urls.iter().map(|u| u.name().to_string()).collect();
        assert_eq!(names, ["http://a/", "http://b/", "http://c/"]);
    }

    #[test]
    fn command_starts_at_first_free_argument_or_double_dash() {
        let c = config(&["-p", "/", "sh", "-c", "exit 0", "-X", "GET"]);
        let (prog, rest) = c.command.unwrap();
        assert!(prog.ends_with("sh"));
        assert_eq!(rest, args(&["-c", "exit 0", "-X", "GET"]));
        assert_eq!(c.method, "POST", "the COMMAND's -X is not ours");

        let c = config(&["-p", "/", "--", "sh", "--help"]);
        assert_eq!(c.command.unwrap().1, args(&["--help"]));
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(args(&["-h"])), Ok(Parsed::Help)));
        assert!(matches!(parse(args(&["--version"])), Ok(Parsed::Version)));
        let h = help();
        for f in FLAGS {
            assert!(h.contains(&format!("--{}", f.long)), "{}", f.long);
        }
    }

    #[test]
    fn log_flags() {
        let u = ["-p", "/", "-u", "http://h/"];
        assert_eq!(config(&[&u[..], &["-v"]].concat()).log_level, Level::Debug);
        assert_eq!(config(&[&u[..], &["-q"]].concat()).log_level, Level::Warn);
        assert_eq!(
            config(&[&u[..], &["--log-level", "error"]].concat()).log_level,
            Level::Error
        );
        assert_eq!(
            config(&[&u[..], &["--log-format=json"]].concat()).log_format,
            Format::Json
        );
    }

    #[test]
    fn parses_headers_statuses_and_methods() {
        let c = config(&[
            "-p",
            "/",
            "-u",
            "http://h/",
            "-H",
            "X-A: 1 2",
            "--header=X-B:3",
            "--status",
            "200, 204",
            "-X",
            "PUT",
        ]);
        assert_eq!(
            c.headers,
            vec![("X-A".into(), "1 2".into()), ("X-B".into(), "3".into())]
        );
        assert_eq!(c.statuses, vec![200, 204]);
        assert_eq!(c.method, "PUT");
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let u = ["-p", "/", "-u", "http://h/"];
        let with = |extra: &[&str]| error(&[&u[..], extra].concat());
        assert!(error(&["-u", "http://h/"]).starts_with("--path"));
        assert!(error(&["-p", "/nonexistent/x", "-u", "http://h/"]).contains("/nonexistent/x"));
        assert!(error(&["-p", "/"]).starts_with("nothing to reload"));
        assert!(error(&["-p", "/", "-u", "https://h/"]).starts_with("--url"));
        assert!(error(&["-p", "/", "no-such-program-xyz"]).contains("no-such-program-xyz"));
        assert_eq!(with(&["--bogus"]), "unknown flag '--bogus'");
        assert_eq!(with(&["-Z"]), "unknown flag '-Z'");
        assert!(with(&["--interval"]).starts_with("--interval: expects a value"));
        assert!(with(&["--interval", "1x"]).starts_with("--interval 1x"));
        assert!(with(&["--interval", "0"]).contains("more than 0"));
        assert!(with(&["--timeout", "abc"]).starts_with("--timeout"));
        assert!(
            with(&["--retry-interval", "10s", "--max-backoff", "1s"]).starts_with("--max-backoff")
        );
        assert!(with(&["--status", "20x"]).starts_with("--status"));
        assert!(with(&["--status", "600"]).starts_with("--status"));
        assert!(with(&["-X", "PO ST"]).starts_with("--method"));
        assert!(with(&["-H", "NoColon"]).starts_with("--header"));
        assert!(with(&["-H", "Bad Name: x"]).starts_with("--header"));
        assert!(with(&["-H", "X: a\r\nInjected: 1"]).starts_with("--header X"));
        assert!(with(&["--log-format", "xml"]).starts_with("--log-format"));
        assert!(with(&["--listen-address", "nohost"]).starts_with("--listen-address"));
        assert!(with(&["--listen-address", "h:99999"]).starts_with("--listen-address"));
        assert!(with(&["--log-level", "loud"]).starts_with("--log-level"));
        assert!(with(&["--reload-on-start=yes"]).contains("takes no value"));
        assert!(with(&["-v", "-q"]).contains("choose one"));
        assert!(with(&["--bearer-token-file", "/nonexistent/t"]).contains("/nonexistent/t"));
    }

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(parse_listen(":9533"), "0.0.0.0:9533".parse().ok());
        assert_eq!(parse_listen("localhost:80"), "127.0.0.1:80".parse().ok());
        assert_eq!(parse_listen("[::1]:8080"), "[::1]:8080".parse().ok());
        assert_eq!(parse_listen("10.0.0.1:1"), "10.0.0.1:1".parse().ok());
        assert_eq!(parse_listen("example.com:1"), None);
        assert_eq!(parse_listen("127.0.0.1"), None);
    }

    #[test]
    fn settle_may_be_zero_and_last_value_wins() {
        let c = config(&[
            "-p",
            "/",
            "-u",
            "http://h/",
            "--settle",
            "0",
            "-i",
            "1s",
            "-i",
            "250ms",
        ]);
        assert_eq!(c.settle, Duration::ZERO);
        assert_eq!(c.interval, Duration::from_millis(250));
    }
}
