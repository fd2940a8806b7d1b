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

static void hoard(void) {
    for (;;) {
        char *block = malloc(1 << 20);
        if (!block) abort(); /* never reached: the host stops the growth first */
        memset(block, 1, 1 << 20);
        __asm__ volatile("" : : "r"(block) : "memory"); /* keep the block and its bytes */
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
    return NULL;
}
