//! Isolation, tested from inside a container the way a hostile process would try it. Each
//! test runs `probe` (harness/probe.rs, a static program in the `isolation-tools` image) in
//! containers of the test user and checks every attempt against what Docker's defaults
//! allow, naming the case when one does not hold. One test per concern area; each ends by
//! printing `isolation cases (AREA): N held`, the figures the README's Reliability section
//! records.
//!
//! Containers use `--network none`: every mode but `host` gives the container a network
//! namespace of its own, which is all these cases depend on.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, chown};

use crate::harness::context::{nook_bin, pid1_and_monitor, running_as_root, test_user_name};
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_success, require};

/// The cases of one concern area: each is checked, counted, and reported together.
struct Cases {
    area: &'static str,
    held: usize,
    /// Known exceptions the README documents, checked so that a change shows.
    documented: usize,
    broken: Vec<String>,
}

impl Cases {
    fn new(area: &'static str) -> Cases {
        Cases {
            area,
            held: 0,
            documented: 0,
            broken: Vec::new(),
        }
    }

    /// A documented exception (not counted as held): `as_documented` says whether it still
    /// behaves as the README says.
    fn documented(&mut self, case: &str, as_documented: bool, seen: &str) {
        if as_documented {
            self.documented += 1;
        } else {
            self.broken.push(format!(
                "{case}: no longer as the README documents it (update it): got `{seen}`"
            ));
        }
    }

    /// One case: `held` says whether isolation held; `seen` is what the probe reported.
    fn check(&mut self, case: &str, held: bool, seen: &str) {
        if held {
            self.held += 1;
        } else {
            self.broken.push(format!("{case}: got `{seen}`"));
        }
    }

    /// One case whose result must be exactly `want` (`ENOENT`, `ok 0 bytes`, …).
    fn expect(&mut self, case: &str, seen: Option<&String>, want: &str) {
        let seen = seen.map(String::as_str).unwrap_or("(no result)");
        if seen == want {
            self.held += 1;
        } else {
            self.broken
                .push(format!("{case}: got `{seen}`, want `{want}`"));
        }
    }

    /// One case that must fail, whatever the error (`ESTALE` or `EPERM` alike).
    fn refused(&mut self, case: &str, seen: Option<&String>) {
        let seen = seen.map(String::as_str).unwrap_or("(no result)");
        let held = !seen.starts_with("ok") && seen != "(no result)";
        self.check(case, held, seen);
    }

    fn finish(self) {
        let documented = match self.documented {
            0 => String::new(),
            n => format!(", {n} documented exception(s) as documented"),
        };
        println!(
            "isolation cases ({}): {} held{documented}",
            self.area, self.held
        );
        assert!(
            self.broken.is_empty(),
            "isolation ({}) broken in {} case(s), {} held:\n  {}",
            self.area,
            self.broken.len(),
            self.held,
            self.broken.join("\n  ")
        );
    }
}

fn setup() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::isolation_tools().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

/// `nook run --rm --network none OPTIONS IMAGE sh -c SCRIPT` (OPTIONS may name another
/// network): the probe's output.
fn in_container(ctx: &TestContext, image: &str, options: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    if !options.contains(&"--network") {
        args.extend(["--network", "none"]);
    }
    args.extend_from_slice(options);
    args.extend([image, "sh", "-c", script]);
    assert_success(&ctx.nook(&args))
}

/// The probe's `CASE: RESULT` lines.
fn results(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(case, result)| (case.to_string(), result.to_string()))
        .collect()
}

/// The `fd N -> TARGET` lines of `probe fds`, as (N, TARGET).
fn descriptors(out: &str) -> Vec<(u32, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("fd "))
        .filter_map(|l| l.split_once(" -> "))
        .map(|(n, target)| (n.parse().unwrap(), target.to_string()))
        .collect()
}

/// The standard output of a command that may fail because isolation is broken: the failure
/// becomes the case's result instead of a panic that would hide the other cases.
fn outcome(out: &Output) -> String {
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        format!(
            "({}) {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

/// Runs `nook ARGS` as the test user with descriptor 7 open on `dir` (a host directory), as
/// a shell script or a CI runner might leave one open; its [`outcome`].
fn nook_holding_fd_7(ctx: &TestContext, dir: &Path, args: &[&str]) -> String {
    let out = ctx
        .command_as_user("/bin/sh")
        .args(["-c", r#"exec 7<"$1"; shift; exec "$@""#, "sh"])
        .arg(dir)
        .arg(nook_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    outcome(&out)
}

/// Docker's default seccomp policy (moby `profiles/seccomp/default.json`) for a container
/// root with Docker's default capabilities: what each probe case gives under it. Written from
/// Docker's profile, not from nook's code, so a change to nook's policy that lets a call
/// through fails here.
const DOCKER_DEFAULT_SECCOMP: &[(&str, &str)] = &[
    // In the profile's unconditional allow list, or allowed with these arguments or
    // capabilities (CAP_SYS_CHROOT is in Docker's default set; ptrace and process_vm_readv
    // are allowed on kernels since 4.8; personality only for the listed personas).
    ("getpid", "ok"),
    ("personality(query)", "ok"),
    ("socket(AF_INET)", "ok"),
    ("socket(AF_UNIX)", "ok"),
    ("clone(no namespaces)", "ok"),
    ("ptrace(TRACEME)", "ok"),
    ("process_vm_readv(self)", "ok"),
    ("chroot(.)", "ok"),
    ("mknodat(fifo)", "ok"),
    ("adjtimex(read)", "ok"),
    ("memfd_create", "ok"),
    ("name_to_handle_at(/dev)", "ok"),
    // CAP_SYS_ADMIN-gated in the profile: refused with its defaultErrnoRet, EPERM.
    ("mount(tmpfs on /tmp)", "EPERM"),
    ("umount2(/tmp)", "EPERM"),
    ("fsopen", "EPERM"),
    ("fspick", "EPERM"),
    ("open_tree", "EPERM"),
    ("move_mount", "EPERM"),
    ("mount_setattr", "EPERM"),
    ("unshare(CLONE_NEWUSER)", "EPERM"),
    ("unshare(CLONE_NEWNS)", "EPERM"),
    ("clone(CLONE_NEWUSER)", "EPERM"),
    ("setns", "EPERM"),
    ("sethostname", "EPERM"),
    ("setdomainname", "EPERM"),
    ("quotactl", "EPERM"),
    ("fanotify_init", "EPERM"),
    ("lookup_dcookie", "EPERM"),
    ("bpf(MAP_CREATE)", "EPERM"),
    ("perf_event_open", "EPERM"),
    // clone3's flags are out of seccomp's sight: ENOSYS, so libc falls back to clone.
    ("clone3", "ENOSYS"),
    // Not in the profile at all.
    ("pivot_root", "EPERM"),
    ("kexec_load", "EPERM"),
    ("kexec_file_load", "EPERM"),
    ("swapon", "EPERM"),
    ("swapoff", "EPERM"),
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("request_key", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("io_uring_setup", "EPERM"),
    ("personality(ADDR_NO_RANDOMIZE)", "EPERM"),
    ("socket(AF_ALG)", "EPERM"),
    ("socket(AF_VSOCK)", "EPERM"),
    ("ustat", "EPERM"),
    ("sysfs", "EPERM"),
    // Gated by capabilities outside Docker's default set.
    ("init_module", "EPERM"),
    ("finit_module", "EPERM"),
    ("delete_module", "EPERM"),
    ("reboot(CAD_OFF)", "EPERM"),
    ("acct", "EPERM"),
    ("clock_settime", "EPERM"),
    ("settimeofday", "EPERM"),
    ("syslog(size)", "EPERM"),
    ("vhangup", "EPERM"),
    ("iopl", "EPERM"),
    ("ioperm", "EPERM"),
    ("set_mempolicy", "EPERM"),
    ("kcmp", "EPERM"),
    ("pidfd_getfd", "EPERM"),
    ("open_by_handle_at", "EPERM"),
];

#[test]
fn seccomp_denies_what_dockers_default_policy_denies() {
    let (ctx, image) = setup();
    let mut cases = Cases::new("seccomp");
    let seen = results(&in_container(&ctx, &image, &[], "probe syscalls"));
    for (case, want) in DOCKER_DEFAULT_SECCOMP {
        // ioperm and iopl exist only on x86; elsewhere the probe reports ENOSYS itself.
        let want = match *case {
            "iopl" | "ioperm" if !cfg!(target_arch = "x86_64") => "ENOSYS",
            _ => want,
        };
        cases.expect(case, seen.get(*case), want);
    }
    // The i386 entry point (int 0x80, its own numbers) must meet the same policy, or a
    // 64-bit process could go around it. Without IA-32 emulation there is no such door.
    if cfg!(target_arch = "x86_64") {
        let emulated = seen.get("i386 getpid").map(String::as_str) == Some("ok");
        for case in [
            "i386 unshare(CLONE_NEWUSER)",
            "i386 keyctl",
            "i386 init_module",
        ] {
            let want = if emulated { "EPERM" } else { "signal 11" };
            cases.expect(case, seen.get(case), want);
        }
    }
    let known: Vec<&str> = DOCKER_DEFAULT_SECCOMP.iter().map(|(c, _)| *c).collect();
    let unlisted: Vec<&String> = seen
        .keys()
        .filter(|c| !known.contains(&c.as_str()) && !c.starts_with("i386 "))
        .collect();
    assert!(
        unlisted.is_empty(),
        "probe cases missing from the Docker table: {unlisted:?}"
    );

    // Proof that the filter, not the kernel, is what refuses these: unconfined, they work
    // (keys, user namespaces and personas are open to unprivileged processes).
    let unconfined = results(&in_container(
        &ctx,
        &image,
        &["--security-opt", "seccomp=unconfined"],
        "probe syscalls",
    ));
    let mut reasons = vec![
        "keyctl",
        "unshare(CLONE_NEWUSER)",
        "personality(ADDR_NO_RANDOMIZE)",
    ];
    if cfg!(target_arch = "x86_64") && seen.get("i386 getpid").map(String::as_str) == Some("ok") {
        reasons.push("i386 keyctl");
    }
    for case in reasons {
        cases.expect(
            &format!("{case} without the filter (the filter is the reason)"),
            unconfined.get(case),
            "ok",
        );
    }
    cases.finish();
}

/// The `Cap*`, `NoNewPrivs` and `Seccomp` lines and `uids` of `probe status`.
fn status(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn capabilities_no_new_privs_and_setuid_binaries() {
    let (ctx, image) = setup();
    let mut cases = Cases::new("capabilities and setuid");
    let docker_caps = "00000000a80425fb".to_string();
    let none = "0000000000000000".to_string();

    let root = status(&in_container(&ctx, &image, &[], "probe status"));
    cases.expect("root: ids", root.get("uids"), "0 0 0");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        cases.expect(
            &format!("root: {set} is Docker's set"),
            root.get(set),
            &docker_caps,
        );
    }
    for set in ["CapInh", "CapAmb"] {
        cases.expect(&format!("root: {set} empty"), root.get(set), &none);
    }
    cases.expect("root: no_new_privs", root.get("NoNewPrivs"), "1");
    cases.expect("root: seccomp filter", root.get("Seccomp"), "2");

    let user = status(&in_container(&ctx, &image, &["-u", "1000"], "probe status"));
    cases.expect("user 1000: ids", user.get("uids"), "1000 1000 1000");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        cases.expect(&format!("user 1000: {set} empty"), user.get(set), &none);
    }
    cases.expect("user 1000: CapBnd", user.get("CapBnd"), &docker_caps);
    cases.expect("user 1000: no_new_privs", user.get("NoNewPrivs"), "1");

    // /bin/probe-suid is setuid root (04755, 0:0) in the image: under no_new_privs the bit
    // is ignored, so user 1000 stays user 1000 with nothing.
    let suid = status(&in_container(
        &ctx,
        &image,
        &["-u", "1000"],
        "probe-suid status",
    ));
    cases.expect(
        "setuid binary as user 1000: ids unchanged",
        suid.get("uids"),
        "1000 1000 1000",
    );
    for set in ["CapEff", "CapPrm"] {
        cases.expect(
            &format!("setuid binary as user 1000: {set} empty"),
            suid.get(set),
            &none,
        );
    }

    // --privileged drops no_new_privs and seccomp, so the setuid bit works; it makes user 1000
    // the container's root and nothing more: the capabilities of --privileged root (every one
    // the user namespace can hold), which reach nothing the kernel keeps for the initial user
    // namespace.
    let privileged_root = status(&in_container(
        &ctx,
        &image,
        &["--privileged"],
        "probe status",
    ));
    let out = in_container(
        &ctx,
        &image,
        &["--privileged", "-u", "1000"],
        "probe-suid status; probe-suid syscalls",
    );
    let escalated = status(&out);
    cases.expect(
        "privileged setuid: effective uid 0",
        escalated.get("uids"),
        "1000 0 0",
    );
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        let root_set = privileged_root.get(set).cloned().unwrap_or_default();
        cases.expect(
            &format!("privileged setuid: {set} is privileged root's"),
            escalated.get(set),
            &root_set,
        );
    }
    let seen = results(&out);
    for case in [
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "clock_settime",
        "settimeofday",
        "swapon",
        "swapoff",
        "acct",
        "syslog(size)",
        "vhangup",
        "iopl",
        "ioperm",
        // Root of the container may restart or halt only its own PID namespace; CAD_OFF, a
        // setting of the machine's, is refused.
        "reboot(CAD_OFF)",
    ] {
        cases.refused(&format!("privileged setuid root: {case}"), seen.get(case));
    }
    cases.finish();
}

#[test]
fn host_processes_are_invisible_and_unreachable() {
    let (ctx, image) = setup();
    let mut cases = Cases::new("processes");
    // A host process of the test user itself: the same uid as container root, so only the
    // PID namespace keeps the container from it. Its name tells it apart.
    let marker = ctx.root().join("nook-marker");
    symlink("/bin/sleep", &marker).unwrap();
    let mut host = ctx.command_as_user(&marker).arg("300").spawn().unwrap();
    assert_success(&ctx.nook(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        &image,
        "sleep",
        "300",
    ]));
    let (pid1, monitor) = pid1_and_monitor(&ctx, "victim");
    let host_pid = host.id() as i32;

    let seen = assert_success(&ctx.nook(&["exec", "victim", "probe", "pids"]));
    let visible: Vec<(u32, String)> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("pid "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, comm)| (n.parse().unwrap(), comm.to_string()))
        .collect();
    cases.check(
        "only the container's processes are visible",
        visible
            .iter()
            .all(|(_, comm)| comm == "sleep" || comm == "probe"),
        &seen,
    );
    cases.check(
        "PID 1 is the container's command",
        visible.first() == Some(&(1, "sleep".to_string())),
        &seen,
    );
    for (who, pid) in [
        ("host process", host_pid),
        ("monitor", monitor),
        ("PID 1's host number", pid1),
    ] {
        // Host numbers mean nothing inside; none may happen to be a container process.
        assert!(
            visible.iter().all(|(n, _)| *n as i32 != pid),
            "host pid {pid} collides with a container pid: {seen}"
        );
        let out = results(&assert_success(&ctx.nook(&[
            "exec",
            "victim",
            "probe",
            "reach",
            &pid.to_string(),
        ])));
        for (attempt, want) in [
            (format!("kill({pid}, 0)"), "ESRCH"),
            (format!("ptrace(ATTACH, {pid})"), "ESRCH"),
            (format!("pidfd_open({pid})"), "ESRCH"),
            (format!("readlink /proc/{pid}/exe"), "ENOENT"),
        ] {
            cases.expect(&format!("{who}: {attempt}"), out.get(&attempt), want);
        }
    }
    // kill(-1, SIGKILL) inside reaches every process the caller may signal — in its PID
    // namespace only.
    let _ = ctx.nook(&["exec", "victim", "kill", "-9", "-1"]);
    let alive = |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    cases.check(
        "kill(-1, SIGKILL) inside spares the host process",
        alive(host_pid),
        "killed",
    );
    cases.check(
        "kill(-1, SIGKILL) inside spares the monitor",
        alive(monitor),
        "killed",
    );

    let _ = host.kill();
    let _ = host.wait();
    assert_success(&ctx.nook(&["rm", "-f", "victim"]));
    cases.finish();
}

#[test]
fn host_files_outside_mounts_are_unreachable() {
    let (ctx, image) = setup();
    let mut cases = Cases::new("host files");
    // Host files the test user may read, so only isolation keeps them from the container:
    // `outside/secret`, and `shared/` (bound at /data) holding links that point at it.
    let outside = ctx.root().join("outside");
    let shared = ctx.root().join("shared");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(&shared).unwrap();
    let secret = outside.join("secret");
    fs::write(&secret, "host secret\n").unwrap();
    fs::write(shared.join("inside"), "bound\n").unwrap();
    symlink(&secret, shared.join("escape-abs")).unwrap();
    symlink("../outside/secret", shared.join("escape-rel")).unwrap();
    if running_as_root() {
        chown(&shared, Some(ctx.uid()), Some(ctx.gid())).unwrap();
    }
    let bind = format!("{}:/data", shared.display());
    let host = secret.to_str().unwrap();

    for (mode, options) in [
        ("default", vec!["-v", bind.as_str()]),
        ("privileged", vec!["--privileged", "-v", bind.as_str()]),
    ] {
        let script = format!(
            "probe open /data/inside {host} /proc/1/root{host} /proc/self/root{host} \
             /data/../outside/secret /data/escape-abs /data/escape-rel; \
             probe shocker /data/inside; probe chroot-escape {host}"
        );
        let seen = results(&in_container(&ctx, &image, &options, &script));
        cases.expect(
            &format!("{mode}: the bind mount itself is readable (control)"),
            seen.get("open /data/inside"),
            "ok 6 bytes",
        );
        for path in [
            host.to_string(),
            format!("/proc/1/root{host}"),
            format!("/proc/self/root{host}"),
            "/data/../outside/secret".to_string(),
            "/data/escape-abs".to_string(),
            "/data/escape-rel".to_string(),
        ] {
            cases.expect(
                &format!("{mode}: open {path}"),
                seen.get(&format!("open {path}")),
                "ENOENT",
            );
        }
        // Docker's 2014 "shocker": a forged handle for the host file system's root.
        cases.refused(
            &format!("{mode}: open_by_handle_at of the host file system's root"),
            seen.get("open_by_handle_at(forged root of /data/inside)"),
        );
        // After pivot_root the old root is gone: climbing out of a chroot ends at the
        // container's root.
        cases.expect(
            &format!("{mode}: the host file after a chroot breakout"),
            seen.get(&format!("after breakout, {host}")),
            "ENOENT",
        );
    }

    // The host's root file system is not mounted, and the only host paths the mount table
    // names are the store's (overlay's upper and work directories, the /etc files) and the
    // bind's source — the same disclosure Docker makes about /var/lib/docker.
    let mountinfo = in_container(&ctx, &image, &["-v", &bind], "cat /proc/self/mountinfo");
    let root_dev = {
        use std::os::unix::fs::MetadataExt;
        let dev = fs::metadata("/").unwrap().dev();
        format!(
            "{}:{}",
            nix::sys::stat::major(dev),
            nix::sys::stat::minor(dev)
        )
    };
    let host_root_mounted = mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(2) == Some(&root_dev.as_str()) && f.get(3) == Some(&"/")
    });
    cases.check(
        "the host's root file system is not mounted",
        !host_root_mounted,
        &mountinfo,
    );
    let prefix = ctx.root().to_str().unwrap();
    let named: Vec<&str> = mountinfo
        .match_indices(prefix)
        .map(|(i, _)| mountinfo[i..].split([' ', ',', ':']).next().unwrap())
        .collect();
    let unexpected: Vec<&&str> = named
        .iter()
        .filter(|p| !Path::new(p).starts_with(&ctx.data) && !Path::new(p).starts_with(&shared))
        .collect();
    cases.check(
        "mountinfo names no host path but the store's and the bind source",
        unexpected.is_empty() && !named.is_empty(),
        &format!("{unexpected:?}"),
    );

    // Descriptors: whatever the caller of nook left open (fd 7, a host directory here) must
    // not reach the container, for PID 1, an exec'd process, or init.
    let only_standard = |out: &str| descriptors(out).iter().all(|(n, _)| *n <= 2);
    let out = nook_holding_fd_7(
        &ctx,
        &outside,
        &["run", "--rm", "--network", "none", &image, "probe", "fds"],
    );
    cases.check(
        "run: the command holds only fds 0-2",
        only_standard(&out),
        &out,
    );
    // init (`--init`) is nook itself and never execs, so it must let go of what it got, and
    // be no more than the container's root: a container allowed to ptrace (SYS_PTRACE) can
    // look into it and take it over.
    nook_holding_fd_7(
        &ctx,
        &outside,
        &[
            "run",
            "-d",
            "--name",
            "initbox",
            "--network",
            "none",
            "--init",
            "--cap-add",
            "SYS_PTRACE",
            &image,
            "sleep",
            "300",
        ],
    );
    let out = outcome(&ctx.nook(&["exec", "initbox", "probe", "fds", "1"]));
    cases.check(
        "run --init: init holds only fds 0-2 (seen through /proc/1/fd)",
        only_standard(&out) && !descriptors(&out).is_empty(),
        &out,
    );
    let out = outcome(&ctx.nook(&[
        "exec",
        "initbox",
        "grep",
        "-E",
        "^(CapEff|CapBnd|NoNewPrivs|Seccomp):",
        "/proc/1/status",
        "/proc/self/status",
    ]));
    let of = |prefix: &str| -> Vec<&str> {
        out.lines().filter_map(|l| l.strip_prefix(prefix)).collect()
    };
    cases.check(
        "run --init: init has the command's capabilities, no_new_privs and seccomp",
        of("/proc/1/status:").len() == 4 && of("/proc/1/status:") == of("/proc/self/status:"),
        &out,
    );
    // Its executable is the host's nook: readable, as Docker's docker-init is inside its
    // containers; never writable from here (not the user's file in this test, and busy
    // while any nook runs it).
    let seen = results(&outcome(&ctx.nook(&[
        "exec",
        "initbox",
        "sh",
        "-c",
        "probe reach 1; probe write /proc/1/exe",
    ])));
    let exe = seen.get("readlink /proc/1/exe");
    cases.documented(
        "run --init: init's executable (the host's nook) is readable",
        exe.is_some_and(|e| e.starts_with("ok /")),
        &format!("{exe:?}"),
    );
    cases.refused(
        "run --init: writing init's executable",
        seen.get("write /proc/1/exe"),
    );
    let _ = ctx.nook(&["rm", "-f", "initbox"]);

    // `probe watch-exe` opens /proc/PID/exe of every new process while nook execs commands
    // into its container: a `nook exec` child is in the container's PID namespace from its
    // fork until its exec, running the host's nook binary and holding the caller's
    // descriptors (the window of runc's CVE-2019-5736). --privileged root holds every
    // capability of the user namespace, so only the initial one's protects that child.
    for (mode, privileged) in [("default", false), ("privileged", true)] {
        let mut args = vec!["run", "-d", "--name", "victim", "--network", "none"];
        if privileged {
            args.push("--privileged");
        }
        args.extend([
            image.as_str(),
            "sh",
            "-c",
            "probe watch-exe 4 > /tmp/watch.log 2>&1; sleep 300",
        ]);
        assert_success(&ctx.nook(&args));
        let out = nook_holding_fd_7(&ctx, &outside, &["exec", "victim", "probe", "fds"]);
        cases.check(
            &format!("{mode}: exec: the command holds only fds 0-2"),
            only_standard(&out),
            &out,
        );
        let started = Instant::now();
        let mut execs = 0;
        while started.elapsed() < Duration::from_secs(3) {
            // Commands that live a moment, so the watcher sees them once they run their own
            // program (proof that it watches).
            nook_holding_fd_7(&ctx, &outside, &["exec", "victim", "sleep", "0.1"]);
            execs += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let log = loop {
            let log = outcome(&ctx.nook(&["exec", "victim", "cat", "/tmp/watch.log"]));
            if log.contains("watch-exe: opened") || Instant::now() > deadline {
                break log;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let opened: u32 = log
            .lines()
            .find_map(|l| l.strip_prefix("watch-exe: opened "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        cases.check(
            &format!(
                "{mode}: exec: nothing in the container opens a `nook exec` child's host \
                 executable ({execs} execs, {opened} executables opened)"
            ),
            !log.contains("host executable") && opened > 0,
            &log,
        );
        assert_success(&ctx.nook(&["rm", "-f", "victim"]));
    }

    // An abstract Unix socket of the host (X11's kind) lives in the host's network namespace.
    let name = format!("nook-isolation-{}", std::process::id());
    let _listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    let seen = results(&in_container(
        &ctx,
        &image,
        &[],
        &format!("probe abstract {name}"),
    ));
    cases.expect(
        "the host's abstract Unix socket",
        seen.get(&format!("connect @{name}")),
        "ECONNREFUSED",
    );
    cases.finish();
}

/// Docker's masked paths (moby `daemon/pkg/oci/defaults.go`); each CPU's
/// `thermal_throttle` directory is added where the host has one.
const DOCKER_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

#[test]
fn masked_and_read_only_kernel_paths() {
    let (ctx, image) = setup();
    let mut cases = Cases::new("kernel paths");
    let mut masked: Vec<String> = DOCKER_MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    for cpu in fs::read_dir("/sys/devices/system/cpu").unwrap().flatten() {
        let path = cpu.path().join("thermal_throttle");
        if path.exists() {
            masked.push(path.display().to_string());
        }
    }
    // Only what this host's kernel has can be read, or masked.
    let (present, absent): (Vec<String>, Vec<String>) =
        masked.into_iter().partition(|p| Path::new(p).exists());
    println!("masked paths this kernel lacks: {absent:?}");
    let writable_on_host = [
        "/proc/sys/kernel/domainname",
        "/proc/sysrq-trigger",
        "/proc/irq/default_smp_affinity",
        "/sys/kernel/uevent_helper",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ];
    let writes: Vec<&str> = writable_on_host
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    let script = format!(
        "probe open {}; probe write {}; probe mknod-block /tmp/sda; ls /dev",
        present.join(" "),
        writes.join(" ")
    );
    let out = in_container(&ctx, &image, &[], &script);
    let seen = results(&out);
    for path in &present {
        let got = seen.get(&format!("open {path}"));
        let empty = got.is_some_and(|g| g == "ok 0 bytes" || g == "ok 0 entries");
        cases.check(
            &format!("{path} reads as empty"),
            empty,
            &format!("{got:?}"),
        );
    }
    for path in &writes {
        cases.refused(&format!("write {path}"), seen.get(&format!("write {path}")));
    }
    // A user namespace may not make device nodes: no way to the host's disks.
    cases.expect(
        "mknod of a block device",
        seen.get("mknod-block /tmp/sda"),
        "EPERM",
    );
    let dev: Vec<&str> = out.lines().filter(|l| !l.contains(':')).collect();
    let allowed = [
        "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    let extra: Vec<&&str> = dev.iter().filter(|d| !allowed.contains(d)).collect();
    cases.check(
        "/dev holds Docker's devices only",
        extra.is_empty(),
        &format!("{extra:?}"),
    );

    // With the host's network the container cannot mount a sysfs of its own (that needs a
    // network namespace it owns): nook binds the host's /sys instead, and every mount under
    // it must then be read-only too, with the masks on top.
    let out = in_container(
        &ctx,
        &image,
        &["--network", "host"],
        "probe open /sys/firmware /proc/interrupts; grep ' /sys' /proc/self/mountinfo",
    );
    let seen = results(&out);
    let sys_mounts: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|m| m.starts_with("/sys"))
        })
        .collect();
    let writable: Vec<&&str> = sys_mounts
        .iter()
        .filter(|l| {
            !l.split_whitespace()
                .nth(5)
                .is_some_and(|o| o.split(',').any(|o| o == "ro"))
        })
        .collect();
    cases.check(
        "--network host: every mount under /sys is read-only",
        !sys_mounts.is_empty() && writable.is_empty(),
        &format!("{writable:?}"),
    );
    for path in ["/sys/firmware", "/proc/interrupts"] {
        if Path::new(path).exists() {
            let got = seen.get(&format!("open {path}"));
            let empty = got.is_some_and(|g| g == "ok 0 bytes" || g == "ok 0 entries");
            cases.check(
                &format!("--network host: {path} reads as empty"),
                empty,
                &format!("{got:?}"),
            );
        }
    }

    // --privileged lifts the masks and the read-only /proc paths, as in Docker, but the
    // kernel's own settings still belong to the initial user namespace.
    let host_wide: Vec<&str> = ["/proc/sys/kernel/panic", "/proc/sysrq-trigger"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    let seen = results(&in_container(
        &ctx,
        &image,
        &["--privileged"],
        &format!("probe write {}", host_wide.join(" ")),
    ));
    for path in host_wide {
        cases.refused(
            &format!("privileged: write {path}"),
            seen.get(&format!("write {path}")),
        );
    }
    cases.finish();
}

/// The first id of the test user's range in `file` (/etc/subuid or /etc/subgid).
fn first_subordinate_id(ctx: &TestContext, file: &str) -> u32 {
    let name = test_user_name();
    let uid = ctx.uid().as_raw().to_string();
    let text = fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{uid}:")))
        .unwrap_or_else(|| panic!("no range for the test user in {file}"));
    line.split(':').nth(1).unwrap().parse().unwrap()
}

#[test]
fn container_root_reads_no_more_than_its_user() {
    if !require(
        running_as_root(),
        "files owned by root and by other users are made as root",
    ) {
        return;
    }
    let (ctx, image) = setup();
    let mut cases = Cases::new("other users' files");
    let (uid, gid) = (ctx.uid(), ctx.gid());
    let sub = first_subordinate_id(&ctx, "/etc/subuid");
    let dir = ctx.root().join("files");
    fs::create_dir(&dir).unwrap();
    chown(&dir, Some(uid), Some(gid)).unwrap();
    // (name, owner, group, mode, readable by the user on the host)
    let files: [(&str, u32, u32, u32, bool); 7] = [
        ("mine", uid.as_raw(), gid.as_raw(), 0o600, true),
        ("root-only", 0, 0, 0o600, false),
        ("other-user", 4242, 4242, 0o600, false),
        // Outside the user's subordinate range: somebody else's ids.
        ("other-range", sub + 200_000, sub + 200_000, 0o600, false),
        // The user's own subordinate ids (container user 1): theirs to read.
        ("own-range", sub, sub, 0o600, false),
        ("group-readable", 0, gid.as_raw(), 0o640, true),
        // Open to everyone except the user's group.
        ("group-denied", 0, gid.as_raw(), 0o604, false),
    ];
    for (name, owner, group, mode, _) in files {
        let path = dir.join(name);
        fs::write(&path, format!("{name}\n")).unwrap();
        chown(
            &path,
            Some(Uid::from_raw(owner)),
            Some(Gid::from_raw(group)),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    // What the user could read on the host: the yardstick.
    for (name, _, _, _, readable) in files {
        let out = ctx.run_as_user("/bin/cat", &[dir.join(name).to_str().unwrap()]);
        assert_eq!(
            out.status.success(),
            readable,
            "host baseline for {name}: {out:?}"
        );
    }
    let bind = format!("{}:/files", dir.display());
    let paths: Vec<String> = files.iter().map(|f| format!("/files/{}", f.0)).collect();
    let script = format!(
        "probe open {all}; probe write /files/root-only /files/other-user; \
         probe gid-then-open 1 /files/group-denied",
        all = paths.join(" ")
    );
    let seen = results(&in_container(&ctx, &image, &["-v", &bind], &script));
    let len = |name: &str| format!("ok {} bytes", name.len() + 1);
    for (name, want) in [
        ("mine", len("mine")),
        ("root-only", "EACCES".into()),
        ("other-user", "EACCES".into()),
        ("other-range", "EACCES".into()),
        ("own-range", len("own-range")),
        ("group-readable", len("group-readable")),
        ("group-denied", "EACCES".into()),
    ] {
        cases.expect(
            &format!("container root reads {name}"),
            seen.get(&format!("open /files/{name}")),
            &want,
        );
    }
    for name in ["root-only", "other-user"] {
        cases.expect(
            &format!("container root writes {name}"),
            seen.get(&format!("write /files/{name}")),
            "EACCES",
        );
    }
    // The one thing container root can do that the user cannot: leave the user's group for
    // a subordinate gid (granted by newgidmap), which turns a group-denied 0604 file into an
    // "other"-readable one. Every rootless runtime with subordinate ids shares this; the
    // kernel only keeps such negative group permissions when no other gid is mapped.
    let got = seen.get("open /files/group-denied as gid 1");
    cases.documented(
        "container root reads group-denied after switching to gid 1",
        got == Some(&len("group-denied")),
        &format!("{got:?}"),
    );
    // A container user other than root is a subordinate id: not the owner of the user's own
    // 0600 file.
    let seen = results(&in_container(
        &ctx,
        &image,
        &["-v", &bind, "-u", "1000"],
        "probe open /files/mine",
    ));
    cases.expect(
        "container user 1000 reads mine",
        seen.get("open /files/mine"),
        "EACCES",
    );
    cases.finish();
}
