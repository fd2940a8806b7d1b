/*
 * The Sous C SDK: helpers around the bindings `wit-bindgen c` generates from
 * the WIT world `reconciler` (reconciler.h), with cJSON for the objects.
 * See sous.h for the API.
 */
#include "sous.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler.h"

/* ---------------------------------------------------------------- helpers */

static void *checked(void *pointer) {
    if (!pointer) abort(); /* out of memory: the host reports the trap */
    return pointer;
}

static char *vformat(const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int length = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (length < 0) length = 0;
    char *text = checked(malloc((size_t)length + 1));
    vsnprintf(text, (size_t)length + 1, format, args);
    return text;
}

static sous_error *new_error(sous_error_kind kind, char *message) {
    sous_error *error = checked(malloc(sizeof *error));
    error->kind = kind;
    error->message = message;
    return error;
}

sous_error *sous_invalid(const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *message = vformat(format, args);
    va_end(args);
    return new_error(SOUS_INVALID, message);
}

sous_error *sous_transient(const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *message = vformat(format, args);
    va_end(args);
    return new_error(SOUS_TRANSIENT, message);
}

/* --------------------------------------------------------------- request */

static const cJSON *member(const cJSON *object, const char *key) {
    return cJSON_IsObject(object) ? cJSON_GetObjectItemCaseSensitive(object, key) : NULL;
}

static const cJSON *at_path(const cJSON *object, const char *path) {
    char key[256];
    while (object && *path) {
        const char *dot = strchr(path, '.');
        size_t length = dot ? (size_t)(dot - path) : strlen(path);
        if (length >= sizeof key) return NULL;
        memcpy(key, path, length);
        key[length] = '\0';
        object = member(object, key);
        path += length + (dot ? 1 : 0);
    }
    return object;
}

const cJSON *sous_desired_children(const sous_request *request) {
    const cJSON *children = member(request->desired, "children");
    return cJSON_IsArray(children) ? children : NULL;
}

const cJSON *sous_desired_status(const sous_request *request) {
    const cJSON *status = member(request->desired, "status");
    return cJSON_IsNull(status) ? NULL : status;
}

const char *sous_get_string(const cJSON *object, const char *path) {
    const cJSON *found = at_path(object, path);
    return cJSON_IsString(found) ? found->valuestring : NULL;
}

double sous_get_number(const cJSON *object, const char *path, double fallback) {
    const cJSON *found = at_path(object, path);
    return cJSON_IsNumber(found) ? found->valuedouble : fallback;
}

const char *sous_name(const sous_request *request) {
    const char *name = sous_get_string(request->parent, "metadata.name");
    return name ? name : "";
}

const char *sous_namespace(const sous_request *request) {
    return sous_get_string(request->parent, "metadata.namespace");
}

int64_t sous_generation(const sous_request *request) {
    return (int64_t)sous_get_number(request->parent, "metadata.generation", -1);
}

const cJSON *sous_spec(const sous_request *request) {
    return member(request->parent, "spec");
}

static const char *type_name(const cJSON *value) {
    if (cJSON_IsNull(value)) return "null";
    if (cJSON_IsBool(value)) return "a boolean";
    if (cJSON_IsNumber(value)) return "a number";
    if (cJSON_IsString(value)) return "a string";
    if (cJSON_IsArray(value)) return "an array";
    return "an object";
}

/* `spec.FIELD`: NULL with `*error` set when missing and required. */
static const cJSON *spec_field(const sous_request *request, const char *field, bool required,
                               sous_error **error) {
    const cJSON *value = member(sous_spec(request), field);
    *error = NULL;
    if (!value && required) *error = sous_invalid("spec.%s: missing", field);
    return value;
}

static sous_error *get_string(const sous_request *request, const char *field, bool required,
                              const char **out) {
    sous_error *error;
    const cJSON *value = spec_field(request, field, required, &error);
    if (!value) return error;
    if (!cJSON_IsString(value))
        return sous_invalid("spec.%s: expected a string, got %s", field, type_name(value));
    *out = value->valuestring;
    return NULL;
}

static sous_error *get_int(const sous_request *request, const char *field, bool required,
                           int64_t min, int64_t max, int64_t *out) {
    sous_error *error;
    const cJSON *value = spec_field(request, field, required, &error);
    if (!value) return error;
    if (!cJSON_IsNumber(value))
        return sous_invalid("spec.%s: expected an integer from %lld to %lld, got %s", field,
                            (long long)min, (long long)max, type_name(value));
    double number = value->valuedouble;
    if (number != (double)(int64_t)number || number < (double)min || number > (double)max)
        return sous_invalid("spec.%s: expected an integer from %lld to %lld, got %g", field,
                            (long long)min, (long long)max, number);
    *out = (int64_t)number;
    return NULL;
}

static sous_error *get_bool(const sous_request *request, const char *field, bool required,
                            bool *out) {
    sous_error *error;
    const cJSON *value = spec_field(request, field, required, &error);
    if (!value) return error;
    if (!cJSON_IsBool(value))
        return sous_invalid("spec.%s: expected a boolean, got %s", field, type_name(value));
    *out = cJSON_IsTrue(value);
    return NULL;
}

sous_error *sous_spec_string(const sous_request *request, const char *field, const char **out) {
    return get_string(request, field, true, out);
}

sous_error *sous_spec_string_or(const sous_request *request, const char *field,
                                const char **out) {
    return get_string(request, field, false, out);
}

sous_error *sous_spec_int(const sous_request *request, const char *field, int64_t min,
                          int64_t max, int64_t *out) {
    return get_int(request, field, true, min, max, out);
}

sous_error *sous_spec_int_or(const sous_request *request, const char *field, int64_t min,
                             int64_t max, int64_t *out) {
    return get_int(request, field, false, min, max, out);
}

sous_error *sous_spec_bool(const sous_request *request, const char *field, bool *out) {
    return get_bool(request, field, true, out);
}

sous_error *sous_spec_bool_or(const sous_request *request, const char *field, bool *out) {
    return get_bool(request, field, false, out);
}

static bool is(const char *text, const char *expected) {
    return text && strcmp(text, expected) == 0;
}

const cJSON *sous_child(const sous_request *request, const char *kind, const char *name) {
    const cJSON *child;
    cJSON_ArrayForEach(child, request->children) {
        if (is(sous_get_string(child, "kind"), kind) &&
            is(sous_get_string(child, "metadata.name"), name))
            return child;
    }
    return NULL;
}

const cJSON *sous_related_of_kind(const sous_request *request, const char *kind,
                                  const cJSON *after) {
    const cJSON *object = after ? after->next : (request->related ? request->related->child : NULL);
    for (; object; object = object->next)
        if (is(sous_get_string(object, "kind"), kind)) return object;
    return NULL;
}

/* ------------------------------------------------------- desired objects */

static cJSON *object_member(cJSON *object, const char *key) {
    cJSON *found = cJSON_GetObjectItemCaseSensitive(object, key);
    if (cJSON_IsObject(found)) return found;
    if (found) cJSON_DeleteItemFromObjectCaseSensitive(object, key);
    return checked(cJSON_AddObjectToObject(object, key));
}

static void set_string(cJSON *object, const char *key, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(object, key);
    checked(cJSON_AddStringToObject(object, key, value));
}

cJSON *sous_object(const char *api_version, const char *kind, const char *name) {
    cJSON *object = checked(cJSON_CreateObject());
    set_string(object, "apiVersion", api_version);
    set_string(object, "kind", kind);
    set_string(object_member(object, "metadata"), "name", name);
    return object;
}

void sous_object_namespace(cJSON *object, const char *namespace_) {
    set_string(object_member(object, "metadata"), "namespace", namespace_);
}

void sous_object_label(cJSON *object, const char *key, const char *value) {
    set_string(object_member(object_member(object, "metadata"), "labels"), key, value);
}

void sous_object_labels_from(cJSON *object, const cJSON *labels) {
    const cJSON *entry;
    cJSON_ArrayForEach(entry, labels) {
        if (cJSON_IsString(entry)) sous_object_label(object, entry->string, entry->valuestring);
    }
}

void sous_object_annotation(cJSON *object, const char *key, const char *value) {
    set_string(object_member(object_member(object, "metadata"), "annotations"), key, value);
}

void sous_object_field(cJSON *object, const char *name, cJSON *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(object, name);
    cJSON_AddItemToObject(object, name, value);
}

void sous_object_spec(cJSON *object, cJSON *spec) {
    sous_object_field(object, "spec", spec);
}

cJSON *sous_string_map(const char *key, ...) {
    cJSON *map = checked(cJSON_CreateObject());
    va_list args;
    va_start(args, key);
    for (; key; key = va_arg(args, const char *)) set_string(map, key, va_arg(args, const char *));
    va_end(args);
    return map;
}

/* ---------------------------------------------------------------- rollout */

sous_rollout sous_rollout_of(const cJSON *observed, uint64_t wanted) {
    double ready = sous_get_number(observed, "status.readyReplicas", 0);
    sous_rollout rollout = {.ready = ready > 0 ? (uint64_t)ready : 0};
    rollout.phase = !observed ? "Pending" : rollout.ready >= wanted ? "Ready" : "Progressing";
    return rollout;
}

/* -------------------------------------------------------------------- log */

static void write_log(sous_reconciler_log_level_t level, const char *format, va_list args) {
    char *text = vformat(format, args);
    reconciler_string_t message = {.ptr = (uint8_t *)text, .len = strlen(text)};
    sous_reconciler_log_log(level, &message);
    free(text);
}

#define SOUS_LOG_FUNCTION(function, level)                                                        \
    void function(const char *format, ...) {                                                      \
        va_list args;                                                                             \
        va_start(args, format);                                                                   \
        write_log(level, format, args);                                                           \
        va_end(args);                                                                             \
    }

SOUS_LOG_FUNCTION(sous_log_debug, SOUS_RECONCILER_LOG_LEVEL_DEBUG)
SOUS_LOG_FUNCTION(sous_log_info, SOUS_RECONCILER_LOG_LEVEL_INFO)
SOUS_LOG_FUNCTION(sous_log_warn, SOUS_RECONCILER_LOG_LEVEL_WARN)
SOUS_LOG_FUNCTION(sous_log_error, SOUS_RECONCILER_LOG_LEVEL_ERROR)

/* -------------------------------------------------------------- response */

struct sous_response {
    cJSON *children; /* array */
    cJSON *status;   /* NULL: leave the status alone */
    bool requeue;
    uint64_t requeue_after_ms;
    sous_reconciler_types_list_event_t events;
    cJSON *parent_labels;      /* object of strings; NULL: leave the labels alone */
    cJSON *parent_annotations; /* object of strings; NULL: leave the annotations alone */
    cJSON *patches;            /* array */
    sous_reconciler_types_list_related_request_t related_requests;
};

struct sous_finalize_response {
    bool done;
    uint64_t requeue_after_ms;
    sous_reconciler_types_list_event_t events;
};

void sous_response_child(sous_response *response, cJSON *child) {
    cJSON_AddItemToArray(response->children, child);
}

void sous_response_status(sous_response *response, cJSON *status) {
    if (response->status) cJSON_Delete(response->status);
    response->status = status;
}

void sous_response_requeue_after_ms(sous_response *response, uint64_t ms) {
    response->requeue = true;
    response->requeue_after_ms = ms;
}

static void add_event(sous_reconciler_types_list_event_t *events, bool warning, const char *reason,
                      const char *message) {
    events->ptr = checked(realloc(events->ptr, (events->len + 1) * sizeof *events->ptr));
    sous_reconciler_types_event_t *event = &events->ptr[events->len++];
    event->event_type = warning ? SOUS_RECONCILER_TYPES_EVENT_TYPE_WARNING
                                : SOUS_RECONCILER_TYPES_EVENT_TYPE_NORMAL;
    reconciler_string_dup(&event->reason, reason);
    reconciler_string_dup(&event->message, message);
}

void sous_response_event(sous_response *response, bool warning, const char *reason,
                         const char *message) {
    add_event(&response->events, warning, reason, message);
}

void sous_response_from_desired(sous_response *response, const sous_request *request) {
    const cJSON *child;
    cJSON_ArrayForEach(child, sous_desired_children(request)) {
        sous_response_child(response, checked(cJSON_Duplicate(child, true)));
    }
    const cJSON *status = sous_desired_status(request);
    if (status) sous_response_status(response, checked(cJSON_Duplicate(status, true)));
}

/* `*set` made an object (the option switched to some), then `key` set in it. */
static void set_entry(cJSON **set, const char *key, const char *value) {
    if (!*set) *set = checked(cJSON_CreateObject());
    set_string(*set, key, value);
}

static void set_entries(cJSON **set, const cJSON *entries) {
    if (!*set) *set = checked(cJSON_CreateObject());
    const cJSON *entry;
    cJSON_ArrayForEach(entry, entries) {
        if (cJSON_IsString(entry)) set_string(*set, entry->string, entry->valuestring);
    }
}

static void set_empty(cJSON **set) {
    cJSON_Delete(*set);
    *set = checked(cJSON_CreateObject());
}

static void set_none(cJSON **set) {
    cJSON_Delete(*set);
    *set = NULL;
}

void sous_response_parent_label(sous_response *response, const char *key, const char *value) {
    set_entry(&response->parent_labels, key, value);
}

void sous_response_parent_labels_from(sous_response *response, const cJSON *labels) {
    set_entries(&response->parent_labels, labels);
}

void sous_response_parent_labels_clear(sous_response *response) {
    set_empty(&response->parent_labels);
}

void sous_response_parent_labels_leave(sous_response *response) {
    set_none(&response->parent_labels);
}

void sous_response_parent_annotation(sous_response *response, const char *key,
                                     const char *value) {
    set_entry(&response->parent_annotations, key, value);
}

void sous_response_parent_annotations_from(sous_response *response, const cJSON *annotations) {
    set_entries(&response->parent_annotations, annotations);
}

void sous_response_parent_annotations_clear(sous_response *response) {
    set_empty(&response->parent_annotations);
}

void sous_response_parent_annotations_leave(sous_response *response) {
    set_none(&response->parent_annotations);
}

void sous_response_patch(sous_response *response, cJSON *patch) {
    cJSON_AddItemToArray(response->patches, patch);
}

/* A C string (NULL: none) -> a WIT option<string>, copied. */
static void option_dup(reconciler_option_string_t *out, const char *text) {
    out->is_some = text != NULL;
    if (text) reconciler_string_dup(&out->val, text);
    else out->val = (reconciler_string_t){0};
}

void sous_response_request_related(sous_response *response, const char *api_version,
                                   const char *kind, const char *namespace_, const char *name,
                                   const char *selector) {
    sous_reconciler_types_list_related_request_t *list = &response->related_requests;
    list->ptr = checked(realloc(list->ptr, (list->len + 1) * sizeof *list->ptr));
    sous_reconciler_types_related_request_t *request = &list->ptr[list->len++];
    reconciler_string_dup(&request->api_version, api_version);
    reconciler_string_dup(&request->kind, kind);
    option_dup(&request->namespace_, namespace_);
    option_dup(&request->name, name);
    option_dup(&request->selector, selector);
}

void sous_finalize_not_yet(sous_finalize_response *response, uint64_t ms) {
    response->done = false;
    response->requeue_after_ms = ms;
}

void sous_finalize_event(sous_finalize_response *response, bool warning, const char *reason,
                         const char *message) {
    add_event(&response->events, warning, reason, message);
}

/* ------------------------------------------------------ the WIT exports */

/* JSON text of the host -> a cJSON value, or a transient error naming it. */
static sous_error *parse(const char *what, const reconciler_string_t *text, cJSON **out) {
    *out = cJSON_ParseWithLength((const char *)text->ptr, text->len);
    if (*out) return NULL;
    return sous_transient("the host sent %s that is not JSON", what);
}

static sous_error *parse_list(const char *what, const sous_reconciler_types_list_object_t *list,
                              cJSON **out) {
    *out = checked(cJSON_CreateArray());
    for (size_t i = 0; i < list->len; i++) {
        cJSON *item;
        sous_error *error = parse(what, &list->ptr[i], &item);
        if (error) return error;
        cJSON_AddItemToArray(*out, item);
    }
    return NULL;
}

/* Parses the raw request into `request`, then frees the raw one (ours to free). */
static sous_error *parse_request(reconciler_request_t *raw, sous_request *request) {
    cJSON *parent = NULL, *children = NULL, *related = NULL, *config = NULL, *desired = NULL;
    char *name = checked(malloc(raw->reconciler.len + 1));
    memcpy(name, raw->reconciler.ptr, raw->reconciler.len);
    name[raw->reconciler.len] = '\0';
    sous_error *error = parse("a parent", &raw->parent, &parent);
    if (!error) error = parse_list("a child", &raw->children, &children);
    if (!error) error = parse_list("a related object", &raw->related, &related);
    if (!error && raw->config.is_some) error = parse("a config", &raw->config.val, &config);
    if (!error && raw->desired.is_some) {
        error = parse("a desired state", &raw->desired.val, &desired);
        if (!error && !cJSON_IsObject(desired))
            error = sous_transient("the host sent a desired state that is not a JSON object "
                                   "{children, status}");
    }
    reconciler_request_free(raw);
    *request = (sous_request){name, parent, children, related, config, desired};
    return error;
}

static void free_request(sous_request *request) {
    free((void *)request->reconciler);
    cJSON_Delete((cJSON *)request->parent);
    cJSON_Delete((cJSON *)request->children);
    cJSON_Delete((cJSON *)request->related);
    cJSON_Delete((cJSON *)request->config);
    cJSON_Delete((cJSON *)request->desired);
}

/* A cJSON value -> JSON text for the host (the bindings free it after the call). */
static void json_text(const cJSON *value, reconciler_string_t *out) {
    char *text = checked(cJSON_PrintUnformatted(value));
    out->ptr = (uint8_t *)text;
    out->len = strlen(text);
}

/* A JSON array of objects -> a list of JSON texts; deletes `array`. */
static void json_texts(cJSON *array, sous_reconciler_types_list_object_t *out) {
    size_t count = (size_t)cJSON_GetArraySize(array);
    out->len = count;
    out->ptr = count ? checked(malloc(count * sizeof *out->ptr)) : NULL;
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) json_text(item, &out->ptr[i++]);
    cJSON_Delete(array);
}

/* A JSON object of strings (NULL: none) -> a WIT option<list<key-value>>; deletes `set`. */
static void key_values(cJSON *set, sous_reconciler_types_option_list_key_value_t *out) {
    out->is_some = set != NULL;
    out->val = (sous_reconciler_types_list_key_value_t){0};
    if (!set) return;
    size_t count = (size_t)cJSON_GetArraySize(set);
    out->val.len = count;
    out->val.ptr = count ? checked(malloc(count * sizeof *out->val.ptr)) : NULL;
    size_t i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, set) {
        reconciler_string_dup(&out->val.ptr[i].f0, entry->string);
        reconciler_string_dup(&out->val.ptr[i].f1, entry->valuestring);
        i++;
    }
    cJSON_Delete(set);
}

static bool fail(sous_error *error, reconciler_error_t *err) {
    err->tag = error->kind == SOUS_INVALID ? SOUS_RECONCILER_TYPES_ERROR_INVALID
                                           : SOUS_RECONCILER_TYPES_ERROR_TRANSIENT;
    /* Both variants hold a string at the same place. */
    err->val.invalid.ptr = (uint8_t *)error->message;
    err->val.invalid.len = strlen(error->message);
    free(error);
    return false;
}

bool exports_reconciler_reconcile(reconciler_request_t *raw, reconciler_response_t *ret,
                                  reconciler_error_t *err) {
    sous_request request;
    sous_error *error = parse_request(raw, &request);
    if (error) return fail(error, err);

    sous_response response = {.children = checked(cJSON_CreateArray()),
                               .patches = checked(cJSON_CreateArray())};
    error = sous_reconcile(&request, &response);
    if (error) return fail(error, err);

    *ret = (reconciler_response_t){0};
    json_texts(response.children, &ret->children);
    ret->status.is_some = response.status != NULL;
    if (response.status) {
        json_text(response.status, &ret->status.val);
        cJSON_Delete(response.status);
    }
    ret->requeue_after_ms.is_some = response.requeue;
    ret->requeue_after_ms.val = response.requeue_after_ms;
    ret->events = response.events;
    key_values(response.parent_labels, &ret->parent_labels);
    key_values(response.parent_annotations, &ret->parent_annotations);
    json_texts(response.patches, &ret->patches);
    ret->related_requests = response.related_requests;
    /* Last: the response may have referred to the request's strings. */
    free_request(&request);
    return true;
}

bool exports_reconciler_finalize(reconciler_request_t *raw, reconciler_finalize_response_t *ret,
                                 reconciler_error_t *err) {
    sous_request request;
    sous_error *error = parse_request(raw, &request);
    if (error) return fail(error, err);

    sous_finalize_response response = {.done = true};
    error = sous_finalize(&request, &response);
    if (error) return fail(error, err);
    free_request(&request);

    ret->done = response.done;
    ret->requeue_after_ms.is_some = !response.done;
    ret->requeue_after_ms.val = response.requeue_after_ms;
    ret->events = response.events;
    return true;
}

/* The default finalize: nothing to clean up, done at once. A reconciler
 * overrides it by defining its own `sous_finalize`. */
__attribute__((weak)) sous_error *sous_finalize(const sous_request *request,
                                                sous_finalize_response *response) {
    (void)request;
    (void)response;
    return NULL;
}
