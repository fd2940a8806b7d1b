// Unit tests of sdk/sous.js and the examples' pure parts, under Node:
//   node --import ./guests/js/tests/register.mjs --test guests/js/tests/
// The components themselves are tested by `sous test guests/js` (golden cases).
import assert from "node:assert/strict";
import { test } from "node:test";

import { records } from "./host-log.mjs";
import {
  Event, FinalizeResponse, Invalid, Request, Response, Transient,
  condition, isReady, log, object, reconciler, rollout,
} from "../sdk/sous.js";
import { tier, webReplicas } from "../examples/feast/reconciler.js";

const raw = {
  reconciler: "r",
  parent: JSON.stringify({ metadata: { name: "p", namespace: "ns", generation: 3 }, spec: { size: 3, name: "x" } }),
  children: [JSON.stringify({ kind: "Service", metadata: { name: "p" } })],
  related: [JSON.stringify({ kind: "Node", metadata: { name: "n" } })],
  config: '{"level": 2}',
};

test("accessors read the parent and the observed objects", () => {
  const request = new Request(raw);
  assert.deepEqual([request.name, request.namespace, request.generation], ["p", "ns", 3]);
  assert.equal(request.specField("size", { type: "integer", min: 1 }), 3);
  assert.ok(request.child("Service", "p"));
  assert.equal(request.child("Service", "q"), undefined);
  assert.equal(request.relatedOfKind("Node").length, 1);
  assert.equal(request.config.level, 2);
});

test("a spec field that is missing, mistyped or out of range is Invalid and names the field", () => {
  const request = new Request(raw);
  assert.throws(() => request.specField("size", { type: "string" }), new Invalid("spec.size must be a string, not an integer"));
  assert.throws(() => request.specField("size", { max: 2 }), new Invalid("spec.size must be at most 2, not 3"));
  assert.throws(() => request.specField("gone"), new Invalid("spec.gone is required"));
  assert.equal(request.specField("gone", { default: 7 }), 7);
});

test("a request that is not JSON is Transient", () => {
  assert.throws(() => new Request({ ...raw, parent: "{" }), Transient);
});

test("the object builder makes a complete object", () => {
  const built = object("v1", "Service", "web")
    .namespace("shop")
    .label("app", "web")
    .labels({ extra: "yes", ignored: 1 })
    .annotation("note", "hi")
    .spec({ ports: [{ port: 80 }] })
    .build();
  assert.deepEqual(built, {
    apiVersion: "v1", kind: "Service",
    metadata: { name: "web", namespace: "shop", labels: { app: "web", extra: "yes" }, annotations: { note: "hi" } },
    spec: { ports: [{ port: 80 }] },
  });
});

test("a response becomes JSON text for the host", () => {
  const wit = new Response()
    .child(object("v1", "Service", "s"))
    .status({ phase: "Ready" })
    .requeueAfter(30000)
    .event(Event.warning("Slow", "took long"))
    .toWit();
  assert.deepEqual(wit, {
    children: ['{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}'],
    status: '{"phase":"Ready"}',
    requeueAfterMs: 30000,
    events: [{ eventType: "warning", reason: "Slow", message: "took long" }],
    parentLabels: null,
    parentAnnotations: null,
    patches: [],
    relatedRequests: [],
  });
  assert.equal(new Response().toWit().status, null);
  assert.throws(() => new Response().requeueAfter(1.5), TypeError);
});

test("finalize answers done or not yet", () => {
  assert.deepEqual(FinalizeResponse.done().toWit(), { done: true, requeueAfterMs: null, events: [] });
  assert.deepEqual(FinalizeResponse.notYet(1500).toWit(), { done: false, requeueAfterMs: 1500, events: [] });
});

test("Invalid and Transient become the WIT error; other exceptions propagate", () => {
  const exports = reconciler({
    reconcile(request) {
      switch (request.spec.name) {
        case "invalid": throw new Invalid("bad");
        case "transient": throw new Transient("later");
        case "bug": throw new RangeError("oops");
        case "nothing": return undefined;
        default: return new Response();
      }
    },
  });
  const call = (name) => exports.reconcile({ ...raw, parent: JSON.stringify({ metadata: { name: "p" }, spec: { name } }) });
  assert.throws(() => call("invalid"), (e) => e.tag === "invalid" && e.val === "bad");
  assert.throws(() => call("transient"), (e) => e.tag === "transient" && e.val === "later");
  assert.throws(() => call("bug"), RangeError);
  assert.throws(() => call("nothing"), /must return a Response, not undefined/);
  assert.deepEqual(call("ok").children, []);
  assert.deepEqual(exports.finalize(raw), { done: true, requeueAfterMs: null, events: [] });
});

test("log forwards level and message to the host", () => {
  records.length = 0;
  log.info("hello");
  log.warn(42);
  assert.deepEqual(records, [["info", "hello"], ["warn", "42"]]);
});

test("rollout and readiness follow the observed status", () => {
  assert.deepEqual(rollout(undefined, 3), { ready: 0, phase: "Pending" });
  assert.deepEqual(rollout({ status: { readyReplicas: 1 } }, 3), { ready: 1, phase: "Progressing" });
  assert.deepEqual(rollout({ status: {} }, 3), { ready: 0, phase: "Progressing" });
  assert.deepEqual(rollout({ status: { readyReplicas: 3 } }, 3), { ready: 3, phase: "Ready" });
  const ready = { status: { conditions: [{ type: "Ready", status: "True" }] } };
  assert.equal(condition(ready, "Ready").status, "True");
  assert.ok(isReady(ready));
  assert.ok(!isReady({ status: { conditions: [{ type: "Ready", status: "False" }] } }));
  assert.ok(!isReady(undefined));
});

test("the feast sizes its children from qps", () => {
  assert.deepEqual([0, 100, 101, 1000, 1001].map((q) => tier(q).size), ["small", "small", "medium", "medium", "large"]);
  assert.deepEqual([0, 1, 100, 101, 250, 5000].map(webReplicas), [1, 1, 1, 2, 3, 20]);
});

test("request.desired is null alone, parsed {children, status} in a pipeline", () => {
  assert.equal(new Request(raw).desired, null);
  assert.equal(new Request({ ...raw, desired: null }).desired, null);
  const desired = new Request({
    ...raw,
    desired: JSON.stringify({ children: [{ kind: "ConfigMap", metadata: { name: "a" } }], status: { phase: "Ready" } }),
  }).desired;
  assert.deepEqual(desired, { children: [{ kind: "ConfigMap", metadata: { name: "a" } }], status: { phase: "Ready" } });
  assert.deepEqual(new Request({ ...raw, desired: "{}" }).desired, { children: [], status: null });
  assert.deepEqual(new Request({ desired: { children: [] } }).desired, { children: [], status: null });
});

test("a desired state that is not JSON or not {children, status} is Transient and says so", () => {
  assert.throws(() => new Request({ ...raw, desired: "{" }), (e) => e instanceof Transient && /desired state that is not JSON/.test(e.message));
  assert.throws(() => new Request({ ...raw, desired: "[]" }), (e) => e instanceof Transient && /not a JSON object/.test(e.message));
  assert.throws(() => new Request({ ...raw, desired: '{"children": {}}' }), (e) => e instanceof Transient && /children are not an array/.test(e.message));
  const exports = reconciler({ reconcile: () => new Response() });
  assert.throws(() => exports.reconcile({ ...raw, desired: "nope" }), (e) => e.tag === "transient" && /desired state/.test(e.val));
});

test("Response.fromDesired starts from the children and status earlier steps proposed", () => {
  const request = new Request({ ...raw, desired: '{"children": [{"kind": "Secret", "metadata": {"name": "s"}}], "status": {"n": 1}}' });
  const wit = Response.fromDesired(request).child(object("v1", "ConfigMap", "c")).toWit();
  assert.deepEqual(wit.children, ['{"kind":"Secret","metadata":{"name":"s"}}', '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}']);
  assert.equal(wit.status, '{"n":1}');
  assert.deepEqual(Response.fromDesired(new Request(raw)).toWit().children, []);
  assert.equal(Response.fromDesired(new Request(raw)).toWit().status, null);
});

test("parent labels and annotations: null leaves them alone, an object is the complete set", () => {
  assert.equal(new Response().toWit().parentLabels, null);
  assert.equal(new Response().toWit().parentAnnotations, null);
  const wit = new Response()
    .parentLabel("tier", "front")
    .parentLabel("team", "a")
    .parentLabel("tier", "back")
    .parentAnnotation("example.com/note", "hi")
    .toWit();
  assert.deepEqual(wit.parentLabels, [["tier", "back"], ["team", "a"]]);
  assert.deepEqual(wit.parentAnnotations, [["example.com/note", "hi"]]);
  // An empty set removes every label the reconciler set; null goes back to leaving them alone.
  assert.deepEqual(new Response().setParentLabels({}).toWit().parentLabels, []);
  assert.equal(new Response().parentLabel("a", "b").setParentLabels(null).toWit().parentLabels, null);
  const given = { x: "1" };
  const response = new Response().setParentAnnotations(given);
  given.y = "2"; // the set is copied
  assert.deepEqual(response.toWit().parentAnnotations, [["x", "1"]]);
  // Plain assignment works too.
  const assigned = new Response();
  assigned.parentLabels = { app: "web" };
  assert.deepEqual(assigned.toWit().parentLabels, [["app", "web"]]);
  assigned.parentLabels = { app: 1 };
  assert.throws(() => assigned.toWit(), /parentLabels: the value of app must be a string, not an integer/);
  assigned.parentLabels = ["app"];
  assert.throws(() => assigned.toWit(), /parentLabels must be an object of strings, not an array/);
});

test("patches are objects or builders, sent as JSON text like children", () => {
  const image = object("apps/v1", "Deployment", "theirs").namespace("shop")
    .spec({ template: { spec: { containers: [{ name: "app", image: "web:2" }] } } });
  const wit = new Response().patch(image).patch({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { k: "v" } }).toWit();
  assert.deepEqual(wit.patches.map((p) => JSON.parse(p)), [
    { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "theirs", namespace: "shop" }, spec: { template: { spec: { containers: [{ name: "app", image: "web:2" }] } } } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { k: "v" } },
  ]);
  assert.deepEqual(wit.children, []);
});

test("related requests carry apiVersion and kind, and null for what is not given", () => {
  const wit = new Response()
    .requestRelated({ apiVersion: "v1", kind: "ConfigMap", name: "settings" })
    .requestRelated({ apiVersion: "apps/v1", kind: "Deployment", namespace: "*", selector: "app=web,tier in (front,back)" })
    .toWit();
  assert.deepEqual(wit.relatedRequests, [
    { apiVersion: "v1", kind: "ConfigMap", namespace: null, name: "settings", selector: null },
    { apiVersion: "apps/v1", kind: "Deployment", namespace: "*", name: null, selector: "app=web,tier in (front,back)" },
  ]);
  assert.throws(() => new Response().requestRelated({ kind: "ConfigMap" }), /needs apiVersion \(a non-empty string\), not undefined/);
  assert.throws(() => new Response().requestRelated({ apiVersion: "v1", kind: "" }), /needs kind/);
  assert.throws(() => new Response().requestRelated({ apiVersion: "v1", kind: "Pod", name: 3 }), /name must be a string, not an integer/);
  assert.throws(() => new Response().requestRelated("v1/Pod"), /must be an object, not a string/);
  // Pushed by hand, they are checked when sent.
  const byHand = new Response();
  byHand.relatedRequests.push({ apiVersion: "v1", kind: "Secret", selector: undefined });
  assert.deepEqual(byHand.toWit().relatedRequests, [{ apiVersion: "v1", kind: "Secret", namespace: null, name: null, selector: null }]);
});
