//! Unit tests of the target settings, the `auto` selection and the unreachable API server's
//! error.

use super::*;
use crate::cluster::manifests::KIND_CLUSTER_CONFIG;
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<TargetSettings, TargetError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TargetSettings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn target_settings_come_from_the_settings() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.choice, TargetChoice::Auto);
    assert!(s.chaos_commands.is_err());
    assert!(s.repo_root.join(KIND_CLUSTER_CONFIG).is_file());
    let s = settings(&[
        ("E2E_TARGET", "Kind"),
        ("E2E_TIMEOUT_SCALE", "0.5"),
        ("E2E_NODE_KILL_CMD", "k {node}"),
        ("E2E_NODE_START_CMD", "s {node}"),
    ])
    .unwrap();
    assert_eq!(s.choice, TargetChoice::Fixed(TargetKind::Kind));
    assert_eq!(s.timeout_scale, 0.5);
    assert_eq!(s.chaos_commands.unwrap().kill_node, "k {node}");
    let err = settings(&[("E2E_TIMEOUT_SCALE", "0")]).unwrap_err();
    assert!(matches!(
        err,
        TargetError::Settings(SettingsError {
            variable: "E2E_TIMEOUT_SCALE",
            ..
        })
    ));
}

#[test]
fn auto_falls_back_to_upstream_then_sim_when_kind_is_missing() {
    let cli = KindCli::new("/nonexistent/kind", "/nonexistent/docker");
    let built = select_with(TargetChoice::Auto, &cli, &|| Ok(()));
    assert_eq!(built.kind, TargetKind::Upstream);
    assert!(built.reason.contains("docker"), "{}", built.reason);
    let not_root = || Err("not root: its pods live in network namespaces".to_owned());
    let s = select_with(TargetChoice::Auto, &cli, &not_root);
    assert_eq!(s.kind, TargetKind::Sim);
    assert!(s.reason.contains("docker"), "{}", s.reason);
    assert!(
        s.reason.contains("neither is upstream (not root"),
        "{}",
        s.reason
    );
    let fixed = select(TargetChoice::Fixed(TargetKind::Kubeconfig), &cli);
    assert_eq!(fixed.kind, TargetKind::Kubeconfig);
}

#[tokio::test]
async fn unreachable_api_server_error_names_the_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let err = verify_reachable(&config, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
