//! Adoption: whether an existing object named like a desired child, which
//! the caches do not show as one of this parent's children, may be written.
//! The host never silently takes over an object it did not create: by
//! default (`adopt: Never`) it refuses, and with `adopt: IfUnowned` it
//! takes only an object no controller owns.

use kube::api::ObjectMeta;

use super::labels::RECONCILER;
use crate::crd::Adopt;

/// What writing a desired child over an existing object amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// No such object: it is created.
    Create,
    /// This reconciler made it (the caches have not seen it yet).
    Ours,
    /// Someone else made it and no controller owns it; `adopt: IfUnowned`
    /// lets the host take it.
    Adopt,
}

/// Why an existing object is not written as a child.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    /// The object was not made by this reconciler and adoption is off.
    #[error(
        "{child} already exists and was not created by this reconciler, so nothing of this answer was written; delete or rename it, or set `adopt: IfUnowned` on its kind in `spec.children` to adopt it"
    )]
    Exists {
        /// `Kind namespace/name`.
        child: String,
    },
    /// Another owner controls the object.
    #[error(
        "{child} is controlled by {owner}, and an object has one controller, so nothing of this answer was written; rename the child or remove that owner"
    )]
    ControlledElsewhere {
        /// `Kind namespace/name`.
        child: String,
        /// `Kind name (uid)` of its controller.
        owner: String,
    },
}

impl ClaimError {
    /// UpperCamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Exists { .. } => "ChildExists",
            Self::ControlledElsewhere { .. } => "ChildControlledElsewhere",
        }
    }
}

/// Decides about `existing` (the object of a desired child's name, if
/// any), described as `child`, for the parent `parent_uid` of the
/// reconciler labelled `reconciler`.
pub fn claim(
    existing: Option<&ObjectMeta>,
    child: &str,
    reconciler: &str,
    parent_uid: &str,
    adopt: Adopt,
) -> Result<Claim, ClaimError> {
    let Some(existing) = existing else {
        return Ok(Claim::Create);
    };
    let controller = existing
        .owner_references
        .iter()
        .flatten()
        .find(|reference| reference.controller == Some(true));
    if let Some(owner) = controller.filter(|owner| owner.uid != parent_uid) {
        return Err(ClaimError::ControlledElsewhere {
            child: child.to_string(),
            owner: format!("{} {} ({})", owner.kind, owner.name, owner.uid),
        });
    }
    let made_here = existing
        .labels
        .as_ref()
        .and_then(|labels| labels.get(RECONCILER))
        .is_some_and(|label| label == reconciler);
    if made_here || controller.is_some() {
        return Ok(Claim::Ours);
    }
    match adopt {
        Adopt::IfUnowned => Ok(Claim::Adopt),
        Adopt::Never => Err(ClaimError::Exists {
            child: child.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta(value: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_missing_own_or_adoptable_objects_are_written() {
        let plain = meta(json!({"name": "x"}));
        let ours = meta(json!({"name": "x", "labels": {"sous.dev/reconciler": "shop.r"}}));
        let theirs = meta(json!({"name": "x", "labels": {"sous.dev/reconciler": "shop.other"}}));
        let owned_by = |uid: &str| {
            meta(json!({"name": "x", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid, "controller": true,
            }]}))
        };
        let claim = |existing: Option<&ObjectMeta>, adopt| {
            claim(existing, "ConfigMap shop/x", "shop.r", "p1", adopt)
        };
        assert_eq!(claim(None, Adopt::Never), Ok(Claim::Create));
        assert_eq!(claim(Some(&ours), Adopt::Never), Ok(Claim::Ours));
        assert_eq!(claim(Some(&owned_by("p1")), Adopt::Never), Ok(Claim::Ours));
        assert_eq!(claim(Some(&plain), Adopt::IfUnowned), Ok(Claim::Adopt));
        assert_eq!(claim(Some(&theirs), Adopt::IfUnowned), Ok(Claim::Adopt));
        let exists = claim(Some(&plain), Adopt::Never).unwrap_err();
        assert_eq!(exists.reason(), "ChildExists");
        assert!(
            exists.to_string().starts_with(
                "ConfigMap shop/x already exists and was not created by this reconciler"
            )
        );
        for adopt in [Adopt::Never, Adopt::IfUnowned] {
            let elsewhere = claim(Some(&owned_by("d1")), adopt).unwrap_err();
            assert_eq!(elsewhere.reason(), "ChildControlledElsewhere");
            assert!(
                elsewhere
                    .to_string()
                    .contains("controlled by Deployment web (d1)"),
                "{elsewhere}"
            );
        }
    }
}
