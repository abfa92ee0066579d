//! The example manifests in deploy/ are proven, not just written: each hashreload container's
//! args and env are run exactly as written (only mount paths and ports are rewritten) against
//! kubelet-style volumes holding the manifests' own ConfigMap and Secret data.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Reads every hashreload container of every manifest (Python's yaml, which Debian ships).
const EXTRACT: &str = r#"
import glob, sys, yaml
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    data = {}
    for d in docs:
        if d["kind"] == "ConfigMap":
            data[("configMap", d["metadata"]["name"])] = d.get("data", {})
        if d["kind"] == "Secret":
            data[("secret", d["metadata"]["name"])] = d.get("stringData", {})
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        both = [(c, True) for c in pod.get("initContainers", [])] + [(c, False) for c in pod["containers"]]
        for c, init in both:
            if c["name"] != "hashreload":
                continue
            print("CONTAINER", path)
            print("NATIVE", int(init and c.get("restartPolicy") == "Always"))
            if init and c.get("restartPolicy") != "Always":
                print("PROBLEM an init container without restartPolicy: Always never runs beside the server")
            for a in c.get("args", []):
                print("ARG", a)
            for e in c.get("env", []):
                print("ENV", e["name"] + "=" + e["value"])
            for m in c.get("volumeMounts", []):
                v = volumes[m["name"]]
                kind = "configMap" if "configMap" in v else "secret" if "secret" in v else "other"
                name = v.get("configMap", {}).get("name") or v.get("secret", {}).get("secretName")
                print("MOUNT", m["mountPath"])
                for key, value in data.get((kind, name), {}).items():
                    print("FILE", m["mountPath"], key, value.encode().hex())
            live = c["livenessProbe"]
            probe = live["httpGet"]
            # /healthz fails after max(3 x interval, timeout + 2 x interval): 30 s at the defaults.
            defaults = not any(a.split("=")[0] in ("-i", "--interval", "--timeout") for a in c.get("args", []))
            window = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
            print("PROBE", probe["path"], probe["port"])
            sc, res = c.get("securityContext", {}), c.get("resources", {})
            want = [
                (sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true"),
                (sc.get("runAsNonRoot") is True, "runAsNonRoot: true"),
                (sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false"),
                (sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL"),
                (res.get("requests") == {"cpu": "1m", "memory": "4Mi"}, "requests cpu 1m, memory 4Mi"),
                (res.get("limits", {}).get("memory") == "16Mi", "limits memory 16Mi"),
                (probe["path"] == "/healthz", "liveness on /healthz"),
                (defaults and window > 30, "a liveness window above the 30 s /healthz limit (checked for the default --interval and --timeout only: set neither)"),
                (any(a.startswith("--state-file=") for a in c.get("args", [])), "a state file on an emptyDir"),
            ]
            for ok, what in want:
                if not ok:
                    print("PROBLEM", what)
"#;

#[derive(Default, Debug)]
struct Container {
    file: String,
    native: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
    mounts: Vec<String>,
    files: BTreeMap<String, Payload>,
    probe: (String, u16),
    problems: Vec<String>,
}

fn containers() -> Vec<Container> {
    let yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        yaml,
        "python3 cannot import yaml; scripts/install-test-deps installs python3-yaml"
    );
    let deploy = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy"));
    let out = python(EXTRACT, &[deploy]);
    let mut all: Vec<Container> = Vec::new();
    for line in out.lines() {
        let (tag, rest) = line.split_once(' ').unwrap();
        if tag == "CONTAINER" {
            all.push(Container {
                file: rest.to_string(),
                ..Container::default()
            });
            continue;
        }
        let c = all.last_mut().unwrap();
        match tag {
            "NATIVE" => c.native = rest == "1",
            "MOUNT" => c.mounts.push(rest.to_string()),
            "ARG" => c.args.push(rest.to_string()),
            "ENV" => {
                let (k, v) = rest.split_once('=').unwrap();
                c.env.push((k.to_string(), v.to_string()));
            }
            "FILE" => {
                let f: Vec<&str> = rest.split(' ').collect();
                let bytes = (0..f[2].len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&f[2][i..i + 2], 16).unwrap());
                c.files
                    .entry(f[0].to_string())
                    .or_default()
                    .insert(f[1].to_string(), bytes.collect());
            }
            "PROBE" => {
                let (path, port) = rest.split_once(' ').unwrap();
                c.probe = (path.to_string(), port.parse().unwrap());
            }
            "PROBLEM" => c.problems.push(rest.to_string()),
            _ => panic!("{line}"),
        }
    }
    all
}

#[test]
#[ignore = "needs python3 yaml"]
fn the_manifests_hold_a_native_and_a_classic_sidecar_as_documented() {
    let all = containers();
    assert!(all.iter().any(|c| c.native), "a native sidecar example");
    assert!(all.iter().any(|c| !c.native), "a classic sidecar example");
    for c in &all {
        assert!(c.problems.is_empty(), "{}: {:?}", c.file, c.problems);
        assert!(
            c.args.iter().any(|a| a.starts_with("--bearer-token-file=")),
            "{}",
            c.file
        );
    }
}

#[test]
#[ignore = "needs python3 yaml"]
fn each_manifest_runs_as_written() {
    for c in containers() {
        let t = Tmp::new();
        let r = Receiver::start(vec![]);
        let listen = free_port();
        // Kubelet-style volumes standing in for the mounts, holding the manifests' own data
        // (an emptyDir stays empty).
        let mut volumes: Vec<(String, Volume)> = Vec::new();
        for (i, mount) in c.mounts.iter().enumerate() {
            let mut v = Volume::new(t.path(&format!("mount{i}")));
            if let Some(files) = c.files.get(mount) {
                v.write(files);
            }
            volumes.push((mount.clone(), v));
        }
        let rewrite = |s: &str| {
            let mut s = s.replace("127.0.0.1:9090", &format!("127.0.0.1:{}", r.port));
            s = s.replace(":9533", &format!(":{listen}"));
            for (mount, v) in &volumes {
                s = s.replace(mount.as_str(), v.dir.to_str().unwrap());
            }
            s
        };
        let args: Vec<String> = c.args.iter().map(|a| rewrite(a)).collect();
        let mut cmd = Command::new(BIN);
        cmd.args(&args).env_clear();
        for (k, v) in &c.env {
            cmd.env(k, rewrite(v));
        }
        let p = Proc::spawn(&mut cmd);
        p.wait_for("hashreload started");
        assert_eq!(c.probe.1, 9533);
        assert!(
            wait_until(10, || get(listen, &c.probe.0).0 == 200),
            "{}: {}",
            c.file,
            p.log()
        );

        // The ConfigMap changes as the kubelet writes it: the reload arrives, authenticated.
        let (_, config) = volumes
            .iter_mut()
            .find(|(m, _)| m == "/etc/prometheus")
            .unwrap();
        let mut new = c.files["/etc/prometheus"].clone();
        new.insert("prometheus.yml".into(), b"scrape_configs: []\n".to_vec());
        config.write(&new);
        assert!(wait_until(20, || r.count() == 1), "{}: {}", c.file, p.log());
        let token =
            String::from_utf8(c.files["/var/run/secrets/hashreload"]["token"].clone()).unwrap();
        assert_eq!(
            r.requests()[0].header("Authorization"),
            Some(format!("Bearer {token}").as_str())
        );
        assert_eq!(r.digests(), [coreutils_digest(&new)]);
        assert!(
            p.log().starts_with("{\"ts\":"),
            "HASHRELOAD_LOG_FORMAT=json from the manifest"
        );
        // The state file on the emptyDir records the acknowledged digest.
        let (_, state) = volumes
            .iter()
            .find(|(m, _)| m == "/var/run/hashreload")
            .unwrap();
        let recorded = || std::fs::read_to_string(state.dir.join("state")).unwrap_or_default();
        assert!(
            wait_until(10, || recorded().starts_with(&r.digests()[0])),
            "{}",
            recorded()
        );
    }
}
