/*
 * Exercises the parts of the SDK that my-app does not, for the golden cases
 * under tests/: typed spec fields and their errors, related objects, the
 * config, labels and annotations, events, requeue and transient errors, and
 * what 0.2.0 added: the desired state of earlier pipeline steps, parent labels
 * and annotations, patches and related requests.
 *
 * spec: {count: int (required, 1..5), greeting: string (default "hello"),
 *        loud: bool (default false), fail: "transient" (optional),
 *        parent: "set" | "clear" | "leave" (default: parent labels untouched),
 *        parentLabels: {key: value, ...} (optional, with parent: set),
 *        patch: string (optional), ask: string (optional)}
 * -> the children and status earlier steps proposed, if any, then `count`
 *    ConfigMaps NAME-0.. with the greeting, the number of related Nodes and
 *    the config's `level`; a status (with `proposed`, the number of proposed
 *    children, when there was a desired state); a Normal event; requeue 30 s.
 *    parent: set -> the parent labels `parentLabels` + `example.com/config-maps:
 *    COUNT` and the annotation `example.com/greeting: GREETING`; clear -> both
 *    sets empty; leave -> set, then back to leaving them alone.
 *    patch: NAME -> a patch of ConfigMap NAME in namespace `shared` with
 *    `data.greeting`. ask: SELECTOR -> related requests for the Nodes matching
 *    SELECTOR and the ConfigMap `settings` in every namespace.
 */
#include <stdio.h>
#include <string.h>

#include "sous.h"

sous_error *sous_reconcile(const sous_request *request, sous_response *response) {
    int64_t count;
    const char *greeting = "hello", *fail = "";
    bool loud = false;
    sous_error *error;
    if ((error = sous_spec_int(request, "count", 1, 5, &count)) ||
        (error = sous_spec_string_or(request, "greeting", &greeting)) ||
        (error = sous_spec_bool_or(request, "loud", &loud)) ||
        (error = sous_spec_string_or(request, "fail", &fail)))
        return error;
    if (strcmp(fail, "transient") == 0) return sous_transient("asked to fail for %lld", (long long)count);
    const char *parent = "", *patch = NULL, *ask = NULL;
    if ((error = sous_spec_string_or(request, "parent", &parent)) ||
        (error = sous_spec_string_or(request, "patch", &patch)) ||
        (error = sous_spec_string_or(request, "ask", &ask)))
        return error;

    sous_response_from_desired(response, request);

    int nodes = 0;
    for (const cJSON *node = sous_related_of_kind(request, "Node", NULL); node;
         node = sous_related_of_kind(request, "Node", node))
        nodes++;
    double level = sous_get_number(request->config, "level", 0);
    sous_log_info("%d related nodes, config level %g", nodes, level);

    const char *name = sous_name(request);
    for (int64_t i = 0; i < count; i++) {
        char child_name[300], nodes_text[32];
        snprintf(child_name, sizeof child_name, "%s-%lld", name, (long long)i);
        snprintf(nodes_text, sizeof nodes_text, "%d", nodes);
        cJSON *config_map = sous_object("v1", "ConfigMap", child_name);
        sous_object_label(config_map, "app.kubernetes.io/name", name);
        sous_object_annotation(config_map, "example.com/volume", loud ? "LOUD" : "quiet");
        if (i == 0) sous_object_namespace(config_map, "elsewhere");
        sous_object_field(config_map, "data",
                          sous_string_map("greeting", greeting, "nodes", nodes_text, NULL));
        sous_response_child(response, config_map);
    }

    cJSON *status = cJSON_CreateObject();
    cJSON_AddNumberToObject(status, "configMaps", (double)count);
    cJSON_AddNumberToObject(status, "level", level);
    cJSON_AddNumberToObject(status, "generation", (double)sous_generation(request));
    cJSON_AddBoolToObject(status, "clusterScoped", sous_namespace(request) == NULL);
    if (request->desired)
        cJSON_AddNumberToObject(status, "proposed",
                                cJSON_GetArraySize(sous_desired_children(request)));
    sous_response_status(response, status);

    if (parent[0]) {
        char count_text[32];
        snprintf(count_text, sizeof count_text, "%lld", (long long)count);
        sous_response_parent_labels_from(response,
                                         cJSON_GetObjectItemCaseSensitive(sous_spec(request),
                                                                          "parentLabels"));
        sous_response_parent_label(response, "example.com/config-maps", count_text);
        sous_response_parent_annotation(response, "example.com/greeting", greeting);
        if (strcmp(parent, "clear") == 0) {
            sous_response_parent_labels_clear(response);
            sous_response_parent_annotations_clear(response);
        } else if (strcmp(parent, "leave") == 0) {
            sous_response_parent_labels_leave(response);
            sous_response_parent_annotations_leave(response);
        } else if (strcmp(parent, "set") != 0) {
            return sous_invalid("spec.parent: expected set, clear or leave, got %s", parent);
        }
    }
    if (patch) {
        cJSON *shared = sous_object("v1", "ConfigMap", patch);
        sous_object_namespace(shared, "shared");
        sous_object_field(shared, "data", sous_string_map("greeting", greeting, NULL));
        sous_response_patch(response, shared);
    }
    if (ask) {
        sous_response_request_related(response, "v1", "Node", NULL, NULL, ask);
        sous_response_request_related(response, "v1", "ConfigMap", "*", "settings", NULL);
    }
    sous_response_event(response, false, "Greeted", greeting);
    sous_response_requeue_after_ms(response, 30000);
    return NULL;
}
