//! Error messages for people: an error's message followed by each of its causes, once.
//!
//! kube-sim's error types follow the thiserror convention: a message says what failed and on
//! which object, and its cause is only its `source()`, never repeated in the text. [`chain`]
//! is the one place the whole chain is printed (pod statuses, control answers, logs).

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
    #[error("failed to start mariadbd for data dir /pv/0")]
    struct Spawn(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to start the runtime")]
    struct Runtime(#[source] Spawn);

    #[test]
    fn each_cause_follows_the_message_once() {
        let err = Runtime(Spawn(std::io::Error::other("no such file")));
        assert_eq!(
            chain(&err),
            "failed to start the runtime: failed to start mariadbd for data dir /pv/0: no such file"
        );
    }
}
