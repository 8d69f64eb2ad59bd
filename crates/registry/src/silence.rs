//! The deadline of silence: a request may take as long as it needs while bytes move, and fails
//! once nothing moved for `--timeout`. Request bodies are handed over in pieces so that sending
//! counts as moving too.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// Bodies larger than this are sent in pieces, so that sending them counts as bytes moving.
const PIECE: usize = 64 << 10;

/// When a byte last moved in either direction, for the deadline of silence.
#[derive(Clone)]
pub(super) struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    pub fn starting() -> Progress {
        Progress(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn touch(&self) {
        *self.0.lock().expect("progress lock") = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().expect("progress lock")
    }
}

/// Runs `fut` until it ends or nothing moved for `idle`; `None` on the latter.
pub(super) async fn watched<F: Future>(
    fut: F,
    progress: &Progress,
    idle: Duration,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        let deadline = progress.last() + idle;
        tokio::select! {
            out = &mut fut => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                if progress.last() + idle <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// A request body handed to the connection in pieces, each piece marking progress.
struct PieceBody {
    rest: Bytes,
    progress: Progress,
}

impl http_body::Body for PieceBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(PIECE);
        let piece = self.rest.split_to(n);
        self.progress.touch();
        Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

pub(super) fn body_of(bytes: &Bytes, progress: &Progress) -> reqwest::Body {
    if bytes.len() <= PIECE {
        return reqwest::Body::from(bytes.clone());
    }
    reqwest::Body::wrap(PieceBody {
        rest: bytes.clone(),
        progress: progress.clone(),
    })
}
