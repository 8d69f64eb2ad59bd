//! A real registry (CNCF distribution 2.8) as a plain process on a free loopback port, in one of
//! four modes, with images seeded by skopeo from OCI layouts written here.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::token_server::{self, Accounts, TokenServer, openssl, self_signed_p256};

pub const USER: &str = "tg-user";
/// Distinctive so a leak is easy to spot in logs.
pub const PASSWORD: &str = "pw-5ecr3t-never-log-me";
pub const REFRESH_TOKEN: &str = "rt-5ecr3t-never-log-me";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Basic,
    Tls,
    Token,
}

pub struct Registry {
    pub host: String,
    pub mode: Mode,
    pub dir: tempfile::TempDir,
    /// The CA that signed the registry's certificate (TLS mode).
    pub ca: Option<PathBuf>,
    pub token: Option<TokenServer>,
    child: Child,
    log: Arc<Log>,
}

/// The registry's output, line by line, with a condition variable to wait for a line on.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl Log {
    /// Waits (up to `limit`) until a line satisfies `found`; returns its answer.
    fn wait_for<T>(&self, limit: Duration, found: impl Fn(&[String]) -> Option<T>) -> Option<T> {
        let lines = self.lines.lock().unwrap();
        let (lines, _) = self
            .grew
            .wait_timeout_while(lines, limit, |l| found(l).is_none())
            .unwrap();
        found(&lines)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl Registry {
    pub fn start(mode: Mode) -> Registry {
        Registry::start_with(mode, false)
    }

    /// A registry that deletes manifests (`storage: delete: enabled: true`), for `prune`.
    pub fn start_deleting(mode: Mode) -> Registry {
        Registry::start_with(mode, true)
    }

    fn start_with(mode: Mode, delete: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (mut auth, mut tls, mut ca, mut token) = (String::new(), String::new(), None, None);
        match mode {
            Mode::Plain => {}
            Mode::Basic => auth = basic_auth(d),
            Mode::Tls => {
                let (config, ca_file) = tls_files(d);
                (tls, ca) = (config, Some(ca_file));
            }
            Mode::Token => {
                let (config, server) = token_auth(d);
                (auth, token) = (config, Some(server));
            }
        }
        let deletes = if delete {
            "  delete:\n    enabled: true\n"
        } else {
            ""
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n{deletes}\
             http:\n  addr: 127.0.0.1:0\n  secret: tagguard-test\n{tls}{auth}",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let (child, log, port) = spawn(&d.join("config.yml"));
        Registry {
            host: format!("127.0.0.1:{port}"),
            mode,
            dir,
            ca,
            token,
            child,
            log,
        }
    }

    /// The access-log lines (`"GET /v2/... HTTP/1.1" 200 …`), one per request served.
    ///
    /// Counted synchronously: the registry writes a request's line right after answering it, so
    /// a marker request is sent now and its line waited for; every request answered before it
    /// (all that a finished tagguard sent) is in the log by then.
    pub fn requests(&self) -> Vec<String> {
        let marker = format!("/v2/_tagguard_marker/{:016x}/tags/list", fastrand::u64(..));
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "--max-time", "10"])
            .arg(format!("{scheme}://{}{marker}", self.host))
            .output()
            .expect("curl must be installed");
        assert!(out.status.success(), "marker request: {out:?}");
        self.log
            .wait_for(Duration::from_secs(10), |lines| {
                lines.iter().any(|l| l.contains(&marker)).then_some(())
            })
            .expect("the registry logs the marker request");
        self.log
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.contains("/v2/_tagguard_marker/"))
            .filter(|l| {
                l.contains("\"GET /")
                    || l.contains("\"HEAD /")
                    || l.contains("\"PUT /")
                    || l.contains("\"POST /")
                    || l.contains("\"PATCH /")
                    || l.contains("\"DELETE /")
            })
            .filter_map(|l| {
                l.split_once('"')
                    .map(|(_, r)| r.split("\" \"").next().unwrap_or(r).to_owned())
            })
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    /// Pushes `image` as `repo:tag` with skopeo; returns the manifest digest.
    pub fn seed(&self, image: &Image, repo: &str, tag: &str) -> String {
        self.skopeo_copy(image, repo, tag, &[]);
        image.digest.clone()
    }

    fn skopeo_copy(&self, image: &Image, repo: &str, tag: &str, extra: &[&str]) {
        let mut cmd = self.skopeo(
            &[
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ],
            "--dest-creds",
        );
        cmd.args(extra)
            .arg(format!("oci:{}:img", image.dir.path().display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host));
        let out = cmd.output().expect("skopeo must be installed");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A skopeo command with this registry's credentials (under `creds_flag`) when it has any.
    fn skopeo(&self, args: &[&str], creds_flag: &str) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.args(args).env("HOME", self.dir.path());
        if matches!(self.mode, Mode::Basic | Mode::Token) {
            cmd.arg(creds_flag).arg(format!("{USER}:{PASSWORD}"));
        }
        cmd
    }
}

/// htpasswd auth with the test's user: the registry's `auth:` configuration.
fn basic_auth(d: &Path) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(d.join("htpasswd"), out.stdout).unwrap();
    format!(
        "auth:\n  htpasswd:\n    realm: tagguard-test\n    path: {}\n",
        d.join("htpasswd").display()
    )
}

/// A CA and a certificate it signed for 127.0.0.1: the registry's `tls:` configuration and the
/// CA's file.
fn tls_files(d: &Path) -> (String, PathBuf) {
    self_signed_p256(
        d,
        ("ca.key", "ca.pem"),
        "2",
        "/CN=tagguard-test-ca",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("srv.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "srv.ext",
        ],
    );
    let config = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        d.join("srv.pem").display(),
        d.join("srv.key").display()
    );
    (config, d.join("ca.pem"))
}

/// A token server of the test's own: the registry's `auth:` configuration and the server.
fn token_auth(d: &Path) -> (String, TokenServer) {
    let t = TokenServer::start(
        d,
        Accounts {
            user: USER.into(),
            password: PASSWORD.into(),
            refresh_token: REFRESH_TOKEN.into(),
        },
    );
    let config = format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        t.realm(),
        token_server::SERVICE,
        token_server::ISSUER,
        t.cert.display()
    );
    (config, t)
}

/// Starts the registry on `config` and waits for the port it bound.
fn spawn(config: &Path) -> (Child, Arc<Log>, u16) {
    let mut child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(config)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-registry (Debian package docker-registry) must be installed");
    let log = Arc::new(Log::default());
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                log.lines.lock().unwrap().push(line);
                log.grew.notify_all();
            }
        });
    }
    // The registry binds 127.0.0.1:0 itself and logs the port it got.
    let port = log
        .wait_for(Duration::from_secs(10), |lines| {
            lines.iter().find_map(|l| {
                let (_, rest) = l.split_once("listening on 127.0.0.1:")?;
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u16>()
                    .ok()
            })
        })
        .unwrap_or_else(|| panic!("registry did not start: {:?}", log.lines.lock().unwrap()));
    (child, log, port)
}

/// A small OCI image layout with a random config, so each image has its own digest.
pub struct Image {
    pub dir: tempfile::TempDir,
    pub digest: String,
}

impl Image {
    pub fn random() -> Image {
        Image::with_labels(serde_json::json!({}))
    }

    /// A unique image whose config carries `labels` (plus a random nonce).
    pub fn with_labels(labels: serde_json::Value) -> Image {
        Image::with_config(labels, None)
    }

    /// A unique image whose config says it was `created` (RFC 3339).
    pub fn created(created: &str) -> Image {
        Image::with_config(serde_json::json!({}), Some(created))
    }

    fn with_config(mut labels: serde_json::Value, created: Option<&str>) -> Image {
        labels["nonce"] = format!("{:016x}", fastrand::u64(..)).into();
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| -> (String, usize) {
            let d = sha256(bytes);
            std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
            (d, bytes.len())
        };
        let layer = vec![0u8; 1024]; // an empty tar archive
        let (layer_digest, layer_size) = put(&layer);
        let mut config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        if let Some(created) = created {
            config["created"] = created.into();
        }
        let config = config.to_string();
        let (config_digest, config_size) = put(config.as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
        })
        .to_string();
        let (digest, size) = put(manifest.as_bytes());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
                "annotations": {"org.opencontainers.image.ref.name": "img"},
            }],
        });
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Image { dir, digest }
    }
}

/// A Docker config dir with `auths` for `host`; returns its path (for `DOCKER_CONFIG`).
/// skopeo pulls the whole image back from `reference` (plain HTTP) into `home`, checking every
/// blob's digest; panics with skopeo's words when it cannot.
pub fn pulls_back(reference: &str, home: &Path) {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", home.join("pulled").display()))
        .env("HOME", home)
        .output()
        .expect("skopeo must be installed");
    assert!(
        out.status.success(),
        "skopeo copy {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn docker_config(dir: &Path, body: serde_json::Value) -> PathBuf {
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), body.to_string()).unwrap();
    cfg
}

impl Registry {
    /// Access-log requests whose method is one of `methods`.
    pub fn requests_with(&self, methods: &[&str]) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| methods.iter().any(|m| r.starts_with(&format!("{m} "))))
            .collect()
    }

    /// Where `repo:tag` points, read independently of tagguard with `skopeo inspect --raw`
    /// (the sha256 of the exact manifest bytes); `None` when the tag does not exist.
    pub fn digest_of(&self, repo: &str, tag: &str) -> Option<String> {
        let out = self
            .skopeo(&["inspect", "--raw", "--tls-verify=false"], "--creds")
            .arg(format!("docker://{}/{repo}:{tag}", self.host))
            .output()
            .expect("skopeo runs");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("manifest unknown")
                    || err.contains("not found")
                    || err.contains("name unknown"),
                "skopeo inspect {repo}:{tag}: {err}"
            );
            return None;
        }
        Some(sha256(&out.stdout))
    }

    /// Every tag of `repo`, as skopeo lists them.
    pub fn tags_of(&self, repo: &str) -> Vec<String> {
        let out = self
            .skopeo(&["list-tags", "--tls-verify=false"], "--creds")
            .arg(format!("docker://{}/{repo}", self.host))
            .output()
            .expect("skopeo runs");
        if !out.status.success() {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut tags: Vec<String> = v["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        tags.sort();
        tags
    }

    /// Pushes a multi-platform image (an index of two manifests) as `repo:tag`; returns the
    /// index digest.
    pub fn seed_index(&self, repo: &str, tag: &str) -> String {
        let index = Image::index();
        self.skopeo_copy(&index, repo, tag, &["--all"]);
        index.digest
    }
}

impl Image {
    /// An image of `layer_bytes` random bytes in one layer (for copy benchmarks and tests that
    /// need real blob traffic).
    pub fn sized(layer_bytes: usize) -> Image {
        let image = Image::random();
        let mut layer = vec![0u8; layer_bytes];
        fastrand::fill(&mut layer);
        image.replace_layer(&layer)
    }

    fn replace_layer(self, layer: &[u8]) -> Image {
        let blobs = self.dir.path().join("blobs/sha256");
        let put = |bytes: &[u8]| -> (String, usize) {
            let d = sha256(bytes);
            std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
            (d, bytes.len())
        };
        let old: serde_json::Value = serde_json::from_slice(
            &std::fs::read(blobs.join(self.digest.trim_start_matches("sha256:"))).unwrap(),
        )
        .unwrap();
        let (layer_digest, layer_size) = put(layer);
        let mut manifest = old.clone();
        manifest["layers"][0]["digest"] = layer_digest.into();
        manifest["layers"][0]["size"] = layer_size.into();
        let (digest, size) = put(manifest.to_string().as_bytes());
        write_index(
            self.dir.path(),
            &digest,
            size,
            "application/vnd.oci.image.manifest.v1+json",
        );
        Image {
            dir: self.dir,
            digest,
        }
    }

    /// A two-platform image: an OCI index over two image manifests, in one layout.
    pub fn index() -> Image {
        let (a, b) = (Image::random(), Image::random());
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let mut children = Vec::new();
        for (image, arch) in [(&a, "amd64"), (&b, "arm64")] {
            for entry in std::fs::read_dir(image.dir.path().join("blobs/sha256")).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), blobs.join(entry.file_name())).unwrap();
            }
            let size = std::fs::metadata(blobs.join(image.digest.trim_start_matches("sha256:")))
                .unwrap()
                .len();
            children.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": image.digest, "size": size,
                "platform": {"architecture": arch, "os": "linux"},
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        })
        .to_string();
        let digest = sha256(index.as_bytes());
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &index).unwrap();
        write_index(
            dir.path(),
            &digest,
            index.len(),
            "application/vnd.oci.image.index.v1+json",
        );
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Image { dir, digest }
    }
}

fn write_index(dir: &Path, digest: &str, size: usize, media_type: &str) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "img"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}
