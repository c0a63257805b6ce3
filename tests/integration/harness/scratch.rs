//! [`Scratch`]: nook run as the test user inside a mount namespace of its own, made by root,
//! where a test puts fake files over real paths (sysctls, /etc/subuid, setuid helpers,
//! device nodes) or mounts small file systems, to break the host's set-up on purpose without
//! touching the host: every mount dies with the namespace.
//!
//! Root makes the namespace (`unshare --mount --propagation private`), runs the test's set-up
//! steps there as a shell script, then drops to the test user exactly as
//! [`TestContext::command_as_user`] does (`setpriv`). With
//! [`without_user_namespaces`](Scratch::without_user_namespaces) the namespace is also a user
//! namespace mapping every id to itself, whose own `user.max_user_namespaces` is set to 0: a
//! real limit that applies to nothing outside.
//!
//! A file put over a path under /proc hides part of proc, and the kernel then refuses to
//! mount a new proc in a user namespace: containers cannot start there. Fake sysctls serve
//! doctor (and commands that fail before a container starts), not `run`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::context::{TestContext, require, running_as_root, target_user};

pub struct Scratch {
    dir: tempfile::TempDir,
    steps: Vec<String>,
    /// Run as root after nook exits (unmounting what a helper process serves).
    cleanup: Vec<String>,
    nested_userns: bool,
}

/// `text` quoted for the shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Scratch {
    /// A scratch namespace to be, or `None` (after [`require`]) when the tests do not run as
    /// root.
    pub fn new() -> Option<Scratch> {
        if !require(
            running_as_root(),
            "breaking the set-up in a scratch mount namespace needs root",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("nook-scratch-")
            .tempdir_in("/tmp")
            .expect("creating a scratch dir under /tmp");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Scratch {
            dir,
            steps: Vec::new(),
            cleanup: Vec::new(),
            nested_userns: false,
        })
    }

    /// A path in the scratch directory (root's, 0755, removed on drop).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to a root-owned file `name` of `mode` in the scratch directory.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A shell step run as root in the namespace before nook (use absolute paths: the
    /// test's PATH may be cut down).
    pub fn step(&mut self, line: impl Into<String>) -> &mut Scratch {
        self.steps.push(line.into());
        self
    }

    /// Bind-mounts `source` over `target` (which must exist) in the namespace.
    pub fn bind(&mut self, source: &Path, target: &str) -> &mut Scratch {
        let line = format!(
            "/usr/bin/mount --bind {} {}",
            quote(source.to_str().unwrap()),
            quote(target)
        );
        self.step(line)
    }

    /// Puts a root-owned 0644 file holding `text` over `target` (a sysctl, /etc/subuid).
    pub fn fake_file(&mut self, target: &str, text: &str) -> &mut Scratch {
        let name = target.trim_start_matches('/').replace('/', "_");
        let source = self.write(&name, text, 0o644);
        self.bind(&source, target)
    }

    /// Mounts a tmpfs of `size` (as `mount -o size=`) at `target`, owned by the test user.
    pub fn tmpfs(&mut self, target: &Path, size: &str) -> &mut Scratch {
        let user = target_user();
        let t = quote(target.to_str().unwrap());
        self.step(format!("/usr/bin/mkdir -p {t}"));
        self.step(format!(
            "/usr/bin/mount -t tmpfs -o size={size},mode=0755 nook-scratch {t}"
        ));
        self.step(format!("/usr/bin/chown {}:{} {t}", user.uid, user.gid))
    }

    /// Mounts a FUSE file system at `target` (fuse-overlayfs over empty scratch directories,
    /// writable by the test user), unmounted when nook is done so its daemon exits.
    pub fn fuse(&mut self, target: &Path) -> &mut Scratch {
        let user = target_user();
        for dir in ["fuse-lower", "fuse-upper", "fuse-work"] {
            std::fs::create_dir(self.path(dir)).unwrap();
        }
        nix::unistd::chown(&self.path("fuse-upper"), Some(user.uid), Some(user.gid)).unwrap();
        let t = quote(target.to_str().unwrap());
        self.step(format!("/usr/bin/mkdir -p {t}"));
        self.step(format!(
            "/usr/bin/fuse-overlayfs -o lowerdir={},upperdir={},workdir={},allow_other {t}",
            self.path("fuse-lower").display(),
            self.path("fuse-upper").display(),
            self.path("fuse-work").display(),
        ));
        // Lazily: a container process may still be leaving.
        self.cleanup.push(format!("/usr/bin/umount -l {t}"));
        self
    }

    /// Makes the namespace a user namespace too (every id mapped to itself), whose
    /// `user.max_user_namespaces` is 0: nook's processes cannot make one.
    pub fn without_user_namespaces(&mut self) -> &mut Scratch {
        self.nested_userns = true;
        self.step("echo 0 > /proc/sys/user/max_user_namespaces")
    }

    /// `cmd` (made by [`TestContext::command_as_user`]: setpriv, then the program) with its
    /// environment and working directory, run in the namespace after the steps.
    pub fn run(&self, cmd: &Command) -> Output {
        let script = format!(
            "{}\nset +e\n\"$@\"\nstatus=$?\n{}\nexit $status",
            self.steps.join("\n"),
            self.cleanup.join("\n")
        );
        let mut c = Command::new("/usr/bin/unshare");
        if self.nested_userns {
            // unshare runs the shell before the ids are mapped, which loses root's
            // capabilities in the new namespace; a second exec, once mapped, gets them.
            c.arg("--user");
            c.args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-euc",
            ]);
            c.arg(
                r#"while [ -z "$(cat /proc/self/gid_map)" ]; do sleep 0.01; done; s=$1; shift; exec /bin/sh -euc "$s" sh "$@""#,
            );
            c.arg("sh").arg(&script);
        } else {
            c.args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-euc",
            ]);
            c.arg(&script).arg("sh");
        }
        c.arg(cmd.get_program()).args(cmd.get_args());
        c.env_clear();
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                c.env(key, value);
            }
        }
        if let Some(dir) = cmd.get_current_dir() {
            c.current_dir(dir);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("running {c:?} in a scratch namespace: {e}"));
        if self.nested_userns {
            map_every_id(child.id());
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `nook ARGS` as the test user in the namespace.
    pub fn nook(&self, ctx: &TestContext, args: &[&str]) -> Output {
        let mut cmd = ctx.nook_cmd();
        cmd.args(args);
        self.run(&cmd)
    }
}

/// Writes identity maps for `pid` once it is in a user namespace of its own.
fn map_every_id(pid: u32) {
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::fs::read_link(format!("/proc/{pid}/ns/user")) {
            Ok(ns) if ns != ours => break,
            Err(e) => panic!("the scratch namespace's process {pid} is gone: {e}"),
            Ok(_) => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} made no user namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{map}"), "0 0 4294967295\n")
            .unwrap_or_else(|e| panic!("writing /proc/{pid}/{map}: {e}"));
    }
}
