//! Unit cases of the scaling checkers: each passes in order, fails naming the ordinal out of
//! order, or is Unknown when the window shows nothing.

use rstest::rstest;

use super::*;
use crate::history::{Event, History};
use crate::testkit::*;

/// Ordinals 0..3 Ready before the window (which starts at the mark, seq 3).
fn three_ready() -> Vec<Event> {
    vec![
        applied(pod("mysql-0", "u0")),
        applied(pod("mysql-1", "u1")),
        applied(pod("mysql-2", "u2")),
        mark("scale 3->5"),
    ]
}

fn up(tail: Vec<Event>) -> Verdict {
    let mut events = three_ready();
    events.extend(tail);
    {
        let result = ordered_scale_up(&History::from_events(events), (3, u64::MAX), "mysql");
        assert_eq!(result.check, "ordered scale-up");
        result.verdict
    }
}

#[test]
fn parallel_burst_passes_where_ordered_fails() {
    let mut events = vec![mark("start"), scale(0, 3)];
    for i in 0..3 {
        events.push(applied(
            pod(&format!("mysql-{i}"), &format!("u{i}")).pending(),
        ));
    }
    for i in 0..3 {
        events.push(applied(pod(&format!("mysql-{i}"), &format!("u{i}"))));
    }
    events.push(scale(3, 0));
    for i in 0..3 {
        events.push(applied(
            pod(&format!("mysql-{i}"), &format!("u{i}")).terminating(),
        ));
    }
    for i in 0..3 {
        events.push(deleted(
            pod(&format!("mysql-{i}"), &format!("u{i}")).terminating(),
        ));
    }
    let h = History::from_events(events);
    let v = parallel_scale(&h, Window::all(), "mysql", 0).verdict;
    assert!(v.is_pass(), "{v}");
    assert!(
        v.to_string()
            .contains("added mysql-0 (scale 0->3 at seq 1), mysql-1 (scale 0->3 at seq 1)"),
        "{v}"
    );
    assert!(
        v.to_string()
            .contains("removed mysql-0 (scale 3->0 at seq 8)"),
        "{v}"
    );
    assert!(ordered_scale_up(&h, (0, 7), "mysql").verdict.is_fail());
}

#[test]
fn parallel_scale_names_a_missing_or_leftover_ordinal() {
    let h = History::from_events([scale(0, 2), applied(pod("mysql-0", "u0")), scale(2, 0)]);
    let v = parallel_scale(&h, Window::all(), "mysql", 0).verdict;
    let text = v.evidence().join("\n");
    assert!(
        text.contains("mysql-0, to be removed by scale 2->0 at seq 2, was never observed gone"),
        "{text}"
    );
    let h = History::from_events([scale(0, 2), applied(pod("mysql-0", "u0"))]);
    let v = parallel_scale(&h, Window::all(), "mysql", 0).verdict;
    let text = v.evidence().join("\n");
    assert!(
        text.contains("mysql-1, expected by scale 0->2 at seq 0, never appeared as a new pod"),
        "{text}"
    );
    let v = parallel_scale(
        &History::from_events([mark("x")]),
        Window::all(),
        "mysql",
        0,
    )
    .verdict;
    assert!(v.is_unknown(), "{v}");
}

#[test]
fn a_start_ordinal_has_no_predecessor() {
    let h = History::from_events([
        scale(0, 2),
        applied(pod("mysql-3", "u3").pending()),
        applied(pod("mysql-3", "u3")),
        applied(pod("mysql-4", "u4")),
    ]);
    let v = ordered_scale_up_from(&h, Window::all(), "mysql", 3).verdict;
    assert!(v.is_pass(), "{v}");
    let v = ordered_scale_up(&h, Window::all(), "mysql").verdict;
    assert!(v.is_fail(), "{v}");
}

#[test]
fn scale_up_in_order_passes() {
    let v = up(vec![
        applied(pod("mysql-3", "u3").pending()),
        applied(pod("mysql-3", "u3")),
        applied(pod("mysql-4", "u4").pending()),
        applied(pod("mysql-4", "u4")),
    ]);
    assert!(v.is_pass(), "{v}");
    assert!(
        v.to_string().contains("mysql-3 (seq 4), mysql-4 (seq 6)"),
        "{v}"
    );
}

/// Ready is current health: upstream halts a scale-up while any lower pod is not Running
/// and Ready, however Ready it was before.
#[test]
fn a_predecessor_that_lost_ready_halts_scale_up() {
    let v = up(vec![
        applied(pod("mysql-3", "u3")),
        applied(pod("mysql-3", "u3").not_ready()),
        applied(pod("mysql-4", "u4")),
    ]);
    assert_eq!(
        v.evidence(),
        [
            "pod mysql-4 (uid u4) was first observed at seq 6 while pod mysql-3 (uid u3) was not \
          Running and Ready (last observed at seq 5: phase Running, not ready, restarts 0, node \
          worker)"
        ],
        "{v}"
    );
}

/// Every lower ordinal counts, not only the predecessor.
#[test]
fn any_lower_pod_not_ready_halts_scale_up() {
    let v = up(vec![
        applied(pod("mysql-1", "u1").not_ready()),
        applied(pod("mysql-3", "u3")),
        applied(pod("mysql-1", "u1")),
        applied(pod("mysql-4", "u4")),
    ]);
    assert_eq!(
        v.evidence(),
        [
            "pod mysql-3 (uid u3) was first observed at seq 5 while pod mysql-1 (uid u1) was not \
          Running and Ready (last observed at seq 4: phase Running, not ready, restarts 0, node \
          worker)"
        ],
        "{v}"
    );
}

#[rstest]
#[case::parallel_creation(
        vec![applied(pod("mysql-3", "u3").pending()), applied(pod("mysql-4", "u4").pending())],
        "pod mysql-4 (uid u4) was first observed at seq 5 while pod mysql-3 (uid u3) was not Running and Ready"
    )]
#[case::predecessor_missing(
        vec![applied(pod("mysql-4", "u4").pending())],
        "pod mysql-4 (uid u4) was first observed at seq 4 but mysql-3 had never been observed"
    )]
#[case::predecessor_terminating(
        vec![applied(pod("mysql-3", "u3")), applied(pod("mysql-3", "u3").terminating()), applied(pod("mysql-4", "u4"))],
        "while pod mysql-3 (uid u3) was terminating"
    )]
#[case::predecessor_recreated_not_yet_ready(
        vec![
            applied(pod("mysql-3", "u3")),
            deleted(pod("mysql-3", "u3")),
            applied(pod("mysql-3", "u3b").pending()),
            applied(pod("mysql-4", "u4")),
        ],
        "while pod mysql-3 (uid u3b) was not Running and Ready"
    )]
fn out_of_order_scale_up_is_named(#[case] tail: Vec<Event>, #[case] expected: &str) {
    let v = up(tail);
    assert!(v.is_fail(), "{v}");
    assert!(
        v.evidence().iter().any(|e| e.contains(expected)),
        "wanted {expected:?} in {v}"
    );
}

#[test]
fn predecessor_last_state_before_the_window_decides() {
    let events = vec![
        applied(pod("mysql-0", "u0")),
        applied(pod("mysql-0", "u0").not_ready()),
        mark("scale 1->2"),
        applied(pod("mysql-1", "u1")),
    ];
    let v = scale_up(
        &History::from_events(events),
        Window::new(2, u64::MAX),
        "mysql",
        0,
    );
    assert!(v.is_fail(), "{v}");
    assert!(
        v.evidence()[0].contains("while pod mysql-0 (uid u0) was not Running and Ready"),
        "{v}"
    );
}

#[test]
fn scale_up_with_its_target_reached_in_order_passes() {
    let v = up(vec![
        scale(3, 5),
        applied(pod("mysql-3", "u3")),
        applied(pod("mysql-4", "u4")),
    ]);
    assert!(v.is_pass(), "{v}");
}

#[rstest]
#[case::last_ordinal_never_appeared(
        vec![scale(3, 5), applied(pod("mysql-3", "u3"))],
        "mysql-4, expected by scale 3->5 at seq 6, was never observed by the end of seq 5..end"
    )]
#[case::nothing_appeared(
        vec![scale(3, 5)],
        "mysql-3, expected by scale 3->5 at seq 6, did not appear in seq 5..end"
    )]
#[case::appeared_and_vanished_before_the_window(
        vec![scale(3, 4)],
        "mysql-3, expected by scale 3->4 at seq 6, did not appear in seq 5..end (pod mysql-3 \
         (uid u3old) was last observed deleted at seq 4)"
    )]
fn an_ordinal_missing_from_the_scale_target_is_named(
    #[case] tail: Vec<Event>,
    #[case] expected: &str,
) {
    let mut events = vec![
        applied(pod("mysql-3", "u3old")),
        deleted(pod("mysql-3", "u3old")),
        mark("scale"),
    ];
    events.extend(tail);
    let mut all = three_ready();
    all.pop();
    all.extend(events);
    // three_ready's pods, mysql-3's earlier life, then the window from the mark.
    let v = scale_up(
        &History::from_events(all),
        Window::new(5, u64::MAX),
        "mysql",
        0,
    );
    assert!(v.is_fail(), "{v}");
    assert!(
        v.evidence().iter().any(|e| e.contains(expected)),
        "wanted {expected:?} in {v}"
    );
}

#[test]
fn an_expected_ordinal_that_was_already_there_is_unknown() {
    let v = up(vec![scale(2, 4), applied(pod("mysql-3", "u3"))]);
    assert!(v.is_unknown(), "{v}");
    assert!(
        v.to_string().contains(
            "mysql-2, expected by scale 2->4 at seq 4, already existed before seq 3..end"
        ),
        "{v}"
    );
}

#[test]
fn nothing_appearing_in_the_window_is_unknown() {
    let v = up(vec![applied(pod("mysql-2", "u2").not_ready())]);
    assert!(v.is_unknown(), "{v}");
}

fn five_ready() -> Vec<Event> {
    let mut events: Vec<Event> = (0..5)
        .map(|i| applied(pod(&format!("mysql-{i}"), &format!("u{i}"))))
        .collect();
    events.push(mark("scale 5->3"));
    events
}

fn down(tail: Vec<Event>) -> Verdict {
    let mut events = five_ready();
    events.extend(tail);
    {
        let result = reverse_scale_down(&History::from_events(events), (5, u64::MAX), "mysql");
        assert_eq!(result.check, "reverse-order scale-down");
        result.verdict
    }
}

#[rstest]
#[case::graceful(vec![
        applied(pod("mysql-4", "u4").terminating()),
        deleted(pod("mysql-4", "u4").terminating()),
        applied(pod("mysql-3", "u3").terminating()),
        deleted(pod("mysql-3", "u3").terminating()),
    ])]
#[case::deleted_without_terminating_observation(vec![
        deleted(pod("mysql-4", "u4")),
        deleted(pod("mysql-3", "u3")),
    ])]
fn reverse_order_scale_down_passes(#[case] tail: Vec<Event>) {
    let v = down(tail);
    assert!(v.is_pass(), "{v}");
    assert!(v.to_string().contains("mysql-4 (seq 6"), "{v}");
}

#[rstest]
#[case::forward_order(
        vec![deleted(pod("mysql-3", "u3")), deleted(pod("mysql-4", "u4"))],
        "deletion of pod mysql-3 (uid u3) began at seq 6 while pod mysql-4 (uid u4) still existed"
    )]
#[case::next_begins_before_previous_is_gone(
        vec![
            applied(pod("mysql-4", "u4").terminating()),
            applied(pod("mysql-3", "u3").terminating()),
            deleted(pod("mysql-4", "u4").terminating()),
            deleted(pod("mysql-3", "u3").terminating()),
        ],
        "deletion of pod mysql-3 (uid u3) began at seq 7 while pod mysql-4 (uid u4) still existed (last observed at seq 6"
    )]
#[case::never_gone(
        vec![applied(pod("mysql-4", "u4").terminating())],
        "deletion of pod mysql-4 (uid u4) began at seq 6 but it was not observed gone"
    )]
fn out_of_order_scale_down_is_named(#[case] tail: Vec<Event>, #[case] expected: &str) {
    let v = down(tail);
    assert!(v.is_fail(), "{v}");
    assert!(
        v.evidence().iter().any(|e| e.contains(expected)),
        "wanted {expected:?} in {v}"
    );
}

#[test]
fn no_deletion_in_the_window_is_unknown() {
    assert!(down(vec![applied(pod("mysql-4", "u4"))]).is_unknown());
}

#[test]
fn an_ordinal_the_scale_should_remove_that_stays_is_named() {
    let v = down(vec![scale(5, 3), deleted(pod("mysql-4", "u4"))]);
    assert!(v.is_fail(), "{v}");
    assert!(
        v.evidence()[0].starts_with(
            "mysql-3, to be removed by scale 5->3 at seq 6, never began deletion in seq 5..end \
                 (pod mysql-3 (uid u3) last observed at seq 3"
        ),
        "{v}"
    );
    assert!(
        down(vec![
            scale(5, 3),
            deleted(pod("mysql-4", "u4")),
            deleted(pod("mysql-3", "u3"))
        ])
        .is_pass()
    );
}

#[test]
fn an_ordinal_the_scale_should_remove_that_was_already_gone_is_unknown() {
    let mut events = five_ready();
    events.pop();
    events.push(deleted(pod("mysql-4", "u4")));
    events.push(mark("scale 5->3"));
    events.push(scale(5, 3));
    events.push(deleted(pod("mysql-3", "u3")));
    let v = scale_down(
        &History::from_events(events),
        Window::new(6, u64::MAX),
        "mysql",
        0,
    );
    assert!(v.is_unknown(), "{v}");
    assert!(
        v.to_string()
            .contains("mysql-4, to be removed by scale 5->3 at seq 7, did not exist"),
        "{v}"
    );
}
