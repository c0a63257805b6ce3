use super::*;

fn limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: None,
        cpus: Some(1.5),
        pids: Some(100),
    }
}

#[test]
fn limits_become_cgroup_v2_files_as_docker_counts_them() {
    assert_eq!(
        limits().files(),
        [
            ("memory.max", "67108864".to_string()),
            ("memory.swap.max", "67108864".to_string()),
            ("cpu.max", "150000 100000".to_string()),
            ("pids.max", "100".to_string()),
        ]
    );
    let swap = |s| Limits {
        memory: Some(100),
        memory_swap: Some(s),
        ..Limits::default()
    };
    assert_eq!(swap(300).files()[1].1, "200");
    assert_eq!(swap(-1).files()[1].1, "max");
    assert!(swap(50).validate().is_err());
    assert!(
        Limits {
            memory_swap: Some(10),
            ..Limits::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        Limits {
            cpus: Some(0.0),
            ..Limits::default()
        }
        .validate()
        .is_err()
    );
    assert_eq!(
        Limits {
            pids: Some(-1),
            ..Limits::default()
        }
        .files(),
        [("pids.max", "max".to_string())]
    );
}

/// A cgroup tree in a temporary directory: `top` (not the user's), `top/user` (the
/// delegated root, offering `offered`), `top/user/session` (this process's cgroup).
fn tree(offered: &str) -> (tempfile::TempDir, PathBuf, u32) {
    let dir = tempfile::tempdir().unwrap();
    let uid = nix::unistd::geteuid().as_raw();
    let session = dir.path().join("top/user/session");
    fs::create_dir_all(&session).unwrap();
    for d in ["top", "top/user", "top/user/session"] {
        fs::write(dir.path().join(d).join("cgroup.controllers"), offered).unwrap();
    }
    (dir, session, uid)
}

#[test]
fn the_plan_goes_below_the_highest_cgroup_the_user_owns() {
    let (dir, session, uid) = tree("cpu memory pids");
    // Everything here is the test's own; a foreign top is simulated by a uid nobody has.
    let plan = plan(
        &limits(),
        "0123456789abcdef",
        Ok(session.clone()),
        uid,
        &|_| false,
    )
    .unwrap();
    assert!(plan.root.starts_with(dir.path()));
    assert_eq!(plan.cgroup, plan.root.join("nook-0123456789ab"));
    assert_eq!(plan.controllers, ["memory", "cpu", "pids"]);

    let err = super::plan(&limits(), "0123", Ok(session), uid + 1, &|_| false).unwrap_err();
    assert!(err.to_string().contains("not delegated"), "{err}");
}

#[test]
fn a_missing_controller_is_named_with_the_reason() {
    let (_dir, session, uid) = tree("cpu pids");
    let err = plan(&limits(), "0123", Ok(session.clone()), uid, &|c| {
        c == "memory"
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("--memory needs the `memory` controller"),
        "{text}"
    );
    assert!(text.contains("cgroup v1"), "{text}");
    assert!(text.contains("or run without --memory"), "{text}");
    let err = plan(&limits(), "0123", Err("no cgroup v2".into()), uid, &|_| {
        false
    })
    .unwrap_err();
    assert!(err.to_string().contains("no cgroup v2"), "{err}");
}

#[test]
fn a_sweep_removes_only_the_cgroups_of_containers_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gone = "0123456789ab";
    let alive = "ba9876543210";
    let busy = "aaaaaaaaaaaa";
    for name in [gone, alive, busy] {
        fs::create_dir(root.join(format!("nook-{name}"))).unwrap();
    }
    // A cgroup with processes refuses rmdir; a non-empty directory stands in for it.
    fs::write(root.join(format!("nook-{busy}/cgroup.procs")), "1").unwrap();
    // Not nook's: another tool's cgroup, and a name that only looks like one.
    fs::create_dir(root.join("session-1.scope")).unwrap();
    fs::create_dir(root.join("nook-notanid")).unwrap();

    let known = [format!("{alive}{}", "0".repeat(52))];
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    assert_eq!(sweep_below(root, &known), 1);
    let mut left: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!("nook-{busy}"),
            format!("nook-{alive}"),
            "nook-notanid".to_string(),
            "session-1.scope".to_string()
        ]
    );
}
