"""Unit tests of sous_guest, run natively by testing/sdk-tests."""

import importlib.util
import json
import pathlib
import unittest
from dataclasses import dataclass, field
from typing import Optional

import sous_guest
from componentize_py_types import Err
from sous_guest import (Desired, Event, FinalizeResponse, Invalid, LabelRequirement, LabelSelector,
                        Reconciler, RelatedRequest, Request, Response, Rollout, Transient, export,
                        resource)
from wit_world.imports import types

HERE = pathlib.Path(__file__).resolve().parent


def raw_request(parent, children=(), related=(), config=None, desired=None):
    return types.Request(
        reconciler="r",
        parent=parent if isinstance(parent, str) else json.dumps(parent),
        children=[json.dumps(c) for c in children],
        related=[json.dumps(r) for r in related],
        config=config,
        desired=desired if desired is None or isinstance(desired, str) else json.dumps(desired),
    )


def request():
    return Request.from_wit(raw_request(
        {"metadata": {"name": "p", "namespace": "ns", "generation": 3},
         "spec": {"size": 3, "name": "x", "flag": True, "ratio": 2, "none": None}},
        children=[{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"}},
                  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"}}],
        related=[{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}},
                 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}}],
        config='{"level": 2}',
    ))


class RequestTest(unittest.TestCase):
    def test_accessors_read_the_parent_and_the_observed_objects(self):
        r = request()
        self.assertEqual((r.reconciler, r.name, r.namespace, r.generation), ("r", "p", "ns", 3))
        self.assertEqual(r.spec_field("size", int), 3)
        self.assertEqual(r.spec_field("ratio", float), 2.0)
        self.assertEqual(r.spec_field("missing", int, default=7), 7)
        self.assertIsNone(r.spec_field("none", Optional[int]))
        self.assertIsNotNone(r.child("Service", "p"))
        self.assertIsNone(r.child("Service", "q"))
        self.assertIsNotNone(r.child("Deployment", "p", api_version="apps/v1"))
        self.assertIsNone(r.child("Deployment", "p", api_version="extensions/v1beta1"))
        self.assertEqual(len(r.children_of_kind("Service")), 1)
        self.assertEqual([o["metadata"]["name"] for o in r.related_of_kind("Node")], ["n"])
        self.assertEqual(r.related_of_kind("Node", "v2"), [])
        self.assertEqual(r.config()["level"], 2)
        self.assertEqual(Request({"metadata": {"name": "a"}}).config(default={}), {})

    def test_a_field_that_does_not_fit_is_invalid_and_says_which(self):
        r = request()
        cases = [
            (lambda: r.spec_field("size", str), "spec.size: expected a string, got number `3`"),
            (lambda: r.spec_field("flag", int), "spec.flag: expected an integer, got boolean `true`"),
            (lambda: r.spec_field("name", int), 'spec.name: expected an integer, got string "x"'),
            (lambda: r.spec_field("missing", int), "spec.missing: missing"),
            (lambda: r.spec_field("none", int), "spec.none: missing"),
            (lambda: r.config(list), "config: expected a list, got an object"),
        ]
        for call, message in cases:
            with self.assertRaises(Invalid) as caught:
                call()
            self.assertEqual(caught.exception.message, message)
            self.assertEqual(str(caught.exception), "invalid: " + message)

    def test_a_spec_fills_a_dataclass_with_camel_case_keys_defaults_and_nesting(self):
        @dataclass
        class Port:
            container_port: int
            name: str = "http"

        @dataclass
        class Spec:
            image: str
            ports: list[Port]
            node_selector: dict[str, str] = field(default_factory=dict)
            replicas: Optional[int] = None
            raw: str = field(default="", metadata={"json": "raw_value"})

        spec = Request({"metadata": {"name": "a"}, "spec": {
            "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 9090, "name": "m"}],
            "raw_value": "r", "unknown": 1,
        }}).spec_as(Spec)
        self.assertEqual(spec, Spec("nginx", [Port(80), Port(9090, "m")], {}, None, "r"))
        with self.assertRaises(Invalid) as caught:
            Request({"spec": {"image": "nginx", "ports": [{"containerPort": "80"}]}}).spec_as(Spec)
        self.assertEqual(caught.exception.message,
                         'spec.ports[0].containerPort: expected an integer, got string "80"')
        with self.assertRaises(Invalid) as caught:
            Request({"metadata": {"name": "a"}}).spec_as(Spec)
        self.assertEqual(caught.exception.message, "spec.image: missing")

    def test_a_request_that_is_not_json_is_transient(self):
        with self.assertRaises(Transient):
            Request.from_wit(raw_request("{"))


class DesiredTest(unittest.TestCase):
    """`request.desired`: what earlier steps of a pipeline proposed."""

    PARENT = {"metadata": {"name": "p"}}
    SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"}}
    DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"}}

    def test_absent_when_the_module_serves_alone(self):
        r = Request.from_wit(raw_request(self.PARENT))
        self.assertIsNone(r.desired)
        self.assertIsNone(Request(self.PARENT).desired)

    def test_children_and_status_are_parsed(self):
        r = Request.from_wit(raw_request(self.PARENT, desired={
            "children": [self.SERVICE, self.DEPLOYMENT], "status": {"phase": "Ready"}}))
        self.assertEqual(r.desired, Desired([self.SERVICE, self.DEPLOYMENT], {"phase": "Ready"}))
        self.assertEqual(r.desired.child("Service", "p"), self.SERVICE)
        self.assertIsNone(r.desired.child("Service", "q"))
        self.assertIsNone(r.desired.child("Deployment", "p", api_version="v1"))
        self.assertEqual(r.desired.children_of_kind("Deployment", "apps/v1"), [self.DEPLOYMENT])

    def test_missing_or_null_keys_are_empty(self):
        for text in ('{}', '{"children": null, "status": null}', '{"children": []}'):
            self.assertEqual(Request.from_wit(raw_request(self.PARENT, desired=text)).desired,
                             Desired([], None), text)

    def test_a_malformed_desired_state_is_transient_and_says_what_is_wrong(self):
        cases = [
            ('{"children": [', "the host sent a desired state that is not JSON: "),
            ("[]", "the host sent a desired state that is a list, not an object"),
            ('{"children": {}}', "`children` is an object, not a list"),
            ('{"children": [{}, "x"]}', '`children[1]` is string "x", not an object'),
            ('{"status": 3}', "`status` is number `3`, not an object"),
        ]
        for text, message in cases:
            with self.assertRaises(Transient) as caught:
                Request.from_wit(raw_request(self.PARENT, desired=text))
            self.assertIn(message, caught.exception.message, text)

    def test_a_response_starts_from_the_proposal_without_changing_it(self):
        desired = Desired([self.SERVICE], {"phase": "Ready"})
        response = Response.from_desired(desired)
        response.children[0]["metadata"]["labels"] = {"a": "b"}
        response.status_value["extra"] = 1
        response.child(self.DEPLOYMENT)
        self.assertEqual(desired, Desired([self.SERVICE], {"phase": "Ready"}))
        raw = response.to_wit()
        self.assertEqual([json.loads(c) for c in raw.children], [
            {**self.SERVICE, "metadata": {"name": "p", "labels": {"a": "b"}}}, self.DEPLOYMENT])
        self.assertEqual(json.loads(raw.status), {"phase": "Ready", "extra": 1})
        empty = Response.from_desired(None).to_wit()
        self.assertEqual((empty.children, empty.status), ([], None))


class ResponseTest(unittest.TestCase):
    def test_the_builder_makes_a_complete_object(self):
        built = (resource("v1", "Service", "web").namespace("shop")
                 .label("app", "web").labels({"tier": "front", "ignored": 1})
                 .annotation("note", "hi").spec({"ports": [{"port": 80}]}).build())
        self.assertEqual(built, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop",
                         "labels": {"app": "web", "tier": "front"}, "annotations": {"note": "hi"}},
            "spec": {"ports": [{"port": 80}]},
        })

    def test_a_response_becomes_json_text_for_the_host(self):
        raw = (Response().child({"kind": "Service"}).child(resource("v1", "ConfigMap", "c"))
               .status({"phase": "Ready"}).requeue_after(30)
               .event(Event.warning("Slow", "took long")).to_wit())
        self.assertEqual(raw.children, ['{"kind":"Service"}',
                                        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}'])
        self.assertEqual(raw.status, '{"phase":"Ready"}')
        self.assertEqual(raw.requeue_after_ms, 30_000)
        self.assertEqual(raw.events, [types.Event(types.EventType.WARNING, "Slow", "took long")])
        self.assertEqual(Event.normal("Up", "m").to_wit().event_type, types.EventType.NORMAL)
        with self.assertRaises(ValueError):
            Event("Info", "Up", "m")
        empty = Response().to_wit()
        self.assertEqual((empty.children, empty.status, empty.requeue_after_ms, empty.events,
                          empty.parent_labels, empty.parent_annotations, empty.patches,
                          empty.related_requests),
                         ([], None, None, [], None, None, [], []))

    def test_parent_labels_and_annotations_are_none_or_the_complete_set(self):
        raw = (Response().parent_label("team", "web").parent_label("tier", "front")
               .parent_annotation("example.com/note", "hi").to_wit())
        self.assertEqual(raw.parent_labels, [("team", "web"), ("tier", "front")])
        self.assertEqual(raw.parent_annotations, [("example.com/note", "hi")])
        raw = Response(parent_labels={"a": "1"}, parent_annotations={}).to_wit()
        self.assertEqual((raw.parent_labels, raw.parent_annotations), ([("a", "1")], []))
        response = Response()
        response.parent_labels = {}
        self.assertEqual(response.to_wit().parent_labels, [])
        with self.assertRaisesRegex(TypeError, "parent labels are strings: 'n': 1"):
            Response(parent_labels={"n": 1}).to_wit()

    def test_patches_become_json_text_like_children(self):
        patch = (resource("apps/v1", "Deployment", "web").namespace("shop")
                 .spec({"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}))
        raw = Response(patches=[{"kind": "ConfigMap"}]).patch(patch).to_wit()
        self.assertEqual(raw.patches, [
            '{"kind":"ConfigMap"}',
            '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},'
            '"spec":{"template":{"spec":{"containers":[{"name":"app","image":"a:2"}]}}}}',
        ])
        self.assertEqual(raw.children, [])

    def test_related_requests_become_the_wit_record(self):
        selector = LabelSelector({"tier": "web"}, [LabelRequirement("env", "NotIn", ["dev"])])
        raw = (Response(related_requests=[RelatedRequest("v1", "ConfigMap", name="settings")])
               .request_related("apps/v1", "Deployment", namespace="*", selector="app=web")
               .request_related("v1", "Secret", selector=selector)
               .request_related("v1", "Pod", selector={"app": "web", "tier": "front"})
               .request_related("v1", "Node", selector=LabelSelector())
               .to_wit())
        self.assertEqual(raw.related_requests, [
            types.RelatedRequest("v1", "ConfigMap", None, "settings", None),
            types.RelatedRequest("apps/v1", "Deployment", "*", None, "app=web"),
            types.RelatedRequest("v1", "Secret", None, None, "tier=web,env notin (dev)"),
            types.RelatedRequest("v1", "Pod", None, None, "app=web,tier=front"),
            types.RelatedRequest("v1", "Node", None, None, None),
        ])
        with self.assertRaises(ValueError):
            RelatedRequest("", "ConfigMap")
        with self.assertRaises(TypeError):
            RelatedRequest("v1", "ConfigMap", namespace=3)
        with self.assertRaisesRegex(TypeError, "not dict"):
            Response(related_requests=[{"kind": "ConfigMap"}]).to_wit()

    def test_finalize_answers_done_or_not_yet(self):
        self.assertTrue(FinalizeResponse.done().to_wit().done)
        later = FinalizeResponse.not_yet(1.5).event(Event.normal("Waiting", "w")).to_wit()
        self.assertEqual((later.done, later.requeue_after_ms, len(later.events)), (False, 1500, 1))

    def test_rollout_phases_follow_the_ready_replicas(self):
        self.assertEqual(Rollout.of(None, 3), Rollout(0, "Pending"))
        self.assertEqual(Rollout.of({"status": {"readyReplicas": 1}}, 3), Rollout(1, "Progressing"))
        self.assertEqual(Rollout.of({"status": {}}, 3), Rollout(0, "Progressing"))
        self.assertEqual(Rollout.of({"status": {"readyReplicas": 3}}, 3), Rollout(3, "Ready"))


class Echo(Reconciler):
    def reconcile(self, request):
        outcome = request.spec.get("outcome")
        if outcome == "invalid":
            raise Invalid("bad spec")
        if outcome == "transient":
            raise Transient("later")
        if outcome == "crash":
            raise KeyError("oops")
        if outcome == "dict":
            return {"children": []}
        return Response().child(resource("v1", "ConfigMap", request.name))


class RunTest(unittest.TestCase):
    def run_echo(self, outcome):
        return sous_guest.run_reconcile(Echo(), raw_request(
            {"metadata": {"name": "e"}, "spec": {"outcome": outcome}}))

    def test_errors_become_the_wit_error_variant(self):
        self.assertEqual(len(self.run_echo("ok").children), 1)
        with self.assertRaises(Err) as caught:
            self.run_echo("invalid")
        self.assertEqual(caught.exception.value, types.Error_Invalid("bad spec"))
        with self.assertRaises(Err) as caught:
            self.run_echo("transient")
        self.assertEqual(caught.exception.value, types.Error_Transient("later"))

    def test_other_exceptions_propagate_to_become_a_trap(self):
        with self.assertRaises(KeyError):
            self.run_echo("crash")
        with self.assertRaisesRegex(TypeError, "reconcile must return a Response, not dict"):
            self.run_echo("dict")

    def test_a_pipeline_step_sees_the_proposal_and_a_malformed_one_is_transient(self):
        class Step(Reconciler):
            def reconcile(self, request):
                return Response.from_desired(request.desired).status({"steps": 2})

        proposal = {"children": [{"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "c"}}], "status": {"steps": 1}}
        raw = sous_guest.run_reconcile(Step(), raw_request({"metadata": {"name": "e"}},
                                                           desired=proposal))
        self.assertEqual([json.loads(c) for c in raw.children], proposal["children"])
        self.assertEqual(json.loads(raw.status), {"steps": 2})
        with self.assertRaises(Err) as caught:
            sous_guest.run_reconcile(Step(), raw_request({"metadata": {"name": "e"}},
                                                         desired="not json"))
        self.assertIsInstance(caught.exception.value, types.Error_Transient)

    def test_finalize_defaults_to_done(self):
        raw = sous_guest.run_finalize(Echo(), raw_request({"metadata": {"name": "e"}}))
        self.assertTrue(raw.done)

    def test_export_marks_one_reconciler_class(self):
        saved = list(sous_guest._exported)
        try:
            sous_guest._exported.clear()
            with self.assertRaises(RuntimeError):
                sous_guest.exported()
            self.assertIs(export(Echo), Echo)
            self.assertIs(sous_guest.exported(), Echo)
            with self.assertRaises(TypeError):
                export(type("Other", (Reconciler,), {}))
            with self.assertRaises(TypeError):
                export(int)
        finally:
            sous_guest._exported[:] = saved


class ImageUpdaterTest(unittest.TestCase):
    """The image updater's helpers, beyond its golden cases."""

    @classmethod
    def setUpClass(cls):
        saved = list(sous_guest._exported)
        path = HERE.parent / "examples" / "image-updater" / "app.py"
        spec = importlib.util.spec_from_file_location("image_updater_app", path)
        cls.app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.app)
        sous_guest._exported[:] = saved

    def test_the_repository_drops_tag_and_digest_but_not_a_registry_port(self):
        repository = self.app.repository
        self.assertEqual(repository("nginx"), "nginx")
        self.assertEqual(repository("nginx:1.27"), "nginx")
        self.assertEqual(repository("registry:5000/team/app"), "registry:5000/team/app")
        self.assertEqual(repository("registry:5000/team/app:1.2@sha256:ab"), "registry:5000/team/app")
        self.assertEqual(repository("app@sha256:ab"), "app")


class LabelSelectorTest(unittest.TestCase):
    """Label selectors decide as Kubernetes does and refuse malformed ones."""

    def test_selectors_decide_as_kubernetes(self):
        Selector, Requirement = sous_guest.LabelSelector, sous_guest.LabelRequirement
        self.assertTrue(Selector().matches({}))
        self.assertTrue(Selector().matches(None))
        self.assertTrue(Selector({"a": "1"}).matches({"a": "1", "b": "2"}))
        self.assertFalse(Selector({"a": "1"}).matches({"a": "2"}))
        not_in = Selector(match_expressions=[Requirement("env", "NotIn", ["dev"])])
        self.assertTrue(not_in.matches({}))
        self.assertFalse(not_in.matches({"env": "dev"}))
        within = Selector(match_expressions=[Requirement("env", "In", ["dev", "qa"])])
        self.assertTrue(within.matches({"env": "qa"}))
        self.assertFalse(within.matches({}))
        exists = Selector(match_expressions=[Requirement("env", "Exists")])
        self.assertFalse(exists.matches({}))
        self.assertTrue(exists.matches({"env": ""}))
        absent = Selector(match_expressions=[Requirement("env", "DoesNotExist")])
        self.assertTrue(absent.matches({}))
        self.assertFalse(absent.matches({"env": "x"}))

    def test_a_malformed_selector_is_invalid_and_says_where(self):
        Selector, Requirement = sous_guest.LabelSelector, sous_guest.LabelRequirement
        cases = [
            (Requirement("a", "Near"), "spec.selector.matchExpressions[0].operator: unknown operator 'Near'"),
            (Requirement("a", "In"), "spec.selector.matchExpressions[0].values must not be empty with In"),
            (Requirement("a", "Exists", ["x"]), "spec.selector.matchExpressions[0].values must be empty with Exists"),
        ]
        for requirement, message in cases:
            with self.assertRaises(sous_guest.Invalid) as raised:
                Selector(match_expressions=[requirement]).check("spec.selector")
            self.assertIn(message, str(raised.exception))
        Selector(match_expressions=[Requirement("a", "NotIn", ["b"])]).check("spec.selector")

    def test_a_selector_formats_as_kubectl_reads_it(self):
        Selector, Requirement = sous_guest.LabelSelector, sous_guest.LabelRequirement
        self.assertEqual(Selector().format(), "")
        self.assertEqual(Selector({"a": "1", "b": "2"}, [
            Requirement("c", "In", ["x", "y"]), Requirement("d", "NotIn", ["z"]),
            Requirement("e", "Exists"), Requirement("f", "DoesNotExist"),
        ]).format(), "a=1,b=2,c in (x,y),d notin (z),e,!f")
        with self.assertRaises(ValueError):
            Selector(match_expressions=[Requirement("a", "Near")]).format()

    def test_a_spec_reads_a_selector_from_camel_case(self):
        @dataclass
        class Spec:
            selector: sous_guest.LabelSelector

        raw = raw_request({"metadata": {"name": "p"}, "spec": {"selector": {
            "matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}}})
        spec = Request.from_wit(raw).spec_as(Spec)
        self.assertEqual(spec.selector.match_labels, {"a": "1"})
        self.assertEqual(spec.selector.match_expressions[0].operator, "Exists")


if __name__ == "__main__":
    unittest.main()
