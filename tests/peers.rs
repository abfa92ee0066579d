//! Real peers from Debian's packages on 127.0.0.1: Prometheus and Alertmanager reloaded through a
//! kubelet-style volume, Prometheus scraping hashreload, promtool checking the exposition.
//! Ignored unless `scripts/test` runs them (`--include-ignored`: under CI or with every tool
//! installed); then a missing one is a failure, never a skip.

mod common;
use common::*;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[test]
#[ignore = "needs prometheus and promtool"]
fn prometheus_reloads_rejects_a_broken_config_and_scrapes_us() {
    need("prometheus");
    need("promtool");
    let t = Tmp::new();
    let mut vol = Volume::new(t.path("etc-prometheus"));
    let (prom_port, metrics_port) = (free_port(), free_port());
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(metrics_port, "first-job", ""),
    )]));
    let _prom = start_prometheus(
        &t.path("etc-prometheus/prometheus.yml"),
        prom_port,
        &t.path("data"),
    );
    let reloaded_at = || {
        sample(
            &get(prom_port, "/metrics").1,
            "prometheus_config_last_reload_success_timestamp_seconds",
        )
        .unwrap_or(0.0)
    };
    let config = || {
        json(
            &get(prom_port, "/api/v1/status/config").1,
            "d['data']['yaml']",
        )
    };
    let p = Run::new(t.path("etc-prometheus"))
        .url(format!("http://127.0.0.1:{prom_port}/-/reload"))
        .interval("100ms")
        .args(&["--retry-interval", "200ms", "--max-backoff", "1s"])
        .args(&["--listen-address", &format!("127.0.0.1:{metrics_port}")])
        .start();
    let before = reloaded_at();
    assert!(config().contains("first-job"));
    // The timestamp has 1 s resolution: the next reload must fall in a later second.
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(wait_until(3, || now().as_secs_f64() >= before + 1.0));

    // A real update through the kubelet's write sequence is applied.
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(metrics_port, "second-job", ""),
    )]));
    assert!(
        wait_until(20, || config().contains("second-job")),
        "{}",
        p.log()
    );
    assert!(reloaded_at() > before);
    p.wait_for("reload delivered");

    // A broken config: 500 with Prometheus' reason, logged, kept pending, retried.
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(metrics_port, "broken", "bogus_key: 1\n"),
    )]));
    p.wait_for_n("failed to reload config", 3);
    let log = p.log();
    assert!(
        log.contains("HTTP 500") && log.contains("bogus_key"),
        "{log}"
    );
    let (_, m) = get(metrics_port, "/metrics");
    assert_eq!(sample(&m, "hashreload_pending_targets"), Some(1.0));
    assert_eq!(
        sample(
            &get(prom_port, "/metrics").1,
            "prometheus_config_last_reload_successful"
        ),
        Some(0.0)
    );
    assert!(
        config().contains("second-job"),
        "Prometheus keeps serving the last good config"
    );

    // Fixed: the pending change is delivered.
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(metrics_port, "fixed-job", ""),
    )]));
    assert!(
        wait_until(20, || config().contains("fixed-job")),
        "{}",
        p.log()
    );
    assert!(wait_until(10, || sample(
        &get(metrics_port, "/metrics").1,
        "hashreload_pending_targets"
    ) == Some(0.0)));
    assert_eq!(
        sample(
            &get(prom_port, "/metrics").1,
            "prometheus_config_last_reload_successful"
        ),
        Some(1.0)
    );

    // Prometheus scrapes hashreload: target up, no scrape error.
    let target = |field: &str| {
        json(
            &get(prom_port, "/api/v1/targets").1,
            &format!("[t['{field}'] for t in d['data']['activeTargets'] if t['labels']['job']=='hashreload']"),
        )
    };
    assert!(
        wait_until(20, || target("health") == "['up']"),
        "{}",
        target("lastError")
    );
    assert_eq!(target("lastError"), "['']");

    // promtool accepts the exposition without a warning.
    let (_, exposition) = get(metrics_port, "/metrics");
    promtool_accepts(&exposition);
}

fn alertmanager_yml(receiver: &str) -> String {
    format!("route:\n  receiver: {receiver}\nreceivers:\n  - name: {receiver}\n")
}

#[test]
#[ignore = "needs prometheus-alertmanager"]
fn alertmanager_reloads_and_rejects_a_broken_config() {
    need("prometheus-alertmanager");
    let t = Tmp::new();
    let mut vol = Volume::new(t.path("etc-alertmanager"));
    let port = free_port();
    vol.write(&payload(&[(
        "alertmanager.yml",
        &alertmanager_yml("first-receiver"),
    )]));
    let am = Proc::spawn(Command::new("prometheus-alertmanager").args([
        &format!(
            "--config.file={}",
            t.path("etc-alertmanager/alertmanager.yml").display()
        ),
        &format!("--storage.path={}", t.path("data").display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=",
    ]));
    wait_ready(&am, port);
    let config = || json(&get(port, "/api/v2/status").1, "d['config']['original']");
    let p = Run::new(t.path("etc-alertmanager"))
        .url(format!("http://127.0.0.1:{port}/-/reload"))
        .interval("100ms")
        .args(&["--retry-interval", "200ms", "--max-backoff", "1s"])
        .start();
    assert!(config().contains("first-receiver"));

    vol.write(&payload(&[(
        "alertmanager.yml",
        &alertmanager_yml("second-receiver"),
    )]));
    assert!(
        wait_until(20, || config().contains("second-receiver")),
        "{}",
        p.log()
    );

    let broken = "route:\n  receiver: nobody\nreceivers:\n  - name: somebody\n";
    vol.write(&payload(&[("alertmanager.yml", broken)]));
    p.wait_for_n("failed to reload config", 2);
    assert!(p.log().contains("HTTP 500"), "{}", p.log());
    assert!(
        config().contains("second-receiver"),
        "Alertmanager keeps the last good config"
    );

    vol.write(&payload(&[(
        "alertmanager.yml",
        &alertmanager_yml("third-receiver"),
    )]));
    assert!(
        wait_until(20, || config().contains("third-receiver")),
        "{}",
        p.log()
    );
    p.wait_for_n("reload delivered", 2);
}
