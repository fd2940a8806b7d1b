"""A reconciler that misbehaves on request, to prove the host's limits.

`spec.attack` picks the misbehaviour (the same as the Rust hostile guest):
- `loop`: spins forever (ends by fuel or deadline);
- `memory`: allocates without bound, touching every page;
- `panic`: raises an uncaught exception (a trap, the traceback on stderr);
- `huge`: answers one child of 100 MB (see `huge_config_map`);
- `garbage`: answers a child that is not JSON;
- `forbidden`: answers a ClusterRoleBinding granting cluster-admin;
- `many`: answers `spec.count` ConfigMaps (default 10,000);
- `transient`: reports a transient error;
- `remember`: counts its calls in a global and reports the count in a
  ConfigMap, to prove that no state survives from one call to the next;
- `escape`: tries the filesystem, the environment, the arguments and the
  network, and reports what it got in a ConfigMap;

Attacks on the fields of `sous:reconciler@0.2.0` (as the Rust hostile
guest's), each answered beside the harmless ConfigMap `<name>-0` so that only
the attack can be refused:
- `patch-owner`: a patch to the ConfigMap `spec.target` (default
  `<name>-victim`) setting `metadata.ownerReferences` to the parent, so that
  someone else's object would be garbage collected with it;
- `parent-label-reserved`: the parent label `spec.key` (default
  `sous.dev/reconciler`, a key under the host's `sous.dev/`) = `hijacked`;
- `related-undeclared`: a related request for `spec.apiVersion`/`spec.kind`
  (default `v1`/`Secret`, a kind no hostile Reconciler declares), in every
  namespace;
- `related-selector`: a related request for `v1`/`ConfigMap` whose selector
  `spec.selector` (default `app in (web`) is malformed;
- `related-unsettled`: a related request for the ConfigMap `<name>-<n>`, `n`
  one more than the highest `k` of the related ConfigMaps `<name>-<k>` this
  call got (0 when none), so the requests never settle while `<name>-0`,
  `<name>-1`, ... exist;
- anything else: one harmless ConfigMap, to show the guest still works.
"""

import json
import os
import sys

from sous_guest import Reconciler, Request, Response, Transient, export

# Calls seen by this instance; always 1 if every call gets a fresh instance.
CALLS = 0


class RawResponse(Response):
    """A response whose children are sent as given, JSON or not."""

    def __init__(self, texts):
        super().__init__()
        self.texts = texts

    def to_wit(self):
        raw = super().to_wit()
        raw.children = self.texts
        return raw


@export
class Hostile(Reconciler):
    """The misbehaving guest."""

    def reconcile(self, request: Request) -> Response:
        global CALLS
        name = request.name or "hostile"
        attack = request.spec.get("attack") or ""
        if attack == "loop":
            spin()
        if attack == "memory":
            hoard()
        if attack == "panic":
            raise RuntimeError("hostile guest panicked on purpose")
        if attack == "huge":
            return RawResponse([huge_config_map(name, 100 << 20)])
        if attack == "garbage":
            return RawResponse(["this is not JSON"])
        if attack == "forbidden":
            return Response().child(cluster_admin_binding(name))
        if attack == "many":
            count = request.spec.get("count")
            return Response(children=[config_map(name, i) for i in range(
                count if isinstance(count, int) else 10_000)])
        if attack == "transient":
            raise Transient("the hostile guest is resting")
        if attack == "escape":
            return Response().child(escape_report(name))
        if attack == "remember":
            CALLS += 1
            return Response().child(config_map(name, CALLS))
        response = Response().child(config_map(name, 0))
        spec = request.spec
        if attack == "patch-owner":
            response.patch(owning_patch(name, request.parent))
        elif attack == "parent-label-reserved":
            response.parent_label(spec.get("key") or "sous.dev/reconciler", "hijacked")
        elif attack == "related-undeclared":
            response.request_related(spec.get("apiVersion") or "v1", spec.get("kind") or "Secret",
                                     namespace="*")
        elif attack == "related-selector":
            response.request_related("v1", "ConfigMap", selector=spec.get("selector") or "app in (web")
        elif attack == "related-unsettled":
            response.request_related("v1", "ConfigMap", name=f"{name}-{next_counter(name, request.related)}")
        return response


def next_counter(name, related):
    """One more than the highest `k` of the ConfigMaps `<name>-<k>` in `related`."""
    prefix, highest = f"{name}-", -1
    for obj in related:
        suffix = obj.get("metadata", {}).get("name", "")
        if obj.get("kind") == "ConfigMap" and suffix.startswith(prefix) and suffix[len(prefix):].isdigit():
            highest = max(highest, int(suffix[len(prefix):]))
    return highest + 1


def spin():
    counter = 0
    while True:
        counter += 1


def hoard():
    hoard = []
    while True:
        # bytes of 0x01: every page is written, not just reserved.
        hoard.append(b"\x01" * (1 << 20))


def config_map(name, index):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-{index}"},
        "data": {"index": str(index)},
    }


def huge_config_map(name, size):
    head = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    # The blob is copied again when the response is lowered for the host, so
    # a 100 MB child needs about 300 MB of linear memory in Python: under the
    # default 256 MiB limit the memory limit stops it before the response
    # size limit does (with --max-memory-mib 1024 the size limit does).
    return "".join((head[:-1], ',"data":{"blob":"', "x" * size, '"}}'))


def escape_report(name):
    def outcome(attempt):
        try:
            return f"got {attempt()}"
        except Exception:  # any refusal: OSError, or a missing capability
            return "denied"

    def read_file():
        with open("/etc/passwd") as f:
            return f.read()

    def listing():
        return f"{len(os.listdir('.'))} entries"

    def network():
        import socket

        socket.create_connection(("127.0.0.1", 80), timeout=1).close()
        return "a connection"

    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {
            "file": outcome(read_file),
            "listing": outcome(listing),
            "network": outcome(network),
            "environment": str(len(os.environ)),
            "arguments": str(len(sys.argv)),
        },
    }


def owning_patch(name, parent):
    """A patch to someone else's ConfigMap that makes the parent its owner."""
    spec = parent.get("spec") or {}
    metadata = parent.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": spec.get("target") or f"{name}-victim",
            "ownerReferences": [{
                "apiVersion": parent.get("apiVersion"),
                "kind": parent.get("kind"),
                "name": name,
                "uid": metadata.get("uid"),
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "data": {"owned": "by the hostile guest"},
    }


def cluster_admin_binding(name):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:authenticated",
                      "apiGroup": "rbac.authorization.k8s.io"}],
    }
