//! A reconciler built against the frozen `sous:reconciler@0.1.0` contract
//! (`wit/0.1.0`), directly with `wit_bindgen` and not through the SDK, so that
//! it stays a 0.1.0 component whatever the SDK moves to. The host's
//! backward-compatibility tests load it beside components of the current
//! version.
//!
//! For a parent `{spec: {image}}` it answers one ConfigMap `<parent>-legacy`
//! with `data: {image: <spec.image>}` and the status `{"servedBy": "0.1.0"}`;
//! a parent without an image is invalid. It logs one record per call through
//! the 0.1.0 `log` import. Finalize answers done.

/// The bindings of the 0.1.0 world, and the export of [`Legacy`] through them.
#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../../wit/0.1.0",
        world: "reconciler",
    });

    use super::Legacy;

    export!(Legacy);
}

use bindings::sous::reconciler::log::{Level, log};
use bindings::{Error, FinalizeResponse, Guest, Request, Response};
use serde_json::{Value, json};

/// The 0.1.0 reconciler.
struct Legacy;

impl Guest for Legacy {
    fn reconcile(request: Request) -> Result<Response, Error> {
        let parent: Value = serde_json::from_str(&request.parent).map_err(|e| {
            Error::Transient(format!("the host sent a parent that is not JSON: {e}"))
        })?;
        let name = parent["metadata"]["name"].as_str().unwrap_or_default();
        let image = parent["spec"]["image"]
            .as_str()
            .filter(|image| !image.is_empty())
            .ok_or_else(|| Error::Invalid("spec.image must be a non-empty string".to_string()))?;
        log(
            Level::Info,
            &format!("legacy 0.1.0 guest serving {name} with {image}"),
        );
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": format!("{name}-legacy") },
            "data": { "image": image },
        });
        Ok(Response {
            children: vec![config_map.to_string()],
            status: Some(json!({ "servedBy": "0.1.0" }).to_string()),
            requeue_after_ms: None,
            events: Vec::new(),
        })
    }

    fn finalize(_request: Request) -> Result<FinalizeResponse, Error> {
        Ok(FinalizeResponse {
            done: true,
            requeue_after_ms: None,
            events: Vec::new(),
        })
    }
}
