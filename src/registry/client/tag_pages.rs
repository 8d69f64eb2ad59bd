//! The tag list as a stream of pages, so a caller can start on the first page's tags while the
//! registry serves the next (Docker Hub and GHCR page at 100 to 1,000 tags).

use std::collections::HashSet;

use futures_util::Stream;
use reqwest::{Method, Url};

use super::{MAX_TAG_LIST_BYTES, Outgoing, RegistryClient, next_link, parse_tag_page};
use crate::registry::auth::Scope;
use crate::registry::error::RegistryError;

/// Pages read at most: 100,000 pages of even 100 tags is beyond any real repository, and a
/// registry whose `Link` headers never end must not keep a client reading forever.
const MAX_PAGES: usize = 100_000;

struct Cursor {
    next: Option<Url>,
    seen: HashSet<Url>,
}

impl RegistryClient {
    /// The tags of a repository one page at a time, following `Link: <…>; rel="next"`. The
    /// stream ends after the last page or the first error.
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

    async fn tag_page(
        &self,
        repository: &str,
        url: &Url,
        seen: &mut HashSet<Url>,
    ) -> Result<(Vec<String>, Option<Url>), RegistryError> {
        let scopes = [Scope::pull(repository)];
        seen.insert(url.clone());
        let mut out = Outgoing::new(Method::GET, url.clone(), &scopes);
        out.body_limit = MAX_TAG_LIST_BYTES;
        let (request, response) = self.send(out).await?;
        if !response.status().is_success() {
            return Err(self
                .failure(request, response, &scopes, repository, None)
                .await);
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
        if seen.contains(&next) || seen.len() >= MAX_PAGES {
            return Err(RegistryError::Malformed {
                request,
                detail: format!(
                    "the Link header points back to a page already read, or past {MAX_PAGES} pages"
                ),
            });
        }
        Ok((tags, Some(next)))
    }
}
