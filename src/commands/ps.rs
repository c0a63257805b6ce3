//! `nook ps`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::PsArgs;

pub fn run(args: PsArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook ps` is not implemented yet")
}
