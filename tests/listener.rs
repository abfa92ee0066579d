//! Our own listener (`/metrics`, `/healthz`) with `--web-config-file`: basic auth in every build,
//! and in the -tls build (`cargo test --features tls --test listener`) TLS with certificates made
//! by openssl, checked with curl and Debian's Prometheus.

mod common;
use common::*;

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
    let port = bound_port(&p);
    (p, port)
}

/// A start with the web config in `t`'s web.yml, which must fail: its exit code and stderr.
fn refused(t: &Tmp) -> (i32, String) {
    run(&[
        "-p",
        t.path("d").to_str().unwrap(),
        "--listen-address",
        "127.0.0.1:0",
        "--web-config-file",
        t.path("web.yml").to_str().unwrap(),
        "true",
    ])
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
        answer(
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
    // Right after wrong passwords a check may wait its turn (at most a fifth of the thread's
    // time goes to bcrypt): the right password gets in within a few checks' time.
    for user in [alice, prom] {
        let auth = format!("Authorization: Basic {user}\r\n");
        let mut a = String::new();
        let ok = wait_until(10, || {
            a = get("/metrics", &auth);
            a.starts_with("HTTP/1.1 200 OK\r\n")
        });
        assert!(ok, "{a}");
        assert!(a.contains("\nhashreload_polls_total "), "{a}");
    }
    // Remembered: answered at once, every time.
    for _ in 0..3 {
        let a = get("/metrics", &format!("Authorization: Basic {prom}\r\n"));
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
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
    let (code, err) = refused(&t);
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "--web-config-file {}: line 3: basic_auth_users: not a bcrypt hash",
        web.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("zlBU") && !err.contains("prom"), "{err}");
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_needs_the_tls_image() {
    let t = Tmp::new();
    t.write("d/a.yml", "a");
    t.write(
        "web.yml",
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
    );
    let (code, err) = refused(&t);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tls_server_config needs the hashreload -tls image"),
        "{err}"
    );
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use common::pki::{Ca, Leaf, Role};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    const NAMES: &[&str] = &["localhost", "127.0.0.1"];

    /// curl's exit code, the HTTP status (0 without one) and the body, for `https://localhost`.
    fn curl(port: u16, path: &str, args: &[&str]) -> (i32, u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(args)
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let code = out.status.code().unwrap_or(-1);
        (code, status.parse().unwrap_or(0), body.to_string())
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    fn web(server: &Leaf, more: &str) -> String {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{more}",
            s(&server.cert),
            s(&server.key)
        )
    }

    #[test]
    #[ignore = "needs openssl and curl"]
    fn curl_trusts_the_ca_and_nothing_else() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let (p, port) = serve(&t, &web(&server, "  min_version: TLS12\n"));
        let (code, status, body) = curl(port, "/metrics", &["--cacert", s(&ca.cert)]);
        assert_eq!((code, status), (0, 200), "{body}\n{}", p.log());
        assert!(body.contains("\nhashreload_polls_total "), "{body}");
        for version in ["--tlsv1.2 --tls-max 1.2", "--tlsv1.3"] {
            let mut args = vec!["--cacert", s(&ca.cert)];
            args.extend(version.split(' '));
            assert_eq!(curl(port, "/healthz", &args).1, 200, "{version}");
        }
        // Without the CA (no system CA signed it), curl refuses; so does plain HTTP here.
        let (code, status, _) = curl(port, "/metrics", &[]);
        assert_eq!((code, status), (60, 0));
        let plain = answer(port, "GET /healthz HTTP/1.1\r\n\r\n");
        assert!(!plain.contains("200 OK"), "{plain}");
        p.wait_for("TLS handshake failed");
        let (_, status, _) = curl(port, "/healthz", &["--cacert", s(&ca.cert)]);
        assert_eq!(status, 200, "the server goes on");
        let log = p.log();
        assert!(log.contains("peer=127.0.0.1:"), "{log}");
    }

    #[test]
    #[ignore = "needs openssl and curl"]
    fn required_client_certificates_are_verified() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let client = ca.issue("client", Role::Client, &[]);
        let other = Ca::new(&t.path("other"), "other");
        let stranger = other.issue("stranger", Role::Client, &[]);
        let more = format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            s(&ca.cert)
        );
        let (p, port) = serve(&t, &web(&server, &more));
        let with = |leaf: &Leaf| {
            let args = [
                "--cacert",
                s(&ca.cert),
                "--cert",
                s(&leaf.cert),
                "--key",
                s(&leaf.key),
            ];
            curl(port, "/metrics", &args)
        };
        let (code, status, body) = with(&client);
        assert_eq!((code, status), (0, 200), "{body}\n{}", p.log());
        // Without a certificate: /healthz only, so the kubelet's probes (which present none)
        // still reach it; every other path is 403.
        let (code, status, body) = curl(port, "/metrics", &["--cacert", s(&ca.cert)]);
        assert_eq!((code, status), (0, 403), "no certificate: {body}");
        assert_eq!(body, "client certificate required\n");
        let (code, status, _) = curl(port, "/healthz", &["--cacert", s(&ca.cert)]);
        assert_eq!((code, status), (0, 200), "no certificate, /healthz");
        let (code, status, _) = with(&stranger);
        assert!(
            code != 0 && status == 0,
            "another CA's: curl {code}, HTTP {status}"
        );
        p.wait_for("UnknownIssuer");
        assert_eq!(with(&client).1, 200);
    }

    #[test]
    #[ignore = "needs openssl and curl"]
    fn verify_if_given_lets_clients_without_a_certificate_in() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let other = Ca::new(&t.path("other"), "other");
        let stranger = other.issue("stranger", Role::Client, &[]);
        let more = format!(
            "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {}\n",
            s(&ca.cert)
        );
        let (_p, port) = serve(&t, &web(&server, &more));
        assert_eq!(curl(port, "/metrics", &["--cacert", s(&ca.cert)]).1, 200);
        let args = [
            "--cacert",
            s(&ca.cert),
            "--cert",
            s(&stranger.cert),
            "--key",
            s(&stranger.key),
        ];
        assert_eq!(curl(port, "/metrics", &args).1, 0);
    }

    /// cert-manager renews into the Secret; the kubelet swaps `..data`: the next connection
    /// gets the new certificate, and a broken one leaves the old one serving.
    #[test]
    #[ignore = "needs openssl and curl"]
    fn a_rotated_certificate_is_served_without_a_restart() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let (ca1, ca2) = (
            Ca::new(&t.path("ca1"), "ca1"),
            Ca::new(&t.path("ca2"), "ca2"),
        );
        let first = ca1.issue("first", Role::Server, NAMES);
        // cert-manager's default key is RSA 2048.
        let second = ca2.issue_with("second", Role::Server, NAMES, true, "1");
        let pem = |p: &Path| std::fs::read_to_string(p).unwrap();
        let mut secret = Volume::new(t.path("secret"));
        secret.write(&payload(&[
            ("tls.crt", &pem(&first.cert)),
            ("tls.key", &pem(&first.key)),
        ]));
        let web = "tls_server_config:\n  cert_file: secret/tls.crt\n  key_file: secret/tls.key\n";
        let (p, port) = serve(&t, web);
        let (one, two) = (["--cacert", s(&ca1.cert)], ["--cacert", s(&ca2.cert)]);
        assert_eq!(curl(port, "/healthz", &one).1, 200, "{}", p.log());
        assert_eq!(curl(port, "/healthz", &two).1, 0);

        // A broken certificate: logged with its path, and the old pair goes on.
        secret.write(&payload(&[
            ("tls.crt", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"),
            ("tls.key", &pem(&first.key)),
        ]));
        assert_eq!(curl(port, "/healthz", &one).1, 200, "{}", p.log());
        p.wait_for("TLS files changed but do not load");
        let log = p.log();
        assert!(
            log.contains("secret/tls.crt") && !log.contains("bm90"),
            "{log}"
        );

        secret.write(&payload(&[
            ("tls.crt", &pem(&second.cert)),
            ("tls.key", &pem(&second.key)),
        ]));
        assert!(
            wait_until(10, || curl(port, "/healthz", &two).1 == 200),
            "{}",
            p.log()
        );
        assert_eq!(curl(port, "/healthz", &one).1, 0);
        p.wait_for("TLS files reloaded");
        assert_eq!(p.count("hashreload started"), 1);
    }

    #[test]
    #[ignore = "needs openssl and curl"]
    fn basic_auth_over_tls() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let users = format!("basic_auth_users:\n  prom: {PROM}\n");
        let (_p, port) = serve(&t, &(web(&server, "") + &users));
        let ca = ["--cacert", s(&ca.cert)];
        assert_eq!(curl(port, "/metrics", &ca).1, 401);
        let wrong = [ca[0], ca[1], "-u", "prom:wrong"];
        assert_eq!(curl(port, "/metrics", &wrong).1, 401);
        let right = [ca[0], ca[1], "-u", "prom:scrape-secret"];
        // After the wrong one, the next check may wait its turn (see basicauth.rs).
        assert!(wait_until(10, || curl(port, "/metrics", &right).1 == 200));
        assert_eq!(curl(port, "/healthz", &ca).1, 200);
    }

    /// Clients that connect and say nothing, or stop inside the handshake, take a connection
    /// slot each until the deadline (5 s), not the server.
    #[test]
    #[ignore = "needs openssl and curl"]
    fn silent_clients_do_not_hold_the_server() {
        need("openssl");
        need("curl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let (_p, port) = serve(&t, &web(&server, ""));
        let mut silent: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        // The start of a ClientHello record, and no more.
        silent[0]
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .unwrap();
        let start = std::time::Instant::now();
        assert_eq!(curl(port, "/healthz", &["--cacert", s(&ca.cert)]).1, 200);
        assert!(start.elapsed() < Duration::from_secs(3));
        for c in &mut silent {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 64];
            // Closed by the server at its deadline: end of stream (or a reset).
            assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
        }
        assert!(
            start.elapsed() < Duration::from_secs(9),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    #[ignore = "needs openssl"]
    fn a_missing_or_broken_certificate_is_exit_2_naming_its_path() {
        need("openssl");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let other = ca.issue("other", Role::Server, NAMES);
        t.write("d/a.yml", "a");
        let missing = t.path("missing.pem");
        t.write("broken.pem", "-----BEGIN CERTIFICATE-----\nc2VjcmV0!!\n");
        let broken = t.path("broken.pem");
        for (cert, key, want) in [
            (&missing, &server.key, format!("{}: ", missing.display())),
            (
                &broken,
                &server.key,
                format!("{}: not valid PEM", broken.display()),
            ),
            (
                &server.cert,
                &broken,
                format!("{}: not valid PEM", broken.display()),
            ),
            (
                &server.cert,
                &other.key,
                format!("{} with {}", server.cert.display(), other.key.display()),
            ),
        ] {
            let text = format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                s(cert),
                s(key)
            );
            t.write("web.yml", text);
            let (code, err) = refused(&t);
            assert_eq!(code, 2, "{err}");
            assert!(
                err.contains(&format!("tls_server_config: {want}")),
                "{want}: {err}"
            );
            assert!(!err.contains("c2VjcmV0"), "{err}");
        }
    }

    /// Debian's Prometheus scrapes /metrics over TLS, with a client certificate and a
    /// password, as a ServiceMonitor with tlsConfig and basicAuth would.
    #[test]
    #[ignore = "needs openssl and prometheus"]
    fn prometheus_scrapes_us_with_a_client_certificate_and_a_password() {
        need("openssl");
        need("prometheus");
        let t = Tmp::new();
        let ca = Ca::new(&t.path("pki"), "ca");
        let server = ca.issue("server", Role::Server, NAMES);
        let client = ca.issue("client", Role::Client, &[]);
        let more = format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n\
             basic_auth_users:\n  prom: {PROM}\n",
            s(&ca.cert)
        );
        let (p, port) = serve(&t, &web(&server, &more));
        let prom_port = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hashreload\n    \
             scheme: https\n    basic_auth: {{username: prom, password: scrape-secret}}\n    \
             tls_config: {{ca_file: {}, cert_file: {}, key_file: {}, server_name: localhost}}\n    \
             static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
            s(&ca.cert),
            s(&client.cert),
            s(&client.key)
        );
        t.write("prometheus.yml", config);
        let _prom = start_prometheus(&t.path("prometheus.yml"), prom_port, &t.path("data"));
        let target = |field: &str| {
            json(
                &get(prom_port, "/api/v1/targets").1,
                &format!("[t['{field}'] for t in d['data']['activeTargets']]"),
            )
        };
        assert!(
            wait_until(30, || target("health") == "['up']"),
            "{} {}\n{}",
            target("health"),
            target("lastError"),
            p.log()
        );
        assert_eq!(target("lastError"), "['']");
        assert!(!p.log().contains("TLS handshake failed"), "{}", p.log());
    }
}
