//! The metrics listener over TLS (the -tls build, `tls_server_config`): the rustls server config,
//! rebuilt when its files change, and a connection the server's poll loop drives without ever
//! blocking, so a silent client costs a slot until the server's deadline and nothing more.
//!
//! cert-manager renews a certificate by rewriting its Secret, and the kubelet swaps the files in
//! place: the certificate, key and client CA are stat'ed at every accepted connection, and the
//! config is rebuilt when any of them changed. A new file that does not load is logged (its path
//! and why) and the previous config goes on serving.

use rustls::server::{
    NoServerSessionStorage, ServerConfig, ServerConnection, WebPkiClientVerifier,
};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `tls_server_config` asks for, checked; relative paths are taken from the web config's
/// directory, as exporter-toolkit does.
#[derive(Debug, PartialEq)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Client certificates are verified against these CAs (`VerifyClientCertIfGiven` or
    /// `RequireAndVerifyClientCert`); None: none is asked for.
    pub client_ca_file: Option<PathBuf>,
    /// `RequireAndVerifyClientCert`: a client without a certificate is answered 403 on every
    /// path but /healthz.
    pub require_client_cert: bool,
    /// Offered: TLS 1.2 unless `min_version` is TLS13; TLS 1.3 unless `max_version` is TLS12.
    pub tls12: bool,
    pub tls13: bool,
}

/// The rustls config `tls` asks for, read from its files now; an error names the file and
/// what is wrong with it, never its content.
pub fn server_config(tls: &ServerTls) -> Result<Arc<ServerConfig>, String> {
    let provider = crate::tls::provider();
    let versions: &[_] = match (tls.tls12, tls.tls13) {
        (true, true) => &[&rustls::version::TLS13, &rustls::version::TLS12],
        (false, _) => &[&rustls::version::TLS13],
        (true, false) => &[&rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let bad = |e: &dyn std::fmt::Display| format!("{}: {e}", ca.display());
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::certs(ca)? {
                roots.add(cert).map_err(|e| bad(&e))?;
            }
            // A certificate, when presented, must verify. One is not required by the
            // handshake even with RequireAndVerifyClientCert: the server answers 403 to every
            // path but /healthz without one (`Conn::lacks_client_cert`), so the kubelet's probes,
            // which present none, still reach /healthz.
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated();
            builder.with_client_cert_verifier(v.build().map_err(|e| bad(&e))?)
        }
    };
    let (certs, key) = (
        crate::tls::certs(&tls.cert_file)?,
        crate::tls::key(&tls.key_file)?,
    );
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        let (c, k) = (tls.cert_file.display(), tls.key_file.display());
        format!("{c} with {k}: {e}")
    })?;
    // One request per connection and a handful of clients: resuming sessions would save little
    // and keep state (and, after a rotation, the old certificate's sessions) in memory.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Identifies a file's content without reading it (`volume::stat_key`); None when missing.
type Stamp = Option<[i64; 7]>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| crate::volume::stat_key(&m))
}

/// Makes the TLS connections, with the config of the files as they are now.
pub struct Acceptor {
    tls: ServerTls,
    /// The files' stamps when the config was last built, or tried.
    stamps: [Stamp; 3],
    config: Arc<ServerConfig>,
}

impl Acceptor {
    /// Reads the files; an error (naming the file) if they do not make a config.
    pub fn new(tls: ServerTls) -> Result<Acceptor, String> {
        let stamps = stamps(&tls);
        let config = server_config(&tls)?;
        Ok(Acceptor {
            tls,
            stamps,
            config,
        })
    }

    /// A TLS connection over `tcp`, which is non-blocking; the handshake happens as it is read.
    pub fn accept(&mut self, tcp: TcpStream) -> Option<Conn> {
        self.refresh();
        let tls = ServerConnection::new(self.config.clone()).ok()?;
        Some(Conn {
            tls,
            tcp,
            closing: false,
            require_client_cert: self.tls.require_client_cert,
        })
    }

    /// Rebuilds the config if a file changed since the last try (once per change, so a broken
    /// file is logged once, not at every connection).
    fn refresh(&mut self) {
        let now = stamps(&self.tls);
        if now == self.stamps {
            return;
        }
        self.stamps = now;
        let cert = self.tls.cert_file.display();
        match server_config(&self.tls) {
            Ok(config) => {
                self.config = config;
                crate::log::info("TLS files reloaded", &[("cert_file", &cert)]);
            }
            Err(e) => crate::log::warn(
                "TLS files changed but do not load; serving the previous ones",
                &[("error", &e)],
            ),
        }
    }
}

fn stamps(tls: &ServerTls) -> [Stamp; 3] {
    let ca = tls.client_ca_file.as_deref();
    [
        stamp(&tls.cert_file),
        stamp(&tls.key_file),
        ca.and_then(stamp),
    ]
}

/// One TLS connection on a non-blocking socket. Reads and writes go through rustls; whatever
/// it queues (handshake records, alerts, the answer) is sent as far as the socket takes it, and
/// WouldBlock tells the caller to poll again (for output too while `wants_write`).
pub struct Conn {
    tls: ServerConnection,
    tcp: TcpStream,
    /// close_notify is queued: the answer is complete.
    closing: bool,
    /// `RequireAndVerifyClientCert`: every path but /healthz needs a verified certificate.
    require_client_cert: bool,
}

impl Conn {
    pub fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    /// A certificate is required and the client presented none (one it presents is verified in
    /// the handshake, which fails if it does not verify).
    pub fn lacks_client_cert(&self) -> bool {
        self.require_client_cert && self.tls.peer_certificates().is_none()
    }

    /// Whether records are waiting for the socket to take them.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// After the whole answer: closes the TLS session (close_notify) and sends what is left.
    /// True when done, or when the connection failed and there is nothing more to do.
    pub fn finish(&mut self) -> bool {
        if !self.closing {
            self.tls.send_close_notify();
            self.closing = true;
        }
        !matches!(self.send(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends what rustls queued, until it is all out or the socket would block.
    fn send(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Logs why the connection failed (rustls' reason and the peer), and sends the alert
    /// rustls queued for it if the socket takes it.
    fn failed(&mut self, e: &rustls::Error) {
        let what = match self.tls.is_handshaking() {
            true => "TLS handshake failed",
            false => "TLS connection failed",
        };
        let peer = self
            .tcp
            .peer_addr()
            .map_or(String::new(), |a| a.to_string());
        crate::log::warn(what, &[("peer", &peer), ("error", e)]);
        let _ = self.send();
    }
}

impl Read for Conn {
    /// Plaintext, once the handshake is done; Ok(0) at the end of the stream. Each turn of the
    /// loop takes bytes off the socket or returns.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.send()?;
            match self.tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if self.tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                self.failed(&e);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(buf)?;
        match self.send() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::{Duration, Instant};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "hashreload-tls-server-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        /// A self-signed P-256 certificate for localhost, `NAME.pem` and `NAME.key` (openssl).
        fn cert(&self, name: &str) -> (PathBuf, PathBuf) {
            let (cert, key) = (
                self.0.join(format!("{name}.pem")),
                self.0.join(format!("{name}.key")),
            );
            let out = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
                .args(["-addext", "subjectAltName=DNS:localhost"])
                .args(["-addext", "basicConstraints=critical,CA:FALSE"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (cert, key)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn server_tls(cert: PathBuf, key: PathBuf) -> ServerTls {
        ServerTls {
            cert_file: cert,
            key_file: key,
            client_ca_file: None,
            require_client_cert: false,
            tls12: true,
            tls13: true,
        }
    }

    #[test]
    fn stamps_see_a_swap_and_an_edit_in_place() {
        let d = Dir::new("stamps");
        let f = d.0.join("tls.crt");
        std::fs::write(&f, "one").unwrap();
        let first = stamp(&f);
        assert!(first.is_some());
        assert_eq!(stamp(&f), first);
        // The kubelet's way: a new file renamed over the old one.
        std::fs::write(d.0.join("new"), "one").unwrap();
        std::fs::rename(d.0.join("new"), &f).unwrap();
        let swapped = stamp(&f);
        assert_ne!(swapped, first);
        std::fs::write(&f, "two").unwrap();
        assert_ne!(stamp(&f), swapped);
        std::fs::remove_file(&f).unwrap();
        assert_eq!(stamp(&f), None);
    }

    #[test]
    #[ignore = "needs openssl"]
    fn new_files_are_taken_and_broken_ones_are_not() {
        let d = Dir::new("refresh");
        let (cert, key) = d.cert("one");
        let mut a = Acceptor::new(server_tls(cert.clone(), key.clone())).unwrap();
        let first = a.config.clone();
        a.refresh();
        assert!(Arc::ptr_eq(&a.config, &first), "nothing changed");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n").unwrap();
        a.refresh();
        assert!(Arc::ptr_eq(&a.config, &first), "a broken file is not taken");
        assert_eq!(
            a.stamps,
            stamps(&a.tls),
            "and not tried again until it changes"
        );
        let (two, two_key) = d.cert("two");
        std::fs::rename(two, &cert).unwrap();
        a.refresh();
        assert!(Arc::ptr_eq(&a.config, &first), "the old key does not match");
        std::fs::rename(two_key, &key).unwrap();
        a.refresh();
        assert!(!Arc::ptr_eq(&a.config, &first), "the new pair is taken");
    }

    /// A rustls client on its own thread against a `Conn` driven as the server's poll loop
    /// drives it: non-blocking, WouldBlock meaning "poll again".
    #[test]
    #[ignore = "needs openssl"]
    fn a_request_and_its_answer_over_a_non_blocking_socket() {
        let d = Dir::new("conn");
        let (cert, key) = d.cert("server");
        let mut a = Acceptor::new(server_tls(cert.clone(), key)).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::thread::spawn(move || {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(crate::tls::certs(&cert).unwrap().remove(0))
                .unwrap();
            let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = "localhost".try_into().unwrap();
            let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            let mut answer = Vec::new();
            // Ends cleanly only at the server's close_notify.
            s.read_to_end(&mut answer).map(|_| answer)
        });
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut c = a.accept(tcp).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no request");
            let mut buf = [0u8; 7];
            match c.read(&mut buf) {
                Ok(n) => request.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        let answer = vec![b'x'; 100_000];
        let mut written = 0;
        while written < answer.len() || !c.finish() {
            assert!(Instant::now() < deadline, "answer not sent");
            match c.write(&answer[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(client.join().unwrap().unwrap(), answer);
    }

    #[test]
    #[ignore = "needs openssl"]
    fn a_client_that_is_not_tls_gets_an_error() {
        let d = Dir::new("plain");
        let (cert, key) = d.cert("server");
        let mut a = Acceptor::new(server_tls(cert, key)).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut plain = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        plain.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let (tcp, _) = listener.accept().unwrap();
        let mut c = a.accept(tcp).unwrap();
        let e = c.read(&mut [0u8; 64]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
