//! Published ports, `--dns` and `--add-host` as `run`, `create`, `inspect`, `ps` and `port`
//! take and show them. No traffic goes through a port here: that needs the runtime's
//! network helpers and is tested with them.

use serde_json::{Value, json};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

fn ctx_with(image: &fixtures::Image) -> (TestContext, String) {
    let ctx = TestContext::new();
    let reference = image.reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &reference]));
    (ctx, reference)
}

fn inspect(ctx: &TestContext, name: &str) -> Value {
    let out = assert_success(&ctx.nook(&["inspect", "--type", "container", name]));
    let mut all: Value = serde_json::from_str(&out).unwrap();
    all[0].take()
}

#[test]
fn bad_port_dns_and_host_options_leave_no_container() {
    let (ctx, image) = ctx_with(fixtures::single_layer());
    let cases: &[(&[&str], &str)] = &[
        (&["-p", "8080:0"], "invalid container port `0` in `8080:0`"),
        (&["-p", "70000:80"], "invalid host port `70000`"),
        (&["-p", "http"], "invalid container port `http`"),
        (&["-p", ""], "no container port"),
        (&["-p", "8080-8081:80-82"], "ranges of different lengths"),
        (
            &["-p", "8080-8082:80"],
            "any one free host port from 8080-8082",
        ),
        (&["-p", "82-80"], "the first port is the lower one (80-82)"),
        (&["-p", "80/sctp"], "nook forwards only tcp and udp"),
        (&["-p", "80/http"], "unknown protocol `http`"),
        (
            &["-p", "localhost:8080:80"],
            "invalid IP address `localhost`",
        ),
        (&["-p", "127.0.0.1:80"], "write 127.0.0.1::80"),
        (
            &["-p", "8080:80", "-p", "8080:81"],
            "host port 0.0.0.0:8080/tcp is published twice",
        ),
        (&["--dns", "dns.quad9.net"], "invalid --dns `dns.quad9.net`"),
        (&["--add-host", "db"], "invalid --add-host `db`"),
        (
            &["--add-host", "db:example.com"],
            "invalid IP address `example.com`",
        ),
    ];
    for (options, needle) in cases {
        for verb in ["run", "create"] {
            let mut args = vec![verb];
            args.extend_from_slice(options);
            args.extend([image.as_str(), "true"]);
            let err = assert_failure(&ctx.nook(&args), 125);
            assert_one_error_line(&err, needle);
        }
    }
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
}

#[test]
fn create_records_ports_dns_and_hosts_as_inspect_shows_them() {
    let (ctx, image) = ctx_with(fixtures::single_layer());
    assert_success(&ctx.nook(&[
        "create",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::53/udp",
        "--dns",
        "9.9.9.9",
        "--add-host",
        "db=10.0.0.5",
        "--add-host",
        "gw:host-gateway",
        "--network",
        "pasta:--map-gw",
        &image,
        "true",
    ]));
    let c = inspect(&ctx, "web");
    assert_eq!(
        c["HostConfig"]["PortBindings"],
        json!({
            "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        })
    );
    assert_eq!(
        c["Config"]["ExposedPorts"],
        json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["HostConfig"]["Dns"], json!(["9.9.9.9"]));
    assert_eq!(
        c["HostConfig"]["ExtraHosts"],
        json!(["db:10.0.0.5", "gw:host-gateway"])
    );
    // Not running: nothing is published.
    assert_eq!(c["NetworkSettings"]["Ports"], json!({}));
    let ports = assert_success(&ctx.nook(&["ps", "-a", "--format", "{{.Names}} [{{.Ports}}]"]));
    assert_eq!(ports, "web []\n");

    // Without any of the options, Docker's empty values.
    assert_success(&ctx.nook(&["create", "--name", "plain", &image, "true"]));
    let c = inspect(&ctx, "plain");
    assert_eq!(c["HostConfig"]["PortBindings"], json!({}));
    assert_eq!(c["Config"].get("ExposedPorts"), None);
    assert_eq!(c["HostConfig"]["Dns"], json!([]));
    assert_eq!(c["HostConfig"]["ExtraHosts"], Value::Null);
}

#[test]
fn publish_all_takes_the_image_s_exposed_ports() {
    let (ctx, image) = ctx_with(fixtures::exposing_ports());
    assert_success(&ctx.nook(&[
        "create", "--name", "all", "-P", "-p", "8080:80", &image, "true",
    ]));
    assert_eq!(
        inspect(&ctx, "all")["HostConfig"]["PortBindings"],
        json!({
            "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
            "443/tcp": [{"HostIp": "", "HostPort": ""}],
            "53/udp": [{"HostIp": "", "HostPort": ""}],
        })
    );
    // Without -P, the image's ports are not published.
    assert_success(&ctx.nook(&["create", "--name", "none", &image, "true"]));
    assert_eq!(
        inspect(&ctx, "none")["HostConfig"]["PortBindings"],
        json!({})
    );
}

#[test]
fn port_shows_nothing_for_a_container_that_is_not_running() {
    let (ctx, image) = ctx_with(fixtures::single_layer());
    assert_success(&ctx.nook(&["create", "--name", "web", "-p", "8080:80", &image, "true"]));
    let out = ctx.nook(&["port", "web"]);
    assert_eq!(assert_success(&out), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // Asking for one port that is not published is Docker's error.
    let err = assert_failure(&ctx.nook(&["port", "web", "80"]), 125);
    assert_one_error_line(&err, "No public port '80' published for web");
    let err = assert_failure(&ctx.nook(&["port", "web", "80/sctp"]), 125);
    assert_one_error_line(&err, "No public port '80/sctp' published for web");
    let err = assert_failure(&ctx.nook(&["port", "web", "http"]), 125);
    assert_one_error_line(&err, "invalid port `http`");
    // An exited container publishes nothing either.
    assert_success(&ctx.nook(&["start", "-a", "web"]));
    assert_eq!(assert_success(&ctx.nook(&["port", "web"])), "");

    let err = assert_failure(&ctx.nook(&["port", "nothing-here"]), 125);
    assert_one_error_line(&err, "no such container: nothing-here");
    let err = assert_failure(&ctx.nook(&["port", "nothing-here", "80"]), 125);
    assert_one_error_line(&err, "no such container: nothing-here");
}
