//! The numbers the loop records and their Prometheus text exposition.
//!
//! The poll loop owns a `Stats` and publishes a copy after each tick; the server thread renders the
//! last published copy. Neither ever waits on the other: publishing skips a tick if the server
//! happens to be taking a copy, and health reads one atomic timestamp.

use crate::digest::{hex, Hash};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// `--tls-insecure-skip-verify` was given: set once at start, shown as a gauge so it can be
/// alerted on.
#[cfg(feature = "tls")]
pub static TLS_INSECURE_SKIP_VERIFY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Histogram buckets of `reload_duration_seconds`, Prometheus' defaults.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetStats {
    pub name: String,
    pub successes: u64,
    pub failures: u64,
    pub last_successful: bool,
    /// Unix seconds of the last success, 0 before the first.
    pub last_success: f64,
    /// Unix seconds since the oldest change this target has not acknowledged, 0 when none.
    pub pending_since: f64,
    /// Cumulative counts per bucket of `BUCKETS`.
    pub buckets: [u64; BUCKETS.len()],
    pub duration_sum: f64,
    /// The state digest this target last acknowledged (None before it did, or when hidden).
    pub acked: Option<Hash>,
}

impl TargetStats {
    pub fn new(name: &str) -> TargetStats {
        TargetStats {
            name: name.to_string(),
            last_successful: true,
            ..TargetStats::default()
        }
    }

    pub fn observe(&mut self, ok: bool, seconds: f64, now_unix: f64) {
        if ok {
            self.successes += 1;
            self.last_success = now_unix;
        } else {
            self.failures += 1;
        }
        self.last_successful = ok;
        for (b, le) in self.buckets.iter_mut().zip(BUCKETS) {
            *b += u64::from(seconds <= le);
        }
        self.duration_sum += seconds;
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub polls: u64,
    pub poll_errors: u64,
    pub last_poll_seconds: f64,
    pub watched_files: u64,
    pub watched_bytes: u64,
    pub changes: u64,
    /// Unix seconds of the last successful scan, 0 before the first.
    pub last_scan_success: f64,
    /// `--interval`, in seconds.
    pub interval_seconds: f64,
    /// The last successful scan's state digest; None before it, or when hidden (`--secret-path`).
    pub content_digest: Option<Hash>,
    /// The last successful scan's root digests, by root as given, `--secret-path`s left out
    /// (shared names: the copy published after every tick allocates nothing for them).
    pub root_digests: Vec<(Arc<str>, Hash)>,
    /// `--expect`: whether the current content is the approved one; None without it.
    pub approved: Option<bool>,
    pub targets: Vec<TargetStats>,
    /// `--config-file` rendering, when configured.
    pub render: Option<RenderStats>,
}

/// Renders of `--config-file`: one attempt is one "apply" in prometheus-config-reloader's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderStats {
    pub attempts: u64,
    pub failures: u64,
    /// References to unset variables in the last successful render.
    pub unset: u64,
    /// The last attempt failed: the current state is held back.
    pub failing: bool,
    /// SHA-256 of the rendered output and its size, after the first successful render.
    pub output: Option<(String, u64)>,
}

/// What the loop shares with the server thread.
#[derive(Default)]
pub struct Shared {
    stats: Mutex<Arc<Stats>>,
    /// Unix milliseconds of the loop's last finished scan or delivery attempt.
    progress_ms: AtomicU64,
}

impl Shared {
    /// Never blocks: if the server is copying the last snapshot right now, returns false and the
    /// caller publishes again after its next tick.
    pub fn publish(&self, stats: &Stats) -> bool {
        match self.stats.try_lock() {
            Ok(mut s) => {
                *s = Arc::new(stats.clone());
                true
            }
            Err(_) => false,
        }
    }

    pub fn snapshot(&self) -> Arc<Stats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn progress(&self, unix_ms: u64) {
        self.progress_ms.store(unix_ms, Ordering::Relaxed);
    }

    pub fn last_progress_ms(&self) -> u64 {
        self.progress_ms.load(Ordering::Relaxed)
    }
}

/// Figures about our own process, read from /proc at scrape time.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
    pub start_time: f64,
    pub open_fds: u64,
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        // SAFETY: sysconf has no memory effects.
        let (tick, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let (tick, page) = (tick.max(1) as f64, page.max(1) as u64);
        let mut p = ProcessStats::default();
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let rss: u64 = statm
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            p.resident_bytes = rss * page;
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the `(comm)`, which may itself hold spaces: state is field 3.
            let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split(' ').collect();
            // Whole numbers all: parsed as integers (a float parser costs the binary kilobytes).
            let num = |i: usize| {
                f.get(i - 3)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0) as f64
            };
            p.cpu_seconds = (num(14) + num(15)) / tick;
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|v| v as f64)
            });
            p.start_time = boot.unwrap_or(0.0) + num(22) / tick;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of them.
            p.open_fds = fds.count().saturating_sub(1) as u64;
        }
        p
    }
}

/// A gauge or counter per target: name, help, value.
type PerTarget = (&'static str, &'static str, fn(&TargetStats) -> f64);

/// The exposition, format 0.0.4.
pub fn render(s: &Stats, p: &ProcessStats, version: &str) -> String {
    let mut o = Exposition(String::with_capacity(4096));
    o.family(
        "hashreload_build_info",
        "gauge",
        "Always 1; the version as a label.",
    );
    o.sample("hashreload_build_info", &[("version", version)], 1.0);
    #[cfg(feature = "tls")]
    {
        let name = "hashreload_tls_insecure_skip_verify";
        o.family(
            name,
            "gauge",
            "1 if https:// certificates are not verified.",
        );
        let insecure = TLS_INSECURE_SKIP_VERIFY.load(Ordering::Relaxed);
        o.sample(name, &[], f64::from(u8::from(insecure)));
    }
    let pending = s.targets.iter().filter(|t| t.pending_since > 0.0).count();
    #[rustfmt::skip]
    let scalars: [(&str, &str, &str, f64); 13] = [
        ("hashreload_polls_total", "counter", "Scans finished, successful or not.", s.polls as f64),
        ("hashreload_poll_errors_total", "counter",
            "Scans that failed (a Kubernetes snapshot kept changing during the read).", s.poll_errors as f64),
        ("hashreload_last_poll_duration_seconds", "gauge", "How long the last scan took.", s.last_poll_seconds),
        ("hashreload_last_scan_success_timestamp_seconds", "gauge",
            "Unix time of the last successful scan, 0 before the first.", s.last_scan_success),
        ("hashreload_scan_interval_seconds", "gauge", "Time between full scans (--interval).", s.interval_seconds),
        ("hashreload_watched_files", "gauge", "Files in the last successful scan.", s.watched_files as f64),
        ("hashreload_watched_bytes", "gauge", "Bytes hashed by the last successful scan.", s.watched_bytes as f64),
        ("hashreload_changes_total", "counter",
            "Content changes seen (settled ones, with --settle).", s.changes as f64),
        ("hashreload_pending_targets", "gauge",
            "Targets that have not acknowledged the current content.", pending as f64),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes as f64),
        ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds),
        ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", p.start_time),
        ("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds as f64),
    ];
    for (name, kind, help, v) in scalars {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    digests(&mut o, s);
    let name = "hashreload_reloads_total";
    o.family(
        name,
        "counter",
        "Delivery attempts per target and result (success or failure).",
    );
    for t in &s.targets {
        for (result, n) in [("success", t.successes), ("failure", t.failures)] {
            o.sample(name, &[("target", &t.name), ("result", result)], n as f64);
        }
    }
    let name = "hashreload_reload_duration_seconds";
    o.family(
        name,
        "histogram",
        "Duration of delivery attempts per target.",
    );
    for t in &s.targets {
        let bucket = format!("{name}_bucket");
        for (count, le) in t.buckets.iter().zip(BUCKETS) {
            o.sample(
                &bucket,
                &[("target", &t.name), ("le", &decimal(le))],
                *count as f64,
            );
        }
        let n = t.successes + t.failures;
        o.sample(&bucket, &[("target", &t.name), ("le", "+Inf")], n as f64);
        o.sample(
            &format!("{name}_sum"),
            &[("target", &t.name)],
            t.duration_sum,
        );
        o.sample(&format!("{name}_count"), &[("target", &t.name)], n as f64);
    }
    #[rustfmt::skip]
    let per_target: [PerTarget; 3] = [
        ("hashreload_last_reload_successful",
            "1 if the last delivery attempt succeeded (also before the first), else 0.",
            |t| f64::from(u8::from(t.last_successful))),
        ("hashreload_last_reload_success_timestamp_seconds",
            "Unix time of the last successful delivery, 0 before the first.", |t| t.last_success),
        ("hashreload_pending_since_timestamp_seconds",
            "Unix time since which a change waits for this target, 0 when none does.", |t| t.pending_since),
    ];
    for (name, help, value) in per_target {
        o.family(name, "gauge", help);
        for t in &s.targets {
            o.sample(name, &[("target", &t.name)], value(t));
        }
    }
    if let Some(r) = &s.render {
        let name = "hashreload_renders_total";
        o.family(name, "counter", "Renders of --config-file by result.");
        for (result, n) in [
            ("success", r.attempts - r.failures),
            ("failure", r.failures),
        ] {
            o.sample(name, &[("result", result)], n as f64);
        }
        if let Some((digest, bytes)) = &r.output {
            let name = "hashreload_rendered_config_info";
            o.family(
                name,
                "gauge",
                "Always 1; the SHA-256 of the last rendered --config-envsubst-file as a label.",
            );
            o.sample(name, &[("digest", digest)], 1.0);
            let name = "hashreload_rendered_config_bytes";
            o.family(
                name,
                "gauge",
                "Size of the last rendered --config-envsubst-file.",
            );
            o.sample(name, &[], *bytes as f64);
        }
    }
    incumbent(&mut o, s);
    o.0
}

/// Which content is mounted, approved and acknowledged, as `_info` series whose `digest` label
/// changes with it: one series each, so cardinality stays constant.
fn digests(o: &mut Exposition, s: &Stats) {
    if let Some(d) = &s.content_digest {
        let name = "hashreload_content_digest_info";
        o.family(
            name,
            "gauge",
            "Always 1; the state digest of the mounted content.",
        );
        o.sample(name, &[("digest", &hex(d))], 1.0);
    }
    if s.last_scan_success > 0.0 {
        let name = "hashreload_root_digest_info";
        o.family(name, "gauge", "Always 1; each watched root's digest.");
        for (root, d) in &s.root_digests {
            o.sample(name, &[("root", root), ("digest", &hex(d))], 1.0);
        }
    }
    let name = "hashreload_acknowledged_digest_info";
    o.family(
        name,
        "gauge",
        "Always 1; the state digest each target last acknowledged.",
    );
    for t in &s.targets {
        if let Some(d) = &t.acked {
            o.sample(name, &[("target", &t.name), ("digest", &hex(d))], 1.0);
        }
    }
    if let Some(approved) = s.approved {
        let name = "hashreload_content_approved";
        o.family(
            name,
            "gauge",
            "1 if the mounted content is the --expect one, 0 while it is held.",
        );
        o.sample(name, &[], f64::from(u8::from(approved)));
    }
}

/// The same figures under prometheus-config-reloader's names (thanos `pkg/reloader`), so the
/// operator's `ConfigReloaderSidecarErrors` alert and its dashboards keep working. Across several
/// targets: attempts are summed, the last reload was successful if it was for every target (and
/// no render is failing), and the success timestamp is the oldest target's (0 until every target succeeded once).
fn incumbent(o: &mut Exposition, s: &Stats) {
    let sum = |f: fn(&TargetStats) -> u64| s.targets.iter().map(f).sum::<u64>();
    let render = s.render.clone().unwrap_or_default();
    // A render that fails holds every reload back: that is a failed reload to the operator's
    // alert, as the incumbent's crash at a broken config is.
    let all_ok = s.targets.iter().all(|t| t.last_successful) && !render.failing;
    let oldest = s.targets.iter().map(|t| t.last_success).reduce(f64::min);
    #[rustfmt::skip]
    let scalars: [(&str, &str, &str, f64); 7] = [
        ("reloader_reloads_total", "counter", "Total number of reload requests.",
            sum(|t| t.successes + t.failures) as f64),
        ("reloader_reloads_failed_total", "counter", "Total number of reload requests that failed.",
            sum(|t| t.failures) as f64),
        ("reloader_last_reload_successful", "gauge", "Whether the last reload attempt was successful",
            f64::from(u8::from(all_ok))),
        ("reloader_last_reload_success_timestamp_seconds", "gauge", "Timestamp of the last successful reload",
            oldest.unwrap_or(0.0)),
        ("reloader_config_apply_operations_total", "counter", "Total number of config apply operations.",
            render.attempts as f64),
        ("reloader_config_apply_operations_failed_total", "counter",
            "Total number of config apply operations that failed.", render.failures as f64),
        ("reloader_config_environment_variable_expansion_errors", "gauge",
            "Number of environment variable expansions that failed during the last operation.", render.unset as f64),
    ];
    for (name, kind, help, v) in scalars {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    let name = "reloader_info";
    o.family(
        name,
        "gauge",
        "A metric with a constant '1' value labeled by reload method (either 'http' or 'signal').",
    );
    let mut methods: Vec<&str> = s.targets.iter().map(|t| method(&t.name)).collect();
    methods.sort_unstable();
    methods.dedup();
    for m in methods {
        o.sample(name, &[("method", m)], 1.0);
    }
}

/// How a target reloads, from its name (`http://…`, `signal:…`, `exec:…`).
fn method(target: &str) -> &'static str {
    match target.split(':').next() {
        Some("signal") => "signal",
        Some("exec") => "command",
        _ => "http",
    }
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        for (i, (k, v)) in labels.iter().enumerate() {
            self.0.push(if i == 0 { '{' } else { ',' });
            // Label values: backslash, double quote and newline escaped.
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(self.0, "{k}=\"{v}\"");
        }
        if !labels.is_empty() {
            self.0.push('}');
        }
        self.0.push(' ');
        self.0.push_str(&decimal(value));
        self.0.push('\n');
    }
}

/// A sample value or bucket bound as the exposition writes it: whole numbers without a point,
/// others to the microsecond (every figure here is a count, bytes, or seconds). Written by hand:
/// std's float formatting costs the binary about 10 KB.
pub fn decimal(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let v = v.abs();
    if v.fract() == 0.0 && v < 1e19 {
        return format!("{sign}{}", v as u64);
    }
    let micros = (v * 1e6).round() as u128;
    let (int, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut t = TargetStats::new("t");
        t.observe(true, 0.003, 100.0);
        t.observe(false, 0.2, 101.0);
        t.observe(false, 30.0, 102.0);
        assert_eq!(t.buckets, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!((t.successes, t.failures), (1, 2));
        assert!(!t.last_successful);
        assert_eq!(t.last_success, 100.0);
    }

    #[test]
    fn renders_every_metric_with_help_and_type() {
        let mut s = Stats {
            polls: 3,
            changes: 1,
            watched_files: 2,
            last_scan_success: 9.5,
            interval_seconds: 10.0,
            content_digest: Some([0xab; 32]),
            root_digests: vec![("/etc/a\"".into(), [1; 32])],
            approved: Some(false),
            ..Stats::default()
        };
        let mut t = TargetStats::new("http://h/\"x\"");
        t.observe(true, 0.02, 5.0);
        t.pending_since = 6.0;
        t.acked = Some([2; 32]);
        s.targets.push(t);
        let text = render(&s, &ProcessStats::default(), "1.2.3");
        for line in [
            "hashreload_build_info{version=\"1.2.3\"} 1",
            "hashreload_polls_total 3",
            "hashreload_changes_total 1",
            "hashreload_watched_files 2",
            "hashreload_pending_targets 1",
            "hashreload_reloads_total{target=\"http://h/\\\"x\\\"\",result=\"success\"} 1",
            "hashreload_reload_duration_seconds_bucket{target=\"http://h/\\\"x\\\"\",le=\"0.025\"} 1",
            "hashreload_reload_duration_seconds_bucket{target=\"http://h/\\\"x\\\"\",le=\"0.01\"} 0",
            "hashreload_reload_duration_seconds_count{target=\"http://h/\\\"x\\\"\"} 1",
            "hashreload_last_reload_success_timestamp_seconds{target=\"http://h/\\\"x\\\"\"} 5",
            "process_open_fds 0",
            "hashreload_last_scan_success_timestamp_seconds 9.5",
            "hashreload_scan_interval_seconds 10",
            &format!("hashreload_content_digest_info{{digest=\"{}\"}} 1", "ab".repeat(32)),
            &format!(
                "hashreload_root_digest_info{{root=\"/etc/a\\\"\",digest=\"{}\"}} 1",
                "01".repeat(32)
            ),
            &format!(
                "hashreload_acknowledged_digest_info{{target=\"http://h/\\\"x\\\"\",digest=\"{}\"}} 1",
                "02".repeat(32)
            ),
            "hashreload_content_approved 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        // The -tls build adds hashreload_tls_insecure_skip_verify.
        assert_eq!(names.len(), 31 + usize::from(cfg!(feature = "tls")));
        for n in names {
            let n = n.split(' ').next().unwrap();
            assert!(text.contains(&format!("# HELP {n} ")), "{n}");
        }
    }

    #[test]
    fn digest_series_wait_for_a_scan_and_stay_away_when_hidden() {
        let mut s = Stats {
            root_digests: vec![("/etc/a".into(), [1; 32])],
            targets: vec![TargetStats::new("t")],
            ..Stats::default()
        };
        let text = render(&s, &ProcessStats::default(), "1");
        for absent in ["digest=", "hashreload_content_approved"] {
            assert!(!text.contains(absent), "{absent} before a scan:\n{text}");
        }
        // A --secret-path: the poller leaves the state digests out, roots stay.
        s.last_scan_success = 1.0;
        let text = render(&s, &ProcessStats::default(), "1");
        let with_digest: Vec<&str> = text.lines().filter(|l| l.contains("digest=")).collect();
        assert_eq!(with_digest.len(), 1, "{text}");
        assert!(with_digest[0].starts_with("hashreload_root_digest_info{root=\"/etc/a\""));
    }

    #[test]
    fn the_incumbents_names_sum_targets_and_count_a_failing_render() {
        let mut s = Stats::default();
        for (name, ok, when) in [("http://a/", true, 7.0), ("signal:prometheus", true, 5.0)] {
            let mut t = TargetStats::new(name);
            t.observe(ok, 0.1, when);
            t.observe(false, 0.1, when + 1.0);
            t.observe(ok, 0.1, when + 2.0);
            s.targets.push(t);
        }
        let value = |s: &Stats, series: &str| {
            let text = render(s, &ProcessStats::default(), "1");
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{series} ")))
                .unwrap()
                .to_string();
            line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
        };
        assert_eq!(value(&s, "reloader_reloads_total"), 6.0);
        assert_eq!(value(&s, "reloader_reloads_failed_total"), 2.0);
        assert_eq!(value(&s, "reloader_last_reload_successful"), 1.0);
        assert_eq!(
            value(&s, "reloader_last_reload_success_timestamp_seconds"),
            7.0,
            "the oldest"
        );
        assert_eq!(value(&s, "reloader_info{method=\"http\"}"), 1.0);
        assert_eq!(value(&s, "reloader_info{method=\"signal\"}"), 1.0);
        assert_eq!(value(&s, "reloader_config_apply_operations_total"), 0.0);
        s.render = Some(RenderStats {
            attempts: 3,
            failures: 1,
            unset: 2,
            failing: true,
            output: None,
        });
        assert_eq!(
            value(&s, "reloader_last_reload_successful"),
            0.0,
            "a failing render holds reloads"
        );
        assert_eq!(
            value(&s, "reloader_config_apply_operations_failed_total"),
            1.0
        );
        assert_eq!(
            value(&s, "reloader_config_environment_variable_expansion_errors"),
            2.0
        );
        assert_eq!(
            value(&s, "hashreload_renders_total{result=\"success\"}"),
            2.0
        );
    }

    #[test]
    fn decimals_are_whole_or_to_the_microsecond() {
        for (v, text) in [
            (0.0, "0"),
            (3.0, "3"),
            (0.005, "0.005"),
            (2.5, "2.5"),
            (10.0, "10"),
            (1764561234.567, "1764561234.567"),
            (0.0000004, "0"),
            (0.0000016, "0.000002"),
            (-1.25, "-1.25"),
            (9007199254740993.0, "9007199254740992"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(decimal(v), text, "{v:?}");
        }
        for le in BUCKETS {
            assert_eq!(decimal(le), le.to_string(), "bucket bounds read as before");
        }
    }

    #[test]
    fn reads_process_figures_from_proc() {
        let p = ProcessStats::read();
        assert!(p.resident_bytes > 0);
        assert!(p.open_fds >= 3);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            p.start_time > now - 3600.0 && p.start_time <= now + 1.0,
            "{p:?}"
        );
    }

    #[test]
    fn publish_never_blocks() {
        let shared = Shared::default();
        let held = shared.stats.lock().unwrap();
        assert!(!shared.publish(&Stats::default()));
        drop(held);
        assert!(shared.publish(&Stats {
            polls: 7,
            ..Stats::default()
        }));
        assert_eq!(shared.snapshot().polls, 7);
    }
}
