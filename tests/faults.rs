//! The bad-input catalogue and resource limits: each case has an asserted outcome, either a
//! clear usage error at start (exit 2, `tests/process.rs`) or, at run time, a log line and a loop
//! that goes on and still delivers the right content.
//!
//! Elsewhere in the catalogue: FIFO, `/dev/zero`, loops and a link to `/` in a watched daemon
//! (`kubelet.rs`), an unreadable file as nobody (`kubelet.rs`), a root that disappears and
//! returns (`kubelet.rs`), names with newlines, spaces and invalid UTF-8 (`oneshot.rs`), header
//! values with CR or LF and invalid URLs, schemes, durations, methods, statuses and signals
//! (`process.rs`), 10,000 polls without growth (`server.rs`).

mod common;
use common::*;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn digest_of(dir: &str) -> String {
    let (code, out) = run_stdout(&["digest", "--sum", dir]);
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().next().unwrap().to_string()
}

/// Runs a one-shot `hashreload ARGS` (bounded by coreutils' `timeout`); returns the exit code and
/// stdout followed by stderr.
fn run_stdout(args: &[&str]) -> (i32, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn specials_loops_and_devices_are_skipped_without_being_opened() {
    let t = Tmp::new();
    t.write("d/a.yml", "a");
    t.write("d/sub/b.yml", "b");
    let fifo = std::ffi::CString::new(t.path("d/fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _socket = std::os::unix::net::UnixListener::bind(t.path("d/sock")).unwrap();
    symlink("/dev/zero", t.path("d/zero")).unwrap();
    symlink("/dev/urandom", t.path("d/urandom")).unwrap();
    symlink("/", t.path("d/root")).unwrap();
    symlink("..", t.path("d/sub/up")).unwrap();
    symlink("loop2", t.path("d/loop1")).unwrap();
    symlink("loop1", t.path("d/loop2")).unwrap();
    symlink("missing", t.path("d/dangling")).unwrap();
    let (code, out) = run_stdout(&["digest", t.path("d").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let names: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("level="))
        .map(|l| &l[66..])
        .collect();
    assert_eq!(names, ["a.yml", "sub/b.yml"], "{out}");
    assert!(out.contains("symlink loop"), "{out}");
    let plain = Tmp::new();
    plain.write("a.yml", "a");
    plain.write("sub/b.yml", "b");
    assert_eq!(
        digest_of(t.path("d").to_str().unwrap()),
        coreutils_digest_of_dir(&plain.0)
    );
}

#[test]
fn a_directory_replaced_by_a_file_and_back() {
    let t = Tmp::new();
    t.write("d/conf/a.yml", "a");
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("d")).url(r.url("/")).start();
    fs::remove_dir_all(t.path("d/conf")).unwrap();
    t.write("d/conf", "now a file");
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&payload(&[("conf", "now a file")]))
    );
    fs::remove_file(t.path("d/conf")).unwrap();
    t.write("d/conf/a.yml", "a2");
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    assert_eq!(
        r.digests()[1],
        coreutils_digest(&payload(&[("conf/a.yml", "a2")]))
    );
}

#[test]
fn a_kubelet_root_deleted_and_recreated_between_full_scans() {
    // An hour between full scans: only the `..data` check sees the root go and come back.
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "1")]));
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol"))
        .url(r.url("/"))
        .interval("1h")
        .start();
    fs::remove_dir_all(t.path("vol")).unwrap();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests()[0], coreutils_digest(&Payload::new()));
    let mut v = Volume::new(t.path("vol"));
    let new = payload(&[("a.yml", "2"), ("b.yml", "3")]);
    v.write(&new);
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    assert_eq!(r.digests()[1], coreutils_digest(&new));
    let newer = payload(&[("a.yml", "4")]);
    v.write(&newer);
    assert!(wait_until(10, || r.count() == 3), "{}", p.log());
    assert_eq!(r.digests()[2], coreutils_digest(&newer));
}

#[test]
fn files_truncated_and_grown_while_hashed() {
    let t = Tmp::new();
    fs::create_dir(t.path("d")).unwrap();
    // Sparse, so big files cost no disk; hashing them takes a while.
    let a = fs::File::create(t.path("d/a.bin")).unwrap();
    a.set_len(300 << 20).unwrap();
    let b = fs::File::create(t.path("d/b.bin")).unwrap();
    b.set_len(1 << 20).unwrap();
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("d"))
        .url(r.url("/"))
        .interval("10ms")
        .start();
    let scans = p.count("msg=scanned");
    for i in 0..20u64 {
        a.set_len(if i % 2 == 0 { 10 } else { 300 << 20 }).unwrap();
        b.set_len((2 + i) << 20).unwrap();
        thread::sleep(Duration::from_millis(15));
    }
    a.set_len(10).unwrap();
    std::os::unix::fs::FileExt::write_at(&b, b"tail", 21 << 20).unwrap();
    let mut content = vec![0u8; 21 << 20];
    content.extend_from_slice(b"tail");
    let want = sha256_hex(
        format!(
            "{}  a.bin\n{}  b.bin\n",
            sha256_hex(&[0; 10]),
            sha256_hex(&content)
        )
        .as_bytes(),
    );
    assert!(
        wait_until(20, || r.digests().last().is_some_and(|d| *d == want)),
        "{}",
        p.log()
    );
    assert!(p.count("msg=scanned") > scans + 5, "{}", p.log());
    assert_eq!(p.count("level=error"), 0, "{}", p.log());
}

#[test]
fn a_hundred_thousand_small_files() {
    let t = Tmp::new();
    for i in 0..100_000 {
        if i % 1000 == 0 {
            fs::create_dir(t.path(&format!("d/{}", i / 1000))).unwrap_or_else(|_| {
                fs::create_dir_all(t.path(&format!("d/{}", i / 1000))).unwrap()
            });
        }
        fs::write(t.path(&format!("d/{}/f{i}", i / 1000)), i.to_string()).unwrap();
    }
    let d = t.path("d");
    assert_eq!(digest_of(d.to_str().unwrap()), coreutils_digest_of_dir(&d));
    let r = Receiver::start(vec![]);
    let p = Run::new(&d).url(r.url("/")).interval("100ms").start();
    p.wait_for("files=100000");
    t.write("d/7/f7777", "changed");
    assert!(wait_until(30, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests()[0], coreutils_digest_of_dir(&d));
}

#[test]
#[ignore = "needs root and setpriv"]
fn an_unreadable_directory_as_nobody_is_marked_then_read() {
    need_root();
    need("setpriv");
    let t = Tmp::new();
    t.write("d/ok.yml", "ok");
    t.write("d/private/key.yml", "k");
    let private = t.path("d/private");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o000)).unwrap();
    // The tree must be reachable by nobody.
    fs::set_permissions(&t.0, fs::Permissions::from_mode(0o755)).unwrap();
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("d")).url(r.url("/")).nobody().start();
    assert!(
        p.log().contains("cannot read, listed as unreadable"),
        "{}",
        p.log()
    );
    assert!(p.log().contains("private"), "{}", p.log());
    fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&payload(&[("ok.yml", "ok"), ("private/key.yml", "k")]))
    );
    assert_eq!(p.count("cannot read"), 1, "{}", p.log());
}

/// An endpoint that misbehaves in one way per connection, in order, then answers 204.
fn hostile(behaviours: Vec<&'static str>) -> (u16, Arc<AtomicU32>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (served.clone(), stop.clone());
    thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut script = behaviours.into_iter();
        while !st.load(Ordering::SeqCst) {
            let Ok((conn, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let behaviour = script.next().unwrap_or("ok");
            let (s, st) = (s.clone(), st.clone());
            thread::spawn(move || {
                let _ = read_request(&conn);
                s.fetch_add(1, Ordering::SeqCst);
                let mut conn = conn;
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut keep_writing = |head: &str, chunk: &[u8]| {
                    if conn.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    // Until the client hangs up (or a bound, so the thread always ends).
                    while Instant::now() < deadline && !st.load(Ordering::SeqCst) {
                        if conn.write_all(chunk).is_err() {
                            return;
                        }
                    }
                };
                match behaviour {
                    "huge-error-body" => keep_writing(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1073741824\r\n\r\n",
                        &[b'x'; 65536],
                    ),
                    "huge-ok-body" => keep_writing(
                        "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n",
                        &[b'x'; 65536],
                    ),
                    "endless-headers" => keep_writing(
                        "HTTP/1.1 200 OK\r\n",
                        b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                    ),
                    _ => {
                        let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                    }
                }
            });
        }
    });
    (port, served, stop)
}

#[test]
fn huge_bodies_and_endless_headers_are_read_only_in_part() {
    let t = Tmp::new();
    t.write("d/a.yml", "1");
    let (port, served, stop) = hostile(vec!["huge-error-body", "endless-headers", "huge-ok-body"]);
    let p = Run::new(t.path("d"))
        .url(format!("http://127.0.0.1:{port}/"))
        .args(&["--timeout", "2s", "--retry-interval", "50ms"])
        .start();
    let pid = p.child.id();
    t.write("d/a.yml", "2");
    // The 1 GB error body: a bounded prefix reaches the log, then a retry.
    p.wait_for("HTTP 500: xxxx");
    // Endless headers: refused once they pass ureq's limit, then a retry.
    p.wait_for_n("reload failed", 2);
    // A 2xx with a 1 GB body is a success: the body is not read.
    p.wait_for("reload delivered");
    assert_eq!(served.load(Ordering::SeqCst), 3, "{}", p.log());
    let line = p
        .log()
        .lines()
        .find(|l| l.contains("HTTP 500"))
        .unwrap()
        .to_string();
    assert!(line.len() < 2048, "{line}");
    assert!(footprint(pid).0 < 16 * 1024, "RSS {} kB", footprint(pid).0);
    // The loop goes on: the next change is delivered.
    t.write("d/a.yml", "3");
    assert!(
        wait_until(10, || served.load(Ordering::SeqCst) == 4),
        "{}",
        p.log()
    );
    stop.store(true, Ordering::SeqCst);
}

#[test]
#[ignore = "needs prlimit"]
fn within_ten_descriptors_and_sixteen_mib_of_address_space() {
    need("prlimit");
    // Ten descriptors: stdio and the listener leave six, which held-open scrapes take. Then
    // accept fails (and pauses instead of spinning), scans conclude nothing instead of reporting
    // unreadable files, and once the server drops the idle connections (after 5 s) every change
    // is delivered, in order.
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "0"), ("rules/x/y/z.yml", "z")]));
    let r = Receiver::start(vec![]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut p = Run::new(t.path("vol"))
        .url(r.url("/"))
        .args(&["--listen-address", &listen])
        .under(&["prlimit", "--nofile=10", "--as=16777216", "--"])
        .start();
    let pid = p.child.id();
    let cpu_ticks = || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<u64> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let held: Vec<_> = (0..7)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The change is written only once the server holds every descriptor.
    let fds = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    assert!(wait_until(10, || fds() >= 10), "{} fds\n{}", fds(), p.log());
    let starved = payload(&[("a.yml", "starved"), ("rules/x/y/z.yml", "z")]);
    v.write(&starved);
    p.wait_for("Too many open files");
    // Starved, a scan fails and logs nothing, and no scrape gets in: the loop's wake-ups show
    // that it looked again. It runs on the main thread, which sleeps once between scans (one
    // voluntary context switch each); fifty are about a second at 20 ms.
    let wakes = || proc_status(pid, "voluntary_ctxt_switches");
    let (woken, before, start) = (wakes(), cpu_ticks(), Instant::now());
    assert!(wait_until(4, || wakes() >= woken + 50), "{}", p.log());
    // Clock ticks of 10 ms: a spinning accept would take one every 10 ms, so half the time.
    let (spent, took) = (cpu_ticks() - before, start.elapsed());
    assert!(
        spent * 20 < took.as_millis() as u64,
        "{spent} ticks in {took:?}\n{}",
        p.log()
    );
    assert_eq!(
        r.count(),
        0,
        "nothing is concluded while starved\n{}",
        p.log()
    );
    let mut want = vec![coreutils_digest(&starved)];
    assert!(wait_until(15, || r.count() == 1), "{}", p.log());
    for i in 1..=5 {
        let next = payload(&[("a.yml", &format!("v{i}")), ("rules/x/y/z.yml", "z")]);
        v.write(&next);
        want.push(coreutils_digest(&next));
        assert!(wait_until(10, || r.count() == i + 1), "{}", p.log());
    }
    assert_eq!(r.digests(), want);
    assert_eq!(p.count("unreadable"), 0, "{}", p.log());
    // Logged once per distinct error, not at every 20 ms scan, and its end is logged.
    assert!(p.count("scan failed") <= 5, "{}", p.log());
    assert!(p.count("scanning works again") >= 1, "{}", p.log());
    drop(held);
    assert!(
        wait_until(10, || get(port, "/healthz").0 == 200),
        "{}",
        p.log()
    );
    assert!(p.child.try_wait().unwrap().is_none(), "{}", p.log());
    p.signal(libc::SIGTERM);
}
