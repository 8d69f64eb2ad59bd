//! The retry policy, the one place that decides what is transient and how often to try again:
//! a single request ([`retrying`], the engine's loop), an upload that must start over in a new
//! session ([`RetryPolicy::restart_upload`]), a download that resumes
//! ([`RetryPolicy::resume_download`]), and a tag write whose answer was lost and a lookup found
//! not applied ([`RetryPolicy::rewrite_tag`]). What a failed write may have done is
//! [`RegistryError::write_fate`], from the same status lists.

use std::time::{Duration, SystemTime};

use super::error::RegistryError;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first backoff; doubles each retry, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` that is honoured; longer asks are waited for this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// Statuses that say "try again later" rather than "no". 500 is among them: registries behind
/// load balancers and object stores answer it for passing storage errors (as go-containerregistry
/// and containerd also assume).
pub fn retryable_status(status: u16) -> bool {
    unprocessed_status(status) || matches!(status, 408 | 500 | 502 | 504)
}

/// Statuses that say the request was turned away before it was processed: rate limited or
/// unavailable. Only these are retried for a request whose repetition is not harmless; a write
/// that got one was not applied; and they ask for fewer requests at once (the limiter).
pub fn unprocessed_status(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// When a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Repeating it cannot change the outcome: reads (GET, HEAD), content-addressed writes (a
    /// blob's closing PUT with `?digest=`, a cross-repository mount), opening an upload session
    /// (the worst a repeat leaves is an unused session the registry expires). Retried on every
    /// transient failure: retryable statuses, connection errors, timeouts, resets, truncated
    /// bodies.
    Always,
    /// A token request: it has no effect but the token, so it is retried like [`Always`]
    /// ([`RetryClass::Always`]) on every transient failure. One difference: when the tries are
    /// spent, the token endpoint's last answer is the answer, not an error — its body says why
    /// in the endpoint's own words, and the caller names the credentials and the scope.
    Token,
    /// Repeating it after it may have been processed could overwrite what someone else wrote in
    /// between: a manifest PUT under a tag. Retried only when the request provably was not
    /// processed: the connection could not be opened, or the registry answered 429 or 503.
    /// After anything else (a timeout, a reset, a 500) the outcome is unknown and the caller
    /// must read the tag back.
    IfUnprocessed,
    /// Never repeated: a PATCH appends a chunk at the session's offset; a repeat would be refused
    /// or misplace data. The upload is restarted by the caller instead.
    Never,
    /// Sent once, not even after a connection that could not be opened: its body was streamed
    /// from its source and is gone (a streamed PATCH). The caller starts over instead.
    Once,
}

/// What went wrong with one attempt, as far as retrying is concerned: the one list of what is
/// transient, for registry requests and token requests alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request never reached the registry: no connection could be opened.
    NotSent,
    /// The registry answered this status.
    Status(u16),
    /// Sent, and then the answer was lost: a timeout, a reset, a truncated body.
    Lost,
}

impl Failure {
    /// The retry-relevant kind of a failure; `None` when it is not transient at all.
    pub fn of(e: &RegistryError) -> Option<Failure> {
        match e {
            RegistryError::Connect { .. } => Some(Failure::NotSent),
            RegistryError::Timeout { .. } | RegistryError::Http { .. } => Some(Failure::Lost),
            RegistryError::Status { status, .. } => Some(Failure::Status(*status)),
            _ => None,
        }
    }
}

impl RetryClass {
    /// May a request of this class be sent again after `failure`?
    pub fn allows(self, failure: Failure) -> bool {
        match (self, failure) {
            (RetryClass::Once, _) => false,
            (_, Failure::NotSent) => true,
            (RetryClass::Always | RetryClass::Token, Failure::Status(s)) => retryable_status(s),
            (RetryClass::Always | RetryClass::Token, Failure::Lost) => true,
            (RetryClass::IfUnprocessed, Failure::Status(s)) => unprocessed_status(s),
            (RetryClass::IfUnprocessed, Failure::Lost) => false,
            (RetryClass::Never, _) => false,
        }
    }
}

/// What one attempt came to. Short-lived, one per attempt: not worth boxing the error.
#[allow(clippy::large_enum_variant)]
pub enum Attempt<T> {
    Done(T),
    /// A transient failure: try again (if the class and the budget allow) after the backoff, or
    /// the server's `Retry-After`.
    Failed {
        error: RegistryError,
        failure: Failure,
        retry_after: Option<Duration>,
    },
}

/// The retry loop, the only one: runs `attempt` until it is done, fails for good, or the
/// policy's retries are used up. `attempt` gets the number of retries so far.
pub async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    class: RetryClass,
    mut attempt: F,
) -> Result<T, RegistryError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, RegistryError>>,
{
    let mut retries = 0u32;
    loop {
        match attempt(retries).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Failed {
                error,
                failure,
                retry_after,
            } => {
                if !policy.retries(class, failure, retries) {
                    return Err(error);
                }
                let wait = policy.delay(retries, retry_after);
                log::debug!("{error}; retrying in {wait:?}");
                retries += 1;
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl RetryPolicy {
    /// Is a request of `class` that failed with `failure`, after `retries` retries, tried again?
    pub(crate) fn retries(&self, class: RetryClass, failure: Failure, retries: u32) -> bool {
        class.allows(failure) && retries < self.max_retries
    }

    /// Is an answer with the failing `status`, after `retries` retries, a failed attempt (`true`:
    /// tried again as far as the class and the budget allow, else its error ends the request) or
    /// the answer (`false`)? A status the class retries is a failed attempt — except on a token
    /// request's last try (see [`RetryClass::Token`]).
    pub(crate) fn status_failed(&self, class: RetryClass, status: u16, retries: u32) -> bool {
        let failure = Failure::Status(status);
        match class {
            RetryClass::Token => self.retries(class, failure, retries),
            _ => class.allows(failure),
        }
    }

    /// How long to wait before restarting an upload that failed with `error` in a new session,
    /// after `restarts` restarts; `None` when it is not transient or the retries are spent. A
    /// token refused during a streamed upload counts as transient: the restart fetches a fresh
    /// one.
    pub fn restart_upload(&self, error: &RegistryError, restarts: u32) -> Option<Duration> {
        let transient = Failure::of(error).is_some_and(|f| RetryClass::Always.allows(f))
            || matches!(error, RegistryError::Status { status: 401, .. });
        (transient && restarts < self.max_retries).then(|| self.delay(restarts, None))
    }

    /// How long to wait before resuming a download cut off by `error`, after `resumed`
    /// resumptions; `None` when it is not transient or the retries are spent.
    pub fn resume_download(&self, error: &RegistryError, resumed: u32) -> Option<Duration> {
        let failure = Failure::of(error)?;
        self.retries(RetryClass::Always, failure, resumed)
            .then(|| self.delay(resumed, None))
    }

    /// A tag write's answer was lost and a lookup found the tag still as it was before: is it
    /// written again, after `repeats` repeats? (Without a wait: the lookup took a round trip.)
    pub fn rewrite_tag(&self, repeats: u32) -> bool {
        repeats < self.max_retries
    }

    /// The wait before retry number `retry` (0-based): the server's `Retry-After` when it sent one
    /// (capped), else exponential backoff with jitter in [50%, 100%].
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date, relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn what_each_class_retries() {
        use Failure::*;
        for class in [
            RetryClass::Always,
            RetryClass::IfUnprocessed,
            RetryClass::Never,
        ] {
            assert!(class.allows(NotSent), "{class:?}");
        }
        assert!(RetryClass::Always.allows(Lost) && RetryClass::Always.allows(Status(500)));
        assert!(!RetryClass::Always.allows(Status(404)));
        assert!(!RetryClass::IfUnprocessed.allows(Lost));
        assert!(!RetryClass::IfUnprocessed.allows(Status(500)));
        assert!(RetryClass::IfUnprocessed.allows(Status(503)));
        assert!(!RetryClass::Never.allows(Status(503)));
        assert!(
            !RetryClass::Once.allows(NotSent),
            "a streamed body is gone once sent"
        );
    }

    #[test]
    fn a_token_request_retries_like_a_read_and_hands_back_its_last_answer() {
        let policy = RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        };
        for failure in [Failure::NotSent, Failure::Lost, Failure::Status(503)] {
            assert_eq!(
                RetryClass::Token.allows(failure),
                RetryClass::Always.allows(failure)
            );
        }
        assert!(!RetryClass::Token.allows(Failure::Status(401)));
        // A 503 is a failed attempt while tries remain; the last one is the endpoint's word.
        assert!(policy.status_failed(RetryClass::Token, 503, 1));
        assert!(!policy.status_failed(RetryClass::Token, 503, 2));
        assert!(!policy.status_failed(RetryClass::Token, 401, 0));
        // A registry request's last 503 is its error.
        assert!(policy.status_failed(RetryClass::Always, 503, 2));
    }

    #[test]
    fn backoff_is_bounded_and_retry_after_capped() {
        let p = RetryPolicy::default();
        for retry in 0..40 {
            let d = p.delay(retry, None);
            assert!(d <= p.max_delay, "{d:?}");
        }
        let first = p.delay(0, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600))),
            p.max_retry_after
        );
    }

    #[test]
    fn restarts_resumptions_and_rewrites_ask_the_same_budget() {
        let policy = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(1),
        };
        let request = crate::error::RequestId {
            method: "PATCH".into(),
            path: "/v2/a/blobs/uploads/x".into(),
            host: "r".into(),
        };
        let status = |status| RegistryError::Status {
            request: request.clone(),
            status,
            detail: String::new(),
        };
        let lost = RegistryError::Timeout {
            request: request.clone(),
            after: Duration::from_secs(1),
        };
        // An upload starts over after a lost answer, a 5xx, a token refused mid-body.
        assert!(policy.restart_upload(&lost, 0).is_some());
        assert!(policy.restart_upload(&status(503), 1).is_some());
        assert!(policy.restart_upload(&status(401), 0).is_some());
        assert!(
            policy.restart_upload(&status(503), 2).is_none(),
            "budget spent"
        );
        assert!(policy.restart_upload(&status(404), 0).is_none());
        // A download resumes after what a read may repeat; a 401 is no reason to.
        assert!(policy.resume_download(&lost, 1).is_some());
        assert!(policy.resume_download(&lost, 2).is_none());
        assert!(policy.resume_download(&status(401), 0).is_none());
        // A tag write found not applied goes again within the same budget.
        assert!(policy.rewrite_tag(0) && policy.rewrite_tag(1) && !policy.rewrite_tag(2));
        // And a request: its class decides, the budget bounds.
        assert!(policy.retries(RetryClass::IfUnprocessed, Failure::Status(429), 1));
        assert!(!policy.retries(RetryClass::IfUnprocessed, Failure::Lost, 0));
        assert!(!policy.retries(RetryClass::Always, Failure::Lost, 2));
    }
}
