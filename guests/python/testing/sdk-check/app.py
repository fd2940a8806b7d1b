"""Exercises the parts of the SDK that the examples do not, end to end through
the WIT (the golden cases under tests/): what sous:reconciler 0.2.0 added.
The same cases as the JavaScript and C sdk-check suites.

spec: {parent: "set" | "clear" | "leave" (default: parent labels untouched),
       parentLabels: {key: value, ...} (optional, with parent: set),
       patch: string (optional), ask: string (optional)}
-> the children and status earlier pipeline steps proposed, if any, plus a
   ConfigMap NAME-0; a status `{proposed}` (the number of proposed children,
   or null when there was no desired state).
   parent: set -> the parent labels `parentLabels` + `example.com/checked:
   "true"` and the annotation `example.com/greeting: hi`; clear -> both sets
   empty; leave -> set, then back to leaving them alone.
   patch: NAME -> a patch of ConfigMap NAME in namespace `shared`.
   ask: SELECTOR -> related requests for the Nodes matching SELECTOR and the
   ConfigMap `settings` in every namespace.
"""

from typing import Optional

from sous_guest import Invalid, Reconciler, Request, Response, export, resource


@export
class SdkCheck(Reconciler):
    """The reconciler."""

    def reconcile(self, request: Request) -> Response:
        parent = request.spec_field("parent", str, default="")
        patch = request.spec_field("patch", Optional[str], default=None)
        ask = request.spec_field("ask", Optional[str], default=None)

        response = (Response.from_desired(request.desired)
                    .child(resource("v1", "ConfigMap", f"{request.name}-0")
                           .field("data", {"checked": "true"}))
                    .status({"proposed": None if request.desired is None
                             else len(request.desired.children)}))

        if parent:
            response.parent_labels = request.spec_field("parentLabels", dict[str, str], default={})
            response.parent_label("example.com/checked", "true")
            response.parent_annotation("example.com/greeting", "hi")
            if parent == "clear":
                response.parent_labels, response.parent_annotations = {}, {}
            elif parent == "leave":
                response.parent_labels, response.parent_annotations = None, None
            elif parent != "set":
                raise Invalid(f"spec.parent must be set, clear or leave, not {parent}")
        if patch is not None:
            response.patch(resource("v1", "ConfigMap", patch).namespace("shared")
                           .field("data", {"greeting": "hi"}))
        if ask is not None:
            (response.request_related("v1", "Node", selector=ask)
             .request_related("v1", "ConfigMap", namespace="*", name="settings"))
        return response
