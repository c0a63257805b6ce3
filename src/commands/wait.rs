//! `nook wait`: block until containers exit, printing each one's exit code.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::ContainersArgs;
use crate::store::Store;
use crate::store::containers::{ContainerState, Status, observed_state, process_alive};

const POLL: Duration = Duration::from_millis(50);

pub fn run(args: ContainersArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    super::for_each_input(&args.containers, |input| {
        wait_one(&store, input).map(|code| code.to_string())
    })
}

fn wait_one(store: &Store, input: &str) -> Result<i32> {
    let record = store.find_container(input)?;
    loop {
        let state = store
            .container_state(&record.id)
            .map_err(|_| crate::store::containers::ContainerError::NoSuch {
                input: input.to_string(),
            })
            .with_context(|| format!("container {input} was removed while waiting"))?;
        if let Some(done) = settled(store, &record.id, &state) {
            return Ok(done.exit_code.unwrap_or(255));
        }
        std::thread::sleep(POLL);
    }
}

/// The final state when the container is no longer running; None while it runs. When PID 1 is
/// gone but its monitor lives, the monitor is given a moment to record the real exit code.
pub fn settled(store: &Store, id: &str, raw: &ContainerState) -> Option<ContainerState> {
    let observed = observed_state(raw);
    match observed.status {
        Status::Created | Status::Running => return None,
        Status::Exited if raw.status != Status::Running => return Some(observed),
        Status::Exited => {}
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && process_alive(raw.monitor_pid, raw.monitor_start) {
        std::thread::sleep(POLL);
        match store.container_state(id) {
            Ok(now) if now.status != Status::Running => return Some(now),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    store
        .observed_container_state(id)
        .ok()
        .filter(|s| s.status == Status::Exited)
        .or(Some(observed))
}
