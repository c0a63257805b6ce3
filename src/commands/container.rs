//! `nook container …`: `diff`, `export`, `prune`, and Docker's management forms of the
//! container verbs (`nook container ls` is `nook ps`).

use anyhow::Result;

use super::{Ctx, print_out};
use crate::cli::{ContainerCommand, PruneArgs};
use crate::format;
use crate::runtime::userns;
use crate::store::Store;
use crate::store::containers::{Status, dir_size};

pub fn run(command: ContainerCommand, ctx: &Ctx) -> Result<i32> {
    match command {
        ContainerCommand::Diff(args) => super::diff::run(args, ctx),
        ContainerCommand::Export(args) => super::export::run(args, ctx),
        ContainerCommand::Prune(args) => prune(args, ctx),
        ContainerCommand::Ls(args) => super::ps::run(args, ctx),
        ContainerCommand::Rm(args) => super::rm::run(args, ctx),
        ContainerCommand::Inspect(mut args) => {
            args.kind = Some(crate::cli::ObjectKind::Container);
            super::inspect::run(args, ctx)
        }
        ContainerCommand::Start(args) => super::lifecycle::start(args, ctx),
        ContainerCommand::Stop(args) => super::lifecycle::stop(args, ctx),
        ContainerCommand::Kill(args) => super::lifecycle::kill(args, ctx),
        ContainerCommand::Restart(args) => super::lifecycle::restart(args, ctx),
        ContainerCommand::Wait(args) => super::wait::run(args, ctx),
        ContainerCommand::Logs(args) => super::logs::run(args, ctx),
        ContainerCommand::Exec(args) => super::exec::run(args, ctx),
        ContainerCommand::Attach(args) => super::attach::run(args, ctx),
        ContainerCommand::Port(args) => super::port::run(args, ctx),
        ContainerCommand::Rename(args) => super::rename::run(args, ctx),
        ContainerCommand::Create(args) => super::run::create(args, ctx),
        ContainerCommand::Run(args) => super::run::run(args, ctx),
        ContainerCommand::Commit(args) => super::commit::run(args, ctx),
    }
}

fn prune(args: PruneArgs, ctx: &Ctx) -> Result<i32> {
    super::system::require_terminal_unless(args.force, "nook container prune")?;
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    if !super::system::confirm(
        "WARNING! This will remove all stopped containers.",
        args.force,
    )? {
        return Ok(0);
    }
    let store = ctx.store()?;
    let pruned = prune_stopped(&store);
    let mut out = pruned.section();
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        format::human_size_precise(pruned.reclaimed)
    ));
    print_out(&out)?;
    Ok(if pruned.failed > 0 {
        crate::error::EXIT_NOOK_ERROR
    } else {
        0
    })
}

/// What [`prune_stopped`] removed.
pub(super) struct Pruned {
    pub ids: Vec<String>,
    pub reclaimed: u64,
    /// Containers that could not be removed (each reported on stderr).
    pub failed: usize,
}

impl Pruned {
    /// `Deleted Containers:` and the IDs, then an empty line; nothing when none went.
    pub fn section(&self) -> String {
        if self.ids.is_empty() {
            return String::new();
        }
        let mut out = "Deleted Containers:\n".to_string();
        for id in &self.ids {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Removes every container that is not running. Run inside nook's user namespace: what a
/// container wrote belongs to subordinate ids.
pub(super) fn prune_stopped(store: &Store) -> Pruned {
    let mut pruned = Pruned {
        ids: Vec::new(),
        reclaimed: 0,
        failed: 0,
    };
    let Ok(containers) = store.containers().inspect_err(|e| {
        crate::error::eprint_line(&crate::error::render(&anyhow::anyhow!(
            "cannot list the containers: {e}"
        )));
    }) else {
        pruned.failed += 1;
        return pruned;
    };
    for c in containers {
        let Ok(state) = store.observed_container_state(&c.id) else {
            continue;
        };
        if state.status == Status::Running {
            continue;
        }
        let size = dir_size(&store.container_upper_dir(&c.id));
        match store.remove_container(&c.id) {
            Ok(()) => {
                pruned.reclaimed += size;
                pruned.ids.push(c.id);
            }
            Err(e) => {
                crate::error::eprint_line(&crate::error::render(
                    &anyhow::Error::new(e).context(format!("cannot remove container {}", c.name)),
                ));
                pruned.failed += 1;
            }
        }
    }
    // The cgroups of these and of `--rm` containers gone before.
    if let Ok(left) = store.containers() {
        let ids: Vec<&str> = left.iter().map(|c| c.id.as_str()).collect();
        crate::runtime::cgroups::sweep(&ids);
    }
    pruned
}
