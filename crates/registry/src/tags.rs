//! Tag listing: `GET /v2/<name>/tags/list`, page by page along `Link: <…>; rel="next"`, with a
//! cap on the pages and on each page's size, and a check for links that go round in circles.

use std::collections::HashSet;

use futures_util::{Stream, StreamExt as _};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Url};

use super::auth::Scope;
use super::client::RegistryClient;
use super::engine::Outgoing;
use super::error::RegistryError;

/// The largest tag-list page read.
pub const MAX_TAG_PAGE_BYTES: usize = 16 << 20;
/// The most pages followed: at the usual 100 to 1000 tags a page, more tags than a repository
/// has, and an endless list ends in well under a minute at usual round-trip times.
pub const MAX_TAG_PAGES: usize = 500;

impl RegistryClient {
    /// The repository's tags when they fit on the first page (no `rel="next"` link): `None`
    /// when there are more pages. A repository that does not exist has no tags. One request,
    /// to tell which of many tags need a lookup at all.
    pub async fn tags_on_one_page(
        &self,
        repository: &str,
    ) -> Result<Option<Vec<String>>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let mut out = Outgoing::new(
            Method::GET,
            self.url(&format!("v2/{repository}/tags/list")),
            &scopes,
        );
        out.body_limit = MAX_TAG_PAGE_BYTES;
        out.what = "a tag-list page";
        let (request, response) = self.send(out).await?;
        if !response.status().is_success() {
            return match self.failure(request, response, &scopes, repository, None) {
                RegistryError::UnknownRepository { .. } => Ok(Some(Vec::new())),
                e => Err(e),
            };
        }
        if next_link(response.headers()).is_some() {
            return Ok(None);
        }
        parse_tag_page(&response.body)
            .map(Some)
            .map_err(|detail| RegistryError::Malformed { request, detail })
    }

    /// All tags of a repository, following `Link: <…>; rel="next"` pages.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let mut pages = std::pin::pin!(self.tag_pages(repository));
        let mut tags = Vec::new();
        while let Some(page) = pages.next().await {
            tags.extend(page?);
        }
        Ok(tags)
    }

    /// The tags of a repository one page at a time, so a caller can start on a page's tags
    /// while the registry serves the next. The stream ends after the last page or the first
    /// error.
    pub fn tag_pages<'a>(
        &'a self,
        repository: &'a str,
    ) -> impl Stream<Item = Result<Vec<String>, RegistryError>> + 'a {
        let start = Cursor {
            next: Some(self.url(&format!("v2/{repository}/tags/list"))),
            seen: HashSet::new(),
        };
        futures_util::stream::unfold(start, move |mut cursor| async move {
            let url = cursor.next.take()?;
            match self.tag_page(repository, &url, &mut cursor.seen).await {
                Ok((tags, next)) => {
                    cursor.next = next;
                    Some((Ok(tags), cursor))
                }
                Err(e) => Some((Err(e), cursor)),
            }
        })
    }

    /// One page, and the next page's URL; a `Link` back to a page already read, or past the
    /// page cap, is an error.
    async fn tag_page(
        &self,
        repository: &str,
        url: &Url,
        seen: &mut HashSet<Url>,
    ) -> Result<(Vec<String>, Option<Url>), RegistryError> {
        let scopes = [Scope::pull(repository)];
        seen.insert(url.clone());
        let mut out = Outgoing::new(Method::GET, url.clone(), &scopes);
        out.body_limit = MAX_TAG_PAGE_BYTES;
        out.what = "a tag-list page";
        let (request, response) = self.send(out).await?;
        if !response.status().is_success() {
            return Err(self.failure(request, response, &scopes, repository, None));
        }
        let tags = parse_tag_page(&response.body).map_err(|detail| RegistryError::Malformed {
            request: request.clone(),
            detail,
        })?;
        let Some(next) = next_link(response.headers()) else {
            return Ok((tags, None));
        };
        let next = url.join(&next).map_err(|e| RegistryError::Malformed {
            request: request.clone(),
            detail: format!("unusable Link header: {e}"),
        })?;
        if seen.contains(&next) {
            return Err(RegistryError::Pagination {
                request,
                detail: "the tag list's Link header points back to a page already read".into(),
            });
        }
        if seen.len() >= MAX_TAG_PAGES {
            return Err(RegistryError::Pagination {
                request,
                detail: format!(
                    "the tag list goes on past {MAX_TAG_PAGES} pages (the most tagguard follows)"
                ),
            });
        }
        Ok((tags, Some(next)))
    }
}

/// Where a paged tag listing stands.
struct Cursor {
    next: Option<Url>,
    seen: HashSet<Url>,
}

/// The `rel="next"` target of a `Link` header, as written (relative or absolute).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    next_link_in(
        headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// The `rel="next"` target among `Link` header values.
pub fn next_link_in<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else { break };
            let (target, tail) = (&after[..end], &after[end + 1..]);
            let params_end = tail.find('<').unwrap_or(tail.len());
            let is_next = tail[..params_end].split([';', ',']).any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.trim().to_owned());
            }
            rest = &tail[params_end..];
        }
    }
    None
}

/// The tags of one page of `GET /v2/<name>/tags/list`: `{"tags": [...]}` (`null` or missing
/// when the repository has none).
pub fn parse_tag_page(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    serde_json::from_slice::<Page>(body)
        .map(|p| p.tags.unwrap_or_default())
        .map_err(|e| format!("the tag list is not JSON with \"tags\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_next_relative_absolute_and_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?n=2&last=opaque%3D%3D>; rel="next""#),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/a/tags/list?n=2&last=opaque%3D%3D")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"<https://r.example/prev>; rel="prev", <https://r.example/v2/a/tags/list?x=1>;rel=next"#),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://r.example/v2/a/tags/list?x=1")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</x>; rel="prev""#),
        );
        assert_eq!(next_link(&h), None);
    }
}
