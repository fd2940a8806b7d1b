// A reconciler that misbehaves on request, to prove the host's limits hold
// for a JavaScript (QuickJS) guest. Same spec as the Rust hostile guest.
//
// `spec.attack` picks the misbehaviour:
// - `loop`: spins forever (ends by fuel or deadline);
// - `memory`: allocates without bound, touching every page;
// - `panic`: throws an uncaught exception (the call traps; the message and
//   the JS stack reach the host through stderr);
// - `huge`: answers one child of 100 MB;
// - `garbage`: answers a child that is not JSON;
// - `forbidden`: answers a ClusterRoleBinding granting cluster-admin;
// - `many`: answers `spec.count` ConfigMaps (default 10,000);
// - `transient`: reports a transient error;
// - `remember`: counts its calls in a module global and reports the count in
//   a ConfigMap, to prove that no state survives from one call to the next;
// - anything else: one harmless ConfigMap, to show the guest still works.
//
// Attacks on the fields of `sous:reconciler@0.2.0`, as the Rust hostile guest
// makes them, each answered beside the harmless ConfigMap `<name>-0` so that
// only the attack can be refused:
// - `patch-owner`: a patch to the ConfigMap `spec.target` (default
//   `<name>-victim`) that sets `metadata.ownerReferences` to the parent;
// - `parent-label-reserved`: the parent label `spec.key` (default
//   `sous.dev/reconciler`, under the host's `sous.dev/`) = `hijacked`;
// - `related-undeclared`: a related request for `spec.apiVersion`/`spec.kind`
//   (default `v1`/`Secret`) in every namespace;
// - `related-selector`: a related request for ConfigMaps whose selector
//   `spec.selector` (default `app in (web`) is malformed;
// - `related-unsettled`: a related request for the ConfigMap `<name>-<n>`,
//   `n` one more than the highest `k` of the related ConfigMaps `<name>-<k>`
//   this call got (0 when none), so the requests never settle while
//   `<name>-0`, `<name>-1`, ... exist.

import { Response, Transient, object, reconciler } from "../../sdk/sous.js";

let calls = 0;

function spin() {
  let counter = 0;
  for (;;) counter = (counter + 1) | 0;
}

function hoard() {
  const hoard = [];
  for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
}

function configMap(name, index) {
  return object("v1", "ConfigMap", `${name}-${index}`).field("data", { index: String(index) });
}

/** A patch to someone else's ConfigMap that makes the parent its owner. */
function owningPatch(name, parent) {
  const target = typeof parent.spec?.target === "string" ? parent.spec.target : `${name}-victim`;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: target,
      ownerReferences: [{
        apiVersion: parent.apiVersion, kind: parent.kind, name, uid: parent.metadata?.uid,
        controller: true, blockOwnerDeletion: true,
      }],
    },
    data: { owned: "by the hostile guest" },
  };
}

/** One more than the highest `k` of the ConfigMaps `<name>-<k>` in `related`. */
function nextCounter(name, related) {
  const prefix = `${name}-`;
  let highest = -1;
  for (const object of related) {
    const suffix = (object?.metadata?.name ?? "").slice(prefix.length);
    if (object?.kind === "ConfigMap" && object.metadata.name.startsWith(prefix) && /^\d+$/.test(suffix)) {
      highest = Math.max(highest, Number(suffix));
    }
  }
  return highest + 1;
}

/** A Response whose children are given as JSON text as they are. */
class RawResponse extends Response {
  toWit() {
    return { ...super.toWit(), children: this.children };
  }
}

export const { reconcile, finalize } = reconciler({
  reconcile(request) {
    const name = request.name || "hostile";
    const spec = request.spec;
    switch (spec.attack) {
      case "loop":
        return spin();
      case "memory":
        return hoard();
      case "panic":
        throw new Error("hostile guest threw on purpose");
      case "huge": {
        const head = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name}"},"data":{"blob":"`;
        return new RawResponse().child(head + "x".repeat(100 << 20) + '"}}');
      }
      case "garbage":
        return new RawResponse().child("this is not JSON");
      case "forbidden":
        return new Response().child(
          object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", name)
            .field("roleRef", { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" })
            .field("subjects", [{ kind: "Group", name: "system:authenticated", apiGroup: "rbac.authorization.k8s.io" }]),
        );
      case "many": {
        const response = new Response();
        const count = Number.isInteger(spec.count) ? spec.count : 10000;
        for (let i = 0; i < count; i++) response.child(configMap(name, i));
        return response;
      }
      case "transient":
        throw new Transient("the hostile guest is resting");
      case "patch-owner":
        return new Response().child(configMap(name, 0)).patch(owningPatch(name, request.parent));
      case "parent-label-reserved":
        return new Response()
          .child(configMap(name, 0))
          .parentLabel(typeof spec.key === "string" ? spec.key : "sous.dev/reconciler", "hijacked");
      case "related-undeclared":
        return new Response().child(configMap(name, 0)).requestRelated({
          apiVersion: typeof spec.apiVersion === "string" ? spec.apiVersion : "v1",
          kind: typeof spec.kind === "string" ? spec.kind : "Secret",
          namespace: "*",
        });
      case "related-selector":
        return new Response().child(configMap(name, 0)).requestRelated({
          apiVersion: "v1", kind: "ConfigMap",
          selector: typeof spec.selector === "string" ? spec.selector : "app in (web",
        });
      case "related-unsettled":
        return new Response()
          .child(configMap(name, 0))
          .requestRelated({ apiVersion: "v1", kind: "ConfigMap", name: `${name}-${nextCounter(name, request.related)}` });
      case "remember":
        calls += 1;
        return new Response().child(configMap(name, calls));
      default:
        return new Response().child(configMap(name, 0));
    }
  },
});
