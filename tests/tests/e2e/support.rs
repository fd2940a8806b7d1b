//! What the operator scenarios share: a namespace with the example CRDs, a
//! host serving it, modules uploaded as ConfigMaps, and typed waits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery;
use serde_json::{Value, json};
use sous::crd::ReconcilerSpec;
use sous::runtime::Digest;
use sous::tenancy::grants;
use sous::validate::TypeRef;
use sous_tests::envtest::{self, TestCluster};
pub use sous_tests::fixtures::my_app;
use sous_tests::fixtures::{MYAPP_CRD, MYAPP_CRD_NAME};
use sous_tests::host::{self, TestHost};
pub use sous_tests::http::get as http_get;

use crate::Env;

/// How long any convergence may take before a scenario fails.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// Field manager of the test's own writes (the "user").
const USER: &str = "e2e-user";

/// A scenario's namespace and client.
pub struct World {
    /// Its client: the admin's, unless made with [`World::as_user`].
    pub client: kube::Client,
    /// The scenario's namespace.
    pub ns: String,
    /// The control plane.
    pub cluster: Arc<TestCluster>,
    config: kube::Config,
}

impl World {
    /// The trial's namespace, with the MyApp, Hostile and Sous CRDs installed.
    pub async fn new(env: Env) -> Self {
        let hostile_crd = std::fs::read_to_string(
            sous_tests::guests::repo_root().join("tests/fixtures/hostile-crd.yaml"),
        )
        .expect("reading the Hostile CRD fixture");
        let sous_crds = sous::crd::definitions_yaml().expect("the Sous CRDs");
        for yaml in [MYAPP_CRD, hostile_crd.as_str(), sous_crds.as_str()] {
            envtest::apply_yaml(&env.client, yaml, None)
                .await
                .expect("installing CRDs");
        }
        for name in [
            MYAPP_CRD_NAME,
            "hostiles.example.sous.dev",
            "reconcilers.sous.dev",
            "clusterreconcilers.sous.dev",
        ] {
            envtest::wait_crd_established(&env.client, name).await;
        }
        Self {
            client: env.client,
            ns: env.namespace,
            config: env.cluster.config(),
            cluster: env.cluster,
        }
    }

    /// The trial's world (as [`World::new`]) with the my-app guest uploaded
    /// and its Reconciler `my-app` applied.
    pub async fn with_my_app(env: Env) -> Self {
        let world = Self::new(env).await;
        let source = world
            .upload("my-app", &sous_tests::guests::guest_bytes("my_app"))
            .await;
        world.reconciler("my-app", my_app_reconciler(source)).await;
        world
    }

    /// Starts a host serving this namespace.
    pub fn host(&self, identity: &str) -> TestHost {
        TestHost::start(self.config.clone(), host::options(&self.ns, identity, None))
    }

    /// Starts a host serving this namespace with `/healthz`, `/readyz` and
    /// `/metrics` on a free loopback port, returned with it.
    pub fn host_with_endpoints(&self, identity: &str) -> (TestHost, SocketAddr) {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port");
        let mut options = host::options(&self.ns, identity, None);
        options.health_addr = Some(addr);
        (TestHost::start(self.config.clone(), options), addr)
    }

    /// The admin configuration (for hosts with custom options).
    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// Uploads `module` as ConfigMaps (compressed, split as `sous push`
    /// would) and returns the `spec.module` pointing at them.
    pub async fn upload(&self, name: &str, module: &[u8]) -> Value {
        let parts = sous::source::pack(module, sous::source::MAX_PART_BYTES);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let mut refs = Vec::new();
        for (index, part) in parts.into_iter().enumerate() {
            let map_name = format!("{name}-part-{index}");
            let map = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(map_name.clone()),
                    ..Default::default()
                },
                binary_data: Some([("module".to_string(), ByteString(part))].into()),
                ..Default::default()
            };
            api.patch(
                &map_name,
                &PatchParams::apply(USER).force(),
                &Patch::Apply(&map),
            )
            .await
            .expect("uploading a module part");
            refs.push(json!({"name": map_name, "key": "module"}));
        }
        json!({"parts": refs})
    }

    /// Replaces the bytes of a one-part upload in place (a hot reload).
    pub async fn overwrite(&self, config_map: &str, bytes: Vec<u8>) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let patch = json!({"binaryData": {"module": ByteString(bytes)}});
        api.patch(config_map, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("overwriting a module ConfigMap");
    }

    /// Applies a Reconciler named `name` with `spec`. Unless the spec names a
    /// ServiceAccount, it acts as one named after it, granted what its kinds
    /// need exactly as `sous push` grants it.
    pub async fn reconciler(&self, name: &str, mut spec: Value) {
        if spec.get("serviceAccountName").is_none() {
            self.grant(name, &spec).await;
            spec["serviceAccountName"] = json!(name);
        }
        self.apply(json!({
            "apiVersion": "sous.dev/v1alpha1", "kind": "Reconciler",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .await;
    }

    /// Creates ServiceAccount `account` with a Role granting what the kinds
    /// of Reconciler `spec` need in this namespace (as `sous push` does).
    pub async fn grant(&self, account: &str, spec: &Value) {
        let spec: ReconcilerSpec = serde_json::from_value(spec.clone()).expect("a Reconciler spec");
        let uses = grants::uses(
            TypeRef::from(&spec.parent),
            spec.children.iter().map(TypeRef::from),
            spec.related.iter().map(|related| TypeRef {
                api_version: related.api_version.clone(),
                kind: related.kind.clone(),
            }),
        );
        let discovered = grants::discover(&self.client, &uses).await;
        grants::grants(&self.ns, account, &discovered.needs)
            .apply(&self.client, USER)
            .await
            .expect("granting a reconciler's kinds to its ServiceAccount");
    }

    /// A Role `name` in this namespace with `rules`, bound to `subject` (an
    /// RBAC subject: `{"kind": "User", "name": ...}` or a ServiceAccount).
    pub async fn bind(&self, name: &str, mut subject: Value, rules: Value) {
        if subject["kind"] == "User" {
            subject["apiGroup"] = json!("rbac.authorization.k8s.io");
        }
        self.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name},
            "rules": rules,
        }))
        .await;
        self.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject],
        }))
        .await;
    }

    /// This world's client and control plane in namespace `ns`.
    pub fn in_namespace(&self, ns: &str) -> World {
        World {
            client: self.client.clone(),
            ns: ns.to_string(),
            cluster: self.cluster.clone(),
            config: self.config.clone(),
        }
    }

    /// This world as `user` (the admin impersonating it, in no group but
    /// `system:authenticated`): RBAC bounds what it may do.
    pub fn as_user(&self, user: &str) -> World {
        let config = self.cluster.config_as(user, &[]);
        World {
            client: kube::Client::try_from(config.clone()).expect("a client"),
            ns: self.ns.clone(),
            cluster: self.cluster.clone(),
            config,
        }
    }

    /// Server-side applies `object` in this namespace as the user.
    pub async fn apply(&self, object: Value) -> DynamicObject {
        let api = self
            .api(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
            )
            .await;
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        api.patch(
            &name,
            &PatchParams::apply(USER).force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"))
    }

    /// A merge patch as the user.
    pub async fn merge(&self, api_version: &str, kind: &str, name: &str, patch: Value) {
        self.api(api_version, kind)
            .await
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patching {kind} {name}: {e}"));
    }

    /// Sets label `key` of an object to `value`, or removes it (`None`).
    pub async fn set_label(
        &self,
        (api_version, kind): (&str, &str),
        name: &str,
        key: &str,
        value: Option<&str>,
    ) {
        let patch = json!({"metadata": {"labels": {key: value}}});
        self.merge(api_version, kind, name, patch).await;
    }

    /// Creates namespace `name` with `labels`.
    pub async fn namespace(&self, name: &str, labels: Value) {
        self.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}))
            .await;
    }

    /// Installs the CRD of `tests/fixtures/<file>` and waits until `name`
    /// is established.
    pub async fn install_crd(&self, file: &str, name: &str) {
        let path = sous_tests::guests::repo_root()
            .join("tests/fixtures")
            .join(file);
        let crd = std::fs::read_to_string(&path).expect("reading a CRD fixture");
        envtest::apply_yaml(&self.client, &crd, None)
            .await
            .expect("installing a CRD fixture");
        envtest::wait_crd_established(&self.client, name).await;
    }

    /// Deletes an object (no error if absent).
    pub async fn delete(&self, api_version: &str, kind: &str, name: &str) {
        let _ = self
            .api(api_version, kind)
            .await
            .delete(name, &DeleteParams::default())
            .await;
    }

    /// The object, if it exists.
    pub async fn get(&self, api_version: &str, kind: &str, name: &str) -> Option<DynamicObject> {
        self.api(api_version, kind)
            .await
            .get_opt(name)
            .await
            .expect("reading an object")
    }

    /// Every object of a kind in the namespace.
    pub async fn list(&self, api_version: &str, kind: &str) -> Vec<DynamicObject> {
        self.api(api_version, kind)
            .await
            .list(&Default::default())
            .await
            .expect("listing objects")
            .items
    }

    /// The API of a kind in this namespace (or cluster-wide when cluster-scoped).
    pub async fn api(&self, api_version: &str, kind: &str) -> Api<DynamicObject> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (resource, capabilities) =
            discovery::pinned_kind(&self.client, &GroupVersionKind::gvk(group, version, kind))
                .await
                .expect("discovering a kind");
        match capabilities.scope {
            discovery::Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &self.ns, &resource)
            }
            discovery::Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Waits until `check` holds for the object, returning it.
    pub async fn wait_object(
        &self,
        what: &str,
        api_version: &str,
        kind: &str,
        name: &str,
        check: impl Fn(&DynamicObject) -> bool,
    ) -> DynamicObject {
        let api = self.api(api_version, kind).await;
        envtest::wait_for(what, CONVERGE, || {
            let api = api.clone();
            let check = &check;
            async move {
                match api.get_opt(name).await {
                    Ok(Some(object)) if check(&object) => Ok(object),
                    Ok(Some(object)) => Err(format!("{:?}", object.data.get("status"))),
                    Ok(None) => Err("absent".to_string()),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await
    }

    /// Waits until at least `count` objects of a kind in the namespace
    /// satisfy `check` (`what` names them in the timeout's message), and
    /// returns when.
    pub async fn wait_count(
        &self,
        what: &str,
        (api_version, kind): (&str, &str),
        count: usize,
        timeout: Duration,
        check: impl Fn(&DynamicObject) -> bool,
    ) -> Instant {
        let api = self.api(api_version, kind).await;
        envtest::wait_for(&format!("{count} {what}"), timeout, || {
            let (api, check) = (api.clone(), &check);
            async move {
                let list = api
                    .list(&Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let matching = list.items.iter().filter(|o| check(o)).count();
                if matching >= count {
                    Ok(Instant::now())
                } else {
                    Err(format!("{matching} of {count} {what}"))
                }
            }
        })
        .await
    }

    /// Waits until the object does not exist.
    pub async fn wait_gone(&self, what: &str, api_version: &str, kind: &str, name: &str) {
        let api = self.api(api_version, kind).await;
        envtest::wait_for(what, CONVERGE, || {
            let api = api.clone();
            async move {
                match api.get_opt(name).await {
                    Ok(None) => Ok(()),
                    Ok(Some(object)) => Err(format!(
                        "still there: {:?}",
                        object.metadata.deletion_timestamp
                    )),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await;
    }

    /// Waits until a parent's `Ready` condition has `status` (and, when
    /// given, `reason`), for its current generation.
    pub async fn wait_parent(
        &self,
        kind: &str,
        name: &str,
        status: &str,
        reason: Option<&str>,
    ) -> DynamicObject {
        let what = format!("{kind} {name} Ready={status} {}", reason.unwrap_or(""));
        self.wait_object(&what, "example.sous.dev/v1", kind, name, |parent| {
            condition_is(parent, "Ready", status, reason)
                && parent.data["status"]["observedGeneration"] == json!(parent.metadata.generation)
        })
        .await
    }

    /// Waits until MyApp `parent` is refused its Service because
    /// ServiceAccount `account` may not write Services, and checks that
    /// nothing of the answer was written (not even the Deployment).
    pub async fn wait_services_forbidden(&self, parent: &str, account: &str) {
        let refused = self
            .wait_parent("MyApp", parent, "False", Some("Forbidden"))
            .await;
        let message = condition_field(&refused, "Ready", "message");
        assert!(
            message.contains(&format!("serviceaccount:{}:{account}", self.ns))
                && message.contains("services"),
            "{message}"
        );
        assert!(self.get("v1", "Service", parent).await.is_none());
        assert!(
            self.get("apps/v1", "Deployment", parent).await.is_none(),
            "half an answer was written"
        );
    }

    /// The Reconciler's count of successful passes (of the host serving it),
    /// as its status last reported it.
    pub async fn reconciles(&self, name: &str) -> u64 {
        self.get("sous.dev/v1alpha1", "Reconciler", name)
            .await
            .expect("the Reconciler exists")
            .data["status"]["reconciles"]
            .as_u64()
            .unwrap_or_default()
    }

    /// The Reconciler's count of successful passes (of the host serving it)
    /// once it has stopped moving for 5 s.
    pub async fn settled_reconciles(&self, name: &str) -> u64 {
        let mut settled = self.reconciles(name).await;
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let now = self.reconciles(name).await;
            if now == settled && now > 0 {
                return now;
            }
            settled = now;
        }
    }

    /// Waits until the Reconciler serves `module` (`ModuleReady` and its digest).
    pub async fn wait_digest(&self, name: &str, module: &[u8]) -> DynamicObject {
        let wanted = digest(module);
        self.wait_object(
            &format!("Reconciler {name} serving sha256:{wanted}"),
            "sous.dev/v1alpha1",
            "Reconciler",
            name,
            |reconciler| {
                reconciler.data["status"]["moduleDigest"] == wanted.as_str()
                    && condition_is(reconciler, "ModuleReady", "True", Some("Loaded"))
            },
        )
        .await
    }

    /// Waits until the Reconciler's condition `type_` has `status` (and reason).
    pub async fn wait_reconciler(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> DynamicObject {
        let what = format!(
            "Reconciler {name} {type_}={status} {}",
            reason.unwrap_or("")
        );
        self.wait_object(
            &what,
            "sous.dev/v1alpha1",
            "Reconciler",
            name,
            |reconciler| condition_is(reconciler, type_, status, reason),
        )
        .await
    }
}

/// The condition `type_` of `object`'s status, if any.
fn condition<'a>(object: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether `object` has condition `type_` with `status` (and `reason`).
pub fn condition_is(
    object: &DynamicObject,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> bool {
    condition(object, type_)
        .is_some_and(|c| c["status"] == status && reason.is_none_or(|r| c["reason"] == r))
}

/// A text field (`message`, `reason`) of condition `type_`, or "".
pub fn condition_field(object: &DynamicObject, type_: &str, field: &str) -> String {
    condition(object, type_)
        .and_then(|c| c[field].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A Hostile parent with `attack` (and extra spec fields).
pub fn hostile(name: &str, attack: &str, extra: Value) -> Value {
    let mut spec = json!({"attack": attack});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "example.sous.dev/v1", "kind": "Hostile",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// The spec of a MyApp Reconciler using `module`.
pub fn my_app_reconciler(module: Value) -> Value {
    json!({
        "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
        "children": [
            {"apiVersion": "apps/v1", "kind": "Deployment"},
            {"apiVersion": "v1", "kind": "Service"},
        ],
        "module": module,
    })
}

/// The sha256 of a module, as the Reconciler's status reports it.
pub fn digest(module: &[u8]) -> String {
    Digest::of(module).to_string()
}

/// `module` with a custom section of `size` incompressible bytes appended:
/// still the same component to wasmtime, but too big for one ConfigMap.
pub fn padded(module: &[u8], size: usize) -> Vec<u8> {
    let name = b"sous-e2e-padding";
    let mut payload = Vec::with_capacity(size + name.len() + 1);
    leb128(&mut payload, name.len());
    payload.extend_from_slice(name);
    // xorshift: cheap bytes that zstd cannot shrink.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    payload.extend((0..size).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    }));
    let mut padded = module.to_vec();
    padded.push(0);
    leb128(&mut padded, payload.len());
    padded.extend(payload);
    padded
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Waits for an Event of `reason` whose message mentions `about`; returns
/// its message.
pub async fn wait_event(world: &World, reason: &str, about: &str) -> String {
    let api = world.api("events.k8s.io/v1", "Event").await;
    envtest::wait_for(&format!("a {reason} event about {about}"), CONVERGE, || {
        let api = api.clone();
        async move {
            let events = api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            events
                .items
                .iter()
                .filter(|e| e.data["reason"] == reason)
                .filter_map(|e| e.data["note"].as_str())
                .find(|note| note.contains(about))
                .map(str::to_string)
                .ok_or_else(|| format!("{} events", events.items.len()))
        }
    })
    .await
}
