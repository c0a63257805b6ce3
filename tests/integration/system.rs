//! `system check [--repair]`, `system df`, `system prune`, `image prune`, `system reset` and
//! `info`, as the unprivileged test user, on a store filled by real pulls and runs.

use std::path::{Path, PathBuf};

use nook::format::{human_size, human_size_precise};
use nook::image::digest::Digest;

use crate::harness::context::store_state;
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

fn root(ctx: &TestContext) -> PathBuf {
    ctx.data.join("nook")
}

/// Runs a shell script as the test user, so what it makes in the store is the user's, as
/// nook's own files are.
fn sh(ctx: &TestContext, script: &str) {
    assert_success(&ctx.run_as_user("sh", &["-c", script]));
}

fn pull(ctx: &TestContext, image: &fixtures::Image) {
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
}

fn run(ctx: &TestContext, args: &[&str]) -> String {
    let mut all = vec!["run", "--network", "none"];
    all.extend_from_slice(args);
    assert_success(&ctx.nook(&all))
}

/// A PID no process has: one that just exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Bytes of a layer's files, as its `layer.json` records them.
fn layer_size(ctx: &TestContext, diff_id: &Digest) -> u64 {
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            root(ctx)
                .join("layers")
                .join(diff_id.hex())
                .join("layer.json"),
        )
        .unwrap(),
    )
    .unwrap();
    info["size"].as_u64().unwrap()
}

/// The cells of a table row: columns are separated by at least two spaces.
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn image_ids(ctx: &TestContext) -> Vec<String> {
    let mut ids: Vec<String> = assert_success(&ctx.nook(&["images", "-q", "--no-trunc"]))
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

#[test]
fn check_of_a_sound_store_is_clean() {
    let ctx = TestContext::new();
    pull(&ctx, fixtures::single_layer());
    pull(&ctx, fixtures::multi_layer());
    run(
        &ctx,
        &[
            "--name",
            "done",
            &fixtures::single_layer().reference,
            "true",
        ],
    );
    for args in [&["system", "check"][..], &["system", "check", "--quick"]] {
        let out = assert_success(&ctx.nook(args));
        assert_eq!(
            out,
            format!(
                "No problems in the store at {} (2 images, 3 layers, 1 container checked).\n",
                root(&ctx).display()
            )
        );
    }
}

#[test]
fn check_reports_planted_damage_and_repair_fixes_only_that() {
    let ctx = TestContext::new();
    let (intact, damaged, blobless) = (
        fixtures::single_layer(),
        fixtures::multi_layer(),
        fixtures::exposing_ports(),
    );
    for image in [intact, damaged, blobless] {
        pull(&ctx, image);
    }
    let store = root(&ctx);
    let dead = dead_pid();
    let orphan_layer = "ab".repeat(32);
    let orphan_dir = "cd".repeat(32);
    let trash = format!("{}.{dead}.0", "ef".repeat(32));
    let damaged_layer = &damaged.layers[1].diff_id;
    sh(
        &ctx,
        &format!(
            "set -e; cd '{store}'
             truncate -s 1 layers/{layer}/diff/data/keep
             rm blobs/sha256/{config}
             mkdir -p layers/.staging/new-{dead}-0/diff && echo x > layers/.staging/new-{dead}-0/diff/f
             mkdir -p layers/.trash/{trash}/diff
             mkdir -p layers/{orphan_layer}/diff
             mkdir -p containers/{orphan_dir}/upper
             echo '{{}}' > tmp/images.json.{dead}.0",
            store = store.display(),
            layer = damaged_layer.hex(),
            config = blobless.config_digest.hex(),
        ),
    );
    // What running commands own: a new layer staged by a live process, and a layer whose
    // extraction holds its lock.
    let mut live = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let live_staged = format!("new-{}-0", live.id());
    let locked = "12".repeat(32);
    sh(
        &ctx,
        &format!(
            "set -e; cd '{}'; mkdir -p layers/.staging/{live_staged}/diff layers/.staging/{locked}/diff; touch locks/layer-{locked}.lock",
            store.display()
        ),
    );
    let lock = nix::fcntl::Flock::lock(
        std::fs::File::open(store.join(format!("locks/layer-{locked}.lock"))).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();

    let out = ctx.nook(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    for expected in [
        "Damaged images:\n".to_string(),
        format!(
            "image {} ({}): layer {}: the layer's file `/data/keep` has 1 bytes where its tar entry had 5",
            damaged.config_digest.short(),
            damaged.reference,
            damaged_layer.short()
        ),
        format!(
            "image {} ({}): its config blob is missing [--repair removes the image]",
            blobless.config_digest.short(),
            blobless.reference
        ),
        "Containers:\n".into(),
        format!("  containers/{orphan_dir}: a container directory without a record"),
        "Leftovers of interrupted commands:\n".into(),
        format!(
            "  layers/.staging/new-{dead}-0: a new layer being stored by process {dead}, which is gone"
        ),
        format!("  layers/.trash/{trash}: a removed layer not yet deleted"),
        format!(
            "  tmp/images.json.{dead}.0: a file being written by process {dead}, which is gone"
        ),
        "Data no image uses:\n".into(),
        format!("  layers/{orphan_layer}: an incomplete layer no image uses"),
        format!(
            "\n7 problems in the store at {}; `nook system check --repair` fixes all of them.\n",
            store.display()
        ),
    ] {
        assert!(report.contains(&expected), "`{expected}` not in:\n{report}");
    }
    assert!(
        !report.contains(&live_staged) && !report.contains(&locked),
        "{report}"
    );
    // --quick sees the truncated file too: its size changed.
    let quick = ctx.nook(&["system", "check", "--quick"]);
    assert_eq!(quick.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&quick.stdout).contains(&damaged_layer.short().to_string()));

    let out = assert_success(&ctx.nook(&["system", "check", "--repair"]));
    assert!(out.starts_with("Repaired:\n"), "{out}");
    for expected in [
        format!(
            "removed the damaged image {}",
            damaged.config_digest.short()
        ),
        format!(
            "removed the damaged image {}",
            blobless.config_digest.short()
        ),
        format!("removed layers/.staging/new-{dead}-0\n"),
        format!("removed containers/{orphan_dir}\n"),
        format!("removed layers/{orphan_layer}\n"),
        "\nReclaimed ".into(),
    ] {
        assert!(out.contains(&expected), "`{expected}` not in:\n{out}");
    }
    assert!(!out.contains("Not repaired"), "{out}");
    // The intact image is all that is left, and it runs.
    assert_eq!(image_ids(&ctx), [intact.config_digest.to_string()]);
    assert_eq!(
        run(&ctx, &["--rm", &intact.reference, "cat", "/etc/xattr"]),
        std::fs::read_to_string(
            root(&ctx)
                .join("layers")
                .join(intact.layers[0].diff_id.hex())
                .join("diff/etc/xattr")
        )
        .unwrap()
    );
    let (_, layers, _) = store_state(&ctx);
    assert_eq!(layers, [intact.layers[0].diff_id.hex().to_string()]);
    // What live commands own is still there.
    assert!(store.join("layers/.staging").join(&live_staged).is_dir());
    assert!(store.join("layers/.staging").join(&locked).is_dir());
    assert_eq!(
        assert_success(&ctx.nook(&["system", "check"])),
        format!(
            "No problems in the store at {} (1 image, 1 layer, 0 containers checked).\n",
            store.display()
        )
    );
    // Once their owners are gone, they are leftovers like any other.
    live.kill().unwrap();
    live.wait().unwrap();
    drop(lock);
    let out = ctx.nook(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!(
            "layers/.staging/{locked}: a layer whose extraction was interrupted"
        )) && report.contains(&live_staged),
        "{report}"
    );
    assert_success(&ctx.nook(&["system", "check", "--repair"]));
    assert_success(&ctx.nook(&["system", "check"]));
    assert!(store_state(&ctx).2, "staging, trash or tmp not empty");
}

#[test]
fn df_counts_what_was_pulled_run_and_mounted() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    pull(&ctx, image);
    run(
        &ctx,
        &[
            "--name",
            "writer",
            "-v",
            "data:/data",
            &image.reference,
            "sh",
            "-c",
            "head -c 12345 /dev/zero > /big; head -c 1000 /dev/zero > /data/f",
        ],
    );
    run(
        &ctx,
        &["-d", "--name", "sleeper", &image.reference, "sleep", "600"],
    );
    let size = layer_size(&ctx, &image.layers[0].diff_id);

    let out = assert_success(&ctx.nook(&["system", "df"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        cells(lines[0]),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert_eq!(
        cells(lines[1]),
        ["Images", "1", "1", &human_size_precise(size), "0B (0%)"]
    );
    assert_eq!(
        cells(lines[2]),
        ["Containers", "2", "1", "12.35kB", "12.35kB (100%)"]
    );
    assert_eq!(
        cells(lines[3]),
        ["Local Volumes", "1", "1", "1kB", "0B (0%)"]
    );

    let verbose = assert_success(&ctx.nook(&["system", "df", "-v"]));
    assert!(
        verbose.starts_with("Images space usage:\n\nREPOSITORY "),
        "{verbose}"
    );
    let row = |first: &str| -> Vec<String> {
        verbose
            .lines()
            .find(|l| l.starts_with(first))
            .map(cells)
            .unwrap_or_else(|| panic!("no row for {first} in:\n{verbose}"))
    };
    let image_row = row(&image.repository);
    assert_eq!(image_row[2], image.config_digest.short());
    assert_eq!(
        image_row[4..],
        [
            human_size(size),
            "0B".into(),
            human_size_precise(size),
            "2".into()
        ]
    );
    let writer = verbose
        .lines()
        .find(|l| l.ends_with("writer"))
        .map(cells)
        .unwrap();
    assert_eq!(writer[3..5], ["1", "12.3kB"]);
    assert!(
        verbose.contains("\nContainers space usage:\n\nCONTAINER ID "),
        "{verbose}"
    );
    assert!(
        verbose.contains("\nLocal Volumes space usage:\n\nVOLUME NAME "),
        "{verbose}"
    );
    assert_eq!(row("data"), ["data", "1", "1kB"]);

    assert_success(&ctx.nook(&["rm", "-f", "sleeper"]));
}

#[test]
fn prune_removes_what_docker_would_and_keeps_what_containers_use() {
    let ctx = TestContext::new();
    let (used, unused) = (fixtures::single_layer(), fixtures::multi_layer());
    pull(&ctx, used);
    pull(&ctx, unused);
    run(
        &ctx,
        &[
            "--name",
            "user",
            "-v",
            "vol:/v",
            &used.reference,
            "sh",
            "-c",
            "echo hi > /v/f; echo x > /new",
        ],
    );
    let dangling = assert_success(&ctx.nook(&["commit", "-q", "user"]))
        .trim()
        .to_string();
    assert_eq!(image_ids(&ctx).len(), 3);

    // Without -f, nobody at a terminal to ask: refused.
    for args in [
        &["image", "prune"][..],
        &["system", "prune"],
        &["system", "reset"],
    ] {
        let err = assert_failure(&ctx.nook(args), 125);
        assert!(
            err.contains("standard input is not a terminal: add -f"),
            "{err}"
        );
    }
    // At a terminal, "no" keeps everything.
    let out = ctx.nook_with_terminal(&["image", "prune"], b"n\n");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(image_ids(&ctx).len(), 3);

    // Dangling: the untagged commit only.
    let out = assert_success(&ctx.nook(&["image", "prune", "-f"]));
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\ndeleted: {dangling}\ndeleted: sha256:"
        )),
        "{out}"
    );
    assert!(out.contains("\n\nTotal reclaimed space: "), "{out}");
    assert_eq!(image_ids(&ctx), {
        let mut v = vec![
            used.config_digest.to_string(),
            unused.config_digest.to_string(),
        ];
        v.sort();
        v
    });
    // -a: every image without a container; the one `user` runs on stays.
    let out = assert_success(&ctx.nook(&["image", "prune", "-a", "-f"]));
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\nuntagged: {}\nuntagged: {}@{}\ndeleted: {}\n",
            unused.reference, unused.repository, unused.manifest_digest, unused.config_digest
        )),
        "{out}"
    );
    assert_eq!(image_ids(&ctx), [used.config_digest.to_string()]);
    let out = assert_success(&ctx.nook(&["image", "prune", "-a", "-f"]));
    assert_eq!(out, "Total reclaimed space: 0B\n");

    // system prune: the stopped container goes; its image has a name, so it stays; the
    // volume stays without --volumes.
    let id = assert_success(&ctx.nook(&["ps", "-aq", "--no-trunc"]))
        .trim()
        .to_string();
    let out = assert_success(&ctx.nook(&["system", "prune", "-f"]));
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{id}\n\n")),
        "{out}"
    );
    assert!(!out.contains("Deleted Images"), "{out}");
    assert!(out.ends_with("Total reclaimed space: 2B\n"), "{out}");
    assert_eq!(image_ids(&ctx), [used.config_digest.to_string()]);
    assert!(root(&ctx).join("volumes/vol").is_dir());

    // -a --volumes, answered yes at a terminal: the rest goes.
    let out = ctx.nook_with_terminal(&["system", "prune", "-a", "--volumes"], b"y\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("WARNING! This will remove:\n  - all stopped containers\n  - all volumes not used by at least one container\n  - all images without at least one container associated to them\n"), "{text}");
    assert!(
        text.contains("Deleted Volumes:\nvol\n\nDeleted Images:\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("deleted: {}\n", used.config_digest)),
        "{text}"
    );
    assert!(image_ids(&ctx).is_empty());
    assert!(!root(&ctx).join("volumes/vol").exists());
    let (_, layers, clean) = store_state(&ctx);
    assert!(layers.is_empty() && clean, "{layers:?}");
    assert_eq!(
        std::fs::read_dir(root(&ctx).join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn system_prune_also_collects_what_interrupted_commands_left() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    pull(&ctx, image);
    let dead = dead_pid();
    // A pull killed after its layer went in, before its image record: a layer no image uses.
    let orphan = "9a".repeat(32);
    sh(
        &ctx,
        &format!(
            "set -e; cd '{}'; mkdir -p layers/{orphan}/diff layers/.staging/new-{dead}-1/diff; echo x > tmp/containers.json.{dead}.2",
            root(&ctx).display()
        ),
    );
    let out = assert_success(&ctx.nook(&["system", "prune", "-f"]));
    assert!(
        out.starts_with("Deleted leftovers and unused data:\n"),
        "{out}"
    );
    assert!(out.contains(&format!("removed layers/{orphan}\n")), "{out}");
    assert!(
        out.contains(&format!("removed tmp/containers.json.{dead}.2\n")),
        "{out}"
    );
    assert!(out.ends_with("Total reclaimed space: 2B\n"), "{out}");
    assert_eq!(image_ids(&ctx), [image.config_digest.to_string()]);
    assert!(store_state(&ctx).2);
    assert_success(&ctx.nook(&["system", "check"]));
}

#[test]
fn system_reset_empties_the_store_and_keeps_the_configuration() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    pull(&ctx, image);
    let config = ctx.config.join("nook/config.toml");
    sh(
        &ctx,
        &format!(
            "mkdir -p '{}' && printf '[network]\\ndefault = \"none\"\\n' > '{}'",
            ctx.config.join("nook").display(),
            config.display()
        ),
    );
    run(
        &ctx,
        &["-d", "--name", "sleeper", &image.reference, "sleep", "600"],
    );
    let (pid1, monitor) = crate::harness::context::pid1_and_monitor(&ctx, "sleeper");
    run(
        &ctx,
        &["--name", "vol", "-v", "v:/v", &image.reference, "true"],
    );

    // No terminal, no -f: nothing happens.
    assert_failure(&ctx.nook(&["system", "reset"]), 125);
    assert!(root(&ctx).join("images.json").exists());

    let out = ctx.nook_with_terminal(&["system", "reset"], b"y\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("WARNING! This will remove:\n"), "{text}");
    assert!(
        text.contains(&format!(
            "Removed 2 containers, 1 image and 1 volume, and the store at {} (",
            root(&ctx).display()
        )),
        "{text}"
    );
    assert!(!root(&ctx).exists());
    assert!(config.is_file(), "the configuration went too");
    for pid in [pid1, monitor] {
        let gone = || !Path::new(&format!("/proc/{pid}")).exists();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gone() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(gone(), "process {pid} survived");
    }
    assert_eq!(
        assert_success(&ctx.nook(&["system", "reset", "-f"])),
        format!(
            "Nothing to remove: there is no store at {}.\n",
            root(&ctx).display()
        )
    );
    assert_eq!(assert_success(&ctx.nook(&["images", "-q"])), "");
    assert_success(&ctx.nook(&["system", "check"]));
}

#[test]
fn info_names_the_store_the_user_and_the_helpers() {
    let ctx = TestContext::new();
    let out = assert_success(&ctx.nook(&["info", "--format", "json"]));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["store"]["root"], root(&ctx).display().to_string());
    assert_eq!(info["store"]["images"], 0);
    assert_eq!(info["rootless"]["uid"], ctx.uid().as_raw());
    assert_eq!(info["rootless"]["userNamespace"], "usable");
    assert_eq!(info["rootless"]["newuidmap"], "/usr/bin/newuidmap");
    assert!(
        info["rootless"]["subuid"][0]
            .as_str()
            .unwrap()
            .contains(':')
    );
    for helper in ["pasta", "slirp4netns"] {
        let path = info["network"][helper]["path"].as_str().unwrap();
        assert!(path.starts_with('/') && path.ends_with(helper), "{path}");
        assert!(
            !info["network"][helper]["version"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert!(!info["host"]["kernel"].as_str().unwrap().is_empty());
    assert!(info["host"]["cpus"].as_u64().unwrap() >= 1);
    assert!(info["storageDrivers"]["overlay"].is_string());
    assert!(info["host"]["cgroups"]["delegated"].is_boolean());

    let text = assert_success(&ctx.nook(&["system", "info"]));
    assert!(text.starts_with("host:\n  arch: "), "{text}");
    assert!(
        text.contains(&format!("\nstore:\n  root: {}\n", root(&ctx).display())),
        "{text}"
    );
    let err = assert_failure(&ctx.nook(&["info", "--format", "yaml"]), 125);
    assert!(err.contains("no {{…}} action: use `json`"), "{err}");
}
