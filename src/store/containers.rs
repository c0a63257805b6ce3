//! Container records (`containers.json`, under the metadata lock) and each container's own
//! directory: `containers/<id>/` holding `state.json` (written by whoever changes the state,
//! atomically), the overlay `upper/` and `work/` directories, the log and the generated
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::image::digest::Digest;

/// What a container is: fixed at create time (only the name can change).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    /// 64 lowercase hex characters; the first 12 are shown.
    pub id: String,
    pub name: String,
    /// The image as the user named it (`busybox`), for `ps`'s IMAGE column.
    pub image: String,
    pub image_id: Digest,
    pub created: DateTime<Utc>,
    pub config: ContainerConfig,
}

/// The container's settings after the image config and the options were merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=VALUE`, image's first then options'.
    pub env: Vec<String>,
    pub working_dir: String,
    /// As given (`app`, `1000:1000`); resolved against the image's /etc/passwd at start.
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub interactive: bool,
    pub mounts: Vec<MountSpec>,
    pub read_only: bool,
    pub init: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// None: Docker's default profile; Some("unconfined"); or a profile file's JSON text.
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
    /// `--userns=keep-id`.
    pub keep_id: bool,
    pub stop_signal: String,
    pub stop_timeout: u32,
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    /// `--log-driver`; records from before it existed kept json-file logs.
    #[serde(default)]
    pub log_driver: crate::config::LogDriver,
    /// `--log-opt`s (checked at create), merged with config.toml's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
    /// overlay, fuse-overlayfs or vfs: chosen at create time.
    pub storage_driver: String,
    /// The network mode as given, with its options: `pasta`, `pasta:--map-gw`,
    /// `slirp4netns:allow_host_loopback=true`, `none`, `host`, `container:<ID>`.
    pub network: String,
    /// Published ports (`-p`, `-P`); a host port of 0 is chosen at start.
    #[serde(default)]
    pub ports: Vec<crate::network::ports::PortMapping>,
    /// `--dns`: name servers for /etc/resolv.conf instead of the helper's forwarder.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--add-host NAME:IP`, as given.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `--memory`, `--memory-swap`, `--cpus`, `--pids-limit`.
    #[serde(
        default,
        skip_serializing_if = "crate::runtime::cgroups::Limits::is_empty"
    )]
    pub limits: crate::runtime::cgroups::Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSpec {
    Bind {
        source: PathBuf,
        destination: String,
        read_only: bool,
    },
    Tmpfs {
        destination: String,
        /// mount(8)-style options: size=64m,mode=1777
        options: String,
    },
    /// A named volume under the store's `volumes/<name>/_data`.
    Volume {
        name: String,
        destination: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

/// What a container is doing; `containers/<id>/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerState {
    pub status: Status,
    /// The container's PID 1 as the host sees it.
    pub pid: Option<i32>,
    /// Its start time (field 22 of /proc/PID/stat), so a reused PID is not mistaken for it.
    pub pid_start: Option<u64>,
    /// The process that waits for PID 1 and records its exit.
    pub monitor_pid: Option<i32>,
    pub monitor_start: Option<u64>,
    /// /proc/sys/kernel/random/boot_id when started: a different one means a reboot.
    pub boot_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    /// Why the last start failed, or why the state was corrected (monitor gone).
    pub error: Option<String>,
    /// The published ports as started, with the host ports chosen for those given as 0.
    #[serde(default)]
    pub ports: Vec<crate::network::ports::PortMapping>,
}

impl Default for ContainerState {
    fn default() -> Self {
        ContainerState {
            status: Status::Created,
            pid: None,
            pid_start: None,
            monitor_pid: None,
            monitor_start: None,
            boot_id: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            error: None,
            ports: Vec::new(),
        }
    }
}

impl Store {
    /// `containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::{StoreError, io_err, lock};

use super::INDEX_VERSION as FORMAT_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {input}")]
    NoSuch { input: String },
    #[error(
        "container ID prefix `{input}` is ambiguous: it matches {count} containers; give more characters"
    )]
    Ambiguous { input: String, count: usize },
    #[error(
        "the container name \"/{name}\" is already in use by container {id}; remove or rename that container, or choose another name"
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name `{name}`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("the container is already named \"/{name}\"")]
    SameName { name: String },
    #[error("container ID `{id}` is not 64 lowercase hex characters")]
    InvalidId { id: String },
    #[error("a container with ID {id} already exists")]
    IdInUse { id: String },
    #[error("image {image} is no longer in the store (it was removed); pull it again")]
    ImageGone { image: Digest },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `containers.json`: every container record.
impl super::IndexFile for ContainerIndex {
    fn version(&self) -> u32 {
        self.version
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ContainerIndex {
    version: u32,
    containers: Vec<ContainerRecord>,
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. A leading `/` is accepted and
/// dropped (Docker shows names as `/web`).
pub fn normalize_name(name: &str) -> Result<String, ContainerError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(bare.to_string())
    } else {
        Err(ContainerError::InvalidName {
            name: name.to_string(),
        })
    }
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    fn containers_path(&self) -> PathBuf {
        self.root.join("containers.json")
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("state.json")
    }

    /// The overlay upper directory of a container: what it wrote.
    pub fn container_upper_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("upper")
    }

    /// The overlay work directory of a container.
    pub fn container_work_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("work")
    }

    fn read_container_index(&self) -> Result<ContainerIndex, StoreError> {
        super::read_index(&self.containers_path())
    }

    /// Every container record, oldest first. Read without a lock: the file is only ever
    /// replaced whole by rename.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        Ok(self.read_container_index()?.containers)
    }

    /// Read-modify-write of `containers.json` under the metadata lock (the same lock as
    /// `images.json`, so "is this image in use" and "remove this image" cannot interleave
    /// with creating a container).
    /// Read-modify-write of `containers.json` under the metadata lock. `durable` flushes it
    /// to disk; without, the replacement is still atomic but a power cut may undo it — fine
    /// for `--rm` containers, which are meant to vanish anyway, and it keeps two disk flushes
    /// each off `run --rm`'s start and end.
    fn update_containers<T, E: From<StoreError>>(
        &self,
        durable: bool,
        change: impl FnOnce(&mut Vec<ContainerRecord>) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.lock_metadata()?;
        let mut index = self.read_container_index()?;
        let out = change(&mut index.containers)?;
        index.version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&index).expect("container index serialises");
        if durable {
            self.write_atomic(&self.containers_path(), &bytes)?;
        } else {
            self.write_replace(&self.containers_path(), &bytes)?;
        }
        Ok(out)
    }

    /// Adds a container: under the metadata lock, checks that the name is valid and free and
    /// that the image still exists, creates `containers/<id>/{upper,work}` and a `Created`
    /// `state.json`, and only then adds the record, so a record never exists without its
    /// directory. The record's name is stored without a leading `/`.
    pub fn create_container(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        if !is_container_id(&record.id) {
            return Err(ContainerError::InvalidId {
                id: record.id.clone(),
            });
        }
        let name = normalize_name(&record.name)?;
        let durable = !record.config.auto_remove;
        self.update_containers(durable, |containers| -> Result<(), ContainerError> {
            if let Some(other) = containers.iter().find(|c| c.name == name) {
                return Err(ContainerError::NameInUse {
                    name,
                    id: other.id.clone(),
                });
            }
            if containers.iter().any(|c| c.id == record.id) {
                return Err(ContainerError::IdInUse {
                    id: record.id.clone(),
                });
            }
            if self.images()?.get(&record.image_id).is_none() {
                return Err(ContainerError::ImageGone {
                    image: record.image_id.clone(),
                });
            }
            let dir = self.container_dir(&record.id);
            // A directory without a record is a leftover of a crash: start afresh.
            if dir.exists() {
                super::layers::remove_tree(&dir).map_err(io_err("remove", &dir))?;
            }
            for sub in [dir.clone(), dir.join("upper"), dir.join("work")] {
                fs::create_dir_all(&sub).map_err(io_err("create directory", &sub))?;
            }
            self.set_container_state(&record.id, &ContainerState::default())?;
            let mut record = record.clone();
            record.name = name;
            containers.push(record);
            Ok(())
        })
    }

    /// Finds a container by full ID, exact name (with or without a leading `/`), or unique ID
    /// prefix, in that order (as Docker does).
    pub fn find_container(&self, input: &str) -> Result<ContainerRecord, ContainerError> {
        find_in(&self.containers()?, input).cloned()
    }

    /// The raw `state.json`, as last written.
    pub fn container_state(&self, id: &str) -> Result<ContainerState, StoreError> {
        let path = self.state_path(id);
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Replaces `state.json` atomically. Use [`Store::update_container_state`] for a
    /// read-modify-write.
    pub fn set_container_state(&self, id: &str, state: &ContainerState) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(state).expect("container state serialises");
        self.write_replace(&self.state_path(id), &bytes)
    }

    /// Read-modify-write of `state.json` under the container's own lock
    /// (`containers/<id>/state.lock`). The state is written whatever `f` returns.
    pub fn update_container_state<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerState) -> T,
    ) -> Result<T, StoreError> {
        let _guard = lock::exclusive(
            &self.container_dir(id).join("state.lock"),
            &format!("container {}", &id[..id.len().min(12)]),
        )?;
        let mut state = self.container_state(id)?;
        let out = f(&mut state);
        self.set_container_state(id, &state)?;
        Ok(out)
    }

    /// The state as it really is (see [`observed_state`]). A correction that is final (the
    /// monitor is gone, or the machine rebooted) is written back, so the finish time stays
    /// put; writing is best effort.
    pub fn observed_container_state(&self, id: &str) -> Result<ContainerState, StoreError> {
        let raw = self.container_state(id)?;
        let observed = observed_state(&raw);
        if raw.status == Status::Running && observed.status != Status::Running && is_final(&raw) {
            let corrected = self.update_container_state(id, |state| {
                if state.status == Status::Running && is_final(state) {
                    *state = observed_state(state);
                }
                state.clone()
            });
            if let Ok(state) = corrected {
                return Ok(state);
            }
        }
        Ok(observed)
    }

    /// Gives a container another name; fails if the name is taken or invalid.
    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<(), ContainerError> {
        let name = normalize_name(new_name)?;
        self.update_containers(true, |containers| -> Result<(), ContainerError> {
            if let Some(other) = containers.iter().find(|c| c.name == name) {
                if other.id == id {
                    return Err(ContainerError::SameName { name });
                }
                return Err(ContainerError::NameInUse {
                    name,
                    id: other.id.clone(),
                });
            }
            let record = containers.iter_mut().find(|c| c.id == id).ok_or_else(|| {
                ContainerError::NoSuch {
                    input: id.to_string(),
                }
            })?;
            record.name = name;
            Ok(())
        })
    }

    /// Removes a container: its record first (atomically), then its directory, renamed into
    /// `containers/.trash/` and deleted there. Files in `upper/` belong to subordinate ids,
    /// so call this inside nook's user namespace. Removing a container that has no record is
    /// not an error (the directory, if any, still goes).
    pub fn remove_container(&self, id: &str) -> Result<(), StoreError> {
        if !is_container_id(id) {
            // Never let a bad id turn into a path outside containers/.
            return Err(StoreError::Corrupt {
                path: self.containers_path(),
                message: format!("`{id}` is not a container ID"),
            });
        }
        let ephemeral = self
            .containers()?
            .iter()
            .any(|c| c.id == id && c.config.auto_remove);
        self.update_containers(!ephemeral, |containers| -> Result<(), StoreError> {
            containers.retain(|c| c.id != id);
            Ok(())
        })?;
        let trash = self.root.join("containers/.trash");
        fs::create_dir_all(&trash).map_err(io_err("create directory", &trash))?;
        let dir = self.container_dir(id);
        let target = trash.join(format!(
            "{id}.{}.{}",
            std::process::id(),
            super::unique_suffix()
        ));
        match fs::rename(&dir, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("move to the trash", &dir)(e)),
        }
        self.purge_container_trash()
    }

    /// Deletes whatever `containers/.trash/` holds (also leftovers of an interrupted removal).
    pub fn purge_container_trash(&self) -> Result<(), StoreError> {
        let trash = self.root.join("containers/.trash");
        let entries = match fs::read_dir(&trash) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read", &trash)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err("read", &trash))?.path();
            super::layers::remove_tree(&path).map_err(io_err("remove", &path))?;
        }
        Ok(())
    }

    /// Containers (in any state) created from image `image_id`.
    pub fn containers_using_image(
        &self,
        image_id: &Digest,
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| &c.image_id == image_id)
            .collect())
    }
}

/// The lookup of [`Store::find_container`] over a list already read.
pub fn find_in<'a>(
    containers: &'a [ContainerRecord],
    input: &str,
) -> Result<&'a ContainerRecord, ContainerError> {
    let no_such = || ContainerError::NoSuch {
        input: input.to_string(),
    };
    if input.is_empty() {
        return Err(no_such());
    }
    if let Some(c) = containers.iter().find(|c| c.id == input) {
        return Ok(c);
    }
    let name = input.strip_prefix('/').unwrap_or(input);
    if let Some(c) = containers.iter().find(|c| c.name == name) {
        return Ok(c);
    }
    let matches: Vec<&ContainerRecord> = containers
        .iter()
        .filter(|c| c.id.starts_with(input))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(no_such()),
        _ => Err(ContainerError::Ambiguous {
            input: input.to_string(),
            count: matches.len(),
        }),
    }
}

/// Whether a process is the one recorded: it exists, is not a zombie, and started when the
/// record says (so a reused PID is not mistaken for it).
pub fn process_alive(pid: Option<i32>, start: Option<u64>) -> bool {
    let Some(pid) = pid.filter(|p| *p > 0) else {
        return false;
    };
    match proc_stat(pid) {
        Some((state, started)) => {
            state != 'Z' && state != 'X' && start.is_none_or(|s| s == started)
        }
        None => false,
    }
}

/// A "running" state whose correction cannot change any more: its monitor (or, without a
/// monitor, its PID 1) is gone, or the machine was rebooted since.
fn is_final(state: &ContainerState) -> bool {
    let rebooted = match (&state.boot_id, boot_id()) {
        (Some(recorded), Some(now)) => *recorded != now,
        _ => false,
    };
    if rebooted {
        return true;
    }
    match state.monitor_pid {
        Some(_) => !process_alive(state.monitor_pid, state.monitor_start),
        None => !process_alive(state.pid, state.pid_start),
    }
}

/// The state as it really is: a "running" state whose monitor (`monitor_pid` +
/// `monitor_start`) or PID 1 (`pid` + `pid_start`) is gone, or whose `boot_id` differs from
/// the current one, is reported `Exited` (the recorded exit code, else 255, with an error
/// saying why). Never a ghost "Up".
pub fn observed_state(state: &ContainerState) -> ContainerState {
    if state.status != Status::Running {
        return state.clone();
    }
    let reason = match (&state.boot_id, boot_id()) {
        (Some(recorded), Some(now)) if *recorded != now => Some("the machine was rebooted"),
        _ if state.monitor_pid.is_some()
            && !process_alive(state.monitor_pid, state.monitor_start) =>
        {
            Some("the container's monitor died")
        }
        _ if !process_alive(state.pid, state.pid_start) => Some("the container's process is gone"),
        _ => None,
    };
    let Some(reason) = reason else {
        return state.clone();
    };
    let mut out = state.clone();
    out.status = Status::Exited;
    out.exit_code = Some(state.exit_code.unwrap_or(255));
    out.finished_at = Some(state.finished_at.unwrap_or_else(Utc::now));
    if out.error.is_none() {
        out.error = Some(reason.to_string());
    }
    out.pid = None;
    out.pid_start = None;
    out
}

/// (state letter, start time) from `/proc/PID/stat`; fields counted after the last `)`, as
/// the command name may contain spaces and parentheses.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is starttime.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start))
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
pub fn process_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf
}

/// A fresh container ID: 64 hex characters from /dev/urandom. Like Docker, never all digits
/// (so a short ID cannot be mistaken for a number).
pub fn new_container_id() -> String {
    loop {
        let id = hex::encode(random_bytes::<32>());
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// A name like `brave_lovelace` from nook's word lists that `taken` says is free; after
/// many collisions a number is appended.
pub fn generate_name(taken: &dyn Fn(&str) -> bool) -> String {
    use super::names::{ADJECTIVES, SURNAMES};
    let pick = || {
        let r = random_bytes::<4>();
        let a = u16::from_le_bytes([r[0], r[1]]) as usize % ADJECTIVES.len();
        let s = u16::from_le_bytes([r[2], r[3]]) as usize % SURNAMES.len();
        format!("{}_{}", ADJECTIVES[a], SURNAMES[s])
    };
    for _ in 0..10 {
        let name = pick();
        if !taken(&name) {
            return name;
        }
    }
    let base = pick();
    (2u64..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !taken(n))
        .expect("some number is free")
}

/// Docker's STATUS column: "Created", "Up 3 seconds", "Exited (0) 2 minutes ago".
pub fn status_text(state: &ContainerState, now: DateTime<Utc>) -> String {
    let ago = |t: Option<DateTime<Utc>>| {
        crate::format::human_duration(t.map(|t| (now - t).num_seconds()).unwrap_or(0))
    };
    match state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", ago(state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(255),
            ago(state.finished_at)
        ),
    }
}

impl Status {
    /// `created`, `running`, `exited`: Docker's `State` words.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// Bytes of regular files (and symlinks) under `path`, not following links; unreadable parts
/// are skipped.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::images::ImageRecord;

    fn store_with_image() -> (tempfile::TempDir, Store, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"config");
        store
            .update_images(|i| -> Result<(), StoreError> {
                i.upsert(ImageRecord {
                    id: id.clone(),
                    names: vec!["docker.io/library/busybox:latest".into()],
                    repo_digests: vec![],
                    manifest: Digest::of(b"manifest"),
                    layers: vec![],
                    size: 1,
                    created: None,
                    added: Utc::now(),
                    architecture: "amd64".into(),
                    os: "linux".into(),
                });
                Ok(())
            })
            .unwrap();
        (dir, store, id)
    }

    fn record(id: &str, name: &str, image: &Digest) -> ContainerRecord {
        ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            image: "busybox".into(),
            image_id: image.clone(),
            created: Utc::now(),
            config: ContainerConfig::default(),
        }
    }

    fn id(prefix: &str) -> String {
        format!("{prefix:0<64}")
    }

    #[test]
    fn create_and_find() {
        let (_dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("abc1"), "/web", &image))
            .unwrap();
        store
            .create_container(&record(&id("abc2"), "db", &image))
            .unwrap();
        assert!(store.container_dir(&id("abc1")).join("upper").is_dir());
        assert!(store.container_dir(&id("abc1")).join("work").is_dir());
        assert_eq!(
            store.container_state(&id("abc1")).unwrap().status,
            Status::Created
        );
        let all = store.containers().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "web");
        assert_eq!(store.find_container("web").unwrap().id, id("abc1"));
        assert_eq!(store.find_container("/web").unwrap().id, id("abc1"));
        assert_eq!(store.find_container("abc2").unwrap().name, "db");
        assert_eq!(store.find_container(&id("abc1")).unwrap().name, "web");
        assert!(matches!(
            store.find_container("abc"),
            Err(ContainerError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            store.find_container("nope"),
            Err(ContainerError::NoSuch { .. })
        ));
        assert!(matches!(
            store.find_container(""),
            Err(ContainerError::NoSuch { .. })
        ));
        assert_eq!(store.containers_using_image(&image).unwrap().len(), 2);
        assert!(
            store
                .containers_using_image(&Digest::of(b"other"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_exact_name_wins_over_an_id_prefix() {
        let (_dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("beef"), "x", &image))
            .unwrap();
        store
            .create_container(&record(&id("cafe"), "beef", &image))
            .unwrap();
        assert_eq!(store.find_container("beef").unwrap().id, id("cafe"));
    }

    #[test]
    fn names_are_unique_and_valid() {
        let (_dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("a1"), "web", &image))
            .unwrap();
        let err = store
            .create_container(&record(&id("a2"), "/web", &image))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the container name \"/web\" is already in use by container {}; remove or rename that container, or choose another name",
                id("a1")
            )
        );
        // The failed create left nothing behind.
        assert!(!store.container_dir(&id("a2")).exists());
        for bad in ["", "-x", "a b", "a/b", "_x", "é"] {
            assert!(
                matches!(
                    store.create_container(&record(&id("a3"), bad, &image)),
                    Err(ContainerError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
        for good in ["a", "A.b-c_d", "9lives"] {
            assert!(normalize_name(good).is_ok());
        }
        assert!(matches!(
            store.create_container(&record("short", "x", &image)),
            Err(ContainerError::InvalidId { .. })
        ));
        assert!(matches!(
            store.create_container(&record(&id("a4"), "y", &Digest::of(b"gone"))),
            Err(ContainerError::ImageGone { .. })
        ));
        assert_eq!(store.containers().unwrap().len(), 1);
    }

    #[test]
    fn rename_and_remove() {
        let (dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("a1"), "web", &image))
            .unwrap();
        store
            .create_container(&record(&id("a2"), "db", &image))
            .unwrap();
        store.rename_container(&id("a1"), "/front").unwrap();
        assert_eq!(store.find_container("front").unwrap().id, id("a1"));
        assert!(store.find_container("web").is_err());
        assert!(matches!(
            store.rename_container(&id("a1"), "db"),
            Err(ContainerError::NameInUse { .. })
        ));
        assert!(matches!(
            store.rename_container(&id("a1"), "front"),
            Err(ContainerError::SameName { .. })
        ));
        assert!(matches!(
            store.rename_container(&id("a1"), "no good"),
            Err(ContainerError::InvalidName { .. })
        ));
        // A read-only directory inside upper/ does not stop the removal.
        let ro = store.container_upper_dir(&id("a1")).join("ro");
        fs::create_dir(&ro).unwrap();
        fs::write(ro.join("f"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        store.remove_container(&id("a1")).unwrap();
        assert!(!store.container_dir(&id("a1")).exists());
        assert_eq!(store.containers().unwrap().len(), 1);
        assert_eq!(
            fs::read_dir(dir.path().join("containers/.trash"))
                .unwrap()
                .count(),
            0
        );
        // The name is free again.
        store
            .create_container(&record(&id("a3"), "front", &image))
            .unwrap();
        assert!(store.remove_container("../x").is_err());
    }

    #[test]
    fn state_updates() {
        let (_dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("a1"), "web", &image))
            .unwrap();
        let code = store
            .update_container_state(&id("a1"), |s| {
                s.status = Status::Exited;
                s.exit_code = Some(3);
                7
            })
            .unwrap();
        assert_eq!(code, 7);
        let state = store.container_state(&id("a1")).unwrap();
        assert_eq!((state.status, state.exit_code), (Status::Exited, Some(3)));
    }

    fn running(pid: i32) -> ContainerState {
        let start = process_start_time(pid);
        ContainerState {
            status: Status::Running,
            pid: Some(pid),
            pid_start: start,
            monitor_pid: Some(pid),
            monitor_start: start,
            boot_id: boot_id(),
            started_at: Some(Utc::now()),
            ..ContainerState::default()
        }
    }

    #[test]
    fn observed_state_detects_ghosts() {
        let me = std::process::id() as i32;
        let alive = running(me);
        assert!(process_start_time(me).is_some());
        assert_eq!(observed_state(&alive), alive);

        // A dead monitor.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id() as i32;
        child.wait().unwrap();
        let mut s = alive.clone();
        s.monitor_pid = Some(dead);
        let o = observed_state(&s);
        assert_eq!(o.status, Status::Exited);
        assert_eq!(o.exit_code, Some(255));
        assert_eq!(o.error.as_deref(), Some("the container's monitor died"));
        assert!(o.finished_at.is_some());

        // A reused pid: alive, but it started at another time.
        let mut s = alive.clone();
        s.monitor_start = s.monitor_start.map(|t| t + 1);
        assert_eq!(observed_state(&s).status, Status::Exited);
        let mut s = alive.clone();
        s.pid_start = s.pid_start.map(|t| t + 1);
        s.exit_code = Some(0);
        let o = observed_state(&s);
        assert_eq!((o.status, o.exit_code), (Status::Exited, Some(0)));

        // Another boot.
        let mut s = alive.clone();
        s.boot_id = Some("not-this-boot".into());
        let o = observed_state(&s);
        assert_eq!(o.status, Status::Exited);
        assert_eq!(o.error.as_deref(), Some("the machine was rebooted"));

        // Other states are as recorded.
        let created = ContainerState::default();
        assert_eq!(observed_state(&created), created);
    }

    #[test]
    fn a_final_correction_is_written_back() {
        let (_dir, store, image) = store_with_image();
        store
            .create_container(&record(&id("a1"), "web", &image))
            .unwrap();
        let mut s = running(std::process::id() as i32);
        s.boot_id = Some("not-this-boot".into());
        store.set_container_state(&id("a1"), &s).unwrap();
        let o = store.observed_container_state(&id("a1")).unwrap();
        assert_eq!(o.status, Status::Exited);
        assert_eq!(store.container_state(&id("a1")).unwrap(), o);
    }

    #[test]
    fn start_time_parsing_copes_with_odd_names() {
        let me = std::process::id() as i32;
        let stat = fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        assert_eq!(process_start_time(me), fields[19].parse().ok());
        assert_eq!(process_start_time(-1), None);
        assert!(boot_id().is_some_and(|b| b.len() == 36));
    }

    #[test]
    fn generated_names_and_ids() {
        let id = new_container_id();
        assert!(is_container_id(&id));
        assert_ne!(id, new_container_id());
        let name = generate_name(&|_| false);
        let (adj, sur) = name.split_once('_').unwrap();
        assert!(super::super::names::ADJECTIVES.contains(&adj));
        assert!(super::super::names::SURNAMES.contains(&sur));
        assert!(normalize_name(&name).is_ok());
        // Everything plain is taken: a number is appended.
        let name = generate_name(&|n| !n.ends_with(|c: char| c.is_ascii_digit()));
        assert!(name.ends_with('2'), "{name}");
        let name = generate_name(&|n| !n.ends_with("7"));
        assert!(name.ends_with('7'), "{name}");
    }

    #[test]
    fn status_wording() {
        let now = Utc::now();
        let secs = |s: i64| Some(now - chrono::Duration::seconds(s));
        let mut s = ContainerState::default();
        assert_eq!(status_text(&s, now), "Created");
        s.status = Status::Running;
        s.started_at = secs(3);
        assert_eq!(status_text(&s, now), "Up 3 seconds");
        s.started_at = secs(0);
        assert_eq!(status_text(&s, now), "Up Less than a second");
        s.started_at = secs(70);
        assert_eq!(status_text(&s, now), "Up About a minute");
        s.status = Status::Exited;
        s.exit_code = Some(0);
        s.finished_at = secs(120);
        assert_eq!(status_text(&s, now), "Exited (0) 2 minutes ago");
        s.exit_code = Some(137);
        s.finished_at = secs(1);
        assert_eq!(status_text(&s, now), "Exited (137) 1 second ago");
    }
}
