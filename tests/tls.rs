//! The -tls build's HTTPS client against `openssl s_server` (another TLS stack) with certificates
//! made in the test: what is trusted, what is refused and why, and that a refusal is a failed
//! attempt that stays pending until the trust files are fixed. Built only with `--features tls`;
//! `scripts/test` runs `cargo test --features tls --test tls`.
#![cfg(feature = "tls")]

mod common;
use common::pki::{Ca, Leaf, Role, TlsServer};
use common::*;

/// The PKI of one test: a CA, a server certificate for localhost and 127.0.0.1, a client one.
struct Pki {
    t: Tmp,
    ca: Ca,
    server: Leaf,
}

fn pki() -> Pki {
    need("openssl");
    let t = Tmp::new();
    let ca = Ca::new(&t.path("pki"), "ca");
    let server = ca.issue("server", Role::Server, &["localhost", "127.0.0.1"]);
    t.write("config/a.yml", "a");
    Pki { t, ca, server }
}

/// One pass of `--once` watching `dir` against `url`, one attempt: the exit code and the log.
fn once_in(dir: &std::path::Path, url: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["-p", path(dir), "-u", url, "--once", "--attempts", "1"];
    all.extend_from_slice(args);
    run(&all)
}

/// `once_in` the test's config directory, with GET (what `openssl s_server -www` answers) and
/// a 5 s timeout unless `args` give another.
fn once(p: &Pki, url: &str, args: &[&str]) -> (i32, String) {
    let args = [&["-X", "GET", "--timeout", "5s"], args].concat();
    once_in(&p.t.path("config"), url, &args)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[ignore = "needs openssl"]
fn a_trusted_ca_is_accepted_over_tls_1_3_and_1_2_with_ec_and_rsa_keys() {
    let p = pki();
    let rsa =
        p.ca.issue_with("rsa", Role::Server, &["localhost"], true, "1");
    for (leaf, version) in [
        (&p.server, "-tls1_3"),
        (&p.server, "-tls1_2"),
        (&rsa, "-tls1_2"),
    ] {
        let s = TlsServer::start(leaf, &[version]);
        let (code, log) = once(
            &p,
            &s.url("localhost"),
            &["--tls-ca-file", path(&p.ca.cert)],
        );
        assert_eq!(code, 0, "{version}: {log}");
        assert!(log.contains("result=\"HTTP 200\""), "{log}");
    }
    // The same through the environment, and by IP address (the certificate names 127.0.0.1).
    let s = TlsServer::start(&p.server, &[]);
    let dir = p.t.path("config");
    let (code, log) = run_cmd(
        std::process::Command::new(BIN)
            .args([
                "-p",
                path(&dir),
                "-u",
                &s.url("127.0.0.1"),
                "-X",
                "GET",
                "--once",
            ])
            .env("HASHRELOAD_TLS_CA_FILE", &p.ca.cert),
    );
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs openssl"]
fn an_unknown_ca_a_wrong_name_and_an_expired_certificate_are_each_refused_with_the_reason() {
    let p = pki();
    let other = Ca::new(&p.t.path("other"), "other");
    let s = TlsServer::start(&p.server, &[]);
    let (code, log) = once(
        &p,
        &s.url("localhost"),
        &["--tls-ca-file", path(&other.cert)],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("error=\"TLS: unknown CA"), "{log}");

    let elsewhere = p.ca.issue("elsewhere", Role::Server, &["reload.internal"]);
    let s = TlsServer::start(&elsewhere, &[]);
    let (code, log) = once(
        &p,
        &s.url("localhost"),
        &["--tls-ca-file", path(&p.ca.cert)],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("error=\"TLS: name mismatch"), "{log}");
    // --tls-server-name checks the name the certificate has instead of the URL's.
    let (code, log) = once(
        &p,
        &s.url("127.0.0.1"),
        &[
            "--tls-ca-file",
            path(&p.ca.cert),
            "--tls-server-name",
            "reload.internal",
        ],
    );
    assert_eq!(code, 0, "{log}");

    let expired =
        p.ca.issue_with("expired", Role::Server, &["localhost"], false, "-1");
    let s = TlsServer::start(&expired, &[]);
    let (code, log) = once(
        &p,
        &s.url("localhost"),
        &["--tls-ca-file", path(&p.ca.cert)],
    );
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("error=\"TLS: the server's certificate has expired"),
        "{log}"
    );
}

#[test]
#[ignore = "needs openssl"]
fn a_server_that_requires_a_client_certificate_accepts_ours_and_refuses_a_run_without() {
    let p = pki();
    let client = p.ca.issue("client", Role::Client, &[]);
    for version in ["-tls1_3", "-tls1_2"] {
        let s = TlsServer::start(
            &p.server,
            &[
                version,
                "-Verify",
                "1",
                "-verify_return_error",
                "-CAfile",
                path(&p.ca.cert),
            ],
        );
        let url = s.url("localhost");
        let ca = ["--tls-ca-file", path(&p.ca.cert)];
        let (code, log) = once(&p, &url, &ca);
        assert_eq!(code, 1, "{version}: {log}");
        // TLS 1.3 has an alert for it; OpenSSL answers TLS 1.2 with handshake_failure, which
        // names both of its possible causes.
        let want = match version {
            "-tls1_3" => "error=\"TLS: client certificate required",
            _ => "error=\"TLS: handshake failure: the server requires a client certificate",
        };
        assert!(log.contains(want), "{version}: {log}");
        let mut with = ca.to_vec();
        with.extend([
            "--tls-cert-file",
            path(&client.cert),
            "--tls-key-file",
            path(&client.key),
        ]);
        let (code, log) = once(&p, &url, &with);
        assert_eq!(code, 0, "{version}: {log}");
    }
}

#[test]
#[ignore = "needs openssl"]
fn a_refused_server_stays_pending_and_a_rotated_ca_file_is_used_at_the_next_attempt() {
    let p = pki();
    let other = Ca::new(&p.t.path("other"), "other");
    let trust = p.t.path("trust/ca.crt");
    std::fs::create_dir_all(trust.parent().unwrap()).unwrap();
    std::fs::copy(&other.cert, &trust).unwrap();
    let s = TlsServer::start(&p.server, &[]);
    let listen = free_port();
    let proc = Run::new(p.t.path("config"))
        .url(s.url("localhost"))
        .args(&["-X", "GET", "--reload-on-start", "--retry-interval", "50ms"])
        .args(&["--max-backoff", "200ms", "--tls-ca-file", path(&trust)])
        .args(&["--listen-address", &format!("127.0.0.1:{listen}")])
        .start();
    proc.wait_for_n("TLS: unknown CA", 3);
    let metrics = get(listen, "/metrics").1;
    assert_eq!(sample(&metrics, "hashreload_pending_targets"), Some(1.0));
    assert_eq!(
        sample(&metrics, "hashreload_tls_insecure_skip_verify"),
        Some(0.0)
    );
    assert_eq!(proc.count("reload delivered"), 0);
    // cert-manager rotates the mounted CA: the next attempt reads it.
    std::fs::copy(&p.ca.cert, &trust).unwrap();
    proc.wait_for("reload delivered");
    assert!(wait_until(10, || {
        sample(&get(listen, "/metrics").1, "hashreload_pending_targets") == Some(0.0)
    }));
    assert!(
        !proc.log().contains("BEGIN"),
        "no certificate content in the log"
    );
}

#[test]
#[ignore = "needs openssl and curl"]
fn every_refusal_is_a_failed_attempt_that_stays_pending_and_is_retried() {
    need("curl");
    let p = pki();
    let other = Ca::new(&p.t.path("other"), "other");
    let elsewhere = p.ca.issue("elsewhere", Role::Server, &["reload.internal"]);
    let expired =
        p.ca.issue_with("expired", Role::Server, &["localhost"], false, "-1");
    let stranger = p.ca.issue("stranger", Role::Server, &["localhost"]);
    let web = p.t.path("web.yml");
    operator_web_config(&web, &p.server);
    let ca = path(&p.ca.cert);
    let cases: [(&Leaf, Vec<&str>, &str); 4] = [
        (
            &p.server,
            vec!["--tls-ca-file", path(&other.cert)],
            "TLS: unknown CA",
        ),
        (&elsewhere, vec!["--tls-ca-file", ca], "TLS: name mismatch"),
        (
            &expired,
            vec!["--tls-ca-file", ca],
            "TLS: the server's certificate has expired",
        ),
        (
            &stranger,
            vec!["--web-config-file", path(&web)],
            "TLS: pin mismatch",
        ),
    ];
    let mut running = Vec::new();
    for (leaf, trust, reason) in cases {
        let s = TlsServer::start(leaf, &[]);
        let listen = free_port();
        let proc = Run::new(p.t.path("config"))
            .url(s.url("localhost"))
            .args(&["-X", "GET", "--reload-on-start", "--retry-interval", "50ms"])
            .args(&["--max-backoff", "200ms"])
            .args(&trust)
            .args(&["--listen-address", &format!("127.0.0.1:{listen}")])
            .start();
        running.push((s, proc, listen, reason));
    }
    for (s, proc, listen, reason) in &running {
        proc.wait_for_n(reason, 3);
        // The pinning run's listener speaks TLS: its web config has the server's certificate.
        let metrics = match reason.contains("pin") {
            true => {
                let url = format!("https://127.0.0.1:{listen}/metrics");
                curl(&["--cacert", path(&p.ca.cert), &url]).unwrap_or_default()
            }
            false => get(*listen, "/metrics").1,
        };
        assert_eq!(
            sample(&metrics, "hashreload_pending_targets"),
            Some(1.0),
            "{reason}"
        );
        let failures = format!(
            "hashreload_reloads_total{{target=\"{}\",result=\"failure\"}}",
            s.url("localhost")
        );
        assert!(
            sample(&metrics, &failures) >= Some(2.0),
            "{reason}: {metrics}"
        );
        assert_eq!(proc.count("reload delivered"), 0, "{reason}");
    }
}

#[test]
#[ignore = "needs openssl"]
fn insecure_skip_verify_is_explicit_warned_about_and_in_a_metric() {
    let p = pki();
    let other = Ca::new(&p.t.path("other"), "other");
    let stranger = other.issue("stranger", Role::Server, &["elsewhere.example"]);
    let s = TlsServer::start(&stranger, &[]);
    let listen = free_port();
    let proc = Run::new(p.t.path("config"))
        .url(s.url("localhost"))
        .args(&[
            "-X",
            "GET",
            "--reload-on-start",
            "--tls-insecure-skip-verify",
        ])
        .args(&["--listen-address", &format!("127.0.0.1:{listen}")])
        .start();
    assert!(
        proc.log()
            .contains("level=warn msg=\"--tls-insecure-skip-verify"),
        "{}",
        proc.log()
    );
    proc.wait_for("reload delivered");
    let metrics = get(listen, "/metrics").1;
    assert_eq!(
        sample(&metrics, "hashreload_tls_insecure_skip_verify"),
        Some(1.0)
    );
}

#[test]
#[ignore = "needs openssl"]
fn curl_emulation_maps_cacert_cert_key_and_insecure() {
    let p = pki();
    let client = p.ca.issue("client", Role::Client, &[]);
    let s = TlsServer::start(
        &p.server,
        &[
            "-Verify",
            "1",
            "-verify_return_error",
            "-CAfile",
            path(&p.ca.cert),
        ],
    );
    let dir = p.t.path("config");
    let url = s.url("localhost");
    // A PATH without curl, as in the image: the COMMAND is emulated.
    let empty = p.t.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let curl = |args: &[&str]| {
        let mut all = vec!["-p", path(&dir), "--once", "--attempts", "1"];
        all.extend_from_slice(args);
        run_cmd(
            std::process::Command::new(BIN)
                .args(&all)
                .env("PATH", &empty),
        )
    };
    let (code, log) = curl(&[
        "--",
        "curl",
        "-fsS",
        "--cacert",
        path(&p.ca.cert),
        "--cert",
        path(&client.cert),
        "--key",
        path(&client.key),
        &url,
    ]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("target=https://localhost:"), "{log}");
    let (code, log) = curl(&[
        "--",
        "curl",
        "-k",
        "-E",
        path(&client.cert),
        "--key",
        path(&client.key),
        &url,
    ]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("--tls-insecure-skip-verify"), "{log}");
    let (code, log) = curl(&[
        "--tls-ca-file",
        path(&client.cert),
        "--",
        "curl",
        "--cacert",
        path(&p.ca.cert),
        &url,
    ]);
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("--tls-ca-file and curl's --cacert name different files"),
        "{log}"
    );
    let (code, log) = curl(&["--", "curl", "--cert", path(&client.cert), &url]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("needs --tls-key-file"), "{log}");
}

#[test]
#[ignore = "needs openssl"]
fn usage_errors_name_the_flag_and_what_is_missing() {
    let p = pki();
    let dir = p.t.path("config");
    let dir = path(&dir);
    let url = "https://localhost:9/";
    let ca = path(&p.ca.cert);
    let key = path(&p.server.key);
    for (args, says) in [
        (
            vec![],
            "https:// needs something to trust: --tls-ca-file FILE",
        ),
        (
            vec!["--tls-ca-file", "/nonexistent/ca.crt"],
            "--tls-ca-file /nonexistent/ca.crt: No such file",
        ),
        (vec!["--tls-ca-file", key], "no PEM certificate"),
        (
            vec!["--tls-ca-file", ca, "--tls-key-file", key],
            "--tls-key-file: needs --tls-cert-file",
        ),
        (
            vec!["--tls-ca-file", ca, "--tls-cert-file", ca],
            "--tls-cert-file: needs --tls-key-file",
        ),
        (
            vec!["--tls-ca-file", ca, "--tls-insecure-skip-verify"],
            "give one",
        ),
        (
            vec!["--tls-ca-file", ca, "--tls-server-name", "not a name"],
            "--tls-server-name 'not a name'",
        ),
        // Every https:// request needs trust: the signal strategy's runtimeinfo URL too (the
        // reload URL is ignored with it).
        (
            vec![
                "--reload-method=signal",
                "--runtimeinfo-url=https://localhost:9/info",
            ],
            "https://localhost:9/info: https:// needs something to trust",
        ),
    ] {
        let mut all = vec!["-p", dir, "-u", url];
        all.extend(args);
        let (code, log) = run(&all);
        assert_eq!(code, 2, "{all:?}: {log}");
        assert!(log.contains(says), "{all:?}: {log}");
        assert!(!log.contains("BEGIN"), "{log}");
    }
}

/// bcrypt of "reload-secret" at cost 4, made with Python's crypt module (glibc's libxcrypt):
/// `crypt.crypt("reload-secret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`.
const RELOADER_HASH: &str = "$2b$04$VuAKRkynBZh1DwFJ6dGKKuP7yrjLPTt0ZwiSV2B65seoVyVot0KTS";

/// An exporter-toolkit web config: TLS with client certificates required and verified, and
/// one user, as a hardened Prometheus or Alertmanager runs.
fn hardened_web_config(p: &Pki) -> std::path::PathBuf {
    let web = p.t.path("web.yml");
    let text = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  \
         client_auth_type: RequireAndVerifyClientCert\nbasic_auth_users:\n  reloader: {RELOADER_HASH}\n",
        path(&p.server.cert),
        path(&p.server.key),
        path(&p.ca.cert)
    );
    std::fs::write(&web, text).unwrap();
    web
}

/// `curl -sS --fail --max-time 5 ARGS` (OpenSSL's TLS, from the test's side): the body of a
/// successful answer, or None.
fn curl(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// GET over TLS, presenting `client` and the password: the body, or None.
fn curl_get(p: &Pki, client: &Leaf, url: &str) -> Option<String> {
    let (ca, cert, key) = (path(&p.ca.cert), path(&client.cert), path(&client.key));
    let auth = ["-u", "reloader:reload-secret"];
    curl(
        &[
            &auth[..],
            &["--cacert", ca, "--cert", cert, "--key", key, url],
        ]
        .concat(),
    )
}

#[test]
#[ignore = "needs prometheus, prometheus-alertmanager, openssl and curl"]
fn prometheus_and_alertmanager_with_client_certificates_and_basic_auth_are_reloaded_verified() {
    need("prometheus");
    need("prometheus-alertmanager");
    need("curl");
    let p = pki();
    let client = p.ca.issue("client", Role::Client, &[]);
    let web = hardened_web_config(&p);
    let web_flag = format!("--web.config.file={}", path(&web));
    let tls = [
        "--tls-ca-file",
        path(&p.ca.cert),
        "--tls-cert-file",
        path(&client.cert),
        "--tls-key-file",
        path(&client.key),
    ];

    // Prometheus, its config in a kubelet-style volume.
    let mut prom_vol = Volume::new(p.t.path("etc-prometheus"));
    let prom_port = free_port();
    prom_vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(9, "first-job", ""),
    )]));
    let prom = Proc::spawn(std::process::Command::new("prometheus").args([
        &format!(
            "--config.file={}",
            path(&p.t.path("etc-prometheus/prometheus.yml"))
        ),
        &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        &format!("--storage.tsdb.path={}", path(&p.t.path("prom-data"))),
        "--web.enable-lifecycle",
        &web_flag,
    ]));
    let prom_api =
        |what: &str| curl_get(&p, &client, &format!("https://localhost:{prom_port}{what}"));
    assert!(
        wait_until(60, || prom_api("/-/ready").is_some()),
        "{}",
        prom.log()
    );

    // Alertmanager, the same way.
    let mut am_vol = Volume::new(p.t.path("etc-alertmanager"));
    let am_port = free_port();
    let am_yml = |receiver: &str| {
        format!("route:\n  receiver: {receiver}\nreceivers:\n  - name: {receiver}\n")
    };
    am_vol.write(&payload(&[("alertmanager.yml", &am_yml("first-receiver"))]));
    let am = Proc::spawn(std::process::Command::new("prometheus-alertmanager").args([
        &format!(
            "--config.file={}",
            path(&p.t.path("etc-alertmanager/alertmanager.yml"))
        ),
        &format!("--storage.path={}", path(&p.t.path("am-data"))),
        &format!("--web.listen-address=127.0.0.1:{am_port}"),
        "--cluster.listen-address=",
        &web_flag,
    ]));
    let am_api = |what: &str| curl_get(&p, &client, &format!("https://localhost:{am_port}{what}"));
    assert!(
        wait_until(60, || am_api("/-/ready").is_some()),
        "{}",
        am.log()
    );

    // Without the client certificate, or with a wrong password, nothing is reloaded.
    let dir = p.t.path("etc-prometheus");
    let url = format!("https://reloader:reload-secret@localhost:{prom_port}/-/reload");
    let (code, log) = once_in(&dir, &url, &["--tls-ca-file", path(&p.ca.cert)]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("TLS: client certificate required"), "{log}");
    let wrong = format!("https://reloader:wrong@localhost:{prom_port}/-/reload");
    let (code, log) = once_in(&dir, &wrong, &tls);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("HTTP 401"), "{log}");
    assert!(
        !log.contains("reload-secret") && !log.contains("wrong@"),
        "{log}"
    );

    // The sidecars: verification on, our certificate presented, the password sent.
    let prom_side = Run::new(p.t.path("etc-prometheus"))
        .url(url)
        .interval("100ms")
        .args(&["--retry-interval", "200ms", "--max-backoff", "1s"])
        .args(&tls)
        .start();
    let am_side = Run::new(p.t.path("etc-alertmanager"))
        .url(format!(
            "https://reloader:reload-secret@localhost:{am_port}/-/reload"
        ))
        .interval("100ms")
        .args(&["--retry-interval", "200ms", "--max-backoff", "1s"])
        .args(&tls)
        .start();
    prom_vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(9, "second-job", ""),
    )]));
    am_vol.write(&payload(&[(
        "alertmanager.yml",
        &am_yml("second-receiver"),
    )]));
    let prom_config = || prom_api("/api/v1/status/config").unwrap_or_default();
    let am_config = || am_api("/api/v2/status").unwrap_or_default();
    assert!(
        wait_until(20, || prom_config().contains("second-job")),
        "{}",
        prom_side.log()
    );
    assert!(
        wait_until(20, || am_config().contains("second-receiver")),
        "{}",
        am_side.log()
    );
    prom_side.wait_for("reload delivered");
    am_side.wait_for("reload delivered");
    for log in [prom_side.log(), am_side.log()] {
        assert!(log.contains("result=\"HTTP 200\""), "{log}");
        assert!(!log.contains("reload-secret"), "{log}");
    }
}

/// An exporter-toolkit web config as prometheus-operator writes it with `web.tlsConfig`: the
/// server's own certificate and key, from a Secret mounted into the reloader too.
fn operator_web_config(at: &std::path::Path, leaf: &Leaf) {
    let text = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        path(&leaf.cert),
        path(&leaf.key)
    );
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(at, text).unwrap();
}

#[test]
#[ignore = "needs openssl"]
fn the_servers_own_certificate_is_pinned_and_a_mismatch_stays_pending_until_the_secret_rotates() {
    let p = pki();
    // Certificates for a Service name, as the operator's users issue them: the URL says localhost.
    let service = ["alertmanager-operated.monitoring.svc"];
    let old = p.ca.issue("old", Role::Server, &service);
    let new = p.ca.issue("new", Role::Server, &service);
    // The Secret the reloader sees still holds the old certificate; the server already has the new.
    let secret = p.t.path("web_config/secret/am-tls");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::copy(&old.cert, secret.join("tls.crt")).unwrap();
    std::fs::copy(&old.key, secret.join("tls.key")).unwrap();
    let mounted = Leaf {
        cert: secret.join("tls.crt"),
        key: secret.join("tls.key"),
    };
    let web = p.t.path("web_config/web-config.yaml");
    operator_web_config(&web, &mounted);
    let s = TlsServer::start(&new, &[]);
    let proc = Run::new(p.t.path("config"))
        .args(&["--reload-url", &s.url("localhost"), "-X", "GET"])
        .args(&["--web-config-file", path(&web)])
        .args(&["--retry-interval", "50ms", "--max-backoff", "200ms"])
        .start();
    assert!(
        proc.log().contains("pinned: no CA, no name check"),
        "{}",
        proc.log()
    );
    proc.wait_for_n("TLS: pin mismatch", 3);
    assert_eq!(proc.count("reload delivered"), 0);
    // The kubelet updates the Secret: the pinned certificate is the server's again.
    std::fs::copy(&new.cert, secret.join("tls.crt")).unwrap();
    proc.wait_for("reload delivered");

    // A pinned certificate past its validity is refused even when it matches.
    let expired =
        p.ca.issue_with("expired", Role::Server, &service, false, "-1");
    operator_web_config(&web, &expired);
    let s = TlsServer::start(&expired, &[]);
    let (code, log) = once(&p, &s.url("localhost"), &["--web-config-file", path(&web)]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("TLS: the server's certificate has expired"),
        "{log}"
    );
    // A CA file, when given, is used instead of the pin: the server's name is checked then.
    operator_web_config(&web, &old);
    let s = TlsServer::start(&new, &[]);
    let url = s.url("localhost");
    let with_ca = |extra: &[&str]| {
        let ca = [
            "--web-config-file",
            path(&web),
            "--tls-ca-file",
            path(&p.ca.cert),
        ];
        once(&p, &url, &[&ca[..], extra].concat())
    };
    let (code, log) = with_ca(&[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("TLS: name mismatch"), "{log}");
    let (code, log) = with_ca(&["--tls-server-name", service[0]]);
    assert_eq!(code, 0, "{log}");
}

/// prometheus-operator's Alertmanager `main` with `web.tlsConfig` (its v0.93 arguments, `/etc/`
/// and the ports rebased): the reload URL is https://localhost, the web config names the
/// Service's certificate.
const ALERTMANAGER_TLS_SIDECAR: &[&str] = &[
    "--listen-address=:8080",
    "--web-config-file=/etc/alertmanager/web_config/web-config.yaml",
    "--reload-url=https://localhost:9093/-/reload",
    "--config-file=/etc/alertmanager/config/alertmanager.yaml.gz",
    "--config-envsubst-file=/etc/alertmanager/config_out/alertmanager.env.yaml",
    "--watched-dir=/etc/alertmanager/config",
];

#[test]
#[ignore = "needs prometheus-alertmanager, openssl and curl"]
fn the_operators_alertmanager_with_web_tls_is_reloaded_through_the_pinned_certificate() {
    need("prometheus-alertmanager");
    need("curl");
    let p = pki();
    let etc = p.t.path("etc");
    let (am_port, listen) = (free_port(), free_port());
    let args: Vec<String> = ALERTMANAGER_TLS_SIDECAR
        .iter()
        .map(|a| {
            a.replace("=/etc/", &format!("={}/", path(&etc)))
                .replace(":9093", &format!(":{am_port}"))
                .replace(":8080", &format!("127.0.0.1:{listen}"))
        })
        .collect();
    let service = "alertmanager-operated.monitoring.svc";
    let leaf = p.ca.issue("am", Role::Server, &[service]);
    let secret = etc.join("alertmanager/web_config/secret/am-tls");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::copy(&leaf.cert, secret.join("tls.crt")).unwrap();
    std::fs::copy(&leaf.key, secret.join("tls.key")).unwrap();
    let mounted = Leaf {
        cert: secret.join("tls.crt"),
        key: secret.join("tls.key"),
    };
    let web = etc.join("alertmanager/web_config/web-config.yaml");
    operator_web_config(&web, &mounted);
    // The operator's Secret holds the config gzipped; the init container has rendered it.
    let am_yml = |receiver: &str| {
        format!("route:\n  receiver: {receiver}\nreceivers:\n  - name: {receiver}\n")
    };
    let gz = |text: String| {
        let mut c = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        c.wait_with_output().unwrap().stdout
    };
    let mut config = Volume::new(etc.join("alertmanager/config"));
    let write = |config: &mut Volume, receiver: &str| {
        let mut files = std::collections::BTreeMap::new();
        files.insert("alertmanager.yaml.gz".to_string(), gz(am_yml(receiver)));
        config.write(&files);
    };
    write(&mut config, "first-receiver");
    let out = etc.join("alertmanager/config_out/alertmanager.env.yaml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, am_yml("first-receiver")).unwrap();
    let am = Proc::spawn(std::process::Command::new("prometheus-alertmanager").args([
        &format!("--config.file={}", path(&out)),
        &format!("--storage.path={}", path(&p.t.path("am-data"))),
        &format!("--web.listen-address=127.0.0.1:{am_port}"),
        "--cluster.listen-address=",
        &format!("--web.config.file={}", path(&web)),
    ]));
    // The test verifies as a client in the cluster would: the CA, the Service's name.
    let resolve = format!("{service}:{am_port}:127.0.0.1");
    let api = |what: &str| {
        let url = format!("https://{service}:{am_port}{what}");
        curl(&["--cacert", path(&p.ca.cert), "--resolve", &resolve, &url]).unwrap_or_default()
    };
    assert!(
        wait_until(60, || api("/-/ready").contains("OK")),
        "{}",
        am.log()
    );

    let side = Proc::spawn(std::process::Command::new(BIN).args(&args));
    side.wait_for("hashreload started");
    assert!(side.log().contains("pinned"), "{}", side.log());
    // The operator's spellings reload at start; then a change to the Secret is rendered and reloaded.
    side.wait_for("reload delivered");
    write(&mut config, "second-receiver");
    assert!(
        wait_until(20, || api("/api/v2/status").contains("second-receiver")),
        "{}",
        side.log()
    );
    side.wait_for_n("reload delivered", 2);
    assert!(!side.log().contains("TLS:"), "{}", side.log());
}

#[test]
#[ignore = "needs openssl"]
fn a_server_silent_in_the_handshake_is_a_timed_out_attempt() {
    let p = pki();
    // Accepts TCP and never says a word: the handshake waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}/");
    let start = std::time::Instant::now();
    let ca = path(&p.ca.cert);
    let (code, log) = once(&p, &url, &["--timeout", "1s", "--tls-ca-file", ca]);
    let took = start.elapsed();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("error=\"timed out\""), "{log}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    drop(silent);
}
