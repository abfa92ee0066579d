//! The daemon's `--expect` (content held until a release pipeline approves it, through a
//! ConfigMap laid out as the kubelet lays it out), the digest series, and `--secret-path`,
//! all through the real binary.

mod common;

use common::*;

/// A one-file manifest, as `hashreload digest` prints it.
fn manifest(name: &str, content: &str) -> String {
    format!("{}  {name}\n", sha256_hex(content.as_bytes()))
}

fn metrics(port: u16) -> String {
    get(port, "/metrics").1
}

/// The lines of series `name`, label sets and values.
fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .collect()
}

#[test]
fn held_content_waits_for_the_pipeline_to_approve_it() {
    let tmp = Tmp::new();
    let r = Receiver::start(vec![]);
    let mut config = Volume::new(tmp.path("config"));
    let mut approved = Volume::new(tmp.path("approved"));
    config.write(&payload(&[("prometheus.yml", "v1")]));
    let one = manifest("prometheus.yml", "v1");
    approved.write(&payload(&[("manifest", &one)]));
    let at = format!("--expect=@{}", tmp.path("approved/manifest").display());
    let p = Run::new(&config.dir)
        .url(r.url("/-/reload"))
        .args(&[&at, "--listen-address", "127.0.0.1:0"])
        .start();
    let port = bound_port(&p);
    let v1 = sha256_hex(one.as_bytes());
    // Published after the first tick, which may follow the start line.
    let approved_now = |v| {
        wait_until(5, || {
            sample(&metrics(port), "hashreload_content_approved") == Some(v)
        })
    };
    assert!(approved_now(1.0), "{}", metrics(port));
    let m = metrics(port);
    let acked = format!(
        "hashreload_acknowledged_digest_info{{target=\"{}\",digest=\"{v1}\"}}",
        r.url("/-/reload")
    );
    assert_eq!(
        sample(&m, &acked),
        Some(1.0),
        "the first scan counts as acknowledged:\n{m}"
    );

    // A change the pipeline has not approved: held, logged once naming the file, not pending.
    config.write(&payload(&[("prometheus.yml", "v2"), ("extra.yml", "x")]));
    p.wait_for("content is not the approved one, holding it");
    p.wait_scans(5);
    assert_eq!(r.count(), 0, "held content was delivered");
    assert_eq!(p.count("content is not the approved one"), 1, "{}", p.log());
    let held = p.log();
    let line = held.lines().find(|l| l.contains("holding it")).unwrap();
    assert!(
        line.contains("changed=prometheus.yml") && line.contains("unexpected=extra.yml"),
        "{line}"
    );
    let two = manifest("extra.yml", "x") + &manifest("prometheus.yml", "v2");
    let v2 = sha256_hex(two.as_bytes());
    let m = metrics(port);
    assert_eq!(sample(&m, "hashreload_content_approved"), Some(0.0), "{m}");
    assert_eq!(
        sample(&m, "hashreload_pending_targets"),
        Some(0.0),
        "held is not pending:\n{m}"
    );
    let content = series(&m, "hashreload_content_digest_info");
    assert_eq!(
        content,
        [format!(
            "hashreload_content_digest_info{{digest=\"{v2}\"}} 1"
        )]
    );
    assert_eq!(sample(&m, &acked), Some(1.0), "still v1 acknowledged:\n{m}");

    // The pipeline publishes the new manifest: delivered at the next full scan.
    approved.write(&payload(&[("manifest", &two)]));
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), [v2.as_str()]);
    p.wait_for("content approved");
    // Published after the first tick, which may follow the start line.
    let approved_now = |v| {
        wait_until(5, || {
            sample(&metrics(port), "hashreload_content_approved") == Some(v)
        })
    };
    assert!(approved_now(1.0), "{}", metrics(port));
    let m = metrics(port);
    let acked = series(&m, "hashreload_acknowledged_digest_info");
    assert_eq!(acked.len(), 1, "the old digest's series is gone:\n{m}");
    assert!(acked[0].contains(&v2), "{m}");
    let root = config.dir.display();
    let roots = series(&m, "hashreload_root_digest_info");
    assert_eq!(
        roots,
        [format!(
            "hashreload_root_digest_info{{root=\"{root}\",digest=\"{v2}\"}} 1"
        )]
    );
    let fresh = sample(&m, "hashreload_last_scan_success_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert!((now.as_secs_f64() - fresh).abs() < 5.0, "{fresh}");
    assert_eq!(sample(&m, "hashreload_scan_interval_seconds"), Some(0.02));
}

#[test]
#[ignore = "needs promtool"]
fn the_digest_series_are_valid_exposition() {
    need("promtool");
    let tmp = Tmp::new();
    tmp.write("c/a", "1");
    let at = format!("--expect={}", "0".repeat(64));
    let p = Run::new(tmp.path("c"))
        .url("http://127.0.0.1:9/")
        .args(&[&at, "--listen-address", "127.0.0.1:0"])
        .start();
    let port = bound_port(&p);
    let held = || sample(&metrics(port), "hashreload_content_approved") == Some(0.0);
    assert!(wait_until(5, held), "{}", metrics(port));
    promtool_accepts(&metrics(port));
}

#[test]
fn an_expect_file_inside_a_watched_path_is_refused() {
    let tmp = Tmp::new();
    let mut config = Volume::new(tmp.path("config"));
    config.write(&payload(&[("approved", "x")]));
    let at = format!("--expect=@{}/approved", config.dir.display());
    let (code, err) = run(&[
        "-p",
        tmp.path("config").to_str().unwrap(),
        "-u",
        "http://127.0.0.1:9/",
        &at,
    ]);
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "hashreload: --expect @{}/approved: inside the watched path",
        config.dir.display()
    );
    assert!(err.starts_with(&want), "{err}");
}

#[test]
fn a_secret_path_keeps_every_digest_out_of_logs_metrics_and_requests() {
    let tmp = Tmp::new();
    let r = Receiver::start(vec![]);
    let mut config = Volume::new(tmp.path("config"));
    let mut secret = Volume::new(tmp.path("secret"));
    config.write(&payload(&[("prometheus.yml", "global: {}\n")]));
    secret.write(&payload(&[("pin", "1234")]));
    let s = secret.dir.to_str().unwrap().to_string();
    let p = Run::new(&config.dir)
        .path(&secret.dir)
        .url(r.url("/"))
        .args(&["--secret-path", &s, "--listen-address", "127.0.0.1:0"])
        .start();
    secret.write(&payload(&[("pin", "4321")]));
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.requests()[0].header("X-Hashreload-Digest"), None);
    let m = metrics(bound_port(&p));
    // What a guess at the PIN could be checked against: the secret root's digest, and the state
    // digest over both roots.
    let config_digest = sha256_hex(manifest("prometheus.yml", "global: {}\n").as_bytes());
    let guessable: Vec<String> = ["1234", "4321"]
        .iter()
        .flat_map(|pin| {
            let root = sha256_hex(manifest("pin", pin).as_bytes());
            let lines = format!("{config_digest}  {}\n{root}  {s}\n", config.dir.display());
            [root, sha256_hex(lines.as_bytes())]
        })
        .collect();
    let log = p.log();
    for d in &guessable {
        assert!(
            !log.contains(&d[..12]) && !m.contains(&d[..12]),
            "{d} shown:\n{log}\n{m}"
        );
    }
    assert!(log.contains("digest=hidden"), "{log}");
    let roots = series(&m, "hashreload_root_digest_info");
    assert_eq!(roots.len(), 1, "only the public root:\n{m}");
    assert!(roots[0].contains(&config_digest), "{m}");
    for absent in [
        "hashreload_content_digest_info",
        "hashreload_acknowledged_digest_info",
    ] {
        assert!(series(&m, absent).is_empty(), "{absent}:\n{m}");
    }
}
