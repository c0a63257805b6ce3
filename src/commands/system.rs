//! `nook system check|df|prune|reset|info` and `nook image prune`: looking after the store.
//! The checking and collecting itself is `store::check`; this layer asks, counts and prints.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use super::{Ctx, print_out};
use crate::cli::{
    CheckArgs, DfArgs, ImageCommand, ImagePruneArgs, ResetArgs, SystemCommand, SystemPruneArgs,
};
use crate::format;
use crate::image::digest::Digest;
use crate::runtime::userns;
use crate::store::Store;
use crate::store::check::{self, Verify};
use crate::store::containers::{MountSpec, Status, dir_size};
use crate::store::prune::{Condition, Removal};

pub fn run(command: SystemCommand, ctx: &Ctx) -> Result<i32> {
    match command {
        SystemCommand::Check(args) => check(args, ctx),
        SystemCommand::Df(args) => df(args, ctx),
        SystemCommand::Prune(args) => prune(args, ctx),
        SystemCommand::Reset(args) => reset(args, ctx),
        SystemCommand::Info(args) => super::info::run(args, ctx),
        SystemCommand::Doctor(args) => super::doctor::run(args, ctx),
    }
}

pub fn image(command: ImageCommand, ctx: &Ctx) -> Result<i32> {
    match command {
        ImageCommand::Prune(args) => image_prune(args, ctx),
        // Docker's management forms: `nook image ls` is `nook images`.
        ImageCommand::Ls(args) => super::images::run(args, ctx),
        ImageCommand::Rm(args) => super::rmi::run(args, ctx),
        ImageCommand::Inspect(mut args) => {
            args.kind = Some(crate::cli::ObjectKind::Image);
            super::inspect::run(args, ctx)
        }
        ImageCommand::Pull(args) => super::pull::run(args, ctx),
        ImageCommand::Push(args) => super::push::run(args, ctx),
        ImageCommand::Tag(args) => super::tag::run(args, ctx),
        ImageCommand::History(args) => super::history::run(args, ctx),
        ImageCommand::Save(args) => super::save::run(args, ctx),
        ImageCommand::Load(args) => super::load::run(args, ctx),
        ImageCommand::Import(args) => super::import::run(args, ctx),
    }
}

/// A prune or reset asks first; with nobody at a terminal to answer, it refuses rather than
/// guessing (a script says `-f`).
pub(super) fn require_terminal_unless(force: bool, command: &str) -> Result<()> {
    if force || std::io::stdin().is_terminal() {
        return Ok(());
    }
    bail!(
        "{command} asks for confirmation, but standard input is not a terminal: add -f to go ahead without asking"
    )
}

/// Prints `warning` and Docker's question; true when the answer is yes (or `force`).
pub(super) fn confirm(warning: &str, force: bool) -> Result<bool> {
    if force {
        return Ok(true);
    }
    print_out(&format!(
        "{warning}\nAre you sure you want to continue? [y/N] "
    ))?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

fn check(args: CheckArgs, ctx: &Ctx) -> Result<i32> {
    // Layer files and what containers wrote belong to subordinate ids, in directories that
    // may be mode 0700: only root of the user namespace reads (and removes) them all.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let opts = check::Options {
        verify: Some(if args.quick {
            Verify::Quick
        } else {
            Verify::Full
        }),
        repair: args.repair,
        force: args.force,
    };
    let report = check::run(&store, &opts).context("cannot check the store")?;
    let (text, code) = if args.repair {
        report.render_repair()
    } else {
        report.render_check(args.force)
    };
    print_out(&text)?;
    Ok(code)
}

/// One row of `system df`'s summary.
#[derive(Debug, Default, PartialEq)]
struct Usage {
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

impl Usage {
    /// Docker's RECLAIMABLE cell: the size and its share of the total, when there is one.
    fn reclaimable_cell(&self) -> String {
        let size = format::human_size_precise(self.reclaimable);
        match (self.reclaimable * 100).checked_div(self.size) {
            Some(percent) => format!("{size} ({percent}%)"),
            None => size,
        }
    }
}

/// The fields of `system df --format`: Docker's, as text.
const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

fn df_rows(images: &Usage, containers: &Usage, volumes: &Usage) -> Vec<serde_json::Value> {
    [
        ("Images", images),
        ("Containers", containers),
        ("Local Volumes", volumes),
    ]
    .into_iter()
    .map(|(kind, u)| {
        serde_json::json!({
            "Type": kind,
            "TotalCount": u.total.to_string(),
            "Active": u.active.to_string(),
            "Size": format::human_size_precise(u.size),
            "Reclaimable": u.reclaimable_cell(),
        })
    })
    .collect()
}

/// Docker's `system df` table.
fn df_table(images: &Usage, containers: &Usage, volumes: &Usage) -> String {
    let mut rows = vec![vec![
        "TYPE".to_string(),
        "TOTAL".into(),
        "ACTIVE".into(),
        "SIZE".into(),
        "RECLAIMABLE".into(),
    ]];
    for (kind, u) in [
        ("Images", images),
        ("Containers", containers),
        ("Local Volumes", volumes),
    ] {
        rows.push(vec![
            kind.to_string(),
            u.total.to_string(),
            u.active.to_string(),
            format::human_size_precise(u.size),
            u.reclaimable_cell(),
        ]);
    }
    format::table(&rows)
}

fn df(args: DfArgs, ctx: &Ctx) -> Result<i32> {
    let template = args
        .format
        .as_deref()
        .map(format::Template::parse)
        .transpose()?
        .filter(|t| !t.is_default_table());
    if let Some(t) = template.as_ref().filter(|_| !args.verbose) {
        t.check_fields(&DF_HEADERS.iter().map(|(k, _)| *k).collect::<Vec<_>>())?;
    }
    // What containers wrote and what volumes hold belong to subordinate ids, in
    // directories that may be mode 0700: counted from inside the user namespace.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let index = store.images()?;
    let containers = store.containers()?;
    let now = Utc::now();

    let used_images: HashSet<&Digest> = containers.iter().map(|c| &c.image_id).collect();
    let mut layer_sizes: HashMap<&Digest, u64> = HashMap::new();
    let mut layer_users: HashMap<&Digest, usize> = HashMap::new();
    for image in &index.images {
        for d in &image.layers {
            layer_sizes
                .entry(d)
                .or_insert_with(|| store.layer_info(d).map_or(0, |i| i.size));
            *layer_users.entry(d).or_default() += 1;
        }
    }
    let unique_size = |layers: &mut dyn Iterator<Item = &Digest>| -> u64 {
        let set: HashSet<&Digest> = layers.collect();
        set.iter()
            .map(|d| layer_sizes.get(d).copied().unwrap_or(0))
            .sum()
    };
    let all_size = unique_size(&mut index.images.iter().flat_map(|i| &i.layers));
    let active_size = unique_size(
        &mut index
            .images
            .iter()
            .filter(|i| used_images.contains(&i.id))
            .flat_map(|i| &i.layers),
    );
    let images_usage = Usage {
        total: index.images.len(),
        active: index
            .images
            .iter()
            .filter(|i| used_images.contains(&i.id))
            .count(),
        size: all_size,
        reclaimable: all_size - active_size,
    };

    let mut container_rows = Vec::new();
    let mut containers_usage = Usage::default();
    let mut volume_links: HashMap<&str, usize> = HashMap::new();
    for c in &containers {
        for m in &c.config.mounts {
            if let MountSpec::Volume { name, .. } = m {
                *volume_links.entry(name.as_str()).or_default() += 1;
            }
        }
        let Ok(state) = store.observed_container_state(&c.id) else {
            continue;
        };
        let size = dir_size(&store.container_upper_dir(&c.id));
        containers_usage.total += 1;
        containers_usage.size += size;
        if state.status == Status::Running {
            containers_usage.active += 1;
        } else {
            containers_usage.reclaimable += size;
        }
        if args.verbose {
            let row = super::ps::summary(c, &state, false, now);
            container_rows.push((c.created, row, size));
        }
    }

    let mut volumes_usage = Usage::default();
    let mut volume_rows = Vec::new();
    for name in store.volume_names()? {
        let size = dir_size(&store.volume_data_dir(&name));
        let links = volume_links.get(name.as_str()).copied().unwrap_or(0);
        volumes_usage.total += 1;
        volumes_usage.size += size;
        if links > 0 {
            volumes_usage.active += 1;
        } else {
            volumes_usage.reclaimable += size;
        }
        volume_rows.push(vec![
            name,
            links.to_string(),
            format::human_size_precise(size),
        ]);
    }

    if !args.verbose {
        let out = match &template {
            Some(t) => {
                let rows = df_rows(&images_usage, &containers_usage, &volumes_usage);
                let fields: Vec<&str> = DF_HEADERS.iter().map(|(k, _)| *k).collect();
                t.render_all(&rows, &fields, DF_HEADERS)?
            }
            None => df_table(&images_usage, &containers_usage, &volumes_usage),
        };
        print_out(&out)?;
        return Ok(0);
    }
    let mut verbose_value = serde_json::json!({
        "Images": [], "Containers": [], "Volumes": [], "BuildCache": [],
    });

    let mut out = String::from("Images space usage:\n\n");
    let mut rows = vec![
        [
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut images: Vec<_> = index.images.iter().collect();
    images.sort_by(|a, b| b.created.cmp(&a.created).then(b.added.cmp(&a.added)));
    for image in images {
        let shared: u64 = image
            .layers
            .iter()
            .filter(|d| layer_users.get(d).copied().unwrap_or(0) > 1)
            .map(|d| layer_sizes.get(d).copied().unwrap_or(0))
            .sum();
        let users = containers.iter().filter(|c| c.image_id == image.id).count();
        for (repo, tag) in super::images::names_of(image) {
            verbose_value["Images"]
                .as_array_mut()
                .expect("a list")
                .push(serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "ID": image.id.short().to_string(),
                    "CreatedSince": image.created.map(format::since).unwrap_or_else(|| "N/A".into()),
                    "Size": format::human_size(image.size),
                    "SharedSize": format::human_size_precise(shared),
                    "UniqueSize": format::human_size_precise(image.size.saturating_sub(shared)),
                    "Containers": users.to_string(),
                }));
            rows.push(vec![
                repo,
                tag,
                image.id.short().to_string(),
                image
                    .created
                    .map(format::since)
                    .unwrap_or_else(|| "N/A".into()),
                format::human_size(image.size),
                format::human_size_precise(shared),
                format::human_size_precise(image.size.saturating_sub(shared)),
                users.to_string(),
            ]);
        }
    }
    out.push_str(&format::table(&rows));

    out.push_str("\nContainers space usage:\n\n");
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    container_rows.sort_by_key(|(created, _, _)| std::cmp::Reverse(*created));
    for (_, row, size) in &container_rows {
        let mut listed = row.clone();
        listed["Size"] = serde_json::json!(format::human_size(*size));
        verbose_value["Containers"]
            .as_array_mut()
            .expect("a list")
            .push(listed);
        let cell = |k: &str| row[k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            cell("ID"),
            cell("Image"),
            cell("Command"),
            cell("LocalVolumes"),
            format::human_size(*size),
            cell("RunningFor"),
            cell("Status"),
            cell("Names"),
        ]);
    }
    out.push_str(&format::table(&rows));

    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for volume in &volume_rows {
        verbose_value["Volumes"]
            .as_array_mut()
            .expect("a list")
            .push(serde_json::json!({"Name": volume[0], "Links": volume[1], "Size": volume[2]}));
    }
    rows.extend(volume_rows);
    out.push_str(&format::table(&rows));
    if let Some(t) = &template {
        // Docker's verbose --format: one value holding the three lists.
        out = t.render(&verbose_value)? + "\n";
    }
    print_out(&out)?;
    Ok(0)
}

/// Removes the images `condition` allows; Docker's `Deleted Images:` lines and the bytes.
fn prune_images(store: &Store, condition: Condition) -> Result<(String, u64)> {
    let mut lines = String::new();
    let mut reclaimed = 0;
    for image in store.images()?.images {
        let Removal::Removed(removed) = store.remove_image_if(&image.id, condition)? else {
            continue;
        };
        for name in &removed.record.names {
            let (repo, tag) = super::familiar_repo_tag(name);
            lines.push_str(&format!("untagged: {repo}:{tag}\n"));
        }
        for d in &removed.record.repo_digests {
            let (repo, digest) = super::familiar_digest(d);
            lines.push_str(&format!("untagged: {repo}@{digest}\n"));
        }
        lines.push_str(&format!("deleted: {}\n", removed.record.id));
        for layer in &removed.layers {
            lines.push_str(&format!("deleted: {layer}\n"));
        }
        reclaimed += removed.reclaimed;
    }
    // The files of removed layers go last: the records are already gone.
    store
        .purge_trash()
        .context("cannot delete removed layers")?;
    let section = if lines.is_empty() {
        String::new()
    } else {
        format!("Deleted Images:\n{lines}\n")
    };
    Ok((section, reclaimed))
}

fn image_prune(args: ImagePruneArgs, ctx: &Ctx) -> Result<i32> {
    require_terminal_unless(args.force, "nook image prune")?;
    // Layer files belong to subordinate ids: only root of the user namespace may delete them.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(warning, args.force)? {
        return Ok(0);
    }
    let store = ctx.store()?;
    let condition = if args.all {
        Condition::Unused
    } else {
        Condition::Dangling
    };
    let (section, reclaimed) = prune_images(&store, condition)?;
    print_out(&format!(
        "{section}Total reclaimed space: {}\n",
        format::human_size_precise(reclaimed)
    ))?;
    Ok(0)
}

fn system_prune_warning(all: bool, volumes: bool) -> String {
    let mut lines = vec!["WARNING! This will remove:", "  - all stopped containers"];
    if volumes {
        lines.push("  - all volumes not used by at least one container");
    }
    lines.push(if all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    });
    lines.push(
        "  - what interrupted commands left in the store, and layers and blobs no image uses",
    );
    lines.push("");
    lines.join("\n")
}

fn prune(args: SystemPruneArgs, ctx: &Ctx) -> Result<i32> {
    require_terminal_unless(args.force, "nook system prune")?;
    // What containers wrote, volumes and layers belong to subordinate ids: only root of the
    // user namespace may delete them.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    if !confirm(&system_prune_warning(args.all, args.volumes), args.force)? {
        return Ok(0);
    }
    let store = ctx.store()?;
    let containers = super::container::prune_stopped(&store);
    let mut out = containers.section();
    let mut reclaimed = containers.reclaimed;

    if args.volumes {
        let mut removed = Vec::new();
        for name in store.volume_names()? {
            if let Some(size) = store
                .remove_volume_if_unused(&name)
                .with_context(|| format!("cannot remove volume {name}"))?
            {
                reclaimed += size;
                removed.push(name);
            }
        }
        if !removed.is_empty() {
            out.push_str("Deleted Volumes:\n");
            for name in removed {
                out.push_str(&format!("{name}\n"));
            }
            out.push('\n');
        }
    }

    let condition = if args.all {
        Condition::Unused
    } else {
        Condition::Dangling
    };
    let (images, freed) = prune_images(&store, condition)?;
    out.push_str(&images);
    reclaimed += freed;

    let report = check::run(
        &store,
        &check::Options {
            verify: None,
            repair: true,
            force: false,
        },
    )
    .context("cannot clean up the store")?;
    if !report.repaired.is_empty() {
        out.push_str("Deleted leftovers and unused data:\n");
        for line in &report.repaired {
            out.push_str(&format!("{line}\n"));
        }
        out.push('\n');
    }
    for line in &report.not_repaired {
        crate::error::warn(line);
    }
    reclaimed += report.reclaimed;
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        format::human_size_precise(reclaimed)
    ));
    print_out(&out)?;
    Ok(if containers.failed > 0 {
        crate::error::EXIT_NOOK_ERROR
    } else {
        0
    })
}

/// What the store holds that `reset` names before deleting it.
const STORE_ENTRIES: &[&str] = &[
    "containers",
    "containers.json",
    "images.json",
    "blobs",
    "layers",
    "volumes",
    "locks",
    "tmp",
    "driver",
];

fn reset_warning(root: &Path, config: &Path) -> String {
    format!(
        "WARNING! This will remove:\n  - all containers (running ones are killed)\n  - all images\n  - all volumes\n  - the store at {}\nYour configuration in {} is kept.",
        root.display(),
        config.display()
    )
}

fn reset(args: ResetArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.paths.data.clone();
    if !root.join("images.json").exists()
        && !root.join("containers.json").exists()
        && !root.join("layers").exists()
    {
        print_out(&format!(
            "Nothing to remove: there is no store at {}.\n",
            root.display()
        ))?;
        return Ok(0);
    }
    if userns::inside()?.is_none() {
        require_terminal_unless(args.force, "nook system reset")?;
        if !confirm(&reset_warning(&root, &ctx.paths.config), args.force)? {
            return Ok(0);
        }
        // Killed from the host side, as `rm -f` does: the user owns each container's user
        // namespace and so may signal its processes; from a namespace of our own we could
        // not signal one running as a non-root container user.
        let store = ctx.store()?;
        for c in store.containers().unwrap_or_default() {
            if let Ok(state) = store.observed_container_state(&c.id)
                && state.status == Status::Running
            {
                super::rm::kill_and_wait(&store, &c.id, &state).with_context(|| {
                    format!("cannot stop container {}; nothing was removed", c.name)
                })?;
            }
        }
    }
    // Everything in the store that containers and layers wrote belongs to subordinate ids.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let containers = store.containers().map(|c| c.len()).ok();
    let images = store.images().map(|i| i.images.len()).ok();
    let volumes = store.volume_names().map(|v| v.len()).ok();
    let size = dir_size(&root);
    for name in STORE_ENTRIES {
        let path = root.join(name);
        crate::store::layers::remove_tree(&path)
            .or_else(|e| match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(f) if f.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(_) => Err(e),
            })
            .with_context(|| format!("cannot remove `{}`", path.display()))?;
    }
    // The directory itself goes only if nothing but the store was in it (--root may point
    // at a directory that holds other things too).
    let left = std::fs::read_dir(&root).map(|d| d.count()).unwrap_or(0);
    if left == 0 {
        let _ = std::fs::remove_dir(&root);
    }
    let count = |n: Option<usize>, word: &str| match n {
        Some(1) => format!("1 {word}"),
        Some(n) => format!("{n} {word}s"),
        None => format!("the {word}s (their index was unreadable)"),
    };
    let mut text = format!(
        "Removed {}, {} and {}, and the store at {} ({}).\n",
        count(containers, "container"),
        count(images, "image"),
        count(volumes, "volume"),
        root.display(),
        format::human_size_precise(size)
    );
    if left > 0 {
        text.push_str(&format!(
            "Left {} in {} that nook did not make.\n",
            if left == 1 {
                "1 entry".to_string()
            } else {
                format!("{left} entries")
            },
            root.display()
        ));
    }
    print_out(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_df_table_is_dockers() {
        let images = Usage {
            total: 5,
            active: 2,
            size: 16_430_000,
            reclaimable: 11_630_000,
        };
        let containers = Usage {
            total: 2,
            active: 0,
            size: 212,
            reclaimable: 212,
        };
        let volumes = Usage::default();
        assert_eq!(
            df_table(&images, &containers, &volumes),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          5         2         16.43MB   11.63MB (70%)\n\
             Containers      2         0         212B      212B (100%)\n\
             Local Volumes   0         0         0B        0B\n"
        );
    }

    #[test]
    fn the_prune_warning_names_what_goes() {
        let plain = system_prune_warning(false, false);
        assert!(plain.contains("  - all dangling images\n"), "{plain}");
        assert!(!plain.contains("volumes"), "{plain}");
        let all = system_prune_warning(true, true);
        assert!(
            all.contains("  - all volumes not used by at least one container\n")
                && all
                    .contains("  - all images without at least one container associated to them\n"),
            "{all}"
        );
    }
}
