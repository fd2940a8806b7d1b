//! How far a workload child (Deployment, StatefulSet, ReplicaSet) has rolled out.

use serde_json::Value;

/// The rollout of one observed workload child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// `status.readyReplicas` of the observed child (0 when absent).
    pub ready: u64,
    /// `Pending` (not observed yet), `Progressing` (fewer ready than wanted)
    /// or `Ready`.
    pub phase: &'static str,
}

impl Rollout {
    /// The rollout of `observed` (the child as observed, if it exists) toward
    /// `wanted` ready replicas.
    pub fn of(observed: Option<&Value>, wanted: u64) -> Self {
        let ready = observed
            .and_then(|child| child["status"]["readyReplicas"].as_u64())
            .unwrap_or(0);
        let phase = match observed {
            None => "Pending",
            Some(_) if ready >= wanted => "Ready",
            Some(_) => "Progressing",
        };
        Self { ready, phase }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn phases_follow_the_ready_replicas() {
        assert_eq!(
            Rollout::of(None, 3),
            Rollout {
                ready: 0,
                phase: "Pending"
            }
        );
        let partly = json!({"status": {"readyReplicas": 1}});
        assert_eq!(
            Rollout::of(Some(&partly), 3),
            Rollout {
                ready: 1,
                phase: "Progressing"
            }
        );
        let fresh = json!({"status": {}});
        assert_eq!(Rollout::of(Some(&fresh), 3).phase, "Progressing");
        let done = json!({"status": {"readyReplicas": 3}});
        assert_eq!(
            Rollout::of(Some(&done), 3),
            Rollout {
                ready: 3,
                phase: "Ready"
            }
        );
    }
}
