//! Real behaviour: seccomp and capabilities apply to a thread/process for good, so each test
//! re-runs this test binary as a child process (selecting itself with `--exact`) and does the
//! work there, with `NOOK_SECURITY_TEST_CHILD` telling the child which role it plays.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use super::*;

const ROLE_ENV: &str = "NOOK_SECURITY_TEST_CHILD";
const DONE: &str = "nook-security-child-done";

fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Runs test `name` of this binary in a child process, behind `wrapper` (a command and its
/// arguments, to which the binary path and test arguments are appended).
fn run_child(name: &str, role: &str, wrapper: &[&str], exe: &std::path::Path) -> Output {
    let (program, pre) = match wrapper.split_first() {
        Some((p, rest)) => (p.to_string(), rest.iter().map(|s| s.to_string()).collect()),
        None => (exe.display().to_string(), Vec::<String>::new()),
    };
    let mut cmd = Command::new(program);
    cmd.args(pre);
    if !wrapper.is_empty() {
        cmd.arg(exe);
    }
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role);
    let out = cmd.output().expect("run the test binary as a child");
    eprintln!(
        "--- child {role} stdout:\n{}--- child stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn assert_child_ok(out: &Output) {
    assert!(out.status.success(), "child failed: {:?}", out.status);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(DONE),
        "the child did not run its checks (test name filter?)"
    );
}

fn status_field(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn seccomp_default_filter_in_child() {
    const NAME: &str = "runtime::security::tests::seccomp_default_filter_in_child";
    if child_role().as_deref() != Some("seccomp") {
        let exe = std::env::current_exe().unwrap();
        assert_child_ok(&run_child(NAME, "seccomp", &[], &exe));
        return;
    }

    // Before: keyctl works (or fails for another reason than our filter).
    let before = crate::sys::raw_keyctl_probe();
    let filter = SeccompPolicy::docker_default(&CapabilitySet::docker_default())
        .compile()
        .unwrap();
    set_no_new_privs().unwrap();
    apply_seccomp(&filter).unwrap();

    let err = crate::sys::raw_keyctl_probe().expect_err("keyctl must be refused");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EPERM),
        "keyctl: {err} (before: {before:?})"
    );
    assert!(nix::unistd::getpid().as_raw() > 0);
    // Seccomp and capabilities are per thread: libtest may run us on a thread of its own.
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert_eq!(status_field(&status, "Seccomp"), 2);
    assert_eq!(status_field(&status, "NoNewPrivs"), 1);
    // Namespace-making calls are refused without CAP_SYS_ADMIN.
    let unshare = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS);
    assert_eq!(unshare, Err(nix::errno::Errno::EPERM));
    // Threads still start: glibc's clone3 gets ENOSYS and falls back to clone.
    let answer = std::thread::spawn(|| 42).join().unwrap();
    assert_eq!(answer, 42);
    // And programs still run (fork + exec), inheriting the filter.
    let out = Command::new("grep")
        .args(["^Seccomp:", "/proc/self/status"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Seccomp:\t2");
    println!("{DONE}");
}

/// Copies the test binary where the unprivileged user can run it.
fn copy_exe_for(user_readable_dir: &std::path::Path) -> io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let copy = user_readable_dir.join("nook-security-test");
    std::fs::copy(&exe, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(user_readable_dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}

/// The wrapper that makes the child root of a new user namespace owned by `nooktest`, or why
/// that is not possible here.
fn userns_wrapper() -> Result<Vec<&'static str>, String> {
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("unshare") {
        return Err("util-linux unshare is missing".into());
    }
    if nix::unistd::geteuid().is_root() {
        if !have("setpriv") {
            return Err("setpriv is missing".into());
        }
        if nix::unistd::User::from_name("nooktest")
            .ok()
            .flatten()
            .is_none()
        {
            return Err("user nooktest does not exist".into());
        }
        Ok(vec![
            "setpriv",
            "--reuid=nooktest",
            "--regid=nooktest",
            "--init-groups",
            "unshare",
            "--user",
            "--map-root-user",
        ])
    } else {
        Ok(vec!["unshare", "--user", "--map-root-user"])
    }
}

#[test]
fn capabilities_in_child_user_namespace() {
    const NAME: &str = "runtime::security::tests::capabilities_in_child_user_namespace";
    match child_role().as_deref() {
        Some("caps") => {}
        Some(_) => return,
        None => {
            let wrapper = match userns_wrapper() {
                Ok(w) => w,
                Err(why) => {
                    eprintln!("SKIPPED: {why}");
                    return;
                }
            };
            let dir = tempfile::tempdir().unwrap();
            let exe = copy_exe_for(dir.path()).unwrap();
            assert_child_ok(&run_child(NAME, "caps", &wrapper, &exe));
            return;
        }
    }

    // Root of a fresh user namespace: every capability, in every set but ambient.
    assert_eq!(nix::unistd::geteuid().as_raw(), 0);
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert_eq!(
        status_field(&status, "CapEff"),
        CapabilitySet::all_supported().mask()
    );

    let set = CapabilitySet::resolve(&[], &[], false).unwrap();
    apply_capabilities(&set, 0).unwrap();
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert_eq!(status_field(&status, "CapEff"), 0xa80425fb);
    assert_eq!(status_field(&status, "CapEff"), set.mask());
    assert_eq!(status_field(&status, "CapPrm"), set.mask());
    assert_eq!(status_field(&status, "CapBnd"), set.mask());
    assert_eq!(status_field(&status, "CapInh"), 0);
    assert_eq!(status_field(&status, "CapAmb"), 0);

    // Without CAP_SYS_ADMIN the kernel itself refuses a mount namespace.
    assert!(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_err());

    // After execve as uid 0 the program has exactly the set (as `docker run` shows it), and
    // the full sequence with seccomp works.
    let filter = SeccompPolicy::docker_default(&set).compile().unwrap();
    set_no_new_privs().unwrap();
    apply_seccomp(&filter).unwrap();
    let out = Command::new("cat")
        .arg("/proc/self/status")
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status_field(&status, "CapEff"), 0xa80425fb);
    assert_eq!(status_field(&status, "CapBnd"), 0xa80425fb);
    assert_eq!(status_field(&status, "NoNewPrivs"), 1);
    assert_eq!(status_field(&status, "Seccomp"), 2);

    // A smaller set cannot grow back.
    let small = CapabilitySet::resolve(&["CHOWN".into()], &["ALL".into()], false).unwrap();
    apply_capabilities(&small, 0).unwrap();
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert_eq!(status_field(&status, "CapEff"), 1);
    let err = apply_capabilities(&set, 0).unwrap_err();
    assert!(err.to_string().contains("CAP_DAC_OVERRIDE"), "{err}");
    println!("{DONE}");
}

/// What `nook exec` relies on: with the container's capabilities, root of the same user
/// namespace reaches a dumpable process's `/proc/PID/exe` and descriptors (the capability
/// sets are equal, so the kernel's subset check passes), but not those of a process that made
/// itself non-dumpable.
#[test]
fn a_non_dumpable_process_is_out_of_reach_of_the_containers_root() {
    const NAME: &str =
        "runtime::security::tests::a_non_dumpable_process_is_out_of_reach_of_the_containers_root";
    match child_role().as_deref() {
        Some("dumpable") => {}
        Some(_) => return,
        None => {
            let wrapper = match userns_wrapper() {
                Ok(w) => w,
                Err(why) => {
                    eprintln!("SKIPPED: {why}");
                    return;
                }
            };
            let dir = tempfile::tempdir().unwrap();
            let exe = copy_exe_for(dir.path()).unwrap();
            assert_child_ok(&run_child(NAME, "dumpable", &wrapper, &exe));
            return;
        }
    }

    let set = CapabilitySet::docker_default();
    apply_capabilities(&set, 0).unwrap();
    // Two targets with the same capabilities, each blocked on a pipe until this process
    // lets go, after saying (on another) that it is ready.
    let spawn = |non_dumpable: bool| {
        let (gate_r, gate_w) = crate::sys::pipe().unwrap();
        let (ready_r, ready_w) = crate::sys::pipe().unwrap();
        match crate::sys::fork_single_threaded().unwrap() {
            crate::sys::Forked::Child => {
                drop(gate_w);
                if non_dumpable {
                    set_dumpable(false).unwrap();
                }
                let _ = nix::unistd::write(&ready_w, b"r");
                let mut byte = [0u8; 1];
                let _ = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&gate_r), &mut byte);
                crate::sys::exit_now(0);
            }
            crate::sys::Forked::Parent { child } => {
                drop(ready_w);
                let mut byte = [0u8; 1];
                nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&ready_r), &mut byte).unwrap();
                (child, gate_w)
            }
        }
    };
    let (hidden, hidden_gate) = spawn(true);
    let (open, open_gate) = spawn(false);

    let reach = |pid: i32| {
        (
            std::fs::read_link(format!("/proc/{pid}/exe")),
            std::fs::read_dir(format!("/proc/{pid}/fd")).and_then(|d| {
                d.flatten()
                    .map(|e| std::fs::read_link(e.path()))
                    .collect::<io::Result<Vec<_>>>()
            }),
        )
    };
    let (exe, fds) = reach(open);
    assert!(
        exe.is_ok(),
        "control: a dumpable target is reachable: {exe:?}"
    );
    assert!(
        fds.is_ok(),
        "control: its descriptors are reachable: {fds:?}"
    );
    let (exe, fds) = reach(hidden);
    assert_eq!(
        exe.as_ref().map_err(|e| e.raw_os_error()),
        Err(Some(libc::EACCES)),
        "/proc/PID/exe of a non-dumpable process: {exe:?}"
    );
    assert!(fds.is_err(), "its descriptors: {fds:?}");

    drop((hidden_gate, open_gate));
    for pid in [hidden, open] {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    println!("{DONE}");
}
