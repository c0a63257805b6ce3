//! `nook info` (and `nook system info`): how nook runs on this machine, in sections as
//! `podman info` prints them, or one JSON object with `--format json`.
//!
//! It runs inside nook's user namespace when one can be made, because that is where the
//! answers that matter are found: whether the kernel overlay mounts there, which ids are
//! mapped. When none can be made, it says why and reports the rest from outside.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::{Ctx, print_out};
use crate::cli::InfoArgs;
use crate::doctor::{CgroupFacts, HelperFact};
use crate::network::{self, Mode, find_program};
use crate::runtime::idmap;
use crate::runtime::userns;
use crate::store::Store;
use crate::store::containers::Status;

/// A value in the report: text, a number, a flag, a list or a section, kept in the order it
/// is printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Number(u64),
    Flag(bool),
    List(Vec<Node>),
    Section(Vec<(String, Node)>),
}

fn text(s: impl Into<String>) -> Node {
    Node::Text(s.into())
}

fn section(fields: Vec<(&str, Node)>) -> Node {
    Node::Section(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl Node {
    pub fn to_json(&self) -> Value {
        match self {
            Node::Text(s) => json!(s),
            Node::Number(n) => json!(n),
            Node::Flag(b) => json!(b),
            Node::List(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Section(fields) => {
                let mut map = Map::new();
                for (k, v) in fields {
                    map.insert(k.clone(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// YAML-like text: `key: value`, sections indented by two spaces, list items as `- `.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Node::Section(fields) = self {
            write_fields(&mut out, fields, 0);
        }
        out
    }
}

fn scalar(node: &Node) -> Option<String> {
    match node {
        Node::Text(s) => Some(s.clone()),
        Node::Number(n) => Some(n.to_string()),
        Node::Flag(b) => Some(b.to_string()),
        _ => None,
    }
}

fn write_fields(out: &mut String, fields: &[(String, Node)], indent: usize) {
    let pad = " ".repeat(indent);
    for (key, value) in fields {
        match value {
            Node::Section(inner) => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_fields(out, inner, indent + 2);
            }
            Node::List(items) if items.is_empty() => out.push_str(&format!("{pad}{key}: []\n")),
            Node::List(items) => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in items {
                    match item {
                        Node::Section(inner) => {
                            // The first field on the dash's line, the rest under it.
                            let mut block = String::new();
                            write_fields(&mut block, inner, indent + 4);
                            let trimmed = block.trim_start();
                            out.push_str(&format!("{pad}  - {trimmed}"));
                        }
                        other => out
                            .push_str(&format!("{pad}  - {}\n", scalar(other).unwrap_or_default())),
                    }
                }
            }
            other => out.push_str(&format!(
                "{pad}{key}: {}\n",
                scalar(other).unwrap_or_default()
            )),
        }
    }
}

pub fn run(args: InfoArgs, ctx: &Ctx) -> Result<i32> {
    let template = args
        .format
        .as_deref()
        .map(crate::format::Template::parse)
        .transpose()?;
    // A configuration error fails info as it fails the commands that read the files.
    ctx.registries_and_source()?;
    // In the parent this never returns when the namespace can be made; when it cannot, the
    // report says why and goes on from outside.
    let userns = match userns::enter(&ctx.paths.runtime, &|_| {}) {
        Ok(_) => Ok(()),
        Err(e) => Err(crate::error::render(&e.into())
            .trim_start_matches("Error: ")
            .to_string()),
    };
    let store = ctx.store()?;
    let report = gather(ctx, &store, userns);
    let out = match &template {
        Some(t) if t.json => serde_json::to_string_pretty(&report.to_json())? + "\n",
        Some(t) => t.render(&report.to_json())? + "\n",
        None => report.to_text(),
    };
    print_out(&out)?;
    Ok(0)
}

fn gather(ctx: &Ctx, store: &Store, userns: std::result::Result<(), String>) -> Node {
    let inside = userns.is_ok();
    section(vec![
        ("host", host()),
        ("rootless", rootless(&userns)),
        ("store", store_section(ctx, store)),
        ("storageDrivers", drivers(store, inside)),
        ("network", network_section(ctx)),
        ("config", config_section(ctx)),
        (
            "version",
            section(vec![("nook", text(env!("CARGO_PKG_VERSION")))]),
        ),
    ])
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn host() -> Node {
    let platform = crate::image::manifest::PlatformSpec::host();
    let distribution = read("/etc/os-release")
        .and_then(|t| os_release_name(&t))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let (seccomp, filters) = read("/proc/self/status").map_or((false, false), |s| {
        (
            s.lines().any(|l| l.starts_with("Seccomp:")),
            s.lines().any(|l| l.starts_with("Seccomp_filters:")),
        )
    });
    section(vec![
        ("arch", text(platform.architecture)),
        ("os", text(platform.os)),
        ("distribution", text(distribution)),
        (
            "kernel",
            text(read("/proc/sys/kernel/osrelease").unwrap_or_default()),
        ),
        (
            "hostname",
            text(read("/proc/sys/kernel/hostname").unwrap_or_default()),
        ),
        ("cpus", Node::Number(cpus)),
        (
            "memTotal",
            Node::Number(meminfo_bytes(&meminfo, "MemTotal").unwrap_or(0)),
        ),
        (
            "memAvailable",
            Node::Number(meminfo_bytes(&meminfo, "MemAvailable").unwrap_or(0)),
        ),
        (
            "swapTotal",
            Node::Number(meminfo_bytes(&meminfo, "SwapTotal").unwrap_or(0)),
        ),
        ("cgroups", cgroups()),
        (
            "seccomp",
            section(vec![
                ("supported", Node::Flag(seccomp && filters)),
                (
                    "profile",
                    text("Docker's default, built in (--security-opt seccomp=…)"),
                ),
            ]),
        ),
    ])
}

/// `PRETTY_NAME` from os-release text.
fn os_release_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix("PRETTY_NAME=")?;
        Some(v.trim_matches('"').to_string())
    })
}

/// A `/proc/meminfo` field in bytes (the file says kB, meaning KiB).
fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == field))?;
    let kb: u64 = line
        .split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Which cgroup hierarchy the machine has, the process's cgroup in it, and whether a subtree
/// of it was delegated to the user, as resource limits (`--memory` …) need: found as
/// `runtime::cgroups` finds it, the highest ancestor the user owns.
pub(crate) fn cgroup_facts() -> CgroupFacts {
    use std::os::unix::fs::MetadataExt;
    let version = match cgroup2_mount() {
        Some(p) if p == Path::new("/sys/fs/cgroup") => "v2",
        Some(_) => "v1 (hybrid: v2 mounted at /sys/fs/cgroup/unified)",
        None => "v1",
    };
    let mut facts = CgroupFacts {
        version: version.to_string(),
        own: crate::runtime::cgroups::own_cgroup(),
        delegated_root: None,
        controllers: Vec::new(),
    };
    let Ok(own) = &facts.own else {
        return facts;
    };
    // Inside nook's user namespace the user's own files show as root's, and so does this
    // process: comparing with our own uid holds on either side.
    let uid = nix::unistd::getuid().as_raw();
    let owned = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.uid() == uid);
    if !owned(own) {
        return facts;
    }
    let mut root = own.clone();
    while let Some(parent) = root.parent()
        && owned(parent)
        && parent.join("cgroup.controllers").exists()
    {
        root = parent.to_path_buf();
    }
    facts.controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    facts.delegated_root = Some(root);
    facts
}

fn cgroups() -> Node {
    let facts = cgroup_facts();
    let mut fields = vec![("version", text(facts.version))];
    let own = match facts.own {
        Ok(own) => own,
        Err(why) => {
            fields.push(("delegated", Node::Flag(false)));
            fields.push(("why", text(why)));
            return section(fields);
        }
    };
    fields.push(("cgroup", text(own.display().to_string())));
    let Some(root) = facts.delegated_root else {
        fields.push(("delegated", Node::Flag(false)));
        fields.push((
            "why",
            text("your cgroup is not yours: nothing was delegated"),
        ));
        return section(fields);
    };
    fields.push(("delegated", Node::Flag(true)));
    fields.push(("delegatedRoot", text(root.display().to_string())));
    fields.push(("controllers", text(facts.controllers.join(" "))));
    section(fields)
}

/// Where the v2 hierarchy is mounted, if anywhere: `/sys/fs/cgroup` itself (v2), or
/// `/sys/fs/cgroup/unified` (a hybrid v1 machine).
fn cgroup2_mount() -> Option<PathBuf> {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| statfs(p.as_path()).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC))
}

/// The user as the host knows them: inside nook's namespace our uid is 0, and the map says
/// which host uid that is.
fn host_ids() -> (u32, u32) {
    let outside = |file: &str, own: u32| {
        read(file)
            .map(|t| idmap::parse_proc_map(&t))
            .and_then(|maps| maps.iter().find(|m| m.inside == own).map(|m| m.outside))
            .unwrap_or(own)
    };
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    (
        outside("/proc/self/uid_map", uid),
        outside("/proc/self/gid_map", gid),
    )
}

fn rootless(userns: &std::result::Result<(), String>) -> Node {
    let (uid, gid) = host_ids();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let ranges = |file: &str| {
        let list = read(file)
            .map(|t| idmap::parse_subid(&t, &user, uid))
            .unwrap_or_default();
        Node::List(
            list.iter()
                .map(|r| text(format!("{}:{}", r.start, r.count)))
                .collect(),
        )
    };
    let helper = |name: &str| match HelperFact::find(name) {
        HelperFact::Present {
            path,
            setuid_root,
            file_caps,
        } => {
            if setuid_root || file_caps {
                text(path.display().to_string())
            } else {
                text(format!(
                    "{} (not setuid root: it cannot map ids)",
                    path.display()
                ))
            }
        }
        HelperFact::Missing => text("not installed (Debian package uidmap)"),
    };
    let maps = |file: &str| {
        Node::List(
            read(file)
                .map(|t| idmap::parse_proc_map(&t))
                .unwrap_or_default()
                .iter()
                .map(|m| text(format!("{} {} {}", m.inside, m.outside, m.count)))
                .collect(),
        )
    };
    let mut fields = vec![
        ("rootless", Node::Flag(uid != 0)),
        ("uid", Node::Number(uid.into())),
        ("gid", Node::Number(gid.into())),
        ("user", text(user.clone())),
        ("subuid", ranges("/etc/subuid")),
        ("subgid", ranges("/etc/subgid")),
        ("newuidmap", helper("newuidmap")),
        ("newgidmap", helper("newgidmap")),
    ];
    match userns {
        Ok(()) => {
            fields.push(("userNamespace", text("usable")));
            fields.push((
                "idMappings",
                section(vec![
                    ("uidmap", maps("/proc/self/uid_map")),
                    ("gidmap", maps("/proc/self/gid_map")),
                ]),
            ));
        }
        Err(why) => fields.push(("userNamespace", text(format!("not usable: {why}")))),
    }
    section(fields)
}

fn store_section(ctx: &Ctx, store: &Store) -> Node {
    let driver = crate::runtime::container::saved_driver(store)
        .map(|d| d.name().to_string())
        .unwrap_or_else(|| "not chosen yet (the first container to start chooses)".into());
    let images = store.images().map_or(0, |i| i.images.len());
    let containers = store.containers().unwrap_or_default();
    let running = containers
        .iter()
        .filter(|c| {
            store
                .observed_container_state(&c.id)
                .is_ok_and(|s| s.status == Status::Running)
        })
        .count();
    section(vec![
        ("root", text(store.root().display().to_string())),
        ("runRoot", text(ctx.paths.runtime.display().to_string())),
        ("configDir", text(ctx.paths.config.display().to_string())),
        ("driver", text(driver)),
        ("images", Node::Number(images as u64)),
        ("containers", Node::Number(containers.len() as u64)),
        ("running", Node::Number(running as u64)),
        (
            "volumes",
            Node::Number(store.volume_names().map_or(0, |v| v.len()) as u64),
        ),
    ])
}

/// Whether each storage driver works here, and why not.
fn drivers(store: &Store, inside: bool) -> Node {
    let overlay = if !inside {
        "unknown: no user namespace to try it in".to_string()
    } else if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_err() {
        "unknown: cannot make a mount namespace to try it in".to_string()
    } else if crate::runtime::mounts::overlay_works(&store.root().join("tmp")) {
        "usable (kernel overlay with userxattr in a user namespace)".to_string()
    } else {
        "not usable: the kernel refuses an overlay mount in a user namespace here".to_string()
    };
    let fuse = match find_program("fuse-overlayfs") {
        None => "not installed (Debian package fuse-overlayfs)".to_string(),
        Some(path) => {
            let version = first_line_of(&path, "--version").unwrap_or_default();
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/fuse")
            {
                Ok(_) => format!("usable: {} ({version})", path.display()),
                Err(e) => format!(
                    "not usable: {} is installed, but /dev/fuse cannot be opened: {e}",
                    path.display()
                ),
            }
        }
    };
    section(vec![
        ("overlay", text(overlay)),
        ("fuse-overlayfs", text(fuse)),
        (
            "vfs",
            text("usable (a full copy of the image per container)"),
        ),
    ])
}

/// The line `program ARG` prints about itself (fuse-overlayfs names fusermount first), else
/// its first non-empty line, on stdout or stderr.
fn first_line_of(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let name = program.file_name()?.to_string_lossy().into_owned();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with(&name))
        .or(lines.first())
        .map(|l| l.to_string())
}

/// The configuration files in use and the defaults they give.
fn config_section(ctx: &Ctx) -> Node {
    let config_toml = ctx.paths.nook_config();
    let config = ctx.nook_config().unwrap_or_default();
    let config_file = if config_toml.exists() {
        config_toml.display().to_string()
    } else {
        format!("none ({} does not exist)", config_toml.display())
    };
    let registries_file = match ctx.registries_and_source() {
        Ok((_, Some(path))) if path == config_toml => {
            format!("{} ([registries])", path.display())
        }
        Ok((_, Some(path))) => path.display().to_string(),
        Ok((_, None)) => format!(
            "none ({} does not exist; built-in defaults)",
            ctx.paths.registries_config().display()
        ),
        Err(e) => format!("invalid: {e}"),
    };
    let storage_driver = config.storage.driver.map_or_else(
        || "not set (the store's driver)".to_string(),
        |d| d.name().to_string(),
    );
    section(vec![
        ("configFile", text(config_file)),
        ("registriesFile", text(registries_file)),
        ("init", Node::Flag(config.containers.init.unwrap_or(false))),
        (
            "logDriver",
            text(config.containers.log_driver.unwrap_or_default().name()),
        ),
        (
            "logOpts",
            text(
                config
                    .containers
                    .log_opts
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
        ("storageDriver", text(storage_driver)),
    ])
}

fn network_section(ctx: &Ctx) -> Node {
    let configured = ctx.nook_config().ok().and_then(|c| c.network.default);
    let default = match Mode::default_mode(configured.as_deref()) {
        Ok(mode) => mode.spec(),
        Err(e) => format!("invalid: {e}"),
    };
    let helper = |binary: &str, package: &str| match find_program(binary) {
        Some(path) => section(vec![
            ("path", text(path.display().to_string())),
            (
                "version",
                text(first_line_of(&path, "--version").unwrap_or_else(|| "unknown".into())),
            ),
        ]),
        None => section(vec![(
            "path",
            text(format!("not installed (Debian package {package})")),
        )]),
    };
    section(vec![
        ("default", text(default)),
        ("defaultRoute", Node::Flag(network::has_default_route())),
        ("pasta", helper("pasta", "passt")),
        ("slirp4netns", helper("slirp4netns", "slirp4netns")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_prints_as_sections_or_json() {
        let report = section(vec![
            (
                "host",
                section(vec![("cpus", Node::Number(2)), ("os", text("linux"))]),
            ),
            (
                "rootless",
                section(vec![
                    ("subuid", Node::List(vec![text("100000:65536")])),
                    ("subgid", Node::List(vec![])),
                    ("rootless", Node::Flag(true)),
                ]),
            ),
        ]);
        assert_eq!(
            report.to_text(),
            "host:\n  cpus: 2\n  os: linux\nrootless:\n  subuid:\n    - 100000:65536\n  subgid: []\n  rootless: true\n"
        );
        assert_eq!(
            report.to_json(),
            json!({"host": {"cpus": 2, "os": "linux"}, "rootless": {"subuid": ["100000:65536"], "subgid": [], "rootless": true}})
        );
    }

    #[test]
    fn host_facts_are_parsed() {
        assert_eq!(
            os_release_name(
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
            ),
            Some("Debian GNU/Linux 12 (bookworm)".into())
        );
        let meminfo = "MemTotal:        4012345 kB\nMemFree:  1 kB\nMemAvailable:    2000000 kB\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(4_012_345 * 1024));
        assert_eq!(
            meminfo_bytes(meminfo, "MemAvailable"),
            Some(2_000_000 * 1024)
        );
        assert_eq!(meminfo_bytes(meminfo, "SwapTotal"), None);
    }
}
