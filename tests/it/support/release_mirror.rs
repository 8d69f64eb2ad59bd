//! A release mirror on loopback for the installers of the action and the GitLab template:
//! archives packed by the release workflow's own script (`.ci/release-archive.sh`), served over
//! plain HTTP, and an HTTPS front (rustls, a throwaway self-signed certificate) that redirects
//! every request to it, for "a redirect to plain HTTP is not followed".

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::http::{Response, Server};

/// A release archive as the release workflow packs it, around a stand-in `tagguard` that runs
/// the binary under test (the debug binary itself is ~150 MB).
#[derive(Clone)]
pub struct Archive {
    /// `tagguard-<version>-<arch>-unknown-linux-musl.tar.gz`
    pub name: String,
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
    /// The `.sha256` file the release writes beside it.
    pub sha256_file: String,
}

impl Archive {
    /// The genuine archive of `version` for this machine's architecture.
    pub fn genuine(version: &str) -> Archive {
        Archive::pack(version, "")
    }

    /// An archive of the same name whose `tagguard` also does something else (here: says so on
    /// stderr), with its own matching `.sha256`: what an attacker who replaced a release asset
    /// would serve.
    pub fn tampered(version: &str) -> Archive {
        Archive::pack(version, "echo 'tampered tagguard' >&2\n")
    }

    /// Lines of a release checksums table (`release-checksums.sha256`) that vouch for `self`.
    pub fn table_line(&self) -> String {
        format!("{}  {}\n", self.sha256, self.name)
    }

    fn pack(version: &str, extra: &str) -> Archive {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tagguard");
        std::fs::write(
            &exe,
            format!(
                "#!/bin/sh\n{extra}exec '{}' \"$@\"\n",
                env!("CARGO_BIN_EXE_tagguard")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let target = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        let name = format!("tagguard-{version}-{target}.tar.gz");
        let out = dir.path().join("dist");
        let packed = std::process::Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/release-archive.sh"))
            .args([version, &target])
            .arg(&exe)
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            packed.status.success(),
            "{}",
            String::from_utf8_lossy(&packed.stderr)
        );
        let bytes = std::fs::read(out.join(&name)).unwrap();
        let sha256_file = std::fs::read_to_string(out.join(format!("{name}.sha256"))).unwrap();
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha256_file, format!("{sha256}  {name}\n"));
        Archive {
            name,
            bytes,
            sha256,
            sha256_file,
        }
    }
}

/// Serves `archive` (and its own `.sha256`) at `/v<version>/<name>` over plain HTTP on
/// loopback; anything else is a 404. Every request is recorded.
pub fn serve(version: &str, archive: Archive) -> Server {
    let path = format!("/v{version}/{}", archive.name);
    Server::start(move |req| {
        if req.path() == path {
            Response::new(200).body(archive.bytes.clone())
        } else if req.path() == format!("{path}.sha256") {
            Response::new(200).body(archive.sha256_file.clone().into_bytes())
        } else {
            Response::new(404)
        }
    })
}

/// An HTTPS server on 127.0.0.1 that answers every request with a 302 to the same path on
/// `http://<to>`: a release URL that looks right and hands the download to plain HTTP.
pub struct HttpsRedirect {
    pub port: u16,
    dir: TempDir,
}

impl HttpsRedirect {
    pub fn start(to: &str) -> HttpsRedirect {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls_pki_types::CertificateDer::from(cert)],
                rustls_pki_types::PrivatePkcs8KeyDer::from(key).into(),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let to = to.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (config, to) = (config.clone(), to.clone());
                std::thread::spawn(move || redirect_one(stream, config, &to));
            }
        });
        HttpsRedirect { port, dir }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The certificate to trust (`CURL_CA_BUNDLE`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
}

fn redirect_one(stream: std::net::TcpStream, config: Arc<rustls::ServerConfig>, to: &str) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://{to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = tls.write_all(answer.as_bytes());
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// A self-signed P-256 certificate for 127.0.0.1 (`cert.pem` in `dir`, for curl) and its DER
/// certificate and PKCS#8 key (for rustls).
fn self_signed(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let openssl = |args: &[&str]| super::token_server::openssl(dir, args);
    super::token_server::self_signed_p256(
        dir,
        ("key.pem", "cert.pem"),
        "2",
        "/CN=127.0.0.1",
        &["subjectAltName=IP:127.0.0.1"],
    );
    openssl(&[
        "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
    ]);
    openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der",
    ]);
    (
        std::fs::read(dir.join("cert.der")).unwrap(),
        std::fs::read(dir.join("key.der")).unwrap(),
    )
}

/// The installer's one line for a redirect to plain HTTP it did not follow, in `log`.
pub fn assert_redirect_refused(log: &str, front: &HttpsRedirect, version: &str) {
    let said = format!(
        "tagguard: could not download {}/v{version}/tagguard-{version}-",
        front.url()
    );
    assert!(log.contains(&said), "{said}:\n{log}");
    let why = "a redirect to another protocol was refused (only https:// is followed from an https:// release URL)";
    assert!(log.contains(why), "{why}:\n{log}");
}

/// The installer's one line for a download that is not `genuine` (served as `tampered` from
/// `host`), naming both checksums, in `log`; the tampered binary never ran.
pub fn assert_tampered_refused(log: &str, genuine: &Archive, tampered: &Archive, host: &str) {
    let version = genuine
        .name
        .strip_prefix("tagguard-")
        .and_then(|rest| rest.split('-').next())
        .unwrap();
    let said = format!(
        "tagguard: {name} downloaded from http://{host}/v{version}/{name} has SHA-256 {bad}, not {good} as released: not installing it",
        name = genuine.name,
        bad = tampered.sha256,
        good = genuine.sha256,
    );
    assert!(log.contains(&said), "{said}:\n{log}");
    assert!(!log.contains("tampered tagguard"), "{log}");
}
