//! The command line, as clap types only. Man pages and completions are generated from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nook",
    version,
    about = "Rootless, daemonless containers with Docker's command line",
    long_about = "nook runs containers as an ordinary user: no root, no daemon. Images come from any OCI registry; \
                  state lives under $XDG_DATA_HOME/nook, $XDG_RUNTIME_DIR/nook and $XDG_CONFIG_HOME/nook.",
    after_help = "Examples:\n  nook pull busybox\n  nook images\n  nook --root /scratch/$USER/nook pull 127.0.0.1:5000/team/app:1.0"
)]
pub struct Cli {
    /// Keep the store in DIR instead of $XDG_DATA_HOME/nook (use a local disk when your home is on NFS)
    #[arg(long, global = true, value_name = "DIR", env = "NOOK_ROOT")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry
    #[command(
        after_help = "Examples:\n  nook pull busybox\n  nook pull 127.0.0.1:5000/team/app:1.0\n  nook pull --platform linux/arm64 alpine@sha256:…"
    )]
    Pull(PullArgs),
    /// List images
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  nook images\n  nook images -q\n  nook images --format '{{.Repository}}:{{.Tag}}'"
    )]
    Images(ImagesArgs),
    /// Give an image another name
    #[command(after_help = "Example:\n  nook tag busybox 127.0.0.1:5000/me/busybox:1.0")]
    Tag(TagArgs),
    /// Remove images (untag; delete when the last name goes)
    #[command(after_help = "Examples:\n  nook rmi busybox\n  nook rmi -f 3f57d9401f8d")]
    Rmi(RmiArgs),
    /// Show an image's details as JSON
    #[command(
        after_help = "Examples:\n  nook inspect busybox\n  nook inspect --format '{{.Config.Cmd}}' busybox"
    )]
    Inspect(InspectArgs),
    /// Show how an image was built, layer by layer
    #[command(after_help = "Example:\n  nook history busybox")]
    History(HistoryArgs),
    /// Store credentials for a registry
    #[command(
        after_help = "Examples:\n  nook login registry.example.com\n  echo \"$TOKEN\" | nook login -u me --password-stdin registry.example.com"
    )]
    Login(LoginArgs),
    /// Forget the credentials for a registry
    #[command(after_help = "Examples:\n  nook logout registry.example.com\n  nook logout --all")]
    Logout(LogoutArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  nook completion bash > ~/.local/share/bash-completion/completions/nook"
    )]
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG], NAME@sha256:DIGEST, or HOST[:PORT]/PATH[:TAG]
    pub image: String,
    /// Platform to choose from a multi-platform image, e.g. linux/arm64 (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the image reference, no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Require HTTPS with verified certificates (true), or allow plain HTTP and unverified TLS (false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show images whose name matches REPOSITORY[:TAG]
    pub filter: Option<String>,
    /// Show all images (nook keeps no intermediate images, so this is the default list)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the manifest digests
    #[arg(long)]
    pub digests: bool,
    /// Format the output: `json`, `table TEMPLATE`, or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image: name or ID
    pub source: String,
    /// New name: NAME[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove, by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image by ID even when it has several names
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images, by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format the output with a Go template, e.g. '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image, by name or ID
    pub image: String,
    /// Print sizes and dates in a human readable form
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub human: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: `json` or a Go template such as '{{.CreatedBy}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host, e.g. registry.example.com or 127.0.0.1:5000 (default docker.io)
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: a password on the command line is visible to other users)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Require HTTPS with verified certificates (true), or allow plain HTTP and unverified TLS (false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host (default docker.io)
    pub registry: Option<String>,
    /// Remove the credentials of every registry
    #[arg(short, long, conflicts_with = "registry")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The man pages, one per command plus `nook(1)`, as (file name, roff) pairs.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut render = |name: String, cmd: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(name.to_uppercase())
            .render(&mut out)
            .expect("rendering to memory cannot fail");
        pages.push((format!("{name}.1"), out));
    };
    render("nook".to_string(), cmd.clone());
    for sub in cmd.get_subcommands() {
        let name = format!("nook-{}", sub.get_name());
        render(
            name.clone(),
            sub.clone()
                .name(name)
                .version(cmd.get_version().unwrap_or_default().to_string()),
        );
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// The pages in `man/` must match the CLI; `NOOK_UPDATE_MAN=1 cargo test man_pages`
    /// rewrites them.
    #[test]
    fn man_pages_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let update = std::env::var_os("NOOK_UPDATE_MAN").is_some();
        let pages = man_pages();
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let mut stale = Vec::new();
        for (name, content) in &pages {
            let path = dir.join(name);
            if update {
                std::fs::write(&path, content).unwrap();
            } else if std::fs::read(&path).ok().as_ref() != Some(content) {
                stale.push(name.clone());
            }
        }
        let expected: std::collections::BTreeSet<_> =
            pages.iter().map(|(n, _)| n.clone()).collect();
        let present: std::collections::BTreeSet<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let extra: Vec<_> = present.difference(&expected).collect();
        assert!(
            stale.is_empty() && extra.is_empty(),
            "man pages out of date (stale: {stale:?}, extra: {extra:?}); run NOOK_UPDATE_MAN=1 cargo test man_pages"
        );
    }
}
