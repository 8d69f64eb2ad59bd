//! The deadline of silence: a request may take as long as it needs while bytes move, and fails
//! once nothing moved for `--timeout`. Request bodies are handed over in pieces so that sending
//! counts as moving too; a streamed body that waits for its source stops the clock (the registry
//! is not the one keeping silent).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bodies larger than this are sent in pieces, so that sending them counts as bytes moving.
const PIECE: usize = 64 << 10;

/// When a byte last moved in either direction, for the deadline of silence, and whether the
/// request's body is waiting for its source.
#[derive(Clone)]
pub(super) struct Progress(Arc<Moved>);

struct Moved {
    last: Mutex<Instant>,
    starved: AtomicBool,
}

impl Progress {
    pub fn starting() -> Progress {
        Progress(Arc::new(Moved {
            last: Mutex::new(Instant::now()),
            starved: AtomicBool::new(false),
        }))
    }

    pub fn touch(&self) {
        *self.0.last.lock().expect("progress lock") = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.last.lock().expect("progress lock")
    }

    fn starve(&self, starved: bool) {
        self.0.starved.store(starved, Ordering::Relaxed);
        self.touch();
    }
}

/// Runs `fut` until it ends or nothing moved for `idle` (while the body was not waiting for its
/// source); `None` on the latter.
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
                if progress.0.starved.load(Ordering::Relaxed) {
                    progress.touch();
                } else if progress.last() + idle <= Instant::now() {
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

/// A body of `len` bytes taken from a channel as its source delivers them: nothing is held but
/// the pieces in the channel. It can be sent once only.
pub struct Streamed {
    pub pieces: mpsc::Receiver<Bytes>,
    pub len: u64,
}

/// A [`Streamed`] body on its way, marking progress as it goes.
struct StreamedBody {
    pieces: mpsc::Receiver<Bytes>,
    left: u64,
    progress: Progress,
}

impl http_body::Body for StreamedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        loop {
            let piece = match self.pieces.poll_recv(cx) {
                Poll::Pending => {
                    self.progress.starve(true);
                    return Poll::Pending;
                }
                Poll::Ready(piece) => piece,
            };
            self.progress.starve(false);
            let Some(mut piece) = piece else {
                // The source failed or ended early: the request must not look complete.
                return Poll::Ready(Some(Err(std::io::Error::other(
                    "the blob's source ended before the upload's bytes were sent",
                ))));
            };
            if piece.is_empty() {
                continue;
            }
            piece.truncate(self.left.min(piece.len() as u64) as usize);
            self.left -= piece.len() as u64;
            return Poll::Ready(Some(Ok(http_body::Frame::data(piece))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

pub(super) fn streamed_body(body: Streamed, progress: &Progress) -> reqwest::Body {
    reqwest::Body::wrap(StreamedBody {
        pieces: body.pieces,
        left: body.len,
        progress: progress.clone(),
    })
}
