//! Each of `nook system doctor`'s 15 checks broken on purpose, as root, in a scratch mount
//! namespace (`harness::scratch`) or through the environment, and the finding checked
//! through `--format json`; then, where a real command fails (or warns) in that situation,
//! its message names the same fix, word for word.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::harness::fixtures;
use crate::harness::scratch::Scratch;
use crate::harness::{TestContext, assert_success};

/// `nook [GLOBAL] system doctor --format json` in `scratch`: the exit status and findings.
fn doctor(scratch: &Scratch, ctx: &TestContext, global: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut args = global.to_vec();
    args.extend(["system", "doctor", "--format", "json"]);
    parse(&scratch.nook(ctx, &args))
}

fn parse(out: &Output) -> (Option<i32>, Vec<Value>) {
    let text = String::from_utf8_lossy(&out.stdout);
    let all = serde_json::from_str::<Vec<Value>>(&text).unwrap_or_else(|e| {
        panic!(
            "doctor's JSON does not parse ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), all)
}

/// Asserts the finding of `check`: its status, that its detail holds each of `detail`, its
/// exact fix, and whether that needs the administrator.
#[track_caller]
fn assert_finding(
    all: &[Value],
    check: &str,
    status: &str,
    detail: &[&str],
    fix: &str,
    needs_admin: bool,
) {
    let f = all
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no finding {check} in {all:#?}"));
    assert_eq!(f["status"], status, "{f:#}");
    let text = f["detail"].as_str().unwrap();
    for want in detail {
        assert!(text.contains(want), "`{want}` not in the detail: {f:#}");
    }
    assert_eq!(f["fix"], fix, "{f:#}");
    assert_eq!(f["needs_admin"], needs_admin, "{f:#}");
}

/// Asserts nook failed with one `Error:` line holding `error` and a `Hint:` line holding
/// `fix`; returns stderr.
#[track_caller]
fn assert_error_names(out: &Output, error: &str, fix: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one Error line expected:\n{stderr}");
    assert!(errors[0].contains(error), "`{error}` not in: {stderr}");
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("Hint: "))
        .unwrap_or_else(|| panic!("no Hint line:\n{stderr}"));
    assert!(hint.contains(fix), "`{fix}` not in the hint:\n{stderr}");
    stderr
}

/// A context with the single-layer image pulled (outside any scratch namespace).
fn ctx_with_image() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

/// Puts `value` in `/proc/sys/kernel/NAME`: over the file where this kernel has it, else in a
/// tmpfs over the whole directory (a kernel without that switch, as here).
fn fake_kernel_switch(scratch: &mut Scratch, name: &str, value: &str) {
    let target = format!("/proc/sys/kernel/{name}");
    if Path::new(&target).exists() {
        scratch.fake_file(&target, value);
    } else {
        scratch.step("/usr/bin/mount -t tmpfs -o size=64k nook-sysctl /proc/sys/kernel");
        scratch.step(format!("echo {value} > {target}"));
    }
}

const MAX_USERNS_FIX: &str = "sudo sysctl -w user.max_user_namespaces=28633";

#[test]
fn doctor_finds_user_namespaces_off_and_commands_name_its_fix() {
    let (ctx, image) = ctx_with_image();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    scratch.without_user_namespaces();
    let (code, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(
        &all,
        "user namespaces",
        "FAIL",
        &["user.max_user_namespaces is 0", "No space left on device"],
        MAX_USERNS_FIX,
        true,
    );
    assert_eq!(code, Some(1), "a FAIL makes the exit status 1");

    for args in [
        vec!["run", "--rm", &image, "true"],
        vec!["create", &image],
        vec!["pull", "-q", &image],
    ] {
        let out = scratch.nook(&ctx, &args);
        assert_error_names(&out, "unshare(CLONE_NEWUSER) failed", MAX_USERNS_FIX);
    }
}

#[test]
fn doctor_names_the_kernel_switch_that_forbids_user_namespaces() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    // The probe fails for real (the namespace's limit is 0); the files say why.
    let cases = [
        (
            Some(("unprivileged_userns_clone", "0")),
            "kernel.unprivileged_userns_clone is 0",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1",
        ),
        (
            Some(("apparmor_restrict_unprivileged_userns", "1")),
            "AppArmor restricts unprivileged user namespaces",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        ),
        (
            None,
            "a seccomp filter or a container around nook may forbid it",
            "run nook directly on the host, outside containers and sandboxes that forbid unshare(CLONE_NEWUSER)",
        ),
    ];
    for (switch, detail, fix) in cases {
        let Some(mut scratch) = Scratch::new() else {
            return;
        };
        scratch.without_user_namespaces();
        // Past the real limit of 0, the limit looks high: the switch is the cause found.
        scratch.fake_file("/proc/sys/user/max_user_namespaces", "28633\n");
        // The switches a kernel may have, off, unless the case is about one of them.
        for (name, off) in [
            ("unprivileged_userns_clone", "1"),
            ("apparmor_restrict_unprivileged_userns", "0"),
        ] {
            let target = format!("/proc/sys/kernel/{name}");
            if Path::new(&target).exists() && switch.is_none_or(|(n, _)| n != name) {
                scratch.fake_file(&target, off);
            }
        }
        if let Some((name, value)) = switch {
            fake_kernel_switch(&mut scratch, name, value);
        }
        let (code, all) = doctor(&scratch, &ctx, &[]);
        assert_finding(
            &all,
            "user namespaces",
            "FAIL",
            &[detail],
            fix,
            switch.is_some(),
        );
        assert_eq!(code, Some(1));
        let out = scratch.nook(&ctx, &["pull", "-q", &image]);
        let stderr = assert_error_names(&out, "unshare(CLONE_NEWUSER) failed", fix);
        assert!(stderr.contains(detail), "{stderr}");
    }
}

/// `newuidmap` and `newgidmap` as the package installs them, but without the setuid bit
/// (copies, bind-mounted over the real ones).
fn helpers_without_setuid(scratch: &mut Scratch, names: &[&str]) {
    for name in names {
        let copy = scratch.path(name);
        std::fs::copy(Path::new("/usr/bin").join(name), &copy).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        scratch.bind(&copy, &format!("/usr/bin/{name}"));
    }
}

const NEWUIDMAP_FIX: &str =
    "sudo setcap cap_setuid+ep /usr/bin/newuidmap (or: sudo chmod u+s /usr/bin/newuidmap)";
const NEWGIDMAP_FIX: &str =
    "sudo setcap cap_setgid+ep /usr/bin/newgidmap (or: sudo chmod u+s /usr/bin/newgidmap)";

#[test]
fn doctor_finds_id_helpers_without_setuid_and_commands_name_its_fix() {
    let (ctx, image) = ctx_with_image();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    helpers_without_setuid(&mut scratch, &["newuidmap", "newgidmap"]);
    let (code, all) = doctor(&scratch, &ctx, &[]);
    let detail = "is neither setuid root nor has file capabilities";
    assert_finding(&all, "newuidmap", "FAIL", &[detail], NEWUIDMAP_FIX, true);
    assert_finding(&all, "newgidmap", "FAIL", &[detail], NEWGIDMAP_FIX, true);
    assert_eq!(code, Some(1));
    let out = scratch.nook(&ctx, &["run", "--rm", &image, "true"]);
    assert_error_names(&out, "`newuidmap` failed to map ids", NEWUIDMAP_FIX);

    // Only newgidmap broken: the error and its fix are newgidmap's.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    helpers_without_setuid(&mut scratch, &["newgidmap"]);
    let (_, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(&all, "newuidmap", "OK", &["setuid root"], "", false);
    assert_finding(&all, "newgidmap", "FAIL", &[detail], NEWGIDMAP_FIX, true);
    let out = scratch.nook(&ctx, &["run", "--rm", &image, "true"]);
    assert_error_names(&out, "`newgidmap` failed to map ids", NEWGIDMAP_FIX);

    // File capabilities instead of the setuid bit, as doctor's fix suggests, do the job.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    helpers_without_setuid(&mut scratch, &["newuidmap", "newgidmap"]);
    for (name, cap) in [
        ("newuidmap", "cap_setuid+ep"),
        ("newgidmap", "cap_setgid+ep"),
    ] {
        let set = std::process::Command::new("/usr/sbin/setcap")
            .arg(cap)
            .arg(scratch.path(name))
            .output()
            .unwrap();
        assert_success(&set);
    }
    let (code, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(&all, "newuidmap", "OK", &["file capabilities"], "", false);
    assert_finding(&all, "newgidmap", "OK", &["file capabilities"], "", false);
    assert_eq!(code, Some(0));
    assert_success(&scratch.nook(&ctx, &["run", "--rm", &image, "true"]));
}

#[test]
fn doctor_finds_subordinate_ranges_missing_small_or_overlapping() {
    let (ctx, image) = ctx_with_image();
    let user = crate::harness::context::target_user().name.clone();
    // Ranges end at 165536 (or 195536) at most: the next free aligned range is 196608.
    // Doctor's fix for each file adds (and removes) that file's range only; a command that
    // finds both files wanting names one usermod for both.
    let add = |flag: &str| format!("sudo usermod --add-{flag}s 196608-262143 {user}");
    let both =
        format!("sudo usermod --add-subuids 196608-262143 --add-subgids 196608-262143 {user}");
    // (file, detail, each file's fix)
    let per_file = |f: &dyn Fn(&str) -> String| [f("subuid"), f("subgid")];
    let cases = [
        (
            "someone:100000:65536\n".to_string(),
            format!("{user} has no range in /etc/sub"),
            per_file(&|flag| {
                format!(
                    "sudo helpers/subids {user} (from nook's sources; it gives both ranges), or: {}",
                    add(flag)
                )
            }),
        ),
        (
            format!("{user}:100000:500\nsomeone:130000:65536\n"),
            "has 500 ids, fewer than 65536".to_string(),
            per_file(&|flag| {
                format!(
                    "sudo usermod --del-{flag}s 100000-100499 {user} && {}",
                    add(flag)
                )
            }),
        ),
        (
            format!("{user}:100000:65536\nsomeone:130000:65536\n"),
            "overlaps someone's 130000:65536".to_string(),
            per_file(&|flag| {
                format!(
                    "sudo usermod --del-{flag}s 100000-165535 {user} && {}",
                    add(flag)
                )
            }),
        ),
    ];
    for (i, (file, detail, fix)) in cases.iter().enumerate() {
        let Some(mut scratch) = Scratch::new() else {
            return;
        };
        scratch.fake_file("/etc/subuid", file);
        scratch.fake_file("/etc/subgid", file);
        let (code, all) = doctor(&scratch, &ctx, &[]);
        for (check, fix) in ["subuid", "subgid"].iter().zip(fix) {
            assert_finding(&all, check, "WARN", &[detail], fix, true);
        }
        assert_eq!(code, Some(0), "a WARN is no failure");
        if i == 1 {
            // An image with files of ids past the range: they show as root's, and the
            // warning says how to get a whole range.
            let fresh = TestContext::new();
            let out = scratch.nook(&fresh, &["pull", "-q", &image]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(
                stderr.contains("files owned by ids above 500 appear as root's")
                    && stderr.contains(both.as_str()),
                "{stderr}"
            );
        }
        if i == 0 {
            // Without a range nook still runs, in a single-id namespace, and says how to
            // get one.
            let out = scratch.nook(&ctx, &["run", "--rm", &image, "true"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(
                stderr.contains("single-id user namespace") && stderr.contains(both.as_str()),
                "{stderr}"
            );
        }
    }
}

#[test]
fn without_a_runtime_dir_commands_name_the_fix_doctor_names() {
    let (ctx, image) = ctx_with_image();
    // The stand-in runtime directory goes under TMPDIR: this test's own.
    let tmp = ctx.home.join("tmp");
    assert_success(&ctx.run_as_user("mkdir", &[tmp.to_str().unwrap()]));
    let run = |args: &[&str]| {
        ctx.nook_cmd()
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &tmp)
            .output()
            .unwrap()
    };
    let fix = "export XDG_RUNTIME_DIR=/run/user/$(id -u)";
    let out = run(&["run", "--rm", &image, "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("XDG_RUNTIME_DIR is not set") && stderr.contains(fix),
        "{stderr}"
    );
    // Once: not at every command.
    let out = run(&["images"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // Doctor reports it in its table, with the same fix.
    let (_, all) = parse(&run(&["system", "doctor", "--format", "json"]));
    assert_finding(&all, "XDG_RUNTIME_DIR", "WARN", &["not set"], fix, false);
}

#[test]
fn doctor_finds_a_store_on_fuse_and_the_overlay_it_cannot_hold() {
    let ctx = TestContext::new();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let mount = scratch.path("fuse");
    scratch.fuse(&mount);
    let store = mount.join("store");
    let root = store.to_str().unwrap();
    let (code, all) = doctor(&scratch, &ctx, &["--root", root]);
    assert_finding(
        &all,
        "store file system",
        "WARN",
        &[root, "is on FUSE"],
        "export NOOK_ROOT=/local/dir (or nook --root /local/dir …)",
        false,
    );
    // The kernel overlay refuses an upper directory on FUSE; fuse-overlayfs stands in.
    assert_finding(
        &all,
        "overlay",
        "OK",
        &["the kernel refuses an overlay mount", "fuse-overlayfs"],
        "",
        false,
    );
    assert_eq!(code, Some(0));
    // Images pull there, but containers cannot be set up on it, with either driver.
    let image = fixtures::single_layer().reference.clone();
    assert_success(&scratch.nook(&ctx, &["--root", root, "pull", "-q", &image]));
    for driver in ["fuse-overlayfs", "overlay"] {
        let out = scratch.nook(
            &ctx,
            &[
                "--root",
                root,
                "run",
                "--rm",
                "--storage-driver",
                driver,
                &image,
                "true",
            ],
        );
        let stderr = assert_error_names(&out, "", "export NOOK_ROOT=/local/dir");
        assert!(stderr.contains("is on FUSE"), "{stderr}");
    }

    // …unless /dev/fuse is closed too: then each container copies its image.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let mount = scratch.path("fuse");
    scratch.fuse(&mount);
    closed_device(&mut scratch, "fuse", 229);
    let root = mount.join("store");
    let (_, all) = doctor(&scratch, &ctx, &["--root", root.to_str().unwrap()]);
    assert_finding(
        &all,
        "overlay",
        "WARN",
        &[
            "the kernel refuses an overlay mount",
            "/dev/fuse cannot be opened",
            "full copy",
        ],
        "sudo chmod 0666 /dev/fuse",
        true,
    );

    // …or fuse-overlayfs is not installed.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let mount = scratch.path("fuse");
    scratch.fuse(&mount);
    let bin = path_without(&ctx, &["fuse-overlayfs"]);
    let root = mount.join("store");
    let mut cmd = ctx.nook_cmd();
    cmd.args(["--root", root.to_str().unwrap(), "system", "doctor"])
        .args(["--format", "json"])
        .env("PATH", &bin);
    let (_, all) = parse(&scratch.run(&cmd));
    assert_finding(
        &all,
        "overlay",
        "WARN",
        &["fuse-overlayfs is not installed"],
        "sudo apt-get install fuse-overlayfs",
        true,
    );
}

/// Puts a root-owned 0600 character device with the real one's numbers over `/dev/NAME`
/// (`/dev/net/tun` for `net/tun`): it exists, but the user cannot open it.
fn closed_device(scratch: &mut Scratch, name: &str, minor: u32) {
    let node = scratch.path(&format!("dev-{}", name.replace('/', "-")));
    let made = std::process::Command::new("/usr/bin/mknod")
        .args(["-m", "0600"])
        .arg(&node)
        .args(["c", "10", &minor.to_string()])
        .status()
        .unwrap();
    assert!(made.success(), "mknod {}", node.display());
    scratch.bind(&node, &format!("/dev/{name}"));
}

/// A directory for PATH with links to every program nook runs except `except`.
fn path_without(ctx: &TestContext, except: &[&str]) -> std::path::PathBuf {
    let bin = tempfile::Builder::new()
        .prefix("bin-")
        .tempdir_in(ctx.root())
        .unwrap()
        .keep();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    for program in [
        "newuidmap",
        "newgidmap",
        "fuse-overlayfs",
        "fusermount3",
        "fusermount",
        "pasta",
        "passt",
        "slirp4netns",
    ] {
        let target = Path::new("/usr/bin").join(program);
        if target.exists() && !except.contains(&program) {
            std::os::unix::fs::symlink(&target, bin.join(program)).unwrap();
        }
    }
    bin
}

#[test]
fn doctor_finds_dev_fuse_closed_and_fuse_overlayfs_names_its_fix() {
    let (ctx, image) = ctx_with_image();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    closed_device(&mut scratch, "fuse", 229);
    let (code, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(
        &all,
        "/dev/fuse",
        "WARN",
        &["cannot be opened", "Permission denied"],
        "sudo chmod 0666 /dev/fuse",
        true,
    );
    // A plain root file in its place says the same.
    let Some(mut plain) = Scratch::new() else {
        return;
    };
    let file = plain.write("plain-fuse", "", 0o600);
    plain.bind(&file, "/dev/fuse");
    let (_, plain_all) = doctor(&plain, &ctx, &[]);
    assert_finding(
        &plain_all,
        "/dev/fuse",
        "WARN",
        &["Permission denied"],
        "sudo chmod 0666 /dev/fuse",
        true,
    );
    // The kernel overlay works here: nothing needs fuse-overlayfs unless asked for.
    assert_finding(&all, "overlay", "OK", &["kernel overlay"], "", false);
    assert_eq!(code, Some(0));
    let out = scratch.nook(
        &ctx,
        &[
            "run",
            "--rm",
            "--storage-driver",
            "fuse-overlayfs",
            &image,
            "true",
        ],
    );
    assert_error_names(&out, "/dev/fuse", "sudo chmod 0666 /dev/fuse");
}

#[test]
fn doctor_finds_dev_net_tun_closed_and_network_helpers_name_its_fix() {
    let (ctx, image) = ctx_with_image();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    closed_device(&mut scratch, "net/tun", 200);
    let (code, all) = doctor(&scratch, &ctx, &[]);
    let fix = "sudo chmod 0666 /dev/net/tun";
    assert_finding(
        &all,
        "/dev/net/tun",
        "FAIL",
        &["cannot be opened", "Permission denied", "no network"],
        fix,
        true,
    );
    assert_eq!(code, Some(1));
    for network in ["slirp4netns", "pasta"] {
        let out = scratch.nook(&ctx, &["run", "--rm", "--network", network, &image, "true"]);
        assert_error_names(&out, network, fix);
    }
    // A plain root file in its place: the same finding and fixes.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let file = scratch.write("plain-tun", "", 0o600);
    scratch.bind(&file, "/dev/net/tun");
    let (code, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(
        &all,
        "/dev/net/tun",
        "FAIL",
        &["Permission denied"],
        fix,
        true,
    );
    assert_eq!(code, Some(1));
    let out = scratch.nook(&ctx, &["run", "--rm", &image, "true"]);
    assert_error_names(&out, "failed to connect the container's network", fix);
}

#[test]
fn doctor_finds_network_helpers_missing_and_run_names_its_fix() {
    let (ctx, image) = ctx_with_image();
    let run_with_path =
        |bin: &Path, args: &[&str]| ctx.nook_cmd().args(args).env("PATH", bin).output().unwrap();
    let neither = path_without(&ctx, &["pasta", "passt", "slirp4netns"]);
    let both = "sudo apt-get install passt slirp4netns";
    let (code, all) = parse(&run_with_path(
        &neither,
        &["system", "doctor", "--format", "json"],
    ));
    assert_finding(
        &all,
        "network helpers",
        "FAIL",
        &["neither pasta nor slirp4netns is installed"],
        both,
        true,
    );
    assert_eq!(code, Some(1));
    let out = run_with_path(&neither, &["run", "--rm", &image, "true"]);
    assert_error_names(&out, "needs `pasta`, which is not installed", both);

    let pasta_only = path_without(&ctx, &["slirp4netns"]);
    let (_, all) = parse(&run_with_path(
        &pasta_only,
        &["system", "doctor", "--format", "json"],
    ));
    let fix = "sudo apt-get install slirp4netns";
    assert_finding(
        &all,
        "network helpers",
        "WARN",
        &["slirp4netns is not installed"],
        fix,
        true,
    );
    let out = run_with_path(
        &pasta_only,
        &["run", "--rm", "--network", "slirp4netns", &image, "true"],
    );
    assert_error_names(&out, "needs `slirp4netns`, which is not installed", fix);
}

#[test]
fn doctor_finds_cgroups_not_delegated_and_limits_name_its_fix() {
    let (ctx, image) = ctx_with_image();
    let limited = ["run", "--rm", "--memory", "64m", &image, "true"];
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    // A cgroup2 hierarchy where the user's cgroup is root's (as under su, or here).
    scratch.step("/usr/bin/umount -l /sys/fs/cgroup");
    scratch.step("/usr/bin/mount -t cgroup2 nook-scratch /sys/fs/cgroup");
    let (code, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(
        &all,
        "cgroup delegation",
        "WARN",
        &[
            "is not yours",
            "--memory, --cpus and --pids-limit are refused",
        ],
        "log in through a real session (ssh, or machinectl shell USER@), not su or sudo",
        false,
    );
    assert_eq!(code, Some(0));
    let out = scratch.nook(&ctx, &limited);
    assert_error_names(
        &out,
        "--memory needs the `memory` controller",
        "log in through a real session (ssh, or machinectl shell USER@), not su or sudo",
    );

    // Without cgroup2 at /sys/fs/cgroup: a v1 (or hybrid) host.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    scratch.step("/usr/bin/umount -l /sys/fs/cgroup");
    scratch.tmpfs(Path::new("/sys/fs/cgroup"), "64k");
    let (_, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(
        &all,
        "cgroup delegation",
        "WARN",
        &["cgroup v1", "need cgroup v2"],
        "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, then sudo update-grub and reboot",
        true,
    );
    let out = scratch.nook(&ctx, &limited);
    assert_error_names(
        &out,
        "--memory needs the `memory` controller",
        "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX",
    );
}

#[test]
fn doctor_finds_ping_closed_to_the_user() {
    let ctx = TestContext::new();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    scratch.fake_file("/proc/sys/net/ipv4/ping_group_range", "1\t0\n");
    let (code, all) = doctor(&scratch, &ctx, &[]);
    let gid = ctx.gid().as_raw();
    assert_finding(
        &all,
        "ping",
        "WARN",
        &[&format!("\"1 0\" excludes your gid {gid}")],
        "sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"",
        true,
    );
    assert_eq!(code, Some(0));
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    scratch.fake_file("/proc/sys/net/ipv4/ping_group_range", "0\t2147483647\n");
    let (_, all) = doctor(&scratch, &ctx, &[]);
    assert_finding(&all, "ping", "OK", &["includes your gid"], "", false);
}

#[test]
fn doctor_finds_low_ports_privileged_and_publishing_one_names_its_fix() {
    let (ctx, image) = ctx_with_image();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    scratch.fake_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "1024\n");
    let (code, all) = doctor(&scratch, &ctx, &[]);
    let fix = "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80";
    assert_finding(
        &all,
        "low ports",
        "WARN",
        &["ip_unprivileged_port_start is 1024", "-p 8080:80"],
        fix,
        true,
    );
    assert_eq!(code, Some(0));
    let out = scratch.nook(&ctx, &["run", "--rm", "-p", "80:80", &image, "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        error.contains("host ports below 1024 are privileged") && stderr.contains(fix),
        "{stderr}"
    );
}

const DISK_FIX: &str = "nook system prune (or export NOOK_ROOT=/dir/on/a/larger/disk)";

#[test]
fn doctor_finds_a_nearly_full_disk_and_a_pull_that_fills_it_names_its_fix() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let small = scratch.path("small");
    scratch.tmpfs(&small, "16m");
    let root = small.join("store");
    let root = root.to_str().unwrap();
    let (code, all) = doctor(&scratch, &ctx, &["--root", root]);
    assert_finding(
        &all,
        "disk space",
        "WARN",
        &["free under", root],
        DISK_FIX,
        false,
    );
    assert_eq!(code, Some(0));

    // A disk too small for the image.
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let tiny = scratch.path("tiny");
    scratch.tmpfs(&tiny, "256k");
    let root = tiny.join("store");
    let out = scratch.nook(
        &ctx,
        &["--root", root.to_str().unwrap(), "pull", "-q", &image],
    );
    assert_error_names(&out, "No space left on device", DISK_FIX);
}
