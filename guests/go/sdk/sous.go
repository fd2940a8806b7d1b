// Package sous writes Sous reconcilers in Go.
//
// A reconciler is one function from the observed state of a parent to its
// desired children and status. Implement [Reconciler] and register it from an
// init function of package main; build-component turns the package into a
// WebAssembly component:
//
//	package main
//
//	import "sous"
//
//	type Hello struct{}
//
//	func (Hello) Reconcile(request *sous.Request) (*sous.Response, error) {
//		var greeting string
//		if err := request.SpecField("greeting", &greeting); err != nil {
//			return nil, err
//		}
//		configMap := sous.NewObject("v1", "ConfigMap", request.Name()).
//			Field("data", map[string]any{"greeting": greeting})
//		return sous.NewResponse().Child(configMap), nil
//	}
//
//	func init() { sous.Register(Hello{}) }
//
//	func main() {}
//
// The contract itself (what the host does with each field) is documented in
// wit/reconciler.wit.
package sous

// Reconciler computes the desired state of one parent.
//
// Return an error made by [Invalid] when the parent itself is wrong (the host
// reports it and waits for the parent to change) and one made by [Transient]
// when something temporary went wrong (the host retries with backoff). Any
// other error is reported as transient. A panic ends the call as a trap.
type Reconciler interface {
	Reconcile(request *Request) (*Response, error)
}

// Finalizer is implemented by a Reconciler that has cleanup to do while its
// parent is being deleted (only called when the Reconciler object asks for a
// finalizer). A Reconciler without it answers done at once.
type Finalizer interface {
	Finalize(request *Request) (*FinalizeResponse, error)
}

var registered Reconciler

// Register makes r the component's reconciler. Call it once, from an init
// function of package main (init functions run when the component starts;
// main is never called).
func Register(r Reconciler) {
	registered = r
}

// RunReconcile runs r on a request as the component export does, for tests
// and native benchmarks: errors that are not a [*Error] become transient.
func RunReconcile(r Reconciler, request *Request) (*Response, *Error) {
	response, err := r.Reconcile(request)
	if err != nil {
		return nil, asError(err)
	}
	if response == nil {
		response = NewResponse()
	}
	return response, nil
}

// RunFinalize runs r's finalizer (or answers done when r has none).
func RunFinalize(r Reconciler, request *Request) (*FinalizeResponse, *Error) {
	finalizer, ok := r.(Finalizer)
	if !ok {
		return Done(), nil
	}
	response, err := finalizer.Finalize(request)
	if err != nil {
		return nil, asError(err)
	}
	if response == nil {
		response = Done()
	}
	return response, nil
}
