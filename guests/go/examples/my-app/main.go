// Command my-app is the reconciler `MyApp {replicas, image, port}` -> a
// Deployment and a Service.
//
// The status reports the Deployment's ready replicas and a phase: Pending
// until the Deployment exists, Progressing until every replica is ready, then
// Ready.
package main

import "sous"

// MyAppSpec is the parent's spec.
type MyAppSpec struct {
	Replicas uint32 `json:"replicas"`
	Image    string `json:"image"`
	Port     uint16 `json:"port"`
}

// MyApp is the reconciler.
type MyApp struct{}

// Reconcile computes the Deployment, the Service and the status.
func (MyApp) Reconcile(request *sous.Request) (*sous.Response, error) {
	var spec MyAppSpec
	if err := request.Spec(&spec); err != nil {
		return nil, err
	}
	if spec.Image == "" {
		return nil, sous.Invalid("spec.image must not be empty")
	}
	name := request.Name()
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "sous"}
	selector := map[string]string{"app.kubernetes.io/name": name}

	deployment := sous.NewObject("apps/v1", "Deployment", name).
		Labels(labels).
		Spec(map[string]any{
			"replicas": spec.Replicas,
			"selector": map[string]any{"matchLabels": selector},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"containers": []any{map[string]any{
						"name":  "app",
						"image": spec.Image,
						"ports": []any{map[string]any{"name": "http", "containerPort": spec.Port}},
					}},
				},
			},
		})
	service := sous.NewObject("v1", "Service", name).
		Labels(labels).
		Spec(map[string]any{
			"selector": selector,
			"ports":    []any{map[string]any{"name": "http", "port": spec.Port, "targetPort": "http"}},
		})

	rollout := sous.RolloutOf(request.Child("Deployment", name), uint64(spec.Replicas))
	return sous.NewResponse().Child(deployment).Child(service).Status(rollout), nil
}

func init() { sous.Register(MyApp{}) }

func main() {}
