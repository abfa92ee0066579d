//! The metrics and health server: `/metrics` and `/healthz` from one thread with a small stack.
//!
//! Bounded in every direction: at most `MAX_CONNS` connections at once (more wait in the kernel's
//! backlog), requests of at most `MAX_REQUEST` bytes, and a deadline per connection for reading
//! the request and writing the answer. One request per connection. It multiplexes with poll(2),
//! so a slow client never holds up a probe.
//!
//! `--web-config-file` adds basic auth (`basic_auth_users`) and, in the -tls build, TLS
//! (`tls_server_config`, see `tls_server`): the stream of a connection is then TLS over TCP, and
//! the TLS handshake is paced by the same poll loop and bounded by the same deadline.

use crate::basicauth::Users;
use crate::metrics::{self, ProcessStats, Shared};
use crate::webconfig::WebConfig;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAX_CONNS: usize = 8;
const MAX_REQUEST: usize = 8192;
const DEADLINE: Duration = Duration::from_secs(5);
/// How long accepting pauses after accept failed (out of descriptors or memory).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The server thread's stack. A TLS handshake (rustls and ring, an RSA or ECDSA certificate, a
/// client certificate verified) runs on it: the debug build's fits in 64 KiB and not in 32 KiB
/// (tests/listener.rs, measured by shrinking this), so 128 KiB leaves twice that.
const STACK: usize = 128 * 1024;

/// What `/healthz` needs to know.
pub struct Health {
    /// Longest time without a finished scan or delivery attempt that is still healthy.
    pub limit: Duration,
}

impl Health {
    /// max(3 x interval, timeout + 2 x interval): a scan is due every interval, and one delivery
    /// attempt may take up to the timeout.
    pub fn new(interval: Duration, timeout: Duration) -> Health {
        Health {
            limit: (interval * 3).max(timeout + interval * 2),
        }
    }

    /// 200 and `ok`, or 503 and why.
    fn check(&self, last_progress_ms: u64, now_ms: u64) -> (u16, String) {
        let idle = Duration::from_millis(now_ms.saturating_sub(last_progress_ms));
        if idle <= self.limit {
            (200, "ok\n".to_string())
        } else {
            (
                503,
                format!(
                    "unhealthy: no scan or delivery attempt finished for {}.{}s (limit {})\n",
                    idle.as_secs(),
                    idle.subsec_millis() / 100,
                    crate::duration::format_duration(self.limit)
                ),
            )
        }
    }
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts the server thread on an already bound listener, serving what `web`
/// (`--web-config-file`) asks for: its headers on every response, its users, its TLS.
pub fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    metrics_path: String,
    health: Health,
    web: WebConfig,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    #[cfg(feature = "tls")]
    let acceptor = web.tls.map(crate::tls_server::Acceptor::new);
    #[cfg(feature = "tls")]
    let acceptor = acceptor.transpose().map_err(io::Error::other)?;
    #[cfg(not(feature = "tls"))]
    let acceptor = ();
    let routes = Routes {
        shared,
        metrics_path,
        health,
        headers: header_lines(&web.headers),
        users: (!web.users.is_empty()).then(|| Users::new(web.users)),
    };
    crate::process::spawn_thread("server", STACK, move || serve(listener, &routes, acceptor))?;
    Ok(())
}

/// What the server answers from.
struct Routes {
    shared: Arc<Shared>,
    metrics_path: String,
    health: Health,
    /// The extra header lines, each ending in CRLF.
    headers: String,
    /// With `basic_auth_users`: every path but `/healthz` needs a user's name and password.
    /// `/healthz` does not, so the kubelet's httpGet probes (which carry neither a client
    /// certificate nor, without the password in the pod spec, credentials) still reach it; it
    /// tells only whether the loop is alive.
    users: Option<Users>,
}

/// What makes the TLS connections: `tls_server_config` in the -tls build, else nothing.
#[cfg(feature = "tls")]
type Acceptor = Option<crate::tls_server::Acceptor>;
#[cfg(not(feature = "tls"))]
type Acceptor = ();

/// A connection's bytes: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls_server::Conn>),
}

impl Stream {
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn new(tcp: TcpStream, acceptor: &mut Acceptor) -> Option<Stream> {
        #[cfg(feature = "tls")]
        if let Some(a) = acceptor {
            return a.accept(tcp).map(|c| Stream::Tls(Box::new(c)));
        }
        Some(Stream::Plain(tcp))
    }

    /// TLS with `RequireAndVerifyClientCert`, and the client presented no certificate.
    fn lacks_client_cert(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.lacks_client_cert(),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.fd(),
        }
    }

    /// What to poll for: the request or room for the answer, and room for what TLS queued
    /// (its handshake) while reading.
    fn events(&self, reading: bool) -> libc::c_short {
        let queued = match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.wants_write(),
        };
        match (reading, queued) {
            (true, false) => libc::POLLIN,
            (true, true) => libc::POLLIN | libc::POLLOUT,
            _ => libc::POLLOUT,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.write(buf),
        }
    }

    /// After the last byte of the answer: true when nothing is left to send.
    fn finish(&mut self) -> bool {
        match self {
            Stream::Plain(_) => true,
            #[cfg(feature = "tls")]
            Stream::Tls(c) => c.finish(),
        }
    }
}

fn header_lines(headers: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out
}

struct Conn {
    stream: Stream,
    request: Vec<u8>,
    response: Vec<u8>,
    written: usize,
    deadline: Instant,
}

fn serve(listener: TcpListener, routes: &Routes, mut acceptor: Acceptor) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(MAX_CONNS + 1);
    // Out of descriptors, accept fails and leaves the connection queued, so the listener stays
    // readable: it is left alone for a while instead of spinning.
    let mut resume = Instant::now();
    loop {
        fds.clear();
        let now = Instant::now();
        let accepting = conns.len() < MAX_CONNS && now >= resume;
        fds.push(pollfd(
            listener.as_raw_fd(),
            if accepting { libc::POLLIN } else { 0 },
        ));
        for c in &conns {
            fds.push(pollfd(
                c.stream.fd(),
                c.stream.events(c.response.is_empty()),
            ));
        }
        let timeout = conns
            .iter()
            .map(|c| c.deadline)
            .chain((now < resume).then_some(resume))
            .map(|t| t.saturating_duration_since(now).as_millis() as i32 + 1)
            .min()
            .unwrap_or(-1);
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            continue; // EINTR
        }
        let now = Instant::now();
        // From the end, so swap_remove only moves connections already handled.
        for i in (0..conns.len()).rev() {
            let ready = fds[i + 1].revents != 0;
            let keep = if ready {
                step(&mut conns[i], routes)
            } else {
                now < conns[i].deadline
            };
            if !keep {
                conns.swap_remove(i);
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while conns.len() < MAX_CONNS {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                        resume = now + ACCEPT_PAUSE;
                        break;
                    }
                    Err(_) => break,
                };
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if let Some(stream) = Stream::new(stream, &mut acceptor) {
                    conns.push(Conn {
                        stream,
                        request: Vec::new(),
                        response: Vec::new(),
                        written: 0,
                        deadline: now + DEADLINE,
                    });
                }
            }
        }
    }
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Reads or writes what is ready; false when the connection is done.
fn step(c: &mut Conn, routes: &Routes) -> bool {
    if Instant::now() >= c.deadline {
        return false;
    }
    // Read until the socket would block: TLS may hold decrypted bytes poll cannot signal. Each
    // turn adds a byte at least, and a request stops at MAX_REQUEST.
    while c.response.is_empty() {
        let mut buf = [0u8; 1024];
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => c.request.extend_from_slice(&buf[..n]),
            Err(e) => {
                return e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted
            }
        }
        if c.request.windows(4).any(|w| w == b"\r\n\r\n")
            || c.request.windows(2).any(|w| w == b"\n\n")
        {
            c.response = respond(&c.request, routes, c.stream.lacks_client_cert());
        } else if c.request.len() > MAX_REQUEST {
            c.response = response(
                400,
                "text/plain",
                "request too large\n",
                false,
                &routes.headers,
            );
        }
    }
    match c.stream.write(&c.response[c.written..]) {
        Ok(n) => {
            c.written += n;
            c.written < c.response.len() || !c.stream.finish()
        }
        Err(e) => e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted,
    }
}

/// The answer to one request (its head, at least, is complete). `lacks_client_cert`: a client
/// certificate is required and none was presented; only /healthz answers then.
fn respond(request: &[u8], routes: &Routes, lacks_client_cert: bool) -> Vec<u8> {
    let extra = &routes.headers;
    let line = request.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = std::str::from_utf8(line)
        .unwrap_or("")
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return response(400, "text/plain", "bad request\n", false, extra);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return response(400, "text/plain", "bad request\n", false, extra);
    }
    let head = method == "HEAD";
    if method != "GET" && !head {
        return response(405, "text/plain", "only GET and HEAD\n", false, extra);
    }
    let path = target.split('?').next().unwrap_or("");
    // Every path but /healthz (the kubelet's probe) needs what the web config asks for: a
    // client certificate first, then a user's credentials (no bcrypt for a client without one).
    if path != "/healthz" {
        if lacks_client_cert {
            let body = "client certificate required\n";
            return response(403, "text/plain", body, head, extra);
        }
        if routes.users.as_ref().is_some_and(|u| !u.allow(request)) {
            return response(401, "text/plain", "unauthorized\n", head, extra);
        }
    }
    if path == routes.metrics_path {
        let stats = routes.shared.snapshot();
        let text = metrics::render(&stats, &ProcessStats::read(), crate::VERSION);
        response(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            &text,
            head,
            extra,
        )
    } else if path == "/healthz" {
        let progress = routes.shared.last_progress_ms();
        let (code, body) = routes.health.check(progress, unix_ms());
        response(code, "text/plain", &body, head, extra)
    } else {
        let body = format!("not found: try {} or /healthz\n", routes.metrics_path);
        response(404, "text/plain", &body, head, extra)
    }
}

/// The whole answer; `extra` is header lines, each ending in CRLF.
fn response(code: u16, content_type: &str, body: &str, head: bool, extra: &str) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let allow = match code {
        401 => "WWW-Authenticate: Basic\r\n",
        405 => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basicauth::Hash;

    fn answer(req: &str) -> String {
        answer_with(req, &[])
    }

    fn answer_with(req: &str, headers: &[(String, String)]) -> String {
        String::from_utf8(respond(req.as_bytes(), &routes(headers, None), false)).unwrap()
    }

    fn routes(headers: &[(String, String)], users: Option<Users>) -> Routes {
        let routes = Routes {
            shared: Arc::new(Shared::default()),
            metrics_path: "/metrics".into(),
            health: Health::new(Duration::from_secs(1), Duration::from_secs(10)),
            headers: header_lines(headers),
            users,
        };
        routes.shared.progress(unix_ms());
        routes
    }

    #[test]
    fn users_need_credentials_but_for_healthz() {
        // htpasswd -nbBC 4 alice wonderland
        let hash = "$2y$04$bFxPnHhtrdqdvRPFvgJ/Xuq9daAaQzq3dDdgJy3BboprdYOmqGdiy";
        let users = Users::new(vec![("alice".into(), Hash::parse(hash).unwrap())]);
        let headers = [("X-Frame-Options".to_string(), "deny".to_string())];
        let routes = routes(&headers, Some(users));
        let answer =
            |req: &str| String::from_utf8(respond(req.as_bytes(), &routes, false)).unwrap();
        // "alice:wonderland" and "alice:wrong"
        let (good, bad) = ("YWxpY2U6d29uZGVybGFuZA==", "YWxpY2U6d3Jvbmc=");
        // The right password first: checked once, then remembered (a check straight after
        // wrong ones may wait its turn, see basicauth.rs).
        let a = answer(&format!(
            "GET /metrics HTTP/1.1\r\nAuthorization: Basic {good}\r\n\r\n"
        ));
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n") && a.contains("hashreload_polls_total"));
        let a = answer(&format!(
            "HEAD /nope HTTP/1.1\r\nAuthorization: Basic {good}\r\n\r\n"
        ));
        assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
        for path in ["/metrics", "/nope"] {
            for auth in ["", &format!("Authorization: Basic {bad}\r\n")] {
                let a = answer(&format!("GET {path} HTTP/1.1\r\n{auth}\r\n"));
                assert!(a.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{a}");
                assert!(a.contains("\r\nWWW-Authenticate: Basic\r\n"), "{a}");
                assert!(a.contains("\r\nX-Frame-Options: deny\r\n"), "{a}");
                assert!(a.ends_with("\r\n\r\nunauthorized\n"), "{a}");
            }
        }
        assert!(answer("GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(answer("GET /healthz?x HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nok\n"));
        // A required client certificate that was not presented: only /healthz answers, before
        // any password is looked at.
        let bare = |req: &str| String::from_utf8(respond(req.as_bytes(), &routes, true)).unwrap();
        let a = bare(&format!(
            "GET /metrics HTTP/1.1\r\nAuthorization: Basic {good}\r\n\r\n"
        ));
        assert!(a.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{a}");
        assert!(a.ends_with("\r\n\r\nclient certificate required\n"), "{a}");
        assert!(bare("GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn health_limit_is_the_larger_of_the_two() {
        let s = Duration::from_secs;
        assert_eq!(Health::new(s(1), s(10)).limit, s(12));
        assert_eq!(Health::new(s(60), s(10)).limit, s(180));
    }

    #[test]
    fn health_says_why() {
        let h = Health::new(Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(h.check(10_000, 12_000).0, 200);
        let (code, body) = h.check(10_000, 13_500);
        assert_eq!(code, 503);
        assert_eq!(
            body,
            "unhealthy: no scan or delivery attempt finished for 3.5s (limit 3s)\n"
        );
    }

    #[test]
    fn routes_and_statuses() {
        assert!(answer("GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(answer("GET /healthz?x=1 HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nok\n"));
        assert!(answer("HEAD /healthz HTTP/1.1\r\n\r\n").ends_with("Connection: close\r\n\r\n"));
        let m = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            m.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{m}"
        );
        assert!(m.contains("\nhashreload_polls_total 0\n"), "{m}");
        assert!(answer("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let post = answer("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"),
            "{post}"
        );
        for bad in [
            "garbage\r\n\r\n",
            "GET /metrics\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "GET / SPDY/3\r\n\r\n",
        ] {
            assert!(answer(bad).starts_with("HTTP/1.1 400 "), "{bad}");
        }
    }

    #[test]
    fn extra_headers_are_on_every_response() {
        let headers = [
            ("X-Frame-Options".to_string(), "deny".to_string()),
            ("Content-Security-Policy".to_string(), String::new()),
        ];
        let want =
            "\r\nX-Frame-Options: deny\r\nContent-Security-Policy: \r\nConnection: close\r\n\r\n";
        for (req, status) in [
            ("GET /metrics HTTP/1.1\r\n\r\n", "200"),
            ("GET /healthz HTTP/1.1\r\n\r\n", "200"),
            ("HEAD /healthz HTTP/1.1\r\n\r\n", "200"),
            ("GET /nope HTTP/1.1\r\n\r\n", "404"),
            ("POST /metrics HTTP/1.1\r\n\r\n", "405"),
            ("garbage\r\n\r\n", "400"),
        ] {
            let a = answer_with(req, &headers);
            assert!(a.starts_with(&format!("HTTP/1.1 {status} ")), "{a}");
            assert!(a.contains(want), "{req:?}: {a}");
        }
        assert!(!answer("GET /healthz HTTP/1.1\r\n\r\n").contains("X-Frame-Options"));
    }
}
