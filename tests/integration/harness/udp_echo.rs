//! `udp-echo PORT`: answers every datagram on PORT with `echo:` and the datagram. Built by
//! the test harness as a static program for the network tests' image.

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "5353".into());
    let socket = std::net::UdpSocket::bind(format!("0.0.0.0:{port}")).expect("bind");
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf).expect("recv");
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(&buf[..n]);
        let _ = socket.send_to(&reply, from);
    }
}
