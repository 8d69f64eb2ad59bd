//! `tagguard_registry::WebClient`, the registry engine's request type for the web APIs beside
//! registries, against stub APIs on loopback: what a forge's API does that a registry cannot show
//! (a busy answer, a redirect to another host, pages, a list that loops).

use serde_json::json;

use crate::support::client::fast_transport;
use crate::support::http::{Response, Server};
use tagguard_registry::Secret;
use tagguard_registry::{WebClient, WebToken};

const TOKEN: &str = "ghp_web-api-token";

fn client(server: &Server) -> WebClient {
    let token = WebToken::Bearer(Secret::new(TOKEN));
    WebClient::new(
        &format!("http://{}/api/v3/", server.host()),
        Some(&token),
        &fast_transport(),
    )
    .unwrap()
}

/// A busy API is asked again (its `Retry-After` honoured); a redirect to another host is
/// followed without the token.
#[tokio::test]
async fn a_busy_api_is_asked_again_and_the_token_never_leaves_its_host() {
    let other = Server::start(|_| Response::new(200).json(json!([{ "number": 1 }])));
    let target = format!("http://{}/elsewhere", other.host());
    let busy = std::sync::atomic::AtomicBool::new(true);
    let api = Server::start(move |_| {
        if busy.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Response::new(503).header("Retry-After", "0")
        } else {
            Response::new(302).header("Location", target.clone())
        }
    });
    let items = client(&api)
        .list("repos/a/b/pulls?state=open", 5)
        .await
        .unwrap();
    assert_eq!(items, vec![json!({ "number": 1 })]);
    let asked = api.requests();
    assert_eq!(asked.len(), 2, "the 503 is asked again once");
    for r in &asked {
        assert_eq!(r.path(), "/api/v3/repos/a/b/pulls");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let redirected = other.requests();
    assert_eq!(redirected.len(), 1);
    assert_eq!(redirected[0].header("authorization"), None);
}

/// Pages follow `Link: rel="next"`; a link back to a page already read ends the list with an
/// error that names the request and not the token.
#[tokio::test]
async fn pages_follow_the_link_and_a_list_that_loops_is_an_error() {
    let api = Server::start(|req| {
        let page = req
            .query()
            .into_iter()
            .find(|(k, _)| k == "page")
            .map(|(_, v)| v);
        match page.as_deref() {
            Some("1") => Response::new(200)
                .header("Link", "</api/v3/items?per_page=100&page=2>; rel=\"next\"")
                .json(json!([1, 2])),
            _ => Response::new(200)
                .header("Link", "</api/v3/items?per_page=100&page=1>; rel=\"next\"")
                .json(json!([3])),
        }
    });
    let e = client(&api).list("items", 10).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("points back to a page already read"),
        "{text}"
    );
    assert!(text.starts_with("GET http://"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(api.requests().len(), 2);
}

/// A delete whose outcome is unknown (a 500) is not repeated: the caller settles it. A refusal
/// says what to do next.
#[tokio::test]
async fn a_delete_is_sent_once_after_a_500_and_a_403_says_what_to_do() {
    let api = Server::start(|req| match req.path() {
        "/api/v3/versions/1" => Response::new(500),
        _ => {
            Response::new(403).json(json!({ "message": "Resource not accessible by integration" }))
        }
    });
    let c = client(&api);
    let answer = c.delete("versions/1").await.unwrap();
    assert_eq!(answer.status, 500);
    assert_eq!(api.requests().len(), 1);
    let e = c.delete("versions/2").await.unwrap().error();
    assert_eq!(
        e.to_string(),
        format!(
            "DELETE http://{}/api/v3/versions/2 answered 403: Resource not accessible by integration",
            api.host()
        )
    );
    let help = miette::Diagnostic::help(&e).unwrap().to_string();
    assert!(help.contains("lacks a permission"), "{help}");
}

/// A web API's 401 is its answer: no registry auth scheme is learned from its challenge, no
/// token endpoint is asked, and the request is not sent again.
#[tokio::test]
async fn a_challenge_from_the_api_is_the_answer_and_no_token_is_fetched() {
    let realm = Server::start(|_| Response::new(200).json(json!({ "token": "t" })));
    let challenge = format!("Bearer realm=\"http://{}/token\"", realm.host());
    let api = Server::start(move |_| {
        Response::new(401)
            .header("WWW-Authenticate", challenge.clone())
            .json(json!({ "message": "Bad credentials" }))
    });
    let answer = client(&api).get("user").await.unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error().status(), Some(401));
    assert_eq!(api.requests().len(), 1);
    assert!(realm.requests().is_empty(), "no token endpoint is asked");
}

/// An API that cannot be reached is named by the method and URL, with the cause below HTTP:
/// not as a registry request.
#[tokio::test]
async fn an_unreachable_api_is_named_by_its_url_not_as_a_registry() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let token = WebToken::Bearer(Secret::new(TOKEN));
    let web = WebClient::new(
        &format!("http://{host}/api/v3"),
        Some(&token),
        &fast_transport(),
    )
    .unwrap();
    let text = web.get("user").await.unwrap_err().to_string();
    let prefix = format!("GET http://{host}/api/v3/user: could not connect");
    assert!(text.starts_with(&prefix), "{text}");
    assert!(!text.contains(&format!("registry {host}")), "{text}");
    assert!(text.contains("is the API listening there?"), "{text}");
    assert!(!text.contains("registry"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}
