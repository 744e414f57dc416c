//! What a checker concludes: a [`Verdict`] (Pass, Fail with evidence, Unknown with the
//! reason), named as a [`CheckResult`], over a [`Window`] of a history's sequence numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a checker concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass {
        summary: String,
    },
    Fail {
        evidence: Vec<String>,
    },
    Unknown {
        reason: String,
    },
    /// The check could not run on this target (e.g. no exec into pods for a DNS lookup):
    /// listed with its reason, never silently absent, and never counted as a pass (the
    /// promise it serves is then only partly covered).
    Skipped {
        reason: String,
    },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail { .. })
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown { .. })
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self, Verdict::Skipped { .. })
    }

    /// `PASS`, `FAIL`, `UNKNOWN` or `SKIPPED`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass { .. } => "PASS",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Unknown { .. } => "UNKNOWN",
            Verdict::Skipped { .. } => "SKIPPED",
        }
    }

    /// The evidence of a failure (empty otherwise).
    pub fn evidence(&self) -> &[String] {
        match self {
            Verdict::Fail { evidence } => evidence,
            _ => &[],
        }
    }

    /// Fail with the evidence if there is any, otherwise Unknown with the reasons the
    /// history could not decide if there are any, otherwise Pass.
    pub(crate) fn judge(
        evidence: Vec<String>,
        unknowns: Vec<String>,
        summary: impl FnOnce() -> String,
    ) -> Verdict {
        if !evidence.is_empty() {
            Verdict::Fail { evidence }
        } else if !unknowns.is_empty() {
            Verdict::Unknown {
                reason: capped(&unknowns),
            }
        } else {
            Verdict::Pass { summary: summary() }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass { summary } => write!(f, "PASS: {summary}"),
            Verdict::Unknown { reason } => write!(f, "UNKNOWN: {reason}"),
            Verdict::Skipped { reason } => write!(f, "SKIPPED: {reason}"),
            Verdict::Fail { evidence } => {
                write!(f, "FAIL:")?;
                for line in evidence {
                    write!(f, "\n  - {line}")?;
                }
                Ok(())
            }
        }
    }
}

/// A named verdict, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub verdict: Verdict,
}

impl CheckResult {
    pub fn new(check: &'static str, verdict: Verdict) -> Self {
        Self { check, verdict }
    }

    pub fn is_pass(&self) -> bool {
        self.verdict.is_pass()
    }

    /// The check `check` could not run here, for `reason`.
    pub fn skipped(check: &'static str, reason: impl Into<String>) -> Self {
        Self::new(
            check,
            Verdict::Skipped {
                reason: reason.into(),
            },
        )
    }
}

/// `PASS     name: summary`, or the label and name followed by the evidence, indented.
impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.verdict.label();
        match &self.verdict {
            Verdict::Pass { summary } => write!(f, "{label:<8} {}: {summary}", self.check),
            Verdict::Unknown { reason } | Verdict::Skipped { reason } => {
                write!(f, "{label:<8} {}: {reason}", self.check)
            }
            Verdict::Fail { evidence } => {
                write!(f, "{label:<8} {}", self.check)?;
                for line in evidence {
                    write!(f, "\n           - {line}")?;
                }
                Ok(())
            }
        }
    }
}

/// An inclusive range of sequence numbers of a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: u64,
    pub to: u64,
}

impl Window {
    pub fn new(from: u64, to: u64) -> Self {
        Self { from, to }
    }

    /// The whole history.
    pub fn all() -> Self {
        Self::new(0, u64::MAX)
    }

    pub fn contains(&self, seq: u64) -> bool {
        (self.from..=self.to).contains(&seq)
    }
}

impl From<(u64, u64)> for Window {
    fn from((from, to): (u64, u64)) -> Self {
        Self::new(from, to)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.to == u64::MAX {
            write!(f, "seq {}..end", self.from)
        } else {
            write!(f, "seq {}..={}", self.from, self.to)
        }
    }
}

/// Reasons a report lists in full before it counts the rest: a writer that ran on for
/// minutes can leave thousands of undecidable rows, and the first few say what happened.
const REASONS_LISTED: usize = 10;

fn capped(reasons: &[String]) -> String {
    let mut text = reasons
        .iter()
        .take(REASONS_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if reasons.len() > REASONS_LISTED {
        text.push_str(&format!(
            "; ... and {} more",
            reasons.len() - REASONS_LISTED
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_of_reasons_are_counted_past_the_first_ten() {
        let reasons: Vec<String> = (0..25).map(|i| format!("row {i} undecided")).collect();
        let v = Verdict::judge(vec![], reasons, || "ok".into());
        let text = v.to_string();
        assert!(text.contains("row 9 undecided; ... and 15 more"), "{text}");
        assert!(!text.contains("row 10 undecided"), "{text}");
    }

    #[test]
    fn judge_prefers_evidence_then_unknowns() {
        let fail = Verdict::judge(vec!["pod mysql-1 broke".into()], vec!["x".into()], || {
            "ok".into()
        });
        assert_eq!(fail.evidence(), ["pod mysql-1 broke".to_string()]);
        let unknown = Verdict::judge(vec![], vec!["a".into(), "b".into()], || "ok".into());
        assert_eq!(
            unknown,
            Verdict::Unknown {
                reason: "a; b".into()
            }
        );
        assert!(Verdict::judge(vec![], vec![], || "ok".into()).is_pass());
    }

    #[test]
    fn display_indents_the_evidence_under_the_check() {
        let r = CheckResult::new(
            "at-most-one",
            Verdict::Fail {
                evidence: vec!["e1".into(), "e2".into()],
            },
        );
        let text = r.to_string();
        assert!(text.starts_with("FAIL     at-most-one\n"), "{text}");
        assert!(
            text.contains("\n           - e1\n           - e2"),
            "{text}"
        );
        assert!(!r.is_pass());
        let p = CheckResult::new(
            "x",
            Verdict::Pass {
                summary: "fine".into(),
            },
        );
        assert_eq!(p.to_string(), "PASS     x: fine");
        assert!(p.is_pass());
    }

    #[test]
    fn window_is_inclusive() {
        let w = Window::from((3, 5));
        assert!(!w.contains(2) && w.contains(3) && w.contains(5) && !w.contains(6));
        assert!(Window::all().contains(u64::MAX));
        assert_eq!(w.to_string(), "seq 3..=5");
    }
}
