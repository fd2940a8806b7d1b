"""`MyApp {replicas, image, port}` -> a Deployment and a Service.

The status reports the Deployment's ready replicas and a phase: `Pending`
until the Deployment exists, `Progressing` until every replica is ready, then
`Ready`.
"""

from dataclasses import dataclass

from sous_guest import Invalid, Reconciler, Request, Response, Rollout, export, resource


@dataclass
class MyAppSpec:
    """The parent's spec."""

    replicas: int
    image: str
    port: int


@export
class MyApp(Reconciler):
    """The reconciler."""

    def reconcile(self, request: Request) -> Response:
        spec = request.spec_as(MyAppSpec)
        if not spec.image:
            raise Invalid("spec.image must not be empty")
        name = request.name
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "sous"}
        selector = {"app.kubernetes.io/name": name}

        deployment = resource("apps/v1", "Deployment", name).labels(labels).spec({
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": spec.image,
                        "ports": [{"name": "http", "containerPort": spec.port}],
                    }],
                },
            },
        })
        service = resource("v1", "Service", name).labels(labels).spec({
            "selector": selector,
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}],
        })

        rollout = Rollout.of(request.child("Deployment", name), spec.replicas)
        return (Response()
                .child(deployment)
                .child(service)
                .status({"readyReplicas": rollout.ready, "phase": rollout.phase}))
