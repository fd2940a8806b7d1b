"""The component's entry module (what componentize-py wraps): imports the
reconciler's `app` module, whose `@export` class serves every call.

Each call gets a fresh instance of the class; the host also gives every call
a fresh WebAssembly instance, so nothing survives from one call to the next.
"""

import app  # noqa: F401  (registers the reconciler with @export)
import sous_guest
import wit_world

_RECONCILER = sous_guest.exported()


class WitWorld(wit_world.WitWorld):
    """The exports of the WIT world `reconciler`."""

    def reconcile(self, request):
        return sous_guest.run_reconcile(_RECONCILER(), request)

    def finalize(self, request):
        return sous_guest.run_finalize(_RECONCILER(), request)
