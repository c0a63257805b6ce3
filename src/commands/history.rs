//! `nook history`: the image's build steps, newest first, as Docker prints them.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ctx, find_image, print_out, show_id};
use crate::cli::HistoryArgs;
use crate::format;

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

pub fn run(args: HistoryArgs, ctx: &Ctx) -> Result<i32> {
    let template = super::listing_format(args.format.as_deref(), args.quiet)?;
    let config = ctx.registries()?;
    let store = ctx.store()?;
    let index = store.images()?;
    let (image, _) = find_image(&index, &args.image, &config)?;
    let config_value: Value = serde_json::from_slice(&store.read_blob(&image.id)?)
        .context("the stored image config is not valid JSON")?;
    let history = config_value
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    // Each non-empty history entry owns the next layer, bottom first.
    let mut layers = image.layers.iter();
    let mut rows: Vec<Value> = Vec::new();
    for entry in &history {
        let empty = entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers
                .next()
                .and_then(|d| store.layer_info(d).ok())
                .map(|i| i.size)
                .unwrap_or(0)
        };
        let created = entry
            .get("created")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc));
        let created_by = entry
            .get("created_by")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let created_by = if args.no_trunc {
            created_by.to_string()
        } else {
            truncate(created_by, 45)
        };
        rows.push(json!({
            "ID": "<missing>",
            "CreatedSince": match created { Some(c) if args.human => format::since(c), Some(c) => c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), None => "N/A".into() },
            "CreatedAt": created.map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
            "CreatedBy": created_by,
            "Size": if args.human { format::human_size(size) } else { size.to_string() },
            "Comment": entry.get("comment").and_then(Value::as_str).unwrap_or_default(),
        }));
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top["ID"] = Value::String(show_id(&image.id, args.no_trunc));
    }
    let keys = ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"];
    let out = format::listing(&rows, args.quiet, template.as_ref(), HEADERS, &keys)?;
    print_out(&out)?;
    Ok(0)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}
