//! Pod networking against the real kernel: needs root (skipped, with the reason printed,
//! otherwise).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use kube_upstream::netns::{self, PodNetwork};

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED: pod networking needs root");
    }
    root
}

fn links() -> String {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip args` inside `node`'s namespace; returns stdout.
fn ip_in(node: &netns::NodeNetwork, args: &[&str]) -> String {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    node.enter(&mut cmd).expect("enter");
    let out = cmd.output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn host_ip_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap()
}

#[test]
fn host_and_other_nodes_reach_a_node_pod_block_and_everything_is_removed() {
    if !root() {
        return;
    }
    let forward_before = host_ip_forward();
    let run = netns::new_run_id();
    let nodes = vec!["w0".to_string(), "w1".to_string()];
    let mut net = PodNetwork::create_routed(&run, &nodes).expect("create");
    let bridge = net.bridge().to_owned();
    let host = net.host_ip();
    assert!(host.octets()[1] >= 240, "{host}");
    let w0 = net.node("w0").expect("w0");
    let w1 = net.node("w1").expect("w1");
    assert_eq!(w1.node_ip().octets()[2..], [0, 3]);
    assert_eq!(w1.pod_cidr(), format!("10.{}.2.0/24", host.octets()[1]));

    // The node's link address, no default route, the Service range and the other node's
    // pod block routed, and forwarding on in the node (never on the host).
    let addrs = ip_in(&w1, &["-4", "-o", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{}/24", w1.node_ip())), "{addrs}");
    assert!(ip_in(&w1, &["route", "show", "default"]).is_empty());
    let routes = ip_in(&w1, &["route", "show"]);
    assert!(
        routes.contains(&format!("{} via {host}", netns::SERVICE_RANGE)),
        "{routes}"
    );
    assert!(
        routes.contains(&format!("{} via {}", w0.pod_cidr(), w0.node_ip())),
        "{routes}"
    );
    let forward = w1
        .run_in(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"))
        .expect("enter")
        .expect("read ip_forward");
    assert_eq!(forward.trim(), "1");
    assert_eq!(host_ip_forward(), forward_before, "the host's ip_forward");

    // An address of w1's pod block (its CNI bridge's gateway, here on lo) is reached from
    // the host and from w0 through w1's address.
    let pod_ip = w1.pod_gateway();
    ip_in(&w1, &["addr", "add", &format!("{pod_ip}/32"), "dev", "lo"]);
    let listener = w1
        .run_in(move || TcpListener::bind(SocketAddr::from((pod_ip, 0))))
        .expect("enter")
        .expect("bind in ns");
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        (0..2)
            .map(|_| {
                let (mut s, peer) = listener.accept().expect("accept");
                s.write_all(b"hello").unwrap();
                peer.ip()
            })
            .collect::<Vec<_>>()
    });
    let target = SocketAddr::from((pod_ip, port));
    let hello = move || {
        let mut c = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
        let mut buf = String::new();
        c.read_to_string(&mut buf)?;
        Ok::<_, std::io::Error>(buf)
    };
    assert_eq!(hello().expect("the host connects"), "hello");
    let from_w0 = w0.run_in(hello).expect("enter");
    assert_eq!(from_w0.expect("w0 connects"), "hello");
    assert_eq!(
        server.join().unwrap(),
        [
            std::net::IpAddr::V4(host),
            std::net::IpAddr::V4(w0.node_ip())
        ],
        "the host's bridge address, then w0's"
    );

    let veths: Vec<String> = net.nodes().map(|n| n.host_veth().to_owned()).collect();
    assert!(
        netns::list_netns()
            .iter()
            .any(|n| n == &format!("sts-{run}-w0"))
    );
    assert!(links().contains(&bridge));
    net.remove().expect("remove");
    assert!(
        !netns::list_netns()
            .iter()
            .any(|n| n.starts_with(&format!("sts-{run}-")))
    );
    assert!(!links().contains(&bridge), "bridge left");
    for veth in veths {
        assert!(!links().contains(&format!(" {veth}@")), "{veth} left");
    }
    assert!(!std::path::Path::new(netns::STATE_DIR).join(&run).exists());
}

#[test]
fn drop_removes_the_network() {
    if !root() {
        return;
    }
    let run = netns::new_run_id();
    let bridge;
    {
        let net = PodNetwork::create_routed(&run, &["a".to_string()]).expect("create");
        bridge = net.bridge().to_owned();
    }
    assert!(
        !netns::list_netns()
            .iter()
            .any(|n| n.starts_with(&format!("sts-{run}-")))
    );
    assert!(!links().contains(&bridge));
}

#[test]
fn cleanup_stale_removes_a_dead_owners_leftovers() {
    if !root() {
        return;
    }
    let run = netns::new_run_id();
    let net = PodNetwork::create_routed(&run, &["a".to_string()]).expect("create");
    let bridge = net.bridge().to_owned();
    let owned = tempfile::tempdir().unwrap().keep();
    net.note_owned_dir(&owned).unwrap();
    // Pretend the owner died: a dead pid in the marker, and no Drop.
    std::fs::write(
        std::path::Path::new(netns::STATE_DIR)
            .join(&run)
            .join("owner"),
        "999999999 1",
    )
    .unwrap();
    std::mem::forget(net);
    let cleaned = netns::cleanup_stale().expect("cleanup");
    assert!(cleaned.runs.contains(&run), "{cleaned:?}");
    assert!(!owned.exists(), "the run's recorded dir is removed");
    assert!(
        !netns::list_netns()
            .iter()
            .any(|n| n.starts_with(&format!("sts-{run}-")))
    );
    assert!(!links().contains(&bridge));
}
