// The composite menu: `Feast {qps, image?}` -> a Database and a WebApp.
//
// The head chef asks the other chefs: both children are custom resources
// (`example.sous.dev/v1`) handled by other reconcilers, and the Feast is ready
// only when both of them say they are.
//
// Sizing from the expected queries per second:
//   qps <= 100   -> Database {size: small,  replicas: 1}
//   qps <= 1000  -> Database {size: medium, replicas: 2}
//   otherwise    -> Database {size: large,  replicas: 3}
//   WebApp replicas = ceil(qps / 100), clamped to 1..20 (image passed on if given)
//
// Readiness convention: a child is ready when its own observed status has a
// `Ready` condition with status "True". The Feast's status is
//   {phase: "Ready", ready: true, tier, waitingFor: []}               when both are,
//   {phase: "Waiting", ready: false, tier, waitingFor: [kinds...]}    otherwise.
// A missing or negative qps is invalid: the host reports it on the Feast and
// waits for the spec to change.

import { Response, isReady, log, object, reconciler } from "../../sdk/sous.js";

const API_VERSION = "example.sous.dev/v1";
const MAX_WEB_REPLICAS = 20;

/** The Database's size and replicas for `qps`. */
export function tier(qps) {
  if (qps <= 100) return { size: "small", replicas: 1 };
  if (qps <= 1000) return { size: "medium", replicas: 2 };
  return { size: "large", replicas: 3 };
}

/** The WebApp's replicas for `qps`: one per 100 qps, 1 to 20. */
export function webReplicas(qps) {
  return Math.min(MAX_WEB_REPLICAS, Math.max(1, Math.ceil(qps / 100)));
}

export const { reconcile, finalize } = reconciler({
  reconcile(request) {
    const qps = request.specField("qps", { type: "integer", min: 0 });
    const image = request.specField("image", { type: "string", default: null });
    const name = request.name;
    const labels = { "app.kubernetes.io/part-of": name, "app.kubernetes.io/managed-by": "sous" };

    const database = tier(qps);
    const webApp = { replicas: webReplicas(qps), ...(image ? { image } : {}) };
    const children = [
      object(API_VERSION, "Database", name).labels(labels).spec(database),
      object(API_VERSION, "WebApp", name).labels(labels).spec(webApp),
    ];

    const waitingFor = ["Database", "WebApp"].filter((kind) => !isReady(request.child(kind, name)));
    const ready = waitingFor.length === 0;
    if (!ready) log.info(`feast ${name} is waiting for ${waitingFor.join(" and ")}`);

    const response = new Response().status({
      phase: ready ? "Ready" : "Waiting",
      ready,
      tier: database.size,
      waitingFor,
    });
    for (const child of children) response.child(child);
    return response;
  },
});
