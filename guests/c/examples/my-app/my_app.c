/*
 * `MyApp {replicas, image, port}` -> a Deployment and a Service.
 *
 * The status reports the Deployment's ready replicas and a phase: `Pending`
 * until the Deployment exists, `Progressing` until every replica is ready,
 * then `Ready`.
 */
#include <stdint.h>

#include "sous.h"

sous_error *sous_reconcile(const sous_request *request, sous_response *response) {
    int64_t replicas, port;
    const char *image;
    sous_error *error;
    if ((error = sous_spec_int(request, "replicas", 0, UINT32_MAX, &replicas)) ||
        (error = sous_spec_string(request, "image", &image)) ||
        (error = sous_spec_int(request, "port", 0, UINT16_MAX, &port)))
        return error;
    if (image[0] == '\0') return sous_invalid("spec.image must not be empty");

    const char *name = sous_name(request);
    cJSON *labels = sous_string_map("app.kubernetes.io/name", name,
                                    "app.kubernetes.io/managed-by", "sous", NULL);
    cJSON *selector = sous_string_map("app.kubernetes.io/name", name, NULL);

    /* The Deployment: `replicas` pods running `image`, port `http`. */
    cJSON *container = cJSON_CreateObject();
    cJSON_AddStringToObject(container, "name", "app");
    cJSON_AddStringToObject(container, "image", image);
    cJSON *container_port = cJSON_CreateObject();
    cJSON_AddStringToObject(container_port, "name", "http");
    cJSON_AddNumberToObject(container_port, "containerPort", (double)port);
    cJSON_AddItemToObject(container, "ports", cJSON_CreateArray());
    cJSON_AddItemToArray(cJSON_GetObjectItem(container, "ports"), container_port);

    cJSON *pod_template = cJSON_CreateObject();
    cJSON_AddItemToObject(cJSON_AddObjectToObject(pod_template, "metadata"), "labels",
                          cJSON_Duplicate(labels, true));
    cJSON *containers = cJSON_AddArrayToObject(cJSON_AddObjectToObject(pod_template, "spec"),
                                               "containers");
    cJSON_AddItemToArray(containers, container);

    cJSON *deployment_spec = cJSON_CreateObject();
    cJSON_AddNumberToObject(deployment_spec, "replicas", (double)replicas);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(deployment_spec, "selector"), "matchLabels",
                          cJSON_Duplicate(selector, true));
    cJSON_AddItemToObject(deployment_spec, "template", pod_template);

    cJSON *deployment = sous_object("apps/v1", "Deployment", name);
    sous_object_labels_from(deployment, labels);
    sous_object_spec(deployment, deployment_spec);

    /* The Service: port `port` to the pods' `http`. */
    cJSON *service_port = cJSON_CreateObject();
    cJSON_AddStringToObject(service_port, "name", "http");
    cJSON_AddNumberToObject(service_port, "port", (double)port);
    cJSON_AddStringToObject(service_port, "targetPort", "http");
    cJSON *service_spec = cJSON_CreateObject();
    cJSON_AddItemToObject(service_spec, "selector", selector);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(service_spec, "ports"), service_port);

    cJSON *service = sous_object("v1", "Service", name);
    sous_object_labels_from(service, labels);
    sous_object_spec(service, service_spec);

    sous_rollout rollout =
        sous_rollout_of(sous_child(request, "Deployment", name), (uint64_t)replicas);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddNumberToObject(status, "readyReplicas", (double)rollout.ready);
    cJSON_AddStringToObject(status, "phase", rollout.phase);

    sous_response_child(response, deployment);
    sous_response_child(response, service);
    sous_response_status(response, status);
    return NULL;
}
