//! `nook attach`: the user's terminal joined to a running container's.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::AttachArgs;
use crate::runtime::tty;
use crate::store::containers::{self, Status};
use crate::store::logs::{LogFollower, Stream};

pub fn run(args: AttachArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let running = |store: &crate::store::Store| -> Result<bool> {
        Ok(
            containers::observed_state(&store.container_state(&record.id)?).status
                == Status::Running,
        )
    };
    if !running(&store)? {
        bail!(
            "container {} is not running: start it with `nook start -a {}`",
            args.container,
            args.container
        );
    }
    let dir = store.container_dir(&record.id);
    if record.config.tty {
        let ended = {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            let _raw = tty::RawModeGuard::enable(stdin.as_fd())?;
            crate::runtime::attach::attach(&dir, stdin.as_fd(), stdout.as_fd()).map_err(|e| {
                anyhow::anyhow!("cannot attach to container {}: {e}", args.container)
            })?
        };
        if !ended {
            eprintln!("\r\nread escape sequence");
            return Ok(0);
        }
    } else if record.config.log_driver == crate::config::LogDriver::None {
        bail!(
            "cannot attach to container {}: without a terminal nook's attach reads the log, and its logging driver is none (create it with --log-driver json-file)",
            args.container
        );
    } else {
        // No terminal to share: show what it writes from now on, until it exits.
        let mut follower = LogFollower::from_end(&dir.join("ctr.log"))?;
        loop {
            for entry in follower.wait_new(Duration::from_millis(100))? {
                let text = String::from_utf8_lossy(&entry.text);
                match entry.stream {
                    Stream::Stdout => super::print_out(&text)?,
                    Stream::Stderr => eprint!("{text}"),
                }
            }
            if !running(&store)? {
                for entry in follower.read_new()? {
                    let text = String::from_utf8_lossy(&entry.text);
                    match entry.stream {
                        Stream::Stdout => super::print_out(&text)?,
                        Stream::Stderr => eprint!("{text}"),
                    }
                }
                break;
            }
        }
    }
    // The container ended while attached: its exit status is ours, once the monitor has it.
    for _ in 0..100 {
        let state = store.container_state(&record.id)?;
        if state.status != Status::Running {
            return Ok(state.exit_code.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(
        containers::observed_state(&store.container_state(&record.id)?)
            .exit_code
            .unwrap_or(0),
    )
}
