//! User configuration under `$XDG_CONFIG_HOME/nook`.
//!
//! `config.toml` holds nook's defaults for options left out on the command line (the command
//! line wins, then the file, then the built-in default) and, optionally, the registries under
//! `[registries]`. `registries.toml` follows the shape of containers-registries.conf v2,
//! restricted to the keys nook acts on; the same keys may live in `config.toml`'s
//! `[registries]` instead, but not in both files.
//!
//! Unknown keys are errors rather than ignored, so that a setting copied from Podman's files
//! and silently not honoured (say, `blocked` misspelt) cannot go unnoticed. Every key is
//! described once, in [`KEYS`], from which `nook-config(5)` is generated; a unit test checks
//! that list against what the parser accepts.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

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
    #[error(
        "registries are configured twice, in {} and in [registries] of {}: keep them in one file (move or delete the other)",
        registries_toml.display(),
        config_toml.display()
    )]
    RegistriesTwice {
        registries_toml: PathBuf,
        config_toml: PathBuf,
    },
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
    pub containers: ContainersConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub registry: RegistrySettings,
    /// The keys of `registries.toml`, for those who keep everything in one file.
    registries: Option<FileConfig>,
    #[serde(default)]
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainersConfig {
    /// `--init` when it is not given.
    pub init: Option<bool>,
    /// `--log-driver` when it is not given.
    pub log_driver: Option<LogDriver>,
    /// `--log-opt`s for json-file, each unless given on the command line.
    #[serde(default, deserialize_with = "log_opts")]
    pub log_opts: BTreeMap<String, String>,
}

/// `log-opts`, checked when the file is read so that the error names the key and its line.
fn log_opts<'de, D: serde::Deserializer<'de>>(de: D) -> Result<BTreeMap<String, String>, D::Error> {
    let opts = BTreeMap::<String, String>::deserialize(de)?;
    log_rotation(LogDriver::JsonFile, &opts).map_err(serde::de::Error::custom)?;
    Ok(opts)
}

/// The rotation `opts` (`--log-opt`s, or `log-opts`) ask of `driver`, once checked: json-file
/// takes `max-size` (a size, e.g. `10m`) and `max-file` (files kept, default 1, needs
/// `max-size`), as Docker's does; none takes nothing.
pub fn log_rotation(
    driver: LogDriver,
    opts: &BTreeMap<String, String>,
) -> Result<Option<crate::store::logs::Rotation>, String> {
    if let Some(key) = opts
        .keys()
        .find(|k| !matches!(k.as_str(), "max-size" | "max-file"))
    {
        return Err(format!(
            "unknown log opt `{key}` for {}: nook supports max-size and max-file, for json-file",
            driver.name()
        ));
    }
    if driver == LogDriver::None
        && let Some(key) = opts.keys().next()
    {
        return Err(format!(
            "unknown log opt `{key}` for the none logging driver"
        ));
    }
    let max_size = match opts.get("max-size") {
        Some(text) => match crate::format::parse_size(text) {
            Some(size) if size > 0 => Some(size),
            _ => {
                return Err(format!(
                    "invalid max-size `{text}`: expected a positive size such as 10m (k, m or g)"
                ));
            }
        },
        None => None,
    };
    let max_file = match opts.get("max-file") {
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "invalid max-file `{text}`: expected a whole number, at least 1"
                ));
            }
        },
        None => 1,
    };
    match max_size {
        Some(max_size) => Ok(Some(crate::store::logs::Rotation { max_size, max_file })),
        None if opts.contains_key("max-file") => {
            Err("max-file needs max-size: files are only rotated at a size".to_string())
        }
        None => Ok(None),
    }
}

/// Where a container's output goes besides an attached terminal.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-file format in the container's directory, read by `nook logs`.
    #[default]
    JsonFile,
    /// Nothing is kept; `nook logs` refuses, as Docker does.
    None,
}

impl LogDriver {
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `--storage-driver` when it is not given.
    pub driver: Option<StorageDriverName>,
}

/// The values `--storage-driver` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageDriverName {
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl StorageDriverName {
    pub fn name(self) -> &'static str {
        match self {
            StorageDriverName::Overlay => "overlay",
            StorageDriverName::FuseOverlayfs => "fuse-overlayfs",
            StorageDriverName::Vfs => "vfs",
        }
    }
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
    #[serde(default, deserialize_with = "network_mode")]
    pub default: Option<String>,
}

/// A network mode as `--network` takes it, checked when the file is read so that the error
/// names the key and its line.
fn network_mode<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let spec = String::deserialize(de)?;
    crate::network::Mode::parse(&spec).map_err(serde::de::Error::custom)?;
    Ok(Some(spec))
}

impl NookConfig {
    /// Reads `path`; a missing file means every default. Unknown keys and values of the
    /// wrong type are errors that name the key, its line and the keys its table takes.
    pub fn load(path: &Path) -> Result<NookConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => NookConfig::parse(&text, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(NookConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of `config.toml`; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<NookConfig, ConfigError> {
        let config: NookConfig = deserialize(text, path)?;
        if config.containers.log_driver == Some(LogDriver::None)
            && !config.containers.log_opts.is_empty()
        {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message:
                    "`containers.log-opts` are json-file's, but `containers.log-driver` is none"
                        .into(),
            });
        }
        // Checked now, so that every command reading the file reports a bad location.
        config.registries(path)?;
        Ok(config)
    }

    /// `[registries]`, if the file has that table.
    pub fn registries(&self, path: &Path) -> Result<Option<RegistriesConfig>, ConfigError> {
        self.registries
            .clone()
            .map(|file| RegistriesConfig::from_file(file, path))
            .transpose()
    }
}

/// The registries in effect and the file they come from (None: neither file exists): the
/// `[registries]` table of `config.toml`, else `registries.toml`. Both at once is an error
/// naming both, since which one wins would be a guess.
pub fn load_registries(
    config: &NookConfig,
    config_toml: &Path,
    registries_toml: &Path,
) -> Result<(RegistriesConfig, Option<PathBuf>), ConfigError> {
    let exists = registries_toml.try_exists().unwrap_or(true);
    match config.registries(config_toml)? {
        Some(_) if exists => Err(ConfigError::RegistriesTwice {
            registries_toml: registries_toml.to_path_buf(),
            config_toml: config_toml.to_path_buf(),
        }),
        Some(registries) => Ok((registries, Some(config_toml.to_path_buf()))),
        None => Ok((
            RegistriesConfig::load(registries_toml)?,
            exists.then(|| registries_toml.to_path_buf()),
        )),
    }
}

/// One key of `config.toml`, as `nook-config(5)` documents it.
pub struct KeyDoc {
    /// The table, `""` for the top level; `[[…]]` arrays are written `registries.registry`.
    pub table: &'static str,
    pub key: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    /// The command-line option it gives a default for, if any.
    pub option: Option<&'static str>,
    pub description: &'static str,
    pub example: &'static str,
}

/// Every key `config.toml` accepts (tables included), in the page's order.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        table: "containers",
        key: "init",
        kind: "boolean",
        default: "false",
        option: Some("--init (run, create)"),
        description: "Run a small init as PID 1 that reaps zombies and forwards signals. \
                      `--init=false` on the command line turns it off again.",
        example: "init = true",
    },
    KeyDoc {
        table: "containers",
        key: "log-driver",
        kind: "string: json-file or none",
        default: "\"json-file\"",
        option: Some("--log-driver (run, create)"),
        description: "Where a container's output is kept. json-file: Docker's format in the \
                      container's directory, read by `nook logs`. none: nothing is kept; \
                      `nook logs` refuses, and `nook attach` to a detached container without \
                      a terminal has nothing to show.",
        example: "log-driver = \"none\"",
    },
    KeyDoc {
        table: "containers",
        key: "log-opts",
        kind: "table of strings: max-size, max-file",
        default: "{} (one log file that grows without limit)",
        option: Some("--log-opt (run, create), key by key"),
        description: "json-file's options, as Docker's: max-size (e.g. \"10m\"; k, m, g) \
                      rotates the log before it passes that size, keeping max-file files \
                      (default 1: the full log is dropped). `nook logs` reads the rotated \
                      files too; `logs -f` misses only files that rotate away between two \
                      of its reads (every 100 ms). An option given on the command line \
                      replaces the same key here; --log-driver none ignores them.",
        example: "log-opts = { max-size = \"10m\", max-file = \"3\" }",
    },
    KeyDoc {
        table: "network",
        key: "default",
        kind: "string",
        default: "pasta where installed, else slirp4netns (slirp4netns when there is no default route)",
        option: Some("--network (run, create)"),
        description: "The network mode of a container, with options as on the command line.",
        example: "default = \"slirp4netns:allow_host_loopback=true\"",
    },
    KeyDoc {
        table: "registry",
        key: "timeout",
        kind: "integer, seconds",
        default: "60",
        option: None,
        description: "How long a registry may stay silent before a pull, push or login gives \
                      up; manifests, configs and tokens must arrive whole within twice that, \
                      blobs at no less than 16 KiB per time-out.",
        example: "timeout = 300",
    },
    KeyDoc {
        table: "storage",
        key: "driver",
        kind: "string: overlay, fuse-overlayfs or vfs",
        default: "the store's driver, probed when the first container starts",
        option: Some("--storage-driver (run, create)"),
        description: "The root file system driver of new containers. --userns=keep-id still \
                      uses fuse-overlayfs, the only driver that can serve it, unless the \
                      command line names another (an error).",
        example: "driver = \"fuse-overlayfs\"",
    },
    KeyDoc {
        table: "registries",
        key: "unqualified-search-registries",
        kind: "array of strings, hosts",
        default: "[\"docker.io\"]",
        option: None,
        description: "Registries tried, in order, for an image name that names none; an \
                      empty array disables short names.",
        example: "unqualified-search-registries = [\"quay.io\", \"docker.io\"]",
    },
    KeyDoc {
        table: "registries",
        key: "registry",
        kind: "array of tables",
        default: "none",
        option: None,
        description: "Settings for one registry location (`[[registries.registry]]`); the \
                      longest location matching an image name applies.",
        example: "[[registries.registry]]",
    },
    KeyDoc {
        table: "registries.registry",
        key: "location",
        kind: "string: host[:port] or host[:port]/path",
        default: "required",
        option: None,
        description: "The registry, or the repositories under a path of it, this entry covers.",
        example: "location = \"registry.example.com:5000\"",
    },
    KeyDoc {
        table: "registries.registry",
        key: "insecure",
        kind: "boolean",
        default: "false",
        option: None,
        description: "Allow plain HTTP and skip certificate checks. Registries on \
                      127.0.0.0/8, ::1 and localhost are insecure without it; \
                      --tls-verify on the command line overrides it.",
        example: "insecure = true",
    },
    KeyDoc {
        table: "registries.registry",
        key: "blocked",
        kind: "boolean",
        default: "false",
        option: None,
        description: "Refuse to pull from or push to this location.",
        example: "blocked = true",
    },
    KeyDoc {
        table: "registries.registry",
        key: "mirror",
        kind: "array of tables",
        default: "none",
        option: None,
        description: "Mirrors tried, in order, before the registry itself \
                      (`[[registries.registry.mirror]]`).",
        example: "[[registries.registry.mirror]]",
    },
    KeyDoc {
        table: "registries.registry.mirror",
        key: "location",
        kind: "string: host[:port] or host[:port]/path",
        default: "required",
        option: None,
        description: "The mirror; the part of the image name below the entry's location is \
                      appended to it.",
        example: "location = \"mirror.local:5000\"",
    },
    KeyDoc {
        table: "registries.registry.mirror",
        key: "insecure",
        kind: "boolean",
        default: "false",
        option: None,
        description: "Allow plain HTTP and skip certificate checks for this mirror.",
        example: "insecure = true",
    },
];

/// `nook-config(5)`, generated from [`KEYS`] so that it lists exactly what the parser takes.
pub fn man_page(version: &str) -> Vec<u8> {
    let mut page = String::new();
    let mut line = |text: &str| {
        page.push_str(text);
        page.push('\n');
    };
    line(&format!(
        ".TH NOOK-CONFIG 5 \"\" \"nook {}\" \"File Formats\"",
        roff(version)
    ));
    line(".SH NAME");
    line(&roff(
        "nook-config - nook's configuration file, config.toml",
    ));
    line(".SH SYNOPSIS");
    line(&roff(
        "$XDG_CONFIG_HOME/nook/config.toml (by default ~/.config/nook/config.toml)",
    ));
    line(".SH DESCRIPTION");
    line(&roff(
        "A TOML file of defaults for options left out on the command line: an option given on \
         the command line wins, then this file, then nook's built-in default. A missing file \
         means every built-in default. Unknown keys and values of the wrong type are errors \
         (exit status 125) that name the file, the key with its table, its line and the keys \
         that table takes, for every command that reads the file.",
    ));
    line(".PP");
    line(&roff(
        "Registries and mirrors may be configured here, under [registries], with exactly the \
         keys of registries.toml (containers-registries.conf v2 as far as nook supports it) \
         one table further down: unqualified-search-registries, [[registries.registry]] and \
         [[registries.registry.mirror]]. registries.toml in the same directory keeps working \
         when config.toml has no [registries] table; configuring registries in both files is \
         an error naming both. nook info lists the files in use; nook system doctor checks \
         them.",
    ));
    line(".SH KEYS");
    let mut table = None;
    for key in KEYS {
        if table != Some(key.table) {
            table = Some(key.table);
            line(&format!(".SS [{}]", roff(key.table)));
        }
        line(".TP");
        line(&format!("\\fB{}\\fR ({})", roff(key.key), roff(key.kind)));
        line(&roff(key.description));
        line(".br");
        line(&format!("Default: {}.", roff(key.default)));
        if let Some(option) = key.option {
            line(".br");
            line(&format!("Sets the default of: {}.", roff(option)));
        }
        line(".br");
        line(&format!("Example: \\fB{}\\fR", roff(key.example)));
    }
    line(".SH EXAMPLE");
    line(".nf");
    for text in EXAMPLE_CONFIG.lines() {
        line(&roff(text));
    }
    line(".fi");
    line(".SH FILES");
    line(&roff(
        "$XDG_CONFIG_HOME/nook/config.toml, $XDG_CONFIG_HOME/nook/registries.toml",
    ));
    line(".SH SEE ALSO");
    line(&roff(
        "nook(1), nook-run(1), nook-create(1), nook-info(1), containers-registries.conf(5)",
    ));
    page.into_bytes()
}

/// A `config.toml` using every key; the page shows it and a unit test parses it.
pub const EXAMPLE_CONFIG: &str = r#"[containers]
init = true
log-driver = "json-file"
log-opts = { max-size = "10m", max-file = "3" }

[network]
default = "slirp4netns:allow_host_loopback=true"

[registry]
timeout = 300

[storage]
driver = "fuse-overlayfs"

[registries]
unqualified-search-registries = ["docker.io"]

[[registries.registry]]
location = "registry.example.com:5000"
insecure = true
blocked = false

[[registries.registry.mirror]]
location = "mirror.local:5000"
insecure = true
"#;

/// Text escaped for roff: backslashes and hyphens, and a leading `.` or `'` kept literal.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Deserializes TOML, turning errors into one line that names the key by its table path,
/// its line, and for an unknown key the keys its table takes.
fn deserialize<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(&e, text),
        }
    })
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<FileRegistry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
        RegistriesConfig::from_file(deserialize(text, path)?, path)
    }

    /// Checks the locations of a parsed file (`registries.toml`, or `[registries]` of
    /// `config.toml`); `path` is only for messages.
    fn from_file(file: FileConfig, path: &Path) -> Result<RegistriesConfig, ConfigError> {
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

/// One line: where (the line), which key (its dotted table path, array indices left out)
/// and what is wrong; for an unknown key, the keys its table takes.
fn describe_toml_error(error: &serde_path_to_error::Error<toml::de::Error>, text: &str) -> String {
    let inner = error.inner();
    // toml's syntax errors span several lines (the message, then what it expected).
    let message = inner
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let table: Vec<&str> = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let dotted = |last: &str| {
        let mut all = table.clone();
        all.push(last);
        all.join(".")
    };
    let described = if let Some(rest) = message.strip_prefix("unknown field `") {
        // The path ends with the unknown key itself.
        let table = &table[..table.len().saturating_sub(1)];
        let dotted = |last: &str| {
            let mut all = table.to_vec();
            all.push(last);
            all.join(".")
        };
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let owner = if table.is_empty() {
            "valid top-level keys".to_string()
        } else {
            format!("valid keys in [{}]", table.join("."))
        };
        let valid = if valid.is_empty() {
            "none".to_string()
        } else {
            valid.join(", ")
        };
        format!("unknown key `{}` ({owner}: {valid})", dotted(key))
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        format!("missing key `{}`", dotted(key))
    } else if table.is_empty() {
        message
    } else {
        let message = match message.strip_prefix("unknown variant ") {
            Some(rest) => format!("invalid value {rest}"),
            None => message,
        };
        format!("`{}`: {message}", table.join("."))
    };
    match inner.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {described}")
        }
        None => described,
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

    fn nook(text: &str) -> Result<NookConfig, String> {
        NookConfig::parse(text, Path::new("/x/config.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn config_toml_keys_parse() {
        let c = nook(EXAMPLE_CONFIG).unwrap();
        assert_eq!(c.containers.init, Some(true));
        assert_eq!(c.containers.log_driver, Some(LogDriver::JsonFile));
        assert_eq!(
            c.network.default.as_deref(),
            Some("slirp4netns:allow_host_loopback=true")
        );
        assert_eq!(c.registry_timeout(), std::time::Duration::from_secs(300));
        assert_eq!(c.storage.driver, Some(StorageDriverName::FuseOverlayfs));
        let registries = c.registries(&path()).unwrap().unwrap();
        assert_eq!(registries, config(EXAMPLE));
        let c = nook("[containers]\nlog-driver = \"none\"\ninit = false\n").unwrap();
        assert_eq!(c.containers.log_driver, Some(LogDriver::None));
        assert_eq!(c.containers.init, Some(false));
        let empty = nook("").unwrap();
        assert_eq!(empty, NookConfig::default());
        assert_eq!(empty.registries(&path()).unwrap(), None);
        for (value, driver) in [
            ("overlay", StorageDriverName::Overlay),
            ("fuse-overlayfs", StorageDriverName::FuseOverlayfs),
            ("vfs", StorageDriverName::Vfs),
        ] {
            let c = nook(&format!("[storage]\ndriver = \"{value}\"\n")).unwrap();
            assert_eq!(c.storage.driver, Some(driver));
            assert_eq!(driver.name(), value);
            // The command line's parser takes the same names.
            assert!(crate::runtime::mounts::Driver::parse(value).is_some());
        }
    }

    #[test]
    fn log_opts_as_docker_takes_them() {
        use crate::store::logs::Rotation;
        let opts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let json = |pairs: &[(&str, &str)]| log_rotation(LogDriver::JsonFile, &opts(pairs));
        assert_eq!(json(&[]), Ok(None));
        assert_eq!(
            json(&[("max-size", "10m")]),
            Ok(Some(Rotation {
                max_size: 10 << 20,
                max_file: 1
            }))
        );
        assert_eq!(
            json(&[("max-size", "512k"), ("max-file", "3")]),
            Ok(Some(Rotation {
                max_size: 512 << 10,
                max_file: 3
            }))
        );
        for bad in [
            &[("max-size", "0")][..],
            &[("max-size", "-1")],
            &[("max-size", "1m"), ("max-file", "0")],
            &[("max-size", "1m"), ("max-file", "two")],
            &[("max-file", "2")],
            &[("mode", "non-blocking")],
        ] {
            assert!(json(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            log_rotation(LogDriver::None, &opts(&[("max-size", "1m")])),
            Err("unknown log opt `max-size` for the none logging driver".into())
        );
        assert_eq!(log_rotation(LogDriver::None, &opts(&[])), Ok(None));
        let c = nook("[containers]\nlog-opts = { max-size = \"1k\", max-file = \"2\" }\n").unwrap();
        assert_eq!(
            c.containers.log_opts,
            opts(&[("max-size", "1k"), ("max-file", "2")])
        );
    }

    #[test]
    fn config_toml_errors_name_file_key_line_and_valid_keys() {
        let cases: &[(&str, &str)] = &[
            (
                "[containers]\ninti = true\n",
                "cannot parse /x/config.toml: line 2: unknown key `containers.inti` (valid keys in [containers]: init, log-driver, log-opts)",
            ),
            (
                "\nlog-driver = \"none\"\n",
                "cannot parse /x/config.toml: line 2: unknown key `log-driver` (valid top-level keys: containers, network, registry, registries, storage)",
            ),
            (
                "[containers]\ninit = \"yes\"\n",
                "cannot parse /x/config.toml: line 2: `containers.init`: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "[containers]\nlog-driver = \"journald\"\n",
                "cannot parse /x/config.toml: line 2: `containers.log-driver`: invalid value `journald`, expected `json-file` or `none`",
            ),
            (
                "[containers]\nlog-opts = { max-size = \"10m\", compress = \"true\" }\n",
                "cannot parse /x/config.toml: line 2: `containers.log-opts`: unknown log opt `compress` for json-file: nook supports max-size and max-file, for json-file",
            ),
            (
                "[containers]\nlog-opts = { max-size = \"ten\" }\n",
                "cannot parse /x/config.toml: line 2: `containers.log-opts`: invalid max-size `ten`: expected a positive size such as 10m (k, m or g)",
            ),
            (
                "[containers]\nlog-opts = { max-size = \"1m\", max-file = 3 }\n",
                "cannot parse /x/config.toml: line 2: `containers.log-opts.max-file`: invalid type: integer `3`, expected a string",
            ),
            (
                "[containers]\nlog-driver = \"none\"\nlog-opts = { max-size = \"1m\" }\n",
                "cannot parse /x/config.toml: `containers.log-opts` are json-file's, but `containers.log-driver` is none",
            ),
            (
                "[storage]\ndriver = \"zfs\"\n",
                "cannot parse /x/config.toml: line 2: `storage.driver`: invalid value `zfs`, expected one of `overlay`, `fuse-overlayfs`, `vfs`",
            ),
            (
                "[network]\ndefault = 1\n",
                "cannot parse /x/config.toml: line 2: `network.default`: invalid type: integer `1`, expected a string",
            ),
            (
                "[network]\ndefault = \"bridge:x\"\n",
                "cannot parse /x/config.toml: line 2: `network.default`: unknown network mode `bridge:x`: use pasta, slirp4netns, none, host or container:NAME (with options: pasta:--map-gw, slirp4netns:allow_host_loopback=true)",
            ),
            (
                "[registry]\ntimeout = \"60\"\n",
                "cannot parse /x/config.toml: line 2: `registry.timeout`: invalid type: string \"60\", expected u64",
            ),
            (
                "[registries]\n[[registries.registry]]\nlocation = \"a.io\"\n[[registries.registry.mirror]]\nlocation = \"m\"\nblocked = true\n",
                "cannot parse /x/config.toml: line 6: unknown key `registries.registry.mirror.blocked` (valid keys in [registries.registry.mirror]: location, insecure)",
            ),
            (
                "[storage]\n\n\n[storage]\n",
                "cannot parse /x/config.toml: line 4: invalid table header; duplicate key `storage` in document root",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(nook(text).unwrap_err(), *expected, "{text}");
        }
        // Locations are checked when the file is read, not when a registry is first used.
        let e =
            nook("[registries]\nunqualified-search-registries = [\"quay.io/x\"]\n").unwrap_err();
        assert!(
            e.starts_with("/x/config.toml: invalid location `quay.io/x`"),
            "{e}"
        );
    }

    /// Every key the parser accepts is documented in KEYS (hence in nook-config(5)), and
    /// nothing else is: serde names a table's keys when it refuses an unknown one.
    #[test]
    fn keys_documented_are_the_keys_accepted() {
        let accepted = |prefix: &str, table: &str| -> Vec<String> {
            let e = nook(&format!("{prefix}zzz-unknown = 1\n")).unwrap_err();
            let list = e.rsplit_once(": ").map(|(_, l)| l).unwrap_or_default();
            let list = list.trim_end_matches(')');
            let mut keys: Vec<String> = list.split(", ").map(String::from).collect();
            keys.sort();
            assert!(!keys.is_empty(), "{table}: {e}");
            keys
        };
        let mut tables: Vec<(&str, &str)> = vec![
            ("", ""),
            ("[containers]\n", "containers"),
            ("[network]\n", "network"),
            ("[registry]\n", "registry"),
            ("[storage]\n", "storage"),
            ("[registries]\n", "registries"),
            (
                "[[registries.registry]]\nlocation = \"a.io\"\n",
                "registries.registry",
            ),
            (
                "[[registries.registry]]\nlocation = \"a.io\"\n[[registries.registry.mirror]]\nlocation = \"m.io\"\n",
                "registries.registry.mirror",
            ),
        ];
        for (prefix, table) in tables.drain(..) {
            let mut documented: Vec<String> = if table.is_empty() {
                let mut tops: Vec<String> = KEYS
                    .iter()
                    .map(|k| k.table.split('.').next().unwrap().to_string())
                    .collect();
                tops.dedup();
                tops
            } else {
                KEYS.iter()
                    .filter(|k| k.table == table)
                    .map(|k| k.key.to_string())
                    .collect()
            };
            documented.sort();
            documented.dedup();
            assert_eq!(accepted(prefix, table), documented, "[{table}]");
        }
        // And the page shows each of them.
        let page = String::from_utf8(man_page("0")).unwrap();
        for key in KEYS {
            assert!(
                page.contains(&format!("\\fB{}\\fR", roff(key.key))),
                "{}",
                key.key
            );
            assert!(
                page.contains(&format!(".SS [{}]", roff(key.table))),
                "{}",
                key.table
            );
        }
    }

    #[test]
    fn registries_come_from_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let config_toml = dir.path().join("config.toml");
        let registries_toml = dir.path().join("registries.toml");
        let load = |text: &str| {
            let c = NookConfig::parse(text, &config_toml).unwrap();
            load_registries(&c, &config_toml, &registries_toml)
        };
        // Neither file: the defaults.
        assert_eq!(load("").unwrap(), (RegistriesConfig::default(), None));
        let in_config = "[registries]\nunqualified-search-registries = [\"quay.io\"]\n";
        let (r, source) = load(in_config).unwrap();
        assert_eq!(r.unqualified_search, ["quay.io"]);
        assert_eq!(source.as_deref(), Some(config_toml.as_path()));
        std::fs::write(&registries_toml, "unqualified-search-registries = []\n").unwrap();
        let (r, source) = load("").unwrap();
        assert!(r.unqualified_search.is_empty());
        assert_eq!(source.as_deref(), Some(registries_toml.as_path()));
        let e = load(in_config).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "registries are configured twice, in {} and in [registries] of {}: keep them in one file (move or delete the other)",
                registries_toml.display(),
                config_toml.display()
            )
        );
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
                "cannot parse /x/registries.toml: line 3: unknown key `foo` (valid top-level keys: unqualified-search-registries, registry)",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirrors = []\n",
                "cannot parse /x/registries.toml: line 3: unknown key `registry.mirrors` (valid keys in [registry]: location, insecure, blocked, mirror)",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\nblocked = true\n",
                "cannot parse /x/registries.toml: line 5: unknown key `registry.mirror.blocked` (valid keys in [registry.mirror]: location, insecure)",
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
                "line 1: missing key `registry.location`",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n",
                "line 3: `registry.insecure`: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "unqualified-search-registries = \"docker.io\"\n",
                "line 1: `unqualified-search-registries`: invalid type",
            ),
            ("[[registry]\n", "line 1: "),
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
