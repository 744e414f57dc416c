//! Unit tests of the control plane's pieces: missing binaries, bounded waits, an early exit,
//! log tails and the kubeconfig.

use super::*;

#[test]
fn missing_binary_names_it_and_the_build_script() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("etcd"), "").unwrap();
    let err = Binaries::find(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("kube-apiserver not found in"), "{msg}");
    assert!(msg.contains("scripts/build-upstream.sh"), "{msg}");
}

async fn starting(dir: &Path) -> Starting {
    Starting {
        spawner: Arc::new(Spawner::start(tokio::runtime::Handle::current()).unwrap()),
        components: vec![],
        logs: dir.to_owned(),
    }
}

#[tokio::test]
async fn a_wait_that_times_out_names_the_timeout_what_and_the_last_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = starting(dir.path()).await;
    let i = s
        .spawn("sleeper", Path::new("sleep"), vec!["30".into()])
        .await
        .unwrap();
    let err = s
        .wait(
            i,
            "sleeper_ready",
            Duration::from_millis(300),
            "the sleeper",
            || async { Err("HTTP 500: [-]etcd failed".to_owned()) },
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("timed out after 300ms (sleeper_ready) waiting for the sleeper; last seen: HTTP 500: [-]etcd failed; log: "), "{msg}");
    s.abort(Duration::from_secs(1)).await;
    assert!(s.components.is_empty());
    s.spawner.close().await;
}

#[tokio::test]
async fn a_component_that_exits_before_ready_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = starting(dir.path()).await;
    let i = s
        .spawn(
            "crasher",
            Path::new("sh"),
            vec!["-c".into(), "echo bad flag --foo >&2; exit 3".into()],
        )
        .await
        .unwrap();
    let err = s
        .wait(
            i,
            "crasher_ready",
            Duration::from_secs(10),
            "the crasher",
            || async { Err("connection refused".to_owned()) },
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("crasher exited (exit status: 3) before it was ready"),
        "{msg}"
    );
    assert!(msg.ends_with("bad flag --foo"), "{msg}");
    s.spawner.close().await;
}

#[test]
fn log_tail_keeps_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.log");
    std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
    assert_eq!(log_tail(&p, 2), "c\nd");
    assert_eq!(log_tail(&dir.path().join("none"), 2), "");
}

#[test]
fn kubeconfig_is_readable_by_kube_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1))
        .unwrap()
        .write(&dir.path().join("pki"))
        .unwrap();
    let path = dir.path().join("kc");
    write_kubeconfig(&path, "https://10.250.0.1:6443", &pki).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("upstream"));
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://10.250.0.1:6443"));
}
