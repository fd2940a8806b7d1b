//! Write Sous reconcilers in Rust.
//!
//! A reconciler is one function from the observed state of a parent to its
//! desired children and status. Implement [`Reconciler`] on a type and export
//! it with [`export!`]; build with `cargo build --release --target wasm32-wasip2`.
//!
//! ```ignore
//! use sous_guest::{json, object, Error, Reconciler, Request, Response};
//!
//! struct Hello;
//!
//! impl Reconciler for Hello {
//!     fn reconcile(request: &Request) -> Result<Response, Error> {
//!         let greeting: String = request.spec_field("greeting")?;
//!         let config_map = object("v1", "ConfigMap", request.name())
//!             .field("data", json!({ "greeting": greeting }));
//!         Ok(Response::new().child(config_map))
//!     }
//! }
//!
//! sous_guest::export!(Hello);
//! ```
//!
//! Beyond children, status, events and requeue, a [`Response`] can set the
//! parent's own labels and annotations ([`Response::parent_label`],
//! [`Response::parent_annotation`]), contribute fields to objects the
//! reconciler does not own ([`Response::patch`]) and ask to read more related
//! objects in the same pass ([`Response::request_related`] with a
//! [`RelatedRequest`]). A step of a pipeline finds what the earlier steps
//! proposed in [`Request::desired`] and usually answers it changed:
//!
//! ```ignore
//! fn reconcile(request: &Request) -> Result<Response, Error> {
//!     let proposed = request.desired().cloned().unwrap_or_default();
//!     Ok(Response::from(proposed)
//!         .parent_label("example.dev/checked", "true")
//!         .request_related(RelatedRequest::new("v1", "ConfigMap").name("settings")))
//! }
//! ```
//!
//! The contract itself (what the host does with each field) is documented in
//! `wit/reconciler.wit` (`sous:reconciler@0.2.0`).

mod desired;
mod error;
mod object;
mod related;
mod request;
mod response;
mod rollout;

pub mod log;

pub use desired::Desired;
pub use error::Error;
pub use object::{ObjectBuilder, object};
pub use related::RelatedRequest;
pub use request::Request;
pub use response::{Event, FinalizeResponse, Response};
pub use rollout::Rollout;
pub use serde_json::{Map, Value, json};

/// The raw bindings generated from the WIT world, for guests that need them.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "reconciler",
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "::sous_guest::bindings",
    });
}

use bindings::sous::reconciler::types as wit;

/// A reconciler: computes the desired state of one parent.
pub trait Reconciler {
    /// The desired children, status, events and requeue for `request`'s parent.
    fn reconcile(request: &Request) -> Result<Response, Error>;

    /// Cleanup while the parent is being deleted (only called when the
    /// Reconciler object asks for a finalizer). The default has nothing to
    /// clean up and answers done.
    fn finalize(_request: &Request) -> Result<FinalizeResponse, Error> {
        Ok(FinalizeResponse::done())
    }
}

/// Runs `R::reconcile` on a raw request: parse the JSON, call, serialize.
///
/// This is what [`export!`] wires to the component export; it is public so
/// that a reconciler can also be driven natively (unit tests, benchmarks).
pub fn run_reconcile<R: Reconciler>(raw: wit::Request) -> Result<wit::Response, wit::Error> {
    let request = Request::from_wit(raw)?;
    Ok(R::reconcile(&request)?.into_wit())
}

/// Runs `R::finalize` on a raw request, as [`run_reconcile`] does for reconcile.
pub fn run_finalize<R: Reconciler>(raw: wit::Request) -> Result<wit::FinalizeResponse, wit::Error> {
    let request = Request::from_wit(raw)?;
    Ok(R::finalize(&request)?.into_wit())
}

/// Exports a [`Reconciler`] as the component's `reconcile` and `finalize`.
#[macro_export]
macro_rules! export {
    ($reconciler:ident) => {
        impl $crate::bindings::Guest for $reconciler {
            fn reconcile(
                request: $crate::bindings::Request,
            ) -> ::core::result::Result<$crate::bindings::Response, $crate::bindings::Error> {
                $crate::run_reconcile::<$reconciler>(request)
            }

            fn finalize(
                request: $crate::bindings::Request,
            ) -> ::core::result::Result<$crate::bindings::FinalizeResponse, $crate::bindings::Error>
            {
                $crate::run_finalize::<$reconciler>(request)
            }
        }

        $crate::bindings::export_raw!($reconciler with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipeline step: keeps what earlier steps proposed, labels the parent
    /// and asks for a ConfigMap.
    struct Step;

    impl Reconciler for Step {
        fn reconcile(request: &Request) -> Result<Response, Error> {
            let proposed = request.desired().cloned().unwrap_or_default();
            Ok(Response::from(proposed)
                .parent_label("example.dev/checked", "true")
                .request_related(RelatedRequest::new("v1", "ConfigMap").name("settings")))
        }
    }

    fn raw(desired: Option<&str>) -> wit::Request {
        wit::Request {
            reconciler: "step".into(),
            parent: r#"{"metadata": {"name": "p"}}"#.into(),
            children: vec![],
            related: vec![],
            config: None,
            desired: desired.map(str::to_string),
        }
    }

    #[test]
    fn a_step_answers_the_proposed_state_with_its_own_additions() {
        let raw = run_reconcile::<Step>(raw(Some(
            r#"{"children": [{"kind": "Service"}], "status": {"phase": "Ready"}}"#,
        )))
        .unwrap();
        assert_eq!(raw.children, [r#"{"kind":"Service"}"#]);
        assert_eq!(raw.status.as_deref(), Some(r#"{"phase":"Ready"}"#));
        assert_eq!(
            raw.parent_labels,
            Some(vec![("example.dev/checked".into(), "true".into())])
        );
        assert_eq!(raw.related_requests[0].name.as_deref(), Some("settings"));
    }

    #[test]
    fn alone_a_step_starts_from_nothing() {
        let raw = run_reconcile::<Step>(raw(None)).unwrap();
        assert!(raw.children.is_empty());
        assert_eq!(raw.status, None);
    }

    #[test]
    fn a_malformed_desired_state_fails_the_call_as_transient() {
        let error = run_reconcile::<Step>(raw(Some("not json"))).unwrap_err();
        assert!(matches!(error, wit::Error::Transient(m) if m.contains("desired state")));
    }
}
