//! One-shot runs: `hashreload digest` against coreutils, `--expect`, `--once` and its exit codes,
//! and the daemon's state file across kill -9.

mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

/// Runs `hashreload ARGS`; returns the exit code, stdout bytes and stderr.
fn hashreload(args: &[&std::ffi::OsStr]) -> (i32, Vec<u8>, String) {
    let out = Command::new("timeout")
        .arg("20")
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// A nested tree whose names hold a space, a newline, a carriage return, a backslash and bytes
/// that are not UTF-8.
fn awkward_tree(t: &Tmp) -> std::path::PathBuf {
    let root = t.path("tree");
    let names: [&[u8]; 6] = [
        b"plain.yml",
        b"with space.yml",
        b"new\nline",
        b"cr\rname",
        b"back\\slash",
        b"bad\xff\xfe",
    ];
    for (i, name) in names.iter().enumerate() {
        let dir = root.join(if i % 2 == 0 { "sub dir/deeper" } else { "" });
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(std::ffi::OsStr::from_bytes(name)),
            format!("content {i}\n"),
        )
        .unwrap();
    }
    root
}

#[test]
fn the_manifest_passes_sha256sum_check_strict_and_its_hash_is_the_digest() {
    let t = Tmp::new();
    let root = awkward_tree(&t);
    let (code, manifest, err) = hashreload(&[os("digest"), root.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        manifest.iter().filter(|&&b| b == b'\n').count(),
        6,
        "one line per file"
    );
    std::fs::write(t.path("manifest"), &manifest).unwrap();
    let check = Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet"])
        .arg(t.path("manifest"))
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (_, sum, _) = hashreload(&[os("digest"), os("--sum"), root.as_os_str()]);
    let sum = String::from_utf8(sum).unwrap();
    assert_eq!(
        sum.trim(),
        sha256_hex(&manifest),
        "`digest | sha256sum` is the digest"
    );

    // The README's one-liner, with coreutils alone.
    let one_liner = "find -L . -type f ! -path './..*' -printf '%P\\0' | LC_ALL=C sort -z \
                     | xargs -0 sha256sum -- | sha256sum";
    let out = Command::new("sh")
        .args(["-c", one_liner])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout)[..64], *sum.trim());

    // The daemon acknowledges the same digest.
    let r = Receiver::start(vec![]);
    let p = Run::new(&root)
        .url(r.url("/"))
        .default_interval()
        .args(&["--reload-on-start"])
        .start();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests()[0], sum.trim());
}

#[test]
fn the_fixed_test_vector_of_the_readme() {
    let t = Tmp::new();
    t.write("vector/prometheus.yml", "global: {}\n");
    t.write("vector/rules/alerts.yml", "groups: []\n");
    let (code, out, _) = hashreload(&[os("digest"), t.path("vector").as_os_str()]);
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ef8af2ac27cebec59570461304d977a99c0e78fb11d794e201107452be78f93a  prometheus.yml\n\
         761adf8d97e15214e4da44effe63bc331092f597e3089818d5825c87444b1f27  rules/alerts.yml\n"
    );
    let (_, sum, _) = hashreload(&[os("digest"), os("--sum"), t.path("vector").as_os_str()]);
    assert_eq!(
        String::from_utf8(sum).unwrap(),
        "937b3adf726c40de730a15d10ddc6609d69c8996c5bc8848e70b35d96b3b805e\n"
    );
}

#[test]
fn several_roots_print_one_line_each_and_json_holds_everything() {
    let t = Tmp::new();
    t.write("a/x", "x");
    t.write("b/y", "y");
    let (a, b) = (t.path("a"), t.path("b"));
    let (code, text, _) = hashreload(&[os("digest"), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 0);
    let text = String::from_utf8(text).unwrap();
    let want = format!(
        "{}  {}\n{}  {}\n",
        coreutils_digest_of_dir(&a),
        a.display(),
        coreutils_digest_of_dir(&b),
        b.display()
    );
    assert_eq!(text, want);
    let (_, sum, _) = hashreload(&[os("digest"), os("--sum"), a.as_os_str(), b.as_os_str()]);
    assert_eq!(
        String::from_utf8(sum).unwrap().trim(),
        sha256_hex(text.as_bytes())
    );
    let (code, doc, _) = hashreload(&[os("digest"), os("--json"), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 0);
    let doc = String::from_utf8(doc).unwrap();
    assert_eq!(json(&doc, "d['digest']"), sha256_hex(text.as_bytes()));
    assert_eq!(
        json(&doc, "[r['root'] for r in d['roots']]"),
        format!("['{}', '{}']", a.display(), b.display())
    );
    assert_eq!(json(&doc, "d['roots'][1]['files'][0]['path']"), "y");
    assert_eq!(
        json(&doc, "d['roots'][1]['files'][0]['sha256']"),
        sha256_hex(b"y")
    );
}

#[test]
fn expect_exits_3_and_names_what_differs() {
    let t = Tmp::new();
    t.write("conf/a.yml", "a");
    t.write("conf/b.yml", "b");
    let conf = t.path("conf");
    let (_, approved, _) = hashreload(&[os("digest"), conf.as_os_str()]);
    std::fs::write(t.path("approved"), &approved).unwrap();
    let digest = sha256_hex(&approved);
    let at_file = format!("@{}", t.path("approved").display());
    assert_eq!(
        hashreload(&[os("digest"), os("--expect"), os(&digest), conf.as_os_str()]).0,
        0
    );
    assert_eq!(
        hashreload(&[os("digest"), os("--expect"), os(&at_file), conf.as_os_str()]).0,
        0
    );
    t.write("conf/b.yml", "tampered");
    t.write("conf/c.yml", "new");
    let (code, _, err) = hashreload(&[os("digest"), os("--expect"), os(&digest), conf.as_os_str()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("content does not match"), "{err}");
    let (code, _, err) = hashreload(&[
        os("digest"),
        os(&format!("--expect={at_file}")),
        conf.as_os_str(),
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("\nchanged: b.yml\nunexpected: c.yml"), "{err}");
    // With --once nothing is delivered when the content is not the approved one.
    let r = Receiver::start(vec![]);
    let (code, _, err) = hashreload(&[
        os("--once"),
        os("-p"),
        conf.as_os_str(),
        os("-u"),
        os(&r.url("/")),
        os("--expect"),
        os(&at_file),
    ]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(r.count(), 0);
    // Usage errors.
    assert_eq!(
        hashreload(&[os("digest"), os("--expect"), os("abc"), conf.as_os_str()]).0,
        2
    );
    assert_eq!(
        hashreload(&[os("digest"), os("--bogus"), conf.as_os_str()]).0,
        2
    );
    assert_eq!(hashreload(&[os("digest")]).0, 2);
    assert_eq!(hashreload(&[os("digest"), os("/nonexistent/x")]).0, 2);
}

#[test]
fn once_delivers_records_and_leaves_the_state_alone_on_failure() {
    let t = Tmp::new();
    t.write("conf/a.yml", "1");
    let conf = t.path("conf");
    let state = t.path("state");
    let r = Receiver::start(vec![]);
    let url = r.url("/");
    let run = |extra: &[&str]| {
        let mut args = vec![
            os("--once"),
            os("-p"),
            conf.as_os_str(),
            os("-u"),
            os(&url),
            os("--state-file"),
            state.as_os_str(),
            os("--retry-interval"),
            os("50ms"),
        ];
        args.extend(extra.iter().map(|s| os(s)));
        hashreload(&args)
    };
    // No state yet: deliver, then record.
    let (code, _, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r.count(), 1);
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert_eq!(recorded, format!("{}  {}\n", r.digests()[0], r.url("/")));
    // Unchanged: nothing to do.
    assert_eq!(run(&[]).0, 0);
    assert_eq!(r.count(), 1);
    // Changed, and the target fails every attempt: exit 1, the state untouched.
    t.write("conf/a.yml", "2");
    for _ in 0..2 {
        r.push(Reply::Status(500, "broken"));
    }
    let (code, _, err) = run(&["--attempts", "2"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r.count(), 3, "two attempts");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), recorded);
    // The next run tries again and succeeds.
    let (code, _, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r.count(), 4);
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .starts_with(&r.digests()[3]));
    // A usage error.
    assert_eq!(run(&["--attempts", "0"]).0, 2);
}

#[test]
fn a_sidecar_killed_and_restarted_delivers_what_it_missed_once() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "1")]));
    let state = t.path("emptydir/state");
    std::fs::create_dir_all(t.path("emptydir")).unwrap();
    let r = Receiver::start(vec![]);
    let start = || {
        Run::new(t.path("vol"))
            .url(r.url("/"))
            .interval("50ms")
            .args(&["--state-file", state.to_str().unwrap()])
            .start()
    };
    let mut p = start();
    assert!(
        wait_until(5, || state.exists()),
        "the state is recorded at start"
    );
    // kill -9, then the kubelet writes a change while the sidecar is down.
    unsafe { libc::kill(p.child.id() as i32, libc::SIGKILL) };
    p.wait_exit(5).unwrap();
    let new = payload(&[("a.yml", "2")]);
    v.write(&new);
    let p = start();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), [coreutils_digest(&new)]);
    assert!(
        p.log().contains("content changed while stopped"),
        "{}",
        p.log()
    );
    let delivered = std::fs::read_to_string(&state).unwrap();
    drop(p);

    // Restarted with nothing missed: no reload at start.
    let p = start();
    p.wait_scans(5);
    assert_eq!(r.count(), 1);
    drop(p);

    // A crash after a delivery but before the state write: at most one duplicate, never a miss.
    std::fs::write(
        &state,
        delivered.replace(
            &r.digests()[0],
            &coreutils_digest(&payload(&[("a.yml", "1")])),
        ),
    )
    .unwrap();
    let p = start();
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    p.wait_scans(5);
    assert_eq!(r.count(), 2);
    assert_eq!(r.digests()[1], coreutils_digest(&new));
}
