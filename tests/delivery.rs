//! Delivering reloads to real local listeners and real commands: nothing lost, nothing repeated.

mod common;
use common::*;
use std::net::TcpListener;
use std::time::Duration;

/// A watched dir with one file; `change(n)` writes new content.
struct Dir(Tmp);

impl Dir {
    fn new() -> Dir {
        let t = Tmp::new();
        t.write("conf/a.yml", b"v0");
        Dir(t)
    }
    /// The daemon watching it every 20 ms, retrying after 50 ms and at most every 200 ms.
    fn run(&self) -> Run {
        Run::new(self.0.path("conf")).args(&["--retry-interval", "50ms", "--max-backoff", "200ms"])
    }
    fn change(&self, n: u32) -> String {
        self.0.write("conf/a.yml", format!("v{n}").as_bytes());
        coreutils_digest(&payload(&[("a.yml", &format!("v{n}"))]))
    }
}

#[test]
fn endpoint_down_then_up_gets_the_pending_change() {
    let d = Dir::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let p = d.run().url(&url).start();
    let want = d.change(1);
    p.wait_for_n("reload failed", 2);
    assert!(p.log().contains("Connection refused"), "{}", p.log());
    let r = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), vec![]);
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), [want]);
    p.wait_scans(5);
    assert_eq!(r.count(), 1);
}

#[test]
fn a_500_is_logged_with_its_body_and_retried() {
    let d = Dir::new();
    let r = Receiver::start(vec![
        Reply::Status(500, "failed to reload config: field bogus_key not found"),
        Reply::Status(503, ""),
    ]);
    let p = d.run().url(r.url("/-/reload")).start();
    let want = d.change(1);
    assert!(wait_until(10, || r.count() == 3), "{}", p.log());
    p.wait_for("reload delivered");
    assert_eq!(r.digests(), [want.clone(), want.clone(), want]);
    let log = p.log();
    assert!(
        log.contains("error=\"HTTP 500: failed to reload config: field bogus_key not found\""),
        "{log}"
    );
    assert!(log.contains("error=\"HTTP 503\""), "{log}");
    p.wait_scans(5);
    assert_eq!(r.count(), 3);
}

#[test]
fn a_hanging_endpoint_times_out_and_is_retried() {
    let d = Dir::new();
    let r = Receiver::start(vec![Reply::Hang(Duration::from_secs(5))]);
    let p = d
        .run()
        .url(r.url("/"))
        .args(&["--timeout", "300ms"])
        .start();
    d.change(1);
    p.wait_for("error=\"timed out\"");
    p.wait_for("reload delivered");
    assert_eq!(r.count(), 2, "{}", p.log());
}

#[test]
fn one_failing_url_never_makes_another_resend() {
    let d = Dir::new();
    let bad = Receiver::start(vec![Reply::Status(500, ""); 6]);
    let good = Receiver::start(vec![]);
    let p = d.run().url(bad.url("/")).url(good.url("/")).start();
    let want = d.change(1);
    assert!(wait_until(10, || bad.count() == 7), "{}", p.log());
    assert_eq!(good.digests(), std::slice::from_ref(&want));
    assert_eq!(bad.digests().last(), Some(&want));
}

#[test]
fn a_redirect_is_not_followed() {
    let d = Dir::new();
    let elsewhere = Receiver::start(vec![]);
    let r = Receiver::start(vec![Reply::Redirect(elsewhere.url("/stolen"))]);
    let p = d.run().url(r.url("/")).start();
    d.change(1);
    p.wait_for("HTTP 307 (redirects are not followed)");
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    p.wait_for("reload delivered");
    assert_eq!(elsewhere.count(), 0);
}

#[test]
fn method_headers_statuses_auth_and_no_proxy() {
    let d = Dir::new();
    let token = d.0.path("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let r = Receiver::start(vec![Reply::Status(200, "")]);
    let url = r.url("/hook?secret=abc");
    let p = Run::new(d.0.path("conf"))
        .url(&url)
        .args(&[
            "-X",
            "PUT",
            "--status",
            "204",
            "-H",
            "X-Custom: hello world",
        ])
        .args(&["--bearer-token-file", token.to_str().unwrap()])
        .args(&["--retry-interval", "50ms"])
        .env("HTTP_PROXY", "http://127.0.0.1:1")
        .env("http_proxy", "http://127.0.0.1:1")
        .env("ALL_PROXY", "http://127.0.0.1:1")
        .start();
    d.change(1);
    // 200 is not in --status 204: it fails, then the default reply 200 keeps failing... so send 204.
    assert!(wait_until(10, || r.count() >= 1), "{}", p.log());
    std::fs::write(&token, "rotated-token").unwrap();
    r.push(Reply::Status(204, ""));
    p.wait_for("result=\"HTTP 204\"");
    let reqs = r.requests();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(reqs[0].path, "/hook?secret=abc");
    assert_eq!(reqs[0].header("X-Custom"), Some("hello world"));
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer first-token"));
    let last = reqs.last().unwrap();
    assert_eq!(last.header("Authorization"), Some("Bearer rotated-token"));
    let log = p.log();
    assert!(log.contains("HTTP 200"), "{log}");
    for secret in ["abc", "hello world", "first-token", "rotated-token"] {
        assert!(!log.contains(secret), "{secret} leaked: {log}");
    }
}

#[test]
fn userinfo_becomes_basic_auth_and_localhost_resolves() {
    let d = Dir::new();
    let r = Receiver::start(vec![]);
    let url = format!("http://admin:p%40ss@localhost:{}/-/reload", r.port);
    let p = d.run().url(&url).start();
    d.change(1);
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    // base64("admin:p@ss")
    assert_eq!(
        r.requests()[0].header("Authorization"),
        Some("Basic YWRtaW46cEBzcw==")
    );
    assert!(
        !p.log().contains("p%40ss") && !p.log().contains("admin"),
        "{}",
        p.log()
    );
}

#[test]
fn reload_on_start_delivers_the_first_scan() {
    let d = Dir::new();
    let r = Receiver::start(vec![]);
    let p = d.run().url(r.url("/")).args(&["--reload-on-start"]).start();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(
        r.digests(),
        [coreutils_digest(&payload(&[("a.yml", "v0")]))]
    );
}

#[test]
fn a_command_that_fails_then_succeeds() {
    let d = Dir::new();
    let out = d.0.path("runs");
    // Fails on its first run, succeeds after; records the digest it was given.
    let script = format!(
        "echo \"$HASHRELOAD_DIGEST\" >> {0}; [ $(wc -l < {0}) -ge 2 ]",
        out.display()
    );
    let p = d.run().args(&["--", "sh", "-c", &script]).start();
    let want = d.change(1);
    p.wait_for("error=\"exit status 1\"");
    p.wait_for("result=\"exit status 0\"");
    p.wait_scans(5);
    let runs = std::fs::read_to_string(&out).unwrap();
    assert_eq!(runs, format!("{want}\n{want}\n"));
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_group() {
    let d = Dir::new();
    let pidfile = d.0.path("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let p = d
        .run()
        .args(&["--timeout", "300ms", "sh", "-c", &script])
        .start();
    d.change(1);
    p.wait_for("killed after timeout 300ms");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(5, || unsafe { libc::kill(pid, 0) } != 0),
        "the COMMAND's background child survived"
    );
}
