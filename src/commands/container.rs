//! `nook container …`. (Stub: being written.)

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::ContainerCommand;

pub fn run(command: ContainerCommand, ctx: &Ctx) -> Result<i32> {
    let _ = ctx;
    match command {
        ContainerCommand::Prune(_) => bail!("`nook container prune` is not implemented yet"),
    }
}
