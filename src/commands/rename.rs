//! `nook rename OLD NEW`.

use anyhow::Result;

use super::Ctx;
use crate::cli::RenameArgs;

pub fn run(args: RenameArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    store.rename_container(&record.id, &args.new_name)?;
    Ok(0)
}
