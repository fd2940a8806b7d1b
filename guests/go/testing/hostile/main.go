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
//   - anything else: one harmless ConfigMap, to show the guest still works.
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
