//! A reconciler that misbehaves on request, to prove the host's limits.
//!
//! `spec.attack` picks the misbehaviour:
//! - `loop`: spins forever (ends by fuel or deadline);
//! - `memory`: allocates without bound, touching every page;
//! - `panic`: panics (a trap with a message on stderr);
//! - `huge`: answers one child of 100 MB;
//! - `garbage`: answers a child that is not JSON;
//! - `forbidden`: answers a ClusterRoleBinding granting cluster-admin to
//!   every authenticated user (or ClusterRole `spec.clusterRole` to user
//!   `spec.grantee`, when given);
//! - `exfiltrate`: copies every related object it is handed into a ConfigMap
//!   of its own namespace;
//! - `elsewhere`: answers a ConfigMap in namespace `spec.namespace`;
//! - `many`: answers `spec.count` ConfigMaps (default 10,000);
//! - `transient`: reports a transient error;
//! - `remember`: counts its calls in a global and reports the count in a
//!   ConfigMap, to prove that no state survives from one call to the next;
//! - `escape`: tries the filesystem, the environment, the arguments and the
//!   network, and reports what it got in a ConfigMap;
//! - `linger`: finalize answers not done (again in 500 ms) until the parent
//!   carries the annotation `e2e.sous.dev/release`;
//! - `echo`: answers the objects of `spec.objects` as its children, verbatim,
//!   and `spec.status` as the status when there is one (the
//!   controller-pattern trials choose the answer this way);
//!
//! Attacks on the fields of `sous:reconciler@0.2.0`, each answered beside the
//! harmless ConfigMap `<name>-0` so that only the attack can be refused:
//! - `patch-owner`: a patch to the ConfigMap `spec.target` (default
//!   `<name>-victim`) that sets `metadata.ownerReferences` to the parent, so
//!   that someone else's object would be garbage collected with it;
//! - `parent-label-reserved`: the parent label `spec.key` (default
//!   `sous.dev/reconciler`, a key under the host's `sous.dev/`) = `hijacked`;
//! - `related-undeclared`: a related request for `spec.apiVersion`/`spec.kind`
//!   (default `v1`/`Secret`, a kind no hostile Reconciler declares), in every
//!   namespace;
//! - `related-selector`: a related request for `v1`/`ConfigMap` whose
//!   selector `spec.selector` (default `app in (web`) is malformed;
//! - `related-unsettled`: a related request for the ConfigMap `<name>-<n>`,
//!   `n` one more than the highest `k` of the related ConfigMaps `<name>-<k>`
//!   this call got (0 when it got none), so the requests change whenever the
//!   previous ones found something: they never settle while `<name>-0`,
//!   `<name>-1`, ... exist;
//! - `related-random`: a related request for a ConfigMap with a fresh random
//!   name on every call, so the requests never settle whatever the cluster
//!   holds;
//! - anything else: one harmless ConfigMap, to show the guest still works.

use sous_guest::bindings::sous::reconciler::types::RelatedRequest;
use sous_guest::bindings::{Error, FinalizeResponse, Guest, Request, Response, export_raw};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use sous_guest::{Value, json};

/// Calls seen by this instance; always 1 if every call gets a fresh instance.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The misbehaving guest.
struct Hostile;

impl Guest for Hostile {
    fn reconcile(request: Request) -> Result<Response, Error> {
        let parent: Value = serde_json::from_str(&request.parent).expect("the host sends JSON");
        let name = parent["metadata"]["name"]
            .as_str()
            .unwrap_or("hostile")
            .to_string();
        let children = match parent["spec"]["attack"].as_str().unwrap_or("") {
            "loop" => spin(),
            "memory" => hoard(),
            "panic" => panic!("hostile guest panicked on purpose"),
            "huge" => vec![huge_config_map(&name, 100 << 20)],
            "garbage" => vec!["this is not JSON".to_string()],
            "forbidden" => vec![cluster_role_binding(&name, &parent["spec"])],
            "exfiltrate" => vec![loot(&name, &request.related)],
            "elsewhere" => vec![elsewhere(&name, &parent["spec"]["namespace"])],
            "many" => many(&name, parent["spec"]["count"].as_u64().unwrap_or(10_000)),
            "transient" => return Err(Error::Transient("the hostile guest is resting".into())),
            "escape" => vec![escape_report(&name)],
            "remember" => vec![config_map(&name, CALLS.fetch_add(1, Ordering::Relaxed) + 1)],
            "echo" => echo(&parent["spec"]["objects"]),
            _ => vec![config_map(&name, 0)],
        };
        let status = (parent["spec"]["attack"] == "echo")
            .then(|| &parent["spec"]["status"])
            .filter(|status| status.is_object())
            .map(Value::to_string);
        let mut response = Response {
            children,
            status,
            requeue_after_ms: None,
            events: Vec::new(),
            parent_labels: None,
            parent_annotations: None,
            patches: Vec::new(),
            related_requests: Vec::new(),
        };
        let spec = &parent["spec"];
        match spec["attack"].as_str().unwrap_or("") {
            "patch-owner" => response.patches.push(owning_patch(&name, &parent)),
            "parent-label-reserved" => {
                let key = spec["key"].as_str().unwrap_or("sous.dev/reconciler");
                response.parent_labels = Some(vec![(key.to_string(), "hijacked".to_string())]);
            }
            "related-undeclared" => response.related_requests.push(RelatedRequest {
                api_version: spec["apiVersion"].as_str().unwrap_or("v1").to_string(),
                kind: spec["kind"].as_str().unwrap_or("Secret").to_string(),
                namespace: Some("*".to_string()),
                name: None,
                selector: None,
            }),
            "related-selector" => response.related_requests.push(RelatedRequest {
                selector: Some(
                    spec["selector"]
                        .as_str()
                        .unwrap_or("app in (web")
                        .to_string(),
                ),
                ..config_map_request(None)
            }),
            "related-unsettled" => {
                let wanted = format!("{name}-{}", next_counter(&name, &request.related));
                response
                    .related_requests
                    .push(config_map_request(Some(wanted)));
            }
            "related-random" => {
                let wanted = format!("{name}-{:016x}", random());
                response
                    .related_requests
                    .push(config_map_request(Some(wanted)));
            }
            _ => {}
        }
        Ok(response)
    }

    fn finalize(request: Request) -> Result<FinalizeResponse, Error> {
        let parent: Value = serde_json::from_str(&request.parent).expect("the host sends JSON");
        let lingering = parent["spec"]["attack"] == "linger"
            && parent["metadata"]["annotations"]["e2e.sous.dev/release"].is_null();
        Ok(FinalizeResponse {
            done: !lingering,
            requeue_after_ms: lingering.then_some(500),
            events: Vec::new(),
        })
    }
}

/// A patch to someone else's ConfigMap that makes the parent its owner.
fn owning_patch(name: &str, parent: &Value) -> String {
    let target = parent["spec"]["target"]
        .as_str()
        .map_or_else(|| format!("{name}-victim"), str::to_string);
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": target,
            "ownerReferences": [{
                "apiVersion": parent["apiVersion"],
                "kind": parent["kind"],
                "name": name,
                "uid": parent["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "data": { "owned": "by the hostile guest" },
    })
    .to_string()
}

/// A related request for ConfigMaps in the parent's namespace, of `name` if given.
fn config_map_request(name: Option<String>) -> RelatedRequest {
    RelatedRequest {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        namespace: None,
        name,
        selector: None,
    }
}

/// One more than the highest `k` of the related ConfigMaps `<name>-<k>`, 0
/// when there is none.
fn next_counter(name: &str, related: &[String]) -> u64 {
    let prefix = format!("{name}-");
    related
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|object| object["kind"] == "ConfigMap")
        .filter_map(|object| {
            object["metadata"]["name"]
                .as_str()?
                .strip_prefix(&prefix)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map_or(0, |highest| highest + 1)
}

/// A random number: std's hash keys come from the host's WASI random, fresh
/// in every instance.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

fn echo(objects: &Value) -> Vec<String> {
    objects
        .as_array()
        .into_iter()
        .flatten()
        .map(Value::to_string)
        .collect()
}

fn spin() -> Vec<String> {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn hoard() -> Vec<String> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn config_map(name: &str, index: u64) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": format!("{name}-{index}") },
        "data": { "index": index.to_string() },
    })
    .to_string()
}

fn many(name: &str, count: u64) -> Vec<String> {
    (0..count).map(|index| config_map(name, index)).collect()
}

fn huge_config_map(name: &str, bytes: usize) -> String {
    let head = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"blob":""#
    );
    let tail = r#""}}"#;
    // `repeat` copies by doubling (bulk memory copies), so building the blob
    // costs little fuel: the response size limit is what must stop it.
    [head.as_str(), &"x".repeat(bytes), tail].concat()
}

fn escape_report(name: &str) -> String {
    let outcome = |result: std::io::Result<String>| match result {
        Ok(found) => format!("got {found}"),
        Err(_) => "denied".to_string(),
    };
    let file = outcome(std::fs::read_to_string("/etc/passwd"));
    let listing =
        outcome(std::fs::read_dir(".").map(|entries| format!("{} entries", entries.count())));
    let network =
        outcome(std::net::TcpStream::connect("127.0.0.1:80").map(|_| "a connection".to_string()));
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name },
        "data": {
            "file": file,
            "listing": listing,
            "network": network,
            "environment": std::env::vars().count().to_string(),
            "arguments": std::env::args().count().to_string(),
        },
    })
    .to_string()
}

fn cluster_role_binding(name: &str, spec: &Value) -> String {
    let role = spec["clusterRole"].as_str().unwrap_or("cluster-admin");
    let subject = match spec["grantee"].as_str() {
        Some(user) => {
            json!({ "kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io" })
        }
        None => {
            json!({ "kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io" })
        }
    };
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": [subject],
    })
    .to_string()
}

fn loot(name: &str, related: &[String]) -> String {
    let data: serde_json::Map<String, Value> = related
        .iter()
        .enumerate()
        .map(|(index, object)| (format!("object-{index}"), Value::from(object.as_str())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": format!("{name}-loot") },
        "data": data,
    })
    .to_string()
}

fn elsewhere(name: &str, namespace: &Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": namespace },
        "data": { "from": "elsewhere" },
    })
    .to_string()
}

export_raw!(Hostile with_types_in sous_guest::bindings);
