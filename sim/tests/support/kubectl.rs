//! The kubectl the tests run: the one the project builds from the official module
//! (scripts/build-upstream.sh), never whatever may be installed on the machine.

use std::path::PathBuf;

/// `KUBECTL` if set, else `<repo>/.upstream/bin/kubectl`.
pub fn kubectl_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return PathBuf::from(path);
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    repo.join(".upstream/bin/kubectl")
}

/// Why kubectl cannot run, if it cannot. In CI a missing kubectl is a failure, not a skip:
/// scripts/setup.sh builds it, so its absence means the setup is broken.
pub fn kubectl_missing() -> Option<String> {
    let bin = kubectl_bin();
    let works = std::process::Command::new(&bin)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return None;
    }
    let reason = format!(
        "kubectl {} does not run (build it with scripts/build-upstream.sh, or set KUBECTL)",
        bin.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{reason}");
    Some(reason)
}
