//! `nook exec`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::ExecArgs;

pub fn run(args: ExecArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook exec` is not implemented yet")
}
