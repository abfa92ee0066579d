//! prometheus-operator's config reloader, replaced: the binary runs the argument lists the
//! operator builds (`pkg/operator/config_reloader.go` `CreateConfigReloader` at v0.93, with the
//! options `pkg/prometheus`, `pkg/alertmanager` and `pkg/thanos` choose), against kubelet-style
//! volumes holding a gzipped config and rule files, and against Debian's Prometheus and
//! Alertmanager started on the rendered file. The argument strings below are facts copied from
//! what the operator generates; only `/etc/` and the ports are rebased into the test's own
//! directory and free ports.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Prometheus `foo`, HTTP reload strategy, three rule ConfigMaps: the `config-reloader` sidecar.
const PROMETHEUS_SIDECAR: &[&str] = &[
    "--listen-address=:8080",
    "--reload-url=http://localhost:9090/-/reload",
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-0",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-1",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-2",
    "--watched-dir=/etc/prometheus/config",
];

/// Its `init-config-reloader` (the same for the ProcessSignal strategy).
const PROMETHEUS_INIT: &[&str] = &[
    "--watch-interval=0",
    "--listen-address=:8081",
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-0",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-1",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-2",
    "--watched-dir=/etc/prometheus/config",
];

/// The sidecar with `reloadStrategy: ProcessSignal` (the pod shares its process namespace).
const PROMETHEUS_SIGNAL: &[&str] = &[
    "--listen-address=:8080",
    "--reload-method=signal",
    "--runtimeinfo-url=http://localhost:9090/api/v1/status/runtimeinfo",
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-0",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-1",
    "--watched-dir=/etc/prometheus/rules/prometheus-foo-rulefiles-2",
    "--watched-dir=/etc/prometheus/config",
];

/// Alertmanager `main` (>= 0.22: always a web config file, empty without TLS).
const ALERTMANAGER_SIDECAR: &[&str] = &[
    "--listen-address=:8080",
    "--web-config-file=/etc/alertmanager/web_config/web-config.yaml",
    "--reload-url=http://localhost:9093/-/reload",
    "--config-file=/etc/alertmanager/config/alertmanager.yaml.gz",
    "--config-envsubst-file=/etc/alertmanager/config_out/alertmanager.env.yaml",
    "--watched-dir=/etc/alertmanager/config",
];

const ALERTMANAGER_INIT: &[&str] = &[
    "--watch-interval=0",
    "--listen-address=:8081",
    "--config-file=/etc/alertmanager/config/alertmanager.yaml.gz",
    "--config-envsubst-file=/etc/alertmanager/config_out/alertmanager.env.yaml",
    "--watched-dir=/etc/alertmanager/config",
];

/// ThanosRuler `tr`: no config file, rule ConfigMaps only, and always a web config file.
const THANOS_RULER_SIDECAR: &[&str] = &[
    "--listen-address=:8080",
    "--web-config-file=/etc/thanos/web_config/web-config.yaml",
    "--reload-url=http://localhost:10902/-/reload",
    "--watched-dir=/etc/thanos/rules/thanos-ruler-tr-rulefiles-0",
];

/// A pod: its root (where `/etc/...` lands) and the ports that stand in for the operator's.
struct Pod {
    root: Tmp,
    /// (the operator's port, ours) for 9090, 9093, 10902, 8080 and 8081.
    ports: Vec<(&'static str, u16)>,
}

impl Pod {
    fn new() -> Pod {
        let ports = ["9090", "9093", "10902", "8080", "8081"]
            .into_iter()
            .map(|p| (p, free_port()))
            .collect();
        Pod {
            root: Tmp::new(),
            ports,
        }
    }

    fn port(&self, operator: &str) -> u16 {
        self.ports.iter().find(|(p, _)| *p == operator).unwrap().1
    }

    /// `/etc/x` of the pod.
    fn path(&self, abs: &str) -> std::path::PathBuf {
        self.root.path(abs.trim_start_matches('/'))
    }

    /// The operator's arguments with `/etc/` and the ports rebased; nothing else changes.
    fn args(&self, operator: &[&str]) -> Vec<String> {
        let etc = format!("{}/etc/", self.root.str());
        operator
            .iter()
            .map(|a| {
                let mut a = a.replace("=/etc/", &format!("={etc}"));
                for (from, to) in &self.ports {
                    a = a.replace(&format!(":{from}"), &format!(":{to}"));
                }
                a
            })
            .collect()
    }

    /// Runs the binary as the operator does, with the pod's environment.
    fn spawn(&self, operator: &[&str]) -> Proc {
        Proc::spawn(
            Command::new(BIN)
                .args(self.args(operator))
                .env("POD_NAME", "prometheus-foo-1")
                .env("SHARD", "0"),
        )
    }

    fn start(&self, operator: &[&str]) -> Proc {
        let p = self.spawn(operator);
        p.wait_for("hashreload started");
        p
    }

    /// The init container: runs to completion; its exit code and log.
    fn init(&self, operator: &[&str]) -> (i32, String) {
        run_cmd(
            Command::new(BIN)
                .args(self.args(operator))
                .env("POD_NAME", "prometheus-foo-1")
                .env("SHARD", "0"),
        )
    }

    /// Our metrics, from the sidecar's `--listen-address`.
    fn metric(&self, series: &str) -> f64 {
        sample(&get(self.port("8080"), "/metrics").1, series).unwrap_or(-1.0)
    }
}

fn gzip(data: &str) -> Vec<u8> {
    let mut gz = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    gz.stdin.take().unwrap().write_all(data.as_bytes()).unwrap();
    gz.wait_with_output().unwrap().stdout
}

/// The Secret holding the gzipped config, as the kubelet writes it.
fn secret(vol: &mut Volume, key: &str, config: &str) {
    vol.write(&[(key.to_string(), gzip(config))].into_iter().collect());
}

fn prometheus_yaml(pod: &Pod, job: &str) -> String {
    let rules = pod.path("/etc/prometheus/rules");
    format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    prometheus_replica: $(POD_NAME)\n    \
         shard: $(SHARD)\n    ordinal: '$(STATEFULSET_ORDINAL_NUMBER)'\n    zone: '$(TOPOLOGY_ZONE)'\n\
         rule_files:\n  - {0}/prometheus-foo-rulefiles-0/*.yaml\n  - {0}/prometheus-foo-rulefiles-1/*.yaml\n\
         scrape_configs:\n  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:9']}}]\n",
        rules.display()
    )
}

/// Publishes a new config Secret with `job` in it and waits until Prometheus on `port` runs it.
fn run_config(config: &mut Volume, pod: &Pod, job: &str, port: u16, p: &Proc) {
    secret(config, "prometheus.yaml.gz", &prometheus_yaml(pod, job));
    let live = || prometheus_config(port).contains(job);
    assert!(wait_until(20, live), "{}", p.log());
}

fn rule(name: &str) -> String {
    format!("groups:\n  - name: g\n    rules:\n      - record: {name}\n        expr: vector(1)\n")
}

/// The pod's volumes for Prometheus `foo`: the config Secret, `config_out` and three rule
/// ConfigMaps (the third empty, as the operator pads them).
fn prometheus_pod(pod: &Pod, job: &str) -> (Volume, Volume) {
    let mut config = Volume::new(pod.path("/etc/prometheus/config"));
    secret(
        &mut config,
        "prometheus.yaml.gz",
        &prometheus_yaml(pod, job),
    );
    std::fs::create_dir_all(pod.path("/etc/prometheus/config_out")).unwrap();
    let mut rules = Volume::new(pod.path("/etc/prometheus/rules/prometheus-foo-rulefiles-0"));
    rules.write(&payload(&[("default-rules.yaml", &rule("first_rule"))]));
    Volume::new(pod.path("/etc/prometheus/rules/prometheus-foo-rulefiles-1"))
        .write(&payload(&[("other.yaml", &rule("other_rule"))]));
    Volume::new(pod.path("/etc/prometheus/rules/prometheus-foo-rulefiles-2")).write(&payload(&[]));
    (config, rules)
}

fn rule_names(port: u16) -> String {
    json(
        &get(port, "/api/v1/rules").1,
        "sorted(r['name'] for g in d['data']['groups'] for r in g['rules'])",
    )
}

#[test]
#[ignore = "needs prometheus and promtool"]
fn prometheus_init_then_sidecar_render_and_reload() {
    need("prometheus");
    need("promtool");
    let pod = Pod::new();
    let (mut config, mut rules) = prometheus_pod(&pod, "first-job");
    let out = pod.path("/etc/prometheus/config_out/prometheus.env.yaml");

    // The init container renders the file the server then starts with, and exits 0.
    let (code, log) = pod.init(PROMETHEUS_INIT);
    assert_eq!(code, 0, "{log}");
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(
        rendered.contains("prometheus_replica: prometheus-foo-1\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("shard: 0\n") && rendered.contains("ordinal: '1'\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("zone: '$(TOPOLOGY_ZONE)'"),
        "an unset variable stays as written"
    );
    assert!(log.contains("variable=TOPOLOGY_ZONE"), "{log}");
    assert!(
        !log.contains("hashreload started"),
        "no loop, no server: {log}"
    );
    assert!(!out.with_extension("yaml.tmp").exists());

    let prom_port = pod.port("9090");
    let data = pod.path("/prometheus");
    let _prom = start_prometheus(&out, prom_port, &data);
    assert!(prometheus_config(prom_port).contains("first-job"));

    // The sidecar reloads once at start (a change while it was down is never lost).
    let p = pod.start(PROMETHEUS_SIDECAR);
    assert!(
        wait_until(10, || pod.metric("reloader_reloads_total") == 1.0),
        "{}",
        p.log()
    );
    assert_eq!(pod.metric("reloader_last_reload_successful"), 1.0);
    assert_eq!(pod.metric("reloader_config_apply_operations_total"), 1.0);
    assert_eq!(
        pod.metric("reloader_config_environment_variable_expansion_errors"),
        1.0
    );
    assert_eq!(pod.metric("reloader_info{method=\"http\"}"), 1.0);
    let metrics = get(pod.port("8080"), "/metrics").1;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let families = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next());
    assert_eq!(families.clone().count(), 33, "with the render families");
    for f in families {
        assert!(readme.contains(&format!("| `{f}")), "README lacks {f}");
    }
    // promtool accepts the exposition with every family, without a warning.
    promtool_accepts(&metrics);

    // A changed Secret is rendered and reloaded; Prometheus' own API shows it live.
    run_config(&mut config, &pod, "second-job", prom_port, &p);
    assert!(prometheus_config(prom_port).contains("prometheus_replica: prometheus-foo-1"));

    // A rule change alone reloads.
    assert!(rule_names(prom_port).contains("first_rule"));
    rules.write(&payload(&[("default-rules.yaml", &rule("changed_rule"))]));
    assert!(
        wait_until(20, || rule_names(prom_port).contains("changed_rule")),
        "{}",
        p.log()
    );
    let reloads = pod.metric("reloader_reloads_total");
    assert_eq!(reloads, 3.0, "{}", p.log());

    // The rendered file removed behind its back: restored at the next full scan (10 s), and
    // no reload is sent, since nothing the server reads changed.
    let good = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert!(
        wait_until(25, || std::fs::read(&out).is_ok_and(|b| b == good)),
        "{}",
        p.log()
    );
    assert_eq!(pod.metric("reloader_reloads_total"), reloads);

    // Broken inputs: a truncated gzip, then a whole gzip member with garbage after it (its
    // readable part holds the marker that must never reach the log). The output stays, no
    // reload is sent, the failed apply is counted, and the operator's alert sees a failure.
    let mut truncated = gzip(&prometheus_yaml(&pod, "third-job"));
    truncated.truncate(truncated.len() / 2);
    let mut trailing = gzip(&prometheus_yaml(&pod, "secret-marker-job"));
    trailing.extend_from_slice(b"garbage");
    for (n, broken) in [truncated, trailing].into_iter().enumerate() {
        config.write(
            &[("prometheus.yaml.gz".to_string(), broken)]
                .into_iter()
                .collect(),
        );
        let failed = || pod.metric("reloader_config_apply_operations_failed_total");
        assert!(wait_until(20, || failed() > n as f64), "{}", p.log());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            good,
            "the previous output stays"
        );
        assert!(!out.with_extension("yaml.tmp").exists());
        assert_eq!(
            pod.metric("reloader_reloads_total"),
            reloads,
            "no reload for a broken input"
        );
        assert_eq!(pod.metric("reloader_last_reload_successful"), 0.0);
    }
    assert!(p.log().contains("config render failed"), "{}", p.log());
    assert!(p.log().contains("trailing garbage"), "{}", p.log());
    assert!(
        !p.log().contains("secret-marker-job"),
        "no config content in the log"
    );

    // Fixed: picked up, rendered and reloaded.
    run_config(&mut config, &pod, "fourth-job", prom_port, &p);
    assert_eq!(pod.metric("reloader_last_reload_successful"), 1.0);
}

#[test]
#[ignore = "needs prometheus-alertmanager"]
fn alertmanager_init_then_sidecar_render_and_reload() {
    need("prometheus-alertmanager");
    let pod = Pod::new();
    let am_yaml = |receiver: &str| {
        format!("route:\n  receiver: {receiver}\nreceivers:\n  - name: {receiver}\n# $(POD_NAME)\n")
    };
    let mut config = Volume::new(pod.path("/etc/alertmanager/config"));
    secret(
        &mut config,
        "alertmanager.yaml.gz",
        &am_yaml("first-receiver"),
    );
    std::fs::create_dir_all(pod.path("/etc/alertmanager/config_out")).unwrap();
    // The operator's web config without TLS is an empty file (mounted with subPath).
    let web = pod.path("/etc/alertmanager/web_config/web-config.yaml");
    std::fs::create_dir_all(web.parent().unwrap()).unwrap();
    std::fs::write(&web, "").unwrap();

    let (code, log) = pod.init(ALERTMANAGER_INIT);
    assert_eq!(code, 0, "{log}");
    let out = pod.path("/etc/alertmanager/config_out/alertmanager.env.yaml");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("# prometheus-foo-1\n"));

    let port = pod.port("9093");
    let am = Proc::spawn(Command::new("prometheus-alertmanager").args([
        &format!("--config.file={}", out.display()),
        &format!("--storage.path={}", pod.path("/alertmanager").display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=",
        &format!("--web.config.file={}", web.display()),
    ]));
    wait_ready(&am, port);
    let live = || json(&get(port, "/api/v2/status").1, "d['config']['original']");
    assert!(live().contains("first-receiver"));

    let p = pod.start(ALERTMANAGER_SIDECAR);
    assert!(
        wait_until(10, || pod.metric("reloader_reloads_total") == 1.0),
        "{}",
        p.log()
    );
    secret(
        &mut config,
        "alertmanager.yaml.gz",
        &am_yaml("second-receiver"),
    );
    assert!(
        wait_until(20, || live().contains("second-receiver")),
        "{}",
        p.log()
    );
    assert_eq!(pod.metric("reloader_last_reload_successful"), 1.0);

    // A corrupt Secret at the init container's start: exit 1, the kubelet retries it.
    let before = std::fs::read(&out).unwrap();
    config.write(
        &[(
            "alertmanager.yaml.gz".to_string(),
            b"\x1f\x8b\x08garbage".to_vec(),
        )]
        .into_iter()
        .collect(),
    );
    let (code, log) = pod.init(ALERTMANAGER_INIT);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("config render failed"), "{log}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn thanos_ruler_sidecar_reloads_on_a_rule_change() {
    let pod = Pod::new();
    let ruler = std::net::TcpListener::bind(("127.0.0.1", pod.port("10902"))).unwrap();
    let receiver = Receiver::on(ruler, vec![]);
    let mut rules = Volume::new(pod.path("/etc/thanos/rules/thanos-ruler-tr-rulefiles-0"));
    rules.write(&payload(&[("r.yaml", &rule("first_rule"))]));
    let web = pod.path("/etc/thanos/web_config/web-config.yaml");
    std::fs::create_dir_all(web.parent().unwrap()).unwrap();
    std::fs::write(&web, "").unwrap();
    let p = pod.start(THANOS_RULER_SIDECAR);
    // Once at start, then once for the change.
    assert!(wait_until(10, || receiver.count() == 1), "{}", p.log());
    rules.write(&payload(&[("r.yaml", &rule("second_rule"))]));
    assert!(wait_until(10, || receiver.count() == 2), "{}", p.log());
    let r = &receiver.requests()[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/-/reload");
    assert_eq!(pod.metric("reloader_config_apply_operations_total"), 0.0);
    assert_eq!(get(pod.port("8080"), "/healthz").0, 200);
}

#[test]
fn web_config_headers_are_served_and_http2_is_noted() {
    let pod = Pod::new();
    Volume::new(pod.path("/etc/thanos/rules/thanos-ruler-tr-rulefiles-0")).write(&payload(&[]));
    let web = pod.path("/etc/thanos/web_config/web-config.yaml");
    std::fs::create_dir_all(web.parent().unwrap()).unwrap();
    // What the operator writes for `web.httpConfig` with http2 and headers set.
    std::fs::write(
        &web,
        "http_server_config:\n  http2: false\n  headers:\n    X-Content-Type-Options: nosniff\n    \
         X-Frame-Options: sameorigin\n",
    )
    .unwrap();
    let p = pod.start(THANOS_RULER_SIDECAR);
    assert!(p.log().contains("http2 is ignored"), "{}", p.log());
    let answer = answer(pod.port("8080"), "GET /healthz HTTP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\r\nX-Frame-Options: sameorigin\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nX-Content-Type-Options: nosniff\r\n"),
        "{answer}"
    );
}

#[test]
fn web_tls_is_refused_at_start_naming_the_tls_image() {
    let pod = Pod::new();
    Volume::new(pod.path("/etc/thanos/rules/thanos-ruler-tr-rulefiles-0")).write(&payload(&[]));
    let web = pod.path("/etc/thanos/web_config/web-config.yaml");
    std::fs::create_dir_all(web.parent().unwrap()).unwrap();
    // basic_auth_users works in both images (tests/listener.rs); TLS needs the -tls one.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: /c\n  key_file: /k\n",
    )
    .unwrap();
    let (code, log) = run_cmd(Command::new(BIN).args(pod.args(THANOS_RULER_SIDECAR)));
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("tls_server_config") && log.contains("-tls"),
        "{log}"
    );
    let https: Vec<String> = pod
        .args(THANOS_RULER_SIDECAR)
        .into_iter()
        .map(|a| a.replace("http://", "https://"))
        .collect();
    std::fs::write(&web, "").unwrap();
    let (code, log) = run_cmd(Command::new(BIN).args(https));
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("--reload-url") && log.contains("-tls"),
        "{log}"
    );
}

#[test]
#[ignore = "needs prometheus, unshare and root"]
fn prometheus_signal_strategy_reloads_by_sighup_confirmed_through_runtimeinfo() {
    need("prometheus");
    need("unshare");
    need_root();
    let pod = Pod::new();
    let (mut config, _rules) = prometheus_pod(&pod, "first-job");
    let (code, log) = pod.init(PROMETHEUS_INIT);
    assert_eq!(code, 0, "{log}");
    let out = pod.path("/etc/prometheus/config_out/prometheus.env.yaml");
    let prom_port = pod.port("9090");
    // The pod shares one process namespace (the operator sets shareProcessNamespace for this
    // strategy), so `prometheus` names this pod's server only, never another test's. Prometheus
    // runs without the lifecycle API, as the operator starts it with this strategy.
    let script = format!(
        "prometheus --config.file={} --web.listen-address=127.0.0.1:{prom_port} \
         --storage.tsdb.path={} 2>/dev/null & exec \"$0\" \"$@\"",
        out.display(),
        pod.path("/prometheus").display()
    );
    let p = Proc::spawn(
        Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "sh",
                "-c",
                &script,
                BIN,
            ])
            .args(pod.args(PROMETHEUS_SIGNAL))
            .env("POD_NAME", "prometheus-foo-1"),
    );
    p.wait_for("hashreload started");
    let ready = || {
        std::net::TcpStream::connect(("127.0.0.1", prom_port)).is_ok()
            && get(prom_port, "/-/ready").0 == 200
    };
    assert!(wait_until(30, ready), "{}", p.log());
    let reloaded_at = || {
        sample(
            &get(prom_port, "/metrics").1,
            "prometheus_config_last_reload_success_timestamp_seconds",
        )
        .unwrap_or(0.0)
    };
    // Once at start: confirmed only when runtimeinfo says the server reloaded.
    assert!(
        wait_until(30, || pod.metric("reloader_reloads_total") >= 1.0
            && pod.metric("reloader_last_reload_successful") == 1.0),
        "{}",
        p.log()
    );
    assert_eq!(pod.metric("reloader_info{method=\"signal\"}"), 1.0);
    let before = reloaded_at();

    run_config(&mut config, &pod, "second-job", prom_port, &p);
    assert!(
        wait_until(10, || p.log().contains("config reloaded at")),
        "{}",
        p.log()
    );
    assert!(reloaded_at() > before, "a later reload, in a later second");

    // A config Prometheus rejects: the SIGHUP lands, runtimeinfo says it failed, and that is a
    // failed attempt, retried.
    let failed = pod.metric("reloader_reloads_failed_total");
    secret(
        &mut config,
        "prometheus.yaml.gz",
        "global:\n  bogus_key: 1\n",
    );
    let more = || pod.metric("reloader_reloads_failed_total") > failed;
    assert!(wait_until(30, more), "{}", p.log());
    assert!(p.log().contains("rejected the new config"), "{}", p.log());
    assert_eq!(pod.metric("reloader_last_reload_successful"), 0.0);
    assert!(
        prometheus_config(prom_port).contains("second-job"),
        "the server keeps its config"
    );
}

#[test]
fn a_gzip_bomb_is_refused_at_the_cap_and_the_output_stays() {
    let pod = Pod::new();
    let (mut config, _rules) = prometheus_pod(&pod, "first-job");
    let (code, log) = pod.init(PROMETHEUS_INIT);
    assert_eq!(code, 0, "{log}");
    let out = pod.path("/etc/prometheus/config_out/prometheus.env.yaml");
    let good = std::fs::read(&out).unwrap();
    // 1 GiB of zeros in about 1 MB: sixteen gzip members of 64 MiB each.
    let zeros = Command::new("sh")
        .args(["-c", "head -c 67108864 /dev/zero | gzip -9 -n -c"])
        .output()
        .unwrap()
        .stdout;
    let bomb = zeros.repeat(16);
    assert!(bomb.len() < 2_000_000, "{}", bomb.len());
    config.write(
        &[("prometheus.yaml.gz".to_string(), bomb)]
            .into_iter()
            .collect(),
    );
    let (code, log) = pod.init(PROMETHEUS_INIT);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("more than 64 MiB when rendered (the limit)"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        good,
        "the previous output stays"
    );
    assert!(
        !out.with_extension("yaml.tmp").exists(),
        "no temp file left"
    );
}
