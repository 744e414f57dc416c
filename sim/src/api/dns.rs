//! kube-sim's cluster DNS, as CoreDNS's kubernetes plugin answers for a headless Service:
//! `<hostname>.<service>.<namespace>.svc.cluster.local` resolves to the addresses of the
//! ready endpoints with that hostname in the Service's EndpointSlices; anything else is
//! unknown. Under `dns:stale-address` every answer is an address the pod does not have;
//! under `dns:cached-answers` a name keeps the first addresses it resolved to.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::config::{Fault, Faults};
use crate::controllers::endpoints::SERVICE_NAME_LABEL;
use crate::controllers::obj;
use crate::store::{ResourceKind, Store};

/// The cluster domain kube-sim's names live under (the kubelet default).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// How far `dns:stale-address` moves an address's last octet: the answer is another
/// address of the same node's pod range, as a cache holding an earlier incarnation's.
const STALE_SHIFT: u8 = 100;

/// The addresses `name` resolves to; empty when it is unknown.
pub fn resolve(store: &Store, faults: &Faults, name: &str) -> Vec<String> {
    let Some((hostname, service, namespace)) = split_name(name) else {
        return Vec::new();
    };
    let headless = store
        .get(ResourceKind::Service, Some(namespace), service)
        .is_some_and(|s| obj::str_at(&s, "/spec/clusterIP") == Some("None"));
    if !headless {
        return Vec::new();
    }
    let slices = store.list(ResourceKind::EndpointSlice, Some(namespace));
    let addresses = addresses_of(&slices, service, hostname);
    if faults.has(Fault::DnsStaleAddress) {
        return addresses.iter().map(|a| stale(a)).collect();
    }
    if faults.has(Fault::DnsCachedAnswers) {
        return cached(name, addresses);
    }
    addresses
}

/// `dns:cached-answers`: the first answer with addresses a name got is its answer from
/// then on, as a cache that never follows the EndpointSlices.
fn cached(name: &str, addresses: Vec<String>) -> Vec<String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if addresses.is_empty() {
        return cache.get(name).cloned().unwrap_or_default();
    }
    cache.entry(name.to_string()).or_insert(addresses).clone()
}

/// `(hostname, service, namespace)` of `<hostname>.<service>.<namespace>.svc.<domain>`.
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let rest = name.strip_suffix(CLUSTER_DOMAIN)?.strip_suffix(".svc.")?;
    let mut labels = rest.split('.');
    let (hostname, service, namespace) = (labels.next()?, labels.next()?, labels.next()?);
    let valid = labels.next().is_none() && ![hostname, service, namespace].contains(&"");
    valid.then_some((hostname, service, namespace))
}

/// The addresses of ready endpoints named `hostname` in `service`'s slices, in order.
fn addresses_of(slices: &[Value], service: &str, hostname: &str) -> Vec<String> {
    let mut addresses: Vec<String> = slices
        .iter()
        .filter(|s| obj::labels(s).get(SERVICE_NAME_LABEL).map(String::as_str) == Some(service))
        .flat_map(|s| obj::array(s, "/endpoints"))
        .filter(|e| obj::str_at(e, "/hostname") == Some(hostname))
        .filter(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) == Some(true))
        .flat_map(|e| obj::array(e, "/addresses"))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    addresses.dedup();
    addresses
}

/// An address the pod does not have: the last octet moved by [`STALE_SHIFT`].
fn stale(address: &str) -> String {
    match address.parse::<Ipv4Addr>() {
        Ok(ip) => {
            let [a, b, c, d] = ip.octets();
            Ipv4Addr::new(a, b, c, d.wrapping_add(STALE_SHIFT)).to_string()
        }
        Err(_) => format!("{address}-stale"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slice(endpoints: Value) -> Value {
        json!({"metadata": {"labels": {SERVICE_NAME_LABEL: "mysql"}}, "endpoints": endpoints})
    }

    #[test]
    fn names_split_into_hostname_service_and_namespace() {
        assert_eq!(
            split_name("mysql-1.mysql.ns.svc.cluster.local"),
            Some(("mysql-1", "mysql", "ns"))
        );
        assert_eq!(
            split_name("mysql-1.mysql.ns.svc.cluster.local."),
            Some(("mysql-1", "mysql", "ns"))
        );
        assert_eq!(split_name("mysql.ns.svc.cluster.local"), None);
        assert_eq!(split_name("mysql-1.mysql.ns.svc.example.org"), None);
        assert_eq!(split_name("a.b.mysql.ns.svc.cluster.local"), None);
    }

    #[test]
    fn only_ready_endpoints_with_the_hostname_answer() {
        let slices = [
            slice(json!([
                {"hostname": "mysql-0", "addresses": ["127.1.10.2"], "conditions": {"ready": true}},
                {"hostname": "mysql-1", "addresses": ["127.1.10.3"], "conditions": {"ready": false}},
            ])),
            json!({"metadata": {"labels": {SERVICE_NAME_LABEL: "other"}}, "endpoints": [
                {"hostname": "mysql-0", "addresses": ["127.1.10.9"], "conditions": {"ready": true}},
            ]}),
        ];
        assert_eq!(addresses_of(&slices, "mysql", "mysql-0"), ["127.1.10.2"]);
        assert!(addresses_of(&slices, "mysql", "mysql-1").is_empty());
        assert!(addresses_of(&slices, "mysql", "mysql-2").is_empty());
    }

    #[test]
    fn a_stale_address_is_another_address_of_the_range() {
        assert_eq!(stale("127.80.10.2"), "127.80.10.102");
        assert_eq!(stale("127.80.10.200"), "127.80.10.44");
    }
}
