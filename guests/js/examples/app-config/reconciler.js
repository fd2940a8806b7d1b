// Immutable configuration: `AppConfig {data: {KEY: "value", ...}}` -> one
// ConfigMap `<name>-config` with `immutable: true`.
//
// An immutable ConfigMap is cheaper for the kubelets (they stop watching it)
// and cannot be changed by accident, but it cannot be changed on purpose
// either: the API server refuses any update of its data. So the Reconciler
// lists its ConfigMap kind with `updateStrategy: {method: Recreate}`: when the
// desired data changes, the host deletes the ConfigMap and creates it anew.
//
// The status says which ConfigMap holds the data and how many keys it has.
// Invalid: `data` missing, not an object, or with a value that is not a
// string, or a key that is not a valid ConfigMap key.

import { Invalid, Response, object, reconciler } from "../../sdk/sous.js";

// A ConfigMap key, as the API server checks it.
const KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/** The parent's data, checked: an object of strings under valid keys. */
export function configData(data) {
  for (const [key, value] of Object.entries(data)) {
    if (!KEY.test(key)) throw new Invalid(`spec.data: ${JSON.stringify(key)} is not a valid ConfigMap key`);
    if (typeof value !== "string") {
      throw new Invalid(`spec.data.${key} must be a string, not ${value === null ? "null" : typeof value}`);
    }
  }
  return data;
}

export const { reconcile, finalize } = reconciler({
  reconcile(request) {
    const data = configData(request.specField("data", { type: "object" }));
    const name = `${request.name}-config`;
    const configMap = object("v1", "ConfigMap", name)
      .label("app.kubernetes.io/managed-by", "sous")
      .label("app.kubernetes.io/part-of", request.name)
      .field("immutable", true)
      .field("data", data);
    return new Response().child(configMap).status({ configMap: name, keys: Object.keys(data).length });
  },
});
