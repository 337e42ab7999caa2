//! Where new pending emails go in the queue, apart from its effects: their lane
//! by priority, and their turn, so that tenants with a backlog take turns
//! (start-time fair queueing: a tenant's emails are numbered on from where it
//! left off, or from where the claims are if it had nothing waiting).

use std::collections::{BTreeMap, HashMap};

use dialin_proto::notifier::v1::Priority;

/// Emails from a single-user admin call.
pub const LANE_INTERACTIVE: i32 = 0;
/// Emails from calls about many users.
pub const LANE_BULK: i32 = 1;

/// The lane of an email of `priority`; one that does not say waits with the bulk.
pub fn lane_of(priority: Priority) -> i32 {
    match priority {
        Priority::Interactive => LANE_INTERACTIVE,
        Priority::Bulk | Priority::Unspecified => LANE_BULK,
    }
}

/// A new pending email: whose, and in which lane it asks to go.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub lane: i32,
}

/// The lane and turn of each arrival, in order, given the first turn reserved
/// for each tenant and lane (`starts`; a turn per arrival of it). An
/// interactive email takes the same user's earlier bulk arrivals along into
/// its lane, at its turn, so that a user's emails leave in the order of their
/// changes.
pub fn place(arrivals: &[Arrival<'_>], starts: &HashMap<(&str, i32), i64>) -> Vec<(i32, i64)> {
    let mut next = starts.clone();
    let mut placed: Vec<(i32, i64)> = arrivals
        .iter()
        .map(|arrival| {
            let turn = next.entry((arrival.tenant_id, arrival.lane)).or_insert(0);
            let placed = (arrival.lane, *turn);
            *turn += 1;
            placed
        })
        .collect();
    for (later, arrival) in arrivals.iter().enumerate() {
        if arrival.lane != LANE_INTERACTIVE {
            continue;
        }
        let at = placed[later];
        for (earlier, other) in arrivals[..later].iter().enumerate() {
            if other.tenant_id == arrival.tenant_id
                && other.user_id == arrival.user_id
                && placed[earlier].0 == LANE_BULK
            {
                placed[earlier] = at;
            }
        }
    }
    placed
}

/// The users with an interactive arrival, by tenant, and the tenant's first
/// interactive turn (`places`, from [`place`]): their emails recorded earlier
/// in the bulk lane go there, one statement per tenant, so none of them
/// leaves after its user's newer interactive one.
pub fn interactive_users<'a>(
    arrivals: &[Arrival<'a>],
    places: &[(i32, i64)],
) -> BTreeMap<&'a str, (i64, Vec<&'a str>)> {
    let mut users: BTreeMap<&str, (i64, Vec<&str>)> = BTreeMap::new();
    for (arrival, &(lane, turn)) in arrivals.iter().zip(places) {
        if arrival.lane == LANE_INTERACTIVE && lane == LANE_INTERACTIVE {
            let (first, user_ids) = users.entry(arrival.tenant_id).or_insert((turn, Vec::new()));
            *first = (*first).min(turn);
            user_ids.push(arrival.user_id);
        }
    }
    for (_, user_ids) in users.values_mut() {
        user_ids.sort_unstable();
        user_ids.dedup();
    }
    users
}

/// How many turns each tenant and lane needs for `arrivals`.
pub fn turns_needed<'a>(arrivals: &[Arrival<'a>]) -> HashMap<(&'a str, i32), i64> {
    let mut needed = HashMap::new();
    for arrival in arrivals {
        *needed.entry((arrival.tenant_id, arrival.lane)).or_insert(0) += 1;
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival<'a>(tenant_id: &'a str, user_id: &'a str, lane: i32) -> Arrival<'a> {
        Arrival {
            tenant_id,
            user_id,
            lane,
        }
    }

    #[test]
    fn a_caller_that_does_not_say_waits_with_the_bulk() {
        assert_eq!(lane_of(Priority::Interactive), LANE_INTERACTIVE);
        assert_eq!(lane_of(Priority::Bulk), LANE_BULK);
        assert_eq!(lane_of(Priority::Unspecified), LANE_BULK);
    }

    #[test]
    fn each_tenant_numbers_its_emails_on_from_its_own_start() {
        let arrivals = [
            arrival("a", "1", LANE_BULK),
            arrival("b", "2", LANE_BULK),
            arrival("a", "3", LANE_BULK),
            arrival("a", "4", LANE_INTERACTIVE),
        ];
        let starts = HashMap::from([
            (("a", LANE_BULK), 10),
            (("b", LANE_BULK), 500),
            (("a", LANE_INTERACTIVE), 7),
        ]);
        assert_eq!(
            place(&arrivals, &starts),
            [
                (LANE_BULK, 10),
                (LANE_BULK, 500),
                (LANE_BULK, 11),
                (LANE_INTERACTIVE, 7)
            ]
        );
        assert_eq!(
            turns_needed(&arrivals),
            HashMap::from([
                (("a", LANE_BULK), 2),
                (("b", LANE_BULK), 1),
                (("a", LANE_INTERACTIVE), 1)
            ])
        );
    }

    #[test]
    fn an_interactive_email_takes_its_users_earlier_bulk_ones_along() {
        let arrivals = [
            arrival("a", "ann", LANE_BULK),
            arrival("a", "bob", LANE_BULK),
            arrival("b", "ann", LANE_BULK),
            arrival("a", "ann", LANE_INTERACTIVE),
            arrival("a", "ann", LANE_BULK),
        ];
        let starts = HashMap::from([
            (("a", LANE_BULK), 0),
            (("b", LANE_BULK), 0),
            (("a", LANE_INTERACTIVE), 3),
        ]);
        assert_eq!(
            place(&arrivals, &starts),
            [
                // Ann's earlier bulk email goes with her interactive one, at its turn.
                (LANE_INTERACTIVE, 3),
                // Another user, and another tenant's Ann, stay where they were.
                (LANE_BULK, 1),
                (LANE_BULK, 0),
                (LANE_INTERACTIVE, 3),
                // A later bulk email stays behind: nothing of hers is older in the bulk lane.
                (LANE_BULK, 2),
            ]
        );
    }

    #[test]
    fn the_users_with_interactive_emails_are_gathered_by_tenant_at_its_first_interactive_turn() {
        let arrivals = [
            arrival("a", "bob", LANE_BULK),
            arrival("a", "ann", LANE_INTERACTIVE),
            arrival("b", "cy", LANE_INTERACTIVE),
            arrival("a", "bob", LANE_INTERACTIVE),
            arrival("a", "ann", LANE_INTERACTIVE),
        ];
        let starts = HashMap::from([
            (("a", LANE_BULK), 0),
            (("a", LANE_INTERACTIVE), 4),
            (("b", LANE_INTERACTIVE), 9),
        ]);
        let places = place(&arrivals, &starts);
        assert_eq!(
            interactive_users(&arrivals, &places),
            BTreeMap::from([("a", (4, vec!["ann", "bob"])), ("b", (9, vec!["cy"]))])
        );
        // A bulk email taken along is not a user of its own.
        assert_eq!(places[0], (LANE_INTERACTIVE, 5));
    }
}
