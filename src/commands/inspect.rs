//! `nook inspect`: an image's details as `docker image inspect` prints them.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{Ctx, familiar_digest, familiar_repo_tag, find_image, print_out};
use crate::cli::InspectArgs;
use crate::format::Template;
use crate::store::Store;
use crate::store::images::ImageRecord;

pub fn run(args: InspectArgs, ctx: &Ctx) -> Result<i32> {
    let template = args.format.as_deref().map(Template::parse).transpose()?;
    let config = ctx.registries()?;
    let store = ctx.store()?;
    let index = store.images()?;
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match find_image(&index, name, &config) {
            Ok((image, _)) => values.push(inspect_value(&store, &image)?),
            Err(_) => missing.push(name.clone()),
        }
    }
    let out = match &template {
        Some(t) => values.iter().map(|v| t.render(v) + "\n").collect(),
        None => serde_json::to_string_pretty(&Value::Array(values))? + "\n",
    };
    print_out(&out)?;
    if let Some(first) = missing.first() {
        anyhow::bail!("no such image: {first}");
    }
    Ok(0)
}

pub fn inspect_value(store: &Store, image: &ImageRecord) -> Result<Value> {
    let config_bytes = store
        .read_blob(&image.id)
        .context("cannot read the image config")?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .context("the stored image config is not valid JSON")?;
    let repo_tags: Vec<String> = image
        .names
        .iter()
        .map(|n| {
            let (r, t) = familiar_repo_tag(n);
            format!("{r}:{t}")
        })
        .collect();
    let repo_digests: Vec<String> = image
        .repo_digests
        .iter()
        .map(|d| {
            let (r, digest) = familiar_digest(d);
            format!("{r}@{digest}")
        })
        .collect();
    let lower: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(|d| store.layer_diff_dir(d).display().to_string())
        .collect();
    let get = |key: &str| config.get(key).cloned().unwrap_or(Value::Null);
    let text = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.pointer("/history").and_then(Value::as_array).and_then(|h| h.last()).and_then(|h| h.get("comment")).and_then(Value::as_str).unwrap_or_default(),
        "Created": text("created"),
        "DockerVersion": text("docker_version"),
        "Author": text("author"),
        "Config": get("config"),
        "Architecture": image.architecture,
        "Variant": config.get("variant").cloned().unwrap_or(Value::Null),
        "Os": image.os,
        "Size": image.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lower.join(":") }
        },
        "RootFS": {
            "Type": "layers",
            "Layers": image.layers.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": image.added.to_rfc3339() },
        "ManifestDigest": image.manifest.to_string(),
    }))
}
