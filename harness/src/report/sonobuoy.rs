//! Hands a run's reports to Sonobuoy: the report directory as a gzipped tarball in the
//! plugin's results directory, then the `done` file holding the tarball's path, which tells
//! the Sonobuoy worker the results are complete. The tarball holds each test's
//! `<test>/junit.xml` (what Sonobuoy's junit result format reads), `<test>/history.json`,
//! `index.md` (the run report) and `run.json` (what the run certified).

use std::fs::File;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// The tarball's name in the results directory.
pub const RESULTS_TARBALL: &str = "sts-conformance-results.tar.gz";
/// The file whose content is the tarball's path; Sonobuoy waits for it.
pub const DONE_FILE: &str = "done";

#[derive(Debug, thiserror::Error)]
pub enum SonobuoyError {
    #[error(
        "the report directory {} holds the Sonobuoy results directory {}: the tarball would contain itself",
        report_dir.display(),
        results_dir.display()
    )]
    Nested {
        report_dir: PathBuf,
        results_dir: PathBuf,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Fails when the results could not be handed over: checked before a run starts.
pub fn check_layout(report_dir: &Path, results_dir: &Path) -> Result<(), SonobuoyError> {
    let nested = absolute(results_dir).starts_with(absolute(report_dir));
    if nested {
        return Err(SonobuoyError::Nested {
            report_dir: report_dir.to_owned(),
            results_dir: results_dir.to_owned(),
        });
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Packs `report_dir` into `<results_dir>/sts-conformance-results.tar.gz`, then writes the
/// `done` file (atomically, so the worker never reads half a path). Returns the tarball.
pub fn hand_over(report_dir: &Path, results_dir: &Path) -> Result<PathBuf, SonobuoyError> {
    check_layout(report_dir, results_dir)?;
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| SonobuoyError::Write { path, source }
    };
    std::fs::create_dir_all(results_dir).map_err(write(results_dir))?;
    let tarball = absolute(&results_dir.join(RESULTS_TARBALL));
    pack(report_dir, &tarball).map_err(write(&tarball))?;
    let done = results_dir.join(DONE_FILE);
    let pending = results_dir.join(".done.tmp");
    std::fs::write(&pending, tarball.to_string_lossy().as_bytes()).map_err(write(&pending))?;
    std::fs::rename(&pending, &done).map_err(write(&done))?;
    Ok(tarball)
}

fn pack(report_dir: &Path, tarball: &Path) -> std::io::Result<()> {
    let gz = GzEncoder::new(File::create(tarball)?, Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    if report_dir.is_dir() {
        tar.append_dir_all(".", report_dir)?;
    }
    tar.into_inner()?.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tarball: &Path) -> Vec<(String, String)> {
        let file = File::open(tarball).expect("open tarball");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut found = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let mut text = String::new();
            if entry.header().entry_type().is_file() {
                entry.read_to_string(&mut text).expect("read entry");
            }
            found.push((path, text));
        }
        found
    }

    #[test]
    fn tarball_holds_the_reports_and_done_names_it() {
        let reports = tempfile::tempdir().expect("tempdir");
        let results = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(reports.path().join("identity")).expect("mkdir");
        std::fs::write(reports.path().join("identity/junit.xml"), "<testsuites/>").expect("w");
        std::fs::write(reports.path().join("index.md"), "# report").expect("w");
        let tarball = hand_over(reports.path(), results.path()).expect("hand over");
        let done = std::fs::read_to_string(results.path().join(DONE_FILE)).expect("done");
        assert_eq!(done, tarball.display().to_string());
        assert!(tarball.ends_with(RESULTS_TARBALL));
        let found = entries(&tarball);
        assert!(
            found.contains(&("identity/junit.xml".into(), "<testsuites/>".into())),
            "{found:?}"
        );
        assert!(found.iter().any(|(p, _)| p == "index.md"), "{found:?}");
        assert!(!results.path().join(".done.tmp").exists());
    }

    #[test]
    fn results_inside_the_report_directory_are_refused() {
        let reports = tempfile::tempdir().expect("tempdir");
        let inside = reports.path().join("sonobuoy");
        let err = hand_over(reports.path(), &inside).unwrap_err();
        assert!(matches!(err, SonobuoyError::Nested { .. }), "{err}");
        assert!(!inside.join(DONE_FILE).exists());
    }
}
