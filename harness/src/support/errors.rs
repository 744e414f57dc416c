//! Error messages for people: an error's message followed by each of its causes, once.
//!
//! The harness's error types follow the thiserror convention: a message says what failed
//! and on which object, and its cause is only its `source()`, never repeated in the text.
//! [`chain`] is the one reporter that prints the whole chain.

use std::error::Error;

/// The error's message followed by the message of each cause, `: `-separated.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("timed out waiting for pod mysql-0")]
    struct Timeout;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to delete pod mysql-0")]
    struct Repeats(#[source] Timeout);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to recover ordinal 0")]
    struct Silent(#[source] Repeats);

    #[test]
    fn each_cause_is_printed_once_after_the_message() {
        assert_eq!(
            chain(&Repeats(Timeout)),
            "failed to delete pod mysql-0: timed out waiting for pod mysql-0"
        );
    }

    #[test]
    fn a_cause_missing_from_the_message_is_appended() {
        assert_eq!(
            chain(&Silent(Repeats(Timeout))),
            "failed to recover ordinal 0: failed to delete pod mysql-0: timed out waiting for pod mysql-0"
        );
    }

    #[test]
    fn anyhow_context_layers_are_kept_once_each() {
        let err = anyhow::Error::new(Repeats(Timeout)).context("test survival-NodeKill");
        assert_eq!(
            chain(err.as_ref()),
            "test survival-NodeKill: failed to delete pod mysql-0: timed out waiting for pod mysql-0"
        );
    }
}
