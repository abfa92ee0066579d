//! The poll loop and the pending state: scan, compare, deliver, sleep, in one thread.
//!
//! Every target remembers the state digest it last acknowledged; a change is pending for a target
//! until it acknowledges the current one. Failed attempts are retried on a capped exponential
//! backoff forever; a newer change replaces the pending one and resets the backoff; a target
//! that succeeded is never sent the same change again because another failed. The clock and the
//! scanner are parameters, so unit tests drive the loop without sleeping.

use crate::approval::{Expect, Gate};
use crate::digest::{self, short, state_digest, Entry, Hash, Manifest};
use crate::duration::format_duration;
use crate::log;
use crate::metrics::{RenderStats, Shared, Stats, TargetStats};
use crate::render::{Outcome, RenderError};
use crate::state;
use crate::target::Deliver;
use crate::volume::ScanError;
use crate::VERSION;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
    /// Wall-clock time in Unix seconds, for timestamps in metrics.
    fn unix(&self) -> f64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
    fn unix(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

pub struct Settings {
    pub interval: Duration,
    pub retry_interval: Duration,
    pub max_backoff: Duration,
    pub settle: Duration,
    pub reload_on_start: bool,
    /// Per root, in `--path` order: true for a `--secret-path`, whose digest, and every state
    /// digest, are shown nowhere (logs, metrics, headers, a COMMAND's environment).
    pub secret_roots: Vec<bool>,
}

impl Settings {
    /// True when digests are shown nowhere.
    pub fn hides(&self) -> bool {
        self.secret_roots.contains(&true)
    }

    /// True for a `--secret-path` root, by its index in `--path` order.
    pub fn secret(&self, root: usize) -> bool {
        self.secret_roots.get(root) == Some(&true)
    }

    /// A digest as logs show it: its first 12 hex digits, or `hidden`.
    pub fn shown(&self, h: &Hash) -> String {
        digest::shown(h, self.hides())
    }

    /// What targets are told (`X-Hashreload-Digest`, `HASHRELOAD_DIGEST`): empty when hidden.
    pub fn told(&self, h: &Hash) -> String {
        match self.hides() {
            true => String::new(),
            false => digest::hex(h),
        }
    }

    /// The wait before the next attempt after a failure: `backoff` less up to 10 % jitter. Then
    /// `backoff` doubles, up to `--max-backoff`.
    fn retry_wait(&self, backoff: &mut Duration, rng: &mut u64) -> Duration {
        let wait = jitter(rng, *backoff);
        *backoff = (*backoff * 2).min(self.max_backoff);
        wait
    }
}

struct TargetState<T> {
    target: T,
    acked: Option<Hash>,
    backoff: Duration,
    next_attempt: Instant,
    failures: u32,
}

struct State {
    manifests: Vec<Manifest>,
    digest: Hash,
}

/// A cheap check between full scans: a token that changes when content may have (for kubelet
/// volumes, where `..data` points). A new token makes the next scan due at once.
struct Probe {
    check: Box<dyn FnMut() -> u64>,
    every: Duration,
    next: Instant,
    /// The token taken just before the last scan began.
    seen: u64,
}

/// The step between compare and deliver when `--config-file` is rendered: a state is delivered
/// only once it rendered. A failed render is retried on the delivery backoff; a new state
/// renders at once.
struct Rendering {
    run: Box<dyn FnMut() -> Result<Outcome, RenderError>>,
    /// True when the output is no longer what the last render left (removed, replaced, edited).
    stale: Box<dyn FnMut() -> bool>,
    /// The state digest whose render succeeded.
    done: Option<Hash>,
    backoff: Duration,
    next_attempt: Instant,
    failures: u32,
    /// Unset variables already logged, by name: each once.
    logged_unset: Vec<String>,
}

/// A change seen but not yet settled (`--settle`).
struct Settling {
    candidate: Hash,
    since: Instant,
}

pub struct Poller<C, S, T> {
    clock: C,
    scan: S,
    labels: Vec<Vec<u8>>,
    targets: Vec<TargetState<T>>,
    settings: Settings,
    current: Option<State>,
    settling: Option<Settling>,
    next_scan: Instant,
    rng: u64,
    stats: Stats,
    shared: Option<Arc<Shared>>,
    state_file: Option<PathBuf>,
    probe: Option<Probe>,
    rendering: Option<Rendering>,
    /// The last scan's error, logged once until the error changes or a scan succeeds.
    scan_error: Option<ScanError>,
    /// `--expect` in the daemon: content it does not approve is held, neither rendered nor
    /// delivered, and is not pending.
    gate: Option<Gate>,
    approved: bool,
    /// Each root's name for `hashreload_root_digest_info`; None for a `--secret-path`.
    root_names: Vec<Option<Arc<str>>>,
}

impl<C, S, T> Poller<C, S, T>
where
    C: Clock,
    S: FnMut() -> Result<Vec<Manifest>, ScanError>,
    T: Deliver,
{
    /// `labels` name the roots, in the order `scan` returns them.
    pub fn new(
        clock: C,
        scan: S,
        labels: Vec<Vec<u8>>,
        targets: Vec<T>,
        settings: Settings,
    ) -> Self {
        let now = clock.now();
        let targets: Vec<TargetState<T>> = targets
            .into_iter()
            .map(|target| TargetState {
                target,
                acked: None,
                backoff: settings.retry_interval,
                next_attempt: now,
                failures: 0,
            })
            .collect();
        let stats = Stats {
            interval_seconds: settings.interval.as_secs_f64(),
            targets: targets
                .iter()
                .map(|t| TargetStats::new(t.target.name()))
                .collect(),
            ..Stats::default()
        };
        let root_names = (labels.iter().enumerate())
            .map(|(i, l)| match settings.secret(i) {
                true => None,
                false => Some(Arc::from(String::from_utf8_lossy(l))),
            })
            .collect();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Poller {
            clock,
            scan,
            labels,
            targets,
            settings,
            current: None,
            settling: None,
            next_scan: now,
            rng: seed | 1,
            stats,
            shared: None,
            state_file: None,
            probe: None,
            rendering: None,
            scan_error: None,
            gate: None,
            approved: true,
            root_names,
        }
    }

    /// Delivers only content `--expect` approves (its digests hidden as the settings say).
    pub fn with_gate(mut self, expect: Expect) -> Self {
        self.gate = Some(Gate::new(expect, self.settings.hides()));
        self
    }

    /// Renders with `run` each new state before it is delivered, and again whenever a full scan
    /// finds `stale` true: an output removed or edited by someone else is restored.
    pub fn with_render(
        mut self,
        run: impl FnMut() -> Result<Outcome, RenderError> + 'static,
        stale: impl FnMut() -> bool + 'static,
    ) -> Self {
        self.rendering = Some(Rendering {
            run: Box::new(run),
            stale: Box::new(stale),
            done: None,
            backoff: self.settings.retry_interval,
            next_attempt: self.clock.now(),
            failures: 0,
            logged_unset: Vec::new(),
        });
        self.stats.render = Some(RenderStats::default());
        self
    }

    /// Runs `check` every `every` between full scans, and scans at once when its token changes.
    pub fn with_probe(mut self, every: Duration, check: impl FnMut() -> u64 + 'static) -> Self {
        self.probe = Some(Probe {
            check: Box::new(check),
            every,
            next: self.clock.now(),
            seen: 0,
        });
        self
    }

    /// Records acknowledgements in `path`, and at start delivers what a target missed.
    pub fn with_state_file(mut self, path: PathBuf) -> Self {
        self.state_file = Some(path);
        self
    }

    fn save_state(&self) {
        let Some(path) = &self.state_file else { return };
        let entries: Vec<(&str, Hash)> = self
            .targets
            .iter()
            .filter_map(|t| Some((t.target.name(), t.acked?)))
            .collect();
        if let Err(e) = state::write(path, &entries) {
            log::warn(
                "cannot write the state file",
                &[("path", &path.display()), ("error", &e)],
            );
        }
    }

    /// Publishes metrics and progress to a server thread.
    pub fn with_shared(mut self, shared: Arc<Shared>) -> Self {
        shared.progress(self.unix_ms());
        shared.publish(&self.stats);
        self.shared = Some(shared);
        self
    }

    /// The numbers recorded so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn unix_ms(&self) -> u64 {
        (self.clock.unix() * 1000.0) as u64
    }

    /// A scan or delivery attempt finished: the loop is alive.
    fn progressed(&self) {
        if let Some(s) = &self.shared {
            s.progress(self.unix_ms());
        }
    }

    /// Runs forever; the process ends through a signal.
    pub fn run(&mut self) -> ! {
        loop {
            let wake = self.tick();
            let now = self.clock.now();
            if wake > now {
                self.clock.sleep(wake - now);
            }
            // As PID 1 we inherit orphans: reap them so no zombies accumulate. Our own COMMAND
            // is reaped where it runs, so anywhere else this costs a syscall per wake for nothing.
            if crate::process::is_init() {
                crate::process::reap(0);
            }
        }
    }

    /// Does whatever is due now; returns when something is due next.
    pub fn tick(&mut self) -> Instant {
        let now = self.clock.now();
        // A scan due now takes its own token.
        if let Some(p) = &mut self.probe {
            if now >= p.next && now < self.next_scan {
                p.next = now + p.every;
                if (p.check)() != p.seen {
                    log::debug("..data changed, scanning now", &[]);
                    self.next_scan = now;
                }
            }
        }
        if self.clock.now() >= self.next_scan {
            self.poll();
            self.gate();
        }
        self.render();
        self.deliver();
        if let Some(shared) = &self.shared {
            // Never waits: a snapshot skipped now goes out after the next tick.
            shared.publish(&self.stats);
        }
        let next = self
            .probe
            .as_ref()
            .map_or(self.next_scan, |p| p.next.min(self.next_scan));
        if let Some(r) = self.rendering.as_ref().filter(|r| !self.rendered(r)) {
            return next.min(r.next_attempt);
        }
        self.targets
            .iter()
            .filter(|t| self.is_pending(t))
            .map(|t| t.next_attempt)
            .fold(next, Instant::min)
    }

    /// The settled state digest, once the first scan succeeded.
    pub fn digest(&self) -> Option<Hash> {
        self.current.as_ref().map(|c| c.digest)
    }

    /// How many targets have not acknowledged the current digest.
    pub fn pending(&self) -> usize {
        self.targets.iter().filter(|t| self.is_pending(t)).count()
    }

    /// True when there is nothing to render, or the current state rendered.
    fn rendered(&self, r: &Rendering) -> bool {
        self.current.is_none() || !self.approved || r.done == self.digest()
    }

    fn is_pending(&self, t: &TargetState<T>) -> bool {
        self.approved
            && self
                .current
                .as_ref()
                .is_some_and(|c| t.acked != Some(c.digest))
    }

    /// What is mounted now, for the digest series: the state digest unless hidden, and each
    /// root's that is not a `--secret-path`.
    fn record_digests(&mut self, new: &State) {
        let hides = self.settings.hides();
        self.stats.content_digest = Some(new.digest).filter(|_| !hides);
        let shown = self.root_names.iter().zip(&new.manifests);
        self.stats.root_digests.clear();
        for (name, m) in shown.filter_map(|(n, m)| Some((n.clone()?, m))) {
            self.stats.root_digests.push((name, m.digest));
        }
    }

    /// Checks the current content against `--expect` (re-reading its FILE). Held content is
    /// pending for no target; once approved content is mounted, every target that has not
    /// acknowledged it is pending from now, with a fresh backoff.
    fn gate(&mut self) {
        let (Some(gate), Some(current)) = (&mut self.gate, &self.current) else {
            return;
        };
        gate.refresh();
        let labels = &self.labels;
        let approved = gate.approves(&current.digest, || {
            let roots: Vec<(&[u8], &Manifest)> = labels
                .iter()
                .map(|l| l.as_slice())
                .zip(&current.manifests)
                .collect();
            digest::state_text(&roots)
        });
        self.stats.approved = Some(approved);
        if approved == self.approved {
            return;
        }
        self.approved = approved;
        let digest = current.digest;
        let (now, unix) = (self.clock.now(), self.clock.unix());
        for (t, stats) in self.targets.iter_mut().zip(&mut self.stats.targets) {
            stats.pending_since = 0.0;
            if approved && t.acked != Some(digest) {
                stats.pending_since = unix;
                t.backoff = self.settings.retry_interval;
                t.next_attempt = now;
            }
        }
        if let Some(r) = &mut self.rendering {
            r.backoff = self.settings.retry_interval;
            r.next_attempt = now;
        }
    }

    fn poll(&mut self) {
        let start = self.clock.now();
        // Taken before the scan: a swap during the scan then shows as a change at the next probe.
        if let Some(p) = &mut self.probe {
            p.seen = (p.check)();
            p.next = start + p.every;
        }
        let scanned = (self.scan)();
        let now = self.clock.now();
        self.next_scan = now + self.settings.interval;
        self.stats.polls += 1;
        self.stats.last_poll_seconds = (now - start).as_secs_f64();
        self.progressed();
        let manifests = match scanned {
            Ok(m) => m,
            Err(e) => {
                self.stats.poll_errors += 1;
                // Once per distinct error: a fault that lasts (descriptors held by someone else)
                // must not flood the log every interval.
                if self.scan_error.as_ref() != Some(&e) {
                    log::warn("scan failed, keeping the last state", &[("error", &e)]);
                    self.scan_error = Some(e);
                }
                // A failed scan concluded nothing, and `..data` may not move again: try again
                // after --retry-interval rather than a whole --interval.
                self.next_scan = now + self.settings.interval.min(self.settings.retry_interval);
                return;
            }
        };
        if let Some(e) = self.scan_error.take() {
            log::info("scanning works again", &[("after", &e)]);
        }
        if let Some(r) = self.rendering.as_mut().filter(|r| r.done.is_some()) {
            if (r.stale)() {
                log::warn(
                    "the rendered config was changed or removed, rendering it again",
                    &[],
                );
                r.done = None;
                r.next_attempt = now;
            }
        }
        self.stats.watched_files = manifests.iter().map(|m| m.entries.len() as u64).sum();
        self.stats.watched_bytes = manifests.iter().map(|m| m.bytes).sum();
        self.stats.last_scan_success = self.clock.unix();
        let roots: Vec<(&[u8], &Manifest)> = self
            .labels
            .iter()
            .map(|l| l.as_slice())
            .zip(&manifests)
            .collect();
        let new = State {
            digest: state_digest(&roots),
            manifests,
        };
        self.record_digests(&new);
        if log::enabled(log::Level::Debug) {
            let files: usize = new.manifests.iter().map(|m| m.entries.len()).sum();
            log::debug(
                "scanned",
                &[
                    ("digest", &self.settings.shown(&new.digest)),
                    ("files", &files),
                    ("took", &format_duration(now - start)),
                ],
            );
        }
        let Some(current) = &self.current else {
            return self.start(new);
        };
        if self.settings.settle.is_zero() {
            if new.digest != current.digest {
                self.apply(new, now);
            }
            return;
        }
        let settle = self.settings.settle;
        match self.settling.take() {
            None if new.digest == current.digest => {}
            None => {
                log::debug(
                    "change seen, waiting for it to settle",
                    &[("digest", &self.settings.shown(&new.digest))],
                );
                self.settling = Some(Settling {
                    candidate: new.digest,
                    since: now,
                });
                self.next_scan = now + settle;
            }
            Some(_) if new.digest == current.digest => {
                log::debug("content is back to the delivered state", &[]);
            }
            Some(s) if new.digest == s.candidate || now - s.since >= settle * 10 => {
                self.apply(new, now)
            }
            Some(s) => {
                self.settling = Some(Settling {
                    candidate: new.digest,
                    since: s.since,
                });
                self.next_scan = now + settle;
            }
        }
    }

    fn start(&mut self, new: State) {
        let names: Vec<&str> = self.targets.iter().map(|t| t.target.name()).collect();
        let data_check = self
            .probe
            .as_ref()
            .map_or("off".to_string(), |p| format_duration(p.every));
        log::info(
            "hashreload started",
            &[
                ("version", &VERSION),
                ("digest", &self.settings.shown(&new.digest)),
                ("interval", &format_duration(self.settings.interval)),
                ("data_check", &data_check),
                ("targets", &names.join(",")),
            ],
        );
        for (i, (label, m)) in self.labels.iter().zip(&new.manifests).enumerate() {
            let digest = digest::shown(&m.digest, self.settings.secret(i));
            log::info(
                "watching",
                &[
                    ("root", &String::from_utf8_lossy(label)),
                    ("files", &m.entries.len()),
                    ("digest", &digest),
                ],
            );
        }
        let recorded = match self.state_file.as_deref().map(state::read).transpose() {
            Ok(r) => r.flatten(),
            Err(e) => {
                log::warn("state file unreadable, ignoring it", &[("error", &e)]);
                None
            }
        };
        let now = self.clock.unix();
        for (t, stats) in self.targets.iter_mut().zip(&mut self.stats.targets) {
            // A digest recorded before a restart says what this target really has.
            t.acked = match recorded
                .as_deref()
                .and_then(|r| state::lookup(r, t.target.name()))
            {
                Some(d) => Some(d),
                None if self.settings.reload_on_start => None,
                None => Some(new.digest),
            };
            stats.acked = t.acked.filter(|_| !self.settings.hides());
            if t.acked != Some(new.digest) {
                stats.pending_since = now;
                if t.acked.is_some() {
                    log::info(
                        "content changed while stopped, delivering",
                        &[
                            ("target", &t.target.name()),
                            (
                                "recorded",
                                &self.settings.shown(&t.acked.unwrap_or_default()),
                            ),
                        ],
                    );
                }
            }
        }
        self.current = Some(new);
        self.save_state();
    }

    fn apply(&mut self, new: State, now: Instant) {
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        if let Some(old) = &self.current {
            for (o, n) in old.manifests.iter().zip(&new.manifests) {
                let (a, c, r) = diff(&o.entries, &n.entries);
                added += a;
                changed += c;
                removed += r;
            }
            log::info(
                "content changed",
                &[
                    ("old", &self.settings.shown(&old.digest)),
                    ("new", &self.settings.shown(&new.digest)),
                    ("added", &added),
                    ("changed", &changed),
                    ("removed", &removed),
                ],
            );
        }
        self.stats.changes += 1;
        if let Some(r) = &mut self.rendering {
            r.backoff = self.settings.retry_interval;
            r.next_attempt = now;
        }
        let unix = self.clock.unix();
        for (t, stats) in self.targets.iter_mut().zip(&mut self.stats.targets) {
            // Held content (`--expect`) becomes pending when the gate approves it.
            if t.acked == Some(new.digest) || !self.approved {
                stats.pending_since = 0.0;
                continue;
            }
            t.backoff = self.settings.retry_interval;
            t.next_attempt = now;
            if stats.pending_since == 0.0 {
                stats.pending_since = unix;
            }
        }
        self.current = Some(new);
    }

    /// Renders the current state if it has not rendered and an attempt is due. A failure leaves
    /// the previous output in place and holds deliveries back: the server would only reread it.
    fn render(&mut self) {
        let Some(digest) = self.digest().filter(|_| self.approved) else {
            return;
        };
        let now = self.clock.now();
        let Some(r) = self.rendering.as_mut() else {
            return;
        };
        if r.done == Some(digest) || now < r.next_attempt {
            return;
        }
        let result = (r.run)();
        let end = self.clock.now();
        let stats = self.stats.render.get_or_insert_with(RenderStats::default);
        stats.attempts += 1;
        match result {
            Ok(out) => {
                log::info(
                    "config rendered",
                    &[
                        ("digest", &short(&out.digest)),
                        ("bytes", &out.bytes),
                        ("written", &out.written),
                        ("took", &format_duration(end - now)),
                    ],
                );
                for name in out.unset_names {
                    if !r.logged_unset.contains(&name) {
                        warn_unset(&name);
                        r.logged_unset.push(name);
                    }
                }
                stats.unset = out.unset;
                stats.failing = false;
                stats.output = Some((digest::hex(&out.digest), out.bytes));
                r.done = Some(digest);
                r.failures = 0;
                r.backoff = self.settings.retry_interval;
            }
            Err(e) => {
                stats.failures += 1;
                stats.failing = true;
                r.failures += 1;
                let wait = self.settings.retry_wait(&mut r.backoff, &mut self.rng);
                r.next_attempt = end + wait;
                log::warn(
                    "config render failed, keeping the previous output and holding the reload",
                    &[
                        ("error", &e),
                        ("failures", &r.failures),
                        ("retry_in", &format_duration(wait)),
                    ],
                );
            }
        }
        self.progressed();
    }

    fn deliver(&mut self) {
        if self.rendering.as_ref().is_some_and(|r| !self.rendered(r)) {
            return;
        }
        let Some(current) = self.current.as_ref().filter(|_| self.approved) else {
            return;
        };
        let digest = current.digest;
        let hides = self.settings.hides();
        for i in 0..self.targets.len() {
            let now = self.clock.now();
            let t = &mut self.targets[i];
            if t.acked == Some(digest) || now < t.next_attempt {
                continue;
            }
            // Made only for an attempt: this runs at every tick.
            let (hex, shown) = (self.settings.told(&digest), self.settings.shown(&digest));
            let result = t.target.deliver(&hex);
            let end = self.clock.now();
            let took = format_duration(end - now);
            let unix = self.clock.unix();
            let stats = &mut self.stats.targets[i];
            stats.observe(result.is_ok(), (end - now).as_secs_f64(), unix);
            if result.is_ok() {
                stats.pending_since = 0.0;
            }
            match result {
                Ok(detail) => {
                    log::info(
                        "reload delivered",
                        &[
                            ("target", &t.target.name()),
                            ("result", &detail),
                            ("duration", &took),
                            ("digest", &shown),
                        ],
                    );
                    t.acked = Some(digest);
                    stats.acked = Some(digest).filter(|_| !hides);
                    t.failures = 0;
                    t.backoff = self.settings.retry_interval;
                    self.save_state();
                }
                Err(error) => {
                    t.failures += 1;
                    let wait = self.settings.retry_wait(&mut t.backoff, &mut self.rng);
                    t.next_attempt = end + wait;
                    log::warn(
                        "reload failed, will retry",
                        &[
                            ("target", &t.target.name()),
                            ("error", &error),
                            ("duration", &took),
                            ("digest", &shown),
                            ("failures", &t.failures),
                            ("retry_in", &format_duration(wait)),
                        ],
                    );
                }
            }
            self.progressed();
        }
    }
}

/// A `$(NAME)` left as written in the rendered config: its name only, never its surroundings.
pub fn warn_unset(name: &str) {
    log::warn(
        "config refers to an unset environment variable, left as written",
        &[("variable", &name)],
    );
}

/// `--once`: each pending target gets up to `attempts` tries on the usual backoff. True when
/// every pending target succeeded.
pub fn deliver_once<C: Clock, T: Deliver>(
    clock: &C,
    targets: &mut [T],
    pending: &[bool],
    digest: &Hash,
    attempts: u32,
    settings: &Settings,
) -> bool {
    let hex = settings.told(digest);
    let mut rng = u64::from(std::process::id()) | 1;
    let mut all = true;
    for (t, _) in targets.iter_mut().zip(pending).filter(|(_, p)| **p) {
        let mut backoff = settings.retry_interval;
        for attempt in 1..=attempts {
            let start = clock.now();
            let result = t.deliver(&hex);
            let took = format_duration(clock.now() - start);
            match result {
                Ok(detail) => {
                    log::info(
                        "reload delivered",
                        &[
                            ("target", &t.name()),
                            ("result", &detail),
                            ("duration", &took),
                        ],
                    );
                    break;
                }
                Err(error) if attempt < attempts => {
                    let wait = settings.retry_wait(&mut backoff, &mut rng);
                    log::warn(
                        "reload failed, will retry",
                        &[
                            ("target", &t.name()),
                            ("error", &error),
                            ("attempt", &attempt),
                            ("retry_in", &format_duration(wait)),
                        ],
                    );
                    clock.sleep(wait);
                }
                Err(error) => {
                    log::error(
                        "reload failed, giving up",
                        &[
                            ("target", &t.name()),
                            ("error", &error),
                            ("attempts", &attempts),
                        ],
                    );
                    all = false;
                }
            }
        }
    }
    all
}

/// Up to 10% less than `d`, so retries of many sidecars spread out and never exceed the cap.
fn jitter(rng: &mut u64, d: Duration) -> Duration {
    // xorshift64: enough to spread retries, and no dependency.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    d.mul_f64(1.0 - (*rng % 1000) as f64 / 10_000.0)
}

/// Counts files added, changed and removed between two sorted manifests.
fn diff(old: &[Entry], new: &[Entry]) -> (usize, usize, usize) {
    let (mut i, mut j) = (0, 0);
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.path == n.path => {
                changed += usize::from(o.hash != n.hash);
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o.path < n.path => {
                removed += 1;
                i += 1;
            }
            (Some(_), None) => {
                removed += 1;
                i += 1;
            }
            _ => {
                added += 1;
                j += 1;
            }
        }
    }
    (added, changed, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Failure;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// What a fake target was sent, and when.
    type Sent = Rc<RefCell<Vec<(Instant, String)>>>;

    #[derive(Clone)]
    struct FakeClock(Rc<Cell<Instant>>, Instant);
    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d)
        }
        /// 1000 s after the epoch at the start.
        fn unix(&self) -> f64 {
            1000.0 + (self.0.get() - self.1).as_secs_f64()
        }
    }

    /// Answers from a script (true = success; success once the script runs out) and records
    /// every digest it was sent, with the time.
    struct FakeTarget {
        name: &'static str,
        script: Vec<bool>,
        got: Sent,
        clock: FakeClock,
    }
    impl Deliver for FakeTarget {
        fn name(&self) -> &str {
            self.name
        }
        fn deliver(&mut self, digest: &str) -> Result<String, Failure> {
            self.got
                .borrow_mut()
                .push((self.clock.now(), digest.to_string()));
            let ok = if self.script.is_empty() {
                true
            } else {
                self.script.remove(0)
            };
            if ok {
                Ok("ok".into())
            } else {
                Err(Failure("HTTP 500".into()))
            }
        }
    }

    fn content(s: &str) -> Vec<Manifest> {
        vec![Manifest::new(vec![Entry {
            path: b"a".to_vec(),
            hash: digest::Hasher::default().hash(&mut s.as_bytes()).unwrap().0,
        }])]
    }

    struct World {
        clock: FakeClock,
        files: Rc<RefCell<Option<Vec<Manifest>>>>,
        got: Vec<Sent>,
        t0: Instant,
    }

    fn settings() -> Settings {
        Settings {
            interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            settle: Duration::ZERO,
            reload_on_start: false,
            secret_roots: Vec::new(),
        }
    }

    type TestPoller =
        Poller<FakeClock, Box<dyn FnMut() -> Result<Vec<Manifest>, ScanError>>, FakeTarget>;

    fn world(scripts: Vec<Vec<bool>>, settings: Settings) -> (World, TestPoller) {
        let t0 = Instant::now();
        let clock = FakeClock(Rc::new(Cell::new(t0)), t0);
        let files = Rc::new(RefCell::new(Some(content("v1"))));
        let f = files.clone();
        let torn = || ScanError::Unstable(PathBuf::from("/r"));
        let scan: Box<dyn FnMut() -> Result<Vec<Manifest>, ScanError>> =
            Box::new(move || f.borrow().clone().ok_or_else(torn));
        let mut got = Vec::new();
        let targets = scripts
            .into_iter()
            .enumerate()
            .map(|(i, script)| {
                let g = Rc::new(RefCell::new(Vec::new()));
                got.push(g.clone());
                FakeTarget {
                    name: ["first", "second"][i],
                    script,
                    got: g,
                    clock: clock.clone(),
                }
            })
            .collect();
        let p = Poller::new(clock.clone(), scan, vec![b"/r".to_vec()], targets, settings);
        (
            World {
                clock,
                files,
                got,
                t0,
            },
            p,
        )
    }

    impl World {
        fn set(&self, s: &str) {
            *self.files.borrow_mut() = Some(content(s));
        }
        /// Runs the loop as `run` would, until `until` after the start.
        fn run(&self, p: &mut TestPoller, until: Duration) {
            for _ in 0..10_000 {
                let wake = p.tick();
                if wake > self.t0 + until {
                    self.clock.0.set(self.t0 + until);
                    return;
                }
                self.clock.0.set(wake.max(self.clock.now()));
            }
            panic!("the loop never went to sleep");
        }
        fn sent(&self, i: usize) -> Vec<String> {
            self.got[i]
                .borrow()
                .iter()
                .map(|(_, d)| d[..12].to_string())
                .collect()
        }
        fn times(&self, i: usize) -> Vec<Duration> {
            self.got[i]
                .borrow()
                .iter()
                .map(|(t, _)| *t - self.t0)
                .collect()
        }
    }

    fn short_of(s: &str) -> String {
        short(&content(s)[0].digest)
    }

    #[test]
    fn delivers_a_change_once_and_nothing_at_start() {
        let (w, mut p) = world(vec![vec![]], settings());
        w.run(&mut p, Duration::from_secs(3));
        assert!(w.sent(0).is_empty(), "no reload at start by default");
        w.set("v2");
        w.run(&mut p, Duration::from_secs(10));
        assert_eq!(w.sent(0), [short_of("v2")]);
        assert_eq!(p.pending(), 0);
    }

    fn digest_of(s: &str) -> Hash {
        content(s)[0].digest
    }

    #[test]
    fn held_content_is_neither_delivered_nor_pending_until_approved() {
        let (w, p) = world(vec![vec![]], settings());
        let mut p = p.with_gate(Expect::Digest(digest_of("v2")));
        w.run(&mut p, Duration::from_secs(3));
        // The first scan counts as acknowledged, approved or not; it is held all the same.
        assert_eq!(p.stats().approved, Some(false));
        assert_eq!(p.stats().targets[0].acked, Some(digest_of("v1")));
        w.set("v3");
        w.run(&mut p, Duration::from_secs(10));
        assert!(w.sent(0).is_empty(), "unapproved content delivered");
        assert_eq!(p.pending(), 0, "held is not pending");
        assert_eq!(p.stats().targets[0].pending_since, 0.0);
        assert_eq!(p.stats().content_digest, Some(digest_of("v3")));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(12));
        assert_eq!(w.sent(0), [short_of("v2")]);
        assert_eq!(p.stats().approved, Some(true));
        assert_eq!(p.stats().targets[0].acked, Some(digest_of("v2")));
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn a_new_approved_manifest_releases_held_content() {
        let dir = std::env::temp_dir().join(format!("hashreload-poll-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("approved");
        let text = |v: &str| content(v)[0].text();
        std::fs::write(&file, text("v1")).unwrap();
        let (w, p) = world(vec![vec![false]], settings());
        let mut p = p.with_gate(Expect::Manifest(text("v1"), file.clone()));
        w.run(&mut p, Duration::from_secs(2));
        assert_eq!(p.stats().approved, Some(true));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(5));
        assert!(w.sent(0).is_empty());
        assert_eq!(p.stats().approved, Some(false));
        std::fs::write(&file, text("v2")).unwrap();
        // Released at the next full scan; the first attempt fails and is retried: still pending.
        w.run(&mut p, Duration::from_secs(6) + Duration::from_millis(500));
        assert_eq!(w.sent(0), [short_of("v2")]);
        assert_eq!(p.pending(), 1);
        assert!(p.stats().targets[0].pending_since > 0.0);
        w.run(&mut p, Duration::from_secs(9));
        assert_eq!(w.sent(0), [short_of("v2"), short_of("v2")]);
        assert_eq!(p.pending(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_digest_series_follow_scans_and_acknowledgements() {
        let (w, mut p) = world(
            vec![vec![]],
            Settings {
                reload_on_start: true,
                ..settings()
            },
        );
        assert_eq!(p.stats().last_scan_success, 0.0);
        assert_eq!(p.stats().interval_seconds, 1.0);
        w.run(&mut p, Duration::from_millis(10));
        let s = p.stats();
        assert_eq!(s.content_digest, Some(digest_of("v1")));
        assert_eq!(s.root_digests, [("/r".into(), digest_of("v1"))]);
        assert_eq!(s.last_scan_success, 1000.0);
        assert_eq!(
            s.targets[0].acked,
            Some(digest_of("v1")),
            "delivered at start"
        );
        assert_eq!(s.approved, None, "no --expect, no approval series");
        w.set("v2");
        w.run(&mut p, Duration::from_secs(3));
        assert_eq!(p.stats().targets[0].acked, Some(digest_of("v2")));
        assert_eq!(p.stats().last_scan_success, 1003.0);
    }

    #[test]
    fn a_secret_root_hides_every_digest() {
        let (w, mut p) = world(
            vec![vec![]],
            Settings {
                secret_roots: vec![true],
                ..settings()
            },
        );
        w.run(&mut p, Duration::from_secs(1));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(3));
        let got: Vec<String> = w.got[0].borrow().iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(got, [""], "a delivery, without the digest");
        let s = p.stats();
        assert_eq!((s.content_digest, s.targets[0].acked), (None, None));
        assert!(s.root_digests.is_empty());
        assert_eq!(s.changes, 1);
    }

    #[test]
    fn reload_on_start_delivers_the_first_scan() {
        let (w, mut p) = world(
            vec![vec![]],
            Settings {
                reload_on_start: true,
                ..settings()
            },
        );
        w.run(&mut p, Duration::from_secs(3));
        assert_eq!(w.sent(0), [short_of("v1")]);
    }

    /// A renderer that fails while `broken` holds, and counts its runs.
    fn renderer(
        broken: Rc<Cell<bool>>,
        runs: Rc<Cell<u32>>,
    ) -> impl FnMut() -> Result<Outcome, RenderError> {
        move || {
            runs.set(runs.get() + 1);
            match broken.get() {
                true => Err(RenderError(
                    "--config-file /c.gz: truncated gzip data".into(),
                )),
                false => Ok(Outcome {
                    digest: [7; 32],
                    bytes: 3,
                    written: true,
                    unset: 2,
                    unset_names: vec!["SHARD".into()],
                }),
            }
        }
    }

    #[test]
    fn held_content_is_not_rendered() {
        let (broken, runs) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
        let (w, p) = world(vec![vec![]], settings());
        let gate = Expect::Digest(digest_of("v1"));
        let mut p = p
            .with_render(renderer(broken, runs.clone()), || false)
            .with_gate(gate);
        w.run(&mut p, Duration::from_secs(2));
        assert_eq!(runs.get(), 1, "the approved first state renders");
        w.set("v2");
        w.run(&mut p, Duration::from_secs(6));
        assert_eq!(runs.get(), 1, "held content rendered");
        assert!(w.sent(0).is_empty());
        // Back to the approved state, whose render is still the output: nothing to do.
        w.set("v1");
        w.run(&mut p, Duration::from_secs(8));
        assert_eq!(runs.get(), 1);
        assert_eq!(p.stats().approved, Some(true));
    }

    #[test]
    fn a_state_is_delivered_only_once_it_rendered() {
        let (broken, runs) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
        let (w, p) = world(
            vec![vec![]],
            Settings {
                reload_on_start: true,
                ..settings()
            },
        );
        let stale = Rc::new(Cell::new(false));
        let stale_now = stale.clone();
        let mut p = p.with_render(renderer(broken.clone(), runs.clone()), move || {
            stale_now.replace(false)
        });
        w.run(&mut p, Duration::from_secs(3));
        assert_eq!(
            (runs.get(), w.sent(0)),
            (1, vec![short_of("v1")]),
            "rendered once, then reloaded at start"
        );
        let r = p.stats().render.clone().unwrap();
        assert_eq!((r.attempts, r.failures, r.unset), (1, 0, 2));
        assert_eq!(r.output, Some((digest::hex(&[7; 32]), 3)));
        // A broken input: no reload, retried on the backoff, counted.
        broken.set(true);
        w.set("v2");
        w.run(&mut p, Duration::from_secs(20));
        assert_eq!(
            w.sent(0).len(),
            1,
            "nothing delivered while the render fails"
        );
        assert_eq!(p.pending(), 1);
        let r = p.stats().render.clone().unwrap();
        // At 3.x s, then 1, 2, 4, 8 s later: five attempts by 20 s.
        assert_eq!(
            (r.attempts - 1, r.failures, r.failing),
            (5, 5, true),
            "{r:?}"
        );
        // Fixed: the next change renders at once and is delivered.
        broken.set(false);
        w.set("v3");
        let before = runs.get();
        w.run(&mut p, Duration::from_secs(22));
        assert_eq!(runs.get(), before + 1);
        assert_eq!(w.sent(0), [short_of("v1"), short_of("v3")]);
        assert_eq!(p.stats().render.as_ref().unwrap().failures, 5);
        // Nothing changes: no render, no reload.
        w.run(&mut p, Duration::from_secs(40));
        assert_eq!((runs.get(), w.sent(0).len()), (before + 1, 2));
        // The output was removed behind our back: the next full scan renders it again, and
        // nothing is delivered (the content did not change).
        stale.set(true);
        w.run(&mut p, Duration::from_secs(42));
        assert_eq!((runs.get(), w.sent(0).len()), (before + 2, 2));
    }

    #[test]
    fn retries_on_a_capped_jittered_backoff_until_success() {
        let (w, mut p) = world(vec![vec![false; 6]], settings());
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(60));
        assert_eq!(w.sent(0).len(), 7, "six failures, then the success");
        assert!(w.sent(0).iter().all(|d| *d == short_of("v2")));
        let t = w.times(0);
        let gaps: Vec<f64> = t.windows(2).map(|g| (g[1] - g[0]).as_secs_f64()).collect();
        // 1, 2, 4, 8, 8, 8 seconds, each up to 10% shorter.
        for (gap, want) in gaps.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!(*gap <= want && *gap >= want * 0.9, "{gaps:?}");
        }
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn a_failing_target_never_holds_back_another() {
        let (w, mut p) = world(vec![vec![false; 5], vec![]], settings());
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(60));
        assert_eq!(
            w.sent(1),
            [short_of("v2")],
            "the healthy target got it exactly once"
        );
        assert_eq!(w.sent(0).len(), 6);
        assert_eq!(
            w.times(1)[0],
            w.times(0)[0],
            "both were tried in the same round"
        );
    }

    #[test]
    fn a_newer_change_replaces_the_pending_one_and_resets_the_backoff() {
        let (w, mut p) = world(vec![vec![false; 4]], settings());
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        // Failures at ~1s, ~2s, ~4s, ~8s: the next wait is up to 8s.
        w.run(&mut p, Duration::from_millis(8500));
        assert_eq!(w.sent(0).len(), 4);
        w.set("v3");
        w.run(&mut p, Duration::from_millis(9600));
        assert_eq!(
            w.sent(0)[4],
            short_of("v3"),
            "delivered at the next scan, not after 8s"
        );
        assert_eq!(w.sent(0).len(), 5);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn content_back_to_the_acknowledged_state_is_not_pending() {
        let s = Settings {
            retry_interval: Duration::from_secs(5),
            ..settings()
        };
        let (w, mut p) = world(vec![vec![false; 100]], s);
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_millis(1500));
        assert_eq!(p.pending(), 1);
        w.set("v1");
        w.run(&mut p, Duration::from_secs(30));
        assert_eq!(p.pending(), 0);
        assert_eq!(w.sent(0), [short_of("v2")], "v1 was already acknowledged");
    }

    #[test]
    fn scan_errors_keep_the_last_state() {
        let (w, mut p) = world(vec![vec![]], settings());
        w.run(&mut p, Duration::from_millis(500));
        *w.files.borrow_mut() = None;
        w.run(&mut p, Duration::from_secs(5));
        assert!(w.sent(0).is_empty());
        assert_eq!(p.digest().map(|d| short(&d)), Some(short_of("v1")));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(7));
        assert_eq!(w.sent(0), [short_of("v2")]);
    }

    #[test]
    fn a_failed_scan_is_retried_after_the_retry_interval() {
        let s = Settings {
            interval: Duration::from_secs(10),
            ..settings()
        };
        let (w, mut p) = world(vec![vec![]], s);
        w.run(&mut p, Duration::from_millis(500));
        *w.files.borrow_mut() = None;
        w.run(&mut p, Duration::from_millis(10_500));
        assert_eq!(p.stats().poll_errors, 1, "the scan at 10 s failed");
        w.set("v2");
        w.run(&mut p, Duration::from_millis(11_500));
        assert_eq!(w.sent(0), [short_of("v2")], "scanned again 1 s later");
    }

    #[test]
    fn settle_waits_for_two_agreeing_scans() {
        let s = Settings {
            settle: Duration::from_secs(2),
            ..settings()
        };
        let (w, mut p) = world(vec![vec![]], s);
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_millis(2900));
        assert!(w.sent(0).is_empty(), "seen at 1s, not yet confirmed");
        w.run(&mut p, Duration::from_millis(3100));
        assert_eq!(w.sent(0), [short_of("v2")]);
    }

    #[test]
    fn settle_delivers_the_latest_after_ten_times_when_it_keeps_changing() {
        let s = Settings {
            settle: Duration::from_secs(1),
            ..settings()
        };
        let (w, mut p) = world(vec![vec![]], s);
        w.run(&mut p, Duration::from_millis(500));
        for i in 0..12 {
            w.set(&format!("busy{i}"));
            w.run(&mut p, Duration::from_millis(1500 + 1000 * i));
        }
        let sent = w.times(0);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0] <= Duration::from_millis(1000 + 10_000), "{sent:?}");
    }

    #[test]
    fn settle_ignores_a_change_that_reverts() {
        let s = Settings {
            settle: Duration::from_secs(2),
            ..settings()
        };
        let (w, mut p) = world(vec![vec![]], s);
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_millis(1500));
        w.set("v1");
        w.run(&mut p, Duration::from_secs(10));
        assert!(w.sent(0).is_empty());
    }

    #[test]
    fn records_polls_changes_attempts_and_pending_time() {
        let (w, mut p) = world(vec![vec![false, false]], settings());
        w.run(&mut p, Duration::from_millis(500));
        assert_eq!(
            (p.stats().polls, p.stats().changes, p.stats().watched_files),
            (1, 0, 1)
        );
        w.set("v2");
        w.run(&mut p, Duration::from_millis(2500));
        let t = &p.stats().targets[0];
        assert_eq!(t.name, "first");
        assert_eq!((t.failures, t.successes), (2, 0));
        assert!(!t.last_successful);
        assert_eq!(
            t.pending_since, 1001.0,
            "pending since the change was seen at 1s"
        );
        w.run(&mut p, Duration::from_secs(10));
        let t = &p.stats().targets[0];
        assert_eq!((t.failures, t.successes, t.pending_since), (2, 1, 0.0));
        assert!(t.last_successful && t.last_success > 1003.0);
        assert_eq!(p.stats().changes, 1);
        assert_eq!(p.stats().poll_errors, 0);
    }

    #[test]
    fn a_probe_token_change_scans_at_once() {
        let s = Settings {
            interval: Duration::from_secs(3600),
            ..settings()
        };
        let (w, p) = world(vec![vec![]], s);
        let token = Rc::new(Cell::new(1u64));
        let t = token.clone();
        let mut p = p.with_probe(Duration::from_millis(25), move || t.get());
        w.run(&mut p, Duration::from_millis(500));
        w.set("v2");
        w.run(&mut p, Duration::from_secs(5));
        assert!(
            w.sent(0).is_empty(),
            "no token change, no scan before the hour"
        );
        token.set(2);
        w.run(&mut p, Duration::from_millis(5030));
        assert_eq!(w.sent(0), [short_of("v2")]);
        assert!(
            w.times(0)[0] <= Duration::from_millis(5025),
            "{:?}",
            w.times(0)
        );
    }

    #[test]
    fn the_data_check_runs_once_per_period_between_full_scans() {
        let s = Settings {
            interval: Duration::from_secs(10),
            ..settings()
        };
        let (w, p) = world(vec![vec![]], s);
        let checks = Rc::new(Cell::new(0u32));
        let c = checks.clone();
        let mut p = p.with_probe(Duration::from_millis(200), move || {
            c.set(c.get() + 1);
            1
        });
        w.run(&mut p, Duration::from_millis(100));
        checks.set(0);
        // 60 s: 6 full scans, each taking its own token, and 50 checks in each 10 s between.
        w.run(&mut p, Duration::from_millis(60_100));
        assert_eq!(checks.get(), 6 * 50, "{} checks", checks.get());
        assert_eq!(p.stats().polls, 7);
    }

    #[test]
    fn counts_added_changed_removed() {
        let e = |p: &str, h: u8| Entry {
            path: p.as_bytes().to_vec(),
            hash: [h; 32],
        };
        let old = [e("a", 1), e("b", 1), e("c", 1)];
        let new = [e("a", 1), e("b", 2), e("d", 1), e("e", 1)];
        assert_eq!(diff(&old, &new), (2, 1, 1));
        assert_eq!(diff(&[], &new), (4, 0, 0));
        assert_eq!(diff(&old, &[]), (0, 0, 3));
    }

    #[test]
    fn jitter_stays_within_ten_percent_below() {
        let mut rng = 42;
        for _ in 0..1000 {
            let j = jitter(&mut rng, Duration::from_secs(10));
            assert!(j <= Duration::from_secs(10) && j >= Duration::from_secs(9));
        }
    }
}
