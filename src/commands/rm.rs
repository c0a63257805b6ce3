//! `nook rm`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::RmArgs;

pub fn run(args: RmArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook rm` is not implemented yet")
}
