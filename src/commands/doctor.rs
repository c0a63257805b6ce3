//! `nook system doctor`: gathers the host's facts here, in one place, and prints the
//! verdicts of `crate::doctor` as a table or JSON.
//!
//! Unlike `info` it stays outside any user namespace: what matters is what the user's own
//! process sees (the runtime directory's owner, the helpers' setuid bits). The namespace
//! probes run in a forked child.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Ctx, print_out};
use crate::cli::DoctorArgs;
use crate::doctor::{self, Facts, HelperFact, RuntimeDirFact, UsernsFacts};
use crate::network::find_program;
use crate::sys;

/// The fields of a finding in `--format` templates, with their headings.
const FIELDS: &[(&str, &str)] = &[
    ("Status", "STATUS"),
    ("Check", "CHECK"),
    ("Detail", "DETAIL"),
    ("Fix", "FIX"),
    ("NeedsAdmin", "NEEDS ADMIN"),
];

pub fn run(args: DoctorArgs, ctx: &Ctx) -> Result<i32> {
    let template = args
        .format
        .as_deref()
        .map(crate::format::Template::parse)
        .transpose()?;
    if let Some(t) = template.as_ref().filter(|t| !t.json) {
        t.check_fields(&FIELDS.iter().map(|(k, _)| *k).collect::<Vec<_>>())?;
    }
    let facts = gather(ctx);
    let findings = doctor::checks(&facts);
    let out = match &template {
        Some(t) if t.json => serde_json::to_string_pretty(&findings)? + "\n",
        Some(t) if !t.is_default_table() => {
            let rows: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "Check": f.check,
                        "Status": f.status.label(),
                        "Detail": f.detail,
                        "Fix": f.fix,
                        "NeedsAdmin": f.needs_admin,
                    })
                })
                .collect();
            let fields: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
            t.render_all(&rows, &fields, FIELDS)?
        }
        _ => {
            // anstream drops the colour unless stdout is a terminal that takes it and
            // NO_COLOR is unset or empty.
            let mut out = anstream::stdout().lock();
            out.write_all(coloured_statuses(&doctor::render_table(&findings)).as_bytes())?;
            out.flush()?;
            return Ok(doctor::exit_code(&findings));
        }
    };
    print_out(&out)?;
    Ok(doctor::exit_code(&findings))
}

/// The table with each row's OK, WARN or FAIL in green, yellow or red.
fn coloured_statuses(table: &str) -> String {
    use anstyle::AnsiColor;
    let mut out = String::with_capacity(table.len() + 256);
    for line in table.split_inclusive('\n') {
        let status = [
            ("OK ", AnsiColor::Green),
            ("WARN ", AnsiColor::Yellow),
            ("FAIL ", AnsiColor::Red),
        ]
        .into_iter()
        .find(|(label, _)| line.starts_with(label));
        match status {
            Some((label, colour)) => {
                let style = colour.on_default().bold();
                let word = label.trim_end();
                out.push_str(&format!("{style}{word}{style:#}{}", &line[word.len()..]));
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
#[test]
fn statuses_are_coloured_in_place() {
    let table = "STATUS  CHECK\nOK      a\nWARN    b\nFAIL    c\n\n0 FAIL, 1 WARN, 1 OK\n";
    let coloured = coloured_statuses(table);
    assert!(
        coloured.contains("\x1b[1m\x1b[32mOK\x1b[0m      a\n"),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[31mFAIL\x1b[0m    c\n"),
        "{coloured:?}"
    );
    assert!(
        coloured.ends_with("\n0 FAIL, 1 WARN, 1 OK\n"),
        "{coloured:?}"
    );
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every fact the checks look at.
// statfs and statvfs fields are narrower than i64/u64 on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
fn gather(ctx: &Ctx) -> Facts {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let store = ctx.paths.data.clone();
    // The overlay probe mounts under the store, where containers' overlays go.
    let scratch = std::fs::create_dir_all(&store).ok().map(|()| store.clone());
    let (probe, overlay) = probe_namespaces(scratch.as_deref());
    let existing = nearest_existing(&store);
    Facts {
        user,
        uid,
        gid,
        userns: UsernsFacts::read(probe),
        newuidmap: HelperFact::find("newuidmap"),
        newgidmap: HelperFact::find("newgidmap"),
        subuid: std::fs::read_to_string("/etc/subuid").ok(),
        subgid: std::fs::read_to_string("/etc/subgid").ok(),
        runtime_dir: runtime_dir_fact(),
        store_fs_magic: doctor::fs_magic(&store),
        store_free: nix::sys::statvfs::statvfs(&existing)
            .ok()
            .map(|s| s.blocks_available() as u64 * s.fragment_size() as u64),
        store,
        overlay,
        fuse_overlayfs: find_program("fuse-overlayfs"),
        dev_fuse: doctor::open_device("/dev/fuse"),
        dev_net_tun: doctor::open_device("/dev/net/tun"),
        pasta: find_program("pasta"),
        slirp4netns: find_program("slirp4netns"),
        cgroups: super::info::cgroup_facts(),
        ping_group_range: read("/proc/sys/net/ipv4/ping_group_range"),
        unprivileged_port_start: read("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        config: config_files(ctx),
    }
}

/// The configuration files in use, or the error every command reading them would stop with.
fn config_files(ctx: &Ctx) -> Result<Vec<PathBuf>, String> {
    let (_, registries) = ctx.registries_and_source().map_err(|e| {
        crate::error::render(&e)
            .trim_start_matches("Error: ")
            .to_string()
    })?;
    let config_toml = ctx.paths.nook_config();
    let mut files: Vec<PathBuf> = config_toml
        .exists()
        .then_some(config_toml)
        .into_iter()
        .collect();
    files.extend(registries.filter(|r| !files.contains(r)));
    Ok(files)
}

/// `path` or the closest of its ancestors that exists.
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn runtime_dir_fact() -> RuntimeDirFact {
    let Some(value) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) else {
        return RuntimeDirFact::Unset;
    };
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return RuntimeDirFact::Unusable(format!("`{}` is not an absolute path", path.display()));
    }
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => RuntimeDirFact::Present {
            path,
            owner: m.uid(),
            mode: m.permissions().mode(),
        },
        Ok(_) => RuntimeDirFact::Unusable(format!("`{}` is not a directory", path.display())),
        Err(e) => RuntimeDirFact::Unusable(format!("`{}`: {e}", path.display())),
    }
}

/// Makes a user namespace (and a mount namespace in it) in a forked child, maps the user's
/// own ids there as `unshare -r` does, and tries the kernel overlay under `scratch`. Returns
/// whether the namespace could be made (why not), and whether the overlay mounted (or why it
/// was not tried).
fn probe_namespaces(scratch: Option<&Path>) -> (Result<(), String>, Result<bool, String>) {
    let not_tried = |why: String| (Err(why.clone()), Err(why));
    let (read_end, write_end) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return not_tried(format!("cannot make a pipe: {e}")),
    };
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    // nook is single-threaded here: no command has started a thread before doctor runs.
    match sys::fork_single_threaded() {
        Err(e) => not_tried(format!("cannot fork: {e}")),
        Ok(sys::Forked::Child) => {
            drop(read_end);
            let report = child_probe(uid, gid, scratch);
            let _ = std::fs::File::from(write_end).write_all(report.as_bytes());
            sys::exit_now(0)
        }
        Ok(sys::Forked::Parent { child }) => {
            drop(write_end);
            let mut report = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut report);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            parse_probe(&report)
        }
    }
}

/// The child's side: two lines, `userns: ok|WHY` and `overlay: yes|no|WHY`.
fn child_probe(uid: u32, gid: u32, scratch: Option<&Path>) -> String {
    use nix::sched::{CloneFlags, unshare};
    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        return format!(
            "userns: unshare(CLONE_NEWUSER) failed: {}\n",
            std::io::Error::from(e)
        );
    }
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| format!("writing /proc/self/{file} in the new namespace failed: {e}"))
    };
    let mapped = write("setgroups", "deny".into())
        .and_then(|()| write("uid_map", format!("0 {uid} 1\n")))
        .and_then(|()| write("gid_map", format!("0 {gid} 1\n")));
    if let Err(why) = mapped {
        return format!("userns: {why}\n");
    }
    let overlay = match scratch {
        None => "the store's directory cannot be created".to_string(),
        Some(dir) => {
            if crate::runtime::mounts::overlay_works(dir) {
                "yes".into()
            } else {
                "no".into()
            }
        }
    };
    format!("userns: ok\noverlay: {overlay}\n")
}

fn parse_probe(report: &str) -> (Result<(), String>, Result<bool, String>) {
    let field = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    let userns = match field("userns: ") {
        Some(v) if v == "ok" => Ok(()),
        Some(why) => Err(why),
        None => Err("the probe process died".to_string()),
    };
    let overlay = match (&userns, field("overlay: ")) {
        (_, Some(v)) if v == "yes" => Ok(true),
        (_, Some(v)) if v == "no" => Ok(false),
        (_, Some(why)) => Err(why),
        (Err(_), None) => Err("no user namespace to try it in".to_string()),
        (Ok(()), None) => Err("the probe process died".to_string()),
    };
    (userns, overlay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_report_is_parsed() {
        assert_eq!(
            parse_probe("userns: ok\noverlay: yes\n"),
            (Ok(()), Ok(true))
        );
        assert_eq!(
            parse_probe("userns: ok\noverlay: no\n"),
            (Ok(()), Ok(false))
        );
        assert_eq!(
            parse_probe("userns: unshare failed: EPERM\n"),
            (
                Err("unshare failed: EPERM".into()),
                Err("no user namespace to try it in".into())
            )
        );
        assert_eq!(
            parse_probe(""),
            (
                Err("the probe process died".into()),
                Err("no user namespace to try it in".into())
            )
        );
    }

    #[test]
    fn nearest_existing_climbs_to_a_parent() {
        assert_eq!(
            nearest_existing(Path::new("/proc/no/such/dir")),
            PathBuf::from("/proc")
        );
    }
}
