//! The metrics and health server of the real binary, its bounds, and the log formats.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Starts `run` with `--listen-address 127.0.0.1:0`; returns it and the bound port.
fn serve(run: Run) -> (Proc, u16) {
    let p = run.args(&["--listen-address", "127.0.0.1:0"]).start();
    let port = bound_port(&p);
    (p, port)
}

#[test]
fn metrics_follow_changes_failures_and_deliveries() {
    let t = Tmp::new();
    t.write("d/a.yml", "a");
    t.write("d/b.yml", "bb");
    let r = Receiver::start(vec![Reply::Status(500, "no"), Reply::Status(500, "no")]);
    let url = r.url("/-/reload?token=secret");
    let (p, port) = serve(
        Run::new(t.path("d"))
            .url(&url)
            .args(&["--retry-interval", "100ms"]),
    );
    let (code, m) = get(port, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(sample(&m, "hashreload_watched_files"), Some(2.0));
    assert_eq!(sample(&m, "hashreload_watched_bytes"), Some(3.0));
    assert_eq!(sample(&m, "hashreload_changes_total"), Some(0.0));
    assert!(sample(&m, "hashreload_polls_total").unwrap() >= 1.0);
    let version = format!(
        "hashreload_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&m, &version), Some(1.0));
    assert!(sample(&m, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(!m.contains("secret"), "a query value leaked into a label");

    t.write("d/a.yml", "changed");
    p.wait_for_n("reload failed", 1);
    let target = format!("target=\"http://127.0.0.1:{}/-/reload?token=***\"", r.port);
    // The loop publishes its numbers after the tick that logged the failure; the second
    // failure follows 100 ms later, so this reads the snapshot between them.
    let mut m = String::new();
    let failed = wait_until(10, || {
        m = get(port, "/metrics").1;
        sample(&m, "hashreload_pending_targets") == Some(1.0)
    });
    assert!(failed, "{m}");
    let since = sample(
        &m,
        &format!("hashreload_pending_since_timestamp_seconds{{{target}}}"),
    )
    .unwrap();
    assert!(since > 1.7e9, "{m}");
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_last_reload_successful{{{target}}}")
        ),
        Some(0.0)
    );

    p.wait_for("reload delivered");
    let ok = wait_until(5, || {
        let (_, m) = get(port, "/metrics");
        sample(&m, "hashreload_pending_targets") == Some(0.0)
    });
    assert!(ok);
    let (_, m) = get(port, "/metrics");
    assert_eq!(sample(&m, "hashreload_changes_total"), Some(1.0));
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_reloads_total{{{target},result=\"failure\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_reloads_total{{{target},result=\"success\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_reload_duration_seconds_count{{{target}}}")
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_reload_duration_seconds_bucket{{{target},le=\"+Inf\"}}")
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!("hashreload_pending_since_timestamp_seconds{{{target}}}")
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &m,
            &format!("hashreload_last_reload_success_timestamp_seconds{{{target}}}")
        )
        .unwrap()
            >= since
    );
    assert_eq!(sample(&m, "hashreload_watched_bytes"), Some(9.0));
}

#[test]
fn every_metric_is_documented_in_the_readme() {
    let t = Tmp::new();
    t.write("d/a", "a");
    let r = Receiver::start(vec![]);
    // With --expect for hashreload_content_approved; a scan must have run for the digest series.
    let expect = format!("--expect={}", "0".repeat(64));
    let run = Run::new(t.path("d")).url(r.url("/")).default_interval();
    let (_p, port) = serve(run.args(&[&expect]));
    let approved = || {
        get(port, "/metrics")
            .1
            .contains("hashreload_content_approved 0")
    };
    assert!(wait_until(10, approved));
    let (_, m) = get(port, "/metrics");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let families: Vec<&str> = m
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    // Ours and prometheus-config-reloader's; the render families are checked in tests/operator.rs.
    assert_eq!(families.len(), 31);
    for f in families {
        assert!(readme.contains(&format!("| `{f}")), "README lacks {f}");
    }
}

#[test]
fn healthz_turns_503_while_the_loop_is_stuck_and_back() {
    let t = Tmp::new();
    t.write("d/a", "a");
    let r = Receiver::start(vec![]);
    let (p, port) = serve(
        Run::new(t.path("d"))
            .url(r.url("/"))
            .interval("100ms")
            .args(&["--timeout", "100ms"]),
    );
    assert_eq!(get(port, "/healthz"), (200, "ok\n".to_string()));
    // A scan that takes far longer than the limit (300 ms): a 3 GB sparse file, as on a slow mount.
    let big = std::fs::File::create(t.path("d/sparse")).unwrap();
    big.set_len(3 << 30).unwrap();
    let mut unhealthy = String::new();
    let stuck = wait_until(20, || {
        let (code, body) = get(port, "/healthz");
        unhealthy = body;
        code == 503
    });
    assert!(stuck, "{}", p.log());
    assert!(
        unhealthy.starts_with("unhealthy: no scan or delivery attempt finished for "),
        "{unhealthy}"
    );
    assert!(unhealthy.ends_with("(limit 300ms)\n"), "{unhealthy}");
    std::fs::remove_file(t.path("d/sparse")).unwrap();
    assert!(
        wait_until(60, || get(port, "/healthz").0 == 200),
        "{}",
        p.log()
    );
}

#[test]
fn the_server_is_bounded() {
    let t = Tmp::new();
    t.write("d/a", "a");
    let r = Receiver::start(vec![]);
    let (p, port) = serve(Run::new(t.path("d")).url(r.url("/")).default_interval());
    assert_eq!(get(port, "/nope").0, 404);
    assert_eq!(
        request(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        405
    );
    assert_eq!(request(port, "hello\r\n\r\n").0, 400);
    let (code, body) = request(port, "HEAD /healthz HTTP/1.1\r\n\r\n");
    assert_eq!((code, body.as_str()), (200, ""));
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "x".repeat(20_000)
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(huge.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&out)
    );

    // Idle connections that never send a byte fill every slot, then are closed at their deadline.
    let sockets = || {
        std::fs::read_dir(format!("/proc/{}/fd", p.child.id()))
            .unwrap()
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count()
    };
    let listening = sockets();
    let start = Instant::now();
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The server has accepted all eight before the ninth comes.
    assert!(wait_until(10, || sockets() >= listening + 8), "{}", p.log());
    let (code, _) = get(port, "/healthz");
    assert_eq!(code, 200, "served once the idle connections timed out");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(4),
        "the 9th connection waited for a slot: {waited:?}"
    );
    for c in &mut idle {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            c.read(&mut b).unwrap_or(0),
            0,
            "an idle connection was closed by the server"
        );
    }
}

#[test]
fn a_taken_listen_address_is_a_usage_error() {
    let t = Tmp::new();
    t.write("d/a", "a");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&[
        "-p",
        t.path("d").to_str().unwrap(),
        "-u",
        "http://127.0.0.1:9/",
        "--listen-address",
        &addr,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!("hashreload: --listen-address {addr}: ")),
        "{err}"
    );
}

/// A strict logfmt reader (go-logfmt's grammar): key=value pairs, values bare or quoted.
fn parse_logfmt(line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ' ')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        c @ ('"' | '\\') => value.push(c),
                        'u' => {
                            let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                            value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        }
                        _ => return None,
                    },
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ' ')).collect();
            if value.contains(['"', '=']) {
                return None;
            }
        }
        out.push((key, value));
        match chars.next() {
            None => break,
            Some(' ') => {}
            Some(_) => return None,
        }
    }
    Some(out)
}

/// Produces a log with every kind of line: start, scans, a change, a failure with an awkward
/// body, a delivery, the shutdown.
fn busy_log(format: &str) -> String {
    let t = Tmp::new();
    t.write("d/a", "a");
    let r = Receiver::start(vec![Reply::Status(
        500,
        "bad \"quote\" = x\nline2\ttab \\ end",
    )]);
    let mut p = Run::new(t.path("d"))
        .url(r.url("/"))
        .args(&["--retry-interval", "20ms", "--log-format", format])
        .start();
    t.write("d/a", "b");
    p.wait_for("delivered");
    let (status, _) = p.signal(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(wait_until(5, || p.log().contains("shutting down")));
    p.log()
}

#[test]
fn logfmt_lines_parse_as_logfmt() {
    let log = busy_log("logfmt");
    let mut body = None;
    for line in log.lines() {
        let pairs = parse_logfmt(line).unwrap_or_else(|| panic!("not logfmt: {line}"));
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys[..3], ["ts", "level", "msg"], "{line}");
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "error") {
            body = Some(v.clone());
        }
    }
    assert_eq!(
        body.as_deref(),
        Some("HTTP 500: bad \"quote\" = x\nline2\ttab \\ end")
    );
}

#[test]
fn json_lines_parse_as_json() {
    let log = busy_log("json");
    let check = r#"
import json, sys
n = 0
for line in sys.stdin:
    o = json.loads(line)
    assert isinstance(o, dict), line
    assert list(o)[:3] == ["ts", "level", "msg"], line
    assert all(isinstance(v, str) for v in o.values()), line
    if "error" in o:
        assert o["error"] == 'HTTP 500: bad "quote" = x\nline2\ttab \\ end', o["error"]
        n += 1
assert n == 1, n
print("ok")
"#;
    let mut py = std::process::Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(log.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_memory_or_descriptor_growth_over_ten_thousand_polls() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "a"), ("rules/b.yml", "b")]));
    let r = Receiver::start(vec![]);
    let (p, port) = serve(Run::new(t.path("vol")).url(r.url("/")).interval("1ms"));
    assert!(wait_until(30, || polls(port) >= 1000.0), "{}", p.log());
    v.write(&payload(&[("a.yml", "warm-up change")]));
    assert!(wait_until(10, || r.count() == 1));
    // Private memory: a leak grows it. VmRSS also counts the binary's own pages, which the loop
    // drops after each round of deliveries and the metrics scrapes map back.
    let (_, fds0) = steady_footprint(p.child.id());
    let rss0 = proc_status(p.child.id(), "RssAnon");
    let start = polls(port);
    for i in 0..5 {
        // Changes and deliveries along the way, not only idle scans.
        v.write(&payload(&[("a.yml", &format!("change {i}"))]));
        assert!(wait_until(10, || r.count() == 2 + i), "{}", p.log());
    }
    assert!(
        wait_until(90, || polls(port) >= start + 10_000.0),
        "{}",
        p.log()
    );
    let (_, fds1) = steady_footprint(p.child.id());
    let rss1 = proc_status(p.child.id(), "RssAnon");
    assert_eq!(fds1, fds0, "open descriptors changed over 10,000 polls");
    assert!(
        rss1 <= rss0 + 64,
        "private memory grew from {rss0} kB to {rss1} kB over 10,000 polls"
    );
}
