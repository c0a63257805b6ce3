//! `nook tag SOURCE TARGET`.

use anyhow::{Result, bail};

use super::{Ctx, find_image};
use crate::cli::TagArgs;
use crate::image::reference::Reference;

pub fn run(args: TagArgs, ctx: &Ctx) -> Result<i32> {
    let target = Reference::parse(&args.target)?;
    if target.digest.is_some() {
        bail!(
            "cannot tag with a digest (`{}`): a digest names content, not a tag",
            args.target
        );
    }
    let config = ctx.registries()?;
    let store = ctx.store()?;
    store.update_images(|index| -> Result<()> {
        let (image, _) = find_image(index, &args.source, &config)?;
        index.tag(&image.id, &target.to_string());
        Ok(())
    })?;
    Ok(0)
}
