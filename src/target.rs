//! Reload targets: an HTTP endpoint, a signal or a COMMAND, behind the `Deliver` trait, and what
//! an HTTP target is made of (URL, method, headers). Each delivery is one bounded attempt that
//! either succeeds or says why it failed; retrying is the poll loop's business.

use crate::duration::format_duration;
use crate::process;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Something a change is delivered to. `Ok` carries a short description for the log.
pub trait Deliver {
    fn name(&self) -> &str;
    fn deliver(&mut self, digest: &str) -> Result<String, Failure>;
}

/// Why one delivery attempt failed, as the log says it ("HTTP 503: ...", "timed out", "killed
/// after timeout 10s"). Every failure is retried the same way, so callers need only the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much of a failed response's body is logged (Prometheus explains a bad config there).
const BODY_PREFIX: u64 = 512;

/// An `http://` URL split into what is sent and the credentials it carried.
#[derive(Clone, Debug)]
pub struct HttpUrl {
    /// The URL without userinfo: what is requested.
    url: String,
    /// For logs and metric labels: no userinfo, query values replaced by `***`.
    name: String,
    /// `user:password` from the URL, percent-decoded.
    basic: Option<String>,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let (scheme, rest) = match s.split_once("://") {
            Some(("http", rest)) => ("http", rest),
            #[cfg(feature = "tls")]
            Some(("https", rest)) => ("https", rest),
            #[cfg(not(feature = "tls"))]
            Some(("https", _)) => {
                return Err(
                    "'https://': this build speaks plain http:// only; HTTPS needs the \
                            hashreload -tls image"
                        .into(),
                )
            }
            Some((scheme, _)) if !scheme.is_empty() => {
                return Err(format!("'{scheme}://': expected http:// or https://"))
            }
            _ => return Err(format!("'{}': expected http://HOST[:PORT]/PATH", redact(s))),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (basic, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let decoded = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
                (Some(decoded.into_owned()), hostport)
            }
            None => (None, authority),
        };
        let path = path.split('#').next().unwrap_or("");
        let url = format!(
            "{scheme}://{hostport}{}",
            if path.is_empty() { "/" } else { path }
        );
        let name = redact(&url);
        if hostport.is_empty() || hostport.starts_with(':') {
            return Err(format!("'{name}': missing host"));
        }
        let uri: ureq::http::Uri = url.parse().map_err(|e| format!("'{name}': {e}"))?;
        if uri.host().is_none() {
            return Err(format!("'{name}': missing host"));
        }
        let port = match hostport.rfind([']', ':']) {
            Some(i) if hostport.as_bytes()[i] == b':' => Some(&hostport[i + 1..]),
            _ => None,
        };
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(format!("'{name}': the port must be a number up to 65535"));
        }
        Ok(HttpUrl { url, name, basic })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_https(&self) -> bool {
        self.url.starts_with("https:")
    }

    pub fn has_userinfo(&self) -> bool {
        self.basic.is_some()
    }

    /// Basic-auth credentials given apart from the URL (curl's `-u user:password`).
    pub fn with_userinfo(mut self, user_password: String) -> HttpUrl {
        self.basic = Some(user_password);
        self
    }
}

/// Drops userinfo and replaces query values with `***`: tokens hide in both.
fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let host = rest[..end]
                .rsplit_once('@')
                .map_or(&rest[..end], |(_, h)| h);
            format!("{scheme}://{host}{}", &rest[end..])
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// `Authorization: Basic` for `user:password` (RFC 7617).
fn basic_auth(user_password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
    format!("Basic {encoded}")
}

/// `localhost` and `*.localhost` (any case): the names our resolver sends to loopback itself.
pub fn is_local_name(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    lower == "localhost" || lower.ends_with(".localhost")
}

/// Resolves `localhost` and `*.localhost` to loopback itself: in a FROM scratch image there is no
/// /etc/hosts, and musl would ask a DNS server that is not there for 5 s. IP literals need no
/// lookup; other names go to the system resolver, in a thread of our own (`resolve_in_thread`).
#[derive(Debug, Default)]
struct LocalResolver;

impl Resolver for LocalResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let addrs: Vec<SocketAddr> = if is_local_name(host) {
            vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ]
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            resolve_in_thread(host, port, timeout)?
        };
        let mut out = self.empty();
        // ureq holds at most 16 addresses.
        for a in addrs.into_iter().take(16) {
            out.push(a);
        }
        Ok(out)
    }
}

/// The system resolver in a thread that never takes our signals (`process::spawn_thread`), so
/// the loop can give up on a lookup that hangs past the request's timeout. (ureq's own resolver
/// starts a thread with the loop's signal mask.)
fn resolve_in_thread(
    host: &str,
    port: u16,
    timeout: NextTimeout,
) -> Result<Vec<SocketAddr>, ureq::Error> {
    use std::net::ToSocketAddrs;
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    let (tx, rx) = sync_channel(1);
    let name = (host.to_string(), port);
    // A thread stuck in a lookup ends with the resolver's own timeout; its stack is only reserved
    // address space (glibc's NSS modules, in test builds, want more than musl).
    process::spawn_thread("resolve", 256 * 1024, move || {
        let _ = tx.send(name.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
    })
    .map_err(ureq::Error::Io)?;
    match rx.recv_timeout(*timeout.after) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) | Err(RecvTimeoutError::Disconnected) => Err(ureq::Error::HostNotFound),
        Ok(Err(e)) => Err(ureq::Error::Io(e)),
        Err(RecvTimeoutError::Timeout) => Err(ureq::Error::Timeout(timeout.reason)),
    }
}

/// Which HTTP answers count as a successful reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Any 2xx (the default).
    Success,
    /// Exactly these statuses (`--status`).
    Codes(Vec<u16>),
    /// Below 400: curl's meaning with `-f`.
    Below400,
    /// Any answer at all: curl's meaning without `-f`.
    Any,
}

impl Accept {
    fn accepts(&self, status: u16) -> bool {
        match self {
            Accept::Success => (200..300).contains(&status),
            Accept::Codes(c) => c.contains(&status),
            Accept::Below400 => status < 400,
            Accept::Any => true,
        }
    }
}

/// An HTTP method as `-X`/`--method` give it: a token, such as POST, PUT or GET.
pub fn parse_method(flag: &str, m: &str) -> Result<String, String> {
    if !m.is_empty() && m.bytes().all(is_token) {
        Ok(m.to_string())
    } else {
        Err(format!(
            "{flag} '{m}': expected an HTTP method such as POST, PUT or GET"
        ))
    }
}

/// RFC 9110 `tchar`: what may appear in a method or header name.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `Name: value`, with the value free of CR, LF and other control characters.
pub fn parse_header(flag: &str, h: &str) -> Result<(String, String), String> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(format!("{flag}: expected 'Name: value'"));
    };
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(format!(
            "{flag}: the name before ':' must be a valid HTTP header name"
        ));
    }
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "{flag} {name}: the value must not contain CR, LF or other control characters"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// What an HTTP target sends.
#[derive(Debug)]
pub struct HttpOptions {
    pub method: String,
    pub accept: Accept,
    pub headers: Vec<(String, String)>,
    pub bearer_token_file: Option<PathBuf>,
    pub timeout: Duration,
    /// A request body (curl's `-d`), sent with its content type.
    pub body: Option<(Vec<u8>, &'static str)>,
}

pub struct Http {
    url: HttpUrl,
    agent: ureq::Agent,
    options: std::rc::Rc<HttpOptions>,
}

impl Http {
    pub fn new(url: HttpUrl, options: std::rc::Rc<HttpOptions>) -> Http {
        Http {
            url,
            agent: agent(options.timeout),
            options,
        }
    }

    /// The redacted URL, as logs and metric labels name it.
    pub fn name(&self) -> &str {
        self.url.name()
    }

    /// One request: a short description for the log, or why it failed.
    pub fn deliver(&self, digest: &str) -> Result<String, String> {
        let o = &*self.options;
        let mut req = ureq::http::Request::builder()
            .method(o.method.as_str())
            .uri(&self.url.url);
        // Empty when digests are hidden (`--secret-path`).
        if !digest.is_empty() {
            req = req.header("X-Hashreload-Digest", digest);
        }
        for (k, v) in &o.headers {
            req = req.header(k, v);
        }
        if let Some(userinfo) = &self.url.basic {
            req = req.header("Authorization", basic_auth(userinfo));
        }
        if let Some(f) = &o.bearer_token_file {
            // Re-read every time, so a rotated Secret is used. Its content never reaches a log.
            let token = std::fs::read_to_string(f)
                .map_err(|e| format!("bearer token file {}: {e}", f.display()))?;
            req = req.header("Authorization", format!("Bearer {}", token.trim()));
        }
        let body: &[u8] = match &o.body {
            Some((data, content_type)) => {
                req = req.header("Content-Type", *content_type);
                data
            }
            None => &[],
        };
        let req = req.body(body).map_err(|e| format!("request: {e}"))?;
        let mut resp = self.agent.run(req).map_err(describe_error)?;
        let status = resp.status().as_u16();
        if o.accept.accepts(status) {
            return Ok(format!("HTTP {status}"));
        }
        let mut body = Vec::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(BODY_PREFIX)
            .read_to_end(&mut body);
        let body = String::from_utf8_lossy(&body);
        let body = body.trim();
        let mut msg = format!("HTTP {status}");
        if (300..400).contains(&status) {
            msg.push_str(" (redirects are not followed)");
        }
        if !body.is_empty() {
            msg.push_str(": ");
            msg.push_str(body);
        }
        Err(msg)
    }
}

#[cfg(feature = "tls")]
static TLS: std::sync::OnceLock<crate::trust::TlsOptions> = std::sync::OnceLock::new();

/// Sets the TLS options of every request from now on; only the first call counts.
#[cfg(feature = "tls")]
pub fn use_tls(options: crate::trust::TlsOptions) {
    let _ = TLS.set(options);
}

/// Every request's agent: our resolver, no proxy, no redirects (a reload must not wander off),
/// one connection per request, and any status an answer rather than an error.
fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .max_idle_connections(0)
        .allow_non_standard_methods(true)
        .user_agent(concat!("hashreload/", env!("CARGO_PKG_VERSION")))
        .build();
    #[cfg(not(feature = "tls"))]
    let connector = ureq::unversioned::transport::DefaultConnector::new();
    #[cfg(feature = "tls")]
    let connector = crate::tls::connector(TLS.get().cloned().unwrap_or_default());
    ureq::Agent::with_parts(config, connector, LocalResolver)
}

/// GETs `url` (with its Basic-auth userinfo): the status and a body of at most `limit` bytes; a
/// longer body is an error, not cut, so a reader never parses half a document.
pub fn get(url: &HttpUrl, timeout: Duration, limit: u64) -> Result<(u16, Vec<u8>), String> {
    let mut resp = send_get(url, timeout).map_err(describe_error)?;
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the body: {e}"))?;
    if body.len() as u64 > limit {
        return Err(format!("the body is larger than {limit} bytes"));
    }
    Ok((resp.status().as_u16(), body))
}

/// One GET of `url`, the body left unread: its status, or why there was none. For the exec
/// probe (`shprobe`), which turns either into curl's exit code.
pub fn get_status(url: &HttpUrl, timeout: Duration) -> Result<u16, ureq::Error> {
    Ok(send_get(url, timeout)?.status().as_u16())
}

fn send_get(
    url: &HttpUrl,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let mut req = ureq::http::Request::get(&url.url);
    if let Some(userinfo) = &url.basic {
        req = req.header("Authorization", basic_auth(userinfo));
    }
    agent(timeout).run(req.body(()).map_err(ureq::Error::Http)?)
}

/// A TLS failure's reason; whether we presented a client certificate tells its alerts apart.
#[cfg(feature = "tls")]
fn tls_reason(e: &rustls::Error) -> String {
    let client_cert = TLS.get().is_some_and(|t| t.cert_file.is_some());
    format!("TLS: {}", crate::tls::reason(e, client_cert))
}

fn describe_error(e: ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".to_string(),
        #[cfg(feature = "tls")]
        ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            let tls = io
                .into_inner()
                .and_then(|e| e.downcast::<rustls::Error>().ok());
            tls_reason(&tls.expect("checked above"))
        }
        ureq::Error::Io(io) => io.to_string(),
        e => e.to_string(),
    }
}

/// A COMMAND run without a shell, in its own process group, killed with it after the timeout.
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    name: String,
}

impl Command {
    pub fn new(program: PathBuf, args: Vec<OsString>, timeout: Duration) -> Command {
        // Only the program: arguments may hold credentials (curl -u, -H).
        let base = program.file_name().unwrap_or(program.as_os_str());
        let name = format!("exec:{}", base.to_string_lossy());
        Command {
            program,
            args,
            timeout,
            name,
        }
    }

    /// `exec:PROGRAM`, as logs and metric labels name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One run: a short description for the log, or why it failed.
    pub fn deliver(&self, digest: &str) -> Result<String, String> {
        let (child, pid) = process::spawn_group(|| {
            let mut command = std::process::Command::new(&self.program);
            if !digest.is_empty() {
                command.env("HASHRELOAD_DIGEST", digest);
            }
            let child = command
                .args(&self.args)
                .stdin(std::process::Stdio::null())
                .process_group(0)
                .spawn()?;
            let pid = child.id() as i32;
            Ok(((child, pid), pid))
        })
        .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        // We reap with waitpid ourselves (see process::reap), never through `child`.
        drop(child);
        let deadline = Instant::now() + self.timeout;
        let mut nap = Duration::from_millis(1);
        let result = loop {
            if let Some(status) = process::reap(pid) {
                break if status == 0 {
                    Ok("exit status 0".to_string())
                } else {
                    Err(process::describe_status(status))
                };
            }
            if Instant::now() >= deadline {
                process::kill_group(pid);
                while process::reap(pid).is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                break Err(format!(
                    "killed after timeout {}",
                    format_duration(self.timeout)
                ));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        process::clear_group();
        // A timed-out or finished leader may leave the rest of its group running.
        process::kill_group(pid);
        result
    }
}

/// Finds a program as execvp would: a name with a `/` as is, otherwise through PATH.
pub fn find_program(name: &OsStr) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.as_encoded_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_names_resolve_in_a_thread_of_our_own() {
        let timeout = NextTimeout {
            after: Duration::from_secs(5).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        // From /etc/hosts (the test build uses the system's resolver, not DNS).
        let addrs = resolve_in_thread("localhost", 8080, timeout).unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert!(!addrs.is_empty());
    }

    #[test]
    fn parses_and_redacts_urls() {
        let u =
            HttpUrl::parse("http://admin:s%40cret@127.0.0.1:9090/-/reload?token=abc&x").unwrap();
        assert_eq!(u.url, "http://127.0.0.1:9090/-/reload?token=abc&x");
        assert_eq!(u.name(), "http://127.0.0.1:9090/-/reload?token=***&x");
        assert_eq!(u.basic.as_deref(), Some("admin:s@cret"));
        let u = HttpUrl::parse("http://localhost:8080").unwrap();
        assert_eq!(u.url, "http://localhost:8080/");
        assert!(!u.has_userinfo());
        assert_eq!(
            HttpUrl::parse("http://[::1]:9/r").unwrap().url,
            "http://[::1]:9/r"
        );
    }

    #[test]
    fn rejects_bad_urls_without_leaking_secrets() {
        match HttpUrl::parse("https://u:pw@h/") {
            Ok(u) if cfg!(feature = "tls") => {
                assert_eq!((u.url.as_str(), u.is_https()), ("https://h/", true));
                assert_eq!(u.basic.as_deref(), Some("u:pw"));
            }
            Err(e) => assert!(e.contains("needs the hashreload -tls image"), "{e}"),
            Ok(u) => panic!("{u:?}"),
        }
        let e = HttpUrl::parse("ftp://u:pw@h/").unwrap_err();
        assert_eq!(e, "'ftp://': expected http:// or https://");
        for bad in [
            "",
            "127.0.0.1:9090",
            "http://",
            "http://u:pw@/x",
            "http://:80/",
            "http://h:port/",
        ] {
            let e = HttpUrl::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn basic_auth_is_padded_standard_base64() {
        assert_eq!(
            basic_auth("Aladdin:open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth("f"), "Basic Zg==");
        assert_eq!(basic_auth("fo"), "Basic Zm8=");
        assert_eq!(basic_auth("foo"), "Basic Zm9v");
    }

    #[test]
    fn userinfo_is_percent_decoded_leniently() {
        let basic = |url: &str| HttpUrl::parse(url).unwrap().basic.unwrap();
        assert_eq!(basic("http://a%3Ab:c%2fd@h/"), "a:b:c/d");
        assert_eq!(basic("http://a%zz:%4@h/"), "a%zz:%4");
        assert_eq!(basic("http://%ff:x@h/"), "\u{fffd}:x");
    }

    #[test]
    fn parses_methods_and_headers() {
        assert_eq!(parse_method("-X", "PUT").as_deref(), Ok("PUT"));
        assert_eq!(
            parse_method("--method", "PO ST").unwrap_err(),
            "--method 'PO ST': expected an HTTP method such as POST, PUT or GET"
        );
        assert!(parse_method("-X", "").is_err());
        assert_eq!(
            parse_header("-H", "X-A:  1 2\t"),
            Ok(("X-A".to_string(), "1 2".to_string()))
        );
        assert_eq!(
            parse_header("-H", "NoColon").unwrap_err(),
            "-H: expected 'Name: value'"
        );
        assert!(parse_header("-H", "Bad Name: x")
            .unwrap_err()
            .contains("valid HTTP header name"));
        assert!(parse_header("-H", ": x").is_err());
        assert_eq!(
            parse_header("--header", "X: a\r\nInjected: 1").unwrap_err(),
            "--header X: the value must not contain CR, LF or other control characters"
        );
        assert_eq!(
            parse_header("-H", "X: a\tb"),
            Ok(("X".to_string(), "a\tb".to_string()))
        );
    }

    #[test]
    fn finds_programs() {
        assert!(find_program(OsStr::new("sh")).is_some());
        assert!(find_program(OsStr::new("/bin/sh")).is_some());
        assert!(find_program(OsStr::new("/etc/passwd")).is_none());
        assert!(find_program(OsStr::new("no-such-program-xyz")).is_none());
    }

    #[test]
    fn command_names_hide_arguments() {
        let c = Command::new(
            "/usr/bin/curl".into(),
            vec!["-u".into(), "a:b".into()],
            Duration::from_secs(1),
        );
        assert_eq!(c.name, "exec:curl");
    }
}
