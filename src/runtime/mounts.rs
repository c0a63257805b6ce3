//! The container's file system as a plan of mount operations.
//!
//! Two pure functions build the plans as data: [`rootfs_plan`] (phase 1, run by the monitor
//! in its fresh mount namespace: assemble the root file system at the target) and
//! [`container_plan`] (phase 2, run by the container's PID 1 before `pivot_root`: /proc, /dev,
//! /sys, the user's mounts, the /etc files, masks and read-only paths). [`execute`] is the one
//! place that performs them, so the plans can be unit-tested as values and the executor stays
//! small.
//!
//! Every path inside the container (phase 2) is an [`InRoot`]: it is resolved at execution
//! time component by component inside the root, following the image's symlinks as if the root
//! were `/`, and refused if a `..` (given, or found in a symlink) would climb above the root.
//! Mount points that do not exist are created inside the root (a directory, or an empty file
//! when the source is not a directory).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;

use crate::layer::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use nix::fcntl::AtFlags;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, pivot_root};

/// Docker's default masked paths (moby `daemon/pkg/oci/defaults.go`, in its order): read as
/// empty in the container. `/proc/interrupts` joined them with GHSA-6fw5-f8r9-fgfm (its
/// per-CPU thermal interrupt counts are a power side channel); see also
/// [`default_masked_paths`].
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// The paths a container gets masked: [`DEFAULT_MASKED_PATHS`] and, as Docker masks them for
/// the same advisory, `/sys/devices/system/cpu/cpuN/thermal_throttle` for every CPU that has
/// one in `cpu_dir` (the host's `/sys/devices/system/cpu`; the monitor still sees it).
pub fn default_masked_paths(cpu_dir: &Path) -> Vec<String> {
    let mut paths: Vec<String> = DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    let mut cpus: Vec<(u32, String)> = fs::read_dir(cpu_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = name.strip_prefix("cpu")?.parse().ok()?;
            entry
                .path()
                .join("thermal_throttle")
                .exists()
                .then_some((number, name))
        })
        .collect();
    cpus.sort();
    paths.extend(
        cpus.into_iter()
            .map(|(_, name)| format!("/sys/devices/system/cpu/{name}/thermal_throttle")),
    );
    paths
}

/// Docker's default read-only paths (moby `oci/defaults.go`).
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Devices bound from the host into the container's /dev (a user namespace cannot mknod them).
pub const DEFAULT_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The mount data string of one mount(2) call must fit in a page, NUL included.
const MOUNT_DATA_MAX: usize = 4095;
/// Symlinks followed while resolving one path inside the root, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl Driver {
    pub fn parse(s: &str) -> Option<Driver> {
        match s {
            "overlay" => Some(Driver::Overlay),
            "fuse-overlayfs" => Some(Driver::FuseOverlayfs),
            "vfs" => Some(Driver::Vfs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::FuseOverlayfs => "fuse-overlayfs",
            Driver::Vfs => "vfs",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RootfsSpec {
    pub driver: Driver,
    /// Layer directories, BOTTOM first.
    pub lower: Vec<PathBuf>,
    /// The container's writable directory (exists; empty at first run).
    pub upper: PathBuf,
    /// Overlay's work directory (exists).
    pub work: PathBuf,
    /// Mount point for the merged root (exists, empty directory).
    pub target: PathBuf,
    /// How ids on disk are shown in the container when the namespace's layout differs from
    /// the store's (`--userns=keep-id`); only fuse-overlayfs can do this.
    pub shown_ids: Option<ShownIds>,
}

/// fuse-overlayfs's `uidmapping=` and `gidmapping=` values (STORAGE:SHOWN:COUNT,…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownIds {
    pub uid: String,
    pub gid: String,
}

#[derive(Debug, Clone)]
pub struct ContainerMounts {
    /// == `RootfsSpec::target`.
    pub rootfs: PathBuf,
    /// The user's binds and volumes, resolved to host paths.
    pub binds: Vec<Bind>,
    /// (destination, mount(8)-style options such as `size=64m,mode=1777,exec`).
    pub tmpfs: Vec<(String, String)>,
    /// (host file, container path such as `/etc/hosts`).
    pub etc_files: Vec<(PathBuf, String)>,
    /// Empty with --privileged.
    pub masked_paths: Vec<String>,
    /// Empty with --privileged.
    pub readonly_paths: Vec<String>,
    pub read_only_root: bool,
    /// Host devices (`/dev/null` …) to bind at the same path in the container.
    pub host_devices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// A path inside the container's root, resolved only when the operation runs (see the module
/// documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRoot {
    pub root: PathBuf,
    pub path: String,
}

impl InRoot {
    pub fn new(root: impl Into<PathBuf>, path: impl Into<String>) -> InRoot {
        InRoot {
            root: root.into(),
            path: path.into(),
        }
    }
}

/// One privileged step. Phase-1 steps take host paths; phase-2 steps take [`InRoot`] paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// `mount --make-rslave path`: nothing mounted from now on propagates back to the host,
    /// and `pivot_root` accepts the tree.
    MakeRslave {
        path: PathBuf,
    },
    /// Kernel overlay. `lower` is TOP first, as `lowerdir=` wants it.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        userxattr: bool,
    },
    /// The `fuse-overlayfs` helper (it daemonizes itself). `lower` is TOP first. With
    /// `shown_ids` it runs as root of the namespace and shows ids as they map.
    FuseOverlayfs {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        shown_ids: Option<ShownIds>,
    },
    /// vfs: copy the layers (BOTTOM first) into `to`, applying whiteouts and opaque
    /// directories, unless `marker` exists; writes `marker` when done.
    CopyLayers {
        lower: Vec<PathBuf>,
        to: PathBuf,
        marker: PathBuf,
    },
    /// Bind `source` (host) onto `target` (host), making the vfs root a mount point.
    BindRootfs {
        source: PathBuf,
        target: PathBuf,
    },
    /// `mount -t proc` (must run inside the container's PID namespace).
    Proc {
        at: InRoot,
        flags: MsFlags,
    },
    Tmpfs {
        at: InRoot,
        flags: MsFlags,
        data: String,
    },
    /// devpts `newinstance,ptmxmode=0666,mode=0620`, plus `gid=5` when gid 5 is mapped
    /// (decided at execution time from /proc/self/gid_map, see [`devpts_data`]).
    Devpts {
        at: InRoot,
        flags: MsFlags,
    },
    Mqueue {
        at: InRoot,
        flags: MsFlags,
    },
    /// Read-only sysfs; when the kernel refuses sysfs (EPERM: the network namespace is not
    /// owned by our user namespace), a recursive bind of the host's /sys, remounted read-only.
    Sysfs {
        at: InRoot,
        flags: MsFlags,
    },
    /// Bind a host path; the mount point is created as a directory or an empty file after
    /// the source's type. A missing source is an error.
    Bind {
        source: PathBuf,
        at: InRoot,
        recursive: bool,
        read_only: bool,
    },
    /// Create a symlink `at` → `target` (kept if it already points there).
    Symlink {
        at: InRoot,
        target: String,
    },
    /// Hide a path: /dev/null over a file, a read-only empty tmpfs over a directory. Skipped
    /// when the path does not exist.
    Mask {
        at: InRoot,
    },
    /// Bind the path onto itself and remount it read-only. Skipped when it does not exist.
    ReadOnly {
        at: InRoot,
    },
    /// Remount an existing mount point (host path) read-only, keeping its locked flags.
    RemountReadOnly {
        path: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cannot mount {fstype} on `{target}`")]
    Mount {
        fstype: &'static str,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind-mount `{from}` on `{target}`")]
    Bind {
        from: PathBuf,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remount `{target}` read-only")]
    RemountReadOnly {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make `{path}` a recursive slave mount")]
    Propagation {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bind source path `{}` does not exist", path.display())]
    BindSourceMissing { path: PathBuf },
    #[error(
        "the overlay mount options for {layers} layers take {len} bytes, more than the {max} one mount(2) call accepts"
    )]
    TooManyLayers {
        layers: usize,
        len: usize,
        max: usize,
    },
    #[error("an overlay needs at least one layer (mounting on `{target}`)")]
    NoLayers { target: PathBuf },
    #[error("path `{path}` cannot be passed to overlay: {why}")]
    OverlayPath { path: PathBuf, why: &'static str },
    #[error("`{binary}` is not installed (Debian package `{package}`)")]
    MissingBinary {
        binary: &'static str,
        package: &'static str,
    },
    #[error("cannot run `{binary}`")]
    Spawn {
        binary: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("`fuse-overlayfs` failed to mount `{target}`: exited with {status}: {stderr}")]
    FuseOverlayfs {
        target: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("mount destination `{path}` escapes the container root `{root}`")]
    Escape { root: PathBuf, path: String },
    #[error("mount destination `{path}` cannot be the container root itself")]
    DestinationIsRoot { path: String },
    #[error("too many levels of symbolic links resolving `{path}` inside `{root}`")]
    SymlinkLoop { root: PathBuf, path: String },
    #[error("mount point `{path}` has a non-directory `{component}` on its way")]
    NotADirectory { path: String, component: PathBuf },
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot pivot_root into `{path}`: {step} failed")]
    Pivot {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, MountError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MountError + 'a {
    move |source| MountError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Plans (pure)
// ---------------------------------------------------------------------------------------------

/// Phase 1: assemble the root file system at `spec.target`.
pub fn rootfs_plan(spec: &RootfsSpec) -> Vec<MountOp> {
    let top_first: Vec<PathBuf> = spec.lower.iter().rev().cloned().collect();
    let mut ops = vec![MountOp::MakeRslave { path: "/".into() }];
    match spec.driver {
        Driver::Overlay => ops.push(MountOp::Overlay {
            lower: top_first,
            upper: spec.upper.clone(),
            work: spec.work.clone(),
            target: spec.target.clone(),
            userxattr: true,
        }),
        Driver::FuseOverlayfs => ops.push(MountOp::FuseOverlayfs {
            lower: top_first,
            upper: spec.upper.clone(),
            work: spec.work.clone(),
            target: spec.target.clone(),
            shown_ids: spec.shown_ids.clone(),
        }),
        Driver::Vfs => {
            ops.push(MountOp::CopyLayers {
                lower: spec.lower.clone(),
                to: spec.upper.clone(),
                marker: vfs_marker(&spec.upper),
            });
            ops.push(MountOp::BindRootfs {
                source: spec.upper.clone(),
                target: spec.target.clone(),
            });
        }
    }
    ops
}

/// `upper/../vfs.done`: present once the layers have been copied into `upper`.
fn vfs_marker(upper: &Path) -> PathBuf {
    match upper.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("vfs.done"),
        _ => upper.join("..").join("vfs.done"),
    }
}

/// Phase 2: everything mounted inside the root before `pivot_root`, in Docker's layout.
///
/// Order: /proc; /dev (tmpfs, host devices, symlinks, pts, shm, mqueue); /sys; the user's
/// binds and tmpfs mounts, parents before children; the /etc files; masks and read-only
/// paths (after the user's mounts, so a user mount cannot uncover them); and last the
/// read-only remount of the root. The root goes read-only last because every mount point
/// above may have to be created in it; a bind remount changes only the root's own mount,
/// so the mounts on top of it (binds, tmpfs, /dev …) stay writable, as with Docker.
pub fn container_plan(m: &ContainerMounts) -> Vec<MountOp> {
    let root = &m.rootfs;
    let at = |path: &str| InRoot::new(root.clone(), path);
    let mut ops = vec![
        MountOp::Proc {
            at: at("/proc"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        },
        MountOp::Tmpfs {
            at: at("/dev"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            data: "mode=755,size=65536k".into(),
        },
    ];
    for device in &m.host_devices {
        ops.push(MountOp::Bind {
            source: device.into(),
            at: at(device),
            recursive: false,
            read_only: false,
        });
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        ops.push(MountOp::Symlink {
            at: at(link),
            target: target.into(),
        });
    }
    ops.extend([
        MountOp::Devpts {
            at: at("/dev/pts"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        },
        MountOp::Tmpfs {
            at: at("/dev/shm"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
            data: "mode=1777,size=65536k".into(),
        },
        MountOp::Mqueue {
            at: at("/dev/mqueue"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        },
        MountOp::Sysfs {
            at: at("/sys"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY,
        },
    ]);

    // The user's mounts, parents before children (a stable sort keeps the given order
    // between equally deep destinations), like Docker's sortMounts.
    let mut user: Vec<(usize, MountOp)> = Vec::new();
    for b in &m.binds {
        user.push((
            depth(&b.destination),
            MountOp::Bind {
                source: b.source.clone(),
                at: at(&b.destination),
                recursive: true,
                read_only: b.read_only,
            },
        ));
    }
    for (dest, options) in &m.tmpfs {
        let (flags, data) = tmpfs_options(options);
        user.push((
            depth(dest),
            MountOp::Tmpfs {
                at: at(dest),
                flags,
                data,
            },
        ));
    }
    user.sort_by_key(|(d, _)| *d);
    ops.extend(user.into_iter().map(|(_, op)| op));

    // Docker makes /etc/hosts, /etc/hostname and /etc/resolv.conf read-only along with the
    // root (moby `container.NetworkMounts`: writable = !ReadonlyRootfs).
    for (host, path) in &m.etc_files {
        ops.push(MountOp::Bind {
            source: host.clone(),
            at: at(path),
            recursive: false,
            read_only: m.read_only_root,
        });
    }
    for path in &m.masked_paths {
        ops.push(MountOp::Mask { at: at(path) });
    }
    for path in &m.readonly_paths {
        ops.push(MountOp::ReadOnly { at: at(path) });
    }
    if m.read_only_root {
        ops.push(MountOp::RemountReadOnly { path: root.clone() });
    }
    ops
}

fn depth(dest: &str) -> usize {
    Path::new(dest)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// Splits mount(8)-style tmpfs options into flags and data. Docker's defaults for `--tmpfs`
/// are `nosuid,nodev,noexec`; `exec`, `suid` and `dev` lift them.
pub fn tmpfs_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut data = Vec::new();
    for opt in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match opt {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags -= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags -= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags -= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags -= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "async" => flags -= MsFlags::MS_SYNCHRONOUS,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            // Propagation belongs to separate calls; a tmpfs in a private tree needs none.
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// devpts options; `gid=5` (tty) only when gid 5 exists in this user namespace, else the
/// kernel refuses the mount.
pub fn devpts_data(gid_map: &str) -> String {
    let mut data = String::from("newinstance,ptmxmode=0666,mode=0620");
    if id_mapped(gid_map, 5) {
        data.push_str(",gid=5");
    }
    data
}

fn id_mapped(map: &str, id: u64) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && f[0] <= id && id < f[0].saturating_add(f[2])
    })
}

/// The `lowerdir=…,upperdir=…,workdir=…` string for a kernel overlay, and the directory to
/// `chdir` into first: lower layers are given relative to their common parent, which keeps
/// the string inside one page for many more layers.
pub fn overlay_data(
    lower_top_first: &[PathBuf],
    upper: &Path,
    work: &Path,
    userxattr: bool,
) -> Result<(PathBuf, String)> {
    let common = common_parent(lower_top_first).unwrap_or_else(|| PathBuf::from("/"));
    let mut lowers = Vec::new();
    for layer in lower_top_first {
        let rel = layer.strip_prefix(&common).unwrap_or(layer);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        lowers.push(overlay_path_str(layer, rel)?);
    }
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        overlay_path_str(upper, upper)?,
        overlay_path_str(work, work)?
    );
    if userxattr {
        data.push_str(",userxattr");
    }
    if data.len() > MOUNT_DATA_MAX {
        return Err(MountError::TooManyLayers {
            layers: lower_top_first.len(),
            len: data.len(),
            max: MOUNT_DATA_MAX,
        });
    }
    Ok((common, data))
}

/// The text for `shown` (a form of `path`), refusing the separators overlay's option parser
/// would split on.
fn overlay_path_str<'a>(path: &Path, shown: &'a Path) -> Result<&'a str> {
    let text = shown.to_str().ok_or_else(|| MountError::OverlayPath {
        path: path.to_path_buf(),
        why: "it is not UTF-8",
    })?;
    if text.contains([',', ':', '\\']) {
        return Err(MountError::OverlayPath {
            path: path.to_path_buf(),
            why: "it contains `,`, `:` or `\\`",
        });
    }
    Ok(text)
}

/// The deepest directory that contains every path (a single path is its own parent).
fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first()?;
    let mut common: Vec<Component> = first.components().collect();
    for p in &paths[1..] {
        let n = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(n);
    }
    let path: PathBuf = common.iter().collect();
    (!path.as_os_str().is_empty()).then_some(path)
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

pub fn setup_rootfs(spec: &RootfsSpec) -> Result<()> {
    execute(&rootfs_plan(spec))
}

pub fn setup_container_mounts(m: &ContainerMounts) -> Result<()> {
    execute(&container_plan(m))
}

/// Performs the operations in order, stopping at the first failure. Meant for a
/// single-threaded process: the overlay mount changes the working directory for a moment.
pub fn execute(ops: &[MountOp]) -> Result<()> {
    ops.iter().try_for_each(execute_one)
}

fn execute_one(op: &MountOp) -> Result<()> {
    match op {
        MountOp::MakeRslave { path } => mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| MountError::Propagation {
            path: path.clone(),
            source: e.into(),
        }),
        MountOp::Overlay {
            lower,
            upper,
            work,
            target,
            userxattr,
        } => mount_overlay(lower, upper, work, target, *userxattr),
        MountOp::FuseOverlayfs {
            lower,
            upper,
            work,
            target,
            shown_ids,
        } => mount_fuse_overlayfs(lower, upper, work, target, shown_ids.as_ref()),
        MountOp::CopyLayers { lower, to, marker } => copy_layers(lower, to, marker),
        MountOp::BindRootfs { source, target } => bind(source, target, true),
        MountOp::Proc { at, flags } => {
            let target = mount_point(at, Kind::Dir)?;
            fs_mount("proc", &target, *flags, None)
        }
        MountOp::Tmpfs { at, flags, data } => {
            let target = mount_point(at, Kind::Dir)?;
            fs_mount("tmpfs", &target, *flags, Some(data))
        }
        MountOp::Devpts { at, flags } => {
            let target = mount_point(at, Kind::Dir)?;
            let gid_map = fs::read_to_string("/proc/self/gid_map")
                .map_err(io_err("read", Path::new("/proc/self/gid_map")))?;
            fs_mount("devpts", &target, *flags, Some(&devpts_data(&gid_map)))
        }
        MountOp::Mqueue { at, flags } => {
            let target = mount_point(at, Kind::Dir)?;
            fs_mount("mqueue", &target, *flags, None)
        }
        MountOp::Sysfs { at, flags } => {
            let target = mount_point(at, Kind::Dir)?;
            match fs_mount("sysfs", &target, *flags, None) {
                Err(MountError::Mount { source, .. })
                    if source.raw_os_error() == Some(libc::EPERM) =>
                {
                    bind(Path::new("/sys"), &target, true)?;
                    remount_tree_read_only(&target)
                }
                other => other,
            }
        }
        MountOp::Bind {
            source,
            at,
            recursive,
            read_only,
        } => {
            let meta = match fs::metadata(source) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(MountError::BindSourceMissing {
                        path: source.clone(),
                    });
                }
                Err(e) => return Err(io_err("stat", source)(e)),
            };
            let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
            let target = mount_point(at, kind)?;
            bind(source, &target, *recursive)?;
            if *read_only {
                remount_read_only(&target)?;
            }
            Ok(())
        }
        MountOp::Symlink { at, target } => make_symlink(at, target),
        MountOp::Mask { at } => {
            let Some(path) = existing(at)? else {
                return Ok(());
            };
            let meta = fs::metadata(&path).map_err(io_err("stat", &path))?;
            if meta.is_dir() {
                fs_mount("tmpfs", &path, MsFlags::MS_RDONLY, None)
            } else {
                bind(Path::new("/dev/null"), &path, false)
            }
        }
        MountOp::ReadOnly { at } => {
            let Some(path) = existing(at)? else {
                return Ok(());
            };
            bind(&path, &path, true)?;
            remount_read_only(&path)
        }
        MountOp::RemountReadOnly { path } => remount_read_only(path),
    }
}

fn fs_mount(fstype: &'static str, target: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    let data = data.filter(|d| !d.is_empty());
    mount(Some(fstype), target, Some(fstype), flags, data).map_err(|e| MountError::Mount {
        fstype,
        target: target.to_path_buf(),
        source: e.into(),
    })
}

fn bind(source: &Path, target: &Path, recursive: bool) -> Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>).map_err(|e| MountError::Bind {
        from: source.to_path_buf(),
        target: target.to_path_buf(),
        source: e.into(),
    })
}

/// Remounts one mount read-only. Inside a user namespace the kernel refuses (EPERM) to clear
/// nosuid/nodev/noexec on a mount that came from a more privileged namespace, and a remount
/// that omits them asks for exactly that, so they are read back and kept.
fn remount_read_only(target: &Path) -> Result<()> {
    let err = |e: Errno| MountError::RemountReadOnly {
        target: target.to_path_buf(),
        source: e.into(),
    };
    let current = statvfs(target).map_err(err)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if current.contains(st) {
            flags |= ms;
        }
    }
    // Without any atime flag the kernel keeps the mount's atime setting (also locked).
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(err)
}

/// Remounts `target` and every mount below it read-only (a recursive bind of the host's /sys
/// brings its submounts along).
fn remount_tree_read_only(target: &Path) -> Result<()> {
    // mountinfo shows canonical paths.
    let target = &fs::canonicalize(target).map_err(io_err("resolve", target))?;
    let mountinfo = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(mountinfo).map_err(io_err("read", mountinfo))?;
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(target))
        .collect();
    points.sort_by_key(|p| p.components().count());
    points.dedup();
    if points.first() != Some(target) {
        points.insert(0, target.clone());
    }
    points.iter().try_for_each(|p| remount_read_only(p))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> OsString {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from(std::ffi::OsStr::from_bytes(&out))
}

fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
) -> Result<()> {
    if lower.is_empty() {
        return Err(MountError::NoLayers {
            target: target.to_path_buf(),
        });
    }
    let abs = |p: &Path| std::path::absolute(p).map_err(io_err("resolve", p));
    let lower = lower.iter().map(|p| abs(p)).collect::<Result<Vec<_>>>()?;
    let (upper, work, target) = (abs(upper)?, abs(work)?, abs(target)?);
    let (dir, data) = overlay_data(&lower, &upper, &work, userxattr)?;
    let cwd =
        std::env::current_dir().map_err(io_err("read the current directory", Path::new(".")))?;
    std::env::set_current_dir(&dir).map_err(io_err("change directory to", &dir))?;
    let mounted = mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    );
    let restored = std::env::set_current_dir(&cwd);
    mounted.map_err(|e| MountError::Mount {
        fstype: "overlay",
        target: target.clone(),
        source: e.into(),
    })?;
    restored.map_err(io_err("change directory back to", &cwd))
}

fn mount_fuse_overlayfs(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    shown_ids: Option<&ShownIds>,
) -> Result<()> {
    if lower.is_empty() {
        return Err(MountError::NoLayers {
            target: target.to_path_buf(),
        });
    }
    let abs = |p: &Path| std::path::absolute(p).map_err(io_err("resolve", p));
    let mut lowers = Vec::new();
    for l in lower {
        let l = abs(l)?;
        lowers.push(overlay_path_str(&l, &l)?.to_string());
    }
    let (upper, work) = (abs(upper)?, abs(work)?);
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        overlay_path_str(&upper, &upper)?,
        overlay_path_str(&work, &work)?
    );
    let mut command = Command::new("fuse-overlayfs");
    if let Some(ids) = shown_ids {
        options.push_str(&format!(",uidmapping={},gidmapping={}", ids.uid, ids.gid));
        // The caller may be the user's own id inside (keep-id), whose capabilities an exec
        // drops; mounting needs them, and root of the namespace keeps them.
        crate::sys::run_as_namespace_root(&mut command);
    }
    // In the foreground, as a child that the kernel kills when its parent (the monitor) dies
    // however it dies: a daemonized fuse-overlayfs would keep the mount namespace, and so
    // itself, alive after a SIGKILLed monitor. Its messages go to a file beside the upper
    // directory: a pipe nobody reads would block it.
    crate::sys::die_with_parent_on_exec(&mut command);
    let log_path = upper.with_file_name("fuse-overlayfs.log");
    let log = fs::File::create(&log_path).map_err(io_err("create", &log_path))?;
    let mut child = command
        .arg("-f")
        .arg("-o")
        .arg(&options)
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                MountError::MissingBinary {
                    binary: "fuse-overlayfs",
                    package: "fuse-overlayfs",
                }
            } else {
                MountError::Spawn {
                    binary: "fuse-overlayfs",
                    source: e,
                }
            }
        })?;
    let failed = |status: String| MountError::FuseOverlayfs {
        target: target.to_path_buf(),
        status,
        stderr: fs::read_to_string(&log_path)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    // Mounted when the target is no longer on its parent's file system.
    let parent = target.parent().unwrap_or(Path::new("/"));
    let parent_dev = fs::metadata(parent).map_err(io_err("stat", parent))?.dev();
    let deadline = std::time::Instant::now() + FUSE_MOUNT_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(io_err("wait for", target))? {
            return Err(failed(status.to_string()));
        }
        // A target that cannot be looked at is "not mounted yet": fuse-overlayfs then exits
        // with its own, better, message.
        if fs::metadata(target).is_ok_and(|m| m.dev() != parent_dev) {
            FUSE_DAEMON.store(child.id() as i32, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!(
                "no mount after {} s",
                FUSE_MOUNT_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
}

const FUSE_MOUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The fuse-overlayfs child this process started last (0 when none).
static FUSE_DAEMON: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Waits (briefly) for the fuse-overlayfs child to finish once its mount is gone, so the
/// upper directory is no longer written when the caller removes it.
pub fn reap_fuse_daemon() {
    let pid = FUSE_DAEMON.swap(0, std::sync::atomic::Ordering::Relaxed);
    if pid <= 0 {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            _ => return,
        }
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Whether the kernel overlay (with `userxattr`) can be mounted here: mounts a one-layer
/// overlay under `scratch` and looks through it. Run inside nook's user and mount namespace.
pub fn overlay_works(scratch: &Path) -> bool {
    let dir = scratch.join(format!("overlay-probe-{}", std::process::id()));
    let ok = probe_overlay(&dir).unwrap_or(false);
    let _ = fs::remove_dir_all(&dir);
    ok
}

fn probe_overlay(dir: &Path) -> io::Result<bool> {
    let _ = fs::remove_dir_all(dir);
    for sub in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(dir.join("lower/probe"), b"")?;
    let merged = dir.join("merged");
    let mounted = mount_overlay(
        &[dir.join("lower")],
        &dir.join("upper"),
        &dir.join("work"),
        &merged,
        true,
    );
    if mounted.is_err() {
        return Ok(false);
    }
    let seen = merged.join("probe").exists();
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    Ok(seen)
}

/// Makes `new_root` the root: `chdir(new_root)`, `pivot_root(".", ".")`, detach the old
/// root stacked underneath, `chdir("/")`. Needs no directory for the old root.
///
/// `pivot_root` moves the root and working directory of EVERY process in the mount
/// namespace whose root is the old one; call this in a mount namespace of its own (the
/// container's PID 1 can `unshare(CLONE_NEWNS)` while single-threaded) so the monitor
/// keeps the host's view.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    let err = |step: &'static str| {
        move |e: Errno| MountError::Pivot {
            path: new_root.to_path_buf(),
            step,
            source: e.into(),
        }
    };
    nix::unistd::chdir(new_root).map_err(err("chdir"))?;
    pivot_root(".", ".").map_err(err("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(err("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(err("chdir /"))
}

// ---------------------------------------------------------------------------------------------
// Paths inside the root
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// Resolves `at` inside its root without leaving it: symlinks are followed as if the root
/// were `/` (an absolute target restarts at the root), and any `..` that would climb above
/// the root, given or met in a symlink, is refused. Components that do not exist are kept
/// as they are. Returns the host path.
pub fn resolve_in_root(at: &InRoot) -> Result<PathBuf> {
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_components(&mut todo, Path::new(&at.path), false);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            if done.pop().is_none() {
                return Err(MountError::Escape {
                    root: at.root.clone(),
                    path: at.path.clone(),
                });
            }
            continue;
        }
        let host = join_all(&at.root, &done).join(&c);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(MountError::SymlinkLoop {
                        root: at.root.clone(),
                        path: at.path.clone(),
                    });
                }
                let target = fs::read_link(&host).map_err(io_err("read the symlink", &host))?;
                if target.is_absolute() {
                    done.clear();
                }
                push_components(&mut todo, &target, true);
            }
            Ok(_) => done.push(c),
            // Missing (or below a non-directory): nothing further to resolve; creating the
            // mount point reports it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                done.push(c)
            }
            Err(e) => return Err(io_err("look up", &host)(e)),
        }
    }
    Ok(join_all(&at.root, &done))
}

/// Puts the components of `path` at the front of `todo` (`front`) or at its back.
fn push_components(todo: &mut VecDeque<OsString>, path: &Path, front: bool) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    if front {
        for p in parts.into_iter().rev() {
            todo.push_front(p);
        }
    } else {
        todo.extend(parts);
    }
}

fn join_all(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// The resolved path when it exists, for masks and read-only paths.
fn existing(at: &InRoot) -> Result<Option<PathBuf>> {
    let path = resolve_in_root(at)?;
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("look up", &path)(e)),
    }
}

/// Resolves `at` and creates what is missing of it: directories on the way, and the last
/// component as a directory or an empty file.
fn mount_point(at: &InRoot, kind: Kind) -> Result<PathBuf> {
    let path = resolve_in_root(at)?;
    let rel = path
        .strip_prefix(&at.root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let parts: Vec<&OsStr> = rel.iter().collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err(MountError::DestinationIsRoot {
            path: at.path.clone(),
        });
    };
    let mut cur = at.root.clone();
    for part in parents {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(MountError::NotADirectory {
                    path: at.path.clone(),
                    component: cur,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&cur)?,
            Err(e) => return Err(io_err("look up", &cur)(e)),
        }
    }
    cur.push(last);
    match fs::symlink_metadata(&cur) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => match kind {
            Kind::Dir => make_dir(&cur)?,
            Kind::File => {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&cur)
                    .map_err(io_err("create the mount point", &cur))?;
            }
        },
        Err(e) => return Err(io_err("look up", &cur)(e)),
    }
    Ok(cur)
}

fn make_dir(path: &Path) -> Result<()> {
    match DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create the directory", path)(e)),
    }
}

fn make_symlink(at: &InRoot, target: &str) -> Result<()> {
    let resolved = resolve_in_root(&InRoot::new(
        at.root.clone(),
        Path::new(&at.path)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ))?;
    let name = Path::new(&at.path)
        .file_name()
        .ok_or_else(|| MountError::DestinationIsRoot {
            path: at.path.clone(),
        })?;
    let link = resolved.join(name);
    match std::os::unix::fs::symlink(target, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::read_link(&link) {
            Ok(existing) if existing == Path::new(target) => Ok(()),
            _ => Err(io_err("create the symlink", &link)(e)),
        },
        Err(e) => Err(io_err("create the symlink", &link)(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// vfs: copying layers
// ---------------------------------------------------------------------------------------------

const OPAQUE_XATTRS: &[&str] = &["user.overlay.opaque", "trusted.overlay.opaque"];

fn copy_layers(lower: &[PathBuf], to: &Path, marker: &Path) -> Result<()> {
    if marker.exists() {
        return Ok(());
    }
    // A copy interrupted before the marker was written starts over.
    empty_dir(to)?;
    for layer in lower {
        merge_dir(layer, to)?;
    }
    nix::unistd::sync();
    fs::write(marker, b"").map_err(io_err("write", marker))
}

fn empty_dir(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_err("read the directory", dir))? {
        let entry = entry.map_err(io_err("read the directory", dir))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("look up", path)(e)),
    };
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_err("remove", path))
    } else {
        fs::remove_file(path).map_err(io_err("remove", path))
    }
}

fn is_opaque(dir: &Path) -> Result<bool> {
    crate::layer::is_opaque_dir(dir, OPAQUE_XATTRS).map_err(io_err("read the xattrs of", dir))
}

/// Applies the layer directory `src` onto `dst` (both directories).
fn merge_dir(src: &Path, dst: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(src)
        .map_err(io_err("read the directory", src))?
        .collect::<io::Result<_>>()
        .map_err(io_err("read the directory", src))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let from = entry.path();
        let to = dst.join(&name);
        let bytes = name.as_bytes();
        if bytes == OPAQUE_MARKER {
            continue;
        }
        if let Some(hidden) = bytes.strip_prefix(WHITEOUT_PREFIX) {
            remove_any(&dst.join(OsStr::from_bytes(hidden)))?;
            continue;
        }
        let meta = fs::symlink_metadata(&from).map_err(io_err("look up", &from))?;
        if crate::layer::is_whiteout_device(&meta) {
            remove_any(&to)?;
            continue;
        }
        if meta.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => {
                    if is_opaque(&from)? {
                        empty_dir(&to)?;
                    }
                }
                Ok(_) => {
                    remove_any(&to)?;
                    make_dir(&to)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&to)?,
                Err(e) => return Err(io_err("look up", &to)(e)),
            }
            // Sets the directory's own metadata once its entries are in.
            merge_dir(&from, &to)?;
        } else {
            remove_any(&to)?;
            copy_node(&from, &to, &meta)?;
            copy_metadata(&from, &to, &meta)?;
        }
    }
    // The directory's own mode, owner, xattrs and times, last so its entries do not
    // disturb them (for the layer's top directory: the merged root's).
    let meta = fs::symlink_metadata(src).map_err(io_err("look up", src))?;
    copy_metadata(src, dst, &meta)
}

fn copy_node(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_file() {
        // Each hard link becomes a copy of its own.
        fs::copy(from, to).map(drop).map_err(io_err("copy", from))
    } else if ft.is_symlink() {
        let target = fs::read_link(from).map_err(io_err("read the symlink", from))?;
        std::os::unix::fs::symlink(&target, to).map_err(io_err("create the symlink", to))
    } else {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else if ft.is_fifo() {
            SFlag::S_IFIFO
        } else {
            SFlag::S_IFSOCK
        };
        mknod(
            to,
            kind,
            Mode::from_bits_truncate(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .map_err(|e| io_err("create the special file", to)(e.into()))
    }
}

/// Owner, then mode (chown clears set-id bits), then xattrs, then times.
fn copy_metadata(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
    fchownat(
        None,
        to,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("change the owner of", to)(e.into()))?;
    let symlink = meta.file_type().is_symlink();
    if !symlink {
        fs::set_permissions(to, Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err("change the mode of", to))?;
    }
    let names = match xattr::list(from) {
        Ok(names) => names.collect::<Vec<_>>(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Vec::new(),
        Err(e) => return Err(io_err("list the xattrs of", from)(e)),
    };
    for name in names {
        let text = name.to_string_lossy();
        // Overlay bookkeeping means nothing once merged; trusted.* needs real root.
        if text.starts_with("user.overlay.") || text.starts_with("trusted.") {
            continue;
        }
        if let Some(value) = xattr::get(from, &name).map_err(io_err("read the xattrs of", from))? {
            xattr::set(to, &name, &value).map_err(io_err("set the xattrs of", to))?;
        }
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, to, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io_err("set the times of", to)(e.into()))
}

#[cfg(test)]
mod tests;
