//! Kubernetes objects the e2e tests and the benchmarks share.

use serde_json::{Value, json};

/// The `MyApp` CRD (`example.sous.dev/v1`, namespaced, status subresource):
/// spec `{image, replicas, port}`, status free-form — what the my-app guest
/// reads and writes.
pub const MYAPP_CRD: &str = include_str!("../fixtures/myapp-crd.yaml");

/// The name of [`MYAPP_CRD`].
pub const MYAPP_CRD_NAME: &str = "myapps.example.sous.dev";

/// A MyApp parent.
pub fn my_app(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
        "metadata": {"name": name},
        "spec": {"image": "nginx:1.27", "replicas": replicas, "port": 8080},
    })
}
