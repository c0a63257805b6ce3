//! `nook diff CONTAINER` (also `nook container diff`): what a container changed in its root
//! file system, as `docker diff` prints it (`A`/`C`/`D` and the path), or with
//! `--format json` as Docker's API returns it (`[{"Path":…,"Kind":0|1|2}]`).

use anyhow::{Context, Result, bail};

use super::{Ctx, print_out};
use crate::cli::DiffArgs;
use crate::layer::changes::{self, Storage};
use crate::runtime::mounts::Driver;
use crate::runtime::userns;

/// Mount points nook creates in the container's root when the image lacks them; Docker keeps
/// its own in a hidden init layer, so `docker diff` never lists them.
const NOOK_MOUNT_POINTS: &[&str] = &[
    "/proc",
    "/dev",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];
/// With `--userns=keep-id`, nook also binds account files over these.
const KEEP_ID_MOUNT_POINTS: &[&str] = &["/etc/passwd", "/etc/group"];

pub fn run(args: DiffArgs, ctx: &Ctx) -> Result<i32> {
    let json = match args.format.as_deref() {
        None => false,
        Some("json") => true,
        Some(other) => bail!(
            "invalid --format `{other}` for diff: only `json` is supported (or no --format for Docker's A/C/D lines)"
        ),
    };
    // What the container wrote belongs to subordinate ids, in directories that may be mode
    // 0700: only root of the user namespace may read them all.
    userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    let (list, _) = container_changes(&store, &record)?;
    let out = if json {
        let entries: Vec<_> = list
            .iter()
            .map(|c| serde_json::json!({"Path": c.path.to_string_lossy(), "Kind": c.kind as u8}))
            .collect();
        serde_json::to_string(&entries)? + "\n"
    } else {
        list.iter()
            .map(|c| format!("{} {}\n", c.kind.letter(), c.path.display()))
            .collect()
    };
    print_out(&out)?;
    Ok(0)
}

/// Where a container's root file system is kept.
pub(crate) struct ContainerRoot {
    pub storage: Storage,
    /// The image's layer directories, BOTTOM first.
    pub layers: Vec<std::path::PathBuf>,
    /// Its overlay upper directory, or its vfs copy.
    pub upper: std::path::PathBuf,
    /// For vfs: whether the copy has been made (a container that never started has none, and
    /// its root is still just the image's).
    pub copied: bool,
}

/// Where container `record`'s root file system is: its image's layers and its own directory,
/// read as its storage driver writes it.
pub(crate) fn container_root(
    store: &crate::store::Store,
    record: &crate::store::containers::ContainerRecord,
) -> Result<ContainerRoot> {
    // `auto`: the first container to start settled the store's driver for all of them; with
    // none settled yet this one never started, and its empty upper directory reads as no
    // changes either way.
    let driver = match record.config.storage_driver.as_str() {
        "auto" => crate::runtime::container::saved_driver(store),
        name => Some(Driver::parse(name).with_context(|| {
            format!(
                "container {} uses the unknown storage driver `{name}`; this nook cannot read its files",
                record.name
            )
        })?),
    };
    let storage = match driver {
        Some(Driver::Vfs) => Storage::FullCopy,
        Some(Driver::Overlay | Driver::FuseOverlayfs) | None => Storage::OverlayUpper,
    };
    let image = store
        .images()?
        .images
        .into_iter()
        .find(|i| i.id == record.image_id)
        .ok_or_else(|| crate::store::containers::ContainerError::ImageGone {
            image: record.image_id.clone(),
        })?;
    let layers = image
        .layers
        .iter()
        .map(|d| store.layer_diff_dir(d))
        .collect();
    let upper = store.container_upper_dir(&record.id);
    Ok(ContainerRoot {
        storage,
        layers,
        copied: vfs_copied(&upper),
        upper,
    })
}

/// What container `record` changed, sorted by path, and the directory the changed files are
/// read from (its overlay upper directory, or its vfs copy). Run as root of nook's user
/// namespace: what the container wrote belongs to subordinate ids, in directories that may
/// be mode 0700.
pub(crate) fn container_changes(
    store: &crate::store::Store,
    record: &crate::store::containers::ContainerRecord,
) -> Result<(Vec<changes::Change>, std::path::PathBuf)> {
    let root = container_root(store, record)?;
    let mut mount_points = NOOK_MOUNT_POINTS.to_vec();
    if record.config.keep_id {
        mount_points.extend_from_slice(KEEP_ID_MOUNT_POINTS);
    }
    let list = if root.storage == Storage::FullCopy && !root.copied {
        // A vfs container that never started has no copy yet: it changed nothing.
        Vec::new()
    } else {
        changes::changes(&root.upper, root.storage, &root.layers, &mount_points)
            .with_context(|| format!("cannot read the changes of container {}", record.name))?
    };
    Ok((list, root.upper))
}

/// The vfs driver marks a finished copy with `vfs.done` next to `upper/`.
fn vfs_copied(upper: &std::path::Path) -> bool {
    upper.with_file_name("vfs.done").exists()
}
