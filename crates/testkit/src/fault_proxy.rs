//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of real loopback servers (the registry,
//! its token server). Requests pass through untouched unless a [`Rule`] matches (method, path
//! regex, which occurrences); then the proxy answers with the rule's [`Fault`] instead, or
//! mangles the real answer. Every request is recorded with its headers, so tests can count
//! attempts and see what was sent where.
//!
//! Each request goes upstream on its own connection; the client side keeps its connection
//! alive, as registries do. Upstream addresses in `Location` and `WWW-Authenticate` are
//! rewritten to the proxy's, so redirects, upload sessions and the token realm come back
//! through it too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;

mod serve;
use serve::serve;

/// What to do instead of (or to) the real answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, headers and body; the request never reaches the registry.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Forward (the registry processes the request), then reset the connection (RST) without
    /// answering: a lost response.
    Reset,
    /// Forward, then send the status line, headers and half of the body, and reset the
    /// connection (RST, not FIN).
    ResetMidBody,
    /// Read the request and send nothing until the client gives up (bounded by `STALL_LIMIT`).
    Stall,
    /// Forward, then send headers with the real `Content-Length` and half of the body, and close.
    TruncateBody,
    /// Forward, and replace `Docker-Content-Digest` with this value.
    WrongDigest(String),
    /// Answer `307` with `Location: <target><path and query of the request>`.
    Redirect { target: String },
    /// Forward, then send the answer's body in `pieces` parts with `pause` between them: a slow
    /// link, where bytes keep moving but the whole answer takes `pieces × pause`.
    Trickle { pieces: usize, pause: Duration },
    /// Forward only once a request `method path` (a regex of the path) has reached the proxy;
    /// if none comes within `limit`, answer `400` instead (not retried): proves that the client
    /// sends that request without waiting for this one's answer.
    HoldUntil {
        method: String,
        path: String,
        limit: Duration,
    },
    /// What a registry persona answers instead (`persona.rs`); `None`: the registry's.
    Persona(crate::persona::Answer),
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(self, name: &str, value: impl Into<String>) -> Fault {
        match self {
            Fault::Status {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_owned(), value.into()));
                Fault::Status {
                    status,
                    headers,
                    body,
                }
            }
            other => panic!("headers only go on a Status fault, not {other:?}"),
        }
    }

    pub fn with_body(self, bytes: &[u8]) -> Fault {
        match self {
            Fault::Status {
                status, headers, ..
            } => Fault::Status {
                status,
                headers,
                body: bytes.to_vec(),
            },
            other => panic!("a body only goes on a Status fault, not {other:?}"),
        }
    }
}

/// The longest a [`Fault::Stall`] holds a connection, so no test can hang on the proxy.
pub const STALL_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    path: Regex,
    /// 1-based occurrences of matching requests the fault applies to.
    occurrences: std::ops::RangeInclusive<usize>,
    fault: Fault,
    seen: usize,
}

impl Rule {
    /// `method` (`None` for any) and a regex that must match the whole path (query excluded).
    pub fn new(method: Option<&str>, path: &str, fault: Fault) -> Rule {
        Rule {
            method: method.map(str::to_owned),
            path: Regex::new(&format!("^(?:{path})$")).expect("a valid path regex"),
            occurrences: 1..=usize::MAX,
            fault,
            seen: 0,
        }
    }

    /// Only the `n`th matching request (1-based).
    pub fn nth(mut self, n: usize) -> Rule {
        self.occurrences = n..=n;
        self
    }

    /// The `n`th matching request and every later one.
    pub fn from(mut self, n: usize) -> Rule {
        self.occurrences = n..=usize::MAX;
        self
    }

    /// The first `n` matching requests; later ones pass (the fault "clears").
    pub fn first(mut self, n: usize) -> Rule {
        self.occurrences = 1..=n;
        self
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// When the proxy had read the whole request.
    pub at: Instant,
    /// For a stalled request: when the client gave up on it (closed the connection).
    pub hung_up: Option<Instant>,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// Where requests go: the first route whose path prefix matches, else `default`.
#[derive(Clone)]
struct Upstreams {
    default: String,
    routes: Vec<(String, String)>,
}

impl Upstreams {
    fn for_path(&self, path: &str) -> &str {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(self.default.as_str(), |(_, up)| up.as_str())
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.default.as_str()).chain(self.routes.iter().map(|(_, u)| u.as_str()))
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`127.0.0.1:PORT`), plus `routes` of `(path prefix, upstream)`,
    /// such as a token server's `/token`.
    pub fn start(upstream: &str, routes: &[(&str, &str)]) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            rules: Vec::new(),
            seen: Vec::new(),
        }));
        let upstreams = Upstreams {
            default: upstream.to_owned(),
            routes: routes
                .iter()
                .map(|(p, u)| (p.to_string(), u.to_string()))
                .collect(),
        };
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (st, up) = (st.clone(), upstreams.clone());
                std::thread::spawn(move || serve(stream, &st, &up, port));
            }
        });
        FaultProxy { port, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn rule(&self, rule: Rule) -> &Self {
        self.state.lock().unwrap().rules.push(rule);
        self
    }

    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// `METHOD /path` of every request, in order (query dropped).
    pub fn lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path()))
            .collect()
    }

    /// How long the client waited on each stalled request before it gave up, in order: the
    /// bounded wait itself, measured where it happens (not the whole run around it). Waits (up
    /// to 5 s) until `n` have ended: the proxy notes a hang-up just after the client's exit.
    pub fn held(&self, n: usize) -> Vec<Duration> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let held: Vec<_> = self
                .requests()
                .iter()
                .filter_map(|s| s.hung_up.map(|end| end - s.at))
                .collect();
            if held.len() >= n || Instant::now() >= deadline {
                return held;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How many requests had this method and a path matching the regex (whole path).
    pub fn count(&self, method: &str, path: &str) -> usize {
        let re = Regex::new(&format!("^(?:{path})$")).unwrap();
        self.requests()
            .iter()
            .filter(|s| s.method == method && re.is_match(s.path()))
            .count()
    }
}

pub(crate) struct Message {
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a head and headers; `None` at a clean EOF.
fn read_head(r: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut head = String::new();
    if r.read_line(&mut head).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Some((head.trim_end().to_owned(), headers))
}

fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    until_eof: bool,
) -> Option<Vec<u8>> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        r.read_exact(&mut body).ok()?;
        return Some(body);
    }
    let mut body = Vec::new();
    if until_eof {
        r.read_to_end(&mut body).ok()?;
    }
    Some(body)
}

/// Sends `request` to `upstream` on a new connection and reads the whole answer.
pub(crate) fn forward(upstream: &str, request: &Message, is_head: bool) -> Option<Message> {
    let stream = TcpStream::connect(upstream).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut w = stream.try_clone().ok()?;
    let mut out = format!("{}\r\n", request.head);
    for (k, v) in &request.headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    w.write_all(out.as_bytes()).ok()?;
    w.write_all(&request.body).ok()?;
    let mut r = BufReader::new(stream);
    let (head, headers) = read_head(&mut r)?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let no_body = is_head || status == 204 || status == 304 || (100..200).contains(&status);
    let body = if no_body {
        Vec::new()
    } else {
        read_body(&mut r, &headers, true)?
    };
    Some(Message {
        head,
        headers,
        body,
    })
}

fn write_response(w: &mut TcpStream, m: &Message, body: &[u8], content_length: usize) -> bool {
    let mut out = format!("{}\r\n", m.head);
    for (k, v) in &m.headers {
        if ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
    w.write_all(out.as_bytes()).is_ok() && w.write_all(body).is_ok() && w.flush().is_ok()
}
