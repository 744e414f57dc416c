//! One fresh, labelled namespace per test, deleted afterwards (also when the test panics),
//! and never a namespace that lacks the harness's label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::support::names::random_suffix;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::drive::conditions::{describe_pod, describe_pvc, is_pod_ready, pod_restart_count};
use crate::support::detached;
use crate::support::settings::keep_requested;

/// The label every harness namespace carries, as `key=value` (a label selector).
pub const LABEL: &str = "app.kubernetes.io/managed-by=sts-conformance";
pub const LABEL_KEY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_VALUE: &str = "sts-conformance";
/// Annotation holding the unsanitized test name.
pub const TEST_ANNOTATION: &str = "sts-conformance/test";
pub const PREFIX: &str = "sts-e2e-";

/// How long the drop guard waits for its best-effort delete.
const DROP_DELETE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("failed to create namespace {name}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to look up namespace {name}")]
    Get {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete namespace {name}")]
    Delete {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "refusing to delete namespace {name}: it lacks the label {LABEL}, so the harness did not create it"
    )]
    NotManaged { name: String },
}

/// A namespace created for one test. Call [`TestNamespace::delete`] at the end; if the
/// test panics first, dropping it deletes the namespace best-effort.
pub struct TestNamespace {
    name: String,
    client: Client,
    /// What the drop guard builds its own client from (a `Client` is bound to the
    /// runtime that made it). Defaults to the shared cluster's config.
    cleanup_config: Option<kube::Config>,
    /// Set once `delete` has run (or been skipped for E2E_KEEP), so Drop does nothing.
    finished: bool,
}

impl TestNamespace {
    /// Creates `sts-e2e-<sanitized test name>-<5 random>` with [`LABEL`].
    pub async fn create(client: &Client, test_name: &str) -> Result<TestNamespace, NamespaceError> {
        let name = namespace_name(test_name, &random_suffix(5));
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    LABEL_KEY.to_owned(),
                    LABEL_VALUE.to_owned(),
                )])),
                annotations: Some(BTreeMap::from([(
                    TEST_ANNOTATION.to_owned(),
                    test_name.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|source| NamespaceError::Create {
                name: name.clone(),
                source,
            })?;
        info!(namespace = %name, test = test_name, "created test namespace");
        Ok(TestNamespace {
            name,
            client: client.clone(),
            cleanup_config: crate::cluster::target::shared_config(),
            finished: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the kube config the drop guard uses, for a namespace created on a cluster
    /// other than [`crate::cluster::target::shared_cluster`]. Without one, the guard only prints
    /// how to delete the namespace (it never guesses a cluster).
    pub fn set_cleanup_config(&mut self, config: kube::Config) {
        self.cleanup_config = Some(config);
    }

    /// Deletes the namespace (background propagation), unless `E2E_KEEP=1`, in which case
    /// it prints how to delete it. Refuses a namespace without the harness's label.
    pub async fn delete(mut self) -> Result<(), NamespaceError> {
        self.finished = true;
        if keep_requested() {
            print_kept(&self.name);
            return Ok(());
        }
        delete_managed(&self.client, &self.name).await
    }

    /// Pods (phase, ready, node, restarts, each container's current and previous log), PVCs
    /// (phase, volume) and recent Events, for a failure message. Errors are written into the text rather than returned.
    pub async fn dump(&self, client: &Client) -> String {
        dump_namespace(client, &self.name).await
    }
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestNamespace({})", self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if keep_requested() {
            print_kept(&self.name);
            return;
        }
        let Some(config) = self.cleanup_config.clone() else {
            warn!(
                namespace = %self.name,
                "test namespace not deleted by the test; delete it with: kubectl delete namespace {}",
                self.name
            );
            return;
        };
        warn!(namespace = %self.name, "test namespace not deleted by the test (panic?); deleting it");
        delete_from_other_thread(self.name.clone(), config);
    }
}

fn print_kept(name: &str) {
    eprintln!("E2E_KEEP=1: kept namespace {name}; delete it with: kubectl delete namespace {name}");
}

/// The test's runtime may be unwinding (and a current-thread runtime cannot run tasks
/// while we block it), so delete from a fresh thread with its own runtime and client.
fn delete_from_other_thread(name: String, config: kube::Config) {
    let what = format!("delete namespace {name}");
    let thread = format!("delete-{name}");
    let owned = name.clone();
    let work = move || async move { delete_with_fresh_client(&owned, config).await };
    match detached::run(&thread, &what, DROP_DELETE_TIMEOUT, work) {
        Ok(()) => info!(namespace = %name, "deleted test namespace from the drop guard"),
        Err(err) => warn!(namespace = %name, "drop guard: {}", crate::support::errors::chain(&err)),
    }
}

async fn delete_with_fresh_client(name: &str, config: kube::Config) -> Result<(), String> {
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    delete_managed(&client, name)
        .await
        .map_err(|e| e.to_string())
}

/// Deletes `name` if it carries the harness's label; a missing namespace is fine.
pub async fn delete_managed(client: &Client, name: &str) -> Result<(), NamespaceError> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(namespace) = api
        .get_opt(name)
        .await
        .map_err(|source| NamespaceError::Get {
            name: name.to_owned(),
            source,
        })?
    else {
        return Ok(());
    };
    check_managed(&namespace)?;
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            info!(namespace = %name, "deleting test namespace");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(NamespaceError::Delete {
            name: name.to_owned(),
            source,
        }),
    }
}

/// The namespace carries `app.kubernetes.io/managed-by=sts-conformance`.
pub fn check_managed(namespace: &Namespace) -> Result<(), NamespaceError> {
    let labelled = namespace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_KEY))
        .is_some_and(|v| v == LABEL_VALUE);
    if labelled {
        Ok(())
    } else {
        Err(NamespaceError::NotManaged {
            name: namespace.metadata.name.clone().unwrap_or_default(),
        })
    }
}

/// `sts-e2e-<sanitized>-<suffix>`, at most 63 characters (a DNS label).
pub fn namespace_name(test_name: &str, suffix: &str) -> String {
    let budget = 63 - PREFIX.len() - 1 - suffix.len();
    let mut middle = sanitize(test_name);
    middle.truncate(budget);
    let middle = middle.trim_end_matches('-');
    let middle = if middle.is_empty() { "test" } else { middle };
    format!("{PREFIX}{middle}-{suffix}")
}

/// Lowercase alphanumerics, every other run of characters becomes one `-`.
pub fn sanitize(test_name: &str) -> String {
    let mut out = String::with_capacity(test_name.len());
    for c in test_name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// See [`TestNamespace::dump`].
pub async fn dump_namespace(client: &Client, namespace: &str) -> String {
    let mut out = format!("--- namespace {namespace} ---\n");
    dump_pods(client, namespace, &mut out).await;
    dump_pvcs(client, namespace, &mut out).await;
    dump_events(client, namespace, &mut out).await;
    out
}

async fn dump_pods(client: &Client, namespace: &str, out: &mut String) {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let _ = writeln!(out, "pods ({}):", list.items.len());
            for pod in &list.items {
                let _ = writeln!(
                    out,
                    "  {}: {} (ready={}, restarts={})",
                    pod.metadata.name.as_deref().unwrap_or("?"),
                    describe_pod(pod),
                    is_pod_ready(pod),
                    pod_restart_count(pod)
                );
                dump_pod_logs(&api, pod, out).await;
            }
        }
        Err(err) => {
            let _ = writeln!(out, "pods: failed to list: {err}");
        }
    }
}

/// How many of the last log lines a dump shows per container (current and previous).
pub const DUMP_LOG_LINES: i64 = 30;

/// Each container's log, current and previous (the one before its last restart: what a
/// crashed mysqld said), the last [`DUMP_LOG_LINES`] lines each. Needs `get` on `pods/log`.
async fn dump_pod_logs(api: &Api<Pod>, pod: &Pod, out: &mut String) {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    for container in containers {
        for previous in [false, true] {
            let params = LogParams {
                container: Some(container.name.clone()),
                previous,
                tail_lines: Some(DUMP_LOG_LINES),
                limit_bytes: Some(32 * 1024),
                ..LogParams::default()
            };
            let which = if previous { "previous" } else { "current" };
            match api.logs(name, &params).await {
                Ok(text) if text.trim().is_empty() => {
                    let _ = writeln!(out, "    log {}/{which}: (empty)", container.name);
                }
                Ok(text) => {
                    let _ = writeln!(
                        out,
                        "    log {}/{which} (last {DUMP_LOG_LINES} lines):",
                        container.name
                    );
                    for line in text.lines() {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
                Err(kube::Error::Api(status)) if previous && status.code == 400 => {
                    let _ = writeln!(
                        out,
                        "    log {}/{which}: none ({})",
                        container.name, status.message
                    );
                }
                Err(err) => {
                    let _ = writeln!(
                        out,
                        "    log {}/{which}: failed to read: {err}",
                        container.name
                    );
                }
            }
        }
    }
}

async fn dump_pvcs(client: &Client, namespace: &str, out: &mut String) {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let _ = writeln!(out, "persistentvolumeclaims ({}):", list.items.len());
            for pvc in &list.items {
                let _ = writeln!(
                    out,
                    "  {}: {}",
                    pvc.metadata.name.as_deref().unwrap_or("?"),
                    describe_pvc(pvc)
                );
            }
        }
        Err(err) => {
            let _ = writeln!(out, "persistentvolumeclaims: failed to list: {err}");
        }
    }
}

/// How many of the most recent events a dump shows.
const DUMP_EVENTS: usize = 40;

async fn dump_events(client: &Client, namespace: &str, out: &mut String) {
    let api = Api::<Event>::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let mut events = list.items;
            events.sort_by_key(event_time);
            let skip = events.len().saturating_sub(DUMP_EVENTS);
            let _ = writeln!(
                out,
                "events (last {} of {}):",
                events.len() - skip,
                events.len()
            );
            for event in &events[skip..] {
                let _ = writeln!(out, "  {}", describe_event(event));
            }
        }
        Err(err) => {
            let _ = writeln!(out, "events: failed to list: {err}");
        }
    }
}

fn event_time(event: &Event) -> String {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            event
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
        .unwrap_or_default()
}

fn describe_event(event: &Event) -> String {
    format!(
        "{} {} {}/{}: {} {}",
        event_time(event),
        event.type_.as_deref().unwrap_or("?"),
        event.involved_object.kind.as_deref().unwrap_or("?"),
        event.involved_object.name.as_deref().unwrap_or("?"),
        event.reason.as_deref().unwrap_or("?"),
        event.message.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_dns_labels() {
        assert_eq!(
            namespace_name("suites::identity::Pods_have_stable_names", "ab12c"),
            "sts-e2e-suites-identity-pods-have-stable-names-ab12c"
        );
        let long = namespace_name(&"x".repeat(200), "ab12c");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-ab12c"));
        assert_eq!(namespace_name("::", "ab12c"), "sts-e2e-test-ab12c");
        // Truncation must not leave "--".
        let edge = namespace_name(&format!("{}-y", "a".repeat(48)), "zzzzz");
        assert!(!edge.contains("--"), "{edge}");
    }

    #[test]
    fn refuses_namespaces_without_the_label() {
        let ns = |labels: &str| -> Namespace {
            serde_yaml::from_str(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels: {labels}\n"
            ))
            .unwrap()
        };
        check_managed(&ns("{app.kubernetes.io/managed-by: sts-conformance}")).unwrap();
        for labels in ["{}", "{app.kubernetes.io/managed-by: helm}", "null"] {
            let err = check_managed(&ns(labels)).unwrap_err();
            assert!(matches!(&err, NamespaceError::NotManaged { name } if name == "prod"));
            assert!(err.to_string().contains(LABEL), "{err}");
        }
    }

    #[test]
    fn label_constant_matches_key_and_value() {
        assert_eq!(LABEL, format!("{LABEL_KEY}={LABEL_VALUE}"));
    }
}
