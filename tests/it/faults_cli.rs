//! `tagguard check` under registry faults, end to end: exit codes, the rendered error, and the
//! timeout and retry flags (and their environment variables) bounding how long a failure takes.

use std::time::{Duration, Instant};

use crate::support::cmd::{Run, tagguard};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::Repo;
use crate::support::registry::{Mode, Registry};

const LOOKUP: &str = "/v2/acme/app/manifests/.+";

fn check(repo: &Repo, proxy: &FaultProxy, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let image = format!("--image={}/acme/app", proxy.host());
    tagguard(repo.path())
        .args(["check", "--timestamp=20240102030405", &image])
        .args(extra)
        .envs(env.iter().copied())
        .run()
}

#[test]
fn a_fault_that_clears_is_invisible() {
    let r = Registry::start(Mode::Plain);
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(
        Rule::new(
            Some("HEAD"),
            LOOKUP,
            Fault::status(429).with_header("Retry-After", "0"),
        )
        .first(2),
    );
    let repo = Repo::new();
    let run = check(&repo, &proxy, &["--format=json"], &[]);
    let run = run.success();
    assert_eq!(run.json()["decisions"][0]["action"], "create");
    assert_eq!(proxy.count("HEAD", LOOKUP), 3);
}

#[test]
fn a_persistent_5xx_exits_1_naming_registry_request_and_status_after_the_given_retries() {
    let r = Registry::start(Mode::Plain);
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(Rule::new(Some("HEAD"), LOOKUP, Fault::status(503)));
    let repo = Repo::new();
    let run = check(&repo, &proxy, &["--retries=1"], &[]);
    let run = run.code(1);
    let err = run.err_text();
    let sha = repo.head();
    assert!(
        err.contains(&format!(
            "registry {}: HEAD /v2/acme/app/manifests/sha-{}: unexpected status 503",
            proxy.host(),
            &sha[..7]
        )),
        "{err}"
    );
    assert_eq!(proxy.count("HEAD", LOOKUP), 2);
    assert!(
        run.stdout.is_empty(),
        "no decisions on a failure: {}",
        run.stdout
    );
}

#[test]
fn a_stalled_registry_fails_within_the_timeout_from_flags_or_environment() {
    let r = Registry::start(Mode::Plain);
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(Rule::new(Some("HEAD"), LOOKUP, Fault::Stall));
    let repo = Repo::new();
    for (args, env) in [
        (&["--timeout=1", "--retries=0"][..], &[][..]),
        (
            &[][..],
            &[("TAGGUARD_TIMEOUT", "1"), ("TAGGUARD_RETRIES", "0")][..],
        ),
    ] {
        let before = proxy.count("HEAD", LOOKUP);
        let run = check(&repo, &proxy, args, env);
        let run = run.code(1);
        assert!(
            run.err_text().contains("timed out: nothing moved for 1s"),
            "{args:?} {env:?}: {}",
            run.stderr
        );
        assert!(
            run.err_text()
                .contains(&format!("registry {}: HEAD", proxy.host()))
        );
        assert_eq!(proxy.count("HEAD", LOOKUP), before + 1);
        // The bounded wait, timed where it happens: the proxy saw the client give up on the
        // stalled lookup after the 1 s asked for (less the moment the request took to arrive),
        // far from the 15 s default.
        let held = proxy.held(before + 1);
        assert_eq!(held.len(), before + 1, "the client hung up on the stall");
        let held = held[before];
        assert!(
            held >= Duration::from_millis(800) && held < Duration::from_secs(10),
            "{args:?} {env:?}: the stalled lookup was held {held:?}"
        );
    }
}

#[test]
fn an_unreachable_registry_exits_1_and_says_so() {
    // A port held by a socket that is bound but never listens: connecting is refused, and no
    // other process can take the port while the test runs.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let repo = Repo::new();
    let run = tagguard(repo.path())
        .args([
            "check",
            "--timestamp=20240102030405",
            &format!("--image=127.0.0.1:{port}/acme/app"),
            "--retries=1",
            "--connect-timeout=1",
        ])
        .run()
        .code(1);
    assert!(
        run.err_text().contains(&format!(
            "registry 127.0.0.1:{port}: HEAD /v2/acme/app/manifests/"
        )) && run
            .err_text()
            .contains("could not connect: connection refused"),
        "{}",
        run.stderr
    );
}

/// End to end, `--timeout 1` is a deadline of silence: a layer copied between two registries
/// whose source serves it slowly but steadily (8 pieces 400 ms apart: 3.2 s) is copied, and the
/// tag holds the image.
#[test]
fn a_slow_layer_copies_with_timeout_1_while_bytes_flow() {
    use crate::support::registry::Image;
    let source = Registry::start(Mode::Plain);
    let target = Registry::start(Mode::Plain);
    let image = Image::sized(4 << 20);
    let digest = source.seed(&image, "acme/src", "build-1");
    let proxy = FaultProxy::start(&source.host, &[]);
    proxy.rule(Rule::new(
        Some("GET"),
        "/v2/acme/src/blobs/sha256:.+",
        Fault::Trickle {
            pieces: 8,
            pause: Duration::from_millis(400),
        },
    ));
    let repo = Repo::new();
    let start = Instant::now();
    let run = tagguard(repo.path())
        .args([
            "push",
            "--timestamp=20240102030405",
            &format!("--image={}/acme/app", target.host),
            &format!("--source={}/acme/src@{digest}", proxy.host()),
            "--timeout=1",
            "--retries=0",
        ])
        .run()
        .success();
    assert!(
        start.elapsed() > Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let tag = format!("sha-{}", &repo.head()[..7]);
    assert_eq!(
        target.digest_of("acme/app", &tag).as_deref(),
        Some(digest.as_str()),
        "{}",
        run.stderr
    );
}
