//! The built images (scripts/build-image) as users get them: their sizes, binaries that are fully
//! static, and those binaries run from the image's own empty root as uid 65534 (the -tls one
//! reloading over verified HTTPS with nothing but mounted files to trust), plus the arm64
//! binaries under qemu. `scripts/test` builds the image and points HASHRELOAD_DIST at it; these
//! tests are ignored unless it runs them (`--include-ignored`), and then a missing image fails.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Each image's budget, per architecture: its one layer, uncompressed.
const BUDGETS: [(&str, usize); 2] = [("", 1_048_576), ("-tls", 2_000_000)];

/// The image's directory; fails the test without one.
fn dist() -> PathBuf {
    let dist = std::env::var_os("HASHRELOAD_DIST")
        .expect("HASHRELOAD_DIST is not set: scripts/test sets it after scripts/build-image");
    PathBuf::from(dist)
}

/// The uncompressed layer of `arch` from the OCI archive of the image `variant` ("" or "-tls")
/// in `dist`, written to `out`.
fn layer(dist: &Path, variant: &str, arch: &str, out: &Path) -> usize {
    let version = env!("CARGO_PKG_VERSION");
    let archive = dist.join(format!("hashreload-{version}{variant}.oci.tar"));
    assert!(archive.is_file(), "{} is missing", archive.display());
    let script = r#"
import gzip, json, sys, tarfile
archive, arch, out = sys.argv[1:]
t = tarfile.open(archive)
blob = lambda d: json.load(t.extractfile("blobs/" + d.replace(":", "/")))
(top,) = json.load(t.extractfile("index.json"))["manifests"]
(m,) = [m for m in blob(top["digest"])["manifests"] if m["platform"]["architecture"] == arch]
(layer,) = blob(m["digest"])["layers"]
data = t.extractfile("blobs/" + layer["digest"].replace(":", "/")).read()
if layer["mediaType"].endswith("gzip"):
    data = gzip.decompress(data)
open(out, "wb").write(data)
"#;
    let ok = Command::new("python3")
        .args(["-c", script])
        .arg(&archive)
        .arg(arch)
        .arg(out)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::metadata(out).unwrap().len() as usize
}

/// The amd64 filesystem of the image `variant`, extracted into a fresh directory.
fn root(dist: &Path, variant: &str, t: &Tmp) -> PathBuf {
    let tar = t.path("layer.tar");
    layer(dist, variant, "amd64", &tar);
    let root = t.path("root");
    std::fs::create_dir(&root).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap()
        .success());
    root
}

/// `PROGRAM ARGS` chrooted into `root` as uid/gid 65534.
fn chrooted(root: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg("--userspec=65534:65534")
        .arg(root)
        .arg(program)
        .args(args);
    cmd
}

/// Runs `/hashreload ARGS` chrooted into `root` as uid/gid 65534.
fn in_root(root: &Path, args: &[&str]) -> Proc {
    Proc::spawn(&mut chrooted(root, "/hashreload", args))
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST)"]
fn each_image_is_one_small_layer_under_the_budget() {
    let dist = dist();
    let t = Tmp::new();
    for (variant, budget) in BUDGETS {
        for arch in ["amd64", "arm64"] {
            image_within(&dist, &t, variant, arch, budget);
        }
    }
}

fn image_within(dist: &Path, t: &Tmp, variant: &str, arch: &str, budget: usize) {
    {
        let tar = t.path(&format!("{arch}{variant}"));
        let size = layer(dist, variant, arch, &tar);
        let binary = dist
            .join("bin")
            .join(arch)
            .join(format!("hashreload{variant}"));
        let binary = std::fs::metadata(binary).unwrap().len();
        println!("image {arch}{variant}: {size} bytes (binary {binary}); budget {budget}");
        assert!(
            size < budget,
            "image {arch}{variant} is {size} bytes, over the {budget} budget"
        );
        // The binary once, under the name the walk met first; the other two link to it.
        let entries = entries(&tar);
        let (kinds, names): (Vec<_>, Vec<_>) = entries
            .iter()
            .map(|e| (e.kind.as_str(), e.name.as_str()))
            .unzip();
        assert_eq!(
            names,
            [
                "bin",
                "bin/prometheus-config-reloader",
                "bin/sh",
                "hashreload"
            ],
            "only the binary's three names: {entries:?}"
        );
        let files: Vec<_> = entries.iter().filter(|e| e.kind == "file").collect();
        assert_eq!(files.len(), 1, "one copy of the bytes: {entries:?}");
        assert_eq!(files[0].size, binary);
        assert_eq!(kinds.iter().filter(|k| **k == "link").count(), 2);
        for e in entries.iter().filter(|e| e.kind == "link") {
            assert_eq!(e.link, files[0].name, "{e:?}");
        }
    }
}

/// One entry of a layer tar.
#[derive(Debug)]
struct Entry {
    name: String,
    /// `file`, `link` (a hard link), `dir`, or tar's type byte for anything else.
    kind: String,
    /// A hard link's target.
    link: String,
    size: u64,
}

/// The entries of the layer tar at `path`, in archive order.
fn entries(path: &Path) -> Vec<Entry> {
    let script = r#"
import sys, tarfile
kinds = {tarfile.REGTYPE: "file", tarfile.LNKTYPE: "link", tarfile.DIRTYPE: "dir"}
for m in tarfile.open(sys.argv[1]):
    print(m.name.rstrip("/"), kinds.get(m.type, repr(m.type)), m.linkname, m.size, sep="\t")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Entry {
                name: f[0].to_string(),
                kind: f[1].to_string(),
                link: f[2].to_string(),
                size: f[3].parse().unwrap(),
            }
        })
        .collect()
}

/// No program interpreter and no shared libraries: an ELF64 little-endian file read by hand.
fn assert_static(path: &Path) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..6],
        b"\x7fELF\x02\x01",
        "{}: a 64-bit little-endian ELF",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let kind = u32::from_le_bytes(b[ph..ph + 4].try_into().unwrap());
        assert_ne!(
            kind,
            3,
            "{}: has PT_INTERP (dynamically linked)",
            path.display()
        );
        if kind == 2 {
            // PT_DYNAMIC (static-pie has one for its own relocations): no DT_NEEDED in it.
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            for entry in (off..off + size).step_by(16) {
                assert_ne!(
                    u64_at(entry),
                    1,
                    "{}: needs a shared library",
                    path.display()
                );
            }
        }
    }
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST)"]
fn every_binary_is_fully_static() {
    let dist = dist();
    for arch in ["amd64", "arm64"] {
        for name in ["hashreload", "hashreload-tls"] {
            assert_static(&dist.join("bin").join(arch).join(name));
        }
    }
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST) and root"]
fn from_the_empty_root_localhost_reloads_arrive_at_once() {
    let dist = dist();
    need_root();
    let t = Tmp::new();
    let root = root(&dist, "", &t);
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["bin", "hashreload"],
        "no /etc, nothing but the binary"
    );
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(root.join("config/a.yml"), "a").unwrap();
    let r = Receiver::start(vec![]);
    let other = Receiver::start(vec![]);
    let start = Instant::now();
    let p = in_root(
        &root,
        &[
            "-p",
            "/config",
            "-i",
            "50ms",
            "--reload-on-start",
            "-u",
            &format!("http://localhost:{}/-/reload", r.port),
            "-u",
            &format!("http://prometheus.localhost:{}/-/reload", other.port),
        ],
    );
    assert!(
        wait_until(10, || r.count() == 1 && other.count() == 1),
        "{}",
        p.log()
    );
    // Without our own resolver musl asks a DNS server that is not there and gives up after 5 s.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}: {}", p.log());
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&payload(&[("a.yml", "a")]))
    );
    std::fs::write(root.join("config/a.yml"), "b").unwrap();
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST) and root"]
fn prometheus_operators_command_and_exec_probe_work_from_the_empty_root() {
    use std::os::unix::fs::MetadataExt;
    let dist = dist();
    need_root();
    let t = Tmp::new();
    let root = root(&dist, "", &t);
    let names = ["hashreload", "bin/prometheus-config-reloader", "bin/sh"];
    let inodes: Vec<_> = names
        .iter()
        .map(|n| std::fs::metadata(root.join(n)).unwrap())
        .map(|m| (m.ino(), m.nlink()))
        .collect();
    assert_eq!(inodes, [inodes[0]; 3], "one file, three names");
    assert_eq!(inodes[0].1, 3);

    let reloader = "/bin/prometheus-config-reloader";
    let out = chrooted(&root, reloader, &["--version"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hashreload {}\n", env!("CARGO_PKG_VERSION"))
    );
    // The container the operator writes with listenLocal (its port 8080 is a free one here).
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(root.join("config/prometheus.yml"), "a: 1\n").unwrap();
    let r = Receiver::start(vec![]);
    let port = free_port();
    let listen = format!("--listen-address=localhost:{port}");
    let reload = format!("--reload-url=http://localhost:{}/-/reload", r.port);
    let args = [listen.as_str(), "--watched-dir=/config", &reload];
    let p = Proc::spawn(&mut chrooted(&root, reloader, &args));
    let sh = |url: &str| {
        run_cmd(&mut chrooted(
            &root,
            "/bin/sh",
            &["-c", &operator_probe(url)],
        ))
    };
    let healthz = format!("http://localhost:{port}/healthz");
    assert!(wait_until(10, || sh(&healthz).0 == 0), "{}", p.log());
    assert_eq!(sh(&healthz), (0, String::new()));
    let down = Receiver::start(vec![Reply::Status(503, "")]);
    assert_eq!(sh(&format!("http://127.0.0.1:{}/healthz", down.port)).0, 22);
    assert_eq!(
        sh(&format!("http://localhost:{}/healthz", free_port())).0,
        7
    );
    let (code, err) = run_cmd(&mut chrooted(&root, "/bin/sh", &["-c", "id"]));
    assert_eq!(code, 127, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST), root and prometheus"]
fn from_the_empty_root_as_nobody_it_reloads_real_prometheus() {
    let dist = dist();
    need_root();
    need("prometheus");
    let t = Tmp::new();
    let root = root(&dist, "", &t);
    let mut vol = Volume::new(root.join("etc/prometheus"));
    let port = free_port();
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(9, "before", ""),
    )]));
    let _prom = start_prometheus(
        &root.join("etc/prometheus/prometheus.yml"),
        port,
        &t.path("data"),
    );
    let p = in_root(
        &root,
        &[
            "-p",
            "/etc/prometheus",
            "-u",
            &format!("http://localhost:{port}/-/reload"),
            "-i",
            "100ms",
        ],
    );
    p.wait_for("hashreload started");
    vol.write(&payload(&[(
        "prometheus.yml",
        &prometheus_yml(9, "after", ""),
    )]));
    assert!(
        wait_until(20, || prometheus_config(port).contains("after")),
        "{}",
        p.log()
    );
    p.wait_for("reload delivered");
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST) and root"]
fn the_2017_watch_line_runs_from_the_empty_root_with_curl_emulated() {
    let dist = dist();
    need_root();
    let t = Tmp::new();
    let root = root(&dist, "", &t);
    let mut vol = Volume::new(root.join("etc/prometheus"));
    vol.write(&payload(&[("prometheus.yml", "a: 1\n")]));
    let r = Receiver::start(vec![]);
    // Exactly the line from the 2017 post; only the port is the test receiver's instead of 80.
    let url = format!("http://localhost:{}/-/reload", r.port);
    let line = [
        "-v",
        "-t",
        "-p=/etc/prometheus",
        "curl",
        "-X",
        "POST",
        "--fail",
        "-o",
        "-",
        "-sS",
        &url,
    ];
    let p = in_root(&root, &line);
    p.wait_for("hashreload started");
    assert!(p.log().contains("curl is not installed"), "{}", p.log());
    let new = payload(&[("prometheus.yml", "a: 2\n")]);
    vol.write(&new);
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    assert_eq!(r.requests()[0].method, "POST");
    assert_eq!(r.digests(), [coreutils_digest(&new)]);
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST) and qemu-aarch64"]
fn the_arm64_binary_runs_under_qemu() {
    let dist = dist();
    need("qemu-aarch64");
    let bin = dist.join("bin/arm64/hashreload");
    let out = Command::new("qemu-aarch64")
        .arg(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hashreload {}\n", env!("CARGO_PKG_VERSION"))
    );
    let t = Tmp::new();
    let tree = payload(&[
        ("a.yml", "a"),
        ("rules/b.yml", "b"),
        ("rules/deep/c.yml", "c"),
    ]);
    for (k, v) in &tree {
        t.write(&format!("tree/{k}"), v);
    }
    let r = Receiver::start(vec![]);
    let p = Proc::spawn(Command::new("qemu-aarch64").arg(&bin).args([
        "-p",
        t.path("tree").to_str().unwrap(),
        "-u",
        &r.url("/"),
        "--reload-on-start",
        "-i",
        "100ms",
    ]));
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&tree),
        "the arm64 digest of the tree"
    );
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST), root and openssl"]
fn the_tls_image_reloads_over_verified_https_with_only_a_mounted_ca() {
    use common::pki::{Ca, Role, TlsServer};
    let dist = dist();
    need_root();
    need("openssl");
    let t = Tmp::new();
    let root = root(&dist, "-tls", &t);
    let ca = Ca::new(&t.path("pki"), "ca");
    let server = ca.issue("server", Role::Server, &["localhost"]);
    // The CA as a Secret is mounted: one file in the root, no system store anywhere.
    std::fs::create_dir(root.join("tls")).unwrap();
    std::fs::copy(&ca.cert, root.join("tls/ca.crt")).unwrap();
    std::fs::create_dir(root.join("config")).unwrap();
    std::fs::write(root.join("config/a.yml"), "a").unwrap();
    let s = TlsServer::start(&server, &[]);
    let url = s.url("localhost");
    let args = [
        "-p",
        "/config",
        "-u",
        &url,
        "-X",
        "GET",
        "--once",
        "--attempts",
        "1",
    ];
    let (code, log) = run_cmd(&mut chrooted(&root, "/hashreload", &args));
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("https:// needs something to trust"), "{log}");
    let trusted = [&args[..], &["--tls-ca-file", "/tls/ca.crt"]].concat();
    let reloader = "/bin/prometheus-config-reloader";
    for program in ["/hashreload", reloader] {
        let (code, log) = run_cmd(&mut chrooted(&root, program, &trusted));
        assert_eq!(code, 0, "{program}: {log}");
        assert!(log.contains("result=\"HTTP 200\""), "{log}");
    }
    let out = chrooted(&root, reloader, &["--version"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hashreload {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST), qemu-aarch64 and openssl"]
fn the_arm64_tls_binary_reloads_over_verified_https_under_qemu() {
    use common::pki::{Ca, Role, TlsServer};
    let dist = dist();
    need("qemu-aarch64");
    need("openssl");
    let t = Tmp::new();
    let ca = Ca::new(&t.path("pki"), "ca");
    let server = ca.issue_with("server", Role::Server, &["localhost"], true, "1");
    let other = Ca::new(&t.path("other"), "other");
    t.write("config/a.yml", "a");
    let s = TlsServer::start(&server, &[]);
    let bin = dist.join("bin/arm64/hashreload-tls");
    let config = t.path("config");
    let url = s.url("localhost");
    for (ca, code, says) in [
        (&ca.cert, 0, "result=\"HTTP 200\""),
        (&other.cert, 1, "TLS: unknown CA"),
    ] {
        let (got, log) = run_cmd(
            Command::new("qemu-aarch64")
                .arg(&bin)
                .args(["-p", config.to_str().unwrap(), "-u", &url, "-X", "GET"])
                .args(["--once", "--attempts", "1", "--tls-ca-file"])
                .arg(ca),
        );
        assert_eq!(got, code, "{log}");
        assert!(log.contains(says), "{log}");
    }
}
