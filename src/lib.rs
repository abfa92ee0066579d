//! hashreload: polls mounted config files, hashes their content, and tells the server to reload
//! when the content changed. Data flows one way: scan (`volume`) -> digest (`digest`) -> compare
//! and deliver (`poll`, `target`) -> record (`log`, `metrics`, served by `server`).
//! Around them: `trust` and, in the -tls build, `tls` (what https:// requests trust, and the
//! connector that enforces it); `webconfig`, `basicauth` and `tls_server` (what the server asks
//! of its clients).

pub mod approval;
pub mod basicauth;
pub mod cli;
pub mod curl;
pub mod digest;
pub mod duration;
pub mod log;
pub mod metrics;
pub mod oneshot;
pub mod poll;
pub mod process;
pub mod render;
pub mod runtimeinfo;
pub mod server;
pub mod shprobe;
pub mod signal;
pub mod state;
pub mod target;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod tls_server;
pub mod trust;
pub mod volume;
pub mod webconfig;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// The version `--version`, the start log line, metrics and the User-Agent report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How the process ends, as the README's "Exit codes" documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done; also `--help`, `--version`, and a stop by SIGTERM/SIGINT.
    Ok = 0,
    /// A runtime failure: signal handlers, an unstable snapshot, a delivery `--once` gave up on.
    Failed = 1,
    /// A usage or config error.
    Usage = 2,
    /// `--expect`: the content is not the expected one.
    Differs = 3,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The process's command line, argv[0] apart. Named `sh` (the image's /bin/sh), the binary only
/// answers prometheus-operator's exec probe (`shprobe`); under any other name, such as
/// /bin/prometheus-config-reloader, it is hashreload.
pub fn main_with(argv0: &OsStr, args: Vec<OsString>) -> i32 {
    if Path::new(argv0).file_name() == Some(OsStr::new("sh")) {
        return shprobe::main(args);
    }
    run(args).code()
}

/// Parses the command line and runs; returns the exit code for anything but a signal.
pub fn run(args: Vec<OsString>) -> Exit {
    let mut config = match cli::parse(args) {
        Ok(cli::Parsed::Run(c)) => c,
        Ok(cli::Parsed::Digest(d)) => return oneshot::digest_command(d),
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::help());
            return Exit::Ok;
        }
        Ok(cli::Parsed::Version) => {
            println!("hashreload {}", VERSION);
            return Exit::Ok;
        }
        Err(e) => {
            eprintln!("hashreload: {e}\ntry 'hashreload --help'");
            return Exit::Usage;
        }
    };
    log::init(config.log_level, config.log_format);
    for (level, note) in &config.notes {
        log::log(*level, note, &[]);
    }
    #[cfg(feature = "tls")]
    {
        let insecure = config.tls.insecure_skip_verify;
        metrics::TLS_INSECURE_SKIP_VERIFY.store(insecure, std::sync::atomic::Ordering::Relaxed);
        target::use_tls(config.tls.clone());
    }
    if let Err(e) = process::install_signal_handlers() {
        log::error("cannot install signal handlers", &[("error", &e)]);
        return Exit::Failed;
    }
    if config.once {
        return once(*config);
    }
    if config.render_once {
        return render_once(&config);
    }
    // Bound before anything runs, so a taken port is a config error at start.
    let listener = match config.listen_address.map(std::net::TcpListener::bind) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            let addr = config
                .listen_address
                .map_or(String::new(), |a| a.to_string());
            eprintln!("hashreload: --listen-address {addr}: {e}\ntry 'hashreload --help'");
            return Exit::Usage;
        }
    };
    let shared = match listener {
        None => None,
        Some(l) => {
            let shared = Arc::new(metrics::Shared::default());
            let addr = l.local_addr().map_or(String::new(), |a| a.to_string());
            let health = server::Health::new(config.interval, config.timeout);
            let path = config.metrics_path.clone();
            let web = std::mem::take(&mut config.web);
            if let Err(e) = server::spawn(l, shared.clone(), path, health, web) {
                log::error("cannot start the metrics server", &[("error", &e)]);
                return Exit::Failed;
            }
            log::info(
                "serving metrics and /healthz",
                &[("address", &addr), ("metrics_path", &config.metrics_path)],
            );
            Some(shared)
        }
    };
    watch(*config, shared)
}

/// Anything a change is delivered to (here, where every kind of target is known, so that no
/// target module needs another).
pub enum Target {
    Http(target::Http),
    Signal(signal::Signal),
    /// A SIGHUP confirmed through Prometheus' runtimeinfo API.
    Confirmed(runtimeinfo::Confirmed),
    Command(target::Command),
}

impl Target {
    /// The redacted, stable name used in logs.
    pub fn name(&self) -> &str {
        match self {
            Target::Http(h) => h.name(),
            Target::Signal(s) => s.name(),
            Target::Confirmed(c) => c.name(),
            Target::Command(c) => c.name(),
        }
    }
}

impl target::Deliver for Target {
    fn name(&self) -> &str {
        Target::name(self)
    }

    fn deliver(&mut self, digest: &str) -> Result<String, target::Failure> {
        match self {
            Target::Http(h) => h.deliver(digest),
            Target::Signal(s) => s.deliver(),
            Target::Confirmed(c) => c.deliver(),
            Target::Command(c) => c.deliver(digest),
        }
        .map_err(target::Failure)
    }
}

/// Every target, in the order they are tried: URLs, the emulated curl, signals, the COMMAND.
fn targets(config: &mut cli::Config) -> Vec<Target> {
    let options = Rc::new(target::HttpOptions {
        method: std::mem::take(&mut config.method),
        accept: config.accept.clone(),
        headers: std::mem::take(&mut config.headers),
        bearer_token_file: config.bearer_token_file.take(),
        timeout: config.timeout,
        body: None,
    });
    let mut targets: Vec<Target> = std::mem::take(&mut config.urls)
        .into_iter()
        .map(|u| Target::Http(target::Http::new(u, options.clone())))
        .collect();
    if let Some(curl) = config.curl.take() {
        let http = target::Http::new(curl.url, Rc::new(curl.options));
        targets.push(Target::Http(http));
    }
    if let Some((name, url)) = config.confirmed.take() {
        let confirmed = runtimeinfo::Confirmed::new(name, url, config.timeout);
        targets.push(Target::Confirmed(confirmed));
    }
    for select in std::mem::take(&mut config.signals) {
        let signal = signal::Signal::new(select, config.signal);
        targets.push(Target::Signal(signal));
    }
    if let Some((program, args)) = config.command.take() {
        let command = target::Command::new(program, args, config.timeout);
        targets.push(Target::Command(command));
    }
    targets
}

fn settings(config: &cli::Config) -> poll::Settings {
    poll::Settings {
        interval: config.interval,
        retry_interval: config.retry_interval,
        max_backoff: config.max_backoff,
        settle: config.settle,
        reload_on_start: config.reload_on_start,
        secret_roots: config.secret_roots.clone(),
    }
}

fn once(mut config: cli::Config) -> Exit {
    let mut targets = targets(&mut config);
    oneshot::once(
        &poll::SystemClock,
        &config.paths,
        &mut targets,
        &settings(&config),
        config.attempts,
        config.state_file.as_deref(),
        config.expect.as_ref(),
    )
}

/// What `$(NAME)` expands to: the environment, and `STATEFULSET_ORDINAL_NUMBER` as the trailing
/// number of the variable `--statefulset-ordinal-from-envvar` names (empty when it has none), as
/// prometheus-config-reloader sets it.
fn variables(ordinal_from: &str) -> impl Fn(&[u8]) -> Option<Vec<u8>> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let from = std::env::var_os(ordinal_from).unwrap_or_default();
    let ordinal = render::ordinal(from.as_bytes()).to_vec();
    move |name: &[u8]| match name {
        b"STATEFULSET_ORDINAL_NUMBER" => Some(ordinal.clone()),
        _ => std::env::var_os(std::ffi::OsStr::from_bytes(name)).map(OsString::into_vec),
    }
}

/// `--watch-interval=0`: the operator's init container renders the config before the server
/// starts; no reload, no server. A broken input exits 1 and the kubelet retries.
fn render_once(config: &cli::Config) -> Exit {
    let Some(r) = &config.render else {
        return Exit::Usage;
    };
    let vars = variables(&r.ordinal_from);
    match render::render(&r.input, &r.output, render::LIMIT, &vars) {
        Ok(out) => {
            out.unset_names.iter().for_each(|n| poll::warn_unset(n));
            log::info(
                "config rendered, exiting (--watch-interval=0)",
                &[
                    ("digest", &digest::short(&out.digest)),
                    ("bytes", &out.bytes),
                    ("written", &out.written),
                ],
            );
            Exit::Ok
        }
        Err(e) => {
            log::error("config render failed", &[("error", &e)]);
            Exit::Failed
        }
    }
}

fn watch(mut config: cli::Config, shared: Option<Arc<metrics::Shared>>) -> ! {
    let targets = targets(&mut config);
    let settings = settings(&config);
    let labels = config
        .paths
        .iter()
        .map(|p| volume::root_label(p).to_vec())
        .collect();
    let roots = config.paths.clone();
    let mut scanner = match config.stat_cache {
        true => volume::Scanner::with_stat_cache(),
        false => volume::Scanner::default(),
    };
    let scan = move || scanner.scan_all(&roots);
    let mut poller = poll::Poller::new(poll::SystemClock, scan, labels, targets, settings);
    if let Some(shared) = shared {
        poller = poller.with_shared(shared);
    }
    if let Some(path) = config.state_file {
        poller = poller.with_state_file(path);
    }
    if let Some(expect) = config.expect {
        poller = poller.with_gate(expect);
    }
    if let Some(r) = config.render {
        let vars = variables(&r.ordinal_from);
        // What the last render left on disk: anything else there is restored at the next scan.
        let left = Rc::new(std::cell::Cell::new(None));
        let (written, output) = (left.clone(), r.output.clone());
        let run = move || {
            let out = render::render(&r.input, &r.output, render::LIMIT, &vars)?;
            written.set(render::stamp(&r.output));
            Ok(out)
        };
        poller = poller.with_render(run, move || render::stamp(&output) != left.get());
    }
    // Kubernetes volumes change `..data` exactly when their content changes: one readlink per
    // root every --data-check-interval brings detection there far below a full re-hash; the
    // full re-hash every --interval stays the truth.
    let every = config.data_check_interval;
    if !every.is_zero() && every < config.interval {
        let links: Vec<_> = config.paths.iter().map(|p| p.join("..data")).collect();
        poller = poller.with_probe(every, move || volume::generation(&links));
    }
    poller.run()
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        let codes = [Exit::Ok, Exit::Failed, Exit::Usage, Exit::Differs].map(Exit::code);
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
