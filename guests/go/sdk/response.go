package sous

import (
	"encoding/json"
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
}

// NewResponse has no children, no status change and no requeue.
func NewResponse() *Response { return &Response{} }

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
	Done           bool
}

// Wire encodes the response as the host receives it.
func (r *Response) Wire() (Wire, *Error) {
	wire := Wire{RequeueAfterMs: millis(r.requeueAfter), Events: r.events}
	for _, child := range r.children {
		text, err := jsonText(child)
		if err != nil {
			return Wire{}, err
		}
		wire.Children = append(wire.Children, text)
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
