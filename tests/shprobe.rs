//! The real binary named `sh`, as prometheus-operator's exec probe runs it in the image: the
//! operator's script against a local listener, curl's exit codes, and 127 for anything else.

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The binary under `name` (a symlink in `t`), as the image's hard links name it.
fn named(t: &Tmp, name: &str) -> PathBuf {
    let link = t.path(name);
    symlink(BIN, &link).unwrap();
    link
}

fn sh(t: &Tmp, args: &[&str]) -> (i32, String) {
    run_cmd(Command::new(t.path("sh")).args(args))
}

#[test]
fn the_operators_probe_gets_curl_fails_exit_codes() {
    let t = Tmp::new();
    named(&t, "sh");
    let r = Receiver::start(vec![
        Reply::Status(200, "ok"),
        Reply::Status(503, "not ready"),
        Reply::Status(404, ""),
        Reply::Status(204, ""),
    ]);
    let probe = operator_probe(&format!("http://localhost:{}/healthz", r.port));
    assert_eq!(sh(&t, &["-c", &probe]), (0, String::new()));
    let (code, err) = sh(&t, &["-c", &probe]);
    assert_eq!(code, 22, "{err}");
    assert_eq!(
        err,
        format!(
            "sh: (22) http://localhost:{}/healthz returned HTTP 503\n",
            r.port
        )
    );
    assert_eq!(sh(&t, &["-c", &probe]).0, 22);
    assert_eq!(sh(&t, &["-c", &probe]).0, 0);
    let requests = r.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests
        .iter()
        .all(|q| q.method == "GET" && q.path == "/healthz"));
    let ip = operator_probe(&format!("http://127.0.0.1:{}/healthz", r.port));
    assert_eq!(sh(&t, &["-c", &ip]).0, 0);
}

#[test]
fn nothing_listening_is_curls_could_not_connect() {
    let t = Tmp::new();
    named(&t, "sh");
    let probe = operator_probe(&format!("http://127.0.0.1:{}/healthz", free_port()));
    let (code, err) = sh(&t, &["-c", &probe]);
    assert_eq!(code, 7, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_listener_that_never_answers_is_curls_timeout_after_5_s() {
    let t = Tmp::new();
    named(&t, "sh");
    let r = Receiver::start(vec![Reply::Hang(std::time::Duration::from_secs(30))]);
    let probe = operator_probe(&format!("http://localhost:{}/healthz", r.port));
    let start = std::time::Instant::now();
    let (code, err) = sh(&t, &["-c", &probe]);
    assert_eq!(code, 28, "{err}");
    let took = start.elapsed().as_secs_f64();
    assert!((4.5..8.0).contains(&took), "took {took} s");
}

#[test]
fn anything_but_the_probe_is_command_not_found() {
    let t = Tmp::new();
    named(&t, "sh");
    let r = Receiver::start(vec![]);
    let good = operator_probe(&format!("http://localhost:{}/healthz", r.port));
    let wrong_host = operator_probe("http://192.0.2.1:8080/healthz");
    let tampered = good.replace("exit 1", "exit 0");
    let runs: [&[&str]; 6] = [
        &[],
        &["-c", "echo hello"],
        &["-c", &tampered],
        &["-c", &wrong_host],
        &["-c", &good, "extra"],
        &["-e", &good],
    ];
    for args in runs {
        let (code, err) = sh(&t, args);
        assert_eq!(code, 127, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("sh: not a shell: "), "{err}");
        assert!(err.contains("prometheus-operator's probe"), "{err}");
        assert!(
            !err.contains("192.0.2.1") && !err.contains("hello"),
            "{err}"
        );
    }
    let https = operator_probe(&format!("https://localhost:{}/healthz", r.port));
    let (code, err) = sh(&t, &["-c", &https]);
    assert_eq!(code, 127, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("speaks plain http:// only"), "{err}");
    assert_eq!(r.count(), 0, "nothing refused was requested");
}

#[test]
fn the_probe_passes_against_hashreloads_own_healthz() {
    let t = Tmp::new();
    named(&t, "sh");
    t.write("config/a.yml", "a");
    let r = Receiver::start(vec![]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let p = Run::new(t.path("config"))
        .url(r.url("/-/reload"))
        .args(&["--listen-address", &listen])
        .start();
    let probe = operator_probe(&format!("http://localhost:{port}/healthz"));
    assert!(
        wait_until(10, || sh(&t, &["-c", &probe]).0 == 0),
        "{}",
        p.log()
    );
}

#[test]
fn only_the_name_sh_answers_probes() {
    let t = Tmp::new();
    let reloader = named(&t, "prometheus-config-reloader");
    let out = Command::new(&reloader).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hashreload {}\n", env!("CARGO_PKG_VERSION"))
    );
    // argv[0] as the kubelet's runtime passes it after a PATH lookup.
    let r = Receiver::start(vec![]);
    let probe = operator_probe(&format!("http://localhost:{}/healthz", r.port));
    let (code, err) = run_cmd(Command::new(BIN).arg0("/bin/sh").args(["-c", &probe]));
    assert_eq!((code, err.as_str()), (0, ""));
    // Not `sh`: hashreload's own flags, so `-c` is a usage error.
    let (code, _) = run_cmd(Command::new(BIN).arg0("shell").args(["-c", &probe]));
    assert_eq!(code, 2);
}
