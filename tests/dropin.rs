//! The incumbents' exact argument lists, the environment fallbacks, and curl emulation, run with
//! the real binary: the reload must arrive.

mod common;
use common::*;
use std::process::Command;

/// A watched kubelet-style volume and a change to it.
fn volume(t: &Tmp) -> (Volume, String) {
    let mut v = Volume::new(t.path("etc-config"));
    v.write(&payload(&[("prometheus.yml", "a: 1\n")]));
    let dir = t.path("etc-config").to_str().unwrap().to_string();
    (v, dir)
}

fn change(v: &mut Volume) -> String {
    let p = payload(&[("prometheus.yml", "a: 2\n")]);
    v.write(&p);
    coreutils_digest(&p)
}

#[test]
fn configmap_reload_as_the_alertmanager_chart_runs_it() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let r = Receiver::start(vec![]);
    let p = Proc::start(&[
        &format!("--volume-dir={dir}"),
        &format!("--webhook-url={}", r.url("/-/reload")),
    ]);
    p.wait_for("hashreload started");
    // Its default: metrics and health on :9533.
    assert!(
        wait_until(10, || get(9533, "/healthz").0 == 200),
        "{}",
        p.log()
    );
    assert!(get(9533, "/metrics").1.contains("hashreload_polls_total"));
    let want = change(&mut v);
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), [want]);
}

#[test]
fn configmap_reload_go_style_with_every_flag() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    // Its default success is exactly 200: a 202 is a failure and is retried.
    let r = Receiver::start(vec![Reply::Status(202, "")]);
    let port = free_port().to_string();
    let p = Proc::start(&[
        "-volume-dir",
        &dir,
        "-webhook-url",
        &r.url("/-/reload"),
        "-webhook-method",
        "POST",
        "-webhook-retries",
        "3",
        "-web.listen-address",
        &format!("127.0.0.1:{port}"),
        "-web.telemetry-path",
        "/m",
    ]);
    p.wait_for("hashreload started");
    assert!(
        p.log()
            .contains("retries every failed reload until it succeeds"),
        "{}",
        p.log()
    );
    change(&mut v);
    p.wait_for("reload delivered");
    assert_eq!(r.count(), 2, "202 failed, 200 succeeded");
    let port: u16 = port.parse().unwrap();
    assert!(get(port, "/m").1.contains("hashreload_reloads_total"));
}

#[test]
fn prometheus_config_reloader_as_the_prometheus_chart_runs_it() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let r = Receiver::start(vec![]);
    let port = free_port();
    let p = Proc::start(&[
        &format!("--watched-dir={dir}"),
        &format!("--listen-address=0.0.0.0:{port}"),
        &format!("--reload-url={}", r.url("/-/reload")),
    ]);
    p.wait_for("hashreload started");
    assert!(
        wait_until(10, || get(port, "/healthz").0 == 200),
        "{}",
        p.log()
    );
    // Its spellings bring its reload at every start.
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    let first = r.digests()[0].clone();
    let want = change(&mut v);
    assert!(wait_until(20, || r.count() == 2), "{}", p.log());
    assert_eq!(r.digests(), [first, want]);
}

#[test]
fn prometheus_config_reloader_with_its_other_flags() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let r = Receiver::start(vec![Reply::Status(500, "")]);
    let p = Proc::start(&[
        "--watched-dir",
        &dir,
        "--reload-url",
        &r.url("/"),
        "--watch-interval=50ms",
        "--delay-interval=100ms",
        "--retry-interval=100ms",
        "--reload-timeout=5s",
        "--log-format=json",
        "--log-level=debug",
        "--reload-method=http",
        "--process-executable-name=prometheus",
    ]);
    p.wait_for("hashreload started");
    assert!(p.log().starts_with("{\"ts\":"), "{}", p.log());
    // The reload at start fails once (HTTP 500) and is retried after --retry-interval.
    assert!(wait_until(20, || r.count() == 2), "{}", p.log());
    change(&mut v);
    assert!(wait_until(20, || r.count() == 3), "{}", p.log());
}

/// A PATH with nothing on it: no curl to be found, as in the image.
fn no_curl(t: &Tmp) -> String {
    std::fs::create_dir_all(t.path("empty-path")).unwrap();
    t.path("empty-path").to_str().unwrap().to_string()
}

#[test]
fn the_2017_watch_line_with_curl_emulated() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let r = Receiver::start(vec![]);
    let url = format!("http://localhost:{}/-/reload", r.port);
    let p = Proc::spawn(
        Command::new(BIN)
            .args([
                "-v",
                "-t",
                &format!("-p={dir}"),
                "curl",
                "-X",
                "POST",
                "--fail",
                "-o",
                "-",
                "-sS",
                &url,
            ])
            .env("PATH", no_curl(&t)),
    );
    p.wait_for("hashreload started");
    assert!(p
        .log()
        .contains("curl is not installed: hashreload makes the COMMAND's request itself"));
    assert!(!p.log().contains("without -f"), "it has --fail");
    let want = change(&mut v);
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    let req = &r.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str(), req.digest()),
        ("POST", "/-/reload", want.as_str())
    );
}

#[test]
fn emulated_curl_keeps_curls_meaning_of_success_and_hides_credentials() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    // Without -f a 500 is a success to curl: one request, no retry.
    let r = Receiver::start(vec![Reply::Status(500, "")]);
    let p = Run::new(&dir)
        .args(&[
            "--retry-interval",
            "50ms",
            "curl",
            "-s",
            "-u",
            "admin:hunter2",
        ])
        .args(&["-H", "X-Key: k3y", "-XPOST", &r.url("/")])
        .env("PATH", no_curl(&t))
        .start();
    assert!(p
        .log()
        .contains("without -f/--fail: any HTTP answer counts as success"));
    change(&mut v);
    p.wait_for("reload delivered");
    // Ten scans at 20 ms: a retry after 50 ms would have been sent by now.
    p.wait_scans(10);
    assert_eq!(r.count(), 1);
    let req = &r.requests()[0];
    assert_eq!(
        req.header("Authorization"),
        Some("Basic YWRtaW46aHVudGVyMg==")
    );
    assert_eq!(req.header("X-Key"), Some("k3y"));
    let log = p.log();
    assert!(!log.contains("hunter2") && !log.contains("k3y"), "{log}");

    // With -f a 500 fails and is retried.
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let r = Receiver::start(vec![Reply::Status(500, "")]);
    let p = Run::new(&dir)
        .args(&["--retry-interval", "50ms", "curl", "-fsS", &r.url("/")])
        .env("PATH", no_curl(&t))
        .start();
    change(&mut v);
    p.wait_for("reload delivered");
    assert_eq!(r.count(), 2);
}

#[test]
fn unknown_curl_options_are_refused_at_start() {
    let t = Tmp::new();
    let (_v, dir) = volume(&t);
    let (code, err) = run_cmd(
        Command::new(BIN)
            .args(["-p", &dir, "curl", "-fsSL", "http://127.0.0.1:9/"])
            .env("PATH", no_curl(&t)),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("hashreload: COMMAND curl: option '-L' is not supported"),
        "{err}"
    );
}

#[test]
fn environment_fallbacks_drive_a_whole_run() {
    let t = Tmp::new();
    let (mut v, dir) = volume(&t);
    let (a, b) = (Receiver::start(vec![]), Receiver::start(vec![]));
    let p = Proc::spawn(
        Command::new(BIN)
            .env("HASHRELOAD_PATH", &dir)
            .env(
                "HASHRELOAD_URL",
                format!("{}\n{}\n", a.url("/a"), b.url("/b")),
            )
            .env("HASHRELOAD_INTERVAL", "50ms")
            .env("HASHRELOAD_HEADER", "X-From: env, with a comma")
            .env("HASHRELOAD_LOG_FORMAT", "json"),
    );
    p.wait_for("hashreload started");
    let want = change(&mut v);
    assert!(
        wait_until(20, || a.count() == 1 && b.count() == 1),
        "{}",
        p.log()
    );
    assert_eq!(a.digests(), [want]);
    assert_eq!(b.requests()[0].header("X-From"), Some("env, with a comma"));
    assert!(p.log().starts_with('{'));
}
