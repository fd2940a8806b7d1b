package sous

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func request(t *testing.T) *Request {
	t.Helper()
	config := `{"level": 2}`
	r, err := ParseRequest("r",
		`{"metadata": {"name": "p", "namespace": "ns", "generation": 3}, "spec": {"size": 3, "name": "x"}}`,
		[]string{`{"kind": "Service", "metadata": {"name": "p"}}`},
		[]string{`{"kind": "Node", "metadata": {"name": "n"}}`},
		&config)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAccessorsReadTheParentAndTheObservedObjects(t *testing.T) {
	r := request(t)
	generation, ok := r.Generation()
	if r.Reconciler() != "r" || r.Name() != "p" || r.Namespace() != "ns" || generation != 3 || !ok {
		t.Fatalf("got %q %q %q %d %v", r.Reconciler(), r.Name(), r.Namespace(), generation, ok)
	}
	var size uint32
	if err := r.SpecField("size", &size); err != nil || size != 3 {
		t.Fatalf("size %d, %v", size, err)
	}
	var spec struct {
		Size int    `json:"size"`
		Name string `json:"name"`
	}
	if err := r.Spec(&spec); err != nil || spec.Size != 3 || spec.Name != "x" {
		t.Fatalf("spec %+v, %v", spec, err)
	}
	if r.Child("Service", "p") == nil || r.Child("Service", "q") != nil {
		t.Fatal("Child finds the observed Service p and nothing else")
	}
	if len(r.RelatedOfKind("Node")) != 1 || len(r.RelatedOfKind("Pod")) != 0 {
		t.Fatal("RelatedOfKind filters by kind")
	}
	var config struct{ Level int }
	if given, err := r.Config(&config); !given || err != nil || config.Level != 2 {
		t.Fatalf("config %+v, %v, %v", config, given, err)
	}
}

func TestASpecThatDoesNotFitIsInvalidAndSaysWhichField(t *testing.T) {
	var name string
	err := request(t).SpecField("size", &name)
	var sousError *Error
	if !errors.As(err, &sousError) || sousError.Transient ||
		!strings.HasPrefix(sousError.Message, "spec.size: json: cannot unmarshal number") {
		t.Fatalf("got %v", err)
	}
	if err := request(t).SpecField("missing", &name); err == nil || err.Error() != "invalid: spec.missing: missing" {
		t.Fatalf("got %v", err)
	}
}

func TestARequestThatIsNotJSONIsATransientError(t *testing.T) {
	_, err := ParseRequest("r", "{", nil, nil, nil)
	if err == nil || !err.Transient || !strings.Contains(err.Message, "a parent that is not JSON") {
		t.Fatalf("got %v", err)
	}
}

func TestObjectBuilderBuildsACompleteObject(t *testing.T) {
	built := NewObject("v1", "Service", "web").
		Namespace("shop").
		Labels(map[string]string{"app": "web", "tier": "front"}).
		Annotation("note", "hi").
		Spec(Object{"ports": []any{Object{"port": 80}}}).
		Build()
	want := Object{
		"apiVersion": "v1", "kind": "Service",
		"metadata": Object{"name": "web", "namespace": "shop",
			"labels":      Object{"app": "web", "tier": "front"},
			"annotations": Object{"note": "hi"}},
		"spec": Object{"ports": []any{Object{"port": 80}}},
	}
	if !reflect.DeepEqual(built, want) {
		t.Fatalf("got %v", built)
	}
}

func TestAResponseBecomesJSONTextForTheHost(t *testing.T) {
	wire, err := NewResponse().
		Child(Object{"kind": "Service"}).
		Child(NewObject("v1", "ConfigMap", "c")).
		Child(RawJSON(`{"kind":"Raw"}`)).
		Status(Object{"phase": "Ready"}).
		RequeueAfter(30 * time.Second).
		Event(Warning("Slow", "took long")).
		Wire()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"kind":"Service"}`, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`, `{"kind":"Raw"}`}
	if !reflect.DeepEqual(wire.Children, want) || *wire.Status != `{"phase":"Ready"}` ||
		*wire.RequeueAfterMs != 30_000 || !wire.Events[0].Warning {
		t.Fatalf("got %+v", wire)
	}
	wire, _ = NewResponse().Wire()
	if wire.Status != nil || wire.RequeueAfterMs != nil || len(wire.Children) != 0 {
		t.Fatalf("an empty response changes nothing: %+v", wire)
	}
}

func TestAValueThatIsNotJSONIsATransientError(t *testing.T) {
	_, err := NewResponse().Child(Object{"f": func() {}}).Wire()
	if err == nil || !err.Transient {
		t.Fatalf("got %v", err)
	}
}

func TestFinalizeAnswersDoneOrNotYet(t *testing.T) {
	if !Done().Wire().Done {
		t.Fatal("Done is done")
	}
	later := NotYet(1500 * time.Millisecond).Wire()
	if later.Done || *later.RequeueAfterMs != 1500 {
		t.Fatalf("got %+v", later)
	}
}

func TestRolloutPhasesFollowTheReadyReplicas(t *testing.T) {
	cases := []struct {
		observed Object
		want     Rollout
	}{
		{nil, Rollout{0, "Pending"}},
		{Object{"status": Object{"readyReplicas": 1.0}}, Rollout{1, "Progressing"}},
		{Object{"status": Object{}}, Rollout{0, "Progressing"}},
		{Object{"status": Object{"readyReplicas": 3.0}}, Rollout{3, "Ready"}},
	}
	for _, c := range cases {
		if got := RolloutOf(c.observed, 3); got != c.want {
			t.Errorf("RolloutOf(%v) = %+v, want %+v", c.observed, got, c.want)
		}
	}
}

type failing struct{ err error }

func (f failing) Reconcile(*Request) (*Response, error) { return nil, f.err }

func TestErrorsKeepTheirKindAndOthersAreTransient(t *testing.T) {
	_, err := RunReconcile(failing{Invalid("bad %s", "size")}, request(t))
	if err.Transient || err.Message != "bad size" {
		t.Fatalf("got %v", err)
	}
	_, err = RunReconcile(failing{fmt.Errorf("wrapped: %w", Invalid("deep"))}, request(t))
	if err.Transient || err.Message != "deep" {
		t.Fatalf("a wrapped *Error keeps its kind: %v", err)
	}
	_, err = RunReconcile(failing{errors.New("disk on fire")}, request(t))
	if !err.Transient || err.Message != "disk on fire" {
		t.Fatalf("got %v", err)
	}
	done, err := RunFinalize(failing{}, request(t))
	if err != nil || !done.Wire().Done {
		t.Fatal("a reconciler without Finalize answers done")
	}
}

func TestDesiredIsWhatEarlierStepsProposedAndNilWhenAlone(t *testing.T) {
	if request(t).Desired() != nil || request(t).Desired().Child("Service", "p") != nil {
		t.Fatal("no desired when one module serves the reconciler alone")
	}
	desired, err := ParseDesired(`{"children": [{"kind": "Service", "metadata": {"name": "p"}}], "status": {"phase": "Ready"}}`)
	if err != nil {
		t.Fatal(err)
	}
	r := request(t).WithDesired(desired)
	if r.Desired().Child("Service", "p") == nil || r.Desired().Child("Service", "q") != nil ||
		r.Desired().Status["phase"] != "Ready" {
		t.Fatalf("got %+v", r.Desired())
	}
	wire, _ := NewResponseFrom(r.Desired()).Child(Object{"kind": "ConfigMap"}).Wire()
	if !reflect.DeepEqual(wire.Children, []string{`{"kind":"Service","metadata":{"name":"p"}}`, `{"kind":"ConfigMap"}`}) ||
		*wire.Status != `{"phase":"Ready"}` {
		t.Fatalf("NewResponseFrom starts from the proposal: %+v", wire)
	}
	onlyChildren, _ := ParseDesired(`{"children": []}`)
	if wire, _ := NewResponseFrom(onlyChildren).Wire(); wire.Status != nil || len(wire.Children) != 0 {
		t.Fatalf("no proposed status, no status change: %+v", wire)
	}
	if _, err := ParseDesired(`{"children": {}}`); err == nil || !err.Transient {
		t.Fatalf("a desired state that does not fit is transient: %v", err)
	}
}

func TestParentLabelsAreNoneUntilSetAndThenTheCompleteSet(t *testing.T) {
	wire, _ := NewResponse().Wire()
	if wire.ParentLabels != nil || wire.ParentAnnotations != nil {
		t.Fatal("a response that sets none leaves the parent's labels and annotations alone")
	}
	wire, _ = NewResponse().ParentLabels(nil).ParentAnnotations(map[string]string{}).Wire()
	if wire.ParentLabels == nil || len(wire.ParentLabels) != 0 || wire.ParentAnnotations == nil {
		t.Fatalf("ParentLabels(nil) answers the empty set: %#v", wire)
	}
	wire, _ = NewResponse().
		ParentLabel("tier", "front").
		ParentLabels(map[string]string{"app": "web", "tier": "back"}).
		ParentAnnotation("note", "hi").
		Wire()
	if !reflect.DeepEqual(wire.ParentLabels, []KeyValue{{"app", "web"}, {"tier", "back"}}) ||
		!reflect.DeepEqual(wire.ParentAnnotations, []KeyValue{{"note", "hi"}}) {
		t.Fatalf("got %#v", wire)
	}
}

func TestPatchesAndRelatedRequestsReachTheWire(t *testing.T) {
	wire, err := NewResponse().
		Patch(NewObject("apps/v1", "Deployment", "theirs").Spec(Object{"replicas": 2})).
		Patch(RawJSON(`{"kind":"Raw"}`)).
		RequestRelated(RelatedRequest{APIVersion: "v1", Kind: "Secret", Name: "creds"}).
		Wire()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(wire.Patches, []string{
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"theirs"},"spec":{"replicas":2}}`,
		`{"kind":"Raw"}`}) ||
		!reflect.DeepEqual(wire.RelatedRequests, []RelatedRequest{{APIVersion: "v1", Kind: "Secret", Name: "creds"}}) {
		t.Fatalf("got %#v", wire)
	}
	if _, err := NewResponse().Patch(Object{"f": func() {}}).Wire(); err == nil || !err.Transient {
		t.Fatalf("a patch that is not JSON is transient: %v", err)
	}
}
