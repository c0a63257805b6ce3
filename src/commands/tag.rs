//! `nook tag SOURCE TARGET`.

use anyhow::Result;

use super::{Ctx, find_image};
use crate::cli::TagArgs;

pub fn run(args: TagArgs, ctx: &Ctx) -> Result<i32> {
    let target = super::new_image_name(&args.target, "tag with")?;
    let config = ctx.registries()?;
    let store = ctx.store()?;
    store.update_images(|index| -> Result<()> {
        let (image, _) = find_image(index, &args.source, &config)?;
        index.tag(&image.id, &target);
        Ok(())
    })?;
    Ok(0)
}
