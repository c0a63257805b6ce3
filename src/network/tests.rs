use super::ports::{PortMapping, Protocol};
use super::*;
use std::path::Path;

#[test]
fn modes_parse_and_print_back() {
    for spec in [
        "none",
        "host",
        "pasta",
        "pasta:--map-gw",
        "pasta:--map-gw,-T,5201",
        "slirp4netns",
        "slirp4netns:allow_host_loopback=true,mtu=1500",
        "slirp4netns:cidr=10.5.0.0/24,enable_ipv6=true",
        "container:0123abcd",
    ] {
        assert_eq!(Mode::parse(spec).unwrap().spec(), spec);
    }
    assert_eq!(
        Mode::parse("slirp4netns:port_handler=slirp4netns").unwrap(),
        Mode::Slirp4netns(SlirpOptions::default())
    );
    for bad in [
        "bridge2",
        "container:",
        "none:x",
        "slirp4netns:allow_host_loopback=yes",
        "slirp4netns:port_handler=rootlesskit",
        "slirp4netns:cidr=10.0.0.0/31",
        "slirp4netns:bogus=1",
    ] {
        assert!(Mode::parse(bad).is_err(), "{bad}");
    }
    assert!(Mode::parse("pasta:--map-gw").unwrap().reaches_host());
    assert!(!Mode::parse("pasta").unwrap().reaches_host());
    assert!(
        Mode::parse("slirp4netns:allow_host_loopback=true")
            .unwrap()
            .reaches_host()
    );
    assert!(!Mode::Host.own_namespace() && Mode::None.own_namespace());
}

#[test]
fn default_gateway_from_proc_net_route() {
    let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    assert_eq!(
        parse_default_gateway(text),
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    assert_eq!(parse_default_gateway("Iface\tDestination\n"), None);
}

#[test]
fn pasta_forwards_exactly_the_published_ports() {
    let args = helper::pasta_args(
        &[],
        &[
            PortMapping::new("", 8080, 80, Protocol::Tcp),
            PortMapping::new("127.0.0.1", 5353, 53, Protocol::Udp),
        ],
        Path::new("/c/pasta.pid"),
        "/proc/7/ns/net",
    );
    let joined = args.join(" ");
    assert!(
        joined.contains("-t 8080:80 -u 127.0.0.1/5353:53"),
        "{joined}"
    );
    assert!(joined.contains("-T none -U none --no-map-gw"), "{joined}");
    assert!(joined.contains("--mtu 65520"), "{joined}");
    assert!(joined.ends_with("--netns /proc/7/ns/net"), "{joined}");
    let args = helper::pasta_args(
        &["--map-gw".into()],
        &[],
        Path::new("/c/pasta.pid"),
        "/proc/7/ns/net",
    );
    let joined = args.join(" ");
    assert!(!joined.contains("map-gw"), "{joined}");
    assert!(joined.contains("-t none -u none"), "{joined}");
}

#[test]
fn slirp4netns_arguments() {
    let args = helper::slirp_args(
        &SlirpOptions {
            allow_host_loopback: true,
            mtu: None,
            cidr: None,
            enable_ipv6: false,
        },
        "/proc/7/ns/net",
    );
    assert_eq!(
        args,
        [
            "--configure",
            "--mtu=65520",
            "--ready-fd=3",
            "--exit-fd=4",
            "--netns-type=path",
            "/proc/7/ns/net",
            "tap0"
        ]
    );
    let args = helper::slirp_args(&SlirpOptions::default(), "/proc/7/ns/net");
    assert!(args.contains(&"--disable-host-loopback".to_string()));
}

#[test]
fn hosts_and_resolv_conf() {
    let adds = vec!["db:10.0.0.5".to_string(), "gw:host-gateway".to_string()];
    let net = EtcNetwork {
        hostname: "abc123",
        name: "web",
        address: Some("10.0.2.100".parse().unwrap()),
        host_gateway: Some("10.0.2.2".parse().unwrap()),
        add_hosts: &adds,
    };
    let hosts = hosts_file(&net, None).unwrap();
    assert!(hosts.contains("10.0.2.100\tabc123 web\n"), "{hosts}");
    assert!(
        hosts.contains("10.0.2.2\thost.containers.internal host.docker.internal\n"),
        "{hosts}"
    );
    assert!(hosts.contains("10.0.0.5\tdb\n") && hosts.contains("10.0.2.2\tgw\n"));
    let unreachable = EtcNetwork {
        host_gateway: None,
        ..net.clone()
    };
    assert!(
        hosts_file(&unreachable, None)
            .unwrap_err()
            .contains("host-gateway")
    );
    let host_resolv = "search example.org\nnameserver 10.255.255.53\noptions edns0\n";
    assert_eq!(
        resolv_conf(&[], Resolvers::Forwarder(PASTA_DNS.into()), host_resolv),
        "search example.org\noptions edns0\nnameserver 169.254.1.1\n"
    );
    assert_eq!(resolv_conf(&[], Resolvers::Unreachable, host_resolv), "");
    let pasta = Resolvers::HostElseForwarder(PASTA_DNS.into());
    assert!(resolv_conf(&[], pasta, host_resolv).ends_with("nameserver 10.255.255.53\n"));
    assert_eq!(
        resolv_conf(&[], pasta, "nameserver 127.0.0.53\n"),
        "nameserver 169.254.1.1\n"
    );
    assert_eq!(
        resolv_conf(&["9.9.9.9".into()], Resolvers::Unreachable, ""),
        "nameserver 9.9.9.9\n"
    );
    assert!(resolv_conf(&[], Resolvers::Host, host_resolv).contains("nameserver 10.255.255.53"));
}

#[test]
fn listening_ports_from_proc_net_tcp() {
    let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0\n\
   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0\n";
    assert_eq!(helper::parse_listening(text), [8080]);
}
