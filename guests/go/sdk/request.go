package sous

import (
	"encoding/json"
	"fmt"
)

// Object is one Kubernetes object as decoded JSON.
type Object = map[string]any

// Request is what the host observed for one parent.
type Request struct {
	reconciler string
	parent     Object
	children   []Object
	related    []Object
	config     json.RawMessage
	desired    *Desired
}

// Desired is what earlier steps of a pipeline proposed for the parent: the
// complete desired state so far. A step answers the complete desired state
// too, usually this one changed (see [NewResponseFrom]).
type Desired struct {
	// Children are the desired children proposed so far.
	Children []Object `json:"children"`
	// Status is the proposed .status of the parent, nil when none was
	// proposed.
	Status Object `json:"status"`
}

// ParseDesired parses the JSON text `{"children": [...], "status": {...}}` of
// request.desired; text that does not fit is a transient error (the host
// sent it).
func ParseDesired(text string) (*Desired, *Error) {
	var desired Desired
	if err := json.Unmarshal([]byte(text), &desired); err != nil {
		return nil, Transient("the host sent a desired state that is not a JSON object {children, status}: %v", err)
	}
	return &desired, nil
}

// Child is the proposed child of kind named name, or nil.
func (d *Desired) Child(kind, name string) Object {
	if d == nil {
		return nil
	}
	return findObject(d.Children, kind, name)
}

// NewRequest builds a request from decoded objects, as the host would send
// it. For tests.
func NewRequest(reconciler string, parent Object, children, related []Object) *Request {
	return &Request{reconciler: reconciler, parent: parent, children: children, related: related}
}

// WithDesired sets what earlier pipeline steps proposed (nil: none, as when
// one module serves the reconciler alone) and returns r. For tests.
func (r *Request) WithDesired(desired *Desired) *Request {
	r.desired = desired
	return r
}

// ParseRequest builds a request from the JSON texts the host sends; text that
// is not a JSON object is a transient error.
func ParseRequest(reconciler, parent string, children, related []string, config *string) (*Request, *Error) {
	parse := func(what, text string) (Object, *Error) {
		var object Object
		if err := json.Unmarshal([]byte(text), &object); err != nil {
			return nil, Transient("the host sent %s that is not JSON: %v", what, err)
		}
		return object, nil
	}
	request := &Request{reconciler: reconciler}
	var err *Error
	if request.parent, err = parse("a parent", parent); err != nil {
		return nil, err
	}
	for _, text := range children {
		child, err := parse("a child", text)
		if err != nil {
			return nil, err
		}
		request.children = append(request.children, child)
	}
	for _, text := range related {
		object, err := parse("a related object", text)
		if err != nil {
			return nil, err
		}
		request.related = append(request.related, object)
	}
	if config != nil {
		if !json.Valid([]byte(*config)) {
			return nil, Transient("the host sent a config that is not JSON")
		}
		request.config = json.RawMessage(*config)
	}
	return request, nil
}

// Reconciler is the name of the Reconciler object this call runs for.
func (r *Request) Reconciler() string { return r.reconciler }

// Parent is the parent object as observed.
func (r *Request) Parent() Object { return r.parent }

// Name is the parent's metadata.name.
func (r *Request) Name() string {
	name, _ := Lookup(r.parent, "metadata", "name").(string)
	return name
}

// Namespace is the parent's metadata.namespace ("" for a cluster-scoped parent).
func (r *Request) Namespace() string {
	namespace, _ := Lookup(r.parent, "metadata", "namespace").(string)
	return namespace
}

// Generation is the parent's metadata.generation, if it has one.
func (r *Request) Generation() (int64, bool) {
	generation, ok := Lookup(r.parent, "metadata", "generation").(float64)
	return int64(generation), ok
}

// Spec decodes the parent's .spec into out (a pointer to a struct with json
// tags); a spec that does not fit is an Invalid error naming the problem.
func (r *Request) Spec(out any) error {
	if err := decode(r.parent["spec"], out); err != nil {
		return Invalid("spec: %v", err)
	}
	return nil
}

// SpecField decodes one field of .spec into out; a missing or mistyped field
// is an Invalid error.
func (r *Request) SpecField(field string, out any) error {
	value := Lookup(r.parent, "spec", field)
	if value == nil {
		return Invalid("spec.%s: missing", field)
	}
	if err := decode(value, out); err != nil {
		return Invalid("spec.%s: %v", field, err)
	}
	return nil
}

// Children are the children the parent owns, as observed.
func (r *Request) Children() []Object { return r.children }

// Child is the observed child of kind named name, or nil.
func (r *Request) Child(kind, name string) Object { return findObject(r.children, kind, name) }

func findObject(objects []Object, kind, name string) Object {
	for _, object := range objects {
		if object["kind"] == kind && Lookup(object, "metadata", "name") == name {
			return object
		}
	}
	return nil
}

// Desired is what earlier steps of a pipeline proposed for this parent (the
// complete desired state so far), or nil when this module serves the
// reconciler alone. Start the answer from it with [NewResponseFrom].
func (r *Request) Desired() *Desired { return r.desired }

// Related are the related objects, read-only.
func (r *Request) Related() []Object { return r.related }

// RelatedOfKind are the related objects of kind.
func (r *Request) RelatedOfKind(kind string) []Object {
	var found []Object
	for _, object := range r.related {
		if object["kind"] == kind {
			found = append(found, object)
		}
	}
	return found
}

// Config decodes the Reconciler's spec.config into out and reports whether
// one was given; a config that does not fit is an Invalid error.
func (r *Request) Config(out any) (bool, error) {
	if r.config == nil {
		return false, nil
	}
	if err := json.Unmarshal(r.config, out); err != nil {
		return true, Invalid("config: %v", err)
	}
	return true, nil
}

// Lookup walks nested JSON objects along path and returns the value found,
// or nil when a step is missing or not an object.
func Lookup(value any, path ...string) any {
	for _, key := range path {
		object, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		value = object[key]
	}
	return value
}

func decode(value any, out any) error {
	text, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return json.Unmarshal(text, out)
}
