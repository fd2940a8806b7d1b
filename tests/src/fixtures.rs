//! Kubernetes objects the e2e tests share.

/// The `MyApp` CRD (`example.sous.dev/v1`, namespaced, status subresource):
/// spec `{image, replicas, port}`, status free-form — what the my-app guest
/// reads and writes.
pub const MYAPP_CRD: &str = include_str!("../fixtures/myapp-crd.yaml");

/// The name of [`MYAPP_CRD`].
pub const MYAPP_CRD_NAME: &str = "myapps.example.sous.dev";
