//! Ordinal identity: exactly `<sts>-0 .. <sts>-N-1`, each with its stable network identity
//! (hostname, subdomain, labels, an EndpointSlice endpoint) and its own Bound PVC, behind a
//! headless Service. Judged on the last observed state of each object.
//!
//! DNS identity is the endpoint the headless Service's DNS name resolves through: for each
//! Ready pod, an endpoint with hostname = pod name, `ready` true, `targetRef.uid` = the
//! pod's uid (not a previous incarnation's) and exactly the pod's IP as its addresses. And
//! the other way round, strictly: every ready endpoint of the Service's live slices stands
//! for a live, Ready pod of the set, with that pod's uid and exactly its address: no
//! phantom ordinal, no stale second endpoint of an earlier incarnation, no extra address
//! (each would make DNS answer with an address no pod of that name has). DNS identity is
//! judged only on Ready pods, so with none Ready (and replicas expected) the check is
//! Unknown.

use crate::history::{EndpointSliceState, EndpointState, Entry, PodState};

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
    /// `spec.ordinals.start`: the first ordinal (0 unless set).
    pub start: u32,
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
            start: 0,
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
    let mut unknowns = Vec::new();
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for ordinal in expect.start..expect.start + expect.replicas {
        let name = expect.pod_name(ordinal);
        match world.live_pod(&name) {
            Some(pod) => {
                evidence.extend(pod_identity(pod, ordinal, expect));
                evidence.extend(pod_claim(&world, pod, ordinal, expect));
                if pod.ready && !pod.terminating {
                    ready.push(pod);
                } else {
                    not_ready.push(pod.name.as_str());
                }
            }
            None => evidence.push(missing_pod(&world, &name)),
        }
    }
    evidence.extend(service_is_headless(&world, expect));
    let dns = endpoints_of_ready_pods(&world, &ready, expect);
    evidence.extend(dns.evidence);
    unknowns.extend(dns.unknowns);
    if expect.replicas > 0 && ready.is_empty() {
        unknowns.push(format!(
            "no pod of {} was Ready, so DNS identity was not judged",
            expect.statefulset
        ));
    }
    Verdict::judge(evidence, unknowns, || {
        let unjudged = if not_ready.is_empty() {
            String::new()
        } else {
            format!(" (not Ready, DNS not judged: {})", not_ready.join(", "))
        };
        format!(
            "pods {}-{}..{}-{} with hostname, subdomain {}, labels and their Bound {} {} claims; \
             headless Service {}; {} Ready pods each with a ready endpoint of its hostname, uid \
             and pod IP{unjudged}",
            expect.statefulset,
            expect.start,
            expect.statefulset,
            (expect.start + expect.replicas).saturating_sub(1),
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
        .filter(|p| {
            ordinal_of(&p.name, &expect.statefulset)
                .is_none_or(|i| i < expect.start || i >= expect.start + expect.replicas)
        })
        .map(|p| {
            format!(
                "{} exists but only {}-{}..{}-{} should ({})",
                pod_ref(p),
                expect.statefulset,
                expect.start,
                expect.statefulset,
                (expect.start + expect.replicas).saturating_sub(1),
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

/// What the DNS part of the check found.
#[derive(Default)]
struct DnsFindings {
    evidence: Vec<String>,
    unknowns: Vec<String>,
}

/// Every Ready pod has an endpoint in a live EndpointSlice of the Service that stands for
/// that very pod: hostname = its name, ready, targetRef uid = its uid, its pod IP among the
/// addresses. That is what gives it its stable DNS name.
fn endpoints_of_ready_pods(
    world: &World,
    ready: &[&PodState],
    expect: &IdentityExpect,
) -> DnsFindings {
    let slices: Vec<&EndpointSliceState> = world
        .slices
        .values()
        .filter_map(Seen::live)
        .filter(|s| s.service.as_deref() == Some(expect.service.as_str()))
        .collect();
    let mut found = DnsFindings::default();
    for pod in ready {
        let Some(ip) = pod.pod_ip.as_deref() else {
            found.unknowns.push(format!(
                "{} is Ready but its pod IP was never observed, so its endpoint was not judged",
                pod_ref(pod)
            ));
            continue;
        };
        let candidates: Vec<(&str, &EndpointState)> = slices
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| (s.name.as_str(), e)))
            .filter(|(_, e)| e.hostname.as_deref() == Some(pod.name.as_str()))
            .collect();
        if candidates.is_empty() {
            found.evidence.push(format!(
                "{} is Ready but no EndpointSlice of Service {} has an endpoint with hostname {} \
                 (slices: {})",
                pod_ref(pod),
                expect.service,
                pod.name,
                describe_slices(&slices)
            ));
            continue;
        }
        let mismatches: Vec<String> = candidates
            .iter()
            .map(|(slice, e)| (slice, endpoint_mismatches(e, pod, ip)))
            .filter(|(_, wrong)| !wrong.is_empty())
            .map(|(slice, wrong)| format!("in slice {slice} it {}", wrong.join(", ")))
            .collect();
        // A pod may appear in two slices while the controller moves it: each ready
        // endpoint is judged on its own below; here, one must stand for the pod.
        if mismatches.len() == candidates.len() {
            found.evidence.push(format!(
                "{} is Ready with IP {ip} but no endpoint with hostname {} stands for it: {}",
                pod_ref(pod),
                pod.name,
                mismatches.join("; ")
            ));
        }
    }
    found
        .evidence
        .extend(ready_endpoints_without_their_pod(world, &slices, expect));
    found
}

/// Every ready endpoint of the Service must stand for a live, Ready pod of the set: its
/// hostname names the pod, its targetRef uid is the pod's uid and its addresses are exactly
/// the pod's IP. One line per endpoint that does not.
fn ready_endpoints_without_their_pod(
    world: &World,
    slices: &[&EndpointSliceState],
    expect: &IdentityExpect,
) -> Vec<String> {
    let mut evidence = Vec::new();
    for slice in slices {
        for e in slice.endpoints.iter().filter(|e| e.ready) {
            let who = format!(
                "in slice {} the ready endpoint {} (target {} uid {}, addresses [{}])",
                slice.name,
                e.hostname.as_deref().unwrap_or("without hostname"),
                e.target.as_deref().unwrap_or("none"),
                e.target_ref_uid.as_deref().unwrap_or("none"),
                e.addresses.join(", ")
            );
            let Some(host) = e.hostname.as_deref().or(e.target.as_deref()) else {
                evidence.push(format!("{who} names no pod"));
                continue;
            };
            let in_set = ordinal_of(host, &expect.statefulset)
                .is_some_and(|i| i >= expect.start && i < expect.start + expect.replicas);
            let Some(pod) = world.live_pod(host).filter(|_| in_set) else {
                evidence.push(format!(
                    "{who} stands for no live pod of {}-{}..{}-{}: a phantom endpoint",
                    expect.statefulset,
                    expect.start,
                    expect.statefulset,
                    (expect.start + expect.replicas).saturating_sub(1),
                ));
                continue;
            };
            if !pod.ready || pod.terminating {
                evidence.push(format!(
                    "{who} is ready but {} is not Ready ({})",
                    pod_ref(pod),
                    describe_pod(pod)
                ));
                continue;
            }
            if e.target_ref_uid.as_deref() != Some(pod.uid.as_str()) {
                evidence.push(format!(
                    "{who} is stale: the pod named {host} is uid {}",
                    pod.uid
                ));
                continue;
            }
            if let Some(ip) = pod.pod_ip.as_deref()
                && e.addresses != [ip]
            {
                evidence.push(format!(
                    "{who} does not hold exactly the IP {ip} of {}",
                    pod_ref(pod)
                ));
            }
        }
    }
    evidence
}

/// Why `endpoint` does not stand for `pod` (empty when it does).
fn endpoint_mismatches(endpoint: &EndpointState, pod: &PodState, ip: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    if !endpoint.ready {
        wrong.push("is not ready".to_string());
    }
    match endpoint.target_ref_uid.as_deref() {
        Some(uid) if uid == pod.uid => {}
        Some(uid) => wrong.push(format!("targets uid {uid}")),
        None => wrong.push("has no targetRef uid".to_string()),
    }
    if endpoint.addresses != [ip] {
        wrong.push(format!("has addresses [{}]", endpoint.addresses.join(", ")));
    }
    wrong
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
    use crate::history::{EndpointState, Event, History};
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
    fn a_start_ordinal_shifts_names_and_claims() {
        let mut events = vec![applied(headless_service())];
        for i in 3..6u32 {
            let name = format!("mysql-{i}");
            events.push(applied(pvc(
                &claim(i),
                &format!("c{i}"),
                &format!("pv-{i}"),
            )));
            events.push(applied(pod(&name, &format!("u{i}"))));
        }
        events.push(applied(slice(&["mysql-3", "mysql-4", "mysql-5"])));
        let mut expect = IdentityExpect::documented(3);
        expect.start = 3;
        let h = History::from_events(events.clone());
        let v = ordinal_identity(&h, &expect).verdict;
        assert!(v.is_pass(), "{v}");
        assert!(v.to_string().contains("pods mysql-3..mysql-5"), "{v}");
        let v = ordinal_identity(&h, &IdentityExpect::documented(3)).verdict;
        assert!(
            v.evidence()
                .iter()
                .any(|e| e.contains("pod mysql-5 (uid u5) exists but only mysql-0..mysql-2 should")),
            "{v}"
        );
        events.push(applied(pod("mysql-0", "u0")));
        let v = ordinal_identity(&History::from_events(events), &expect).verdict;
        assert!(
            v.evidence()
                .iter()
                .any(|e| e.contains("pod mysql-0 (uid u0) exists but only mysql-3..mysql-5 should")),
            "{v}"
        );
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
    #[case::endpoint_not_ready(
        with_mysql_1(EndpointState { ready: false, ..endpoint(&pod("mysql-1", "u1")) }),
        "pod mysql-1 (uid u1) is Ready with IP 10.0.0.11 but no endpoint with hostname mysql-1 stands \
         for it: in slice mysql-abcde it is not ready"
    )]
    #[case::endpoint_of_a_previous_incarnation(
        with_mysql_1(endpoint(&pod("mysql-1", "u1-old"))),
        "in slice mysql-abcde it targets uid u1-old"
    )]
    #[case::endpoint_without_target_uid(
        with_mysql_1(EndpointState { target_ref_uid: None, ..endpoint(&pod("mysql-1", "u1")) }),
        "in slice mysql-abcde it has no targetRef uid"
    )]
    #[case::endpoint_address_is_not_the_pod_ip(
        with_mysql_1(endpoint(&pod("mysql-1", "u1").with(|p| p.pod_ip = Some("10.9.9.9".into())))),
        "in slice mysql-abcde it has addresses [10.9.9.9]"
    )]
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

    /// The healthy slice with mysql-1's endpoint replaced by `e`.
    fn with_mysql_1(e: EndpointState) -> Event {
        applied(slice_of(vec![
            endpoint(&pod("mysql-0", "u0")),
            e,
            endpoint(&pod("mysql-2", "u2")),
        ]))
    }

    #[test]
    fn endpoint_is_required_only_for_ready_pods() {
        let mut events = healthy();
        events.push(applied(pod("mysql-1", "u1").not_ready()));
        events.push(applied(slice(&["mysql-0", "mysql-2"])));
        let v = check(events);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains("2 Ready pods each with a ready endpoint")
                && v.to_string()
                    .contains("(not Ready, DNS not judged: mysql-1)"),
            "{v}"
        );
    }

    #[test]
    fn a_pod_in_two_slices_with_the_same_endpoint_passes() {
        let mut events = healthy();
        let mut moving = slice_of(vec![endpoint(&pod("mysql-1", "u1"))]);
        moving.name = "mysql-fghij".into();
        events.push(applied(moving));
        let v = check(events);
        assert!(v.is_pass(), "{v}");
    }

    #[rstest]
    #[case::stale_second_endpoint(
        endpoint(&pod("mysql-1", "u1-old")),
        "in slice mysql-fghij the ready endpoint mysql-1 (target mysql-1 uid u1-old, addresses \
         [10.0.0.11]) is stale: the pod named mysql-1 is uid u1"
    )]
    #[case::phantom_ordinal(
        endpoint(&pod("mysql-5", "u5")),
        "in slice mysql-fghij the ready endpoint mysql-5 (target mysql-5 uid u5, addresses \
         [10.0.0.15]) stands for no live pod of mysql-0..mysql-2: a phantom endpoint"
    )]
    #[case::deleted_pod(
        endpoint(&pod("mysql-1", "u1")).with_hostname("mysql-9"),
        "in slice mysql-fghij the ready endpoint mysql-9 (target mysql-1 uid u1, addresses \
         [10.0.0.11]) stands for no live pod of mysql-0..mysql-2: a phantom endpoint"
    )]
    #[case::extra_address(
        EndpointState {
            addresses: vec!["10.0.0.11".into(), "10.0.0.99".into()],
            ..endpoint(&pod("mysql-1", "u1"))
        },
        "in slice mysql-fghij the ready endpoint mysql-1 (target mysql-1 uid u1, addresses \
         [10.0.0.11, 10.0.0.99]) does not hold exactly the IP 10.0.0.11 of pod mysql-1 (uid u1)"
    )]
    fn a_ready_endpoint_without_its_pod_is_named(
        #[case] extra: EndpointState,
        #[case] expected: &str,
    ) {
        let mut events = healthy();
        let mut second = slice_of(vec![extra]);
        second.name = "mysql-fghij".into();
        events.push(applied(second));
        let v = check(events);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence().iter().any(|e| e == expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn a_ready_endpoint_of_a_not_ready_pod_is_named() {
        let mut events = healthy();
        events.push(applied(pod("mysql-1", "u1").not_ready()));
        let v = check(events);
        assert_eq!(
            v.evidence(),
            [
                "in slice mysql-abcde the ready endpoint mysql-1 (target mysql-1 uid u1, addresses \
              [10.0.0.11]) is ready but pod mysql-1 (uid u1) is not Ready (phase Running, not \
              ready, restarts 0, node worker)"
            ],
            "{v}"
        );
    }

    trait EndpointExt {
        fn with_hostname(self, hostname: &str) -> Self;
    }
    impl EndpointExt for EndpointState {
        fn with_hostname(mut self, hostname: &str) -> Self {
            self.hostname = Some(hostname.into());
            self
        }
    }

    #[test]
    fn dns_identity_with_no_ready_pod_is_unknown() {
        let mut events = healthy();
        for i in 0..3 {
            events.push(applied(
                pod(&format!("mysql-{i}"), &format!("u{i}")).not_ready(),
            ));
        }
        events.push(applied(slice(&[])));
        let v = check(events);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("no pod of mysql was Ready, so DNS identity was not judged"),
            "{v}"
        );
    }

    #[test]
    fn a_ready_pod_without_an_observed_ip_is_unknown() {
        let mut events = healthy();
        events.push(applied(pod("mysql-2", "u2").with(|p| p.pod_ip = None)));
        let v = check(events);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("pod mysql-2 (uid u2) is Ready but its pod IP was never observed"),
            "{v}"
        );
    }

    #[test]
    fn zero_replicas_judge_the_absence_of_pods_without_dns() {
        let events = vec![applied(headless_service())];
        let v = verdict(
            &History::from_events(events),
            &IdentityExpect::documented(0),
        );
        assert!(v.is_pass(), "{v}");
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
