//! `nook port CONTAINER [PRIVATE_PORT[/PROTO]]`: where a running container's ports are
//! published on the host, as the runtime recorded them when it started.

use anyhow::Result;

use super::{Ctx, print_out};
use crate::cli::PortArgs;
use crate::network::ports::{self, PortError};
use crate::store::containers::Status;

pub fn run(args: PortArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let filter = match &args.port {
        None => None,
        Some(spec) => match ports::parse_port_filter(spec) {
            Ok(filter) => Some(filter),
            // nook never publishes sctp: Docker's answer for a port that is not published.
            Err(PortError::Sctp { .. }) => {
                return Err(PortError::NotPublished {
                    port: spec.clone(),
                    container: args.container.clone(),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        },
    };
    let state = store.observed_container_state(&record.id)?;
    // A container that is not running publishes nothing, whatever its config asks for; the
    // recorded state may still hold the ports of a run whose monitor died.
    let published = if state.status == Status::Running {
        state.ports.as_slice()
    } else {
        &[]
    };
    let lines = ports::format_port_command(&args.container, published, filter)?;
    if !lines.is_empty() {
        print_out(&(lines.join("\n") + "\n"))?;
    }
    Ok(0)
}
