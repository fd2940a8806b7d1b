//! `MyApp {replicas, image, port}` -> a Deployment and a Service.
//!
//! The status reports the Deployment's ready replicas and a phase:
//! `Pending` until the Deployment exists, `Progressing` until every replica is
//! ready, then `Ready`.

use serde::Deserialize;
use sous_guest::{Error, Reconciler, Request, Response, Rollout, json, object};

/// The parent's spec.
#[derive(Deserialize)]
struct MyAppSpec {
    replicas: u32,
    image: String,
    port: u16,
}

/// The reconciler.
pub struct MyApp;

impl Reconciler for MyApp {
    fn reconcile(request: &Request) -> Result<Response, Error> {
        let spec: MyAppSpec = request.spec()?;
        if spec.image.is_empty() {
            return Err(Error::invalid("spec.image must not be empty"));
        }
        let name = request.name();
        let labels =
            json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "sous" });
        let selector = json!({ "app.kubernetes.io/name": name });

        let deployment = object("apps/v1", "Deployment", name)
            .labels_from(&labels)
            .spec(json!({
                "replicas": spec.replicas,
                "selector": { "matchLabels": selector },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "containers": [{
                            "name": "app",
                            "image": spec.image,
                            "ports": [{ "name": "http", "containerPort": spec.port }],
                        }],
                    },
                },
            }));
        let service = object("v1", "Service", name)
            .labels_from(&labels)
            .spec(json!({
                "selector": selector,
                "ports": [{ "name": "http", "port": spec.port, "targetPort": "http" }],
            }));

        let rollout = Rollout::of(request.child("Deployment", name), u64::from(spec.replicas));
        Ok(Response::new()
            .child(deployment)
            .child(service)
            .status(json!({ "readyReplicas": rollout.ready, "phase": rollout.phase })))
    }
}

#[cfg(target_family = "wasm")]
sous_guest::export!(MyApp);
