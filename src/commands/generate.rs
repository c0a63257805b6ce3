//! `nook generate kube` (and `nook kube generate`): one Kubernetes Pod (v1) for the named
//! containers, as `podman generate kube` writes it, so that work that outgrows one machine
//! goes to a cluster (or to `podman kube play`) through a registry.
//!
//! What the container got from its image is left out (the cluster's runtime reads the same
//! image config); what the options changed is written in Kubernetes' terms. What a Pod cannot
//! express is named on stderr rather than dropped silently, and what would make the Pod
//! behave differently in a way the user cannot see coming (a network borrowed from a
//! container outside the Pod) is refused.
//!
//! The document is built with `serde_norway` (the maintained fork of the archived
//! `serde_yaml`, with ordered mappings; the tests read the YAML back with it). Its emitter
//! quotes by YAML 1.2's rules and leaves `yes`, `on`, `y` or `1_000` plain, which the YAML 1.1
//! readers of Kubernetes' tools (kubectl's unstructured decoding) take for booleans and
//! numbers, so the text is written by [`yaml_text`]: block style, every string that is not
//! plainly a word or a path double-quoted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, find_image, print_out};
use crate::cli::KubeArgs;
use crate::image::reference::Reference;
use crate::network::ports::Protocol;
use crate::store::containers::{ContainerRecord, MountSpec, find_in};
use crate::store::images::ImageIndex;

pub fn kube(args: KubeArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let containers = store.containers()?;
    let mut chosen: Vec<&ContainerRecord> = Vec::new();
    for input in &args.containers {
        let record = find_in(&containers, input)?;
        if chosen.iter().any(|c| c.id == record.id) {
            bail!(
                "container `{input}` is named twice: a Pod holds each container once; name it once"
            );
        }
        chosen.push(record);
    }
    let index = store.images()?;
    let registries = ctx.registries()?;
    let mut inputs = Vec::new();
    for record in chosen {
        let config: Value = serde_json::from_slice(&store.read_blob(&record.image_id)?)
            .with_context(|| {
                format!(
                    "the config of image {} (container `{}`) is not valid JSON",
                    record.image_id, record.name
                )
            })?;
        let (image, image_note) = image_reference(record, &index, &registries);
        let mut dirs = vec![store.container_upper_dir(&record.id)];
        if let Some(image) = index.get(&record.image_id) {
            dirs.extend(image.layers.iter().rev().map(|l| store.layer_diff_dir(l)));
        }
        inputs.push(ContainerInput {
            record,
            image_config: config.get("config").cloned().unwrap_or(Value::Null),
            image,
            image_note,
            accounts: Accounts {
                passwd: top_file(&dirs, "etc/passwd"),
                group: top_file(&dirs, "etc/group"),
            },
        });
    }
    let generated = pod(&inputs, &host_path_type, args.service)?;
    for warning in &generated.warnings {
        crate::error::warn(warning);
    }
    let yaml = manifest_text(&generated.pod, generated.service.as_ref())?;
    match &args.filename {
        None => print_out(&yaml)?,
        Some(path) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if path.is_dir() || !parent.is_dir() {
                bail!(
                    "cannot write the Pod manifest to `{}`: {}",
                    path.display(),
                    if path.is_dir() {
                        "it is a directory; -f names the file to write".to_string()
                    } else {
                        format!("the directory `{}` does not exist", parent.display())
                    }
                );
            }
            super::output::write_file_atomically(path, |mut file| {
                use std::io::Write;
                file.write_all(yaml.as_bytes())
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
                Ok(file)
            })
            .with_context(|| format!("cannot write the Pod manifest to `{}`", path.display()))?
        }
    }
    Ok(0)
}

/// The text of `etc/NAME` as the container sees it: from the first of `dirs` (its own
/// changes, then its image's layers from the top) that has it; None when deleted or missing.
/// Links are not followed: they point into the host's file system here, not the container's.
fn top_file(dirs: &[std::path::PathBuf], path: &str) -> Option<String> {
    let (parent, _) = path.rsplit_once('/')?;
    for dir in dirs {
        match std::fs::symlink_metadata(dir.join(parent)) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return None,
            Err(_) => continue,
        }
        match std::fs::symlink_metadata(dir.join(path)) {
            Ok(meta) if meta.is_file() => return std::fs::read_to_string(dir.join(path)).ok(),
            // A whiteout (an overlay's deletion), a link or anything else.
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

/// The YAML document, with Podman's hint of what to do with it.
fn manifest_text(pod: &Pod, service: Option<&Service>) -> Result<String> {
    let mut body = yaml_text(&serde_norway::to_value(pod).context("cannot write the Pod as YAML")?);
    if let Some(service) = service {
        body.push_str("---\n");
        body.push_str(&yaml_text(
            &serde_norway::to_value(service).context("cannot write the Service as YAML")?,
        ));
    }
    Ok(format!(
        "# Save the output of this file and use kubectl create -f to import it into Kubernetes,\n\
         # or podman kube play to run it with Podman.\n\
         #\n\
         # Created with nook {}\n{body}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// `value` as block-style YAML, mappings in their order, sequences in Kubernetes' style (the
/// dash at the key's indentation).
fn yaml_text(value: &serde_norway::Value) -> String {
    let mut out = String::new();
    match value {
        serde_norway::Value::Mapping(map) => yaml_mapping(map, 0, false, &mut out),
        serde_norway::Value::Sequence(items) => yaml_sequence(items, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

/// A mapping's entries at `indent`; with `inline_first`, the first key follows a `- ` already
/// written.
fn yaml_mapping(map: &serde_norway::Mapping, indent: usize, inline_first: bool, out: &mut String) {
    use serde_norway::Value;
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&yaml_scalar(key));
        out.push(':');
        match value {
            Value::Mapping(inner) if !inner.is_empty() => {
                out.push('\n');
                yaml_mapping(inner, indent + 2, false, out);
            }
            Value::Sequence(items) if !items.is_empty() => {
                out.push('\n');
                yaml_sequence(items, indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&yaml_scalar(other));
                out.push('\n');
            }
        }
    }
}

fn yaml_sequence(items: &[serde_norway::Value], indent: usize, out: &mut String) {
    use serde_norway::Value;
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Mapping(inner) if !inner.is_empty() => {
                out.push(' ');
                yaml_mapping(inner, indent + 2, true, out);
            }
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push('\n');
                yaml_sequence(inner, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&yaml_scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Words YAML 1.1 reads as booleans or null in any case: never written plain.
const YAML_1_1_WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

fn yaml_scalar(value: &serde_norway::Value) -> String {
    use serde_norway::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let plain = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
                && !YAML_1_1_WORDS.contains(&s.to_ascii_lowercase().as_str());
            if plain {
                s.clone()
            } else {
                // A JSON string is a YAML double-quoted scalar, escapes and all.
                serde_json::Value::String(s.clone()).to_string()
            }
        }
        Value::Mapping(_) => "{}".into(),
        Value::Sequence(_) => "[]".into(),
        Value::Tagged(tagged) => yaml_scalar(&tagged.value),
    }
}

/// One container and what it was made from.
pub struct ContainerInput<'a> {
    pub record: &'a ContainerRecord,
    /// The image config's `config` object (Entrypoint, Cmd, Env, WorkingDir…).
    pub image_config: Value,
    /// A reference a cluster can pull, as well as nook can tell.
    pub image: String,
    /// Why `image` may not be pullable, or what was chosen instead of the name given.
    pub image_note: Option<String>,
    /// The container's /etc/passwd and /etc/group, to turn `-u` names into ids.
    pub accounts: Accounts,
}

#[derive(Default)]
pub struct Accounts {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// The reference to write for the container's image: its name, fully qualified, when that
/// repository has the image (pushed or pulled); else a repository the image was pushed to,
/// pinned by digest; else the name, with a warning that a cluster cannot pull it.
fn image_reference(
    record: &ContainerRecord,
    index: &ImageIndex,
    registries: &crate::config::RegistriesConfig,
) -> (String, Option<String>) {
    let Some(image) = index.get(&record.image_id) else {
        return (
            qualified(&record.image),
            Some(format!(
                "the image of container `{}` ({}) is no longer in the store; check that a registry has it",
                record.name, record.image
            )),
        );
    };
    // The name the container was created with, if it still names this image.
    let named = find_image(index, &record.image, registries)
        .ok()
        .filter(|(found, _)| found.id == image.id)
        .and_then(|(_, full)| full);
    // Named by digest (`busybox@sha256:…`): that is already a pullable reference.
    if let Ok(reference) = Reference::parse(&record.image)
        && reference.digest.is_some()
        && image.repo_digests.contains(&reference.to_string())
    {
        return (reference.to_string(), None);
    }
    let name = named.or_else(|| image.names.first().cloned());
    let in_registry = |name: &str| {
        let repository = Reference::parse(name).map(|r| r.name()).ok();
        image.repo_digests.iter().any(|d| {
            d.split_once('@').map(|(repo, _)| repo.to_string()) == repository
                && repository.is_some()
        })
    };
    match name {
        Some(name) if in_registry(&name) => (name, None),
        _ if !image.repo_digests.is_empty() => {
            let pushed = image.repo_digests[image.repo_digests.len() - 1].clone();
            let note = format!(
                "container `{}`: image `{}` is in no registry under that name; using {pushed}, which is",
                record.name, record.image
            );
            (pushed, Some(note))
        }
        Some(name) => (
            name.clone(),
            Some(format!(
                "container `{}`: image {name} exists only in this store (never pushed or pulled), so a cluster cannot pull it; push it first (nook push {name} REGISTRY/NAME[:TAG]) and run this again",
                record.name
            )),
        ),
        None => (
            record.image.clone(),
            Some(format!(
                "container `{}`: image {} has no name, so a cluster cannot pull it; tag and push it first: nook tag {} REGISTRY/NAME[:TAG] && nook push REGISTRY/NAME[:TAG]",
                record.name,
                record.image_id.short(),
                record.image_id.short()
            )),
        ),
    }
}

fn qualified(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// `Directory` or `File` for what is at `path` on this host, `DirectoryOrCreate` when
/// nothing is there (Podman's choice: the cluster's node makes it).
fn host_path_type(path: &Path) -> &'static str {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "Directory",
        Ok(_) => "File",
        Err(_) => "DirectoryOrCreate",
    }
}

pub struct Generated {
    pub pod: Pod,
    /// With `--service`: the Service for the Pod's published ports.
    pub service: Option<Service>,
    pub warnings: Vec<String>,
}

/// The Pod for `containers` (at least one), with what it could not express.
pub fn pod(
    containers: &[ContainerInput],
    host_path_type: &dyn Fn(&Path) -> &'static str,
    with_service: bool,
) -> Result<Generated> {
    let first = containers.first().context("no container to put in a Pod")?;
    let pod_name = format!("{}-pod", dns_label(&first.record.name, 59));
    let mut warnings = Vec::new();
    let mut spec = PodSpec {
        restart_policy: Some("Never".into()),
        ..Default::default()
    };
    let mut annotations = BTreeMap::new();
    let mut volumes = Volumes::default();
    let mut hostnames = BTreeSet::new();
    let mut nameservers: Vec<String> = Vec::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut grace = 0u32;
    let mut used_names = BTreeSet::new();
    for input in containers {
        let record = input.record;
        let config = &record.config;
        let mut name = dns_label(&record.name, 63);
        if !used_names.insert(name.clone()) {
            name = format!("{}-{}", dns_label(&record.name, 50), &record.id[..12]);
            used_names.insert(name.clone());
        }
        if name != record.name {
            warnings.push(format!(
                "container `{}` is named `{name}` in the Pod: Kubernetes names are lowercase letters, digits and '-'",
                record.name
            ));
        }
        if let Some(note) = &input.image_note {
            warnings.push(note.clone());
        }
        check_network(record, containers, &mut spec, &mut warnings)?;
        let unpinned: Vec<String> = config
            .ports
            .iter()
            .filter(|p| p.host_port == 0)
            .map(|p| p.key())
            .collect();
        if !unpinned.is_empty() && !with_service {
            warnings.push(format!(
                "container `{}`: ports {} are published on host ports chosen at start; the Pod lists them without hostPort, so a cluster does not publish them (use a Service, or create the container with -p HOST_PORT:PORT)",
                record.name,
                unpinned.join(", ")
            ));
        }
        let (command, args) = command_and_args(config, &input.image_config);
        let mut container = Container {
            name: name.clone(),
            image: input.image.clone(),
            command,
            args,
            env: env_for_pod(&config.env, &strings(&input.image_config, "Env")),
            working_dir: Some(config.working_dir.clone()).filter(|w| {
                !w.is_empty()
                    && w != input.image_config["WorkingDir"]
                        .as_str()
                        .unwrap_or_default()
            }),
            ports: ports(record),
            security_context: security_context(record, &input.accounts, &mut warnings),
            resources: resources(record, &mut warnings),
            stdin: config.interactive,
            tty: config.tty,
            volume_mounts: Vec::new(),
        };
        for mount in &config.mounts {
            container
                .volume_mounts
                .push(volumes.mount(mount, host_path_type, &mut warnings));
        }
        spec.containers.push(container);
        if config.hostname != record.id[..12] {
            hostnames.insert(config.hostname.clone());
        }
        for server in &config.dns {
            if !nameservers.contains(server) {
                nameservers.push(server.clone());
            }
        }
        for entry in &config.add_hosts {
            match entry.split_once(':') {
                Some((_, "host-gateway")) => warnings.push(format!(
                    "container `{}`: --add-host {entry} is left out: a Pod has no name for its host; give the node's address",
                    record.name
                )),
                Some((host, ip)) => {
                    let hosts = aliases.entry(ip.to_string()).or_default();
                    if !hosts.iter().any(|h| h == host) {
                        hosts.push(host.to_string());
                    }
                }
                None => {}
            }
        }
        grace = grace.max(config.stop_timeout);
        if config.init {
            // Podman's spelling of its own annotations, which `podman kube play` reads.
            annotations.insert(format!("io.podman.annotations.init/{name}"), "TRUE".into());
        }
        if config.auto_remove {
            annotations.insert(
                format!("io.podman.annotations.autoremove/{name}"),
                "TRUE".into(),
            );
        }
        let signal = config.stop_signal.trim_start_matches("SIG");
        if signal != "TERM" && signal != "15" {
            warnings.push(format!(
                "container `{}`: its stop signal {} is left out: Kubernetes stops containers with the image's STOPSIGNAL or SIGTERM",
                record.name, config.stop_signal
            ));
        }
    }
    match hostnames.len() {
        0 => {}
        1 => {
            let hostname = hostnames.into_iter().next().unwrap_or_default();
            let label = dns_label(&hostname, 63);
            if label != hostname {
                warnings.push(format!(
                    "hostname `{hostname}` is `{label}` in the Pod: a Pod's hostname is one DNS label"
                ));
            }
            spec.hostname = Some(label);
        }
        _ => warnings.push(format!(
            "the containers have different hostnames ({}); a Pod has one, so none is set",
            hostnames.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
    if !nameservers.is_empty() {
        spec.dns_policy = Some("None".into());
        spec.dns_config = Some(DnsConfig { nameservers });
    }
    spec.host_aliases = aliases
        .into_iter()
        .map(|(ip, hostnames)| HostAlias { ip, hostnames })
        .collect();
    spec.termination_grace_period_seconds = Some(grace);
    spec.volumes = volumes.list;
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), pod_name.clone());
    let service = if with_service {
        let service = service_for(&pod_name, &mut spec.containers);
        if service.is_none() {
            warnings.push(
                "no container publishes a port, so no Service is written (create them with -p)"
                    .into(),
            );
        }
        service
    } else {
        None
    };
    Ok(Generated {
        service,
        pod: Pod {
            api_version: "v1",
            kind: "Pod",
            metadata: ObjectMeta {
                name: pod_name,
                labels,
                annotations,
            },
            spec,
        },
        warnings,
    })
}

/// The Service (NodePort, as Podman's `-s`) that selects the Pod by its `app` label and
/// carries every published port, which then leave the containers' hostPort: a cluster
/// reaches the Pod through the Service, and a hostPort would only tie it to one node.
fn service_for(pod_name: &str, containers: &mut [Container]) -> Option<Service> {
    let mut ports: Vec<ServicePort> = Vec::new();
    for port in containers.iter_mut().flat_map(|c| c.ports.iter_mut()) {
        port.host_port = None;
        port.host_ip = None;
        let name = format!(
            "{}-{}",
            port.container_port,
            port.protocol.to_ascii_lowercase()
        );
        if !ports.iter().any(|p| p.name == name) {
            ports.push(ServicePort {
                name,
                port: port.container_port,
                target_port: port.container_port,
                protocol: port.protocol,
            });
        }
    }
    if ports.is_empty() {
        return None;
    }
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), pod_name.to_string());
    Some(Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta {
            name: pod_name.to_string(),
            labels: labels.clone(),
            annotations: BTreeMap::new(),
        },
        spec: ServiceSpec {
            ports,
            selector: labels,
            service_type: "NodePort",
        },
    })
}

/// A network the Pod gives every container alike: host's, or the Pod's own (which pasta and
/// slirp4netns become). One borrowed from a container outside the Pod cannot be had.
fn check_network(
    record: &ContainerRecord,
    containers: &[ContainerInput],
    spec: &mut PodSpec,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let network = record.config.network.as_str();
    let mode = network.split_once(':').map_or(network, |(m, _)| m);
    match mode {
        "host" => spec.host_network = Some(true),
        "none" => warnings.push(format!(
            "container `{}` has no network (--network none), but a Pod always has one",
            record.name
        )),
        "container" => {
            let other = &network["container:".len()..];
            if !containers.iter().any(|c| c.record.id == other) {
                bail!(
                    "container `{}` uses the network of container {}, which is not in this Pod; a Pod's containers share their own network, so name both containers: nook generate kube {} {}",
                    record.name,
                    &other[..other.len().min(12)],
                    record.name,
                    &other[..other.len().min(12)]
                );
            }
        }
        _ => {}
    }
    Ok(())
}

/// Kubernetes' `command` replaces the image's ENTRYPOINT (and then ignores its CMD); `args`
/// replaces CMD. What equals the image's defaults is left out, as Podman does.
fn command_and_args(
    config: &crate::store::containers::ContainerConfig,
    image: &Value,
) -> (Vec<String>, Vec<String>) {
    let image_entrypoint = strings(image, "Entrypoint");
    let image_cmd = strings(image, "Cmd");
    if config.entrypoint == image_entrypoint {
        if config.cmd == image_cmd {
            return (vec![], vec![]);
        }
        if !config.cmd.is_empty() {
            return (vec![], config.cmd.clone());
        }
        // No CMD where the image has one: only a command given explicitly drops it.
        if !config.entrypoint.is_empty() {
            return (config.entrypoint.clone(), vec![]);
        }
    }
    if config.entrypoint.is_empty() {
        // An empty `command` means "the image's", so a cleared ENTRYPOINT (--entrypoint "")
        // becomes the CMD's first word as the command.
        let mut cmd = config.cmd.clone();
        let rest = if cmd.is_empty() {
            vec![]
        } else {
            cmd.split_off(1)
        };
        return (cmd, rest);
    }
    (config.entrypoint.clone(), config.cmd.clone())
}

fn strings(config: &Value, key: &str) -> Vec<String> {
    config[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// [`changed_env`], plus the PATH nook gives a container whose image and options set none:
/// not every runtime adds one (Podman's `kube play` does not), and without it `sh` is not
/// found.
fn env_for_pod(container: &[String], image: &[String]) -> Vec<EnvVar> {
    let mut env = changed_env(container, image);
    if !container.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            EnvVar {
                name: "PATH".into(),
                value: crate::runtime::container::DEFAULT_PATH.into(),
            },
        );
    }
    env
}

/// The variables whose final value differs from the image's, in the order they were set.
fn changed_env(container: &[String], image: &[String]) -> Vec<EnvVar> {
    let split = |entry: &String| {
        let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        (name.to_string(), value.to_string())
    };
    let image: BTreeMap<String, String> = image.iter().map(split).collect();
    let mut last: Vec<(String, String)> = Vec::new();
    for (name, value) in container.iter().map(split) {
        match last.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => last.push((name, value)),
        }
    }
    last.into_iter()
        .filter(|(name, value)| image.get(name) != Some(value))
        .map(|(name, value)| EnvVar { name, value })
        .collect()
}

fn ports(record: &ContainerRecord) -> Vec<ContainerPort> {
    record
        .config
        .ports
        .iter()
        .map(|p| ContainerPort {
            container_port: p.container_port,
            host_port: (p.host_port != 0).then_some(p.host_port),
            host_ip: Some(p.host_ip.clone()).filter(|ip| !ip.is_empty()),
            protocol: match p.protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
            },
        })
        .collect()
}

fn security_context(
    record: &ContainerRecord,
    accounts: &Accounts,
    warnings: &mut Vec<String>,
) -> Option<SecurityContext> {
    let config = &record.config;
    let mut context = SecurityContext::default();
    if !config.user.is_empty() {
        let (run_as_user, run_as_group) = user_ids(&config.user, accounts).unwrap_or_else(|why| {
            warnings.push(format!(
                "container `{}`: user `{}` is left out: a Pod takes numeric ids, and {why} (create the container with -u UID[:GID])",
                record.name, config.user
            ));
            (None, None)
        });
        context.run_as_user = run_as_user;
        context.run_as_group = run_as_group;
    }
    let caps = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|c| {
                let upper = c.to_ascii_uppercase();
                upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
            })
            .collect()
    };
    if !config.cap_add.is_empty() || !config.cap_drop.is_empty() {
        context.capabilities = Some(Capabilities {
            add: caps(&config.cap_add),
            drop: caps(&config.cap_drop),
        });
    }
    context.privileged = config.privileged.then_some(true);
    context.read_only_root_filesystem = config.read_only.then_some(true);
    context.allow_privilege_escalation = config.no_new_privileges.then_some(false);
    match config.seccomp.as_deref() {
        None => {}
        Some("unconfined") => {
            context.seccomp_profile = Some(SeccompProfile {
                profile_type: "Unconfined",
            })
        }
        Some(_) => warnings.push(format!(
            "container `{}`: its seccomp profile is left out: Kubernetes loads profiles from files on the node (seccompProfile type Localhost)",
            record.name
        )),
    }
    if config.keep_id {
        warnings.push(format!(
            "container `{}`: --userns=keep-id is left out: a Pod runs with the cluster's user namespace settings",
            record.name
        ));
    }
    (context != SecurityContext::default()).then_some(context)
}

/// `-u USER[:GROUP]` as runAsUser and runAsGroup: names looked up in the container's own
/// files, as nook does when it starts it. Without a group, runAsGroup is left to the
/// runtime, which takes the user's primary group from the image as nook does.
fn user_ids(spec: &str, accounts: &Accounts) -> Result<(Option<i64>, Option<i64>), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let numeric = |s: &str| s.parse::<u32>().ok().map(i64::from);
    if let (Some(uid), None | Some(Some(_))) = (numeric(user), group.map(numeric)) {
        return Ok((Some(uid), group.and_then(numeric)));
    }
    if accounts.passwd.is_none() && numeric(user).is_none() {
        return Err("the container has no /etc/passwd to look the name up in".into());
    }
    let resolved = crate::runtime::users::resolve_in(
        accounts.passwd.as_deref().unwrap_or_default(),
        accounts.group.as_deref().unwrap_or_default(),
        spec,
    )?;
    Ok((
        Some(i64::from(resolved.uid)),
        group.map(|_| i64::from(resolved.gid)),
    ))
}

fn resources(record: &ContainerRecord, warnings: &mut Vec<String>) -> Option<Resources> {
    let limits = &record.config.limits;
    let mut map = BTreeMap::new();
    if let Some(bytes) = limits.memory {
        map.insert("memory".to_string(), bytes.to_string());
    }
    if let Some(cpus) = limits.cpus {
        map.insert("cpu".to_string(), cpu_quantity(cpus));
    }
    if limits.memory_swap.is_some() {
        warnings.push(format!(
            "container `{}`: --memory-swap is left out: Kubernetes sets swap per node, not per container",
            record.name
        ));
    }
    if limits.pids.is_some_and(|p| p > 0) {
        warnings.push(format!(
            "container `{}`: --pids-limit is left out: Kubernetes limits processes per node (podPidsLimit), not per container",
            record.name
        ));
    }
    (!map.is_empty()).then_some(Resources { limits: map })
}

/// `--cpus 1.5` as Kubernetes writes CPU: `1500m`, or `2` for whole CPUs.
fn cpu_quantity(cpus: f64) -> String {
    let millis = (cpus * 1000.0).round() as u64;
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// `name` as a DNS label (RFC 1123) of at most `max` characters: lowercase letters, digits
/// and '-', starting and ending with a letter or digit.
fn dns_label(name: &str, max: usize) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut label: String = mapped.trim_matches('-').chars().take(max).collect();
    while label.ends_with('-') {
        label.pop();
    }
    if label.is_empty() {
        "container".into()
    } else {
        label
    }
}

/// The Pod's volumes, one per distinct source, shared by the containers that mount it.
#[derive(Default)]
struct Volumes {
    list: Vec<Volume>,
}

impl Volumes {
    fn mount(
        &mut self,
        mount: &MountSpec,
        host_path_type: &dyn Fn(&Path) -> &'static str,
        warnings: &mut Vec<String>,
    ) -> VolumeMount {
        let (base, source, destination, read_only) = match mount {
            MountSpec::Bind {
                source,
                destination,
                read_only,
            } => (
                format!("{}-host", dns_label(&source.to_string_lossy(), 50)),
                VolumeSource::HostPath(HostPath {
                    path: source.to_string_lossy().into_owned(),
                    path_type: host_path_type(source),
                }),
                destination,
                *read_only,
            ),
            MountSpec::Volume {
                name,
                destination,
                read_only,
            } => (
                {
                    if dns_label(name, 253) != *name {
                        warnings.push(format!(
                            "volume `{name}` is claimed by that name, which Kubernetes refuses: a claim's name is lowercase letters, digits and '-'; create the PersistentVolumeClaim under another name and change claimName"
                        ));
                    }
                    format!("{}-pvc", dns_label(name, 50))
                },
                VolumeSource::PersistentVolumeClaim(ClaimSource {
                    claim_name: name.clone(),
                }),
                destination,
                *read_only,
            ),
            MountSpec::Tmpfs {
                destination,
                options,
            } => (
                format!("{}-tmpfs", dns_label(destination, 50)),
                VolumeSource::EmptyDir(EmptyDir {
                    medium: "Memory",
                    size_limit: tmpfs_size(options, destination, warnings),
                }),
                destination,
                false,
            ),
        };
        let name = match self.list.iter().find(|v| v.source == source) {
            // Two tmpfs mounts are two file systems, even when they look alike.
            Some(existing) if !matches!(source, VolumeSource::EmptyDir(_)) => existing.name.clone(),
            _ => {
                let mut name = base.clone();
                let mut n = 1;
                while self.list.iter().any(|v| v.name == name) {
                    n += 1;
                    name = format!("{base}-{n}");
                }
                self.list.push(Volume {
                    name: name.clone(),
                    source,
                });
                name
            }
        };
        VolumeMount {
            name,
            mount_path: destination.clone(),
            read_only: read_only.then_some(true),
        }
    }
}

/// The `size=` of tmpfs options as a quantity (bytes); other options have no emptyDir
/// equivalent.
fn tmpfs_size(options: &str, destination: &str, warnings: &mut Vec<String>) -> Option<String> {
    let mut size = None;
    let mut dropped = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", value)) => match crate::format::parse_size(value) {
                Some(bytes) => size = Some(bytes.to_string()),
                None => dropped.push(option),
            },
            _ => dropped.push(option),
        }
    }
    if !dropped.is_empty() {
        warnings.push(format!(
            "tmpfs {destination}: options {} are left out: an emptyDir volume takes only a size",
            dropped.join(",")
        ));
    }
    size
}

// ---------------------------------------------------------------------------------------------
// The Pod v1 fields written, named as the Kubernetes API names them.

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

#[derive(Debug, Serialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<HostAlias>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub protocol: &'static str,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Capabilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub profile_type: &'static str,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Resources {
    /// `memory` in bytes, `cpu` in CPUs or millicores (`500m`).
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Volume {
    pub name: String,
    #[serde(flatten)]
    pub source: VolumeSource,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSource {
    HostPath(HostPath),
    PersistentVolumeClaim(ClaimSource),
    EmptyDir(EmptyDir),
}

#[derive(Debug, Serialize, PartialEq)]
pub struct HostPath {
    pub path: String,
    #[serde(rename = "type")]
    pub path_type: &'static str,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    pub claim_name: String,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDir {
    pub medium: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: ServiceSpec,
}

#[derive(Debug, Serialize)]
pub struct ServiceSpec {
    pub ports: Vec<ServicePort>,
    pub selector: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub service_type: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// `80-tcp`: a Service with several ports must name each.
    pub name: String,
    pub port: u16,
    pub target_port: u16,
    pub protocol: &'static str,
}

#[derive(Debug, Serialize)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DnsConfig {
    pub nameservers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;
    use crate::network::ports::PortMapping;
    use crate::store::containers::ContainerConfig;
    use k8s_openapi::api::core::v1 as k8s;
    use serde_json::json;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn record(name: &str, config: ContainerConfig) -> ContainerRecord {
        ContainerRecord {
            id: ID.into(),
            name: name.into(),
            image: "busybox".into(),
            image_id: Digest::of(b"config"),
            created: chrono::Utc::now(),
            config: ContainerConfig {
                hostname: ID[..12].into(),
                stop_signal: "SIGTERM".into(),
                stop_timeout: 10,
                network: "pasta".into(),
                ..config
            },
        }
    }

    fn image() -> Value {
        json!({
            "Entrypoint": ["/entry"],
            "Cmd": ["serve"],
            "Env": ["PATH=/bin", "MODE=prod"],
            "WorkingDir": "/srv",
        })
    }

    fn from_image() -> ContainerConfig {
        ContainerConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
            env: vec!["PATH=/bin".into(), "MODE=prod".into()],
            working_dir: "/srv".into(),
            ..Default::default()
        }
    }

    /// The manifest as Kubernetes' own types read it back, and the warnings.
    fn generate(records: &[ContainerRecord]) -> (k8s::Pod, Vec<String>) {
        let inputs: Vec<ContainerInput> = records
            .iter()
            .map(|record| ContainerInput {
                record,
                image_config: image(),
                image: "docker.io/library/busybox:latest".into(),
                image_note: None,
                accounts: Accounts::default(),
            })
            .collect();
        let generated = pod(
            &inputs,
            &|p| {
                if p.to_string_lossy().ends_with(".file") {
                    "File"
                } else {
                    "Directory"
                }
            },
            false,
        )
        .unwrap();
        let yaml = manifest_text(&generated.pod, None).unwrap();
        let pod: k8s::Pod = serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        (pod, generated.warnings)
    }

    fn only_container(pod: &k8s::Pod) -> &k8s::Container {
        let containers = &pod.spec.as_ref().unwrap().containers;
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    #[test]
    fn the_image_defaults_are_left_out() {
        let (pod, warnings) = generate(&[record("web", from_image())]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-pod"));
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["app"],
            "web-pod".to_string()
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.termination_grace_period_seconds, Some(10));
        let c = only_container(&pod);
        assert_eq!(c.name, "web");
        assert_eq!(c.image.as_deref(), Some("docker.io/library/busybox:latest"));
        assert_eq!(c.command, None);
        assert_eq!(c.args, None);
        assert_eq!(c.env, None);
        assert_eq!(c.working_dir, None);
        assert_eq!(c.security_context, None);
        assert_eq!(spec.hostname, None);
    }

    #[test]
    fn command_and_args_follow_kubernetes_semantics() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let image = image();
        type Words<'a> = &'a [&'a str];
        let cases: &[(Words, Words, Words, Words)] = &[
            // entrypoint, cmd → command, args
            (&["/entry"], &["serve"], &[], &[]),
            (&["/entry"], &["debug", "-v"], &[], &["debug", "-v"]),
            (&["/other"], &[], &["/other"], &[]),
            (&["/other"], &["x"], &["/other"], &["x"]),
            (&[], &["sh", "-c", "echo hi"], &["sh"], &["-c", "echo hi"]),
            (&["/entry"], &[], &["/entry"], &[]),
        ];
        for (entrypoint, cmd, command, args) in cases {
            let config = ContainerConfig {
                entrypoint: s(entrypoint),
                cmd: s(cmd),
                ..Default::default()
            };
            assert_eq!(
                command_and_args(&config, &image),
                (s(command), s(args)),
                "{entrypoint:?} {cmd:?}"
            );
        }
    }

    #[test]
    fn only_changed_variables_are_written_last_value_winning() {
        let env = changed_env(
            &[
                "PATH=/bin".into(),
                "MODE=prod".into(),
                "A=1".into(),
                "MODE=dev".into(),
                "A=2".into(),
                "ANSWER=no".into(),
            ],
            &["PATH=/bin".into(), "MODE=prod".into()],
        );
        let pairs: Vec<(&str, &str)> = env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(pairs, [("MODE", "dev"), ("A", "2"), ("ANSWER", "no")]);
        let env = env_for_pod(&["A=1".into()], &[]);
        assert_eq!(env[0].name, "PATH");
        assert_eq!(env[0].value, crate::runtime::container::DEFAULT_PATH);
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn values_yaml_1_1_would_misread_stay_strings() {
        let mut config = from_image();
        for value in ["no", "on", "Y", "0755", "1e3", "null", "~", "true", ""] {
            config.env.push(format!("V{}={value}", config.env.len()));
        }
        let (pod, _) = generate(&[record("web", config.clone())]);
        let env = only_container(&pod).env.clone().unwrap();
        let values: Vec<String> = env
            .into_iter()
            .map(|e| e.value.unwrap_or_default())
            .collect();
        assert_eq!(
            values,
            ["no", "on", "Y", "0755", "1e3", "null", "~", "true", ""]
        );
    }

    #[test]
    fn options_become_container_fields() {
        let config = ContainerConfig {
            user: "1000:1001".into(),
            cap_add: vec!["net_admin".into(), "CAP_SYS_TIME".into()],
            cap_drop: vec!["ALL".into()],
            read_only: true,
            privileged: true,
            no_new_privileges: true,
            seccomp: Some("unconfined".into()),
            tty: true,
            interactive: true,
            working_dir: "/work".into(),
            ports: vec![
                PortMapping::new("", 8080, 80, Protocol::Tcp),
                PortMapping::new("127.0.0.1", 5353, 53, Protocol::Udp),
                PortMapping::new("", 0, 443, Protocol::Tcp),
            ],
            limits: crate::runtime::cgroups::Limits {
                memory: Some(512 << 20),
                cpus: Some(1.5),
                ..Default::default()
            },
            ..from_image()
        };
        let mut r = record("web", config);
        r.config.init = true;
        r.config.auto_remove = true;
        let (pod, warnings) = generate(&[r]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("ports 443/tcp are published on host ports chosen at start"));
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["io.podman.annotations.init/web"], "TRUE");
        assert_eq!(annotations["io.podman.annotations.autoremove/web"], "TRUE");
        let c = only_container(&pod);
        assert_eq!(c.working_dir.as_deref(), Some("/work"));
        assert_eq!(c.stdin, Some(true));
        assert_eq!(c.tty, Some(true));
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(1001)));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(
            caps.add.as_deref(),
            Some(&["NET_ADMIN".to_string(), "SYS_TIME".to_string()][..])
        );
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(sc.privileged, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "Unconfined");
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.container_port,
                    p.host_port,
                    p.host_ip.clone(),
                    p.protocol.clone(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (80, Some(8080), None, Some("TCP".into())),
                (53, Some(5353), Some("127.0.0.1".into()), Some("UDP".into())),
                (443, None, None, Some("TCP".into())),
            ]
        );
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"].0, "536870912");
        assert_eq!(limits["cpu"].0, "1500m");
    }

    #[test]
    fn strings_a_yaml_reader_could_take_for_something_else_are_quoted() {
        let tricky = [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "null",
            "~",
            "",
            "0755",
            "1_000",
            "12:30",
            "2001-12-14",
            ".inf",
            "- x",
            "a: b",
            "# c",
            "say \"hi\"",
            "back\\slash",
            "two\nlines",
            "tab\there",
            "é",
            "&anchor",
            "*alias",
            "!tag",
            "%x",
            "@x",
            "`x`",
            "{a}",
            "[a]",
            "a,b",
            "?",
            "|",
            ">",
            "'",
            " lead",
            "trail ",
        ];
        let value =
            serde_norway::to_value(json!({"list": &tricky[..], "map": {"k": "yes"}})).unwrap();
        let text = yaml_text(&value);
        for line in text.lines().filter(|l| l.contains("- ")) {
            let scalar = line.trim_start().trim_start_matches("- ");
            assert!(scalar.starts_with('"'), "written plain: {line}");
        }
        assert!(text.contains("k: \"yes\""), "{text}");
        let back: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back["list"], json!(&tricky[..]));
        for plain in ["web", "/srv/data", "NET_ADMIN", "a.b-c_d", "Never"] {
            let value = serde_norway::Value::String(plain.into());
            assert_eq!(yaml_scalar(&value), plain);
        }
        let nested =
            serde_norway::to_value(json!({"a": [[1, 2], {"b": [], "c": {}}], "d": null})).unwrap();
        let text = yaml_text(&nested);
        let back: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            back,
            json!({"a": [[1, 2], {"b": [], "c": {}}], "d": null}),
            "{text}"
        );
    }

    #[test]
    fn a_service_carries_the_published_ports_instead_of_host_ports() {
        let mut web = record("web", from_image());
        web.config.ports = vec![
            PortMapping::new("127.0.0.1", 8080, 80, Protocol::Tcp),
            PortMapping::new("", 0, 53, Protocol::Udp),
        ];
        let mut side = record("side", from_image());
        side.id = ID.replace('0', "d");
        side.config.ports = vec![PortMapping::new("", 9090, 80, Protocol::Tcp)];
        let records = [web, side];
        let inputs: Vec<ContainerInput> = records
            .iter()
            .map(|record| ContainerInput {
                record,
                image_config: image(),
                image: "busybox".into(),
                image_note: None,
                accounts: Accounts::default(),
            })
            .collect();
        let generated = pod(&inputs, &|_| "Directory", true).unwrap();
        assert!(generated.warnings.is_empty(), "{:?}", generated.warnings);
        let text = manifest_text(&generated.pod, generated.service.as_ref()).unwrap();
        let (pod_text, service_text) = text.split_once("\n---\n").unwrap();
        let read: k8s::Pod = serde_norway::from_str(pod_text).unwrap();
        let service: k8s::Service = serde_norway::from_str(service_text).unwrap();
        for container in read.spec.unwrap().containers {
            for port in container.ports.unwrap() {
                assert_eq!((port.host_port, port.host_ip), (None, None));
            }
        }
        assert_eq!(service.metadata.name.as_deref(), Some("web-pod"));
        let spec = service.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(
            spec.selector.unwrap()["app"],
            "web-pod".to_string(),
            "the Pod's label"
        );
        let ports: Vec<_> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port, p.protocol.unwrap(), p.node_port))
            .collect();
        assert_eq!(
            ports,
            [
                ("80-tcp".to_string(), 80, "TCP".to_string(), None),
                ("53-udp".to_string(), 53, "UDP".to_string(), None)
            ]
        );

        // Nothing published: no Service, and why.
        let plain = record("plain", from_image());
        let inputs = [ContainerInput {
            record: &plain,
            image_config: image(),
            image: "busybox".into(),
            image_note: None,
            accounts: Accounts::default(),
        }];
        let generated = pod(&inputs, &|_| "Directory", true).unwrap();
        assert!(generated.service.is_none());
        assert!(generated.warnings[0].contains("no Service is written"));
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(0.001), "1m");
    }

    #[test]
    fn what_a_pod_cannot_express_is_named() {
        let config = ContainerConfig {
            user: "app".into(),
            stop_signal: "SIGINT".into(),
            limits: crate::runtime::cgroups::Limits {
                pids: Some(100),
                memory_swap: Some(-1),
                ..Default::default()
            },
            add_hosts: vec!["gw:host-gateway".into(), "db:10.0.0.5".into()],
            keep_id: true,
            ..from_image()
        };
        let mut r = record("web", config);
        r.config.stop_signal = "SIGINT".into();
        r.config.network = "none".into();
        let (pod, warnings) = generate(&[r]);
        let text = warnings.join("\n");
        for needle in [
            "user `app`",
            "stop signal SIGINT",
            "--pids-limit",
            "--memory-swap",
            "--add-host gw:host-gateway",
            "--userns=keep-id",
            "--network none",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let aliases = pod.spec.unwrap().host_aliases.unwrap();
        assert_eq!(aliases.len(), 1);
        assert_eq!(aliases[0].ip, "10.0.0.5");
        assert_eq!(
            aliases[0].hostnames.as_deref(),
            Some(&["db".to_string()][..])
        );
    }

    #[test]
    fn mounts_become_volumes_shared_by_source() {
        let bind = |source: &str, destination: &str, read_only| MountSpec::Bind {
            source: source.into(),
            destination: destination.into(),
            read_only,
        };
        let first = ContainerConfig {
            mounts: vec![
                bind("/srv/data", "/data", true),
                bind("/etc/some.file", "/etc/app.conf", false),
                MountSpec::Volume {
                    name: "cache".into(),
                    destination: "/cache".into(),
                    read_only: false,
                },
                MountSpec::Volume {
                    name: "Old_Cache".into(),
                    destination: "/old".into(),
                    read_only: true,
                },
                MountSpec::Tmpfs {
                    destination: "/run/scratch".into(),
                    options: "size=64m,mode=1777".into(),
                },
            ],
            ..from_image()
        };
        let second = ContainerConfig {
            mounts: vec![bind("/srv/data", "/in", false)],
            ..from_image()
        };
        let mut other = record("Worker_1", second);
        other.id = ID.replace('0', "f");
        let (pod, warnings) = generate(&[record("web", first), other]);
        assert!(
            warnings.iter().any(|w| w.contains("mode=1777")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("`worker-1`")),
            "{warnings:?}"
        );
        let spec = pod.spec.unwrap();
        let volumes = spec.volumes.unwrap();
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "srv-data-host",
                "etc-some-file-host",
                "cache-pvc",
                "old-cache-pvc",
                "run-scratch-tmpfs"
            ]
        );
        let host = volumes[0].host_path.as_ref().unwrap();
        assert_eq!(
            (host.path.as_str(), host.type_.as_deref()),
            ("/srv/data", Some("Directory"))
        );
        assert_eq!(
            volumes[1].host_path.as_ref().unwrap().type_.as_deref(),
            Some("File")
        );
        assert_eq!(
            volumes[2]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "cache"
        );
        assert!(
            warnings.iter().any(|w| w.contains("volume `Old_Cache`")),
            "{warnings:?}"
        );
        let empty = volumes[4].empty_dir.as_ref().unwrap();
        assert_eq!(empty.medium.as_deref(), Some("Memory"));
        assert_eq!(
            empty.size_limit.as_ref().unwrap().0,
            (64u64 << 20).to_string()
        );
        let mounts = |c: &k8s::Container| -> Vec<(String, String, Option<bool>)> {
            c.volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .map(|m| (m.name.clone(), m.mount_path.clone(), m.read_only))
                .collect()
        };
        assert_eq!(spec.containers[1].name, "worker-1");
        assert_eq!(
            mounts(&spec.containers[0])[0],
            ("srv-data-host".into(), "/data".into(), Some(true))
        );
        assert_eq!(
            mounts(&spec.containers[1]),
            [("srv-data-host".into(), "/in".into(), None)]
        );
    }

    #[test]
    fn a_network_borrowed_from_outside_the_pod_is_refused() {
        let mut sharing = record("sidecar", from_image());
        sharing.id = ID.replace('0', "e");
        sharing.config.network = format!("container:{ID}");
        let inputs = |records: &[ContainerRecord]| -> Result<Generated> {
            let inputs: Vec<ContainerInput> = records
                .iter()
                .map(|record| ContainerInput {
                    record,
                    image_config: image(),
                    image: "busybox".into(),
                    image_note: None,
                    accounts: Accounts::default(),
                })
                .collect();
            pod(&inputs, &|_| "Directory", false)
        };
        let err = inputs(std::slice::from_ref(&sharing)).err().unwrap();
        assert!(
            err.to_string()
                .contains("uses the network of container 0123456789ab, which is not in this Pod"),
            "{err}"
        );
        inputs(&[record("web", from_image()), sharing]).unwrap();
    }

    #[test]
    fn users_become_ids_looked_up_in_the_containers_files() {
        let accounts = Accounts {
            passwd: Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n".into()),
            group: Some("root:x:0:\nstaff:x:50:app\napp:x:1001:\n".into()),
        };
        let none = Accounts::default();
        assert_eq!(user_ids("1234", &none), Ok((Some(1234), None)));
        assert_eq!(user_ids("1234:5", &none), Ok((Some(1234), Some(5))));
        assert_eq!(user_ids("app", &accounts), Ok((Some(1000), None)));
        assert_eq!(user_ids("app:staff", &accounts), Ok((Some(1000), Some(50))));
        assert_eq!(
            user_ids("1000:app", &accounts),
            Ok((Some(1000), Some(1001)))
        );
        assert!(
            user_ids("app", &none)
                .unwrap_err()
                .contains("no /etc/passwd")
        );
        assert!(
            user_ids("nobody", &accounts)
                .unwrap_err()
                .contains("unable to find user nobody")
        );
    }

    #[test]
    fn account_files_come_from_the_top_layer_without_following_links() {
        let top = tempfile::tempdir().unwrap();
        let middle = tempfile::tempdir().unwrap();
        let bottom = tempfile::tempdir().unwrap();
        for dir in [&top, &middle, &bottom] {
            std::fs::create_dir(dir.path().join("etc")).unwrap();
        }
        std::fs::write(bottom.path().join("etc/passwd"), "bottom").unwrap();
        std::fs::write(bottom.path().join("etc/group"), "bottom").unwrap();
        std::fs::write(middle.path().join("etc/passwd"), "middle").unwrap();
        std::os::unix::fs::symlink("/etc/group", middle.path().join("etc/group")).unwrap();
        let dirs: Vec<std::path::PathBuf> = [&top, &middle, &bottom]
            .iter()
            .map(|d| d.path().to_path_buf())
            .collect();
        assert_eq!(top_file(&dirs, "etc/passwd").as_deref(), Some("middle"));
        assert_eq!(top_file(&dirs, "etc/group"), None);
        // A layer whose etc is a link to the host's.
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", linked.path().join("etc")).unwrap();
        let dirs = [linked.path().to_path_buf(), bottom.path().to_path_buf()];
        assert_eq!(top_file(&dirs, "etc/passwd"), None);
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("sweet_keldysh", 63), "sweet-keldysh");
        assert_eq!(dns_label("My.App", 63), "my-app");
        assert_eq!(dns_label("/srv/data/", 63), "srv-data");
        assert_eq!(dns_label("/", 63), "container");
        assert_eq!(dns_label(&"a".repeat(80), 63).len(), 63);
        assert_eq!(dns_label("ab_cd", 3), "ab");
    }
}
