//! A Decorator of Namespaces (`spec.mode: Decorator`, parent `v1/Namespace`,
//! selected by `spec.parentSelector` on the label `team`): the Namespaces
//! belong to the cluster's administrators, and this reconciler only
//! attaches what every team namespace must have:
//!
//! - a NetworkPolicy `default-deny-ingress` (no ingress unless another
//!   policy allows it);
//! - for every ClusterRole labelled `sous.dev/team-role: "true"` (a
//!   cluster-scoped related kind), a RoleBinding `team-<role>` granting it
//!   to the group `team:<team>` in that namespace.
//!
//! It also labels the Namespace itself `teams.example.dev/decorated: "true"`
//! (a parent label, applied with the reconciler's field manager: the
//! Namespace's other labels stay as they are, and the label goes away if a
//! later version stops answering it), so that
//! `kubectl get namespaces -l teams.example.dev/decorated` lists the
//! namespaces it has decorated.
//!
//! Without any team role it still isolates the namespace and says so in a
//! Warning event. It answers no status: a decorated object's status is its
//! own controller's.

use sous_guest::{Error, Event, Reconciler, Request, Response, json, object};

/// The label naming a namespace's team.
const TEAM_LABEL: &str = "team";
/// The label marking the ClusterRoles every team gets in its namespaces.
const TEAM_ROLE_LABEL: &str = "sous.dev/team-role";
/// The label this reconciler sets on every Namespace it decorates (a parent
/// label: any key outside the host's `sous.dev/`).
const DECORATED_LABEL: &str = "teams.example.dev/decorated";

/// The reconciler.
pub struct TeamNamespaces;

impl Reconciler for TeamNamespaces {
    fn reconcile(request: &Request) -> Result<Response, Error> {
        let namespace = request.name();
        let team = request.parent()["metadata"]["labels"][TEAM_LABEL]
            .as_str()
            .filter(|team| !team.is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "Namespace {namespace} has no value in its `{TEAM_LABEL}` label; select team namespaces with `parentSelector: {{matchExpressions: [{{key: {TEAM_LABEL}, operator: Exists}}]}}` and give each a team"
                ))
            })?;
        let labels = [("app.kubernetes.io/managed-by", "sous"), (TEAM_LABEL, team)];
        let deny = object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "default-deny-ingress",
        )
        .namespace(namespace)
        .labels(labels)
        .spec(json!({"podSelector": {}, "policyTypes": ["Ingress"]}))
        .build();
        let mut response = Response::new()
            .parent_label(DECORATED_LABEL, "true")
            .child(deny);
        let mut roles: Vec<&str> = request
            .related_of_kind("ClusterRole")
            .filter(|role| role["metadata"]["labels"][TEAM_ROLE_LABEL] == "true")
            .filter_map(|role| role["metadata"]["name"].as_str())
            .collect();
        roles.sort_unstable();
        for role in &roles {
            let binding = object(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                &format!("team-{role}"),
            )
            .namespace(namespace)
            .labels(labels)
            .field(
                "roleRef",
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}),
            )
            .field(
                "subjects",
                json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("team:{team}")}]),
            )
            .build();
            response = response.child(binding);
        }
        if roles.is_empty() {
            response = response.event(Event::warning(
                "NoTeamRoles",
                format!(
                    "no ClusterRole is labelled {TEAM_ROLE_LABEL}=true, so team {team} is granted nothing in {namespace}; the namespace is isolated all the same"
                ),
            ));
        }
        Ok(response)
    }
}

#[cfg(target_family = "wasm")]
sous_guest::export!(TeamNamespaces);
