package sous

// Rollout is how far a workload child (Deployment, StatefulSet, ReplicaSet)
// has rolled out.
type Rollout struct {
	// Ready is status.readyReplicas of the observed child (0 when absent).
	Ready uint64 `json:"readyReplicas"`
	// Phase is Pending (not observed yet), Progressing (fewer ready than
	// wanted) or Ready.
	Phase string `json:"phase"`
}

// RolloutOf is the rollout of observed (the child as observed, nil when it
// does not exist) toward wanted ready replicas.
func RolloutOf(observed Object, wanted uint64) Rollout {
	if observed == nil {
		return Rollout{Phase: "Pending"}
	}
	ready := uint64(0)
	if count, ok := Lookup(observed, "status", "readyReplicas").(float64); ok && count > 0 {
		ready = uint64(count)
	}
	if ready >= wanted {
		return Rollout{Ready: ready, Phase: "Ready"}
	}
	return Rollout{Ready: ready, Phase: "Progressing"}
}
