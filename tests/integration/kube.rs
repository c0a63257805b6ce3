//! `nook generate kube` (and `nook kube generate`): containers created with options become
//! one Pod, read back here with Kubernetes' own types (`k8s-openapi`), so the manifest is
//! one a cluster accepts field for field. Running it is `helpers/interop`'s part (Podman).

use std::os::unix::fs::PermissionsExt;

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

fn pulled(ctx: &TestContext) -> String {
    let reference = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &reference]));
    reference
}

fn read_pod(yaml: &str) -> Pod {
    serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("not a Pod: {e}\n{yaml}"))
}

fn generate(ctx: &TestContext, names: &[&str]) -> (Pod, String) {
    let (pod, _, stderr) = generate_text(ctx, names);
    (pod, stderr)
}

fn generate_text(ctx: &TestContext, names: &[&str]) -> (Pod, String, String) {
    let mut args = vec!["generate", "kube"];
    args.extend_from_slice(names);
    let out = ctx.nook(&args);
    let yaml = assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (read_pod(&yaml), yaml, stderr)
}

fn containers(pod: &Pod) -> &[Container] {
    &pod.spec.as_ref().expect("a Pod spec").containers
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn container_options_become_the_pods_fields() {
    let ctx = TestContext::new();
    let image = pulled(&ctx);
    let data = ctx.home.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config_file = ctx.home.join("app.conf");
    std::fs::write(&config_file, "x=1\n").unwrap();
    let bind = format!("{}:/data:ro", data.display());
    let bind_file = format!(
        "type=bind,source={},target=/etc/app.conf",
        config_file.display()
    );
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "web_1",
        "-e",
        "GREETING=hello world",
        "-e",
        "ANSWER=no",
        "-w",
        "/srv",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
        "-v",
        &bind,
        "--mount",
        &bind_file,
        "-v",
        "cache:/cache",
        "--tmpfs",
        "/scratch:size=16m",
        "-u",
        "1000:1000",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "--read-only",
        "--hostname",
        "web",
        "--add-host",
        "db:10.0.0.5",
        "--dns",
        "9.9.9.9",
        &image,
        "sh",
        "-c",
        "echo $GREETING",
    ]));
    let (pod, yaml, stderr) = generate_text(&ctx, &["web_1"]);
    // YAML 1.1 readers (kubectl's) would take a plain `no` for false.
    assert!(yaml.contains("value: \"no\"\n"), "{yaml}");
    assert!(
        stderr.contains("container `web_1` is named `web-1` in the Pod"),
        "{stderr}"
    );
    assert!(!stderr.contains("nook push"), "a pulled image: {stderr}");
    assert_eq!(pod.metadata.name.as_deref(), Some("web-1-pod"));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.hostname.as_deref(), Some("web"));
    assert_eq!(spec.dns_policy.as_deref(), Some("None"));
    assert_eq!(
        spec.dns_config.as_ref().unwrap().nameservers,
        strings(&["9.9.9.9"])
    );
    let aliases = spec.host_aliases.as_ref().unwrap();
    assert_eq!(aliases[0].ip, "10.0.0.5");
    assert_eq!(aliases[0].hostnames, strings(&["db"]));

    let [c] = containers(&pod) else {
        panic!("one container")
    };
    assert_eq!(c.name, "web-1");
    assert_eq!(c.image.as_deref(), Some(image.as_str()));
    // The image's ENTRYPOINT (none) stays; the command replaces its CMD.
    assert_eq!(c.command, None);
    assert_eq!(c.args, strings(&["sh", "-c", "echo $GREETING"]));
    let env: Vec<(String, String)> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    // PATH is the image's: left out.
    assert_eq!(
        env,
        [
            ("GREETING".to_string(), "hello world".to_string()),
            ("ANSWER".to_string(), "no".to_string())
        ]
    );
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    let ports: Vec<_> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.container_port,
                p.host_port,
                p.host_ip.clone(),
                p.protocol.clone(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (80, Some(8080), None, Some("TCP".to_string())),
            (
                53,
                Some(5353),
                Some("127.0.0.1".to_string()),
                Some("UDP".to_string())
            ),
        ]
    );
    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_user, Some(1000));
    assert_eq!(security.run_as_group, Some(1000));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.privileged, None);
    let caps = security.capabilities.as_ref().unwrap();
    assert_eq!(caps.add, strings(&["NET_ADMIN"]));
    assert_eq!(caps.drop, strings(&["CHOWN"]));

    let volumes = spec.volumes.as_ref().unwrap();
    let mounts = c.volume_mounts.as_ref().unwrap();
    let volume_of = |path: &str| {
        let mount = mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("no mount at {path}: {mounts:?}"));
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        (mount.read_only, volume.clone())
    };
    let (read_only, volume) = volume_of("/data");
    assert_eq!(read_only, Some(true));
    let host = volume.host_path.unwrap();
    assert_eq!(host.path, data.to_str().unwrap());
    assert_eq!(host.type_.as_deref(), Some("Directory"));
    let (read_only, volume) = volume_of("/etc/app.conf");
    assert_eq!(read_only, None);
    assert_eq!(volume.host_path.unwrap().type_.as_deref(), Some("File"));
    let (_, volume) = volume_of("/cache");
    assert_eq!(volume.persistent_volume_claim.unwrap().claim_name, "cache");
    let (_, volume) = volume_of("/scratch");
    let empty = volume.empty_dir.unwrap();
    assert_eq!(empty.medium.as_deref(), Some("Memory"));
    assert_eq!(empty.size_limit.unwrap().0, (16u64 << 20).to_string());

    // With a Service, the ports go to it and leave the Pod's hostPort.
    let yaml = assert_success(&ctx.nook(&["generate", "kube", "--service", "web_1"]));
    let (pod_text, service_text) = yaml.split_once("\n---\n").expect("two documents");
    let pod = read_pod(pod_text);
    let ports = containers(&pod)[0].ports.clone().unwrap();
    assert!(ports.iter().all(|p| p.host_port.is_none()), "{ports:?}");
    let service: Service = serde_norway::from_str(service_text).unwrap();
    let spec = service.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    assert_eq!(spec.selector.unwrap()["app"], "web-1-pod");
    let ports: Vec<(i32, Option<String>)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.port, p.protocol))
        .collect();
    assert_eq!(
        ports,
        [(80, Some("TCP".to_string())), (53, Some("UDP".to_string()))]
    );
}

#[test]
fn several_containers_make_one_pod_written_to_a_file() {
    let ctx = TestContext::new();
    let image = pulled(&ctx);
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "app",
        "--entrypoint",
        "/bin/sh",
        "--privileged",
        &image,
    ]));
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "sidecar",
        "--network",
        "container:app",
        "-it",
        "-u",
        "app",
        &image,
    ]));
    let out = ctx.nook(&["kube", "generate", "-f", "pod.yaml", "app", "sidecar"]);
    assert_eq!(assert_success(&out), "", "the YAML goes to the file");
    let yaml = std::fs::read_to_string(ctx.home.join("pod.yaml")).unwrap();
    assert!(yaml.starts_with("# "), "{yaml}");
    let pod = read_pod(&yaml);
    assert_eq!(pod.metadata.name.as_deref(), Some("app-pod"));
    let [app, sidecar] = containers(&pod) else {
        panic!("two containers: {yaml}")
    };
    assert_eq!(app.name, "app");
    // --entrypoint drops the image's CMD: the command is given alone.
    assert_eq!(app.command, strings(&["/bin/sh"]));
    assert_eq!(app.args, None);
    assert_eq!(
        app.security_context.as_ref().unwrap().privileged,
        Some(true)
    );
    assert_eq!(sidecar.name, "sidecar");
    assert_eq!(
        (sidecar.command.clone(), sidecar.args.clone()),
        (None, None)
    );
    assert_eq!((sidecar.stdin, sidecar.tty), (Some(true), Some(true)));
    // A user name is looked up in the image's /etc/passwd: a Pod takes ids.
    let security = sidecar.security_context.as_ref().unwrap();
    assert_eq!(
        (security.run_as_user, security.run_as_group),
        (Some(1000), None)
    );

    // The same through Podman's older spelling, on stdout: the same Pod.
    let (again, _) = generate(&ctx, &["app", "sidecar"]);
    assert_eq!(again, pod);
}

#[test]
fn what_cannot_go_to_a_cluster_is_refused_or_named() {
    let ctx = TestContext::new();
    let image = pulled(&ctx);
    let err = assert_failure(&ctx.nook(&["generate", "kube", "nothere"]), 125);
    assert_one_error_line(&err, "no such container: nothere");
    let err = assert_failure(&ctx.nook(&["generate", "kube"]), 125);
    assert!(err.contains("CONTAINER"), "{err}");

    assert_success(&ctx.nook(&["create", "--name", "app", &image]));
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "sidecar",
        "--network",
        "container:app",
        &image,
    ]));
    let err = assert_failure(&ctx.nook(&["generate", "kube", "sidecar"]), 125);
    assert_one_error_line(&err, "which is not in this Pod");
    assert!(err.contains("nook generate kube sidecar"), "{err}");
    let err = assert_failure(&ctx.nook(&["generate", "kube", "app", "app"]), 125);
    assert_one_error_line(&err, "is named twice");
    let err = assert_failure(
        &ctx.nook(&["generate", "kube", "-f", "missing/pod.yaml", "app"]),
        125,
    );
    assert_one_error_line(&err, "the directory `missing` does not exist");
    assert!(!ctx.home.join("missing").exists());

    // An image made here and never pushed: written, with a warning naming the way out.
    let archive = ctx.home.join("rootfs.tar");
    std::fs::write(&archive, fixtures::base_tar()).unwrap();
    assert_success(&ctx.nook(&["import", archive.to_str().unwrap(), "localonly:1"]));
    assert_success(&ctx.nook(&["create", "--name", "local", "localonly:1", "true"]));
    let (pod, stderr) = generate(&ctx, &["local"]);
    assert_eq!(
        containers(&pod)[0].image.as_deref(),
        Some("docker.io/library/localonly:1")
    );
    assert!(
        stderr.contains("exists only in this store") && stderr.contains("nook push"),
        "{stderr}"
    );

    // Pushed under another name: the pushed reference, pinned by digest.
    let destination = format!("{}/kube/localonly:1", crate::harness::registry().addr);
    assert_success(&ctx.nook(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localonly:1",
        &destination,
    ]));
    let (pod, stderr) = generate(&ctx, &["local"]);
    let pushed = containers(&pod)[0].image.clone().unwrap();
    assert!(
        pushed.starts_with(&format!(
            "{}/kube/localonly@sha256:",
            crate::harness::registry().addr
        )),
        "{pushed}"
    );
    assert!(
        stderr.contains("in no registry under that name"),
        "{stderr}"
    );

    // Created from a digest: written as it was named, with no warning.
    let by_digest = format!(
        "{}@{}",
        fixtures::single_layer().repository,
        fixtures::single_layer().manifest_digest
    );
    assert_success(&ctx.nook(&["create", "--name", "pinned", &by_digest]));
    let (pod, stderr) = generate(&ctx, &["pinned"]);
    assert_eq!(
        containers(&pod)[0].image.as_deref(),
        Some(by_digest.as_str())
    );
    assert!(!stderr.to_lowercase().contains("warning"), "{stderr}");
}
