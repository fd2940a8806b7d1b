package sous

import (
	"encoding/json"
	"sort"
	"time"
	"unsafe"
)

// Event is a Kubernetes Event to record on the parent.
type Event struct {
	// Warning is true for a Warning event, false for a Normal one.
	Warning bool
	// Reason is a short UpperCamelCase reason, e.g. ScaledUp.
	Reason string
	// Message is a human-readable sentence.
	Message string
}

// Normal is an informational event.
func Normal(reason, message string) Event { return Event{Reason: reason, Message: message} }

// Warning is a warning event.
func Warning(reason, message string) Event {
	return Event{Warning: true, Reason: reason, Message: message}
}

// Response is the desired state of one parent.
type Response struct {
	children     []any
	status       any
	hasStatus    bool
	requeueAfter *time.Duration
	events       []Event

	parentLabels      map[string]string // nil: leave the parent's labels alone
	parentAnnotations map[string]string // nil: leave the parent's annotations alone
	patches           []any
	relatedRequests   []RelatedRequest
}

// KeyValue is one label or annotation.
type KeyValue struct {
	Key, Value string
}

// RelatedRequest asks the host for more related objects: those of kind
// APIVersion/Kind, narrowed by the optional fields ("" means not narrowed).
// Only kinds the Reconciler declares in spec.related may be requested, and a
// request narrows what the declaration selects, never widens it.
type RelatedRequest struct {
	// APIVersion is group/version of the kind, e.g. "v1" or "apps/v1".
	APIVersion string
	// Kind is the kind, e.g. "ConfigMap".
	Kind string
	// Namespace: only objects in this namespace ("*": every namespace; "":
	// the parent's namespace, or every namespace for a cluster-scoped parent).
	// Ignored for cluster-scoped kinds.
	Namespace string
	// Name: only the object of this name ("": any name).
	Name string
	// Selector: only objects whose labels match this label selector, in the
	// syntax of `kubectl -l`, e.g. "app=web,tier in (front,back)" ("": any
	// labels).
	Selector string
}

// NewResponse has no children, no status change and no requeue, and leaves
// the parent's labels and annotations alone.
func NewResponse() *Response { return &Response{} }

// NewResponseFrom starts the answer of a pipeline step from what earlier
// steps proposed: their children and their status (when they proposed one).
// A nil desired (no earlier step) gives [NewResponse]. Change the children
// in place (they are the decoded objects of desired) or add more with Child.
func NewResponseFrom(desired *Desired) *Response {
	response := NewResponse()
	if desired == nil {
		return response
	}
	for _, child := range desired.Children {
		response.Child(child)
	}
	if desired.Status != nil {
		response.Status(desired.Status)
	}
	return response
}

// Child adds a desired child: an [Object], an [*ObjectBuilder], a [RawJSON]
// or anything that encodes to a JSON object. Every child to keep must be added on every
// call: owned children missing from the response are deleted.
func (r *Response) Child(child any) *Response {
	r.children = append(r.children, child)
	return r
}

// Status sets the parent's .status (the host adds its own conditions).
func (r *Response) Status(status any) *Response {
	r.status, r.hasStatus = status, true
	return r
}

// RequeueAfter asks to be called again after delay even if nothing changes.
func (r *Response) RequeueAfter(delay time.Duration) *Response {
	r.requeueAfter = &delay
	return r
}

// Event records an event on the parent.
func (r *Response) Event(event Event) *Response {
	r.events = append(r.events, event)
	return r
}

// ParentLabel sets one label on the parent. See [Response.ParentLabels].
func (r *Response) ParentLabel(key, value string) *Response {
	return r.ParentLabels(map[string]string{key: value})
}

// ParentLabels sets labels on the parent (added to those of earlier
// ParentLabel and ParentLabels calls on this response).
//
// The labels given on one response are the complete set this reconciler sets
// on the parent: they are server-side applied with its field manager, so a
// label it stops returning is removed and labels others set are never
// touched. A response that calls neither ParentLabel nor ParentLabels leaves
// the parent's labels alone; ParentLabels(nil) answers the empty set
// (removing every label this reconciler set before). Keys under sous.dev/
// belong to the host and are refused.
func (r *Response) ParentLabels(labels map[string]string) *Response {
	r.parentLabels = merge(r.parentLabels, labels)
	return r
}

// ParentAnnotation sets one annotation on the parent. See
// [Response.ParentAnnotations].
func (r *Response) ParentAnnotation(key, value string) *Response {
	return r.ParentAnnotations(map[string]string{key: value})
}

// ParentAnnotations sets annotations on the parent, with the rules of
// [Response.ParentLabels]: the annotations given on one response are the
// complete set this reconciler sets; a response that sets none leaves the
// parent's annotations alone; ParentAnnotations(nil) answers the empty set.
func (r *Response) ParentAnnotations(annotations map[string]string) *Response {
	r.parentAnnotations = merge(r.parentAnnotations, annotations)
	return r
}

func merge(into, entries map[string]string) map[string]string {
	if into == nil {
		into = make(map[string]string, len(entries))
	}
	for key, value := range entries {
		into[key] = value
	}
	return into
}

// Patch contributes fields to an object the reconciler does not own, e.g. a
// container image in someone else's Deployment: a partial object (apiVersion,
// kind, metadata.name, the fields to set) as an [Object], an
// [*ObjectBuilder], a [RawJSON] or anything that encodes to a JSON object.
// The host server-side applies it with the reconciler's field manager, with
// no owner reference and no host labels. A patch never creates an object (a
// patch to a missing object is skipped with a Warning event) and never
// deletes one; when a patch is no longer returned, the host stops applying
// it and the fields keep their last values. Like children, return every
// patch on every call.
func (r *Response) Patch(patch any) *Response {
	r.patches = append(r.patches, patch)
	return r
}

// RequestRelated asks for more related objects. When the requests of a
// response differ from those of the previous call in this pass, the host
// calls Reconcile again with the objects they select added to
// [Request.Related] (at most three calls per pass): return the same requests
// on every call that needs the objects.
func (r *Response) RequestRelated(request RelatedRequest) *Response {
	r.relatedRequests = append(r.relatedRequests, request)
	return r
}

// FinalizeResponse is the answer to Finalize.
type FinalizeResponse struct {
	done         bool
	requeueAfter *time.Duration
	events       []Event
}

// Done says cleanup is complete: the parent may go.
func Done() *FinalizeResponse { return &FinalizeResponse{done: true} }

// NotYet says cleanup is still under way: call again after delay.
func NotYet(delay time.Duration) *FinalizeResponse {
	return &FinalizeResponse{requeueAfter: &delay}
}

// Event records an event on the parent.
func (f *FinalizeResponse) Event(event Event) *FinalizeResponse {
	f.events = append(f.events, event)
	return f
}

// Wire is a response as the host receives it: JSON texts and milliseconds.
type Wire struct {
	Children       []string
	Status         *string
	RequeueAfterMs *uint64
	Events         []Event
	// ParentLabels and ParentAnnotations are sorted by key; nil: none (leave
	// the parent's alone), non-nil (even empty): the complete set.
	ParentLabels      []KeyValue
	ParentAnnotations []KeyValue
	Patches           []string
	RelatedRequests   []RelatedRequest
	// Done is finalize's.
	Done bool
}

// Wire encodes the response as the host receives it.
func (r *Response) Wire() (Wire, *Error) {
	wire := Wire{
		RequeueAfterMs:    millis(r.requeueAfter),
		Events:            r.events,
		ParentLabels:      sorted(r.parentLabels),
		ParentAnnotations: sorted(r.parentAnnotations),
		RelatedRequests:   r.relatedRequests,
	}
	var err *Error
	if wire.Children, err = jsonTexts(r.children); err != nil {
		return Wire{}, err
	}
	if wire.Patches, err = jsonTexts(r.patches); err != nil {
		return Wire{}, err
	}
	if r.hasStatus {
		text, err := jsonText(r.status)
		if err != nil {
			return Wire{}, err
		}
		wire.Status = &text
	}
	return wire, nil
}

// Wire encodes the finalize response as the host receives it.
func (f *FinalizeResponse) Wire() Wire {
	return Wire{Done: f.done, RequeueAfterMs: millis(f.requeueAfter), Events: f.events}
}

func jsonTexts(values []any) ([]string, *Error) {
	var texts []string
	for _, value := range values {
		text, err := jsonText(value)
		if err != nil {
			return nil, err
		}
		texts = append(texts, text)
	}
	return texts, nil
}

// sorted is entries sorted by key: nil for nil, non-nil otherwise.
func sorted(entries map[string]string) []KeyValue {
	if entries == nil {
		return nil
	}
	list := make([]KeyValue, 0, len(entries))
	for key, value := range entries {
		list = append(list, KeyValue{key, value})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
	return list
}

// RawJSON is JSON text handed to the host verbatim, unchecked (the host
// checks it): for a child or status already serialized.
type RawJSON string

func jsonText(value any) (string, *Error) {
	switch value := value.(type) {
	case RawJSON:
		return string(value), nil
	case *ObjectBuilder:
		return jsonText(value.Build())
	}
	text, err := json.Marshal(value)
	if err != nil {
		return "", Transient("the reconciler answered a value that is not JSON: %v", err)
	}
	if len(text) == 0 {
		return "", nil
	}
	// The bytes are never written again: share them instead of copying.
	return unsafe.String(&text[0], len(text)), nil
}

func millis(delay *time.Duration) *uint64 {
	if delay == nil {
		return nil
	}
	ms := uint64(0)
	if *delay > 0 {
		ms = uint64(delay.Milliseconds())
	}
	return &ms
}
