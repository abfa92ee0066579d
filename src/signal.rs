//! Signal targets: servers that reload on a signal (nginx, HAProxy, Prometheus without the
//! lifecycle API). Processes are found at every delivery, by name in /proc or through a pid file,
//! so a restarted server is found again.
//!
//! `--process NAME` matches the basename of argv[0] (`/proc/PID/cmdline`) or the kernel's name
//! (`/proc/PID/comm`, cut to 15 bytes, so `prometheus-alertmanager` still matches). Only top-most
//! matches are signalled: nginx's master, not its workers, whose parent matches too. We never
//! signal ourselves, nor PID 1 of our namespace unless a pid file names it.

use std::fs;
use std::path::{Path, PathBuf};

/// Signals by name, for `--signal` and for logs.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("WINCH", libc::SIGWINCH),
    ("ALRM", libc::SIGALRM),
    ("PWR", libc::SIGPWR),
];

/// `HUP`, `SIGHUP`, `hup` or `1`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub fn signal_name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|(_, v)| *v == sig)
        .map_or_else(|| format!("signal {sig}"), |(n, _)| format!("SIG{n}"))
}

/// Which processes a signal target reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    Process(String),
    PidFile(PathBuf),
}

pub struct Signal {
    select: Select,
    signal: i32,
    name: String,
}

impl Signal {
    pub fn new(select: Select, signal: i32) -> Signal {
        let name = match &select {
            Select::Process(p) => format!("signal:{p}"),
            Select::PidFile(f) => format!("signal:{}", f.display()),
        };
        Signal {
            select,
            signal,
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn deliver(&self) -> Result<String, String> {
        let pids = match &self.select {
            Select::Process(name) => {
                let pids = find(Path::new("/proc"), name, std::process::id() as i32);
                if pids.is_empty() {
                    return Err(format!("no process named '{name}' found"));
                }
                pids
            }
            Select::PidFile(f) => vec![read_pid_file(f)?],
        };
        let sig = signal_name(self.signal);
        let mut failed = Vec::new();
        for &pid in &pids {
            // SAFETY: kill has no memory effects.
            if unsafe { libc::kill(pid, self.signal) } != 0 {
                let e = std::io::Error::last_os_error();
                failed.push(match e.raw_os_error() {
                    Some(libc::ESRCH) => format!("process {pid} exited before the {sig}"),
                    Some(libc::EPERM) => format!(
                        "permission denied sending {sig} to process {pid} (needs the same uid or CAP_KILL)"
                    ),
                    _ => format!("{sig} to process {pid}: {e}"),
                });
            }
        }
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
        let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        Ok(match pids.len() {
            1 => format!("{sig} sent to process {}", list[0]),
            n => format!("{sig} sent to {n} processes: {}", list.join(", ")),
        })
    }
}

fn read_pid_file(f: &Path) -> Result<i32, String> {
    let text = fs::read_to_string(f).map_err(|e| format!("pid file {}: {e}", f.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("pid file {}: no process id in it", f.display()))?;
    if pid == std::process::id() as i32 {
        return Err(format!("pid file {} names hashreload itself", f.display()));
    }
    Ok(pid)
}

/// Top-most live processes under `proc` matching `name`, never `own` nor PID 1.
fn find(proc: &Path, name: &str, own: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(proc) else {
        return Vec::new();
    };
    // (pid, parent) of every matching process.
    let mut matches: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let base = entry.path();
        let Ok(stat) = fs::read_to_string(base.join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if state == "Z" || state == "X" {
            continue;
        }
        if matches_name(&base, name) {
            matches.push((pid, ppid));
        }
    }
    let mut top: Vec<i32> = matches
        .iter()
        .filter(|(_, ppid)| !matches.iter().any(|(p, _)| p == ppid))
        .map(|(pid, _)| *pid)
        .filter(|pid| *pid != own && *pid != 1)
        .collect();
    top.sort_unstable();
    top
}

fn matches_name(proc_pid: &Path, name: &str) -> bool {
    if let Ok(cmdline) = fs::read(proc_pid.join("cmdline")) {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or(&[]);
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        if !base.is_empty() && base == name.as_bytes() {
            return true;
        }
    }
    let Ok(comm) = fs::read(proc_pid.join("comm")) else {
        return false;
    };
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    // The kernel keeps at most 15 bytes of the name.
    let cut = &name.as_bytes()[..name.len().min(15)];
    !comm.is_empty() && comm == cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signal_names_and_numbers() {
        for s in ["HUP", "SIGHUP", "hup", "1"] {
            assert_eq!(parse_signal(s), Some(libc::SIGHUP), "{s}");
        }
        assert_eq!(parse_signal("USR2"), Some(libc::SIGUSR2));
        assert_eq!(parse_signal("SIGTERM"), Some(libc::SIGTERM));
        for bad in ["", "SIG", "HUPP", "0", "65", "-1"] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
        assert_eq!(signal_name(libc::SIGHUP), "SIGHUP");
    }

    /// A fake /proc: (pid, ppid, state, argv0, comm).
    fn fake_proc(procs: &[(i32, i32, &str, &str, &str)]) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("hashreload-proc-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (pid, ppid, state, argv0, comm) in procs {
            let d = root.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("stat"), format!("{pid} ({comm}) {state} {ppid} 0 0")).unwrap();
            fs::write(d.join("cmdline"), format!("{argv0}\0-c\0x\0")).unwrap();
            fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
        }
        fs::create_dir_all(root.join("self")).unwrap();
        root
    }

    #[test]
    fn finds_top_most_matches_by_argv0_or_comm() {
        let p = fake_proc(&[
            (1, 0, "S", "/sbin/init", "init"),
            (10, 1, "S", "nginx: master process /usr/sbin/nginx", "nginx"),
            (11, 10, "S", "nginx: worker process", "nginx"),
            (12, 10, "S", "nginx: worker process", "nginx"),
            (
                20,
                1,
                "S",
                "/usr/bin/prometheus-alertmanager",
                "prometheus-aler",
            ),
            (30, 1, "S", "/bin/sh", "prometheus-aler"),
            (31, 30, "Z", "", "prometheus-aler"),
            (40, 1, "S", "/opt/bin/haproxy", "haproxy"),
            (41, 1, "S", "/opt/bin/haproxy", "haproxy"),
            (50, 1, "S", "/usr/bin/nginx-exporter", "nginx-exporter"),
        ]);
        assert_eq!(
            find(&p, "nginx", 99),
            vec![10],
            "the master, not its workers"
        );
        assert_eq!(
            find(&p, "prometheus-alertmanager", 99),
            vec![20, 30],
            "comm is cut to 15 bytes"
        );
        assert_eq!(find(&p, "haproxy", 99), vec![40, 41]);
        assert_eq!(find(&p, "haproxy", 41), vec![40], "never ourselves");
        assert_eq!(
            find(&p, "init", 99),
            Vec::<i32>::new(),
            "never PID 1 by name"
        );
        assert_eq!(find(&p, "apache2", 99), Vec::<i32>::new());
        let _ = fs::remove_dir_all(&p);
    }

    #[test]
    fn pid_files() {
        let dir = std::env::temp_dir().join(format!("hashreload-pidfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pid");
        fs::write(&f, "1234\n").unwrap();
        assert_eq!(read_pid_file(&f), Ok(1234));
        fs::write(&f, std::process::id().to_string()).unwrap();
        assert!(read_pid_file(&f).unwrap_err().contains("hashreload itself"));
        fs::write(&f, "nope").unwrap();
        assert!(read_pid_file(&f).unwrap_err().contains("no process id"));
        assert!(read_pid_file(&dir.join("missing"))
            .unwrap_err()
            .contains("missing"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_process_is_a_failed_attempt() {
        let s = Signal::new(
            Select::Process("no-such-process-hashreload".into()),
            libc::SIGHUP,
        );
        assert_eq!(
            s.deliver().unwrap_err(),
            "no process named 'no-such-process-hashreload' found"
        );
        assert_eq!(s.name(), "signal:no-such-process-hashreload");
    }
}
