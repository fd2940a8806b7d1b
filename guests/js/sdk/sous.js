// Write Sous reconcilers in JavaScript.
//
// A reconciler is one function from the observed state of a parent to its
// desired children and status. Write it with this module and export it with
// `reconciler(...)`:
//
//   import { reconciler, object, Response } from "./sdk/sous.js";
//
//   export const { reconcile, finalize } = reconciler({
//     reconcile(request) {
//       const greeting = request.specField("greeting", { type: "string" });
//       const configMap = object("v1", "ConfigMap", request.name).field("data", { greeting });
//       return new Response().child(configMap);
//     },
//   });
//
// `reconcile` (and the optional `finalize`) receive a `Request` and return a
// `Response` (a `FinalizeResponse`), or throw `Invalid` (the parent is wrong:
// the host reports it and waits for the parent to change) or `Transient`
// (something temporary: the host retries with backoff). Any other exception
// is a bug: it is not caught, so the call traps and the host reports
// "guest trapped" with the exception's message and stack (like a Rust panic);
// the host retries it with backoff.
//
// The contract itself (what the host does with each field) is documented in
// `wit/reconciler.wit`. Objects cross the boundary as JSON text; this module
// parses and serializes them so that a reconciler sees plain JS objects.

import { log as hostLog } from "sous:reconciler/log@0.2.0";

// ---------------------------------------------------------------- errors ---

/** The parent is wrong (a bad spec value, say): no retry until it changes. */
export class Invalid extends Error {
  constructor(message) {
    super(message);
    this.name = "Invalid";
  }
}

/** Something temporary went wrong: the host retries with backoff. */
export class Transient extends Error {
  constructor(message) {
    super(message);
    this.name = "Transient";
  }
}

// ------------------------------------------------------------------- log ---

function write(level, message) {
  hostLog(level, String(message));
}

/** Log records, forwarded to the host's logs tagged with the reconciler and parent. */
export const log = {
  trace: (message) => write("trace", message),
  debug: (message) => write("debug", message),
  info: (message) => write("info", message),
  warn: (message) => write("warn", message),
  error: (message) => write("error", message),
};

// --------------------------------------------------------------- request ---

const TYPES = {
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number" && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
  array: (v) => Array.isArray(v),
};

function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (Number.isInteger(value)) return "integer";
  return typeof value;
}

function parseJson(what, text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Transient(`the host sent ${what} that is not JSON: ${e.message}`);
  }
}

// `request.desired`: null, or `{children, status}` checked for its shape.
function parseDesired(desired) {
  if (desired === null || desired === undefined) return null;
  const value = typeof desired === "string" ? parseJson("a desired state", desired) : desired;
  if (!TYPES.object(value)) {
    throw new Transient(`the host sent a desired state that is not a JSON object {children, status}: ${aTypeName(value)}`);
  }
  const children = value.children ?? [];
  if (!Array.isArray(children)) {
    throw new Transient(`the host sent a desired state whose children are not an array: ${aTypeName(children)}`);
  }
  return { children, status: value.status ?? null };
}

/** What the host observed for one parent. */
export class Request {
  /**
   * A request from plain objects, as the host would send it (for tests), or
   * from the raw WIT record (`{reconciler, parent, children, related, config,
   * desired}` with JSON text), which `reconciler(...)` does for you.
   */
  constructor({ reconciler = "", parent = {}, children = [], related = [], config = null, desired = null } = {}) {
    const value = (what, v) => (typeof v === "string" ? parseJson(what, v) : v);
    /** The name of the Reconciler object this call runs for. */
    this.reconciler = reconciler;
    /** The parent object as observed (its `.status` included). */
    this.parent = value("a parent", parent);
    /** The children the parent owns, as observed. Empty on the first reconcile. */
    this.children = children.map((c) => value("a child", c));
    /** Objects of the reconciler's related kinds, read-only. */
    this.related = related.map((r) => value("a related object", r));
    /** The Reconciler's `spec.config`, or null when none was given. */
    this.config = config === null || config === undefined ? null : value("a config", config);
    /**
     * What earlier steps of a pipeline proposed for this parent:
     * `{children: [object...], status: object|null}`, or null when this
     * module serves the reconciler alone. A step answers the complete desired
     * state so far, usually by changing this one (see `Response.fromDesired`).
     * Text that is not JSON, or not of that shape, throws `Transient`.
     */
    this.desired = parseDesired(desired);
  }

  /** The parent's `metadata.name`. */
  get name() {
    return this.parent?.metadata?.name ?? "";
  }

  /** The parent's `metadata.namespace` (undefined for a cluster-scoped parent). */
  get namespace() {
    return this.parent?.metadata?.namespace;
  }

  /** The parent's `metadata.generation`. */
  get generation() {
    return this.parent?.metadata?.generation;
  }

  /** The parent's `.spec` (an empty object when it has none). */
  get spec() {
    return this.parent?.spec ?? {};
  }

  /**
   * One field of `.spec`, checked. Options: `type` (string, number, integer,
   * boolean, object, array), `default` (used when the field is absent),
   * `min`/`max` (for numbers). A missing field without a default, a value of
   * the wrong type or out of range throws `Invalid` naming the field.
   */
  specField(field, { type, default: fallback, min, max } = {}) {
    const value = this.spec[field];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new Invalid(`spec.${field} is required`);
    }
    if (type !== undefined) {
      const check = TYPES[type];
      if (!check) throw new TypeError(`specField: unknown type ${type}`);
      if (!check(value)) throw new Invalid(`spec.${field} must be ${anA(type)}, not ${anA(typeName(value))}`);
    }
    if (min !== undefined && value < min) throw new Invalid(`spec.${field} must be at least ${min}, not ${value}`);
    if (max !== undefined && value > max) throw new Invalid(`spec.${field} must be at most ${max}, not ${value}`);
    return value;
  }

  /** The observed child of `kind` named `name`, or undefined. */
  child(kind, name) {
    return this.children.find((c) => c?.kind === kind && c?.metadata?.name === name);
  }

  /** The related objects of `kind`. */
  relatedOfKind(kind) {
    return this.related.filter((r) => r?.kind === kind);
  }
}

function anA(word) {
  return (/^[aeiou]/.test(word) ? "an " : "a ") + word;
}

// "an integer", "an array", "null", "undefined": for messages.
function aTypeName(value) {
  return value === null || value === undefined ? String(value) : anA(typeName(value));
}

// ---------------------------------------------------------------- object ---

/** A desired object under construction; `build()` (or JSON) gives the object. */
export class ObjectBuilder {
  constructor(apiVersion, kind, name) {
    this.object = { apiVersion, kind, metadata: { name } };
  }

  /** Sets `metadata.namespace` (it defaults to the parent's). */
  namespace(namespace) {
    this.object.metadata.namespace = namespace;
    return this;
  }

  /** Adds one label. */
  label(key, value) {
    return this.#entry("labels", key, value);
  }

  /**
   * Adds every entry of `labels` (an object) as a label, so that one map can
   * serve as the labels, the selector and the pod template's labels. Entries
   * whose value is not a string are skipped.
   */
  labels(labels) {
    for (const [key, value] of Object.entries(labels ?? {})) {
      if (typeof value === "string") this.label(key, value);
    }
    return this;
  }

  /** Adds one annotation. */
  annotation(key, value) {
    return this.#entry("annotations", key, value);
  }

  /** Sets `.spec`. */
  spec(spec) {
    return this.field("spec", spec);
  }

  /** Sets any top-level field (`data` of a ConfigMap, say). */
  field(name, value) {
    this.object[name] = value;
    return this;
  }

  /** The finished object. */
  build() {
    return this.object;
  }

  toJSON() {
    return this.object;
  }

  #entry(map, key, value) {
    (this.object.metadata[map] ??= {})[key] = value;
    return this;
  }
}

/** Starts a desired object of `apiVersion`/`kind` named `name`. */
export function object(apiVersion, kind, name) {
  return new ObjectBuilder(apiVersion, kind, name);
}

// -------------------------------------------------------------- response ---

/** A Kubernetes Event to record on the parent. */
export const Event = {
  /** An informational event; `reason` is UpperCamelCase, e.g. `ScaledUp`. */
  normal: (reason, message) => ({ eventType: "normal", reason, message: String(message) }),
  /** A warning event. */
  warning: (reason, message) => ({ eventType: "warning", reason, message: String(message) }),
};

function milliseconds(ms) {
  if (!Number.isInteger(ms) || ms < 0) throw new TypeError(`requeue delay must be whole milliseconds >= 0, not ${ms}`);
  return ms;
}

function stringMap(what, map) {
  if (map === null || map === undefined) return null;
  if (!TYPES.object(map)) throw new TypeError(`${what} must be an object of strings, not ${aTypeName(map)}`);
  return Object.entries(map).map(([key, value]) => {
    if (typeof value !== "string") throw new TypeError(`${what}: the value of ${key} must be a string, not ${aTypeName(value)}`);
    return [key, value];
  });
}

function optionalString(what, value) {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw new TypeError(`${what} must be a string, not ${aTypeName(value)}`);
  return value;
}

function relatedRequest(request) {
  if (!TYPES.object(request)) throw new TypeError(`a related request must be an object, not ${aTypeName(request)}`);
  const { apiVersion, kind, namespace, name, selector } = request;
  for (const [field, value] of [["apiVersion", apiVersion], ["kind", kind]]) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`a related request needs ${field} (a non-empty string), not ${aTypeName(value)}`);
    }
  }
  return {
    apiVersion,
    kind,
    namespace: optionalString("a related request's namespace", namespace),
    name: optionalString("a related request's name", name),
    selector: optionalString("a related request's selector", selector),
  };
}

/** The desired state of one parent. */
export class Response {
  constructor() {
    this.children = [];
    this.statusValue = null;
    this.requeueAfterMs = null;
    this.events = [];
    /**
     * The complete set of labels this reconciler sets on the parent, an
     * object of strings; null (the default) leaves the parent's labels alone.
     * A label no longer in the set is removed; labels others set are never
     * touched. Keys under `sous.dev/` are the host's and refused.
     */
    this.parentLabels = null;
    /** The complete set of annotations on the parent, as `parentLabels`. */
    this.parentAnnotations = null;
    /**
     * Partial objects (or ObjectBuilders) applied to objects the reconciler
     * does not own; see `patch`.
     */
    this.patches = [];
    /**
     * Requests for more related objects, `{apiVersion, kind, namespace?,
     * name?, selector?}`; see `requestRelated`.
     */
    this.relatedRequests = [];
  }

  /**
   * A response that starts from what earlier pipeline steps proposed
   * (`request.desired`): their children and status, to change or add to.
   * Without a desired state (a module alone), an empty response.
   */
  static fromDesired(request) {
    const response = new Response();
    const desired = request?.desired;
    if (desired) {
      for (const child of desired.children) response.child(child);
      if (desired.status !== null && desired.status !== undefined) response.status(desired.status);
    }
    return response;
  }

  /**
   * Adds a desired child (an object or an ObjectBuilder). Every child to keep
   * must be added on every call: owned children missing from the response are
   * deleted.
   */
  child(child) {
    this.children.push(child);
    return this;
  }

  /** Sets the parent's `.status` (the host adds its own conditions). */
  status(status) {
    this.statusValue = status;
    return this;
  }

  /** Asks to be called again after `ms` milliseconds even if nothing changes. */
  requeueAfter(ms) {
    this.requeueAfterMs = milliseconds(ms);
    return this;
  }

  /** Records an event (`Event.normal(...)`, `Event.warning(...)`) on the parent. */
  event(event) {
    this.events.push(event);
    return this;
  }

  /**
   * Sets one label on the parent. The first call switches `parentLabels`
   * from "leave alone" to a set of labels: every label this reconciler wants
   * on the parent must then be set on every call.
   */
  parentLabel(key, value) {
    (this.parentLabels ??= {})[key] = value;
    return this;
  }

  /**
   * Sets the complete set of parent labels (an object of strings; `{}`
   * removes every label this reconciler set), or null to leave them alone.
   */
  setParentLabels(labels) {
    this.parentLabels = labels === null || labels === undefined ? null : { ...labels };
    return this;
  }

  /** Sets one annotation on the parent, as `parentLabel` does for labels. */
  parentAnnotation(key, value) {
    (this.parentAnnotations ??= {})[key] = value;
    return this;
  }

  /** Sets the complete set of parent annotations, as `setParentLabels`. */
  setParentAnnotations(annotations) {
    this.parentAnnotations = annotations === null || annotations === undefined ? null : { ...annotations };
    return this;
  }

  /**
   * Contributes fields to an object the reconciler does not own (an object
   * or an ObjectBuilder): `apiVersion`, `kind`, `metadata.name` (and
   * namespace) and only the fields to set, server-side applied with the
   * reconciler's field manager. A patch never creates nor deletes an object;
   * return it on every call that should keep applying it.
   */
  patch(patch) {
    this.patches.push(patch);
    return this;
  }

  /**
   * Asks for more related objects `{apiVersion, kind, namespace?, name?,
   * selector?}` (selector in the syntax of `kubectl -l`, namespace `*` for
   * every namespace). The host calls again with them added to
   * `request.related`; only kinds declared in the Reconciler's
   * `spec.related` may be requested. Return the same requests on every call
   * that needs the objects.
   */
  requestRelated(request) {
    this.relatedRequests.push(relatedRequest(request));
    return this;
  }

  /**
   * The WIT record: objects as JSON text, label and annotation sets as
   * `[key, value]` lists (null: leave alone). A malformed label set or
   * related request (a value that is not a string, say) throws `TypeError`.
   */
  toWit() {
    return {
      children: this.children.map((c) => JSON.stringify(c)),
      status: this.statusValue === null ? null : JSON.stringify(this.statusValue),
      requeueAfterMs: this.requeueAfterMs,
      events: this.events,
      parentLabels: stringMap("parentLabels", this.parentLabels),
      parentAnnotations: stringMap("parentAnnotations", this.parentAnnotations),
      patches: this.patches.map((p) => JSON.stringify(p)),
      relatedRequests: this.relatedRequests.map(relatedRequest),
    };
  }
}

/** The answer to `finalize`. */
export class FinalizeResponse {
  constructor(done, requeueAfterMs) {
    this.done = done;
    this.requeueAfterMs = requeueAfterMs;
    this.events = [];
  }

  /** Cleanup is complete: the parent may go. */
  static done() {
    return new FinalizeResponse(true, null);
  }

  /** Cleanup is still under way: call again after `ms` milliseconds. */
  static notYet(ms) {
    return new FinalizeResponse(false, milliseconds(ms));
  }

  /** Records an event on the parent. */
  event(event) {
    this.events.push(event);
    return this;
  }

  /** The WIT record. */
  toWit() {
    return { done: this.done, requeueAfterMs: this.requeueAfterMs, events: this.events };
  }
}

// --------------------------------------------------------------- rollout ---

/**
 * How far an observed workload child (Deployment, StatefulSet, ReplicaSet)
 * has rolled out toward `wanted` ready replicas: `{ready, phase}` with phase
 * `Pending` (not observed yet), `Progressing` (fewer ready than wanted) or
 * `Ready`.
 */
export function rollout(observed, wanted) {
  const ready = observed?.status?.readyReplicas ?? 0;
  const phase = observed === undefined || observed === null ? "Pending" : ready >= wanted ? "Ready" : "Progressing";
  return { ready, phase };
}

// ------------------------------------------------------------ conditions ---

/** The condition of `type` in an observed object's `status.conditions`, or undefined. */
export function condition(observed, type) {
  const conditions = observed?.status?.conditions;
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === type) : undefined;
}

/**
 * Whether an observed object reports itself ready: a `Ready` condition whose
 * status is `"True"` (the Kubernetes convention). A missing object is not ready.
 */
export function isReady(observed) {
  return condition(observed, "Ready")?.status === "True";
}

// ---------------------------------------------------------------- export ---

// The WIT `result<_, error>` of an export: a returned value is `ok`, a thrown
// `{tag, val}` is `err`. Invalid and Transient become that; anything else is
// rethrown and traps.
function witError(error) {
  if (error instanceof Invalid) return { tag: "invalid", val: error.message };
  if (error instanceof Transient) return { tag: "transient", val: error.message };
  throw error;
}

function run(raw, handler, expected) {
  let answer;
  try {
    answer = handler(new Request(raw));
  } catch (error) {
    throw witError(error);
  }
  // An empty answer would delete every child: a missing `return` is a bug.
  if (!(answer instanceof expected)) {
    throw new TypeError(`a reconciler must return a ${expected.name}, not ${typeName(answer)}`);
  }
  return answer.toWit();
}

/**
 * The component's exports from a reconciler `{reconcile(request), finalize?(request)}`:
 *
 *   export const { reconcile, finalize } = reconciler({ reconcile(request) { ... } });
 *
 * Without `finalize` the reconciler has nothing to clean up and answers done.
 */
export function reconciler({ reconcile, finalize = () => FinalizeResponse.done() }) {
  return {
    reconcile: (raw) => run(raw, reconcile, Response),
    finalize: (raw) => run(raw, finalize, FinalizeResponse),
  };
}
