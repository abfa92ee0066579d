//! Signal targets against real processes: Debian's nginx reloaded with SIGHUP through its pid file
//! or its name, a change kept pending while nginx is down, name matching as the kernel cuts it,
//! top-most processes only, and permission denied.

mod common;
use common::*;
use std::process::Command;

/// An nginx in the foreground on 127.0.0.1:`port`, its config in a kubelet-style volume.
struct Nginx {
    t: Tmp,
    vol: Volume,
    port: u16,
}

impl Nginx {
    fn new() -> Nginx {
        let t = Tmp::new();
        let vol = Volume::new(t.path("etc-nginx"));
        let mut n = Nginx {
            t,
            vol,
            port: free_port(),
        };
        n.configure("v1");
        n
    }

    fn conf(&self, body: &str) -> String {
        let prefix = self.t.0.display();
        format!(
            "worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n\
             events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n  \
             server {{\n    listen 127.0.0.1:{};\n    location / {{ return 200 \"{body}\\n\"; }}\n  }}\n}}\n",
            self.port
        )
    }

    /// A config change through the kubelet's write sequence.
    fn configure(&mut self, body: &str) {
        let conf = self.conf(body);
        self.vol.write(&payload(&[("nginx.conf", &conf)]));
    }

    fn start(&self) -> Proc {
        let p = Proc::spawn(Command::new("nginx").args([
            "-p",
            self.t.str(),
            "-e",
            self.t.path("error.log").to_str().unwrap(),
            "-c",
            self.t.path("etc-nginx/nginx.conf").to_str().unwrap(),
            "-g",
            "daemon off;",
        ]));
        assert!(
            wait_until(20, || self.body().is_some()),
            "nginx did not start: {}",
            p.log()
        );
        p
    }

    fn body(&self) -> Option<String> {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        Some(get(self.port, "/").1)
    }

    fn pid_file(&self) -> String {
        self.t.path("nginx.pid").to_str().unwrap().to_string()
    }

    fn dir(&self) -> String {
        self.vol.dir.to_str().unwrap().to_string()
    }
}

#[test]
#[ignore = "needs nginx"]
fn nginx_serves_the_new_config_after_a_hup_through_its_pid_file() {
    need("nginx");
    let mut n = Nginx::new();
    let _nginx = n.start();
    assert_eq!(n.body().as_deref(), Some("v1\n"));
    let p = Run::new(n.dir())
        .interval("100ms")
        .args(&["--pid-file", &n.pid_file()])
        .start();
    n.configure("v2");
    assert!(
        wait_until(20, || n.body().as_deref() == Some("v2\n")),
        "{}",
        p.log()
    );
    p.wait_for("result=\"SIGHUP sent to process");
}

#[test]
#[ignore = "needs nginx"]
fn nginx_found_by_name_gets_the_hup_on_its_master_only() {
    need("nginx");
    let mut n = Nginx::new();
    let nginx = n.start();
    let p = Run::new(n.dir())
        .interval("100ms")
        .args(&["--process", "nginx", "--signal", "SIGHUP"])
        .start();
    n.configure("v3");
    assert!(
        wait_until(20, || n.body().as_deref() == Some("v3\n")),
        "{}",
        p.log()
    );
    p.wait_for("reload delivered");
    // Its master, never a worker (whose parent is also nginx).
    let master = nginx.child.id().to_string();
    assert!(p.log().contains(&master), "{}", p.log());
}

#[test]
#[ignore = "needs nginx"]
fn a_change_waits_for_nginx_to_start() {
    need("nginx");
    let mut n = Nginx::new();
    let p = Run::new(n.dir())
        .interval("100ms")
        .args(&["--pid-file", &n.pid_file()])
        .args(&["--retry-interval", "100ms", "--max-backoff", "300ms"])
        .start();
    n.configure("v2");
    p.wait_for_n("reload failed", 2);
    assert!(
        p.log().contains("nginx.pid: No such file or directory"),
        "{}",
        p.log()
    );
    let _nginx = n.start();
    p.wait_for("reload delivered");
    assert_eq!(n.body().as_deref(), Some("v2\n"));
}

#[test]
fn names_match_as_the_kernel_cuts_them_and_only_top_most_processes() {
    let t = Tmp::new();
    t.write("d/a", "a");
    // A server whose name is longer than the 15 bytes the kernel keeps, that starts a child of
    // the same name; each notes the USR1 it receives, and ends by itself within 20 s.
    let script = t.path("prometheus-alertmanager");
    std::fs::write(
        &script,
        "#!/bin/sh\ntrap 'echo usr1 >> \"$0.$1\"' USR1\n[ \"$1\" = parent ] && \"$0\" child &\n\
         for i in $(seq 400); do sleep 0.05; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Proc::spawn(Command::new(&script).arg("parent"));
    // The child of the same name (the parent's other children are its `sleep`s).
    let child = || -> Option<i32> {
        let kids =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", server.child.id()));
        kids.ok()?.split_whitespace().find_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            cmdline.ends_with(b"child\0").then(|| pid.parse().ok())?
        })
    };
    assert!(wait_until(10, || child().is_some()));
    let child = child().unwrap();
    let p = Run::new(t.path("d"))
        .interval("50ms")
        .args(&["--process", "prometheus-alertmanager", "--signal", "USR1"])
        .start();
    t.write("d/a", "b");
    let parent = format!("{}.parent", script.display());
    assert!(
        wait_until(10, || std::fs::read_to_string(&parent).is_ok()),
        "{}",
        p.log()
    );
    p.wait_for(&format!("SIGUSR1 sent to process {}", server.child.id()));
    assert!(
        !std::path::Path::new(&format!("{}.child", script.display())).exists(),
        "the child was signalled"
    );
    // Kill the child too (the parent's Drop only kills the parent).
    unsafe { libc::kill(child, libc::SIGKILL) };
}

#[test]
#[ignore = "needs root and setpriv"]
fn no_process_and_permission_denied_keep_the_change_pending() {
    need_root();
    need("setpriv");
    let t = Tmp::new();
    t.write("d/a", "a");
    // A root process that nobody may signal.
    let victim = Proc::spawn(Command::new("sleep").arg("60"));
    std::fs::write(t.path("victim.pid"), victim.child.id().to_string()).unwrap();
    let p = Run::new(t.path("d"))
        .interval("50ms")
        .args(&["--pid-file", t.path("victim.pid").to_str().unwrap()])
        .args(&["--process", "no-such-server-xyz"])
        .args(&["--retry-interval", "50ms", "--max-backoff", "100ms"])
        .nobody()
        .start();
    t.write("d/a", "b");
    p.wait_for_n("reload failed", 4);
    let log = p.log();
    assert!(
        log.contains("permission denied sending SIGHUP to process"),
        "{log}"
    );
    assert!(
        log.contains("no process named 'no-such-server-xyz' found"),
        "{log}"
    );
    assert_eq!(p.count("reload delivered"), 0);
}
