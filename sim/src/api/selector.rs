//! Label and field selectors as the API server parses them from list and watch queries.

use serde_json::Value;

use super::error::ApiError;
use crate::store::ResourceKind;

/// Every kind's field selectors may use these (the API server's default conversion).
const META_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// The extra field labels the API server supports per kind (its field label conversion
/// functions); any other field is refused with 400 "field label not supported".
fn kind_fields(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Pod => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ResourceKind::Node => &["spec.unschedulable"],
        ResourceKind::Namespace => &["status.phase"],
        ResourceKind::Event => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        _ => &[],
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Eq(v), Some(actual)) => v == actual,
            (Op::Eq(_), None) => false,
            // Like Kubernetes: `!=` and `notin` match objects that lack the key.
            (Op::NotEq(v), actual) => actual != Some(v.as_str()),
            (Op::In(vs), Some(actual)) => vs.iter().any(|v| v == actual),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), actual) => actual.is_none_or(|a| !vs.iter().any(|v| v == a)),
            (Op::Exists, actual) => actual.is_some(),
            (Op::NotExists, actual) => actual.is_none(),
        }
    }
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        split_top_level(text)
            .into_iter()
            .filter(|part| !part.trim().is_empty())
            .map(|part| parse_label_requirement(part.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.0.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            r.matches(value)
        })
    }
}

/// A parsed `fieldSelector` (`=`, `==`, `!=` on dotted field paths).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<Requirement>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_field_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map(FieldSelector)
    }

    /// Refuses fields the API server cannot select `kind` by, as it does.
    pub fn supported_by(self, kind: ResourceKind) -> Result<Self, ApiError> {
        let supported = |key: &str| META_FIELDS.contains(&key) || kind_fields(kind).contains(&key);
        match self.0.iter().find(|r| !supported(&r.key)) {
            Some(r) => Err(ApiError::BadRequest(format!(
                "field label not supported: {}",
                r.key
            ))),
            None => Ok(self),
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let value = field_value(obj, &r.key);
            // A missing field compares as the empty string, as in the API server.
            r.matches(Some(value.as_deref().unwrap_or("")))
        })
    }
}

/// Both selectors of a list or watch request.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.0.is_empty() && self.fields.0.is_empty()
    }
}

/// Splits on commas that are not inside `( ... )` value sets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn bad_selector(text: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!("unable to parse requirement: {why}: {text:?}"))
}

fn parse_label_requirement(text: &str) -> Result<Requirement, ApiError> {
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Requirement {
            key: checked_key(key.trim(), text)?,
            op: Op::NotExists,
        });
    }
    if let Some(open) = text.find('(') {
        return parse_set_requirement(text, open);
    }
    for (token, make) in [
        ("!=", Op::NotEq as fn(String) -> Op),
        ("==", Op::Eq),
        ("=", Op::Eq),
    ] {
        if let Some((key, value)) = text.split_once(token) {
            return Ok(Requirement {
                key: checked_key(key.trim(), text)?,
                op: make(checked_value(value.trim(), text)?),
            });
        }
    }
    Ok(Requirement {
        key: checked_key(text, text)?,
        op: Op::Exists,
    })
}

fn parse_set_requirement(text: &str, open: usize) -> Result<Requirement, ApiError> {
    let close = text
        .rfind(')')
        .filter(|c| *c > open && text[c + 1..].trim().is_empty())
        .ok_or_else(|| bad_selector(text, "unclosed value set"))?;
    let mut head = text[..open].split_whitespace();
    let (Some(key), Some(op), None) = (head.next(), head.next(), head.next()) else {
        return Err(bad_selector(
            text,
            "expected `key in (...)` or `key notin (...)`",
        ));
    };
    let values = text[open + 1..close]
        .split(',')
        .map(|v| checked_value(v.trim(), text))
        .collect::<Result<Vec<_>, _>>()?;
    let op = match op {
        "in" => Op::In(values),
        "notin" => Op::NotIn(values),
        other => return Err(bad_selector(text, &format!("unknown operator {other:?}"))),
    };
    Ok(Requirement {
        key: checked_key(key, text)?,
        op,
    })
}

fn parse_field_requirement(text: &str) -> Result<Requirement, ApiError> {
    for (token, make) in [
        ("!=", Op::NotEq as fn(String) -> Op),
        ("==", Op::Eq),
        ("=", Op::Eq),
    ] {
        if let Some((key, value)) = text.split_once(token) {
            let key = key.trim();
            if key.is_empty() {
                break;
            }
            return Ok(Requirement {
                key: key.to_string(),
                op: make(value.trim().to_string()),
            });
        }
    }
    Err(ApiError::BadRequest(format!(
        "invalid selector: '{text}'; can't understand '{text}'"
    )))
}

fn checked_key(key: &str, text: &str) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(bad_selector(text, &format!("invalid label key {key:?}")))
    }
}

fn checked_value(value: &str, text: &str) -> Result<String, ApiError> {
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(bad_selector(
            text,
            &format!("invalid label value {value:?}"),
        ))
    }
}

/// The string value of a dotted field path (`spec.nodeName`, `involvedObject.uid`).
fn field_value(obj: &Value, path: &str) -> Option<String> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match obj.pointer(&pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A `matchLabels`-style map rendered as `k=v,k2=v2` (empty for a missing map).
pub fn render_match_labels(map: Option<&Value>) -> String {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn renders_match_labels_as_a_selector_string() {
        let map = serde_json::json!({"app": "mysql", "tier": "db"});
        assert_eq!(render_match_labels(Some(&map)), "app=mysql,tier=db");
        assert_eq!(render_match_labels(None), "");
    }
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "mysql-0", "namespace": "default", "labels": {"app": "mysql", "tier": "db"}},
            "spec": {"nodeName": "sim-worker2"},
            "status": {"phase": "Running"}
        })
    }

    #[rstest]
    #[case::empty("", true)]
    #[case::eq("app=mysql", true)]
    #[case::double_eq("app==mysql", true)]
    #[case::eq_miss("app=web", false)]
    #[case::not_eq("app!=web", true)]
    #[case::not_eq_missing_key("zone!=a", true)]
    #[case::in_set("tier in (db, cache)", true)]
    #[case::in_set_miss("tier in (cache)", false)]
    #[case::notin("tier notin (cache,web)", true)]
    #[case::notin_hit("tier notin (db)", false)]
    #[case::exists("app", true)]
    #[case::exists_miss("zone", false)]
    #[case::not_exists("!zone", true)]
    #[case::not_exists_miss("!app", false)]
    #[case::conjunction("app=mysql,tier in (db),!zone", true)]
    #[case::conjunction_miss("app=mysql,tier=web", false)]
    fn label_selector_matches(#[case] selector: &str, #[case] expected: bool) {
        let parsed = LabelSelector::parse(selector).expect("valid selector");
        assert_eq!(parsed.matches(&pod()), expected, "{selector}");
    }

    #[rstest]
    #[case::unclosed("tier in (db")]
    #[case::bad_operator("tier within (db)")]
    #[case::bad_key("a b=c")]
    #[case::bad_value("app=my sql")]
    fn label_selector_rejects_garbage(#[case] selector: &str) {
        let err = LabelSelector::parse(selector).expect_err("invalid selector");
        assert_eq!(err.code(), 400, "{selector}");
    }

    #[rstest]
    #[case::name("metadata.name=mysql-0", true)]
    #[case::namespace("metadata.namespace=other", false)]
    #[case::node("spec.nodeName=sim-worker2", true)]
    #[case::node_ne("spec.nodeName!=sim-worker2", false)]
    #[case::phase("status.phase==Running", true)]
    #[case::missing_is_empty("status.podIP=", true)]
    #[case::both("metadata.name=mysql-0,status.phase!=Pending", true)]
    fn field_selector_matches(#[case] selector: &str, #[case] expected: bool) {
        let parsed = FieldSelector::parse(selector).expect("valid selector");
        assert_eq!(parsed.matches(&pod()), expected, "{selector}");
    }

    #[rstest]
    #[case::pod_node(ResourceKind::Pod, "spec.nodeName=w,metadata.name=mysql-0", true)]
    #[case::pod_unknown_field(ResourceKind::Pod, "spec.hostname=mysql-0", false)]
    #[case::pvc_by_name(
        ResourceKind::PersistentVolumeClaim,
        "metadata.name=data-mysql-0",
        true
    )]
    #[case::pvc_by_phase(ResourceKind::PersistentVolumeClaim, "status.phase=Bound", false)]
    #[case::event_by_object(
        ResourceKind::Event,
        "involvedObject.name=mysql-0,involvedObject.uid=u",
        true
    )]
    #[case::node_unschedulable(ResourceKind::Node, "spec.unschedulable=false", true)]
    fn field_selector_supports_only_the_api_servers_field_labels(
        #[case] kind: ResourceKind,
        #[case] selector: &str,
        #[case] supported: bool,
    ) {
        let result = FieldSelector::parse(selector).and_then(|f| f.supported_by(kind));
        match result {
            Ok(_) => assert!(supported, "{selector} should be refused for {kind:?}"),
            Err(e) => {
                assert!(
                    !supported,
                    "{selector} should be accepted for {kind:?}: {e}"
                );
                assert_eq!(e.code(), 400);
                assert!(e.to_string().contains("field label not supported"), "{e}");
            }
        }
    }

    #[test]
    fn field_selector_rejects_a_bare_word() {
        assert_eq!(
            FieldSelector::parse("mysql").expect_err("invalid").code(),
            400
        );
    }
}
