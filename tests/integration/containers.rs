//! `ps`, `rm`, `rename`, `wait`, `container prune`, container `inspect`, `port` and rmi's
//! in-use check. `run` and `create` are written elsewhere, so containers are made here through the
//! library (as the test process), then handed to the test user; a "running" container is a
//! real `sleep` started as the test user, standing in for both PID 1 and the monitor.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use nook::network::ports::{PortMapping, Protocol};
use nook::store::Store;
use nook::store::containers::{
    ContainerConfig, ContainerRecord, ContainerState, Status, boot_id, new_container_id,
    process_start_time,
};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

struct Setup {
    ctx: TestContext,
    store: Store,
    image: &'static fixtures::Image,
    sleepers: Vec<Child>,
}

impl Setup {
    fn new() -> Setup {
        let image = fixtures::single_layer();
        let ctx = TestContext::new();
        assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
        let store = Store::open(&ctx.data.join("nook")).unwrap();
        Setup {
            ctx,
            store,
            image,
            sleepers: vec![],
        }
    }

    /// Creates a container through the library; `age` seconds old.
    fn create(&self, name: &str, cmd: &[&str], age: i64) -> String {
        let id = new_container_id();
        let record = ContainerRecord {
            id: id.clone(),
            name: name.to_string(),
            image: self.image.reference.clone(),
            image_id: self.image.config_digest.clone(),
            created: Utc::now() - chrono::Duration::seconds(age),
            config: ContainerConfig {
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                storage_driver: "overlay".into(),
                network: "none".into(),
                stop_signal: "SIGTERM".into(),
                stop_timeout: 10,
                labels: [("tier".to_string(), name.to_string())].into(),
                ..ContainerConfig::default()
            },
        };
        self.store.create_container(&record).unwrap();
        self.give_back();
        id
    }

    fn exited(&self, name: &str, code: i32, ago: i64) -> String {
        let id = self.create(name, &["true"], ago + 10);
        self.set_state(
            &id,
            &ContainerState {
                status: Status::Exited,
                started_at: Some(Utc::now() - chrono::Duration::seconds(ago + 5)),
                finished_at: Some(Utc::now() - chrono::Duration::seconds(ago)),
                exit_code: Some(code),
                ..ContainerState::default()
            },
        );
        id
    }

    /// A running container: a `sleep` run as the test user is its PID 1 and its monitor.
    fn running(&mut self, name: &str) -> (String, i32) {
        let id = self.create(name, &["sh", "-c", "sleep 10"], 20);
        let child = self
            .ctx
            .command_as_user("/bin/sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.sleepers.push(child);
        // Wait for setpriv to become sleep (same pid, same start time).
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
        {
            assert!(Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let start = process_start_time(pid);
        self.set_state(
            &id,
            &ContainerState {
                status: Status::Running,
                pid: Some(pid),
                pid_start: start,
                monitor_pid: Some(pid),
                monitor_start: start,
                boot_id: boot_id(),
                started_at: Some(Utc::now() - chrono::Duration::seconds(3)),
                ..ContainerState::default()
            },
        );
        (id, pid)
    }

    fn set_state(&self, id: &str, state: &ContainerState) {
        self.store.set_container_state(id, state).unwrap();
        self.give_back();
    }

    /// Hands what the library wrote as root back to the test user (never the layers: their
    /// files belong to subordinate ids).
    fn give_back(&self) {
        if !crate::harness::context::running_as_root() {
            return;
        }
        let owner = format!("{}:{}", self.ctx.uid(), self.ctx.gid());
        let root = self.ctx.data.join("nook");
        let mut cmd = Command::new("chown");
        cmd.arg("-R").arg(&owner);
        for p in ["containers.json", "containers", "locks", "tmp"] {
            if root.join(p).exists() {
                cmd.arg(root.join(p));
            }
        }
        assert!(cmd.status().unwrap().success());
    }

    fn nook(&self, args: &[&str]) -> std::process::Output {
        self.ctx.nook(args)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.sleepers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn ps_shows_dockers_columns_and_wording() {
    let mut s = Setup::new();
    let created = s.create("fresh", &["sh", "-c", "sleep 10"], 5);
    let exited = s.exited("done", 3, 120);
    let (running, _) = s.running("web");

    let out = assert_success(&s.nook(&["ps"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header = lines[0];
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(header.starts_with("CONTAINER ID   IMAGE"), "{header}");
    let row = lines[1];
    assert!(row.starts_with(&format!("{}   ", &running[..12])), "{row}");
    assert!(row.contains("\"sh -c 'sleep 10'\""), "{row}");
    assert!(
        row.contains("20 seconds ago") || row.contains("21 seconds ago"),
        "{row}"
    );
    assert!(
        row.contains("Up 3 seconds") || row.contains("Up 4 seconds"),
        "{row}"
    );
    assert!(row.ends_with("web"), "{row}");
    // Columns line up with the header.
    let col = |line: &str, name: &str| line.find(name).unwrap();
    assert_eq!(col(header, "NAMES"), col(row, "web"));

    let all = assert_success(&s.nook(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}|{{.State}}|{{.Status}}|{{.RunningFor}}",
    ]));
    let all: Vec<&str> = all.lines().collect();
    assert_eq!(all.len(), 3, "{all:?}");
    // Newest first.
    assert_eq!(all[0], "fresh|created|Created|5 seconds ago");
    assert!(all[1].starts_with("web|running|Up "), "{all:?}");
    assert_eq!(all[2], "done|exited|Exited (3) 2 minutes ago|2 minutes ago");

    let q = assert_success(&s.nook(&["ps", "-a", "-q"]));
    assert_eq!(
        q,
        format!(
            "{}\n{}\n{}\n",
            &created[..12],
            &running[..12],
            &exited[..12]
        )
    );
    let q = assert_success(&s.nook(&["ps", "-q", "--no-trunc"]));
    assert_eq!(q, format!("{running}\n"));
    assert_eq!(
        assert_success(&s.nook(&["ps", "-l", "-q"])),
        format!("{}\n", &created[..12])
    );
    assert_eq!(
        assert_success(&s.nook(&["ps", "-n", "2", "-q"]))
            .lines()
            .count(),
        2
    );

    let names = |args: &[&str]| {
        let mut full = vec!["ps", "--format", "{{.Names}}"];
        full.extend_from_slice(args);
        assert_success(&s.nook(&full))
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["-f", "status=exited"]), ["done"]);
    assert_eq!(
        names(&["-f", "status=exited", "-f", "status=created"]),
        ["fresh", "done"]
    );
    assert_eq!(names(&["-a", "-f", "name=es"]), ["fresh"]);
    assert_eq!(names(&["-a", "-f", "label=tier=done"]), ["done"]);
    assert_eq!(names(&["-a", "-f", "label=tier"]).len(), 3);
    assert_eq!(
        names(&["-a", "-f", &format!("id={}", &exited[..6])]),
        ["done"]
    );
    assert_eq!(
        names(&["-a", "-f", "name=es", "-f", "status=exited"]),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&[
            "-a",
            "-f",
            &format!("ancestor={}", s.image.config_digest.short())
        ])
        .len(),
        3
    );
    assert_eq!(
        names(&["-a", "-f", &format!("ancestor={}", s.image.reference)]).len(),
        3
    );
    assert!(names(&["-a", "-f", "ancestor=nothing-like-it"]).is_empty());
    let err = assert_failure(&s.nook(&["ps", "-f", "status=sleepy"]), 125);
    assert!(err.contains("invalid filter 'status=sleepy'"), "{err}");
    let err = assert_failure(&s.nook(&["ps", "-f", "colour=red"]), 125);
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    let json = assert_success(&s.nook(&["ps", "-a", "--format", "json"]));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["Names"], "done");
    assert_eq!(rows[2]["Labels"], "tier=done");
    assert_eq!(rows[2]["Command"], "\"true\"");
    let table = assert_success(&s.nook(&["ps", "--format", "table {{.ID}}\\t{{.Names}}"]));
    assert_eq!(
        table,
        format!("CONTAINER ID   NAMES\n{}   web\n", &running[..12])
    );

    let sized = assert_success(&s.nook(&["ps", "-s"]));
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
    assert!(sized.contains("0B (virtual "), "{sized}");
}

#[test]
fn ps_never_shows_a_ghost() {
    let mut s = Setup::new();
    let (id, pid) = s.running("ghost");
    // The monitor dies without recording anything.
    let mut child = s.sleepers.pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(process_start_time(pid).is_none());
    assert_eq!(assert_success(&s.nook(&["ps", "-q"])), "");
    let out = assert_success(&s.nook(&["ps", "-a", "--format", "{{.Status}}"]));
    assert!(out.starts_with("Exited (255) "), "{out}");
    let err = assert_success(&s.nook(&["inspect", "--format", "{{.State.Error}}", &id]));
    assert_eq!(err, "the container's monitor died\n");
}

#[test]
fn rm_refuses_a_running_container_unless_forced() {
    let mut s = Setup::new();
    let (running, pid) = s.running("web");
    let exited = s.exited("done", 0, 5);

    let err = assert_failure(&s.nook(&["rm", "web"]), 125);
    assert!(
        err.contains("cannot remove container \"/web\": container is running: stop the container before removing or force remove"),
        "{err}"
    );
    assert!(process_start_time(pid).is_some());
    // The exited one goes; the output is the name as typed.
    let short = &exited[..8];
    assert_eq!(
        assert_success(&s.nook(&["rm", short])),
        format!("{short}\n")
    );
    assert!(!s.store.container_dir(&exited).exists());

    assert_eq!(assert_success(&s.nook(&["rm", "-f", "/web"])), "/web\n");
    let mut child = s.sleepers.pop().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert!(!s.store.container_dir(&running).exists());
    assert!(s.store.containers().unwrap().is_empty());

    let err = assert_failure(&s.nook(&["rm", "nothing"]), 125);
    assert!(err.contains("no such container: nothing"), "{err}");
}

#[test]
fn rename_and_name_conflicts() {
    let s = Setup::new();
    let a = s.create("first", &["true"], 1);
    s.create("second", &["true"], 1);
    assert_success(&s.nook(&["rename", "first", "renamed"]));
    assert_eq!(s.store.find_container("renamed").unwrap().id, a);
    let err = assert_failure(&s.nook(&["rename", "renamed", "second"]), 125);
    let b = s.store.find_container("second").unwrap().id;
    assert!(
        err.contains(&format!("the container name \"/second\" is already in use by container {b}; remove or rename that container, or choose another name")),
        "{err}"
    );
    let err = assert_failure(&s.nook(&["rename", "renamed", "bad name"]), 125);
    assert!(err.contains("invalid container name"), "{err}");
    let err = assert_failure(&s.nook(&["rename", "gone", "x"]), 125);
    assert!(err.contains("no such container: gone"), "{err}");
}

#[test]
fn wait_prints_exit_codes() {
    let s = Setup::new();
    s.exited("done", 3, 5);
    assert_eq!(assert_success(&s.nook(&["wait", "done"])), "3\n");

    // A container still created: wait blocks until it has run and exited.
    let id = s.create("later", &["true"], 1);
    let waiter = s
        .ctx
        .nook_cmd()
        .args(["wait", "later", "done"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    s.set_state(
        &id,
        &ContainerState {
            status: Status::Exited,
            started_at: Some(Utc::now()),
            finished_at: Some(Utc::now()),
            exit_code: Some(7),
            ..ContainerState::default()
        },
    );
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n3\n");
    assert!(out.status.success());
    assert_failure(&s.nook(&["wait", "nothing"]), 125);
}

#[test]
fn container_prune_removes_stopped_containers() {
    let mut s = Setup::new();
    let created = s.create("fresh", &["true"], 1);
    let exited = s.exited("done", 0, 5);
    let (running, _) = s.running("web");

    // Nobody at a terminal to answer: refused, nothing removed.
    let err = assert_failure(&s.nook(&["container", "prune"]), 125);
    assert!(err.contains("add -f"), "{err}");
    // Answering no keeps everything.
    let out = s.ctx.nook_with_terminal(&["container", "prune"], b"n\n");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N]"
        )
    );
    assert_eq!(s.store.containers().unwrap().len(), 3);

    let out = assert_success(&s.nook(&["container", "prune", "-f"]));
    let mut deleted: Vec<&str> = out.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    deleted.sort();
    let mut expected = vec![created.as_str(), exited.as_str()];
    expected.sort();
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(deleted, expected);
    assert!(out.ends_with("\nTotal reclaimed space: 0B\n"), "{out}");
    let left = s.store.containers().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, running);
    assert_eq!(
        assert_success(&s.nook(&["container", "prune", "-f"])),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn inspect_finds_containers_then_images() {
    let s = Setup::new();
    let id = s.exited("web", 2, 5);
    let out = assert_success(&s.nook(&[
        "inspect",
        "--format",
        "{{.Id}} {{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}} {{.Image}}",
        "web",
    ]));
    assert_eq!(
        out,
        format!("{id} /web exited 2 [true] {}\n", s.image.config_digest)
    );
    let json = assert_success(&s.nook(&["inspect", &id[..10]]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v[0];
    assert_eq!(c["Path"], "true");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["RestartCount"], 0);
    assert_eq!(c["Driver"], "overlay");
    assert_eq!(c["Config"]["Labels"]["tier"], "web");
    assert_eq!(c["HostConfig"]["AutoRemove"], false);
    assert!(c["Mounts"].as_array().unwrap().is_empty());

    // --type picks the kind; the image is still found by name.
    let err = assert_failure(&s.nook(&["inspect", "--type", "image", "web"]), 125);
    assert!(err.contains("no such image: web"), "{err}");
    let err = assert_failure(
        &s.nook(&["inspect", "--type", "container", &s.image.reference]),
        125,
    );
    assert!(err.contains("no such container"), "{err}");
    let out = assert_success(&s.nook(&[
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.Id}}",
        &s.image.reference,
    ]));
    assert_eq!(out, format!("{}\n", s.image.config_digest));
    let out = assert_success(&s.nook(&[
        "inspect",
        "--format",
        "{{.Name}}",
        "web",
        &s.image.reference,
    ]));
    assert_eq!(out, "/web\n<no value>\n");
    let err = assert_failure(&s.nook(&["inspect", "nothing"]), 125);
    assert!(err.contains("no such object: nothing"), "{err}");
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let s = Setup::new();
    let id = s.exited("web", 0, 5);
    for args in [
        vec!["rmi", s.image.reference.as_str()],
        vec!["rmi", "-f", s.image.reference.as_str()],
        vec!["rmi", "-f", s.image.config_digest.short()],
    ] {
        let err = assert_failure(&s.nook(&args), 125);
        assert!(
            err.contains(&format!(
                "image is in use by container {} (web): remove the container first",
                &id[..12]
            )),
            "{err}"
        );
    }
    assert_eq!(
        assert_success(&s.nook(&["images", "-q"])),
        format!("{}\n", s.image.config_digest.short())
    );
    assert_success(&s.nook(&["rm", "web"]));
    assert_success(&s.nook(&["rmi", &s.image.reference]));
    assert_eq!(assert_success(&s.nook(&["images", "-q"])), "");
}

/// Not a timing test: `ps -a` over 500 records must simply finish (run with `--nocapture` to
/// see how long it took).
#[test]
fn ps_copes_with_500_containers() {
    let s = Setup::new();
    for n in 0..500 {
        let id = new_container_id();
        let record = ContainerRecord {
            id,
            name: format!("c{n}"),
            image: s.image.reference.clone(),
            image_id: s.image.config_digest.clone(),
            created: Utc::now() - chrono::Duration::seconds(n),
            config: ContainerConfig {
                cmd: vec!["true".into()],
                ..ContainerConfig::default()
            },
        };
        s.store.create_container(&record).unwrap();
    }
    s.give_back();
    let start = Instant::now();
    let out = assert_success(&s.nook(&["ps", "-a"]));
    eprintln!("ps -a with 500 containers: {:?}", start.elapsed());
    assert_eq!(out.lines().count(), 501);
    assert!(out.lines().nth(1).unwrap().ends_with(" c0"));
    assert!(out.lines().last().unwrap().ends_with(" c499"));
}

/// The ports the runtime recorded for a running container, as `ps`, `port` and `inspect`
/// show them; gone once it is not running.
#[test]
fn a_running_container_shows_its_published_ports() {
    let mut s = Setup::new();
    let (id, _) = s.running("web");
    let mut state = s.store.container_state(&id).unwrap();
    let mapping = |ip: &str, host_port, container_port, protocol| PortMapping {
        host_ip: ip.to_string(),
        host_port,
        container_port,
        protocol,
    };
    state.ports = vec![
        mapping("", 8080, 80, Protocol::Tcp),
        mapping("127.0.0.1", 5353, 53, Protocol::Udp),
        mapping("", 8081, 8081, Protocol::Tcp),
        mapping("", 8082, 8082, Protocol::Tcp),
    ];
    s.set_state(&id, &state);

    let shown = "0.0.0.0:8081-8082->8081-8082/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp";
    assert_eq!(
        assert_success(&s.nook(&["ps", "--format", "{{.Ports}}"])),
        format!("{shown}\n")
    );
    let table = assert_success(&s.nook(&["ps"]));
    let header = table.lines().next().unwrap();
    let at = |column: &str| header.find(column).unwrap();
    assert!(
        at("STATUS") < at("PORTS") && at("PORTS") < at("NAMES"),
        "{header}"
    );
    let row = table.lines().nth(1).unwrap();
    assert_eq!(row[at("PORTS")..].trim_end(), format!("{shown}   web"));

    assert_eq!(
        assert_success(&s.nook(&["port", "web"])),
        "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n8081/tcp -> 0.0.0.0:8081\n8082/tcp -> 0.0.0.0:8082\n"
    );
    assert_eq!(
        assert_success(&s.nook(&["port", "web", "80"])),
        "0.0.0.0:8080\n"
    );
    assert_eq!(
        assert_success(&s.nook(&["port", &id[..12], "53/udp"])),
        "127.0.0.1:5353\n"
    );
    // Without a protocol, Docker means tcp.
    let err = assert_failure(&s.nook(&["port", "web", "53"]), 125);
    crate::harness::assert_one_error_line(&err, "No public port '53' published for web");

    let inspected: serde_json::Value =
        serde_json::from_str(&assert_success(&s.nook(&["inspect", "web"]))).unwrap();
    assert_eq!(
        inspected[0]["NetworkSettings"]["Ports"],
        serde_json::json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "8081/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8081"}],
            "8082/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8082"}],
        })
    );

    // Its monitor gone, the container is not running and publishes nothing.
    for child in &mut s.sleepers {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(assert_success(&s.nook(&["port", "web"])), "");
    assert_eq!(
        assert_success(&s.nook(&["ps", "-a", "--format", "[{{.Ports}}]"])),
        "[]\n"
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&assert_success(&s.nook(&["inspect", "web"]))).unwrap();
    assert_eq!(
        inspected[0]["NetworkSettings"]["Ports"],
        serde_json::json!({})
    );
}
