//! `sous render`: one parent through one module, printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use super::plan::{self, PlannedWrite};
use super::{CacheArgs, LimitArgs, policy};
use crate::crd::Mode;
use crate::inputs::{self, InputError};
use crate::render::{self, Observed, Rendered};

/// Output formats of `sous render`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// The desired children as multi-document YAML on stdout (ready for
    /// `kubectl apply -f -`); status, events and requeue on stderr.
    Yaml,
    /// Everything as one JSON object on stdout.
    Json,
}

/// `--mode` of `sous render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderMode {
    /// The parent is the reconciler's own.
    Composite,
    /// The parent is someone else's; its status is never written.
    Decorator,
}

/// What `sous render` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    #[serde(flatten)]
    rendered: &'a Rendered,
    /// The status is not written (Decorator mode).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    status_ignored: bool,
    /// The writes the host would make (`--plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Vec<PlannedWrite>>,
}

/// Arguments of `sous render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The reconciler component (`.wasm`).
    #[arg(long)]
    pub module: PathBuf,
    /// The parent object (YAML or JSON).
    #[arg(long)]
    pub parent: PathBuf,
    /// Observed children (YAML, several documents or a List); repeatable.
    #[arg(long)]
    pub observed: Vec<PathBuf>,
    /// Related objects passed read-only; repeatable.
    #[arg(long)]
    pub related: Vec<PathBuf>,
    /// Objects the guest's related requests may resolve to (as the host's
    /// caches would hold them); repeatable.
    #[arg(long)]
    pub requested: Vec<PathBuf>,
    /// The reconciler's configuration (`spec.config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// What earlier pipeline steps proposed, `{children: [...], status: {...}}`
    /// (`request.desired`).
    #[arg(long)]
    pub desired: Option<PathBuf>,
    /// The reconciler's name, as the guest sees it [default: the module's
    /// file name, or the `--reconciler` manifest's name].
    #[arg(long)]
    pub name: Option<String>,
    /// A Reconciler or ClusterReconciler manifest whose `spec.mode` and
    /// `spec.children` rules (update strategy, delete policy) the output
    /// follows.
    #[arg(long)]
    pub reconciler: Option<PathBuf>,
    /// Render as a `Decorator` (the status answered is ignored) or a
    /// `Composite` [default: the `--reconciler` manifest's mode, else
    /// composite].
    #[arg(long, value_enum)]
    pub mode: Option<RenderMode>,
    /// Also print the writes the host would make: the `--observed` children
    /// taken as this reconciler's own, each kind by its rules.
    #[arg(long)]
    pub plan: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// Call limits and answer rules.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Compiled-module cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Runs `sous render`; any error is one line naming what is wrong.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let observed = Observed {
        parent: inputs::read_parent(&args.parent)?,
        children: read_all(&args.observed)?,
        related: read_all(&args.related)?,
        config: args.config.as_deref().map(inputs::read_value).transpose()?,
        desired: args
            .desired
            .as_deref()
            .map(inputs::read_value)
            .transpose()?,
    };
    let bytes = inputs::read_module(&args.module)?;
    let policy = args.limits.policy()?;
    let runtime = args.cache.runtime(&policy.limits)?;
    let loaded = runtime
        .load(&bytes)
        .map_err(|e| InputError::new(&args.module, e.to_string()))?;
    tracing::info!(module = %args.module.display(), digest = %loaded.module.digest(), origin = ?loaded.origin, elapsed = ?loaded.elapsed, "module loaded");
    let manifest = args
        .reconciler
        .as_deref()
        .map(policy::read_manifest)
        .transpose()?;
    let name = args
        .name
        .clone()
        .or_else(|| manifest.as_ref().map(|(key, _)| key.name.clone()))
        .unwrap_or_else(|| module_name(&args.module));
    let requested = read_all(&args.requested)?;
    let rendered = render::render(
        &loaded.module,
        &name,
        &observed,
        &policy.limits,
        &policy.rules,
        &render::GivenObjects {
            objects: &requested,
            rules: &policy.rules,
        },
    )
    .with_context(|| format!("reconciler `{name}` ({})", args.module.display()))?;
    let decorator = match (args.mode, &manifest) {
        (Some(mode), _) => mode == RenderMode::Decorator,
        (None, Some((_, spec))) => spec.mode == Mode::Decorator,
        (None, None) => false,
    };
    let plan = if args.plan {
        let (key, rules) = match &manifest {
            Some((key, spec)) => (key.clone(), spec.children.as_slice()),
            None => (plan::key_for(&name, &observed.parent), &[][..]),
        };
        let writes = plan::offline_plan(
            &key,
            &observed.parent,
            rules,
            &observed.children,
            &rendered.children,
        )?;
        Some(writes)
    } else {
        None
    };
    let output = Output {
        rendered: &rendered,
        status_ignored: decorator && rendered.status.is_some(),
        plan,
    };
    print(&output, args.output)
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Value>, InputError> {
    let mut objects = Vec::new();
    for path in paths {
        objects.extend(inputs::read_objects(path)?);
    }
    Ok(objects)
}

/// `my_app.wasm` -> `my-app`.
fn module_name(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "reconciler".into())
}

fn print(output: &Output, format: Format) -> anyhow::Result<()> {
    match write_output(output, format) {
        // The reader went away (`sous render ... | head`): not our failure.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn write_output(output: &Output, format: Format) -> anyhow::Result<()> {
    let rendered = output.rendered;
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, output)?;
            writeln!(stdout)?;
        }
        Format::Yaml => {
            for child in &rendered.children {
                write!(stdout, "---\n{}", serde_yaml_ng::to_string(child)?)?;
            }
            let mut stderr = std::io::stderr().lock();
            if let Some(status) = &rendered.status {
                if output.status_ignored {
                    writeln!(
                        stderr,
                        "status (ignored: a Decorator never writes its parent's status): {status}"
                    )?;
                } else {
                    writeln!(stderr, "status: {status}")?;
                }
            }
            for (what, entries) in [
                ("parent labels", &rendered.parent_labels),
                ("parent annotations", &rendered.parent_annotations),
            ] {
                if let Some(entries) = entries {
                    writeln!(stderr, "{what}: {}", serde_json::to_string(entries)?)?;
                }
            }
            for patch in &rendered.patches {
                writeln!(stderr, "patch: {patch}")?;
            }
            for request in &rendered.related_requests {
                writeln!(
                    stderr,
                    "related request: {}",
                    serde_json::to_string(request)?
                )?;
            }
            for write in output.plan.iter().flatten() {
                match &write.why {
                    Some(why) => writeln!(stderr, "plan: {} {}: {why}", write.action, write.child)?,
                    None => writeln!(stderr, "plan: {} {}", write.action, write.child)?,
                }
            }
            for event in &rendered.events {
                writeln!(
                    stderr,
                    "event: {} {}: {}",
                    event.event_type, event.reason, event.message
                )?;
            }
            if let Some(ms) = rendered.requeue_after_ms {
                writeln!(stderr, "requeue after: {ms} ms")?;
            }
        }
    }
    Ok(())
}
