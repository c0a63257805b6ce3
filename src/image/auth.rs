//! Registry credentials, in the same files Podman and Docker use so a `podman login` or
//! `docker login` carries over.
//!
//! Both files map a registry key to `{"auth": base64("user:pass")}` under `auths`. Docker's
//! credential helpers (`credsStore`, `credHelpers`) are not run: nook would have to exec
//! arbitrary programs, and a missing helper must not break pulls of public images, so those
//! keys are ignored and their empty placeholder entries skipped.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    // Credentials end up in error chains and debug logs; the password must not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `auth` field / HTTP Basic credential: base64("user:pass").
    pub fn encode(&self) -> String {
        BASE64.encode(format!("{}:{}", self.username, self.password))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid auth file: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("the credentials for {registry} in {path} are malformed: {message}")]
    BadEntry {
        registry: String,
        path: PathBuf,
        message: String,
    },
}

pub struct AuthFiles {
    /// Podman's auth file: `$REGISTRY_AUTH_FILE` or `$XDG_RUNTIME_DIR/containers/auth.json`.
    /// Logins are written here.
    pub primary: PathBuf,
    /// Docker's `config.json`, read as a fallback only.
    pub docker: Option<PathBuf>,
}

/// Every spelling of Docker Hub found in auth files; docker.io itself is Podman's key.
const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "https://index.docker.io/v1/",
    "registry-1.docker.io",
];

/// Maps a registry name to the key nook stores it under.
fn canonical_registry(registry: &str) -> String {
    let r = registry.trim().to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&r.as_str()) {
        "docker.io".to_string()
    } else {
        r
    }
}

/// The registry a file key refers to, or None for repository-scoped keys (Podman allows
/// `quay.io/org/repo`), which do not apply to a registry-wide lookup.
fn key_registry(key: &str) -> Option<String> {
    let (had_scheme, rest) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Docker's legacy keys carry an API path ("https://index.docker.io/v1/", "host/v2/").
    let legacy_path = matches!(path, "" | "v1" | "v1/" | "v2" | "v2/");
    if had_scheme || legacy_path {
        Some(canonical_registry(host))
    } else {
        None
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, AuthError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // An empty file (e.g. a truncated write by another tool) means no credentials.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(AuthError::Malformed {
            path: path.to_path_buf(),
            message: "top level is not a JSON object".to_string(),
        });
    }
    Ok(Some(value))
}

fn lookup_in(path: &Path, registry: &str) -> Result<Option<Credentials>, AuthError> {
    let Some(value) = read_json(path)? else {
        return Ok(None);
    };
    let Some(auths) = value.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    // The exact canonical key first (what `store` writes), then any alias, in key order so
    // the result does not depend on map iteration.
    let mut keys: Vec<&String> = auths
        .keys()
        .filter(|k| key_registry(k).as_deref() == Some(registry))
        .collect();
    keys.sort_by_key(|k| (k.as_str() != registry, k.as_str()));
    for key in keys {
        // Entries managed by a credential helper are `{}`; skip them.
        let Some(auth) = auths[key]
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let bad = |message: String| AuthError::BadEntry {
            registry: key.clone(),
            path: path.to_path_buf(),
            message,
        };
        let decoded = BASE64
            .decode(auth.trim())
            .map_err(|e| bad(format!("`auth` is not base64: {e}")))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8".to_string()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("`auth` is not `user:password`".to_string()))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    Ok(None)
}

impl AuthFiles {
    /// The standard locations, from the environment.
    pub fn from_env() -> AuthFiles {
        let primary = match std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => {
                // Podman falls back to /run/user/UID when XDG_RUNTIME_DIR is unset (e.g. su).
                let runtime = std::env::var_os("XDG_RUNTIME_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(format!("/run/user/{}", nix::unistd::getuid()))
                    });
                runtime.join("containers").join("auth.json")
            }
        };
        let docker = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".docker").join("config.json")),
        };
        AuthFiles { primary, docker }
    }

    /// Credentials for `registry` (a host[:port] or docker.io alias): the primary file first,
    /// then Docker's.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, AuthError> {
        let registry = canonical_registry(registry);
        if let Some(c) = lookup_in(&self.primary, &registry)? {
            return Ok(Some(c));
        }
        match &self.docker {
            Some(path) => lookup_in(path, &registry),
            None => Ok(None),
        }
    }

    /// Saves credentials in the primary file, keeping every other entry and key.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), AuthError> {
        let registry = canonical_registry(registry);
        let mut root = read_json(&self.primary)?.unwrap_or_else(|| Value::Object(Map::new()));
        let root_obj = root.as_object_mut().expect("read_json returns objects");
        let auths = root_obj
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            return Err(AuthError::Malformed {
                path: self.primary.clone(),
                message: "`auths` is not an object".to_string(),
            });
        }
        let auths = auths.as_object_mut().expect("checked above");
        // Drop aliases of the same registry so a stale password under another spelling
        // cannot shadow the new one in Docker or older Podman.
        auths.retain(|k, _| k == &registry || key_registry(k).as_deref() != Some(&registry));
        let mut entry = Map::new();
        entry.insert("auth".to_string(), Value::String(creds.encode()));
        auths.insert(registry, Value::Object(entry));
        self.write(&root)
    }

    /// Removes the registry's credentials (under any spelling) from the primary file. Docker's
    /// file is never modified.
    pub fn remove(&self, registry: &str) -> Result<bool, AuthError> {
        let registry = canonical_registry(registry);
        let Some(mut root) = read_json(&self.primary)? else {
            return Ok(false);
        };
        let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| key_registry(k).as_deref() != Some(&registry));
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&root)?;
        Ok(true)
    }

    /// Writes the file atomically: a crash leaves either the old or the new file, never a
    /// half-written one that would lose every other login.
    fn write(&self, value: &Value) -> Result<(), AuthError> {
        let path = &self.primary;
        let werr = |source: io::Error| AuthError::Write {
            path: path.clone(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(werr)?;

        let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialise");
        bytes.push(b'\n');
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "auth.json".to_string());
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            // Make the rename itself durable.
            fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(werr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }
    }

    fn files(dir: &Path) -> AuthFiles {
        AuthFiles {
            primary: dir.join("run/containers/auth.json"),
            docker: Some(dir.join("docker/config.json")),
        }
    }

    fn write(path: &Path, json: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, json).unwrap();
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", creds("alice", "hunter2"));
        assert!(s.contains("alice"));
        assert!(!s.contains("hunter2"));
    }

    #[test]
    fn missing_files_mean_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(files(dir.path()).lookup("quay.io").unwrap(), None);
        assert!(!files(dir.path()).remove("quay.io").unwrap());
    }

    #[test]
    fn looks_up_docker_config_forms() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let b = |s: &str| BASE64.encode(s);
        write(
            f.docker.as_ref().unwrap(),
            &format!(
                r#"{{
  "auths": {{
    "https://index.docker.io/v1/": {{ "auth": "{}" }},
    "https://registry.example.com": {{ "auth": "{}" }},
    "localhost:5000/v1/": {{ "auth": "{}" }},
    "quay.io/org/repo": {{ "auth": "{}" }},
    "ghcr.io": {{}}
  }},
  "credsStore": "desktop",
  "credHelpers": {{ "gcr.io": "gcloud" }}
}}"#,
                b("hub:hubpw"),
                b("ex:expw"),
                b("lh:lhpw"),
                b("q:qpw")
            ),
        );
        assert_eq!(f.lookup("docker.io").unwrap(), Some(creds("hub", "hubpw")));
        assert_eq!(
            f.lookup("registry-1.docker.io").unwrap(),
            Some(creds("hub", "hubpw"))
        );
        assert_eq!(
            f.lookup("registry.example.com").unwrap(),
            Some(creds("ex", "expw"))
        );
        assert_eq!(
            f.lookup("localhost:5000").unwrap(),
            Some(creds("lh", "lhpw"))
        );
        // Repository-scoped keys do not apply registry-wide; helper-managed entries are skipped.
        assert_eq!(f.lookup("quay.io").unwrap(), None);
        assert_eq!(f.lookup("ghcr.io").unwrap(), None);
        assert_eq!(f.lookup("gcr.io").unwrap(), None);
    }

    #[test]
    fn primary_wins_over_docker_and_password_may_contain_colons() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        write(
            f.docker.as_ref().unwrap(),
            &format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{}"}}}}}}"#,
                BASE64.encode("d:d")
            ),
        );
        write(
            &f.primary,
            &format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{}"}}}}}}"#,
                BASE64.encode("p:a:b")
            ),
        );
        assert_eq!(f.lookup("quay.io").unwrap(), Some(creds("p", "a:b")));
    }

    #[test]
    fn malformed_files_and_entries_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        write(&f.primary, "{nope");
        assert!(matches!(f.lookup("x.io"), Err(AuthError::Malformed { .. })));
        write(&f.primary, r#"{"auths":{"x.io":{"auth":"!!!"}}}"#);
        let e = f.lookup("x.io").unwrap_err();
        assert!(matches!(e, AuthError::BadEntry { .. }));
        assert!(e.to_string().contains("x.io"));
        // Other registries are unaffected by one bad entry.
        assert_eq!(f.lookup("y.io").unwrap(), None);
    }

    #[test]
    fn store_creates_private_file_and_preserves_others() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        f.store("index.docker.io", &creds("a", "b")).unwrap();
        let meta = fs::metadata(&f.primary).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmeta = fs::metadata(f.primary.parent().unwrap()).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
        let v: Value = serde_json::from_slice(&fs::read(&f.primary).unwrap()).unwrap();
        assert!(v["auths"]["docker.io"]["auth"].is_string());
        assert_eq!(f.lookup("docker.io").unwrap(), Some(creds("a", "b")));

        // Unknown keys and other registries survive; aliases of the stored one are replaced.
        write(
            &f.primary,
            &format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}},"credHelpers":{{"x":"y"}}}}"#,
                BASE64.encode("q:q"),
                BASE64.encode("old:old")
            ),
        );
        f.store("docker.io", &creds("new", "new")).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&f.primary).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["x"], "y");
        assert!(v["auths"].get("https://index.docker.io/v1/").is_none());
        assert_eq!(f.lookup("quay.io").unwrap(), Some(creds("q", "q")));
        assert_eq!(f.lookup("docker.io").unwrap(), Some(creds("new", "new")));
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(f.primary.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["auth.json"]);
    }

    #[test]
    fn remove_deletes_all_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        write(
            &f.primary,
            &format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{a}"}},"https://index.docker.io/v1/":{{"auth":"{a}"}},"quay.io":{{"auth":"{a}"}}}}}}"#,
                a = BASE64.encode("u:p")
            ),
        );
        assert!(f.remove("registry-1.docker.io").unwrap());
        assert_eq!(f.lookup("docker.io").unwrap(), None);
        assert!(f.lookup("quay.io").unwrap().is_some());
        assert!(!f.remove("docker.io").unwrap());
    }
}
