//! `nook run` and `nook create`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::RunArgs;

pub fn run(args: RunArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook run` is not implemented yet")
}

pub fn create(args: RunArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook create` is not implemented yet")
}
