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
    /// overlay, fuse-overlayfs or vfs: chosen at create time.
    pub storage_driver: String,
    /// `none` until networking arrives.
    pub network: String,
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
        }
    }
}

impl Store {
    /// `containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}
