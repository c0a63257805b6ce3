//! `nook logs`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::LogsArgs;

pub fn run(args: LogsArgs, ctx: &Ctx) -> Result<i32> {
    let _ = (args, ctx);
    bail!("`nook logs` is not implemented yet")
}
