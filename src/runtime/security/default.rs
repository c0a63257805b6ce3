//! nook's default seccomp profile: Docker's default policy (moby `profiles/seccomp`, read as a
//! specification), written as data. The unconditional allow list is `default_allow.txt`; the
//! conditional, architecture- and capability-gated entries follow here. It is built as a
//! [`Profile`] so it goes through exactly the selection rules custom JSON profiles do.

use super::seccomp::{Arg, Entry, Filter, Profile};

const ALLOW_LIST: &str = include_str!("default_allow.txt");

/// Names allowed when the container holds the capability (Docker's `includes.caps`).
const CAPABILITY_GATED: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Names allowed only on some architectures (Docker's `includes.arches`, Go names).
const ARCH_GATED: &[(&[&str], &[&str])] = &[
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// personality(2) personas a container may switch to: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET (0x7E020000). Without CAP_SYS_ADMIN, clone is allowed only when none is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    names(list)
}

fn allow(list: &[&str]) -> Entry {
    Entry {
        names: names(list),
        action: "SCMP_ACT_ALLOW".into(),
        ..Entry::default()
    }
}

fn arg(index: u32, op: &str, value: u64) -> Arg {
    Arg {
        index,
        value,
        value_two: 0,
        op: op.into(),
    }
}

pub(crate) fn profile() -> Profile {
    let mut syscalls = Vec::new();

    let allowed: Vec<&str> = ALLOW_LIST
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    syscalls.push(allow(&allowed));

    // Docker allows these to everyone on kernels >= 4.8 (before, ptrace could bypass seccomp).
    let mut traced = allow(&["process_vm_readv", "process_vm_writev", "ptrace"]);
    traced.includes.min_kernel = Some("4.8".into());
    syscalls.push(traced);

    // socket(2) for every family but AF_ALG (38) and AF_VSOCK (40).
    for (op, family) in [
        ("SCMP_CMP_LT", 38),
        ("SCMP_CMP_EQ", 39),
        ("SCMP_CMP_GT", 40),
    ] {
        let mut entry = allow(&["socket"]);
        entry.args = vec![arg(0, op, family)];
        syscalls.push(entry);
    }

    for persona in PERSONALITIES {
        let mut entry = allow(&["personality"]);
        entry.args = vec![arg(0, "SCMP_CMP_EQ", *persona)];
        syscalls.push(entry);
    }

    for (arches, list) in ARCH_GATED {
        let mut entry = allow(list);
        entry.includes.arches = strings(arches);
        syscalls.push(entry);
    }

    for (cap, list) in CAPABILITY_GATED {
        let mut entry = allow(list);
        entry.includes.caps = vec![cap.to_string()];
        syscalls.push(entry);
    }

    // clone without namespace flags (s390 swaps clone's first two arguments).
    let mut clone = allow(&["clone"]);
    clone.args = vec![Arg {
        value: CLONE_NAMESPACE_FLAGS,
        ..arg(0, "SCMP_CMP_MASKED_EQ", 0)
    }];
    clone.excludes = Filter {
        caps: strings(&["CAP_SYS_ADMIN"]),
        arches: strings(&["s390", "s390x"]),
        min_kernel: None,
    };
    syscalls.push(clone);
    let mut clone_s390 = allow(&["clone"]);
    clone_s390.args = vec![Arg {
        value: CLONE_NAMESPACE_FLAGS,
        ..arg(1, "SCMP_CMP_MASKED_EQ", 0)
    }];
    clone_s390.includes.arches = strings(&["s390", "s390x"]);
    clone_s390.excludes.caps = strings(&["CAP_SYS_ADMIN"]);
    syscalls.push(clone_s390);

    // clone3 passes its flags in memory, where seccomp cannot look: refuse it with ENOSYS so
    // libc falls back to clone, whose flags are checked above.
    syscalls.push(Entry {
        names: names(&["clone3"]),
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: Filter {
            caps: strings(&["CAP_SYS_ADMIN"]),
            ..Filter::default()
        },
        ..Entry::default()
    });

    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        // As Docker's: the x86_64 rules cover i386 programs too (x32 is left out: its
        // compat calls have numbers of their own, and distributions disable it).
        arch_map: if cfg!(target_arch = "x86_64") {
            vec![super::seccomp::ArchMap {
                architecture: "SCMP_ARCH_X86_64".into(),
                sub_architectures: vec!["SCMP_ARCH_X86".into()],
            }]
        } else {
            Vec::new()
        },
        syscalls,
        ..Profile::default()
    }
}
