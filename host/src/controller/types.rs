//! Every object a guest receives carries its `apiVersion` and `kind`. The
//! API server leaves them out of the items of a list of a built-in kind, so
//! the objects a watch lists when it starts (parents, children, related
//! objects that already exist) would otherwise arrive untyped, and the SDKs'
//! lookups by kind would silently miss them.

use kube::api::{ApiResource, DynamicObject, TypeMeta};

/// Fills in `apiVersion` and `kind` from `resource` where the object has none.
pub fn typed(resource: &ApiResource) -> impl FnMut(&mut DynamicObject) + Send + 'static {
    let types = TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    };
    move |object| {
        let missing = object
            .types
            .as_ref()
            .is_none_or(|t| t.api_version.is_empty() || t.kind.is_empty());
        if missing {
            object.types = Some(types.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::GroupVersionKind;
    use serde_json::json;

    use super::*;

    #[test]
    fn an_untyped_list_item_gets_its_kind_and_a_typed_object_keeps_its_own() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
        let mut fill = typed(&resource);
        let mut listed: DynamicObject =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"}}))
                .unwrap();
        assert!(listed.types.is_none());
        fill(&mut listed);
        let value = serde_json::to_value(&listed).unwrap();
        assert_eq!(value["apiVersion"], "apps/v1");
        assert_eq!(value["kind"], "Deployment");

        let mut watched: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1beta2", "kind": "Deployment",
            "metadata": {"name": "web"},
        }))
        .unwrap();
        fill(&mut watched);
        assert_eq!(watched.types.unwrap().api_version, "apps/v1beta2");
    }
}
