//! A stub of GitHub's Packages API for container packages, in front of a real registry process:
//! `GET /{orgs|users}/<owner>/packages/container/<name>/versions` lists the registry's manifests
//! as package versions — every tagged manifest with its tags, and each child of a tagged index
//! untagged — read from the registry at that moment; `DELETE …/versions/<id>` deletes that
//! manifest from the registry by digest (taking its tags with it, as GHCR does). So what a
//! prune leaves can be checked with skopeo against the real registry.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// How the stub answers.
#[derive(Debug, Clone)]
pub struct Packages {
    /// The registry host it reads and deletes in (plain HTTP).
    pub registry: String,
    /// `orgs` or `users`: the other answers 404.
    pub kind: &'static str,
    /// The registry repository (`<owner>/<name>`).
    pub repository: String,
    /// Versions per page (the stub pages by `Link: rel="next"`).
    pub page_size: usize,
    /// The token that may read and delete.
    pub token: String,
    /// A token that may read but not delete (403).
    pub read_only: Option<String>,
}

pub struct GitHubPackages {
    pub server: Server,
    /// `(method, path)` of every delete answered 204.
    pub deleted: Arc<Mutex<Vec<String>>>,
}

impl GitHubPackages {
    pub fn start(p: Packages) -> GitHubPackages {
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let log = deleted.clone();
        let server = Server::start(move |req| answer(&p, req, &log));
        GitHubPackages { server, deleted }
    }

    /// The API base, for `GITHUB_API_URL`.
    pub fn api(&self) -> String {
        format!("http://{}", self.server.host())
    }

    pub fn deletes(&self) -> Vec<String> {
        self.deleted.lock().unwrap().clone()
    }
}

fn answer(p: &Packages, req: &Request, deleted: &Mutex<Vec<String>>) -> Response {
    let auth = req.header("authorization").unwrap_or("");
    let may_read = auth == format!("Bearer {}", p.token)
        || p.read_only
            .as_ref()
            .is_some_and(|t| auth == format!("Bearer {t}"));
    if !may_read {
        return message(401, "Bad credentials");
    }
    let (owner, name) = p.repository.split_once('/').unwrap();
    // The package name arrives as one segment: `a/b` as `a%2Fb`.
    let base = format!(
        "/{}/{owner}/packages/container/{}/versions",
        p.kind,
        name.replace('/', "%2F")
    );
    let path = req.path();
    if req.method == "GET" && path == base {
        let page: usize = query(req, "page").and_then(|v| v.parse().ok()).unwrap_or(1);
        let all = versions(p);
        let from = (page - 1) * p.page_size;
        let items: Vec<Value> = all.iter().skip(from).take(p.page_size).cloned().collect();
        let mut r = Response::new(200).json(Value::Array(items));
        if from + p.page_size < all.len() {
            r = r.header(
                "Link",
                format!("<{base}?per_page=100&page={}>; rel=\"next\"", page + 1),
            );
        }
        return r;
    }
    if let Some(id) = path.strip_prefix(&format!("{base}/"))
        && req.method == "DELETE"
    {
        if auth != format!("Bearer {}", p.token) {
            return message(403, "Must have admin rights to Repository.");
        }
        let id = id.parse::<u64>().ok();
        let Some(v) = versions(p).into_iter().find(|v| v["id"].as_u64() == id) else {
            return message(404, "Package version not found.");
        };
        let digest = v["name"].as_str().unwrap();
        let (status, _) = http(
            &p.registry,
            "DELETE",
            &format!("/v2/{}/manifests/{digest}", p.repository),
        );
        assert_eq!(status, 202, "the registry deletes {digest}");
        deleted.lock().unwrap().push(format!("DELETE {path}"));
        return Response::new(204);
    }
    message(404, "Not Found")
}

fn message(status: u16, text: &str) -> Response {
    Response::new(status).json(json!({
        "message": text,
        "documentation_url": "https://docs.github.com/rest/packages/packages",
    }))
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.query()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// A version id from its digest: stable, so a delete finds what a listing named.
fn id_of(digest: &str) -> u64 {
    u64::from_str_radix(&digest["sha256:".len()..][..12], 16).unwrap()
}

/// The registry's manifests as package versions, newest first as GitHub lists them (here: by
/// digest, a stable order).
fn versions(p: &Packages) -> Vec<Value> {
    let (status, body) = http(
        &p.registry,
        "GET",
        &format!("/v2/{}/tags/list", p.repository),
    );
    let tags: Vec<String> = if status == 200 {
        serde_json::from_slice::<Value>(&body).unwrap()["tags"]
            .as_array()
            .map(|t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut by_digest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tag in tags {
        let Some((digest, manifest)) = manifest(p, &tag) else {
            continue;
        };
        by_digest.entry(digest).or_default().push(tag);
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            by_digest
                .entry(child["digest"].as_str().unwrap().to_owned())
                .or_default();
        }
    }
    by_digest
        .into_iter()
        .map(|(digest, tags)| {
            json!({
                "id": id_of(&digest),
                "name": digest,
                "url": format!("https://api.github.com/x/{}", id_of(&digest)),
                "metadata": {"package_type": "container", "container": {"tags": tags}},
            })
        })
        .collect()
}

/// The digest and manifest a tag holds now.
fn manifest(p: &Packages, tag: &str) -> Option<(String, Value)> {
    let (status, body) = http(
        &p.registry,
        "GET",
        &format!("/v2/{}/manifests/{tag}", p.repository),
    );
    if status != 200 {
        return None;
    }
    let digest = format!(
        "sha256:{}",
        sha2_hex(&body) // the digest of the exact bytes
    );
    Some((digest, serde_json::from_slice(&body).unwrap()))
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// One plain HTTP/1.1 request to the registry (`Connection: close`): status and body.
fn http(host: &str, method: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {ACCEPT}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    (status, body)
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}
