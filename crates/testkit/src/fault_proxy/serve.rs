//! One connection to the fault proxy: each request is matched to its rule and logged, then
//! answered as its fault says — in the registry's stead, or by forwarding it and spoiling the
//! registry's answer.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::Regex;

use super::{
    Fault, Message, STALL_LIMIT, Seen, State, Upstreams, forward, read_body, read_head,
    write_response,
};

pub(super) fn serve(client: TcpStream, state: &Mutex<State>, upstreams: &Upstreams, port: u16) {
    let me = format!("127.0.0.1:{port}");
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut writer = client;
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let mut parts = request.head.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let path = target.split('?').next().unwrap_or_default().to_owned();
        let (fault, index) = record(state, &request, &method, &target, &path);
        let fault = match fault {
            Some(Fault::Persona(p)) => p.answer(&method, &target, &request.body),
            other => other,
        };
        let is_head = method == "HEAD";
        match before_forwarding(
            fault.as_ref(),
            &mut reader,
            &mut writer,
            state,
            &target,
            is_head,
        ) {
            Next::Forward => {}
            Next::Continue => continue,
            Next::Close => {
                if matches!(fault, Some(Fault::Stall)) {
                    state.lock().unwrap().seen[index].hung_up = Some(Instant::now());
                }
                return;
            }
        }
        let Some(mut response) = forward(upstreams.for_path(&path), &request, is_head) else {
            return;
        };
        for (_, v) in response.headers.iter_mut() {
            for up in upstreams.all() {
                if v.contains(up) {
                    *v = v.replace(up, &me);
                }
            }
        }
        if after_forwarding(fault.as_ref(), response, &mut writer, is_head) == Next::Close {
            return;
        }
    }
}

/// What the connection does next.
#[derive(PartialEq, Eq)]
enum Next {
    /// Send the request on to the registry.
    Forward,
    /// Answered: read the next request on the connection.
    Continue,
    /// Done with this connection.
    Close,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Message> {
    let (head, headers) = read_head(reader)?;
    let body = read_body(reader, &headers, false)?;
    Some(Message {
        head,
        headers,
        body,
    })
}

/// Counts the request against every rule it matches and logs it: the fault of the first rule
/// whose turn it is, and the request's index in the log.
fn record(
    state: &Mutex<State>,
    request: &Message,
    method: &str,
    target: &str,
    path: &str,
) -> (Option<Fault>, usize) {
    let mut st = state.lock().unwrap();
    let mut fault = None;
    for rule in st.rules.iter_mut() {
        let matches =
            rule.method.as_deref().is_none_or(|m| m == method) && rule.path.is_match(path);
        if matches {
            rule.seen += 1;
            if fault.is_none() && rule.occurrences.contains(&rule.seen) {
                fault = Some(rule.fault.clone());
            }
        }
    }
    st.seen.push(Seen {
        method: method.to_owned(),
        target: target.to_owned(),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        fault: fault.as_ref().map(|f| format!("{f:?}")),
        at: Instant::now(),
        hung_up: None,
    });
    (fault, st.seen.len() - 1)
}

/// The faults that answer in the registry's stead (or hold the request before it goes on).
fn before_forwarding(
    fault: Option<&Fault>,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    state: &Mutex<State>,
    target: &str,
    is_head: bool,
) -> Next {
    let answer = |writer: &mut TcpStream, m: Message, body: &[u8], len: usize| {
        if write_response(writer, &m, body, len) {
            Next::Continue
        } else {
            Next::Close
        }
    };
    let bare = |head: String, headers: Vec<(String, String)>| Message {
        head,
        headers,
        body: Vec::new(),
    };
    match fault {
        Some(Fault::Status {
            status,
            headers,
            body,
        }) => {
            let m = bare(format!("HTTP/1.1 {status} Injected"), headers.clone());
            let sent: &[u8] = if is_head { &[] } else { body };
            answer(writer, m, sent, body.len())
        }
        Some(Fault::Redirect { target: to }) => {
            let location = vec![("Location".into(), format!("{to}{target}"))];
            let m = bare("HTTP/1.1 307 Temporary Redirect".into(), location);
            answer(writer, m, &[], 0)
        }
        Some(Fault::HoldUntil {
            method: awaited,
            path: pattern,
            limit,
        }) => {
            let re = Regex::new(&format!("^(?:{pattern})$")).expect("a valid path regex");
            let deadline = Instant::now() + *limit;
            let came = || {
                state
                    .lock()
                    .unwrap()
                    .seen
                    .iter()
                    .any(|s| s.method == *awaited && re.is_match(s.path()))
            };
            while !came() && Instant::now() < deadline {
                // Polls the proxy's own log of requests; the answer waits for the event.
                std::thread::sleep(Duration::from_millis(2));
            }
            if came() {
                Next::Forward
            } else {
                answer(writer, bare("HTTP/1.1 400 Held".into(), Vec::new()), &[], 0)
            }
        }
        Some(Fault::Stall) => {
            // Hold the connection, sending nothing, until the client hangs up.
            let _ = writer.set_read_timeout(Some(STALL_LIMIT));
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
            Next::Close
        }
        _ => Next::Forward,
    }
}

/// Sends the registry's answer on, as the fault spoils it.
fn after_forwarding(
    fault: Option<&Fault>,
    mut response: Message,
    writer: &mut TcpStream,
    is_head: bool,
) -> Next {
    let len = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .filter(|_| is_head)
        .unwrap_or(response.body.len());
    match fault {
        Some(Fault::Reset) => {
            let _ = socket2::SockRef::from(&*writer).set_linger(Some(Duration::ZERO));
            return Next::Close;
        }
        Some(Fault::ResetMidBody) | Some(Fault::TruncateBody) => {
            let half = response.body.len() / 2;
            let body = response.body[..half].to_vec();
            let _ = write_response(writer, &response, &body, response.body.len());
            if matches!(fault, Some(Fault::ResetMidBody)) {
                // SO_LINGER 0: close sends RST instead of FIN.
                let _ = socket2::SockRef::from(&*writer).set_linger(Some(Duration::ZERO));
            } else {
                let _ = writer.shutdown(Shutdown::Write);
            }
            return Next::Close;
        }
        Some(Fault::Trickle { pieces, pause }) => {
            let body = std::mem::take(&mut response.body);
            if !write_response(writer, &response, &[], len) {
                return Next::Close;
            }
            let step = body.len().div_ceil((*pieces).max(1)).max(1);
            for piece in body.chunks(step) {
                // The pause is the fault (a slow link), not a wait for anything.
                std::thread::sleep(*pause);
                if writer
                    .write_all(piece)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    return Next::Close;
                }
            }
            return Next::Continue;
        }
        Some(Fault::WrongDigest(d)) => {
            for (k, v) in response.headers.iter_mut() {
                if k.eq_ignore_ascii_case("docker-content-digest") {
                    *v = d.clone();
                }
            }
        }
        _ => {}
    }
    let body = std::mem::take(&mut response.body);
    if write_response(writer, &response, &body, len) {
        Next::Continue
    } else {
        Next::Close
    }
}
