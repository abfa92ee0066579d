//! Our own listener (`/metrics`, `/healthz`) with `--web-config-file`: basic auth in every build.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// Made with apache2-utils' htpasswd: `htpasswd -nbBC 4 alice wonderland` and
// `htpasswd -nbBC 10 prom scrape-secret` (cost 10, as operators' users have).
const ALICE: &str = "$2y$04$bFxPnHhtrdqdvRPFvgJ/Xuq9daAaQzq3dDdgJy3BboprdYOmqGdiy";
const PROM: &str = "$2y$10$zlBU4484nz5OzKeO/7wTQ.s03gNFNb6bOjy1j6DHRHwmeU.6zrmRC";

/// Starts hashreload watching `t`'s `d` with `--web-config-file` holding `web`; returns it and
/// the bound port.
fn serve(t: &Tmp, web: &str) -> (Proc, u16) {
    t.write("d/a.yml", "a");
    t.write("web.yml", web);
    let p = Run::new(t.path("d"))
        .interval("1s")
        .args(&["--listen-address", "127.0.0.1:0"])
        .args(&["--web-config-file", t.path("web.yml").to_str().unwrap()])
        .args(&["true"])
        .start();
    let log = p.log();
    let at = log
        .find("address=127.0.0.1:")
        .expect("the log names the bound address")
        + 18;
    let port = log[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (p, port)
}

/// The whole raw answer to a plain HTTP request.
fn raw(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn basic_auth_guards_metrics_and_not_healthz() {
    let t = Tmp::new();
    let web = format!(
        "basic_auth_users:\n  alice: {ALICE}\n  prom: '{PROM}'\nhttp_server_config:\n  \
         headers:\n    X-Frame-Options: deny\n"
    );
    let (p, port) = serve(&t, &web);
    let get = |path: &str, auth: &str| {
        raw(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n"),
        )
    };
    // "alice:wonderland", "prom:scrape-secret", "prom:wrong", "mallory:wonderland"
    let (alice, prom) = ("YWxpY2U6d29uZGVybGFuZA==", "cHJvbTpzY3JhcGUtc2VjcmV0");
    for auth in [
        "",
        "Authorization: Basic cHJvbTp3cm9uZw==\r\n",
        "Authorization: Basic bWFsbG9yeTp3b25kZXJsYW5k\r\n",
        "Authorization: Bearer cHJvbTpzY3JhcGUtc2VjcmV0\r\n",
    ] {
        let a = get("/metrics", auth);
        assert!(
            a.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{auth}: {a}"
        );
        assert!(a.contains("\r\nWWW-Authenticate: Basic\r\n"), "{a}");
        assert!(a.contains("\r\nX-Frame-Options: deny\r\n"), "{a}");
        assert!(!a.contains("hashreload_"), "{a}");
    }
    for user in [alice, prom, prom] {
        let a = get("/metrics", &format!("Authorization: Basic {user}\r\n"));
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("\nhashreload_polls_total "), "{a}");
    }
    // The kubelet's probe carries no credentials.
    let a = get("/healthz", "");
    assert!(
        a.starts_with("HTTP/1.1 200 OK\r\n") && a.ends_with("\r\n\r\nok\n"),
        "{a}"
    );
    assert!(get("/nope", "").starts_with("HTTP/1.1 401 "));
    let log = p.log();
    assert!(
        !log.contains("zlBU") && !log.contains("wonderland"),
        "{log}"
    );
}

#[test]
fn a_broken_user_is_exit_2_naming_its_line_not_its_hash() {
    let t = Tmp::new();
    t.write("d/a.yml", "a");
    let broken = &PROM[..59];
    t.write(
        "web.yml",
        format!("basic_auth_users:\n  alice: {ALICE}\n  prom: {broken}\n"),
    );
    let web = t.path("web.yml");
    let (code, err) = run(&[
        "-p",
        t.path("d").to_str().unwrap(),
        "--listen-address",
        "127.0.0.1:0",
        "--web-config-file",
        web.to_str().unwrap(),
        "true",
    ]);
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "--web-config-file {}: line 3: basic_auth_users: not a bcrypt hash",
        web.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("zlBU") && !err.contains("prom"), "{err}");
}

#[test]
fn tls_needs_the_tls_image() {
    let t = Tmp::new();
    t.write("d/a.yml", "a");
    t.write(
        "web.yml",
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
    );
    let (code, err) = run(&[
        "-p",
        t.path("d").to_str().unwrap(),
        "--listen-address",
        "127.0.0.1:0",
        "--web-config-file",
        t.path("web.yml").to_str().unwrap(),
        "true",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tls_server_config needs the hashreload -tls image"),
        "{err}"
    );
}
