//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` does it: one host works, the others wait to take over.
//!
//! A candidate reads the lease and [`decide`]s: create it, renew it, take it
//! over (released, or `renewTime + leaseDurationSeconds` passed) or wait.
//! Every write carries the `resourceVersion` read, so of two candidates
//! racing for the lease one wins and the other gets a conflict and reads again.

mod decide;
mod leadership;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{debug, info, warn};

use decide::{Candidate, Decision, decide, release_spec};
pub use leadership::Leadership;

/// How long a lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long the lease holds after a renewal; a successor waits this long
    /// after the holder's last renewal. Whole seconds (rounded up).
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// The pause between two attempts to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self::scaled(Duration::from_secs(15))
    }
}

impl LeaseTiming {
    /// client-go's proportions for a given lease duration: renew deadline
    /// 2/3 of it, retry period 2/15 of it.
    pub fn scaled(lease_duration: Duration) -> Self {
        Self {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: lease_duration * 2 / 15,
        }
    }

    /// Whether the holder gives up leading before its lease can expire, and
    /// tries to renew at least once before giving up.
    fn check(&self) -> Result<(), LeaseError> {
        if self.lease_duration < Duration::from_secs(1)
            || self.renew_deadline >= self.lease_duration
            || self.retry_period >= self.renew_deadline
            || self.retry_period.is_zero()
        {
            return Err(LeaseError::InvalidTiming {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        let seconds =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(seconds).unwrap_or(i32::MAX)
    }
}

/// Leader election went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The timings cannot work: the holder could still believe it leads after
    /// its lease expired, or would give up before trying to renew.
    #[error(
        "leader election timing is inconsistent (lease duration {lease_duration:?}, renew deadline {renew_deadline:?}, retry period {retry_period:?}); the lease duration must be at least 1 s and longer than the renew deadline, which must be longer than the retry period"
    )]
    InvalidTiming {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
    /// An empty identity would read as a released lease.
    #[error(
        "leader election needs a non-empty identity; give each host a unique one, e.g. its pod name"
    )]
    EmptyIdentity,
    /// A request on the lease failed.
    #[error(
        "request on lease `{namespace}/{name}` failed: {source}; check that the API server is reachable and the host may get, create and update leases.coordination.k8s.io in `{namespace}`"
    )]
    Api {
        /// The lease's namespace.
        namespace: String,
        /// The lease's name.
        name: String,
        /// What the API server or the client said.
        #[source]
        source: kube::Error,
    },
}

impl LeaseError {
    /// A short UpperCamelCase reason, for status conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidTiming { .. } => "InvalidLeaseTiming",
            Self::EmptyIdentity => "EmptyLeaseIdentity",
            Self::Api { .. } => "LeaseRequestFailed",
        }
    }
}

/// What one attempt to acquire or renew the lease found.
#[derive(Debug)]
enum Attempt {
    /// This candidate holds the lease now.
    Held,
    /// Another candidate holds it until `expires`.
    HeldBy { holder: String, expires: Timestamp },
    /// Another candidate wrote the lease between our read and our write.
    Raced,
}

/// One candidate for the leadership of a lease.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timing: LeaseTiming,
    owner: Option<OwnerReference>,
}

impl LeaderElector {
    /// A candidate named `identity` (unique per host, e.g. the pod name) for
    /// the lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
    ) -> Result<Self, LeaseError> {
        timing.check()?;
        if identity.is_empty() {
            return Err(LeaseError::EmptyIdentity);
        }
        Ok(Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            owner: None,
        })
    }

    /// Makes the pod named like this candidate's identity, with `uid`, the
    /// owner of the lease whenever this candidate holds it: the lease then
    /// goes with the last pod that held it (when the installation goes), and
    /// no host object is left behind.
    pub fn owned_by_pod(mut self, uid: &str) -> Self {
        self.owner = Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: self.identity.clone(),
            uid: uid.into(),
            ..OwnerReference::default()
        });
        self
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this candidate holds the lease, then keeps renewing it in
    /// a background task until the [`Leadership`] is released or dropped.
    /// Failed requests are logged and retried every retry period.
    pub async fn acquire(&self) -> Leadership {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => break,
                Ok(Attempt::Raced) => continue,
                Ok(Attempt::HeldBy { holder, expires }) => {
                    debug!(lease = %self, %holder, %expires, "lease held by another host; waiting");
                }
                Err(error) => warn!(%error, "cannot acquire the leadership; retrying"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
        info!(lease = %self, identity = %self.identity, "became leader");
        Leadership::start(self.clone())
    }

    /// Reads the lease and writes it if [`decide`] says so.
    async fn try_acquire_or_renew(&self) -> Result<Attempt, LeaseError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?;
        let me = Candidate {
            identity: &self.identity,
            lease_duration_seconds: self.timing.lease_duration_seconds(),
        };
        let written = match decide(current.as_ref(), me, Timestamp::now()) {
            Decision::Wait { holder, expires } => return Ok(Attempt::HeldBy { holder, expires }),
            Decision::Create(spec) => self.write(None, spec).await,
            Decision::Renew(spec) => self.write(current, spec).await,
            Decision::TakeOver { spec, previous } => {
                let written = self.write(current, spec).await;
                if written.is_ok() {
                    let previous = previous.as_deref().unwrap_or("none, released");
                    info!(lease = %self, previous, "took over the lease");
                }
                written
            }
        };
        match written {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(Attempt::Raced)
            }
            Err(error) => Err(self.error(error)),
        }
    }

    /// Writes `spec` into the lease read (`None`: creates the lease). A
    /// replacement is guarded by the resourceVersion read and keeps the
    /// lease's labels and annotations; this candidate's owner (if any)
    /// becomes the lease's.
    async fn write(&self, current: Option<Lease>, spec: LeaseSpec) -> kube::Result<Lease> {
        let Some(mut lease) = current else {
            return self
                .api
                .create(&PostParams::default(), &self.lease(spec))
                .await;
        };
        lease.spec = Some(spec);
        if let Some(owner) = &self.owner {
            lease.metadata.owner_references = Some(vec![owner.clone()]);
        }
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
    }

    /// Gives the lease up if this candidate still holds it, so a successor
    /// takes it at once: no holder, `leaseDurationSeconds: 1`.
    async fn release(&self) -> Result<(), LeaseError> {
        loop {
            let Some(current) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.error(e))?
            else {
                return Ok(());
            };
            let Some(released) = release_spec(&current, &self.identity, Timestamp::now()) else {
                return Ok(());
            };
            match self.write(Some(current), released).await {
                Ok(_) => {
                    info!(lease = %self, identity = %self.identity, "released the lease");
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => continue,
                Err(error) => return Err(self.error(error)),
            }
        }
    }

    /// A new lease with `spec`, owned by this candidate's owner (if any).
    fn lease(&self, spec: LeaseSpec) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                owner_references: self.owner.clone().map(|owner| vec![owner]),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        }
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }
}

impl std::fmt::Display for LeaderElector {
    /// The lease, as `namespace/name`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timing_is_client_gos() {
        assert_eq!(
            LeaseTiming::default(),
            LeaseTiming {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn lease_duration_is_rounded_up_to_whole_seconds() {
        let timing = LeaseTiming::scaled(Duration::from_millis(2500));
        assert_eq!(timing.lease_duration_seconds(), 3);
        assert_eq!(LeaseTiming::default().lease_duration_seconds(), 15);
    }

    #[test]
    fn timing_must_let_the_holder_renew_and_give_up_before_expiry() {
        assert!(LeaseTiming::default().check().is_ok());
        assert!(LeaseTiming::scaled(Duration::from_secs(3)).check().is_ok());
        let secs = Duration::from_secs;
        for (lease_duration, renew_deadline, retry_period) in [
            (secs(10), secs(10), secs(2)),
            (secs(15), secs(10), secs(10)),
            (secs(15), secs(10), Duration::ZERO),
            (
                Duration::from_millis(900),
                Duration::from_millis(600),
                Duration::from_millis(100),
            ),
        ] {
            let timing = LeaseTiming {
                lease_duration,
                renew_deadline,
                retry_period,
            };
            assert!(
                matches!(timing.check(), Err(LeaseError::InvalidTiming { .. })),
                "{timing:?}"
            );
        }
    }

    #[test]
    fn empty_identity_error_says_what_to_use() {
        assert_eq!(LeaseError::EmptyIdentity.reason(), "EmptyLeaseIdentity");
        assert!(LeaseError::EmptyIdentity.to_string().contains("pod name"));
    }

    #[test]
    fn invalid_timing_error_names_the_rule() {
        let error = LeaseTiming {
            lease_duration: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
        .check()
        .unwrap_err();
        assert_eq!(error.reason(), "InvalidLeaseTiming");
        let message = error.to_string();
        assert!(
            message.contains("(lease duration 5s, renew deadline 10s, retry period 2s)"),
            "{message}"
        );
        assert!(
            message.contains("longer than the renew deadline"),
            "{message}"
        );
    }

    #[test]
    fn api_error_names_the_lease_and_the_permissions() {
        let error = LeaseError::Api {
            namespace: "sous-system".to_string(),
            name: "sous-leader".to_string(),
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        assert_eq!(error.reason(), "LeaseRequestFailed");
        let message = error.to_string();
        assert!(
            message.contains("lease `sous-system/sous-leader`"),
            "{message}"
        );
        assert!(
            message.contains("get, create and update leases.coordination.k8s.io in `sous-system`"),
            "{message}"
        );
    }
}
