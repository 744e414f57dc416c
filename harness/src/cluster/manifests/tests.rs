//! Unit tests of loading the documented manifests (errors name the file, document, line and
//! field) and of the overrides.

use super::*;
use crate::support::settings::repo_root;

fn load(text: &str) -> Result<Vec<Object>, ManifestError> {
    load_str(Path::new("test.yaml"), text)
}

fn documented() -> MysqlManifests {
    MysqlManifests::load_documented(&repo_root(), &Overrides::default()).expect("load")
}

#[test]
fn loads_the_documented_manifests() {
    let m = documented();
    assert_eq!(m.service_name(), "mysql");
    assert_eq!(m.statefulset_name(), "mysql");
    assert_eq!(m.replicas(), 3);
    let spec = m.service.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    let sts = &m.statefulset.spec;
    assert_eq!(sts.service_name.as_deref(), Some("mysql"));
    let container = &sts.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("mysql:5.7"));
    let claim = &sts.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(
        claim.metadata.name.as_deref(),
        Some("mysql-persistent-storage")
    );
    let size = &claim
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests;
    assert_eq!(size.as_ref().unwrap()["storage"].0, "1Gi");
    assert_eq!(m.root_password().as_deref(), Some("my-secret-pw"));
}

#[test]
fn loads_multi_document_files_skipping_empty_documents() {
    let objects = load(
            "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n---\n",
        )
        .unwrap();
    let names: Vec<_> = objects.iter().map(Object::describe).collect();
    assert_eq!(names, ["StatefulSet/a", "Service/b"]);
}

#[test]
fn syntax_error_names_file_document_and_line() {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n";
    let err = load(text).unwrap_err();
    let ManifestError::Syntax { document, line, .. } = &err else {
        panic!("expected a syntax error, got {err}");
    };
    assert_eq!(*document, 2);
    assert_eq!(*line, Some(10), "{err}");
    let message = err.to_string();
    assert!(message.contains("test.yaml"), "{message}");
    assert!(message.contains("document 2"), "{message}");
    assert!(message.contains("line 10"), "{message}");
}

#[test]
fn bad_indentation_is_a_syntax_error_with_line() {
    let err = load("apiVersion: v1\nkind: Service\n metadata: x\n").unwrap_err();
    assert!(
        matches!(err, ManifestError::Syntax { line: Some(3), .. }),
        "{err}"
    );
}

#[test]
fn unknown_kind_is_rejected_with_the_supported_list() {
    let err = load("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n").unwrap_err();
    assert!(
        matches!(&err, ManifestError::UnsupportedKind { kind, document: 1, .. } if kind == "Pod")
    );
    let message = err.to_string();
    assert!(message.contains("unsupported kind `Pod`"), "{message}");
    assert!(message.contains("StatefulSet (apps/v1)"), "{message}");
}

#[test]
fn known_kind_with_wrong_api_version_is_rejected() {
    let err =
        load("apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata:\n  name: s\n").unwrap_err();
    assert!(
        matches!(&err, ManifestError::UnsupportedKind { api_version, .. } if api_version == "apps/v1beta1"),
        "{err}"
    );
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        ("kind: Service\nmetadata:\n  name: x\n", "apiVersion"),
        ("apiVersion: v1\nmetadata:\n  name: x\n", "kind"),
        ("apiVersion: v1\nkind: Service\n", "metadata"),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  labels: {}\n",
            "metadata.name",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"\"\n",
            "metadata.name",
        ),
    ];
    for (text, expected) in cases {
        let err = load(text).unwrap_err();
        assert!(
            matches!(&err, ManifestError::MissingField { field, .. } if *field == expected),
            "{text:?}: {err}"
        );
        assert!(err.to_string().contains(&format!("`{expected}`")), "{err}");
    }
}

#[test]
fn wrong_field_type_names_the_field_path() {
    let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  replicas: three\n  selector: {}\n  serviceName: s\n  template: {}\n";
    let err = load(text).unwrap_err();
    let ManifestError::FieldType { field, .. } = &err else {
        panic!("expected a field type error, got {err}");
    };
    assert_eq!(field, "spec.replicas");
    assert!(err.to_string().contains("`spec.replicas`"), "{err}");
}

#[test]
fn non_string_name_is_a_type_error() {
    let err = load("apiVersion: v1\nkind: Service\nmetadata:\n  name: [a]\n").unwrap_err();
    assert!(
        matches!(&err, ManifestError::FieldType { field, .. } if field == "metadata.name"),
        "{err}"
    );
}

#[test]
fn scalar_document_is_not_a_mapping() {
    let err = load("just a string\n").unwrap_err();
    assert!(
        matches!(err, ManifestError::NotAMapping { document: 1, .. }),
        "{err}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = load_file(Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.yaml"), "{err}");
}

#[test]
fn overrides_change_only_what_they_name() {
    let overrides = Overrides {
        image: Some("mariadb:11".into()),
        storage_class: Some("fast".into()),
        storage_size: Some("2Gi".into()),
        replicas: Some(5),
        namespace: Some("ns1".into()),
    };
    let m = MysqlManifests::load_documented(&repo_root(), &overrides).unwrap();
    assert_eq!(m.replicas(), 5);
    assert_eq!(m.service.metadata.namespace.as_deref(), Some("ns1"));
    assert_eq!(m.statefulset.metadata.namespace.as_deref(), Some("ns1"));
    let spec = &m.statefulset.spec;
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("mariadb:11"));
    let claim = spec.volume_claim_templates.as_ref().unwrap()[0]
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
    let requests = claim.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["storage"].0, "2Gi");
    // Untouched: the access mode and the password.
    assert_eq!(
        claim.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );
    assert_eq!(m.root_password().as_deref(), Some("my-secret-pw"));
}

#[test]
fn empty_overrides_keep_the_documented_manifest() {
    let mut objects = documented().objects();
    let before = objects.clone();
    Overrides::default().apply(&mut objects);
    assert_eq!(objects, before);
}

#[test]
fn overrides_from_settings() {
    let settings = ManifestSettings {
        image: Some("mysql:8.0".into()),
        storage_class: None,
        storage_size: Some("500Mi".into()),
        replicas: Some(4),
    };
    let o = Overrides::from_settings(&settings);
    assert_eq!(o.image.as_deref(), Some("mysql:8.0"));
    assert_eq!(o.storage_class, None);
    assert_eq!(o.storage_size.as_deref(), Some("500Mi"));
    assert_eq!(o.replicas, Some(4));
    assert_eq!(o.namespace, None, "the namespace is per test");
}

#[test]
fn rendering_redacts_the_root_password() {
    let m = documented();
    let yaml = m.to_yaml_redacted().unwrap();
    assert!(!yaml.contains("my-secret-pw"), "{yaml}");
    assert!(yaml.contains(REDACTED), "{yaml}");
    assert!(yaml.contains("kind: Service") && yaml.contains("kind: StatefulSet"));
    // The rendered stream loads back into the same kinds.
    let back = load(&yaml).unwrap();
    assert_eq!(back.len(), 2);
    assert!(!format!("{m:?}").contains("my-secret-pw"));
    assert!(!format!("{:?}", m.objects()).contains("my-secret-pw"));
}

#[test]
fn documented_file_with_the_wrong_object_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("manifests/mysql")).unwrap();
    let svc = std::fs::read_to_string(repo_root().join(SERVICE_MANIFEST)).unwrap();
    std::fs::write(dir.path().join(SERVICE_MANIFEST), &svc).unwrap();
    std::fs::write(dir.path().join(STATEFULSET_MANIFEST), &svc).unwrap();
    let err = MysqlManifests::load_documented(dir.path(), &Overrides::default()).unwrap_err();
    assert!(
        matches!(&err, ManifestError::UnexpectedContents { expected: "StatefulSet", found, .. } if found == "Service/mysql"),
        "{err}"
    );
}
