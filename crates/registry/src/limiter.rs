//! How many requests one registry gets at once: starts at the cap and adapts (additive increase,
//! multiplicative decrease, as TCP does). A 429 or a 503 halves the limit; every `limit`
//! answers that were not one of those raise it by one, back up to the cap. The wait the server
//! asks for (`Retry-After`) is the retry loop's business; this only decides how many go at once.
//!
//! The cap, [`CAP`], 128: under the 250 concurrent streams Go's HTTP/2 server grants by default
//! (distribution, Harbor and GHCR run it) and the 100 most servers grant at least, so over h2
//! one connection carries all of a registry's requests with little waiting on the stream limit;
//! over HTTP/1.1 (plain loopback registries) at most 128 sockets to one host. Docker Hub and GHCR
//! rate-limit by request count, not by concurrency, and say so with 429, which halves the limit.
//! Measured (scripts/bench/fanout.sh, 1,000 lookups through a 40 ms round trip): a cap of 64
//! took 1.8 s, 128 took 1.4 s, 256 took 0.9 s in one session — past 128 the gain goes to
//! the registry's load, which a shared registry should not be asked to carry for one CI job.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::retry::unprocessed_status;

/// The most requests in flight to one registry.
pub const CAP: usize = 128;

pub struct Limiter {
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    /// Requests allowed at once now.
    limit: usize,
    /// Permits to take back from circulation (a decrease not yet applied).
    owed: usize,
    /// Good answers since the last change of `limit`.
    good: usize,
}

impl Limiter {
    pub fn new(cap: usize) -> Limiter {
        let cap = cap.clamp(1, CAP);
        Limiter {
            permits: Semaphore::new(cap),
            state: Mutex::new(State {
                limit: cap,
                owed: 0,
                good: 0,
            }),
        }
    }

    /// Waits for a turn.
    pub async fn acquire(&self) -> Turn<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the limiter's semaphore is never closed");
        Turn {
            limiter: self,
            permit: Some(permit),
        }
    }

    /// The limit now.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.state.lock().expect("limiter lock").limit
    }

    fn overloaded(&self) {
        let mut s = self.state.lock().expect("limiter lock");
        let halved = (s.limit / 2).max(1);
        if halved < s.limit {
            log::debug!(
                "registry overloaded: {} requests at once, now {halved}",
                s.limit
            );
            s.owed += s.limit - halved;
            s.limit = halved;
            // Idle permits go at once; those in use when they come back.
            s.owed -= self.permits.forget_permits(s.owed);
        }
        s.good = 0;
    }

    fn answered(&self) {
        let mut s = self.state.lock().expect("limiter lock");
        s.good += 1;
        if s.good >= s.limit && s.limit < CAP {
            s.good = 0;
            s.limit += 1;
            if s.owed > 0 {
                s.owed -= 1;
            } else {
                self.permits.add_permits(1);
            }
        }
    }

    /// A permit coming back: kept out of circulation while a decrease is owed.
    fn release(&self, permit: SemaphorePermit<'_>) {
        let mut s = self.state.lock().expect("limiter lock");
        if s.owed > 0 {
            s.owed -= 1;
            permit.forget();
        }
    }
}

/// One request's turn; ended by [`Turn::done`] with what the registry said, or by dropping it.
pub struct Turn<'a> {
    limiter: &'a Limiter,
    permit: Option<SemaphorePermit<'a>>,
}

impl Turn<'_> {
    /// The registry answered with `status`: turned away unprocessed (429, 503) means "fewer at
    /// once".
    pub fn done(mut self, status: Option<u16>) {
        match status {
            Some(s) if unprocessed_status(s) => self.limiter.overloaded(),
            Some(_) => self.limiter.answered(),
            None => {}
        }
        if let Some(p) = self.permit.take() {
            self.limiter.release(p);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.limiter.release(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_overload_and_grows_back_one_at_a_time() {
        let l = Limiter::new(8);
        l.acquire().await.done(Some(503));
        assert_eq!(l.limit(), 4);
        l.acquire().await.done(Some(429));
        assert_eq!(l.limit(), 2);
        // Only two permits circulate now: a third turn would wait.
        let (a, b) = (l.acquire().await, l.acquire().await);
        assert!(l.permits.try_acquire().is_err());
        a.done(Some(200));
        b.done(Some(200));
        assert_eq!(l.limit(), 3);
        let turns = [l.acquire().await, l.acquire().await, l.acquire().await];
        assert!(l.permits.try_acquire().is_err());
        drop(turns);
        for _ in 0..100 {
            l.acquire().await.done(Some(200));
        }
        // 3 + 4 + … + 13 = 88 good answers raise it to 14; 12 more do not reach 14.
        assert_eq!(l.limit(), 14);
        assert_eq!(l.permits.available_permits(), 14);
    }

    #[tokio::test]
    async fn never_below_one_nor_above_the_cap() {
        let l = Limiter::new(1000);
        assert_eq!(l.limit(), CAP);
        for _ in 0..20 {
            l.acquire().await.done(Some(429));
        }
        assert_eq!(l.limit(), 1);
        for _ in 0..10_000 {
            l.acquire().await.done(Some(204));
        }
        assert_eq!(l.limit(), CAP);
        assert_eq!(l.permits.available_permits(), CAP);
    }
}
