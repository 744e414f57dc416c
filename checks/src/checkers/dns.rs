//! DNS resolution in the cluster: each Ready pod's DNS name under the headless Service
//! (`<pod>.<service>.<namespace>.svc.<domain>`), looked up from inside a pod of the set,
//! resolves to exactly that pod's IP, as observed when the lookup was made.
//!
//! This is what the EndpointSlice check of `identity` promises, proved end to end through
//! the cluster's DNS: a name that does not resolve, resolves to a stale address (an earlier
//! incarnation's) or to another pod's is a broken identity. A name whose pod is not Ready
//! (or does not exist) at that point must not resolve: a headless Service publishes only
//! ready addresses. A pod recreated after its name was last resolved must have its name
//! resolved again (a cache still holding the old address is what this catches); otherwise
//! the check is Unknown. With no lookup judged the check is Unknown, never Pass.

use std::collections::{BTreeMap, BTreeSet};

use crate::checkers::IdentityExpect;
use crate::history::{Change, Entry, Event, PodState, Resolution, Snapshot};
use crate::verdict::{CheckResult, Verdict};
use crate::world::{World, describe_pod, ordinal_of, pod_ref};

/// The name of the DNS check.
pub const DNS_CHECK: &str = "DNS resolution in the cluster";

/// Every lookup recorded in `entries` of a Ready pod's name gave exactly its pod IP, no
/// lookup of a pod that was not Ready resolved, and every pod recreated after its name
/// was resolved was resolved again.
pub fn dns_resolution(entries: &[Entry], expect: &IdentityExpect) -> CheckResult {
    CheckResult::new(DNS_CHECK, verdict(entries, expect))
}

/// The last pod observed with an IP, for naming where a wrong address came from.
struct IpOwner {
    pod: String,
    uid: String,
    deleted_at: Option<u64>,
}

/// What the lookups showed, as they are folded in.
#[derive(Default)]
struct Findings {
    evidence: Vec<String>,
    unknowns: Vec<String>,
    /// Pods whose name was judged, with the pods the lookups ran in.
    judged: BTreeSet<String>,
    from: BTreeSet<String>,
    not_ready: BTreeSet<String>,
    /// The set's Ready pods when the first lookup was made: each must be looked up.
    ready_at_first: Option<(u64, Vec<String>)>,
    /// Each name's last judged lookup of a Ready pod: the pod's uid and the lookup's seq.
    last_judged: BTreeMap<String, (String, u64)>,
}

fn verdict(entries: &[Entry], expect: &IdentityExpect) -> Verdict {
    let mut world = World::default();
    let mut owners: BTreeMap<String, IpOwner> = BTreeMap::new();
    let mut found = Findings::default();
    for entry in entries {
        world.observe(entry);
        match &entry.event {
            Event::Object {
                change,
                object: Snapshot::Pod(pod),
            } => note_owner(&mut owners, pod, *change, entry.seq),
            Event::Resolved(lookup) => {
                if found.ready_at_first.is_none() {
                    found.ready_at_first = Some((entry.seq, ready_pods(&world, expect)));
                }
                judge(&world, &owners, lookup, entry.seq, expect, &mut found);
            }
            _ => {}
        }
    }
    let Some((first, ready)) = &found.ready_at_first else {
        return Verdict::Unknown {
            reason: "no name was resolved from inside the cluster".into(),
        };
    };
    for pod in ready.iter().filter(|p| !found.judged.contains(*p)) {
        found.unknowns.push(format!(
            "pod {pod} was Ready at seq {first} but its name was not resolved while it was"
        ));
    }
    found
        .unknowns
        .extend(not_resolved_again(&world, expect, &found.last_judged));
    if found.judged.is_empty() && found.unknowns.is_empty() && found.evidence.is_empty() {
        found.unknowns.push(format!(
            "no name looked up belonged to a Ready pod (not Ready: {})",
            join(&found.not_ready)
        ));
    }
    Verdict::judge(found.evidence, found.unknowns, || {
        format!(
            "the names of Ready pods {} under Service {}, looked up from inside pod(s) {}, \
             each resolved to exactly its pod IP",
            join(&found.judged),
            expect.service,
            join(&found.from)
        )
    })
}

/// Pods Ready at the end whose name was last resolved for an earlier incarnation.
fn not_resolved_again(
    world: &World,
    expect: &IdentityExpect,
    last_judged: &BTreeMap<String, (String, u64)>,
) -> Vec<String> {
    last_judged
        .iter()
        .filter_map(|(name, (uid, seq))| {
            let pod = world.live_pod(name).filter(|p| is_ready(p))?;
            (pod.uid != *uid && in_set(name, expect)).then(|| {
                format!(
                    "{} was recreated after its name was last resolved (for uid {uid} at seq \
                     {seq}) and its name was not resolved again",
                    pod_ref(pod)
                )
            })
        })
        .collect()
}

fn note_owner(owners: &mut BTreeMap<String, IpOwner>, pod: &PodState, change: Change, seq: u64) {
    let Some(ip) = pod.pod_ip.clone().filter(|ip| !ip.is_empty()) else {
        return;
    };
    let deleted_at = (change == Change::Deleted).then_some(seq);
    owners.insert(
        ip,
        IpOwner {
            pod: pod.name.clone(),
            uid: pod.uid.clone(),
            deleted_at,
        },
    );
}

/// Names of the set's pods that are Ready (and not terminating) in `world`.
fn ready_pods(world: &World, expect: &IdentityExpect) -> Vec<String> {
    (expect.start..expect.start + expect.replicas)
        .map(|i| format!("{}-{i}", expect.statefulset))
        .filter(|name| world.live_pod(name).is_some_and(is_ready))
        .collect()
}

fn is_ready(pod: &PodState) -> bool {
    pod.ready && !pod.terminating
}

fn in_set(pod: &str, expect: &IdentityExpect) -> bool {
    ordinal_of(pod, &expect.statefulset)
        .is_some_and(|i| i >= expect.start && i < expect.start + expect.replicas)
}

/// Judges one lookup against the world as observed when it was made.
fn judge(
    world: &World,
    owners: &BTreeMap<String, IpOwner>,
    lookup: &Resolution,
    seq: u64,
    expect: &IdentityExpect,
    found: &mut Findings,
) {
    let name = &lookup.name;
    let Some(pod_name) = pod_of_name(name, &expect.service).filter(|p| in_set(p, expect)) else {
        found.unknowns.push(format!(
            "{name} (seq {seq}) is not the DNS name of a pod of {} under Service {}",
            expect.statefulset, expect.service
        ));
        return;
    };
    if !in_set(&lookup.from_pod, expect) {
        found.unknowns.push(format!(
            "{name} was looked up from pod {} (seq {seq}), not from a pod of {}",
            lookup.from_pod, expect.statefulset
        ));
        return;
    }
    let Some(pod) = world.live_pod(pod_name).filter(|p| is_ready(p)) else {
        found.not_ready.insert(pod_name.to_string());
        if lookup.error.is_none() && !lookup.addresses.is_empty() {
            let state = match world.live_pod(pod_name) {
                Some(pod) => format!("{} was not Ready ({})", pod_ref(pod), describe_pod(pod)),
                None => format!("no pod named {pod_name} existed"),
            };
            found.evidence.push(format!(
                "{name} resolved from inside pod {} at seq {seq} to [{}], but {state}: the name \
                 of a pod that is not Ready must not resolve",
                lookup.from_pod,
                lookup.addresses.join(", ")
            ));
        }
        return;
    };
    let Some(ip) = pod.pod_ip.as_deref() else {
        found.unknowns.push(format!(
            "{} is Ready but its pod IP was never observed, so the lookup of {name} at seq \
             {seq} was not judged",
            pod_ref(pod)
        ));
        return;
    };
    found.judged.insert(pod_name.to_string());
    found.from.insert(lookup.from_pod.clone());
    found
        .last_judged
        .insert(pod_name.to_string(), (pod.uid.clone(), seq));
    let expected = format!("but {} was Ready with IP {ip}", pod_ref(pod));
    let from = &lookup.from_pod;
    if let Some(error) = &lookup.error {
        found.evidence.push(format!(
            "{name} did not resolve from inside pod {from} at seq {seq} ({error}), {expected}"
        ));
        return;
    }
    let got: BTreeSet<&str> = lookup.addresses.iter().map(String::as_str).collect();
    if got != BTreeSet::from([ip]) {
        let wrong: Vec<String> = got
            .iter()
            .filter(|a| **a != ip)
            .map(|a| whose(owners, a))
            .collect();
        found.evidence.push(format!(
            "{name} resolved from inside pod {from} at seq {seq} to [{}], {expected}{}",
            lookup.addresses.join(", "),
            wrong.iter().map(|w| format!("; {w}")).collect::<String>()
        ));
    }
}

/// The pod a DNS name under `service` stands for: its first label, when the second is
/// the Service.
fn pod_of_name<'a>(name: &'a str, service: &str) -> Option<&'a str> {
    let mut labels = name.split('.');
    let pod = labels.next()?;
    (labels.next() == Some(service)).then_some(pod)
}

/// Where a wrong address came from, as far as the history knows.
fn whose(owners: &BTreeMap<String, IpOwner>, address: &str) -> String {
    match owners.get(address) {
        Some(IpOwner {
            pod,
            uid,
            deleted_at: Some(seq),
        }) => {
            format!("{address} was the IP of pod {pod} (uid {uid}), observed deleted at seq {seq}")
        }
        Some(IpOwner { pod, uid, .. }) => format!("{address} is the IP of pod {pod} (uid {uid})"),
        None => format!("{address} was never an observed pod IP"),
    }
}

fn join(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testkit::*;

    /// Three Ready pods of the documented set.
    fn deployed() -> Vec<Event> {
        (0..3u32)
            .map(|i| applied(pod(&format!("mysql-{i}"), &format!("u{i}"))))
            .collect()
    }

    /// Every name looked up from mysql-0, each resolving to its pod's testkit IP.
    fn all_resolved() -> Vec<Event> {
        (0..3u32)
            .map(|i| {
                let name = format!("mysql-{i}");
                resolved("mysql-0", &name, &[&pod_ip(&name)])
            })
            .collect()
    }

    fn check(events: Vec<Event>) -> Verdict {
        let result = dns_resolution(
            &History::from_events(events),
            &IdentityExpect::documented(3),
        );
        assert_eq!(result.check, "DNS resolution in the cluster");
        result.verdict
    }

    fn only_evidence(v: &Verdict) -> &str {
        assert!(v.is_fail(), "{v}");
        assert_eq!(v.evidence().len(), 1, "{v}");
        &v.evidence()[0]
    }

    #[test]
    fn every_name_resolving_to_its_pod_ip_passes() {
        let mut events = deployed();
        events.extend(all_resolved());
        let v = check(events);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string().contains(
                "Ready pods mysql-0, mysql-1, mysql-2 under Service mysql, looked up from \
                 inside pod(s) mysql-0"
            ),
            "{v}"
        );
    }

    #[test]
    fn a_wrong_address_is_named_with_the_pod_ip() {
        let mut events = deployed();
        events.extend(all_resolved());
        events.push(resolved("mysql-0", "mysql-1", &["10.9.9.9"]));
        let v = check(events);
        assert_eq!(
            only_evidence(&v),
            "mysql-1.mysql.ns.svc.cluster.local resolved from inside pod mysql-0 at seq 6 to \
             [10.9.9.9], but pod mysql-1 (uid u1) was Ready with IP 10.0.0.11; 10.9.9.9 was \
             never an observed pod IP"
        );
    }

    #[test]
    fn another_pods_address_besides_the_right_one_fails() {
        let mut events = deployed();
        events.push(resolved("mysql-0", "mysql-1", &["10.0.0.11", "10.0.0.12"]));
        let v = check(events);
        assert!(
            only_evidence(&v).ends_with("; 10.0.0.12 is the IP of pod mysql-2 (uid u2)"),
            "{v}"
        );
    }

    #[test]
    fn an_unresolved_name_fails() {
        let mut events = deployed();
        events.push(unresolved("mysql-0", "mysql-2", "not found"));
        let v = check(events);
        assert_eq!(
            only_evidence(&v),
            "mysql-2.mysql.ns.svc.cluster.local did not resolve from inside pod mysql-0 at seq \
             3 (not found), but pod mysql-2 (uid u2) was Ready with IP 10.0.0.12"
        );
    }

    #[test]
    fn the_stale_address_of_a_deleted_pod_is_named() {
        let mut events = deployed();
        let old = pod("mysql-1", "u1");
        events.push(deleted(old.clone().terminating()));
        events.push(applied(
            pod("mysql-1", "u1b").with(|p| p.pod_ip = Some("10.0.0.21".into())),
        ));
        events.push(resolved("mysql-0", "mysql-1", &["10.0.0.11"]));
        let v = check(events);
        assert_eq!(
            only_evidence(&v),
            "mysql-1.mysql.ns.svc.cluster.local resolved from inside pod mysql-0 at seq 5 to \
             [10.0.0.11], but pod mysql-1 (uid u1b) was Ready with IP 10.0.0.21; 10.0.0.11 \
             was the IP of pod mysql-1 (uid u1), observed deleted at seq 3"
        );
    }

    #[test]
    fn nothing_resolved_is_unknown() {
        let v = check(deployed());
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("no name was resolved from inside the cluster"),
            "{v}"
        );
    }

    #[test]
    fn a_not_ready_pod_whose_name_does_not_resolve_passes() {
        let mut events = deployed();
        events.push(applied(pod("mysql-2", "u2").not_ready()));
        events.extend(all_resolved().into_iter().take(2));
        events.push(unresolved("mysql-0", "mysql-2", "not found"));
        let v = check(events);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string().contains("Ready pods mysql-0, mysql-1 "),
            "{v}"
        );
    }

    #[test]
    fn a_not_ready_pod_whose_name_resolves_is_named() {
        let mut events = deployed();
        events.push(applied(pod("mysql-2", "u2").not_ready()));
        events.extend(all_resolved());
        let v = check(events);
        assert_eq!(
            only_evidence(&v),
            "mysql-2.mysql.ns.svc.cluster.local resolved from inside pod mysql-0 at seq 6 to \
             [10.0.0.12], but pod mysql-2 (uid u2) was not Ready (phase Running, not ready, \
             restarts 0, node worker): the name of a pod that is not Ready must not resolve"
        );
    }

    #[test]
    fn a_name_resolving_after_its_pod_is_gone_is_named() {
        let mut events = deployed();
        events.extend(all_resolved());
        events.push(deleted(pod("mysql-2", "u2")));
        events.push(resolved("mysql-0", "mysql-2", &["10.0.0.12"]));
        let v = check(events);
        assert!(
            only_evidence(&v).ends_with(
                "but no pod named mysql-2 existed: the name of a pod that is not Ready must not \
                 resolve"
            ),
            "{v}"
        );
    }

    #[test]
    fn a_recreated_pod_must_be_resolved_again() {
        let mut events = deployed();
        events.extend(all_resolved());
        events.push(deleted(pod("mysql-1", "u1")));
        events.push(applied(
            pod("mysql-1", "u1b").with(|p| p.pod_ip = Some("10.0.0.21".into())),
        ));
        let v = check(events.clone());
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "pod mysql-1 (uid u1b) was recreated after its name was last resolved (for uid \
                 u1 at seq 4) and its name was not resolved again"
            ),
            "{v}"
        );
        events.push(resolved("mysql-0", "mysql-1", &["10.0.0.21"]));
        let v = check(events);
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn only_names_of_pods_that_were_not_ready_is_unknown() {
        let mut events = deployed();
        events.push(applied(pod("mysql-1", "u1").not_ready()));
        events.push(unresolved("mysql-0", "mysql-1", "not found"));
        let v = check(events);
        assert!(v.is_unknown(), "{v}");
    }

    #[test]
    fn a_ready_pod_left_out_of_the_lookups_is_unknown() {
        let mut events = deployed();
        events.push(resolved("mysql-0", "mysql-0", &["10.0.0.10"]));
        events.push(resolved("mysql-0", "mysql-1", &["10.0.0.11"]));
        let v = check(events);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "pod mysql-2 was Ready at seq 3 but its name was not resolved while it was"
            ),
            "{v}"
        );
    }

    #[test]
    fn a_lookup_from_outside_the_set_is_not_proof() {
        let mut events = deployed();
        events.extend((0..3u32).map(|i| {
            let name = format!("mysql-{i}");
            resolved("debug-pod", &name, &[&pod_ip(&name)])
        }));
        let v = check(events);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("was looked up from pod debug-pod (seq 3), not from a pod of mysql"),
            "{v}"
        );
    }
}
