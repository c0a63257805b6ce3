//! `nook run` and `nook create`: the image config and the options merged into a container
//! record, then (for `run`) the monitor started in the foreground or detached.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde_json::Value;

use super::{Ctx, find_image, print_out};
use crate::cli::{PullPolicy, RunArgs};
use crate::image::manifest::PlatformSpec;
use crate::image::reference::Reference;
use crate::network::Mode;
use crate::network::ports::{self, PortMapping};
use crate::runtime::cgroups;
use crate::runtime::mounts::Driver;
use crate::runtime::userns::{self, IdLayout, Namespace};
use crate::store::Store;
use crate::store::containers::{self, ContainerConfig, ContainerRecord, MountSpec};
use crate::store::images::ImageRecord;

pub fn run(mut args: RunArgs, ctx: &Ctx) -> Result<i32> {
    // Validate what needs no store before anything is written.
    let mut parsed = ParsedOptions::parse(&args)?;
    apply_config_defaults(&mut args, &parsed, ctx)?;
    parsed.resolve_network(ctx)?;
    if userns::inside()?.is_none() {
        // The record is written from the host side, and the container's monitor enters a
        // user namespace of its own, laid out as its options ask (keep-id). A missing image
        // is first pulled by a child in nook's namespace.
        let store = ctx.store()?;
        // From finding the image to recording the container that uses it, `rmi` waits.
        let adding = store.hold_additions()?;
        let image = match image_for_run(&args, ctx, &store)? {
            Ok(image) => image,
            Err(pull_status) => return Ok(pull_status),
        };
        let record = create_from_image(&args, &parsed, &store, &image)?;
        drop(adding);
        return launch_new(ctx, &store, &record, &args);
    }
    // Real root: no user namespace to make.
    let record = create_record(&args, &parsed, ctx)?;
    launch_new(ctx, &ctx.store()?, &record, &args)
}

/// Starts a container `run` just created; one that cannot start is not left behind.
fn launch_new(ctx: &Ctx, store: &Store, record: &ContainerRecord, args: &RunArgs) -> Result<i32> {
    let launched = launch(ctx, record, !args.detach, true, args.detach);
    if launched.is_err() {
        // The monitor removes it when it started and failed; before that, it is ours to.
        let _ = store.remove_container(&record.id);
    }
    launched
}

/// The image `run` uses, pulled first when it is missing or `--pull=always` says so; or the
/// exit status of a pull that failed (it has printed why).
fn image_for_run(
    args: &RunArgs,
    ctx: &Ctx,
    store: &Store,
) -> Result<std::result::Result<ImageRecord, i32>> {
    let config = ctx.registries()?;
    let local = || find_image(&store.images()?, &args.image, &config).map(|(i, _)| i);
    match args.pull {
        PullPolicy::Never => return local().map(Ok).with_context(|| never_pulls(&args.image)),
        PullPolicy::Missing => {
            if let Ok(image) = local() {
                return Ok(Ok(image));
            }
            if !args.quiet {
                eprintln!("Unable to find image '{}' locally", args.image);
            }
        }
        PullPolicy::Always => {}
    }
    let mut pull: Vec<OsString> = vec![
        "--root".into(),
        ctx.paths.data.clone().into(),
        "pull".into(),
        "--for-run".into(),
        args.image.clone().into(),
    ];
    if args.quiet {
        pull.push("--quiet".into());
    }
    let notice = |m: &str| crate::error::eprint_line(m);
    let status =
        userns::spawn(&ctx.paths.runtime, &notice, pull, IdLayout::Standard, false)?.wait()?;
    if status != 0 {
        return Ok(Err(status));
    }
    local().map(Ok)
}

fn never_pulls(image: &str) -> String {
    format!("image `{image}` is not in the store and --pull=never forbids pulling it")
}

/// Starts a container's monitor, from the host side (in a new user namespace of its own) or
/// from inside nook's user namespace (where a foreground monitor replaces this process: it
/// must start single-threaded to unshare namespaces, and this one may have pulled with
/// threads). Foreground: the caller's standard streams become the container's, and the
/// container's exit status is returned. Detached: returns once the container runs (or with
/// its start error), printing its ID when `print_id`.
pub fn launch(
    ctx: &Ctx,
    record: &ContainerRecord,
    foreground: bool,
    remove_on_failure: bool,
    print_id: bool,
) -> Result<i32> {
    let id = record.id.as_str();
    let layout = match Mode::parse(&record.config.network) {
        // Sharing a network namespace means sharing the user namespace that owns it.
        Ok(Mode::Container(other)) => IdLayout::Join(crate::runtime::container::network_owner_pid(
            &ctx.store()?,
            &other,
        )?),
        _ if record.config.keep_id => IdLayout::KeepId,
        _ => IdLayout::Standard,
    };
    let inside = userns::inside()?.is_some();
    let mut args: Vec<OsString> = vec![
        "--root".into(),
        ctx.paths.data.clone().into(),
        "__monitor".into(),
        id.into(),
    ];
    if remove_on_failure {
        args.push("--remove-on-failure".into());
    }
    let notice = |m: &str| crate::error::eprint_line(m);
    if foreground {
        args.push("--foreground".into());
        if inside {
            let err = std::process::Command::new("/proc/self/exe")
                .arg0("nook")
                .args(&args)
                .exec();
            return Err(err).context("cannot start the container's monitor");
        }
        return Ok(userns::spawn(&ctx.paths.runtime, &notice, args, layout, false)?.wait()?);
    }
    let (read, write) = crate::sys::pipe()?;
    crate::sys::inherit_on_exec(&write)?;
    args.push("--notify-fd".into());
    args.push(write.as_raw_fd().to_string().into());
    // The monitor outlives this command by design; it is only waited for when it failed.
    let reap: Box<dyn FnOnce()> = if inside {
        let mut child = std::process::Command::new("/proc/self/exe")
            .arg0("nook")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the container's monitor")?;
        Box::new(move || drop(child.wait()))
    } else {
        let monitor = userns::spawn(&ctx.paths.runtime, &notice, args, layout, true)?;
        Box::new(move || drop(monitor.wait()))
    };
    drop(write);
    let started = crate::runtime::container::read_notification(std::fs::File::from(read));
    if started.is_err() {
        reap();
    }
    started?;
    if print_id {
        print_out(&format!("{id}\n"))?;
    }
    Ok(0)
}

pub fn create(mut args: RunArgs, ctx: &Ctx) -> Result<i32> {
    let mut parsed = ParsedOptions::parse(&args)?;
    apply_config_defaults(&mut args, &parsed, ctx)?;
    parsed.resolve_network(ctx)?;
    let record = create_record(&args, &parsed, ctx)?;
    print_out(&format!("{}\n", record.id))?;
    Ok(0)
}

/// Fills the options left out on the command line from config.toml (`--network` is left to
/// [`ParsedOptions::resolve_network`]) and checks the log options. The storage driver
/// default yields to `--userns=keep-id`, which only fuse-overlayfs can serve.
fn apply_config_defaults(args: &mut RunArgs, parsed: &ParsedOptions, ctx: &Ctx) -> Result<()> {
    let config = ctx.nook_config()?;
    args.init = args.init.or(config.containers.init);
    args.log_driver = args.log_driver.or(config.containers.log_driver);
    let driver = args.log_driver.unwrap_or_default();
    let mut opts = BTreeMap::new();
    for spec in &args.log_opt {
        let Some((key, value)) = spec.split_once('=') else {
            bail!("invalid --log-opt `{spec}`: expected KEY=VALUE, e.g. max-size=10m");
        };
        opts.insert(key.to_string(), value.to_string());
    }
    // config.toml's are json-file's (checked when it was read): they fill in the keys the
    // command line left out, so what is wrong now is the command line's.
    if driver == crate::config::LogDriver::JsonFile {
        for (key, value) in config.containers.log_opts {
            opts.entry(key).or_insert(value);
        }
    }
    crate::config::log_rotation(driver, &opts).map_err(|e| anyhow::anyhow!("--log-opt: {e}"))?;
    args.log_opt = opts.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if args.storage_driver.is_none() && !parsed.keep_id {
        args.storage_driver = config.storage.driver.map(|d| d.name().to_string());
    }
    Ok(())
}

/// Enters nook's user namespace, finds or pulls the image, and stores the new container.
fn create_record(args: &RunArgs, parsed: &ParsedOptions, ctx: &Ctx) -> Result<ContainerRecord> {
    let ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    // From finding the image to recording the container that uses it, `rmi` waits.
    let _adding = store.hold_additions()?;
    let image = obtain_image(args, ctx, &store, ns)?;
    create_from_image(args, parsed, &store, &image)
}

/// Merges the image's config and the options into a new container record and stores it.
fn create_from_image(
    args: &RunArgs,
    parsed: &ParsedOptions,
    store: &Store,
    image: &ImageRecord,
) -> Result<ContainerRecord> {
    let image_config: Value = serde_json::from_slice(&store.read_blob(&image.id)?)
        .context("the stored image config is not valid JSON")?;
    let id = containers::new_container_id();
    let existing: std::collections::HashSet<String> =
        store.containers()?.into_iter().map(|c| c.name).collect();
    let name = match &args.name {
        Some(n) => n.trim_start_matches('/').to_string(),
        None => containers::generate_name(&|n| existing.contains(n)),
    };
    let network = match &parsed.network {
        // Docker stores the other container by ID, so a rename does not break the link.
        Some(Mode::Container(other)) => {
            let target = store
                .find_container(other)
                .with_context(|| format!("cannot share the network of container `{other}`"))?;
            if target.config.keep_id != parsed.keep_id {
                bail!(
                    "cannot share the network of container `{other}`: it was created {} --userns=keep-id and this one {}; both must use the same user namespace layout",
                    if target.config.keep_id {
                        "with"
                    } else {
                        "without"
                    },
                    if parsed.keep_id {
                        "with it"
                    } else {
                        "without it"
                    }
                );
            }
            Mode::Container(target.id)
        }
        Some(mode) => mode.clone(),
        None => Mode::None,
    };
    let driver = if parsed.keep_id {
        // The layers' ids must be shown renumbered, which only fuse-overlayfs can do.
        match args.storage_driver.as_deref() {
            None | Some("fuse-overlayfs") => "fuse-overlayfs".to_string(),
            Some(other) => bail!(
                "--userns=keep-id needs the fuse-overlayfs storage driver, not {other}: the kernel overlay and a copy cannot show the image's files with their owners in a keep-id namespace"
            ),
        }
    } else {
        choose_driver(args.storage_driver.as_deref(), store)?
    };
    let mut config = build_config(args, parsed, &image_config, &id, driver)?;
    config.network = network.spec();
    let record = ContainerRecord {
        id,
        name,
        image: args.image.clone(),
        image_id: image.id.clone(),
        created: Utc::now(),
        config,
    };
    store.create_container(&record)?;
    // As Docker: a named volume exists from `create` on (`system df`, prune and a second
    // container see it), not only once a container first starts.
    for spec in &record.config.mounts {
        if let MountSpec::Volume { name, .. } = spec {
            let data = store.volume_data_dir(name);
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create volume `{name}` at {}", data.display()))?;
        }
    }
    Ok(record)
}

fn obtain_image(args: &RunArgs, ctx: &Ctx, store: &Store, ns: Namespace) -> Result<ImageRecord> {
    let config = ctx.registries()?;
    let local = || find_image(&store.images()?, &args.image, &config).map(|(i, _)| i);
    match args.pull {
        PullPolicy::Never => local().with_context(|| never_pulls(&args.image)),
        PullPolicy::Missing if local().is_ok() => local(),
        _ => {
            let reference = Reference::parse(&args.image)?;
            let progress = super::progress::Progress::new(args.quiet);
            super::pull::pull(
                store,
                ctx,
                &config,
                &reference,
                None,
                &PlatformSpec::host(),
                ns,
                &progress,
            )
            .with_context(|| format!("cannot pull {}", args.image))?;
            local()
        }
    }
}

/// The driver named by `--storage-driver`, else the one this store settled on, else
/// `auto`: the monitor probes (mounting needs the mount namespace only it has) and records
/// the result for the store.
fn choose_driver(requested: Option<&str>, store: &Store) -> Result<String> {
    if let Some(name) = requested {
        let driver = Driver::parse(name).with_context(|| {
            format!("unknown storage driver `{name}`: use overlay, fuse-overlayfs or vfs")
        })?;
        return Ok(driver.name().to_string());
    }
    Ok(crate::runtime::container::saved_driver(store)
        .map(|d| d.name().to_string())
        .unwrap_or_else(|| "auto".to_string()))
}

/// Options checked before anything is created, so bad input leaves no container behind.
struct ParsedOptions {
    limits: cgroups::Limits,
    env: Vec<String>,
    mounts: Vec<MountSpec>,
    labels: BTreeMap<String, String>,
    seccomp: Option<String>,
    no_new_privileges: bool,
    keep_id: bool,
    /// The `-p` mappings; `-P`'s join them once the image is known.
    ports: Vec<PortMapping>,
    /// `-P`, unless the network mode discards published ports.
    publish_all: bool,
    dns: Vec<String>,
    add_hosts: Vec<String>,
    /// `--network` as given; [`ParsedOptions::resolve_network`] fills in the default.
    network: Option<Mode>,
}

impl ParsedOptions {
    /// The network mode: as given, else config.toml's default, else pasta (or slirp4netns
    /// where only it is installed); its helper must be installed, and it must be able to
    /// honour the other options.
    fn resolve_network(&mut self, ctx: &Ctx) -> Result<()> {
        let mode = match self.network.take() {
            Some(mode) => mode,
            None => {
                let config = ctx.nook_config()?;
                Mode::default_mode(config.network.default.as_deref()).with_context(|| {
                    format!(
                        "invalid network.default in {}",
                        ctx.paths.nook_config().display()
                    )
                })?
            }
        };
        mode.check_helper()?;
        if mode == Mode::None && (!self.ports.is_empty() || self.publish_all) {
            bail!(
                "cannot publish ports with --network none: the container has only a loopback interface (use --network pasta or slirp4netns)"
            );
        }
        let reaches_host = mode.reaches_host() || mode == Mode::Host;
        if let Some(entry) = self
            .add_hosts
            .iter()
            .find(|h| h.ends_with(":host-gateway"))
            .filter(|_| !reaches_host)
        {
            bail!(
                "--add-host {entry} needs a network that reaches the host: use --network pasta:--map-gw or slirp4netns:allow_host_loopback=true"
            );
        }
        self.network = Some(mode);
        Ok(())
    }

    fn parse(args: &RunArgs) -> Result<ParsedOptions> {
        let keep_id = match args.userns.as_deref() {
            None | Some("") | Some("host") => false,
            Some("keep-id") if crate::sys::is_real_root() => bail!(
                "--userns=keep-id maps an unprivileged user's own ids; as real root there is nothing to keep (run without it)"
            ),
            Some("keep-id") => true,
            Some(other) => bail!(
                "unsupported --userns mode `{other}`: use keep-id (your own uid and gid inside), or leave it out (container root is your own uid)"
            ),
        };
        // Docker's `bridge` (its default) is, rootless, the default helper.
        let network = args
            .network
            .as_deref()
            .filter(|n| !matches!(*n, "bridge" | "default"))
            .map(Mode::parse)
            .transpose()?;
        if let Some(name) = &args.name {
            let n = name.trim_start_matches('/');
            let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                bail!(
                    "invalid container name `{name}`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                );
            }
        }
        let mut env = Vec::new();
        for file in &args.env_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read env file {}", file.display()))?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                env.extend(env_entry(line));
            }
        }
        for e in &args.env {
            env.extend(env_entry(e));
        }
        let mut mounts = Vec::new();
        for v in &args.volume {
            mounts.push(parse_volume(v)?);
        }
        for m in &args.mount {
            mounts.push(parse_mount(m)?);
        }
        for t in &args.tmpfs {
            let (dest, options) = t.split_once(':').unwrap_or((t.as_str(), ""));
            check_destination(dest)?;
            mounts.push(MountSpec::Tmpfs {
                destination: dest.to_string(),
                options: options.to_string(),
            });
        }
        let mut labels = BTreeMap::new();
        for l in &args.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let mut seccomp = None;
        let mut no_new_privileges = false;
        for opt in &args.security_opt {
            match opt.split_once(['=', ':']) {
                Some(("seccomp", "unconfined")) => seccomp = Some("unconfined".to_string()),
                Some(("seccomp", path)) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the seccomp profile {path}"))?;
                    seccomp = Some(text);
                }
                Some(("no-new-privileges", v)) => no_new_privileges = v != "false",
                None if opt == "no-new-privileges" => no_new_privileges = true,
                _ => bail!(
                    "unknown --security-opt `{opt}`: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges"
                ),
            }
        }
        if let Some(sig) = &args.stop_signal {
            parse_signal(sig)?;
        }
        // Checked even where the network mode then discards them, as Docker does.
        let ports = parse_publish_options(&args.publish)?;
        let publishes = check_network_conflicts(args)?;
        let dns = args
            .dns
            .iter()
            .map(|d| parse_dns(d))
            .collect::<Result<_>>()?;
        let add_hosts = args
            .add_host
            .iter()
            .map(|h| parse_add_host(h))
            .collect::<Result<_>>()?;
        let size = |option: &'static str, value: &Option<String>| -> Result<Option<u64>> {
            value
                .as_deref()
                .map(|v| {
                    crate::format::parse_size(v).ok_or_else(|| {
                        anyhow::anyhow!(
                            "invalid {option} `{v}`: expected a size such as 512m or 2g"
                        )
                    })
                })
                .transpose()
        };
        let limits = cgroups::Limits {
            memory: size("--memory", &args.memory)?,
            memory_swap: match args.memory_swap.as_deref() {
                Some("-1") => Some(-1),
                _ => size("--memory-swap", &args.memory_swap)?.map(|b| b as i64),
            },
            cpus: args.cpus,
            pids: args.pids_limit,
        };
        limits.validate()?;
        if !limits.is_empty() {
            // Refused now, before anything is created, rather than when the container starts.
            cgroups::plan(
                &limits,
                "check",
                cgroups::own_cgroup(),
                nix::unistd::getuid().as_raw(),
                &cgroups::v1_mounted,
            )?;
        }
        Ok(ParsedOptions {
            limits,
            env,
            mounts,
            labels,
            seccomp,
            no_new_privileges,
            keep_id,
            ports: if publishes { ports } else { Vec::new() },
            publish_all: publishes && args.publish_all,
            dns,
            add_hosts,
            network,
        })
    }
}

/// `NAME=VALUE` as is; a bare `NAME` takes this environment's value, or nothing if unset.
fn env_entry(spec: &str) -> Option<String> {
    if spec.contains('=') {
        Some(spec.to_string())
    } else {
        std::env::var(spec).ok().map(|v| format!("{spec}={v}"))
    }
}

fn check_destination(dest: &str) -> Result<()> {
    if !dest.starts_with('/') {
        bail!("invalid mount destination `{dest}`: it must be an absolute path");
    }
    Ok(())
}

/// `-v HOST:CTR[:ro|rw]` (bind) or `-v NAME:CTR` (named volume).
fn parse_volume(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => bail!("invalid volume specification `{spec}`: use HOST:CONTAINER[:ro]"),
    };
    check_destination(dest)?;
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => bail!("invalid volume mode `{other}` in `{spec}`: use ro or rw"),
    };
    if source.starts_with('/') || source.starts_with('.') {
        let path = std::fs::canonicalize(source)
            .with_context(|| format!("bind source path `{source}` does not exist"))?;
        Ok(MountSpec::Bind {
            source: path,
            destination: dest.to_string(),
            read_only,
        })
    } else {
        check_volume_name(source)?;
        Ok(MountSpec::Volume {
            name: source.to_string(),
            destination: dest.to_string(),
            read_only,
        })
    }
}

fn check_volume_name(name: &str) -> Result<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!(
            "invalid volume name `{name}`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (a host path must be absolute)"
        );
    }
    Ok(())
}

/// `--mount type=bind,source=/x,target=/y,readonly`.
fn parse_mount(spec: &str) -> Result<MountSpec> {
    let mut kind = "volume";
    let (mut source, mut target, mut read_only) = (None, None, false);
    let mut options = Vec::new();
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => source = Some(v.to_string()),
            "target" | "destination" | "dst" => target = Some(v.to_string()),
            "readonly" | "ro" => read_only = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => options.push(format!("size={v}")),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            _ => bail!("unknown --mount field `{k}` in `{spec}`"),
        }
    }
    let target = target.with_context(|| format!("--mount `{spec}` has no target"))?;
    check_destination(&target)?;
    match kind {
        "bind" => {
            let source = source.with_context(|| format!("--mount `{spec}` has no source"))?;
            let path = std::fs::canonicalize(&source)
                .with_context(|| format!("bind source path `{source}` does not exist"))?;
            Ok(MountSpec::Bind {
                source: path,
                destination: target,
                read_only,
            })
        }
        "tmpfs" => Ok(MountSpec::Tmpfs {
            destination: target,
            options: options.join(","),
        }),
        "volume" => {
            let name = source.with_context(|| {
                format!("--mount `{spec}` has no source (anonymous volumes are not supported)")
            })?;
            check_volume_name(&name)?;
            Ok(MountSpec::Volume {
                name,
                destination: target,
                read_only,
            })
        }
        other => bail!("unknown mount type `{other}`: use bind, tmpfs or volume"),
    }
}

/// `TERM`, `SIGTERM`, `15` → 15.
pub fn parse_signal(spec: &str) -> Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    let upper = spec.to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .with_context(|| format!("invalid signal `{spec}`"));
    }
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).with_context(|| format!("invalid signal `{spec}`"))
}

/// Docker's refusals for options that another container's network cannot honour. Returns
/// whether published ports are kept: the host's network discards them, with Docker's warning.
fn check_network_conflicts(args: &RunArgs) -> Result<bool> {
    let mode = args.network.as_deref().unwrap_or_default();
    let publishing = !args.publish.is_empty() || args.publish_all;
    if let Some(other) = mode.strip_prefix("container:") {
        let refused = if publishing {
            Some("-p/-P")
        } else if !args.dns.is_empty() {
            Some("--dns")
        } else if !args.add_host.is_empty() {
            Some("--add-host")
        } else {
            None
        };
        if let Some(option) = refused {
            bail!(
                "conflicting options: {option} and --network {mode}: the container uses the network of {other}, so give {option} to that container instead"
            );
        }
    }
    if mode == "host" && publishing {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        return Ok(false);
    }
    Ok(true)
}

/// Every `-p`, expanded; two claiming one host port are refused here, before anything is
/// created.
fn parse_publish_options(specs: &[String]) -> Result<Vec<PortMapping>> {
    let mut mappings = Vec::new();
    for spec in specs {
        mappings.extend(ports::parse_publish(spec)?);
    }
    Ok(ports::merge(mappings, Vec::new())?)
}

/// `--dns IP`: an IPv4 or IPv6 address, stored in its canonical form as Docker does.
fn parse_dns(spec: &str) -> Result<String> {
    spec.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            anyhow::anyhow!(
                "invalid --dns `{spec}`: give a name server's IP address, such as 9.9.9.9 or 2620:fe::fe (not a host name)"
            )
        })
}

/// Docker's value for `--add-host` that stands for the host's own address.
const HOST_GATEWAY: &str = "host-gateway";

/// `--add-host HOST:IP` or `HOST=IP` (IPv6 may be bracketed), stored as `HOST:IP` with the
/// address as given, as Docker stores it; `host-gateway` is kept for the runtime to resolve.
fn parse_add_host(spec: &str) -> Result<String> {
    // `=` first: with `:` the first colon separates, so an IPv6 address stays whole.
    let split = spec.split_once('=').or_else(|| spec.split_once(':'));
    let Some((host, ip)) = split.filter(|(host, _)| {
        !host.is_empty() && !host.contains(':') && !host.contains(char::is_whitespace)
    }) else {
        bail!(
            "invalid --add-host `{spec}`: use HOST:IP or HOST=IP, e.g. db:10.0.0.5 (or HOST:host-gateway for the host)"
        );
    };
    if ip == HOST_GATEWAY {
        return Ok(format!("{host}:{ip}"));
    }
    let bare = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => ip,
    };
    if bare.parse::<std::net::IpAddr>().is_err() {
        bail!(
            "invalid IP address `{ip}` in --add-host `{spec}`: give a numeric address such as 10.0.0.5 or ::1, or host-gateway for the host"
        );
    }
    Ok(format!("{host}:{bare}"))
}

/// The container's published ports: `-p`'s, then, with `-P`, each port the image exposes
/// that `-p` does not already publish.
fn published_ports(parsed: &ParsedOptions, image: &Value) -> Result<Vec<PortMapping>> {
    let exposed = if parsed.publish_all {
        ports::exposed_ports(image)
    } else {
        Vec::new()
    };
    Ok(ports::merge(parsed.ports.clone(), exposed)?)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.pointer(&format!("/config/{key}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn build_config(
    args: &RunArgs,
    parsed: &ParsedOptions,
    image: &Value,
    id: &str,
    driver: String,
) -> Result<ContainerConfig> {
    let text = |key: &str| {
        image
            .pointer(&format!("/config/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // Docker: --entrypoint replaces the image's entrypoint and drops its CMD.
    let (entrypoint, image_cmd) = match &args.entrypoint {
        Some(e) if e.is_empty() => (vec![], vec![]),
        Some(e) => (vec![e.clone()], vec![]),
        None => (strings(image, "Entrypoint"), strings(image, "Cmd")),
    };
    let cmd = if args.command.is_empty() {
        image_cmd
    } else {
        args.command.clone()
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        bail!(
            "no command specified: the image has no CMD or ENTRYPOINT; give one after the image name"
        );
    }
    let mut env = strings(image, "Env");
    env.extend(parsed.env.iter().cloned());
    let mut labels: BTreeMap<String, String> = image
        .pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(parsed.labels.clone());
    let stop_signal = args
        .stop_signal
        .clone()
        .or_else(|| Some(text("StopSignal")).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "SIGTERM".to_string());
    parse_signal(&stop_signal)?;
    Ok(ContainerConfig {
        entrypoint,
        cmd,
        env,
        working_dir: args.workdir.clone().unwrap_or_else(|| text("WorkingDir")),
        user: args.user.clone().unwrap_or_else(|| {
            if parsed.keep_id {
                format!(
                    "{}:{}",
                    nix::unistd::getuid().as_raw(),
                    nix::unistd::getgid().as_raw()
                )
            } else {
                text("User")
            }
        }),
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string()),
        tty: args.tty,
        interactive: args.interactive,
        mounts: parsed.mounts.clone(),
        read_only: args.read_only,
        init: args.init.unwrap_or(false),
        log_driver: args.log_driver.unwrap_or_default(),
        log_opts: args
            .log_opt
            .iter()
            .filter_map(|spec| spec.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        seccomp: parsed.seccomp.clone(),
        no_new_privileges: parsed.no_new_privileges,
        keep_id: parsed.keep_id,
        stop_signal,
        stop_timeout: args.stop_timeout.unwrap_or(10),
        auto_remove: args.rm,
        labels,
        storage_driver: driver,
        network: "none".to_string(),
        ports: published_ports(parsed, image)?,
        dns: parsed.dns.clone(),
        add_hosts: parsed.add_hosts.clone(),
        limits: parsed.limits.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Protocol;
    use clap::Parser;
    use serde_json::json;

    fn run_args(options: &[&str]) -> RunArgs {
        let argv = ["nook", "run"]
            .iter()
            .chain(options)
            .chain(&["busybox", "true"]);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Run(args) => args,
            other => panic!("{other:?}"),
        }
    }

    fn config(options: &[&str], image: &Value) -> Result<ContainerConfig> {
        let args = run_args(options);
        let parsed = ParsedOptions::parse(&args)?;
        build_config(&args, &parsed, image, &"a".repeat(64), "vfs".into())
    }

    #[test]
    fn init_and_log_driver_options_as_docker_takes_them() {
        use crate::config::LogDriver;
        let init = |options: &[&str]| run_args(options).init;
        assert_eq!(init(&[]), None);
        // A bare --init before the image takes no value: the image stays the image.
        let args = run_args(&["--init"]);
        assert_eq!((args.init, args.image.as_str()), (Some(true), "busybox"));
        assert_eq!(init(&["--init=true"]), Some(true));
        assert_eq!(init(&["--init=false"]), Some(false));
        let log = |options: &[&str]| run_args(options).log_driver;
        assert_eq!(log(&[]), None);
        assert_eq!(log(&["--log-driver", "none"]), Some(LogDriver::None));
        assert_eq!(log(&["--log-driver=json-file"]), Some(LogDriver::JsonFile));
        assert!(
            crate::cli::Cli::try_parse_from(["nook", "run", "--log-driver", "syslog", "busybox"])
                .is_err()
        );
    }

    #[test]
    fn published_ports_merge_p_and_publish_all() {
        let image =
            json!({"config": {"Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}});
        let c = config(&["-p", "8080:80", "-p", "127.0.0.1::53/udp"], &image).unwrap();
        assert_eq!(
            c.ports,
            [
                PortMapping::new("", 8080, 80, Protocol::Tcp),
                PortMapping::new("127.0.0.1", 0, 53, Protocol::Udp)
            ]
        );
        let c = config(&["-P", "--publish", "8080:80"], &image).unwrap();
        assert_eq!(
            c.ports,
            [
                PortMapping::new("", 8080, 80, Protocol::Tcp),
                PortMapping::new("", 0, 443, Protocol::Tcp)
            ]
        );
        let c = config(&["--publish-all"], &json!({"config": {"Cmd": ["sh"]}})).unwrap();
        assert!(c.ports.is_empty());
        assert!(config(&[], &image).unwrap().ports.is_empty());
    }

    #[test]
    fn bad_port_options_fail_before_anything_is_created() {
        let parse = |options: &[&str]| ParsedOptions::parse(&run_args(options)).map(|_| ());
        let message = |options: &[&str]| parse(options).unwrap_err().to_string();
        assert!(message(&["-p", "8080:0"]).contains("invalid container port `0` in `8080:0`"));
        assert!(message(&["-p", "80/sctp"]).contains("sctp"));
        assert_eq!(
            message(&["-p", "8080:80", "-p", "8080:81"]),
            "host port 0.0.0.0:8080/tcp is published twice (for container ports 80/tcp and 81/tcp): give each mapping its own host port"
        );
        assert!(parse(&["-p", "8080:80", "-p", "8081:80/udp", "-P"]).is_ok());
    }

    #[test]
    fn dns_servers_are_ip_addresses() {
        assert_eq!(parse_dns("9.9.9.9").unwrap(), "9.9.9.9");
        assert_eq!(parse_dns(" 2620:fe:0:0::fe ").unwrap(), "2620:fe::fe");
        for bad in ["dns.quad9.net", "", "9.9.9", "[::1]", "1.1.1.1:53"] {
            assert_eq!(
                parse_dns(bad).unwrap_err().to_string(),
                format!(
                    "invalid --dns `{bad}`: give a name server's IP address, such as 9.9.9.9 or 2620:fe::fe (not a host name)"
                )
            );
        }
        let c = config(
            &["--dns", "1.1.1.1", "--dns", "0:0::1"],
            &json!({"config": {"Cmd": ["sh"]}}),
        )
        .unwrap();
        assert_eq!(c.dns, ["1.1.1.1", "::1"]);
    }

    #[test]
    fn extra_hosts_as_docker_takes_them() {
        assert_eq!(parse_add_host("db:10.0.0.5").unwrap(), "db:10.0.0.5");
        assert_eq!(parse_add_host("db=10.0.0.5").unwrap(), "db:10.0.0.5");
        assert_eq!(parse_add_host("v6:::1").unwrap(), "v6:::1");
        assert_eq!(parse_add_host("v6=::1").unwrap(), "v6:::1");
        assert_eq!(parse_add_host("v6:[::1]").unwrap(), "v6:::1");
        assert_eq!(
            parse_add_host("v6=[2001:db8::1]").unwrap(),
            "v6:2001:db8::1"
        );
        // Kept as given, not canonicalised (Docker writes it to /etc/hosts so).
        assert_eq!(parse_add_host("v6=0:0::1").unwrap(), "v6:0:0::1");
        assert_eq!(
            parse_add_host("host.docker.internal:host-gateway").unwrap(),
            "host.docker.internal:host-gateway"
        );
        assert_eq!(
            parse_add_host("gw=host-gateway").unwrap(),
            "gw:host-gateway"
        );
        for bad in [
            "db",
            ":10.0.0.5",
            "=10.0.0.5",
            "a b:10.0.0.5",
            "a:b=10.0.0.5",
        ] {
            assert_eq!(
                parse_add_host(bad).unwrap_err().to_string(),
                format!(
                    "invalid --add-host `{bad}`: use HOST:IP or HOST=IP, e.g. db:10.0.0.5 (or HOST:host-gateway for the host)"
                )
            );
        }
        assert_eq!(
            parse_add_host("db:example.com").unwrap_err().to_string(),
            "invalid IP address `example.com` in --add-host `db:example.com`: give a numeric address such as 10.0.0.5 or ::1, or host-gateway for the host"
        );
        for bad in [
            "db:",
            "db:[]",
            "db:10.0.0.256",
            "db:[10.0.0.1",
            "db: 10.0.0.1",
        ] {
            assert!(parse_add_host(bad).is_err(), "{bad}");
        }
        let c = config(
            &["--add-host", "db=10.0.0.5", "--add-host", "gw:host-gateway"],
            &json!({"config": {"Cmd": ["sh"]}}),
        )
        .unwrap();
        assert_eq!(c.add_hosts, ["db:10.0.0.5", "gw:host-gateway"]);
    }

    #[test]
    fn a_shared_network_refuses_what_it_cannot_honour() {
        let check = |options: &[&str]| check_network_conflicts(&run_args(options));
        assert!(check(&["-p", "80"]).unwrap());
        assert!(check(&["--network", "none", "-P"]).unwrap());
        assert!(!check(&["--network", "host", "-p", "80"]).unwrap());
        assert!(check(&["--network", "host", "--dns", "1.1.1.1"]).unwrap());
        assert!(check(&["--network", "container:db"]).unwrap());
        assert_eq!(
            check(&["--network", "container:db", "-p", "80"])
                .unwrap_err()
                .to_string(),
            "conflicting options: -p/-P and --network container:db: the container uses the network of db, so give -p/-P to that container instead"
        );
        for (option, value) in [("--dns", "1.1.1.1"), ("--add-host", "a:1.2.3.4")] {
            let err = check(&["--network", "container:db", option, value]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("conflicting options: {option} and"))
            );
        }
    }
}
