//! [`TestContext`]: a private set of XDG directories and a way to run `nook` (and other
//! programs) in them as the unprivileged test user.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use nix::unistd::{Gid, Uid, User, chown};

/// The PATH nook runs with.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Is a missing prerequisite an error? True under `CI` (set, not "false"/"0") or
/// `NOOK_MUST_WORK=1`.
pub fn must_work() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var("NOOK_MUST_WORK").is_ok_and(|v| v == "1")
}

/// Checks a prerequisite. Returns `true` when `cond` holds. Otherwise panics with `reason` when
/// [`must_work`], and else prints `SKIPPED: reason` to stderr and returns `false`; the caller
/// then returns early:
///
/// ```ignore
/// if !require(Path::new("/dev/fuse").exists(), "no /dev/fuse") { return; }
/// ```
pub fn require(cond: bool, reason: &str) -> bool {
    if cond {
        return true;
    }
    if must_work() {
        panic!("prerequisite missing (CI / NOOK_MUST_WORK=1 forbid skipping): {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

/// Is the test process real root? Then nook is run as the test user instead.
pub fn running_as_root() -> bool {
    Uid::effective().is_root()
}

/// The user nook runs as when the test process is root: `$NOOK_TEST_USER`, default `nooktest`.
pub fn test_user_name() -> String {
    std::env::var("NOOK_TEST_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nooktest".to_string())
}

/// The user nook runs as: the test user when root, else the current user. Checked once: when
/// root, the user must exist and have a range in /etc/subuid.
pub fn target_user() -> &'static User {
    static USER: OnceLock<User> = OnceLock::new();
    USER.get_or_init(|| {
        if running_as_root() {
            let name = test_user_name();
            let user = User::from_name(&name)
                .unwrap_or_else(|e| panic!("looking up test user {name}: {e}"))
                .unwrap_or_else(|| {
                    panic!("test user {name} does not exist: run helpers/test-user {name} (as root)")
                });
            let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
            let uid = user.uid.to_string();
            let has_range = subuid.lines().any(|l| {
                let owner = l.split(':').next().unwrap_or("");
                owner == name || owner == uid
            });
            assert!(
                has_range,
                "test user {name} has no range in /etc/subuid: run helpers/test-user {name} (as root)"
            );
            user
        } else {
            User::from_uid(Uid::effective())
                .ok()
                .flatten()
                .expect("the current user has no /etc/passwd entry")
        }
    })
}

/// The nook binary, at a path the target user can execute. When root, cargo's path is under
/// /root (0700), so the binary is copied once per test process to /tmp/nook-test-bin-PID/.
pub fn nook_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_nook"));
        if !running_as_root() {
            return built;
        }
        remove_stale_binary_copies();
        let dir = PathBuf::from(format!("/tmp/nook-test-bin-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("creating the binary copy dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let tmp = dir.join(".nook.tmp");
        fs::copy(&built, &tmp)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), tmp.display()));
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("nook");
        fs::rename(&tmp, &bin).unwrap();
        remove_at_exit(&dir);
        bin
    })
}

/// Removes `dir` when this process exits, however it exits: a shell waits for EOF on a pipe
/// whose write end this process never closes.
pub fn remove_at_exit(dir: &Path) {
    let child = Command::new("/bin/sh")
        .args(["-c", r#"read _ignored; rm -rf "$1""#, "sh"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        Box::leak(Box::new(child.stdin.take()));
    }
}

/// Removes /tmp/nook-test-bin-PID dirs left by test processes that are gone.
fn remove_stale_binary_copies() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("nook-test-bin-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A private root for one test: `home/`, `data/`, `runtime/` (0700) and `config/`, owned by
/// the target user, inside a 0755 temp dir under /tmp that is removed on drop.
pub struct TestContext {
    root: tempfile::TempDir,
    pub home: PathBuf,
    pub data: PathBuf,
    pub runtime: PathBuf,
    pub config: PathBuf,
}

impl TestContext {
    pub fn new() -> TestContext {
        let user = target_user();
        let root = tempfile::Builder::new()
            .prefix("nook-test-")
            .tempdir_in("/tmp")
            .expect("creating a temp dir under /tmp");
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let make = |name: &str, mode: u32| {
            let dir = root.path().join(name);
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            if running_as_root() {
                chown(&dir, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|e| panic!("chown {} to {}: {e}", dir.display(), user.name));
            }
            dir
        };
        let home = make("home", 0o755);
        let data = make("data", 0o755);
        let runtime = make("runtime", 0o700);
        let config = make("config", 0o755);
        TestContext {
            root,
            home,
            data,
            runtime,
            config,
        }
    }

    /// The temp dir holding `home/`, `data/`, `runtime/` and `config/`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The uid nook runs as.
    pub fn uid(&self) -> Uid {
        target_user().uid
    }

    /// The gid nook runs as.
    pub fn gid(&self) -> Gid {
        target_user().gid
    }

    /// The whole environment nook (and [`run_as_user`](Self::run_as_user)) gets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let s = |p: &Path| p.to_str().expect("non-UTF-8 temp path").to_string();
        vec![
            ("HOME", s(&self.home)),
            ("XDG_DATA_HOME", s(&self.data)),
            ("XDG_RUNTIME_DIR", s(&self.runtime)),
            ("XDG_CONFIG_HOME", s(&self.config)),
            ("PATH", PATH.to_string()),
            ("LANG", "C.UTF-8".to_string()),
            ("NO_COLOR", "1".to_string()),
        ]
    }

    /// A command running `program` as the target user in this context: a clean environment
    /// ([`env`](Self::env) only), working directory `home/`. When the test process is root the
    /// program runs through `setpriv --reuid=USER --regid=USER --init-groups`; setpriv passes
    /// the command's (cleared) environment on, so `.env(…)` on the result still works.
    /// Append the program's arguments with `.arg`/`.args`.
    pub fn command_as_user(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = if running_as_root() {
            let user = &target_user().name;
            let mut c = Command::new("/usr/bin/setpriv");
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.env_clear().envs(self.env()).current_dir(&self.home);
        cmd
    }

    /// A command running nook as the target user (see [`command_as_user`](Self::command_as_user)).
    pub fn nook_cmd(&self) -> Command {
        self.command_as_user(nook_bin())
    }

    /// Runs `nook ARGS` as the target user, with no stdin, and collects its output.
    pub fn nook(&self, args: &[&str]) -> Output {
        run(self.nook_cmd().args(args))
    }

    /// Runs `nook ARGS` as the target user with `input` on its stdin (`--password-stdin`).
    pub fn nook_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .nook_cmd()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running nook {args:?}: {e}"));
        // nook may exit without reading it all; a broken pipe is then fine.
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait_with_output().unwrap()
    }

    /// Runs `nook ARGS` as the target user with a terminal as its stdin (a pseudo-terminal
    /// to which `input` is typed), as a user answering a prompt would.
    pub fn nook_with_terminal(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let pty = nix::pty::openpty(None, None).expect("opening a pseudo-terminal");
        let child = self
            .nook_cmd()
            .args(args)
            .stdin(std::process::Stdio::from(fs::File::from(pty.slave)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running nook {args:?}: {e}"));
        let mut master = fs::File::from(pty.master);
        master.write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        drop(master);
        out
    }

    /// Runs `nook ARGS` as the target user with stdout and stderr on one pseudo-terminal
    /// (stdin empty), with `env` added to the environment; returns the exit status and what
    /// the terminal showed. TERM is set (xterm) and NO_COLOR removed unless `env` sets them.
    pub fn nook_on_terminal(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        use std::io::Read;
        let pty = nix::pty::openpty(None, None).expect("opening a pseudo-terminal");
        // Close-on-exec, so that no other test's child keeps the terminal open (and our read
        // from waiting for its end).
        for fd in [&pty.master, &pty.slave] {
            use std::os::fd::AsRawFd;
            nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .unwrap();
        }
        let slave = fs::File::from(pty.slave);
        let mut cmd = self.nook_cmd();
        cmd.env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .envs(env.iter().copied())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(slave.try_clone().unwrap()))
            .stderr(std::process::Stdio::from(slave));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("running nook {args:?}: {e}"));
        // Our copies of the terminal's end are gone with `cmd`; reading ends (EIO) once nook
        // and anything it left behind close theirs.
        drop(cmd);
        let mut master = fs::File::from(pty.master);
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        let status = child.wait().unwrap();
        let seen = reader.join().unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&seen).into_owned(),
        )
    }

    /// Runs `program ARGS` (e.g. `ls -ln`) as the target user with nook's environment.
    pub fn run_as_user(&self, program: &str, args: &[&str]) -> Output {
        run(self.command_as_user(program).args(args))
    }
}

impl Default for TestContext {
    fn default() -> Self {
        TestContext::new()
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the command exited 0; returns its stdout.
#[track_caller]
pub fn assert_success(out: &Output) -> String {
    assert!(out.status.success(), "command failed\n{}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that `stderr` has exactly one `Error: ` line and that it contains `needle`.
#[track_caller]
pub fn assert_one_error_line(stderr: &str, needle: &str) {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "exactly one Error line expected:\n{stderr}"
    );
    assert!(errors[0].contains(needle), "`{needle}` not in: {stderr}");
}

/// Asserts the command exited with `code`; returns its stderr.
#[track_caller]
pub fn assert_failure(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit code {code}\n{}",
        describe(out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running container's PID 1 and its monitor (PID 1's parent).
pub fn pid1_and_monitor(ctx: &TestContext, name: &str) -> (i32, i32) {
    let state: serde_json::Value = serde_json::from_str(&assert_success(&ctx.nook(&[
        "inspect",
        "--type",
        "container",
        name,
    ])))
    .unwrap();
    let pid = state[0]["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (pid, ppid)
}

/// The store's visible content (image records, complete layers) and whether staging, trash
/// and tmp are empty.
pub fn store_state(ctx: &TestContext) -> (String, Vec<String>, bool) {
    let root = ctx.data.join("nook");
    let images = std::fs::read_to_string(root.join("images.json")).unwrap_or_default();
    let list = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let mut layers = list("layers");
    layers.retain(|n| !n.starts_with('.'));
    let clean = list("layers/.staging").is_empty()
        && list("layers/.trash").is_empty()
        && list("tmp").is_empty();
    (images, layers, clean)
}
