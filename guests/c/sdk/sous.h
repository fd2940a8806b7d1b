/*
 * Write Sous reconcilers in C.
 *
 * A reconciler is one function from the observed state of a parent to its
 * desired children and status. Define `sous_reconcile` (and, if the parent
 * needs cleanup, `sous_finalize`), build with `sdk/build-component`:
 *
 *     #include "sous.h"
 *
 *     sous_error *sous_reconcile(const sous_request *request, sous_response *response) {
 *         const char *greeting;
 *         sous_error *error = sous_spec_string(request, "greeting", &greeting);
 *         if (error) return error;
 *         cJSON *config_map = sous_object("v1", "ConfigMap", sous_name(request));
 *         cJSON *data = cJSON_AddObjectToObject(config_map, "data");
 *         cJSON_AddStringToObject(data, "greeting", greeting);
 *         sous_response_child(response, config_map);
 *         return NULL;
 *     }
 *
 * Objects are cJSON values (cJSON.h, included here). Every function that can
 * fail returns a `sous_error *`: NULL for success, else an error to return
 * from `sous_reconcile` as it is.
 *
 * Memory: every call runs in a fresh instance that is thrown away afterwards,
 * so a reconciler need not free what it allocates. Functions taking a `cJSON *`
 * that they keep (children, status, spec, patches) take ownership of it: to answer an
 * observed object (or part of one) as desired, pass a `cJSON_Duplicate` of it,
 * never the request's own item. Strings of the request stay valid until the
 * response has been sent, so `cJSON_CreateStringReference` to them is fine.
 *
 * The contract itself (what the host does with each field) is documented in
 * `wit/reconciler.wit`.
 */
#ifndef SOUS_H
#define SOUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cJSON.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* Why a reconcile could not produce a desired state. */
typedef enum {
    /* The parent is wrong; the host reports it and waits for the parent to change. */
    SOUS_INVALID,
    /* Something temporary; the host retries with backoff. */
    SOUS_TRANSIENT,
} sous_error_kind;

typedef struct sous_error {
    sous_error_kind kind;
    char *message;
} sous_error;

/* The parent is wrong (a bad spec value, say). printf-style message. */
sous_error *sous_invalid(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Something temporary went wrong; retry later. printf-style message. */
sous_error *sous_transient(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* --------------------------------------------------------------- request */

/* What the host observed for one parent, parsed. Read-only. */
typedef struct sous_request {
    /* The name of the Reconciler object this call runs for. */
    const char *reconciler;
    /* The parent object as observed. */
    const cJSON *parent;
    /* The children the parent owns, as observed (a JSON array). */
    const cJSON *children;
    /* The related objects, read-only (a JSON array). */
    const cJSON *related;
    /* The Reconciler's `spec.config`, or NULL when none was given. */
    const cJSON *config;
    /*
     * What earlier steps of a pipeline proposed for this parent, parsed: a
     * JSON object `{"children": [object...], "status": {...}}`, or NULL when
     * one module serves the reconciler alone. Read it with
     * `sous_desired_children` and `sous_desired_status`, or start the
     * response from it with `sous_response_from_desired`. Text that is not
     * JSON fails the call as transient before `sous_reconcile` runs.
     */
    const cJSON *desired;
} sous_request;

/* The parent's `metadata.name` ("" if missing). */
const char *sous_name(const sous_request *request);
/* The parent's `metadata.namespace`, NULL for a cluster-scoped parent. */
const char *sous_namespace(const sous_request *request);
/* The parent's `metadata.generation`, or -1. */
int64_t sous_generation(const sous_request *request);
/* The parent's `.spec`, NULL if it has none. */
const cJSON *sous_spec(const sous_request *request);

/*
 * One field of `.spec`, typed. A missing or mistyped field is an invalid
 * parent, and the error names it: `spec.replicas: expected an integer from 0
 * to 4294967295`.
 */
sous_error *sous_spec_string(const sous_request *request, const char *field, const char **out);
sous_error *sous_spec_int(const sous_request *request, const char *field, int64_t min, int64_t max,
                          int64_t *out);
sous_error *sous_spec_bool(const sous_request *request, const char *field, bool *out);
/* As above, but a missing field leaves `*out` (the default) unchanged. */
sous_error *sous_spec_string_or(const sous_request *request, const char *field, const char **out);
sous_error *sous_spec_int_or(const sous_request *request, const char *field, int64_t min,
                             int64_t max, int64_t *out);
sous_error *sous_spec_bool_or(const sous_request *request, const char *field, bool *out);

/* The observed child of `kind` named `name`, or NULL. */
const cJSON *sous_child(const sous_request *request, const char *kind, const char *name);
/* The next related object of `kind` after `after` (NULL: the first), or NULL. */
const cJSON *sous_related_of_kind(const sous_request *request, const char *kind,
                                  const cJSON *after);

/* The children in `request->desired` (a JSON array), or NULL when there are none. */
const cJSON *sous_desired_children(const sous_request *request);
/* The status in `request->desired`, or NULL when it proposes none. */
const cJSON *sous_desired_status(const sous_request *request);

/* String at a dotted path (`"status.phase"`) of `object`, or NULL. */
const char *sous_get_string(const cJSON *object, const char *path);
/* Number at a dotted path of `object`, or `fallback`. */
double sous_get_number(const cJSON *object, const char *path, double fallback);

/* ------------------------------------------------------- desired objects */

/*
 * A new desired object `{apiVersion, kind, metadata: {name}}`. Its namespace
 * defaults to the parent's unless `sous_object_namespace` sets one.
 */
cJSON *sous_object(const char *api_version, const char *kind, const char *name);
/* Sets `metadata.namespace`. */
void sous_object_namespace(cJSON *object, const char *namespace_);
/* Adds one label. */
void sous_object_label(cJSON *object, const char *key, const char *value);
/* Adds every string entry of the JSON object `labels` as a label. */
void sous_object_labels_from(cJSON *object, const cJSON *labels);
/* Adds one annotation. */
void sous_object_annotation(cJSON *object, const char *key, const char *value);
/* Sets the top-level field `name` (`spec`, `data`, ...); takes `value`. */
void sous_object_field(cJSON *object, const char *name, cJSON *value);
/* Sets `.spec`; takes `spec`. */
void sous_object_spec(cJSON *object, cJSON *spec);

/* A JSON object `{k1: v1, k2: v2, ...}` of string entries, NULL-terminated. */
cJSON *sous_string_map(const char *key, ...) __attribute__((sentinel));

/* -------------------------------------------------------------- response */

/* The desired state for one parent; filled in by `sous_reconcile`. */
typedef struct sous_response sous_response;

/* Adds a desired child; takes `child`. */
void sous_response_child(sous_response *response, cJSON *child);
/* Sets the parent's new `.status` (a JSON object); takes `status`. */
void sous_response_status(sous_response *response, cJSON *status);
/* Asks to be called again after `ms` milliseconds. */
void sous_response_requeue_after_ms(sous_response *response, uint64_t ms);
/* Records a Normal (or Warning) Event on the parent. */
void sous_response_event(sous_response *response, bool warning, const char *reason,
                         const char *message);

/*
 * Starts the response from what earlier pipeline steps proposed: adds a copy
 * of each child of `request->desired` and sets a copy of its status. Does
 * nothing without a desired state (a module alone).
 */
void sous_response_from_desired(sous_response *response, const sous_request *request);

/*
 * Parent labels and annotations. By default the response leaves the parent's
 * labels alone. The first `sous_response_parent_label` switches it to a
 * complete set of labels: every label the reconciler wants on the parent
 * must then be set on every call; a label it stops setting is removed, labels
 * others set are never touched. Keys under `sous.dev/` are the host's and
 * refused. `key` and `value` are copied; setting a key again replaces its value.
 */
void sous_response_parent_label(sous_response *response, const char *key, const char *value);
/*
 * Adds every string entry of the JSON object `labels` as a parent label
 * (copied; other entries skipped). Switches to a complete set even when
 * `labels` is NULL or empty.
 */
void sous_response_parent_labels_from(sous_response *response, const cJSON *labels);
/* Makes the parent's label set empty: removes every label this reconciler set. */
void sous_response_parent_labels_clear(sous_response *response);
/* Back to the default: leave the parent's labels as they are. */
void sous_response_parent_labels_leave(sous_response *response);
/* The same for the parent's annotations. */
void sous_response_parent_annotation(sous_response *response, const char *key, const char *value);
void sous_response_parent_annotations_from(sous_response *response, const cJSON *annotations);
void sous_response_parent_annotations_clear(sous_response *response);
void sous_response_parent_annotations_leave(sous_response *response);

/*
 * Adds a patch: fields contributed to an object the reconciler does not own
 * (`apiVersion`, `kind`, `metadata.name`, namespace, and only the fields to
 * set; `sous_object` makes the start of one). Server-side applied with the
 * reconciler's field manager; a patch never creates nor deletes an object.
 * Takes `patch`.
 */
void sous_response_patch(sous_response *response, cJSON *patch);

/*
 * Asks for more related objects: those of `api_version`/`kind`, only in
 * `namespace_` (NULL: the parent's namespace; "*": every namespace), only the
 * one named `name` (NULL: any), only those matching `selector` (the syntax of
 * `kubectl -l`, e.g. "app=web,tier in (front,back)"; NULL: any). The host
 * calls again with them added to `request->related`; only kinds declared in
 * the Reconciler's `spec.related` may be requested. Return the same requests
 * on every call that needs the objects. The strings are copied.
 */
void sous_response_request_related(sous_response *response, const char *api_version,
                                   const char *kind, const char *namespace_, const char *name,
                                   const char *selector);

/* The answer to `sous_finalize`: done unless `sous_finalize_not_yet` is called. */
typedef struct sous_finalize_response sous_finalize_response;

/* Cleanup is not complete: call `finalize` again after `ms` milliseconds. */
void sous_finalize_not_yet(sous_finalize_response *response, uint64_t ms);
/* Records a Normal (or Warning) Event on the parent. */
void sous_finalize_event(sous_finalize_response *response, bool warning, const char *reason,
                         const char *message);

/* ---------------------------------------------------------------- rollout */

/* How far a workload (a Deployment, say) has rolled out. */
typedef struct {
    /* `status.readyReplicas` of the observed workload, 0 if none. */
    uint64_t ready;
    /* `Pending` (not observed yet), `Progressing` or `Ready`. */
    const char *phase;
} sous_rollout;

/* The rollout of `observed` (NULL if absent) towards `wanted` replicas. */
sous_rollout sous_rollout_of(const cJSON *observed, uint64_t wanted);

/* -------------------------------------------------------------------- log */

/* Log records go to the host's logs, tagged with the reconciler and parent. */
void sous_log_debug(const char *format, ...) __attribute__((format(printf, 1, 2)));
void sous_log_info(const char *format, ...) __attribute__((format(printf, 1, 2)));
void sous_log_warn(const char *format, ...) __attribute__((format(printf, 1, 2)));
void sous_log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------- what the reconciler defines */

/* The desired children, status, events and requeue for `request`'s parent. */
sous_error *sous_reconcile(const sous_request *request, sous_response *response);

/*
 * Cleanup while the parent is being deleted (only called when the Reconciler
 * object asks for a finalizer). Optional: the SDK's default answers done.
 */
sous_error *sous_finalize(const sous_request *request, sous_finalize_response *response);

#ifdef __cplusplus
}
#endif

#endif /* SOUS_H */
