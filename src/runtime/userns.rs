//! Running a command inside a user namespace nook makes for it.
//!
//! nook re-executes itself: the parent spawns `/proc/self/exe` with the same arguments and a
//! pair of inherited pipes; the child, still single-threaded at the top of `main`, calls
//! `unshare(CLONE_NEWUSER)` and says so; the parent maps ids with the setuid
//! `newuidmap`/`newgidmap` (or writes a single-id map itself when the user has no subordinate
//! range) and says "go"; the child then does the real work as root of that namespace, so a
//! layer's files keep their owners. The parent only waits and passes on the exit status.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::runtime::idmap::{self, IdMapping};
use crate::sys;

const ENV_SYNC: &str = "_NOOK_USERNS_SYNC";
/// Set in a process that is root of a nook user namespace (and inherited by the nook
/// processes it starts, such as a re-executed monitor), so they do not make another.
const ENV_MAX_ID: &str = "_NOOK_USERNS_MAX_ID";
/// A detached child (a container's monitor) must outlive its parent.
const ENV_DETACHED: &str = "_NOOK_USERNS_DETACHED";
/// The child joins the user namespace of this process instead of making one.
const ENV_JOIN: &str = "_NOOK_USERNS_JOIN";
const READY: u8 = b'r';
const GO: u8 = b'g';
const ABORT: u8 = b'x';

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot start a user namespace: unshare(CLONE_NEWUSER) failed")]
    Unshare(#[source] io::Error),
    #[error("cannot re-execute nook (/proc/self/exe) to enter a user namespace")]
    Spawn(#[source] io::Error),
    #[error("lost contact with the user-namespace child")]
    Handshake(#[source] io::Error),
    #[error("`{helper}` failed to map ids for process {pid}: exited with {status}: {stderr}")]
    Helper {
        helper: &'static str,
        pid: i32,
        status: String,
        stderr: String,
    },
    #[error("cannot write `{path}`")]
    WriteMap {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "--userns=keep-id needs a subordinate id range: {why} (or run without --userns=keep-id)"
    )]
    KeepIdWithoutRange { why: String },
    #[error("cannot read `{path}`")]
    ReadSubid {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How the namespace's ids are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdLayout {
    /// The user is root (0); subordinate ids follow from 1.
    Standard,
    /// `--userns=keep-id`: the user keeps their own uid and gid; the first subordinate id is
    /// root (see [`idmap::keep_id`]). The child starts as that uid, with every capability in
    /// the namespace until it executes something.
    KeepId,
    /// The existing namespace of this process (another container's, to share its network).
    Join(i32),
}

/// What the work may assume about ids once inside.
#[derive(Debug, Clone, Copy)]
pub struct Namespace {
    /// Highest uid/gid that exists (65536 with a standard subordinate range, 0 with a
    /// single-id mapping).
    pub max_id: u32,
    /// Whether ids may be changed (false only for an unprivileged run outside any namespace).
    pub can_chown: bool,
}

/// Makes sure the rest of the command runs as root of a user namespace mapped to the user's
/// ids. In the parent this never returns: it exits with the child's status. `notice` receives
/// one-line warnings (the single-id fallback).
pub fn enter(runtime_dir: &Path, notice: &dyn Fn(&str)) -> Result<Namespace, UsernsError> {
    if let Some(ns) = inside()? {
        return Ok(ns);
    }
    let code = spawn(
        runtime_dir,
        notice,
        std::env::args_os().skip(1),
        IdLayout::Standard,
        false,
    )?
    .wait()?;
    std::process::exit(code)
}

/// Whether this process already is root of a nook user namespace (doing the child's side of
/// the handshake if it was just started into one), or real root.
pub fn inside() -> Result<Option<Namespace>, UsernsError> {
    let max_id = || std::env::var(ENV_MAX_ID).ok().and_then(|v| v.parse().ok());
    if let Some(sync) = std::env::var_os(ENV_SYNC) {
        let detached = std::env::var_os(ENV_DETACHED).is_some();
        let join = std::env::var(ENV_JOIN)
            .ok()
            .and_then(|p| p.parse::<i32>().ok());
        // Ours alone: removed so nothing this process starts sees them. ENV_MAX_ID stays,
        // marking nook processes started from here as inside already.
        sys::remove_env_single_threaded(&[ENV_SYNC, ENV_DETACHED, ENV_JOIN]);
        child_handshake(&sync.to_string_lossy(), detached, join)?;
        return Ok(Some(Namespace {
            max_id: max_id().unwrap_or(0),
            can_chown: true,
        }));
    }
    if let Some(max_id) = max_id()
        && !sys::is_real_root()
        && !sys::has_identity_id_map()
    {
        return Ok(Some(Namespace {
            max_id,
            can_chown: true,
        }));
    }
    if sys::is_real_root() {
        return Ok(Some(Namespace {
            max_id: u32::MAX - 1,
            can_chown: true,
        }));
    }
    Ok(None)
}

/// A nook child running as root of a new user namespace.
pub struct Spawned {
    child: std::process::Child,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for it; its exit status as a shell reports it (128+N for signal N).
    pub fn wait(mut self) -> Result<i32, UsernsError> {
        let status = self.child.wait().map_err(UsernsError::Handshake)?;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Starts `nook ARGS` as root of a new user namespace mapped to the user's ids. With
/// `detached`, the child starts its own session and outlives this process; otherwise it
/// dies with it, and this process ignores terminal signals (the child gets them) while it
/// waits.
pub fn spawn(
    runtime_dir: &Path,
    notice: &dyn Fn(&str),
    args: impl IntoIterator<Item = std::ffi::OsString>,
    layout: IdLayout,
    detached: bool,
) -> Result<Spawned, UsernsError> {
    let maps = match layout {
        IdLayout::Join(pid) => {
            let read = |name: &str| {
                let path = PathBuf::from(format!("/proc/{pid}/{name}"));
                std::fs::read_to_string(&path)
                    .map(|text| idmap::parse_proc_map(&text))
                    .map_err(|source| UsernsError::ReadSubid { path, source })
            };
            Maps {
                uid: read("uid_map")?,
                gid: read("gid_map")?,
                single: false,
            }
        }
        _ => plan_maps(notice, runtime_dir, layout)?,
    };
    let max_id = idmap::max_inside(&maps.uid).min(idmap::max_inside(&maps.gid));
    let (go_read, go_write) = sys::pipe().map_err(UsernsError::Spawn)?;
    let (ready_read, ready_write) = sys::pipe().map_err(UsernsError::Spawn)?;
    sys::inherit_on_exec(&go_read).map_err(UsernsError::Spawn)?;
    sys::inherit_on_exec(&ready_write).map_err(UsernsError::Spawn)?;
    use std::os::fd::AsRawFd;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("nook")
        .args(args)
        .env(
            ENV_SYNC,
            format!("{},{}", go_read.as_raw_fd(), ready_write.as_raw_fd()),
        )
        .env(ENV_MAX_ID, max_id.to_string());
    if let IdLayout::Join(pid) = layout {
        cmd.env(ENV_JOIN, pid.to_string());
    }
    if detached {
        // Nothing of the caller's: a caller reading our output (a pipe) would otherwise
        // wait for the container to end.
        cmd.env(ENV_DETACHED, "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    let mut child = cmd.spawn().map_err(UsernsError::Spawn)?;
    drop(go_read);
    drop(ready_write);
    let pid = child.id() as i32;
    if !detached {
        sys::supervise_child_signals(pid).map_err(UsernsError::Spawn)?;
    }
    let mut go = std::fs::File::from(go_write);
    let mut ready = std::fs::File::from(ready_read);
    let mut byte = [0u8];
    let got = ready.read(&mut byte).map_err(UsernsError::Handshake)?;
    if got == 1 && byte[0] == READY {
        let mapped = match layout {
            // The namespace's ids are mapped already.
            IdLayout::Join(_) => Ok(()),
            _ => write_maps(pid, &maps),
        };
        if let Err(e) = mapped {
            let _ = go.write_all(&[ABORT]);
            let _ = child.wait();
            return Err(e);
        }
        go.write_all(&[GO]).map_err(UsernsError::Handshake)?;
    }
    Ok(Spawned { child })
}

fn child_handshake(sync: &str, detached: bool, join: Option<i32>) -> Result<(), UsernsError> {
    let bad = || UsernsError::Handshake(io::Error::other(format!("bad {ENV_SYNC} value `{sync}`")));
    let (go_fd, ready_fd) = sync.split_once(',').ok_or_else(bad)?;
    let go_fd: i32 = go_fd.parse().map_err(|_| bad())?;
    let ready_fd: i32 = ready_fd.parse().map_err(|_| bad())?;
    let mut go =
        std::fs::File::from(sys::adopt_inherited_fd(go_fd).map_err(UsernsError::Handshake)?);
    let mut ready =
        std::fs::File::from(sys::adopt_inherited_fd(ready_fd).map_err(UsernsError::Handshake)?);
    if detached {
        // Out of the caller's session: terminal signals and hang-ups are not its business.
        let _ = nix::unistd::setsid();
    } else {
        sys::die_with_parent().map_err(UsernsError::Handshake)?;
    }
    let unshared = match join {
        Some(pid) => join_user_namespace(pid),
        None => sys::unshare_user_namespace(),
    };
    let status = if unshared.is_ok() { READY } else { ABORT };
    ready.write_all(&[status]).map_err(UsernsError::Handshake)?;
    unshared.map_err(UsernsError::Unshare)?;
    let mut answer = [0u8];
    go.read_exact(&mut answer).map_err(UsernsError::Handshake)?;
    if answer[0] != GO {
        // The parent reports why; the child just stops.
        std::process::exit(125);
    }
    Ok(())
}

/// Enters the user namespace of process `pid`, which the user owns (it is a container's), so
/// this process holds every capability there.
fn join_user_namespace(pid: i32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)
}

struct Maps {
    uid: Vec<IdMapping>,
    gid: Vec<IdMapping>,
    single: bool,
}

fn plan_maps(
    notice: &dyn Fn(&str),
    runtime_dir: &Path,
    layout: IdLayout,
) -> Result<Maps, UsernsError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let read = |path: &str| -> Result<String, UsernsError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(UsernsError::ReadSubid {
                path: path.into(),
                source,
            }),
        }
    };
    let sub_uids = idmap::parse_subid(&read("/etc/subuid")?, &name, uid);
    let sub_gids = idmap::parse_subid(&read("/etc/subgid")?, &name, uid);
    // Found as they are run: on PATH (as `nook system doctor` looks for them too).
    let helpers_present = crate::network::find_program("newuidmap").is_some()
        && crate::network::find_program("newgidmap").is_some();
    if sub_uids.is_empty() || sub_gids.is_empty() || !helpers_present {
        let why = if !helpers_present {
            "newuidmap/newgidmap are not on PATH (an administrator can install them: sudo apt-get install uidmap)".to_string()
        } else {
            let fix = crate::doctor::add_range_fix(
                &name,
                sub_uids.is_empty(),
                sub_gids.is_empty(),
                Some(&read("/etc/subuid")?),
                Some(&read("/etc/subgid")?),
            );
            format!(
                "user `{name}` has no subordinate id range in /etc/subuid and /etc/subgid (an administrator can add one: sudo helpers/subids {name}, from nook's sources, or {fix}; `nook system doctor` checks the rest)"
            )
        };
        if layout == IdLayout::KeepId {
            return Err(UsernsError::KeepIdWithoutRange { why });
        }
        warn_once(
            runtime_dir,
            "single-id-map",
            &format!(
                "Warning: using a single-id user namespace because {why}; files owned by other users in images appear as root's"
            ),
            notice,
        );
        return Ok(Maps {
            uid: idmap::mappings(uid, &[]),
            gid: idmap::mappings(gid, &[]),
            single: true,
        });
    }
    let (uids, gids) = (
        idmap::mappings(uid, &sub_uids),
        idmap::mappings(gid, &sub_gids),
    );
    Ok(match layout {
        IdLayout::Standard | IdLayout::Join(_) => Maps {
            uid: uids,
            gid: gids,
            single: false,
        },
        IdLayout::KeepId => Maps {
            uid: idmap::keep_id(uid, &uids),
            gid: idmap::keep_id(gid, &gids),
            single: false,
        },
    })
}

/// Prints a warning the first time only: a marker file in the runtime directory remembers it
/// until reboot.
fn warn_once(runtime_dir: &Path, key: &str, message: &str, notice: &dyn Fn(&str)) {
    let marker = runtime_dir.join(format!("warned-{key}"));
    if marker.exists() {
        return;
    }
    notice(message);
    let _ = std::fs::create_dir_all(runtime_dir).and_then(|()| std::fs::write(&marker, b""));
}

fn write_maps(pid: i32, maps: &Maps) -> Result<(), UsernsError> {
    if maps.single {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let write = |name: &str, text: String| {
            let path = proc_dir.join(name);
            std::fs::write(&path, text).map_err(|source| UsernsError::WriteMap { path, source })
        };
        // An unprivileged process may map only its own ids, and only after giving up
        // setgroups(2) in the namespace.
        write("setgroups", "deny".into())?;
        write("uid_map", format!("{}\n", maps.uid[0]))?;
        write("gid_map", format!("{}\n", maps.gid[0]))?;
        return Ok(());
    }
    // Both helpers at once: each is a setuid exec costing a few milliseconds, and they
    // touch different files.
    let uid = start_helper("newuidmap", pid, &maps.uid)?;
    let gid = start_helper("newgidmap", pid, &maps.gid);
    let uid = finish_helper("newuidmap", pid, uid);
    let gid = gid.and_then(|child| finish_helper("newgidmap", pid, child));
    uid.and(gid)
}

fn start_helper(
    helper: &'static str,
    pid: i32,
    maps: &[IdMapping],
) -> Result<std::process::Child, UsernsError> {
    Command::new(helper)
        .arg(pid.to_string())
        .args(idmap::helper_args(maps))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| UsernsError::Helper {
            helper,
            pid,
            status: "an error".into(),
            stderr: e.to_string(),
        })
}

fn finish_helper(
    helper: &'static str,
    pid: i32,
    child: std::process::Child,
) -> Result<(), UsernsError> {
    let out = child.wait_with_output().map_err(|e| UsernsError::Helper {
        helper,
        pid,
        status: "an error".into(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(UsernsError::Helper {
        helper,
        pid,
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}
