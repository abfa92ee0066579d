//! What dependency scanners read about the release (scripts/build-image), checked against Cargo's
//! resolved graph for that build (`cargo tree -e normal --target T [--features tls]`): the list
//! cargo-auditable embeds in each of the four binaries (read back with rust-audit-info), and the
//! SBOM beside each image. The default build must list none of the -tls build's crates.
//! `scripts/test` builds the image and points HASHRELOAD_DIST at it; these tests are ignored
//! unless it runs them (`--include-ignored`), and then a missing file fails.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ARCHES: [(&str, &str); 2] = [
    ("amd64", "x86_64-unknown-linux-musl"),
    ("arm64", "aarch64-unknown-linux-musl"),
];
/// Crates only the -tls build has: rustls on ring and what they alone bring.
const TLS_ONLY: [&str; 8] = [
    "rustls",
    "ring",
    "rustls-webpki",
    "rustls-pki-types",
    "untrusted",
    "getrandom",
    "once_cell",
    "zeroize",
];

/// The image's directory; fails the test without one.
fn dist() -> PathBuf {
    let dist = std::env::var_os("HASHRELOAD_DIST")
        .expect("HASHRELOAD_DIST is not set: scripts/test sets it after scripts/build-image");
    PathBuf::from(dist)
}

/// Runs `cmd` to completion within 60 s and returns its stdout; fails the test on a non-zero
/// exit, with its stderr.
fn stdout_of(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    // Read both pipes while waiting, so a full pipe cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let mut status = None;
    if !wait_until(60, || {
        status = child.try_wait().unwrap();
        status.is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not exit within 60 s");
    }
    let (out, err) = (out.join().unwrap().unwrap(), err.join().unwrap().unwrap());
    assert!(status.unwrap().success(), "{cmd:?} failed:\n{err}");
    out
}

/// `name@version` of every package the build for `target` reaches over normal dependencies,
/// hashreload included, as Cargo resolves it (offline: the build has fetched them all).
fn resolved(target: &str, tls: bool) -> BTreeSet<String> {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--frozen", "-e", "normal", "--prefix", "none"])
        .args(["--target", target]);
    if tls {
        cargo.args(["--features", "tls"]);
    }
    let tree = stdout_of(&mut cargo);
    let set: BTreeSet<String> = tree
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some(format!("{name}@{version}"))
        })
        .collect();
    assert!(
        set.contains(&format!("hashreload@{VERSION}")) && set.len() > 10,
        "cargo tree said:\n{tree}"
    );
    set
}

/// The names in a set of `name@version`.
fn names(set: &BTreeSet<String>) -> BTreeSet<&str> {
    set.iter().map(|p| p.split('@').next().unwrap()).collect()
}

/// The default build has none of the -tls crates, the -tls build all of them.
fn tls_crates_only_in_tls(what: &str, set: &BTreeSet<String>, tls: bool) {
    let names = names(set);
    for name in TLS_ONLY {
        assert_eq!(
            names.contains(name),
            tls,
            "{what}: {name} {} expected",
            if tls { "is" } else { "is not" }
        );
    }
}

#[test]
#[ignore = "needs rust-audit-info"]
fn each_binary_carries_its_own_dependency_list() {
    need("rust-audit-info");
    let dist = dist();
    for (variant, tls) in [("", false), ("-tls", true)] {
        for (arch, target) in ARCHES {
            let binary = dist
                .join("bin")
                .join(arch)
                .join(format!("hashreload{variant}"));
            let what = format!("{}", binary.display());
            let audit = stdout_of(Command::new("rust-audit-info").arg(&binary));
            // One line per package: name@version, its kind (runtime or build), root or not.
            let listed = json(
                &audit,
                r#""\n".join(f"{p['name']}@{p['version']} {p.get('kind', 'runtime')} {p.get('root', False)}" for p in d["packages"])"#,
            );
            let mut runtime = BTreeSet::new();
            let mut roots = Vec::new();
            for line in listed.lines() {
                let fields: Vec<&str> = line.split(' ').collect();
                assert_eq!(fields.len(), 3, "{what}: {line}");
                if fields[1] == "runtime" {
                    runtime.insert(fields[0].to_string());
                }
                if fields[2] == "True" {
                    roots.push(fields[0]);
                }
            }
            assert_eq!(roots, [format!("hashreload@{VERSION}")], "{what}: {audit}");
            assert_eq!(
                runtime,
                resolved(target, tls),
                "{what}: the embedded runtime packages are not the build's"
            );
            tls_crates_only_in_tls(&what, &runtime, tls);
            println!("{what}: {} runtime packages embedded", runtime.len());
        }
    }
}

#[test]
#[ignore = "needs the image (HASHRELOAD_DIST)"]
fn each_image_has_an_sbom_of_exactly_its_dependencies() {
    let dist = dist();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    for (variant, tls) in [("", false), ("-tls", true)] {
        let name = format!("hashreload-{VERSION}{variant}.cdx.json");
        let bytes = std::fs::read(dist.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            sums.lines()
                .any(|l| l == format!("{}  {name}", sha256_hex(&bytes))),
            "SHA256SUMS does not list {name} with its digest:\n{sums}"
        );
        let bom = String::from_utf8(bytes).unwrap();
        assert_eq!(
            json(
                &bom,
                r#"(d["bomFormat"], d["specVersion"], d["metadata"]["timestamp"])"#
            ),
            "('CycloneDX', '1.5', '1970-01-01T00:00:00Z')",
            "{name}"
        );
        // Every package, hashreload (the BOM's subject) first: purl, bom-ref, license.
        let listed = json(
            &bom,
            r#""\n".join(f"{c['purl']} {c['bom-ref']} {c['licenses'][0]['expression'] if c['licenses'] else '-'}" for c in [d["metadata"]["component"]] + d["components"])"#,
        );
        let mut purls = BTreeSet::new();
        for (i, line) in listed.lines().enumerate() {
            let (purl, rest) = line.split_once(' ').unwrap();
            let (bom_ref, license) = rest.split_once(' ').unwrap();
            assert_eq!(bom_ref, purl, "{name}: {line}");
            assert_ne!(license, "-", "{name}: {purl} has no license");
            if i == 0 {
                assert_eq!(purl, format!("pkg:cargo/hashreload@{VERSION}"), "{name}");
                assert_eq!(license, env!("CARGO_PKG_LICENSE"), "{name}");
            }
            assert!(purls.insert(purl.to_string()), "{name}: {purl} twice");
        }
        let set: BTreeSet<String> = purls
            .iter()
            .map(|p| p.strip_prefix("pkg:cargo/").unwrap().to_string())
            .collect();
        // One SBOM for both architectures: each resolves exactly these.
        for (_, target) in ARCHES {
            assert_eq!(
                set,
                resolved(target, tls),
                "{name}: not the packages of the {target} build"
            );
        }
        tls_crates_only_in_tls(&name, &set, tls);
        // The graph only names listed packages, and says what hashreload depends on.
        let refs = json(
            &bom,
            r#"" ".join(sorted({r for e in d["dependencies"] for r in [e["ref"]] + e["dependsOn"]}))"#,
        );
        let refs: BTreeSet<String> = refs.split(' ').map(str::to_string).collect();
        assert_eq!(refs, purls, "{name}: the dependency graph's packages");
        println!("{name}: {} packages", purls.len());
    }
}
