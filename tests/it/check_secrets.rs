//! With every log record at trace level captured (ours, reqwest's, hyper's, h2's, rustls'),
//! no password, refresh token or bearer token appears anywhere: logs, errors, Debug.

use std::sync::{Mutex, Once};

use base64::Engine as _;
use tagguard::check;
use tagguard::tags::{Computed, ComputedTag};

use crate::support::client::check_config;
use crate::support::registry::{
    Image, Mode, PASSWORD, REFRESH_TOKEN, Registry, USER, docker_config,
};

static LOGS: Mutex<String> = Mutex::new(String::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
        LOGS.lock().unwrap().push_str(&line);
    }
    fn flush(&self) {}
}

fn capture_trace() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

#[tokio::test]
async fn no_secret_in_trace_logs_errors_or_debug() {
    capture_trace();
    let mut seen = String::new();
    for (mode, identity) in [
        (Mode::Basic, false),
        (Mode::Token, false),
        (Mode::Token, true),
        (Mode::Tls, false),
    ] {
        let r = Registry::start(mode);
        r.seed(&Image::random(), "acme/app", "1.0.0");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let entry = if identity {
            serde_json::json!({"identitytoken": REFRESH_TOKEN})
        } else {
            serde_json::json!({"auth": auth})
        };
        let cfg = docker_config(
            r.dir.path(),
            serde_json::json!({"auths": {(r.host.clone()): entry}}),
        );
        let c = Computed {
            images: vec![format!("{}/acme/app", r.host)],
            tags: ["1.0.0", "2.0.0"]
                .iter()
                .map(|t| ComputedTag {
                    tag: t.to_string(),
                    immutable: true,
                    floating: None,
                    rule: 1,
                    rule_line: 1,
                    on_conflict: tagguard::policy::OnConflict::Refuse,
                    template: "t".into(),
                })
                .collect(),
            version: None,
            release_tag: None,
            dirty: false,
            dirty_files: Vec::new(),
            policy: "test".into(),
            labels: Default::default(),
        };
        let config = check_config(Some(&r), &[("DOCKER_CONFIG", cfg.to_str().unwrap())]);
        let d = check::check(
            &c,
            Some(&format!("{}/acme/app:1.0.0", r.host).parse().unwrap()),
            &config,
        )
        .await
        .unwrap();
        seen.push_str(&format!("{d:?}{config:?}"));
        // And a failing run: its error and Debug too.
        let bad = check_config(
            Some(&r),
            &[
                ("TAGGUARD_USERNAME", USER),
                ("TAGGUARD_PASSWORD", "bad-5ecr3t-value"),
            ],
        );
        if let Err(e) = check::check(&c, None, &bad).await {
            seen.push_str(&format!("{e} {e:?}"));
        }
        seen.push_str(&format!("{bad:?}"));
    }
    let logs = LOGS.lock().unwrap().clone();
    assert!(
        logs.contains("HEAD /v2/acme/app/manifests/1.0.0"),
        "trace logging did not capture requests"
    );
    assert!(
        logs.contains("TRACE"),
        "nothing at trace level was captured"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [
        PASSWORD,
        REFRESH_TOKEN,
        basic.as_str(),
        "bad-5ecr3t-value",
        "eyJ",
    ] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
        assert!(
            !seen.contains(secret),
            "{secret} appears in an error or Debug output"
        );
    }
}
