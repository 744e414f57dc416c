//! Redaction of secrets (the manifest's root password) from everything a report writes:
//! reports are handed to customers.

/// What secrets are replaced with.
pub const REDACTED: &str = "<redacted>";

/// Replaces every occurrence of every non-empty secret with `<redacted>`, also in its
/// JSON-escaped form (so a secret with quotes or backslashes is caught in JSON too).
pub fn redact<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret that contains another is replaced whole.
    let mut forms: Vec<String> = secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| !s.is_empty())
        .flat_map(|s| [s.to_string(), json_escaped(s)])
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    for form in forms {
        out = out.replace(&form, REDACTED);
    }
    out
}

fn json_escaped(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::plain("password=s3cret!", &["s3cret!"], "password=<redacted>")]
    #[case::every_occurrence("s3cret s3cret", &["s3cret"], "<redacted> <redacted>")]
    #[case::json_escaped_form(r#"{"pw":"a\"b\\c"}"#, &["a\"b\\c"], r#"{"pw":"<redacted>"}"#)]
    #[case::longest_secret_first("abcdef", &["abc", "abcdef"], "<redacted>")]
    #[case::empty_secret_ignored("nothing here", &[""], "nothing here")]
    fn redact_cases(#[case] text: &str, #[case] secrets: &[&str], #[case] expected: &str) {
        assert_eq!(redact(text, secrets), expected);
    }
}
