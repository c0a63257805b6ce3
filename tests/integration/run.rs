//! `nook run` and the container lifecycle, as the unprivileged test user, on images from the
//! loopback registry.

use std::time::{Duration, Instant};

use crate::harness::context::{assert_one_error_line, pid1_and_monitor};
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

fn ctx_with_busybox() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

fn run(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    ctx.nook(&all)
}

#[test]
fn runs_the_command_and_returns_its_status() {
    let (ctx, image) = ctx_with_busybox();
    let out = assert_success(&run(&ctx, &["--rm", &image, "echo", "hello", "world"]));
    assert_eq!(out, "hello world\n");
    let out = run(
        &ctx,
        &["--rm", &image, "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // The image's CMD (sh) with no stdin: exits 0 at once.
    assert_success(&run(&ctx, &["--rm", &image]));
    // --rm left nothing behind.
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

#[test]
fn missing_and_unexecutable_commands_exit_127_and_126_and_leave_no_container() {
    let (ctx, image) = ctx_with_busybox();
    let err = assert_failure(&run(&ctx, &[&image, "no-such-command"]), 127);
    assert_one_error_line(&err, "no-such-command");
    let err = assert_failure(&run(&ctx, &[&image, "/etc/passwd"]), 126);
    assert_one_error_line(&err, "/etc/passwd");
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
    let err = assert_failure(&run(&ctx, &["-u", "nobody-here", &image, "true"]), 125);
    assert_one_error_line(&err, "nobody-here");
    let err = assert_failure(&run(&ctx, &["-v", "/no/such/dir:/x", &image, "true"]), 125);
    assert_one_error_line(&err, "/no/such/dir");
    let err = assert_failure(
        &run(&ctx, &["--pull", "never", "127.0.0.1:1/nothing", "true"]),
        125,
    );
    assert_one_error_line(&err, "127.0.0.1:1/nothing");
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

#[test]
fn run_pulls_a_missing_image_and_keeps_its_output_for_the_container() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    let out = run(&ctx, &["--rm", &image, "echo", "from the container"]);
    let stdout = assert_success(&out);
    assert_eq!(
        stdout, "from the container\n",
        "pull progress belongs on stderr"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Status:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_success(&run(&ctx, &["--rm", "--pull", "always", &image, "true"]));
    let err = assert_failure(&run(&ctx, &["127.0.0.1:1/nothing", "true"]), 125);
    assert_one_error_line(&err, "127.0.0.1:1/nothing");
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

#[test]
fn the_container_is_isolated_as_docker_isolates_it() {
    let (ctx, image) = ctx_with_busybox();
    let script = "cat /proc/self/uid_map; echo pid=$$; hostname; \
                  grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; \
                  wc -c < /proc/kcore; echo x > /proc/sys/kernel/domainname && echo WROTE; \
                  ls /dev; cat /etc/hostname; id -u";
    let out = assert_success(&run(&ctx, &["--name", "iso", &image, "sh", "-c", script]));
    let uid = ctx.uid().as_raw();
    let maps: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], ["0", &uid.to_string(), "1"], "{out}");
    assert_eq!(maps[1][0], "1", "{out}");
    assert!(out.contains("pid=1\n"), "{out}");
    let id = assert_success(&ctx.nook(&["ps", "-aq", "--no-trunc"]));
    assert!(
        out.contains(&format!("\n{}\n", &id.trim()[..12])),
        "hostname is the short ID: {out}"
    );
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("\n0\n"), "/proc/kcore is masked: {out}");
    assert!(!out.contains("WROTE"), "/proc/sys is read-only: {out}");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(out.lines().any(|l| l == dev), "/dev/{dev} missing: {out}");
    }
    assert!(
        out.trim_end().ends_with("\n0"),
        "runs as container root: {out}"
    );
    let named = assert_success(&run(
        &ctx,
        &["--rm", "--hostname", "box", &image, "hostname"],
    ));
    assert_eq!(named, "box\n");
}

#[test]
fn the_default_seccomp_policy_denies_what_dockers_denies() {
    let (ctx, image) = ctx_with_busybox();
    // unshare(2) needs CAP_SYS_ADMIN under Docker's policy.
    let out = run(&ctx, &["--rm", &image, "unshare", "-U", "true"]);
    assert_ne!(out.status.code(), Some(0), "unshare was allowed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    assert_success(&run(
        &ctx,
        &[
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            &image,
            "unshare",
            "-U",
            "true",
        ],
    ));
    let caps = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "--cap-drop",
            "ALL",
            &image,
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    ));
    assert!(caps.contains("0000000000000000"), "{caps}");
}

#[test]
fn user_env_workdir_and_entrypoint_options() {
    let (ctx, image) = ctx_with_busybox();
    let out = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "-u",
            "app",
            "-e",
            "GREETING=hi",
            "-w",
            "/tmp/work",
            &image,
            "sh",
            "-c",
            "id -u; id -g; echo $GREETING; pwd; echo $HOME",
        ],
    ));
    assert_eq!(out, "1000\n1000\nhi\n/tmp/work\n/home/app\n");
    let out = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "-u",
            "1234:5678",
            &image,
            "sh",
            "-c",
            "id -u; id -g",
        ],
    ));
    assert_eq!(out, "1234\n5678\n");
    let out = assert_success(&run(
        &ctx,
        &["--rm", "--entrypoint", "echo", &image, "from", "entrypoint"],
    ));
    assert_eq!(out, "from entrypoint\n");
    let env_file = ctx.home.join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            &image,
            "sh",
            "-c",
            "echo $FROM_FILE",
        ],
    ));
    assert_eq!(out, "yes\n");
}

#[test]
fn bind_mounts_volumes_tmpfs_and_read_only_root() {
    let (ctx, image) = ctx_with_busybox();
    let dir = ctx.home.join("shared");
    assert_success(&ctx.run_as_user("/bin/mkdir", &[dir.to_str().unwrap()]));
    let bind = format!("{}:/data", dir.display());
    assert_success(&run(
        &ctx,
        &[
            "--rm",
            "-v",
            &bind,
            &image,
            "sh",
            "-c",
            "echo written > /data/file",
        ],
    ));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join("file")).unwrap();
    assert_eq!(
        meta.uid(),
        ctx.uid().as_raw(),
        "container root writes as the user"
    );
    let ro = format!("{}:/data:ro", dir.display());
    let out = run(
        &ctx,
        &[
            "--rm",
            "-v",
            &ro,
            &image,
            "sh",
            "-c",
            "echo x > /data/other",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert_success(&run(
        &ctx,
        &[
            "--rm",
            "-v",
            "vol1:/v",
            &image,
            "sh",
            "-c",
            "echo kept > /v/f",
        ],
    ));
    assert_eq!(
        assert_success(&run(
            &ctx,
            &["--rm", "-v", "vol1:/v", &image, "cat", "/v/f"]
        )),
        "kept\n"
    );
    let out = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "--tmpfs",
            "/scratch",
            &image,
            "sh",
            "-c",
            "grep /scratch /proc/mounts | cut -d' ' -f3",
        ],
    ));
    assert_eq!(out, "tmpfs\n");
    let out = run(
        &ctx,
        &[
            "--rm",
            "--read-only",
            &image,
            "sh",
            "-c",
            "echo x > /etc/new",
        ],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "read-only root accepted a write"
    );
}

#[test]
fn changes_stay_in_the_container_and_survive_a_restart() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &[
            "--name",
            "keep",
            &image,
            "sh",
            "-c",
            "echo changed > /etc/motd; rm -f /bin/cat",
        ],
    ));
    assert_success(&ctx.nook(&["start", "-a", "keep"]));
    let again = assert_success(&run(
        &ctx,
        &[
            "--rm",
            &image,
            "sh",
            "-c",
            "ls /bin/cat && test ! -e /etc/motd && echo pristine",
        ],
    ));
    assert!(again.contains("pristine"), "the image changed: {again}");
    let layer = &crate::pull::layer_dirs(&ctx, &image)[0];
    assert!(layer.join("bin/cat").exists(), "the layer changed");
}

#[test]
fn detached_containers_log_and_stop() {
    let (ctx, image) = ctx_with_busybox();
    let id = assert_success(&run(
        &ctx,
        &[
            "-d",
            "--name",
            "bg",
            &image,
            "sh",
            "-c",
            "echo started; sleep 30",
        ],
    ));
    assert_eq!(id.trim().len(), 64);
    let ps = assert_success(&ctx.nook(&["ps"]));
    assert!(
        ps.contains(" bg\n") || ps.trim_end().ends_with(" bg"),
        "{ps}"
    );
    assert!(ps.contains("Up "), "{ps}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logs = assert_success(&ctx.nook(&["logs", "bg"]));
        if logs == "started\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // PID 1 ignores SIGTERM (no handler): stop waits its timeout, then kills.
    let started = Instant::now();
    assert_success(&ctx.nook(&["stop", "-t", "1", "bg"]));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let ps = assert_success(&ctx.nook(&["ps", "-a", "--format", "{{.Status}}"]));
    assert!(ps.starts_with("Exited (137)"), "{ps}");
    let code = assert_success(&ctx.nook(&["wait", "bg"]));
    assert_eq!(code.trim(), "137");
    // Restartable, then removable.
    assert_success(&ctx.nook(&["start", "bg"]));
    assert_success(&ctx.nook(&["kill", "bg"]));
    assert_success(&ctx.nook(&["wait", "bg"]));
    assert_success(&ctx.nook(&["rm", "bg"]));
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

#[test]
fn a_killed_monitor_leaves_an_exited_container_not_a_ghost() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &["-d", "--name", "ghost", &image, "sleep", "60"],
    ));
    let (pid, monitor) = pid1_and_monitor(&ctx, "ghost");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = assert_success(&ctx.nook(&["ps", "-a", "--format", "{{.Status}}"]));
        if status.starts_with("Exited") {
            break;
        }
        assert!(Instant::now() < deadline, "still {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed with its monitor: gone, or a zombie waiting for the host's init to reap it.
    // The kernel delivers that kill as the monitor exits, so give it a moment.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap().split_whitespace().next() != Some("Z"))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() {
        assert!(Instant::now() < deadline, "PID 1 outlived its monitor");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_success(&ctx.nook(&["start", "ghost"]));
    assert_success(&ctx.nook(&["rm", "-f", "ghost"]));
}

#[test]
fn exec_joins_a_running_container() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &[
            "-d",
            "--name",
            "target",
            &image,
            "sh",
            "-c",
            "echo inside > /tmp/mark; sleep 60",
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = ctx.nook(&["exec", "target", "cat", "/tmp/mark"]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "inside\n");
            break;
        }
        assert!(Instant::now() < deadline, "{out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = assert_success(&ctx.nook(&[
        "exec",
        "-u",
        "app",
        "-e",
        "X=1",
        "-w",
        "/home/app",
        "target",
        "sh",
        "-c",
        "id -u; echo $X; pwd; hostname",
    ]));
    let id = assert_success(&ctx.nook(&["ps", "-q"]));
    assert_eq!(out, format!("1000\n1\n/home/app\n{}\n", id.trim()));
    let pids =
        assert_success(&ctx.nook(&["exec", "target", "sh", "-c", "ls /proc | grep -c '^[0-9]'"]));
    assert!(
        pids.trim().parse::<u32>().unwrap() <= 4,
        "host processes visible: {pids}"
    );
    let code = ctx.nook(&["exec", "target", "sh", "-c", "exit 7"]);
    assert_eq!(code.status.code(), Some(7));
    assert_failure(&ctx.nook(&["exec", "target", "no-such"]), 127);
    assert_success(&ctx.nook(&["rm", "-f", "target"]));
    let err = assert_failure(&ctx.nook(&["exec", "target", "true"]), 125);
    assert_one_error_line(&err, "target");
}

#[test]
fn a_pseudo_terminal_with_dash_it() {
    let (ctx, image) = ctx_with_busybox();
    // `script` gives nook a real terminal; the container sees one too.
    let nook = crate::harness::context::nook_bin().display().to_string();
    let command = format!("{nook} run --name term -it {image} sh -c 'tty; stty size; exit 4'");
    let out = ctx
        .command_as_user("/usr/bin/timeout")
        .args(["60", "/usr/bin/script", "-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");
    // What it printed on the terminal is in its log too.
    let logs = assert_success(&ctx.nook(&["logs", "term"]));
    assert!(logs.contains("/dev/pts/0"), "{logs}");
}

#[test]
fn fuse_overlayfs_and_vfs_drivers_work_too() {
    let (ctx, image) = ctx_with_busybox();
    for driver in ["fuse-overlayfs", "vfs", "overlay"] {
        let out = assert_success(&run(
            &ctx,
            &[
                "--rm",
                "--storage-driver",
                driver,
                &image,
                "sh",
                "-c",
                "echo x > /etc/new; cat /etc/new; ls /bin/busybox",
            ],
        ));
        assert_eq!(out, "x\n/bin/busybox\n", "{driver}");
    }
}

#[test]
fn init_reaps_and_names_are_unique() {
    let (ctx, image) = ctx_with_busybox();
    let out = assert_success(&run(
        &ctx,
        &["--rm", "--init", &image, "sh", "-c", "echo $$"],
    ));
    assert_ne!(out.trim(), "1", "with --init the command is not PID 1");
    assert_success(&ctx.nook(&["create", "--name", "same", &image, "true"]));
    let err = assert_failure(
        &ctx.nook(&["create", "--name", "same", &image, "true"]),
        125,
    );
    assert_one_error_line(&err, "already in use");
    let generated = assert_success(&ctx.nook(&["create", &image, "true"]));
    let names = assert_success(&ctx.nook(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names.lines().count(), 2, "{names}");
    assert!(
        names.lines().any(|n| n.contains('_') && n != "same"),
        "{names}"
    );
    assert_eq!(generated.trim().len(), 64);
}

#[test]
fn rm_force_and_stop_reach_a_container_running_as_a_non_root_user() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &["-d", "--name", "app1", "-u", "app", &image, "sleep", "60"],
    ));
    assert_success(&ctx.nook(&["stop", "-t", "0", "app1"]));
    assert_success(&ctx.nook(&["start", "app1"]));
    assert_success(&ctx.nook(&["rm", "-f", "app1"]));
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

/// Runs `nook ARGS` under `script`, so it has a real terminal, typing each of `input` in
/// turn (a pause between them: what arrives before nook puts the terminal in raw mode is
/// cooked by the line discipline, which would swallow Ctrl-Q as flow control).
fn on_a_terminal(ctx: &TestContext, args: &str, input: &[&[u8]]) -> std::process::Output {
    use std::io::Write;
    let nook = crate::harness::context::nook_bin().display().to_string();
    let mut child = ctx
        // A bound, so a lost keystroke fails the test instead of hanging the suite.
        .command_as_user("/usr/bin/timeout")
        .args([
            "60",
            "/usr/bin/script",
            "-qec",
            &format!("{nook} {args}"),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for chunk in input {
        std::thread::sleep(Duration::from_millis(1200));
        let _ = stdin.write_all(chunk);
    }
    // Keep stdin open a moment: `script` ends its session at end of input.
    std::thread::sleep(Duration::from_millis(1000));
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn attach_to_a_detached_terminal_and_detach_again() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(&ctx, &["-dit", "--name", "dev", &image, "sh"]));
    // Detach keys leave it running.
    let out = on_a_terminal(
        &ctx,
        "attach dev",
        &[b"echo first-$((20+1))\n", b"\x10\x11"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("first-21"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let status = assert_success(&ctx.nook(&["ps", "--format", "{{.Status}}"]));
    assert!(status.starts_with("Up"), "{status}");
    // Exiting the shell ends the container; attach returns its status.
    let out = on_a_terminal(&ctx, "attach dev", &[b"echo second; exit 5\n"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("second"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
    let logs = assert_success(&ctx.nook(&["logs", "dev"]));
    assert!(
        logs.contains("first-21") && logs.contains("second"),
        "{logs}"
    );
}

#[test]
fn attach_without_a_terminal_follows_the_output() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &[
            "-d",
            "--name",
            "quiet",
            &image,
            "sh",
            "-c",
            "sleep 1; echo late; exit 3",
        ],
    ));
    let out = ctx.nook(&["attach", "quiet"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
    assert_eq!(out.status.code(), Some(3));
    let err = assert_failure(&ctx.nook(&["attach", "quiet"]), 125);
    assert_one_error_line(&err, "not running");
}

#[test]
fn run_it_passes_keystrokes_and_returns_the_shells_status() {
    let (ctx, image) = ctx_with_busybox();
    let args = format!("run --rm -it {image} sh");
    let out = on_a_terminal(&ctx, &args, &[b"echo typed-$((1+2)); exit 6\n"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("typed-3"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
}

/// fuse-overlayfs daemons whose command line names this context's store.
fn fuse_daemons(ctx: &TestContext) -> usize {
    let store = ctx.data.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("fuse-overlayfs") && c.contains(&store))
        .count()
}

#[test]
fn fuse_overlayfs_daemons_end_with_their_container_even_when_it_fails_to_start() {
    let (ctx, image) = ctx_with_busybox();
    assert_success(&run(
        &ctx,
        &["--rm", "--storage-driver", "fuse-overlayfs", &image, "true"],
    ));
    assert_failure(
        &run(
            &ctx,
            &[
                "--storage-driver",
                "fuse-overlayfs",
                &image,
                "no-such-command",
            ],
        ),
        127,
    );
    assert_eq!(fuse_daemons(&ctx), 0);
    // Nor when the monitor itself is killed.
    assert_success(&run(
        &ctx,
        &[
            "-d",
            "--name",
            "fused",
            "--storage-driver",
            "fuse-overlayfs",
            &image,
            "sleep",
            "60",
        ],
    ));
    assert_eq!(fuse_daemons(&ctx), 1);
    let (_, monitor) = pid1_and_monitor(&ctx, "fused");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fuse_daemons(&ctx) > 0 {
        assert!(
            Instant::now() < deadline,
            "a fuse-overlayfs daemon outlived its container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The single line of `dir/*/diff/PATH` or `dir/*/upper/PATH` under the store: its owner.
fn owner_in_store(ctx: &TestContext, kind: &str, suffix: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let parent = ctx.data.join("nook").join(kind);
    let found: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(suffix))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    assert_eq!(found.len(), 1, "{suffix} under {}", parent.display());
    let meta = found[0].symlink_metadata().unwrap();
    (meta.uid(), meta.gid())
}

#[test]
fn keep_id_runs_as_the_users_own_ids_and_shows_the_image_as_built() {
    let (ctx, image) = ctx_with_busybox();
    let (uid, gid) = (ctx.uid().as_raw(), ctx.gid().as_raw());
    let dir = ctx.home.join("work");
    assert_success(&ctx.run_as_user("/bin/mkdir", &[dir.to_str().unwrap()]));
    let bind = format!("{}:/work", dir.display());
    let out = assert_success(&run(
        &ctx,
        &[
            "--rm",
            "--userns=keep-id",
            "-v",
            &bind,
            &image,
            "sh",
            "-c",
            "id -u; id -g; whoami; stat -c %u:%g /bin/busybox /home/app; \
             echo hi > /work/f; cat /proc/self/uid_map",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    let name = crate::harness::context::test_user_name();
    assert_eq!(
        lines[..5],
        [
            uid.to_string().as_str(),
            &gid.to_string(),
            &name,
            "0:0",
            "1000:1000"
        ],
        "{out}"
    );
    let maps: Vec<Vec<&str>> = lines[5..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        maps.contains(&vec![uid.to_string().as_str(), &uid.to_string(), "1"]),
        "the user's own id is not mapped to itself: {out}"
    );
    assert_eq!(maps[0][0], "0", "{out}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(dir.join("f")).unwrap().uid(), uid);

    // Root inside a keep-id container writes the store's standard layout: its own files
    // belong to the user, and an id copied from the image keeps the image's host owner.
    assert_success(&run(
        &ctx,
        &[
            "--name",
            "kid",
            "--userns=keep-id",
            "-u",
            "0",
            &image,
            "sh",
            "-c",
            "touch /made-by-root && cp -p /home/app/secret /copied && chown 1000:1000 /copied",
        ],
    ));
    assert_eq!(
        owner_in_store(&ctx, "containers", "upper/made-by-root"),
        (uid, gid)
    );
    assert_eq!(
        owner_in_store(&ctx, "containers", "upper/copied"),
        owner_in_store(&ctx, "layers", "diff/home/app/secret")
    );
    // Started again, and from exec, the container keeps its layout and user.
    assert_success(&ctx.nook(&["rm", "kid"]));
    assert_success(&run(
        &ctx,
        &[
            "-d",
            "--name",
            "kd",
            "--userns=keep-id",
            &image,
            "sleep",
            "30",
        ],
    ));
    assert_eq!(
        assert_success(&ctx.nook(&["exec", "kd", "id", "-u"])),
        format!("{uid}\n")
    );
    assert_eq!(
        assert_success(&ctx.nook(&["exec", "-u", "0", "kd", "stat", "-c", "%u", "/bin/busybox"])),
        "0\n"
    );
    assert_success(&ctx.nook(&["rm", "-f", "kd"]));

    // Options that cannot work together are refused before anything is created.
    for (args, needle) in [
        (
            vec!["--userns=keep-id", "--storage-driver", "overlay"],
            "needs the fuse-overlayfs storage driver",
        ),
        (vec!["--userns=auto"], "unsupported --userns mode `auto`"),
    ] {
        let mut all = args.clone();
        all.extend([image.as_str(), "true"]);
        let err = assert_failure(&run(&ctx, &all), 125);
        assert_one_error_line(&err, needle);
    }
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

/// Resource limits need a cgroup v2 subtree delegated to the user. Where there is none (this
/// machine attaches the controllers to cgroup v1, and no systemd delegates one), the options
/// are refused before anything is created, with the missing delegation named: never a
/// silent no-op.
#[test]
fn resource_limits_without_a_delegated_cgroup_are_refused_by_name() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    let offered = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
        .unwrap_or_default();
    for (option, value, controller) in [
        ("--memory", "64m", "memory"),
        ("--cpus", "0.5", "cpu"),
        ("--pids-limit", "50", "pids"),
    ] {
        if offered.split_whitespace().any(|c| c == controller) {
            continue;
        }
        let err = assert_failure(
            &ctx.nook(&["run", "--rm", option, value, &image, "true"]),
            125,
        );
        assert_one_error_line(
            &err,
            &format!("{option} needs the `{controller}` controller"),
        );
        assert!(err.contains(&format!("or run without {option}")), "{err}");
    }
    let err = assert_failure(
        &ctx.nook(&["run", "--rm", "--memory", "lots", &image, "true"]),
        125,
    );
    assert_one_error_line(&err, "invalid --memory `lots`");
    let err = assert_failure(
        &ctx.nook(&[
            "run",
            "--rm",
            "--memory",
            "64m",
            "--memory-swap",
            "32m",
            &image,
            "true",
        ]),
        125,
    );
    assert_one_error_line(&err, "cannot be below --memory");
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}
