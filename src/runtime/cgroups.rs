//! Resource limits (`--memory`, `--memory-swap`, `--cpus`, `--pids-limit`) through cgroup v2,
//! in a subtree the user has been delegated (as systemd does for a login session with
//! `Delegate=yes`), and never silently: where no delegated subtree offers the controllers a
//! limit needs, the container does not start and the error names what is missing.
//!
//! The delegated subtree is found from the process's own cgroup: its highest ancestor that
//! the user owns. A container's cgroup is `nook-<id>` directly below that root, with the
//! needed controllers enabled in the root's `cgroup.subtree_control` (which cgroup v2 allows
//! only while the root itself holds no process: systemd's user manager keeps its processes in
//! leaves for that reason). The monitor moves itself in before it unshares the cgroup
//! namespace and forks PID 1, so the container's processes, its fuse-overlayfs and its
//! network helper are all counted, and the container sees its own cgroup as `/`.
//!
//! Limits are data first ([`Limits::files`]), written in one place ([`Plan::apply`]).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The limits a container was created with; all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// `--memory-swap`, bytes of memory plus swap as Docker counts it; -1 for unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `--cpus`, in CPUs (1.5 = one and a half).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// `--pids-limit`; -1 or 0 for unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// The period `--cpus` is measured against, in microseconds (Docker's).
const CPU_PERIOD: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "{option} needs the `{controller}` controller of a cgroup v2 subtree delegated to you, and {why}; ask for a delegated cgroup (systemd: a login session, or `Delegate=yes` on user@.service) or run without {option}"
    )]
    NotAvailable {
        option: &'static str,
        controller: &'static str,
        why: String,
    },
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot enable the cgroup controllers {controllers} in `{path}`: it holds processes itself (cgroup v2 allows controllers only below a cgroup without processes); start nook from a cgroup below it, as systemd's user sessions do"
    )]
    RootBusy { path: PathBuf, controllers: String },
    #[error("invalid {option} `{value}`: {reason}")]
    Invalid {
        option: &'static str,
        value: String,
        reason: String,
    },
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self == &Limits::default()
    }

    /// Checks the options together, as Docker does.
    pub fn validate(&self) -> Result<(), CgroupError> {
        if let (Some(swap), Some(memory)) = (self.memory_swap, self.memory)
            && swap >= 0
            && (swap as u64) < memory
        {
            return Err(CgroupError::Invalid {
                option: "--memory-swap",
                value: swap.to_string(),
                reason: "it counts memory plus swap, so it cannot be below --memory".into(),
            });
        }
        if self.memory_swap.is_some() && self.memory.is_none() {
            return Err(CgroupError::Invalid {
                option: "--memory-swap",
                value: self.memory_swap.unwrap_or_default().to_string(),
                reason: "it needs --memory too".into(),
            });
        }
        if let Some(cpus) = self.cpus
            && !(cpus > 0.0 && cpus.is_finite())
        {
            return Err(CgroupError::Invalid {
                option: "--cpus",
                value: cpus.to_string(),
                reason: "it must be a positive number of CPUs, such as 0.5 or 2".into(),
            });
        }
        Ok(())
    }

    /// The controllers, each with the option that needs it.
    pub fn controllers(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.memory.is_some() {
            out.push(("memory", "--memory"));
        }
        if self.cpus.is_some() {
            out.push(("cpu", "--cpus"));
        }
        if self.pids.is_some() {
            out.push(("pids", "--pids-limit"));
        }
        out
    }

    /// The interface files to write, and their values.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(memory) = self.memory {
            out.push(("memory.max", memory.to_string()));
            // Docker: without --memory-swap the container may swap as much as --memory.
            let swap = match self.memory_swap {
                None => memory.to_string(),
                Some(-1) => "max".to_string(),
                Some(total) => (total as u64).saturating_sub(memory).to_string(),
            };
            out.push(("memory.swap.max", swap));
        }
        if let Some(cpus) = self.cpus {
            let quota = ((cpus * CPU_PERIOD as f64).round() as u64).max(1000);
            out.push(("cpu.max", format!("{quota} {CPU_PERIOD}")));
        }
        if let Some(pids) = self.pids {
            out.push((
                "pids.max",
                if pids <= 0 {
                    "max".to_string()
                } else {
                    pids.to_string()
                },
            ));
        }
        out
    }
}

/// Where a container's cgroup goes, and what to write there.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// The delegated root, whose `cgroup.subtree_control` gets the controllers.
    pub root: PathBuf,
    /// `root/nook-<id>`.
    pub cgroup: PathBuf,
    pub controllers: Vec<&'static str>,
    pub files: Vec<(&'static str, String)>,
}

/// This process's cgroup v2 directory, from `/proc/self/cgroup` and the mount table.
pub fn own_cgroup() -> Result<PathBuf, String> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 hierarchy")?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = mounts
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
                .flatten()
        })
        .ok_or("no cgroup v2 file system is mounted")?;
    Ok(mount.join(path.trim_start_matches('/')))
}

/// The plan for container `id` with `limits`, from this process's cgroup `own` (see
/// [`own_cgroup`]); `v1_mounted(controller)` says whether cgroup v1 holds a controller, for
/// the error. The user is `uid`.
pub fn plan(
    limits: &Limits,
    id: &str,
    own: Result<PathBuf, String>,
    uid: u32,
    v1_mounted: &dyn Fn(&str) -> bool,
) -> Result<Plan, CgroupError> {
    let needed = limits.controllers();
    let (first_controller, first_option) = needed[0];
    let unavailable = |controller, option, why: String| CgroupError::NotAvailable {
        option,
        controller,
        why,
    };
    let own = own.map_err(|why| unavailable(first_controller, first_option, why))?;
    let owned = |p: &Path| fs::metadata(p).is_ok_and(|m| m.uid() == uid);
    if !owned(&own) {
        return Err(unavailable(
            first_controller,
            first_option,
            format!(
                "your cgroup `{}` is not delegated to you (it is not yours)",
                own.display()
            ),
        ));
    }
    let root = highest_owned(&own, uid);
    let offered =
        fs::read_to_string(root.join("cgroup.controllers")).map_err(|source| CgroupError::Io {
            op: "read",
            path: root.join("cgroup.controllers"),
            source,
        })?;
    for (controller, option) in &needed {
        if !offered.split_whitespace().any(|c| c == *controller) {
            let mut why = format!(
                "your delegated cgroup `{}` does not offer it",
                root.display()
            );
            if v1_mounted(controller) {
                why.push_str(" (this machine attaches it to cgroup v1)");
            }
            return Err(unavailable(controller, option, why));
        }
    }
    Ok(Plan {
        cgroup: root.join(cgroup_name(id)),
        root,
        controllers: needed.iter().map(|(c, _)| *c).collect(),
        files: limits.files(),
    })
}

/// Whether a cgroup v1 hierarchy of `controller` is mounted.
pub fn v1_mounted(controller: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            line.split_once(" - ").is_some_and(|(_, right)| {
                let mut fields = right.split_whitespace();
                fields.next() == Some("cgroup")
                    && fields
                        .nth(1)
                        .is_some_and(|opts| opts.split(',').any(|o| o == controller))
            })
        })
    })
}

impl Plan {
    /// Enables the controllers, makes the container's cgroup, writes the limits, and moves
    /// this process into it.
    pub fn apply(&self) -> Result<(), CgroupError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| CgroupError::Io { op, path, source }
        };
        let control = self.root.join("cgroup.subtree_control");
        let enable: Vec<String> = self.controllers.iter().map(|c| format!("+{c}")).collect();
        if let Err(e) = fs::write(&control, enable.join(" ")) {
            return Err(if e.raw_os_error() == Some(libc::EBUSY) {
                CgroupError::RootBusy {
                    path: self.root.clone(),
                    controllers: self.controllers.join(", "),
                }
            } else {
                io("write", &control)(e)
            });
        }
        match fs::create_dir(&self.cgroup) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(io("create", &self.cgroup)(e));
            }
            _ => {}
        }
        for (name, value) in &self.files {
            let path = self.cgroup.join(name);
            // memory.swap.max is missing where swap accounting is off: the memory limit
            // still holds, and there is no swap to limit.
            if *name == "memory.swap.max" && !path.exists() {
                continue;
            }
            fs::write(&path, value).map_err(io("write", &path))?;
        }
        let procs = self.cgroup.join("cgroup.procs");
        fs::write(&procs, std::process::id().to_string())
            .map_err(io("move this process into", &procs))
    }
}

/// Removes a container's cgroup once its processes are gone (best effort: `rm`).
pub fn remove(id: &str) {
    if let Some(root) = delegated_root() {
        let _ = fs::remove_dir(root.join(cgroup_name(id)));
    }
}

/// Removes the cgroups of containers that no longer exist (`known` holds the IDs of those
/// that do). A `--rm` container cannot remove its own: its monitor is still inside when the
/// record goes, and nobody outside waits for a detached one. So every start with limits and
/// every prune sweeps what earlier ones left. Best effort: a cgroup that still has
/// processes refuses to go (EBUSY) and stays for a later sweep.
pub fn sweep(known: &[&str]) -> usize {
    delegated_root().map_or(0, |root| sweep_below(&root, known))
}

fn sweep_below(root: &Path, known: &[&str]) -> usize {
    let Ok(entries) = fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(short) = name.to_str().and_then(|n| n.strip_prefix("nook-")) else {
            continue;
        };
        let stale = short.len() == 12
            && short.bytes().all(|b| b.is_ascii_hexdigit())
            && !known.iter().any(|id| id.starts_with(short));
        if stale && fs::remove_dir(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn cgroup_name(id: &str) -> String {
    format!("nook-{}", &id[..id.len().min(12)])
}

/// The highest cgroup v2 directory above this process's that the user owns: where
/// [`plan`] puts containers' cgroups. None where nothing is delegated.
fn delegated_root() -> Option<PathBuf> {
    let own = own_cgroup().ok()?;
    let uid = nix::unistd::getuid().as_raw();
    fs::metadata(&own)
        .is_ok_and(|m| m.uid() == uid)
        .then(|| highest_owned(&own, uid))
}

/// The highest of `own` and its cgroup v2 ancestors that `uid` owns, without a gap.
fn highest_owned(own: &Path, uid: u32) -> PathBuf {
    let owned = |p: &Path| fs::metadata(p).is_ok_and(|m| m.uid() == uid);
    let mut root = own;
    while let Some(parent) = root.parent()
        && owned(parent)
        && parent.join("cgroup.controllers").exists()
    {
        root = parent;
    }
    root.to_path_buf()
}

#[cfg(test)]
mod tests;
