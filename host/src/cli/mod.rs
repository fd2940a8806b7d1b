//! The `sous` command line: argument types shared by the subcommands.

pub mod new;
pub mod plan;
pub mod policy;
pub mod push;
pub mod render;
pub mod run;
pub mod test;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::inputs::InputError;
use crate::policy::Policy;
use crate::runtime::{EngineOptions, Limits, LoadError, Runtime, RuntimeOptions};
use crate::telemetry::LogFormat;
use crate::tenancy::confine;
use crate::validate::{NamespaceRule, Rules, TypeRef};

/// Kubernetes operators as uploadable WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "sous", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How log lines are written to stderr (the level comes from `SOUS_LOG`).
    #[arg(
        long,
        global = true,
        env = "SOUS_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a reconciler on a parent offline and print the desired children.
    Render(render::RenderArgs),
    /// Render every golden case under a directory and compare with the expected output.
    Test(test::TestArgs),
    /// Print the CustomResourceDefinitions of Reconciler and ClusterReconciler.
    Crds,
    /// Upload a module into ConfigMaps and apply the Reconciler that runs it.
    Push(push::PushArgs),
    /// Run the operator host: watch Reconcilers and reconcile their parents.
    Run(run::RunArgs),
    /// Scaffold a reconciler project in one of the SDK languages.
    New(new::NewArgs),
}

/// The namespace the host works in when neither `--namespace` nor
/// `POD_NAMESPACE` names one: where ClusterReconcilers' modules live.
pub const DEFAULT_HOST_NAMESPACE: &str = "sous-system";

/// Limits of one guest call and rules of its answer: a policy file, or flags
/// (whose defaults are the host's default limits, any kind, any namespace).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// A policy as in `policies/`: a Reconciler/ClusterReconciler manifest
    /// (checked exactly as the cluster would) or a bare `policy:` block. It
    /// replaces the limit flags below, which cannot be combined with it.
    #[arg(
        long,
        conflicts_with_all = ["fuel", "timeout_ms", "max_memory_mib", "max_response_bytes", "max_objects", "allow_kinds"]
    )]
    pub policy: Option<PathBuf>,
    /// Fuel (about one unit per WebAssembly instruction) a call may use.
    #[arg(long, default_value_t = Limits::default().fuel)]
    pub fuel: u64,
    /// Wall-clock time a call may take, in milliseconds.
    #[arg(long, default_value_t = Limits::default().deadline.as_millis() as u64)]
    pub timeout_ms: u64,
    /// Linear memory a call may use, in MiB.
    #[arg(long, default_value_t = Limits::default().max_memory_bytes >> 20)]
    pub max_memory_mib: usize,
    /// Size of a response, in bytes.
    #[arg(long, default_value_t = Limits::default().max_response_bytes)]
    pub max_response_bytes: usize,
    /// Number of desired objects in a response.
    #[arg(long, default_value_t = Limits::default().max_objects)]
    pub max_objects: usize,
    /// Kinds the guest may produce, as apiVersion/Kind (e.g. `apps/v1/Deployment`); repeatable. Default: any.
    #[arg(long = "allow-kind", value_parser = TypeRef::parse)]
    pub allow_kinds: Vec<TypeRef>,
    /// Check as the host checks a namespaced Reconciler: children only in
    /// the parent's namespace, nothing cluster-scoped, and a policy asking
    /// for more refused. (A `Reconciler` manifest given to `--policy` is
    /// namespaced by its kind.)
    #[arg(long)]
    pub namespaced: bool,
}

impl LimitArgs {
    /// The policy in force: the `--policy` file's, else the flags'. Either
    /// way Kubernetes' built-in cluster-scoped kinds get no namespace.
    pub fn policy(&self) -> Result<Policy, InputError> {
        let mut policy = match &self.policy {
            Some(path) => policy::read(path, self.namespaced)?,
            None => self.flags_policy(),
        };
        if self.namespaced {
            confine::confine_rules(&mut policy.rules);
        }
        Ok(policy)
    }

    /// The policy of the limit flags.
    fn flags_policy(&self) -> Policy {
        Policy {
            limits: Limits {
                fuel: self.fuel,
                deadline: Duration::from_millis(self.timeout_ms),
                max_memory_bytes: self.max_memory_mib << 20,
                max_response_bytes: self.max_response_bytes,
                max_objects: self.max_objects,
            },
            rules: Rules {
                allowed_kinds: (!self.allow_kinds.is_empty()).then(|| self.allow_kinds.clone()),
                namespaces: NamespaceRule::Any,
                cluster_scoped: policy::builtin_cluster_scoped(),
                allow_cluster_scoped: true,
                readable: None,
            },
        }
    }
}

/// Where compiled modules are cached.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Directory of precompiled modules [default: $XDG_CACHE_HOME/sous or ~/.cache/sous].
    #[arg(long, env = "SOUS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every module afresh and keep nothing on disk.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache directory, unless caching is off.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            Some(base.join("sous"))
        })
    }

    /// A runtime for offline use: one call at a time, memory allocated on
    /// demand, sized for `limits`.
    pub fn runtime(&self, limits: &Limits) -> Result<Runtime, LoadError> {
        Runtime::new(&RuntimeOptions {
            engine: EngineOptions {
                pool_slots: None,
                max_memory_bytes: limits.max_memory_bytes,
            },
            cache_dir: self.dir(),
        })
    }
}
