//! The command line, as clap types only. Man pages and completions are generated from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nook",
    version,
    about = "Rootless, daemonless containers with Docker's command line",
    long_about = "nook runs containers as an ordinary user: no root, no daemon. Images come from any OCI registry; \
                  state lives under $XDG_DATA_HOME/nook, $XDG_RUNTIME_DIR/nook and $XDG_CONFIG_HOME/nook \
                  (config.toml: defaults for options; see nook-config(5)).",
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
    /// Upload an image to a registry
    #[command(
        after_help = "Blobs the registry already has are skipped, blobs in another repository of the same registry are mounted from there, and the rest are compressed and uploaded. Pushing the same image twice gives the same manifest digest; a pulled image pushed unchanged keeps its digest.\n\nExamples:\n  nook push 127.0.0.1:5000/team/app:1.0\n  nook push busybox registry.example.com/me/busybox:stable\n  nook push --compression-format zstd app docker://127.0.0.1:5000/team/app:zstd"
    )]
    Push(PushArgs),
    /// List images
    #[command(
        after_help = "Examples:\n  nook images\n  nook images -q\n  nook images --format '{{.Repository}}:{{.Tag}}'"
    )]
    Images(ImagesArgs),
    /// Give an image another name
    #[command(
        after_help = "Examples:\n  nook tag busybox 127.0.0.1:5000/me/busybox:1.0\n  nook tag 127.0.0.1:5000/team/app:1.0 app:stable"
    )]
    Tag(TagArgs),
    /// Remove images (untag; delete when the last name goes)
    #[command(
        after_help = "An image that a container uses (running or exited) is not removed, even with -f: remove the container first.\n\nExamples:\n  nook rmi busybox\n  nook rmi -f 3f57d9401f8d"
    )]
    Rmi(RmiArgs),
    /// Write images to an archive (docker-archive, oci-archive) or an OCI layout directory
    #[command(after_help = SAVE_HELP)]
    Save(SaveArgs),
    /// Load images from a docker-archive or oci-archive (as `docker save` and skopeo write them)
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Show a container's or an image's details as JSON
    #[command(
        after_help = "Each name is looked up as a container first, then as an image, unless --type says which.\n\nExamples:\n  nook inspect busybox\n  nook inspect --format '{{.State.Status}}' web\n  nook inspect --type image --format '{{.Config.Cmd}}' busybox"
    )]
    Inspect(InspectArgs),
    /// Show how an image was built, layer by layer
    #[command(
        after_help = "Examples:\n  nook history busybox\n  nook history --no-trunc --format '{{.CreatedBy}}' busybox"
    )]
    History(HistoryArgs),
    /// Store credentials for a registry
    #[command(
        after_help = "Examples:\n  nook login registry.example.com\n  echo \"$TOKEN\" | nook login -u me --password-stdin registry.example.com"
    )]
    Login(LoginArgs),
    /// Forget the credentials for a registry
    #[command(after_help = "Examples:\n  nook logout registry.example.com\n  nook logout --all")]
    Logout(LogoutArgs),
    /// Run a command in a new container
    #[command(
        after_help = "Examples:\n  nook run --rm busybox echo hello\n  nook run -it --name dev -v \"$PWD\":/src -w /src busybox sh\n  nook run -d --name web -p 8080:80 busybox httpd -f -p 80\n  nook run -d -P --name proxy nginx && nook port proxy\n  nook run --rm --dns 9.9.9.9 --add-host db:10.0.0.5 busybox cat /etc/hosts"
    )]
    Run(RunArgs),
    /// Create a container without starting it
    #[command(
        after_help = "Examples:\n  nook create --name job busybox sh -c 'date > /tmp/x'\n  nook create --name web -p 8080:80 busybox httpd -f -p 80"
    )]
    Create(RunArgs),
    /// Start stopped or created containers
    #[command(after_help = "Examples:\n  nook start job\n  nook start -a job")]
    Start(StartArgs),
    /// Stop running containers: the stop signal, then SIGKILL after the timeout
    #[command(after_help = "Examples:\n  nook stop web\n  nook stop -t 1 web")]
    Stop(StopArgs),
    /// Send a signal to running containers
    #[command(after_help = "Examples:\n  nook kill web\n  nook kill -s HUP web")]
    Kill(KillArgs),
    /// Stop, then start containers
    #[command(after_help = "Examples:\n  nook restart web\n  nook restart -t 2 web job")]
    Restart(StopArgs),
    /// Wait for containers to exit and print their exit codes
    #[command(after_help = "Examples:\n  nook wait job\n  nook start job && nook wait job")]
    Wait(ContainersArgs),
    /// Remove containers
    #[command(after_help = "Examples:\n  nook rm job\n  nook rm -f web")]
    Rm(RmArgs),
    /// List containers
    #[command(
        after_help = "Examples:\n  nook ps\n  nook ps -a --format '{{.ID}} {{.Status}}'\n  nook ps -a -f status=exited -q"
    )]
    Ps(PsArgs),
    /// Show a container's output
    #[command(after_help = "Examples:\n  nook logs web\n  nook logs -f --tail 10 web")]
    Logs(LogsArgs),
    /// List a running container's published ports, or where one of its ports is published
    #[command(
        after_help = "A container that is not running has no published ports: nothing is printed.\n\nExamples:\n  nook port web\n  nook port web 80\n  nook port web 53/udp"
    )]
    Port(PortArgs),
    /// Run a command in a running container
    #[command(after_help = "Examples:\n  nook exec web ps\n  nook exec -it web sh")]
    Exec(ExecArgs),
    /// Attach your terminal to a running container (detach with Ctrl-P Ctrl-Q)
    #[command(
        after_help = "A container started with -t gets your keystrokes and window size; one without a terminal shows its new output until it exits.\n\nExamples:\n  nook run -dit --name dev busybox sh\n  nook attach dev"
    )]
    Attach(AttachArgs),
    /// Rename a container
    #[command(after_help = "Examples:\n  nook rename sweet_keldysh web")]
    Rename(RenameArgs),
    /// List the files and directories a container added (A), changed (C) or deleted (D)
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    #[command(after_help = COMMIT_HELP)]
    Commit(CommitArgs),
    /// Write a container's whole file system as a tar archive
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Create a single-layer image from a tar archive of a file system
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Manage containers
    #[command(
        subcommand,
        after_help = "Examples:\n  nook container diff web\n  nook container export -o web.tar web\n  nook container prune -f"
    )]
    Container(ContainerCommand),
    /// Manage images
    #[command(
        subcommand,
        after_help = "Examples:\n  nook image prune\n  nook image prune -a -f"
    )]
    Image(ImageCommand),
    /// Look after the store: check and repair it, show its disk usage, prune it, reset it
    #[command(
        subcommand,
        after_help = "Examples:\n  nook system doctor\n  nook system df\n  nook system check --repair\n  nook system prune -f"
    )]
    System(SystemCommand),
    /// Show how nook runs here: host, rootless setup, store, storage drivers, network helpers
    #[command(after_help = INFO_HELP)]
    Info(InfoArgs),
    /// Show nook's version, the compiler and commit it was built from, and the platform
    #[command(after_help = VERSION_HELP)]
    Version(VersionArgs),
    /// Generate Kubernetes YAML from containers (Podman's `generate kube`)
    #[command(
        subcommand,
        after_help = "Examples:\n  nook generate kube web > web.yaml\n  nook generate kube -s -f app.yaml web db"
    )]
    Generate(GenerateCommand),
    /// Kubernetes YAML: `nook kube generate` is `nook generate kube`, as in Podman 4.4+
    #[command(
        subcommand,
        after_help = "Examples:\n  nook kube generate web > web.yaml\n  nook kube generate -f app.yaml web db"
    )]
    Kube(KubeCommand),
    /// (internal) The per-container monitor, started by run and start
    #[command(name = "__monitor", hide = true)]
    Monitor(MonitorArgs),
    /// Print a shell completion script
    #[command(
        after_help = "The script calls nook back to complete subcommands, flags, and the names of your containers and images.\n\nExamples:\n  nook completion bash > ~/.local/share/bash-completion/completions/nook\n  echo 'source <(nook completion zsh)' >> ~/.zshrc\n  nook completion fish > ~/.config/fish/completions/nook.fish"
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
    /// For `run`: everything on stderr, stdout is the container's
    #[arg(long, hide = true)]
    pub for_run: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Local image to push: name or ID
    pub image: String,
    /// Where to push it: HOST[:PORT]/PATH[:TAG], optionally as docker://… (default: IMAGE's own name)
    pub destination: Option<String>,
    /// Compression for layers that must be uploaded; with it, only blobs already in this format are reused (default: reuse any, gzip new ones)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub compression_format: Option<CompressionFormat>,
    /// Compression level for layers that must be uploaded: gzip 1 (fastest, the default) to 9, zstd 1 to 19 (default 3)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: Option<i32>,
    /// Print only the pushed reference, no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Require HTTPS with verified certificates (true), or allow plain HTTP and unverified TLS (false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionFormat {
    Gzip,
    Zstd,
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
    /// Remove an image by ID even when it has several names (an image a container uses is never removed, even with -f: remove the container first)
    #[arg(short, long)]
    pub force: bool,
}

const SAVE_HELP: &str = "The archive keeps each image's config (so its ID), layers and tags; several images share the layers they have in common. \
Layers are written uncompressed, as `docker save` writes them. Without -o the archive goes to standard output, which must not be a terminal. \
With -o, the archive is written under a temporary name and renamed when complete.

Examples:
  nook save -o busybox.tar busybox
  nook save busybox alpine:3.20 | gzip > images.tar.gz
  nook save --format oci-archive -o app.tar 127.0.0.1:5000/team/app:1.0
  nook save --format oci-dir -o ./layout busybox";

const LOAD_HELP: &str = "Reads a docker-archive (docker save, skopeo docker-archive:) or an oci-archive (skopeo oci-archive:, nook save --format oci-archive), \
uncompressed or compressed with gzip or zstd, and prints `Loaded image: NAME:TAG` for each tag (`Loaded image ID: sha256:…` for an untagged image). \
Every digest in the archive is checked; an archive that is truncated, damaged or escapes its directory is refused and nothing of it is kept.

Examples:
  nook load -i busybox.tar
  nook load < images.tar.gz
  nook save busybox | ssh other-host nook load";

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save, by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to FILE (a new or empty directory with --format oci-dir) instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
    pub format: SaveFormat,
    /// No progress on standard error (as Podman's)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SaveFormat {
    /// The layout of `docker save`: manifest.json, configs and layer tars
    DockerArchive,
    /// An OCI image layout in a tar
    OciArchive,
    /// An OCI image layout in a directory (needs -o DIR)
    OciDir,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read the archive from FILE instead of standard input
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print only the `Loaded image` lines, no progress or warnings
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images or containers, by name or ID
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Only look for this kind of object
    #[arg(long = "type", value_enum)]
    pub kind: Option<ObjectKind>,
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
    /// Format the output: `json`, `table TEMPLATE`, or a Go template such as '{{.CreatedBy}}'
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

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ObjectKind {
    Image,
    Container,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Name the container (default: a generated adjective_surname)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (NAME=VALUE, or NAME to take it from this environment)
    #[arg(short, long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: name or UID, optionally :group or :GID
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Bind-mount a host path: HOST:CONTAINER[:ro]
    #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volume: Vec<String>,
    /// Mount: type=bind|tmpfs|volume,source=…,target=…[,readonly]
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: CONTAINER[:OPTIONS]
    #[arg(long, value_name = "CONTAINER[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Replace the image's entrypoint
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// Hostname inside the container (default: the short container ID)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Publish a container port on the host (no HOST_PORT: a free one is chosen; ranges: 8080-8082:80-82)
    #[arg(short = 'p', long, value_name = "[IP:][HOST_PORT:]PORT[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes, each on a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Name server for the container's /etc/resolv.conf (default: the network helper's)
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Add a line to the container's /etc/hosts; IP may be host-gateway (the host)
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Run a small init as PID 1 that reaps zombies and forwards signals (--init=false: not even when config.toml's containers.init asks)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Mount the container's root file system read-only
    #[arg(long)]
    pub read_only: bool,
    /// User namespace mode: keep-id runs the container as your own uid and gid, mapped to themselves (needs fuse-overlayfs)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// When to pull the image: missing, always or never
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Set a label: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Memory limit, e.g. 512m or 2g (needs a cgroup v2 subtree delegated to you)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit, e.g. 1g (-1: unlimited swap; default: as much swap as --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// How many CPUs the container may use, e.g. 0.5 or 2 (needs a delegated cgroup)
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,
    /// Most processes the container may have (-1: no limit; needs a delegated cgroup)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Signal that stops the container (default: the image's, else SIGTERM)
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL (default 10)
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Add a Linux capability (e.g. NET_ADMIN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (e.g. CHOWN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges
    #[arg(long, value_name = "OPTION")]
    pub security_opt: Vec<String>,
    /// Every capability the user namespace can hold, no seccomp, no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Root file system driver: overlay, fuse-overlayfs or vfs (default: config.toml's storage.driver, else the best that works)
    #[arg(long, value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// Where the container's output is kept: json-file (read by `nook logs`) or none (default: config.toml's containers.log-driver, else json-file)
    #[arg(long, value_enum, value_name = "DRIVER")]
    pub log_driver: Option<crate::config::LogDriver>,
    /// json-file's options: max-size=SIZE rotates the log at that size, max-file=N keeps N files (default 1)
    #[arg(long, value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Network: pasta (default where installed), slirp4netns, none, host or container:NAME (bridge: the default); options as Podman's, e.g. pasta:--map-gw, slirp4netns:allow_host_loopback=true
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Pull the image without printing progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Image to run
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long)]
    pub attach: bool,
    /// Attach standard input
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's stop timeout)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u32>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop and remove running containers
    #[arg(short, long)]
    pub force: bool,
    /// Also remove anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,
    /// Only show container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the last N created containers (all states)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter: status=…, name=…, ancestor=…, label=KEY[=VALUE], id=…
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format the output: `json`, `table TEMPLATE`, or a Go template such as '{{.ID}}\t{{.Names}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show sizes of what containers wrote
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the output
    #[arg(short, long)]
    pub follow: bool,
    /// Show only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show output since a time (RFC 3339) or a duration ago (10m, 1h)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this container port, e.g. 80 or 53/udp (tcp when no protocol is given)
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable
    #[arg(short, long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// User inside the container: name or UID, optionally :group or :GID
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    pub container: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List the files and directories a container added (A), changed (C) or deleted (D)
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Write a container's whole file system as a tar archive
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Remove all stopped containers
    #[command(after_help = "Examples:\n  nook container prune\n  nook container prune -f")]
    Prune(PruneArgs),
    // Docker's management forms of the top-level verbs, with their arguments.
    /// List containers (as `nook ps`; also `container list`, `container ps`)
    // Hidden aliases: a shell completes one word per command, and it should be `ls`.
    #[command(aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Remove containers (as `nook rm`; also `container remove`)
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Show containers' details as JSON (as `nook inspect --type container`)
    Inspect(InspectArgs),
    /// Start stopped or created containers (as `nook start`)
    Start(StartArgs),
    /// Stop running containers (as `nook stop`)
    Stop(StopArgs),
    /// Send a signal to running containers (as `nook kill`)
    Kill(KillArgs),
    /// Stop, then start containers (as `nook restart`)
    Restart(StopArgs),
    /// Wait for containers to exit and print their exit codes (as `nook wait`)
    Wait(ContainersArgs),
    /// Show a container's output (as `nook logs`)
    Logs(LogsArgs),
    /// Run a command in a running container (as `nook exec`)
    Exec(ExecArgs),
    /// Attach your terminal to a running container (as `nook attach`)
    Attach(AttachArgs),
    /// List a container's published ports (as `nook port`)
    Port(PortArgs),
    /// Rename a container (as `nook rename`)
    Rename(RenameArgs),
    /// Create a container without starting it (as `nook create`)
    Create(RunArgs),
    /// Run a command in a new container (as `nook run`)
    Run(RunArgs),
    /// Create a new image from a container's changes (as `nook commit`)
    #[command(after_help = COMMIT_HELP)]
    Commit(CommitArgs),
}

const DIFF_HELP: &str = "Changes are relative to the container's image; a directory holding a change is listed as changed (C) too. Works on running and stopped containers.\n\nExamples:\n  nook run --name job busybox sh -c 'echo x >> /etc/passwd; rm /bin/ls'\n  nook diff job\n  nook container diff --format json job";

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
    /// `json`: a JSON array as Docker's API returns it, [{"Path":"/etc","Kind":0}] with Kind 0 changed, 1 added, 2 deleted (nook's own: docker diff has no --format)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

const COMMIT_HELP: &str = "The new image is the container's image plus one layer holding what the container changed (as `nook diff` lists it), with the container's command, environment, working directory and user as its configuration. The container keeps running; what it changes afterwards is not in the image. Prints the new image's ID.\n\nExamples:\n  nook run --name job busybox sh -c 'echo hello > /greeting'\n  nook commit -m 'add a greeting' -c 'CMD [\"cat\", \"/greeting\"]' job greeter:1.0\n  nook run --rm greeter:1.0";

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A commit message, kept in the image's history
    #[arg(short, long)]
    pub message: Option<String>,
    /// The author, e.g. "Ada <ada@example.org>"
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the new image's configuration: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Stop the container's processes while the layer is written (SIGSTOP, then SIGCONT), so it is one consistent moment
    #[arg(short, long)]
    pub pause: bool,
    /// Print only the image ID, nothing on standard error
    #[arg(short, long)]
    pub quiet: bool,
    pub container: String,
    /// The new image's name, REPOSITORY[:TAG]; without one the image shows as <none>
    pub repository: Option<String>,
}

const EXPORT_HELP: &str = "The archive holds the container's root file system as the container sees it: its image's files with its own changes, deletions applied, owners, modes, links and extended attributes kept. \
What nook mounts into the container (/proc, /dev, /sys, /etc/hosts, volumes) is not in it: only the mount points, empty (or the image's own file under a mounted one). Works on running and stopped containers. \
Without -o the archive goes to standard output, which must not be a terminal; with -o it is written under a temporary name and renamed when complete.

Examples:
  nook export -o web.tar web
  nook export web | gzip > web.tar.gz
  nook export web | nook import - web-flat:1";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    pub container: String,
}

const IMPORT_HELP: &str = "The archive (a tar of a root file system, uncompressed or compressed with gzip or zstd) becomes the one layer of a new image for this machine's platform, \
with -c instructions as its configuration and a history entry holding the message. Prints the new image's ID. \
A URL is not fetched: download the archive first. An archive that is not a tar, is truncated or has entries that leave it is refused, and nothing of it is kept.

Examples:
  nook export web | nook import - web-flat:1
  nook import -c 'CMD [\"/bin/sh\"]' -m 'from the build' rootfs.tar.gz base:1
  nook import -c 'ENV PATH=/usr/bin:/bin' -c 'WORKDIR /srv' - < rootfs.tar";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A Dockerfile instruction applied to the new image's configuration: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// A message, kept in the image's history
    #[arg(short, long)]
    pub message: Option<String>,
    /// The archive: a file, or `-` for standard input
    #[arg(value_name = "FILE|-")]
    pub source: String,
    /// The new image's name, REPOSITORY[:TAG]; without one the image shows as <none>
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Remove dangling images (untagged, and used by no container); with -a, every image no container uses
    #[command(after_help = IMAGE_PRUNE_HELP)]
    Prune(ImagePruneArgs),
    // Docker's management forms of the top-level verbs, with their arguments.
    /// List images (as `nook images`; also `image list`)
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images (as `nook rmi`; also `image remove`)
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Show images' details as JSON (as `nook inspect --type image`)
    Inspect(InspectArgs),
    /// Download an image from a registry (as `nook pull`)
    Pull(PullArgs),
    /// Upload an image to a registry (as `nook push`)
    Push(PushArgs),
    /// Give an image another name (as `nook tag`)
    Tag(TagArgs),
    /// Show how an image was built, layer by layer (as `nook history`)
    History(HistoryArgs),
    /// Write images to an archive (as `nook save`)
    #[command(after_help = SAVE_HELP)]
    Save(SaveArgs),
    /// Load images from an archive (as `nook load`)
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Create a single-layer image from a tar archive of a file system (as `nook import`)
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
}

const IMAGE_PRUNE_HELP: &str = "An image a container uses (running or not) is never removed. Layers another image still uses stay.

Examples:
  nook image prune
  nook image prune -a -f";

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store for damaged images and for leftovers, and repair it
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Show how much disk space images, containers and volumes use
    #[command(after_help = DF_HELP)]
    Df(DfArgs),
    /// Remove stopped containers, dangling images and leftovers of interrupted commands
    #[command(after_help = SYSTEM_PRUNE_HELP)]
    Prune(SystemPruneArgs),
    /// Remove every container, image and volume, and the store itself
    #[command(after_help = RESET_HELP)]
    Reset(ResetArgs),
    /// Show how nook runs here (the same as `nook info`)
    #[command(after_help = INFO_HELP)]
    Info(InfoArgs),
    /// Check that this machine is set up for rootless containers, and say how to fix what is not
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
}

const CHECK_HELP: &str = "Checks that images.json and containers.json can be read; that every image's config and manifest are there and hash to their digests; \
that every layer an image uses is whole, by rebuilding its tar from the extracted files and hashing it (--quick only compares file sizes); \
that every container record has its directory and every directory its record; and looks for leftovers of interrupted commands \
(staged layers, trash, unfinished files) and for layers and blobs no image uses. Prints one line per problem and exits 1 if there is any, 0 if none.

--repair removes the leftovers and unused data, drops records whose directory is gone, and removes damaged images (never an intact one), \
then says what it did; pull a removed image again to get it back. A damaged image a container uses is only removed with --force, \
which removes its stopped containers too. What a running pull, load, commit or import is writing is waited for or left alone.

Examples:
  nook system check
  nook system check --quick
  nook system check --repair";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Compare layer files' sizes with their tar entries instead of reading and hashing every byte
    #[arg(short, long)]
    pub quick: bool,
    /// Remove what is damaged or left over (see below)
    #[arg(short, long)]
    pub repair: bool,
    /// With --repair: also remove the stopped containers of a damaged or missing image
    #[arg(short, long, requires = "repair")]
    pub force: bool,
}

const DF_HELP: &str = "SIZE of images counts each layer once however many images share it; RECLAIMABLE is what removing the images no container uses \
(nook image prune -a), the stopped containers (nook container prune) and the volumes no container mounts would free. \
A container's size is what it wrote.

Examples:
  nook system df
  nook system df -v
  nook system df --format '{{.Type}}: {{.Size}}'
  nook system df -v --format '{{range .Images}}{{.Repository}} {{.UniqueSize}}{{println}}{{end}}'";

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show each image, container and volume
    #[arg(short, long)]
    pub verbose: bool,
    /// Format the output: `json`, `table TEMPLATE`, or a Go template over the fields Type, TotalCount, Active, Size, Reclaimable (with -v: over .Images, .Containers, .Volumes)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

const SYSTEM_PRUNE_HELP: &str = "Removes every stopped container, then the dangling images (untagged, used by no container; with -a every image no container uses), \
with --volumes the volumes no container mounts, and finally what interrupted commands left in the store and the layers and blobs no image uses \
(what `nook system check --repair` removes). Running containers and their images stay.

Examples:
  nook system prune
  nook system prune -a --volumes -f";

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Also remove the volumes no container mounts
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

const RESET_HELP: &str = "Stops running containers (SIGKILL), then deletes every container, image and volume and the store directory. \
Your configuration ($XDG_CONFIG_HOME/nook) and registry credentials are kept.

Examples:
  nook system reset
  nook --root /scratch/nook system reset -f";

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

const INFO_HELP: &str = "Sections: host (kernel, distribution, processors, memory, cgroups, seccomp), rootless (your ids, subordinate ranges, newuidmap and newgidmap), \
store (where, which storage driver, how many images, containers and volumes), storage drivers (which work here and why not), network (pasta and slirp4netns with their versions). \
--format json prints the same as one JSON object; a Go template reads its fields in any case: \
.Host (.Arch, .Os, .Distribution, .Kernel, .Hostname, .Cpus, .MemTotal, .MemAvailable, .SwapTotal, .Cgroups…), \
.Rootless (.Rootless, .Uid, .Gid, .User, .Subuid, .Subgid, .Newuidmap, .Newgidmap), \
.Store (.Root, .RunRoot, .ConfigDir, .Driver, .Images, .Containers, .Running), .StorageDrivers, .Network (.Default, .DefaultRoute, .Pasta, .Slirp4netns), .Version (.Nook).

Examples:
  nook info
  nook info --format json | jq .store.root
  nook info -f '{{.Store.Root}} {{.Store.Driver}}'
  nook info -f '{{json .Host}}'";

const DOCTOR_HELP: &str = "Checks, in order: user namespaces (kernel.unprivileged_userns_clone, user.max_user_namespaces, \
AppArmor's kernel.apparmor_restrict_unprivileged_userns, and a real one made in a child process); newuidmap and newgidmap (setuid root or file capabilities); \
your subordinate id ranges in /etc/subuid and /etc/subgid (present, at least 65536 ids, overlapping no other user's); XDG_RUNTIME_DIR (set, yours, mode 0700); \
the store's file system (NFS, Lustre, GPFS and CIFS/SMB cannot hold overlay upper directories); the kernel overlay in a user namespace, else fuse-overlayfs; \
/dev/fuse and /dev/net/tun; pasta and slirp4netns; cgroup v2 delegation (for --memory, --cpus, --pids-limit); net.ipv4.ping_group_range; \
net.ipv4.ip_unprivileged_port_start; free disk space under the store.

Each finding is one line: OK, WARN (nook works, with less) or FAIL (nook cannot work), what was found, and the command that fixes it; \
a fix starting with sudo needs an administrator. Exits 1 if anything FAILs, 0 otherwise. \
--format json prints an array of {check, status, detail, fix, needs_admin}; a Go template is applied to each finding \
(.Status, .Check, .Detail, .Fix, .NeedsAdmin).

Examples:
  nook system doctor
  nook system doctor -f '{{if ne .Status \"OK\"}}{{.Check}}: {{.Fix}}{{end}}'
  nook system doctor -f 'table {{.Status}}\\t{{.Check}}'
  nook system doctor --format json | jq '.[] | select(.status != \"OK\")'";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// `json` for a JSON array of findings, or a Go template over each finding's .Status, .Check, .Detail, .Fix, .NeedsAdmin (`table …` aligns them)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// `json` for one JSON object, or a Go template over it, e.g. '{{.Store.Root}}' (field names as in the JSON, any case)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

const VERSION_HELP: &str = "Laid out as `docker version` prints its client (nook has no server). \
--format reads .Client: .Version, .ApiVersion (n/a: nook has no API), .RustVersion, .GitCommit, .BuildTime, .Os, .Arch.

Examples:
  nook version
  nook version --format '{{.Client.Version}}'
  nook version --format json";

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// `json`, or a Go template such as '{{.Client.Version}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    pub id: String,
    #[arg(long)]
    pub foreground: bool,
    #[arg(long)]
    pub remove_on_failure: bool,
    #[arg(long)]
    pub notify_fd: Option<i32>,
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

/// Docker's management forms and the top-level verbs they stand for: (group, form, verb).
const MANAGEMENT_FORMS: &[(&str, &str, &str)] = &[
    ("container", "ls", "ps"),
    ("container", "rm", "rm"),
    ("container", "inspect", "inspect"),
    ("container", "start", "start"),
    ("container", "stop", "stop"),
    ("container", "kill", "kill"),
    ("container", "restart", "restart"),
    ("container", "wait", "wait"),
    ("container", "logs", "logs"),
    ("container", "exec", "exec"),
    ("container", "attach", "attach"),
    ("container", "port", "port"),
    ("container", "rename", "rename"),
    ("container", "create", "create"),
    ("container", "run", "run"),
    ("image", "ls", "images"),
    ("image", "rm", "rmi"),
    ("image", "inspect", "inspect"),
    ("image", "pull", "pull"),
    ("image", "push", "push"),
    ("image", "tag", "tag"),
    ("image", "history", "history"),
    ("image", "save", "save"),
    ("image", "load", "load"),
    ("image", "import", "import"),
];

/// The command line as parsed, shown in `--help`, completed and written to man pages: the
/// derived [`Cli`], whose management forms (`container ls`, `image rm` …) get the help
/// text (examples included) of the verb they stand for, so the two never drift apart.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for (group, form, verb) in MANAGEMENT_FORMS {
        let Some(help) = cmd
            .find_subcommand(verb)
            .and_then(|c| c.get_after_help())
            .cloned()
        else {
            continue;
        };
        cmd = cmd.mut_subcommand(group, |g| {
            g.mut_subcommand(form, |f| {
                if f.get_after_help().is_some() {
                    f
                } else {
                    f.after_help(help)
                }
            })
        });
    }
    cmd
}

/// The man pages, one per command plus `nook(1)`, as (file name, roff) pairs.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let cmd = command();
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
    let version = cmd.get_version().unwrap_or_default().to_string();
    // One page per command, and one per subcommand of a group (`nook-system-check`), which
    // the group's page lists.
    let mut todo: Vec<(String, clap::Command)> = cmd
        .get_subcommands()
        .map(|s| (format!("nook-{}", s.get_name()), s.clone()))
        .collect();
    while let Some((name, sub)) = todo.pop() {
        if sub.is_hide_set() {
            continue;
        }
        todo.extend(
            sub.get_subcommands()
                .filter(|s| s.get_name() != "help")
                .map(|s| (format!("{name}-{}", s.get_name()), s.clone())),
        );
        render(name.clone(), sub.name(name).version(version.clone()));
    }
    pages.push(("nook-config.5".into(), crate::config::man_page(&version)));
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    /// Every command's help ends with examples, as Docker's reference pages do.
    #[test]
    fn every_command_has_examples() {
        let mut missing = Vec::new();
        let mut todo = vec![(String::new(), command())];
        while let Some((parent, cmd)) = todo.pop() {
            let path = format!("{parent} {}", cmd.get_name()).trim().to_string();
            if cmd.is_hide_set() || cmd.get_name() == "help" {
                continue;
            }
            let help = [cmd.get_after_help(), cmd.get_after_long_help()]
                .into_iter()
                .flatten()
                .map(|h| h.to_string())
                .collect::<String>();
            if !help.contains("Examples:\n  nook ") {
                missing.push(path.clone());
            }
            todo.extend(cmd.get_subcommands().map(|s| (path.clone(), s.clone())));
        }
        missing.sort();
        assert!(
            missing.is_empty(),
            "no `Examples:` in the help of: {}",
            missing.join(", ")
        );
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

const KUBE_HELP: &str = "One Pod holds all the named containers, named after the first one (NAME-pod). Each container keeps its image (fully qualified), command, environment, working directory, ports, user, capabilities and limits; bind mounts become hostPath volumes, named volumes persistentVolumeClaims, --tmpfs emptyDir volumes in memory. What differs from the image's defaults is written; what a Pod cannot express is named on stderr. An image that was never pushed is named on stderr too: a cluster pulls images from a registry, so push it first.\n\nWith --service a Service of type NodePort selects the Pod and carries its published ports (the cluster picks each nodePort), as `podman generate kube -s` writes it.\n\nExamples:\n  nook generate kube web > web.yaml\n  nook generate kube -s -f app.yaml web db\n  podman kube play app.yaml";

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write a Kubernetes Pod manifest (YAML) for containers
    #[command(after_help = KUBE_HELP)]
    Kube(KubeArgs),
}

#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Write a Kubernetes Pod manifest (YAML) for containers
    #[command(after_help = KUBE_HELP)]
    Generate(KubeArgs),
}

#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Write the YAML to FILE (replaced whole, never half-written) instead of stdout
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Option<PathBuf>,
    /// Also write a Service (type NodePort) for the published ports, which then leave the Pod's hostPort
    #[arg(short, long)]
    pub service: bool,
    /// Containers to put in the Pod: names or IDs
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}
