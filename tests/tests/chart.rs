//! The Helm chart: its CRDs are the code's, and its rendered manifests (by
//! helm, when there is one) meet the restricted Pod Security Standard and give
//! the host exactly the RBAC it needs, in both RBAC modes.

use std::path::PathBuf;

use serde_json::Value;
use sous_tests::chart;

const NAMESPACE: &str = "sous-system";

/// The CRDs the chart ships are those `sous crds` prints.
#[test]
fn chart_crds_are_the_codes() {
    let shipped = std::fs::read_to_string(chart::dir().join("crds/sous.dev.yaml")).unwrap();
    let generated = sous::crd::definitions_yaml().unwrap();
    assert!(
        shipped == generated,
        "charts/sous/crds/sous.dev.yaml drifted from the code: run \
         `cargo run -p sous -- crds > charts/sous/crds/sous.dev.yaml`"
    );
}

/// helm, or `None` after saying why these tests are skipped.
fn helm() -> Option<PathBuf> {
    match chart::helm() {
        Ok(helm) => Some(helm),
        Err(reason) => {
            println!("chart: skipped: {reason}");
            None
        }
    }
}

fn render(sets: &[&str]) -> Option<Vec<Value>> {
    let helm = helm()?;
    Some(chart::render(&helm, NAMESPACE, sets).unwrap())
}

fn of_kind<'a>(manifests: &'a [Value], kind: &str) -> Vec<&'a Value> {
    manifests.iter().filter(|m| m["kind"] == kind).collect()
}

fn one<'a>(manifests: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(manifests, kind).as_slice() {
        [only] => only,
        other => panic!("expected one {kind}, found {}", other.len()),
    }
}

fn args(manifests: &[Value]) -> Vec<String> {
    let container = &one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_string())
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether any rule of `role` allows `verb` on `resource` of `group`, as the
/// RBAC authorizer decides (`*` matches anything, subresources included).
fn allows(role: &Value, group: &str, resource: &str, verb: &str) -> bool {
    role["rules"].as_array().unwrap().iter().any(|rule| {
        let matches = |field: &str, wanted: &str| {
            strings(&rule[field])
                .iter()
                .any(|have| *have == "*" || *have == wanted)
        };
        matches("apiGroups", group) && matches("resources", resource) && matches("verbs", verb)
    })
}

/// What the host needs whatever the mode: its own API, module ConfigMaps,
/// Events and impersonation (cluster-wide), and its Lease (in its namespace).
fn assert_host_needs(manifests: &[Value]) {
    let cluster = one(manifests, "ClusterRole");
    let role = one(manifests, "Role");
    let needs: &[(&Value, &str, &str, &[&str])] = &[
        (
            cluster,
            "sous.dev",
            "reconcilers",
            &["get", "list", "watch", "patch"],
        ),
        (
            cluster,
            "sous.dev",
            "clusterreconcilers",
            &["get", "list", "watch", "patch"],
        ),
        (cluster, "sous.dev", "reconcilers/status", &["patch"]),
        (cluster, "sous.dev", "clusterreconcilers/status", &["patch"]),
        (cluster, "", "configmaps", &["get", "list", "watch"]),
        (cluster, "events.k8s.io", "events", &["create", "patch"]),
        (cluster, "", "events", &["create", "patch"]),
        (cluster, "", "serviceaccounts", &["impersonate"]),
        (
            cluster,
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &["list", "watch"],
        ),
        (
            role,
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"],
        ),
    ];
    for (role, group, resource, verbs) in needs {
        for verb in *verbs {
            assert!(
                allows(role, group, resource, verb),
                "{} does not allow {verb} {group}/{resource}",
                role["kind"]
            );
        }
    }
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let binding = one(manifests, binding);
        assert_eq!(binding["subjects"][0]["name"], "sous");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert_eq!(one(manifests, "ServiceAccount")["metadata"]["name"], "sous");
    assert_eq!(one(manifests, "Role")["metadata"]["namespace"], NAMESPACE);
}

/// The parent, child and related kinds of the example (`MyApp` → Deployment, Service).
fn assert_example_kinds(cluster: &Value) {
    for verb in ["get", "list", "watch", "patch"] {
        assert!(
            allows(cluster, "example.sous.dev", "myapps", verb),
            "{verb} myapps"
        );
    }
    assert!(allows(
        cluster,
        "example.sous.dev",
        "myapps/status",
        "patch"
    ));
    for (group, resource) in [("apps", "deployments"), ("", "services")] {
        for verb in ["get", "list", "watch", "create", "patch", "delete"] {
            assert!(
                allows(cluster, group, resource, verb),
                "{verb} {group}/{resource}"
            );
        }
    }
}

/// No rule reaches Secrets, by name or by wildcard, and none impersonates
/// anything but ServiceAccounts (impersonating groups reaches system:masters).
fn assert_no_secrets_nor_escalation(manifests: &[Value]) {
    for role in of_kind(manifests, "ClusterRole")
        .into_iter()
        .chain(of_kind(manifests, "Role"))
    {
        for verb in ["get", "list", "watch", "create", "patch"] {
            assert!(!allows(role, "", "secrets", verb), "{verb} secrets allowed");
        }
        for resource in ["users", "groups", "uids"] {
            assert!(
                !allows(role, "", resource, "impersonate"),
                "impersonate {resource}"
            );
        }
        assert!(!allows(
            role,
            "rbac.authorization.k8s.io",
            "clusterroles",
            "escalate"
        ));
    }
}

#[test]
fn default_values_are_broad_single_replica_and_restricted() {
    let Some(manifests) = render(&[]) else { return };
    assert_host_needs(&manifests);
    assert_no_secrets_nor_escalation(&manifests);
    let cluster = one(&manifests, "ClusterRole");
    assert_example_kinds(cluster);
    assert!(
        allows(cluster, "batch", "jobs", "create"),
        "broad covers batch"
    );

    let deployment = one(&manifests, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let args = args(&manifests);
    assert_eq!(args[..3], ["run", "--namespace", "$(POD_NAMESPACE)"]);
    assert!(
        args.contains(&"--leader-elect".to_string()),
        "a rolling update runs two pods at once: they must elect a leader, {args:?}"
    );
    assert!(deployment["spec"].get("strategy").is_none());
    assert!(of_kind(&manifests, "PodDisruptionBudget").is_empty());
    assert!(of_kind(&manifests, "ServiceMonitor").is_empty());
    assert!(of_kind(&manifests, "NetworkPolicy").is_empty());
    assert_eq!(of_kind(&manifests, "CustomResourceDefinition").len(), 2);
    assert_eq!(one(&manifests, "Service")["spec"]["ports"][0]["port"], 8080);
}

#[test]
fn the_pod_meets_the_restricted_pod_security_standard() {
    let Some(manifests) = render(&[]) else { return };
    let pod = &one(&manifests, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert!(security["privileged"].is_null() && security["capabilities"]["add"].is_null());

    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| {
            let field = &var["valueFrom"]["fieldRef"]["fieldPath"];
            (var["name"].as_str().unwrap(), field.as_str().unwrap_or(""))
        })
        .collect();
    assert!(
        env.contains(&("POD_NAMESPACE", "metadata.namespace")),
        "{env:?}"
    );
    assert!(env.contains(&("POD_NAME", "metadata.name")), "{env:?}");
    // The module cache is the only writable place: an emptyDir.
    let args = args(&manifests);
    let cache = args.iter().position(|arg| arg == "--cache-dir").unwrap();
    assert_eq!(container["volumeMounts"][0]["mountPath"], args[cache + 1]);
    assert!(pod["volumes"][0]["emptyDir"].is_object());
}

#[test]
fn least_privilege_allows_only_the_listed_kinds() {
    let Some(manifests) = render(&[r#"rbac.mode="leastPrivilege""#]) else {
        return;
    };
    assert_host_needs(&manifests);
    assert_no_secrets_nor_escalation(&manifests);
    let cluster = one(&manifests, "ClusterRole");
    assert_example_kinds(cluster);
    assert!(!allows(cluster, "batch", "jobs", "create"));
    assert!(!allows(cluster, "example.sous.dev", "others", "get"));
    assert!(!allows(cluster, "", "configmaps", "create"));
    assert!(!allows(cluster, "example.sous.dev", "myapps", "delete"));

    let Some(manifests) = render(&[
        r#"rbac.mode="leastPrivilege""#,
        r#"rbac.leastPrivilege.parents=[{"apiGroup":"shop.example.com","resources":["stores"]}]"#,
        r#"rbac.leastPrivilege.children=[{"apiGroup":"batch","resources":["jobs","cronjobs"]}]"#,
        r#"rbac.leastPrivilege.related=[{"apiGroup":"","resources":["nodes"]}]"#,
    ]) else {
        return;
    };
    let cluster = one(&manifests, "ClusterRole");
    assert!(allows(cluster, "shop.example.com", "stores", "watch"));
    assert!(allows(
        cluster,
        "shop.example.com",
        "stores/status",
        "patch"
    ));
    assert!(allows(cluster, "batch", "cronjobs", "delete"));
    assert!(allows(cluster, "", "nodes", "list"));
    assert!(!allows(cluster, "", "nodes", "patch"));
    assert!(!allows(cluster, "apps", "deployments", "create"));
}

#[test]
fn broad_mode_grants_secrets_only_when_asked() {
    let Some(manifests) = render(&["rbac.broad.secrets=true"]) else {
        return;
    };
    assert!(allows(one(&manifests, "ClusterRole"), "", "secrets", "get"));
}

#[test]
fn more_than_one_replica_elects_a_leader_and_keeps_one_available() {
    let Some(manifests) = render(&["replicas=2"]) else {
        return;
    };
    assert!(args(&manifests).contains(&"--leader-elect".to_string()));
    let budget = one(&manifests, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"], 1);

    let Some(manifests) = render(&["leaderElection.enabled=false"]) else {
        return;
    };
    assert!(!args(&manifests).contains(&"--leader-elect".to_string()));
    let deployment = one(&manifests, "Deployment");
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "without a Lease, an update must never run two hosts at once"
    );

    let helm = helm().unwrap();
    let refused = chart::render(
        &helm,
        NAMESPACE,
        &["replicas=2", "leaderElection.enabled=false"],
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("needs replicas: 1")
    );
}

#[test]
fn service_monitor_and_network_policy_when_enabled() {
    let Some(manifests) = render(&["serviceMonitor.enabled=true", "networkPolicy.enabled=true"])
    else {
        return;
    };
    let monitor = one(&manifests, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let policy = one(&manifests, "NetworkPolicy");
    assert_eq!(strings(&policy["spec"]["policyTypes"]), ["Ingress"]);
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "http");
}
