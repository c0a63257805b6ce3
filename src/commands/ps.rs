//! `nook ps`: the container table as Docker lays it out.

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ctx, find_image, print_out};
use crate::cli::PsArgs;
use crate::format;
use crate::image::digest::Digest;
use crate::network::ports;
use crate::store::containers::{
    ContainerRecord, ContainerState, MountSpec, Status, dir_size, status_text,
};

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// The `-f` filters: values of one key OR, different keys AND.
#[derive(Default)]
struct Filters {
    status: Vec<Status>,
    /// Some status value that nook never reports (paused, dead…): matches nothing.
    status_other: bool,
    name: Vec<String>,
    ancestor: Vec<String>,
    label: Vec<(String, Option<String>)>,
    id: Vec<String>,
}

impl Filters {
    fn parse(specs: &[String]) -> Result<Filters> {
        let mut f = Filters::default();
        for spec in specs {
            let Some((key, value)) = spec.split_once('=') else {
                bail!("bad format of filter `{spec}` (expected KEY=VALUE)");
            };
            match key {
                "status" => match value {
                    "created" => f.status.push(Status::Created),
                    "running" => f.status.push(Status::Running),
                    "exited" => f.status.push(Status::Exited),
                    "paused" | "restarting" | "removing" | "dead" => f.status_other = true,
                    _ => bail!("invalid filter 'status={value}' (use created, running or exited)"),
                },
                "name" => f.name.push(value.trim_start_matches('/').to_string()),
                "ancestor" => f.ancestor.push(value.to_string()),
                "label" => f.label.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "id" => f.id.push(value.to_string()),
                _ => bail!(
                    "invalid filter '{key}' (nook supports status, name, ancestor, label and id)"
                ),
            }
        }
        Ok(f)
    }

    fn has_status(&self) -> bool {
        !self.status.is_empty() || self.status_other
    }

    fn matches(&self, c: &ContainerRecord, state: &ContainerState, ancestors: &[Digest]) -> bool {
        (!self.has_status() || self.status.contains(&state.status))
            && (self.name.is_empty() || self.name.iter().any(|n| c.name.contains(n.as_str())))
            && (self.ancestor.is_empty()
                || ancestors.contains(&c.image_id)
                || self.ancestor.contains(&c.image))
            && self.label.iter().all(|(k, v)| match v {
                Some(v) => c.config.labels.get(k) == Some(v),
                None => c.config.labels.contains_key(k),
            })
            && (self.id.is_empty() || self.id.iter().any(|p| c.id.starts_with(p.as_str())))
    }
}

pub fn run(args: PsArgs, ctx: &Ctx) -> Result<i32> {
    let template = super::listing_format(args.format.as_deref(), args.quiet)?;
    // As Docker: a template that shows the size asks for it.
    let size = args.size || template.as_ref().is_some_and(|t| t.uses_field("Size"));
    let filters = Filters::parse(&args.filter)?;
    if size {
        // What a container wrote may belong to subordinate ids and be unreadable outside.
        crate::runtime::userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    }
    let store = ctx.store()?;
    let limit = if args.latest { Some(1) } else { args.last };
    let all = args.all || limit.is_some() || filters.has_status();

    let mut containers = store.containers()?;
    containers.sort_by_key(|c| std::cmp::Reverse(c.created));

    let images = if size || !filters.ancestor.is_empty() {
        Some(store.images()?)
    } else {
        None
    };
    let ancestors: Vec<Digest> = match &images {
        Some(index) if !filters.ancestor.is_empty() => {
            let config = ctx.registries()?;
            filters
                .ancestor
                .iter()
                .filter_map(|a| find_image(index, a, &config).ok())
                .map(|(image, _)| image.id)
                .collect()
        }
        _ => vec![],
    };

    let now = Utc::now();
    let mut rows: Vec<Value> = Vec::new();
    for c in &containers {
        if limit.is_some_and(|n| rows.len() >= n) {
            break;
        }
        // A container removed meanwhile has no state any more: skip it.
        let Ok(state) = store.observed_container_state(&c.id) else {
            continue;
        };
        if !all && state.status != Status::Running {
            continue;
        }
        if !filters.matches(c, &state, &ancestors) {
            continue;
        }
        let mut row = summary(c, &state, args.no_trunc, now);
        if size {
            let rw = dir_size(&store.container_upper_dir(&c.id));
            let image_size = images
                .as_ref()
                .and_then(|i| i.get(&c.image_id))
                .map_or(0, |i| i.size);
            row["Size"] = json!(format!(
                "{} (virtual {})",
                format::human_size(rw),
                format::human_size(rw + image_size)
            ));
        }
        rows.push(row);
    }

    let mut keys = vec![
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    if size {
        keys.push("Size");
    }
    let out = format::listing(&rows, args.quiet, template.as_ref(), HEADERS, &keys)?;
    print_out(&out)?;
    Ok(0)
}

/// One `ps` row as Docker's formatter sees it (the fields `--format` can use).
pub(super) fn summary(
    c: &ContainerRecord,
    state: &ContainerState,
    no_trunc: bool,
    now: DateTime<Utc>,
) -> Value {
    let command = command_line(c);
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<String> = c
        .config
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { source, .. } => source.display().to_string(),
            MountSpec::Volume { name, .. } => name.clone(),
            MountSpec::Tmpfs { destination, .. } => destination.clone(),
        })
        .collect();
    let local_volumes = c
        .config
        .mounts
        .iter()
        .filter(|m| matches!(m, MountSpec::Volume { .. }))
        .count();
    json!({
        "Command": go_quote(&if no_trunc { command } else { ellipsis(&command, 20) }),
        "CreatedAt": c.created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
        "ID": if no_trunc { c.id.clone() } else { c.id.chars().take(12).collect() },
        "Image": c.image,
        "Labels": labels.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": c.name,
        "Networks": if c.config.network.is_empty() { "none".to_string() } else { c.config.network.clone() },
        "Ports": published_ports(state),
        "RunningFor": format!("{} ago", format::human_duration((now - c.created).num_seconds())),
        "Size": "",
        "State": state.status.as_str(),
        "Status": status_text(state, now),
    })
}

/// The PORTS column: the ports as the runtime published them, for a running container only
/// (a state whose monitor died may still list them).
fn published_ports(state: &ContainerState) -> String {
    if state.status == Status::Running {
        ports::format_ps(&state.ports)
    } else {
        String::new()
    }
}

/// The command as Docker's list shows it: the path, then the arguments, each one holding a
/// space wrapped in single quotes.
pub fn command_line(c: &ContainerRecord) -> String {
    let mut words = c.config.entrypoint.iter().chain(c.config.cmd.iter());
    let Some(path) = words.next() else {
        return String::new();
    };
    let mut out = path.clone();
    for arg in words {
        out.push(' ');
        if arg.contains(' ') {
            out.push_str(&format!("'{arg}'"));
        } else {
            out.push_str(arg);
        }
    }
    out
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the characters a command holds.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::containers::ContainerConfig;

    fn record(entrypoint: &[&str], cmd: &[&str]) -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            name: "web".into(),
            image: "busybox".into(),
            image_id: Digest::of(b"x"),
            created: Utc::now(),
            config: ContainerConfig {
                entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                ..ContainerConfig::default()
            },
        }
    }

    #[test]
    fn commands_as_docker_shows_them() {
        let c = record(&[], &["sh", "-c", "sleep 10"]);
        assert_eq!(command_line(&c), "sh -c 'sleep 10'");
        assert_eq!(
            go_quote(&ellipsis(&command_line(&c), 20)),
            "\"sh -c 'sleep 10'\""
        );
        let c = record(&["/docker-entrypoint.sh"], &["nginx", "-g", "daemon off;"]);
        assert_eq!(
            go_quote(&ellipsis(&command_line(&c), 20)),
            "\"/docker-entrypoint.…\""
        );
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(command_line(&record(&[], &[])), "");
    }

    #[test]
    fn ports_show_only_while_running() {
        use crate::network::ports::{PortMapping, Protocol};
        let mut state = ContainerState {
            status: Status::Running,
            ports: vec![PortMapping {
                host_ip: String::new(),
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
            ..ContainerState::default()
        };
        assert_eq!(published_ports(&state), "0.0.0.0:8080->80/tcp");
        state.status = Status::Exited;
        assert_eq!(published_ports(&state), "");
    }

    #[test]
    fn filters() {
        let mut c = record(&[], &["sh"]);
        c.config.labels.insert("tier".into(), "web".into());
        let state = ContainerState::default();
        let f = |specs: &[&str]| {
            Filters::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&["status=created", "status=exited"]).matches(&c, &state, &[]));
        assert!(!f(&["status=running"]).matches(&c, &state, &[]));
        assert!(f(&["name=we", "label=tier", "label=tier=web", "id=aaa"]).matches(&c, &state, &[]));
        assert!(!f(&["name=we", "label=tier=db"]).matches(&c, &state, &[]));
        assert!(f(&["ancestor=busybox"]).matches(&c, &state, &[]));
        assert!(f(&["ancestor=other"]).matches(&c, &state, &[Digest::of(b"x")]));
        assert!(!f(&["ancestor=other"]).matches(&c, &state, &[]));
        assert!(Filters::parse(&["status=bogus".into()]).is_err());
        assert!(Filters::parse(&["color=red".into()]).is_err());
        assert!(Filters::parse(&["status".into()]).is_err());
    }
}
