//! The runtimeinfo-confirmed SIGHUP against Debian's Prometheus on 127.0.0.1, run from a copy
//! under a name of its own so no other test's Prometheus is ever signalled. Ignored unless
//! `scripts/test` runs it (`--include-ignored`); then a missing prometheus is a failure.

mod common;
use common::*;
use hashreload::runtimeinfo::Confirmed;
use hashreload::target::{Deliver, HttpUrl};
use hashreload::Target;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
#[ignore = "needs prometheus"]
fn sighup_is_confirmed_by_prometheus_and_a_broken_config_is_a_failure() {
    need("prometheus");
    let t = Tmp::new();
    let installed = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .unwrap();
    let installed = String::from_utf8(installed.stdout).unwrap();
    let name = format!("prom-ri-{}", std::process::id());
    let exe = t.path(&format!("bin/{name}"));
    std::fs::create_dir_all(t.path("bin")).unwrap();
    std::fs::copy(installed.trim(), &exe).unwrap();
    let port = free_port();
    t.write(
        "prometheus.yml",
        prometheus_yml(free_port(), "first-job", ""),
    );
    let prom = Proc::spawn(Command::new(&exe).args([
        &format!("--config.file={}", t.path("prometheus.yml").display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--storage.tsdb.path={}", t.path("data").display()),
    ]));
    wait_ready(&prom, port);
    let pid = prom.child.id();
    let loaded_at = || {
        sample(
            &get(port, "/metrics").1,
            "prometheus_config_last_reload_success_timestamp_seconds",
        )
        .unwrap()
    };
    let runtimeinfo = || get(port, "/api/v1/status/runtimeinfo").1;
    let config = || get(port, "/api/v1/status/config").1;
    // As prometheus-operator builds it (`http://localhost:9090[/PREFIX]/api/v1/status/runtimeinfo`).
    let url = HttpUrl::parse(&format!(
        "http://localhost:{port}/api/v1/status/runtimeinfo"
    ))
    .unwrap();
    let mut target = Target::Confirmed(Confirmed::new(
        name.clone(),
        url.clone(),
        Duration::from_secs(10),
    ));
    assert_eq!(target.name(), format!("signal:{name}"));

    // A good change, likely within the second of the first load: then the signal waits for the
    // next one, and either way the config time moves on.
    let started = loaded_at();
    t.write(
        "prometheus.yml",
        prometheus_yml(free_port(), "second-job", ""),
    );
    let called = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let msg = target.deliver("x").unwrap();
    let prefix = format!("SIGHUP sent to process {pid}; config reloaded at ");
    let at = msg.strip_prefix(&prefix).unwrap_or_else(|| panic!("{msg}"));
    assert!(
        runtimeinfo().contains(&format!(
            r#""reloadConfigSuccess":true,"lastConfigTime":"{at}""#
        )),
        "{}",
        runtimeinfo()
    );
    assert!(config().contains("second-job"));
    let reloaded = loaded_at();
    assert!(
        reloaded.floor() > started.floor(),
        "{started} -> {reloaded}"
    );
    assert!(
        reloaded >= called.as_secs() as f64,
        "{called:?} -> {reloaded}"
    );

    // A broken config: rejected as soon as Prometheus says so; the old config stays.
    t.write("prometheus.yml", "global:\n  scrape_interval: bogus\n");
    let e = target.deliver("y").unwrap_err().0;
    assert_eq!(
        e,
        format!(
            "SIGHUP sent to process {pid}, but the server rejected the new config \
             (reloadConfigSuccess false)"
        )
    );
    assert!(runtimeinfo().contains(r#""reloadConfigSuccess":false"#));
    assert!(config().contains("second-job"));
    assert_eq!(loaded_at(), reloaded);

    // Fixed again: from a failed state, success once the config time moves on.
    t.write(
        "prometheus.yml",
        prometheus_yml(free_port(), "third-job", ""),
    );
    let msg = Confirmed::new(name, url, Duration::from_secs(10))
        .deliver()
        .unwrap();
    assert!(msg.starts_with(&prefix), "{msg}");
    assert!(config().contains("third-job"));
    assert!(loaded_at() > reloaded);
    assert!(prom
        .log()
        .contains("Completed loading of configuration file"));
}
