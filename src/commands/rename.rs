//! `nook rename`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::RenameArgs;

pub fn run(args: RenameArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook rename` is not implemented yet")
}
