//! The floor: a minimal client of our own (kube-rs; no sandbox, no caches,
//! no plan, no dry run) that server-side applies exactly the children and
//! statuses the host writes for the same parents, as many at once as help.
//! What the host writes is rendered beforehand, outside the clock: the
//! my-app guest's answer for each parent, stamped as the host stamps it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use sous::controller::apply::{self, Owner};
use sous::controller::kinds::Kind;
use sous::controller::status::{self, Readiness};
use sous::crd::{ReconcilerKey, TypeMeta};
use sous::render::{self, NoRelatedObjects, Observed};
use sous::runtime::{Limits, Runtime, RuntimeOptions};
use sous::validate::Rules;

use crate::cluster::{Bench, NAMESPACE};
use crate::probe;

/// The floor's field manager.
const FIELD_MANAGER: &str = "scale-floor";

/// What the floor took.
#[derive(Debug)]
pub struct FloorRun {
    pub elapsed: Duration,
    pub writes: u64,
    pub apiserver_cpu: Duration,
}

/// One parent's writes: its children and its status.
struct Writes {
    parent: String,
    children: Vec<(ApiResource, String, Value)>,
    status: Value,
}

/// Writes what the host would for `count` new parents, `in_flight` parents
/// at once, each parent's writes at once.
pub async fn measure(count: usize, in_flight: usize) -> anyhow::Result<FloorRun> {
    let bench = Bench::start().await?;
    let apiserver = bench
        .cluster
        .apiserver_pid()
        .context("kube-apiserver's pid")?;
    let (parents, _) = bench.create_parents(count).await?;
    let work = prepare(&parents)?;
    let (writes_before, _) = probe::apiserver_writes(&bench.client).await;
    let cpu_before = probe::cpu_time(apiserver);
    let started = Instant::now();
    let client = &bench.client;
    let parents_api = bench.parents();
    stream::iter(work)
        .map(|writes| write(client, &parents_api, writes))
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    let elapsed = started.elapsed();
    let (writes, _) = probe::apiserver_writes(&bench.client).await;
    Ok(FloorRun {
        elapsed,
        writes: writes - writes_before,
        apiserver_cpu: probe::cpu_time(apiserver).saturating_sub(cpu_before),
    })
}

async fn write(
    client: &kube::Client,
    parents: &Api<DynamicObject>,
    writes: Writes,
) -> anyhow::Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let children = writes.children.iter().map(|(resource, name, object)| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, resource);
        let params = params.clone();
        async move {
            api.patch(name, &params, &Patch::Apply(object))
                .await
                .map(drop)
        }
    });
    let status_patch = Patch::Apply(&writes.status);
    let status = parents.patch_status(&writes.parent, &params, &status_patch);
    let (children, status) = futures::join!(try_join_all(children), status);
    children?;
    status?;
    Ok(())
}

/// Renders the my-app guest for every parent and stamps its children as the
/// host does (labels, controller ownerReference, applied hash).
fn prepare(parents: &[DynamicObject]) -> anyhow::Result<Vec<Writes>> {
    let runtime = Runtime::new(&RuntimeOptions::default())?;
    let module = runtime
        .load(&sous_tests::guests::guest_bytes("my_app"))?
        .module;
    let parent_kind = kind_of(&GroupVersionKind::gvk("example.sous.dev", "v1", "MyApp"));
    let key = ReconcilerKey::namespaced(NAMESPACE, "my-app");
    let now = status::now();
    parents
        .iter()
        .map(|parent| {
            let observed = Observed {
                parent: serde_json::to_value(parent)?,
                ..Observed::default()
            };
            let rendered = render::render(&module, "my-app", &observed, &Limits::default(), &Rules::default(), &NoRelatedObjects)?;
            let owner = Owner { parent, kind: &parent_kind, key: &key };
            let children = rendered
                .children
                .into_iter()
                .map(|mut child| {
                    let kind = kind_of(&TypeMeta::of_object(&child).gvk());
                    apply::stamp(&mut child, &kind, &owner);
                    let name = child["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                    (kind.resource, name, child)
                })
                .collect::<Vec<_>>();
            let readiness = Readiness::reconciled(children.len());
            let status = status::desired_status(parent, rendered.status.as_ref(), &readiness, &now);
            Ok(Writes {
                parent: parent.metadata.name.clone().unwrap_or_default(),
                children,
                status: json!({"apiVersion": "example.sous.dev/v1", "kind": "MyApp", "status": status}),
            })
        })
        .collect()
}

fn kind_of(gvk: &GroupVersionKind) -> Kind {
    Kind {
        resource: ApiResource::from_gvk(gvk),
        namespaced: true,
        has_status: false,
    }
}
