//! Process-wide teardown of what a run created (kind clusters, kube-sim processes,
//! temporary directories), run when the process exits normally (an `atexit` hook, which
//! also covers a test binary whose tests panicked) or on Ctrl-C / SIGTERM.
//!
//! The shared cluster lives in a `static`, which Rust never drops, hence the hook.

use std::sync::{Mutex, MutexGuard, Once};

use tracing::{info, warn};

type Action = Box<dyn FnOnce() + Send>;

struct Registered {
    id: u64,
    description: String,
    action: Action,
}

struct Registry {
    next_id: u64,
    actions: Vec<Registered>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    actions: Vec::new(),
});
static HOOKS: Once = Once::new();

/// Identifies one registered cleanup action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupHandle(u64);

/// Registers `action` to run at process exit (last registered runs first) and installs
/// the exit and signal hooks on first use.
pub fn register(
    description: impl Into<String>,
    action: impl FnOnce() + Send + 'static,
) -> CleanupHandle {
    install_hooks();
    let mut registry = lock();
    let id = registry.next_id;
    registry.next_id += 1;
    registry.actions.push(Registered {
        id,
        description: description.into(),
        action: Box::new(action),
    });
    CleanupHandle(id)
}

/// Runs one action now, if it has not run yet.
pub fn run(handle: CleanupHandle) {
    let found = {
        let mut registry = lock();
        let index = registry.actions.iter().position(|r| r.id == handle.0);
        index.map(|i| registry.actions.remove(i))
    };
    if let Some(registered) = found {
        run_one(registered);
    }
}

/// Withdraws one action without running it (what it undoes was undone another way).
pub fn forget(handle: CleanupHandle) {
    lock().actions.retain(|r| r.id != handle.0);
}

/// Runs every pending action, newest first.
pub fn run_all() {
    loop {
        // Take one at a time so the lock is not held while a command runs.
        let Some(registered) = lock().actions.pop() else {
            return;
        };
        run_one(registered);
    }
}

/// Descriptions of the actions still pending, oldest first.
pub fn pending() -> Vec<String> {
    lock()
        .actions
        .iter()
        .map(|r| r.description.clone())
        .collect()
}

fn run_one(registered: Registered) {
    info!("cleanup: {}", registered.description);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(registered.action)).is_err() {
        warn!("cleanup action panicked: {}", registered.description);
    }
}

// A panic while holding the lock leaves a consistent Vec; keep using it.
fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

extern "C" fn at_exit() {
    // By now the exiting thread's thread-locals are destroyed, and `tracing`'s fmt layer
    // (like any thread-local user) panics when touched: run the actions on a fresh thread,
    // whose thread-locals are live. Unwinding out of an extern "C" fn aborts; actions
    // already catch their panics.
    if lock().actions.is_empty() {
        return;
    }
    match std::thread::Builder::new()
        .name("sts-conformance-exit-cleanup".into())
        .spawn(run_all)
    {
        Ok(thread) => {
            let _ = thread.join();
        }
        Err(err) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "sts-conformance: exit cleanup skipped (thread: {err}); pending: {}",
                pending().join(", ")
            );
        }
    }
}

fn install_hooks() {
    HOOKS.call_once(|| {
        // SAFETY: registers a plain extern "C" fn with no captured state.
        let rc = unsafe { libc::atexit(at_exit) };
        if rc != 0 {
            warn!("could not register the exit cleanup hook; clusters may outlive this run");
        }
        spawn_signal_watcher();
    });
}

/// A thread with its own small runtime waits for Ctrl-C / SIGTERM, cleans up and exits
/// with the conventional status (130 / 143).
fn spawn_signal_watcher() {
    let spawned = std::thread::Builder::new()
        .name("sts-conformance-signals".into())
        .spawn(|| {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    warn!(
                        "no signal cleanup hook (runtime: {err}); Ctrl-C may leave clusters behind"
                    );
                    return;
                }
            };
            let code = runtime.block_on(wait_for_signal());
            if let Some(code) = code {
                eprintln!("sts-conformance: interrupted; cleaning up what this run created");
                run_all();
                std::process::exit(code);
            }
        });
    if let Err(err) = spawned {
        warn!("no signal cleanup hook (thread: {err}); Ctrl-C may leave clusters behind");
    }
}

async fn wait_for_signal() -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok()?;
    let mut terminate = signal(SignalKind::terminate()).ok()?;
    tokio::select! {
        _ = interrupt.recv() => Some(130),
        _ = terminate.recv() => Some(143),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn run_executes_once_and_only_the_named_action() {
        let count = Arc::new(AtomicUsize::new(0));
        let c1 = count.clone();
        let h1 = register("test action one", move || {
            c1.fetch_add(1, Ordering::SeqCst);
        });
        let c2 = count.clone();
        let h2 = register("test action two", move || {
            c2.fetch_add(10, Ordering::SeqCst);
        });
        run(h1);
        run(h1);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(pending().iter().any(|d| d == "test action two"));
        run(h2);
        assert_eq!(count.load(Ordering::SeqCst), 11);
        assert!(!pending().iter().any(|d| d.starts_with("test action")));
    }

    #[test]
    fn a_panicking_action_does_not_stop_cleanup() {
        let h = register("panicking test action", || panic!("boom"));
        run(h);
        assert!(!pending().iter().any(|d| d == "panicking test action"));
    }
}
