// Command hostile is a reconciler that misbehaves on request, to prove the
// host's limits. Same behaviour as the Rust hostile guest.
//
// spec.attack picks the misbehaviour:
//   - loop: spins forever (ends by fuel or deadline);
//   - memory: allocates without bound, touching every page;
//   - panic: panics (a trap after the panic message on stderr);
//   - huge: answers one child of 100 MB;
//   - garbage: answers a child that is not JSON;
//   - forbidden: answers a ClusterRoleBinding granting cluster-admin;
//   - many: answers spec.count ConfigMaps (default 10,000);
//   - transient: reports a transient error;
//   - remember: counts its calls in a global and reports the count in a
//     ConfigMap, to prove that no state survives from one call to the next;
//   - escape: tries the filesystem, the environment, the arguments and the
//     network, and reports what it got in a ConfigMap;
//
// Attacks on the fields of sous:reconciler@0.2.0, each answered beside the
// harmless ConfigMap <name>-0 so that only the attack can be refused:
//   - patch-owner: a patch to the ConfigMap spec.target (default
//     <name>-victim) that sets metadata.ownerReferences to the parent, so
//     that someone else's object would be garbage collected with it;
//   - parent-label-reserved: the parent label spec.key (default
//     sous.dev/reconciler, a key under the host's sous.dev/) = hijacked;
//   - related-undeclared: a related request for spec.apiVersion/spec.kind
//     (default v1/Secret, a kind no hostile Reconciler declares), in every
//     namespace;
//   - related-selector: a related request for v1/ConfigMap whose selector
//     spec.selector (default "app in (web") is malformed;
//   - related-unsettled: a related request for the ConfigMap <name>-<n>, n
//     one more than the highest k of the related ConfigMaps <name>-<k> this
//     call got (0 when none), so the requests never settle while <name>-0,
//     <name>-1, ... exist.
//
// Anything else: one harmless ConfigMap, to show the guest still works.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"sous"
)

// calls seen by this instance; always 1 if every call gets a fresh instance.
var calls uint64

// spins is written on every turn of the endless loop, so that it stays a loop.
var spins uint64

// hoard keeps every allocated block reachable.
var hoard [][]byte

// Hostile is the misbehaving reconciler.
type Hostile struct{}

// Reconcile misbehaves as spec.attack says.
func (Hostile) Reconcile(request *sous.Request) (*sous.Response, error) {
	name := request.Name()
	if name == "" {
		name = "hostile"
	}
	attack, _ := sous.Lookup(request.Parent(), "spec", "attack").(string)
	specString := func(field, fallback string) string {
		if value, ok := sous.Lookup(request.Parent(), "spec", field).(string); ok {
			return value
		}
		return fallback
	}
	response := sous.NewResponse()
	switch attack {
	case "loop":
		for {
			spins++
		}
	case "memory":
		for {
			block := make([]byte, 1<<20)
			for page := 0; page < len(block); page += 4096 {
				block[page] = 1
			}
			hoard = append(hoard, block)
		}
	case "panic":
		panic("hostile guest panicked on purpose")
	case "huge":
		response.Child(hugeConfigMap(name, 100<<20))
	case "garbage":
		response.Child(sous.RawJSON("this is not JSON"))
	case "forbidden":
		response.Child(clusterAdminBinding(name))
	case "many":
		count := uint64(10_000)
		if value, ok := sous.Lookup(request.Parent(), "spec", "count").(float64); ok && value >= 0 {
			count = uint64(value)
		}
		for index := range count {
			response.Child(configMap(name, index))
		}
	case "transient":
		return nil, sous.Transient("the hostile guest is resting")
	case "escape":
		response.Child(escapeReport(name))
	case "patch-owner":
		response.Child(configMap(name, 0)).Patch(owningPatch(name, specString("target", name+"-victim"), request.Parent()))
	case "parent-label-reserved":
		response.Child(configMap(name, 0)).ParentLabel(specString("key", "sous.dev/reconciler"), "hijacked")
	case "related-undeclared":
		response.Child(configMap(name, 0)).RequestRelated(sous.RelatedRequest{
			APIVersion: specString("apiVersion", "v1"), Kind: specString("kind", "Secret"), Namespace: "*",
		})
	case "related-selector":
		response.Child(configMap(name, 0)).RequestRelated(sous.RelatedRequest{
			APIVersion: "v1", Kind: "ConfigMap", Selector: specString("selector", "app in (web"),
		})
	case "related-unsettled":
		wanted := fmt.Sprintf("%s-%d", name, nextCounter(name, request.Related()))
		response.Child(configMap(name, 0)).RequestRelated(sous.RelatedRequest{APIVersion: "v1", Kind: "ConfigMap", Name: wanted})
	case "remember":
		calls++
		response.Child(configMap(name, calls))
	default:
		response.Child(configMap(name, 0))
	}
	return response, nil
}

func configMap(name string, index uint64) sous.Object {
	return sous.Object{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   sous.Object{"name": fmt.Sprintf("%s-%d", name, index)},
		"data":       sous.Object{"index": strconv.FormatUint(index, 10)},
	}
}

// hugeConfigMap builds the text once, in one buffer: the response size limit
// is what must stop it, not the memory limit.
func hugeConfigMap(name string, bytes int) sous.RawJSON {
	head := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"},"data":{"blob":"`
	tail := `"}}`
	var text strings.Builder
	text.Grow(len(head) + bytes + len(tail))
	text.WriteString(head)
	text.WriteString(strings.Repeat("x", bytes))
	text.WriteString(tail)
	return sous.RawJSON(text.String())
}

func escapeReport(name string) sous.Object {
	outcome := func(found string, err error) string {
		if err != nil {
			return "denied"
		}
		return "got " + found
	}
	file, err := os.ReadFile("/etc/passwd")
	fileOutcome := outcome(string(file), err)
	entries, err := os.ReadDir(".")
	listing := outcome(fmt.Sprintf("%d entries", len(entries)), err)
	connection, err := net.Dial("tcp", "127.0.0.1:80")
	network := outcome("a connection", err)
	if err == nil {
		connection.Close()
	}
	return sous.Object{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   sous.Object{"name": name},
		"data": sous.Object{
			"file":        fileOutcome,
			"listing":     listing,
			"network":     network,
			"environment": strconv.Itoa(len(os.Environ())),
			"arguments":   strconv.Itoa(len(os.Args)),
		},
	}
}

// owningPatch is a patch to someone else's ConfigMap that makes the parent
// its owner.
func owningPatch(name, target string, parent sous.Object) sous.Object {
	return sous.Object{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": sous.Object{
			"name": target,
			"ownerReferences": []any{sous.Object{
				"apiVersion":         parent["apiVersion"],
				"kind":               parent["kind"],
				"name":               name,
				"uid":                sous.Lookup(parent, "metadata", "uid"),
				"controller":         true,
				"blockOwnerDeletion": true,
			}},
		},
		"data": sous.Object{"owned": "by the hostile guest"},
	}
}

func clusterAdminBinding(name string) sous.Object {
	return sous.Object{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "ClusterRoleBinding",
		"metadata":   sous.Object{"name": name},
		"roleRef": sous.Object{
			"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin",
		},
		"subjects": []any{sous.Object{
			"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io",
		}},
	}
}

func init() { sous.Register(Hostile{}) }

func main() {}

// nextCounter is one more than the highest k of the ConfigMaps <name>-<k> in
// related.
func nextCounter(name string, related []sous.Object) int {
	highest := -1
	for _, object := range related {
		metadata, _ := object["metadata"].(map[string]any)
		other, _ := metadata["name"].(string)
		suffix, found := strings.CutPrefix(other, name+"-")
		if k, err := strconv.Atoi(suffix); object["kind"] == "ConfigMap" && found && err == nil && k > highest {
			highest = k
		}
	}
	return highest + 1
}
