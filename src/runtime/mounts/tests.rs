//! Plans as data (pure, run everywhere), path resolution and the vfs copy on plain
//! directories, and real execution: tests that re-run themselves inside fresh user, mount,
//! PID, IPC and UTS namespaces as an unprivileged user (`nooktest` when run as root).

use std::os::unix::fs::symlink;

use super::*;

fn flags(list: &[MsFlags]) -> MsFlags {
    list.iter().fold(MsFlags::empty(), |a, b| a | *b)
}

fn spec(driver: Driver) -> RootfsSpec {
    RootfsSpec {
        shown_ids: None,
        driver,
        lower: vec![
            "/s/layers/aaa/diff".into(),
            "/s/layers/bbb/diff".into(),
            "/s/layers/ccc/diff".into(),
        ],
        upper: "/s/containers/c1/upper".into(),
        work: "/s/containers/c1/work".into(),
        target: "/s/containers/c1/merged".into(),
    }
}

fn mounts() -> ContainerMounts {
    ContainerMounts {
        rootfs: "/r".into(),
        binds: vec![
            Bind {
                source: "/host/inner".into(),
                destination: "/data/inner".into(),
                read_only: true,
            },
            Bind {
                source: "/host/data".into(),
                destination: "/data".into(),
                read_only: false,
            },
        ],
        tmpfs: vec![("/scratch".into(), "size=64m,exec".into())],
        etc_files: vec![("/c/hosts".into(), "/etc/hosts".into())],
        masked_paths: DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        readonly_paths: DEFAULT_READONLY_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        read_only_root: true,
        host_devices: DEFAULT_DEVICES.iter().map(|s| s.to_string()).collect(),
    }
}

fn at(path: &str) -> InRoot {
    InRoot::new("/r", path)
}

#[test]
fn driver_names_round_trip() {
    for d in [Driver::Overlay, Driver::FuseOverlayfs, Driver::Vfs] {
        assert_eq!(Driver::parse(d.name()), Some(d));
    }
    assert_eq!(Driver::parse("btrfs"), None);
}

#[test]
fn overlay_plan_puts_the_top_layer_first() {
    assert_eq!(
        rootfs_plan(&spec(Driver::Overlay)),
        vec![
            MountOp::MakeRslave { path: "/".into() },
            MountOp::Overlay {
                lower: vec![
                    "/s/layers/ccc/diff".into(),
                    "/s/layers/bbb/diff".into(),
                    "/s/layers/aaa/diff".into(),
                ],
                upper: "/s/containers/c1/upper".into(),
                work: "/s/containers/c1/work".into(),
                target: "/s/containers/c1/merged".into(),
                userxattr: true,
            },
        ]
    );
}

#[test]
fn fuse_and_vfs_plans() {
    let fuse = rootfs_plan(&spec(Driver::FuseOverlayfs));
    assert!(matches!(&fuse[1], MountOp::FuseOverlayfs { lower, .. }
        if lower[0] == Path::new("/s/layers/ccc/diff")));
    assert_eq!(
        rootfs_plan(&spec(Driver::Vfs))[1..],
        [
            MountOp::CopyLayers {
                lower: spec(Driver::Vfs).lower,
                to: "/s/containers/c1/upper".into(),
                marker: "/s/containers/c1/vfs.done".into(),
            },
            MountOp::BindRootfs {
                source: "/s/containers/c1/upper".into(),
                target: "/s/containers/c1/merged".into(),
            },
        ]
    );
}

#[test]
fn container_plan_follows_dockers_layout() {
    let ops = container_plan(&mounts());
    let nosuid_noexec_nodev = flags(&[MsFlags::MS_NOSUID, MsFlags::MS_NOEXEC, MsFlags::MS_NODEV]);
    assert_eq!(
        ops[0],
        MountOp::Proc {
            at: at("/proc"),
            flags: nosuid_noexec_nodev
        }
    );
    assert_eq!(
        ops[1],
        MountOp::Tmpfs {
            at: at("/dev"),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            data: "mode=755,size=65536k".into()
        }
    );
    assert_eq!(
        ops[2],
        MountOp::Bind {
            source: "/dev/null".into(),
            at: at("/dev/null"),
            recursive: false,
            read_only: false
        }
    );
    let idx = |pred: &dyn Fn(&MountOp) -> bool| ops.iter().position(pred).unwrap();
    let ptmx = idx(
        &|o| matches!(o, MountOp::Symlink { at: a, target } if a.path == "/dev/ptmx" && target == "pts/ptmx"),
    );
    let pts = idx(&|o| matches!(o, MountOp::Devpts { at: a, .. } if a.path == "/dev/pts"));
    let shm = idx(&|o| {
        matches!(o, MountOp::Tmpfs { at: a, flags: f, data } if a.path == "/dev/shm"
            && *f == nosuid_noexec_nodev && data == "mode=1777,size=65536k")
    });
    let mq = idx(&|o| matches!(o, MountOp::Mqueue { .. }));
    let sys = idx(
        &|o| matches!(o, MountOp::Sysfs { flags: f, .. } if *f == nosuid_noexec_nodev | MsFlags::MS_RDONLY),
    );
    let data = idx(
        &|o| matches!(o, MountOp::Bind { at: a, recursive: true, read_only: false, .. } if a.path == "/data"),
    );
    let inner = idx(
        &|o| matches!(o, MountOp::Bind { at: a, read_only: true, .. } if a.path == "/data/inner"),
    );
    let tmp = idx(&|o| matches!(o, MountOp::Tmpfs { at: a, .. } if a.path == "/scratch"));
    let hosts = idx(
        &|o| matches!(o, MountOp::Bind { at: a, read_only: true, recursive: false, .. } if a.path == "/etc/hosts"),
    );
    let first_mask = idx(&|o| matches!(o, MountOp::Mask { .. }));
    let first_ro = idx(&|o| matches!(o, MountOp::ReadOnly { .. }));
    assert!(ptmx < pts && pts < shm && shm < mq && mq < sys, "{ops:#?}");
    // Parents before children, whatever order the user gave.
    assert!(
        sys < data && data < tmp && tmp < inner && inner < hosts,
        "{ops:#?}"
    );
    assert!(hosts < first_mask && first_mask < first_ro, "{ops:#?}");
    assert_eq!(
        ops.iter()
            .filter(|o| matches!(o, MountOp::Mask { .. }))
            .count(),
        DEFAULT_MASKED_PATHS.len()
    );
    assert_eq!(
        ops.last(),
        Some(&MountOp::RemountReadOnly { path: "/r".into() })
    );
}

#[test]
fn masked_paths_are_dockers_with_each_cpus_thermal_throttle() {
    // moby's current list, /proc/interrupts included (GHSA-6fw5-f8r9-fgfm).
    let sys = tempfile::tempdir().unwrap();
    let docker: Vec<String> = default_masked_paths(&sys.path().join("missing"));
    assert_eq!(docker.len(), 12);
    assert!(docker.iter().any(|p| p == "/proc/interrupts"), "{docker:?}");
    assert!(docker.iter().any(|p| p == "/proc/kcore"), "{docker:?}");
    // Only CPUs that have the directory, in CPU order; other entries are not CPUs.
    for dir in [
        "cpu10/thermal_throttle",
        "cpu2/thermal_throttle",
        "cpu3",
        "cpufreq/thermal_throttle",
        "cpuidle",
    ] {
        fs::create_dir_all(sys.path().join(dir)).unwrap();
    }
    let paths = default_masked_paths(sys.path());
    assert_eq!(
        &paths[12..],
        [
            "/sys/devices/system/cpu/cpu2/thermal_throttle",
            "/sys/devices/system/cpu/cpu10/thermal_throttle",
        ]
    );
}

#[test]
fn privileged_and_writable_root_plans_have_no_masks_and_no_root_remount() {
    let mut m = mounts();
    m.masked_paths.clear();
    m.readonly_paths.clear();
    m.read_only_root = false;
    let ops = container_plan(&m);
    assert!(!ops.iter().any(|o| matches!(
        o,
        MountOp::Mask { .. } | MountOp::ReadOnly { .. } | MountOp::RemountReadOnly { .. }
    )));
    // /etc files follow the root: writable now.
    assert!(ops.iter().any(
        |o| matches!(o, MountOp::Bind { at: a, read_only: false, .. } if a.path == "/etc/hosts")
    ));
}

#[test]
fn tmpfs_options_split_flags_from_data() {
    assert_eq!(
        tmpfs_options("size=64m,mode=1777"),
        (
            flags(&[MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC]),
            "size=64m,mode=1777".to_string()
        )
    );
    assert_eq!(
        tmpfs_options("ro,exec,uid=1000"),
        (
            flags(&[MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_RDONLY]),
            "uid=1000".to_string()
        )
    );
    assert_eq!(tmpfs_options("").1, "");
}

#[test]
fn devpts_sets_gid_5_only_when_mapped() {
    assert_eq!(
        devpts_data("         0       1001          1\n"),
        "newinstance,ptmxmode=0666,mode=0620"
    );
    assert_eq!(
        devpts_data("0 1001 1\n1 100000 65536\n"),
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    );
}

#[test]
fn overlay_data_uses_short_relative_lowerdirs() {
    let (dir, data) = overlay_data(
        &["/s/layers/bbb/diff".into(), "/s/layers/aaa/diff".into()],
        Path::new("/s/c/upper"),
        Path::new("/s/c/work"),
        true,
    )
    .unwrap();
    assert_eq!(dir, Path::new("/s/layers"));
    assert_eq!(
        data,
        "lowerdir=bbb/diff:aaa/diff,upperdir=/s/c/upper,workdir=/s/c/work,userxattr"
    );
    let (dir, data) =
        overlay_data(&["/s/l/x".into()], Path::new("/u"), Path::new("/w"), false).unwrap();
    assert_eq!(
        (dir.as_path(), data.as_str()),
        (Path::new("/s/l/x"), "lowerdir=.,upperdir=/u,workdir=/w")
    );
}

#[test]
fn overlay_data_refuses_too_many_layers_and_separators() {
    let layers: Vec<PathBuf> = (0..60)
        .map(|i| PathBuf::from(format!("/s/layers/{i:064x}/diff")))
        .collect();
    let err = overlay_data(&layers, Path::new("/u"), Path::new("/w"), true).unwrap_err();
    assert!(
        matches!(err, MountError::TooManyLayers { layers: 60, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("60 layers"), "{err}");
    let err = overlay_data(
        &["/x/a,b".into(), "/x/c".into()],
        Path::new("/u"),
        Path::new("/w"),
        true,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`/x/a,b`"), "{err}");
    // The common parent is never passed, only changed into.
    overlay_data(&["/a,b/l".into()], Path::new("/u"), Path::new("/w"), true).unwrap();
}

#[test]
fn resolve_in_root_follows_symlinks_inside_and_refuses_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("real/dir")).unwrap();
    symlink("/real", root.join("abs")).unwrap();
    symlink("real/dir", root.join("rel")).unwrap();
    symlink("../../..", root.join("real/up")).unwrap();
    symlink("loop", root.join("loop")).unwrap();
    let r = |p: &str| resolve_in_root(&InRoot::new(root, p));
    assert_eq!(r("/abs/dir/x").unwrap(), root.join("real/dir/x"));
    assert_eq!(r("/rel/../y").unwrap(), root.join("real/y"));
    assert_eq!(r("/missing/a/../b").unwrap(), root.join("missing/b"));
    assert!(matches!(r("/../etc"), Err(MountError::Escape { .. })));
    let err = r("/real/up/etc").unwrap_err();
    assert!(matches!(err, MountError::Escape { .. }), "{err}");
    assert!(
        err.to_string().contains("escapes the container root"),
        "{err}"
    );
    assert!(matches!(r("/loop/x"), Err(MountError::SymlinkLoop { .. })));
}

#[test]
fn mount_points_are_created_inside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("etc")).unwrap();
    symlink("/etc", root.join("etc-link")).unwrap();
    let file = mount_point(&InRoot::new(root, "/etc-link/hosts"), Kind::File).unwrap();
    assert_eq!(file, root.join("etc/hosts"));
    assert!(file.is_file());
    let dir = mount_point(&InRoot::new(root, "/a/b/c"), Kind::Dir).unwrap();
    assert!(dir.is_dir() && dir.starts_with(root));
    assert!(matches!(
        mount_point(&InRoot::new(root, "/"), Kind::Dir),
        Err(MountError::DestinationIsRoot { .. })
    ));
    fs::write(root.join("plain"), b"").unwrap();
    assert!(matches!(
        mount_point(&InRoot::new(root, "/plain/x"), Kind::Dir),
        Err(MountError::NotADirectory { .. })
    ));
}

#[test]
fn a_missing_bind_source_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = execute(&[MountOp::Bind {
        source: "/nonexistent/nook-src".into(),
        at: InRoot::new(tmp.path(), "/mnt"),
        recursive: true,
        read_only: false,
    }])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bind source path `/nonexistent/nook-src` does not exist"
    );
    assert!(!tmp.path().join("mnt").exists());
}

#[test]
fn masks_and_read_only_paths_skip_what_does_not_exist() {
    let tmp = tempfile::tempdir().unwrap();
    execute(&[
        MountOp::Mask {
            at: InRoot::new(tmp.path(), "/proc/kcore"),
        },
        MountOp::ReadOnly {
            at: InRoot::new(tmp.path(), "/proc/sys"),
        },
    ])
    .unwrap();
}

#[test]
fn vfs_copy_applies_file_form_whiteouts_and_runs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (l1, l2, upper) = (
        tmp.path().join("l1"),
        tmp.path().join("l2"),
        tmp.path().join("c/upper"),
    );
    fs::create_dir_all(l1.join("opq")).unwrap();
    fs::create_dir_all(l2.join("opq")).unwrap();
    fs::create_dir_all(&upper).unwrap();
    fs::write(l1.join("keep"), b"1").unwrap();
    fs::write(l1.join("gone"), b"1").unwrap();
    fs::write(l1.join("opq/old"), b"1").unwrap();
    fs::set_permissions(l1.join("keep"), Permissions::from_mode(0o640)).unwrap();
    symlink("keep", l1.join("link")).unwrap();
    fs::write(l2.join(".wh.gone"), b"").unwrap();
    fs::write(l2.join("opq/.wh..wh..opq"), b"").unwrap();
    fs::write(l2.join("opq/new"), b"2").unwrap();
    let marker = tmp.path().join("c/vfs.done");
    let op = MountOp::CopyLayers {
        lower: vec![l1.clone(), l2.clone()],
        to: upper.clone(),
        marker: marker.clone(),
    };
    execute(std::slice::from_ref(&op)).unwrap();
    assert_eq!(names(&upper), ["keep", "link", "opq"]);
    assert_eq!(names(&upper.join("opq")), ["new"]);
    assert_eq!(
        fs::metadata(upper.join("keep")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        fs::metadata(upper.join("keep")).unwrap().mtime(),
        fs::metadata(l1.join("keep")).unwrap().mtime()
    );
    assert_eq!(
        fs::read_link(upper.join("link")).unwrap(),
        Path::new("keep")
    );
    assert!(marker.exists());
    fs::write(upper.join("written-by-container"), b"").unwrap();
    execute(&[op]).unwrap();
    assert!(upper.join("written-by-container").exists(), "copied again");
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Real execution in namespaces
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "NOOK_MOUNTS_CHILD";
const SCRATCH_ENV: &str = "NOOK_MOUNTS_SCRATCH";
const TEST_USER: &str = "nooktest";

fn must_work() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("NOOK_MUST_WORK").is_some()
}

fn skip(name: &str, why: &str) {
    if must_work() {
        panic!("{name}: prerequisite missing (CI/NOOK_MUST_WORK set): {why}");
    }
    eprintln!("SKIPPED {name}: {why}");
}

/// In the re-executed child: the scratch directory to work in.
fn child_scratch() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV)?;
    Some(PathBuf::from(
        std::env::var_os(SCRATCH_ENV).expect("scratch dir"),
    ))
}

/// Runs the test `name` of this module again, as `nooktest` when we are root, through
/// `unshare --user --map-root-user --mount --pid --fork --ipc --uts [--net]`.
fn rerun_in_namespaces(name: &str, net: bool, needs: &[&str]) {
    for tool in ["unshare", "timeout"].iter().chain(needs) {
        if !Path::new("/usr/bin").join(tool).exists() && !Path::new("/bin").join(tool).exists() {
            return skip(name, &format!("`{tool}` is not installed"));
        }
    }
    if !Path::new("/bin/busybox").exists() {
        return skip(
            name,
            "/bin/busybox is missing (Debian package busybox-static)",
        );
    }
    let root = nix::unistd::geteuid().is_root();
    let user = if root {
        match nix::unistd::User::from_name(TEST_USER) {
            Ok(Some(u)) => Some(u),
            _ => return skip(name, &format!("user `{TEST_USER}` does not exist")),
        }
    } else {
        None
    };
    if root && !Path::new("/usr/bin/setpriv").exists() {
        return skip(name, "`setpriv` is not installed");
    }
    let base = std::env::temp_dir().join(format!("nook-mounts-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(base.join("work")).unwrap();
    fs::set_permissions(&base, Permissions::from_mode(0o755)).unwrap();
    // The test binary may sit where the test user cannot read it (/root is 0700).
    let exe = base.join("test-bin");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, Permissions::from_mode(0o755)).unwrap();
    if let Some(u) = &user {
        nix::unistd::chown(&base.join("work"), Some(u.uid), Some(u.gid)).unwrap();
    }
    let test = format!(
        "{}::{name}",
        module_path!().split_once("::").map(|x| x.1).unwrap()
    );
    let mut cmd = Command::new("timeout");
    cmd.arg("120");
    if let Some(u) = &user {
        cmd.args([
            "setpriv",
            &format!("--reuid={}", u.uid),
            &format!("--regid={}", u.gid),
            "--init-groups",
        ]);
    }
    cmd.args([
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--pid",
        "--fork",
        "--ipc",
        "--uts",
    ]);
    if net {
        cmd.arg("--net");
    }
    cmd.arg(&exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(SCRATCH_ENV, base.join("work"))
        .current_dir(&base);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- child stdout ---\n{stdout}\n--- child stderr ---\n{stderr}");
    let _ = fs::remove_dir_all(&base);
    assert!(out.status.success(), "child failed: {}", out.status);
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the test: {stdout}"
    );
}

struct Layers {
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    target: PathBuf,
}

/// Two layers and an upper directory, in overlay's on-disk form as nook's unpacker writes it
/// inside a user namespace (0:0 whiteout devices, `user.overlay.opaque`).
fn build_layers(base: &Path) -> Layers {
    let l1 = base.join("layers/aaa/diff");
    let l2 = base.join("layers/bbb/diff");
    let c = base.join("containers/c1");
    for d in [
        l1.join("bin"),
        l1.join("opq"),
        l2.join("opq"),
        c.join("upper"),
        c.join("work"),
        c.join("merged"),
    ] {
        fs::create_dir_all(&d).unwrap();
    }
    fs::copy("/bin/busybox", l1.join("bin/busybox")).unwrap();
    fs::write(l1.join("a.txt"), b"lower").unwrap();
    fs::set_permissions(l1.join("a.txt"), Permissions::from_mode(0o640)).unwrap();
    xattr::set(l1.join("a.txt"), "user.nook-test", b"v").unwrap();
    let t = TimeSpec::new(1_000_000_000, 0);
    utimensat(
        None,
        &l1.join("a.txt"),
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    symlink("a.txt", l1.join("link")).unwrap();
    fs::write(l1.join("gone.txt"), b"x").unwrap();
    fs::write(l1.join("opq/inner.txt"), b"x").unwrap();
    mknod(
        &l2.join("gone.txt"),
        SFlag::S_IFCHR,
        Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .unwrap();
    xattr::set(l2.join("opq"), "user.overlay.opaque", b"y").unwrap();
    fs::write(l2.join("opq/new.txt"), b"n").unwrap();
    fs::write(l2.join("b.txt"), b"top").unwrap();
    fs::write(c.join("upper/up.txt"), b"up").unwrap();
    Layers {
        lower: vec![l1, l2],
        upper: c.join("upper"),
        work: c.join("work"),
        target: c.join("merged"),
    }
}

fn assert_merged_view(t: &Path, with_upper: bool) {
    assert_eq!(fs::read_to_string(t.join("a.txt")).unwrap(), "lower");
    assert_eq!(fs::read_to_string(t.join("b.txt")).unwrap(), "top");
    assert!(t.join("bin/busybox").is_file());
    assert_eq!(with_upper, t.join("up.txt").exists());
    assert!(
        fs::symlink_metadata(t.join("gone.txt")).is_err(),
        "whiteout did not hide gone.txt"
    );
    assert_eq!(
        names(&t.join("opq")),
        ["new.txt"],
        "opaque dir shows lower entries"
    );
}

fn mountinfo() -> Vec<(PathBuf, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-").unwrap();
            (
                PathBuf::from(unescape_mountinfo(f[4])),
                f[dash + 1].to_string(),
            )
        })
        .collect()
}

fn fstype_at(path: &Path) -> Option<String> {
    mountinfo()
        .into_iter()
        .rev()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t)
}

fn assert_erofs<T: std::fmt::Debug>(what: &str, r: io::Result<T>) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
        other => panic!("{what}: expected EROFS, got {other:?}"),
    }
}

#[test]
fn overlay_rootfs_and_container_mounts_in_a_user_namespace() {
    let Some(scratch) = child_scratch() else {
        return rerun_in_namespaces(
            "overlay_rootfs_and_container_mounts_in_a_user_namespace",
            false,
            &[],
        );
    };
    let scratch = fs::canonicalize(scratch).unwrap();
    assert!(overlay_works(&scratch), "the overlay probe failed");
    assert_eq!(
        fs::read_dir(&scratch).unwrap().count(),
        0,
        "probe left files"
    );
    let l = build_layers(&scratch);
    setup_rootfs(&RootfsSpec {
        shown_ids: None,
        driver: Driver::Overlay,
        lower: l.lower.clone(),
        upper: l.upper.clone(),
        work: l.work.clone(),
        target: l.target.clone(),
    })
    .unwrap();
    let t = l.target.clone();
    assert_eq!(fstype_at(&t).as_deref(), Some("overlay"));
    assert_merged_view(&t, true);

    let host = scratch.join("host");
    for d in ["ro", "rw", "inner"] {
        fs::create_dir_all(host.join(d)).unwrap();
    }
    fs::write(host.join("inner/file"), b"inner").unwrap();
    fs::write(host.join("hosts"), b"127.0.0.1 localhost\n").unwrap();
    // An image symlink climbing out of the root, for the escape check below.
    fs::create_dir_all(t.join("etc")).unwrap();
    symlink("/../../../../etc-elsewhere", t.join("etc/resolv.conf")).unwrap();
    let m = ContainerMounts {
        rootfs: t.clone(),
        binds: vec![
            Bind {
                source: host.join("inner"),
                destination: "/mnt/rw/inner".into(),
                read_only: true,
            },
            Bind {
                source: host.join("ro"),
                destination: "/mnt/ro".into(),
                read_only: true,
            },
            Bind {
                source: host.join("rw"),
                destination: "/mnt/rw".into(),
                read_only: false,
            },
        ],
        tmpfs: vec![("/tmpx".into(), "size=1m".into())],
        etc_files: vec![(host.join("hosts"), "/etc/hosts".into())],
        masked_paths: DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        readonly_paths: DEFAULT_READONLY_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        read_only_root: true,
        host_devices: DEFAULT_DEVICES.iter().map(|s| s.to_string()).collect(),
    };
    setup_container_mounts(&m).unwrap();

    assert_eq!(fstype_at(&t.join("proc")).as_deref(), Some("proc"));
    assert!(
        t.join("proc/1/status").exists(),
        "proc of the new PID namespace"
    );
    for masked in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
    ] {
        if Path::new(masked).exists() {
            let inside = t.join(&masked[1..]);
            assert_eq!(fs::read(&inside).unwrap().len(), 0, "{masked} not masked");
        }
    }
    if Path::new("/sys/firmware").is_dir() {
        assert_eq!(
            names(&t.join("sys/firmware")).len(),
            0,
            "/sys/firmware not masked"
        );
    }
    assert_erofs(
        "write /proc/sys/kernel/hostname",
        fs::write(t.join("proc/sys/kernel/hostname"), b"x"),
    );
    assert_eq!(fstype_at(&t.join("dev")).as_deref(), Some("tmpfs"));
    fs::write(t.join("dev/null"), b"discarded").unwrap();
    assert_eq!(fs::read(t.join("dev/null")).unwrap().len(), 0);
    let mut zeros = [1u8; 4];
    io::Read::read_exact(&mut fs::File::open(t.join("dev/zero")).unwrap(), &mut zeros).unwrap();
    assert_eq!(zeros, [0; 4]);
    assert_eq!(
        fs::read_link(t.join("dev/ptmx")).unwrap(),
        Path::new("pts/ptmx")
    );
    assert_eq!(
        fs::read_link(t.join("dev/fd")).unwrap(),
        Path::new("/proc/self/fd")
    );
    assert_eq!(fstype_at(&t.join("dev/pts")).as_deref(), Some("devpts"));
    assert!(t.join("dev/pts/ptmx").exists());
    assert_eq!(fstype_at(&t.join("dev/shm")).as_deref(), Some("tmpfs"));
    fs::write(t.join("dev/shm/x"), b"").unwrap();
    assert_eq!(fstype_at(&t.join("dev/mqueue")).as_deref(), Some("mqueue"));
    // No network namespace here: sysfs is refused and the host's /sys is bound read-only.
    assert_eq!(fstype_at(&t.join("sys")).as_deref(), Some("sysfs"));
    assert!(t.join("sys/kernel").is_dir());
    assert_erofs("mkdir in /sys", fs::create_dir(t.join("sys/nook-test")));
    // The host's submounts (cgroup tmpfs …) came along and are read-only too.
    let sys = t.join("sys");
    for (p, _) in mountinfo().iter().filter(|(p, _)| p.starts_with(&sys)) {
        let ro = statvfs(p).unwrap().flags().contains(FsFlags::ST_RDONLY);
        assert!(ro, "`{}` is writable", p.display());
    }
    assert_erofs("write to a ro bind", fs::write(t.join("mnt/ro/x"), b""));
    fs::write(t.join("mnt/rw/x"), b"through").unwrap();
    assert_eq!(fs::read(host.join("rw/x")).unwrap(), b"through");
    // Given before its parent, mounted after it, so it is visible.
    assert_eq!(fs::read(t.join("mnt/rw/inner/file")).unwrap(), b"inner");
    assert_erofs(
        "write to a nested ro bind",
        fs::write(t.join("mnt/rw/inner/y"), b""),
    );
    assert_eq!(fstype_at(&t.join("tmpx")).as_deref(), Some("tmpfs"));
    fs::write(t.join("tmpx/f"), b"").unwrap();
    assert_eq!(
        fs::read_to_string(t.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert_erofs(
        "write /etc/hosts of a read-only root",
        fs::write(t.join("etc/hosts"), b""),
    );
    assert_erofs(
        "write to a read-only root",
        fs::write(t.join("new-file"), b""),
    );

    // A bind through a symlink climbing out of the root is refused.
    let escape = execute(&[MountOp::Bind {
        source: host.join("rw"),
        at: InRoot::new(&t, "/etc/resolv.conf"),
        recursive: false,
        read_only: false,
    }])
    .unwrap_err();
    assert!(matches!(escape, MountError::Escape { .. }), "{escape}");

    pivot_into(&t).unwrap();
    assert!(!scratch.exists(), "the old root is still reachable");
    assert_eq!(fs::read_to_string("/a.txt").unwrap(), "lower");
    assert_eq!(
        fs::read_to_string("/etc/hosts").unwrap(),
        "127.0.0.1 localhost\n"
    );
    let out = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "test -c /dev/null && test -d /proc/self/fd && echo ok",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    assert_eq!(std::env::current_dir().unwrap(), Path::new("/"));
}

#[test]
fn fuse_overlayfs_rootfs_in_a_user_namespace() {
    let Some(scratch) = child_scratch() else {
        return rerun_in_namespaces(
            "fuse_overlayfs_rootfs_in_a_user_namespace",
            false,
            &["fuse-overlayfs"],
        );
    };
    if !Path::new("/dev/fuse").exists() {
        return skip(
            "fuse_overlayfs_rootfs_in_a_user_namespace",
            "/dev/fuse is missing",
        );
    }
    let scratch = fs::canonicalize(scratch).unwrap();
    let l = build_layers(&scratch);
    setup_rootfs(&RootfsSpec {
        shown_ids: None,
        driver: Driver::FuseOverlayfs,
        lower: l.lower.clone(),
        upper: l.upper.clone(),
        work: l.work.clone(),
        target: l.target.clone(),
    })
    .unwrap();
    let t = fs::canonicalize(&l.target).unwrap();
    assert_eq!(fstype_at(&t).as_deref(), Some("fuse.fuse-overlayfs"));
    assert_merged_view(&t, true);
    fs::write(t.join("written"), b"w").unwrap();
    assert_eq!(fs::read(l.upper.join("written")).unwrap(), b"w");

    // A failing run reports fuse-overlayfs's own message.
    let err = execute(&[MountOp::FuseOverlayfs {
        lower: vec![scratch.join("no-such-layer")],
        upper: l.upper.clone(),
        work: l.work.clone(),
        target: scratch.join("no-such-target"),
        shown_ids: None,
    }])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("fuse-overlayfs") && text.contains("exited with"),
        "{text}"
    );
}

#[test]
fn vfs_rootfs_and_sysfs_with_a_network_namespace() {
    let Some(scratch) = child_scratch() else {
        return rerun_in_namespaces("vfs_rootfs_and_sysfs_with_a_network_namespace", true, &[]);
    };
    let scratch = fs::canonicalize(scratch).unwrap();
    let l = build_layers(&scratch);
    let spec = RootfsSpec {
        shown_ids: None,
        driver: Driver::Vfs,
        lower: l.lower.clone(),
        upper: l.upper.clone(),
        work: l.work.clone(),
        target: l.target.clone(),
    };
    setup_rootfs(&spec).unwrap();
    let t = l.target.clone();
    // The first copy starts from an empty upper (a leftover of an interrupted one is cleared).
    assert_merged_view(&t, false);
    let a = fs::symlink_metadata(t.join("a.txt")).unwrap();
    assert_eq!(a.mode() & 0o7777, 0o640);
    assert_eq!(a.mtime(), 1_000_000_000);
    assert_eq!(
        xattr::get(t.join("a.txt"), "user.nook-test")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(fs::read_link(t.join("link")).unwrap(), Path::new("a.txt"));
    assert!(scratch.join("containers/c1/vfs.done").exists());
    assert!(
        xattr::get(t.join("opq"), "user.overlay.opaque")
            .unwrap()
            .is_none()
    );

    setup_container_mounts(&ContainerMounts {
        rootfs: t.clone(),
        binds: vec![],
        tmpfs: vec![],
        etc_files: vec![],
        masked_paths: vec![],
        readonly_paths: vec![],
        read_only_root: false,
        host_devices: vec!["/dev/null".into()],
    })
    .unwrap();
    // With its own network namespace, sysfs itself mounts (read-only, nothing below it).
    let sys = t.join("sys");
    assert_eq!(fstype_at(&sys).as_deref(), Some("sysfs"));
    assert!(
        !mountinfo()
            .iter()
            .any(|(p, _)| p.starts_with(&sys) && *p != sys)
    );
    assert_erofs("mkdir in /sys", fs::create_dir(sys.join("nook-test")));
    fs::write(t.join("writable-root"), b"").unwrap();

    // A second start reuses the copy.
    nix::mount::umount2(&t, MntFlags::MNT_DETACH).ok();
    let upper_file = l.upper.join("writable-root");
    assert!(upper_file.exists());
    setup_rootfs(&spec).unwrap();
    assert!(
        t.join("writable-root").exists(),
        "the layers were copied again"
    );
}
