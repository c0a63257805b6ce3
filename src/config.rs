//! User configuration under `$XDG_CONFIG_HOME/nook`.
//!
//! `registries.toml` follows the shape of containers-registries.conf v2, restricted to the keys
//! nook acts on. Unknown keys are errors rather than ignored, so that a setting copied from
//! Podman's file and silently not honoured (say, `blocked` misspelt) cannot go unnoticed.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::reference::{DEFAULT_REGISTRY, Reference, normalise_registry};

/// The host that actually serves Docker Hub's registry API; `docker.io` itself only redirects.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot parse {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: invalid location `{location}`: {reason}", path.display())]
    InvalidLocation {
        path: PathBuf,
        location: String,
        reason: String,
    },
    #[error("{}: registry location `{location}` is configured twice", path.display())]
    DuplicateLocation { path: PathBuf, location: String },
    #[error("cannot use `{reference}`: registry location `{location}` is blocked")]
    Blocked { reference: String, location: String },
    #[error("cannot map `{reference}` onto mirror `{mirror}`: no repository left")]
    MirrorRewrite { reference: String, mirror: String },
}

/// `config.toml`: nook's defaults for options left out on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NookConfig {
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub registry: RegistrySettings,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Seconds a registry may stay silent before a pull, push or login gives up (default
    /// 60); small documents must arrive within twice that, blobs at 16 KiB per timeout.
    pub timeout: Option<u64>,
}

impl NookConfig {
    /// `[registry] timeout`, or the default.
    pub fn registry_timeout(&self) -> std::time::Duration {
        match self.registry.timeout {
            Some(secs) => std::time::Duration::from_secs(secs.max(1)),
            None => crate::image::registry::DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// `--network` when it is not given, e.g. `slirp4netns:allow_host_loopback=true`.
    pub default: Option<String>,
}

impl NookConfig {
    /// Reads `path`; a missing file means every default. Unknown keys are errors that name
    /// the key.
    pub fn load(path: &Path) -> Result<NookConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(NookConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistriesConfig {
    /// Registries tried, in order, for a name that names none.
    pub unqualified_search: Vec<String>,
    pub registries: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// `host[:port]`, or `host[:port]/path` to cover only the repositories under that path.
    pub location: String,
    /// Plain HTTP allowed and TLS certificates not verified.
    pub insecure: bool,
    pub blocked: bool,
    /// Tried before the registry itself, in order.
    pub mirrors: Vec<Mirror>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
}

/// One place to fetch a repository from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to; Docker Hub maps to `registry-1.docker.io`.
    pub host: String,
    /// Plain HTTP is allowed. Whether HTTPS is tried first is left to the caller.
    pub plain_http: bool,
    /// Verify the server's certificate when using HTTPS.
    pub tls_verify: bool,
    /// The repository on this host, which differs from the reference's for a mirror of a
    /// prefix location.
    pub repository: String,
}

impl Default for RegistriesConfig {
    fn default() -> Self {
        RegistriesConfig {
            unqualified_search: vec![DEFAULT_REGISTRY.to_string()],
            registries: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<FileRegistry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<FileMirror>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
}

impl RegistriesConfig {
    /// Reads `path`; a missing file is the default configuration, since most users never
    /// write one.
    pub fn load(path: &Path) -> Result<RegistriesConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => RegistriesConfig::parse(&text, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RegistriesConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of `registries.toml`; `path` is only for messages.
    ///
    /// A file without `unqualified-search-registries` searches Docker Hub, as with no file;
    /// an explicit empty list disables short names.
    pub fn parse(text: &str, path: &Path) -> Result<RegistriesConfig, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(&e, text),
        })?;

        let invalid = |location: &str, reason: &str| ConfigError::InvalidLocation {
            path: path.to_path_buf(),
            location: location.to_string(),
            reason: reason.to_string(),
        };

        let unqualified_search = match file.unqualified_search_registries {
            Some(list) => list
                .into_iter()
                .map(|registry| {
                    check_location(&registry).map_err(|why| invalid(&registry, why))?;
                    if registry.contains('/') {
                        return Err(invalid(
                            &registry,
                            "a search registry is a host, not a path",
                        ));
                    }
                    Ok(registry)
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![DEFAULT_REGISTRY.to_string()],
        };

        let mut registries: Vec<RegistryEntry> = Vec::new();
        for entry in file.registry {
            check_location(&entry.location).map_err(|why| invalid(&entry.location, why))?;
            let normalised = normalise_location(&entry.location);
            if registries
                .iter()
                .any(|seen| normalise_location(&seen.location) == normalised)
            {
                return Err(ConfigError::DuplicateLocation {
                    path: path.to_path_buf(),
                    location: entry.location,
                });
            }
            let mirrors = entry
                .mirror
                .into_iter()
                .map(|m| {
                    check_location(&m.location).map_err(|why| invalid(&m.location, why))?;
                    Ok(Mirror {
                        location: m.location,
                        insecure: m.insecure,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            registries.push(RegistryEntry {
                location: entry.location,
                insecure: entry.insecure,
                blocked: entry.blocked,
                mirrors,
            });
        }

        Ok(RegistriesConfig {
            unqualified_search,
            registries,
        })
    }

    /// The entry whose location is the longest prefix of `reference`'s name, matching only at
    /// `/` boundaries so that `example.com/team` does not cover `example.com/teamwork`.
    pub fn entry_for(&self, reference: &Reference) -> Option<&RegistryEntry> {
        let name = reference.name();
        self.registries
            .iter()
            .filter(|entry| prefix_remainder(&name, &normalise_location(&entry.location)).is_some())
            .max_by_key(|entry| normalise_location(&entry.location).len())
    }

    /// Endpoints to try, in order, for `reference`: the mirrors of the longest matching entry
    /// first, then the registry itself. Errors if that entry is blocked.
    ///
    /// `tls_verify` is `--tls-verify`: `Some(false)` allows plain HTTP and skips certificate
    /// checks everywhere; `Some(true)` demands verified HTTPS even where the configuration or
    /// a loopback address would allow less; `None` leaves it to the configuration.
    pub fn endpoints(
        &self,
        reference: &Reference,
        tls_verify: Option<bool>,
    ) -> Result<Vec<Endpoint>, ConfigError> {
        let entry = self.entry_for(reference);
        let mut endpoints = Vec::new();
        if let Some(entry) = entry {
            if entry.blocked {
                return Err(ConfigError::Blocked {
                    reference: reference.to_string(),
                    location: entry.location.clone(),
                });
            }
            let name = reference.name();
            let location = normalise_location(&entry.location);
            // entry_for matched this location, so the remainder exists; an empty one would
            // only mean the reference no longer matches, and then there are no mirrors.
            let remainder = prefix_remainder(&name, &location).unwrap_or_default();
            for mirror in &entry.mirrors {
                let rewritten = format!("{}{remainder}", mirror.location);
                let (host, repository) = match rewritten.split_once('/') {
                    Some((host, repository)) if !repository.is_empty() => (host, repository),
                    _ => {
                        return Err(ConfigError::MirrorRewrite {
                            reference: reference.to_string(),
                            mirror: mirror.location.clone(),
                        });
                    }
                };
                endpoints.push(endpoint(host, repository, mirror.insecure, tls_verify));
            }
        }
        let insecure = entry.is_some_and(|e| e.insecure);
        endpoints.push(endpoint(
            &reference.registry,
            &reference.repository,
            insecure,
            tls_verify,
        ));
        Ok(endpoints)
    }

    /// The references to try for what the user typed: a qualified reference as is, an
    /// unqualified one once on each unqualified-search registry, in order.
    pub fn candidates(&self, reference: &Reference) -> Vec<Reference> {
        if reference.qualified {
            return vec![reference.clone()];
        }
        let mut candidates: Vec<Reference> = Vec::new();
        for registry in &self.unqualified_search {
            let candidate = reference.with_registry(registry);
            // `docker.io` and `index.docker.io` in the list are one registry: try it once.
            if !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
        candidates
    }
}

fn endpoint(host: &str, repository: &str, insecure: bool, tls_verify: Option<bool>) -> Endpoint {
    let (plain_http, verify) = match tls_verify {
        Some(false) => (true, false),
        Some(true) => (false, true),
        // Docker treats loopback registries as insecure out of the box, so a local
        // `registry:2` works without configuration.
        None if insecure || is_loopback(host) => (true, false),
        None => (false, true),
    };
    let host = if normalise_registry(host) == DEFAULT_REGISTRY {
        DOCKER_HUB_API_HOST.to_string()
    } else {
        host.to_string()
    };
    Endpoint {
        host,
        plain_http,
        tls_verify: verify,
        repository: repository.to_string(),
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed
            .split_once(']')
            .and_then(|(address, _)| address.parse::<Ipv6Addr>().ok())
            .is_some_and(|address| address.is_loopback());
    }
    let name = host.split_once(':').map_or(host, |(name, _)| name);
    name == "localhost"
        || name
            .parse::<Ipv4Addr>()
            .is_ok_and(|address| address.is_loopback())
}

/// What follows `location` in `name` (`""` or `/rest`), if `location` covers `name`.
fn prefix_remainder<'a>(name: &'a str, location: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(location)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The location with Docker Hub's host aliases folded, as references are, so that an entry for
/// `index.docker.io` applies to `busybox`.
fn normalise_location(location: &str) -> String {
    match location.split_once('/') {
        Some((host, path)) => format!("{}/{path}", normalise_registry(host)),
        None => normalise_registry(location),
    }
}

fn check_location(location: &str) -> Result<(), &'static str> {
    if location.is_empty() {
        Err("empty location")
    } else if location.contains("://") {
        Err("a location has no scheme; set `insecure = true` for plain HTTP")
    } else if location.contains('*') {
        Err("wildcard locations are not supported")
    } else if location.starts_with('/') || location.ends_with('/') || location.contains("//") {
        Err("empty path component")
    } else if location.contains(['@', ' ']) || location.split('/').skip(1).any(|c| c.contains(':'))
    {
        Err("expected host[:port] or host[:port]/path")
    } else {
        Ok(())
    }
}

/// toml's own message, reworded for unknown keys, with the line it refers to.
fn describe_toml_error(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    let message = match message.strip_prefix("unknown field `") {
        Some(rest) => {
            let key = rest.split('`').next().unwrap_or(rest);
            format!("unknown key `{key}`")
        }
        None => message.to_string(),
    };
    match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("{message} at line {line}")
        }
        None => message,
    }
}

impl From<&Endpoint> for crate::image::registry::Endpoint {
    /// An endpoint that allows plain HTTP is an "insecure" registry: HTTPS without
    /// certificate checks first, plain HTTP when the registry does not speak TLS.
    fn from(e: &Endpoint) -> Self {
        crate::image::registry::Endpoint {
            host: e.host.clone(),
            plain_http: false,
            tls_verify: e.tls_verify && !e.plain_http,
            http_fallback: e.plain_http,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_timeout_from_config_toml() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        let default = NookConfig::load(&file).unwrap().registry_timeout();
        assert_eq!(default, crate::image::registry::DEFAULT_TIMEOUT);
        std::fs::write(&file, "[registry]\ntimeout = 5\n").unwrap();
        let t = NookConfig::load(&file).unwrap().registry_timeout();
        assert_eq!(t, std::time::Duration::from_secs(5));
        std::fs::write(&file, "[registry]\ntimout = 5\n").unwrap();
        let e = NookConfig::load(&file).unwrap_err().to_string();
        assert!(e.contains("timout"), "{e}");
    }

    fn path() -> PathBuf {
        PathBuf::from("/x/registries.toml")
    }

    fn config(text: &str) -> RegistriesConfig {
        RegistriesConfig::parse(text, &path()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn reference(input: &str) -> Reference {
        Reference::parse(input).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ep(host: &str, plain_http: bool, tls_verify: bool, repository: &str) -> Endpoint {
        Endpoint {
            host: host.into(),
            plain_http,
            tls_verify,
            repository: repository.into(),
        }
    }

    const EXAMPLE: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "registry.example.com:5000"
insecure = true
blocked = false

[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
"#;

    #[test]
    fn parses_the_documented_example() {
        let c = config(EXAMPLE);
        assert_eq!(
            c,
            RegistriesConfig {
                unqualified_search: vec!["docker.io".into()],
                registries: vec![RegistryEntry {
                    location: "registry.example.com:5000".into(),
                    insecure: true,
                    blocked: false,
                    mirrors: vec![Mirror {
                        location: "mirror.local:5000".into(),
                        insecure: true,
                    }],
                }],
            }
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(config(""), RegistriesConfig::default());
        assert_eq!(
            RegistriesConfig::default().unqualified_search,
            vec!["docker.io".to_string()]
        );
        let c = config("unqualified-search-registries = []");
        assert!(c.unqualified_search.is_empty());
        let c = config("[[registry]]\nlocation = \"a.io\"");
        assert!(!c.registries[0].insecure && !c.registries[0].blocked);
        assert!(c.registries[0].mirrors.is_empty());
    }

    #[test]
    fn load_missing_file_is_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("registries.toml");
        let c = RegistriesConfig::load(&missing).expect("missing file is fine");
        assert_eq!(c, RegistriesConfig::default());
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("registries.toml");
        std::fs::write(&file, EXAMPLE).expect("write");
        assert_eq!(
            RegistriesConfig::load(&file).expect("load"),
            config(EXAMPLE)
        );
    }

    #[test]
    fn load_reports_unreadable_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory cannot be read as a file, whatever the user's privileges.
        match RegistriesConfig::load(dir.path()) {
            Err(ConfigError::Read { path, .. }) => assert_eq!(path, dir.path()),
            other => panic!("expected Read error, got {other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_the_file_key_and_line() {
        // text, expected message
        let cases: &[(&str, &str)] = &[
            (
                "unqualified-search-registries = []\n\nfoo = 1\n",
                "cannot parse /x/registries.toml: unknown key `foo` at line 3",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirrors = []\n",
                "cannot parse /x/registries.toml: unknown key `mirrors` at line 3",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\nblocked = true\n",
                "cannot parse /x/registries.toml: unknown key `blocked` at line 5",
            ),
        ];
        for (text, expected) in cases {
            match RegistriesConfig::parse(text, &path()) {
                Err(e @ ConfigError::Parse { .. }) => assert_eq!(&e.to_string(), expected),
                other => panic!("{text}: expected Parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn parse_errors_for_bad_values() {
        let cases: &[(&str, &str)] = &[
            (
                "[[registry]]\ninsecure = true\n",
                "missing field `location`",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n",
                "at line 3",
            ),
            (
                "unqualified-search-registries = \"docker.io\"\n",
                "at line 1",
            ),
            ("[[registry]\n", "at line 1"),
        ];
        for (text, fragment) in cases {
            match RegistriesConfig::parse(text, &path()) {
                Err(e @ ConfigError::Parse { .. }) => {
                    let message = e.to_string();
                    assert!(message.starts_with("cannot parse /x/registries.toml: "));
                    assert!(message.contains(fragment), "`{message}` lacks `{fragment}`");
                }
                other => panic!("{text}: expected Parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_bad_locations() {
        let cases: &[&str] = &[
            "[[registry]]\nlocation = \"\"\n",
            "[[registry]]\nlocation = \"https://a.io\"\n",
            "[[registry]]\nlocation = \"*.a.io\"\n",
            "[[registry]]\nlocation = \"a.io/\"\n",
            "[[registry]]\nlocation = \"a.io//b\"\n",
            "[[registry]]\nlocation = \"a.io/b:tag\"\n",
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"http://m\"\n",
            "unqualified-search-registries = [\"quay.io/team\"]\n",
        ];
        for text in cases {
            match RegistriesConfig::parse(text, &path()) {
                Err(ConfigError::InvalidLocation { .. }) => {}
                other => panic!("{text}: expected InvalidLocation, got {other:?}"),
            }
        }
        let twice = "[[registry]]\nlocation = \"docker.io\"\n[[registry]]\nlocation = \"index.docker.io\"\n";
        match RegistriesConfig::parse(twice, &path()) {
            Err(e @ ConfigError::DuplicateLocation { .. }) => assert_eq!(
                e.to_string(),
                "/x/registries.toml: registry location `index.docker.io` is configured twice"
            ),
            other => panic!("expected DuplicateLocation, got {other:?}"),
        }
    }

    #[test]
    fn default_endpoints() {
        let c = RegistriesConfig::default();
        // input, expected endpoint
        let cases: &[(&str, Endpoint)] = &[
            (
                "busybox",
                ep("registry-1.docker.io", false, true, "library/busybox"),
            ),
            (
                "index.docker.io/u/a",
                ep("registry-1.docker.io", false, true, "u/a"),
            ),
            ("quay.io/x/y", ep("quay.io", false, true, "x/y")),
            ("localhost/x", ep("localhost", true, false, "x")),
            ("localhost:5000/x", ep("localhost:5000", true, false, "x")),
            ("127.0.0.1:5000/x", ep("127.0.0.1:5000", true, false, "x")),
            ("127.1.2.3/x", ep("127.1.2.3", true, false, "x")),
            ("[::1]:5000/x", ep("[::1]:5000", true, false, "x")),
            ("[::1]/x", ep("[::1]", true, false, "x")),
            ("128.0.0.1:5000/x", ep("128.0.0.1:5000", false, true, "x")),
            ("[::2]:5000/x", ep("[::2]:5000", false, true, "x")),
            (
                "localhost.example.com/x",
                ep("localhost.example.com", false, true, "x"),
            ),
        ];
        for (input, expected) in cases {
            let got = c.endpoints(&reference(input), None).expect("no blocks");
            assert_eq!(got, vec![expected.clone()], "{input}");
        }
    }

    #[test]
    fn tls_verify_flag_overrides() {
        let c = config(EXAMPLE);
        let local = reference("127.0.0.1:5000/x");
        assert_eq!(
            c.endpoints(&local, Some(true)).expect("ok"),
            vec![ep("127.0.0.1:5000", false, true, "x")]
        );
        assert_eq!(
            c.endpoints(&local, Some(false)).expect("ok"),
            vec![ep("127.0.0.1:5000", true, false, "x")]
        );
        let hub = reference("busybox");
        assert_eq!(
            c.endpoints(&hub, Some(false)).expect("ok"),
            vec![ep("registry-1.docker.io", true, false, "library/busybox")]
        );
        // Even an insecure entry and its insecure mirror are held to verified HTTPS.
        let configured = reference("registry.example.com:5000/a/b");
        assert_eq!(
            c.endpoints(&configured, Some(true)).expect("ok"),
            vec![
                ep("mirror.local:5000", false, true, "a/b"),
                ep("registry.example.com:5000", false, true, "a/b"),
            ]
        );
    }

    #[test]
    fn insecure_entries_and_mirrors() {
        let c = config(
            r#"
[[registry]]
location = "registry.example.com:5000"
insecure = true
[[registry.mirror]]
location = "secure-mirror.io"
[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
"#,
        );
        assert_eq!(
            c.endpoints(&reference("registry.example.com:5000/a/b:1"), None)
                .expect("ok"),
            vec![
                ep("secure-mirror.io", false, true, "a/b"),
                ep("mirror.local:5000", true, false, "a/b"),
                ep("registry.example.com:5000", true, false, "a/b"),
            ]
        );
        // Other registries are untouched by the entry.
        assert_eq!(
            c.endpoints(&reference("registry.example.com/a"), None)
                .expect("ok"),
            vec![ep("registry.example.com", false, true, "a")]
        );
    }

    #[test]
    fn docker_hub_entry_and_mirror() {
        let c = config(
            r#"
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "hub-cache.local:5000"
[[registry.mirror]]
location = "docker.io"
"#,
        );
        assert_eq!(
            c.endpoints(&reference("busybox"), None).expect("ok"),
            vec![
                ep("hub-cache.local:5000", false, true, "library/busybox"),
                ep("registry-1.docker.io", false, true, "library/busybox"),
                ep("registry-1.docker.io", false, true, "library/busybox"),
            ]
        );
        // The entry may use a Hub alias and still match normalised references.
        let c = config("[[registry]]\nlocation = \"index.docker.io\"\nblocked = true\n");
        assert!(matches!(
            c.endpoints(&reference("busybox"), None),
            Err(ConfigError::Blocked { .. })
        ));
    }

    #[test]
    fn prefix_locations_rewrite_mirror_repositories() {
        let c = config(
            r#"
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "whole-site-mirror.io"

[[registry]]
location = "example.com/team"
[[registry.mirror]]
location = "m:5000/cache"
[[registry.mirror]]
location = "flat.io"

[[registry]]
location = "example.com/team/secret"
blocked = true
"#,
        );
        // The longest matching location wins.
        assert_eq!(
            c.endpoints(&reference("example.com/team/app:1"), None)
                .expect("ok"),
            vec![
                ep("m:5000", false, true, "cache/app"),
                ep("flat.io", false, true, "app"),
                ep("example.com", false, true, "team/app"),
            ]
        );
        assert_eq!(
            c.endpoints(&reference("example.com/team/sub/app"), None)
                .expect("ok"),
            vec![
                ep("m:5000", false, true, "cache/sub/app"),
                ep("flat.io", false, true, "sub/app"),
                ep("example.com", false, true, "team/sub/app"),
            ]
        );
        // `team` matches only as a whole path component.
        assert_eq!(
            c.endpoints(&reference("example.com/teamwork/app"), None)
                .expect("ok"),
            vec![
                ep("whole-site-mirror.io", false, true, "teamwork/app"),
                ep("example.com", false, true, "teamwork/app"),
            ]
        );
        // The exact name of a prefix location matches it too, but a mirror without a path
        // leaves no repository for it.
        match c.endpoints(&reference("example.com/team"), None) {
            Err(e @ ConfigError::MirrorRewrite { .. }) => assert_eq!(
                e.to_string(),
                "cannot map `example.com/team:latest` onto mirror `flat.io`: no repository left"
            ),
            other => panic!("expected MirrorRewrite, got {other:?}"),
        }
        match c.endpoints(&reference("example.com/team/secret/x"), None) {
            Err(e @ ConfigError::Blocked { .. }) => assert_eq!(
                e.to_string(),
                "cannot use `example.com/team/secret/x:latest`: \
                 registry location `example.com/team/secret` is blocked"
            ),
            other => panic!("expected Blocked, got {other:?}"),
        }
        // A blocked entry blocks nothing outside its location.
        assert!(
            c.endpoints(&reference("example.com/team/secrets"), None)
                .is_ok()
        );
    }

    #[test]
    fn candidates_for_qualified_and_unqualified() {
        let c = RegistriesConfig::default();
        let names = |c: &RegistriesConfig, input: &str| -> Vec<String> {
            c.candidates(&reference(input))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(names(&c, "busybox"), ["docker.io/library/busybox:latest"]);
        assert!(
            c.candidates(&reference("busybox"))
                .iter()
                .all(|r| r.qualified)
        );
        assert_eq!(names(&c, "quay.io/x/y:1"), ["quay.io/x/y:1"]);
        assert_eq!(
            names(&c, "docker.io/busybox"),
            ["docker.io/library/busybox:latest"]
        );

        let c = config(
            "unqualified-search-registries = [\"localhost:5000\", \"quay.io\", \"docker.io\", \"index.docker.io\"]",
        );
        assert_eq!(
            names(&c, "busybox:1"),
            [
                "localhost:5000/busybox:1",
                "quay.io/busybox:1",
                "docker.io/library/busybox:1",
            ]
        );
        assert_eq!(
            names(&c, "user/app"),
            [
                "localhost:5000/user/app:latest",
                "quay.io/user/app:latest",
                "docker.io/user/app:latest",
            ]
        );
        // A qualified name ignores the search list, even a Hub name.
        assert_eq!(
            names(&c, "docker.io/user/app"),
            ["docker.io/user/app:latest"]
        );

        let c = config("unqualified-search-registries = []");
        assert!(c.candidates(&reference("busybox")).is_empty());
        assert_eq!(names(&c, "quay.io/x"), ["quay.io/x:latest"]);
    }
}
