//! `nook inspect`: a container's or an image's details, as `docker inspect` prints them. Each
//! name is looked up as a container first, then as an image, unless `--type` says which.

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Ctx, familiar_digest, familiar_repo_tag, find_image, print_out};
use crate::cli::{InspectArgs, ObjectKind};
use crate::format::Template;
use crate::network::ports::PortMapping;
use crate::store::Store;
use crate::store::containers::{ContainerRecord, ContainerState, MountSpec, find_in};
use crate::store::images::ImageRecord;

pub fn run(args: InspectArgs, ctx: &Ctx) -> Result<i32> {
    // Docker falls back to the raw JSON when a field is not in the object's type: an
    // unknown field prints `<no value>` there, for either kind of object.
    let template = args
        .format
        .as_deref()
        .map(Template::parse)
        .transpose()?
        .map(Template::loose);
    let config = ctx.registries()?;
    let store = ctx.store()?;
    let want_containers = !matches!(args.kind, Some(ObjectKind::Image));
    let want_images = !matches!(args.kind, Some(ObjectKind::Container));
    let containers = if want_containers {
        store.containers()?
    } else {
        vec![]
    };
    let index = if want_images {
        store.images()?
    } else {
        Default::default()
    };
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        if want_containers && let Ok(c) = find_in(&containers, name) {
            // Removed meanwhile: not there any more.
            if let Ok(state) = store.observed_container_state(&c.id) {
                values.push(container_value(&store, c, &state));
                continue;
            }
        }
        if want_images && let Ok((image, _)) = find_image(&index, name, &config) {
            values.push(inspect_value(&store, &image)?);
            continue;
        }
        missing.push(name.clone());
    }
    let out = match &template {
        Some(t) if !t.json => values
            .iter()
            .map(|v| Ok(t.render(v)? + "\n"))
            .collect::<Result<String>>()?,
        _ => serde_json::to_string_pretty(&Value::Array(values))? + "\n",
    };
    print_out(&out)?;
    if let Some(first) = missing.first() {
        let what = match args.kind {
            Some(ObjectKind::Image) => "image",
            Some(ObjectKind::Container) => "container",
            None => "object",
        };
        anyhow::bail!("no such {what}: {first}");
    }
    Ok(0)
}

/// Go's zero time, which Docker prints for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || ZERO_TIME.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Nanos, true),
    )
}

fn list_or_null(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// A container as `docker container inspect` shows it.
pub fn container_value(store: &Store, c: &ContainerRecord, state: &ContainerState) -> Value {
    let cfg = &c.config;
    let mut words = cfg.entrypoint.iter().chain(cfg.cmd.iter());
    let path = words.next().cloned().unwrap_or_default();
    let args: Vec<String> = words.cloned().collect();
    let mounts: Vec<Value> = cfg
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind {
                source,
                destination,
                read_only,
            } => json!({
                "Type": "bind",
                "Source": source.display().to_string(),
                "Destination": destination,
                "Mode": if *read_only { "ro" } else { "" },
                "RW": !read_only,
                "Propagation": "rprivate",
            }),
            MountSpec::Volume {
                name,
                destination,
                read_only,
            } => json!({
                "Type": "volume",
                "Name": name,
                "Source": store.root().join("volumes").join(name).join("_data").display().to_string(),
                "Destination": destination,
                "Driver": "local",
                "Mode": if *read_only { "ro" } else { "" },
                "RW": !read_only,
                "Propagation": "",
            }),
            MountSpec::Tmpfs {
                destination,
                options,
            } => json!({
                "Type": "tmpfs",
                "Source": "",
                "Destination": destination,
                "Mode": options,
                "RW": true,
                "Propagation": "",
            }),
        })
        .collect();
    let mut security_opt = Vec::new();
    if let Some(seccomp) = &cfg.seccomp {
        security_opt.push(format!("seccomp={seccomp}"));
    }
    if cfg.no_new_privileges {
        security_opt.push("no-new-privileges".to_string());
    }
    if cfg.keep_id {
        security_opt.push("userns=keep-id".to_string());
    }
    let running = state.status == crate::store::containers::Status::Running;
    let dir = store.container_dir(&c.id);
    let hostname = if cfg.hostname.is_empty() {
        c.id.chars().take(12).collect()
    } else {
        cfg.hostname.clone()
    };
    let mut value = json!({
        "Id": c.id,
        "Created": time(Some(c.created)),
        "Path": path,
        "Args": args,
        "State": {
            "Status": state.status.as_str(),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": if running { state.pid.unwrap_or(0) } else { 0 },
            "ExitCode": state.exit_code.unwrap_or(0),
            "Error": state.error.clone().unwrap_or_default(),
            "StartedAt": time(state.started_at),
            "FinishedAt": time(state.finished_at),
        },
        "Image": c.image_id.to_string(),
        "ResolvConfPath": dir.join("resolv.conf").display().to_string(),
        "HostnamePath": dir.join("hostname").display().to_string(),
        "HostsPath": dir.join("hosts").display().to_string(),
        "LogPath": match cfg.log_driver {
            crate::config::LogDriver::JsonFile => dir.join("ctr.log").display().to_string(),
            crate::config::LogDriver::None => String::new(),
        },
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": cfg.storage_driver,
        "Platform": "linux",
        "Mounts": mounts,
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "Env": cfg.env,
            "Cmd": list_or_null(&cfg.cmd),
            "Image": c.image,
            "WorkingDir": cfg.working_dir,
            "Entrypoint": list_or_null(&cfg.entrypoint),
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
        },
        "HostConfig": {
            "NetworkMode": cfg.network,
            "PortBindings": port_bindings(&cfg.ports),
            "Dns": cfg.dns,
            "ExtraHosts": list_or_null(&cfg.add_hosts),
            "AutoRemove": cfg.auto_remove,
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "CapAdd": list_or_null(&cfg.cap_add),
            "CapDrop": list_or_null(&cfg.cap_drop),
            "Init": cfg.init,
            "LogConfig": {"Type": cfg.log_driver.name(), "Config": cfg.log_opts},
            "SecurityOpt": list_or_null(&security_opt),
        },
        "GraphDriver": {
            "Name": cfg.storage_driver,
            "Data": {
                "UpperDir": store.container_upper_dir(&c.id).display().to_string(),
                "WorkDir": store.container_work_dir(&c.id).display().to_string(),
            }
        },
        "NetworkSettings": {
            "Ports": if running { published_ports(&state.ports) } else { json!({}) },
        },
    });
    // Docker leaves ExposedPorts out when nothing is exposed.
    if !cfg.ports.is_empty() {
        value["Config"]["ExposedPorts"] = exposed_ports(&cfg.ports);
    }
    value
}

/// `{"80/tcp": {}}` for each container port published.
fn exposed_ports(ports: &[PortMapping]) -> Value {
    let keys: serde_json::Map<String, Value> = ports.iter().map(|p| (p.key(), json!({}))).collect();
    Value::Object(keys)
}

/// `HostConfig.PortBindings`: the ports as asked for, `""` for every address and for a host
/// port chosen at start.
fn port_bindings(ports: &[PortMapping]) -> Value {
    bindings_by_port(ports, |p| {
        let host_port = if p.host_port == 0 {
            String::new()
        } else {
            p.host_port.to_string()
        };
        json!({"HostIp": p.host_ip, "HostPort": host_port})
    })
}

/// `NetworkSettings.Ports`: the ports as published, addresses and host ports resolved.
fn published_ports(ports: &[PortMapping]) -> Value {
    bindings_by_port(
        ports,
        |p| json!({"HostIp": p.shown_host_ip(), "HostPort": p.host_port.to_string()}),
    )
}

/// Docker's port map: `{"80/tcp": [binding, …]}`, bindings in the order given.
fn bindings_by_port(ports: &[PortMapping], binding: impl Fn(&PortMapping) -> Value) -> Value {
    let mut map = serde_json::Map::new();
    for p in ports {
        let entry = map.entry(p.key()).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(binding(p));
        }
    }
    Value::Object(map)
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
    // Docker shows the whole container config, the fields an image leaves out at their
    // zero values, so that templates such as `{{.Config.Entrypoint}}` work on any image.
    let mut container_config = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let (Some(Value::Object(given)), Value::Object(all)) =
        (config.get("config"), &mut container_config)
    {
        for (k, v) in given {
            all.insert(k.clone(), v.clone());
        }
    }
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
        "Config": container_config,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Protocol;

    #[test]
    fn port_maps_as_docker_shows_them() {
        let ports = [
            PortMapping::new("", 8080, 80, Protocol::Tcp),
            PortMapping::new("127.0.0.1", 0, 53, Protocol::Udp),
            PortMapping::new("::1", 9090, 80, Protocol::Tcp),
        ];
        assert_eq!(
            port_bindings(&ports),
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "9090"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            })
        );
        assert_eq!(exposed_ports(&ports), json!({"80/tcp": {}, "53/udp": {}}));
        let started = [
            PortMapping::new("", 8080, 80, Protocol::Tcp),
            PortMapping::new("127.0.0.1", 40000, 53, Protocol::Udp),
        ];
        assert_eq!(
            published_ports(&started),
            json!({
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "40000"}],
            })
        );
        assert_eq!(port_bindings(&[]), json!({}));
    }
}
