//! `nook rm`: remove containers; `-f` kills a running one first.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::Ctx;
use crate::cli::RmArgs;
use crate::runtime::userns;
use crate::store::Store;
use crate::store::containers::{ContainerState, Status, process_alive};

pub fn run(args: RmArgs, ctx: &Ctx) -> Result<i32> {
    if args.force {
        // Killed from the host side: the user owns each container's user namespace and so
        // may signal any of its processes; from a user namespace of our own we could not
        // signal one running as a non-root container user. Failures show up below.
        let store = ctx.store()?;
        for input in &args.containers {
            if let Ok(record) = store.find_container(input)
                && let Ok(state) = store.observed_container_state(&record.id)
                && state.status == Status::Running
            {
                let _ = kill_and_wait(&store, &record.id, &state);
            }
        }
    }
    // What a container wrote belongs to subordinate ids: only root of the user namespace may
    // delete it.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    super::for_each_input(&args.containers, |input| {
        remove_one(&store, input, args.force).map(|()| input.to_string())
    })
}

fn remove_one(store: &Store, input: &str, force: bool) -> Result<()> {
    let record = store.find_container(input)?;
    let state = store.observed_container_state(&record.id)?;
    if state.status == Status::Running {
        if !force {
            bail!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                record.name
            );
        }
        kill_and_wait(store, &record.id, &state)
            .map_err(|e| e.context(format!("cannot remove container \"/{}\"", record.name)))?;
    }
    store.remove_container(&record.id)?;
    if !record.config.limits.is_empty() {
        crate::runtime::cgroups::remove(&record.id);
    }
    Ok(())
}

/// SIGKILLs PID 1 (after checking it is still the recorded process) and waits up to 10 s
/// until the monitor records the exit or the process is gone.
pub fn kill_and_wait(store: &Store, id: &str, state: &ContainerState) -> Result<()> {
    if process_alive(state.pid, state.pid_start) {
        let pid = nix::unistd::Pid::from_raw(state.pid.expect("alive means recorded"));
        match nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot kill process {pid}")));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let raw = store.container_state(id)?;
        if raw.status != Status::Running {
            return Ok(());
        }
        if !process_alive(raw.pid, raw.pid_start) {
            // Give a living monitor a moment to record the exit before the directory goes.
            if super::wait::settled(store, id, &raw).is_some() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!("the container did not stop within 10 seconds of SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
