//! Registry personas for `prune`: a fault proxy in front of the real registry (CNCF distribution
//! 2.8, deletes enabled) that changes only what another registry does differently when tags are
//! deleted and listed. Every manifest, every other read and write, every delete by digest is the
//! real registry's, and the state a test reads back afterwards (skopeo) is the real registry's.
//!
//! What each registry does, and where that is written down:
//!
//! - **A tag deleted by name** — `DELETE /v2/<name>/manifests/<tag>` removes that tag and nothing
//!   else, `202 Accepted`: Quay since PROJQUAY-7599 (quay/quay#3128, 2024: "it will only remove
//!   the tag pointing to that SHA digest"); GitLab's container registry since GitLab 16.4
//!   (gitlab-org/container-registry#1091, for OCI conformance; its older
//!   `DELETE /v2/<name>/tags/reference/<tag>` is deprecated, #1094); the OCI distribution spec
//!   1.1 ("DELETE request to manifest tag should return 202, unless tag deletion is disallowed
//!   (400/405)"). The persona removes the tag's link folder from the registry's storage, which is
//!   what distribution's own tag store does to untag.
//! - **Harbor does not delete by tag**: its `deleteManifest` answers `UNSUPPORTED`
//!   ("unsupported digest <tag>", goharbor/harbor#11971), sent as 400 by Harbor's `codeMap`
//!   (src/lib/http/error.go). A delete by digest removes the artifact and its tags, as
//!   distribution does, so that is left to the real registry.
//! - **Harbor tag immutability**: a delete of an artifact that holds a tag an immutability rule
//!   matches, or a push onto such a tag that exists, answers 412 `PRECONDITION` "Failed to process
//!   request due to '<repo>:<tag>' configured as immutable." (src/server/middleware/immutable/
//!   deletemf.go, pushmf.go, error.go; `<repo>` without the project).
//! - **ACR with a lock** (`az acr repository update --delete-enabled false`): every delete answers
//!   405 `REGISTRY_DISALLOWED_OPERATION` "The operation is disallowed on this registry,
//!   repository or image. …" (Azure/acr-cli#70). ACR's answer to a tag delete when unlocked is not
//!   modelled: the real registry answers it.
//! - **Tag-list pages**, `Link: <…>; rel="next"`: Quay pages by an opaque, encrypted
//!   `next_page` token, 50 tags by default (`?next_page=gAAAAAB…%3D&n=50`; deitch/docker_registry2#56,
//!   ivanilves/lstags#185); Harbor and GitLab by the spec's `?last=<tag>&n=<n>`; ACR by
//!   `?last=<tag>&n=<n>&orderby=` (its paging documented in Azure/acr#389), at most 1000 a page
//!   whatever `n` asks (Azure/acr#749).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use crate::fault_proxy::{self, Fault, FaultProxy, Message, Rule};
use crate::registry::Registry;

/// A persona's answer to one request (`method`, path and query, body); `None`: the real
/// registry answers.
type Answerer = dyn Fn(&str, &str, &[u8]) -> Option<Fault> + Send + Sync;

#[derive(Clone)]
pub struct Answer(Arc<Answerer>);

impl Answer {
    pub fn answer(&self, method: &str, target: &str, body: &[u8]) -> Option<Fault> {
        (self.0)(method, target, body)
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Quay,
    GitLab,
    Harbor,
    Acr,
}

impl Kind {
    /// Deletes a tag by name (and only that tag).
    fn deletes_tags(self) -> bool {
        matches!(self, Kind::Quay | Kind::GitLab)
    }

    /// Tags a page when the client asks for no `n`, and the most it serves.
    fn page(self) -> (usize, usize) {
        match self {
            Kind::Quay => (50, 100),
            Kind::Acr => (100, 1000),
            Kind::Harbor | Kind::GitLab => (100, 1000),
        }
    }
}

/// How a persona is set up before it starts.
#[derive(Debug, Clone)]
pub struct Persona {
    kind: Kind,
    /// ACR's lock: every delete refused.
    locked: bool,
    /// Harbor's immutability rule: tags matching it.
    immutable: Option<Regex>,
}

/// A persona in front of a real registry.
pub struct Running {
    pub proxy: FaultProxy,
    pub kind: Kind,
}

impl Running {
    pub fn host(&self) -> String {
        self.proxy.host()
    }
}

const DISALLOWED: &str = "The operation is disallowed on this registry, repository or image. View troubleshooting steps at https://aka.ms/acr/faq/#why-does-my-pull-or-push-request-fail-with-disallowed-operation";

impl Persona {
    pub fn new(kind: Kind) -> Persona {
        Persona {
            kind,
            locked: false,
            immutable: None,
        }
    }

    /// ACR with `--delete-enabled false`.
    pub fn locked(mut self) -> Persona {
        self.locked = true;
        self
    }

    /// Harbor with a tag immutability rule matching `pattern` (a regex of the whole tag).
    pub fn immutable(mut self, pattern: &str) -> Persona {
        self.immutable = Some(Regex::new(&format!("^(?:{pattern})$")).unwrap());
        self
    }

    /// The persona in front of `r` (plain HTTP, deletes enabled).
    pub fn start(self, r: &Registry) -> Running {
        let proxy = FaultProxy::start(&r.host, &[]);
        let kind = self.kind;
        let state = State {
            persona: self,
            upstream: r.host.clone(),
            storage: r.dir.path().join("data/docker/registry/v2/repositories"),
        };
        let answer = Answer(Arc::new(move |m: &str, t: &str, _: &[u8]| {
            state.answer(m, t)
        }));
        proxy.rule(Rule::new(None, "/v2/.+", Fault::Persona(answer)));
        Running { proxy, kind }
    }
}

struct State {
    persona: Persona,
    upstream: String,
    storage: PathBuf,
}

fn error(status: u16, code: &str, message: &str) -> Fault {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": {}}]});
    Fault::status(status)
        .with_header("Content-Type", "application/json; charset=utf-8")
        .with_body(body.to_string().as_bytes())
}

impl State {
    fn answer(&self, method: &str, target: &str) -> Option<Fault> {
        let path = target.split('?').next().unwrap_or_default();
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(target.split_once('?').map_or("", |(_, q)| q).as_bytes())
                .into_owned()
                .collect();
        let manifests = Regex::new(r"^/v2/(.+)/manifests/([^/]+)$").unwrap();
        if let Some(c) = manifests.captures(path) {
            return self.manifest(method, &c[1], &c[2]);
        }
        let tags = Regex::new(r"^/v2/(.+)/tags/list$").unwrap();
        match tags.captures(path) {
            Some(c) if method == "GET" => self.tag_page(&c[1], &query),
            _ => None,
        }
    }

    fn manifest(&self, method: &str, name: &str, reference: &str) -> Option<Fault> {
        let by_digest = reference.contains(':');
        let p = &self.persona;
        match method {
            "DELETE" if p.locked => Some(error(405, "REGISTRY_DISALLOWED_OPERATION", DISALLOWED)),
            "DELETE" if by_digest => self.immutable_among(name, &self.tags_on(name, reference)),
            "DELETE" if p.kind == Kind::Harbor => Some(error(
                400,
                "UNSUPPORTED",
                &format!("unsupported digest {reference}: invalid checksum digest format"),
            )),
            "DELETE" if p.kind.deletes_tags() => Some(self.delete_tag(name, reference)),
            "PUT" if !by_digest && self.tag_dir(name, reference).exists() => {
                self.immutable_among(name, &[reference.to_owned()])
            }
            _ => None,
        }
    }

    /// Harbor's 412 when one of `tags` is immutable.
    fn immutable_among(&self, name: &str, tags: &[String]) -> Option<Fault> {
        let rule = self.persona.immutable.as_ref()?;
        let tag = tags.iter().find(|t| rule.is_match(t))?;
        let repo = name.rsplit('/').next().unwrap_or(name);
        Some(error(
            412,
            "PRECONDITION",
            &format!("Failed to process request due to '{repo}:{tag}' configured as immutable."),
        ))
    }

    fn tag_dir(&self, name: &str, tag: &str) -> PathBuf {
        self.storage.join(name).join("_manifests/tags").join(tag)
    }

    /// The tags whose link names `digest`, read from the registry's storage.
    fn tags_on(&self, name: &str, digest: &str) -> Vec<String> {
        let dir = self.storage.join(name).join("_manifests/tags");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("current/link")).is_ok_and(|l| l == digest)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Removes the tag, and only the tag, as distribution's tag store untags.
    fn delete_tag(&self, name: &str, tag: &str) -> Fault {
        if let Some(refused) = self.immutable_among(name, &[tag.to_owned()]) {
            return refused;
        }
        let dir = self.tag_dir(name, tag);
        if !dir.exists() {
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        Fault::status(202)
    }

    /// One page of the real registry's (whole, sorted) tag list, in the persona's paging.
    fn tag_page(&self, name: &str, query: &BTreeMap<String, String>) -> Option<Fault> {
        let all = fetch_with(
            &self.upstream,
            "GET",
            &format!("/v2/{name}/tags/list"),
            &[],
            &[],
        )?;
        if !all.head.contains(" 200 ") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&all.body).ok()?;
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| Some(t.as_str()?.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        let kind = self.persona.kind;
        let (default, most) = kind.page();
        let n = query
            .get("n")
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
            .clamp(1, most);
        let last = match kind {
            Kind::Quay => query.get("next_page").map(|t| unseal(t)),
            _ => query.get("last").cloned(),
        };
        let start = last.map_or(0, |l| tags.partition_point(|t| t.as_str() <= l.as_str()));
        let page: Vec<&String> = tags.iter().skip(start).take(n).collect();
        let body = serde_json::json!({"name": name, "tags": page});
        let mut fault = Fault::status(200)
            .with_header("Content-Type", "application/json")
            .with_body(body.to_string().as_bytes());
        if start + n < tags.len() {
            let last = page.last().map(|t| t.as_str()).unwrap_or_default();
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let next = match kind {
                Kind::Quay => format!("next_page={}&n={n}", enc(&seal(last))),
                Kind::Acr => format!("last={}&n={n}&orderby=", enc(last)),
                Kind::Harbor | Kind::GitLab => format!("last={}&n={n}", enc(last)),
            };
            fault = fault.with_header(
                "Link",
                format!("</v2/{name}/tags/list?{next}>; rel=\"next\""),
            );
        }
        Some(fault)
    }
}

/// Quay's `next_page`: opaque to the client (here the last tag, hex, in a Fernet-like wrapper).
fn seal(last: &str) -> String {
    let hex: String = last.bytes().map(|b| format!("{b:02x}")).collect();
    format!("gAAAAAB{hex}=")
}

fn unseal(token: &str) -> String {
    let hex = token.trim_start_matches("gAAAAAB").trim_end_matches('=');
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Tags the manifest at `repo:from` as each of `tags` too, straight at the real registry (one PUT
/// each: seeding hundreds of tags with skopeo would take minutes).
pub fn tag_many(r: &Registry, repo: &str, from: &str, tags: &[String]) {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let got = fetch_with(
        &r.host,
        "GET",
        &format!("/v2/{repo}/manifests/{from}"),
        &[("Accept", accept)],
        &[],
    )
    .expect("the registry answers");
    let media = got.header("content-type").unwrap().to_owned();
    // Eight at a time: the registry syncs every tag link it writes to the disk.
    std::thread::scope(|scope| {
        for part in tags.chunks(tags.len().div_ceil(8).max(1)) {
            let (media, body) = (&media, &got.body);
            scope.spawn(move || {
                for tag in part {
                    let put = fetch_with(
                        &r.host,
                        "PUT",
                        &format!("/v2/{repo}/manifests/{tag}"),
                        &[("Content-Type", media.as_str())],
                        body,
                    )
                    .expect("the registry answers");
                    assert!(put.head.contains(" 201 "), "PUT {tag}: {}", put.head);
                }
            });
        }
    });
}

/// One request straight to `upstream`, through the fault proxy's own forwarding.
fn fetch_with(
    upstream: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Message> {
    let mut all = vec![("Host".to_owned(), upstream.to_owned())];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let request = Message {
        head: format!("{method} {target} HTTP/1.1"),
        headers: all,
        body: body.to_vec(),
    };
    fault_proxy::forward(upstream, &request, method == "HEAD")
}
