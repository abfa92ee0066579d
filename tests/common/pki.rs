//! Certificates made in the test with the `openssl` command: a CA, certificates it signs for a
//! server or a client, an unrelated CA, and expired or wrongly named ones. EC P-256 keys unless
//! asked for RSA (cert-manager's default), so a run takes milliseconds per certificate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a certificate is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A certificate authority in `dir`: `NAME.pem` and `NAME.key`.
pub struct Ca {
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: PathBuf,
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_key(dir: &Path, key: &str, rsa: bool) {
    let alg: &[&str] = if rsa {
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    } else {
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(alg);
    args.extend_from_slice(&["-out", key]);
    openssl(dir, &args);
}

impl Ca {
    /// A self-signed CA named `name`, valid for a day.
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
        new_key(dir, &key, false);
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-out",
                &cert,
                "-days",
                "1",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Ca {
            cert: dir.join(cert),
            key: dir.join(key),
            dir: dir.to_path_buf(),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), valid for a day.
    pub fn issue(&self, name: &str, role: Role, names: &[&str]) -> Leaf {
        self.issue_with(name, role, names, false, "1")
    }

    /// As `issue`, with an RSA key if `rsa`, and `days` of validity: "-1" gives one that
    /// expired yesterday.
    pub fn issue_with(
        &self,
        name: &str,
        role: Role,
        names: &[&str],
        rsa: bool,
        days: &str,
    ) -> Leaf {
        let dir = &self.dir;
        let (cert, key, csr, ext) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        new_key(dir, &key, rsa);
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let sans: Vec<String> = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect();
        let usage = match role {
            Role::Server => "serverAuth",
            Role::Client => "clientAuth",
        };
        let mut text = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage={usage}\n"
        );
        if !sans.is_empty() {
            text += &format!("subjectAltName={}\n", sans.join(","));
        }
        std::fs::write(dir.join(&ext), text).unwrap();
        let ca_cert = self.cert.to_str().unwrap();
        let ca_key = self.key.to_str().unwrap();
        // openssl 3.0 takes `-days -1`: not after = yesterday (not before stays now), so the
        // certificate is expired for any verifier.
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                ca_cert,
                "-CAkey",
                ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-extfile",
                &ext,
                "-days",
                days,
            ],
        );
        Leaf {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }
}

/// `openssl s_server -www` on 127.0.0.1: an HTTPS server from another TLS stack, answering any
/// `GET /` with 200. Killed on drop.
pub struct TlsServer {
    pub port: u16,
    child: std::process::Child,
}

impl TlsServer {
    /// Serves `leaf`; `extra` adds s_server options (`-Verify 1 -CAfile ...`, `-tls1_2`).
    pub fn start(leaf: &Leaf, extra: &[&str]) -> TlsServer {
        let port = super::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&leaf.cert)
            .arg("-key")
            .arg(&leaf.key)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let server = TlsServer { port, child };
        assert!(
            super::wait_until(10, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "openssl s_server did not listen on {port}"
        );
        server
    }

    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
