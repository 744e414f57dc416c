//! Running async work from places that cannot await it: drop guards (whose caller may be an
//! async task being dropped, or a current-thread runtime that cannot run tasks while it is
//! blocked) and exit hooks. The work runs on a fresh thread with its own small runtime, and
//! the caller waits for it, bounded.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

/// Why detached work did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DetachedError {
    #[error("failed to start the thread for {what}")]
    Thread {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to build a runtime for {what}")]
    Runtime {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("gave up on {what} after {}s", timeout.as_secs_f64())]
    Timeout { what: String, timeout: Duration },
    #[error("failed to {what}: {reason}")]
    Failed { what: String, reason: String },
}

/// Runs the future `work` builds on a fresh thread named `thread` with its own
/// current-thread runtime, waiting at most `timeout` for it. `what` names the work in errors
/// ("start node w2").
pub fn run<F, Fut>(
    thread: &str,
    what: &str,
    timeout: Duration,
    work: F,
) -> Result<(), DetachedError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let (tx, rx) = mpsc::channel();
    let owned = what.to_owned();
    std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime
                    .block_on(work())
                    .map_err(|reason| DetachedError::Failed {
                        what: owned,
                        reason,
                    }),
                Err(source) => Err(DetachedError::Runtime {
                    what: owned,
                    source,
                }),
            };
            let _ = tx.send(result);
        })
        .map_err(|source| DetachedError::Thread {
            what: what.to_owned(),
            source,
        })?;
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(DetachedError::Timeout {
            what: what.to_owned(),
            timeout,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_to_completion_and_names_failures_and_timeouts() {
        run("t-ok", "succeed", Duration::from_secs(5), || async {
            Ok(())
        })
        .unwrap();
        let err = run(
            "t-fail",
            "start node w2",
            Duration::from_secs(5),
            || async { Err("exit status: 1".to_owned()) },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "failed to start node w2: exit status: 1");
        let err = run("t-slow", "wait", Duration::from_millis(50), || async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, DetachedError::Timeout { .. }), "{err}");
    }
}
