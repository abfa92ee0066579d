//! Test environment: temp dirs, the kubelet's atomic writer replayed step by step, a local HTTP
//! receiver with scripted answers, and the real binary with its log captured.
#![allow(dead_code)]

pub mod pki;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hashreload");

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    cond()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temp directory removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new() -> Tmp {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("hashreload-it-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub type Payload = BTreeMap<String, Vec<u8>>;

pub fn payload(items: &[(&str, &str)]) -> Payload {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// The moments between the kubelet's steps, where a poller may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The new timestamped directory is written, `..data` still old.
    Written,
    /// `..data_tmp` exists.
    DataTmp,
    /// `..data` is new; new keys have no top-level link yet, removed keys' links dangle.
    Swapped,
    /// Top-level links are complete; the old directory still exists.
    Linked,
    /// Old directory deleted: the write is complete.
    Done,
}

/// Replays `AtomicWriter.Write` of pkg/volume/util/atomic_writer.go (../shared/atomic-writer.md).
pub struct Volume {
    pub dir: PathBuf,
    gen: u32,
}

impl Volume {
    pub fn new(dir: PathBuf) -> Volume {
        fs::create_dir_all(&dir).unwrap();
        Volume { dir, gen: 0 }
    }

    pub fn write(&mut self, p: &Payload) {
        self.write_with(p, |_| {});
    }

    /// The kubelet's sequence; `pause` runs between steps. Returns false when the content was
    /// identical and nothing was swapped (as the kubelet does).
    pub fn write_with(&mut self, p: &Payload, pause: impl FnMut(Step)) -> bool {
        let old = fs::read_link(self.dir.join("..data")).ok();
        if let Some(old) = &old {
            if self.read_dir_payload(&self.dir.join(old)) == *p {
                self.link_top_level(p);
                return false;
            }
        }
        self.swap(p, old, pause);
        true
    }

    /// What other writers (git-sync, scripts) do: a full rotation with identical bytes.
    pub fn rotate_identical(&mut self) {
        let old = fs::read_link(self.dir.join("..data")).unwrap();
        let p = self.read_dir_payload(&self.dir.join(&old));
        self.swap(&p, Some(old), |_| {});
    }

    fn swap(&mut self, p: &Payload, old: Option<PathBuf>, mut pause: impl FnMut(Step)) {
        self.gen += 1;
        let ts = format!(
            "..2026_11_25_10_12_{:02}.{}{}",
            self.gen % 60,
            1_000_000 + self.gen,
            std::process::id()
        );
        let tsdir = self.dir.join(&ts);
        fs::create_dir(&tsdir).unwrap();
        for (k, v) in p {
            let f = tsdir.join(k);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(&f, v).unwrap();
        }
        pause(Step::Written);
        let _ = fs::remove_file(self.dir.join("..data_tmp"));
        symlink(&ts, self.dir.join("..data_tmp")).unwrap();
        pause(Step::DataTmp);
        fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        pause(Step::Swapped);
        self.link_top_level(p);
        // Remove top-level links of keys that went away.
        let keep: Vec<String> = p.keys().map(|k| top(k).to_string()).collect();
        for e in fs::read_dir(&self.dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if !name.starts_with("..") && !keep.contains(&name) {
                fs::remove_file(self.dir.join(&name)).unwrap();
            }
        }
        pause(Step::Linked);
        if let Some(old) = old {
            fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
        pause(Step::Done);
    }

    fn link_top_level(&self, p: &Payload) {
        for k in p.keys() {
            let t = top(k);
            let link = self.dir.join(t);
            if fs::symlink_metadata(&link).is_err() {
                symlink(format!("..data/{t}"), link).unwrap();
            }
        }
    }

    fn read_dir_payload(&self, dir: &Path) -> Payload {
        let mut out = Payload::new();
        fn walk(base: &Path, dir: &Path, out: &mut Payload) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
                    out.insert(rel, fs::read(&p).unwrap());
                }
            }
        }
        walk(dir, dir, &mut out);
        out
    }
}

fn top(key: &str) -> &str {
    key.split('/').next().unwrap()
}

/// The digest of a payload computed by GNU coreutils, not by us: the payload is written to a
/// scratch directory, `sha256sum` lists it sorted by path bytes, and `sha256sum` hashes that list.
pub fn coreutils_digest(p: &Payload) -> String {
    let t = Tmp::new();
    for (k, v) in p {
        t.write(k, v);
    }
    coreutils_digest_of_dir(&t.0)
}

pub fn coreutils_digest_of_dir(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -r -d '\\n' sha256sum -- | sha256sum")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// One request the receiver saw.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn digest(&self) -> &str {
        self.header("X-Hashreload-Digest").unwrap_or("")
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16, &'static str),
    /// Say nothing for this long, then close.
    Hang(Duration),
    Redirect(String),
}

/// A real HTTP listener on 127.0.0.1 answering from a script (then 200), recording requests.
pub struct Receiver {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start(script: Vec<Reply>) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    pub fn on(listener: TcpListener, script: Vec<Reply>) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, st) = (requests.clone(), script.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        // A connection of its own, so a hanging reply never blocks the next one.
                        let (r, s, st) = (r.clone(), s.clone(), st.clone());
                        thread::spawn(move || serve(conn, &r, &s, &st));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            port,
            requests,
            script,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn digests(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r.digest().to_string())
            .collect()
    }

    pub fn push(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request from `conn` (blocking, 5 s per read): the request line, up to 100
/// headers and a body of at most 1 MiB. None if the connection closed before a request line.
pub fn read_request(conn: &TcpStream) -> Option<Request> {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    for _ in 0..100 {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    Some(Request {
        method,
        path,
        headers,
    })
}

fn serve(
    mut conn: TcpStream,
    requests: &Mutex<Vec<Request>>,
    script: &Mutex<VecDeque<Reply>>,
    stop: &AtomicBool,
) {
    let Some(request) = read_request(&conn) else {
        return;
    };
    requests.lock().unwrap().push(request);
    let reply = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200, ""));
    let response = match reply {
        Reply::Status(code, body) => format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Reply::Redirect(to) => format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Reply::Hang(d) => {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            return;
        }
    };
    let _ = conn.write_all(response.as_bytes());
}

/// A port nothing listens on (for an endpoint that is down).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary, its stderr collected line by line.
pub struct Proc {
    pub child: Child,
    log: Arc<Mutex<String>>,
    /// Set once stderr reached its end: everything written is in `log`.
    log_done: Arc<AtomicBool>,
}

impl Proc {
    pub fn start(args: &[&str]) -> Proc {
        Proc::spawn(Command::new(BIN).args(args))
    }

    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let log_done = Arc::new(AtomicBool::new(false));
        let (l, done) = (log.clone(), log_done.clone());
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
            done.store(true, Ordering::SeqCst);
        });
        Proc {
            child,
            log,
            log_done,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits for `needle` to appear `n` times in the log; panics with the log otherwise.
    pub fn wait_for_n(&self, needle: &str, n: usize) {
        if !wait_until(20, || self.count(needle) >= n) {
            panic!("waited for {n} x {needle:?}; log:\n{}", self.log());
        }
    }

    pub fn wait_for(&self, needle: &str) {
        self.wait_for_n(needle, 1)
    }

    /// Waits until the loop has finished `n` more scans than now (needs `-v`).
    pub fn wait_scans(&self, n: usize) {
        let have = self.count("msg=scanned");
        self.wait_for_n("msg=scanned", have + n);
    }

    /// Sends a signal and waits for the exit; returns the status and how long it took.
    pub fn signal(&mut self, sig: i32) -> (ExitStatus, Duration) {
        let start = Instant::now();
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let status = self
            .wait_exit(10)
            .expect("no exit within 10 s of the signal");
        (status, start.elapsed())
    }

    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(secs, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon under test against a volume: `Run::new(&dir).url(r.url("/")).start()` runs
/// `hashreload -v -p DIR -u URL -i 20ms` and waits for its start line. Verbose, so
/// `Proc::wait_scans` can count the loop's scans. Flags given with `args` come last (a COMMAND
/// and its arguments too); `under` runs it through another program (setpriv, prlimit, unshare).
pub struct Run {
    paths: Vec<String>,
    urls: Vec<String>,
    interval: Option<String>,
    args: Vec<String>,
    under: Vec<String>,
    env: Vec<(String, String)>,
}

impl Run {
    pub fn new(path: impl AsRef<Path>) -> Run {
        Run {
            paths: Vec::new(),
            urls: Vec::new(),
            interval: Some("20ms".into()),
            args: Vec::new(),
            under: Vec::new(),
            env: Vec::new(),
        }
        .path(path)
    }

    /// Another root to watch.
    pub fn path(mut self, path: impl AsRef<Path>) -> Run {
        self.paths.push(path.as_ref().to_str().unwrap().to_string());
        self
    }

    pub fn url(mut self, url: impl Into<String>) -> Run {
        self.urls.push(url.into());
        self
    }

    /// `-i`; 20ms unless set.
    pub fn interval(mut self, interval: &str) -> Run {
        self.interval = Some(interval.into());
        self
    }

    /// No `-i`: the binary's own default.
    pub fn default_interval(mut self) -> Run {
        self.interval = None;
        self
    }

    pub fn args(mut self, args: &[&str]) -> Run {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Run {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the binary as the last argument of `wrapper` (e.g. `["prlimit", "--nofile=10", "--"]`).
    pub fn under(mut self, wrapper: &[&str]) -> Run {
        self.under = wrapper.iter().map(|a| a.to_string()).collect();
        self
    }

    /// As nobody (65534, no groups): root would read and signal everything.
    pub fn nobody(self) -> Run {
        self.under(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
    }

    /// Starts it and waits for `hashreload started`.
    pub fn start(self) -> Proc {
        let mut cmd = match self.under.split_first() {
            Some((program, wrapper_args)) => {
                let mut cmd = Command::new(program);
                cmd.args(wrapper_args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("-v");
        for p in &self.paths {
            cmd.args(["-p", p]);
        }
        for u in &self.urls {
            cmd.args(["-u", u]);
        }
        if let Some(i) = &self.interval {
            cmd.args(["-i", i]);
        }
        cmd.args(&self.args);
        cmd.envs(self.env);
        let p = Proc::spawn(&mut cmd);
        p.wait_for("hashreload started");
        p
    }
}

/// The port a run started with `--listen-address 127.0.0.1:0` bound, from its start log.
pub fn bound_port(p: &Proc) -> u16 {
    let log = p.log();
    let at = log
        .find("address=127.0.0.1:")
        .expect("the log names the bound address")
        + 18;
    log[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Scans the loop finished, from the metrics on 127.0.0.1:`port` (`--listen-address`).
pub fn polls(port: u16) -> f64 {
    sample(&get(port, "/metrics").1, "hashreload_polls_total").unwrap_or(0.0)
}

/// Runs the binary to completion (for usage errors): exit code and stderr.
pub fn run(args: &[&str]) -> (i32, String) {
    run_cmd(Command::new(BIN).args(args))
}

/// Runs a command to completion: exit code and stderr. One still running after 10 s is killed
/// and fails the test.
pub fn run_cmd(cmd: &mut Command) -> (i32, String) {
    let mut p = Proc::spawn(cmd);
    let Some(status) = p.wait_exit(10) else {
        panic!("did not exit within 10 s; log:\n{}", p.log());
    };
    assert!(
        wait_until(10, || p.log_done.load(Ordering::SeqCst)),
        "stderr still open 10 s after the exit; log:\n{}",
        p.log()
    );
    (status.code().unwrap_or(-1), p.log())
}

/// SHA-256 of `data` as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// One raw HTTP request to 127.0.0.1; the whole answer, head and body, as text.
pub fn answer(port: u16, raw: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One raw HTTP request to 127.0.0.1; returns the status and the body.
pub fn request(port: u16, raw: &str) -> (u16, String) {
    let out = answer(port, raw);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

pub fn get(port: u16, path: &str) -> (u16, String) {
    request(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"),
    )
}

/// The value of a sample in a Prometheus exposition, by the series' full text before the value.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Fails the test unless `bin` is installed. Tests that call it are `#[ignore = "needs ..."]`:
/// `scripts/test` runs them (`--include-ignored`) under CI or when every tool is there, and
/// then a missing tool is a failure, never a silent pass.
pub fn need(bin: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{bin} is not installed; scripts/install-test-deps installs it (as root, with apt-get)"
    );
}

/// Fails the test unless it runs as root (to drop to nobody, chroot, or unshare a PID namespace).
pub fn need_root() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root; scripts/test runs it only as root or under CI"
    );
}

/// Fails unless `promtool check metrics` accepts the exposition without a word.
pub fn promtool_accepts(exposition: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

/// Runs a Python program (with yaml and json imported) over argv; its stdout. Fails the test,
/// with Python's error, unless it succeeds.
pub fn python(program: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("import json, sys, yaml\n{program}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 (needs python3-yaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Evaluates a Python expression over a JSON document `d`; returns what it prints.
pub fn json(doc: &str, expr: &str) -> String {
    let mut py = Command::new("python3")
        .args([
            "-c",
            &format!("import json,sys; d=json.load(sys.stdin); print({expr})"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    String::from_utf8(py.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

pub fn wait_ready(server: &Proc, port: u16) {
    let ok = wait_until(60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && get(port, "/-/ready").0 == 200
    });
    assert!(ok, "not ready:\n{}", server.log());
}

pub fn prometheus_yml(scrape_port: u16, job: &str, extra: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n{extra}scrape_configs:\n  - job_name: hashreload\n    \
         static_configs: [{{targets: ['127.0.0.1:{scrape_port}']}}]\n  - job_name: {job}\n    \
         static_configs: [{{targets: ['127.0.0.1:9']}}]\n"
    )
}

/// Debian's Prometheus on 127.0.0.1:`port` with the lifecycle API, ready to be reloaded.
pub fn start_prometheus(config: &Path, port: u16, data: &Path) -> Proc {
    let prom = Proc::spawn(Command::new("prometheus").args([
        &format!("--config.file={}", config.display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--storage.tsdb.path={}", data.display()),
        "--web.enable-lifecycle",
    ]));
    wait_ready(&prom, port);
    prom
}

/// The config Prometheus is running, as YAML.
pub fn prometheus_config(port: u16) -> String {
    json(&get(port, "/api/v1/status/config").1, "d['data']['yaml']")
}

/// The coreutils digest of each payload, as `coreutils_digest` computes it, with two runs of
/// `sha256sum` for all of them: one over every file, then one over each payload's manifest
/// (those lines sorted by path bytes). Paths must need no escaping.
pub fn coreutils_digests(payloads: &[Payload]) -> Vec<String> {
    let t = Tmp::new();
    let mut files = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        for (k, v) in p {
            assert!(!k.contains(['\\', '\n', '\r']), "{k:?}");
            t.write(&format!("f/{i}/{k}"), v);
            files.push(format!("f/{i}/{k}"));
        }
    }
    let sums = |dir: &Path, list: String| {
        let mut child = Command::new("xargs")
            .args(["-r", "-d", "\n", "sha256sum", "--"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Written from another thread: the output fills its pipe before the list is in.
        let writer = thread::spawn(move || stdin.write_all(list.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let mut manifests = vec![BTreeMap::new(); payloads.len()];
    for line in sums(&t.0, files.join("\n")).lines() {
        let (hash, path) = line.split_once("  ").unwrap();
        let (i, key) = path[2..].split_once('/').unwrap();
        manifests[i.parse::<usize>().unwrap()].insert(key.as_bytes().to_vec(), hash.to_string());
    }
    let mut names = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        let text: String = m
            .iter()
            .map(|(k, h)| format!("{h}  {}\n", String::from_utf8_lossy(k)))
            .collect();
        t.write(&format!("m/{i}"), text);
        names.push(format!("m/{i}"));
    }
    sums(&t.0, names.join("\n"))
        .lines()
        .map(|l| l[..64].to_string())
        .collect()
}

/// A number from /proc/PID/status, such as `VmRSS` or `RssAnon` (in kB).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// VmRSS in kB and the number of open descriptors of a process.
pub fn footprint(pid: u32) -> (u64, usize) {
    let rss = proc_status(pid, "VmRSS");
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (rss, fds)
}

/// The footprint between scans: a scan holds a directory or file open for a moment, so the
/// fewest descriptors over a few samples (and the RSS seen then).
pub fn steady_footprint(pid: u32) -> (u64, usize) {
    (0..20)
        .map(|_| {
            thread::sleep(Duration::from_millis(2));
            footprint(pid)
        })
        .min_by_key(|&(_, fds)| fds)
        .unwrap()
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed by its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True `percent` times in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The exec probe prometheus-operator gives a container with `listenLocal` (its
/// pkg/operator/prober.go, spelled out), for `url`.
pub fn operator_probe(url: &str) -> String {
    format!(
        r#"if [ -x "$(command -v curl)" ]; then exec curl --fail {url}; elif [ -x "$(command -v wget)" ]; then exec wget -q -O /dev/null {url}; else exit 1; fi"#
    )
}
