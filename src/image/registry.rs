//! The Distribution API v2 client: fetching manifests and blobs, and pushing them (blob
//! existence checks, cross-repository mounts, monolithic and chunked uploads, manifest PUTs),
//! with the registry's token (Bearer) or Basic authentication.
//!
//! Blocking on purpose: pulls and pushes are I/O bound on a handful of layers, which the
//! caller moves on plain threads sharing one `Client` (hence `Send + Sync`).
//!
//! Every request body is a byte slice held by the caller (a chunk of at most a few MiB), so a
//! request that meets a 401 can be sent again once the token is in hand.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::image::auth::Credentials;
use crate::image::digest::Digest;
use crate::image::manifest;

/// Where a registry is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// host[:port] to connect to (for Docker Hub: registry-1.docker.io).
    pub host: String,
    pub plain_http: bool,
    pub tls_verify: bool,
    /// An "insecure" registry, as Docker treats them: try HTTPS (unverified) first, and plain
    /// HTTP when the registry does not speak TLS.
    pub http_fallback: bool,
}

impl Endpoint {
    fn base_url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.host)
    }
}

/// How long a registry may go silent (connecting, or between two reads or writes) before
/// nook gives up: `[registry] timeout` in config.toml.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Connecting takes at most this (or the timeout, when that is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A small document (manifest, config, token, error, the /v2/ probe) must arrive whole
/// within this many timeouts: a registry that sends one byte every few seconds keeps each
/// read alive, and 4 MiB at that pace would take months.
const SMALL_DEADLINE_TIMEOUTS: u32 = 2;
/// Redirects followed for one request.
const MAX_REDIRECTS: u32 = 5;
/// A blob must arrive at no less than this many bytes per timeout, for the same reason; a
/// real link, however slow, is thousands of times faster.
const MIN_BYTES_PER_TIMEOUT: u64 = 16 * 1024;

/// Error bodies are short JSON; never buffer more than this of one.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Token responses are small JSON too.
const MAX_TOKEN_BODY: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {host}: {reason}")]
    Unreachable {
        host: String,
        url: String,
        reason: String,
        /// Kept for debugging, not printed: `reason` already says what went wrong, and the
        /// transport's own text repeats the URL and the OS error.
        transport: Box<ureq::Transport>,
    },

    #[error(
        "TLS connection to {host} failed: {message}; if the registry uses plain HTTP or a \
         self-signed certificate, pass --tls-verify=false or mark it insecure in registries.toml (or [registries] of config.toml)"
    )]
    Tls { host: String, message: String },

    #[error(
        "not authorized to access {registry}/{repository} (the repository may not exist, or \
         may need credentials: try `nook login {registry}`)"
    )]
    Unauthorized {
        registry: String,
        repository: String,
    },

    #[error(
        "not allowed to push to {registry}/{repository} (log in with `nook login {registry}`, \
         or check that the account may push to that repository)"
    )]
    PushDenied {
        registry: String,
        repository: String,
    },

    #[error("the registry refused {what}: {message}")]
    Rejected {
        what: String,
        status: u16,
        /// The registry's error code (`DIGEST_INVALID`, `MANIFEST_BLOB_UNKNOWN`, …), if any.
        code: Option<String>,
        message: String,
    },

    #[error("{what}: the registry answered HTTP {status}, which the protocol does not allow there")]
    UnexpectedStatus { what: String, status: u16 },

    #[error("{what}: the registry sent no usable Location header")]
    NoLocation { what: String },

    #[error("{what} not found{}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    NotFound { what: String, code: Option<String> },

    #[error("{url} returned HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        url: String,
        status: u16,
        message: String,
    },

    #[error(
        "{host} redirected {limit} times in a row (from {url}); the registry or a proxy in \
         front of it is misconfigured"
    )]
    TooManyRedirects {
        host: String,
        url: String,
        limit: u32,
    },

    #[error(
        "{host} did not answer {what} within {} s (raise `timeout` under [registry] in \
         config.toml for a slow registry)", timeout.as_secs()
    )]
    TimedOut {
        host: String,
        what: String,
        timeout: Duration,
    },

    #[error(
        "{host} sent {what} too slowly: {bytes} bytes in {} s (at least {MIN_BYTES_PER_TIMEOUT} \
         are needed)", timeout.as_secs()
    )]
    TooSlow {
        host: String,
        what: String,
        bytes: u64,
        timeout: Duration,
    },

    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },

    #[error("reading {url} failed: {source}")]
    Read {
        url: String,
        #[source]
        source: io::Error,
    },

    #[error("the token server {url} sent an unusable response: {message}")]
    Token { url: String, message: String },

    #[error("unsupported authentication scheme from {url}: {challenge}")]
    UnsupportedAuth { url: String, challenge: String },

    #[error("`{reference}` is not a sha256 digest, the only kind nook can verify")]
    UnsupportedDigest { reference: String },
}

impl RegistryError {
    /// Whether trying again may succeed: the connection failed or broke, or the registry
    /// said it is failing or overloaded for now.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::Read { .. }
            | RegistryError::TimedOut { .. }
            | RegistryError::TooSlow { .. } => true,
            RegistryError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            _ => false,
        }
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
    Other(String),
}

/// Parses a `WWW-Authenticate` value (RFC 7235): one or more `scheme param=value, ...`
/// challenges, where values may be quoted strings containing commas and `\"` escapes (a scope
/// such as `repository:foo:pull,push` is quoted for exactly that reason).
pub(crate) fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut raw: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        // Skip separators between items.
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ',' && chars[i] != '=' {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        skip_ws(&mut j);
        if j < chars.len() && chars[j] == '=' && !raw.is_empty() {
            // A parameter of the current challenge.
            i = j + 1;
            skip_ws(&mut i);
            let mut value = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1; // closing quote
            } else {
                while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                    value.push(chars[i]);
                    i += 1;
                }
            }
            if let Some((_, params)) = raw.last_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
        } else if j < chars.len() && chars[j] == '=' {
            // `=` with no scheme before it: malformed; skip the token.
            i = j + 1;
        } else {
            // A new scheme. A token68 credential after it (`Negotiate abc==`) is skipped by
            // the parameter branch failing to find a scheme-less `=`; good enough, as nook
            // only speaks Bearer and Basic.
            raw.push((token, Vec::new()));
        }
    }
    raw.into_iter()
        .map(|(scheme, params)| {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map(|(_, v)| v.clone())
            };
            match scheme.to_ascii_lowercase().as_str() {
                "bearer" => match get("realm") {
                    Some(realm) => Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    },
                    None => Challenge::Other(scheme),
                },
                "basic" => Challenge::Basic,
                _ => Challenge::Other(scheme),
            }
        })
        .collect()
}

/// Extracts the token from a token-server response. Docker's spec names it `token`; OAuth2
/// servers use `access_token`; some send both.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let r: TokenResponse = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    r.token
        .filter(|t| !t.is_empty())
        .or(r.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| "no `token` or `access_token` in the response".to_string())
}

/// Picks the registry's `errors[]` out of an error body: (first code, joined messages).
fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => {
            let code = b.errors.iter().find_map(|e| e.code.clone());
            let message = b
                .errors
                .iter()
                .map(|e| match (&e.code, &e.message) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => String::new(),
                })
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            (code, message)
        }
        _ => {
            // Not the registry's JSON: a proxy or load balancer page. Show a short prefix.
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            (None, text)
        }
    }
}

fn read_capped(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// TLS certificate verification that accepts anything, for `--tls-verify=false`. Signatures
/// are still checked so the handshake itself is sound; only the certificate's trust is not.
#[derive(Debug)]
struct NoCertificateVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn insecure_tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoCertificateVerification(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// How to authenticate a request.
enum Auth {
    None,
    Basic(String),
    Bearer(String),
}

pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

impl std::fmt::Debug for FetchedManifest {
    // The body can be megabytes; its size says enough in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedManifest")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("content_type", &self.content_type)
            .field("digest", &self.digest)
            .finish()
    }
}

/// What [`Client::mount_blob`] achieved.
#[derive(Debug)]
pub enum Mount {
    Mounted,
    /// The registry did not mount; it started an ordinary upload instead.
    Started(Upload),
}

/// An upload in progress: where its next request goes and how many bytes it holds.
#[derive(Debug)]
pub struct Upload {
    repository: String,
    location: String,
    offset: u64,
}

impl Upload {
    /// Bytes sent so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

pub struct Client {
    agent: ureq::Agent,
    /// See [`DEFAULT_TIMEOUT`].
    timeout: Duration,
    endpoint: Endpoint,
    credentials: Option<Credentials>,
    /// Bearer tokens by scope (`repository:foo:pull`, or "" for the /v2/ check). Parallel layer
    /// fetches of one image share one token instead of each asking the token server.
    tokens: Mutex<HashMap<String, String>>,
    /// Set once the registry has asked for Basic auth, so later requests send credentials
    /// up front instead of collecting a 401 each.
    basic_auth: AtomicBool,
    /// "http" or "https", decided on first use (see `Endpoint::http_fallback`).
    scheme: std::sync::OnceLock<&'static str>,
}

impl Client {
    pub fn new(endpoint: Endpoint, credentials: Option<Credentials>) -> Client {
        Client::with_timeout(endpoint, credentials, DEFAULT_TIMEOUT)
    }

    /// A client that gives up on a registry silent for `timeout` (see [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(
        endpoint: Endpoint,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Client {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(CONNECT_TIMEOUT))
            .timeout_read(timeout)
            // An upload whose peer stops reading fails instead of hanging.
            .timeout_write(timeout)
            // Blob GETs are commonly redirected (307) to object storage; ureq drops the
            // Authorization header on redirects, which those presigned URLs require.
            .redirects(MAX_REDIRECTS)
            .user_agent(concat!("nook/", env!("CARGO_PKG_VERSION")));
        if !endpoint.tls_verify && !endpoint.plain_http {
            builder = builder.tls_config(insecure_tls_config());
        }
        Client {
            agent: builder.build(),
            timeout,
            endpoint,
            credentials,
            tokens: Mutex::new(HashMap::new()),
            basic_auth: AtomicBool::new(false),
            scheme: std::sync::OnceLock::new(),
        }
    }

    /// `scheme://host`. For an insecure registry the first call asks `/v2/` over HTTPS: any
    /// HTTP answer (even 401) means it speaks TLS; a failed handshake or connection means
    /// plain HTTP, as Docker does for insecure registries and localhost.
    fn base_url(&self) -> String {
        let scheme = *self.scheme.get_or_init(|| {
            if self.endpoint.plain_http {
                "http"
            } else if !self.endpoint.http_fallback {
                "https"
            } else {
                let probe = format!("{}/v2/", self.endpoint.base_url("https"));
                match self.agent.get(&probe).timeout(self.small_deadline()).call() {
                    Ok(_) | Err(ureq::Error::Status(..)) => "https",
                    Err(ureq::Error::Transport(_)) => "http",
                }
            }
        });
        self.endpoint.base_url(scheme)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The whole-response deadline of a small document.
    fn small_deadline(&self) -> Duration {
        self.timeout * SMALL_DEADLINE_TIMEOUTS
    }

    fn url(&self, repository: &str, kind: &str, reference: &str) -> String {
        format!("{}/v2/{repository}/{kind}/{reference}", self.base_url())
    }

    /// `GET /v2/` with credentials: verifies a login.
    pub fn check_auth(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base_url());
        let resp = self.get(&url, None, "", None, "registry", true)?;
        // Drain so the connection can be reused.
        let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
        Ok(())
    }

    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let expected = if reference.contains(':') {
            Some(
                reference
                    .parse::<Digest>()
                    .map_err(|_| RegistryError::UnsupportedDigest {
                        reference: reference.to_string(),
                    })?,
            )
        } else {
            None
        };
        let sep = if expected.is_some() { "@" } else { ":" };
        let what = format!(
            "manifest {}/{repository}{sep}{reference}",
            self.endpoint.host
        );
        let url = self.url(repository, "manifests", reference);
        let resp = self.get(
            &url,
            Some(repository),
            &pull_scope(repository),
            Some(manifest::ACCEPT),
            &what,
            true,
        )?;
        let content_type = resp.header("content-type").map(str::to_string);
        let bytes = self.read_limited(resp, &url, &what, manifest::MAX_MANIFEST_BYTES)?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected,
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }

    /// The blob's body as a stream. The caller verifies the digest while consuming it.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Box<dyn Read + Send>, RegistryError> {
        let what = format!("blob {}/{repository}@{digest}", self.endpoint.host);
        let url = self.url(repository, "blobs", &digest.to_string());
        let resp = self.get(
            &url,
            Some(repository),
            &pull_scope(repository),
            None,
            &what,
            false,
        )?;
        Ok(Box::new(PacedReader {
            inner: resp.into_reader(),
            host: self.endpoint.host.clone(),
            what,
            timeout: self.timeout,
            window_start: Instant::now(),
            window_bytes: 0,
        }))
    }

    /// A small blob (an image config), read whole and verified.
    pub fn get_blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {}/{repository}@{digest}", self.endpoint.host);
        let url = self.url(repository, "blobs", &digest.to_string());
        let resp = self.get(
            &url,
            Some(repository),
            &pull_scope(repository),
            None,
            &what,
            true,
        )?;
        let bytes = self.read_limited(resp, &url, &what, limit)?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    // ---- Pushing ----

    /// Whether the repository has blob `digest`: its size when it does (`HEAD`).
    pub fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let what = format!("blob {}/{repository}@{digest}", self.endpoint.host);
        let url = self.url(repository, "blobs", &digest.to_string());
        let scope = push_scope(repository);
        let resp = match self.request(&Req {
            method: "HEAD",
            url: &url,
            repository: Some(repository),
            scope: &scope,
            accept: None,
            headers: &[],
            body: None,
            what: &what,
            push: true,
            small: false,
        }) {
            Ok(resp) => resp,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if resp.status() != 200 {
            return Err(RegistryError::UnexpectedStatus {
                what,
                status: resp.status(),
            });
        }
        Ok(Some(
            resp.header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Asks the registry to link blob `digest` from repository `from` (on the same registry)
    /// into `repository`, so it needs no upload. A registry that cannot (it lacks the blob,
    /// the credentials may not read `from`, or it does not do mounts) starts an ordinary
    /// upload instead, which is returned.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let what = format!(
            "mount of blob {digest} from {from} into {}/{repository}",
            self.endpoint.host
        );
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
            self.base_url()
        );
        // The source repository needs `pull`; the registry's challenge usually says so too,
        // but not every registry puts both scopes in it.
        let scope = format!("{} repository:{from}:pull", push_scope(repository));
        let resp = self.post_to_uploads(&url, repository, &scope, &what)?;
        match resp.status() {
            201 => {
                let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
                Ok(Mount::Mounted)
            }
            202 => Ok(Mount::Started(self.upload_from(resp, repository, &what)?)),
            status => Err(RegistryError::UnexpectedStatus { what, status }),
        }
    }

    /// An empty `POST` to the upload endpoint `url` (a new upload, or a mount).
    fn post_to_uploads(
        &self,
        url: &str,
        repository: &str,
        scope: &str,
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        self.request(&Req {
            method: "POST",
            url,
            repository: Some(repository),
            scope,
            accept: None,
            headers: &[],
            body: Some(&[]),
            what,
            push: true,
            small: false,
        })
    }

    /// Starts a blob upload (`POST …/blobs/uploads/`).
    pub fn start_upload(&self, repository: &str) -> Result<Upload, RegistryError> {
        let what = format!("upload to {}/{repository}", self.endpoint.host);
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base_url());
        let resp = self.post_to_uploads(&url, repository, &push_scope(repository), &what)?;
        match resp.status() {
            202 => self.upload_from(resp, repository, &what),
            status => Err(RegistryError::UnexpectedStatus { what, status }),
        }
    }

    fn upload_from(
        &self,
        resp: ureq::Response,
        repository: &str,
        what: &str,
    ) -> Result<Upload, RegistryError> {
        let location = resp
            .header("location")
            .map(|l| self.resolve_location(l))
            .ok_or_else(|| RegistryError::NoLocation {
                what: what.to_string(),
            })?;
        let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
        Ok(Upload {
            repository: repository.to_string(),
            location,
            offset: 0,
        })
    }

    /// A Location header made absolute: registries send both forms.
    fn resolve_location(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base_url())
        } else {
            format!("{}/{location}", self.base_url())
        }
    }

    /// Sends the next chunk of an upload (`PATCH` with `Content-Range`).
    pub fn upload_chunk(&self, upload: &mut Upload, chunk: &[u8]) -> Result<(), RegistryError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let end = upload.offset + chunk.len() as u64 - 1;
        let what = format!(
            "bytes {}-{end} of an upload to {}/{}",
            upload.offset, self.endpoint.host, upload.repository
        );
        let range = format!("{}-{end}", upload.offset);
        let scope = push_scope(&upload.repository);
        let resp = self.request(&Req {
            method: "PATCH",
            url: &upload.location,
            repository: Some(&upload.repository),
            scope: &scope,
            accept: None,
            headers: &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            body: Some(chunk),
            what: &what,
            push: true,
            small: false,
        })?;
        if resp.status() != 202 {
            return Err(RegistryError::UnexpectedStatus {
                what,
                status: resp.status(),
            });
        }
        // The registry says how much it holds (`Range: 0-END`); anything else means the
        // upload lost bytes, and continuing would only fail at the digest check.
        if let Some(held) = resp.header("range").and_then(range_end)
            && held != end
        {
            return Err(RegistryError::Rejected {
                what,
                status: 202,
                code: None,
                message: format!("the registry holds bytes 0-{held}, expected 0-{end}"),
            });
        }
        let location = resp
            .header("location")
            .map(|l| self.resolve_location(l))
            .ok_or_else(|| RegistryError::NoLocation { what: what.clone() })?;
        let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
        upload.location = location;
        upload.offset = end + 1;
        Ok(())
    }

    /// Completes an upload (`PUT ?digest=`), with `last` as its final bytes: all of a small
    /// blob (a monolithic upload), or nothing after chunks. The registry checks the digest.
    pub fn finish_upload(
        &self,
        upload: Upload,
        digest: &Digest,
        last: &[u8],
    ) -> Result<(), RegistryError> {
        let what = format!(
            "blob {digest} uploaded to {}/{}",
            self.endpoint.host, upload.repository
        );
        let sep = if upload.location.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}digest={digest}", upload.location);
        let scope = push_scope(&upload.repository);
        let resp = self.request(&Req {
            method: "PUT",
            url: &url,
            repository: Some(&upload.repository),
            scope: &scope,
            accept: None,
            headers: &[("Content-Type", "application/octet-stream")],
            body: Some(last),
            what: &what,
            push: true,
            small: false,
        })?;
        if !matches!(resp.status(), 201 | 204) {
            return Err(RegistryError::UnexpectedStatus {
                what,
                status: resp.status(),
            });
        }
        check_digest_header(&resp, digest, &what)?;
        let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
        Ok(())
    }

    /// Abandons an upload (`DELETE`), so the registry drops what it holds of it. Best effort:
    /// registries expire forgotten uploads anyway.
    pub fn cancel_upload(&self, upload: Upload) {
        let scope = push_scope(&upload.repository);
        let _ = self.send(
            &Req {
                method: "DELETE",
                url: &upload.location,
                repository: Some(&upload.repository),
                scope: &scope,
                accept: None,
                headers: &[],
                body: None,
                what: "upload",
                push: true,
                small: false,
            },
            &self.preemptive_auth(&scope),
        );
    }

    /// Stores a manifest as `reference` (a tag) and returns its digest, checked against the
    /// one the registry reports.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let what = format!("manifest {}/{repository}:{reference}", self.endpoint.host);
        let url = self.url(repository, "manifests", reference);
        let scope = push_scope(repository);
        let resp = self.request(&Req {
            method: "PUT",
            url: &url,
            repository: Some(repository),
            scope: &scope,
            accept: None,
            headers: &[("Content-Type", media_type)],
            body: Some(bytes),
            what: &what,
            push: true,
            small: false,
        })?;
        if !matches!(resp.status(), 200 | 201 | 202 | 204) {
            return Err(RegistryError::UnexpectedStatus {
                what,
                status: resp.status(),
            });
        }
        let digest = Digest::of(bytes);
        check_digest_header(&resp, &digest, &what)?;
        let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
        Ok(digest)
    }

    fn read_limited(
        &self,
        resp: ureq::Response,
        url: &str,
        what: &str,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let too_large = || RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        };
        // Refuse early when the registry announces the size.
        if let Some(len) = resp
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            && len > limit
        {
            return Err(too_large());
        }
        let bytes = read_capped(resp.into_reader(), limit).map_err(|source| {
            if is_timeout(&source) {
                self.timed_out(what)
            } else {
                RegistryError::Read {
                    url: url.to_string(),
                    source,
                }
            }
        })?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(bytes)
    }

    /// Authentication to send before knowing whether the registry wants any.
    fn preemptive_auth(&self, scope: &str) -> Auth {
        if let Some(token) = self.tokens.lock().expect("token cache poisoned").get(scope) {
            return Auth::Bearer(token.clone());
        }
        match &self.credentials {
            Some(c) if self.basic_auth.load(Ordering::Relaxed) => Auth::Basic(c.encode()),
            _ => Auth::None,
        }
    }

    // ureq's own error type, passed straight back to `request`, which matches on it at once.
    #[allow(clippy::result_large_err)]
    fn send(&self, req: &Req<'_>, auth: &Auth) -> Result<ureq::Response, ureq::Error> {
        let mut r = self.agent.request(req.method, req.url);
        if req.small {
            r = r.timeout(self.small_deadline());
        }
        if let Some(accept) = req.accept {
            r = r.set("Accept", accept);
        }
        for (name, value) in req.headers {
            r = r.set(name, value);
        }
        match auth {
            Auth::None => {}
            Auth::Basic(b) => r = r.set("Authorization", &format!("Basic {b}")),
            Auth::Bearer(t) => r = r.set("Authorization", &format!("Bearer {t}")),
        }
        match req.body {
            Some(body) => r.send_bytes(body),
            None => r.call(),
        }
    }

    /// GET with the registry's auth dance (see [`Client::request`]); `small` for a document
    /// read whole (see [`SMALL_DEADLINE_TIMEOUTS`]).
    fn get(
        &self,
        url: &str,
        repository: Option<&str>,
        scope: &str,
        accept: Option<&str>,
        what: &str,
        small: bool,
    ) -> Result<ureq::Response, RegistryError> {
        self.request(&Req {
            method: "GET",
            url,
            repository,
            scope,
            accept,
            headers: &[],
            body: None,
            what,
            push: false,
            small,
        })
    }

    /// A request with the registry's auth dance: try (with a cached token if any); on 401
    /// follow the challenge once; a second 401 means the credentials are wrong or
    /// insufficient.
    fn request(&self, req: &Req<'_>) -> Result<ureq::Response, RegistryError> {
        let first = self.send(req, &self.preemptive_auth(req.scope));
        let challenge_resp = match first {
            Ok(resp) => return Ok(resp),
            Err(ureq::Error::Status(401, resp)) => resp,
            Err(e) => return Err(self.map_error(e, req)),
        };
        let challenges: Vec<Challenge> = challenge_resp
            .all("www-authenticate")
            .into_iter()
            .flat_map(parse_www_authenticate)
            .collect();
        let _ = read_capped(challenge_resp.into_reader(), MAX_ERROR_BODY);

        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            _ => None,
        });
        let auth = if let Some((realm, service, challenge_scope)) = bearer {
            // The registry's scope is authoritative (it may add actions, or a mount's source
            // repository); ours is added to it, and is all there is when it names none, as
            // many do for /v2/.
            let scopes = token_scopes(challenge_scope.as_deref(), req.scope);
            let token = self.fetch_token(realm, service.as_deref(), &scopes, req)?;
            self.tokens
                .lock()
                .expect("token cache poisoned")
                .insert(req.scope.to_string(), token.clone());
            Auth::Bearer(token)
        } else if challenges.contains(&Challenge::Basic) {
            let Some(creds) = &self.credentials else {
                return Err(self.unauthorized(req));
            };
            self.basic_auth.store(true, Ordering::Relaxed);
            Auth::Basic(creds.encode())
        } else if let Some(Challenge::Other(scheme)) = challenges.first() {
            return Err(RegistryError::UnsupportedAuth {
                url: req.url.to_string(),
                challenge: scheme.clone(),
            });
        } else {
            // 401 with no usable challenge.
            return Err(self.unauthorized(req));
        };

        match self.send(req, &auth) {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(401, resp)) => {
                let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
                // Don't keep a token the registry rejects.
                if let Auth::Bearer(_) = auth {
                    self.forget_token(req.scope);
                }
                Err(self.unauthorized(req))
            }
            Err(e) => Err(self.map_error(e, req)),
        }
    }

    fn forget_token(&self, scope: &str) {
        self.tokens
            .lock()
            .expect("token cache poisoned")
            .remove(scope);
    }

    fn unauthorized(&self, req: &Req<'_>) -> RegistryError {
        let registry = self.endpoint.host.clone();
        let repository = req.repository.unwrap_or("").to_string();
        if req.push {
            RegistryError::PushDenied {
                registry,
                repository,
            }
        } else {
            RegistryError::Unauthorized {
                registry,
                repository,
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        req: &Req<'_>,
    ) -> Result<String, RegistryError> {
        let mut token_req = self.agent.get(realm).timeout(self.small_deadline());
        if let Some(service) = service {
            token_req = token_req.query("service", service);
        }
        // One `scope` parameter per scope, as the token specification has it.
        for scope in scopes {
            token_req = token_req.query("scope", scope);
        }
        if let Some(c) = &self.credentials {
            token_req = token_req.set("Authorization", &format!("Basic {}", c.encode()));
        }
        let resp = match token_req.call() {
            Ok(resp) => resp,
            Err(ureq::Error::Status(401 | 403, resp)) => {
                let _ = read_capped(resp.into_reader(), MAX_ERROR_BODY);
                return Err(self.unauthorized(req));
            }
            Err(e) => {
                let token = Req {
                    method: "GET",
                    url: realm,
                    what: "token",
                    ..*req
                };
                return Err(self.map_error(e, &token));
            }
        };
        let body = read_capped(resp.into_reader(), MAX_TOKEN_BODY).map_err(|source| {
            RegistryError::Read {
                url: realm.to_string(),
                source,
            }
        })?;
        if body.len() as u64 > MAX_TOKEN_BODY {
            return Err(RegistryError::TooLarge {
                what: format!("token response from {realm}"),
                limit: MAX_TOKEN_BODY,
            });
        }
        parse_token_response(&body).map_err(|message| RegistryError::Token {
            url: realm.to_string(),
            message,
        })
    }

    fn timed_out(&self, what: &str) -> RegistryError {
        RegistryError::TimedOut {
            host: self.endpoint.host.clone(),
            what: what.to_string(),
            timeout: self.timeout,
        }
    }

    fn map_error(&self, error: ureq::Error, req: &Req<'_>) -> RegistryError {
        if let ureq::Error::Transport(t) = &error {
            if t.kind() == ureq::ErrorKind::TooManyRedirects {
                return RegistryError::TooManyRedirects {
                    host: host_of(req.url),
                    url: req.url.to_string(),
                    limit: MAX_REDIRECTS,
                };
            }
            let timed_out = std::error::Error::source(t)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .is_some_and(is_timeout);
            if timed_out {
                return self.timed_out(req.what);
            }
        }
        match error {
            ureq::Error::Status(status, resp) => {
                let body = read_capped(resp.into_reader(), MAX_ERROR_BODY).unwrap_or_default();
                let (code, message) = parse_error_body(&body);
                match status {
                    404 => RegistryError::NotFound {
                        what: req.what.to_string(),
                        code: code.or((!message.is_empty()).then_some(message)),
                    },
                    // Authenticated but not allowed: same advice as a failed login.
                    401 | 403 => self.unauthorized(req),
                    // A push the registry refuses on its merits: a digest that does not match
                    // what was uploaded, a manifest naming a blob it lacks, a bad range.
                    400 | 409 | 411 | 413 | 416 if req.push => RegistryError::Rejected {
                        what: req.what.to_string(),
                        status,
                        code,
                        message: if message.is_empty() {
                            format!("HTTP {status}")
                        } else {
                            message
                        },
                    },
                    _ => RegistryError::Status {
                        url: req.url.to_string(),
                        status,
                        message,
                    },
                }
            }
            ureq::Error::Transport(t) => transport_error(t, req.url),
        }
    }
}

/// One request, as [`Client::request`] sends it (twice, when the first meets a 401).
#[derive(Clone, Copy)]
struct Req<'a> {
    method: &'a str,
    url: &'a str,
    repository: Option<&'a str>,
    /// The token scope(s) this request needs, space-separated; also the token cache key.
    scope: &'a str,
    accept: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a [u8]>,
    /// What the request is about, for error messages.
    what: &'a str,
    /// A push: refusals say so, and the registry's 4xx answers are reported as refusals.
    push: bool,
    /// A small document: the whole response must come within the small deadline.
    small: bool,
}

/// The scopes to ask the token server for: the challenge's, then ours that it lacks.
/// Scopes are space-separated in both (distribution sends a mount's two that way).
fn token_scopes(challenge: Option<&str>, ours: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in challenge
        .unwrap_or("")
        .split_whitespace()
        .chain(ours.split_whitespace())
    {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    scopes
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The END of a `Range: 0-END` header (distribution writes it without a unit; some
/// registries add `bytes=`).
fn range_end(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    value.split_once('-')?.1.trim().parse().ok()
}

/// A registry that names the digest of what it stored must name the one we sent.
fn check_digest_header(
    resp: &ureq::Response,
    expected: &Digest,
    what: &str,
) -> Result<(), RegistryError> {
    match resp.header("docker-content-digest").map(str::trim) {
        Some(reported) if reported != expected.to_string() => match reported.parse::<Digest>() {
            Ok(actual) => Err(RegistryError::DigestMismatch {
                what: what.to_string(),
                expected: expected.clone(),
                actual,
            }),
            // Another algorithm (sha512): nothing to compare with.
            Err(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

fn transport_error(t: ureq::Transport, url: &str) -> RegistryError {
    let host = host_of(url);
    // The innermost cause is the useful part ("Connection refused (os error 111)",
    // "invalid peer certificate: UnknownIssuer").
    let mut innermost: Option<String> = None;
    let mut source = std::error::Error::source(&t);
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    let message = t.message().unwrap_or("").to_string();
    let is_tls = message.contains("tls") || message.contains("TLS");
    let reason = innermost.unwrap_or_else(|| t.to_string());
    if is_tls {
        return RegistryError::Tls {
            host,
            message: reason,
        };
    }
    let reason = match t.kind() {
        ureq::ErrorKind::Dns => format!("cannot resolve the host name ({reason})"),
        _ => {
            if reason.starts_with("Connection refused") {
                "connection refused".to_string()
            } else {
                reason
            }
        }
    };
    RegistryError::Unreachable {
        host,
        url: url.to_string(),
        reason,
        transport: Box::new(t),
    }
}

/// Whether a read or connect failed for want of an answer in time (ureq's deadline and
/// socket timeouts; a socket timeout reads as `WouldBlock` on Linux).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// A blob's body, failing when the registry stalls (no byte for a timeout) or trickles (less
/// than [`MIN_BYTES_PER_TIMEOUT`] in a timeout), with an error that says so.
struct PacedReader<R> {
    inner: R,
    host: String,
    what: String,
    timeout: Duration,
    window_start: Instant,
    window_bytes: u64,
}

impl<R: Read> Read for PacedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    RegistryError::TimedOut {
                        host: self.host.clone(),
                        what: self.what.clone(),
                        timeout: self.timeout,
                    },
                ));
            }
            Err(e) => return Err(e),
        };
        self.window_bytes += n as u64;
        if self.window_start.elapsed() >= self.timeout {
            if self.window_bytes < MIN_BYTES_PER_TIMEOUT && n > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    RegistryError::TooSlow {
                        host: self.host.clone(),
                        what: self.what.clone(),
                        bytes: self.window_bytes,
                        timeout: self.timeout,
                    },
                ));
            }
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_string(),
            service: service.map(str::to_string),
            scope: scope.map(str::to_string),
        }
    }

    #[test]
    fn parses_real_world_challenges() {
        assert_eq!(
            parse_www_authenticate(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            [bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/alpine:pull")
            )]
        );
        // Quoted comma inside scope; spaces after commas.
        assert_eq!(
            parse_www_authenticate(
                r#"Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:user/image:pull,push""#
            ),
            [bearer(
                "https://ghcr.io/token",
                Some("ghcr.io"),
                Some("repository:user/image:pull,push")
            )]
        );
        // Quay: no scope.
        assert_eq!(
            parse_www_authenticate(r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#),
            [bearer("https://quay.io/v2/auth", Some("quay.io"), None)]
        );
        // Lowercase scheme, unquoted values, escaped quote.
        assert_eq!(
            parse_www_authenticate(r#"bearer realm=https://h/token,service=h,scope="a\"b""#),
            [bearer("https://h/token", Some("h"), Some("a\"b"))]
        );
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="Registry Realm""#),
            [Challenge::Basic]
        );
        // ECR's Basic with extra params.
        assert_eq!(
            parse_www_authenticate(
                r#"Basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#
            ),
            [Challenge::Basic]
        );
        // Several challenges in one header.
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="x", Bearer realm="https://t/", scope="s:a,b""#),
            [Challenge::Basic, bearer("https://t/", None, Some("s:a,b"))]
        );
        assert_eq!(
            parse_www_authenticate("Negotiate"),
            [Challenge::Other("Negotiate".to_string())]
        );
        assert!(parse_www_authenticate("").is_empty());
    }

    #[test]
    fn parses_token_responses() {
        assert_eq!(
            parse_token_response(
                br#"{"token":"abc","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}"#
            )
            .unwrap(),
            "abc"
        );
        assert_eq!(
            parse_token_response(br#"{"access_token":"xyz"}"#).unwrap(),
            "xyz"
        );
        assert_eq!(
            parse_token_response(br#"{"token":"","access_token":"xyz"}"#).unwrap(),
            "xyz"
        );
        assert!(parse_token_response(br#"{"expires_in":300}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }

    #[test]
    fn parses_error_bodies() {
        let (code, msg) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(msg, "MANIFEST_UNKNOWN: manifest unknown");
        let (code, msg) = parse_error_body(b"<html>502 Bad Gateway</html>");
        assert_eq!(code, None);
        assert_eq!(msg, "<html>502 Bad Gateway</html>");
    }

    #[test]
    fn builds_urls() {
        let c = Client::new(
            Endpoint {
                host: "127.0.0.1:5000".to_string(),
                plain_http: true,
                tls_verify: true,
                http_fallback: false,
            },
            None,
        );
        assert_eq!(
            c.url("library/alpine", "manifests", "latest"),
            "http://127.0.0.1:5000/v2/library/alpine/manifests/latest"
        );
        let c = Client::new(
            Endpoint {
                host: "registry-1.docker.io".to_string(),
                plain_http: false,
                tls_verify: false,
                http_fallback: false,
            },
            None,
        );
        let d = Digest::of(b"x");
        assert_eq!(
            c.url("a/b", "blobs", &d.to_string()),
            format!("https://registry-1.docker.io/v2/a/b/blobs/{d}")
        );
        assert_eq!(host_of("https://h:1/v2/x?y=z"), "h:1");
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
    }

    // ---- A tiny HTTP server standing in for a registry and its token server. ----

    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        authorization: Option<String>,
        accept: Option<String>,
        content_type: Option<String>,
        content_range: Option<String>,
        body: Vec<u8>,
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// Serves every connection with `handler` (one request per connection, `Connection:
    /// close`), recording the requests. The thread lives until the test process exits.
    fn serve(
        handler: impl Fn(&Seen, u16) -> Reply + Send + 'static,
    ) -> (u16, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                handle(stream, &handler, &log, port);
            }
        });
        (port, seen)
    }

    fn handle(
        mut stream: TcpStream,
        handler: &impl Fn(&Seen, u16) -> Reply,
        log: &Mutex<Vec<Seen>>,
        port: u16,
    ) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let method = line.split_whitespace().next().unwrap_or("").to_string();
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (mut authorization, mut accept, mut content_type, mut content_range) =
            (None, None, None, None);
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = Some(v.trim().to_string());
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => authorization = v,
                    "accept" => accept = v,
                    "content-type" => content_type = v,
                    "content-range" => content_range = v,
                    "content-length" => {
                        length = v.and_then(|v| v.parse().ok()).unwrap_or(0);
                    }
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let seen = Seen {
            method,
            path,
            authorization,
            accept,
            content_type,
            content_range,
            body,
        };
        let r = handler(&seen, port);
        log.lock().unwrap().push(seen);
        let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", r.status);
        let mut has_len = false;
        for (k, v) in &r.headers {
            has_len |= k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding");
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len {
            out.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        out.push_str("\r\n");
        let _ = stream.write_all(out.as_bytes());
        let _ = stream.write_all(&r.body);
    }

    fn local(port: u16, creds: Option<Credentials>) -> Client {
        Client::new(
            Endpoint {
                host: format!("127.0.0.1:{port}"),
                plain_http: true,
                tls_verify: true,
                http_fallback: false,
            },
            creds,
        )
    }

    fn alice() -> Credentials {
        Credentials {
            username: "alice".to_string(),
            password: "s3cret".to_string(),
        }
    }

    const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":2},"layers":[]}"#;

    #[test]
    fn bearer_flow_fetches_caches_and_reuses_token() {
        let basic = format!("Basic {}", alice().encode());
        let blob = b"config blob".to_vec();
        let blob_digest = Digest::of(&blob);
        let blob_path = format!("/v2/library/alpine/blobs/{blob_digest}");
        let (port, seen) = serve(move |req, port| {
            let authed = req.authorization.as_deref() == Some("Bearer tok-1");
            if req.path.starts_with("/token?") {
                if req.authorization.as_deref() == Some(basic.as_str()) {
                    reply(200, &[], br#"{"token":"tok-1","expires_in":300}"#)
                } else {
                    reply(401, &[], b"")
                }
            } else if req.path.starts_with("/storage/") {
                // Object storage rejects requests carrying registry credentials.
                if req.authorization.is_some() {
                    reply(400, &[], b"unexpected Authorization")
                } else {
                    reply(200, &[], b"config blob")
                }
            } else if !authed {
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="test-registry",scope="repository:library/alpine:pull""#
                );
                reply(
                    401,
                    &[
                        ("WWW-Authenticate", &challenge),
                        ("Content-Type", "application/json"),
                    ],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                )
            } else if req.path == "/v2/library/alpine/manifests/latest"
                || req.path == format!("/v2/library/alpine/manifests/{}", Digest::of(MANIFEST))
            {
                reply(
                    200,
                    &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                    MANIFEST,
                )
            } else if req.path == blob_path {
                let loc = format!("http://127.0.0.1:{port}/storage/blob?sig=x");
                reply(307, &[("Location", &loc)], b"")
            } else {
                reply(
                    404,
                    &[("Content-Type", "application/json")],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                )
            }
        });
        let client = local(port, Some(alice()));

        let m = client.get_manifest("library/alpine", "latest").unwrap();
        assert_eq!(m.bytes, MANIFEST);
        assert_eq!(m.digest, Digest::of(MANIFEST));
        assert_eq!(
            m.content_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        {
            let seen = seen.lock().unwrap();
            let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "/v2/library/alpine/manifests/latest",
                    "/token?service=test-registry&scope=repository%3Alibrary%2Falpine%3Apull",
                    "/v2/library/alpine/manifests/latest",
                ]
            );
            assert_eq!(seen[0].authorization, None);
            assert_eq!(seen[0].accept.as_deref(), Some(manifest::ACCEPT));
            assert_eq!(seen[2].authorization.as_deref(), Some("Bearer tok-1"));
        }

        // Second request: straight to the registry with the cached token.
        let by_digest = client
            .get_manifest("library/alpine", &Digest::of(MANIFEST).to_string())
            .unwrap();
        assert_eq!(by_digest.digest, Digest::of(MANIFEST));
        let bytes = client
            .get_blob_bytes("library/alpine", &blob_digest, 1024)
            .unwrap();
        assert_eq!(bytes, blob);
        let mut streamed = Vec::new();
        client
            .get_blob("library/alpine", &blob_digest)
            .unwrap()
            .read_to_end(&mut streamed)
            .unwrap();
        assert_eq!(streamed, blob);

        let seen = seen.lock().unwrap();
        let token_requests = seen.iter().filter(|s| s.path.starts_with("/token")).count();
        assert_eq!(token_requests, 1, "{seen:#?}");
        for s in &seen[3..] {
            if s.path.starts_with("/v2/") {
                assert_eq!(s.authorization.as_deref(), Some("Bearer tok-1"), "{s:?}");
            }
        }
    }

    #[test]
    fn not_found_carries_registry_code() {
        let (port, _) = serve(|_, _| {
            reply(
                404,
                &[("Content-Type", "application/json")],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            )
        });
        let e = local(port, None).get_manifest("foo", "latest").unwrap_err();
        assert!(matches!(e, RegistryError::NotFound { .. }));
        assert_eq!(
            e.to_string(),
            format!("manifest 127.0.0.1:{port}/foo:latest not found (MANIFEST_UNKNOWN)")
        );
    }

    #[test]
    fn basic_flow_and_wrong_password() {
        let good = format!("Basic {}", alice().encode());
        let (port, seen) = serve(move |req, _| {
            if req.authorization.as_deref() == Some(good.as_str()) {
                reply(200, &[("Content-Type", "application/json")], b"{}")
            } else {
                reply(
                    401,
                    &[("WWW-Authenticate", r#"Basic realm="Registry Realm""#)],
                    b"",
                )
            }
        });
        local(port, Some(alice())).check_auth().unwrap();
        let c = local(port, Some(alice()));
        c.check_auth().unwrap();
        // Once Basic is known, credentials go up front.
        c.check_auth().unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2 + 2 + 1);

        let wrong = Credentials {
            username: "alice".to_string(),
            password: "nope".to_string(),
        };
        let e = local(port, Some(wrong)).check_auth().unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
        assert!(e.to_string().contains("nook login"));
        let e = local(port, None).check_auth().unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    }

    #[test]
    fn rejected_token_is_unauthorized_and_not_cached() {
        let (port, seen) = serve(|req, port| {
            if req.path.starts_with("/token") {
                reply(200, &[], br#"{"access_token":"bad"}"#)
            } else {
                let c = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="s""#);
                reply(401, &[("WWW-Authenticate", &c)], b"")
            }
        });
        let c = local(port, None);
        let e = c.get_manifest("private/app", "v1").unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
        // Scope was built by us since the challenge had none.
        assert!(
            seen.lock().unwrap()[1]
                .path
                .contains("scope=repository%3Aprivate%2Fapp%3Apull")
        );
        assert!(c.tokens.lock().unwrap().is_empty());
    }

    #[test]
    fn digest_mismatch_and_size_limits() {
        let (port, _) = serve(|req, _| {
            if req.path.contains("/blobs/") {
                reply(200, &[], b"not what you asked for")
            } else if req.path.ends_with("/huge") {
                // Announced by Content-Length: refused before reading; the chunked case is
                // `body_cap_holds_without_content_length`.
                reply(
                    200,
                    &[],
                    &vec![b' '; manifest::MAX_MANIFEST_BYTES as usize + 1],
                )
            } else {
                reply(200, &[], MANIFEST)
            }
        });
        let c = local(port, None);
        let wanted = Digest::of(b"something else");
        let e = c.get_manifest("foo", &wanted.to_string()).unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
        let e = c.get_blob_bytes("foo", &wanted, 1024).unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
        let e = c.get_blob_bytes("foo", &wanted, 4).unwrap_err();
        assert!(matches!(e, RegistryError::TooLarge { limit: 4, .. }), "{e}");
        let e = c.get_manifest("foo", "huge").unwrap_err();
        assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
        let e = c.get_manifest("foo", "sha512:abcd").unwrap_err();
        assert!(matches!(e, RegistryError::UnsupportedDigest { .. }), "{e}");
    }

    #[test]
    fn body_cap_holds_without_content_length() {
        // A chunked body over the cap must be cut off, not buffered.
        let (port, _) = serve(|_, _| {
            let mut body = Vec::new();
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..70 {
                body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                body.extend_from_slice(&chunk);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            reply(200, &[("Transfer-Encoding", "chunked")], &body)
        });
        let e = local(port, None).get_manifest("foo", "big").unwrap_err();
        assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    }

    /// A peer that runs `behave` on each connection, in a thread of its own, once it has
    /// read the request head.
    fn hostile(behave: fn(TcpStream)) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        line.clear();
                    }
                    behave(stream);
                });
            }
        });
        port
    }

    fn quick(port: u16) -> Client {
        let mut c = local(port, None);
        c = Client::with_timeout(c.endpoint.clone(), None, Duration::from_secs(1));
        c
    }

    #[test]
    fn stalled_and_trickling_registries_time_out() {
        let limit = Duration::from_secs(5);
        // Accepts, then says nothing.
        let silent = hostile(|_stream| thread::sleep(Duration::from_secs(30)));
        // Promises a manifest, then sends a byte every 200 ms: every read succeeds.
        let trickle = hostile(|mut stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            for _ in 0..150 {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        });
        // Sends half a blob, then nothing.
        let half = hostile(|mut stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            let _ = stream.write_all(&[7u8; 50_000]);
            thread::sleep(Duration::from_secs(30));
        });
        let digest = Digest::of(b"x");
        for (port, blob) in [
            (silent, false),
            (trickle, false),
            (silent, true),
            (half, true),
        ] {
            let started = Instant::now();
            let e = if blob {
                match quick(port).get_blob("foo", &digest) {
                    // Silent before the headers.
                    Err(e) => e,
                    // Silent in the body.
                    Ok(mut body) => {
                        let e = io::copy(&mut body, &mut io::sink()).unwrap_err();
                        let inner = e.into_inner().unwrap().downcast::<RegistryError>();
                        *inner.unwrap()
                    }
                }
            } else {
                quick(port).get_manifest("foo", "latest").unwrap_err()
            };
            assert!(matches!(e, RegistryError::TimedOut { .. }), "{e:?}");
            assert!(e.to_string().contains("did not answer"), "{e}");
            assert!(e.is_transient());
            assert!(started.elapsed() < limit, "{:?}", started.elapsed());
        }
        // A blob at 5 bytes per 200 ms: alive, but hopeless.
        let crawl = hostile(|mut stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            for _ in 0..150 {
                if stream.write_all(b"12345").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        });
        let started = Instant::now();
        let mut body = quick(crawl).get_blob("foo", &digest).unwrap();
        let e = io::copy(&mut body, &mut io::sink()).unwrap_err();
        assert!(e.to_string().contains("too slowly"), "{e}");
        assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    }

    #[test]
    fn redirect_loops_end_with_their_own_error() {
        let (port, seen) = serve(|req, _| reply(307, &[("Location", &req.path)], b""));
        let e = local(port, None).get_manifest("foo", "latest").unwrap_err();
        assert!(
            matches!(e, RegistryError::TooManyRedirects { limit: 5, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("redirected 5 times in a row"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 5);
    }

    #[test]
    fn other_statuses_carry_the_registry_message() {
        let (port, _) = serve(|_, _| {
            reply(
                429,
                &[("Content-Type", "application/json")],
                br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#,
            )
        });
        let e = local(port, None).get_manifest("foo", "latest").unwrap_err();
        match &e {
            RegistryError::Status {
                status, message, ..
            } => {
                assert_eq!(*status, 429);
                assert!(message.contains("pull rate limit"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn connection_refused_is_unreachable() {
        // Bind then drop to get a port nothing listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = local(port, None).check_auth().unwrap_err();
        assert!(matches!(e, RegistryError::Unreachable { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("cannot reach 127.0.0.1:{port}: connection refused")
        );
    }

    #[test]
    fn https_to_plain_server_is_a_tls_error() {
        let (port, _) = serve(|_, _| reply(200, &[], b"{}"));
        let c = Client::new(
            Endpoint {
                host: format!("127.0.0.1:{port}"),
                plain_http: false,
                tls_verify: false,
                http_fallback: false,
            },
            None,
        );
        let e = c.check_auth().unwrap_err();
        assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
        assert!(e.to_string().contains("--tls-verify=false"));
    }

    /// A registry with token auth that takes uploads: mounts succeed for `mountable` only;
    /// uploads are kept per session and completed into `blobs`.
    #[test]
    fn push_flow_mounts_uploads_in_chunks_and_puts_the_manifest() {
        let basic = format!("Basic {}", alice().encode());
        let mounted = Digest::of(b"mounted blob");
        let mounted_q = mounted.to_string();
        let blobs = Arc::new(Mutex::new(HashMap::<String, Vec<u8>>::new()));
        let sessions = Arc::new(Mutex::new(HashMap::<String, Vec<u8>>::new()));
        let (b2, s2) = (blobs.clone(), sessions.clone());
        let (port, seen) = serve(move |req, port| {
            if req.path.starts_with("/token?") {
                return if req.authorization.as_deref() == Some(basic.as_str()) {
                    reply(200, &[], br#"{"token":"push-token"}"#)
                } else {
                    reply(401, &[], b"")
                };
            }
            if req.authorization.as_deref() != Some("Bearer push-token") {
                // As distribution does: the scope the request needs, a mount's source too.
                let mut scope = "repository:team/app:pull,push".to_string();
                if let Some(from) = req.path.split("from=").nth(1) {
                    scope.push_str(&format!(" repository:{from}:pull"));
                }
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="reg",scope="{scope}""#
                );
                return reply(401, &[("WWW-Authenticate", &challenge)], b"");
            }
            let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
            match (req.method.as_str(), path) {
                ("HEAD", p) if p.starts_with("/v2/team/app/blobs/") => {
                    let d = p.rsplit('/').next().unwrap();
                    match b2.lock().unwrap().get(d) {
                        Some(b) => reply(200, &[("Content-Length", &b.len().to_string())], b""),
                        None => reply(404, &[("Content-Length", "0")], b""),
                    }
                }
                ("POST", "/v2/team/app/blobs/uploads/") => {
                    if query.contains(&format!("mount={mounted_q}")) {
                        b2.lock()
                            .unwrap()
                            .insert(mounted_q.clone(), b"mounted blob".to_vec());
                        return reply(201, &[], b"");
                    }
                    let id = format!("s{}", s2.lock().unwrap().len());
                    s2.lock().unwrap().insert(id.clone(), Vec::new());
                    // Relative, with state in the query, as distribution writes it.
                    let loc = format!("/v2/team/app/blobs/uploads/{id}?_state=0");
                    reply(202, &[("Location", &loc), ("Range", "0-0")], b"")
                }
                ("PATCH", p) => {
                    let id = p.rsplit('/').next().unwrap().to_string();
                    let mut s = s2.lock().unwrap();
                    let buf = s.get_mut(&id).unwrap();
                    let expected = format!("{}-{}", buf.len(), buf.len() + req.body.len() - 1);
                    if req.content_range.as_deref() != Some(expected.as_str()) {
                        return reply(416, &[], b"");
                    }
                    buf.extend_from_slice(&req.body);
                    let range = format!("0-{}", buf.len() - 1);
                    let loc = format!(
                        "http://127.0.0.1:{port}/v2/team/app/blobs/uploads/{id}?_state={}",
                        buf.len()
                    );
                    reply(202, &[("Location", &loc), ("Range", &range)], b"")
                }
                ("PUT", p) if p.starts_with("/v2/team/app/blobs/uploads/") => {
                    let id = p.rsplit('/').next().unwrap().to_string();
                    let mut data = s2.lock().unwrap().remove(&id).unwrap();
                    data.extend_from_slice(&req.body);
                    let digest = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("digest="))
                        .unwrap();
                    if Digest::of(&data).to_string() != digest {
                        return reply(
                            400,
                            &[("Content-Type", "application/json")],
                            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#,
                        );
                    }
                    b2.lock().unwrap().insert(digest.to_string(), data);
                    reply(201, &[("Docker-Content-Digest", digest)], b"")
                }
                ("PUT", "/v2/team/app/manifests/v1") => {
                    let d = Digest::of(&req.body).to_string();
                    reply(201, &[("Docker-Content-Digest", &d)], b"")
                }
                _ => reply(404, &[], b""),
            }
        });
        let c = local(port, Some(alice()));

        assert_eq!(c.blob_exists("team/app", &mounted).unwrap(), None);
        assert!(matches!(
            c.mount_blob("team/app", &mounted, "team/base").unwrap(),
            Mount::Mounted
        ));
        assert_eq!(c.blob_exists("team/app", &mounted).unwrap(), Some(12));
        {
            let seen = seen.lock().unwrap();
            let token_paths: Vec<&str> = seen
                .iter()
                .filter(|s| s.path.starts_with("/token"))
                .map(|s| s.path.as_str())
                .collect();
            assert_eq!(
                token_paths,
                [
                    "/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush",
                    "/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository%3Ateam%2Fbase%3Apull",
                ],
                "one token for the repository, one with the mount's source as a scope of its own"
            );
        }

        // A mount the registry answers with 202 is an upload session.
        let other = Digest::of(b"not there");
        let Mount::Started(upload) = c.mount_blob("team/app", &other, "team/base").unwrap() else {
            panic!("expected an upload session")
        };
        c.cancel_upload(upload);

        // Chunks, then the rest with the PUT.
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let digest = Digest::of(&data);
        let mut upload = c.start_upload("team/app").unwrap();
        c.upload_chunk(&mut upload, &data[..1000]).unwrap();
        c.upload_chunk(&mut upload, &data[1000..2000]).unwrap();
        assert_eq!(upload.offset(), 2000);
        c.finish_upload(upload, &digest, &data[2000..]).unwrap();
        assert_eq!(blobs.lock().unwrap()[&digest.to_string()], data);
        {
            let seen = seen.lock().unwrap();
            let patches: Vec<_> = seen.iter().filter(|s| s.method == "PATCH").collect();
            assert_eq!(patches.len(), 2);
            assert_eq!(patches[1].content_range.as_deref(), Some("1000-1999"));
            assert_eq!(
                patches[1].content_type.as_deref(),
                Some("application/octet-stream")
            );
        }

        // A digest the uploaded bytes do not have: the registry's refusal, as one message.
        let upload = c.start_upload("team/app").unwrap();
        let e = c
            .finish_upload(upload, &Digest::of(b"something else"), b"abc")
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::Rejected { status: 400, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("DIGEST_INVALID"), "{e}");
        assert!(!e.is_transient());

        let manifest = br#"{"schemaVersion":2}"#;
        let d = c
            .put_manifest("team/app", "v1", manifest::MEDIA_OCI_MANIFEST, manifest)
            .unwrap();
        assert_eq!(d, Digest::of(manifest));
        let seen = seen.lock().unwrap();
        let put = seen.iter().rfind(|s| s.method == "PUT").unwrap();
        assert_eq!(
            put.content_type.as_deref(),
            Some(manifest::MEDIA_OCI_MANIFEST)
        );
        assert_eq!(put.body, manifest);
        let tokens = seen.iter().filter(|s| s.path.starts_with("/token")).count();
        assert_eq!(tokens, 2, "the push token is cached: {seen:#?}");
    }

    #[test]
    fn push_refusals_and_wrong_digests() {
        let (port, _) = serve(|req, _| {
            if req.method == "PUT" {
                reply(
                    201,
                    &[("Docker-Content-Digest", &Digest::of(b"other").to_string())],
                    b"",
                )
            } else {
                reply(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], b"")
            }
        });
        let c = local(port, None);
        let e = c.start_upload("team/app").unwrap_err();
        assert!(matches!(e, RegistryError::PushDenied { .. }), "{e:?}");
        assert!(e.to_string().contains("nook login"), "{e}");
        let e = c
            .put_manifest("team/app", "v1", manifest::MEDIA_OCI_MANIFEST, b"{}")
            .unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");
    }

    #[test]
    fn token_scopes_union_the_challenge_and_ours() {
        assert_eq!(
            token_scopes(None, "repository:a:pull"),
            ["repository:a:pull"]
        );
        assert_eq!(
            token_scopes(Some("repository:a:pull"), "repository:a:pull"),
            ["repository:a:pull"]
        );
        assert_eq!(
            token_scopes(
                Some("repository:a:pull,push repository:b:pull"),
                "repository:a:pull,push"
            ),
            ["repository:a:pull,push", "repository:b:pull"]
        );
        assert!(token_scopes(None, "").is_empty());
        assert_eq!(range_end("0-41"), Some(41));
        assert_eq!(range_end("bytes=0-41"), Some(41));
        assert_eq!(range_end("junk"), None);
    }
}
