// Exercises the parts of the SDK that the examples do not, end to end through
// the WIT (the golden cases under tests/): what sous:reconciler 0.2.0 added.
//
// spec: {parent: "set" | "clear" | "leave" (default: parent labels untouched),
//        parentLabels: {key: value, ...} (optional, with parent: set),
//        patch: string (optional), ask: string (optional)}
// -> the children and status earlier pipeline steps proposed, if any, plus a
//    ConfigMap NAME-0; a status `{proposed}` (the number of proposed children,
//    or null when there was no desired state).
//    parent: set -> the parent labels `parentLabels` + `example.com/checked:
//    "true"` and the annotation `example.com/greeting: hi`; clear -> both sets
//    empty; leave -> set, then back to leaving them alone.
//    patch: NAME -> a patch of ConfigMap NAME in namespace `shared`.
//    ask: SELECTOR -> related requests for the Nodes matching SELECTOR and the
//    ConfigMap `settings` in every namespace.

import { Invalid, Response, object, reconciler } from "../../sdk/sous.js";

export const { reconcile, finalize } = reconciler({
  reconcile(request) {
    const parent = request.specField("parent", { type: "string", default: "" });
    const patch = request.specField("patch", { type: "string", default: null });
    const ask = request.specField("ask", { type: "string", default: null });

    const response = Response.fromDesired(request)
      .child(object("v1", "ConfigMap", `${request.name}-0`).field("data", { checked: "true" }))
      .status({ proposed: request.desired?.children.length ?? null });

    if (parent !== "") {
      response
        .setParentLabels(request.specField("parentLabels", { type: "object", default: {} }))
        .parentLabel("example.com/checked", "true")
        .parentAnnotation("example.com/greeting", "hi");
      if (parent === "clear") response.setParentLabels({}).setParentAnnotations({});
      else if (parent === "leave") response.setParentLabels(null).setParentAnnotations(null);
      else if (parent !== "set") throw new Invalid(`spec.parent must be set, clear or leave, not ${parent}`);
    }
    if (patch !== null) {
      response.patch(object("v1", "ConfigMap", patch).namespace("shared").field("data", { greeting: "hi" }));
    }
    if (ask !== null) {
      response
        .requestRelated({ apiVersion: "v1", kind: "Node", selector: ask })
        .requestRelated({ apiVersion: "v1", kind: "ConfigMap", namespace: "*", name: "settings" });
    }
    return response;
  },
});
