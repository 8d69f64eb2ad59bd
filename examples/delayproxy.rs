//! A TCP proxy on 127.0.0.1 that delays everything it carries by a fixed time in each direction
//! (default 20 ms, so a 40 ms round trip): the benchmarks' stand-in for a distant registry. The
//! same semantics as `scripts/bench/delayproxy.py` — each chunk read (up to 64 KiB) is written on
//! its delay after it was read, in order; an end of stream is passed on (half-close) on the same
//! delay — at a fraction of its CPU, which on a small machine competes with the registry being
//! measured. Loopback only.
//!
//! Usage: cargo run --release --example delayproxy -- LISTEN_PORT TARGET_PORT [DELAY_MS]
//! (LISTEN_PORT 0 picks one; the port is printed as `listening on 127.0.0.1:PORT`.)
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |i: usize| args.get(i).and_then(|a| a.parse::<u16>().ok());
    let (Some(listen), Some(target)) = (port(0), port(1)) else {
        eprintln!("usage: delayproxy LISTEN_PORT TARGET_PORT [DELAY_MS]");
        std::process::exit(2);
    };
    let delay_ms = match args.get(2).map(|a| a.parse::<f64>()) {
        None => 20.0,
        Some(Ok(ms)) if ms >= 0.0 => ms,
        Some(_) => {
            eprintln!("DELAY_MS must be a number of milliseconds, 0 or more");
            std::process::exit(2);
        }
    };
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    // One thread, like the Python proxy: the CPU it takes is what the other processes lose.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", listen))
            .await
            .unwrap_or_else(|e| {
                eprintln!("cannot listen on 127.0.0.1:{listen}: {e}");
                std::process::exit(1);
            });
        let port = listener.local_addr().expect("a bound address").port();
        println!("listening on 127.0.0.1:{port}");
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_r, client_w) = client.into_split();
                let (server_r, server_w) = server.into_split();
                tokio::join!(
                    pipe(client_r, server_w, delay),
                    pipe(server_r, client_w, delay)
                );
            });
        }
    });
}

/// Carries one direction: chunks are read as they come and each is written `delay` after it was
/// read, so a slow writer does not hold up the reading (nor the timing of later chunks).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let pump = async move {
        let mut buf = vec![0; 65536];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            // An empty chunk is the end of the stream (or a failed read: the same to the peer).
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
                || n == 0
            {
                return;
            }
        }
    };
    let deliver = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if data.is_empty() {
                let _ = to.shutdown().await;
                return;
            }
            if to.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(pump, deliver);
}
