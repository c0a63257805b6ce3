//! `nook images`: the image table as Docker lays it out.

use anyhow::Result;
use serde_json::{Value, json};

use super::{Ctx, familiar_digest, familiar_repo_tag, print_out, show_id};
use crate::cli::ImagesArgs;
use crate::format;
use crate::image::reference::Reference;
use crate::store::images::ImageRecord;

const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub fn run(args: ImagesArgs, ctx: &Ctx) -> Result<i32> {
    let template = super::listing_format(args.format.as_deref(), args.quiet)?;
    let store = ctx.store()?;
    let mut index = store.images()?;
    index
        .images
        .sort_by(|a, b| b.created.cmp(&a.created).then(b.added.cmp(&a.added)));
    let filter = args.filter.as_deref().map(Reference::parse).transpose()?;
    let filter_has_tag = args.filter.as_deref().is_some_and(|f| {
        let last = f.rsplit('/').next().unwrap_or(f);
        last.contains(':') || last.contains('@')
    });

    let mut rows: Vec<Value> = Vec::new();
    for image in &index.images {
        for (repo, tag) in names_of(image) {
            if let Some(f) = &filter {
                let full = full_name(&repo);
                if full != f.name() && repo != f.familiar_name() {
                    continue;
                }
                if filter_has_tag && f.tag.as_deref() != Some(tag.as_str()) {
                    continue;
                }
            }
            let digest = image
                .repo_digests
                .iter()
                .map(|d| familiar_digest(d))
                .find(|(r, _)| *r == repo)
                .map(|(_, d)| d)
                .unwrap_or_else(|| "<none>".into());
            rows.push(json!({
                "Containers": "N/A",
                "CreatedAt": image.created.map(|c| c.format("%Y-%m-%d %H:%M:%S %z UTC").to_string()).unwrap_or_default(),
                "CreatedSince": image.created.map(format::since).unwrap_or_else(|| "N/A".into()),
                "Digest": digest,
                "ID": show_id(&image.id, args.no_trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": format::human_size(image.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": format::human_size(image.size),
            }));
        }
    }

    let mut keys = vec!["Repository", "Tag"];
    if args.digests {
        keys.push("Digest");
    }
    keys.extend(["ID", "CreatedSince", "Size"]);
    let out = format::listing(&rows, args.quiet, template.as_ref(), HEADERS, &keys)?;
    print_out(&out)?;
    Ok(0)
}

/// (repository, tag) rows for an image: one per name, `<none>` when it has none.
pub(super) fn names_of(image: &ImageRecord) -> Vec<(String, String)> {
    if image.names.is_empty() {
        let repo = image
            .repo_digests
            .first()
            .map(|d| familiar_digest(d).0)
            .unwrap_or_else(|| "<none>".into());
        return vec![(repo, "<none>".into())];
    }
    image.names.iter().map(|n| familiar_repo_tag(n)).collect()
}

fn full_name(familiar: &str) -> String {
    Reference::parse(familiar)
        .map(|r| r.name())
        .unwrap_or_else(|_| familiar.to_string())
}
