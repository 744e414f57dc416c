//! A whole run (`sts-conformance run`): the selected cases, some at once, one progress line
//! per finished case, a heartbeat naming what still runs on long waits, and the namespace
//! dump of each failed case kept in its report folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use checks::{CheckResult, Verdict};

use crate::cluster::manifests::MysqlManifests;
use crate::cluster::target::Cluster;
use crate::report::Report;
use crate::scenario::STEPS_CHECK;
use crate::suites::{Case, CaseStatus, Progress, run_case};
use crate::support::{errors, settings};

/// The file a failed case's namespace dump is written to, in its report folder.
pub const DUMP_FILE: &str = "namespace-dump.txt";

/// Where progress lines go (the terminal, or a test's buffer).
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How many cases run at once (node cases always run alone).
    pub parallel: usize,
    /// How often to say what is still running.
    pub heartbeat: Duration,
    /// The run's report folder (each case writes `<dir>/<case>/`).
    pub report_dir: PathBuf,
}

/// How each case of the run ended, in the order they finished.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub finished: Vec<(String, CaseStatus)>,
    /// Cases that could not be run or reported, with the error.
    pub errors: Vec<(String, String)>,
}

impl RunSummary {
    pub fn any_failed(&self) -> bool {
        !self.errors.is_empty() || self.finished.iter().any(|(_, s)| s.failed())
    }

    fn count(&self, status: CaseStatus) -> usize {
        self.finished.iter().filter(|(_, s)| *s == status).count()
    }

    /// One line: how many passed, failed, were skipped or could not run.
    pub fn tally(&self) -> String {
        let failed = self.finished.iter().filter(|(_, s)| s.failed()).count();
        format!(
            "{} passed, {failed} failed, {} skipped, {} could not run",
            self.count(CaseStatus::Passed),
            self.count(CaseStatus::Skipped),
            self.errors.len()
        )
    }
}

/// What each running case is doing, for the heartbeat.
#[derive(Default)]
struct Running(Mutex<BTreeMap<String, (Instant, String)>>);

impl Running {
    fn begin(&self, test: &str) {
        self.lock()
            .insert(test.to_owned(), (Instant::now(), "starting".to_owned()));
    }

    fn end(&self, test: &str) {
        self.lock().remove(test);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Instant, String)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `still running: a (95 s, at: <last step>); b (...)`, or None when nothing runs.
    fn line(&self) -> Option<String> {
        let running = self.lock();
        if running.is_empty() {
            return None;
        }
        let items: Vec<String> = running
            .iter()
            .map(|(test, (since, step))| {
                format!(
                    "{test} ({:.0} s, at: {step})",
                    since.elapsed().as_secs_f64()
                )
            })
            .collect();
        Some(format!("still running: {}", items.join("; ")))
    }
}

impl Progress for Running {
    fn step(&self, test: &str, step: &str) {
        if let Some(entry) = self.lock().get_mut(test) {
            entry.1 = step.to_owned();
        }
    }
}

/// Runs `cases` on `cluster`, saying one line per finished case through `say`.
pub async fn run_cases(
    cluster: &Cluster,
    cases: Vec<Case>,
    options: &RunOptions,
    say: Say,
) -> RunSummary {
    let total = cases.len();
    let running = Arc::new(Running::default());
    let heartbeat = spawn_heartbeat(running.clone(), options.heartbeat, say.clone());
    let mut done = 0usize;
    let mut summary = RunSummary::default();
    let mut results = futures::stream::iter(cases)
        .map(|case| {
            let running = running.clone();
            async move {
                running.begin(&case.name);
                let outcome = run_case(cluster, &case, running.clone()).await;
                running.end(&case.name);
                (case.name, outcome)
            }
        })
        .buffer_unordered(options.parallel.max(1));
    while let Some((name, outcome)) = results.next().await {
        done += 1;
        match outcome {
            Ok(outcome) => {
                let mut line = format!(
                    "[{done}/{total}] {} {name} ({:.1} s)",
                    outcome.status.label(),
                    outcome.elapsed.as_secs_f64()
                );
                if outcome.status.failed() {
                    line.push_str(&keep_dump(&options.report_dir, &name, &outcome.dump));
                }
                if let Some(reason) = &outcome.skip_reason {
                    line.push_str(&format!(": {reason}"));
                }
                say(line);
                summary.finished.push((name, outcome.status));
            }
            Err(err) => {
                let why = errors::chain(&err);
                let mut line = format!("[{done}/{total}] ERROR {name}: {why}");
                if let Err(e) = report_not_run(cluster, &options.report_dir, &name, &why) {
                    line.push_str(&format!(" (and its report could not be written: {e})"));
                }
                say(line);
                summary.errors.push((name, why));
            }
        }
    }
    heartbeat.abort();
    summary
}

/// A case that could not even be set up still gets its report, failed under
/// [`STEPS_CHECK`] with the error: junit readers (Sonobuoy, dashboards) then count it as
/// failed instead of not seeing it at all.
fn report_not_run(
    cluster: &Cluster,
    report_dir: &Path,
    test: &str,
    why: &str,
) -> Result<(), crate::report::ReportError> {
    let failed = CheckResult::new(
        STEPS_CHECK,
        Verdict::Fail {
            evidence: vec![format!("the test could not be set up: {why}")],
        },
    );
    let secrets: Vec<String> = cluster
        .manifest_overrides()
        .ok()
        .and_then(|o| MysqlManifests::load_documented(&settings::repo_root(), &o).ok())
        .and_then(|m| m.root_password())
        .into_iter()
        .collect();
    Report::new(&cluster.description(), test, vec![failed]).write_all(
        &report_dir.join(crate::scenario::report_folder(test)),
        &[],
        &secrets,
    )
}

/// Writes a failed case's namespace dump beside its report; says where (or why not).
fn keep_dump(report_dir: &Path, test: &str, dump: &str) -> String {
    let path = report_dir
        .join(crate::scenario::report_folder(test))
        .join(DUMP_FILE);
    match std::fs::write(&path, dump) {
        Ok(()) => format!(": namespace dump in {}", path.display()),
        Err(e) => format!(
            ": could not write the namespace dump to {}: {e}",
            path.display()
        ),
    }
}

fn spawn_heartbeat(
    running: Arc<Running>,
    every: Duration,
    say: Say,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Some(line) = running.line() {
                say(line);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_names_each_running_case_and_its_last_step() {
        let running = Running::default();
        assert_eq!(running.line(), None);
        running.begin("survival-NodeKill");
        running.step("survival-NodeKill", "seq 12: stop node w1");
        running.step("not-running", "ignored");
        let line = running.line().unwrap_or_default();
        assert!(
            line.starts_with("still running: survival-NodeKill ("),
            "{line}"
        );
        assert!(line.contains("at: seq 12: stop node w1"), "{line}");
        assert!(!line.contains("not-running"), "{line}");
        running.end("survival-NodeKill");
        assert_eq!(running.line(), None);
    }

    #[test]
    fn tally_counts_errors_as_failures() {
        let mut summary = RunSummary::default();
        summary.finished.push(("a".into(), CaseStatus::Passed));
        summary.finished.push(("b".into(), CaseStatus::Skipped));
        assert!(!summary.any_failed());
        summary.errors.push(("c".into(), "no namespace".into()));
        assert!(summary.any_failed());
        assert_eq!(
            summary.tally(),
            "1 passed, 0 failed, 1 skipped, 1 could not run"
        );
        summary
            .finished
            .push(("d".into(), CaseStatus::ChecksFailed));
        assert_eq!(
            summary.tally(),
            "1 passed, 1 failed, 1 skipped, 1 could not run"
        );
    }
}
