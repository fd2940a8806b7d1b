/*
 * A reconciler that misbehaves on request, to prove the host's limits.
 *
 * `spec.attack` picks the misbehaviour:
 * - `loop`: spins forever (ends by fuel or deadline);
 * - `memory`: allocates without bound with malloc, touching every page with
 *   memset (ends by the memory limit);
 * - `panic`: a message on stderr and abort(), C's crash (a trap);
 * - anything else: one harmless ConfigMap named after the parent (`NAME-0`),
 *   to show the guest still works.
 *
 * Attacks on the fields of `sous:reconciler@0.2.0`, as the Rust hostile guest
 * makes them, each answered beside the harmless ConfigMap `NAME-0` so that
 * only the attack can be refused:
 * - `patch-owner`: a patch to the ConfigMap `spec.target` (default
 *   `NAME-victim`) that sets `metadata.ownerReferences` to the parent;
 * - `parent-label-reserved`: the parent label `spec.key` (default
 *   `sous.dev/reconciler`, under the host's `sous.dev/`) = `hijacked`;
 * - `related-undeclared`: a related request for `spec.apiVersion`/`spec.kind`
 *   (default `v1`/`Secret`) in every namespace;
 * - `related-selector`: a related request for ConfigMaps whose selector
 *   `spec.selector` (default `app in (web`) is malformed;
 * - `related-unsettled`: a related request for the ConfigMap `NAME-<n>`, `n`
 *   one more than the highest `k` of the related ConfigMaps `NAME-<k>` this
 *   call got (0 when none), so the requests never settle while `NAME-0`,
 *   `NAME-1`, ... exist.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "sous.h"

static void spin(void) {
    volatile uint64_t counter = 0;
    for (;;) counter = counter + 1;
}

/* One more than the highest `k` of the ConfigMaps `NAME-<k>` in `related`. */
static long next_counter(const char *name, const cJSON *related) {
    size_t length = strlen(name);
    long highest = -1;
    const cJSON *object;
    cJSON_ArrayForEach(object, related) {
        const char *kind = sous_get_string(object, "kind");
        const char *other = sous_get_string(object, "metadata.name");
        if (!kind || strcmp(kind, "ConfigMap") != 0 || !other) continue;
        if (strncmp(other, name, length) != 0 || other[length] != '-') continue;
        char *end = NULL;
        long k = strtol(other + length + 1, &end, 10);
        if (end != other + length + 1 && *end == '\0' && k > highest) highest = k;
    }
    return highest + 1;
}

static void hoard(void) {
    for (;;) {
        char *block = malloc(1 << 20);
        if (!block) abort(); /* never reached: the host stops the growth first */
        memset(block, 1, 1 << 20);
        __asm__ volatile("" : : "r"(block) : "memory"); /* keep the block and its bytes */
    }
}

static const char *spec_or(const sous_request *request, const char *field, const char *fallback) {
    char path[64];
    snprintf(path, sizeof path, "spec.%s", field);
    const char *value = sous_get_string(request->parent, path);
    return value ? value : fallback;
}

/* A patch to someone else's ConfigMap that makes the parent its owner. */
static cJSON *owning_patch(const sous_request *request, const char *name) {
    char victim[300];
    snprintf(victim, sizeof victim, "%s-victim", name);
    cJSON *patch = sous_object("v1", "ConfigMap", spec_or(request, "target", victim));
    cJSON *owner = sous_string_map("name", name, NULL);
    const char *fields[] = {"apiVersion", "kind"};
    for (size_t i = 0; i < 2; i++) {
        const char *value = sous_get_string(request->parent, fields[i]);
        if (value) cJSON_AddStringToObject(owner, fields[i], value);
    }
    const char *uid = sous_get_string(request->parent, "metadata.uid");
    if (uid) cJSON_AddStringToObject(owner, "uid", uid);
    cJSON_AddBoolToObject(owner, "controller", 1);
    cJSON_AddBoolToObject(owner, "blockOwnerDeletion", 1);
    cJSON *owners = cJSON_CreateArray();
    cJSON_AddItemToArray(owners, owner);
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(patch, "metadata"), "ownerReferences",
                          owners);
    sous_object_field(patch, "data", sous_string_map("owned", "by the hostile guest", NULL));
    return patch;
}

static void attack_new_fields(const sous_request *request, sous_response *response,
                              const char *attack, const char *name) {
    char wanted[300];
    if (strcmp(attack, "patch-owner") == 0) {
        sous_response_patch(response, owning_patch(request, name));
    } else if (strcmp(attack, "parent-label-reserved") == 0) {
        sous_response_parent_label(response, spec_or(request, "key", "sous.dev/reconciler"),
                                   "hijacked");
    } else if (strcmp(attack, "related-undeclared") == 0) {
        sous_response_request_related(response, spec_or(request, "apiVersion", "v1"),
                                      spec_or(request, "kind", "Secret"), "*", NULL, NULL);
    } else if (strcmp(attack, "related-selector") == 0) {
        sous_response_request_related(response, "v1", "ConfigMap", NULL, NULL,
                                      spec_or(request, "selector", "app in (web"));
    } else if (strcmp(attack, "related-unsettled") == 0) {
        snprintf(wanted, sizeof wanted, "%s-%ld", name, next_counter(name, request->related));
        sous_response_request_related(response, "v1", "ConfigMap", NULL, wanted, NULL);
    }
}

sous_error *sous_reconcile(const sous_request *request, sous_response *response) {
    const char *attack = sous_get_string(request->parent, "spec.attack");
    attack = attack ? attack : "";
    if (strcmp(attack, "loop") == 0) spin();
    if (strcmp(attack, "memory") == 0) hoard();
    if (strcmp(attack, "panic") == 0) {
        /* C's crash: a message on stderr (the host adds it to the error), then abort. */
        fprintf(stderr, "hostile guest aborted on purpose\n");
        abort();
    }

    const char *name = sous_get_string(request->parent, "metadata.name");
    name = name ? name : "hostile";
    /* `NAME-0` with `data.index: "0"`, as the Rust hostile guest answers. */
    char child_name[256];
    snprintf(child_name, sizeof child_name, "%s-0", name);
    cJSON *config_map = sous_object("v1", "ConfigMap", child_name);
    sous_object_field(config_map, "data", sous_string_map("index", "0", NULL));
    sous_response_child(response, config_map);
    attack_new_fields(request, response, attack, name);
    return NULL;
}
