//! `config.toml`: each key changes what nook does, the command line overrides it, and a bad
//! file is refused by name by every command that reads it. See `nook-config(5)`.

use std::time::{Duration, Instant};

use crate::harness::fixtures;
use crate::harness::hostile_peer::{HostilePeer, stall};
use crate::harness::{
    TestContext, assert_failure, assert_one_error_line, assert_success, registry,
};

/// Writes `$XDG_CONFIG_HOME/nook/NAME`, owned by the test user.
fn write(ctx: &TestContext, name: &str, text: &str) -> std::path::PathBuf {
    let dir = ctx.config.join("nook");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    for path in [&dir, &file] {
        nix::unistd::chown(path, Some(ctx.uid()), Some(ctx.gid())).unwrap();
    }
    file
}

fn with_image() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

fn inspect(ctx: &TestContext, format: &str, name: &str) -> String {
    assert_success(&ctx.nook(&["inspect", "--format", format, name]))
        .trim()
        .to_string()
}

/// The PID the container's command gets: 1 without an init.
fn command_pid(ctx: &TestContext, options: &[&str], image: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(options);
    args.extend_from_slice(&[image, "sh", "-c", "echo $$"]);
    assert_success(&ctx.nook(&args)).trim().to_string()
}

#[test]
fn containers_init_is_the_default_of_init() {
    let (ctx, image) = with_image();
    assert_eq!(command_pid(&ctx, &[], &image), "1");
    write(&ctx, "config.toml", "[containers]\ninit = true\n");
    assert_ne!(
        command_pid(&ctx, &[], &image),
        "1",
        "config.toml's init runs"
    );
    assert_eq!(command_pid(&ctx, &["--init=false"], &image), "1");
    assert_success(&ctx.nook(&["create", "--name", "c", "--network", "none", &image, "true"]));
    assert_eq!(inspect(&ctx, "{{.HostConfig.Init}}", "c"), "true");
    write(&ctx, "config.toml", "[containers]\ninit = false\n");
    assert_eq!(command_pid(&ctx, &[], &image), "1");
    assert_ne!(command_pid(&ctx, &["--init"], &image), "1");
    assert_ne!(command_pid(&ctx, &["--init=true"], &image), "1");
}

#[test]
fn containers_log_driver_is_the_default_of_log_driver() {
    let (ctx, image) = with_image();
    let run = |name: &str, options: &[&str]| {
        let mut args = vec!["run", "--name", name, "--network", "none"];
        args.extend_from_slice(options);
        args.extend_from_slice(&[&image, "echo", "hello"]);
        // The terminal's copy does not depend on the log.
        assert_eq!(assert_success(&ctx.nook(&args)), "hello\n");
    };
    run("plain", &[]);
    assert_eq!(assert_success(&ctx.nook(&["logs", "plain"])), "hello\n");
    assert_eq!(
        inspect(&ctx, "{{.HostConfig.LogConfig.Type}}", "plain"),
        "json-file"
    );

    write(&ctx, "config.toml", "[containers]\nlog-driver = \"none\"\n");
    run("quiet", &[]);
    let err = assert_failure(&ctx.nook(&["logs", "quiet"]), 125);
    assert_eq!(
        err,
        "Error: configured logging driver does not support reading\n"
    );
    assert_eq!(
        inspect(&ctx, "{{.HostConfig.LogConfig.Type}}", "quiet"),
        "none"
    );
    assert_eq!(inspect(&ctx, "{{.LogPath}}", "quiet"), "");
    let logs_of = |name: &str| -> Vec<std::path::PathBuf> {
        let id = id(&ctx, name);
        walk(&ctx.data)
            .into_iter()
            .filter(|p| p.ends_with("ctr.log") && p.to_string_lossy().contains(&id))
            .collect()
    };
    assert_eq!(logs_of("plain").len(), 1);
    assert_eq!(logs_of("quiet"), Vec::<std::path::PathBuf>::new());

    // The command line wins.
    run("kept", &["--log-driver", "json-file"]);
    assert_eq!(assert_success(&ctx.nook(&["logs", "kept"])), "hello\n");
    assert_eq!(
        inspect(&ctx, "{{.HostConfig.LogConfig.Type}}", "kept"),
        "json-file"
    );
    write(&ctx, "config.toml", "");
    run("flag", &["--log-driver=none"]);
    assert_failure(&ctx.nook(&["logs", "flag"]), 125);
    // Attaching without a terminal reads the log, which a none container lacks.
    assert_success(&ctx.nook(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--log-driver",
        "none",
        "--network",
        "none",
        &image,
        "sleep",
        "60",
    ]));
    let err = assert_failure(&ctx.nook(&["attach", "bg"]), 125);
    assert_one_error_line(&err, "logging driver is none");
    assert_success(&ctx.nook(&["rm", "-f", "bg"]));
}

/// The container's log files, newest first: `ctr.log`, `ctr.log.1`, …
fn log_files(ctx: &TestContext, name: &str) -> Vec<std::path::PathBuf> {
    let log = std::path::PathBuf::from(inspect(ctx, "{{.LogPath}}", name));
    let mut files = vec![log.clone()];
    for n in 1.. {
        let rotated = std::path::PathBuf::from(format!("{}.{n}", log.display()));
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    files
}

#[test]
fn containers_log_opts_rotate_the_json_file_log() {
    let (ctx, image) = with_image();
    let lines: String = (1..=300).map(|n| format!("{n}\n")).collect();
    let run = |name: &str, options: &[&str]| {
        let mut args = vec!["run", "--name", name, "--network", "none"];
        args.extend_from_slice(options);
        args.extend_from_slice(&[&image, "seq", "1", "300"]);
        assert_eq!(assert_success(&ctx.nook(&args)), lines);
    };
    let log_config = |name: &str| -> serde_json::Value {
        let all: serde_json::Value =
            serde_json::from_str(&assert_success(&ctx.nook(&["inspect", name]))).unwrap();
        all[0]["HostConfig"]["LogConfig"].clone()
    };
    // What `nook logs` shows: the newest lines, in order, up to the last.
    let shown = |name: &str| -> Vec<u32> {
        assert_success(&ctx.nook(&["logs", name]))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };

    write(
        &ctx,
        "config.toml",
        "[containers]\nlog-opts = { max-size = \"2k\", max-file = \"2\" }\n",
    );
    run("rotated", &[]);
    let files = log_files(&ctx, "rotated");
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 2048, "{file:?}");
    }
    let kept = shown("rotated");
    assert_eq!(kept.last(), Some(&300));
    assert!(kept[0] > 1, "the oldest lines are gone");
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    let info = assert_success(&ctx.nook(&["info"]));
    assert!(
        info.contains("  logOpts: max-file=2,max-size=2k\n"),
        "{info}"
    );
    assert_eq!(
        log_config("rotated"),
        serde_json::json!({"Type": "json-file", "Config": {"max-file": "2", "max-size": "2k"}})
    );

    // A command-line option replaces the file's, key by key.
    run("three", &["--log-opt", "max-file=3"]);
    assert_eq!(log_files(&ctx, "three").len(), 3);
    assert!(shown("three").len() > kept.len());
    assert_eq!(
        log_config("three")["Config"],
        serde_json::json!({"max-file": "3", "max-size": "2k"})
    );
    // --log-driver none drops the file's options; on the command line they are refused.
    run("none", &["--log-driver", "none"]);
    assert_eq!(log_config("none")["Config"], serde_json::json!({}));
    for (options, message) in [
        (
            &["--log-driver", "none", "--log-opt", "max-size=1m"][..],
            "--log-opt: unknown log opt `max-size` for the none logging driver",
        ),
        (
            &["--log-opt", "compress=true"],
            "--log-opt: unknown log opt `compress` for json-file",
        ),
        (&["--log-opt", "max-size=huge"], "invalid max-size `huge`"),
        (&["--log-opt", "max-size"], "expected KEY=VALUE"),
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(options);
        args.extend_from_slice(&[&image, "true"]);
        let err = assert_failure(&ctx.nook(&args), 125);
        assert_one_error_line(&err, message);
    }

    // Without options one file grows without limit, as before.
    write(&ctx, "config.toml", "");
    run("whole", &[]);
    assert_eq!(log_files(&ctx, "whole").len(), 1);
    assert_eq!(shown("whole"), (1..=300).collect::<Vec<u32>>());
    assert_eq!(log_config("whole")["Config"], serde_json::json!({}));
}

fn id(ctx: &TestContext, name: &str) -> String {
    inspect(ctx, "{{.Id}}", name)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn storage_driver_is_the_default_of_storage_driver() {
    let (ctx, image) = with_image();
    write(&ctx, "config.toml", "[storage]\ndriver = \"vfs\"\n");
    assert_success(&ctx.nook(&["create", "--name", "a", "--network", "none", &image, "true"]));
    assert_eq!(inspect(&ctx, "{{.GraphDriver.Name}}", "a"), "vfs");
    // A container on it runs, its changes its own.
    let out = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo x > /etc/new && cat /etc/new",
    ]));
    assert_eq!(out, "x\n");
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "b",
        "--network",
        "none",
        "--storage-driver",
        "fuse-overlayfs",
        &image,
        "true",
    ]));
    assert_eq!(
        inspect(&ctx, "{{.GraphDriver.Name}}", "b"),
        "fuse-overlayfs"
    );
    // keep-id needs fuse-overlayfs: the configured default yields to it.
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "k",
        "--network",
        "none",
        "--userns",
        "keep-id",
        &image,
        "true",
    ]));
    assert_eq!(
        inspect(&ctx, "{{.GraphDriver.Name}}", "k"),
        "fuse-overlayfs"
    );
    write(&ctx, "config.toml", "");
    assert_success(&ctx.nook(&["create", "--name", "c", "--network", "none", &image, "true"]));
    assert_ne!(inspect(&ctx, "{{.GraphDriver.Name}}", "c"), "vfs");
}

#[test]
fn network_default_is_the_default_of_network() {
    let (ctx, image) = with_image();
    write(&ctx, "config.toml", "[network]\ndefault = \"none\"\n");
    // Only the loopback interface: /proc/net/dev's two headers and `lo`.
    let out = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--name",
        "n",
        &image,
        "sh",
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1",
    ]));
    assert_eq!(out.trim(), "lo");
    assert_success(&ctx.nook(&["create", "--name", "a", &image, "true"]));
    assert_eq!(inspect(&ctx, "{{.HostConfig.NetworkMode}}", "a"), "none");
    assert_success(&ctx.nook(&["create", "--name", "b", "--network", "host", &image, "true"]));
    assert_eq!(inspect(&ctx, "{{.HostConfig.NetworkMode}}", "b"), "host");
    // A mode nook does not know is refused when the file is read, by any command.
    let file = write(&ctx, "config.toml", "[network]\ndefault = \"bogus\"\n");
    for args in [&["create", &image, "true"][..], &["pull", &image]] {
        let err = assert_failure(&ctx.nook(args), 125);
        assert_one_error_line(
            &err,
            &format!(
                "cannot parse {}: line 2: `network.default`: unknown network mode `bogus`",
                file.display()
            ),
        );
    }
}

#[test]
fn registry_timeout_bounds_a_silent_registry() {
    let peer = HostilePeer::start(|_, stream| stall(stream, Duration::from_secs(30)));
    let ctx = TestContext::new();
    write(&ctx, "config.toml", "[registry]\ntimeout = 1\n");
    let started = Instant::now();
    let err = assert_failure(&ctx.nook(&["pull", &format!("{}/x/y", peer.addr)]), 125);
    assert_one_error_line(&err, "within 1 s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn registries_in_config_toml() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    let addr = &registry().addr;
    let config = write(
        &ctx,
        "config.toml",
        &format!(
            "[registries]\nunqualified-search-registries = [\"{addr}\"]\n\n\
             [[registries.registry]]\nlocation = \"registry.invalid\"\n\
             [[registries.registry.mirror]]\nlocation = \"{addr}\"\n"
        ),
    );
    // unqualified-search-registries
    let out = assert_success(&ctx.nook(&["pull", "-q", "fixtures/single-layer"]));
    assert_eq!(out.trim(), image.reference);
    // registry and its mirror
    let out = assert_success(&ctx.nook(&["pull", "-q", "registry.invalid/fixtures/single-layer"]));
    assert_eq!(out.trim(), "registry.invalid/fixtures/single-layer:latest");
    let info = assert_success(&ctx.nook(&["info"]));
    assert!(
        info.contains(&format!(
            "registriesFile: {} ([registries])",
            config.display()
        )),
        "{info}"
    );
    assert!(
        info.contains(&format!("configFile: {}", config.display())),
        "{info}"
    );

    // blocked
    write(
        &ctx,
        "config.toml",
        &format!("[[registries.registry]]\nlocation = \"{addr}\"\nblocked = true\n"),
    );
    let err = assert_failure(&ctx.nook(&["pull", &image.reference]), 125);
    assert_one_error_line(&err, "is blocked");

    // Both files: refused, naming both, by pull and by info alike.
    write(
        &ctx,
        "config.toml",
        "[registries]\nunqualified-search-registries = []\n",
    );
    let registries_toml = write(
        &ctx,
        "registries.toml",
        "unqualified-search-registries = []\n",
    );
    for args in [&["pull", "busybox"][..], &["info"]] {
        let err = assert_failure(&ctx.nook(args), 125);
        assert_one_error_line(
            &err,
            &format!(
                "registries are configured twice, in {} and in [registries] of {}",
                registries_toml.display(),
                config.display()
            ),
        );
    }
    // registries.toml alone still works.
    write(&ctx, "config.toml", "");
    let info = assert_success(&ctx.nook(&["info"]));
    assert!(
        info.contains(&format!("registriesFile: {}\n", registries_toml.display())),
        "{info}"
    );
}

/// `0.0.0.0:PORT` reaches the loopback registry, but is not a loopback name, so only
/// `insecure` (or --tls-verify=false) lets nook speak plain HTTP to it.
#[test]
fn registries_insecure_for_a_registry_and_a_mirror() {
    let ctx = TestContext::new();
    let port = registry().addr.rsplit_once(':').unwrap().1.to_string();
    let plain = format!("0.0.0.0:{port}");
    let reference = format!("{plain}/fixtures/single-layer");
    fixtures::single_layer();
    let err = assert_failure(&ctx.nook(&["pull", "-q", &reference]), 125);
    assert_one_error_line(&err, &plain);
    write(
        &ctx,
        "config.toml",
        &format!("[[registries.registry]]\nlocation = \"{plain}\"\ninsecure = true\n"),
    );
    assert_success(&ctx.nook(&["pull", "-q", &reference]));
    // The command line wins over the file.
    assert_failure(
        &ctx.nook(&["pull", "-q", "--tls-verify=true", &reference]),
        125,
    );

    // A mirror's own insecure.
    let mirrored = |insecure: bool| {
        format!(
            "[[registries.registry]]\nlocation = \"registry.invalid\"\n\
             [[registries.registry.mirror]]\nlocation = \"{plain}\"\ninsecure = {insecure}\n"
        )
    };
    write(&ctx, "config.toml", &mirrored(false));
    assert_failure(
        &ctx.nook(&["pull", "-q", "registry.invalid/fixtures/single-layer"]),
        125,
    );
    write(&ctx, "config.toml", &mirrored(true));
    assert_success(&ctx.nook(&["pull", "-q", "registry.invalid/fixtures/single-layer"]));
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_by_name() {
    let (ctx, image) = with_image();
    let cases: &[(&str, &str)] = &[
        (
            "[containers]\ninti = true\n",
            "line 2: unknown key `containers.inti` (valid keys in [containers]: init, log-driver, log-opts)",
        ),
        (
            "# mine\nlog_driver = \"none\"\n",
            "line 2: unknown key `log_driver` (valid top-level keys: containers, network, registry, registries, storage)",
        ),
        (
            "[containers]\ninit = \"yes\"\n",
            "line 2: `containers.init`: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "[containers]\nlog-driver = \"syslog\"\n",
            "line 2: `containers.log-driver`: invalid value `syslog`, expected `json-file` or `none`",
        ),
        (
            "[storage]\ndriver = \"btrfs\"\n",
            "line 2: `storage.driver`: invalid value `btrfs`, expected one of `overlay`, `fuse-overlayfs`, `vfs`",
        ),
        (
            "[network]\ndefault = true\n",
            "line 2: `network.default`: invalid type: boolean `true`, expected a string",
        ),
        (
            "[registry]\ntimeout = \"slow\"\n",
            "line 2: `registry.timeout`: invalid type: string \"slow\", expected u64",
        ),
        (
            "[registries]\n[[registries.registry]]\nlocation = \"a.io\"\nmirrors = []\n",
            "line 4: unknown key `registries.registry.mirrors` (valid keys in [registries.registry]: location, insecure, blocked, mirror)",
        ),
    ];
    // `system doctor` reports it too, as its one failure.
    let file = write(&ctx, "config.toml", cases[0].0);
    let out = ctx.nook(&["system", "doctor", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&serde_json::Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "FAIL")
        .collect();
    assert_eq!(failed.len(), 1, "{findings}");
    assert_eq!(failed[0]["check"], "configuration");
    assert_eq!(
        failed[0]["detail"],
        format!("cannot parse {}: {}", file.display(), cases[0].1)
    );

    let commands: &[&[&str]] = &[
        &["run", "--rm", &image, "true"],
        &["create", &image, "true"],
        &["pull", &image],
        &["inspect", &image],
        &["tag", &image, "other"],
        &["info"],
        // Commands that use no setting refuse it too: the mistake is named at once.
        &["ps", "-a"],
        &["images"],
    ];
    for (text, expected) in cases {
        let file = write(&ctx, "config.toml", text);
        for args in commands {
            let err = assert_failure(&ctx.nook(args), 125);
            assert_eq!(
                err,
                format!("Error: cannot parse {}: {expected}\n", file.display()),
                "{args:?} with {text}"
            );
        }
    }
}
