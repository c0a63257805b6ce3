//! `nook system doctor`'s verdicts: pure functions from [`Facts`] (gathered in one place,
//! `commands::doctor::gather`) to [`Finding`]s, so each is unit-tested with made-up facts.
//! The runtime's errors use the same verdicts for their hints (`error::hint`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runtime::idmap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// The exact command that fixes it (empty when OK).
    pub fix: String,
    /// Whether the fix needs the administrator (its commands use `sudo`).
    pub needs_admin: bool,
}

fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        status: Status::Ok,
        detail: detail.into(),
        fix: String::new(),
        needs_admin: false,
    }
}

fn bad(
    check: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    let fix = fix.into();
    Finding {
        check,
        status,
        detail: detail.into(),
        needs_admin: fix.starts_with("sudo ") || fix.contains(" sudo "),
        fix,
    }
}

/// The user-namespace sysctls (raw file contents, `None` when the file does not exist) and
/// the result of making one.
#[derive(Debug, Clone, PartialEq)]
pub struct UsernsFacts {
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian's and Ubuntu's older switch).
    pub unprivileged_userns_clone: Option<String>,
    /// `/proc/sys/user/max_user_namespaces`.
    pub max_user_namespaces: Option<String>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu 23.10 and later).
    pub apparmor_restrict: Option<String>,
    /// Making a user namespace in a child and mapping our ids in it: why not, if it failed.
    pub probe: Result<(), String>,
}

impl UsernsFacts {
    /// The sysctls as they are now, with `probe` for the result of trying.
    pub fn read(probe: Result<(), String>) -> UsernsFacts {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        UsernsFacts {
            unprivileged_userns_clone: read("/proc/sys/kernel/unprivileged_userns_clone"),
            max_user_namespaces: read("/proc/sys/user/max_user_namespaces"),
            apparmor_restrict: read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            probe,
        }
    }
}

/// A setuid id-mapping helper as found on `PATH`.
#[derive(Debug, Clone, PartialEq)]
pub enum HelperFact {
    Missing,
    Present {
        path: PathBuf,
        /// Owned by root with the setuid bit.
        setuid_root: bool,
        /// Has a `security.capability` xattr (file capabilities instead of setuid).
        file_caps: bool,
    },
}

impl HelperFact {
    /// `newuidmap` or `newgidmap` as found on PATH (where nook runs it from): whether it
    /// is setuid or has file capabilities, either of which lets it map ids.
    pub fn find(name: &str) -> HelperFact {
        use std::os::unix::fs::PermissionsExt;
        let Some(path) = crate::network::find_program(name) else {
            return HelperFact::Missing;
        };
        // Only the bit: inside nook's user namespace root's files show as nobody's.
        let setuid_root =
            std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0);
        let file_caps = xattr::get(&path, "security.capability").is_ok_and(|v| v.is_some());
        HelperFact::Present {
            path,
            setuid_root,
            file_caps,
        }
    }
}

/// `XDG_RUNTIME_DIR` as the environment gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeDirFact {
    Unset,
    /// Set, but not an existing directory (or not an absolute path).
    Unusable(String),
    Present {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
}

/// cgroup v2 delegation, as `runtime::cgroups` finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupFacts {
    /// `v2`, `v1 (hybrid …)` or `v1`.
    pub version: String,
    /// The process's cgroup, or why there is none.
    pub own: Result<PathBuf, String>,
    /// The highest cgroup the user owns, when their own is theirs.
    pub delegated_root: Option<PathBuf>,
    /// The controllers that root offers.
    pub controllers: Vec<String>,
}

/// Everything the checks look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub userns: UsernsFacts,
    pub newuidmap: HelperFact,
    pub newgidmap: HelperFact,
    /// `/etc/subuid` and `/etc/subgid` (`None`: missing or unreadable).
    pub subuid: Option<String>,
    pub subgid: Option<String>,
    pub runtime_dir: RuntimeDirFact,
    pub store: PathBuf,
    /// statfs `f_type` of the store (or of its nearest existing parent).
    pub store_fs_magic: Option<i64>,
    /// Bytes an unprivileged user may still write there.
    pub store_free: Option<u64>,
    /// Whether the kernel overlay mounts in a user namespace, or why it could not be tried.
    pub overlay: Result<bool, String>,
    pub fuse_overlayfs: Option<PathBuf>,
    /// Opening the device read-write: why not, if it failed.
    pub dev_fuse: Result<(), String>,
    pub dev_net_tun: Result<(), String>,
    pub pasta: Option<PathBuf>,
    pub slirp4netns: Option<PathBuf>,
    pub cgroups: CgroupFacts,
    /// `/proc/sys/net/ipv4/ping_group_range`.
    pub ping_group_range: Option<String>,
    /// `/proc/sys/net/ipv4/ip_unprivileged_port_start`.
    pub unprivileged_port_start: Option<String>,
    /// The configuration files in use (config.toml, registries.toml), or why they cannot be.
    pub config: Result<Vec<PathBuf>, String>,
}

/// Below this, the store's disk is reported as nearly full.
pub const LOW_SPACE: u64 = 1 << 30;
/// Ids a subordinate range needs for images' usual owners (up to 65535).
pub const RANGE_SIZE: u32 = 65536;

/// Every check, in the order printed.
pub fn checks(f: &Facts) -> Vec<Finding> {
    vec![
        userns(&f.userns),
        helper("newuidmap", &f.newuidmap),
        helper("newgidmap", &f.newgidmap),
        subids("subuid", "/etc/subuid", f.subuid.as_deref(), f),
        subids("subgid", "/etc/subgid", f.subgid.as_deref(), f),
        runtime_dir(&f.runtime_dir, f.uid),
        store_fs(f),
        overlay(f),
        dev_fuse(&f.dev_fuse),
        dev_net_tun(&f.dev_net_tun),
        network_helpers(f.pasta.as_deref(), f.slirp4netns.as_deref()),
        cgroups(&f.cgroups),
        ping_group_range(f.ping_group_range.as_deref(), f.gid),
        unprivileged_ports(f.unprivileged_port_start.as_deref()),
        disk_space(f),
        configuration(&f.config),
    ]
}

/// The exit status: 1 if any check FAILs.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.status == Status::Fail))
}

pub fn userns(u: &UsernsFacts) -> Finding {
    const CHECK: &str = "user namespaces";
    fn on(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim)
    }
    let why = match &u.probe {
        Ok(()) => {
            return ok(
                CHECK,
                "an unprivileged process can make a user namespace and map its ids there",
            );
        }
        Err(why) => why,
    };
    if on(&u.unprivileged_userns_clone) == Some("0") {
        return bad(
            CHECK,
            Status::Fail,
            format!(
                "kernel.unprivileged_userns_clone is 0: user namespaces are for root only ({why})"
            ),
            "sudo sysctl -w kernel.unprivileged_userns_clone=1",
        );
    }
    if on(&u.max_user_namespaces) == Some("0") {
        return bad(
            CHECK,
            Status::Fail,
            format!("user.max_user_namespaces is 0: no user namespace can be made ({why})"),
            "sudo sysctl -w user.max_user_namespaces=28633",
        );
    }
    if on(&u.apparmor_restrict) == Some("1") {
        return bad(
            CHECK,
            Status::Fail,
            format!(
                "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns is 1): {why}"
            ),
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        );
    }
    bad(
        CHECK,
        Status::Fail,
        format!(
            "cannot make a user namespace: {why} (a seccomp filter or a container around nook may forbid it)"
        ),
        "run nook directly on the host, outside containers and sandboxes that forbid unshare(CLONE_NEWUSER)",
    )
}

pub fn helper(name: &'static str, fact: &HelperFact) -> Finding {
    let cap = if name == "newuidmap" {
        "cap_setuid"
    } else {
        "cap_setgid"
    };
    match fact {
        HelperFact::Missing => bad(
            name,
            Status::Warn,
            format!(
                "{name} is not on PATH: nook uses a single-id user namespace, where files images give to other users appear as root's"
            ),
            "sudo apt-get install uidmap",
        ),
        HelperFact::Present {
            path,
            setuid_root,
            file_caps,
        } if !setuid_root && !file_caps => bad(
            name,
            Status::Fail,
            format!(
                "{} is neither setuid root nor has file capabilities: it cannot map ids",
                path.display()
            ),
            format!(
                "sudo setcap {cap}+ep {} (or: sudo chmod u+s {})",
                path.display(),
                path.display()
            ),
        ),
        HelperFact::Present {
            path, setuid_root, ..
        } => ok(
            name,
            format!(
                "{} ({})",
                path.display(),
                if *setuid_root {
                    "setuid root"
                } else {
                    "file capabilities"
                }
            ),
        ),
    }
}

/// Every range of a subid file: (owner, start, count).
fn all_ranges(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let owner = f.next()?.to_string();
            let start = f.next()?.trim().parse().ok()?;
            let count = f.next()?.trim().parse().ok()?;
            Some((owner, start, count))
        })
        .collect()
}

/// The first range of [`RANGE_SIZE`] ids that starts at a multiple of [`RANGE_SIZE`], at or
/// above 100000, and overlaps no range of either file: the one `helpers/subids` gives.
pub fn free_range(files: &[Option<&str>]) -> u64 {
    let taken: Vec<(u64, u64)> = files
        .iter()
        .flatten()
        .flat_map(|t| all_ranges(t))
        .map(|(_, start, count)| (start, start.saturating_add(count)))
        .collect();
    let size = u64::from(RANGE_SIZE);
    let mut start = 100_000u64.div_ceil(size) * size;
    loop {
        let clash = taken
            .iter()
            .filter(|(lo, hi)| *lo < start + size && start < *hi)
            .map(|(_, hi)| *hi)
            .max();
        match clash {
            None => return start,
            Some(hi) => start = hi.div_ceil(size).saturating_mul(size),
        }
    }
}

/// The administrator's command that gives `user` a free range of [`RANGE_SIZE`] ids in
/// /etc/subuid (`uids`) and/or /etc/subgid (`gids`); `subuid`, `subgid`: the files' text.
pub fn add_range_fix(
    user: &str,
    uids: bool,
    gids: bool,
    subuid: Option<&str>,
    subgid: Option<&str>,
) -> String {
    let start = free_range(&[subuid, subgid]);
    let end = start + u64::from(RANGE_SIZE) - 1;
    let mut flags = Vec::new();
    if uids {
        flags.push(format!("--add-subuids {start}-{end}"));
    }
    if gids {
        flags.push(format!("--add-subgids {start}-{end}"));
    }
    format!("sudo usermod {} {user}", flags.join(" "))
}

/// [`add_range_fix`] for the user running nook, as the files are now; inside nook's user
/// namespace too, where the user shows as root.
pub fn add_range_fix_for_me() -> String {
    let uid = nix::unistd::getuid().as_raw();
    let host_uid = std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|t| {
            idmap::parse_proc_map(&t)
                .into_iter()
                .find(|m| (m.inside..m.inside.saturating_add(m.count)).contains(&uid))
                .map(|m| m.outside + (uid - m.inside))
        })
        .unwrap_or(uid);
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(host_uid))
        .ok()
        .flatten()
        .map_or_else(|| host_uid.to_string(), |u| u.name);
    let read = |p: &str| std::fs::read_to_string(p).ok();
    add_range_fix(
        &user,
        true,
        true,
        read("/etc/subuid").as_deref(),
        read("/etc/subgid").as_deref(),
    )
}

fn subids(check: &'static str, file: &str, text: Option<&str>, f: &Facts) -> Finding {
    let add = add_range_fix(
        &f.user,
        check == "subuid",
        check == "subgid",
        f.subuid.as_deref(),
        f.subgid.as_deref(),
    );
    // usermod's flags for this file: --del-subuids / --del-subgids.
    let flag = |verb: &str| format!("--{verb}-{check}s");
    let text = text.unwrap_or("");
    let mine = idmap::parse_subid(text, &f.user, f.uid);
    if mine.is_empty() {
        return bad(
            check,
            Status::Warn,
            format!(
                "{} has no range in {file}: nook uses a single-id user namespace, where files images give to other users appear as root's",
                f.user
            ),
            format!(
                "sudo helpers/subids {} (from nook's sources; it gives both ranges), or: {add}",
                f.user
            ),
        );
    }
    let uid = f.uid.to_string();
    let others: Vec<(String, u64, u64)> = all_ranges(text)
        .into_iter()
        .filter(|(owner, _, _)| *owner != f.user && *owner != uid)
        .collect();
    for r in &mine {
        let (lo, hi) = (u64::from(r.start), u64::from(r.start) + u64::from(r.count));
        if let Some((owner, s, c)) = others.iter().find(|(_, s, c)| *s < hi && lo < s + c) {
            return bad(
                check,
                Status::Warn,
                format!(
                    "{}'s range {}:{} in {file} overlaps {owner}'s {s}:{c}: each can reach the other's files in containers",
                    f.user, r.start, r.count
                ),
                format!(
                    "sudo usermod {} {lo}-{} {} && {add}",
                    flag("del"),
                    hi - 1,
                    f.user
                ),
            );
        }
    }
    let total: u64 = mine.iter().map(|r| u64::from(r.count)).sum();
    let listed = mine
        .iter()
        .map(|r| format!("{}:{}", r.start, r.count))
        .collect::<Vec<_>>()
        .join(", ");
    if total < u64::from(RANGE_SIZE) {
        return bad(
            check,
            Status::Warn,
            format!(
                "{}'s range in {file} ({listed}) has {total} ids, fewer than {RANGE_SIZE}: images with files of higher ids fail to extract",
                f.user
            ),
            format!(
                "sudo usermod {} {} && {add}",
                mine.iter()
                    .map(|r| format!(
                        "{} {}-{}",
                        flag("del"),
                        r.start,
                        u64::from(r.start) + u64::from(r.count) - 1
                    ))
                    .collect::<Vec<_>>()
                    .join(" "),
                f.user
            ),
        );
    }
    ok(check, format!("{listed} ({total} ids)"))
}

pub fn runtime_dir(fact: &RuntimeDirFact, uid: u32) -> Finding {
    const CHECK: &str = "XDG_RUNTIME_DIR";
    let fix = "export XDG_RUNTIME_DIR=/run/user/$(id -u)";
    match fact {
        RuntimeDirFact::Unset => bad(
            CHECK,
            Status::Warn,
            "not set (su and sudo start no login session: log in properly): nook keeps runtime state in a private directory under /tmp",
            fix,
        ),
        RuntimeDirFact::Unusable(why) => bad(
            CHECK,
            Status::Warn,
            format!("{why}: nook keeps runtime state in a private directory under /tmp"),
            fix,
        ),
        RuntimeDirFact::Present { path, owner, .. } if *owner != uid => bad(
            CHECK,
            Status::Warn,
            format!(
                "{} belongs to uid {owner}, not to you (uid {uid})",
                path.display()
            ),
            fix,
        ),
        RuntimeDirFact::Present { path, mode, .. } if mode & 0o777 != 0o700 => bad(
            CHECK,
            Status::Warn,
            format!(
                "{} has mode {:04o}, not 0700: other users can see your credentials and containers' state",
                path.display(),
                mode & 0o7777
            ),
            format!("chmod 0700 {}", path.display()),
        ),
        RuntimeDirFact::Present { path, .. } => {
            ok(CHECK, format!("{} (yours, 0700)", path.display()))
        }
    }
}

/// The network and cluster file systems overlay upper directories do not work on, by statfs
/// magic.
pub fn network_fs_name(magic: i64) -> Option<&'static str> {
    match magic {
        0x6969 => Some("NFS"),
        0x0BD0_0BD0 => Some("Lustre"),
        0x4750_4653 => Some("GPFS"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x517B => Some("SMB"),
        0x0102_1997 => Some("9p"),
        0x6573_5546 => Some("FUSE"),
        _ => None,
    }
}

/// The statfs `f_type` of the file system `path` is (or would be created) on.
// statfs's field is narrower than i64 on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
pub fn fs_magic(path: &Path) -> Option<i64> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    nix::sys::statfs::statfs(existing)
        .ok()
        .map(|s| s.filesystem_type().0 as i64)
}

fn store_fs(f: &Facts) -> Finding {
    store_fs_verdict(&f.store, f.store_fs_magic)
}

/// The store's file system; also the hint of a failure while the store is on one that cannot
/// hold it.
pub fn store_fs_verdict(store: &Path, magic: Option<i64>) -> Finding {
    const CHECK: &str = "store file system";
    let store = store.display();
    match magic {
        None => bad(
            CHECK,
            Status::Warn,
            format!("cannot find the file system of {store}"),
            "nook --root /local/dir … (or export NOOK_ROOT=/local/dir)",
        ),
        Some(magic) => match network_fs_name(magic) {
            Some(name) => bad(
                CHECK,
                Status::Warn,
                format!(
                    "{store} is on {name}, which cannot hold files of subordinate ids, xattrs or overlay upper directories: use --root on a local disk"
                ),
                "export NOOK_ROOT=/local/dir (or nook --root /local/dir …)",
            ),
            None => ok(CHECK, format!("{store}: local (type {magic:#x})")),
        },
    }
}

fn overlay(f: &Facts) -> Finding {
    const CHECK: &str = "overlay";
    let fuse = match (&f.fuse_overlayfs, &f.dev_fuse) {
        (Some(path), Ok(())) => Ok(path),
        (Some(path), Err(e)) => Err(format!(
            "{} is installed but /dev/fuse cannot be opened ({e})",
            path.display()
        )),
        (None, _) => Err("fuse-overlayfs is not installed".to_string()),
    };
    match (&f.overlay, fuse) {
        (Ok(true), _) => ok(
            CHECK,
            "the kernel overlay mounts in a user namespace (userxattr)",
        ),
        (kernel, Ok(path)) => ok(
            CHECK,
            format!(
                "{}: fuse-overlayfs ({}) is used",
                kernel_why(kernel),
                path.display()
            ),
        ),
        (kernel, Err(why)) => bad(
            CHECK,
            Status::Warn,
            format!(
                "{} and {why}: each container gets a full copy of its image (slow, uses disk)",
                kernel_why(kernel)
            ),
            if f.fuse_overlayfs.is_none() {
                "sudo apt-get install fuse-overlayfs"
            } else {
                "sudo chmod 0666 /dev/fuse"
            },
        ),
    }
}

fn kernel_why(kernel: &Result<bool, String>) -> String {
    match kernel {
        Ok(true) => "the kernel overlay works".into(),
        Ok(false) => "the kernel refuses an overlay mount in a user namespace here".into(),
        Err(why) => format!("the kernel overlay could not be tried ({why})"),
    }
}

/// Opening a device read-write, as fuse-overlayfs, pasta and slirp4netns do: why not, if it
/// fails.
pub fn open_device(path: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| e.to_string())
}

pub fn dev_fuse(fact: &Result<(), String>) -> Finding {
    match fact {
        Ok(()) => ok("/dev/fuse", "can be opened (fuse-overlayfs can run)"),
        Err(e) => bad(
            "/dev/fuse",
            Status::Warn,
            format!("cannot be opened ({e}): fuse-overlayfs and --userns=keep-id do not work"),
            "sudo chmod 0666 /dev/fuse",
        ),
    }
}

pub fn dev_net_tun(fact: &Result<(), String>) -> Finding {
    match fact {
        Ok(()) => ok(
            "/dev/net/tun",
            "can be opened (pasta and slirp4netns can run)",
        ),
        Err(e) => bad(
            "/dev/net/tun",
            Status::Fail,
            format!(
                "cannot be opened ({e}): containers get no network (only --network none or host work)"
            ),
            "sudo chmod 0666 /dev/net/tun",
        ),
    }
}

/// pasta and slirp4netns as found on PATH; `network::NetworkError::MissingHelper`'s hint too.
pub fn network_helpers(pasta: Option<&Path>, slirp4netns: Option<&Path>) -> Finding {
    const CHECK: &str = "network helpers";
    let show = |p: Option<&Path>| p.map(|p| p.display().to_string());
    match (show(pasta), show(slirp4netns)) {
        (None, None) => bad(
            CHECK,
            Status::Fail,
            "neither pasta nor slirp4netns is installed: containers get no network (only --network none or host work)",
            "sudo apt-get install passt slirp4netns",
        ),
        (Some(p), None) => bad(
            CHECK,
            Status::Warn,
            format!(
                "pasta ({p}); slirp4netns is not installed, and pasta needs a default route (offline machines get no network)"
            ),
            "sudo apt-get install slirp4netns",
        ),
        (None, Some(s)) => ok(CHECK, format!("slirp4netns ({s}); pasta is not installed")),
        (Some(p), Some(s)) => ok(CHECK, format!("pasta ({p}), slirp4netns ({s})")),
    }
}

/// The controllers `--memory`, `--cpus` and `--pids-limit` need.
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
const DELEGATE_FIX: &str = "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload";

pub fn cgroups(c: &CgroupFacts) -> Finding {
    const CHECK: &str = "cgroup delegation";
    if c.version != "v2" {
        return bad(
            CHECK,
            Status::Warn,
            format!(
                "cgroup {}: --memory, --cpus and --pids-limit need cgroup v2",
                c.version
            ),
            "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, then sudo update-grub and reboot",
        );
    }
    let own = match &c.own {
        Ok(own) => own,
        Err(why) => {
            return bad(
                CHECK,
                Status::Warn,
                format!("{why}: --memory, --cpus and --pids-limit are refused"),
                DELEGATE_FIX,
            );
        }
    };
    let Some(root) = &c.delegated_root else {
        return bad(
            CHECK,
            Status::Warn,
            format!(
                "your cgroup {} is not yours (no systemd login session, or nothing delegated): --memory, --cpus and --pids-limit are refused",
                own.display()
            ),
            "log in through a real session (ssh, or machinectl shell USER@), not su or sudo",
        );
    };
    let missing: Vec<&str> = LIMIT_CONTROLLERS
        .into_iter()
        .filter(|want| !c.controllers.iter().any(|have| have == want))
        .collect();
    if !missing.is_empty() {
        return bad(
            CHECK,
            Status::Warn,
            format!(
                "{} offers `{}`, not {}: the options needing them are refused",
                root.display(),
                c.controllers.join(" "),
                missing.join(", ")
            ),
            DELEGATE_FIX,
        );
    }
    ok(
        CHECK,
        format!("{} offers {}", root.display(), c.controllers.join(" ")),
    )
}

fn ping_group_range(text: Option<&str>, gid: u32) -> Finding {
    const CHECK: &str = "ping";
    let fix = "sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"";
    let range = text.and_then(|t| {
        let mut it = t.split_whitespace().map(str::parse::<u64>);
        Some((it.next()?.ok()?, it.next()?.ok()?))
    });
    match range {
        None => bad(
            CHECK,
            Status::Warn,
            "cannot read net.ipv4.ping_group_range",
            fix,
        ),
        Some((lo, hi)) if (lo..=hi).contains(&u64::from(gid)) => ok(
            CHECK,
            format!("net.ipv4.ping_group_range {lo}-{hi} includes your gid {gid}"),
        ),
        Some((lo, hi)) => bad(
            CHECK,
            Status::Warn,
            format!(
                "net.ipv4.ping_group_range \"{lo} {hi}\" excludes your gid {gid}: ping in containers fails"
            ),
            fix,
        ),
    }
}

fn unprivileged_ports(text: Option<&str>) -> Finding {
    const CHECK: &str = "low ports";
    let fix = "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80";
    match text.and_then(|t| t.trim().parse::<u32>().ok()) {
        None => bad(
            CHECK,
            Status::Warn,
            "cannot read net.ipv4.ip_unprivileged_port_start",
            fix,
        ),
        Some(start) if start <= 80 => ok(
            CHECK,
            format!("host ports from {start} up can be published"),
        ),
        Some(start) => bad(
            CHECK,
            Status::Warn,
            format!(
                "net.ipv4.ip_unprivileged_port_start is {start}: host ports below it cannot be published (publish a higher one, e.g. -p 8080:80)"
            ),
            fix,
        ),
    }
}

/// What frees the store's disk, or moves the store off it; a full disk's error names it too.
pub const DISK_FIX: &str = "nook system prune (or export NOOK_ROOT=/dir/on/a/larger/disk)";

fn disk_space(f: &Facts) -> Finding {
    const CHECK: &str = "disk space";
    let human = crate::format::human_size;
    match f.store_free {
        None => bad(
            CHECK,
            Status::Warn,
            format!("cannot find the free space under {}", f.store.display()),
            "df -h",
        ),
        Some(free) if free < LOW_SPACE => bad(
            CHECK,
            Status::Warn,
            format!(
                "{} free under {}: pulls may fill the disk",
                human(free),
                f.store.display()
            ),
            DISK_FIX,
        ),
        Some(free) => ok(
            CHECK,
            format!("{} free under {}", human(free), f.store.display()),
        ),
    }
}

/// A configuration file nook refuses stops every command that reads it.
fn configuration(config: &Result<Vec<PathBuf>, String>) -> Finding {
    const CHECK: &str = "configuration";
    match config {
        Ok(files) if files.is_empty() => ok(CHECK, "no configuration files: built-in defaults"),
        Ok(files) => ok(
            CHECK,
            format!(
                "using {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ),
        Err(why) => bad(CHECK, Status::Fail, why.clone(), "man nook-config"),
    }
}

/// The report as an aligned table: STATUS, CHECK, DETAIL, FIX.
pub fn render_table(findings: &[Finding]) -> String {
    let mut rows = vec![vec![
        "STATUS".to_string(),
        "CHECK".into(),
        "DETAIL".into(),
        "FIX".into(),
    ]];
    for f in findings {
        rows.push(vec![
            f.status.label().to_string(),
            f.check.to_string(),
            f.detail.clone(),
            f.fix.clone(),
        ]);
    }
    let mut out = crate::format::table(&rows);
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "\n{} FAIL, {} WARN, {} OK",
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Ok)
    ));
    if findings
        .iter()
        .any(|f| f.needs_admin && f.status != Status::Ok)
    {
        out.push_str("; fixes using sudo need an administrator");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
