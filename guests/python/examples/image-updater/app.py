"""`ImagePolicy {selector, image, tag}` -> the Deployments it selects, at that tag.

The related objects are the Deployments (apps/v1) of the parent's namespace.
For every one whose labels match `spec.selector` (`matchLabels` and
`matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`, as in
Kubernetes: an empty selector matches every Deployment) and that runs at
least one container from the repository `spec.image`, the response holds a
patch (not a child: the Deployments are not the ImagePolicy's) setting
those containers' image to `image:tag`: a partial Deployment with only the
name, the namespace and `spec.template.spec.containers[{name, image}]`.
Server-side apply merges the containers by name, so the rest of the
Deployment is left as it is, and a patch neither creates, owns nor deletes
a Deployment.

The status lists the containers this reconcile changes (`updated`: name,
container, from, to), how many Deployments the selector matched (`matched`),
how many containers already run the tag (`upToDate`), and a phase:
`Updating` while some container is not at the tag yet, `UpToDate` when all
are, `NoMatch` when no selected Deployment runs the repository.
"""

import re
from dataclasses import dataclass

from sous_guest import (Event, Invalid, LabelSelector, Reconciler, Request, Response, export, log,
                        resource)

# A tag as the OCI distribution spec defines it.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass
class ImagePolicySpec:
    """The parent's spec."""

    selector: LabelSelector
    image: str
    tag: str


def repository(image: str) -> str:
    """`registry:5000/team/app:1.2@sha256:...` -> `registry:5000/team/app`."""
    name = image.split("@", 1)[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def check(spec: ImagePolicySpec) -> None:
    """Raises `Invalid` naming the first wrong field."""
    if not spec.image:
        raise Invalid("spec.image must not be empty")
    if repository(spec.image) != spec.image:
        raise Invalid(f"spec.image must be a repository without a tag or digest, "
                      f"got {spec.image!r}")
    if not spec.tag:
        raise Invalid("spec.tag must not be empty")
    if not TAG.fullmatch(spec.tag):
        raise Invalid(f"spec.tag {spec.tag!r} is not a valid image tag")
    spec.selector.check("spec.selector")


@export
class ImageUpdater(Reconciler):
    """The reconciler."""

    def reconcile(self, request: Request) -> Response:
        spec = request.spec_as(ImagePolicySpec)
        check(spec)
        target = f"{spec.image}:{spec.tag}"

        deployments = sorted(
            request.related_of_kind("Deployment", "apps/v1"),
            key=lambda d: (d["metadata"].get("namespace") or "", d["metadata"]["name"]))
        selected = [d for d in deployments
                    if spec.selector.matches(d["metadata"].get("labels"))]

        response = Response()
        updated = []
        up_to_date = 0
        for deployment in selected:
            name = deployment["metadata"]["name"]
            pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
            containers = [c for c in pod.get("containers") or []
                          if repository(c.get("image") or "") == spec.image]
            if not containers:
                continue
            for container in containers:
                if container["image"] == target:
                    up_to_date += 1
                else:
                    updated.append({"name": name, "container": container["name"],
                                    "from": container["image"], "to": target})
                    log.info(f"{name}/{container['name']}: {container['image']} -> {target}")
            patch = resource("apps/v1", "Deployment", name).spec({
                "template": {"spec": {"containers": [
                    {"name": c["name"], "image": target} for c in containers]}},
            })
            namespace = deployment["metadata"].get("namespace")
            if namespace:
                patch.namespace(namespace)
            response.patch(patch)

        if updated:
            phase = "Updating"
            names = sorted({u["name"] for u in updated})
            response.event(Event.normal(
                "ImageUpdated",
                f"Setting {target} on {len(updated)} container(s) of {', '.join(names)}"))
        elif up_to_date:
            phase = "UpToDate"
        else:
            phase = "NoMatch"
        return response.status({
            "phase": phase,
            "image": target,
            "matched": len(selected),
            "upToDate": up_to_date,
            "updated": updated,
        })
