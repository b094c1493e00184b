use std::time::Duration;

use super::*;

fn call(id: &str, conn: u64, origin: Origin, state: State) -> Call {
    Call {
        id: id.into(),
        uid: "1008@example.com".into(),
        conn,
        origin,
        state,
        held: false,
        port: 10000,
        parties: Parties {
            caller_id_name: "Verto Tester".into(),
            caller_id_number: "1008".into(),
            callee_id_name: "Outbound Call".into(),
            callee_id_number: "9196".into(),
            display_direction: "inbound",
        },
        remote_sdp: String::new(),
    }
}

fn states(table: &CallTable) -> Vec<(String, SimCallState)> {
    let snapshot = table.snapshot();
    snapshot.into_iter().map(|c| (c.call_id, c.state)).collect()
}

#[test]
fn a_socket_going_away_ends_its_unanswered_calls_and_detaches_its_answered_ones() {
    let mut table = CallTable::default();
    let now = Instant::now();
    table.insert("s", call("a-ringing", 1, Origin::Browser, State::Ringing));
    table.insert("s", call("b-active", 1, Origin::Browser, State::Active));
    table.insert(
        "s",
        call("c-other-socket", 2, Origin::Browser, State::Active),
    );
    table.insert(
        "t",
        call("d-other-sessid", 1, Origin::Browser, State::Active),
    );
    let outcome = table.detach("s", 1, now + Duration::from_secs(120));
    assert_eq!(outcome, Detached { ended: 1, kept: 1 });
    assert_eq!(
        states(&table),
        [
            ("b-active".into(), SimCallState::Detached),
            ("c-other-socket".into(), SimCallState::Active),
            ("d-other-sessid".into(), SimCallState::Active),
        ]
    );
    assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(120)));
    assert_eq!(table.detach("s", 1, now), Detached::default(), "only once");
}

#[test]
fn reattach_moves_the_detached_calls_of_the_sessid_to_the_new_socket() {
    let mut table = CallTable::default();
    let until = Instant::now() + Duration::from_secs(1);
    table.insert(
        "s",
        call("b", 1, Origin::Browser, State::Detached { until }),
    );
    table.insert(
        "s",
        call("a", 1, Origin::Browser, State::Detached { until }),
    );
    table.insert("s", call("c", 3, Origin::Browser, State::Active));
    table.insert(
        "t",
        call("d", 1, Origin::Browser, State::Detached { until }),
    );
    let mut other_user = call("e", 1, Origin::Browser, State::Detached { until });
    other_user.uid = "1000@example.com".into();
    table.insert("s", other_user);
    let moved: Vec<String> = table
        .reattach("s", "1008@example.com", 7)
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        moved,
        ["a", "b"],
        "not the other user's call, not another sessid's"
    );
    let a = table.get_mut("s", "a").unwrap();
    assert!(a.is_on(7) && a.state == State::Reattaching);
    assert!(
        table.reattach("s", "1008@example.com", 8).is_empty(),
        "nothing is left"
    );
    assert!(table.reattach("nobody", "1008@example.com", 7).is_empty());
}

#[test]
fn detached_calls_expire_at_their_deadline_unless_their_sessid_is_bound_again() {
    let mut table = CallTable::default();
    let now = Instant::now();
    let past = State::Detached {
        until: now - Duration::from_millis(1),
    };
    let future = State::Detached {
        until: now + Duration::from_secs(5),
    };
    table.insert("gone", call("a", 1, Origin::Browser, past));
    table.insert("gone", call("b", 1, Origin::Browser, future));
    table.insert("back", call("c", 2, Origin::Browser, past));
    let rearm = now + Duration::from_secs(120);
    assert_eq!(table.expire(now, |s| s == "back", rearm), 1);
    assert_eq!(table.len(), 2);
    assert_eq!(
        table.get_mut("back", "c").unwrap().state,
        State::Detached { until: rearm }
    );
    assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(5)));
}

#[test]
fn the_first_answer_of_a_ring_group_ends_the_other_ringing_legs() {
    let mut table = CallTable::default();
    let ring = Origin::Node { ring: 4 };
    table.insert("s1", call("won", 1, ring, State::Active));
    table.insert("s2", call("lost", 2, ring, State::Ringing));
    table.insert(
        "s3",
        call("other-ring", 3, Origin::Node { ring: 5 }, State::Ringing),
    );
    let losers = table.lose_race(4, "won");
    assert_eq!(losers.len(), 1);
    assert_eq!(
        (losers[0].0.as_str(), losers[0].1.id.as_str()),
        ("s2", "lost")
    );
    assert_eq!(table.owner("lost"), None);
    assert_eq!(table.owner("won"), Some("s1"));
    assert_eq!(table.len(), 2);
}

#[test]
fn removing_the_last_call_of_a_sessid_forgets_the_sessid() {
    let mut table = CallTable::default();
    table.insert("s", call("a", 1, Origin::Browser, State::Ringing));
    assert!(table.remove("s", "a").is_some());
    assert!(table.remove("s", "a").is_none());
    assert_eq!(table.len(), 0);
    assert!(table.by_sessid.is_empty());
}
