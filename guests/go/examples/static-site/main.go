// Command static-site is the reconciler `StaticSite {replicas, pages}` -> a
// ConfigMap holding the pages, an nginx Deployment serving them and a Service.
//
// The pod template carries a checksum of the pages, so that changing a page
// rolls the Deployment. While a rollout is under way (fewer ready replicas
// than wanted, or pods still on other pages) the phase is Progressing and the
// reconciler asks to be called again in 10 s; a change of pages is recorded as
// a PagesChanged event. The Reconciler's spec.config may set the image:
// {"image": "nginx:1.27-alpine"} is the default.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"time"

	"sous"
)

// checksumAnnotation on the pod template holds the checksum of the pages.
const checksumAnnotation = "static-site.sous.dev/pages-sha256"

// pageName is what a ConfigMap key (and so a page name) may be.
var pageName = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// StaticSiteSpec is the parent's spec.
type StaticSiteSpec struct {
	// Replicas of nginx; 1 when left out.
	Replicas *int32 `json:"replicas"`
	// Pages by file name; index.html is required.
	Pages map[string]string `json:"pages"`
}

// Config is the Reconciler's spec.config.
type Config struct {
	Image string `json:"image"`
}

// StaticSite is the reconciler.
type StaticSite struct{}

// Reconcile computes the ConfigMap, the Deployment, the Service and the status.
func (StaticSite) Reconcile(request *sous.Request) (*sous.Response, error) {
	var spec StaticSiteSpec
	if err := request.Spec(&spec); err != nil {
		return nil, err
	}
	replicas := int32(1)
	if spec.Replicas != nil {
		replicas = *spec.Replicas
	}
	if replicas < 0 {
		return nil, sous.Invalid("spec.replicas must not be negative, got %d", replicas)
	}
	if _, ok := spec.Pages["index.html"]; !ok {
		return nil, sous.Invalid("spec.pages must contain index.html")
	}
	names := make([]string, 0, len(spec.Pages))
	for name := range spec.Pages {
		if !pageName.MatchString(name) {
			return nil, sous.Invalid("spec.pages: %q is not a valid file name (letters, digits, '-', '_', '.')", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)

	config := Config{Image: "nginx:1.27-alpine"}
	if _, err := request.Config(&config); err != nil {
		return nil, err
	}

	name := request.Name()
	checksum := pagesChecksum(names, spec.Pages)
	labels := map[string]string{"app.kubernetes.io/name": "static-site", "app.kubernetes.io/instance": name,
		"app.kubernetes.io/managed-by": "sous"}
	selector := map[string]string{"app.kubernetes.io/name": "static-site", "app.kubernetes.io/instance": name}

	pages := sous.NewObject("v1", "ConfigMap", name+"-pages").Labels(labels).Field("data", spec.Pages)
	deployment := sous.NewObject("apps/v1", "Deployment", name).
		Labels(labels).
		Spec(sous.Object{
			"replicas": replicas,
			"selector": sous.Object{"matchLabels": selector},
			"template": sous.Object{
				"metadata": sous.Object{
					"labels":      labels,
					"annotations": sous.Object{checksumAnnotation: checksum},
				},
				"spec": sous.Object{
					"containers": []any{sous.Object{
						"name":         "nginx",
						"image":        config.Image,
						"ports":        []any{sous.Object{"name": "http", "containerPort": 80}},
						"volumeMounts": []any{sous.Object{"name": "pages", "mountPath": "/usr/share/nginx/html", "readOnly": true}},
					}},
					"volumes": []any{sous.Object{"name": "pages", "configMap": sous.Object{"name": name + "-pages"}}},
				},
			},
		})
	service := sous.NewObject("v1", "Service", name).
		Labels(labels).
		Spec(sous.Object{
			"selector": selector,
			"ports":    []any{sous.Object{"name": "http", "port": 80, "targetPort": "http"}},
		})

	response := sous.NewResponse().Child(pages).Child(deployment).Child(service)

	observed := request.Child("Deployment", name)
	rollout := sous.RolloutOf(observed, uint64(replicas))
	if observed != nil {
		served, _ := sous.Lookup(observed, "spec", "template", "metadata", "annotations", checksumAnnotation).(string)
		if served != checksum {
			rollout.Phase = "Progressing"
			response.Event(sous.Normal("PagesChanged",
				"pages changed from "+short(served)+" to "+short(checksum)+", rolling out"))
		}
	}
	if rollout.Phase == "Progressing" {
		response.RequeueAfter(10 * time.Second)
	}
	sous.Debugf("%s: %d pages, checksum %s, %s", name, len(names), short(checksum), rollout.Phase)
	return response.Status(sous.Object{
		"phase":         rollout.Phase,
		"readyReplicas": rollout.Ready,
		"pages":         names,
		"checksum":      short(checksum),
	}), nil
}

// pagesChecksum is the SHA-256 of the pages, names in order, each name and
// content followed by a NUL.
func pagesChecksum(names []string, pages map[string]string) string {
	hash := sha256.New()
	for _, name := range names {
		hash.Write([]byte(name))
		hash.Write([]byte{0})
		hash.Write([]byte(pages[name]))
		hash.Write([]byte{0})
	}
	return hex.EncodeToString(hash.Sum(nil))
}

func short(checksum string) string {
	if checksum == "" {
		return "none"
	}
	return checksum[:min(12, len(checksum))]
}

func init() { sous.Register(StaticSite{}) }

func main() {}
