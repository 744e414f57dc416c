//! Ordinal identity: exactly `<sts>-0 .. <sts>-N-1`, each with its stable network identity
//! (hostname, subdomain, labels, an EndpointSlice hostname) and its own Bound PVC, behind a
//! headless Service. Judged on the last observed state of each object.

use crate::history::{EndpointSliceState, Entry, PodState};

use crate::verdict::{CheckResult, Verdict};
use crate::world::{Seen, World, describe_pod, ordinal_of, pod_ref, pvc_ref};

const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What the documented StatefulSet promises about identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityExpect {
    pub statefulset: String,
    pub service: String,
    pub replicas: u32,
    pub claim_template: String,
    pub storage: String,
    pub access_mode: String,
    /// The `apps.kubernetes.io/pod-index` label exists since Kubernetes 1.28.
    pub require_pod_index_label: bool,
}

impl IdentityExpect {
    /// The documented MySQL StatefulSet with `replicas` replicas.
    pub fn documented(replicas: u32) -> Self {
        Self {
            statefulset: "mysql".into(),
            service: "mysql".into(),
            replicas,
            claim_template: "mysql-persistent-storage".into(),
            storage: "1Gi".into(),
            access_mode: "ReadWriteOnce".into(),
            require_pod_index_label: true,
        }
    }

    fn pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.statefulset)
    }

    fn claim_name(&self, ordinal: u32) -> String {
        format!("{}-{}-{ordinal}", self.claim_template, self.statefulset)
    }
}

/// Checks ordinal identity on the last observed state of each object in `entries`.
pub fn ordinal_identity(entries: &[Entry], expect: &IdentityExpect) -> CheckResult {
    CheckResult::new("ordinal identity", verdict(entries, expect))
}

fn verdict(entries: &[Entry], expect: &IdentityExpect) -> Verdict {
    let world = World::last(entries);
    if world.observations == 0 {
        return Verdict::Unknown {
            reason: "no object was observed".into(),
        };
    }
    let mut evidence = extra_pods(&world, expect);
    let mut ready = Vec::new();
    for ordinal in 0..expect.replicas {
        let name = expect.pod_name(ordinal);
        match world.live_pod(&name) {
            Some(pod) => {
                evidence.extend(pod_identity(pod, ordinal, expect));
                evidence.extend(pod_claim(&world, pod, ordinal, expect));
                if pod.ready && !pod.terminating {
                    ready.push(pod);
                }
            }
            None => evidence.push(missing_pod(&world, &name)),
        }
    }
    evidence.extend(service_is_headless(&world, expect));
    evidence.extend(endpoint_hostnames(&world, &ready, expect));
    Verdict::judge(evidence, Vec::new(), || {
        format!(
            "pods {}-0..{}-{} with hostname, subdomain {}, labels and their Bound {} {} claims; \
             headless Service {}; {} ready endpoints with hostnames",
            expect.statefulset,
            expect.statefulset,
            expect.replicas.saturating_sub(1),
            expect.service,
            expect.storage,
            expect.access_mode,
            expect.service,
            ready.len()
        )
    })
}

/// Live pods of the StatefulSet (named after it or owned by it) outside `0..replicas`.
fn extra_pods(world: &World, expect: &IdentityExpect) -> Vec<String> {
    let sts_uid = world
        .statefulsets
        .get(&expect.statefulset)
        .map(|s| s.state.uid.as_str());
    world
        .pods
        .values()
        .filter_map(Seen::live)
        .filter(|p| {
            let named = p.name.starts_with(&format!("{}-", expect.statefulset));
            let owned = sts_uid.is_some() && p.owner_uid.as_deref() == sts_uid;
            named || owned
        })
        .filter(|p| ordinal_of(&p.name, &expect.statefulset).is_none_or(|i| i >= expect.replicas))
        .map(|p| {
            format!(
                "{} exists but only {}-0..{}-{} should ({})",
                pod_ref(p),
                expect.statefulset,
                expect.statefulset,
                expect.replicas.saturating_sub(1),
                describe_pod(p)
            )
        })
        .collect()
}

fn missing_pod(world: &World, name: &str) -> String {
    match world.pods.get(name) {
        Some(seen) => format!(
            "pod {name} does not exist: uid {} was observed deleted at seq {}",
            seen.state.uid, seen.seq
        ),
        None => format!("pod {name} was never observed"),
    }
}

fn pod_identity(pod: &PodState, ordinal: u32, expect: &IdentityExpect) -> Vec<String> {
    let who = pod_ref(pod);
    let mut evidence = Vec::new();
    if pod.terminating {
        evidence.push(format!("{who} is terminating"));
    }
    if pod.hostname.as_deref() != Some(pod.name.as_str()) {
        evidence.push(format!(
            "{who} has hostname {:?}, expected {:?}",
            pod.hostname, pod.name
        ));
    }
    if pod.subdomain.as_deref() != Some(expect.service.as_str()) {
        evidence.push(format!(
            "{who} has subdomain {:?}, expected {:?} (the headless Service)",
            pod.subdomain, expect.service
        ));
    }
    let index = ordinal.to_string();
    let mut labels = vec![(POD_NAME_LABEL, pod.name.as_str())];
    if expect.require_pod_index_label {
        labels.push((POD_INDEX_LABEL, index.as_str()));
    }
    for (key, want) in labels {
        let got = pod.labels.get(key).map(String::as_str);
        if got != Some(want) {
            evidence.push(format!("{who} has label {key}={got:?}, expected {want:?}"));
        }
    }
    evidence
}

fn pod_claim(world: &World, pod: &PodState, ordinal: u32, expect: &IdentityExpect) -> Vec<String> {
    let name = expect.claim_name(ordinal);
    let who = pod_ref(pod);
    let mut evidence = Vec::new();
    let mounted = pod.claims.get(&expect.claim_template);
    if mounted != Some(&name) {
        evidence.push(format!(
            "{who} mounts claim {mounted:?} as volume {}, expected {name}",
            expect.claim_template
        ));
    }
    let Some(pvc) = world.live_pvc(&name) else {
        evidence.push(match world.pvcs.get(&name) {
            Some(seen) => format!(
                "PVC {name} (uid {}) was observed deleted at seq {}",
                seen.state.uid, seen.seq
            ),
            None => format!("PVC {name} of {who} was never observed"),
        });
        return evidence;
    };
    let pvc_who = pvc_ref(pvc);
    if pvc.phase.as_deref() != Some("Bound") {
        evidence.push(format!("{pvc_who} is {:?}, expected Bound", pvc.phase));
    }
    if pvc.terminating {
        evidence.push(format!("{pvc_who} is terminating"));
    }
    if pvc.storage_request.as_deref() != Some(expect.storage.as_str()) {
        evidence.push(format!(
            "{pvc_who} requests {:?}, expected {}",
            pvc.storage_request, expect.storage
        ));
    }
    if pvc.access_modes != [expect.access_mode.as_str()] {
        evidence.push(format!(
            "{pvc_who} has access modes {:?}, expected [{}]",
            pvc.access_modes, expect.access_mode
        ));
    }
    evidence
}

fn service_is_headless(world: &World, expect: &IdentityExpect) -> Vec<String> {
    let name = &expect.service;
    match world.services.get(name) {
        None => vec![format!("Service {name} was never observed")],
        Some(seen) if seen.gone => vec![format!(
            "Service {name} was observed deleted at seq {}",
            seen.seq
        )],
        Some(seen) if seen.state.cluster_ip.as_deref() != Some("None") => vec![format!(
            "Service {name} is not headless: clusterIP {:?} (seq {})",
            seen.state.cluster_ip, seen.seq
        )],
        Some(_) => Vec::new(),
    }
}

/// Every ready ordinal has an endpoint whose hostname is its pod name, in a live
/// EndpointSlice of the Service: that is what gives it its stable DNS name.
fn endpoint_hostnames(world: &World, ready: &[&PodState], expect: &IdentityExpect) -> Vec<String> {
    let slices: Vec<&EndpointSliceState> = world
        .slices
        .values()
        .filter_map(Seen::live)
        .filter(|s| s.service.as_deref() == Some(expect.service.as_str()))
        .collect();
    let has_hostname = |name: &str| {
        slices
            .iter()
            .flat_map(|s| &s.endpoints)
            .any(|e| e.hostname.as_deref() == Some(name))
    };
    ready
        .iter()
        .filter(|pod| !has_hostname(&pod.name))
        .map(|pod| {
            format!(
                "{} is Ready but no EndpointSlice of Service {} has an endpoint with hostname {} (slices: {})",
                pod_ref(pod),
                expect.service,
                pod.name,
                describe_slices(&slices)
            )
        })
        .collect()
}

fn describe_slices(slices: &[&EndpointSliceState]) -> String {
    if slices.is_empty() {
        return "none".into();
    }
    slices
        .iter()
        .map(|s| {
            let hosts: Vec<&str> = s
                .endpoints
                .iter()
                .filter_map(|e| e.hostname.as_deref())
                .collect();
            format!("{} [{}]", s.name, hosts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::history::{Event, History};
    use crate::testkit::*;

    /// A healthy 3-replica deployment, optionally changed by `edit`.
    fn healthy() -> Vec<Event> {
        let mut events = vec![applied(headless_service())];
        for i in 0..3u32 {
            let name = format!("mysql-{i}");
            events.push(applied(pvc(
                &claim(i),
                &format!("c{i}"),
                &format!("pv-{i}"),
            )));
            events.push(applied(pod(&name, &format!("u{i}"))));
        }
        events.push(applied(slice(&["mysql-0", "mysql-1", "mysql-2"])));
        events
    }

    fn check(events: Vec<Event>) -> Verdict {
        let result = ordinal_identity(
            &History::from_events(events),
            &IdentityExpect::documented(3),
        );
        assert_eq!(result.check, "ordinal identity");
        result.verdict
    }

    #[test]
    fn healthy_statefulset_passes() {
        let v = check(healthy());
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn nothing_observed_is_unknown() {
        assert!(check(vec![mark("start")]).is_unknown());
    }

    #[rstest]
    #[case::extra_ordinal(applied(pod("mysql-3", "u3")), "pod mysql-3 (uid u3) exists")]
    #[case::missing_ordinal(deleted(pod("mysql-1", "u1")), "pod mysql-1 does not exist: uid u1")]
    #[case::wrong_hostname(
        applied(pod("mysql-1", "u1").with(|p| p.hostname = Some("db".into()))),
        "pod mysql-1 (uid u1) has hostname"
    )]
    #[case::wrong_subdomain(
        applied(pod("mysql-2", "u2").with(|p| p.subdomain = None)),
        "pod mysql-2 (uid u2) has subdomain None"
    )]
    #[case::missing_index_label(
        applied(pod("mysql-0", "u0").with(|p| { p.labels.remove(POD_INDEX_LABEL); })),
        "pod mysql-0 (uid u0) has label apps.kubernetes.io/pod-index=None"
    )]
    #[case::wrong_pod_name_label(
        applied(pod("mysql-0", "u0").with(|p| { p.labels.insert(POD_NAME_LABEL.into(), "mysql-1".into()); })),
        "label statefulset.kubernetes.io/pod-name=Some(\"mysql-1\")"
    )]
    #[case::claims_another_ordinals_pvc(
        applied(pod("mysql-1", "u1").with(|p| { p.claims.insert(TEMPLATE.into(), claim(2)); })),
        "pod mysql-1 (uid u1) mounts claim Some(\"mysql-persistent-storage-mysql-2\")"
    )]
    #[case::pvc_pending(
        applied(pvc(&claim(2), "c2", "pv-2").with_phase("Pending")),
        "PVC mysql-persistent-storage-mysql-2 (uid c2, PV pv-2) is Some(\"Pending\"), expected Bound"
    )]
    #[case::pvc_wrong_size(
        applied(crate::history::PvcState { storage_request: Some("2Gi".into()), ..pvc(&claim(0), "c0", "pv-0") }),
        "requests Some(\"2Gi\"), expected 1Gi"
    )]
    #[case::pvc_wrong_access_mode(
        applied(crate::history::PvcState { access_modes: vec!["ReadWriteMany".into()], ..pvc(&claim(0), "c0", "pv-0") }),
        "has access modes [\"ReadWriteMany\"], expected [ReadWriteOnce]"
    )]
    #[case::pvc_deleted(deleted(pvc(&claim(1), "c1", "pv-1")), "PVC mysql-persistent-storage-mysql-1 (uid c1) was observed deleted")]
    #[case::service_not_headless(
        applied(crate::history::ServiceState { cluster_ip: Some("10.96.0.7".into()), ..headless_service() }),
        "Service mysql is not headless"
    )]
    #[case::endpoint_hostname_missing(applied(slice(&["mysql-0", "mysql-2"])), "pod mysql-1 (uid u1) is Ready but no EndpointSlice")]
    fn violation_is_named(#[case] breaking: Event, #[case] expected: &str) {
        let mut events = healthy();
        events.push(breaking);
        let v = check(events);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence().iter().any(|e| e.contains(expected)),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn endpoint_hostname_is_required_only_for_ready_pods() {
        let mut events = healthy();
        events.push(applied(pod("mysql-1", "u1").not_ready()));
        events.push(applied(slice(&["mysql-0", "mysql-2"])));
        assert!(check(events).is_pass());
    }

    #[test]
    fn pod_index_label_can_be_waived_for_old_servers() {
        let mut events = healthy();
        events.push(applied(pod("mysql-0", "u0").with(|p| {
            p.labels.remove(POD_INDEX_LABEL);
        })));
        let mut expect = IdentityExpect::documented(3);
        expect.require_pod_index_label = false;
        assert!(verdict(&History::from_events(events), &expect).is_pass());
    }

    trait PvcExt {
        fn with_phase(self, phase: &str) -> Self;
    }
    impl PvcExt for crate::history::PvcState {
        fn with_phase(mut self, phase: &str) -> Self {
            self.phase = Some(phase.into());
            self
        }
    }
}
