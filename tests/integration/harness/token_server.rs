//! The token server of [`token_registry`](super::registry::token_registry): the test's own
//! authorization server, as a real deployment has one next to its registry (the registry
//! itself is the real `docker-registry`). HTTP/1.1 by hand on a std `TcpListener` on
//! 127.0.0.1, one request per connection, in background threads that live as long as the test
//! process.
//!
//! `GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=…]` answers, as Docker's token
//! specification says, `{"token": JWT, "access_token": JWT, "expires_in": 300}`:
//!
//! - Basic credentials `tester`/`n00k-secret`: every requested `pull`/`push` is granted.
//! - No credentials: `pull` on repositories under `public/`, nothing else (a token with an
//!   empty `access` list; the registry then refuses with `insufficient_scope`).
//! - Any other credentials: 401.
//!
//! The JWT is RS256, signed with the `openssl` CLI; its header's `x5c` holds the signing
//! certificate, which is also the registry's `rootcertbundle`: distribution 2.8 accepts a
//! token whose x5c chain verifies against that bundle.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::registry::{
    AUTH_PASSWORD, AUTH_USER, certificate_der, openssl, self_signed_certificate,
};

/// One token request as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The authenticated user; None for an anonymous request (and for refused credentials).
    pub account: Option<String>,
    /// The `scope` parameters, decoded.
    pub scopes: Vec<String>,
    /// The HTTP status answered: 200, 401, 400, 404.
    pub status: u16,
    /// `type:name:actions` entries granted.
    pub granted: Vec<String>,
}

pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    /// The registry's `service` (the token's `aud`).
    pub service: String,
    /// The token's `iss`.
    pub issuer: String,
    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub certificate: PathBuf,
    key: PathBuf,
    /// Base64 (standard, padded) DER of the certificate: the JWT header's `x5c[0]`.
    x5c: String,
    requests: Mutex<Vec<TokenRequest>>,
    next_id: AtomicU64,
}

impl TokenServer {
    /// Generates the signing key and certificate and starts serving, for the rest of the test
    /// process.
    pub fn start() -> &'static TokenServer {
        // Removed at exit like the test binary's copy.
        let dir = tempfile::Builder::new()
            .prefix("nook-test-token-server-")
            .tempdir_in("/tmp")
            .expect("creating the token server dir")
            .keep();
        super::context::remove_at_exit(&dir);
        let (certificate, key) =
            self_signed_certificate(&dir, "token-signer", "nook-test-token-issuer", false);
        let x5c = STANDARD.encode(certificate_der(&certificate));
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        let port = listener.local_addr().unwrap().port();
        let server: &'static TokenServer = Box::leak(Box::new(TokenServer {
            realm: format!("http://127.0.0.1:{port}/token"),
            service: "nook-test-registry".to_string(),
            issuer: "nook-test-token-issuer".to_string(),
            certificate,
            key,
            x5c,
            requests: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                // A thread per connection: signing spawns openssl, and nook fetches in
                // parallel.
                std::thread::spawn(move || server.serve(stream));
            }
        });
        server
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> MutexGuard<'_, Vec<TokenRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut authorization = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.trim().eq_ignore_ascii_case("authorization")
            {
                authorization = Some(v.trim().to_string());
            }
        }
        let (status, body, request) = self.answer(&method, &target, authorization.as_deref());
        self.requests().push(request);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        if status == 401 {
            out.push_str("WWW-Authenticate: Basic realm=\"nook-test-token-server\"\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        let mut stream = stream;
        let _ = stream.write_all(out.as_bytes());
        let _ = stream.flush();
    }

    /// (status, JSON body, the record of the request).
    fn answer(
        &self,
        method: &str,
        target: &str,
        authorization: Option<&str>,
    ) -> (u16, String, TokenRequest) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let mut request = TokenRequest {
            account: None,
            scopes: scopes.clone(),
            status: 200,
            granted: Vec::new(),
        };
        let error = |status: u16, message: &str, mut request: TokenRequest| {
            request.status = status;
            let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]});
            (status, body.to_string(), request)
        };
        if method != "GET" || path != "/token" {
            return error(404, "only GET /token is served here", request);
        }
        let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v);
        if service.is_some_and(|s| s != &self.service) {
            return error(400, "unknown service", request);
        }
        match authorization {
            None => {}
            Some(value) => {
                let expected = STANDARD.encode(format!("{AUTH_USER}:{AUTH_PASSWORD}"));
                let given = value
                    .strip_prefix("Basic ")
                    .or_else(|| value.strip_prefix("basic "));
                if given.map(str::trim) != Some(expected.as_str()) {
                    return error(401, "invalid username or password", request);
                }
                request.account = Some(AUTH_USER.to_string());
            }
        }

        let mut access = Vec::new();
        for scope in &scopes {
            // type:name:actions; the name has no colon for repositories, but split from both
            // ends to be safe.
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| match &request.account {
                    Some(_) => matches!(*a, "pull" | "push"),
                    None => kind == "repository" && name.starts_with("public/") && *a == "pull",
                })
                .collect();
            if !granted.is_empty() {
                request
                    .granted
                    .push(format!("{kind}:{name}:{}", granted.join(",")));
                access.push(json!({"type": kind, "name": name, "actions": granted}));
            }
        }

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]});
        let claims = json!({
            "iss": self.issuer,
            "sub": request.account.clone().unwrap_or_default(),
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("nook-test-{}-{id}", std::process::id()),
            "access": access,
        });
        let token = sign(&self.key, &header, &claims);
        let body = json!({"token": token, "access_token": token, "expires_in": 300});
        (200, body.to_string(), request)
    }
}

/// `BASE64URL(header).BASE64URL(claims).BASE64URL(RS256 signature)`, signed by
/// `openssl dgst -sha256 -sign KEY` (RSASSA-PKCS1-v1_5 with SHA-256, which is RS256).
fn sign(key: &Path, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = key.to_str().expect("non-UTF-8 temp path");
    let signature = openssl(&["dgst", "-sha256", "-sign", key], Some(input.as_bytes()));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Decodes `%XX` escapes and `+` (a space in a query string).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
