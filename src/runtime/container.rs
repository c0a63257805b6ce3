//! Starting a container: the monitor, and the container's PID 1.
//!
//! The monitor is nook re-executed (`nook __monitor ID`) inside nook's user namespace, so it
//! starts single-threaded. It unshares the mount, UTS, IPC, network and cgroup namespaces,
//! assembles the root file system, unshares the PID namespace and forks: the child becomes
//! the container's PID 1, sets up /proc, /dev and the user's mounts, pivots into the new
//! root, becomes the container's user, drops capabilities, loads seccomp and execs. The
//! monitor records the state, relays output to the log (and to the terminal in the
//! foreground), waits for PID 1 and records its exit. A start failure in PID 1 travels back
//! over a close-on-exec pipe: EOF means the exec succeeded.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use chrono::Utc;
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::ExitError;
use crate::network;
use crate::runtime::mounts::{self, Bind, ContainerMounts, Driver, RootfsSpec, ShownIds};
use crate::runtime::security::{self, CapabilitySet, SeccompPolicy};
use crate::runtime::tty;
use crate::runtime::{idmap, users};
use crate::store::Store;
use crate::store::containers::{
    self, ContainerConfig, ContainerRecord, ContainerState, MountSpec, Status,
};
use crate::store::logs::LogWriter;
use crate::sys;

/// How the monitor was asked to run.
#[derive(Debug, Clone, Copy)]
pub struct MonitorMode {
    /// Attached to the caller's terminal (`run` without `-d`, `start -a`): output goes to the
    /// caller's stdout/stderr as well as the log, and stdin is passed with `-i`.
    pub foreground: bool,
    /// Remove the container if its process cannot be started (`run`, not `start`).
    pub remove_on_failure: bool,
}

/// Where a start failure is described, and with which exit status.
fn start_failure(code: i32, message: String) -> anyhow::Error {
    ExitError { code, message }.into()
}

/// The monitor: runs the container to its end and returns its exit status. `notify` (for a
/// detached start) receives `ok` once the container's process runs, or the error text.
pub fn monitor(
    store: &Store,
    id: &str,
    mode: MonitorMode,
    mut notify: Option<File>,
) -> anyhow::Result<i32> {
    let record = store.find_container(id)?;
    if !mode.foreground {
        // A session of its own: no terminal signals from the caller, and it outlives it.
        let _ = nix::unistd::setsid();
    }
    let result = start_and_wait(store, &record, mode, &mut notify);
    if let Err(e) = &result {
        let code = crate::error::exit_code(e);
        let message = crate::error::render(e)
            .trim_start_matches("Error: ")
            .to_string();
        // A detached start waits for this: why the container did not start.
        if let Some(n) = notify.as_mut() {
            let _ = write!(n, "{code}\t{message}");
        }
        let _ = store.update_container_state(&record.id, |s| {
            s.status = if s.started_at.is_some() || code != crate::error::EXIT_NOOK_ERROR {
                Status::Exited
            } else {
                Status::Created
            };
            s.pid = None;
            s.exit_code = Some(code);
            s.error = Some(message);
            s.finished_at = Some(Utc::now());
        });
        if mode.remove_on_failure || record.config.auto_remove {
            let _ = store.remove_container(&record.id);
        }
    }
    result
}

fn start_and_wait(
    store: &Store,
    record: &ContainerRecord,
    mode: MonitorMode,
    notify: &mut Option<File>,
) -> anyhow::Result<i32> {
    let config = &record.config;
    let dir = store.container_dir(&record.id);
    let image = store
        .images()?
        .get(&record.image_id)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!("image {} of the container is gone", record.image_id.short())
        })?;

    let (caps, seccomp) = security_for(config)?;
    if !config.limits.is_empty() {
        // Before the cgroup namespace is made: the container sees its own cgroup as `/`.
        let plan = super::cgroups::plan(
            &config.limits,
            &record.id,
            super::cgroups::own_cgroup(),
            nix::unistd::getuid().as_raw(),
            &super::cgroups::v1_mounted,
        )?;
        let known = store.containers()?;
        super::cgroups::sweep(&known.iter().map(|c| c.id.as_str()).collect::<Vec<_>>());
        plan.apply()?;
    }

    // Still in the host's network namespace: host ports are checked and the helper's
    // launcher forked here (see the network module).
    let net_mode = network::Mode::parse(if config.network.is_empty() {
        "none"
    } else {
        &config.network
    })?;
    let prepared = network::prepare(&net_mode, &config.ports, &dir)?;
    let mut namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if net_mode.own_namespace() {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(namespaces)
        .map_err(|e| anyhow::anyhow!("cannot create the container's namespaces: {e}"))?;
    if let network::Mode::Container(other) = &net_mode {
        join_network_of(store, other)?;
    }
    nix::unistd::sethostname(&config.hostname)
        .map_err(|e| anyhow::anyhow!("cannot set the hostname `{}`: {e}", config.hostname))?;
    if net_mode.own_namespace() {
        sys::bring_loopback_up()
            .map_err(|e| anyhow::anyhow!("cannot bring up the loopback interface: {e}"))?;
    }
    // Comes up while the root file system is mounted.
    let network_starting = prepared.start()?;

    let driver = match Driver::parse(&config.storage_driver) {
        Some(d) => d,
        None => resolve_driver(store),
    };
    // keep-id: this process is the user's own uid and gid inside (see IdLayout::KeepId).
    let keep_id = config.keep_id.then(|| {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    });
    let shown_ids = match keep_id {
        Some(ids) => Some(keep_id_shown_ids(ids, driver)?),
        None => None,
    };
    let merged = dir.join("merged");
    std::fs::create_dir_all(&merged)?;
    let rootfs = RootfsSpec {
        driver,
        lower: image
            .layers
            .iter()
            .map(|d| store.layer_diff_dir(d))
            .collect(),
        upper: dir.join("upper"),
        work: dir.join("work"),
        target: merged.clone(),
        shown_ids,
    };
    mounts::setup_rootfs(&rootfs)?;
    // Let go of the root file system however this function ends: it is mounted in this (the
    // monitor's) mount namespace, and a fuse-overlayfs daemon in it would otherwise keep the
    // namespace, and itself, alive after the monitor exits.
    let _unmount = Unmount(merged.clone());
    // Stopped when dropped: after PID 1 has exited, or on any error before.
    let connected = network_starting.ready()?;
    let mut etc_files = write_etc_files(&dir, record, &net_mode, store)?;
    if let Some((uid, gid)) = keep_id {
        etc_files.extend(write_keep_id_accounts(&dir, &merged, uid, gid)?);
    }
    let container_mounts = ContainerMounts {
        rootfs: merged.clone(),
        binds: resolve_binds(store, &config.mounts)?,
        tmpfs: config
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountSpec::Tmpfs {
                    destination,
                    options,
                } => Some((destination.clone(), options.clone())),
                _ => None,
            })
            .collect(),
        etc_files,
        masked_paths: if config.privileged {
            vec![]
        } else {
            mounts::default_masked_paths(Path::new("/sys/devices/system/cpu"))
        },
        readonly_paths: if config.privileged {
            vec![]
        } else {
            mounts::DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect()
        },
        read_only_root: config.read_only,
        host_devices: mounts::DEFAULT_DEVICES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    // The container's standard streams.
    let stdin_fd: Option<OwnedFd> = if mode.foreground && config.interactive && !config.tty {
        Some(io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let mut io_plan = if config.tty {
        let size = if mode.foreground {
            tty::terminal_size(io::stdin().as_fd())
        } else {
            None
        };
        let (monitor_end, container_end) = std::os::unix::net::UnixStream::pair()?;
        StdioPlan::Tty {
            size,
            monitor_end,
            container_end: Some(container_end),
        }
    } else {
        let (out_r, out_w) = sys::pipe()?;
        let (err_r, err_w) = sys::pipe()?;
        StdioPlan::Pipes {
            out: (out_r, out_w),
            err: (err_r, err_w),
        }
    };
    let (failure_r, failure_w) = sys::pipe()?;

    nix::sched::unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| anyhow::anyhow!("cannot create the container's PID namespace: {e}"))?;
    let process = ProcessPlan {
        config,
        caps: &caps,
        seccomp: seccomp.as_ref(),
    };
    let child = match sys::fork_single_threaded()? {
        sys::Forked::Child => {
            drop(failure_r);
            pid1(
                &container_mounts,
                &process,
                &io_plan,
                stdin_fd.as_ref(),
                failure_w,
            )
        }
        sys::Forked::Parent { child } => child,
    };
    drop(failure_w);
    drop(stdin_fd);
    // The terminal's master side arrives before the exec; a PID 1 that failed earlier just
    // closes its end.
    let master = match &mut io_plan {
        StdioPlan::Tty {
            container_end,
            monitor_end,
            ..
        } => {
            drop(container_end.take());
            sys::recv_fd(monitor_end).ok().flatten()
        }
        StdioPlan::Pipes { .. } => None,
    };
    let mut failure_text = String::new();
    File::from(failure_r).read_to_string(&mut failure_text)?;
    if !failure_text.is_empty() {
        let _ = waitpid(Pid::from_raw(child), None);
        let (code, message) = failure_text
            .split_once('\t')
            .map(|(c, m)| (c.parse().unwrap_or(125), m.to_string()))
            .unwrap_or((125, failure_text.clone()));
        return Err(start_failure(code, message));
    }

    let me = std::process::id() as i32;
    store.update_container_state(&record.id, |s| {
        *s = ContainerState {
            status: Status::Running,
            pid: Some(child),
            pid_start: containers::process_start_time(child),
            monitor_pid: Some(me),
            monitor_start: containers::process_start_time(me),
            boot_id: containers::boot_id(),
            started_at: Some(Utc::now()),
            finished_at: None,
            exit_code: None,
            error: None,
            ports: connected.ports().to_vec(),
        };
    })?;
    if let Some(mut n) = notify.take() {
        let _ = n.write_all(b"ok");
    }
    if mode.foreground {
        sys::forward_signals_to(child)?;
    }

    // No threads from here on: after unshare(CLONE_NEWPID) the kernel refuses to create
    // them. The relay ends when the container's side of the streams closes, which happens
    // at the latest when PID 1 exits (the kernel then kills the whole PID namespace).
    let log = match config.log_driver {
        crate::config::LogDriver::JsonFile => {
            // Checked when the container was created.
            let rotation = crate::config::log_rotation(config.log_driver, &config.log_opts)
                .ok()
                .flatten();
            LogWriter::open_rotating(&dir.join("ctr.log"), rotation)?
        }
        crate::config::LogDriver::None => LogWriter::discard(),
    };
    relay_output(
        io_plan,
        master,
        log,
        mode.foreground,
        config.interactive,
        &dir,
    );
    let status = wait_for(child)?;
    drop(connected);
    // Before the container's directory can be removed (--rm).
    drop(_unmount);

    store.update_container_state(&record.id, |s| {
        s.status = Status::Exited;
        s.pid = None;
        s.exit_code = Some(status);
        s.finished_at = Some(Utc::now());
        s.ports.clear();
    })?;
    if config.auto_remove {
        store.remove_container(&record.id)?;
    }
    Ok(status)
}

/// Detaches a mount when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        mounts::reap_fuse_daemon();
    }
}

enum StdioPlan {
    /// PID 1 opens the terminal inside the container's own /dev/pts (so `tty` names a device
    /// that exists there) and passes the master side back over the socket pair.
    Tty {
        size: Option<tty::Winsize>,
        monitor_end: std::os::unix::net::UnixStream,
        /// Dropped by the monitor after the fork, so PID 1's exit reads as end-of-file.
        container_end: Option<std::os::unix::net::UnixStream>,
    },
    Pipes {
        out: (OwnedFd, OwnedFd),
        err: (OwnedFd, OwnedFd),
    },
}

fn relay_output(
    plan: StdioPlan,
    master: Option<OwnedFd>,
    mut log: LogWriter,
    foreground: bool,
    interactive: bool,
    dir: &Path,
) {
    match plan {
        StdioPlan::Tty { .. } => {
            let Some(master) = master else {
                return;
            };
            if foreground {
                let stdin = interactive
                    .then(|| io::stdin().as_fd().try_clone_to_owned().ok())
                    .flatten();
                let stdout = io::stdout().as_fd().try_clone_to_owned();
                if let Ok(stdout) = stdout {
                    // The user's terminal in raw mode while attached, restored however the
                    // relay ends.
                    let _raw = tty::RawModeGuard::enable(io::stdin().as_fd())
                        .ok()
                        .flatten();
                    let _ = tty::relay_logged(
                        &master,
                        stdin.as_ref().map(|f| f.as_fd()),
                        stdout.as_fd(),
                        Some(io::stdin().as_fd()),
                        &std::sync::atomic::AtomicBool::new(false),
                        Some(&mut log),
                    );
                }
            } else {
                // Detached: the log, and whoever runs `nook attach`.
                match crate::runtime::attach::listen(dir) {
                    Ok(listener) => {
                        let _ = crate::runtime::attach::serve(master, &mut log, listener);
                    }
                    Err(_) => {
                        let _ = relay_tty_to_log(master, &mut log);
                    }
                }
            }
        }
        StdioPlan::Pipes { out, err } => {
            drop(out.1);
            drop(err.1);
            let _ = tty::relay_pipes(out.0, err.0, foreground, Some(&mut log));
        }
    }
    let _ = log.flush_partial();
}

/// A detached container with a terminal: its output goes to the log only (the terminal's
/// side reads EIO once the container's last holder of the slave is gone).
fn relay_tty_to_log(master: OwnedFd, log: &mut LogWriter) -> io::Result<()> {
    let mut file = File::from(master);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => log.write(crate::store::logs::Stream::Stdout, &buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: the slave side is closed for good.
            Err(_) => return Ok(()),
        }
    }
}

/// The driver this store settled on (`<store>/driver`), if it did.
pub fn saved_driver(store: &Store) -> Option<Driver> {
    let text = std::fs::read_to_string(store.root().join("driver")).ok()?;
    Driver::parse(text.trim())
}

/// overlay where the kernel allows it inside a user namespace, else fuse-overlayfs, else a
/// copy; probed once per store (from the monitor, inside its mount namespace) and saved.
fn resolve_driver(store: &Store) -> Driver {
    if let Some(d) = saved_driver(store) {
        return d;
    }
    let scratch = store.root().join("tmp");
    let driver = if mounts::overlay_works(&scratch) {
        Driver::Overlay
    } else if fuse_overlayfs_usable() {
        Driver::FuseOverlayfs
    } else {
        Driver::Vfs
    };
    let _ = store.write_atomic(&store.root().join("driver"), driver.name().as_bytes());
    driver
}

fn fuse_overlayfs_usable() -> bool {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("fuse-overlayfs").is_file()))
        .unwrap_or(false);
    on_path
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok()
}

/// The capability set and compiled seccomp filter a container's processes get (PID 1 and
/// every `exec`): Docker's defaults adjusted by the options; no filter when privileged or
/// unconfined.
pub fn security_for(
    config: &ContainerConfig,
) -> anyhow::Result<(CapabilitySet, Option<security::CompiledFilter>)> {
    let caps = CapabilitySet::resolve(&config.cap_add, &config.cap_drop, config.privileged)?;
    let seccomp = match config.seccomp.as_deref() {
        _ if config.privileged => None,
        Some("unconfined") => None,
        Some(json) => Some(SeccompPolicy::from_docker_json(json, &caps)?.compile()?),
        None => Some(SeccompPolicy::docker_default(&caps).compile()?),
    };
    Ok((caps, seccomp))
}

/// Waits for PID 1 and turns its end into a Docker exit status (128+N for signal N).
fn wait_for(child: i32) -> anyhow::Result<i32> {
    loop {
        match waitpid(Pid::from_raw(child), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow::anyhow!("cannot wait for the container: {e}")),
        }
    }
}

pub struct ProcessPlan<'a> {
    pub config: &'a ContainerConfig,
    pub caps: &'a CapabilitySet,
    pub seccomp: Option<&'a security::CompiledFilter>,
}

/// The container's PID 1, between fork and exec. A failure before the exec is written to
/// `failure` (`CODE\tMESSAGE`, the exit status and message the monitor reports), and the
/// process exits.
fn pid1(
    mounts: &ContainerMounts,
    process: &ProcessPlan,
    io_plan: &StdioPlan,
    stdin: Option<&OwnedFd>,
    failure: OwnedFd,
) -> ! {
    let prepared = (|| {
        let fail =
            |code: i32, what: &str, e: &dyn std::fmt::Display| (code, format!("{what}: {e}"));
        sys::die_with_parent()
            .map_err(|e| fail(125, "cannot tie the container to its monitor", &e))?;
        // A mount namespace of PID 1's own: pivot_root moves the root of every process that
        // shares the old one, and the monitor must keep seeing the store.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| fail(125, "cannot create the container's mount namespace", &e))?;
        mounts::setup_container_mounts(mounts)
            .map_err(|e| fail(125, "cannot set up the container's mounts", &e))?;
        mounts::pivot_into(&mounts.rootfs)
            .map_err(|e| fail(125, "cannot enter the container's root file system", &e))?;
        connect_stdio(io_plan, stdin)
            .map_err(|e| fail(125, "cannot connect the container's standard streams", &e))?;
        sys::cloexec_from(3)
            .map_err(|e| fail(125, "cannot close the monitor's descriptors", &e))?;
        ExecPlan::resolve(
            process.config,
            &[],
            process.config.user.as_str(),
            &process.config.working_dir,
        )
    })();
    let failed = match prepared {
        Ok(exec) if process.config.init => run_as_init(exec, process, failure),
        Ok(exec) => exec.become_and_exec(process),
        Err(failed) => failed,
    };
    report_failure(failure, failed)
}

/// Writes a start failure for the monitor and exits with its status.
fn report_failure(failure: OwnedFd, (code, message): (i32, String)) -> ! {
    let _ = write!(File::from(failure), "{code}\t{message}");
    sys::exit_now(code)
}

fn connect_stdio(plan: &StdioPlan, stdin: Option<&OwnedFd>) -> io::Result<()> {
    let null = File::open("/dev/null")?;
    match plan {
        StdioPlan::Tty {
            size,
            container_end,
            ..
        } => {
            let pty = tty::open_pty(*size)?;
            let socket = container_end
                .as_ref()
                .ok_or_else(|| io::Error::other("the terminal socket is gone"))?;
            sys::send_fd(socket, &pty.master)?;
            drop(pty.master);
            tty::make_controlling_terminal(&pty.slave)?;
        }
        StdioPlan::Pipes { out, err } => {
            let input = stdin.map(|f| f.as_raw_fd()).unwrap_or(null.as_raw_fd());
            nix::unistd::dup2(input, 0)?;
            nix::unistd::dup2(out.1.as_raw_fd(), 1)?;
            nix::unistd::dup2(err.1.as_raw_fd(), 2)?;
        }
    }
    Ok(())
}

/// `--init`: PID 1 stays nook, reaping orphans and passing signals on to the command, which
/// runs as its child.
///
/// Unlike the command, init never execs, so it would keep whatever the monitor handed down
/// (the monitor's descriptors, among them any the user's shell left open, such as a directory
/// of the host) and the user namespace's full capabilities, without seccomp. A container
/// process allowed to ptrace it (`--cap-add SYS_PTRACE`, `--privileged`) could then open
/// `/proc/1/fd/N` or take init over. So, as Docker's tini, init first becomes exactly what the
/// command will be (user, capabilities, no_new_privs, seccomp), holding nothing but the
/// standard streams; the command is forked from it and only execs.
fn run_as_init(exec: ExecPlan, process: &ProcessPlan, failure: OwnedFd) -> ! {
    if let Err(e) = sys::close_other_fds(&[failure.as_raw_fd()]) {
        report_failure(
            failure,
            (
                125,
                format!("init cannot close the monitor's descriptors: {e}"),
            ),
        );
    }
    if let Err(failed) = exec.become_container_process(process) {
        report_failure(failure, failed);
    }
    // A change of user clears the parent-death signal, and the dumpable flag: init must
    // still end with the monitor, and `nook exec` joins the container through init's
    // /proc/1/ns files. Nothing is hidden by it any more: init is what the command is.
    if let Err(e) = sys::die_with_parent() {
        report_failure(
            failure,
            (125, format!("cannot tie init to the monitor: {e}")),
        );
    }
    if let Err(e) = security::set_dumpable(true) {
        report_failure(failure, (125, format!("init: {e}")));
    }
    match sys::fork_single_threaded() {
        Ok(sys::Forked::Child) => report_failure(failure, exec.exec()),
        Ok(sys::Forked::Parent { child }) => {
            // The monitor reads the failure pipe to its end: once the command has exec'd,
            // only this copy would keep it open.
            drop(failure);
            let _ = sys::forward_signals_to(child);
            loop {
                match waitpid(Pid::from_raw(-1), None) {
                    Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == child => {
                        sys::exit_now(code)
                    }
                    Ok(WaitStatus::Signaled(pid, signal, _)) if pid.as_raw() == child => {
                        sys::exit_now(128 + signal as i32)
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        eprintln!("init cannot wait for the command: {e}");
                        sys::exit_now(125)
                    }
                }
            }
        }
        Err(e) => report_failure(
            failure,
            (125, format!("init cannot start the command: {e}")),
        ),
    }
}

/// The process to exec, with everything resolved against the container's own files.
pub struct ExecPlan {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ExecPlan {
    /// Resolves user, environment, working directory and the executable inside the
    /// container (after pivot_root or setns). `extra_env` and `command` come from `exec`.
    pub fn resolve(
        config: &ContainerConfig,
        extra_env: &[String],
        user: &str,
        workdir: &str,
    ) -> Result<ExecPlan, (i32, String)> {
        Self::resolve_command(config, None, extra_env, user, workdir)
    }

    pub fn resolve_command(
        config: &ContainerConfig,
        command: Option<&[String]>,
        extra_env: &[String],
        user: &str,
        workdir: &str,
    ) -> Result<ExecPlan, (i32, String)> {
        let argv: Vec<String> = match command {
            Some(c) => c.to_vec(),
            None => config
                .entrypoint
                .iter()
                .chain(&config.cmd)
                .cloned()
                .collect(),
        };
        let Some(program) = argv.first() else {
            return Err((125, "no command specified".into()));
        };
        let who = crate::runtime::users::resolve(Path::new("/"), user).map_err(|e| (125, e))?;
        let mut env = merge_env(&config.env, extra_env);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={}", config.hostname));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", who.home));
        }
        if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let workdir = if workdir.is_empty() { "/" } else { workdir };
        if let Err(e) = std::fs::create_dir_all(workdir) {
            return Err((
                125,
                format!("cannot create the working directory `{workdir}`: {e}"),
            ));
        }
        if let Err(e) = nix::unistd::chdir(workdir) {
            return Err((
                125,
                format!("cannot change to the working directory `{workdir}`: {e}"),
            ));
        }
        let path_var = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_string();
        let path = find_executable(program, &path_var)?;
        let cstr =
            |s: &str| CString::new(s).map_err(|_| (125, format!("`{s}` contains a NUL byte")));
        Ok(ExecPlan {
            path: cstr(&path)?,
            args: argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
            env: env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
            uid: who.uid,
            gid: who.gid,
            groups: who.groups,
        })
    }

    /// Becomes the container user, applies capabilities, no_new_privs and seccomp, and
    /// execs. Returns only on failure.
    pub fn become_and_exec(self, process: &ProcessPlan) -> (i32, String) {
        match self.become_container_process(process) {
            Ok(()) => self.exec(),
            Err(failed) => failed,
        }
    }

    /// Becomes the container user and applies the container's capabilities, no_new_privs
    /// and seccomp policy to this process, for good.
    pub fn become_container_process(&self, process: &ProcessPlan) -> Result<(), (i32, String)> {
        let fail = |what: &str, e: &dyn std::fmt::Display| Err((125, format!("{what}: {e}")));
        let groups: Vec<nix::unistd::Gid> = self
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        if let Err(e) = nix::unistd::setgroups(&groups) {
            // A single-id namespace has setgroups denied; only the primary group exists then.
            if !groups.is_empty() && e != nix::errno::Errno::EPERM {
                return fail("cannot set the supplementary groups", &e);
            }
        }
        let gid = nix::unistd::Gid::from_raw(self.gid);
        if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
            return fail(&format!("cannot switch to group {}", self.gid), &e);
        }
        // Capabilities survive setresuid to a non-root user only with KEEPCAPS;
        // apply_capabilities then sets exactly the container's set.
        if let Err(e) = nix::sys::prctl::set_keepcaps(true) {
            return fail("cannot keep capabilities across the user switch", &e);
        }
        let uid = nix::unistd::Uid::from_raw(self.uid);
        if let Err(e) = nix::unistd::setresuid(uid, uid, uid) {
            return fail(&format!("cannot switch to user {}", self.uid), &e);
        }
        if let Err(e) = security::apply_capabilities(process.caps, self.uid) {
            return fail("cannot set the capabilities", &e);
        }
        if !process.config.privileged
            && let Err(e) = security::set_no_new_privs()
        {
            return fail("cannot set no_new_privs", &e);
        }
        if let Some(filter) = process.seccomp
            && let Err(e) = security::apply_seccomp(filter)
        {
            return fail("cannot load the seccomp filter", &e);
        }
        Ok(())
    }

    /// Execs the program (in a process already confined by
    /// [`become_container_process`](Self::become_container_process)). Returns only on
    /// failure, with Docker's status: 126 when the file cannot be executed, 127 when it is
    /// missing.
    pub fn exec(&self) -> (i32, String) {
        let err = nix::unistd::execve(&self.path, &self.args, &self.env).unwrap_err();
        let shown = self.path.to_string_lossy();
        match err {
            nix::errno::Errno::EACCES | nix::errno::Errno::ENOEXEC | nix::errno::Errno::EISDIR => {
                (126, format!("cannot execute `{shown}`: {err}"))
            }
            nix::errno::Errno::ENOENT => (127, format!("`{shown}`: no such file or directory")),
            e => (126, format!("cannot execute `{shown}`: {e}")),
        }
    }
}

/// Later entries replace earlier ones with the same name, keeping the first position.
fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in base.iter().chain(extra) {
        let name = entry.split('=').next().unwrap_or(entry);
        match out.iter_mut().find(|e| e.split('=').next() == Some(name)) {
            Some(existing) => *existing = entry.clone(),
            None => out.push(entry.clone()),
        }
    }
    out
}

/// `sh` → `/bin/sh` by `PATH`, the way a shell finds it: 127 when it is nowhere, 126 when it
/// exists but cannot be executed.
fn find_executable(program: &str, path_var: &str) -> Result<String, (i32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> Option<Result<String, (i32, String)>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Some(Err((
                126,
                format!("cannot execute `{}`: permission denied", p.display()),
            )));
        }
        Some(Ok(p.to_string_lossy().into_owned()))
    };
    if program.contains('/') {
        return check(Path::new(program))
            .unwrap_or_else(|| Err((127, format!("`{program}`: no such file or directory"))));
    }
    let mut denied = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        match check(&Path::new(dir).join(program)) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => denied = denied.or(Some(e)),
            None => {}
        }
    }
    Err(denied.unwrap_or_else(|| {
        (
            127,
            format!("executable file `{program}` not found in $PATH"),
        )
    }))
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the container, kept in its
/// directory and bind-mounted. Written once the network is up (inside its namespace), so the
/// container's address and gateway can be read from it.
fn write_etc_files(
    dir: &Path,
    record: &ContainerRecord,
    mode: &network::Mode,
    store: &Store,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let config = &record.config;
    let (hosts_text, resolv_text) = match mode {
        // Docker shares the other container's files along with its network.
        network::Mode::Container(other) => {
            let other_dir = store.container_dir(other);
            let read =
                |name: &str| std::fs::read_to_string(other_dir.join(name)).unwrap_or_default();
            (read("hosts"), read("resolv.conf"))
        }
        _ => {
            // The monitor still sees the host's files.
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let gateway = network::default_gateway();
            let reaches_host = mode.reaches_host() || *mode == network::Mode::Host;
            let net = network::EtcNetwork {
                hostname: &config.hostname,
                name: &record.name,
                address: network::first_address().map(IpAddr::V4),
                host_gateway: network::host_gateway(mode, gateway).filter(|_| reaches_host),
                add_hosts: &config.add_hosts,
            };
            let host_hosts = match mode {
                network::Mode::Host => {
                    Some(std::fs::read_to_string("/etc/hosts").unwrap_or_default())
                }
                _ => None,
            };
            let hosts =
                network::hosts_file(&net, host_hosts.as_deref()).map_err(anyhow::Error::msg)?;
            let resolvers = match mode {
                network::Mode::Pasta(_) => {
                    network::Resolvers::HostElseForwarder(network::PASTA_DNS.into())
                }
                // slirp4netns answers DNS at the address after its gateway.
                network::Mode::Slirp4netns(_) => network::Resolvers::Forwarder(
                    gateway
                        .map(|g| Ipv4Addr::from(u32::from(g) + 1))
                        .unwrap_or(network::SLIRP_DNS)
                        .into(),
                ),
                network::Mode::Host => network::Resolvers::Host,
                _ => network::Resolvers::Unreachable,
            };
            (
                hosts,
                network::resolv_conf(&config.dns, resolvers, &host_resolv),
            )
        }
    };
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, hosts_text)?;
    let hostname = dir.join("hostname");
    std::fs::write(&hostname, format!("{}\n", config.hostname))?;
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, resolv_text)?;
    Ok(vec![
        (hosts, "/etc/hosts".into()),
        (hostname, "/etc/hostname".into()),
        (resolv, "/etc/resolv.conf".into()),
    ])
}

/// PID 1 of container `id`, whose network another container is to share: it must be running.
pub fn network_owner_pid(store: &Store, id: &str) -> anyhow::Result<i32> {
    let state = store.observed_container_state(id)?;
    match state.pid {
        Some(pid) if state.status == Status::Running => Ok(pid),
        _ => anyhow::bail!(
            "container {}, whose network this one shares, is not running: start it first",
            &id[..id.len().min(12)]
        ),
    }
}

/// Enters the network namespace of container `other`, which must be running. This process
/// is already in its user namespace (see `IdLayout::Join`).
fn join_network_of(store: &Store, other: &str) -> anyhow::Result<()> {
    let pid = network_owner_pid(store, other)?;
    let short = &other[..other.len().min(12)];
    let ns = File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
        anyhow::anyhow!("cannot open the network namespace of container {short}: {e}")
    })?;
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("cannot join the network namespace of container {short}: {e}"))
}

/// fuse-overlayfs's id mapping that shows the layers' owners as they are in the store's
/// standard layout, from inside a keep-id namespace where the user is `uid`/`gid`.
fn keep_id_shown_ids((uid, gid): (u32, u32), driver: Driver) -> anyhow::Result<ShownIds> {
    if driver != Driver::FuseOverlayfs || !fuse_overlayfs_usable() {
        anyhow::bail!(
            "--userns=keep-id needs fuse-overlayfs (Debian package `fuse-overlayfs`) and a usable /dev/fuse (mode 0666)"
        );
    }
    let max = |path: &str| -> anyhow::Result<u32> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        Ok(idmap::max_inside(&idmap::parse_proc_map(&text)))
    };
    Ok(ShownIds {
        uid: idmap::keep_id_storage_map(uid, max("/proc/self/uid_map")?),
        gid: idmap::keep_id_storage_map(gid, max("/proc/self/gid_map")?),
    })
}

/// keep-id: the container's /etc/passwd and /etc/group with the user added where the image
/// lacks them, kept in the container's directory and bind-mounted over the image's. The
/// image's files are read through the root (a symlink in them cannot reach the host).
fn write_keep_id_accounts(
    dir: &Path,
    merged: &Path,
    uid: u32,
    gid: u32,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let read = |path: &str| -> anyhow::Result<String> {
        let host = mounts::resolve_in_root(&mounts::InRoot::new(merged, path))?;
        match std::fs::read(&host) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(anyhow::anyhow!("cannot read the container's {path}: {e}")),
        }
    };
    // The monitor still sees the host's /etc/passwd.
    let host_user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let name = host_user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| format!("user{uid}"));
    let home = host_user
        .as_ref()
        .map(|u| u.dir.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let account = users::Account {
        name: &name,
        uid,
        gid,
        home: &home,
    };
    let (passwd, group) =
        users::with_account(&read("/etc/passwd")?, &read("/etc/group")?, &account);
    let mut files = Vec::new();
    for (text, file, path) in [
        (passwd, "passwd", "/etc/passwd"),
        (group, "group", "/etc/group"),
    ] {
        if let Some(text) = text {
            let host = dir.join(file);
            std::fs::write(&host, text)?;
            files.push((host, path.to_string()));
        }
    }
    Ok(files)
}

fn resolve_binds(store: &Store, specs: &[MountSpec]) -> anyhow::Result<Vec<Bind>> {
    let mut binds = Vec::new();
    for spec in specs {
        match spec {
            MountSpec::Bind {
                source,
                destination,
                read_only,
            } => binds.push(Bind {
                source: source.clone(),
                destination: destination.clone(),
                read_only: *read_only,
            }),
            MountSpec::Volume {
                name,
                destination,
                read_only,
            } => {
                let data = store.root().join("volumes").join(name).join("_data");
                std::fs::create_dir_all(&data)?;
                binds.push(Bind {
                    source: data,
                    destination: destination.clone(),
                    read_only: *read_only,
                });
            }
            MountSpec::Tmpfs { .. } => {}
        }
    }
    Ok(binds)
}

/// Used by the CLI to read what a detached monitor reports: Ok when the container runs.
pub fn read_notification(mut from: File) -> anyhow::Result<()> {
    let mut text = String::new();
    from.read_to_string(&mut text)?;
    match text.as_str() {
        "ok" => Ok(()),
        "" => Err(anyhow::anyhow!(
            "the container's monitor exited before the container started"
        )),
        other => {
            let (code, message) = other
                .split_once('\t')
                .map(|(c, m)| (c.parse().unwrap_or(125), m.to_string()))
                .unwrap_or((125, other.to_string()));
            Err(start_failure(code, message))
        }
    }
}

/// The notify pipe's write end as the monitor received it (an inherited descriptor).
pub fn adopt_notify_fd(raw: i32) -> io::Result<File> {
    let fd = sys::adopt_inherited_fd(raw)?;
    // The container's process must not inherit it: the CLI waits for its end-of-file.
    sys::set_cloexec(&fd)?;
    Ok(File::from(fd))
}
