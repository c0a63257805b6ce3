//! `nook start`, `stop`, `kill`, `restart`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::{KillArgs, StartArgs, StopArgs};

pub fn start(args: StartArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook start` is not implemented yet")
}

pub fn stop(args: StopArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook stop` is not implemented yet")
}

pub fn restart(args: StopArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook restart` is not implemented yet")
}

pub fn kill(args: KillArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook kill` is not implemented yet")
}
