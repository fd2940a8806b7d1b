"""Write Sous reconcilers in Python.

A reconciler is one function from the observed state of a parent to its
desired children and status. Subclass `Reconciler`, decorate the class with
`@export`, and build the directory with `sdk/build-component`::

    from sous_guest import Reconciler, Request, Response, export, resource

    @export
    class Hello(Reconciler):
        def reconcile(self, request: Request) -> Response:
            greeting = request.spec_field("greeting", str)
            config_map = resource("v1", "ConfigMap", request.name).field(
                "data", {"greeting": greeting})
            return Response().child(config_map)

Besides children and a status, a response may set the parent's labels and
annotations (`parent_label`, `parent_annotation`), patch objects the
reconciler does not own (`patch`) and ask for more related objects
(`request_related`); in a pipeline, `request.desired` is what the earlier
steps proposed and `Response.from_desired` starts from it.

Errors: raise `Invalid` (the parent is wrong; the host reports it and waits for
the parent to change) or `Transient` (retry with backoff). Any other exception
escaping `reconcile` or `finalize` is a crash: the traceback goes to stderr
(the host's logs) and the call ends in a trap, like a Rust panic.

The contract itself (what the host does with each field) is documented in
`wit/reconciler.wit`. This module has no dependency besides the standard
library, and works outside WebAssembly too (unit tests): there, the WIT
bindings are only needed by `Response.to_wit` and the log records go to stderr.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import typing
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, TypeVar

__all__ = [
    "Desired",
    "Error",
    "Event",
    "FinalizeResponse",
    "Invalid",
    "LabelRequirement",
    "LabelSelector",
    "ObjectBuilder",
    "Reconciler",
    "RelatedRequest",
    "Request",
    "Response",
    "Rollout",
    "Transient",
    "export",
    "log",
    "resource",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class Error(Exception):
    """Why a reconcile could not produce a desired state (see the subclasses)."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def to_wit(self) -> Any:
        """The WIT `error` variant."""
        from wit_world.imports import types

        if isinstance(self, Transient):
            return types.Error_Transient(self.message)
        return types.Error_Invalid(self.message)


class Invalid(Error):
    """The parent is wrong (a bad spec value, say): the host reports the message
    in the parent's status and events and does not retry until it changes."""

    kind = "invalid"


class Transient(Error):
    """Something temporary went wrong: the host retries with backoff."""

    kind = "transient"


# --------------------------------------------------------------------------- logs


class _Log:
    """Log records, forwarded to the host's logs tagged with the reconciler's
    and the parent's names. Outside WebAssembly they go to stderr."""

    def _write(self, level: str, message: str) -> None:
        if sys.platform == "wasi":
            from wit_world.imports import log as wit_log

            wit_log.log(getattr(wit_log.Level, level), str(message))
        else:
            print(f"{level}: {message}", file=sys.stderr)

    def trace(self, message: str) -> None:
        """Very detailed tracing."""
        self._write("TRACE", message)

    def debug(self, message: str) -> None:
        """Detail useful while developing a reconciler."""
        self._write("DEBUG", message)

    def info(self, message: str) -> None:
        """Normal operation."""
        self._write("INFO", message)

    def warn(self, message: str) -> None:
        """Something unexpected that the reconciler recovered from."""
        self._write("WARN", message)

    warning = warn

    def error(self, message: str) -> None:
        """Something failed."""
        self._write("ERROR", message)


log = _Log()


# --------------------------------------------------------------------------- typed values

_MISSING: Any = object()


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{json.dumps(value)}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
               dict: "an object", list: "a list"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _convert(value: Any, tp: Any, path: str) -> Any:
    """`value` checked against the type `tp` (converted into a dataclass where
    `tp` is one); a mismatch raises `Invalid` naming `path`."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (sys.version_info >= (3, 10) and _is_union_type(tp)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _convert(value, arm, path)
            except Invalid as error:
                errors.append(error)
        raise errors[0] if len(errors) == 1 else Invalid(f"{path}: unexpected {_describe(value)}")
    if origin in (list, tuple, typing.List, Iterable) or tp is list:
        if not isinstance(value, list):
            raise Invalid(f"{path}: expected a list, got {_describe(value)}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise Invalid(f"{path}: expected an object, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _from_object(value, tp, path)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"sous_guest cannot check values against the type {tp!r}")
    expected = _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))
    raise Invalid(f"{path}: expected {expected}, got {_describe(value)}")


def _is_union_type(tp: Any) -> bool:
    import types as _types

    return isinstance(tp, getattr(_types, "UnionType", ()))


def _from_object(value: Any, cls: type, path: str) -> Any:
    """A dataclass `cls` from the JSON object `value`: each field reads the key
    named by `field(metadata={"json": ...})`, or its camelCase name
    (`match_labels` reads `matchLabels`). Unknown keys are ignored."""
    if not isinstance(value, dict):
        raise Invalid(f"{path}: expected an object, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    arguments = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f.metadata.get("json", _camel(f.name))
        where = f"{path}.{key}" if path else key
        if key in value and value[key] is not None:
            arguments[f.name] = _convert(value[key], hints.get(f.name, Any), where)
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        elif key in value and _allows_none(hints.get(f.name, Any)):
            arguments[f.name] = None
        else:
            raise Invalid(f"{where}: missing")
    return cls(**arguments)


def _allows_none(tp: Any) -> bool:
    return tp is Any or type(None) in typing.get_args(tp)


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# --------------------------------------------------------------------------- request


@dataclasses.dataclass
class Desired:
    """What the earlier steps of a pipeline proposed for the parent
    (`Request.desired`): the complete desired state so far, which a step
    usually answers changed (see `Response.from_desired`)."""

    children: list = dataclasses.field(default_factory=list)
    """The proposed children, each a complete object (a dict)."""
    status: Optional[dict] = None
    """The proposed `.status` of the parent, or None when none was proposed."""

    @classmethod
    def from_json(cls, text: str) -> "Desired":
        """The proposal from its JSON text `{"children": [...], "status":
        {...}}` (both keys optional). Text that is not JSON, or not of that
        shape, is `Transient`: the host sends it, so that would be a fault of
        the host, not of the parent."""
        try:
            value = json.loads(text)
        except ValueError as error:
            raise Transient(f"the host sent a desired state that is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise Transient(f"the host sent a desired state that is {_describe(value)}, "
                            f'not an object {{"children": [...], "status": {{...}}}}')
        children = value.get("children")
        if children is None:
            children = []
        if not isinstance(children, list):
            raise Transient(f"the host sent a desired state whose `children` is "
                            f"{_describe(children)}, not a list")
        for i, child in enumerate(children):
            if not isinstance(child, dict):
                raise Transient(f"the host sent a desired state whose `children[{i}]` is "
                                f"{_describe(child)}, not an object")
        status = value.get("status")
        if status is not None and not isinstance(status, dict):
            raise Transient(f"the host sent a desired state whose `status` is "
                            f"{_describe(status)}, not an object")
        return cls(children=children, status=status)

    def child(self, kind: str, name: str, api_version: Optional[str] = None) -> Optional[dict]:
        """The proposed child of `kind` (and `api_version`, if given) named
        `name`, or None."""
        return next(_matching(self.children, kind, api_version, name), None)

    def children_of_kind(self, kind: str, api_version: Optional[str] = None) -> list:
        """The proposed children of `kind` (and `api_version`, if given)."""
        return list(_matching(self.children, kind, api_version))


class Request:
    """What the host observed for one parent: the parent, the children it owns,
    the related objects and the reconciler's configuration, as plain Python
    values (dicts, lists, strings, numbers) parsed from the JSON the host sent;
    in a pipeline, also what the earlier steps proposed (`desired`).
    """

    def __init__(
        self,
        parent: dict,
        children: Iterable[dict] = (),
        related: Iterable[dict] = (),
        config: Any = None,
        reconciler: str = "",
        desired: Optional[Desired] = None,
    ) -> None:
        self.reconciler = reconciler
        self.parent = parent
        self.children = list(children)
        self.related = list(related)
        self.raw_config = config
        self.desired: Optional[Desired] = desired
        """What the earlier steps of a pipeline proposed (a `Desired`), or
        None when this module serves the reconciler alone."""

    @classmethod
    def from_wit(cls, raw: Any) -> "Request":
        """A request from the WIT record; text that is not JSON is `Transient`
        (the host always sends JSON, so that would be a host fault)."""

        def parse(what: str, text: str) -> Any:
            try:
                return json.loads(text)
            except ValueError as error:
                raise Transient(f"the host sent {what} that is not JSON: {error}") from None

        return cls(
            parent=parse("a parent", raw.parent),
            children=[parse("a child", c) for c in raw.children],
            related=[parse("a related object", r) for r in raw.related],
            config=None if raw.config is None else parse("a config", raw.config),
            reconciler=raw.reconciler,
            desired=None if raw.desired is None else Desired.from_json(raw.desired),
        )

    # The parent.

    @property
    def metadata(self) -> dict:
        """The parent's `metadata` (empty when absent)."""
        return _dig(self.parent, "metadata") or {}

    @property
    def name(self) -> str:
        """The parent's `metadata.name`."""
        return self.metadata.get("name") or ""

    @property
    def namespace(self) -> Optional[str]:
        """The parent's `metadata.namespace` (None for a cluster-scoped parent)."""
        return self.metadata.get("namespace")

    @property
    def generation(self) -> Optional[int]:
        """The parent's `metadata.generation`."""
        return self.metadata.get("generation")

    @property
    def labels(self) -> dict:
        """The parent's `metadata.labels`."""
        return self.metadata.get("labels") or {}

    @property
    def spec(self) -> dict:
        """The parent's `.spec` as a dict (empty when absent)."""
        spec = _dig(self.parent, "spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def status(self) -> dict:
        """The parent's current `.status` (empty when absent)."""
        status = _dig(self.parent, "status")
        return status if isinstance(status, dict) else {}

    def spec_field(self, field: str, tp: Any = Any, default: Any = _MISSING) -> Any:
        """One field of `.spec`, checked against the type `tp` (`int`, `str`,
        `list[str]`, `Optional[int]`, a dataclass...). Missing (or null) gives
        `default`, or `Invalid("spec.FIELD: missing")` without one; a value of
        another type is `Invalid` naming the field."""
        value = self.spec.get(field)
        if value is None:
            if default is not _MISSING:
                return default
            if _allows_none(tp) and field in self.spec:
                return None
            raise Invalid(f"spec.{field}: missing")
        return _convert(value, tp, f"spec.{field}")

    def spec_as(self, cls: Callable[..., T]) -> T:
        """The whole `.spec` as the dataclass `cls` (see `spec_field` for the
        checks; field `foo_bar` reads the key `fooBar`)."""
        return _convert(self.spec, cls, "spec")

    # What was observed.

    def child(self, kind: str, name: str, api_version: Optional[str] = None) -> Optional[dict]:
        """The observed child of `kind` (and `api_version`, if given) named
        `name`, or None."""
        return next(_matching(self.children, kind, api_version, name), None)

    def children_of_kind(self, kind: str, api_version: Optional[str] = None) -> list:
        """The observed children of `kind` (and `api_version`, if given)."""
        return list(_matching(self.children, kind, api_version))

    def related_of_kind(self, kind: str, api_version: Optional[str] = None) -> list:
        """The related objects of `kind` (and `api_version`, if given)."""
        return list(_matching(self.related, kind, api_version))

    def config(self, tp: Any = Any, default: Any = None) -> Any:
        """The Reconciler's `spec.config`, checked against `tp` (a dataclass,
        `dict`...), or `default` when none was given. A config that does not
        fit is `Invalid`."""
        if self.raw_config is None:
            return default
        return _convert(self.raw_config, tp, "config")


def _matching(
    objects: Iterable[dict], kind: str, api_version: Optional[str], name: Optional[str] = None
) -> Iterator[dict]:
    for o in objects:
        if o.get("kind") != kind:
            continue
        if api_version is not None and o.get("apiVersion") != api_version:
            continue
        if name is not None and _dig(o, "metadata", "name") != name:
            continue
        yield o


# --------------------------------------------------------------------------- selectors

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclasses.dataclass
class LabelRequirement:
    """One `matchExpressions` entry of a label selector."""

    key: str
    operator: str
    values: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class LabelSelector:
    """A Kubernetes label selector, as a spec field: `matchLabels` and
    `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`). An empty
    selector selects everything. Read it with `spec_as`, `check` it, then
    ask whether it `matches` an object's labels."""

    match_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    match_expressions: list[LabelRequirement] = dataclasses.field(default_factory=list)

    def check(self, where: str) -> None:
        """Raises `Invalid` naming the first malformed requirement, the
        field being `where` (e.g. `spec.selector`)."""
        for i, requirement in enumerate(self.match_expressions):
            at = f"{where}.matchExpressions[{i}]"
            if requirement.operator not in _OPERATORS:
                raise Invalid(f"{at}.operator: unknown operator {requirement.operator!r}; "
                              f"expected one of {', '.join(_OPERATORS)}")
            needs_values = requirement.operator in ("In", "NotIn")
            if needs_values and not requirement.values:
                raise Invalid(f"{at}.values must not be empty with {requirement.operator}")
            if not needs_values and requirement.values:
                raise Invalid(f"{at}.values must be empty with {requirement.operator}")

    def matches(self, labels: Optional[Mapping[str, str]]) -> bool:
        """Whether `labels` (an object's, possibly absent) match, as
        Kubernetes decides it."""
        labels = labels or {}
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for requirement in self.match_expressions:
            present = requirement.key in labels
            value = labels.get(requirement.key)
            matched = {
                "In": present and value in requirement.values,
                "NotIn": not present or value not in requirement.values,
                "Exists": present,
                "DoesNotExist": not present,
            }[requirement.operator]
            if not matched:
                return False
        return True

    def format(self) -> str:
        """The selector in the syntax of `kubectl -l` (what a
        `RelatedRequest` takes), e.g. `tier=web,env notin (dev)`; empty for
        the empty selector, which selects everything."""
        parts = [f"{key}={value}" for key, value in self.match_labels.items()]
        for requirement in self.match_expressions:
            key, operator = requirement.key, requirement.operator
            if operator == "In":
                parts.append(f"{key} in ({','.join(requirement.values)})")
            elif operator == "NotIn":
                parts.append(f"{key} notin ({','.join(requirement.values)})")
            elif operator == "Exists":
                parts.append(key)
            elif operator == "DoesNotExist":
                parts.append(f"!{key}")
            else:
                raise ValueError(f"label selector operator {operator!r} is none of "
                                 f"{', '.join(_OPERATORS)}")
        return ",".join(parts)


# --------------------------------------------------------------------------- objects


def resource(api_version: str, kind: str, name: str) -> "ObjectBuilder":
    """Starts a desired object of `api_version`/`kind` named `name`. Its
    namespace defaults to the parent's unless `.namespace()` sets one."""
    return ObjectBuilder(api_version, kind, name)


class ObjectBuilder:
    """A desired Kubernetes object under construction. Every method returns the
    builder, so calls chain; `build()` gives the dict."""

    def __init__(self, api_version: str, kind: str, name: str) -> None:
        self._object: dict = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}

    def namespace(self, namespace: str) -> "ObjectBuilder":
        """Sets `metadata.namespace`."""
        self._object["metadata"]["namespace"] = namespace
        return self

    def label(self, key: str, value: str) -> "ObjectBuilder":
        """Adds one label."""
        self._object["metadata"].setdefault("labels", {})[key] = value
        return self

    def labels(self, labels: Mapping[str, Any]) -> "ObjectBuilder":
        """Adds every entry of `labels`; entries whose value is not a string are
        skipped, so one dict can serve as the labels, the selector and the pod
        template's labels."""
        for key, value in labels.items():
            if isinstance(value, str):
                self.label(key, value)
        return self

    def annotation(self, key: str, value: str) -> "ObjectBuilder":
        """Adds one annotation."""
        self._object["metadata"].setdefault("annotations", {})[key] = value
        return self

    def spec(self, spec: Any) -> "ObjectBuilder":
        """Sets `.spec`."""
        return self.field("spec", spec)

    def field(self, name: str, value: Any) -> "ObjectBuilder":
        """Sets any top-level field (`data` of a ConfigMap, say)."""
        self._object[name] = value
        return self

    def build(self) -> dict:
        """The finished object."""
        return self._object


# --------------------------------------------------------------------------- response


def _milliseconds(seconds: float) -> int:
    if seconds < 0:
        raise ValueError(f"a delay cannot be negative: {seconds}")
    return min(int(round(seconds * 1000)), 2**64 - 1)


def _json_text(value: Any) -> str:
    if isinstance(value, ObjectBuilder):
        value = value.build()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclasses.dataclass
class Event:
    """A Kubernetes Event to record on the parent: `Event.normal(reason,
    message)` or `Event.warning(reason, message)`."""

    type: str
    """`Normal` or `Warning`."""
    reason: str
    """A short UpperCamelCase reason, e.g. `ScaledUp`."""
    message: str
    """A human-readable sentence."""

    def __post_init__(self) -> None:
        if self.type not in ("Normal", "Warning"):
            raise ValueError(f"an event's type is Normal or Warning, not {self.type!r}")

    @classmethod
    def normal(cls, reason: str, message: str) -> "Event":
        """An informational event."""
        return cls("Normal", reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> "Event":
        """Something is wrong or unusual and a human may want to look."""
        return cls("Warning", reason, message)

    def to_wit(self) -> Any:
        """The WIT `event` record."""
        from wit_world.imports import types

        kind = types.EventType.WARNING if self.type == "Warning" else types.EventType.NORMAL
        return types.Event(event_type=kind, reason=self.reason, message=self.message)


@dataclasses.dataclass
class RelatedRequest:
    """Objects to read beyond what the host sent: the host calls `reconcile`
    again in the same pass with the objects selected added to
    `Request.related`. Only kinds the reconciler declares in `spec.related`
    can be requested, and a request only narrows what the declaration
    selects. Give it to `Response.request_related` (or `related_requests=`)."""

    api_version: str
    """`group/version` of the kind, e.g. `v1` or `apps/v1`."""
    kind: str
    """The kind, e.g. `ConfigMap`."""
    namespace: Optional[str] = None
    """Only objects in this namespace (`*`: every namespace). None: the
    parent's namespace (every namespace for a cluster-scoped parent)."""
    name: Optional[str] = None
    """Only the object of this name."""
    selector: Optional[str] = None
    """Only objects whose labels match this selector, in the syntax of
    `kubectl -l` (`app=web,tier in (front,back)`). A `LabelSelector` or a
    dict of labels (every one must match) is turned into that text."""

    def __post_init__(self) -> None:
        if isinstance(self.selector, LabelSelector):
            self.selector = self.selector.format() or None
        elif isinstance(self.selector, Mapping):
            self.selector = LabelSelector(dict(self.selector)).format() or None
        for field in ("api_version", "kind"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise ValueError(f"a related request's {field} is a non-empty string, "
                                 f"not {getattr(self, field)!r}")
        for field in ("namespace", "name", "selector"):
            if getattr(self, field) is not None and not isinstance(getattr(self, field), str):
                raise TypeError(f"a related request's {field} is a string or None, "
                                f"not {type(getattr(self, field)).__name__}")

    def to_wit(self) -> Any:
        """The WIT `related-request` record."""
        from wit_world.imports import types

        return types.RelatedRequest(api_version=self.api_version, kind=self.kind,
                                    namespace=self.namespace, name=self.name,
                                    selector=self.selector)


def _key_values(what: str, values: Optional[Mapping[str, str]]) -> Optional[list]:
    if values is None:
        return None
    pairs = []
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{what} are strings: {key!r}: {value!r}")
        pairs.append((key, value))
    return pairs


def _built(value: Any) -> Any:
    return value.build() if isinstance(value, ObjectBuilder) else value


class Response:
    """The desired state of one parent: every child to keep, the status, events
    and an optional requeue; optionally the parent's labels and annotations,
    patches to objects the reconciler does not own and requests for more
    related objects. Methods chain::

        Response().child(deployment).child(service).status({"phase": "Ready"})
    """

    def __init__(
        self,
        children: Iterable[Any] = (),
        status: Optional[dict] = None,
        requeue_after: Optional[float] = None,
        events: Iterable[Event] = (),
        parent_labels: Optional[Mapping[str, str]] = None,
        parent_annotations: Optional[Mapping[str, str]] = None,
        patches: Iterable[Any] = (),
        related_requests: Iterable[RelatedRequest] = (),
    ) -> None:
        self.children: list = [_built(c) for c in children]
        self.status_value: Optional[dict] = status
        self.requeue_after_ms: Optional[int] = (
            None if requeue_after is None else _milliseconds(requeue_after))
        self.events: list = list(events)
        self.parent_labels: Optional[dict] = None if parent_labels is None else dict(parent_labels)
        """The complete set of labels this reconciler sets on the parent (a
        label it stops setting is removed; others' labels are never
        touched), or None (the default) to leave the parent's labels alone.
        `{}` removes every label it set. Keys under `sous.dev/` are refused
        by the host."""
        self.parent_annotations: Optional[dict] = (
            None if parent_annotations is None else dict(parent_annotations))
        """The complete set of annotations this reconciler sets on the
        parent, or None (the default) to leave them alone; as `parent_labels`."""
        self.patches: list = [_built(p) for p in patches]
        """Partial objects server-side applied to objects the reconciler
        does not own (see `patch`)."""
        self.related_requests: list = list(related_requests)
        """`RelatedRequest`s: more related objects to read (see
        `request_related`)."""

    @classmethod
    def from_desired(cls, desired: Optional[Desired]) -> "Response":
        """A response that starts from what the earlier steps of a pipeline
        proposed (`request.desired`): their children (copies, so changing
        them leaves the request alone) and status. An empty response when
        `desired` is None."""
        if desired is None:
            return cls()
        return cls(children=copy.deepcopy(desired.children),
                   status=copy.deepcopy(desired.status))

    def child(self, child: Any) -> "Response":
        """Adds a desired child (a dict or an `ObjectBuilder`). Every child to
        keep must be added on every call: owned children missing from the
        response are deleted."""
        self.children.append(_built(child))
        return self

    def status(self, status: dict) -> "Response":
        """Sets the parent's `.status` (the host adds its own conditions)."""
        self.status_value = status
        return self

    def requeue_after(self, seconds: float) -> "Response":
        """Asks to be called again after `seconds` even if nothing changes."""
        self.requeue_after_ms = _milliseconds(seconds)
        return self

    def event(self, event: Event) -> "Response":
        """Records an event on the parent."""
        self.events.append(event)
        return self

    def parent_label(self, key: str, value: str) -> "Response":
        """Sets one label on the parent. The labels set this way (or with
        `parent_labels=`) are the complete set this reconciler manages: one
        it stops setting is removed from the parent."""
        if self.parent_labels is None:
            self.parent_labels = {}
        self.parent_labels[key] = value
        return self

    def parent_annotation(self, key: str, value: str) -> "Response":
        """Sets one annotation on the parent, as `parent_label` does."""
        if self.parent_annotations is None:
            self.parent_annotations = {}
        self.parent_annotations[key] = value
        return self

    def patch(self, patch: Any) -> "Response":
        """Adds a patch (a dict or an `ObjectBuilder`): a partial object
        (`apiVersion`, `kind`, `metadata.name`, `metadata.namespace` unless
        the parent's, and only the fields to set) server-side applied to an
        object the reconciler does not own, e.g. one container's image in
        someone else's Deployment. A patch never creates the object (a
        missing one is skipped with a Warning event), never deletes it, and
        adds no owner reference; a patch no longer returned is no longer
        applied, and the fields it set keep their last values."""
        self.patches.append(_built(patch))
        return self

    def request_related(
        self,
        api_version: str,
        kind: str,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        selector: Any = None,
    ) -> "Response":
        """Asks for more related objects (see `RelatedRequest` for the
        fields): when the requests differ from the previous call's in this
        pass, the host calls `reconcile` again with the objects they select
        in `request.related`. Return the same requests on every call that
        needs the objects."""
        self.related_requests.append(RelatedRequest(api_version, kind, namespace, name, selector))
        return self

    def to_wit(self) -> Any:
        """The WIT `response` record, objects as JSON text."""
        from wit_world.imports import types

        for request in self.related_requests:
            if not isinstance(request, RelatedRequest):
                raise TypeError(f"related_requests holds RelatedRequest values, "
                                f"not {type(request).__name__}")
        return types.Response(
            children=[_json_text(c) for c in self.children],
            status=None if self.status_value is None else _json_text(self.status_value),
            requeue_after_ms=self.requeue_after_ms,
            events=[e.to_wit() for e in self.events],
            parent_labels=_key_values("parent labels", self.parent_labels),
            parent_annotations=_key_values("parent annotations", self.parent_annotations),
            patches=[_json_text(p) for p in self.patches],
            related_requests=[r.to_wit() for r in self.related_requests],
        )


class FinalizeResponse:
    """The answer to `finalize`: `FinalizeResponse.done()` or
    `FinalizeResponse.not_yet(seconds)`."""

    def __init__(self, done: bool, requeue_after: Optional[float] = None,
                 events: Iterable[Event] = ()) -> None:
        self.done_value = done
        self.requeue_after_ms = None if requeue_after is None else _milliseconds(requeue_after)
        self.events = list(events)

    @classmethod
    def done(cls) -> "FinalizeResponse":
        """Cleanup is complete: the parent may go."""
        return cls(True)

    @classmethod
    def not_yet(cls, seconds: float) -> "FinalizeResponse":
        """Cleanup is still under way: call again after `seconds`."""
        return cls(False, seconds)

    def event(self, event: Event) -> "FinalizeResponse":
        """Records an event on the parent."""
        self.events.append(event)
        return self

    def to_wit(self) -> Any:
        """The WIT `finalize-response` record."""
        from wit_world.imports import types

        return types.FinalizeResponse(
            done=self.done_value,
            requeue_after_ms=self.requeue_after_ms,
            events=[e.to_wit() for e in self.events],
        )


# --------------------------------------------------------------------------- rollout


@dataclasses.dataclass(frozen=True)
class Rollout:
    """How far a workload child (Deployment, StatefulSet...) has rolled out."""

    ready: int
    """`status.readyReplicas` of the observed child (0 when absent)."""
    phase: str
    """`Pending` (not observed yet), `Progressing` (fewer ready than wanted) or `Ready`."""

    @classmethod
    def of(cls, observed: Optional[dict], wanted: int) -> "Rollout":
        """The rollout of `observed` (the child as observed, or None) toward
        `wanted` ready replicas."""
        ready = _dig(observed, "status", "readyReplicas")
        ready = ready if isinstance(ready, int) and not isinstance(ready, bool) and ready >= 0 else 0
        if observed is None:
            return cls(ready, "Pending")
        return cls(ready, "Ready" if ready >= wanted else "Progressing")


# --------------------------------------------------------------------------- reconciler


class Reconciler:
    """A reconciler: computes the desired state of one parent. Subclass it,
    implement `reconcile`, and mark the class with `@export`. A fresh instance
    serves each call, and nothing survives from one call to the next."""

    def reconcile(self, request: Request) -> Response:
        """The desired children, status, events and requeue for the parent."""
        raise NotImplementedError

    def finalize(self, request: Request) -> FinalizeResponse:
        """Cleanup while the parent is being deleted (only called when the
        Reconciler object asks for a finalizer). The default has nothing to
        clean up and answers done."""
        return FinalizeResponse.done()


def run_reconcile(reconciler: Reconciler, raw: Any) -> Any:
    """Runs `reconciler.reconcile` on a raw WIT request: parse the JSON, call,
    serialize. `Invalid`/`Transient` become the WIT error (raised as
    `componentize_py_types.Err`); any other exception propagates (a trap)."""
    return _run(lambda: _expect(reconciler.reconcile(Request.from_wit(raw)), Response, "reconcile"))


def run_finalize(reconciler: Reconciler, raw: Any) -> Any:
    """Runs `reconciler.finalize` on a raw WIT request, as `run_reconcile`."""
    return _run(lambda: _expect(reconciler.finalize(Request.from_wit(raw)),
                                FinalizeResponse, "finalize"))


def _expect(answer: Any, cls: type, method: str) -> Any:
    if not isinstance(answer, cls):
        raise TypeError(f"{method} must return a {cls.__name__}, not {type(answer).__name__}")
    return answer.to_wit()


def _run(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Error as error:
        from componentize_py_types import Err

        raise Err(error.to_wit()) from None


_exported: list = []


def export(cls: type) -> type:
    """Marks the `Reconciler` subclass that the component exports (exactly one
    per component). Used as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Reconciler)):
        raise TypeError("@export marks a subclass of sous_guest.Reconciler")
    if _exported and _exported[0] is not cls:
        raise TypeError(f"@export used twice: {_exported[0].__name__} and {cls.__name__}")
    _exported[:] = [cls]
    return cls


def exported() -> type:
    """The class marked with `@export` (for the generated component entry)."""
    if not _exported:
        raise RuntimeError("no Reconciler is marked with @export")
    return _exported[0]
