//! `nook wait`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::ContainersArgs;

pub fn run(args: ContainersArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook wait` is not implemented yet")
}
