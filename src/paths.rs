//! Where nook keeps things: data (the store) under `$XDG_DATA_HOME/nook`, runtime state under
//! `$XDG_RUNTIME_DIR/nook`, configuration under `$XDG_CONFIG_HOME/nook`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const ENV_ROOT: &str = "NOOK_ROOT";

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot find a home directory: HOME is not set")]
    NoHome,
    #[error("cannot create runtime directory `{path}`")]
    CreateRuntime {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "runtime directory `{path}` is not private to this user (owner uid {owner}, mode {mode:o}); remove it or set XDG_RUNTIME_DIR"
    )]
    UnsafeRuntime {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
}

/// The resolved directories for one invocation.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The store: images, layers, containers.
    pub data: PathBuf,
    /// `$XDG_RUNTIME_DIR` or its private stand-in; `containers/auth.json` lives here.
    pub runtime_base: PathBuf,
    /// `runtime_base/nook`: state that must not outlive a reboot.
    pub runtime: PathBuf,
    /// `$XDG_CONFIG_HOME/nook`.
    pub config: PathBuf,
    pub home: PathBuf,
    /// Set when XDG_RUNTIME_DIR was unusable, so the caller can warn once.
    pub runtime_fallback_reason: Option<String>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

impl Paths {
    /// Resolves the directories from the environment; `root` (from `--root` or `NOOK_ROOT`)
    /// moves the store.
    pub fn from_env(root: Option<PathBuf>) -> Result<Paths, PathsError> {
        let home = env_path("HOME").ok_or(PathsError::NoHome)?;
        let data = Paths::data_dir(root, &home);
        let config = env_path("XDG_CONFIG_HOME")
            .unwrap_or_else(|| home.join(".config"))
            .join("nook");
        let uid = nix::unistd::getuid().as_raw();
        let (runtime_base, runtime_fallback_reason) = match env_path("XDG_RUNTIME_DIR") {
            Some(dir) if is_writable_dir(&dir) => (dir, None),
            Some(dir) => (
                private_tmp_dir(uid)?,
                Some(format!(
                    "XDG_RUNTIME_DIR `{}` is not writable",
                    dir.display()
                )),
            ),
            None => (
                private_tmp_dir(uid)?,
                Some("XDG_RUNTIME_DIR is not set (as under su or sudo)".to_string()),
            ),
        };
        Ok(Paths {
            data,
            runtime: runtime_base.join("nook"),
            runtime_base,
            config,
            home,
            runtime_fallback_reason,
        })
    }

    /// The store's directory alone, with no side effects (completion needs only this).
    pub fn data_dir(root: Option<PathBuf>, home: &Path) -> PathBuf {
        match root {
            Some(r) => absolutize(r),
            None => env_path("XDG_DATA_HOME")
                .unwrap_or_else(|| home.join(".local/share"))
                .join("nook"),
        }
    }

    /// `$HOME`, if set to an absolute path.
    pub fn home() -> Option<PathBuf> {
        env_path("HOME")
    }

    pub fn registries_config(&self) -> PathBuf {
        self.config.join("registries.toml")
    }

    /// `config.toml`: nook's own settings.
    pub fn nook_config(&self) -> PathBuf {
        self.config.join("config.toml")
    }
}

fn absolutize(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
    }
}

fn is_writable_dir(dir: &Path) -> bool {
    dir.is_dir() && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// `/tmp/nook-run-UID`, created 0700 and checked to be ours: /tmp is shared, so a directory
/// somebody else made there must never be trusted.
fn private_tmp_dir(uid: u32) -> Result<PathBuf, PathsError> {
    let mut name = OsString::from("nook-run-");
    name.push(uid.to_string());
    let path = std::env::temp_dir().join(name);
    match fs::DirBuilder::new().mode(0o700).create(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(PathsError::CreateRuntime { path, source }),
    }
    let meta = fs::symlink_metadata(&path).map_err(|source| PathsError::CreateRuntime {
        path: path.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != uid || mode & 0o077 != 0 {
        return Err(PathsError::UnsafeRuntime {
            path,
            owner: meta.uid(),
            mode,
        });
    }
    Ok(path)
}
