// Command every-field is a testing reconciler for the fields of
// sous:reconciler@0.2.0: its golden cases prove, end to end through the
// host, that the Go SDK's hand-written canonical ABI lowers and lifts each of
// them.
//
// It answers what earlier pipeline steps proposed (request.desired: their
// children and status), plus, from the parent's spec:
//   - spec.labels, spec.annotations (objects): the parent's labels and
//     annotations, absent to leave them alone ({} is the empty set);
//   - spec.patches (list of objects): the patches, verbatim;
//   - spec.relatedRequests (list of {apiVersion, kind, namespace, name,
//     selector}): the related requests.
//
// A ConfigMap <name>-seen reports what the request carried: whether desired
// was given and how many related objects came.
package main

import (
	"strconv"

	"sous"
)

// Spec is the parent's spec.
type Spec struct {
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	Patches         []sous.Object     `json:"patches"`
	RelatedRequests []struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Namespace  string `json:"namespace"`
		Name       string `json:"name"`
		Selector   string `json:"selector"`
	} `json:"relatedRequests"`
}

// EveryField is the reconciler.
type EveryField struct{}

// Reconcile echoes the proposal and sets every new field from the spec.
func (EveryField) Reconcile(request *sous.Request) (*sous.Response, error) {
	var spec Spec
	if err := request.Spec(&spec); err != nil {
		return nil, err
	}
	desired := request.Desired()
	response := sous.NewResponseFrom(desired).
		Child(sous.NewObject("v1", "ConfigMap", request.Name()+"-seen").Field("data", map[string]string{
			"desired": strconv.FormatBool(desired != nil),
			"related": strconv.Itoa(len(request.Related())),
		}))
	if spec.Labels != nil {
		response.ParentLabels(spec.Labels)
	}
	if spec.Annotations != nil {
		response.ParentAnnotations(spec.Annotations)
	}
	for _, patch := range spec.Patches {
		response.Patch(patch)
	}
	for _, related := range spec.RelatedRequests {
		response.RequestRelated(sous.RelatedRequest{
			APIVersion: related.APIVersion,
			Kind:       related.Kind,
			Namespace:  related.Namespace,
			Name:       related.Name,
			Selector:   related.Selector,
		})
	}
	return response, nil
}

func init() { sous.Register(EveryField{}) }

func main() {}
