//! `nook commit [-m MSG] [-a AUTHOR] [-c INSTRUCTION]… [-p] CONTAINER [REPOSITORY[:TAG]]`: a
//! new image from the container's image plus one layer of what the container changed.
//!
//! The layer is written by one thread as a tar stream (layer::pack, from the same change
//! list `diff` prints) and stored by this one as it arrives (Store::import_layer: staged,
//! hashed, recorded for push and save, renamed into place), so nothing is buffered and a
//! killed commit leaves at most a staging directory. The image record comes last.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result, anyhow};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::Ctx;
use super::diff::container_changes;
use crate::cli::CommitArgs;
use crate::image::config::apply_change;
use crate::layer::pack;
use crate::runtime::userns::{self, IdLayout};
use crate::store::containers::{self, ContainerRecord, Status};

pub fn run(args: CommitArgs, ctx: &Ctx) -> Result<i32> {
    // Checked before anything is written.
    let name = args
        .repository
        .as_deref()
        .map(|r| super::new_image_name(r, "commit to"))
        .transpose()?;
    for change in &args.change {
        apply_change(&mut json!({}), change)?;
    }
    if args.pause && userns::inside()?.is_none() {
        return paused(&args, ctx);
    }
    let ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    // The new layer is stored before the image record names it: the store's clean-up must
    // wait (system check --repair, system prune).
    let _adding = store.hold_additions()?;
    let record = store.find_container(&args.container)?;
    let image = store
        .images()?
        .get(&record.image_id)
        .cloned()
        .ok_or_else(|| containers::ContainerError::ImageGone {
            image: record.image_id.clone(),
        })?;
    let base_config = store.read_blob(&image.id)?;
    let (changes, root) = container_changes(&store, &record)?;

    let (reader, writer) = std::io::pipe().context("cannot make a pipe for the layer")?;
    let layer = std::thread::scope(|scope| -> Result<_> {
        let packing = scope.spawn(move || -> Result<pack::PackReport> {
            let out = BufWriter::with_capacity(256 * 1024, writer);
            let (mut out, report) = pack::write_layer(out, &root, &changes)?;
            out.flush().context("cannot write the layer")?;
            Ok(report)
        });
        // Packing a big change takes a while: a live count on a terminal, cleared when done
        // (stdout gets only the ID, as Docker's).
        let progress = super::progress::Progress::new(args.quiet);
        let task = progress.counter("new layer", "Writing");
        let mut reader = super::progress::Counted {
            inner: reader,
            task: &task,
        };
        let stored = store.import_layer(&mut reader, None, ns);
        task.clear();
        // The packer stops with a broken pipe when the store gave up first: its own error
        // is then the one that says why, if it has one.
        drop(reader);
        let packed = packing
            .join()
            .map_err(|_| anyhow!("the layer writer panicked"))?;
        match (packed, stored) {
            (Err(e), _) => Err(e.context(format!(
                "cannot write the changes of container {}",
                record.name
            ))),
            (Ok(_), Err(e)) => Err(e.context("cannot store the new layer")),
            (Ok(_), Ok(layer)) => Ok(layer),
        }
    })?;
    for warning in &layer.warnings {
        crate::error::warn(&format!("new layer: {warning}"));
    }

    let config = commit_config(&base_config, &record, &layer.diff_id, &args)?;
    let names: Vec<String> = name.into_iter().collect();
    let image = store.add_local_image(&config, &names)?;
    if !args.quiet {
        eprintln!(
            "Committed container {} as {}",
            record.name,
            names
                .first()
                .map(String::as_str)
                .unwrap_or("an untagged image")
        );
    }
    println!("{}", image.id);
    Ok(0)
}

/// The new image's config: the image's, with what the container was run with (command,
/// environment, working directory, user, labels), then `--change`, a history entry and
/// the new layer.
fn commit_config(
    base: &[u8],
    record: &ContainerRecord,
    diff_id: &crate::image::digest::Digest,
    args: &CommitArgs,
) -> Result<Vec<u8>> {
    let mut config: Value =
        serde_json::from_slice(base).context("the image's config is not valid JSON")?;
    if !config.is_object() {
        anyhow::bail!("the image's config is not a JSON object");
    }
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let run = &record.config;
    {
        let inner = config
            .as_object_mut()
            .expect("checked above")
            .entry("config")
            .or_insert_with(|| json!({}));
        if !inner.is_object() {
            *inner = json!({});
        }
        let optional_list = |list: &[String]| {
            if list.is_empty() {
                Value::Null
            } else {
                json!(list)
            }
        };
        inner["Cmd"] = optional_list(&run.cmd);
        inner["Entrypoint"] = optional_list(&run.entrypoint);
        inner["Env"] = json!(run.env);
        inner["WorkingDir"] = json!(run.working_dir);
        inner["User"] = json!(run.user);
        if !run.labels.is_empty() {
            let labels = inner
                .as_object_mut()
                .expect("made an object above")
                .entry("Labels")
                .or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &run.labels {
                labels[k] = json!(v);
            }
        }
        for change in &args.change {
            apply_change(inner, change)?;
        }
    }
    config["created"] = json!(now);
    if let Some(author) = &args.author {
        config["author"] = json!(author);
    }
    config["container"] = json!(record.id);
    let rootfs = config
        .as_object_mut()
        .expect("checked above")
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(json!(diff_id.to_string())),
        None => anyhow::bail!("the image's config has no rootfs.diff_ids"),
    }
    let command: Vec<&str> = run
        .entrypoint
        .iter()
        .chain(&run.cmd)
        .map(String::as_str)
        .collect();
    let mut entry = json!({"created": now, "created_by": command.join(" ")});
    if let Some(message) = &args.message {
        entry["comment"] = json!(message);
    }
    if let Some(author) = &args.author {
        entry["author"] = json!(author);
    }
    let history = config
        .as_object_mut()
        .expect("checked above")
        .entry("history")
        .or_insert_with(|| json!([]));
    if let Some(list) = history.as_array_mut() {
        list.push(entry);
    }
    Ok(serde_json::to_vec(&config)?)
}

/// `--pause`: from the host side, where this user may signal the container's processes
/// (they are in a user namespace this user owns), stop them all, commit from a user
/// namespace child, and let them go again however the commit ended.
fn paused(args: &CommitArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let state = containers::observed_state(&store.container_state(&record.id)?);
    let stopped = match (state.status, state.pid) {
        (Status::Running, Some(pid)) => stop_namespace(pid),
        _ => Vec::new(),
    };
    let result = userns::spawn(
        &ctx.paths.runtime,
        &|m| crate::error::eprint_line(m),
        std::env::args_os().skip(1),
        IdLayout::Standard,
        false,
    )
    .and_then(|child| child.wait());
    for pid in &stopped {
        let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGCONT);
    }
    Ok(result?)
}

/// SIGSTOP to every process in PID 1's PID namespace; the ones stopped.
fn stop_namespace(pid1: i32) -> Vec<nix::unistd::Pid> {
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(target) = ns_of(&pid1.to_string()) else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if ns_of(&pid.to_string()).as_ref() == Some(&target) {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).is_ok() {
                stopped.push(pid);
            }
        }
    }
    stopped
}
