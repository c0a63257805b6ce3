//! One file per verb: parse the arguments into work, call the lower modules, print. This is
//! the only layer that writes to stdout or adds hints for the user.

mod attach;
mod commit;
pub mod completion;
mod container;
mod diff;
mod doctor;
mod exec;
mod export;
mod generate;
mod history;
mod images;
mod import;
mod info;
pub(crate) use info::cgroup_facts;
mod inspect;
mod lifecycle;
mod load;
mod login;
mod logs;
mod output;
mod parallel;
mod port;
mod progress;
mod ps;
mod pull;
mod push;
mod rename;
mod rm;
mod rmi;
mod run;
mod save;
mod system;
mod tag;
mod version;
mod wait;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Command};
use crate::config::RegistriesConfig;
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::paths::Paths;
use crate::store::Store;
use crate::store::images::{ImageIndex, ImageRecord};

/// What every command may need, resolved once.
pub struct Ctx {
    pub paths: Paths,
    /// The configuration files, read once per command (every command checks them at its
    /// start; `run` then asks again for its defaults and its registries).
    config: std::cell::OnceCell<crate::config::NookConfig>,
    registries: std::cell::OnceCell<(RegistriesConfig, Option<std::path::PathBuf>)>,
}

impl Ctx {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.paths.data)
            .with_context(|| format!("cannot open the store at {}", self.paths.data.display()))
    }

    /// The registries of `[registries]` in config.toml, else of registries.toml.
    pub fn registries(&self) -> Result<RegistriesConfig> {
        Ok(self.registries_and_source()?.0)
    }

    /// The registries and the file they come from, if any.
    pub fn registries_and_source(&self) -> Result<(RegistriesConfig, Option<std::path::PathBuf>)> {
        if let Some(loaded) = self.registries.get() {
            return Ok(loaded.clone());
        }
        let loaded = crate::config::load_registries(
            &self.nook_config()?,
            &self.paths.nook_config(),
            &self.paths.registries_config(),
        )?;
        Ok(self.registries.get_or_init(|| loaded).clone())
    }

    pub fn nook_config(&self) -> Result<crate::config::NookConfig> {
        if let Some(config) = self.config.get() {
            return Ok(config.clone());
        }
        let config = crate::config::NookConfig::load(&self.paths.nook_config())?;
        Ok(self.config.get_or_init(|| config).clone())
    }

    pub fn auth_files(&self) -> crate::image::auth::AuthFiles {
        let primary = std::env::var_os("REGISTRY_AUTH_FILE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| self.paths.runtime_base.join("containers/auth.json"));
        let docker = std::env::var_os("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| self.paths.home.join(".docker"))
            .join("config.json");
        crate::image::auth::AuthFiles {
            primary,
            docker: Some(docker),
        }
    }

    /// Warns about a runtime directory fallback once until the stand-in directory goes (a
    /// marker there): a user under su or sudo is told how to fix it without hearing it at
    /// every command.
    pub fn warn_runtime_fallback_once(&self) {
        if self.paths.runtime_fallback_reason.is_none() {
            return;
        }
        let marker = self.paths.runtime_base.join("warned-runtime-dir");
        if marker.exists() {
            return;
        }
        self.warn_runtime_fallback();
        let _ = std::fs::write(&marker, b"");
    }

    /// Warns once per invocation about a runtime directory fallback, for commands that use it.
    pub fn warn_runtime_fallback(&self) {
        if let Some(reason) = &self.paths.runtime_fallback_reason {
            crate::error::warn(&format!(
                "{reason}; using {} for runtime state (log in properly, or: export XDG_RUNTIME_DIR=/run/user/$(id -u))",
                self.paths.runtime_base.display()
            ));
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    let paths = Paths::from_env(cli.root)?;
    let ctx = Ctx {
        paths,
        config: Default::default(),
        registries: Default::default(),
    };
    crate::error::set_store(&ctx.paths.data);
    match &cli.command {
        // These say it themselves, every time (doctor in its table).
        Command::Login(_)
        | Command::Logout(_)
        | Command::Completion(_)
        | Command::Info(_)
        | Command::Monitor(_)
        | Command::System(
            crate::cli::SystemCommand::Info(_) | crate::cli::SystemCommand::Doctor(_),
        ) => {}
        _ => ctx.warn_runtime_fallback_once(),
    }
    match &cli.command {
        // Info and doctor report a bad file in their own way; the rest refuse it, so a
        // mistyped key is named at the next command, not only by the one that reads it.
        Command::Completion(_)
        | Command::Monitor(_)
        | Command::Version(_)
        | Command::Info(_)
        | Command::System(
            crate::cli::SystemCommand::Info(_) | crate::cli::SystemCommand::Doctor(_),
        ) => {}
        _ => {
            ctx.registries_and_source()?;
        }
    }
    match cli.command {
        Command::Pull(args) => pull::run(args, &ctx),
        Command::Push(args) => push::run(args, &ctx),
        Command::Images(args) => images::run(args, &ctx),
        Command::Tag(args) => tag::run(args, &ctx),
        Command::Commit(args) => commit::run(args, &ctx),
        Command::Rmi(args) => rmi::run(args, &ctx),
        Command::Save(args) => save::run(args, &ctx),
        Command::Load(args) => load::run(args, &ctx),
        Command::Inspect(args) => inspect::run(args, &ctx),
        Command::History(args) => history::run(args, &ctx),
        Command::Login(args) => login::login(args, &ctx),
        Command::Logout(args) => login::logout(args, &ctx),
        Command::Completion(args) => completion::run(args),
        Command::Run(args) => run::run(args, &ctx),
        Command::Create(args) => run::create(args, &ctx),
        Command::Start(args) => lifecycle::start(args, &ctx),
        Command::Stop(args) => lifecycle::stop(args, &ctx),
        Command::Restart(args) => lifecycle::restart(args, &ctx),
        Command::Kill(args) => lifecycle::kill(args, &ctx),
        Command::Wait(args) => wait::run(args, &ctx),
        Command::Rm(args) => rm::run(args, &ctx),
        Command::Ps(args) => ps::run(args, &ctx),
        Command::Logs(args) => logs::run(args, &ctx),
        Command::Port(args) => port::run(args, &ctx),
        Command::Exec(args) => exec::run(args, &ctx),
        Command::Rename(args) => rename::run(args, &ctx),
        Command::Attach(args) => attach::run(args, &ctx),
        Command::Diff(args) => diff::run(args, &ctx),
        Command::Export(args) => export::run(args, &ctx),
        Command::Import(args) => import::run(args, &ctx),
        Command::Container(command) => container::run(command, &ctx),
        Command::Image(command) => system::image(command, &ctx),
        Command::System(command) => system::run(command, &ctx),
        Command::Info(args) => info::run(args, &ctx),
        Command::Version(args) => version::run(args),
        Command::Generate(crate::cli::GenerateCommand::Kube(args))
        | Command::Kube(crate::cli::KubeCommand::Generate(args)) => generate::kube(args, &ctx),
        Command::Monitor(args) => {
            // Started into a fresh user namespace (the child's side of the handshake), or
            // re-executed inside one already; never on the host side.
            if crate::runtime::userns::inside()?.is_none() {
                anyhow::bail!("the monitor must run inside nook's user namespace");
            }
            let store = ctx.store()?;
            let notify = args
                .notify_fd
                .map(crate::runtime::container::adopt_notify_fd)
                .transpose()?;
            crate::runtime::container::monitor(
                &store,
                &args.id,
                crate::runtime::container::MonitorMode {
                    foreground: args.foreground,
                    remove_on_failure: args.remove_on_failure,
                },
                notify,
            )
        }
    }
}

/// How a user's words name a local image.
enum ImageSpec {
    /// A full or abbreviated image ID, with or without `sha256:`.
    Id(String),
    Name(Reference),
}

fn parse_image_spec(input: &str) -> Result<ImageSpec> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    let looks_like_id = hex.len() >= 4
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if input.starts_with("sha256:") || (looks_like_id && hex.len() == 64) {
        if !looks_like_id {
            bail!("invalid image ID `{input}`");
        }
        return Ok(ImageSpec::Id(hex.to_string()));
    }
    if looks_like_id {
        // Docker tries an ID prefix first; `find_image` falls back to the name.
        return Ok(ImageSpec::Id(hex.to_string()));
    }
    Ok(ImageSpec::Name(Reference::parse(input)?))
}

/// The names under which `reference` may be stored: itself, or for an unqualified name, the
/// same name on each unqualified-search registry.
fn candidate_names(reference: &Reference, config: &RegistriesConfig) -> Vec<Reference> {
    config.candidates(reference)
}

/// Finds a local image by name, ID or ID prefix. Returns the record and the full name the
/// user meant (None when named by ID).
pub fn find_image(
    index: &ImageIndex,
    input: &str,
    config: &RegistriesConfig,
) -> Result<(ImageRecord, Option<String>)> {
    match parse_image_spec(input)? {
        ImageSpec::Id(prefix) => {
            let matches: Vec<&ImageRecord> = index
                .images
                .iter()
                .filter(|i| i.id.hex().starts_with(&prefix))
                .collect();
            match matches.as_slice() {
                [one] => Ok(((*one).clone(), None)),
                [] => {
                    // A short hex string may also be a plain image name ("cafe").
                    if let Ok(r) = Reference::parse(input)
                        && let Some(found) = find_by_name(index, &r, config)
                    {
                        return Ok(found);
                    }
                    bail!("no such image: {input}")
                }
                _ => bail!(
                    "image ID prefix `{input}` is ambiguous: it matches {} images; give more characters",
                    matches.len()
                ),
            }
        }
        ImageSpec::Name(reference) => find_by_name(index, &reference, config)
            .ok_or_else(|| anyhow::anyhow!("no such image: {input}")),
    }
}

fn find_by_name(
    index: &ImageIndex,
    reference: &Reference,
    config: &RegistriesConfig,
) -> Option<(ImageRecord, Option<String>)> {
    for candidate in candidate_names(reference, config) {
        if let Some(digest) = &candidate.digest {
            let wanted = format!("{}@{}", candidate.name(), digest);
            if let Some(img) = index
                .images
                .iter()
                .find(|i| i.repo_digests.contains(&wanted) || &i.manifest == digest)
            {
                return Some((img.clone(), None));
            }
            continue;
        }
        let full = candidate.to_string();
        if let Some(img) = index.images.iter().find(|i| i.names.contains(&full)) {
            return Some((img.clone(), Some(full)));
        }
    }
    None
}

/// `docker.io/library/busybox:latest` → ("busybox", "latest") as Docker shows it.
pub fn familiar_repo_tag(name: &str) -> (String, String) {
    match Reference::parse(name) {
        Ok(r) => (
            r.familiar_name(),
            r.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

/// `busybox@sha256:…` for a stored `docker.io/library/busybox@sha256:…`.
pub fn familiar_digest(repo_digest: &str) -> (String, String) {
    match repo_digest.split_once('@') {
        Some((name, digest)) => {
            let repo = Reference::parse(name)
                .map(|r| r.familiar_name())
                .unwrap_or_else(|_| name.to_string());
            (repo, digest.to_string())
        }
        None => (repo_digest.to_string(), String::new()),
    }
}

/// The image ID as shown: 12 hex characters, or the full `sha256:…` with --no-trunc.
pub fn show_id(id: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

/// Runs `action` for each named object, printing what it returns on success (Docker prints
/// the name given, or an exit code) and one error line for each failure; exit status 125 if
/// any failed, as Docker's.
pub fn for_each_input(
    inputs: &[String],
    mut action: impl FnMut(&str) -> Result<String>,
) -> Result<i32> {
    let mut failed = false;
    for input in inputs {
        match action(input) {
            Ok(line) => print_out(&format!("{line}\n"))?,
            Err(e) => {
                crate::error::eprint_line(&crate::error::render(&e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        crate::error::EXIT_NOOK_ERROR
    } else {
        0
    })
}

/// Writes to stdout, turning a closed pipe into a clean exit upstream.
/// A name for an image made or renamed here (commit, import, tag): normalised as Docker does
/// (`:latest` when no tag is given); a digest is refused, since it names content.
pub fn new_image_name(input: &str, verb: &str) -> Result<String> {
    let reference = crate::image::reference::Reference::parse(input)?;
    if reference.digest.is_some() {
        anyhow::bail!("cannot {verb} `{input}`: a digest names content, not a tag");
    }
    Ok(reference.to_string())
}

/// The `--format` of a listing command (`ps`, `images`, `history`). With `-q` as well the
/// IDs win, as in Docker, which warns that it ignores the format.
pub fn listing_format(
    format: Option<&str>,
    quiet: bool,
) -> Result<Option<crate::format::Template>> {
    match format {
        Some(f) if quiet => {
            if f.trim() != "table" {
                eprintln!(
                    "WARNING: Ignoring custom format, because both --format and --quiet are set."
                );
            }
            Ok(None)
        }
        Some(f) => Ok(Some(crate::format::Template::parse(f)?)),
        None => Ok(None),
    }
}

pub fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
