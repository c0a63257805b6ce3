//! `nook container …`: `diff`, `export`, `prune`.

use std::io::BufRead;

use anyhow::Result;

use super::{Ctx, print_out};
use crate::cli::{ContainerCommand, PruneArgs};
use crate::format;
use crate::runtime::userns;
use crate::store::containers::{Status, dir_size};

pub fn run(command: ContainerCommand, ctx: &Ctx) -> Result<i32> {
    match command {
        ContainerCommand::Diff(args) => super::diff::run(args, ctx),
        ContainerCommand::Export(args) => super::export::run(args, ctx),
        ContainerCommand::Prune(args) => prune(args, ctx),
    }
}

fn prune(args: PruneArgs, ctx: &Ctx) -> Result<i32> {
    userns::enter(&ctx.paths.runtime, &|m| eprintln!("{m}"))?;
    if !args.force {
        print_out(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
        )?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Ok(0);
        }
    }
    let store = ctx.store()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    let mut failed = 0;
    for c in store.containers()? {
        let Ok(state) = store.observed_container_state(&c.id) else {
            continue;
        };
        if state.status == Status::Running {
            continue;
        }
        let size = dir_size(&store.container_upper_dir(&c.id));
        match store.remove_container(&c.id) {
            Ok(()) => {
                reclaimed += size;
                deleted.push(c.id);
            }
            Err(e) => {
                eprintln!(
                    "{}",
                    crate::error::render(
                        &anyhow::Error::new(e)
                            .context(format!("cannot remove container {}", c.name))
                    )
                );
                failed += 1;
            }
        }
    }
    let mut out = String::new();
    if !deleted.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &deleted {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        format::human_size(reclaimed)
    ));
    print_out(&out)?;
    Ok(if failed > 0 {
        crate::error::EXIT_NOOK_ERROR
    } else {
        0
    })
}
