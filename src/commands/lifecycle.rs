//! `nook start`, `stop`, `kill`, `restart`.
//!
//! Signals are sent from the host side, outside nook's user namespace: the user owns the
//! container's user namespace, and so holds CAP_KILL over every process in it, whatever
//! container user it runs as. A new user namespace of nook's own would not.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::{KillArgs, StartArgs, StopArgs};
use crate::store::Store;
use crate::store::containers::{self, ContainerRecord, ContainerState, Status};

pub fn start(args: StartArgs, ctx: &Ctx) -> Result<i32> {
    if args.attach && args.containers.len() > 1 {
        bail!("you cannot start and attach to more than one container at once");
    }
    let store = ctx.store()?;
    if args.attach || args.interactive {
        let record = store.find_container(&args.containers[0])?;
        if observe(&store, &record)?.status == Status::Running {
            bail!("container {} is already running", args.containers[0]);
        }
        return super::run::launch(ctx, &record, true, false, false);
    }
    each(&args.containers, "start", |input| {
        let record = store.find_container(input)?;
        if observe(&store, &record)?.status != Status::Running {
            super::run::launch(ctx, &record, false, false, false)?;
        }
        Ok(())
    })
}

pub fn stop(args: StopArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    each(&args.containers, "stop", |input| {
        let record = store.find_container(input)?;
        stop_one(&store, &record, args.time)
    })
}

pub fn restart(args: StopArgs, ctx: &Ctx) -> Result<i32> {
    // Stop from the host side (see the module note), then start each monitor in a user
    // namespace of its own.
    let store = ctx.store()?;
    for input in &args.containers {
        let record = store.find_container(input)?;
        stop_one(&store, &record, args.time)?;
    }
    each(&args.containers, "restart", |input| {
        let record = store.find_container(input)?;
        super::run::launch(ctx, &record, false, false, false).map(drop)
    })
}

pub fn kill(args: KillArgs, ctx: &Ctx) -> Result<i32> {
    let signal = super::run::parse_signal(&args.signal)?;
    let store = ctx.store()?;
    each(&args.containers, "kill", |input| {
        let record = store.find_container(input)?;
        let state = observe(&store, &record)?;
        let Some(pid) = live_pid(&state) else {
            bail!("container {input} is not running");
        };
        send(pid, signal)
    })
}

/// [`super::for_each_input`] for verbs that print the name given.
fn each(inputs: &[String], verb: &str, mut action: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    super::for_each_input(inputs, |input| {
        action(input)
            .map(|()| input.to_string())
            .map_err(|e| e.context(format!("cannot {verb} container {input}")))
    })
}

fn observe(store: &Store, record: &ContainerRecord) -> Result<ContainerState> {
    Ok(containers::observed_state(
        &store.container_state(&record.id)?,
    ))
}

/// PID 1 if the container runs and the pid still names the same process.
fn live_pid(state: &ContainerState) -> Option<i32> {
    if state.status != Status::Running {
        return None;
    }
    let pid = state.pid?;
    (containers::process_start_time(pid) == state.pid_start).then_some(pid)
}

fn send(pid: i32, signal: nix::sys::signal::Signal) -> Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .map_err(|e| anyhow::anyhow!("cannot send {signal} to process {pid}: {e}"))
}

/// The stop signal, up to `timeout` seconds of grace, then SIGKILL; returns once the
/// monitor has recorded the exit.
pub fn stop_one(store: &Store, record: &ContainerRecord, timeout: Option<u32>) -> Result<()> {
    let Some(pid) = live_pid(&observe(store, record)?) else {
        return Ok(());
    };
    let signal = super::run::parse_signal(&record.config.stop_signal)?;
    let grace = Duration::from_secs(timeout.unwrap_or(record.config.stop_timeout).into());
    send(pid, signal)?;
    if wait_until_stopped(store, record, grace)? {
        return Ok(());
    }
    if let Some(pid) = live_pid(&observe(store, record)?) {
        send(pid, nix::sys::signal::Signal::SIGKILL)?;
    }
    if wait_until_stopped(store, record, Duration::from_secs(10))? {
        return Ok(());
    }
    bail!("the container did not stop within 10 seconds of SIGKILL")
}

/// True once the monitor has recorded the exit (with the real exit status), or is gone.
fn wait_until_stopped(store: &Store, record: &ContainerRecord, within: Duration) -> Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        let raw = store.container_state(&record.id)?;
        if raw.status != Status::Running
            || !containers::process_alive(raw.monitor_pid, raw.monitor_start)
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
