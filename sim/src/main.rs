//! `kube-sim`: serve a simulated Kubernetes cluster (test infrastructure, never a
//! certification target) until SIGINT/SIGTERM, or stdin EOF with `--exit-on-stdin-close`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;
use tokio::net::TcpListener;

use kube_sim::api::{self, ApiState};
use kube_sim::config::{Fault, Faults, SimConfig};
use kube_sim::store::Store;
use kube_sim::{kubeconfig, runtime};

/// A Kubernetes API test double with StatefulSet semantics and real MariaDB pods.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Number of worker nodes (sim-worker, sim-worker2, ...).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Root of all state (PV directories, pod run dirs); default: a fresh temp dir.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where to write a kubeconfig for kubectl and kube-rs.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Break one promise on purpose (repeatable); also KUBE_SIM_FAULTS=a,b.
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// How long after `stop` a node turns NotReady (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    node_grace: Duration,
    /// Path of the mariadbd binary (default: search PATH and /usr/sbin).
    #[arg(long)]
    mariadbd: Option<PathBuf>,
    /// Path of mariadb-install-db (default: search PATH and /usr/bin).
    #[arg(long)]
    mariadb_install_db: Option<PathBuf>,
    /// Keep the state dir on exit (for debugging).
    #[arg(long)]
    keep_state: bool,
    /// Shut down when stdin reaches EOF (so the sim dies with its parent).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| format!("invalid duration {text:?} (use e.g. 2s or 500ms)"))
}

fn faults(cli: &Cli) -> anyhow::Result<Faults> {
    let mut faults = match std::env::var("KUBE_SIM_FAULTS") {
        Ok(list) => Faults::parse_list(&list).context("failed to parse KUBE_SIM_FAULTS")?,
        Err(_) => Faults::none(),
    };
    for name in &cli.faults {
        faults.insert(name.parse::<Fault>().context("failed to parse --fault")?);
    }
    Ok(faults)
}

/// How to get `name` (`mariadbd` or `mariadb-install-db`, each also the name of its flag).
fn install_hint(name: &str) -> String {
    format!(
        "kube-sim runs every pod as a MariaDB server: install {name} with \
         `apt-get install mariadb-server` (Debian/Ubuntu), or pass --{name} PATH"
    )
}

/// `explicit`, or the first of `name` on PATH and in `extra_dirs` that is a file.
fn find_binary(
    explicit: Option<&Path>,
    name: &str,
    extra_dirs: &[&str],
) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!(
            "failed to find {name} at {}: not a file; {}",
            path.display(),
            install_hint(name)
        );
    }
    kube_sim::process::find_on_path(name, extra_dirs).with_context(|| {
        format!(
            "failed to find {name} on PATH or in {}; {}",
            extra_dirs.join(", "),
            install_hint(name)
        )
    })
}

/// The state dir and whether kube-sim may delete it on exit.
struct StateDir {
    path: PathBuf,
    remove_on_exit: bool,
}

fn state_dir(cli: &Cli) -> anyhow::Result<StateDir> {
    let Some(path) = &cli.state_dir else {
        let temp = tempfile::Builder::new()
            .prefix("kube-sim-")
            .tempdir()
            .context("failed to create a temporary state dir")?;
        // Detach the guard: kube-sim removes the dir itself after the runtime has stopped,
        // and not at all with --keep-state.
        return Ok(StateDir {
            path: temp.keep(),
            remove_on_exit: !cli.keep_state,
        });
    };
    let pre_existing = path
        .read_dir()
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    std::fs::create_dir_all(path)
        .with_context(|| format!("failed to create state dir {}", path.display()))?;
    if pre_existing && !cli.keep_state {
        tracing::warn!(dir = %path.display(), "state dir was not empty: it will be kept on exit");
    }
    Ok(StateDir {
        path: path.clone(),
        remove_on_exit: !cli.keep_state && !pre_existing,
    })
}

async fn wait_for_exit_request(watch_stdin: bool) -> &'static str {
    // A detached std thread, not tokio's stdin: tokio reads stdin on its blocking pool,
    // and shutting the runtime down waits for that read, which never returns while the
    // parent still holds stdin open (it may be the one that sent SIGTERM).
    let stdin_closed = async {
        if watch_stdin {
            let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = closed.send(());
            });
            let _ = on_close.await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = sigterm => "SIGTERM",
        _ = stdin_closed => "stdin closed",
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let faults = faults(&cli)?;
    let mariadbd = find_binary(
        cli.mariadbd.as_deref(),
        "mariadbd",
        &["/usr/sbin", "/usr/local/sbin"],
    )?;
    let install_db = find_binary(
        cli.mariadb_install_db.as_deref(),
        "mariadb-install-db",
        &["/usr/bin", "/usr/sbin", "/usr/local/bin"],
    )?;
    let state = state_dir(&cli)?;
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("failed to listen on {}", cli.listen))?;
    let addr = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let url = format!("http://{addr}");

    let config = SimConfig {
        listen: addr,
        nodes: cli.nodes,
        state_dir: state.path.clone(),
        kubeconfig: cli.kubeconfig.clone(),
        faults: faults.clone(),
        mariadbd,
        install_db,
        node_grace: cli.node_grace,
        keep_state: cli.keep_state,
    };
    let store = Store::new();
    let runtime = runtime::start(store.clone(), Arc::new(config))
        .await
        .context("failed to start the sim runtime")?;
    let info = json!({
        "url": url,
        "faults": faults.iter().map(Fault::name).collect::<Vec<_>>(),
        "stateDir": state.path,
        "nodeCount": cli.nodes,
        "nodeGraceMillis": u64::try_from(cli.node_grace.as_millis()).unwrap_or(u64::MAX),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let api_state = ApiState::new(store)
        .with_control(Arc::new(runtime.clone()))
        .with_faults(faults.clone())
        .with_info(info);
    if let Some(path) = &cli.kubeconfig {
        kubeconfig::write(path, &url)?;
    }
    let server = tokio::spawn(api::serve(listener, api_state));
    println!("kube-sim listening on {url}");
    std::io::stdout()
        .flush()
        .context("failed to write to stdout")?;
    tracing::info!(%url, faults = ?faults, state_dir = %state.path.display(),
        startup_ms = started.elapsed().as_millis(), "kube-sim ready (test double, never a certification target)");

    let outcome = tokio::select! {
        reason = wait_for_exit_request(cli.exit_on_stdin_close) => {
            tracing::info!(reason, "shutting down");
            Ok(())
        }
        served = server => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e)),
            Err(e) => Err(anyhow::anyhow!("the API server task failed: {e}")),
        },
    };
    runtime.shutdown().await;
    if state.remove_on_exit {
        if let Err(e) = std::fs::remove_dir_all(&state.path) {
            tracing::warn!(dir = %state.path.display(), error = %e, "failed to remove the state dir");
        }
    } else {
        tracing::info!(dir = %state.path.display(), "state dir kept");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn missing_binary_names_the_package_to_install() {
        let err =
            find_binary(None, "definitely-not-a-real-binary-kube-sim", &[]).expect_err("missing");
        let text = format!("{err:#}");
        assert!(text.contains("apt-get install mariadb-server"), "{text}");
        let err = find_binary(Some(Path::new("/nonexistent/mariadbd")), "mariadbd", &[])
            .expect_err("missing");
        let text = format!("{err:#}");
        assert!(text.contains("/nonexistent/mariadbd"), "{text}");
        assert!(text.contains("apt-get install mariadb-server"), "{text}");
        assert!(text.contains("--mariadbd PATH"), "{text}");
    }
}
