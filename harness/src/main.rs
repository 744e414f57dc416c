//! `sts-conformance`: provision a target, apply or render the documented manifests, and
//! check what this machine can run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use harness::cluster::apply::apply_objects;
use harness::cluster::manifests::{MysqlManifests, Overrides};
use harness::cluster::namespace::{LABEL_KEY, LABEL_VALUE};
use harness::cluster::sim::locate_sim_binary;
use harness::cluster::target::{
    Cluster, TargetChoice, TargetKind, TargetSettings, config_from_file, select, verify_reachable,
};
use harness::report::run::RunReport;
use harness::report::sonobuoy;
use harness::suites::{self, run::RunOptions};
use harness::support::errors;
use harness::support::settings::{Settings, repo_root, validate_quantity};

#[derive(Parser)]
#[command(
    name = "sts-conformance",
    version,
    about = "StatefulSet conformance harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Provision a target, print how to reach it, and keep it until Ctrl-C.
    Up {
        /// Which target (default: E2E_TARGET, else auto).
        #[arg(long, value_enum)]
        target: Option<TargetArg>,
        /// Provision, print, then tear down and exit (a smoke test of the target).
        #[arg(long)]
        once: bool,
    },
    /// Apply the documented Service and StatefulSet (with overrides) to a cluster.
    Apply {
        /// Namespace to apply into; created (with the harness label) when missing.
        #[arg(long)]
        namespace: String,
        /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context (default: the current one).
        #[arg(long)]
        context: Option<String>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Print the documented manifests after overrides, with the root password redacted.
    Render {
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Run the conformance suites (the cases `cargo test --test e2e` runs) on a target:
    /// one line per finished case, then the run report. Exits 0 when every case passed or
    /// was skipped with its reason, 1 when one failed, 2 when the run could not be made.
    /// Earlier test reports in the report directory are removed first.
    Run {
        /// Which target (default: E2E_TARGET, else auto). `in-cluster` is for the
        /// certification Job: the pod's service account, pods reached by IP.
        #[arg(long, value_enum)]
        target: Option<TargetArg>,
        /// Run only the cases whose name contains one of these (repeatable; E2E_FOCUS takes
        /// a comma-separated list, e.g. in a Sonobuoy plugin's env).
        #[arg(long, env = "E2E_FOCUS", value_delimiter = ',')]
        focus: Vec<String>,
        /// Leave out the cases whose name contains one of these (repeatable; E2E_SKIP takes a
        /// comma-separated list).
        #[arg(long, env = "E2E_SKIP", value_delimiter = ',')]
        skip: Vec<String>,
        /// Where the reports go (default: E2E_REPORT_DIR, else reports/).
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// How many cases run at once; node cases always run alone (kind caps it with
        /// E2E_KIND_PARALLEL_TESTS).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
        parallel: u16,
        /// How often, in seconds, to say which cases are still running.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..))]
        heartbeat: u16,
        /// Print the cases (name and promise) and exit.
        #[arg(long)]
        list: bool,
    },
    /// Show which targets this machine can run, and why.
    Doctor,
    /// Gather every test report of a run into one Markdown document (<dir>/index.md),
    /// print it, and exit 1 when a test failed (2 when no report could be made).
    Report {
        /// The run's report directory (default: E2E_REPORT_DIR, else reports/).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Sim,
    Kind,
    Kubeconfig,
    Upstream,
    InCluster,
    Auto,
}

impl From<TargetArg> for TargetChoice {
    fn from(arg: TargetArg) -> Self {
        match arg {
            TargetArg::Sim => TargetChoice::Fixed(TargetKind::Sim),
            TargetArg::Kind => TargetChoice::Fixed(TargetKind::Kind),
            TargetArg::Kubeconfig => TargetChoice::Fixed(TargetKind::Kubeconfig),
            TargetArg::Upstream => TargetChoice::Fixed(TargetKind::Upstream),
            TargetArg::InCluster => TargetChoice::Fixed(TargetKind::InCluster),
            TargetArg::Auto => TargetChoice::Auto,
        }
    }
}

/// Flags win over the E2E_* variables, which win over the documented manifest.
#[derive(Args)]
struct OverrideArgs {
    /// Container image (E2E_IMAGE).
    #[arg(long)]
    image: Option<String>,
    /// StorageClass of the volumeClaimTemplates (E2E_STORAGE_CLASS).
    #[arg(long)]
    storage_class: Option<String>,
    /// Storage request, e.g. 2Gi (E2E_STORAGE_SIZE).
    #[arg(long)]
    storage_size: Option<String>,
    /// Replica count (E2E_REPLICAS).
    #[arg(long)]
    replicas: Option<i32>,
}

impl OverrideArgs {
    fn resolve(self, namespace: Option<String>) -> Result<Overrides> {
        let env = Overrides::from_env()?;
        let storage_size = self
            .storage_size
            .map(|s| validate_quantity("--storage-size", s))
            .transpose()?;
        if let Some(n) = self.replicas.filter(|n| *n < 0) {
            anyhow::bail!("--replicas must be non-negative, got {n}");
        }
        Ok(Overrides {
            image: self.image.or(env.image),
            storage_class: self.storage_class.or(env.storage_class),
            storage_size: storage_size.or(env.storage_size),
            replicas: self.replicas.or(env.replicas),
            namespace,
        })
    }
}

/// Exit status of `report` when the run it summarises had a failed test.
const EXIT_TEST_FAILED: u8 = 1;
/// Exit status of any command that could not do its job (clap's usage errors are 2 too).
const EXIT_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let outcome = run().await;
    // Tear down what the command created while logging still works (the exit hook covers
    // paths that never get here).
    harness::support::cleanup::run_all();
    match outcome {
        Ok(Done::Success) => std::process::ExitCode::SUCCESS,
        Ok(Done::TestsFailed) => std::process::ExitCode::from(EXIT_TEST_FAILED),
        Err(err) => {
            eprintln!(
                "sts-conformance: error: {}",
                harness::support::errors::chain(err.as_ref())
            );
            std::process::ExitCode::from(EXIT_ERROR)
        }
    }
}

/// How a command that did its job ended.
enum Done {
    Success,
    /// `report`: the report was made, and it records a failed test.
    TestsFailed,
}

async fn run() -> Result<Done> {
    let command = Cli::parse().command;
    // A run's progress lines are its output; its log says only what went wrong.
    let default_level = match command {
        Command::Run { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let done = match command {
        Command::Up { target, once } => up(target, once).await,
        Command::Apply {
            namespace,
            kubeconfig,
            context,
            overrides,
        } => apply(namespace, kubeconfig, context, overrides).await,
        Command::Render {
            namespace,
            overrides,
        } => render(namespace, overrides),
        Command::Doctor => doctor().await,
        Command::Report { dir } => return report(dir),
        Command::Run {
            target,
            focus,
            skip,
            report_dir,
            parallel,
            heartbeat,
            list,
        } => {
            let plan = RunPlan {
                target,
                focus,
                skip,
                report_dir,
                parallel: usize::from(parallel),
                heartbeat: Duration::from_secs(u64::from(heartbeat)),
            };
            return if list {
                list_cases(&plan)
            } else {
                run_suites(plan).await
            };
        }
    };
    done.map(|()| Done::Success)
}

struct RunPlan {
    target: Option<TargetArg>,
    focus: Vec<String>,
    skip: Vec<String>,
    report_dir: Option<PathBuf>,
    parallel: usize,
    heartbeat: Duration,
}

impl RunPlan {
    fn cases(&self) -> Vec<suites::Case> {
        suites::select(suites::catalogue(), &self.focus, &self.skip)
    }
}

fn list_cases(plan: &RunPlan) -> Result<Done> {
    let mut out = std::io::stdout().lock();
    for case in plan.cases() {
        let written = writeln!(out, "{:<40} {}", case.name, case.promise.title());
        // A reader that stops early (`| head`) ends the listing, not the process with a panic.
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            other => other.context("failed to print the cases")?,
        }
    }
    Ok(Done::Success)
}

/// The environment's settings with the command's flags applied, made the process's own
/// before anything reads them.
fn install_settings(plan: &RunPlan) -> Result<&'static Settings> {
    let mut settings = Settings::from_env()?;
    if let Some(target) = plan.target {
        settings.target = target.into();
    }
    if let Some(dir) = &plan.report_dir {
        settings.report_dir = dir.clone();
    }
    anyhow::ensure!(
        Settings::install(settings),
        "the settings were read before the flags were applied"
    );
    Ok(Settings::global()?)
}

/// The run, then (in a Sonobuoy plugin's pod) the hand-over of its results, also when the
/// run could not be made, so the Sonobuoy worker never waits for a `done` that never comes.
async fn run_suites(plan: RunPlan) -> Result<Done> {
    let cases = plan.cases();
    anyhow::ensure!(
        !cases.is_empty(),
        "no case matches --focus {:?} --skip {:?} (see `sts-conformance run --list`)",
        plan.focus,
        plan.skip
    );
    let settings = install_settings(&plan)?;
    let dir = settings.report_dir.clone();
    let Some(results) = settings.sonobuoy_results_dir.clone() else {
        return run_and_report(&plan, cases, &dir).await;
    };
    sonobuoy::check_layout(&dir, &results)?;
    let ran = run_and_report(&plan, cases, &dir).await;
    if let Err(err) = &ran {
        let text = format!(
            "the run could not be made: {}\n",
            errors::chain(err.as_ref())
        );
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(RUN_ERROR_FILE), text)?;
    }
    let tarball = sonobuoy::hand_over(&dir, &results)?;
    eprintln!(
        "sts-conformance: results handed to Sonobuoy: {} (and {})",
        tarball.display(),
        results.join(sonobuoy::DONE_FILE).display()
    );
    ran
}

/// Written into the report directory when a Sonobuoy run could not be made.
const RUN_ERROR_FILE: &str = "run-error.txt";

async fn run_and_report(plan: &RunPlan, cases: Vec<suites::Case>, dir: &Path) -> Result<Done> {
    clear_earlier_reports(dir)?;
    let cluster = Cluster::provision(TargetSettings::from_env()?).await?;
    suites::facts::record(&cluster, &suites::catalogue(), dir).await?;
    println!(
        "sts-conformance: running {} cases on {} ({} at once)",
        cases.len(),
        cluster.description(),
        plan.parallel
    );
    let options = RunOptions {
        parallel: plan.parallel,
        heartbeat: plan.heartbeat,
        report_dir: dir.to_owned(),
    };
    let say: suites::run::Say = std::sync::Arc::new(|line| println!("{line}"));
    let summary = suites::run::run_cases(&cluster, cases, &options, say).await;
    println!("sts-conformance: {}", summary.tally());
    let reported = report(Some(dir.to_owned()));
    for (name, why) in &summary.errors {
        eprintln!("sts-conformance: {name} could not run: {why}");
    }
    match reported? {
        Done::TestsFailed => Ok(Done::TestsFailed),
        Done::Success if summary.any_failed() => Ok(Done::TestsFailed),
        Done::Success => Ok(Done::Success),
    }
}

/// Removes the test reports an earlier run left (every `<dir>/<test>/` with a
/// `history.json`, the run report, its facts and error), so this run's report holds only
/// its own cases.
fn clear_earlier_reports(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.join("history.json").is_file() {
            std::fs::remove_dir_all(&path).with_context(|| {
                format!("failed to remove the earlier report {}", path.display())
            })?;
        }
    }
    let files = [
        harness::report::run::INDEX_FILE,
        harness::report::certification::FACTS_FILE,
        RUN_ERROR_FILE,
    ];
    for file in files.map(|f| dir.join(f)).iter().filter(|f| f.is_file()) {
        std::fs::remove_file(file)
            .with_context(|| format!("failed to remove the earlier {}", file.display()))?;
    }
    Ok(())
}

fn report(dir: Option<PathBuf>) -> Result<Done> {
    let dir = match dir {
        Some(dir) => dir,
        None => Settings::global()?.report_dir.clone(),
    };
    let run = RunReport::load(&dir)?;
    let index = run.write_index()?;
    print!("{}", run.markdown());
    eprintln!("sts-conformance: wrote {}", index.display());
    Ok(if run.any_failed() {
        Done::TestsFailed
    } else {
        Done::Success
    })
}

async fn up(target: Option<TargetArg>, once: bool) -> Result<()> {
    let mut settings = TargetSettings::from_env()?;
    if let Some(target) = target {
        settings = settings.with_choice(target.into());
    }
    let cluster = Cluster::provision(settings).await?;
    println!("sts-conformance: ready: {}", cluster.description());
    println!("{}", cluster.access_instructions());
    if once {
        // Returning exits the process; the exit hook tears down what was created.
        return Ok(());
    }
    println!("Press Ctrl-C to stop; what this run created is then deleted (unless E2E_KEEP=1).");
    // The cleanup hooks own Ctrl-C/SIGTERM: they tear down and exit the process.
    std::future::pending::<()>().await;
    Ok(())
}

async fn apply(
    namespace: String,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    overrides: OverrideArgs,
) -> Result<()> {
    let overrides = overrides.resolve(Some(namespace.clone()))?;
    let manifests = MysqlManifests::load_documented(&repo_root(), &overrides)?;
    let config = match kubeconfig {
        Some(path) => config_from_file(&path, context.as_deref()).await?,
        None => {
            let options = kube::config::KubeConfigOptions {
                context,
                ..Default::default()
            };
            match options.context {
                Some(_) => kube::Config::from_kubeconfig(&options).await?,
                None => kube::Config::infer().await?,
            }
        }
    };
    let endpoint = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .with_context(|| format!("failed to build a client for {endpoint}"))?;
    ensure_namespace(&client, &namespace).await?;
    apply_objects(&client, &namespace, &manifests.objects()).await?;
    for object in manifests.objects() {
        println!(
            "applied {} to namespace {namespace} at {endpoint}",
            object.describe()
        );
    }
    Ok(())
}

async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    if api
        .get_opt(name)
        .await
        .with_context(|| format!("failed to look up namespace {name}"))?
        .is_some()
    {
        return Ok(());
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(LABEL_KEY.to_owned(), LABEL_VALUE.to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("failed to create namespace {name}"))?;
    println!("created namespace {name}");
    Ok(())
}

fn render(namespace: Option<String>, overrides: OverrideArgs) -> Result<()> {
    let overrides = overrides.resolve(namespace)?;
    let manifests = MysqlManifests::load_documented(&repo_root(), &overrides)?;
    print!("{}", manifests.to_yaml_redacted()?);
    Ok(())
}

/// One line per capability: `ok`/`no`, what, and why.
async fn doctor() -> Result<()> {
    let settings = TargetSettings::from_env()?;
    let cli = settings.kind_cli.clone();
    let report = |ok: bool, what: &str, detail: String| {
        println!("[{}] {what}: {detail}", if ok { " ok " } else { " no " });
    };
    let (docker_ok, kind_ok) = {
        let cli = cli.clone();
        tokio::task::spawn_blocking(move || {
            let docker = harness::support::process::run(
                std::process::Command::new(&cli.docker).arg("info"),
                harness::cluster::kind::PREFLIGHT_TIMEOUT,
            );
            (docker.map(|_| ()), cli.version())
        })
        .await?
    };
    report(
        docker_ok.is_ok(),
        "docker",
        docker_ok.as_ref().map_or_else(
            |e| {
                format!(
                    "{} (install: {})",
                    harness::support::errors::chain(e),
                    harness::cluster::kind::DOCKER_INSTALL_URL
                )
            },
            |_| "`docker info` succeeds".to_owned(),
        ),
    );
    report(
        kind_ok.is_ok(),
        "kind",
        kind_ok
            .as_ref()
            .map_or_else(|e| harness::support::errors::chain(e), Clone::clone),
    );
    report(
        docker_ok.is_ok() && kind_ok.is_ok(),
        "target kind",
        "needs docker and kind".to_owned(),
    );
    let sim = locate_sim_binary(settings.sim_bin.as_deref());
    report(
        sim.is_ok(),
        "kube-sim binary",
        sim.as_ref().map_or_else(
            |e| harness::support::errors::chain(e),
            |p| p.display().to_string(),
        ),
    );
    let mariadbd = find_mariadbd();
    report(
        mariadbd.is_some(),
        "mariadbd (kube-sim runs pods with it)",
        mariadbd.as_ref().map_or_else(
            || "not found; run scripts/setup.sh (installs mariadb-server)".to_owned(),
            |p| p.display().to_string(),
        ),
    );
    report(
        sim.is_ok() && mariadbd.is_some(),
        "target sim",
        "needs the kube-sim binary and mariadbd".to_owned(),
    );
    let upstream = harness::cluster::target::upstream_usable();
    report(
        upstream.is_ok(),
        "target upstream",
        upstream.map_or_else(
            |why| why,
            |()| {
                format!(
                    "official binaries in {} and root (its real nodes also need the images of scripts/build-images.sh)",
                    harness::cluster::target::upstream_bin_dir().display()
                )
            },
        ),
    );
    let kubeconfig = probe_kubeconfig().await;
    report(
        kubeconfig.is_ok(),
        "target kubeconfig",
        kubeconfig.unwrap_or_else(|e| harness::support::errors::chain(e.as_ref())),
    );
    let selection = tokio::task::spawn_blocking(move || select(TargetChoice::Auto, &cli)).await?;
    println!(
        "E2E_TARGET=auto would use: {} ({})",
        selection.kind, selection.reason
    );
    Ok(())
}

fn find_mariadbd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("mariadbd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/mariadbd")])
        .find(|p| p.is_file())
}

async fn probe_kubeconfig() -> Result<String> {
    let config = kube::Config::infer().await?;
    let endpoint = config.cluster_url.to_string();
    verify_reachable(&config, Duration::from_secs(5)).await?;
    Ok(format!("API server at {endpoint} answers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
