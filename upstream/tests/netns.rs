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

#[test]
fn host_reaches_a_pod_address_in_a_node_namespace_and_everything_is_removed() {
    if !root() {
        return;
    }
    let run = netns::new_run_id();
    let nodes = vec!["w0".to_string(), "w1".to_string()];
    let mut net = PodNetwork::create(&run, &nodes).expect("create");
    let bridge = net.bridge().to_owned();
    let host = net.host_ip();
    assert!(host.octets()[1] >= 240, "{host}");
    let w1 = net.node("w1").expect("w1");
    assert_eq!(w1.node_ip().octets()[2], 2);
    let pod_ip = w1.allocate_pod_ip().expect("allocate");
    assert_eq!(pod_ip.octets()[3], 2);
    let second = w1.allocate_pod_ip().expect("allocate 2");
    assert_eq!(second.octets()[3], 3);
    w1.release_pod_ip(second).expect("release");
    assert!(w1.release_pod_ip(second).is_err(), "double release refused");

    // A listener on the pod address, bound inside the namespace.
    let listener = w1
        .run_in(move || TcpListener::bind(SocketAddr::from((pod_ip, 0))))
        .expect("enter")
        .expect("bind in ns");
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        s.write_all(b"hello").unwrap();
        peer
    });
    let mut c =
        TcpStream::connect_timeout(&SocketAddr::from((pod_ip, port)), Duration::from_secs(5))
            .expect("host connects to the pod address");
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "hello");
    assert_eq!(
        server.join().unwrap().ip(),
        std::net::IpAddr::V4(host),
        "the host's bridge address"
    );

    // A command entered into the namespace sees the node's interface and no default route.
    let mut cmd = Command::new("ip");
    cmd.args(["-4", "-o", "addr", "show"]);
    w1.enter(&mut cmd).expect("enter");
    let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert!(out.contains(&format!("{}/16", w1.node_ip())), "{out}");
    assert!(out.contains(&format!("{pod_ip}/32")), "{out}");
    let mut cmd = Command::new("ip");
    cmd.args(["route", "show", "default"]);
    w1.enter(&mut cmd).expect("enter");
    let out = cmd.output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "no default route in a node namespace"
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
        let net = PodNetwork::create(&run, &["a".to_string()]).expect("create");
        bridge = net.bridge().to_owned();
        net.node("a").unwrap().allocate_pod_ip().expect("allocate");
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
    let net = PodNetwork::create(&run, &["a".to_string()]).expect("create");
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
