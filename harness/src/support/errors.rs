//! Error messages for people. The harness's error types say what failed and on which
//! object, and most include their cause's text in their own message while also exposing
//! it as `source()`; printing the whole chain as-is would repeat each cause. [`chain`]
//! prints each cause once.

use std::error::Error;

/// The error's message followed by each cause not already part of the text so far.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let message = c.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
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
    #[error("failed to delete pod mysql-0: {0}")]
    struct Repeats(#[source] Timeout);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to recover ordinal 0")]
    struct Silent(#[source] Repeats);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
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
