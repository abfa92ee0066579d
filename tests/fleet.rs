//! deploy/monitoring/ is proven, not sketched: the PrometheusRule holds the rules file's groups,
//! `promtool test rules` covers every alert firing and not firing, and Debian's Prometheus,
//! scraping a fleet of real sidecars with the rules loaded, answers every rule expression and every
//! dashboard query (read from the files, not copied here) with the series each should return.
//! Grafana is not installed here: the dashboard's rendering is not tested, its queries are.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/monitoring")
        .join(file)
}

/// Each alert of the rules file: its name and expression, one per line (name TAB expr).
fn rules() -> Vec<(String, String)> {
    let out = python(
        "for r in yaml.safe_load(open(sys.argv[1]))['groups'][0]['rules']:\n    \
         print(r['alert'] + '\\t' + ' '.join(r['expr'].split()))",
        &[&monitoring("hashreload-rules.yml")],
    );
    out.lines()
        .map(|l| {
            let (name, expr) = l.split_once('\t').unwrap();
            (name.to_string(), expr.to_string())
        })
        .collect()
}

#[test]
#[ignore = "needs python3 yaml"]
fn the_prometheusrule_holds_the_rules_files_groups() {
    let same = python(
        "a = yaml.safe_load(open(sys.argv[1]))['groups']\n\
         b = yaml.safe_load(open(sys.argv[2]))\n\
         print(a == b['spec']['groups'], b['kind'], b['apiVersion'], len(a[0]['rules']))",
        &[
            &monitoring("hashreload-rules.yml"),
            &monitoring("prometheusrule.yaml"),
        ],
    );
    assert_eq!(
        same.trim(),
        "True PrometheusRule monitoring.coreos.com/v1 5"
    );
}

#[test]
#[ignore = "needs promtool and python3 yaml"]
fn promtool_tests_fire_and_stay_quiet_for_every_alert() {
    need("promtool");
    // Every alert has a test where it fires and one where it stays quiet.
    let coverage = python(
        "alerts = [r['alert'] for r in yaml.safe_load(open(sys.argv[1]))['groups'][0]['rules']]\n\
         cases = [c for t in yaml.safe_load(open(sys.argv[2]))['tests'] for c in t['alert_rule_test']]\n\
         for a in alerts:\n    \
             fires = any(c['alertname'] == a and c['exp_alerts'] for c in cases)\n    \
             quiet = any(c['alertname'] == a and not c['exp_alerts'] for c in cases)\n    \
             print(a, fires, quiet)",
        &[
            &monitoring("hashreload-rules.yml"),
            &monitoring("tests/hashreload-rules-test.yml"),
        ],
    );
    for line in coverage.lines() {
        assert!(line.ends_with(" True True"), "{line}");
    }
    assert_eq!(coverage.lines().count(), 5, "{coverage}");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(monitoring("tests/hashreload-rules-test.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One series of a query's answer: the labels that tell pods, targets and digests apart, as
/// `k=v` joined by spaces (the same order for every series), and its value.
type Series = (String, f64);

const KEYS: [&str; 7] = [
    "namespace",
    "job",
    "pod",
    "root",
    "digest",
    "result",
    "reason",
];

/// A query parameter's value, percent-encoded.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An instant query through Prometheus' HTTP API.
fn query(port: u16, expr: &str) -> Vec<Series> {
    let (status, body) = get(port, &format!("/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    let lines = json(
        &body,
        &format!(
            "'\\n'.join(r['value'][1] + '\\t' + ' '.join(k + '=' + r['metric'][k] \
             for k in {KEYS:?} if k in r['metric']) for r in d['data']['result'])"
        ),
    );
    // The value first: json() trims the output, and a series without those labels ends in a tab.
    let mut all: Vec<Series> = lines
        .lines()
        .map(|l| {
            let (value, key) = l.split_once('\t').unwrap_or((l, ""));
            (key.to_string(), value.parse().unwrap())
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// What a series' value must be.
#[derive(Clone, Copy, Debug)]
enum Value {
    Eq(f64),
    Above(f64),
    Below(f64),
    /// A quantile over no observations.
    NaN,
    Any,
}

impl Value {
    fn holds(self, v: f64) -> bool {
        match self {
            Value::Eq(x) => v == x,
            Value::Above(x) => v > x,
            Value::Below(x) => v < x,
            Value::NaN => v.is_nan(),
            Value::Any => true,
        }
    }
}

type Want = Vec<(String, Value)>;

/// True when the answer has exactly the wanted series, each with a value that holds.
fn matches(got: &[Series], want: &Want) -> bool {
    let mut want = want.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|((k, v), (wk, wv))| k == wk && wv.holds(*v))
}

/// Polls `expr` until its answer matches `want` (a scrape and an evaluation each second).
fn expect(port: u16, what: &str, expr: &str, want: &Want) {
    let mut got = Vec::new();
    let ok = wait_until(30, || {
        got = query(port, expr);
        matches(&got, want)
    });
    assert!(ok, "{what}: {expr}\n got: {got:#?}\nwant: {want:#?}");
}

/// How a sidecar of the fleet runs: `namespace/job/pod`, its content, its reload URL, more flags.
struct Spec<'a> {
    namespace: &'static str,
    job: &'static str,
    pod: &'static str,
    content: &'a Payload,
    url: String,
    args: Vec<String>,
}

fn spec<'a>(at: &'static str, content: &'a Payload, url: &str, args: &[&str]) -> Spec<'a> {
    let mut parts = at.split('/');
    let mut next = || parts.next().unwrap();
    Spec {
        namespace: next(),
        job: next(),
        pod: next(),
        content,
        url: url.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// A sidecar of the fleet, scraped with these target labels.
struct Pod {
    namespace: &'static str,
    job: &'static str,
    pod: &'static str,
    port: u16,
    proc: Proc,
    /// The watched root, as the `root` label shows it.
    root: String,
}

fn pod_key(namespace: &str, job: &str, pod: &str) -> String {
    format!("namespace={namespace} job={job} pod={pod}")
}

/// Resumes a stopped process on drop, also when the test fails while it is stopped.
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

fn prometheus_config(pods: &[Pod], extra_targets: &[(&str, &str, u16)]) -> String {
    let mut jobs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in pods {
        jobs.entry(p.job).or_default().push(format!(
            "      - targets: ['127.0.0.1:{}']\n        labels: {{namespace: {}, pod: {}}}\n",
            p.port, p.namespace, p.pod
        ));
    }
    for (job, pod, port) in extra_targets {
        jobs.entry(job).or_default().push(format!(
            "      - targets: ['127.0.0.1:{port}']\n        labels: {{namespace: prod, pod: {pod}}}\n"
        ));
    }
    let mut yml = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n\
         scrape_configs:\n",
        monitoring("hashreload-rules.yml").display()
    );
    for (job, targets) in jobs {
        yml += &format!(
            "  - job_name: {job}\n    static_configs:\n{}",
            targets.concat()
        );
    }
    yml
}

/// Each panel target of the dashboard: panel title, refId and expression, one per line.
fn panel_queries() -> Vec<(String, String)> {
    let out = python(
        "d = json.load(open(sys.argv[1]))\n\
         for p in d['panels']:\n    \
             for t in p.get('targets', []):\n        \
                 print(p['title'] + ' ' + t['refId'] + '\\t' + t['expr'])",
        &[&monitoring("hashreload-dashboard.json")],
    );
    out.lines()
        .map(|l| {
            let (name, expr) = l.split_once('\t').unwrap();
            (name.to_string(), expr.to_string())
        })
        .collect()
}

/// The dashboard's template variables: name and label_values query.
fn variables() -> Vec<(String, String)> {
    let out = python(
        "d = json.load(open(sys.argv[1]))\n\
         for v in d['templating']['list']:\n    \
             print(v['name'] + '\\t' + (v['query']['query'] if v['type'] == 'query' else v['query']))",
        &[&monitoring("hashreload-dashboard.json")],
    );
    out.lines()
        .map(|l| {
            let (name, q) = l.split_once('\t').unwrap();
            (name.to_string(), q.to_string())
        })
        .collect()
}

/// Grafana's variables as the test states them: namespace `prod`, every job, `$__rate_interval`
/// 5 m (long enough to hold the reloads made at the start of the test).
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$namespace", "prod")
        .replace("$job", ".*")
}

#[test]
#[ignore = "needs prometheus and python3 yaml"]
fn prometheus_scraping_a_fleet_answers_every_rule_and_dashboard_query() {
    need("prometheus");
    let t = Tmp::new();
    let ok = Receiver::start(vec![]);
    // The first reload request hangs, longer than the test: that sidecar's loop is stuck in it.
    let hanging = Receiver::start(vec![Reply::Hang(Duration::from_secs(600))]);
    let refused = format!("http://127.0.0.1:{}/-/reload", free_port());

    let a1 = payload(&[("app.yml", "api: 1\n")]);
    let a2 = payload(&[("app.yml", "api: 2\n")]);
    let w1 = payload(&[("app.yml", "web: 1\n")]);
    let w2 = payload(&[("app.yml", "web: 2\n")]);
    let s1 = payload(&[("app.yml", "api: staging\n")]);
    let f1 = payload(&[("app.yml", "failing: 1\n")]);
    let f2 = payload(&[("app.yml", "failing: 2\n")]);
    let r1 = payload(&[("prometheus.yaml", "global: {}\n")]);
    let mut r2 = r1.clone();
    // A gzip header and then nothing a gzip stream holds: the render fails.
    r2.insert("prometheus.yaml".into(), vec![0x1f, 0x8b, 8, 0, 0xde, 0xad]);
    let g1 = payload(&[("app.yml", "gated: approved\n")]);
    let g2 = payload(&[("app.yml", "gated: not approved\n")]);
    let st1 = payload(&[("app.yml", "stuck: 1\n")]);
    let st2 = payload(&[("app.yml", "stuck: 2\n")]);
    let sec = payload(&[("token", "1234\n")]);
    let d = |p: &Payload| coreutils_digest(p);
    let approved = d(&g1);

    let listen = ["--listen-address", "127.0.0.1:0"];
    let mut volumes: BTreeMap<&str, Volume> = BTreeMap::new();
    let mut pods: Vec<Pod> = Vec::new();
    let config_file = t.path("vol/render-0/prometheus.yaml");
    let rendered = t.path("out/prometheus.env.yaml");
    let secret = t.path("vol/secret-0");
    let (config_file, rendered, secret) = (
        config_file.to_str().unwrap(),
        rendered.to_str().unwrap(),
        secret.to_str().unwrap(),
    );
    let (ok_url, hanging_url) = (ok.url("/"), hanging.url("/"));
    let fleet = [
        spec("prod/api/api-0", &a1, &ok_url, &[]),
        spec("prod/api/api-1", &a1, &ok_url, &[]),
        spec("staging/api/api-0s", &s1, &ok_url, &[]),
        spec("prod/web/web-0", &w1, &ok_url, &[]),
        spec("prod/web/web-1", &w2, &ok_url, &[]),
        spec(
            "prod/failing/fail-0",
            &f1,
            &refused,
            &["--retry-interval", "200ms", "--max-backoff", "1s"],
        ),
        spec(
            "prod/render/render-0",
            &r1,
            &ok_url,
            &[
                "--config-file",
                config_file,
                "--config-envsubst-file",
                rendered,
            ],
        ),
        spec("prod/gated/gated-0", &g1, &ok_url, &["--expect", &approved]),
        spec("prod/gated/gated-1", &g1, &ok_url, &["--expect", &approved]),
        spec(
            "prod/stuck/stuck-0",
            &st1,
            &hanging_url,
            &["--timeout", "10m"],
        ),
        spec("prod/frozen/frozen-0", &a1, &ok_url, &[]),
        spec(
            "prod/secret/secret-0",
            &sec,
            &ok_url,
            &["--secret-path", secret],
        ),
    ];
    std::fs::create_dir_all(t.path("out")).unwrap();
    for Spec {
        namespace,
        job,
        pod,
        content,
        url,
        args,
    } in fleet
    {
        let mut v = Volume::new(t.path(&format!("vol/{pod}")));
        v.write(content);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let proc = Run::new(&v.dir)
            .url(url)
            .interval("1s")
            .args(&listen)
            .args(&args)
            .start();
        pods.push(Pod {
            namespace,
            job,
            pod,
            port: bound_port(&proc),
            root: v.dir.to_str().unwrap().to_string(),
            proc,
        });
        volumes.insert(pod, v);
    }
    // A target that never was a hashreload, down: not ours to alert on.
    let node = free_port();
    t.write(
        "prometheus.yml",
        prometheus_config(&pods, &[("node", "node-0", node)]),
    );
    let port = free_port();
    let _prom = start_prometheus(&t.path("prometheus.yml"), port, &t.path("data"));

    // Every sidecar is scraped before anything changes, so the counters' rates see the changes.
    let up: Want = pods
        .iter()
        .map(|p| (pod_key(p.namespace, p.job, p.pod), Value::Eq(1.0)))
        .chain([(pod_key("prod", "node", "node-0"), Value::Eq(0.0))])
        .collect();
    expect(port, "every target scraped", "up", &up);

    // The rules are loaded, and Prometheus evaluates them without an error.
    let health = json(
        &get(port, "/api/v1/rules").1,
        "sorted((r['name'], r['type'], r['health']) for g in d['data']['groups'] for r in g['rules'])",
    );
    let mut names: Vec<String> = rules().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let want_health = format!(
        "[{}]",
        names
            .iter()
            .map(|n| format!("('{n}', 'alerting', 'ok')"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        wait_until(10, || {
            json(
            &get(port, "/api/v1/rules").1,
            "sorted((r['name'], r['type'], r['health']) for g in d['data']['groups'] for r in g['rules'])"
        ) == want_health
        }),
        "{health}"
    );

    // The changes, each as the kubelet writes it.
    let pod = |name: &str| pods.iter().find(|p| p.pod == name).unwrap();
    for (name, content) in [
        ("api-0", &a2),
        ("api-1", &a2),
        ("fail-0", &f2),
        ("render-0", &r2),
        ("gated-0", &g2),
        ("stuck-0", &st2),
    ] {
        volumes.get_mut(name).unwrap().write(content);
    }
    pod("api-0").proc.wait_for("reload delivered");
    pod("api-1").proc.wait_for("reload delivered");
    pod("fail-0").proc.wait_for("reload failed");
    pod("render-0").proc.wait_for("config render failed");
    assert!(
        wait_until(20, || hanging.count() == 1),
        "{}",
        pod("stuck-0").proc.log()
    );
    // Down: Prometheus' scrapes of it time out. First a few scrapes, so that rate() over the
    // window still has two samples from before the stop (on a busy machine it may have had one).
    let frozen = pod("frozen-0");
    let samples = "count_over_time(hashreload_build_info{job=\"frozen\"}[5m])";
    let scraped = || query(port, samples).first().is_some_and(|s| s.1 >= 3.0);
    assert!(wait_until(30, scraped), "{:?}", query(port, samples));
    unsafe { libc::kill(frozen.proc.child.id() as i32, libc::SIGSTOP) };
    let resume = Stopped(frozen.proc.child.id());

    let key = |job: &str, name: &str| pod_key("prod", job, name);
    // Every rule's expression, as written in the rules file, returns exactly these series.
    let stalled = "no successful scan for 3 intervals";
    let mut rule_wants: BTreeMap<&str, Want> = BTreeMap::new();
    rule_wants.insert(
        "HashreloadReloadFailing",
        vec![(key("failing", "fail-0"), Value::Eq(0.0))],
    );
    rule_wants.insert(
        "HashreloadPendingTooLong",
        vec![(key("render", "render-0"), Value::Above(0.0))],
    );
    rule_wants.insert(
        "HashreloadScanStalled",
        vec![
            (
                format!("{} reason={stalled}", key("stuck", "stuck-0")),
                Value::Above(3.0),
            ),
            (
                format!("{} reason=not scraped", key("frozen", "frozen-0")),
                Value::Eq(0.0),
            ),
        ],
    );
    rule_wants.insert(
        "HashreloadConfigDrift",
        vec![("namespace=prod job=web".into(), Value::Eq(2.0))],
    );
    rule_wants.insert(
        "HashreloadUnapprovedContent",
        vec![(key("gated", "gated-0"), Value::Eq(0.0))],
    );
    let all_rules = rules();
    assert_eq!(all_rules.len(), rule_wants.len());
    for (name, expr) in &all_rules {
        let want = rule_wants
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no expectation for the rule {name}"));
        expect(port, name, expr, want);
    }
    // Prometheus' own evaluation agrees: each alert is pending (its `for` has not passed) for
    // exactly those series.
    for (name, want) in &rule_wants {
        let alerts = || {
            let mut a: Vec<String> = json(
                &get(port, "/api/v1/rules").1,
                &format!(
                    "'\\n'.join(a['state'] + ' ' + ' '.join(k + '=' + a['labels'][k] for k in {KEYS:?} \
                     if k in a['labels']) for g in d['data']['groups'] for r in g['rules'] \
                     if r['name'] == '{name}' for a in r['alerts'])"
                ),
            )
            .lines()
            .map(str::to_string)
            .collect();
            a.sort();
            a
        };
        let mut expected: Vec<String> = want.iter().map(|(k, _)| format!("pending {k}")).collect();
        expected.sort();
        assert!(
            wait_until(30, || alerts() == expected),
            "{name}: {:?}",
            alerts()
        );
    }

    // Every dashboard query, with the variables stated, returns exactly these series.
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.namespace == "prod" && p.pod != "frozen-0")
        .collect();
    let digest_of = |name: &str| -> Option<String> {
        let content = match name {
            "api-0" | "api-1" => &a2,
            "web-0" => &w1,
            "web-1" => &w2,
            "fail-0" => &f2,
            "render-0" => &r2,
            "gated-0" => &g2,
            "gated-1" => &g1,
            // The loop has been stuck in the delivery of st2 since the scan that saw it: nothing
            // after that scan is published.
            "stuck-0" => &st1,
            _ => return None,
        };
        Some(d(content))
    };
    let acked_of = |name: &str| -> Option<String> {
        match name {
            "fail-0" => Some(d(&f1)),
            "render-0" => Some(d(&r1)),
            "gated-0" => Some(d(&g1)),
            "secret-0" => None,
            _ => digest_of(name),
        }
    };
    let mut jobs: Vec<&str> = pods
        .iter()
        .filter(|p| p.namespace == "prod")
        .map(|p| p.job)
        .collect();
    jobs.dedup();
    let per_pod =
        |value: Value| -> Want { running.iter().map(|p| (key(p.job, p.pod), value)).collect() };
    let mut panel_wants: BTreeMap<&str, Want> = BTreeMap::new();
    panel_wants.insert(
        "Sidecars up A",
        vec![(String::new(), Value::Eq(running.len() as f64))],
    );
    panel_wants.insert("Sidecars down A", vec![(String::new(), Value::Eq(1.0))]);
    // fail-0 and render-0; held content is not pending, and stuck-0 published nothing since.
    panel_wants.insert("Pending targets A", vec![(String::new(), Value::Eq(2.0))]);
    panel_wants.insert("Failing targets A", vec![(String::new(), Value::Eq(1.0))]);
    panel_wants.insert(
        "Pods holding unapproved content A",
        vec![(String::new(), Value::Eq(1.0))],
    );
    panel_wants.insert(
        "Config digests per job A",
        vec![(String::new(), Value::Eq(2.0))],
    );
    let mut per_digest: BTreeMap<String, f64> = BTreeMap::new();
    for p in &running {
        if let Some(a) = acked_of(p.pod) {
            *per_digest
                .entry(format!("namespace=prod job={} digest={a}", p.job))
                .or_default() += 1.0;
        }
    }
    panel_wants.insert(
        "Pods per acknowledged digest A",
        per_digest
            .into_iter()
            .map(|(k, n)| (k, Value::Eq(n)))
            .collect(),
    );
    panel_wants.insert(
        "Acknowledged digest per pod and target A",
        running
            .iter()
            .filter_map(|p| {
                Some((
                    format!("{} digest={}", key(p.job, p.pod), acked_of(p.pod)?),
                    Value::Eq(1.0),
                ))
            })
            .collect(),
    );
    panel_wants.insert(
        "Mounted digest per pod A",
        running
            .iter()
            .filter_map(|p| {
                Some((
                    format!("{} digest={}", key(p.job, p.pod), digest_of(p.pod)?),
                    Value::Eq(1.0),
                ))
            })
            .collect(),
    );
    panel_wants.insert(
        "Mounted digest per root A",
        running
            .iter()
            .filter_map(|p| {
                Some((
                    format!(
                        "{} root={} digest={}",
                        key(p.job, p.pod),
                        p.root,
                        digest_of(p.pod)?
                    ),
                    Value::Eq(1.0),
                ))
            })
            .collect(),
    );
    panel_wants.insert(
        "Age of pending changes A",
        vec![
            (key("failing", "fail-0"), Value::Above(0.0)),
            (key("render", "render-0"), Value::Above(0.0)),
        ],
    );
    panel_wants.insert(
        "Approved content A",
        vec![
            (key("gated", "gated-0"), Value::Eq(0.0)),
            (key("gated", "gated-1"), Value::Eq(1.0)),
        ],
    );
    panel_wants.insert(
        "Failing reloads A",
        vec![(key("failing", "fail-0"), Value::Eq(0.0))],
    );
    // Every job in prod, the stopped one too (its samples before the stop are in the window).
    let mut outcomes = Want::new();
    let mut p50 = Want::new();
    for job in &jobs {
        for result in ["failure", "success"] {
            let value = match (*job, result) {
                ("failing", "failure") | ("api", "success") => Value::Above(0.0),
                _ => Value::Eq(0.0),
            };
            outcomes.push((format!("namespace=prod job={job} result={result}"), value));
        }
        let value = match *job {
            "failing" | "api" => Value::Above(0.0),
            _ => Value::NaN,
        };
        p50.push((format!("namespace=prod job={job}"), value));
    }
    panel_wants.insert("Reload outcomes A", outcomes);
    panel_wants.insert("Reload duration A", p50.clone());
    panel_wants.insert("Reload duration B", p50);
    panel_wants.insert("Scan time A", per_pod(Value::Any));
    panel_wants.insert(
        "Scan freshness A",
        running
            .iter()
            .map(|p| {
                let value = if p.pod == "stuck-0" {
                    Value::Above(3.0)
                } else {
                    Value::Below(3.0)
                };
                (key(p.job, p.pod), value)
            })
            .collect(),
    );
    panel_wants.insert(
        "Sidecars not scraped A",
        vec![(key("frozen", "frozen-0"), Value::Eq(0.0))],
    );
    let queries = panel_queries();
    assert_eq!(queries.len(), panel_wants.len(), "{queries:?}");
    for (panel, expr) in &queries {
        let want = panel_wants
            .get(panel.as_str())
            .unwrap_or_else(|| panic!("no expectation for the panel query {panel}"));
        assert!(
            !want.is_empty(),
            "{panel}: every panel shows something here"
        );
        expect(port, panel, &substitute(expr), want);
    }

    // The template variables' label_values queries, through the API Grafana uses for them.
    let vars = variables();
    assert_eq!(
        vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["datasource", "namespace", "job"]
    );
    assert_eq!(vars[0].1, "prometheus");
    let label_values = |q: &str| {
        let inner = q
            .strip_prefix("label_values(")
            .unwrap()
            .strip_suffix(')')
            .unwrap();
        let (selector, label) = inner.rsplit_once(", ").unwrap();
        let m = encode(&substitute(selector));
        json(
            &get(port, &format!("/api/v1/label/{label}/values?match[]={m}")).1,
            "' '.join(d['data'])",
        )
    };
    assert_eq!(label_values(&vars[1].1), "prod staging");
    let mut prod_jobs = jobs.clone();
    prod_jobs.sort();
    assert_eq!(label_values(&vars[2].1), prod_jobs.join(" "), "no node");

    // Resumed, the stopped sidecar is scraped again and no longer stalled.
    drop(resume);
    expect(
        port,
        "HashreloadScanStalled after SIGCONT",
        &all_rules
            .iter()
            .find(|(n, _)| n == "HashreloadScanStalled")
            .unwrap()
            .1,
        &vec![(
            format!("{} reason={stalled}", key("stuck", "stuck-0")),
            Value::Above(3.0),
        )],
    );
}
