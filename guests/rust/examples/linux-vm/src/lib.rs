//! `LinuxVM {distro, version}` -> one Pod running that distribution's image.
//!
//! An unknown distribution is an invalid parent: reported, not retried.

use serde::Deserialize;
use sous_guest::{Error, Reconciler, Request, Response, json, object};

/// The parent's spec.
#[derive(Deserialize)]
struct LinuxVmSpec {
    distro: String,
    version: String,
}

/// Image repository of each supported distribution, sorted by name.
const IMAGES: &[(&str, &str)] = &[
    ("alpine", "docker.io/library/alpine"),
    ("debian", "docker.io/library/debian"),
    ("fedora", "registry.fedoraproject.org/fedora"),
    ("ubuntu", "docker.io/library/ubuntu"),
];

/// The reconciler.
pub struct LinuxVm;

impl Reconciler for LinuxVm {
    fn reconcile(request: &Request) -> Result<Response, Error> {
        let spec: LinuxVmSpec = request.spec()?;
        let Some((_, repository)) = IMAGES.iter().find(|(distro, _)| *distro == spec.distro) else {
            let supported = IMAGES
                .iter()
                .map(|(distro, _)| *distro)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::invalid(format!(
                "distro `{}` is not supported; use one of: {supported}",
                spec.distro
            )));
        };
        if spec.version.is_empty() {
            return Err(Error::invalid("spec.version must not be empty"));
        }
        let name = request.name();
        let image = format!("{repository}:{}", spec.version);
        let pod = object("v1", "Pod", name)
            .labels([
                ("app.kubernetes.io/name", "linux-vm"),
                ("app.kubernetes.io/instance", name),
                ("app.kubernetes.io/managed-by", "sous"),
            ])
            .spec(json!({
                "containers": [{
                    "name": "vm",
                    "image": image,
                    "command": ["sleep", "infinity"],
                }],
                "restartPolicy": "Always",
            }));
        let phase = request
            .child("Pod", name)
            .and_then(|pod| pod["status"]["phase"].as_str())
            .unwrap_or("Pending");
        Ok(Response::new()
            .child(pod)
            .status(json!({ "phase": phase, "image": image })))
    }
}

#[cfg(target_family = "wasm")]
sous_guest::export!(LinuxVm);
