//! Randomized kubelet torture: at least 1000 updates written exactly as the kubelet writes them,
//! against an endpoint that randomly fails in every way it can, then a healthy endpoint at the
//! end. The seed is printed and named in every failure; replay one with
//! `HASHRELOAD_TORTURE_SEED=<seed> cargo test --test torture`, and run longer with
//! `HASHRELOAD_TORTURE_UPDATES=<n>`.

mod common;
use common::*;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the flaky endpoint answered one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    Status(u16),
    Reset,
    Hang,
}

/// What the endpoint saw: the digest of each request and its answer, in order.
type Seen = Arc<Mutex<Vec<(String, Answer)>>>;

/// A reload endpoint on 127.0.0.1 that answers 200, 500 or 503, resets the connection, hangs
/// past the client's timeout, or goes down (connection refused) for a while, at random; healthy
/// once `healthy` is set. It ends when `stop` is set.
struct Flaky {
    port: u16,
    seen: Seen,
    healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Flaky {
    fn start(seed: u64) -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let healthy = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, h, st) = (seen.clone(), healthy.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
            let mut listener = Some(listener);
            let mut down_until: Option<Instant> = None;
            while !st.load(Ordering::SeqCst) {
                if let Some(until) = down_until {
                    if Instant::now() < until && !h.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    // Back up on the same port; std sets SO_REUSEADDR.
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                    down_until = None;
                    if listener.is_none() {
                        // Still taken: try again shortly.
                        down_until = Some(Instant::now() + Duration::from_millis(5));
                    }
                    continue;
                }
                let l = listener.as_ref().unwrap();
                l.set_nonblocking(true).unwrap();
                let Ok((conn, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let answer = if h.load(Ordering::SeqCst) {
                    Answer::Ok
                } else {
                    match rng.below(100) {
                        0..=49 => Answer::Ok,
                        50..=61 => Answer::Status(500),
                        62..=73 => Answer::Status(503),
                        74..=85 => Answer::Reset,
                        86..=93 => Answer::Hang,
                        _ => {
                            // Down for a while: this connection is dropped unanswered, and
                            // connections are refused until the listener is back.
                            listener = None;
                            let ms = 20 + rng.below(200);
                            down_until = Some(Instant::now() + Duration::from_millis(ms));
                            Answer::Reset
                        }
                    }
                };
                let (s, st) = (s.clone(), st.clone());
                thread::spawn(move || answer_one(conn, answer, &s, &st));
            }
        });
        Flaky {
            port,
            seen,
            healthy,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<(String, Answer)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer_one(
    conn: TcpStream,
    answer: Answer,
    seen: &Mutex<Vec<(String, Answer)>>,
    stop: &AtomicBool,
) {
    let Some(request) = read_request(&conn) else {
        return;
    };
    let digest = request.digest().to_string();
    if digest.is_empty() {
        return; // not a request of ours (or cut off): nothing to record
    }
    // Recorded before answering: hashreload may act on the answer at once.
    seen.lock().unwrap().push((digest, answer));
    let mut conn = conn;
    match answer {
        Answer::Ok => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Answer::Status(code) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
            );
        }
        Answer::Reset => {
            // SO_LINGER 0: close sends RST instead of FIN.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a linger struct of the right size.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::setsockopt(
                    conn.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
        Answer::Hang => {
            // Past hashreload's --timeout of 150 ms, then closed.
            let end = Instant::now() + Duration::from_millis(250);
            while Instant::now() < end && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The payload of update `n`: one to three edits of `last`, which holds a few small keys,
/// sometimes nested, and one larger file so that scans take long enough for updates to land in
/// the middle of them.
fn random_payload(rng: &mut Rng, last: &Payload, n: u64) -> Payload {
    let mut p = last.clone();
    for _ in 0..1 + rng.below(3) {
        edit(rng, &mut p, n);
    }
    p
}

fn edit(rng: &mut Rng, p: &mut Payload, n: u64) {
    match rng.below(10) {
        // Add a key, sometimes nested.
        0 | 1 => {
            let k = match rng.below(3) {
                0 => format!("rules/r{}.yml", rng.below(20)),
                1 => format!("deep/a/b/k{}.yml", rng.below(5)),
                _ => format!("k{}.yml", rng.below(100)),
            };
            p.insert(k, format!("added {n}").into_bytes());
        }
        // Remove a key (keep at least one).
        2 if p.len() > 2 => {
            let k = p
                .keys()
                .nth(rng.below(p.len() as u64) as usize)
                .unwrap()
                .clone();
            if k != "big.bin" {
                p.remove(&k);
            }
        }
        // Change the big file.
        3 => {
            let size = 64 * 1024 + rng.below(256 * 1024) as usize;
            let mut big = vec![(n % 251) as u8; size];
            big[..8].copy_from_slice(&n.to_le_bytes());
            p.insert("big.bin".into(), big);
        }
        // Change a small key.
        _ => {
            let k = p
                .keys()
                .nth(rng.below(p.len() as u64) as usize)
                .unwrap()
                .clone();
            if k == "big.bin" {
                p.insert("config.yml".into(), format!("v{n}").into_bytes());
            } else {
                p.insert(k, format!("v{n} {}", rng.next()).into_bytes());
            }
        }
    }
}

/// Deletes the old snapshot directory file by file, with pauses, before the kubelet's own
/// `remove_dir_all` finds it empty.
fn delete_slowly(dir: &std::path::Path, rng: &mut Rng) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            delete_slowly(&path, rng);
        } else {
            let _ = fs::remove_file(&path);
            thread::sleep(Duration::from_micros(rng.below(2000)));
        }
    }
}

#[test]
fn a_thousand_random_kubelet_updates_against_a_flaky_endpoint() {
    let seed: u64 = std::env::var("HASHRELOAD_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_125);
    let updates: u64 = std::env::var("HASHRELOAD_TORTURE_UPDATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    eprintln!("torture: seed {seed}, {updates} updates");
    let mut rng = Rng(seed.max(1));

    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    let mut current = payload(&[("config.yml", "v0"), ("rules/a.yml", "a")]);
    current.insert("big.bin".into(), vec![1u8; 256 * 1024]);
    v.write(&current);
    let mut written = vec![current.clone()];

    let endpoint = Flaky::start(seed);
    let url = format!("http://127.0.0.1:{}/-/reload", endpoint.port);
    let vol = t.path("vol");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut p = Run::new(&vol)
        .url(&url)
        // Most swaps are found by the `..data` check, as in production; full scans catch the rest.
        .interval("200ms")
        .args(&["--data-check-interval", "10ms"])
        .args(&["--listen-address", &listen, "--timeout", "150ms"])
        .args(&["--retry-interval", "10ms", "--max-backoff", "100ms"])
        .start();
    let pid = p.child.id();
    let (rss_start, fds_start) = steady_footprint(pid);
    let mut rss_max = rss_start;
    let (mut identical, mut swaps) = (0, 0);
    let mut last_polls = polls(port);
    let started = Instant::now();

    for n in 1..=updates {
        let old = fs::read_link(vol.join("..data")).ok().map(|o| vol.join(o));
        let kind = rng.below(100);
        if kind < 10 {
            // An identical-content rotation (git-sync and scripts do this; no reload allowed).
            v.rotate_identical();
            identical += 1;
        } else if kind < 15 {
            // The kubelet's own no-op: identical payload, nothing swapped.
            assert!(
                !v.write_with(&current, |_| {}),
                "identical content is not swapped"
            );
            identical += 1;
        } else {
            let next = random_payload(&mut rng, &current, n);
            let slow = rng.chance(10);
            let mut pause_rng = Rng(rng.next() | 1);
            let changed = v.write_with(&next, |step| {
                // Small pauses between the kubelet's steps, so scans see every intermediate state.
                if pause_rng.chance(30) {
                    thread::sleep(Duration::from_micros(pause_rng.below(3000)));
                }
                // Now and then long enough for a whole scan and delivery to happen in between.
                if pause_rng.chance(4) {
                    thread::sleep(Duration::from_millis(10 + pause_rng.below(20)));
                }
                if step == Step::Linked && slow {
                    if let Some(old) = &old {
                        delete_slowly(old, &mut pause_rng);
                    }
                }
            });
            if changed {
                swaps += 1;
                written.push(next.clone());
            }
            current = next;
        }
        // Bursts faster than the poll interval, then pauses long enough to be scanned.
        if !rng.chance(40) {
            thread::sleep(Duration::from_micros(rng.below(8000)));
        }
        if n % 100 == 0 {
            assert!(
                p.child.try_wait().unwrap().is_none(),
                "seed {seed}: exited\n{}",
                p.log()
            );
            // Never stalled: it kept scanning since the last look.
            let now = polls(port);
            assert!(now > last_polls, "seed {seed}: no scan for 100 updates");
            last_polls = now;
            rss_max = rss_max.max(footprint(pid).0);
        }
    }
    let driven = started.elapsed();

    // The endpoint turns healthy: the final content must be acknowledged, once.
    endpoint.healthy.store(true, Ordering::SeqCst);
    let digests = coreutils_digests(&written);
    let last = digests.last().unwrap().clone();
    assert_eq!(
        last,
        coreutils_digest(&current),
        "the batch agrees with coreutils_digest"
    );
    let acked = |seen: &[(String, Answer)]| {
        seen.last()
            .is_some_and(|(d, a)| *d == last && *a == Answer::Ok)
    };
    assert!(
        wait_until(30, || acked(&endpoint.seen())),
        "seed {seed}: the final digest {last} was never acknowledged; last seen {:?}\n{}",
        endpoint.seen().last(),
        p.log()
    );
    // Five more scans: nothing more may arrive.
    let requests = endpoint.seen().len();
    let scanned = polls(port);
    assert!(
        wait_until(10, || polls(port) >= scanned + 5.0),
        "seed {seed}\n{}",
        p.log()
    );
    let seen = endpoint.seen();
    assert_eq!(
        seen.len(),
        requests,
        "seed {seed}: requests after the final ack: {:?}",
        &seen[requests..]
    );
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "seed {seed}: exited\n{}",
        p.log()
    );
    assert_eq!(get(port, "/healthz").0, 200, "seed {seed}\n{}", p.log());
    assert!(
        p.count("..data changed, scanning now") > 0,
        "seed {seed}: the data check never fired"
    );

    // Every digest sent was a snapshot really written: nothing torn, nothing mixed.
    let real: HashSet<&String> = digests.iter().collect();
    for (i, (d, _)) in seen.iter().enumerate() {
        assert!(
            real.contains(d),
            "seed {seed}: request {i} carried {d}, which no snapshot had"
        );
    }
    // Never the same digest twice in a row after it was acknowledged: no reload for an
    // identical-content rotation, no repeat of a delivered change.
    for w in seen.windows(2) {
        assert!(
            !(w[0].0 == w[1].0 && w[0].1 == Answer::Ok),
            "seed {seed}: {} was sent again after it was acknowledged",
            w[0].0
        );
    }
    let (rss_end, fds_end) = steady_footprint(pid);
    rss_max = rss_max.max(rss_end);
    assert!(rss_max < 8 * 1024, "seed {seed}: RSS reached {rss_max} kB");
    assert_eq!(fds_end, fds_start, "seed {seed}: descriptors");
    let answers = |a: fn(&Answer) -> bool| seen.iter().filter(|(_, x)| a(x)).count();
    eprintln!(
        "torture: {updates} updates ({swaps} swaps, {identical} identical) in {:.1} s; {} requests: \
         {} ok, {} 5xx, {} reset, {} hung; RSS {rss_start} -> max {rss_max} kB",
        driven.as_secs_f64(),
        seen.len(),
        answers(|a| *a == Answer::Ok),
        answers(|a| matches!(a, Answer::Status(_))),
        answers(|a| *a == Answer::Reset),
        answers(|a| *a == Answer::Hang),
    );
    assert!(swaps >= updates / 2, "seed {seed}: only {swaps} swaps");
    p.signal(libc::SIGTERM);
}
