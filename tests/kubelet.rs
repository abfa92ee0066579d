//! The real binary against volumes written exactly as the kubelet writes them, and against plain
//! directories with everything odd a directory can hold.

mod common;
use common::*;
use std::os::unix::fs::symlink;

#[test]
fn content_change_reloads_once_with_the_coreutils_digest() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    let first = payload(&[("prometheus.yml", "scrape_configs: []\n")]);
    v.write(&first);
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol")).url(r.url("/-/reload")).start();
    assert!(p
        .log()
        .contains(&format!("digest={}", &coreutils_digest(&first)[..12])));

    let second = payload(&[("prometheus.yml", "scrape_configs: [{job_name: x}]\n")]);
    v.write(&second);
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    let req = &r.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/-/reload");
    assert_eq!(req.digest(), coreutils_digest(&second));
    p.wait_scans(3);
    assert_eq!(r.count(), 1, "one change, one reload");
    assert!(
        p.log().contains("added=0 changed=1 removed=0"),
        "{}",
        p.log()
    );
}

#[test]
fn identical_content_rotation_does_not_reload() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "a"), ("rules/b.yml", "b")]));
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol")).url(r.url("/-/reload")).start();
    for _ in 0..3 {
        v.rotate_identical();
        p.wait_scans(2);
    }
    // The kubelet itself skips identical writes; other writers rotate anyway.
    assert!(!v.write_with(&payload(&[("a.yml", "a"), ("rules/b.yml", "b")]), |_| {}));
    p.wait_scans(2);
    assert_eq!(r.count(), 0, "{}", p.log());
    assert_eq!(p.count("content changed"), 0);
}

#[test]
fn keys_added_removed_and_nested_are_changes() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    let r = Receiver::start(vec![]);
    v.write(&payload(&[("a.yml", "a")]));
    let p = Run::new(t.path("vol")).url(r.url("/-/reload")).start();
    let steps = [
        payload(&[("a.yml", "a"), ("b.yml", "b")]),
        payload(&[
            ("a.yml", "a"),
            ("b.yml", "b"),
            ("rules/x/deep.yml", "d"),
            ("rules/y.yml", "y"),
        ]),
        payload(&[("a.yml", "a"), ("b.yml", "b"), ("rules/y.yml", "y")]),
        payload(&[("b.yml", "b"), ("rules/y.yml", "y2")]),
    ];
    for (i, s) in steps.iter().enumerate() {
        v.write(s);
        assert!(
            wait_until(10, || r.count() == i + 1),
            "step {i}: {}",
            p.log()
        );
        assert_eq!(r.requests()[i].digest(), coreutils_digest(s), "step {i}");
    }
    let log = p.log();
    for counts in [
        "added=1 changed=0 removed=0",
        "added=2 changed=0 removed=0",
        "added=0 changed=0 removed=1",
        "added=0 changed=1 removed=1",
    ] {
        assert!(log.contains(counts), "{counts}: {log}");
    }
}

#[test]
fn every_intermediate_state_of_a_write_reads_as_old_or_new() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    let old = payload(&[("a.yml", "old"), ("gone.yml", "g")]);
    let new = payload(&[("a.yml", "new"), ("added.yml", "n")]);
    v.write(&old);
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol")).url(r.url("/-/reload")).start();
    let (old_d, new_d) = (coreutils_digest(&old), coreutils_digest(&new));
    let mut seen = Vec::new();
    v.write_with(&new, |step| {
        // Let several scans look at each intermediate state.
        p.wait_scans(3);
        seen.push((step, r.digests()));
    });
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), std::slice::from_ref(&new_d));
    for (step, digests) in seen {
        let expect: &[String] = match step {
            common::Step::Written | common::Step::DataTmp => &[],
            _ => std::slice::from_ref(&new_d),
        };
        assert_eq!(digests, expect, "after {step:?} (old digest {old_d})");
    }
}

#[test]
fn a_swap_landing_mid_scan_is_read_again_never_torn() {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    // A big file makes each scan long, so swaps land in the middle of one.
    let big = "x".repeat(20 << 20);
    let snapshot = |i: usize| payload(&[("big.bin", big.as_str()), ("n.yml", &i.to_string())]);
    v.write(&snapshot(0));
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol"))
        .url(r.url("/"))
        .interval("1ms")
        .start();
    let mut written = vec![coreutils_digest(&snapshot(0))];
    let mut i = 0;
    while p.count("reading again") == 0 && i < 200 {
        i += 1;
        v.write(&snapshot(i));
        written.push(coreutils_digest(&snapshot(i)));
    }
    assert!(
        p.count("reading again") > 0,
        "no swap landed mid-scan in {i} writes"
    );
    let last = written.last().unwrap().clone();
    assert!(
        wait_until(20, || r.digests().last() == Some(&last)),
        "{}",
        p.log()
    );
    for d in r.digests() {
        assert!(written.contains(&d), "torn digest {d} delivered");
    }
}

#[test]
fn copied_volume_without_symlinks_ignores_dotdot_entries() {
    // Sandboxed runtimes (kata) copy the volume: `..data` is a real directory.
    let t = Tmp::new();
    t.write("vol/..data/a.yml", "a");
    t.write("vol/..2026_11_25_10_12_31.1/a.yml", "a");
    t.write("vol/a.yml", "a");
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol")).url(r.url("/-/reload")).start();
    assert!(p.log().contains("files=1 "), "{}", p.log());
    t.write("vol/..data/a.yml", "changed only in a dotdot dir");
    p.wait_scans(3);
    assert_eq!(r.count(), 0);
    t.write("vol/a.yml", "b");
    assert!(wait_until(10, || r.count() == 1));
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&payload(&[("a.yml", "b")]))
    );
}

#[test]
fn plain_directory_with_fifo_devices_loops_and_a_big_file() {
    let t = Tmp::new();
    t.write("d/small.yml", "s");
    t.write("d/big.bin", vec![7u8; 50 << 20]);
    symlink("/dev/zero", t.path("d/zero")).unwrap();
    symlink(t.path("d"), t.path("d/loop")).unwrap();
    symlink("/", t.path("d/root")).unwrap();
    let fifo = std::ffi::CString::new(t.path("d/fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("d")).url(r.url("/-/reload")).start();
    assert!(p.log().contains("files=2 "), "{}", p.log());
    t.write("d/small.yml", "s2");
    assert!(wait_until(20, || r.count() == 1), "{}", p.log());
    // coreutils over the regular files only.
    let plain = Tmp::new();
    plain.write("small.yml", b"s2");
    plain.write("big.bin", vec![7u8; 50 << 20]);
    assert_eq!(r.digests()[0], coreutils_digest_of_dir(&plain.0));
}

#[test]
fn a_single_file_root_and_a_root_that_disappears_and_returns() {
    let t = Tmp::new();
    t.write("conf/app.yml", "v1");
    t.write("other/x", "x");
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("conf/app.yml"))
        .path(t.path("other"))
        .url(r.url("/"))
        .start();
    assert!(p.log().contains("files=1"));
    std::fs::remove_dir_all(t.path("other")).unwrap();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    t.write("other/x", "x");
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    t.write("conf/app.yml", "v2");
    assert!(wait_until(10, || r.count() == 3), "{}", p.log());
    let d = r.digests();
    assert_ne!(d[0], d[1]);
    assert_ne!(d[1], d[2]);
    // Several roots: SHA-256 of `<root digest>  <root as given>\n` per root, in order.
    let file_root = sha256_hex(format!("{}  app.yml\n", sha256_hex(b"v2")).as_bytes());
    let dir_root = coreutils_digest(&payload(&[("x", "x")]));
    let text = format!(
        "{file_root}  {}\n{dir_root}  {}\n",
        t.path("conf/app.yml").display(),
        t.path("other").display()
    );
    assert_eq!(d[2], sha256_hex(text.as_bytes()));
}

#[test]
#[ignore = "needs root and setpriv"]
fn an_unreadable_file_is_listed_with_the_marker_and_logged_once() {
    use std::os::unix::fs::PermissionsExt;
    need_root();
    need("setpriv");
    let t = Tmp::new();
    t.write("d/ok.yml", "ok");
    t.write("d/secret.yml", "s");
    let secret = t.path("d/secret.yml");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let r = Receiver::start(vec![]);
    // Root reads everything: run as nobody.
    let p = Run::new(t.path("d")).url(r.url("/")).nobody().start();
    let manifest = format!(
        "{}  ok.yml\n{}  secret.yml\n",
        sha256_hex(b"ok"),
        "0".repeat(64)
    );
    assert!(
        p.log().contains(&format!(
            "digest={}",
            &sha256_hex(manifest.as_bytes())[..12]
        )),
        "{}",
        p.log()
    );
    p.wait_scans(5);
    assert_eq!(p.count("cannot read"), 1, "{}", p.log());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(
        r.digests()[0],
        coreutils_digest(&payload(&[("ok.yml", "ok"), ("secret.yml", "s")]))
    );
}

#[test]
fn a_kubelet_swap_is_seen_between_full_scans() {
    let p = swap_between_full_scans(&[]);
    assert_eq!(p.count("data_check=200ms"), 1, "{}", p.log());
}

#[test]
fn a_kubelet_swap_is_seen_between_full_scans_at_a_shorter_data_check() {
    let p = swap_between_full_scans(&["--data-check-interval", "20ms"]);
    assert_eq!(p.count("data_check=20ms"), 1, "{}", p.log());
}

#[test]
fn without_the_data_check_a_swap_waits_for_the_full_scan() {
    // With the default check a swap would be seen within 200 ms, long before the 3 s scan.
    let (_t, _v, _r, p) = one_swap_delivered("3s", &["--data-check-interval", "0"]);
    assert_eq!(p.count("data_check=off"), 1, "{}", p.log());
    assert_eq!(p.count("..data changed"), 0, "{}", p.log());
}

fn swap_between_full_scans(flags: &[&str]) -> Proc {
    // With an hour between full scans, only the `..data` check can see this change.
    let (_t, mut v, r, p) = one_swap_delivered("1h", flags);
    assert!(
        p.log().contains("..data changed, scanning now"),
        "{}",
        p.log()
    );
    // An identical rotation changes `..data` too: it is scanned, and not delivered.
    v.rotate_identical();
    p.wait_for_n("..data changed, scanning now", 2);
    p.wait_for_n("msg=scanned", 3);
    assert_eq!(r.count(), 1);
    p
}

/// A kubelet volume watched at `interval` with `flags`, updated once; returns once that update
/// was delivered.
fn one_swap_delivered(interval: &str, flags: &[&str]) -> (Tmp, Volume, Receiver, Proc) {
    let t = Tmp::new();
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("a.yml", "1")]));
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("vol"))
        .url(r.url("/"))
        .interval(interval)
        .args(flags)
        .start();
    let new = payload(&[("a.yml", "2")]);
    v.write(&new);
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    assert_eq!(r.digests(), [coreutils_digest(&new)]);
    (t, v, r, p)
}

#[test]
fn with_the_stat_cache_edits_and_kubelet_swaps_are_still_changes() {
    let t = Tmp::new();
    t.write("plain/a.yml", "1");
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("b.yml", "1")]));
    let r = Receiver::start(vec![]);
    let p = Run::new(t.path("plain"))
        .path(t.path("vol"))
        .url(r.url("/"))
        .args(&["--stat-cache"])
        .start();
    // An in-place edit of the same size, right away: racy, so it is read again.
    t.write("plain/a.yml", "2");
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    v.write(&payload(&[("b.yml", "2")]));
    assert!(wait_until(10, || r.count() == 2), "{}", p.log());
    t.write("plain/a.yml", "3");
    assert!(wait_until(10, || r.count() == 3), "{}", p.log());
}

#[test]
#[ignore = "needs strace"]
fn polls_without_inotify_or_fanotify_under_strace() {
    need("strace");
    let t = Tmp::new();
    t.write("plain/a.yml", "1");
    let mut v = Volume::new(t.path("vol"));
    v.write(&payload(&[("b.yml", "1")]));
    let r = Receiver::start(vec![]);
    let trace = t.path("trace");
    let mut p = Run::new(t.path("plain"))
        .path(t.path("vol"))
        .url(r.url("/"))
        .default_interval()
        .under(&["strace", "-f", "-o", trace.to_str().unwrap()])
        .start();
    // At the default settings: a kubelet swap is found by the `..data` check.
    let new = payload(&[("b.yml", "2")]);
    v.write(&new);
    assert!(wait_until(10, || r.count() == 1), "{}", p.log());
    let strace = p.child.id();
    let inner: i32 = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(inner, libc::SIGTERM) };
    assert!(p.wait_exit(10).is_some(), "{}", p.log());
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert!(calls.contains("/vol/..data"), "the trace holds the scans");
    assert!(
        p.log().contains("..data changed, scanning now"),
        "{}",
        p.log()
    );
    for call in ["inotify_", "fanotify_"] {
        assert!(!calls.contains(call), "{call} in the trace");
    }
}
