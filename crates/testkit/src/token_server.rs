//! The Bearer token server a token-auth registry sends clients to: checks Basic credentials or a
//! refresh token, and issues RS256 JWTs (signed with the openssl CLI) that distribution 2.8
//! verifies through the `x5c` certificate against its `rootcertbundle`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::http::{Request, Response, Server};

pub const SERVICE: &str = "tagguard-test";
pub const ISSUER: &str = "tagguard-test-issuer";

pub struct TokenServer {
    pub server: Server,
    pub cert: PathBuf,
}

pub struct Accounts {
    pub user: String,
    pub password: String,
    /// Accepted as `refresh_token` in the refresh-token grant.
    pub refresh_token: String,
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate `cert` and its key `key` in `dir`, valid for `days`, for
/// `subject`, with each of `extensions` (`-addext`).
pub fn self_signed_p256(
    dir: &Path,
    (key, cert): (&str, &str),
    days: &str,
    subject: &str,
    extensions: &[&str],
) {
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        days,
        "-subj",
        subject,
    ];
    for e in extensions {
        args.extend(["-addext", e]);
    }
    openssl(dir, &args);
}

/// A CA of its own in `dir` (`other-ca.pem`), which signed no registry's certificate: what a
/// client that trusts it meets is an unknown issuer.
pub fn other_ca(dir: &Path) -> std::path::PathBuf {
    self_signed_p256(dir, ("k.pem", "other-ca.pem"), "1", "/CN=other", &[]);
    dir.join("other-ca.pem")
}

impl TokenServer {
    pub fn start(dir: &Path, accounts: Accounts) -> TokenServer {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tagguard-test-token-issuer",
            ],
        );
        let der = Command::new("openssl")
            .args(["x509", "-in", "token.pem", "-outform", "DER"])
            .current_dir(dir)
            .output()
            .unwrap()
            .stdout;
        let x5c = STANDARD.encode(der);
        let cert = dir.join("token.pem");
        let dir = dir.to_owned();
        let key = dir.join("token.key");
        let server = Server::start(move |req| issue(req, &accounts, &x5c, &key, &dir));
        TokenServer { server, cert }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.host())
    }

    /// The token requests received, as `(method, scopes)`.
    pub fn fetches(&self) -> Vec<(String, Vec<String>)> {
        self.server
            .requests()
            .iter()
            .map(|r| {
                let params: Vec<(String, String)> = if r.method == "POST" {
                    url::form_urlencoded::parse(&r.body).into_owned().collect()
                } else {
                    r.query()
                };
                let scopes = params
                    .into_iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                    .collect();
                (r.method.clone(), scopes)
            })
            .collect()
    }
}

fn issue(req: &Request, accounts: &Accounts, x5c: &str, key: &Path, dir: &Path) -> Response {
    let denied = || {
        Response::new(401).json(
            serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}),
        )
    };
    let (params, authenticated, field): (Vec<(String, String)>, bool, &str) =
        if req.method == "POST" {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if get("grant_type").as_deref() != Some("refresh_token")
                || get("refresh_token").as_deref() != Some(&accounts.refresh_token)
            {
                return denied();
            }
            (form, true, "access_token")
        } else {
            let authenticated = match req.header("authorization") {
                None => false,
                Some(h) => {
                    let expected = format!(
                        "Basic {}",
                        STANDARD.encode(format!("{}:{}", accounts.user, accounts.password))
                    );
                    if h != expected {
                        return denied();
                    }
                    true
                }
            };
            (req.query(), authenticated, "token")
        };
    let access: Vec<serde_json::Value> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|_| authenticated)
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": accounts.user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", fastrand::u64(..)), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let input = dir.join(format!("jwt-{}.txt", fastrand::u64(..)));
    std::fs::write(&input, &signing_input).unwrap();
    let sig = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input)
        .output()
        .unwrap();
    assert!(sig.status.success());
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.stdout));
    Response::new(200).json(serde_json::json!({ field: jwt, "expires_in": 300 }))
}
