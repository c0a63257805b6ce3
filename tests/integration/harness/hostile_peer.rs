//! A misbehaving registry: HTTP/1.1 by hand on a std `TcpListener` on 127.0.0.1, for what a
//! real registry cannot be made to do (redirect forever, stall, send a gigabyte manifest, lie
//! in its Content-Length). It is a hostile peer, not a stand-in for a registry's normal
//! behaviour: whatever it serves correctly (a manifest, a config) it takes from a real
//! fixture image.
//!
//! One thread accepts; each connection is answered in a thread of its own, so that a stalled
//! connection does not hold up the next one. The threads live until the test process exits.
//! A connection that opens with a TLS handshake (nook first probes an insecure registry over
//! HTTPS) is closed at once, so nook falls back to plain HTTP without waiting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// What the peer saw of a request: its method and path (with the query).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
}

impl Request {
    /// `/v2/NAME/manifests/REF`: REF.
    pub fn manifest_ref(&self) -> Option<&str> {
        self.path.split_once("/manifests/").map(|(_, r)| r)
    }

    /// `/v2/NAME/blobs/DIGEST`: DIGEST.
    pub fn blob_digest(&self) -> Option<&str> {
        self.path.split_once("/blobs/").map(|(_, r)| r)
    }
}

pub struct HostilePeer {
    /// `127.0.0.1:PORT`
    pub addr: String,
}

type Handler = dyn Fn(&Request, &mut TcpStream) + Send + Sync;

impl HostilePeer {
    /// Starts a peer that answers every request with `answer`, which writes whatever it
    /// likes (or nothing) to the stream; the connection is closed when it returns. `/v2/`
    /// itself is answered 200, as a registry without authentication does.
    pub fn start(answer: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static) -> HostilePeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().unwrap().to_string();
        let answer: Arc<Handler> = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let answer = answer.clone();
                std::thread::spawn(move || serve(stream, &*answer));
            }
        });
        HostilePeer { addr }
    }
}

fn serve(mut stream: TcpStream, answer: &Handler) {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).unwrap_or(0) == 0 || first[0] == 0x16 {
        // EOF, or a TLS ClientHello.
        return;
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let request = Request {
        method: words.next().unwrap_or("").to_string(),
        path: words.next().unwrap_or("").to_string(),
    };
    let mut length = 0u64;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let _ = std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink());
    if request.path == "/v2/" || request.path == "/v2" {
        respond(
            &mut stream,
            200,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        return;
    }
    answer(&request, &mut stream);
    let _ = stream.flush();
}

/// Writes a whole response with a correct Content-Length.
pub fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Writes a status line and headers only (the caller sends the body, or does not).
pub fn respond_head(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)]) {
    let mut head = format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
}

/// Sends `total` bytes of `fill` in 64 KiB writes, stopping when the client hangs up.
/// Returns how many were sent.
pub fn stream_filler(stream: &mut TcpStream, fill: u8, total: u64) -> u64 {
    let chunk = vec![fill; 64 * 1024];
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.len().min((total - sent) as usize);
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    sent
}

/// Holds the connection open, saying nothing, for `how_long` or until the client hangs up.
pub fn stall(stream: &mut TcpStream, how_long: Duration) {
    let _ = stream.set_read_timeout(Some(how_long));
    let mut buf = [0u8; 1];
    // Returns at EOF (the client gave up) or when the time is up.
    let _ = stream.read(&mut buf);
}
