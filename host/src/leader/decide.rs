//! What a candidate does after one read of the lease: pure, no I/O, no clock.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// The candidate deciding.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    /// Its identity, written as `holderIdentity`.
    pub identity: &'a str,
    /// The `leaseDurationSeconds` it writes when it holds the lease.
    pub lease_duration_seconds: i32,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Decision {
    /// There is no lease: create one with this spec.
    Create(LeaseSpec),
    /// The candidate holds the lease: write this spec (a later `renewTime`)
    /// over the version read.
    Renew(LeaseSpec),
    /// The lease is released or expired: write this spec over the version read.
    TakeOver {
        /// The spec naming the candidate as holder.
        spec: LeaseSpec,
        /// Who held it before, if anyone.
        previous: Option<String>,
    },
    /// Someone else holds the lease and it has not expired.
    Wait {
        /// The holder.
        holder: String,
        /// When the lease expires unless renewed.
        expires: Timestamp,
    },
}

/// Decides from the lease as read (`None`: it does not exist) at `now`.
///
/// A lease is held by its `holderIdentity` until `renewTime +
/// leaseDurationSeconds`; an empty holder means released. A lease naming a
/// holder but no `renewTime` cannot be judged fresh and counts as expired.
pub(super) fn decide(lease: Option<&Lease>, me: Candidate<'_>, now: Timestamp) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create(LeaseSpec {
            holder_identity: Some(me.identity.to_string()),
            lease_duration_seconds: Some(me.lease_duration_seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        });
    };
    let current = lease.spec.clone().unwrap_or_default();
    let holder = current
        .holder_identity
        .clone()
        .filter(|holder| !holder.is_empty());
    match holder {
        Some(holder) if holder == me.identity => Decision::Renew(LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(me.lease_duration_seconds),
            acquire_time: current.acquire_time.clone().or(Some(MicroTime(now))),
            ..current
        }),
        Some(holder) => match expiry(&current, me) {
            Some(expires) if now < expires => Decision::Wait { holder, expires },
            _ => take_over(current, Some(holder), me, now),
        },
        None => take_over(current, None, me, now),
    }
}

/// The spec that gives up a lease `me` holds, so that a successor takes it at
/// once: no holder, `leaseDurationSeconds: 1` (as client-go releases).
/// `None` when `me` does not hold it: nothing to give up.
pub(super) fn release_spec(lease: &Lease, me: &str, now: Timestamp) -> Option<LeaseSpec> {
    let spec = lease.spec.clone()?;
    if spec.holder_identity.as_deref() != Some(me) {
        return None;
    }
    Some(LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        ..spec
    })
}

/// When a held lease expires, if it says when it was renewed.
fn expiry(spec: &LeaseSpec, me: Candidate<'_>) -> Option<Timestamp> {
    let renewed = spec.renew_time.as_ref()?.0;
    let seconds = spec
        .lease_duration_seconds
        .unwrap_or(me.lease_duration_seconds);
    renewed
        .checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .ok()
}

fn take_over(
    current: LeaseSpec,
    previous: Option<String>,
    me: Candidate<'_>,
    now: Timestamp,
) -> Decision {
    let transitions = current.lease_transitions.unwrap_or(0).saturating_add(1);
    Decision::TakeOver {
        spec: LeaseSpec {
            holder_identity: Some(me.identity.to_string()),
            lease_duration_seconds: Some(me.lease_duration_seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..current
        },
        previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Candidate<'static> = Candidate {
        identity: "host-a",
        lease_duration_seconds: 15,
    };

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn lease(holder: Option<&str>, renewed: Option<i64>, duration: Option<i32>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                renew_time: renewed.map(|seconds| MicroTime(at(seconds))),
                acquire_time: Some(MicroTime(at(-100))),
                lease_duration_seconds: duration,
                lease_transitions: Some(4),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    fn taken_over(decision: Decision) -> (LeaseSpec, Option<String>) {
        match decision {
            Decision::TakeOver { spec, previous } => (spec, previous),
            other => panic!("expected a take-over, got {other:?}"),
        }
    }

    #[test]
    fn absent_lease_is_created_with_me_as_holder() {
        let Decision::Create(spec) = decide(None, ME, at(0)) else {
            panic!("expected Create");
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("host-a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn lease_held_by_me_is_renewed_keeping_acquire_time_and_transitions() {
        let held = lease(Some("host-a"), Some(-3), Some(15));
        let Decision::Renew(spec) = decide(Some(&held), ME, at(0)) else {
            panic!("expected Renew");
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("host-a"));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(-100))));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn lease_held_by_me_is_renewed_even_when_expired() {
        let stale = lease(Some("host-a"), Some(-60), Some(15));
        assert!(matches!(
            decide(Some(&stale), ME, at(0)),
            Decision::Renew(_)
        ));
    }

    #[test]
    fn fresh_lease_of_another_holder_means_wait_until_it_expires() {
        let held = lease(Some("host-b"), Some(-5), Some(15));
        assert_eq!(
            decide(Some(&held), ME, at(0)),
            Decision::Wait {
                holder: "host-b".to_string(),
                expires: at(10),
            }
        );
    }

    #[test]
    fn the_holders_duration_counts_not_mine() {
        let held = lease(Some("host-b"), Some(-20), Some(60));
        assert!(matches!(
            decide(Some(&held), ME, at(0)),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn expired_lease_is_taken_over_and_counts_a_transition() {
        let held = lease(Some("host-b"), Some(-16), Some(15));
        let (spec, previous) = taken_over(decide(Some(&held), ME, at(0)));
        assert_eq!(previous.as_deref(), Some("host-b"));
        assert_eq!(spec.holder_identity.as_deref(), Some("host-a"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(5));
    }

    #[test]
    fn lease_expires_exactly_at_renew_time_plus_duration() {
        let held = lease(Some("host-b"), Some(-15), Some(15));
        let (_, previous) = taken_over(decide(Some(&held), ME, at(0)));
        assert_eq!(previous.as_deref(), Some("host-b"));
        let just_before = decide(Some(&held), ME, at(0) - SignedDuration::from_millis(1));
        assert!(matches!(just_before, Decision::Wait { .. }));
    }

    #[test]
    fn released_lease_is_taken_over_at_once() {
        for holder in [None, Some("")] {
            let released = lease(holder, Some(0), Some(1));
            let (spec, previous) = taken_over(decide(Some(&released), ME, at(0)));
            assert_eq!(previous, None);
            assert_eq!(spec.holder_identity.as_deref(), Some("host-a"));
            assert_eq!(spec.lease_duration_seconds, Some(15));
        }
    }

    #[test]
    fn release_clears_the_holder_and_keeps_the_transitions() {
        let held = lease(Some("host-a"), Some(-3), Some(15));
        let spec = release_spec(&held, "host-a", at(0)).expect("host-a holds it");
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn released_lease_is_taken_over_by_the_next_candidate() {
        let held = lease(Some("host-b"), Some(-3), Some(15));
        let released = Lease {
            spec: release_spec(&held, "host-b", at(0)),
            ..held
        };
        let (spec, previous) = taken_over(decide(Some(&released), ME, at(0)));
        assert_eq!(previous, None);
        assert_eq!(spec.lease_transitions, Some(5));
    }

    #[test]
    fn release_leaves_a_lease_held_by_another_alone() {
        let held = lease(Some("host-b"), Some(-3), Some(15));
        assert_eq!(release_spec(&held, "host-a", at(0)), None);
        let released = lease(None, Some(0), Some(1));
        assert_eq!(release_spec(&released, "host-a", at(0)), None);
        assert_eq!(release_spec(&Lease::default(), "host-a", at(0)), None);
    }

    #[test]
    fn lease_without_spec_is_taken_over() {
        let (spec, previous) = taken_over(decide(Some(&Lease::default()), ME, at(0)));
        assert_eq!(previous, None);
        assert_eq!(spec.lease_transitions, Some(1));
    }

    #[test]
    fn holder_without_renew_time_counts_as_expired() {
        let held = lease(Some("host-b"), None, Some(15));
        let (_, previous) = taken_over(decide(Some(&held), ME, at(0)));
        assert_eq!(previous.as_deref(), Some("host-b"));
    }

    #[test]
    fn holder_without_duration_is_judged_by_mine() {
        let held = lease(Some("host-b"), Some(-10), None);
        assert_eq!(
            decide(Some(&held), ME, at(0)),
            Decision::Wait {
                holder: "host-b".to_string(),
                expires: at(5),
            }
        );
    }
}
