//! `nook exec`: a new process in a running container's namespaces.
//!
//! This process joins the container's user namespace first (the user owns it, so may), then
//! its mount, UTS, IPC, network, cgroup and PID namespaces, and forks: the child, now inside
//! the container's PID namespace, resolves user, environment and working directory against
//! the container's own files and execs with the container's capabilities and seccomp policy.

use std::fs::File;
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::Ctx;
use crate::cli::ExecArgs;
use crate::error::ExitError;
use crate::runtime::container::{ExecPlan, ProcessPlan};
use crate::runtime::security;
use crate::runtime::tty;
use crate::store::containers::{self, Status};
use crate::sys;

pub fn run(args: ExecArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let state = containers::observed_state(&store.container_state(&record.id)?);
    let pid = match (state.status, state.pid) {
        (Status::Running, Some(pid)) if containers::process_start_time(pid) == state.pid_start => {
            pid
        }
        _ => bail!("container {} is not running", args.container),
    };
    let config = &record.config;
    let (caps, seccomp) = crate::runtime::container::security_for(config)?;
    // Open every namespace before joining any: after the mount namespace changes, this
    // process's /proc is the container's.
    let namespaces: Vec<(File, CloneFlags)> = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid", CloneFlags::CLONE_NEWPID),
    ]
    .into_iter()
    .map(|(name, flag)| {
        let path = format!("/proc/{pid}/ns/{name}");
        File::open(&path)
            .map(|f| (f, flag))
            .with_context(|| format!("cannot open {path}"))
    })
    .collect::<Result<_>>()?;
    for (file, flag) in &namespaces {
        nix::sched::setns(file.as_fd(), *flag)
            .with_context(|| format!("cannot join the container's {flag:?} namespace"))?;
    }
    let pty = if args.tty {
        Some(tty::open_pty(tty::terminal_size(std::io::stdin().as_fd()))?)
    } else {
        None
    };
    let user = args.user.clone().unwrap_or_else(|| config.user.clone());
    let workdir = args
        .workdir
        .clone()
        .unwrap_or_else(|| config.working_dir.clone());
    let (failure_r, failure_w) = sys::pipe()?;
    // The child is in the container's PID namespace from its fork on, holding this process's
    // descriptors and running the host's nook binary until its exec: nothing in the container
    // may open its /proc files meanwhile (see set_dumpable). Inherited by the fork.
    security::set_dumpable(false)?;
    let child = match sys::fork_single_threaded()? {
        sys::Forked::Child => {
            drop(failure_r);
            let (code, message) = (|| {
                if let Some(pty) = &pty {
                    tty::make_controlling_terminal(&pty.slave)
                        .map_err(|e| (125, format!("cannot set up the terminal: {e}")))?;
                } else if args.detach {
                    let _ = nix::unistd::setsid();
                }
                if !args.interactive && !args.tty {
                    let null = File::open("/dev/null").map_err(|e| (125, e.to_string()))?;
                    use std::os::fd::AsRawFd;
                    nix::unistd::dup2(null.as_raw_fd(), 0).map_err(|e| (125, e.to_string()))?;
                }
                // Descriptors the caller of `nook exec` left open (a directory of the host,
                // a socket) must not reach the container: the command gets 0, 1 and 2 only,
                // as PID 1 does.
                sys::cloexec_from(3)
                    .map_err(|e| (125, format!("cannot close nook's descriptors: {e}")))?;
                let plan = ExecPlan::resolve_command(
                    config,
                    Some(&args.command),
                    &args.env,
                    &user,
                    &workdir,
                )?;
                let process = ProcessPlan {
                    config,
                    caps: &caps,
                    seccomp: seccomp.as_ref(),
                };
                Err::<(), _>(plan.become_and_exec(&process))
            })()
            .unwrap_err();
            use std::io::Write;
            let _ = write!(File::from(failure_w), "{code}\t{message}");
            sys::exit_now(code);
        }
        sys::Forked::Parent { child } => child,
    };
    drop(failure_w);
    let mut failure = String::new();
    std::io::Read::read_to_string(&mut File::from(failure_r), &mut failure)?;
    if !failure.is_empty() {
        let _ = waitpid(Pid::from_raw(child), None);
        let (code, message) = failure
            .split_once('\t')
            .map(|(c, m)| (c.parse().unwrap_or(125), m.to_string()))
            .unwrap_or((125, failure.clone()));
        return Err(ExitError { code, message }.into());
    }
    if args.detach {
        return Ok(0);
    }
    sys::forward_signals_to(child)?;
    // In this process no thread can be started any more (it joined another PID namespace
    // for its children): the terminal relay runs here, until the command's side closes.
    if let Some(pty) = pty {
        drop(pty.slave);
        let _guard = tty::RawModeGuard::enable(std::io::stdin().as_fd())
            .ok()
            .flatten();
        let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
        let input = args.interactive.then_some(stdin.as_fd());
        let _ = tty::relay(&pty.master, input, stdout.as_fd(), Some(stdin.as_fd()));
    }
    let code = loop {
        match waitpid(Pid::from_raw(child), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("cannot wait for the command: {e}"),
        }
    };
    Ok(code)
}
