//! A real registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1, started once per
//! test process and stopped when the test process exits, however it exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The registry's storage root.
    pub storage: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
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
    REGISTRY.get_or_init(|| start(None))
}

/// The user and password [`auth_registry`] accepts.
pub const AUTH_USER: &str = "tester";
pub const AUTH_PASSWORD: &str = "n00k-secret";
/// bcrypt of AUTH_PASSWORD, as an htpasswd file holds it (made once with Python's bcrypt).
const AUTH_HTPASSWD: &str = "tester:$2b$05$insguSfxp02rVsKtJ4/kfeyT//pMcRIy2uOgeO6DrMFrPnVTRDuKq";

/// A second registry that requires Basic authentication (htpasswd) for everything.
pub fn auth_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| start(Some(AUTH_HTPASSWD)))
}

const BINARY: &str = "docker-registry";

fn start(htpasswd: Option<&str>) -> Registry {
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

    let mut last_error = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        let auth = match htpasswd {
            Some(line) => {
                let file = dir.join("htpasswd");
                std::fs::write(&file, format!("{line}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: nook-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 cache:\n    blobdescriptor: inmemory\n\
                 http:\n  addr: {addr}\n{auth}",
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
            let expected = if htpasswd.is_some() { "401" } else { "200" };
            if v2_status(&addr).as_deref() == Some(expected) {
                // Keep the pipe (child.stdin) open for the rest of the process.
                Box::leak(Box::new(child));
                return Registry { addr, storage, log };
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
    panic!("docker-registry did not answer GET /v2/ with 200 within 10 s; its log:\n{last_error}");
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
