use super::*;

/// A machine where everything is set up.
fn healthy() -> Facts {
    Facts {
        user: "alice".into(),
        uid: 1000,
        gid: 1000,
        userns: UsernsFacts {
            unprivileged_userns_clone: Some("1".into()),
            max_user_namespaces: Some("63000".into()),
            apparmor_restrict: None,
            probe: Ok(()),
        },
        newuidmap: HelperFact::Present {
            path: "/usr/bin/newuidmap".into(),
            setuid_root: true,
            file_caps: false,
        },
        newgidmap: HelperFact::Present {
            path: "/usr/bin/newgidmap".into(),
            setuid_root: false,
            file_caps: true,
        },
        subuid: Some("bob:100000:65536\nalice:165536:65536\n".into()),
        subgid: Some("bob:100000:65536\n1000:165536:65536\n".into()),
        runtime_dir: RuntimeDirFact::Present {
            path: "/run/user/1000".into(),
            owner: 1000,
            mode: 0o40700,
        },
        store: "/home/alice/.local/share/nook".into(),
        store_fs_magic: Some(0xEF53),
        store_free: Some(50 << 30),
        overlay: Ok(true),
        fuse_overlayfs: Some("/usr/bin/fuse-overlayfs".into()),
        dev_fuse: Ok(()),
        dev_net_tun: Ok(()),
        pasta: Some("/usr/bin/pasta".into()),
        slirp4netns: Some("/usr/bin/slirp4netns".into()),
        cgroups: CgroupFacts {
            version: "v2".into(),
            own: Ok("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice".into()),
            delegated_root: Some(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service".into(),
            ),
            controllers: vec!["cpu".into(), "io".into(), "memory".into(), "pids".into()],
        },
        ping_group_range: Some("0\t2147483647".into()),
        unprivileged_port_start: Some("0".into()),
        config: Ok(vec![]),
    }
}

/// The one finding named `check`.
fn find(facts: &Facts, check: &str) -> Finding {
    checks(facts)
        .into_iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no check named {check}"))
}

#[track_caller]
fn assert_status(f: &Finding, status: Status, detail: &str, fix: &str) {
    assert_eq!(f.status, status, "{f:?}");
    assert!(
        f.detail.contains(detail),
        "detail {:?} lacks {detail:?}",
        f.detail
    );
    assert!(f.fix.contains(fix), "fix {:?} lacks {fix:?}", f.fix);
}

#[test]
fn a_healthy_machine_is_all_ok_in_order() {
    let findings = checks(&healthy());
    let names: Vec<&str> = findings.iter().map(|f| f.check).collect();
    assert_eq!(
        names,
        [
            "user namespaces",
            "newuidmap",
            "newgidmap",
            "subuid",
            "subgid",
            "XDG_RUNTIME_DIR",
            "store file system",
            "overlay",
            "/dev/fuse",
            "/dev/net/tun",
            "network helpers",
            "cgroup delegation",
            "ping",
            "low ports",
            "disk space",
            "configuration",
        ]
    );
    for f in &findings {
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert_eq!(f.fix, "", "{f:?}");
        assert!(!f.needs_admin);
    }
    assert_eq!(exit_code(&findings), 0);
    assert!(
        find(&healthy(), "newgidmap")
            .detail
            .contains("file capabilities")
    );
    assert!(find(&healthy(), "subgid").detail.contains("165536:65536"));
}

#[test]
fn user_namespaces_name_the_switch_that_blocks_them() {
    let mut f = healthy();
    f.userns.probe = Err("EPERM".into());
    f.userns.unprivileged_userns_clone = Some("0".into());
    let v = find(&f, "user namespaces");
    assert_status(
        &v,
        Status::Fail,
        "unprivileged_userns_clone is 0",
        "sudo sysctl -w kernel.unprivileged_userns_clone=1",
    );
    assert!(v.needs_admin);
    assert_eq!(exit_code(&checks(&f)), 1);

    f.userns.unprivileged_userns_clone = None;
    f.userns.max_user_namespaces = Some("0".into());
    assert_status(
        &find(&f, "user namespaces"),
        Status::Fail,
        "max_user_namespaces is 0",
        "sudo sysctl -w user.max_user_namespaces=",
    );

    f.userns.max_user_namespaces = Some("100".into());
    f.userns.apparmor_restrict = Some("1".into());
    assert_status(
        &find(&f, "user namespaces"),
        Status::Fail,
        "AppArmor",
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    );

    f.userns.apparmor_restrict = Some("0".into());
    let v = find(&f, "user namespaces");
    assert_status(
        &v,
        Status::Fail,
        "cannot make a user namespace: EPERM",
        "outside containers",
    );
    assert!(!v.needs_admin);

    // A switch that is off does not matter when the namespace could be made anyway.
    let mut f = healthy();
    f.userns.apparmor_restrict = Some("1".into());
    assert_eq!(find(&f, "user namespaces").status, Status::Ok);
}

#[test]
fn id_helpers_missing_warn_and_without_privilege_fail() {
    let mut f = healthy();
    f.newuidmap = HelperFact::Missing;
    let v = find(&f, "newuidmap");
    assert_status(
        &v,
        Status::Warn,
        "single-id user namespace",
        "sudo apt-get install uidmap",
    );
    assert!(v.needs_admin);
    f.newgidmap = HelperFact::Present {
        path: "/usr/local/bin/newgidmap".into(),
        setuid_root: false,
        file_caps: false,
    };
    assert_status(
        &find(&f, "newgidmap"),
        Status::Fail,
        "neither setuid root nor has file capabilities",
        "sudo setcap cap_setgid+ep /usr/local/bin/newgidmap",
    );
}

#[test]
fn subordinate_ranges_missing_small_or_overlapping_warn() {
    let mut f = healthy();
    f.subuid = Some("bob:100000:65536\n".into());
    let v = find(&f, "subuid");
    // The suggested range starts after every range of both files, aligned.
    assert_status(
        &v,
        Status::Warn,
        "alice has no range in /etc/subuid",
        "sudo helpers/subids alice (from nook's sources; it gives both ranges), or: sudo usermod --add-subuids 262144-327679 alice",
    );
    assert!(v.needs_admin);
    f.subuid = None;
    assert_status(&find(&f, "subuid"), Status::Warn, "no range", "usermod");

    let mut f = healthy();
    f.subgid = Some("alice:165536:1000\n".into());
    assert_status(
        &find(&f, "subgid"),
        Status::Warn,
        "has 1000 ids, fewer than 65536",
        "sudo usermod --del-subgids 165536-166535 alice && sudo usermod --add-subgids",
    );

    let mut f = healthy();
    f.subuid = Some("bob:100000:65536\nalice:150000:65536\n".into());
    assert_status(
        &find(&f, "subuid"),
        Status::Warn,
        "150000:65536 in /etc/subuid overlaps bob's 100000:65536",
        "sudo usermod --del-subuids 150000-215535 alice && sudo usermod --add-subuids",
    );
    // Comments and the user's own further lines are not overlaps.
    f.subuid = Some("# alice:1:2\nalice:100000:65536\n1000:165536:10\n".into());
    assert_eq!(find(&f, "subuid").status, Status::Ok);
}

#[test]
fn free_range_is_the_first_free_aligned_one() {
    // The same cases as helpers/subids' tests (tests/integration/subids.rs), which must agree.
    assert_eq!(free_range(&[None, None]), 131_072);
    let others = "someone:100000:65536\n";
    assert_eq!(free_range(&[Some(others), Some(others)]), 196_608);
    assert_eq!(
        free_range(&[Some("4242:131072:65536\n"), Some("other:196608:65536\n")]),
        262_144
    );
    assert_eq!(
        free_range(&[Some("a:100000:65536\n"), Some("b:231072:65536\n")]),
        327_680
    );
    // A gap before or between ranges is used.
    assert_eq!(free_range(&[Some("late:262144:65536\n"), None]), 131_072);
    assert_eq!(
        free_range(&[Some("a:100000:65536\nb:262144:65536\n"), None]),
        196_608
    );
    assert_eq!(free_range(&[Some("garbage\n# x\n"), None]), 131_072);
}

#[test]
fn runtime_dir_unset_foreign_or_open_warns() {
    let mut f = healthy();
    f.runtime_dir = RuntimeDirFact::Unset;
    let v = find(&f, "XDG_RUNTIME_DIR");
    assert_status(
        &v,
        Status::Warn,
        "not set",
        "export XDG_RUNTIME_DIR=/run/user/$(id -u)",
    );
    assert!(!v.needs_admin);
    f.runtime_dir = RuntimeDirFact::Unusable("`/nope`: No such file or directory".into());
    assert_status(
        &find(&f, "XDG_RUNTIME_DIR"),
        Status::Warn,
        "/nope",
        "export XDG_RUNTIME_DIR=",
    );
    f.runtime_dir = RuntimeDirFact::Present {
        path: "/run/user/0".into(),
        owner: 0,
        mode: 0o40700,
    };
    assert_status(
        &find(&f, "XDG_RUNTIME_DIR"),
        Status::Warn,
        "belongs to uid 0",
        "export XDG_RUNTIME_DIR=",
    );
    f.runtime_dir = RuntimeDirFact::Present {
        path: "/tmp/rt".into(),
        owner: 1000,
        mode: 0o40755,
    };
    assert_status(
        &find(&f, "XDG_RUNTIME_DIR"),
        Status::Warn,
        "mode 0755, not 0700",
        "chmod 0700 /tmp/rt",
    );
}

#[test]
fn a_store_on_a_network_file_system_warns() {
    for (magic, name) in [
        (0x6969, "NFS"),
        (0x0BD0_0BD0, "Lustre"),
        (0x4750_4653, "GPFS"),
        (0xFF53_4D42, "CIFS"),
        (0xFE53_4D42, "SMB2"),
    ] {
        let mut f = healthy();
        f.store_fs_magic = Some(magic);
        let v = find(&f, "store file system");
        assert_status(
            &v,
            Status::Warn,
            &format!("is on {name}"),
            "NOOK_ROOT=/local/dir",
        );
        assert!(v.detail.contains("use --root on a local disk"));
        assert!(!v.needs_admin);
    }
    let mut f = healthy();
    f.store_fs_magic = Some(0x0102_1994); // tmpfs
    assert_eq!(find(&f, "store file system").status, Status::Ok);
    f.store_fs_magic = None;
    assert_eq!(find(&f, "store file system").status, Status::Warn);
}

#[test]
fn overlay_falls_back_to_fuse_overlayfs_then_warns() {
    let mut f = healthy();
    f.overlay = Ok(false);
    assert_status(
        &find(&f, "overlay"),
        Status::Ok,
        "fuse-overlayfs (/usr/bin/fuse-overlayfs) is used",
        "",
    );
    f.overlay = Err("no user namespace to try it in".into());
    assert_status(&find(&f, "overlay"), Status::Ok, "could not be tried", "");
    f.fuse_overlayfs = None;
    assert_status(
        &find(&f, "overlay"),
        Status::Warn,
        "full copy",
        "sudo apt-get install fuse-overlayfs",
    );
    f.fuse_overlayfs = Some("/usr/bin/fuse-overlayfs".into());
    f.dev_fuse = Err("Permission denied (os error 13)".into());
    assert_status(
        &find(&f, "overlay"),
        Status::Warn,
        "/dev/fuse cannot be opened",
        "sudo chmod 0666 /dev/fuse",
    );
}

#[test]
fn devices_that_cannot_be_opened() {
    let mut f = healthy();
    f.dev_fuse = Err("Permission denied (os error 13)".into());
    f.dev_net_tun = Err("No such file or directory (os error 2)".into());
    assert_status(
        &find(&f, "/dev/fuse"),
        Status::Warn,
        "Permission denied",
        "sudo chmod 0666 /dev/fuse",
    );
    assert_status(
        &find(&f, "/dev/net/tun"),
        Status::Fail,
        "no network",
        "sudo chmod 0666 /dev/net/tun",
    );
}

#[test]
fn network_helpers_missing() {
    let mut f = healthy();
    f.pasta = None;
    assert_eq!(find(&f, "network helpers").status, Status::Ok);
    f.pasta = Some("/usr/bin/pasta".into());
    f.slirp4netns = None;
    assert_status(
        &find(&f, "network helpers"),
        Status::Warn,
        "default route",
        "sudo apt-get install slirp4netns",
    );
    f.pasta = None;
    assert_status(
        &find(&f, "network helpers"),
        Status::Fail,
        "neither",
        "sudo apt-get install passt slirp4netns",
    );
}

#[test]
fn cgroup_delegation_missing_or_partial_warns() {
    let mut f = healthy();
    f.cgroups.version = "v1".into();
    let v = find(&f, "cgroup delegation");
    assert_status(
        &v,
        Status::Warn,
        "need cgroup v2",
        "systemd.unified_cgroup_hierarchy=1",
    );
    assert!(v.needs_admin);

    let mut f = healthy();
    f.cgroups.own = Err("this process is in no cgroup v2 hierarchy".into());
    assert_status(
        &find(&f, "cgroup delegation"),
        Status::Warn,
        "no cgroup v2 hierarchy",
        "Delegate=",
    );

    let mut f = healthy();
    f.cgroups.delegated_root = None;
    let v = find(&f, "cgroup delegation");
    assert_status(&v, Status::Warn, "is not yours", "log in");
    assert!(!v.needs_admin);

    let mut f = healthy();
    f.cgroups.controllers = vec!["pids".into()];
    assert_status(
        &find(&f, "cgroup delegation"),
        Status::Warn,
        "not memory, cpu",
        "sudo tee /etc/systemd/system/user@.service.d/delegate.conf",
    );
}

#[test]
fn ping_group_range_must_include_the_gid() {
    let mut f = healthy();
    f.ping_group_range = Some("1\t0".into());
    let v = find(&f, "ping");
    assert_status(
        &v,
        Status::Warn,
        "excludes your gid 1000",
        "sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"",
    );
    f.ping_group_range = Some("1000 1000".into());
    assert_eq!(find(&f, "ping").status, Status::Ok);
    f.ping_group_range = None;
    assert_eq!(find(&f, "ping").status, Status::Warn);
}

#[test]
fn privileged_low_ports_warn() {
    let mut f = healthy();
    f.unprivileged_port_start = Some("1024\n".into());
    assert_status(
        &find(&f, "low ports"),
        Status::Warn,
        "is 1024",
        "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80",
    );
    f.unprivileged_port_start = Some("80".into());
    assert_eq!(find(&f, "low ports").status, Status::Ok);
}

#[test]
fn little_free_space_warns() {
    let mut f = healthy();
    f.store_free = Some(LOW_SPACE - 1);
    assert_status(
        &find(&f, "disk space"),
        Status::Warn,
        "free under /home/alice/.local/share/nook",
        "nook system prune",
    );
    f.store_free = Some(LOW_SPACE);
    assert_eq!(find(&f, "disk space").status, Status::Ok);
    f.store_free = None;
    assert_eq!(find(&f, "disk space").status, Status::Warn);
}

#[test]
fn the_report_is_an_aligned_table_or_json() {
    let mut f = healthy();
    f.ping_group_range = Some("1 0".into());
    f.dev_net_tun = Err("EACCES".into());
    let findings = checks(&f);
    let table = render_table(&findings);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("STATUS    CHECK"), "{table}");
    let detail_col = lines[0].find("DETAIL").unwrap();
    for line in &lines[1..=findings.len()] {
        assert_eq!(line.chars().nth(detail_col - 1), Some(' '), "{line}");
        assert_ne!(line.chars().nth(detail_col), Some(' '), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL      /dev/net/tun"))
    );
    assert!(
        table.ends_with("\n1 FAIL, 1 WARN, 14 OK; fixes using sudo need an administrator\n"),
        "{table}"
    );

    let json = serde_json::to_value(&findings).unwrap();
    assert_eq!(
        json[12],
        serde_json::json!({
            "check": "ping",
            "status": "WARN",
            "detail": "net.ipv4.ping_group_range \"1 0\" excludes your gid 1000: ping in containers fails",
            "fix": "sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"",
            "needs_admin": true,
        })
    );
}

#[test]
fn a_configuration_nook_refuses_fails() {
    let mut f = healthy();
    assert_status(
        &find(&f, "configuration"),
        Status::Ok,
        "built-in defaults",
        "",
    );
    f.config = Ok(vec!["/c/nook/config.toml".into()]);
    assert_status(
        &find(&f, "configuration"),
        Status::Ok,
        "using /c/nook/config.toml",
        "",
    );
    f.config =
        Err("cannot parse /c/nook/config.toml: line 2: unknown key `containers.inti`".into());
    let v = find(&f, "configuration");
    assert_status(&v, Status::Fail, "`containers.inti`", "man nook-config");
    assert!(!v.needs_admin);
    assert_eq!(exit_code(&checks(&f)), 1);
}
