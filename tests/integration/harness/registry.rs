//! A real registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1, started once per
//! test process and stopped when the test process exits, however it exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use super::token_server::TokenServer;

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The registry's storage root.
    pub storage: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
    /// For a registry serving HTTPS: its self-signed certificate (PEM), issued to the IP
    /// address 127.0.0.1.
    pub certificate: Option<PathBuf>,
}

impl Registry {
    /// The log so far, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The registry of this test process, started on first use.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| start(&Auth::None, false))
}

/// The user and password [`auth_registry`] (and [`token_registry`]'s token server) accept.
pub const AUTH_USER: &str = "tester";
pub const AUTH_PASSWORD: &str = "n00k-secret";
/// bcrypt of AUTH_PASSWORD, as an htpasswd file holds it (made once with Python's bcrypt).
const AUTH_HTPASSWD: &str = "tester:$2b$05$insguSfxp02rVsKtJ4/kfeyT//pMcRIy2uOgeO6DrMFrPnVTRDuKq";

/// A second registry that requires Basic authentication (htpasswd) for everything.
pub fn auth_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| start(&Auth::Htpasswd(AUTH_HTPASSWD), false))
}

/// A registry serving HTTPS (no authentication) with a self-signed certificate for
/// 127.0.0.1 ([`Registry::certificate`]), made with the `openssl` CLI when it starts.
pub fn tls_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| start(&Auth::None, true))
}

/// A registry (plain HTTP) with token authentication: it accepts only Bearer tokens signed by
/// the harness's token server ([`token_server`](super::token_server)), which runs in a thread
/// of this process. The token server grants `tester`/`n00k-secret` what it asks for, and
/// anonymous clients `pull` on repositories under `public/` only.
pub struct TokenRegistry {
    pub registry: Registry,
    pub server: &'static TokenServer,
}

impl std::ops::Deref for TokenRegistry {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.registry
    }
}

impl TokenRegistry {
    /// Token requests served so far (all clients, all scopes).
    pub fn token_requests(&self) -> usize {
        self.server.requests().len()
    }

    /// Token requests so far that asked for a scope on `repository` (`private/app`).
    pub fn token_requests_for(&self, repository: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.scopes.iter().any(|s| scope_names(s, repository)))
            .count()
    }
}

/// Does `scope` (`repository:NAME:ACTIONS`) name `repository`?
fn scope_names(scope: &str, repository: &str) -> bool {
    scope
        .strip_prefix("repository:")
        .and_then(|rest| rest.rsplit_once(':'))
        .is_some_and(|(name, _)| name == repository)
}

pub fn token_registry() -> &'static TokenRegistry {
    static REGISTRY: OnceLock<TokenRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let server = TokenServer::start();
        let registry = start(
            &Auth::Token {
                realm: &server.realm,
                service: &server.service,
                issuer: &server.issuer,
                rootcertbundle: &server.certificate,
            },
            false,
        );
        TokenRegistry { registry, server }
    })
}

/// How a registry authenticates clients.
enum Auth<'a> {
    None,
    /// One htpasswd line.
    Htpasswd(&'a str),
    Token {
        realm: &'a str,
        service: &'a str,
        issuer: &'a str,
        rootcertbundle: &'a Path,
    },
}

const BINARY: &str = "docker-registry";

fn start(auth: &Auth, tls: bool) -> Registry {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(BINARY).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin/docker-registry").is_file();
    assert!(
        found,
        "`{BINARY}` not found: install the Debian package docker-registry (helpers/install-deps)"
    );

    // The directory is removed by the wrapper shell when the registry stops.
    let dir = tempfile::Builder::new()
        .prefix("nook-test-registry-")
        .tempdir_in("/tmp")
        .expect("creating the registry dir")
        .keep();
    let storage = dir.join("data");
    let log = dir.join("registry.log");
    std::fs::create_dir(&storage).unwrap();

    let auth_config = match auth {
        Auth::None => String::new(),
        Auth::Htpasswd(line) => {
            let file = dir.join("htpasswd");
            std::fs::write(&file, format!("{line}\n")).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: nook-test\n    path: {}\n",
                file.display()
            )
        }
        Auth::Token {
            realm,
            service,
            issuer,
            rootcertbundle,
        } => format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    \
             rootcertbundle: {}\n",
            rootcertbundle.display()
        ),
    };
    let certificate = tls.then(|| {
        let (cert, _key) = self_signed_certificate(&dir, "tls", "127.0.0.1", true);
        cert
    });
    let tls_config = match &certificate {
        Some(cert) => format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            dir.join("tls.key").display()
        ),
        None => String::new(),
    };
    let trusted = certificate.as_deref().map(certificate_der);
    let expected = if matches!(auth, Auth::None) {
        "200"
    } else {
        "401"
    };

    let mut last_error = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 cache:\n    blobdescriptor: inmemory\n\
                 http:\n  addr: {addr}\n{tls_config}{auth_config}",
                storage.display()
            ),
        )
        .unwrap();

        // The shell reads its stdin, a pipe whose write end this process keeps open until it
        // exits: EOF (at exit, panic or abort alike) makes it kill the registry and remove its
        // directory. (PR_SET_PDEATHSIG would fire when the spawning *thread* exits.)
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(
                r#"docker-registry serve "$1" >"$2/registry.log" 2>&1 </dev/null & p=$!
                   read _ignored
                   kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; rm -rf "$2""#,
            )
            .arg("sh")
            .arg(&config)
            .arg(&dir)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning docker-registry");

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = match &trusted {
                Some(der) => v2_status_tls(&addr, der),
                None => v2_status(&addr),
            };
            if status.as_deref() == Some(expected) {
                // Keep the pipe (child.stdin) open for the rest of the process.
                Box::leak(Box::new(child));
                return Registry {
                    addr,
                    storage,
                    log,
                    certificate,
                };
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last_error = std::fs::read_to_string(&log).unwrap_or_default();
        // Closing stdin stops this attempt's registry; wait so the log is ours again.
        drop(child.stdin.take());
        let _ = child.wait();
        std::fs::create_dir_all(&storage).unwrap();
        if !last_error.contains("address already in use") {
            break;
        }
    }
    let scheme = if tls { "https" } else { "http" };
    panic!(
        "docker-registry did not answer GET {scheme}://…/v2/ with {expected} within 10 s; its log:\n{last_error}"
    );
}

/// Runs the `openssl` CLI; panics with its stderr when it fails.
pub fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running openssl: {e}: install the Debian package openssl (helpers/install-deps)"
            )
        });
    if let Some(input) = stdin {
        // A thread, so a large input cannot deadlock against a full stdout pipe.
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || pipe.write_all(&input));
    }
    let out = child.wait_with_output().expect("waiting for openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes `DIR/NAME.crt` (PEM) and `DIR/NAME.key` (PKCS#8 PEM, unencrypted): a self-signed
/// certificate valid for two days with subject CN=`common_name`. With `ip_san`, it is a server
/// certificate for the IP address `common_name` (a subjectAltName, CA:FALSE as rustls requires
/// of a server certificate), on an EC P-256 key; otherwise an RSA 2048 key, for RS256.
pub fn self_signed_certificate(
    dir: &Path,
    name: &str,
    common_name: &str,
    ip_san: bool,
) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let subject = format!("/CN={common_name}");
    let san = format!("subjectAltName=IP:{common_name}");
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subject];
    if ip_san {
        args.extend([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-addext",
            &san,
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ]);
    } else {
        args.extend(["-newkey", "rsa:2048"]);
    }
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    args.extend(["-keyout", key_s, "-out", cert_s]);
    openssl(&args, None);
    (cert, key)
}

/// The DER bytes of the (first) certificate in a PEM file.
pub fn certificate_der(pem: &Path) -> Vec<u8> {
    use base64::Engine;
    let text =
        std::fs::read_to_string(pem).unwrap_or_else(|e| panic!("reading {}: {e}", pem.display()));
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|e| panic!("{} holds no PEM certificate: {e}", pem.display()))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// The HTTP status of `GET http://ADDR/v2/` ("200", "401", …), or None if it does not answer.
pub fn v2_status(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1).map(str::to_string)
}

/// The HTTP status of `GET https://ADDR/v2/`, trusting only the certificate `der` (which
/// must be valid for the IP address of ADDR), or None if it does not answer.
pub fn v2_status_tls(addr: &str, der: &[u8]) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .ok()?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(config))
        .timeout(Duration::from_secs(2))
        .build();
    match agent.get(&format!("https://{addr}/v2/")).call() {
        Ok(resp) => Some(resp.status().to_string()),
        Err(ureq::Error::Status(status, _)) => Some(status.to_string()),
        Err(ureq::Error::Transport(_)) => None,
    }
}
