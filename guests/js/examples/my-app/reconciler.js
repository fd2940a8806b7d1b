// `MyApp {replicas, image, port}` -> a Deployment and a Service.
//
// The status reports the Deployment's ready replicas and a phase: `Pending`
// until the Deployment exists, `Progressing` until every replica is ready,
// then `Ready`. Same behaviour as the Rust my-app (guests/golden/my-app).

import { Invalid, Response, object, reconciler, rollout } from "../../sdk/sous.js";

export const { reconcile, finalize } = reconciler({
  reconcile(request) {
    const replicas = request.specField("replicas", { type: "integer", min: 0, max: 2 ** 32 - 1 });
    const image = request.specField("image", { type: "string" });
    const port = request.specField("port", { type: "integer", min: 0, max: 65535 });
    if (image === "") throw new Invalid("spec.image must not be empty");

    const name = request.name;
    const labels = { "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "sous" };
    const selector = { "app.kubernetes.io/name": name };

    const deployment = object("apps/v1", "Deployment", name)
      .labels(labels)
      .spec({
        replicas,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: "app", image, ports: [{ name: "http", containerPort: port }] }],
          },
        },
      });
    const service = object("v1", "Service", name)
      .labels(labels)
      .spec({ selector, ports: [{ name: "http", port, targetPort: "http" }] });

    const { ready, phase } = rollout(request.child("Deployment", name), replicas);
    return new Response().child(deployment).child(service).status({ readyReplicas: ready, phase });
  },
});
