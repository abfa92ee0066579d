//! Process behaviour: usage errors and exit codes, SIGTERM in every state, PID 1 duties.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn usage_errors_exit_2_with_one_line_and_a_hint() {
    let t = Tmp::new();
    t.write("d/a", b"a");
    let d = t.path("d");
    let d = d.to_str().unwrap();
    let u = "http://127.0.0.1:9/";
    let cases: &[(&[&str], &str)] = &[
        (&[], "--path"),
        (&["-u", u], "--path"),
        (&["-p", "/nonexistent/conf", "-u", u], "/nonexistent/conf"),
        (&["-p", "/dev/null", "-u", u], "/dev/null"),
        (&["-p", d], "nothing to reload"),
        (&["-p", d, "-u", "https://127.0.0.1/"], "--url"),
        (&["-p", d, "-u", "ftp://x/"], "--url"),
        (&["-p", d, "-u", "127.0.0.1:9090"], "--url"),
        (&["-p", d, "-u", u, "--bogus"], "--bogus"),
        (&["-p", d, "-u", u, "-Z"], "-Z"),
        (&["-p", d, "-u", u, "--interval"], "--interval"),
        (&["-p", d, "-u", u, "--interval", "soon"], "--interval"),
        (&["-p", d, "-u", u, "-i", "0"], "--interval"),
        (&["-p", d, "-u", u, "--timeout", "1y"], "--timeout"),
        (
            &["-p", d, "-u", u, "--retry-interval", "x"],
            "--retry-interval",
        ),
        (
            &["-p", d, "-u", u, "--max-backoff", "100ms"],
            "--max-backoff",
        ),
        (&["-p", d, "-u", u, "--settle", "-1s"], "--settle"),
        (&["-p", d, "-u", u, "--status", "2xx"], "--status"),
        (&["-p", d, "-u", u, "-X", "GET POST"], "--method"),
        (&["-p", d, "-u", u, "-H", "X-Token"], "--header"),
        (
            &["-p", d, "-u", u, "-H", "X-A: b\nX-Injected: 1"],
            "--header",
        ),
        (
            &[
                "-p",
                d,
                "-u",
                u,
                "--bearer-token-file",
                "/nonexistent/token",
            ],
            "--bearer-token-file",
        ),
        (&["-p", d, "-u", u, "--log-format", "text"], "--log-format"),
        (&["-p", d, "-u", u, "--log-level", "trace"], "--log-level"),
        (
            &["-p", d, "-u", u, "--reload-on-start=yes"],
            "--reload-on-start",
        ),
        (&["-p", d, "-u", u, "--config-file=/x"], "--config-file"),
        (
            &["-p", d, "-u", u, "--reload-method=smoke"],
            "--reload-method",
        ),
        (&["-p", d, "--process", "x", "--signal", "HUPP"], "--signal"),
        (
            &["-p", d, "--pid-file", "/nonexistent/dir/pid"],
            "--pid-file",
        ),
        (
            &["-p", d, "-u", u, "--once", "--attempts", "0"],
            "--attempts",
        ),
        (&["-p", d, "-u", u, "--expect", "abc"], "--expect"),
        (
            &["-p", d, "-u", u, "--state-file", "/nonexistent/dir/state"],
            "--state-file",
        ),
        (&["-p", d, "-u", "http://"], "--url"),
        (&["-p", d, "-u", "http://127.0.0.1:99999/"], "--url"),
        (&["-p", d, "-u", "http://exa mple/"], "--url"),
        (&["-p", d, "-u", "HTTP//127.0.0.1/"], "--url"),
        (&["-p", d, "-u", u, "-X", ""], "--method"),
        (&["-p", d, "-u", u, "-X", "PO\rST"], "--method"),
        (&["-p", d, "-u", u, "--status", "99"], "--status"),
        (&["-p", d, "-u", u, "--status", "200,600"], "--status"),
        (&["-p", d, "-u", u, "--status", "200,"], "--status"),
        (
            &["-p", d, "-u", u, "-H", "X-A: b\rX-Injected: 1"],
            "--header",
        ),
        (&["-p", d, "-u", u, "-H", "X A: b"], "--header"),
        (&["-p", d, "-u", u, "--timeout", "0"], "--timeout"),
        (&["-p", d, "-u", u, "--interval", "1.5.3s"], "--interval"),
        (
            &["-p", d, "-u", u, "--interval", "99999999999999h"],
            "--interval",
        ),
        (&["-p", d, "--process", "x", "--signal", "0"], "--signal"),
        (&["-p", d, "--process", "x", "--signal", "65"], "--signal"),
        (&["-p", d, "--process", "x", "--signal", "-HUP"], "--signal"),
        (&["-p", d, "--process", ""], "--process"),
        (&["-p", d, "--pid-file", ""], "--pid-file"),
        (&["-p", d, "-u", u, "--state-file", ""], "--state-file"),
        (&["digest"], "digest"),
        (&["digest", "--sum", "/nonexistent/x"], "/nonexistent/x"),
        (
            &["-p", d, "-u", u, "-webhook-status-code", "ok"],
            "--webhook-status-code",
        ),
        (
            &["-p", d, "no-such-command-anywhere"],
            "no-such-command-anywhere",
        ),
    ];
    for (args, names) in cases {
        let (code, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("hashreload: ") && lines[0].contains(names),
            "{args:?}: {err}"
        );
        assert_eq!(lines[1], "try 'hashreload --help'");
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Usage: hashreload [OPTIONS] [--] [COMMAND [ARGS...]]"));
    let out = Command::new(BIN).arg("-V").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("hashreload {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn readme_documents_every_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for word in help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
    {
        let flag = word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let documented = readme.lines().any(|l| {
            l.starts_with("| `")
                && (l.contains(&format!("{flag} ")) || l.contains(&format!("{flag}`")))
        });
        assert!(documented, "the README's flag table lacks {flag}");
    }
    for env in help.split("[env: ").skip(1) {
        let env = env.split(']').next().unwrap();
        assert!(
            readme.contains(&format!("`{env}`")),
            "the README lacks {env}"
        );
    }
}

/// The daemon watching `d/a` (written now) every 50 ms.
fn watcher(t: &Tmp) -> Run {
    t.write("d/a", b"a");
    Run::new(t.path("d")).interval("50ms")
}

#[test]
fn sigterm_while_sleeping_exits_0_at_once() {
    let t = Tmp::new();
    let r = Receiver::start(vec![]);
    let mut p = watcher(&t).url(r.url("/")).interval("1h").start();
    let (status, took) = p.signal(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        wait_until(5, || p.log().contains("msg=\"shutting down\" signal=TERM")),
        "{}",
        p.log()
    );
}

#[test]
fn sigint_while_a_request_hangs_exits_0_at_once() {
    let t = Tmp::new();
    let r = Receiver::start(vec![Reply::Hang(Duration::from_secs(30))]);
    let mut p = watcher(&t)
        .url(r.url("/"))
        .args(&["--timeout", "60s"])
        .start();
    t.write("d/a", b"b");
    assert!(wait_until(10, || r.count() == 1));
    let (status, took) = p.signal(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn sigterm_while_a_command_runs_ends_its_process_group() {
    let t = Tmp::new();
    let pidfile = t.path("pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
    let mut p = watcher(&t)
        .args(&["--timeout", "60s", "sh", "-c", &script])
        .start();
    t.write("d/a", b"b");
    assert!(wait_until(10, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|s| s.ends_with('\n'))));
    let sleeper: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (status, took) = p.signal(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        wait_until(5, || unsafe { libc::kill(sleeper, 0) } != 0),
        "sleep 60 survived us"
    );
}

#[test]
fn only_the_loop_thread_takes_sigterm_and_sigint() {
    // Another thread taking the signal between the COMMAND's fork and the record of its process
    // group would leave the group behind: every thread but the loop's blocks both.
    let t = Tmp::new();
    let pidfile = t.path("pid");
    let script = format!("echo $$ > {}; sleep 60", pidfile.display());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut p = watcher(&t)
        .args(&["--listen-address", &listen, "sh", "-c", &script])
        .start();
    p.wait_for("serving metrics");
    t.write("d/a", b"b");
    assert!(wait_until(10, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|s| s.ends_with('\n'))));
    let pid = p.child.id();
    // SIGINT is signal 2, SIGTERM 15: bits 1 and 14 of the hexadecimal masks.
    let both = (1u64 << 1) | (1 << 14);
    // None once the thread is gone (the loop starts short-lived threads too).
    let blocked = |tid: &str| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap()
            .trim();
        Some(u64::from_str_radix(mask, 16).unwrap() & both)
    };
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(tasks.len() >= 2, "the server thread runs: {tasks:?}");
    for tid in &tasks {
        if *tid == pid.to_string() {
            // The loop blocks both only for the moment it starts a thread, which inherits them.
            assert!(
                wait_until(5, || blocked(tid) == Some(0)),
                "the loop thread keeps SIGTERM/SIGINT blocked"
            );
        } else if let Some(mask) = blocked(tid) {
            assert_eq!(mask, both, "thread {tid} of {tasks:?}");
        }
    }
    let sh: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(p.signal(libc::SIGTERM).0.code(), Some(0));
    assert!(
        wait_until(5, || unsafe { libc::kill(sh, 0) } != 0),
        "the COMMAND survived us"
    );
}

/// The pid of `unshare`'s child: hashreload as PID 1 of its own namespace.
fn inner_pid(unshare: u32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if fields.get(1).and_then(|p| p.parse().ok()) == Some(pid) {
            let state = fields[0].chars().next().unwrap_or('?');
            out.push((e.file_name().to_str().unwrap().parse().unwrap_or(0), state));
        }
    }
    out
}

#[test]
#[ignore = "needs root and unshare"]
fn as_pid_1_it_exits_on_sigterm_and_reaps_orphans() {
    need_root();
    need("unshare");
    let t = Tmp::new();
    // Each run leaves an orphan that exits soon after: the kernel reparents it to PID 1 (us).
    let mut p = watcher(&t)
        .args(&["sh", "-c", "(sleep 0.2; exit 0) & exit 0"])
        .under(&["unshare", "--pid", "--fork"])
        .start();
    let inner = inner_pid(p.child.id()).expect("unshare has a child");
    for n in 1..=3 {
        t.write("d/a", format!("{n}").as_bytes());
        p.wait_for_n("result=\"exit status 0\"", n);
    }
    // Each orphan exits after 0.2 s; reaped, it is gone, unreaped it would stay a zombie ('Z').
    assert!(
        wait_until(5, || children_of(inner).is_empty()),
        "zombies: {:?}",
        children_of(inner)
    );
    let start = std::time::Instant::now();
    unsafe { libc::kill(inner, libc::SIGTERM) };
    let status = p.wait_exit(10).expect("PID 1 did not exit on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", p.log());
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// Every process whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) && !cmdline.contains("cargo") {
                out.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Runs hashreload as PID 1 of a new PID namespace, waits until `busy` holds of it, sends
/// SIGTERM, and returns how long the exit took.
fn pid_1_sigterm_while(run: Run, busy: impl Fn(i32) -> bool) -> Duration {
    let mut p = run.under(&["unshare", "--pid", "--fork"]).start();
    let inner = inner_pid(p.child.id()).expect("unshare has a child");
    assert!(wait_until(10, || busy(inner)), "never busy\n{}", p.log());
    let start = std::time::Instant::now();
    unsafe { libc::kill(inner, libc::SIGTERM) };
    let status = p.wait_exit(10).expect("PID 1 did not exit on SIGTERM");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0), "{}", p.log());
    assert!(p.log().contains("shutting down"), "{}", p.log());
    took
}

#[test]
#[ignore = "needs root and unshare"]
fn as_pid_1_sigterm_ends_hashing_a_hanging_request_and_a_command_at_once() {
    need_root();
    need("unshare");
    let t = Tmp::new();
    let d = t.path("d");
    std::fs::create_dir(&d).unwrap();
    // Sparse: 1 GB to hash, no disk used.
    std::fs::File::create(d.join("big.bin"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let hashing = pid_1_sigterm_while(Run::new(&d).interval("10ms").args(&["--", "true"]), |pid| {
        // The big file is open: a scan is hashing it.
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten()
                    .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.ends_with("big.bin")))
            })
            .unwrap_or(false)
    });
    std::fs::remove_file(d.join("big.bin")).unwrap();

    t.write("d/a.yml", "1");
    let r = Receiver::start(vec![Reply::Hang(Duration::from_secs(60))]);
    let run = Run::new(&d).args(&["--timeout", "60s", "--reload-on-start"]);
    let hanging = pid_1_sigterm_while(run.url(r.url("/")), |_| r.count() == 1);

    // Sleeps of a length no other test uses, so they can be found afterwards.
    let marker = format!("sleep {}", 600_000 + std::process::id());
    let script = format!("touch {}/running; {marker} & {marker}", t.str());
    let running = t.path("running");
    let run = Run::new(&d).args(&["--timeout", "60s", "--reload-on-start"]);
    let command = pid_1_sigterm_while(run.args(&["--", "sh", "-c", &script]), |_| running.exists());
    // The COMMAND, its background child and everything in the namespace are gone: no orphan.
    assert!(
        wait_until(5, || processes_with(&marker).is_empty()),
        "left behind: {:?}",
        processes_with(&marker)
    );
    eprintln!("SIGTERM to exit as PID 1: hashing 1 GB {hashing:?}, hanging request {hanging:?}, running COMMAND {command:?}");
    for took in [hashing, hanging, command] {
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
