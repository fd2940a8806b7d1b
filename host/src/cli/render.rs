//! `sous render`: one parent through one module, printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{CacheArgs, LimitArgs};
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
    /// The reconciler's configuration (`spec.config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The reconciler's name, as the guest sees it [default: the module's file name].
    #[arg(long)]
    pub name: Option<String>,
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
    };
    let bytes = inputs::read_module(&args.module)?;
    let policy = args.limits.policy()?;
    let runtime = args.cache.runtime(&policy.limits)?;
    let loaded = runtime
        .load(&bytes)
        .map_err(|e| InputError::new(&args.module, e.to_string()))?;
    tracing::info!(module = %args.module.display(), digest = %loaded.module.digest(), origin = ?loaded.origin, elapsed = ?loaded.elapsed, "module loaded");
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| module_name(&args.module));
    let rendered = render::render(
        &loaded.module,
        &name,
        &observed,
        &policy.limits,
        &policy.rules,
    )
    .with_context(|| format!("reconciler `{name}` ({})", args.module.display()))?;
    print(&rendered, args.output)
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

fn print(rendered: &Rendered, format: Format) -> anyhow::Result<()> {
    match write_output(rendered, format) {
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

fn write_output(rendered: &Rendered, format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, rendered)?;
            writeln!(stdout)?;
        }
        Format::Yaml => {
            for child in &rendered.children {
                write!(stdout, "---\n{}", serde_yaml_ng::to_string(child)?)?;
            }
            let mut stderr = std::io::stderr().lock();
            if let Some(status) = &rendered.status {
                writeln!(stderr, "status: {status}")?;
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
