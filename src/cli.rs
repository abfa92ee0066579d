//! The command line: one table of flags drives parsing, the environment fallbacks, `--help` and
//! the README's tables, for our own spellings and for the incumbents' (configmap-reload,
//! prometheus-config-reloader, weaveworks/watch), so a manifest written for them runs unchanged.
//!
//! Parsing stops at `--` or at the first argument that is not an option; the rest is the COMMAND,
//! so its own flags (curl's `-X`, `-H`) are never taken as ours. Every value is checked here, once:
//! the rest of the program trusts a `Config`.

use crate::approval::Expect;
use crate::curl::Curl;
use crate::duration::{format_duration, parse_duration};
use crate::log::{Format, Level};
use crate::signal::{parse_signal, Select};
use crate::target::{self, parse_header, parse_method, Accept, HttpUrl};
use crate::trust::TlsOptions;
use crate::VERSION;
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whose spelling a flag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Ours,
    ConfigmapReload,
    ConfigReloader,
    Watch,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Ours => "hashreload",
            Origin::ConfigmapReload => "jimmidyson/configmap-reload",
            Origin::ConfigReloader => "prometheus-config-reloader",
            Origin::Watch => "weaveworks/watch",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of ours, with the environment fallback `HASHRELOAD_<LONG>`.
    Own,
    /// An incumbent's spelling of one of ours, named by its long name.
    Alias(&'static str),
    /// An incumbent's flag that is accepted and handled in `parse`.
    Compat,
}

/// What a flag means when it is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultIs {
    /// A value, parsed exactly as if it were given.
    Value(&'static str),
    /// Words for `--help` where no value stands for the default ("any 2xx", "off").
    Text(&'static str),
}

impl DefaultIs {
    pub fn text(self) -> &'static str {
        match self {
            DefaultIs::Value(t) | DefaultIs::Text(t) => t,
        }
    }
}

/// One command-line flag. `value` is the placeholder of a flag that takes a value; an empty
/// `long` marks a short-only flag.
#[derive(Debug)]
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    pub value: Option<&'static str>,
    pub default: Option<DefaultIs>,
    pub repeat: bool,
    pub help: &'static str,
    pub kind: Kind,
    pub origin: Origin,
}

impl Flag {
    /// The environment fallback, for our own flags that configure something.
    pub fn env(&self) -> Option<String> {
        (self.kind == Kind::Own && !matches!(self.long, "help" | "version"))
            .then(|| format!("HASHRELOAD_{}", self.long.to_uppercase().replace('-', "_")))
    }

    /// How the flag is written in messages: `--long`, or `-s` for a short-only flag.
    pub fn spelled(&self) -> String {
        match (self.long, self.short) {
            ("", Some(c)) => format!("-{c}"),
            (long, _) => format!("--{long}"),
        }
    }
}

const fn own(
    short: Option<char>,
    long: &'static str,
    value: Option<&'static str>,
    default: Option<DefaultIs>,
    repeat: bool,
    help: &'static str,
) -> Flag {
    Flag {
        short,
        long,
        value,
        default,
        repeat,
        help,
        kind: Kind::Own,
        origin: Origin::Ours,
    }
}

const fn alias(origin: Origin, long: &'static str, value: &'static str, of: &'static str) -> Flag {
    Flag {
        short: None,
        long,
        value: Some(value),
        default: None,
        repeat: false,
        help: "",
        kind: Kind::Alias(of),
        origin,
    }
}

const fn other(
    origin: Origin,
    kind: Kind,
    short: Option<char>,
    long: &'static str,
    value: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        short,
        long,
        value,
        default: None,
        repeat: false,
        help,
        kind,
        origin,
    }
}

use DefaultIs::{Text, Value};
use Kind::Compat;
use Origin::{ConfigReloader as Pcr, ConfigmapReload as Cmr, Watch};

#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    own(Some('p'), "path", Some("PATH"), None, true,
        "Directory (walked recursively) or file to watch; repeatable, at least one"),
    own(Some('u'), "url", Some("URL"), None, true,
        "Reload endpoint, http:// only; repeatable. Userinfo becomes basic auth"),
    own(Some('X'), "method", Some("METHOD"), Some(Value("POST")), false, "HTTP method of reload requests"),
    own(None, "status", Some("CODES"), Some(Text("any 2xx")), false,
        "HTTP statuses that count as success, a comma list such as 200,204"),
    own(None, "timeout", Some("DUR"), Some(Value("10s")), false,
        "Limit for one delivery attempt (request or COMMAND run)"),
    own(Some('H'), "header", Some("'NAME: VALUE'"), None, true,
        "Extra request header; repeatable. Values never reach a log"),
    own(None, "bearer-token-file", Some("FILE"), None, false,
        "Send 'Authorization: Bearer <file content>', re-read at every request"),
    own(None, "tls-ca-file", Some("FILE"), None, false,
        "https://: trust the CA certificates in FILE (PEM), re-read at each connection (-tls image)"),
    own(None, "tls-cert-file", Some("FILE"), None, false,
        "https://: present this client certificate (PEM), with --tls-key-file (-tls image)"),
    own(None, "tls-key-file", Some("FILE"), None, false,
        "https://: the client certificate's private key (PEM) (-tls image)"),
    own(None, "tls-server-name", Some("NAME"), None, false,
        "https://: verify the certificate for NAME instead of the URL's host (-tls image)"),
    own(None, "tls-insecure-skip-verify", None, None, false,
        "https://: accept any server certificate; warned about, and in a metric (-tls image)"),
    own(Some('i'), "interval", Some("DUR"), Some(Value("10s")), false,
        "Full re-hash interval: the bound on noticing a change anywhere"),
    own(None, "retry-interval", Some("DUR"), Some(Value("1s")), false,
        "First wait after a failed delivery, doubling (with jitter) up to --max-backoff"),
    own(None, "max-backoff", Some("DUR"), Some(Value("5m")), false, "Longest wait between delivery attempts"),
    own(None, "stat-cache", None, None, false,
        "Reuse a file's hash while its inode, size, mtime and ctime are unchanged (large trees)"),
    own(None, "data-check-interval", Some("DUR"), Some(Value("200ms")), false,
        "Between full re-hashes, read where each root's ..data points this often; 0: off"),
    own(None, "settle", Some("DUR"), Some(Value("0")), false,
        "For non-atomic writers: deliver once two scans DUR apart agree (at most 10 x DUR)"),
    own(None, "process", Some("NAME"), None, false,
        "Signal the top-most processes named NAME on each change (see --signal)"),
    own(None, "pid-file", Some("FILE"), None, false,
        "Signal the process whose id FILE holds (re-read at each delivery)"),
    own(None, "signal", Some("SIG"), Some(Value("HUP")), false,
        "Signal for --process and --pid-file: a name (HUP, SIGUSR1) or a number"),
    own(None, "reload-on-start", None, None, false, "Deliver once after the first scan"),
    own(None, "state-file", Some("FILE"), None, false,
        "Record what each target acknowledged; at start, deliver what a target missed"),
    own(None, "once", None, None, false,
        "One scan; deliver if the content differs from --state-file, then exit"),
    own(None, "attempts", Some("N"), Some(Value("3")), false, "With --once: tries per target"),
    own(None, "expect", Some("DIGEST|@FILE"), None, false,
        "Deliver only content with this state digest or FILE's manifest (re-read); --once exits 3"),
    own(None, "secret-path", Some("PATH"), None, true,
        "A watched PATH holding secrets: no digest covering it is logged, exposed or sent"),
    own(None, "listen-address", Some("ADDR"), Some(Text("off")), false,
        "Serve metrics and /healthz on ADDR, such as 127.0.0.1:9533 or :9533"),
    own(None, "metrics-path", Some("PATH"), Some(Value("/metrics")), false, "Where metrics are served"),
    own(None, "log-format", Some("FORMAT"), Some(Value("logfmt")), false, "logfmt or json"),
    own(None, "log-level", Some("LEVEL"), Some(Value("info")), false, "debug, info, warn or error"),
    own(Some('v'), "verbose", None, None, false, "Same as --log-level debug"),
    own(Some('q'), "quiet", None, None, false, "Same as --log-level warn"),
    own(Some('h'), "help", None, None, false, "Print this help"),
    own(Some('V'), "version", None, None, false, "Print the version"),
    alias(Cmr, "volume-dir", "DIR", "path"),
    alias(Cmr, "webhook-url", "URL", "url"),
    alias(Cmr, "webhook-method", "METHOD", "method"),
    alias(Cmr, "webhook-status-code", "CODE", "status"),
    alias(Cmr, "web.listen-address", "ADDR", "listen-address"),
    alias(Cmr, "web.telemetry-path", "PATH", "metrics-path"),
    other(Cmr, Compat, None, "webhook-retries", Some("N"),
        "Accepted; hashreload retries every failed reload until it succeeds"),
    alias(Pcr, "watched-dir", "DIR", "path"),
    alias(Pcr, "reload-url", "URL", "url"),
    alias(Pcr, "watch-interval", "DUR", "interval"),
    alias(Pcr, "delay-interval", "DUR", "settle"),
    alias(Pcr, "reload-timeout", "DUR", "timeout"),
    other(Pcr, Compat, None, "reload-method", Some("http|signal"),
        "signal: SIGHUP to --process-executable-name instead of a request"),
    other(Pcr, Compat, None, "process-executable-name", Some("NAME"),
        "The process for --reload-method=signal [default: prometheus]"),
    other(Pcr, Compat, None, "config-file", Some("FILE"),
        "Config to render (gunzipped if gzip, $(VAR) from the environment); watched too"),
    other(Pcr, Compat, None, "config-envsubst-file", Some("FILE"),
        "Where --config-file is rendered to, atomically, before each reload"),
    other(Pcr, Compat, None, "statefulset-ordinal-from-envvar", Some("VAR"),
        "$(STATEFULSET_ORDINAL_NUMBER) is VAR's trailing number [default: POD_NAME]"),
    other(Pcr, Compat, None, "web-config-file", Some("FILE"),
        "Headers, basic auth, and TLS (the -tls image) for the metrics server"),
    other(Pcr, Compat, None, "runtimeinfo-url", Some("URL"),
        "With --reload-method=signal: confirm each reload through Prometheus' runtimeinfo"),
    other(Pcr, Compat, None, "auto-gomemlimit-ratio", Some("RATIO"),
        "Accepted and ignored: hashreload has no garbage collector to limit"),
    other(Watch, Compat, Some('t'), "", None, "Accepted and ignored"),
];

fn find_long(name: &[u8]) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| !f.long.is_empty() && f.long.as_bytes() == name)
}

fn find_short(c: u8) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.short.map(|s| s as u8) == Some(c))
}

/// Everything the program needs, checked.
#[derive(Debug)]
pub struct Config {
    pub paths: Vec<PathBuf>,
    pub urls: Vec<HttpUrl>,
    pub method: String,
    pub accept: Accept,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub bearer_token_file: Option<PathBuf>,
    pub interval: Duration,
    pub retry_interval: Duration,
    pub max_backoff: Duration,
    pub settle: Duration,
    pub stat_cache: bool,
    /// How often `..data` is read between full scans; zero: never.
    pub data_check_interval: Duration,
    pub reload_on_start: bool,
    pub log_format: Format,
    pub log_level: Level,
    pub listen_address: Option<SocketAddr>,
    pub metrics_path: String,
    /// The resolved program path, then its arguments.
    pub command: Option<(PathBuf, Vec<OsString>)>,
    /// Processes to signal on each change, and the signal.
    pub signals: Vec<Select>,
    pub signal: i32,
    /// A `curl` COMMAND with no curl on PATH: made by hashreload itself.
    pub curl: Option<Curl>,
    pub state_file: Option<PathBuf>,
    pub once: bool,
    pub attempts: u32,
    pub expect: Option<Expect>,
    /// Per path: a `--secret-path`, whose digests are shown nowhere.
    pub secret_roots: Vec<bool>,
    /// Things to say once at start (incumbent flags accepted without effect, curl emulation).
    pub notes: Vec<(Level, String)>,
    /// prometheus-config-reloader's `--config-file` rendered into `--config-envsubst-file`.
    pub render: Option<Render>,
    /// `--watch-interval=0`: render once and exit, as the operator's init container does.
    pub render_once: bool,
    /// What `--web-config-file` asks of the metrics server (its notes are in `notes`).
    pub web: crate::webconfig::WebConfig,
    /// `--reload-method=signal`: the process to SIGHUP, each reload confirmed through this
    /// runtimeinfo URL.
    pub confirmed: Option<Confirmed>,
    /// How every https:// request is verified, and the client certificate it presents.
    pub tls: TlsOptions,
}

/// What `--config-file` is rendered into, and where `$(STATEFULSET_ORDINAL_NUMBER)` comes from.
#[derive(Debug, PartialEq, Eq)]
pub struct Render {
    pub input: PathBuf,
    pub output: PathBuf,
    pub ordinal_from: String,
}

#[derive(Debug)]
pub enum Parsed {
    Run(Box<Config>),
    Digest(DigestConfig),
    Help,
    Version,
}

/// `hashreload digest [--sum | --json] [--expect DIGEST|@FILE] PATH...`
#[derive(Debug)]
pub struct DigestConfig {
    pub paths: Vec<PathBuf>,
    pub output: Output,
    pub expect: Option<Expect>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Manifest,
    Sum,
    Json,
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
    Err(UsageError::new(msg))
}

impl UsageError {
    /// Control characters from the command line (a newline inside a value) are shown escaped,
    /// so the error stays one line.
    pub fn new(msg: impl Into<String>) -> UsageError {
        let msg = msg.into();
        if !msg.contains(char::is_control) {
            return UsageError(msg);
        }
        UsageError(
            msg.chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect(),
        )
    }
}

/// One flag as given: the flag it sets (ours, for an alias), how it was spelled (for messages),
/// its value, and whose spelling it was.
#[derive(Clone, Debug)]
struct Given {
    flag: &'static Flag,
    spelled: String,
    value: Option<OsString>,
    origin: Origin,
}

/// The options of one command line, with environment fallbacks merged in.
struct Options(Vec<Given>);

impl Options {
    fn all<'a, 'b>(&'a self, long: &'b str) -> impl Iterator<Item = &'a Given> + use<'a, 'b> {
        self.0.iter().filter(move |g| g.flag.long == long)
    }

    /// Every value of a repeatable flag, in argv order.
    fn values<'a>(&'a self, long: &str) -> Vec<(&'a str, &'a OsStr)> {
        self.all(long)
            .filter_map(|g| Some((g.spelled.as_str(), g.value.as_deref()?)))
            .collect()
    }

    /// The value of a single-valued flag: the last one given.
    fn last<'a>(&'a self, long: &str) -> Option<(&'a str, &'a OsStr)> {
        self.values(long).pop()
    }

    /// A boolean flag: given bare, or with true/false/1/0.
    fn flag(&self, long: &str) -> Result<bool, UsageError> {
        match self.all(long).last() {
            None => Ok(false),
            Some(Given { value: None, .. }) => Ok(true),
            Some(Given {
                value: Some(v),
                spelled,
                ..
            }) => match v.to_str() {
                Some("true" | "1") => Ok(true),
                Some("false" | "0") => Ok(false),
                _ => usage(format!(
                    "{spelled}={}: expected true, false, 1 or 0",
                    v.to_string_lossy()
                )),
            },
        }
    }

    /// A single-valued flag's value, or else its default from `FLAGS`, through the same `parse`.
    fn or_default<T>(
        &self,
        long: &str,
        parse: impl Fn(&str, &OsStr) -> Result<T, UsageError>,
    ) -> Result<T, UsageError> {
        let (spelled, v) = self.last_or_default(long);
        parse(&spelled, v)
    }

    /// Apart from `or_default`, which is instantiated once per flag: the lookup is written once
    /// in the binary too.
    fn last_or_default<'a>(&'a self, long: &str) -> (Cow<'a, str>, &'a OsStr) {
        if let Some((spelled, v)) = self.last(long) {
            return (Cow::Borrowed(spelled), v);
        }
        let flag = find_long(long.as_bytes()).expect("read by its long name");
        match flag.default {
            Some(Value(v)) => (Cow::Owned(flag.spelled()), OsStr::new(v)),
            _ => unreachable!("--{long} has no default value in FLAGS"),
        }
    }

    fn used(&self, origin: Origin) -> bool {
        self.0.iter().any(|g| g.origin == origin)
    }

    /// `HASHRELOAD_<NAME>` for every own flag not on the command line: the command line
    /// replaces the environment, never merges with it. Repeatable flags take one value per line.
    fn add_env(&mut self, env: impl Fn(&str) -> Option<OsString>) {
        for flag in FLAGS {
            let Some(name) = flag.env() else { continue };
            if self.all(flag.long).next().is_some() {
                continue;
            }
            let Some(value) = env(&name) else { continue };
            let values: Vec<OsString> = if flag.repeat {
                value
                    .as_bytes()
                    .split(|&b| b == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                    .filter(|l| !l.is_empty())
                    .map(|l| OsStr::from_bytes(l).to_owned())
                    .collect()
            } else {
                vec![value]
            };
            for v in values {
                self.0.push(Given {
                    flag,
                    spelled: name.clone(),
                    value: Some(v),
                    origin: Origin::Ours,
                });
            }
        }
    }
}

pub fn parse(args: Vec<OsString>) -> Result<Parsed, UsageError> {
    parse_with_env(args, |name| std::env::var_os(name))
}

pub fn parse_with_env(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Parsed, UsageError> {
    // A subcommand is recognized only as the first argument.
    if args.first().is_some_and(|a| a == "digest") {
        return parse_digest(&args[1..]);
    }
    let (given, command) = split(args)?;
    let mut o = Options(given);
    if o.all("help").next().is_some() {
        return Ok(Parsed::Help);
    }
    if o.all("version").next().is_some() {
        return Ok(Parsed::Version);
    }
    o.add_env(env);
    Ok(Parsed::Run(Box::new(config(&o, &command)?)))
}

/// Every value checked, in a fixed order, so the first problem on the command line is the one
/// reported.
fn config(o: &Options, command: &[OsString]) -> Result<Config, UsageError> {
    let mut notes = Vec::new();
    let mut paths = paths(o)?;
    let (render, render_once) = rendering(o, &mut paths)?;
    if paths.is_empty() {
        return usage("--path: at least one directory or file to watch is required");
    }
    let mut urls = urls(o)?;
    // prometheus-config-reloader's spellings bring its --reload-timeout default, 30s: with
    // --reload-method=signal it also bounds the wait for Prometheus to confirm the reload.
    let timeout = match o.last("timeout") {
        None if o.used(Origin::ConfigReloader) => Duration::from_secs(30),
        _ => o.or_default("timeout", |s, v| duration(s, v, false))?,
    };
    let (command, curl) = command_target(command, timeout, &mut notes)?;
    let (signals, signal, confirmed) = signal_targets(o, &mut notes)?;
    if confirmed.is_some() && !urls.is_empty() {
        // As prometheus-config-reloader: the method chooses one way to reload, never both.
        notes.push((
            Level::Info,
            "--reload-url is ignored with --reload-method=signal".to_string(),
        ));
        urls.clear();
    }
    // The operator's init container renders only: it has nothing to reload.
    if !render_once
        && urls.is_empty()
        && command.is_none()
        && curl.is_none()
        && signals.is_empty()
        && confirmed.is_none()
    {
        return usage(
            "nothing to reload: give --url URL, --process NAME, --pid-file FILE or a COMMAND",
        );
    }
    let (method, accept, headers, bearer_token_file) = http_options(o, &urls)?;
    let interval = match render_once {
        true => o.or_default("interval", |s, _| duration(s, OsStr::new("10s"), false))?,
        false => o.or_default("interval", |s, v| duration(s, v, false))?,
    };
    let data_check_interval = o.or_default("data-check-interval", |s, v| duration(s, v, true))?;
    let retry_interval = o.or_default("retry-interval", |s, v| duration(s, v, false))?;
    let max_backoff = o.or_default("max-backoff", |s, v| duration(s, v, false))?;
    let settle = o.or_default("settle", |s, v| duration(s, v, true))?;
    check_backoff(max_backoff, retry_interval)?;
    let (log_format, log_level) = logging(o)?;
    let (listen_address, metrics_path) = serving(o)?;
    for (flag, why) in [
        (
            "webhook-retries",
            "hashreload retries every failed reload until it succeeds",
        ),
        (
            "auto-gomemlimit-ratio",
            "hashreload has no garbage collector to limit",
        ),
    ] {
        if let Some((s, _)) = o.last(flag) {
            notes.push((
                Level::Info,
                format!("{s} is accepted for compatibility: {why}"),
            ));
        }
    }
    let mut web = crate::webconfig::WebConfig::default();
    if let Some((s, f)) = o.last("web-config-file") {
        web = crate::webconfig::load(s, Path::new(f)).map_err(UsageError::new)?;
        let web_notes = std::mem::take(&mut web.notes);
        notes.extend(web_notes.into_iter().map(|n| (Level::Warn, n)));
    }
    let mut https: Vec<&HttpUrl> = urls.iter().collect();
    https.extend(curl.as_ref().map(|c| &c.url));
    https.extend(confirmed.as_ref().map(|c| &c.1));
    https.retain(|u| u.is_https());
    // The server's own certificate, when the web config names one: what the operator's drop-in
    // pins (the reloader is handed the server's web config and its Secrets).
    #[cfg(feature = "tls")]
    let pin = web.tls.as_ref().map(|t| t.cert_file.clone());
    #[cfg(not(feature = "tls"))]
    let pin = None;
    let tls = tls_options(o, &https, curl.as_ref(), pin, &mut notes)?;
    let (once, attempts, expect, state_file) = one_pass(o, &paths)?;
    let secret_roots = secret_roots(o, &paths)?;
    if once && render.is_some() {
        // --once delivers without rendering: the server would reload a file never written.
        return usage("--once with --config-envsubst-file: not supported; --watch-interval=0 renders once and exits");
    }
    Ok(Config {
        paths,
        urls,
        method,
        accept,
        timeout,
        headers,
        bearer_token_file,
        interval,
        retry_interval,
        max_backoff,
        settle,
        // prometheus-config-reloader reloads at every start: a change made while it was down
        // (an OOM kill, a restart) is delivered then, and so it is here with its spellings.
        reload_on_start: o.flag("reload-on-start")? || o.used(Origin::ConfigReloader),
        stat_cache: o.flag("stat-cache")?,
        data_check_interval,
        log_format,
        log_level,
        listen_address,
        metrics_path,
        command,
        signals,
        signal,
        curl,
        state_file,
        once,
        attempts,
        expect,
        secret_roots,
        notes,
        render,
        render_once,
        web,
        confirmed,
        tls,
    })
}

/// The `--tls-*` flags, with a curl COMMAND's `--cacert`, `--cert`, `--key` and `-k` merged in:
/// one set of TLS options for every request. An `https://` URL needs trust: a CA file, the
/// server's own certificate to pin (`pin`, from `--web-config-file`), or an explicit
/// `--tls-insecure-skip-verify`. The files are read now, so a wrong one is a usage error.
#[cfg(not(feature = "tls"))]
fn tls_options(
    o: &Options,
    _https: &[&HttpUrl],
    _curl: Option<&Curl>,
    _pin: Option<PathBuf>,
    _notes: &mut [(Level, String)],
) -> Result<TlsOptions, UsageError> {
    match FLAGS
        .iter()
        .find_map(|f| o.all(f.long).find(|_| f.long.starts_with("tls-")))
    {
        Some(g) => usage(format!(
            "{}: TLS needs the hashreload -tls image (this build speaks plain http:// only)",
            g.spelled
        )),
        None => Ok(TlsOptions::default()),
    }
}

#[cfg(feature = "tls")]
fn tls_options(
    o: &Options,
    https: &[&HttpUrl],
    curl: Option<&Curl>,
    pin: Option<PathBuf>,
    notes: &mut Vec<(Level, String)>,
) -> Result<TlsOptions, UsageError> {
    let file = |long| o.last(long).map(|(_, v)| PathBuf::from(v));
    let mut t = TlsOptions {
        ca_file: file("tls-ca-file"),
        cert_file: file("tls-cert-file"),
        key_file: file("tls-key-file"),
        server_name: match o.last("tls-server-name") {
            Some((s, v)) => Some(utf8(s, v)?),
            None => None,
        },
        insecure_skip_verify: o.flag("tls-insecure-skip-verify")?,
        pin_file: None,
    };
    if let Some(c) = curl {
        for (ours, theirs, flag, option) in [
            (&mut t.ca_file, &c.tls.ca_file, "--tls-ca-file", "--cacert"),
            (
                &mut t.cert_file,
                &c.tls.cert_file,
                "--tls-cert-file",
                "--cert",
            ),
            (&mut t.key_file, &c.tls.key_file, "--tls-key-file", "--key"),
        ] {
            match (&ours, theirs) {
                (Some(a), Some(b)) if a != b => {
                    return usage(format!(
                        "{flag} and curl's {option} name different files: give one"
                    ))
                }
                (_, Some(b)) => *ours = Some(b.clone()),
                _ => {}
            }
        }
        t.insecure_skip_verify |= c.tls.insecure_skip_verify;
    }
    t.conflicts().map_err(UsageError::new)?;
    if let Some(u) = https.first() {
        if t.ca_file.is_none() && !t.insecure_skip_verify {
            let Some(pin) = pin else {
                return usage(format!(
                    "{}: https:// needs something to trust: --tls-ca-file FILE, --web-config-file \
                     naming the server's own certificate, or --tls-insecure-skip-verify",
                    u.name()
                ));
            };
            notes.push((
                Level::Info,
                format!(
                    "https:// is verified against the certificate {} (--web-config-file's \
                     cert_file), pinned: no CA, no name check",
                    pin.display()
                ),
            ));
            if t.server_name.is_some() {
                notes.push((
                    Level::Warn,
                    "--tls-server-name has no effect on a pinned certificate: no name is checked"
                        .to_string(),
                ));
            }
            t.pin_file = Some(pin);
        }
    } else if t != TlsOptions::default() {
        notes.push((
            Level::Warn,
            "the TLS options have no effect: no URL is https://".to_string(),
        ));
    }
    if t.insecure_skip_verify {
        notes.push((
            Level::Warn,
            "--tls-insecure-skip-verify: server certificates are not verified; anyone on the \
             path can pose as the server"
                .to_string(),
        ));
    }
    crate::tls::check(&t).map_err(UsageError::new)?;
    Ok(t)
}

fn paths(o: &Options) -> Result<Vec<PathBuf>, UsageError> {
    o.values("path")
        .into_iter()
        .map(|(spelled, p)| {
            let p = PathBuf::from(p);
            check_path(spelled, &p)?;
            Ok(p)
        })
        .collect()
}

/// `--config-file`, `--config-envsubst-file`, `--statefulset-ordinal-from-envvar` and
/// `--watch-interval=0`. The config file is watched: its directory is usually a `--watched-dir`
/// already (the operator adds it); if not, the file itself is added to the paths.
fn rendering(o: &Options, paths: &mut Vec<PathBuf>) -> Result<(Option<Render>, bool), UsageError> {
    let once = o.last("interval").is_some_and(|(s, v)| {
        s == "--watch-interval" && parse_duration(&v.to_string_lossy()) == Some(Duration::ZERO)
    });
    let input = o.last("config-file");
    let output = o.last("config-envsubst-file");
    let ordinal_from = o.last("statefulset-ordinal-from-envvar");
    let Some((s, input)) = input else {
        // The ordinal matters only to a render; prometheus-config-reloader accepts it alone.
        if let Some((s, _)) = output {
            return usage(format!("{s}: needs --config-file"));
        }
        if once {
            return usage(
                "--watch-interval=0 renders --config-file once and exits: give --config-file",
            );
        }
        return Ok((None, false));
    };
    let input = PathBuf::from(input);
    check_path(s, &input)?;
    if input.is_dir() {
        return usage(format!(
            "{s} {}: a directory, expected a file",
            input.display()
        ));
    }
    let dir = input
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !paths.iter().any(|p| p == dir || p == &input) {
        paths.push(input.clone());
    }
    let Some((s, output)) = output else {
        if once {
            return usage("--watch-interval=0 renders --config-file once and exits: give --config-envsubst-file");
        }
        return Ok((None, false));
    };
    let output = PathBuf::from(output);
    check_parent(s, &output)?;
    if output == input {
        return usage(format!(
            "{s} {}: must differ from --config-file",
            output.display()
        ));
    }
    let ordinal_from =
        ordinal_from.map_or("POD_NAME".into(), |(_, v)| v.to_string_lossy().into_owned());
    Ok((
        Some(Render {
            input,
            output,
            ordinal_from,
        }),
        once,
    ))
}

fn urls(o: &Options) -> Result<Vec<HttpUrl>, UsageError> {
    o.values("url")
        .into_iter()
        .map(|(s, u)| {
            HttpUrl::parse(&utf8(s, u)?).map_err(|e| UsageError::new(format!("{s}: {e}")))
        })
        .collect()
}

type CommandTarget = (Option<(PathBuf, Vec<OsString>)>, Option<Curl>);

/// The COMMAND: a program found on PATH, or `curl` made by us where there is none.
fn command_target(
    command: &[OsString],
    timeout: Duration,
    notes: &mut Vec<(Level, String)>,
) -> Result<CommandTarget, UsageError> {
    let Some((program, rest)) = command.split_first() else {
        return Ok((None, None));
    };
    if let Some(path) = target::find_program(program) {
        return Ok((Some((path, rest.to_vec())), None));
    }
    if Path::new(program).file_name() != Some(OsStr::new("curl")) {
        return usage(format!(
            "COMMAND '{}': not found or not executable (searched PATH)",
            program.to_string_lossy()
        ));
    }
    let curl = crate::curl::parse(rest, timeout)
        .map_err(|e| UsageError::new(format!("COMMAND curl: {e}")))?;
    notes.push((
        Level::Info,
        "curl is not installed: hashreload makes the COMMAND's request itself".into(),
    ));
    if !curl.fail {
        notes.push((
            Level::Warn,
            "curl without -f/--fail: any HTTP answer counts as success, as in curl".into(),
        ));
    }
    Ok((None, Some(curl)))
}

/// A process to SIGHUP, and the runtimeinfo URL that confirms it reloaded.
pub type Confirmed = (String, HttpUrl);

type SignalTargets = (Vec<Select>, i32, Option<Confirmed>);

/// Processes to signal (`--process`, `--pid-file`, prometheus-config-reloader's
/// `--reload-method=signal`), the signal, and the runtimeinfo URL that confirms a signal reload.
fn signal_targets(
    o: &Options,
    notes: &mut Vec<(Level, String)>,
) -> Result<SignalTargets, UsageError> {
    let mut signals = Vec::new();
    if let Some((s, name)) = o.last("process") {
        if name.is_empty() {
            return usage(format!("{s}: the process name must not be empty"));
        }
        signals.push(Select::Process(name.to_string_lossy().into_owned()));
    }
    if let Some((s, f)) = o.last("pid-file") {
        let f = PathBuf::from(f);
        check_parent(s, &f)?;
        signals.push(Select::PidFile(f));
    }
    let runtimeinfo = o.last("runtimeinfo-url");
    let mut confirm = None;
    match o.last("reload-method") {
        Some((_, m)) if m == "signal" => {
            let name = o
                .last("process-executable-name")
                .map_or("prometheus".into(), |(_, n)| {
                    n.to_string_lossy().into_owned()
                });
            // The incumbent always confirms, with Prometheus' address as the default.
            let (s, u) = runtimeinfo.unwrap_or((
                "--runtimeinfo-url",
                OsStr::new("http://127.0.0.1:9090/api/v1/status/runtimeinfo"),
            ));
            let u =
                HttpUrl::parse(&utf8(s, u)?).map_err(|e| UsageError::new(format!("{s}: {e}")))?;
            confirm = Some((name, u));
        }
        None => {}
        Some((_, m)) if m == "http" => {}
        Some((s, m)) => {
            return usage(format!(
                "{s} {}: expected http or signal",
                m.to_string_lossy()
            ))
        }
    }
    if let (None, Some((s, _))) = (&confirm, runtimeinfo) {
        notes.push((
            Level::Info,
            format!("{s} is ignored without --reload-method=signal"),
        ));
    }
    let signal = o.or_default("signal", |s, v| match v.to_str().and_then(parse_signal) {
        Some(sig) => Ok(sig),
        None => usage(format!(
            "{s} {}: expected a signal name such as HUP, USR1 or SIGTERM, or a number",
            v.to_string_lossy()
        )),
    })?;
    Ok((signals, signal, confirm))
}

type HttpFlags = (String, Accept, Vec<(String, String)>, Option<PathBuf>);

/// What every `--url` request carries: method, accepted statuses, headers, bearer token file.
fn http_options(o: &Options, urls: &[HttpUrl]) -> Result<HttpFlags, UsageError> {
    let method = o.or_default("method", |s, m| {
        parse_method(s, &utf8(s, m)?).map_err(UsageError::new)
    })?;
    // "any 2xx" in the table; configmap-reload's spellings bring its default, HTTP 200.
    let accept = match o.last("status") {
        None if o.used(Origin::ConfigmapReload) => Accept::Codes(vec![200]),
        None => Accept::Success,
        Some((s, v)) => Accept::Codes(parse_statuses(s, &utf8(s, v)?)?),
    };
    let headers = o
        .values("header")
        .into_iter()
        .map(|(s, h)| parse_header(s, &utf8(s, h)?).map_err(UsageError::new))
        .collect::<Result<Vec<_>, _>>()?;
    let bearer_token_file = o.last("bearer-token-file");
    if let Some((s, f)) = bearer_token_file {
        if let Err(e) = std::fs::read(f) {
            return usage(format!("{s} {}: {e}", Path::new(f).display()));
        }
        if urls.iter().any(|u| u.has_userinfo()) {
            return usage(format!("{s}: cannot be combined with userinfo in --url"));
        }
    }
    let bearer_token_file = bearer_token_file.map(|(_, f)| PathBuf::from(f));
    Ok((method, accept, headers, bearer_token_file))
}

fn check_backoff(max_backoff: Duration, retry_interval: Duration) -> Result<(), UsageError> {
    if max_backoff < retry_interval {
        return usage(format!(
            "--max-backoff {}: must be at least --retry-interval ({})",
            format_duration(max_backoff),
            format_duration(retry_interval)
        ));
    }
    Ok(())
}

fn logging(o: &Options) -> Result<(Format, Level), UsageError> {
    let format = o.or_default("log-format", |s, f| match f.to_str() {
        Some("logfmt") => Ok(Format::Logfmt),
        Some("json") => Ok(Format::Json),
        _ => usage(format!("{s}: expected logfmt or json")),
    })?;
    let (verbose, quiet) = (o.flag("verbose")?, o.flag("quiet")?);
    if verbose && quiet {
        return usage("--verbose and --quiet: choose one");
    }
    let level = match o.last("log-level") {
        None if verbose => Level::Debug,
        None if quiet => Level::Warn,
        _ => o.or_default("log-level", |s, l| {
            match l.to_str().and_then(Level::parse) {
                Some(l) => Ok(l),
                None => usage(format!("{s}: expected debug, info, warn or error")),
            }
        })?,
    };
    Ok((format, level))
}

/// Where metrics and /healthz are served, if anywhere, and the metrics path.
fn serving(o: &Options) -> Result<(Option<SocketAddr>, String), UsageError> {
    // "off" in the table; configmap-reload's spellings bring its default, :9533.
    let listen_address = match o.last("listen-address") {
        None if o.used(Origin::ConfigmapReload) => parse_listen(":9533"),
        None => None,
        Some((s, a)) => {
            let a = utf8(s, a)?;
            match parse_listen(&a) {
                Some(addr) => Some(addr),
                None => {
                    return usage(format!(
                        "{s} {a}: expected HOST:PORT such as 127.0.0.1:9533, [::1]:9533 or :9533"
                    ))
                }
            }
        }
    };
    let metrics_path = o.or_default("metrics-path", |s, p| {
        let p = utf8(s, p)?;
        if !p.starts_with('/') || p == "/healthz" || p.contains(['?', '#', ' ']) {
            return usage(format!("{s} {p}: expected a path such as /metrics"));
        }
        Ok(p)
    })?;
    Ok((listen_address, metrics_path))
}

type OnePass = (bool, u32, Option<Expect>, Option<PathBuf>);

fn expect(flag: &str, v: &OsStr) -> Result<Expect, UsageError> {
    Expect::parse(flag, &v.to_string_lossy()).map_err(UsageError::new)
}

/// `--once`, `--attempts`, `--expect` and `--state-file`. The approved manifest must not be
/// watched content itself: approving it would change it.
fn one_pass(o: &Options, paths: &[PathBuf]) -> Result<OnePass, UsageError> {
    let once = o.flag("once")?;
    let attempts = o.or_default("attempts", |s, n| {
        match n.to_str().and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if n >= 1 => Ok(n),
            _ => usage(format!(
                "{s} {}: expected a whole number from 1",
                n.to_string_lossy()
            )),
        }
    })?;
    let expect = match o.last("expect") {
        None => None,
        Some((s, v)) => Some(expect(s, v)?),
    };
    if let Some(f) = expect.as_ref().and_then(Expect::file) {
        if let Some(p) = paths.iter().find(|p| under(f, p)) {
            return usage(format!(
                "--expect @{}: inside the watched path {}; mount the approved manifest elsewhere",
                f.display(),
                p.display()
            ));
        }
    }
    let state_file = o.last("state-file").map(|(s, f)| (s, PathBuf::from(f)));
    if let Some((s, f)) = &state_file {
        check_parent(s, f)?;
    }
    Ok((once, attempts, expect, state_file.map(|(_, f)| f)))
}

/// `digest [--sum | --json] [--expect DIGEST|@FILE] [--] PATH...`
fn parse_digest(args: &[OsString]) -> Result<Parsed, UsageError> {
    let mut paths = Vec::new();
    let mut output = Output::Manifest;
    let mut expect = None;
    let mut args = args.iter();
    let mut options = true;
    while let Some(a) = args.next() {
        let text = a.to_string_lossy();
        match text.as_ref() {
            "--" if options => options = false,
            "-h" | "--help" if options => return Ok(Parsed::Help),
            "--sum" if options => output = Output::Sum,
            "--json" if options => output = Output::Json,
            "--expect" if options => match args.next() {
                Some(v) => expect = Some(self::expect("--expect", v)?),
                None => return usage("--expect: expects a value: DIGEST|@FILE"),
            },
            t if options && t.starts_with("--expect=") => {
                expect = Some(self::expect("--expect", OsStr::new(&t[9..]))?)
            }
            t if options && t.starts_with('-') && t.len() > 1 => {
                return usage(format!(
                    "digest: unknown flag '{t}' (expected --sum, --json or --expect)"
                ))
            }
            _ => {
                let p = PathBuf::from(a);
                check_path("digest", &p)?;
                paths.push(p);
            }
        }
    }
    if paths.is_empty() {
        return usage("digest: at least one PATH is required");
    }
    Ok(Parsed::Digest(DigestConfig {
        paths,
        output,
        expect,
    }))
}

/// A duration flag's value, checked; `zero_ok` for the few where 0 makes sense.
fn duration(name: &str, v: &OsStr, zero_ok: bool) -> Result<Duration, UsageError> {
    let s = utf8(name, v)?;
    match parse_duration(&s) {
        Some(d) if zero_ok || !d.is_zero() => Ok(d),
        Some(_) => usage(format!("{name} {s}: must be more than 0")),
        None => usage(format!(
            "{name} {s}: expected a duration such as 250ms, 2s, 1m, 1h or 1m30s"
        )),
    }
}

/// Splits argv into our options, in argv order with their values, and the COMMAND.
/// Unknown flags, refused incumbent flags and missing values are caught here.
fn split(args: Vec<OsString>) -> Result<(Vec<Given>, Vec<OsString>), UsageError> {
    let mut given = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            // The first free argument starts the COMMAND.
            return Ok((given, std::iter::once(arg).chain(args).collect()));
        }
        let text = arg.to_string_lossy();
        // `--name[=v]`, or Go's `-name[=v]` for a long name of two letters or more.
        let long = bytes.strip_prefix(b"--").or_else(|| {
            let rest = &bytes[1..];
            let name = rest.split(|&b| b == b'=').next().unwrap_or(rest);
            (name.len() >= 2 && find_long(name).is_some()).then_some(rest)
        });
        let (flag, inline) = if let Some(long) = long {
            let (key, value) = match long.iter().position(|&b| b == b'=') {
                Some(i) => (&long[..i], Some(&long[i + 1..])),
                None => (long, None),
            };
            match find_long(key) {
                Some(f) => (f, value),
                None => return usage(format!("unknown flag '--{}'", String::from_utf8_lossy(key))),
            }
        } else {
            // `-p VALUE`, `-p=VALUE` or `-pVALUE`.
            let rest = &bytes[2..];
            match find_short(bytes[1]) {
                Some(f) if rest.is_empty() => (f, None),
                Some(f) if f.value.is_some() => (f, Some(rest.strip_prefix(b"=").unwrap_or(rest))),
                _ => return usage(format!("unknown flag '{text}'")),
            }
        };
        let spelled = flag.spelled();
        let inline = inline.map(|v| OsStr::from_bytes(v).to_owned());
        let value = match (flag.value, inline) {
            (None, v) => v, // a boolean; `=true`/`=false` are checked where it is read
            (Some(_), Some(v)) => Some(v),
            (Some(placeholder), None) => match args.next() {
                Some(v) => Some(v),
                None => return usage(format!("{spelled}: expects a value: {placeholder}")),
            },
        };
        let target = match flag.kind {
            Kind::Alias(of) => find_long(of.as_bytes()).expect("aliases name our own flags"),
            _ => flag,
        };
        given.push(Given {
            flag: target,
            spelled,
            value,
            origin: flag.origin,
        });
    }
    Ok((given, args.collect()))
}

fn utf8(flag: &str, v: &OsStr) -> Result<String, UsageError> {
    match v.to_str() {
        Some(s) => Ok(s.to_string()),
        None => usage(format!("{flag}: value is not valid UTF-8")),
    }
}

fn check_path(flag: &str, p: &Path) -> Result<(), UsageError> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(_) => usage(format!(
            "{flag} {}: not a directory or regular file",
            p.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            usage(format!("{flag} {}: no such file or directory", p.display()))
        }
        Err(e) => usage(format!("{flag} {}: {e}", p.display())),
    }
}

/// True when `file` is `root` or inside it, by name or once symlinks are resolved (a kubelet
/// volume's files are links into its `..data`).
fn under(file: &Path, root: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    file.starts_with(root)
        || matches!((real(file), real(root)), (Some(f), Some(r)) if f.starts_with(&r))
}

/// `--secret-path`: each names a watched path, whose digests are then hidden.
fn secret_roots(o: &Options, paths: &[PathBuf]) -> Result<Vec<bool>, UsageError> {
    let mut secret = vec![false; paths.len()];
    for (s, v) in o.values("secret-path") {
        // Every root it names: a path given twice is watched twice.
        let mut named = false;
        for (i, p) in paths.iter().enumerate() {
            if p == Path::new(v) {
                secret[i] = true;
                named = true;
            }
        }
        if !named {
            let v = Path::new(v).display();
            return usage(format!(
                "{s} {v}: not a watched path; give it with --path too"
            ));
        }
    }
    Ok(secret)
}

/// A file we will read or write later: its directory must exist now.
fn check_parent(flag: &str, f: &Path) -> Result<(), UsageError> {
    if f.as_os_str().is_empty() {
        return usage(format!("{flag}: the file name must not be empty"));
    }
    match f
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        Some(dir) => usage(format!(
            "{flag} {}: no directory {}",
            f.display(),
            dir.display()
        )),
        None => Ok(()),
    }
}

pub fn parse_statuses(flag: &str, s: &str) -> Result<Vec<u16>, UsageError> {
    s.split(',')
        .map(|c| match c.trim().parse::<u16>() {
            Ok(n) if (100..=599).contains(&n) => Ok(n),
            _ => usage(format!(
                "{flag} '{s}': expected HTTP status codes (100-599) separated by commas, such as 200,204"
            )),
        })
        .collect()
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

pub fn help() -> String {
    let mut out = format!(
        "hashreload {VERSION}\n\
         Watches config files by content and reloads a server when it changes.\n\n\
         Usage: hashreload [OPTIONS] [--] [COMMAND [ARGS...]]\n\n\
         COMMAND runs (without a shell) after each change; exit status 0 counts as success.\n\n\
         Options (each also read from the environment variable shown, one value per line for\n\
         repeatable ones; the command line replaces the environment):\n"
    );
    for f in FLAGS.iter().filter(|f| f.kind == Kind::Own) {
        let short = f.short.map_or("    ".to_string(), |c| format!("-{c}, "));
        let left = format!("{short}--{} {}", f.long, f.value.unwrap_or(""));
        let default = f
            .default
            .map_or(String::new(), |d| format!(" [default: {}]", d.text()));
        let env = f.env().map_or(String::new(), |e| format!(" [env: {e}]"));
        out.push_str(&format!("  {left:<34} {}{default}{env}\n", f.help));
    }
    for origin in [
        Origin::ConfigmapReload,
        Origin::ConfigReloader,
        Origin::Watch,
    ] {
        out.push_str(&format!("\nAccepted from {}:\n", origin.name()));
        for f in FLAGS.iter().filter(|f| f.origin == origin) {
            let left = format!("{} {}", f.spelled(), f.value.unwrap_or(""));
            let what = match f.kind {
                Kind::Alias(of) => format!("= --{of}"),
                _ => f.help.to_string(),
            };
            out.push_str(&format!("  {left:<34} {what}\n"));
        }
    }
    out.push_str(
        "\nhashreload digest [--sum | --json] [--expect DIGEST|@FILE] PATH...\n  \
         Prints the manifest (one PATH) or one line per PATH; `| sha256sum` is the state digest.\n  \
         --sum prints only the state digest, --json everything as one JSON document.\n\n\
         Durations: 250ms, 2s, 1m, 1h, 1m30s.\n\
         Exit codes: 0 ok (also stopped by SIGTERM/SIGINT), 1 runtime failure (--once: a delivery\n\
         failed), 2 usage or config error, 3 content differs from --expect.\n",
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
        config_env(s, &[])
    }

    fn config_env(s: &[&str], env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.into());
        match parse_with_env(args(s), lookup) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn error(s: &[&str]) -> String {
        match parse_with_env(args(s), |_| None) {
            Err(UsageError(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&["-p", "/", "-u", "http://127.0.0.1:9090/-/reload"]);
        assert_eq!(c.method, "POST");
        assert_eq!(c.accept, Accept::Success);
        assert_eq!(c.metrics_path, "/metrics");
        assert!(c.listen_address.is_none());
        assert!(c.notes.is_empty());
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.data_check_interval, Duration::from_millis(200));
        assert_eq!(c.retry_interval, Duration::from_secs(1));
        assert_eq!(c.max_backoff, Duration::from_secs(300));
        assert_eq!(c.settle, Duration::ZERO);
        assert!(!c.reload_on_start);
        assert_eq!(c.log_format, Format::Logfmt);
        assert_eq!(c.log_level, Level::Info);
        assert!(c.command.is_none());
    }

    #[test]
    fn every_default_value_in_the_table_parses_as_if_given() {
        let base = ["-p", "/", "-u", "http://h/"];
        let mut given: Vec<String> = base.iter().map(|a| a.to_string()).collect();
        for f in FLAGS {
            match f.default {
                Some(Value(v)) => given.push(format!("--{}={v}", f.long)),
                Some(Text(_)) => assert!(matches!(f.long, "status" | "listen-address")),
                None => {}
            }
        }
        let given: Vec<&str> = given.iter().map(String::as_str).collect();
        assert_eq!(
            format!("{:?}", config(&given)),
            format!("{:?}", config(&base))
        );
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
        assert_eq!(c.accept, Accept::Codes(vec![200, 204]));
        assert_eq!(c.method, "PUT");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_flags_name_the_tls_image() {
        for flag in [
            "--tls-ca-file=/ca",
            "--tls-insecure-skip-verify",
            "--tls-server-name=x",
        ] {
            let e = error(&["-p", "/", "-u", "http://h/", flag]);
            let name = flag.split('=').next().unwrap();
            assert_eq!(
                e,
                format!("{name}: TLS needs the hashreload -tls image (this build speaks plain http:// only)")
            );
        }
        let env = |name: &str| (name == "HASHRELOAD_TLS_CA_FILE").then(|| "/ca".into());
        let args = ["-p", "/", "-u", "http://h/"].map(OsString::from).to_vec();
        let e = parse_with_env(args, env).unwrap_err().0;
        assert!(e.starts_with("HASHRELOAD_TLS_CA_FILE: TLS needs"), "{e}");
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let u = ["-p", "/", "-u", "http://h/"];
        let with = |extra: &[&str]| error(&[&u[..], extra].concat());
        assert!(error(&["-u", "http://h/"]).starts_with("--path"));
        assert!(error(&["-p", "/nonexistent/x", "-u", "http://h/"]).contains("/nonexistent/x"));
        assert!(error(&["-p", "/"]).starts_with("nothing to reload"));
        let https = error(&["-p", "/", "-u", "https://h/"]);
        match cfg!(feature = "tls") {
            true => assert!(
                https.contains("https:// needs something to trust"),
                "{https}"
            ),
            false => assert!(https.starts_with("--url"), "{https}"),
        }
        assert!(error(&["-p", "/", "no-such-program-xyz"]).contains("no-such-program-xyz"));
        assert_eq!(with(&["--bogus"]), "unknown flag '--bogus'");
        // Found by fuzzing: a newline in a value made the error two lines.
        assert_eq!(with(&["--bo\ngus"]), "unknown flag '--bo\\ngus'");
        assert_eq!(
            with(&["--status", "5\0\n"]),
            "--status '5\\u{0}\\n': expected HTTP status codes (100-599) separated by commas, such as 200,204"
        );
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
        assert!(with(&["--metrics-path", "metrics"]).starts_with("--metrics-path"));
        assert!(with(&["--log-level", "loud"]).starts_with("--log-level"));
        assert_eq!(
            with(&["--reload-on-start=yes"]),
            "--reload-on-start=yes: expected true, false, 1 or 0"
        );
        assert!(with(&["-v", "-q"]).contains("choose one"));
        assert!(with(&["--bearer-token-file", "/nonexistent/t"]).contains("/nonexistent/t"));
    }

    #[test]
    fn configmap_reload_spellings_bring_its_defaults() {
        for a in [
            &[
                "--volume-dir=/tmp",
                "--webhook-url=http://127.0.0.1:9093/-/reload",
            ][..],
            &[
                "-volume-dir",
                "/tmp",
                "-webhook-url",
                "http://127.0.0.1:9093/-/reload",
            ],
            &[
                "-volume-dir=/tmp",
                "--webhook-url",
                "http://127.0.0.1:9093/-/reload",
            ],
        ] {
            let c = config(a);
            assert_eq!(c.paths, vec![PathBuf::from("/tmp")], "{a:?}");
            assert_eq!(c.urls[0].name(), "http://127.0.0.1:9093/-/reload");
            assert_eq!(
                c.accept,
                Accept::Codes(vec![200]),
                "configmap-reload's default status"
            );
            assert_eq!(
                c.listen_address,
                parse_listen(":9533"),
                "configmap-reload's default port"
            );
        }
        let c = config(&[
            "--volume-dir=/tmp",
            "--webhook-url=http://h/",
            "--webhook-method=PUT",
            "--webhook-status-code=202",
            "--webhook-retries=5",
            "--web.listen-address=:9999",
            "--web.telemetry-path=/m",
        ]);
        assert_eq!(c.method, "PUT");
        assert_eq!(c.accept, Accept::Codes(vec![202]));
        assert_eq!(c.listen_address, parse_listen(":9999"));
        assert_eq!(c.metrics_path, "/m");
        assert!(c.notes[0].1.contains("--webhook-retries"), "{:?}", c.notes);
    }

    #[test]
    fn prometheus_config_reloader_spellings() {
        let c = config(&[
            "--watched-dir=/etc",
            "--watched-dir=/tmp",
            "--listen-address=0.0.0.0:8080",
            "--reload-url=http://127.0.0.1:9090/-/reload",
            "--watch-interval=10s",
            "--delay-interval=2s",
            "--retry-interval=5s",
            "--reload-timeout=30s",
            "--log-format=json",
            "--log-level=debug",
            "--reload-method=http",
            "--process-executable-name=prometheus",
        ]);
        assert_eq!(c.paths, vec![PathBuf::from("/etc"), PathBuf::from("/tmp")]);
        assert_eq!(c.listen_address, "0.0.0.0:8080".parse().ok());
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.settle, Duration::from_secs(2));
        assert_eq!(c.retry_interval, Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!((c.log_format, c.log_level), (Format::Json, Level::Debug));
        assert_eq!(c.accept, Accept::Success, "no configmap-reload defaults");
        assert!(c.reload_on_start, "the incumbent reloads at every start");
        let c = config(&["--watched-dir=/", "--reload-url=http://h/"]);
        assert_eq!(
            c.timeout,
            Duration::from_secs(30),
            "its --reload-timeout default"
        );
        assert_eq!((c.render.is_none(), c.render_once), (true, false));
        let u = ["--watched-dir=/", "--reload-url=http://h/"];
        let with = |extra: &str| error(&[&u[..], &[extra]].concat());
        let c = config(
            &[
                &u[..],
                &["--reload-method=signal", "--process-executable-name=am"],
            ]
            .concat(),
        );
        assert!(c.signals.is_empty());
        let (name, url) = c.confirmed.expect("signal reloads are confirmed");
        assert_eq!(name, "am");
        assert_eq!(
            url.name(),
            "http://127.0.0.1:9090/api/v1/status/runtimeinfo"
        );
        let c = config(
            &[
                &u[..],
                &[
                    "--reload-method=signal",
                    "--runtimeinfo-url=http://localhost:9090/p/api/v1/status/runtimeinfo",
                ],
            ]
            .concat(),
        );
        let (name, url) = c.confirmed.unwrap();
        assert_eq!(
            (name.as_str(), url.name()),
            (
                "prometheus",
                "http://localhost:9090/p/api/v1/status/runtimeinfo"
            )
        );
        let c = config(
            &[
                &u[..],
                &[
                    "--runtimeinfo-url=http://h/r",
                    "--auto-gomemlimit-ratio=0.9",
                ],
            ]
            .concat(),
        );
        assert!(c.confirmed.is_none());
        assert!(
            c.notes
                .iter()
                .any(|(_, n)| n.contains("--runtimeinfo-url is ignored")),
            "{:?}",
            c.notes
        );
        assert!(
            c.notes
                .iter()
                .any(|(_, n)| n.contains("--auto-gomemlimit-ratio is accepted")),
            "{:?}",
            c.notes
        );
        assert!(with("--reload-method=smoke").contains("expected http or signal"));
        assert!(
            with("--watch-interval=1x").starts_with("--watch-interval 1x:"),
            "{}",
            with("--watch-interval=1x")
        );
    }

    #[test]
    fn config_rendering_flags() {
        let dir = std::env::temp_dir().join(format!("hashreload-cli-{}", std::process::id()));
        let config_dir = dir.join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let gz = config_dir.join("prometheus.yaml.gz");
        std::fs::write(&gz, b"x").unwrap();
        let (gz, out) = (gz.to_str().unwrap(), dir.join("out/p.yaml"));
        let out = out.to_str().unwrap();
        let rules = dir.join("out");
        let rules = rules.to_str().unwrap();
        let input = format!("--config-file={gz}");
        let output = format!("--config-envsubst-file={out}");
        let base = ["--reload-url=http://h/", &input, &output];
        // The file itself is watched unless its directory is.
        let c = config(&[&base[..], &[&format!("--watched-dir={rules}")]].concat());
        assert_eq!(c.paths, vec![PathBuf::from(rules), PathBuf::from(gz)]);
        let r = c.render.unwrap();
        assert_eq!((r.input.to_str(), r.output.to_str()), (Some(gz), Some(out)));
        assert_eq!(r.ordinal_from, "POD_NAME");
        assert!(!c.render_once);
        let watched = format!("--watched-dir={}", config_dir.display());
        let c = config(
            &[
                &base[..],
                &[&watched, "--statefulset-ordinal-from-envvar=HOST"],
            ]
            .concat(),
        );
        assert_eq!(c.paths, vec![config_dir.clone()]);
        assert_eq!(c.render.unwrap().ordinal_from, "HOST");
        // The operator's init container.
        let c = config(
            &[
                &base[..],
                &[&watched, "--watch-interval=0", "--listen-address=:8081"],
            ]
            .concat(),
        );
        assert!(c.render_once);
        assert_eq!(c.interval, Duration::from_secs(10));
        assert!(error(&[
            "--watched-dir=/",
            "--reload-url=http://h/",
            "--watch-interval=0"
        ])
        .contains("give --config-file"));
        assert!(
            error(&["--watched-dir=/", "--reload-url=http://h/", &output])
                .starts_with("--config-envsubst-file: needs --config-file")
        );
        let e = error(&["--reload-url=http://h/", "--config-file=/nonexistent/x.gz"]);
        assert!(
            e.starts_with("--config-file /nonexistent/x.gz: no such file"),
            "{e}"
        );
        let e = error(&[
            "--reload-url=http://h/",
            &input,
            "--config-envsubst-file=/nonexistent/o",
        ]);
        assert!(
            e.starts_with("--config-envsubst-file /nonexistent/o: no directory"),
            "{e}"
        );
        let e = error(&[
            "--reload-url=http://h/",
            &input,
            &format!("--config-envsubst-file={gz}"),
        ]);
        assert!(e.contains("must differ from --config-file"), "{e}");
        let e = error(&[&base[..], &[&watched, "--once"]].concat());
        assert!(
            e.starts_with("--once with --config-envsubst-file: not supported"),
            "{e}"
        );
        let e = error(&[&base[..], &[&watched, "--once", "--watch-interval=0"]].concat());
        assert!(e.starts_with("--once with --config-envsubst-file"), "{e}");
        // As the incumbent: the ordinal alone is accepted, a reload URL ignored in signal mode.
        let c = config(&[
            "--watched-dir=/",
            "--statefulset-ordinal-from-envvar=X",
            "--reload-url=http://h/",
        ]);
        assert!(c.render.is_none());
        let c = config(&[
            "--watched-dir=/",
            "--reload-url=http://h/",
            "--reload-method=signal",
        ]);
        assert!(c.urls.is_empty() && c.confirmed.is_some());
        assert!(
            c.notes
                .iter()
                .any(|(_, n)| n.contains("--reload-url is ignored")),
            "{:?}",
            c.notes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_2017_watch_line() {
        let c = config(&["-v", "-t", "-p=/tmp", "sh", "-c", "exit 0"]);
        assert_eq!(c.paths, vec![PathBuf::from("/tmp")]);
        assert_eq!(c.log_level, Level::Debug);
        assert!(c.command.is_some());
    }

    #[test]
    fn environment_fallbacks_and_the_command_line_replaces_them() {
        let env = [
            ("HASHRELOAD_PATH", "/tmp\n/etc\n"),
            ("HASHRELOAD_URL", "http://a/?x=1,2\r\nhttp://b/"),
            ("HASHRELOAD_INTERVAL", "5s"),
            ("HASHRELOAD_RELOAD_ON_START", "true"),
            ("HASHRELOAD_HEADER", "X-A: 1, 2"),
        ];
        let c = config_env(&[], &env);
        assert_eq!(c.paths, vec![PathBuf::from("/tmp"), PathBuf::from("/etc")]);
        let names: Vec<_> = c.urls.iter().map(|u| u.name().to_string()).collect();
        assert_eq!(names, ["http://a/?x=***", "http://b/"]);
        assert_eq!(c.interval, Duration::from_secs(5));
        assert!(c.reload_on_start);
        assert_eq!(c.headers, vec![("X-A".into(), "1, 2".into())]);
        let c = config_env(
            &["-u", "http://cli/", "-i", "2s", "--reload-on-start=false"],
            &env,
        );
        let names: Vec<_> = c.urls.iter().map(|u| u.name().to_string()).collect();
        assert_eq!(
            names,
            ["http://cli/"],
            "the command line replaces, never merges"
        );
        assert_eq!(c.interval, Duration::from_secs(2));
        assert!(!c.reload_on_start);
        assert_eq!(
            c.paths.len(),
            2,
            "what the command line does not give still comes from env"
        );
        let e = match parse_with_env(args(&[]), |n| match n {
            "HASHRELOAD_PATH" => Some("/tmp".into()),
            "HASHRELOAD_URL" => Some("http://h/".into()),
            "HASHRELOAD_RELOAD_ON_START" => Some("yes".into()),
            _ => None,
        }) {
            Err(UsageError(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e,
            "HASHRELOAD_RELOAD_ON_START=yes: expected true, false, 1 or 0"
        );
    }

    #[test]
    fn every_own_flag_has_an_env_name_but_help_and_version() {
        let envs: Vec<String> = FLAGS.iter().filter_map(Flag::env).collect();
        assert!(envs.contains(&"HASHRELOAD_BEARER_TOKEN_FILE".to_string()));
        assert_eq!(
            envs.len(),
            FLAGS.iter().filter(|f| f.kind == Kind::Own).count() - 2
        );
        let h = help();
        for e in envs {
            assert!(h.contains(&e), "{e}");
        }
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

    #[test]
    fn the_daemon_takes_expect_but_never_from_inside_a_watched_path() {
        let dir =
            std::env::temp_dir().join(format!("hashreload-cli-expect-{}", std::process::id()));
        let (watched, approved) = (dir.join("config"), dir.join("approved"));
        std::fs::create_dir_all(watched.join("..2026_12_01")).unwrap();
        std::fs::create_dir_all(&approved).unwrap();
        std::fs::write(watched.join("..2026_12_01/manifest"), "x").unwrap();
        std::os::unix::fs::symlink("..2026_12_01", watched.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/manifest", watched.join("manifest")).unwrap();
        std::fs::write(approved.join("manifest"), "x").unwrap();
        // Into the watched volume through another mount's symlink: refused all the same.
        std::os::unix::fs::symlink(watched.join("manifest"), approved.join("link")).unwrap();
        let w = watched.to_str().unwrap();
        let at = |f: &Path| format!("--expect=@{}", f.display());
        let c = config(&["-p", w, "-u", "http://h/", &at(&approved.join("manifest"))]);
        assert!(!c.once);
        assert_eq!(
            c.expect.as_ref().and_then(Expect::file),
            Some(&approved.join("manifest"))
        );
        for inside in [watched.join("manifest"), approved.join("link")] {
            let e = error(&["-p", w, "-u", "http://h/", &at(&inside)]);
            assert_eq!(
                e,
                format!(
                    "--expect @{}: inside the watched path {w}; mount the approved manifest elsewhere",
                    inside.display()
                )
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_paths_mark_watched_paths_only() {
        let c = config(&[
            "-p",
            "/",
            "-p",
            "/tmp/",
            "-u",
            "http://h/",
            "--secret-path",
            "/tmp",
        ]);
        assert_eq!(c.secret_roots, [false, true]);
        let twice = ["-p", "/tmp", "-p", "/", "-p", "/tmp", "-u", "http://h/"];
        let c = config(&[&twice[..], &["--secret-path=/tmp"]].concat());
        assert_eq!(c.secret_roots, [true, false, true]);
        assert_eq!(
            config(&["-p", "/", "-u", "http://h/"]).secret_roots,
            [false]
        );
        assert_eq!(
            error(&["-p", "/", "-u", "http://h/", "--secret-path=/tmp"]),
            "--secret-path /tmp: not a watched path; give it with --path too"
        );
    }
}
