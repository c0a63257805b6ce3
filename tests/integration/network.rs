//! Rootless networking through the real helpers, pasta and slirp4netns, as the test user:
//! published TCP and UDP ports answer on the host's loopback, the host's own loopback is
//! reachable only when allowed, `none`, `host` and `container:NAME` modes, and no helper
//! outlives its container however the container ends. Traffic stays on loopback and in the
//! containers' own namespaces.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::harness::context::pid1_and_monitor;
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

fn ctx_with_tools() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::network_tools().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

/// The host address `nook port NAME SPEC` prints.
fn published(ctx: &TestContext, name: &str, spec: &str) -> SocketAddr {
    let out = assert_success(&ctx.nook(&["port", name, spec]));
    out.trim().parse().unwrap_or_else(|_| panic!("`{out}`"))
}

/// The body of `GET path`, retried until the server in the container listens.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        match attempt {
            Ok(text) if text.contains("200 OK") => {
                return text
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "GET {path} from {addr}: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One datagram's answer from the echo server, resent until it comes.
fn udp_echo(addr: SocketAddr) -> String {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 256];
    loop {
        socket.send_to(b"ping", addr).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(Instant::now() < deadline, "no UDP answer from {addr}");
    }
}

fn port_is_free(addr: SocketAddr, udp: bool) -> bool {
    if udp {
        UdpSocket::bind(addr).is_ok()
    } else {
        TcpListener::bind(addr).is_ok()
    }
}

/// pasta and slirp4netns processes serving containers of this context's store, found by
/// their log (standard error), which is in the container's directory.
fn helpers(ctx: &TestContext) -> Vec<String> {
    let store = ctx.data.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let comm = comm.trim();
            if !comm.starts_with("pasta") && !comm.starts_with("passt") && comm != "slirp4netns" {
                return None;
            }
            let log = std::fs::read_link(e.path().join("fd/2")).ok()?;
            log.to_string_lossy()
                .starts_with(&store)
                .then(|| format!("{comm} {}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Helpers plus nook's own processes for this store's containers (monitors, and the UDP
/// relays they fork).
fn leftovers(ctx: &TestContext) -> Vec<String> {
    let root = format!("--root\0{}", ctx.data.display());
    let mut all = helpers(ctx);
    all.extend(
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let cmdline =
                    String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                        .into_owned();
                (cmdline.contains(&root) && cmdline.contains("__monitor"))
                    .then(|| cmdline.replace('\0', " "))
            }),
    );
    all
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

const SERVE: &str = "httpd -p 80 -h /www && exec udp-echo 5353";

#[test]
fn published_tcp_and_udp_ports_answer_through_pasta_and_slirp4netns() {
    let (ctx, image) = ctx_with_tools();
    let mut addresses = Vec::new();
    for net in ["pasta", "slirp4netns"] {
        let name = format!("web-{net}");
        assert_success(&ctx.nook(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            net,
            "-p",
            "127.0.0.1::80",
            "-p",
            "127.0.0.1::5353/udp",
            &image,
            "sh",
            "-c",
            SERVE,
        ]));
        let tcp = published(&ctx, &name, "80/tcp");
        let udp = published(&ctx, &name, "5353/udp");
        assert_eq!(http_get(tcp, "/"), "hello from nook\n", "{net}");
        assert_eq!(http_get(tcp, "/big").len(), 8 << 20, "{net}");
        assert_eq!(udp_echo(udp), "echo:ping", "{net}");
        let ports = assert_success(&ctx.nook(&[
            "ps",
            "--format",
            "{{.Ports}}",
            "-f",
            &format!("name={name}"),
        ]));
        assert!(
            ports.contains(&format!("127.0.0.1:{}->80/tcp", tcp.port())),
            "{ports}"
        );
        addresses.push((name, tcp, udp));
    }
    // Both at once, each on its own ports.
    for (name, tcp, udp) in &addresses {
        assert_eq!(http_get(*tcp, "/"), "hello from nook\n", "{name}");
        assert_eq!(udp_echo(*udp), "echo:ping", "{name}");
    }
    assert_eq!(helpers(&ctx).len(), 2, "{:?}", helpers(&ctx));

    // However the container ends, its helper goes and its ports are free again: `stop`
    // for the pasta one, SIGKILL of PID 1 for the slirp4netns one.
    let (name, tcp, udp) = &addresses[0];
    assert_success(&ctx.nook(&["stop", "-t", "1", name]));
    let (_, tcp2, udp2) = &addresses[1];
    let (pid1, _) = pid1_and_monitor(&ctx, "web-slirp4netns");
    kill9(pid1);
    wait_until("the helpers and relays are gone", || {
        leftovers(&ctx).is_empty()
    });
    for (addr, udp_port) in [(tcp, false), (udp, true), (tcp2, false), (udp2, true)] {
        wait_until(&format!("{addr} is free ({name})"), || {
            port_is_free(*addr, udp_port)
        });
    }
    assert_eq!(
        assert_success(&ctx.nook(&["ps", "--format", "{{.Ports}}"])),
        "",
        "an exited container shows no ports"
    );
}

#[test]
fn a_killed_monitor_takes_its_network_helper_and_ports_with_it() {
    let (ctx, image) = ctx_with_tools();
    for net in ["pasta", "slirp4netns"] {
        let name = format!("k-{net}");
        assert_success(&ctx.nook(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            net,
            "-p",
            "127.0.0.1::80",
            &image,
            "sh",
            "-c",
            SERVE,
        ]));
        let tcp = published(&ctx, &name, "80");
        assert_eq!(http_get(tcp, "/"), "hello from nook\n");
        let (_, monitor) = pid1_and_monitor(&ctx, &name);
        kill9(monitor);
        wait_until(&format!("{net} is gone"), || leftovers(&ctx).is_empty());
        wait_until(&format!("{tcp} is free"), || port_is_free(tcp, false));
        // Exited, not a ghost, and it can start again on the same port.
        let status = assert_success(&ctx.nook(&[
            "ps",
            "-a",
            "--format",
            "{{.Status}}",
            "-f",
            &format!("name={name}"),
        ]));
        assert!(status.starts_with("Exited"), "{status}");
        assert_success(&ctx.nook(&["start", &name]));
        assert_eq!(
            http_get(published(&ctx, &name, "80"), "/"),
            "hello from nook\n"
        );
        assert_success(&ctx.nook(&["rm", "-f", &name]));
        wait_until(&format!("{net} is gone after rm -f"), || {
            helpers(&ctx).is_empty()
        });
    }
}

/// A server on the host's loopback that greets every connection.
fn host_greeter() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"host says hi\n");
        }
    });
    port
}

#[test]
fn the_hosts_loopback_is_reachable_only_when_allowed() {
    let (ctx, image) = ctx_with_tools();
    let port = host_greeter();
    // What the container hears from TARGET:PORT. Bounded: Debian 12's pasta does not always
    // pass the host's close on to a connection the container half-closed first, so `nc`
    // may wait after the greeting has arrived.
    let dial = |net: &str, target: &str| {
        assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            net,
            &image,
            "sh",
            "-c",
            &format!("timeout 5 nc -w 3 {target} {port} </dev/null; true"),
        ]))
    };
    for net in ["slirp4netns:allow_host_loopback=true", "pasta:--map-gw"] {
        let out = dial(net, "host.containers.internal");
        assert!(out.starts_with("host says hi\n"), "{net}: {out}");
    }
    let out = dial("slirp4netns:allow_host_loopback=true", "10.0.2.2");
    assert!(out.starts_with("host says hi\n"), "{out}");
    // Not allowed: slirp4netns refuses its gateway's loopback, pasta forwards nothing from
    // the container's own loopback, and neither names the host.
    for (net, target) in [("slirp4netns", "10.0.2.2"), ("pasta", "127.0.0.1")] {
        let out = dial(net, target);
        assert!(!out.contains("host says hi"), "{net} reached the host");
        let hosts = assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            net,
            &image,
            "cat",
            "/etc/hosts",
        ]));
        assert!(
            !hosts.contains("host.containers.internal"),
            "{net}: {hosts}"
        );
    }
}

#[test]
fn none_host_and_container_modes() {
    let (ctx, image) = ctx_with_tools();
    let links = |net: &str| {
        assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            net,
            &image,
            "sh",
            "-c",
            "ip -o link | cut -d: -f2 | tr -d ' ' | sort | tr '\\n' ' '",
        ]))
    };
    assert_eq!(links("none"), "lo ");
    // Docker's spellings: --net, and bridge for the default helper.
    let bridged = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--net",
        "bridge",
        &image,
        "sh",
        "-c",
        "ip -o link | wc -l",
    ]));
    assert_eq!(bridged.trim(), "2", "lo and the helper's interface");
    let mut host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_links.sort();
    let host_links: String = host_links.iter().map(|l| format!("{l} ")).collect();
    assert_eq!(links("host"), host_links);
    assert_eq!(
        assert_success(&ctx.nook(&[
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "cat",
            "/etc/resolv.conf"
        ])),
        ""
    );

    // container:NAME shares the other container's namespace, listener included.
    assert_success(&ctx.nook(&[
        "run", "-d", "--name", "base", &image, "httpd", "-f", "-p", "8080", "-h", "/www",
    ]));
    let fetch = [
        "run",
        "--rm",
        "--network",
        "container:base",
        &image,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit; sleep 0.2; done; exit 1",
    ];
    assert_eq!(assert_success(&ctx.nook(&fetch)), "hello from nook\n");
    assert_success(&ctx.nook(&["stop", "-t", "1", "base"]));
    let err = assert_failure(&ctx.nook(&fetch), 125);
    assert_one_error_line(&err, "is not running");
    let err = assert_failure(
        &ctx.nook(&[
            "run",
            "--rm",
            "--network",
            "container:nobody",
            &image,
            "true",
        ]),
        125,
    );
    assert_one_error_line(&err, "nobody");
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])).lines().count(), 1);
}

#[test]
fn port_and_helper_problems_are_refused_before_anything_runs() {
    let (ctx, image) = ctx_with_tools();
    let busy = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let busy_spec = format!("{busy_port}:80");
    // Only the id-mapping helpers on PATH: no pasta, no slirp4netns.
    let bare = ctx.home.join("bare-bin");
    std::fs::create_dir_all(&bare).unwrap();
    for tool in ["newuidmap", "newgidmap", "fuse-overlayfs"] {
        let _ = std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), bare.join(tool));
    }
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", "80:80"], "ip_unprivileged_port_start"),
        (vec!["-p", &busy_spec], "already in use"),
        (
            vec!["--network", "slirp4netns", "-p", &busy_spec],
            "already in use",
        ),
        (vec!["--network", "none", "-p", "8080:80"], "--network none"),
        (vec!["--network", "bogus"], "unknown network mode `bogus`"),
        (
            vec!["--network", "slirp4netns:allow_host_loopback=maybe"],
            "allow_host_loopback",
        ),
        (
            vec!["--add-host", "h:host-gateway"],
            "needs a network that reaches the host",
        ),
    ];
    for (options, needle) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(options);
        args.extend([image.as_str(), "true"]);
        let err = assert_failure(&ctx.nook(&args), 125);
        assert_one_error_line(&err, needle);
    }
    for (net, package) in [("pasta", "passt"), ("slirp4netns", "slirp4netns")] {
        let out = ctx
            .nook_cmd()
            .env("PATH", &bare)
            .args(["run", "--rm", "--network", net, &image, "true"])
            .output()
            .unwrap();
        let err = assert_failure(&out, 125);
        assert_one_error_line(&err, &format!("Debian package `{package}`"));
    }
    assert_eq!(assert_success(&ctx.nook(&["ps", "-aq"])), "");
    assert!(helpers(&ctx).is_empty(), "{:?}", helpers(&ctx));
    drop(busy);
}

#[test]
fn resolv_conf_and_hosts_follow_the_network_and_the_options() {
    let (ctx, image) = ctx_with_tools();
    let show = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--name", "dnsbox"];
        all.extend_from_slice(args);
        all.extend([
            image.as_str(),
            "cat",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/hostname",
        ]);
        assert_success(&ctx.nook(&all))
    };
    let pasta = show(&["--network", "pasta", "--hostname", "box"]);
    // The host's resolvers where the container can reach them, else pasta's forwarder.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let reachable: Vec<String> = host_resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| {
            s.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .collect();
    let expected = if reachable.is_empty() {
        vec!["169.254.1.1".to_string()]
    } else {
        reachable
    };
    for server in expected {
        assert!(pasta.contains(&format!("nameserver {server}\n")), "{pasta}");
    }
    assert!(
        pasta.contains("\tbox dnsbox\n") && pasta.ends_with("box\n"),
        "{pasta}"
    );
    let slirp = show(&["--network", "slirp4netns"]);
    assert!(slirp.contains("nameserver 10.0.2.3\n"), "{slirp}");
    assert!(slirp.contains("10.0.2.100\t"), "{slirp}");
    let custom = show(&["--dns", "9.9.9.9", "--add-host", "db:10.0.0.5"]);
    assert!(custom.contains("nameserver 9.9.9.9\n"), "{custom}");
    assert!(!custom.contains("169.254.1.1"), "{custom}");
    assert!(custom.contains("10.0.0.5\tdb\n"), "{custom}");
    let gateway = show(&[
        "--network",
        "pasta:--map-gw",
        "--add-host",
        "gw:host-gateway",
    ]);
    assert!(gateway.contains("host.containers.internal"), "{gateway}");
    assert!(gateway.contains("\tgw\n"), "{gateway}");
}
