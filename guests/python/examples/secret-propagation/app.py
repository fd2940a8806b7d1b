"""`SecretPropagation {secret: {namespace, name}, namespaceSelector}` (a
cluster-scoped parent) -> a copy of that Secret in every Namespace the
selector matches.

The related objects are the Namespaces (cluster-scoped) and the Secrets
labelled `sous.dev/propagate: "true"` in every namespace (`namespace: "*"`):
only a Secret its owner labelled can be copied. Each copy has the source's
`type` and `data`, the label `app.kubernetes.io/managed-by: sous` and the
annotation `sous.dev/copied-from: NAMESPACE/NAME`. The source's own
namespace and namespaces being deleted are skipped.

The Reconciler's Secret kind uses `deletePolicy: Orphan`, so a copy is never
deleted behind an application's back: when a namespace stops matching, or
the SecretPropagation goes, the copies stay, released (no Sous labels, no
owner). A source that is missing or not labelled is a `Transient` error: the
host retries and leaves the copies as they are meanwhile.

The status lists the namespaces holding a copy (`namespaces`), their count
(`copies`) and a phase (`Propagated`, or `NoNamespaces` when none matches).
"""

from dataclasses import dataclass

from sous_guest import (Event, LabelSelector, Reconciler, Request, Response, Transient, export,
                        resource)

PROPAGATE_LABEL = "sous.dev/propagate"
COPIED_FROM = "sous.dev/copied-from"


@dataclass
class SecretRef:
    """Which Secret to copy."""

    namespace: str
    name: str


@dataclass
class SecretPropagationSpec:
    """The parent's spec."""

    secret: SecretRef
    namespace_selector: LabelSelector


@export
class SecretPropagation(Reconciler):
    """The reconciler."""

    def reconcile(self, request: Request) -> Response:
        spec = request.spec_as(SecretPropagationSpec)
        spec.namespace_selector.check("spec.namespaceSelector")
        source_name = f"{spec.secret.namespace}/{spec.secret.name}"
        source = next(
            (s for s in request.related_of_kind("Secret", "v1")
             if s["metadata"].get("namespace") == spec.secret.namespace
             and s["metadata"]["name"] == spec.secret.name),
            None)
        if source is None:
            raise Transient(f"Secret {source_name} is not there, or not labelled "
                            f"{PROPAGATE_LABEL}=true; the copies stay as they are")

        targets = sorted(
            n["metadata"]["name"] for n in request.related_of_kind("Namespace", "v1")
            if n["metadata"]["name"] != spec.secret.namespace
            and (n.get("status") or {}).get("phase") != "Terminating"
            and spec.namespace_selector.matches(n["metadata"].get("labels")))

        response = Response()
        for namespace in targets:
            copy = (resource("v1", "Secret", spec.secret.name)
                    .namespace(namespace)
                    .label("app.kubernetes.io/managed-by", "sous")
                    .annotation(COPIED_FROM, source_name)
                    .field("type", source.get("type", "Opaque"))
                    .field("data", source.get("data") or {}))
            response.child(copy)
        if not targets:
            response.event(Event.warning(
                "NoNamespaces", f"no namespace matches spec.namespaceSelector; {source_name} "
                                "is copied nowhere"))
        return response.status({
            "phase": "Propagated" if targets else "NoNamespaces",
            "copies": len(targets),
            "namespaces": targets,
        })
