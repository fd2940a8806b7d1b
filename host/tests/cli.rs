//! The `sous` binary as a user runs it: real guests, real files, exit codes
//! and one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;
use sous::crd::ModuleSource;
use sous::runtime::Digest;
use sous_tests::guests;

fn sous(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sous"))
        .args(args)
        .env(
            "SOUS_CACHE_DIR",
            std::env::temp_dir().join("sous-cli-tests-cache"),
        )
        .output()
        .expect("running sous")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const PARENT: &str = "apiVersion: example.sous.dev/v1
kind: MyApp
metadata: {name: web, namespace: shop, uid: 5f1c, generation: 2}
spec: {replicas: 3, image: 'nginx:1.27', port: 8080}
";

/// `sous render` of the my-app guest on [`PARENT`], with `extra` arguments;
/// it must succeed.
fn render_my_app(extra: &[&str]) -> Output {
    let output = try_render_my_app(extra);
    assert!(output.status.success(), "{}", text(&output.stderr));
    output
}

/// `sous render` of the my-app guest on [`PARENT`], with `extra` arguments.
fn try_render_my_app(extra: &[&str]) -> Output {
    try_render("my_app", PARENT, extra)
}

/// `sous render` of guest `crate_name` on the parent `parent` (YAML), with
/// `extra` arguments.
fn try_render(crate_name: &str, parent: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let parent = write(dir.path(), "parent.yaml", parent.as_bytes());
    let module = guests::guest(crate_name);
    let mut args = vec![
        "render",
        "--module",
        module.to_str().unwrap(),
        "--parent",
        parent.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sous(&args)
}

#[test]
fn render_prints_the_desired_children_as_yaml_and_the_status_on_stderr() {
    let output = render_my_app(&[]);
    let stdout = text(&output.stdout);
    let kinds: Vec<_> = stdout.lines().filter(|l| l.starts_with("kind: ")).collect();
    assert_eq!(kinds, ["kind: Deployment", "kind: Service"], "{stdout}");
    assert!(stdout.contains("namespace: shop"));
    assert!(text(&output.stderr).contains(r#"status: {"phase":"Pending","readyReplicas":0}"#));
}

#[test]
fn render_as_json_gives_one_object_with_everything() {
    let output = render_my_app(&["-o", "json"]);
    let rendered: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rendered["children"][0]["spec"]["replicas"], 3);
    assert_eq!(rendered["status"]["phase"], "Pending");
}

const DEPLOYMENTS_ONLY: &str =
    "policy:\n  allowedKinds: [{apiVersion: apps/v1, kind: Deployment}]\n";

#[test]
fn a_policy_file_refuses_what_the_cluster_would() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.yaml", DEPLOYMENTS_ONLY.as_bytes());
    let output = try_render_my_app(&["--policy", policy.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "response rejected, nothing would be applied: child #2 (v1/Service `web`): kind `v1/Service` is not allowed; allowed kinds: apps/v1/Deployment"
        ),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_shipped_default_policy_admits_my_app_and_excludes_the_limit_flags() {
    let default = guests::repo_root().join("policies/default.yaml");
    let output = render_my_app(&["--policy", default.to_str().unwrap()]);
    assert!(text(&output.stdout).contains("kind: Service"));

    let both = try_render_my_app(&["--policy", default.to_str().unwrap(), "--fuel", "5"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        text(&both.stderr).contains("cannot be used with"),
        "{}",
        text(&both.stderr)
    );
}

#[test]
fn bad_input_gets_a_one_line_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good_module = guests::guest_bytes("my_app");
    let good_parent = write(dir.path(), "parent.yaml", PARENT.as_bytes());
    let modules = [
        ("missing.wasm", None, "cannot read the module"),
        ("empty.wasm", Some(Vec::new()), "the module is empty"),
        (
            "truncated.wasm",
            Some(good_module[..good_module.len() / 2].to_vec()),
            "not a valid component",
        ),
        (
            "random.wasm",
            Some(
                (0..4096u32)
                    .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                    .collect(),
            ),
            "not a WebAssembly file",
        ),
        (
            "core.wasm",
            Some(b"\0asm\x01\0\0\0".to_vec()),
            "a core WebAssembly module, not a component",
        ),
        // The smallest valid component: it exports nothing.
        (
            "other-world.wasm",
            Some(b"\0asm\x0d\0\x01\0".to_vec()),
            "does not implement the `sous:reconciler/reconciler` world",
        ),
    ];
    for (name, contents, problem) in modules {
        let path = match contents {
            Some(bytes) => write(dir.path(), name, &bytes),
            None => dir.path().join(name),
        };
        assert_one_line_error(
            &[
                "--module",
                path.to_str().unwrap(),
                "--parent",
                good_parent.to_str().unwrap(),
            ],
            &path,
            problem,
        );
    }

    let module = write(dir.path(), "my_app.wasm", &good_module);
    let parents = [
        ("list.yaml", "- a\n- b\n", "not a YAML or JSON object"),
        (
            "nameless.yaml",
            "kind: MyApp\nmetadata: {namespace: shop}\n",
            "has no `metadata.name`",
        ),
        ("broken.yaml", "spec: [unclosed\n", "not valid YAML or JSON"),
    ];
    for (name, contents, problem) in parents {
        let path = write(dir.path(), name, contents.as_bytes());
        assert_one_line_error(
            &[
                "--module",
                module.to_str().unwrap(),
                "--parent",
                path.to_str().unwrap(),
            ],
            &path,
            problem,
        );
    }
}

fn assert_one_line_error(args: &[&str], path: &Path, problem: &str) {
    let mut full = vec!["render"];
    full.extend_from_slice(args);
    let output = sous(&full);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{path:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{path:?}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!("error: `{}`: ", path.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(problem),
        "{path:?}: {stderr:?} lacks {problem:?}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_examples_pass_their_golden_tests() {
    guests::guest("my_app");
    let examples = guests::repo_root().join("guests/rust/examples");
    let output = sous(&["test", examples.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" passed, 0 failed") && !last.starts_with("0 "),
        "{stdout}"
    );
}

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff() {
    let module = guests::guest("my_app");
    let suite = tempfile::tempdir().unwrap();
    let case = suite.path().join("tests/scaled");
    std::fs::create_dir_all(&case).unwrap();
    write(
        suite.path(),
        "sous.yaml",
        format!("module: {}\nreconciler: my-app\n", module.display()).as_bytes(),
    );
    write(&case, "parent.yaml", PARENT.as_bytes());

    let update = sous(&["test", "--update", suite.path().to_str().unwrap()]);
    assert!(update.status.success(), "{}", text(&update.stdout));
    let passing = sous(&["test", suite.path().to_str().unwrap()]);
    assert!(
        text(&passing.stdout).ends_with("1 passed, 0 failed\n"),
        "{}",
        text(&passing.stdout)
    );

    let expected = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    std::fs::write(
        case.join("expected.yaml"),
        expected.replace("replicas: 3", "replicas: 4"),
    )
    .unwrap();
    let failing = sous(&["test", suite.path().to_str().unwrap()]);
    let stdout = text(&failing.stdout);
    assert_eq!(failing.status.code(), Some(1));
    assert!(stdout.contains("FAIL  my-app/scaled"), "{stdout}");
    assert!(
        stdout.contains("-    replicas: 4\n+    replicas: 3\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn a_suite_may_name_a_policy_file() {
    let module = guests::guest("my_app");
    let suite = tempfile::tempdir().unwrap();
    let case = suite.path().join("tests/refused");
    std::fs::create_dir_all(&case).unwrap();
    write(
        suite.path(),
        "sous.yaml",
        format!(
            "module: {}\nreconciler: my-app\npolicy: policy.yaml\n",
            module.display()
        )
        .as_bytes(),
    );
    write(suite.path(), "policy.yaml", DEPLOYMENTS_ONLY.as_bytes());
    write(&case, "parent.yaml", PARENT.as_bytes());

    let update = sous(&["test", "--update", suite.path().to_str().unwrap()]);
    assert!(update.status.success(), "{}", text(&update.stdout));
    let expected: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(case.join("expected.yaml")).unwrap())
            .unwrap();
    assert_eq!(expected["error"]["reason"], "InvalidResponse");
    let message = expected["error"]["message"].as_str().unwrap();
    assert!(message.contains("v1/Service `web`"), "{message}");
}

#[test]
fn crds_prints_both_definitions_as_yaml() {
    let output = sous(&["crds"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let names: Vec<String> = stdout
        .split("---\n")
        .filter(|document| !document.trim().is_empty())
        .map(|document| {
            let crd: Value = serde_yaml_ng::from_str(document).expect("each document is YAML");
            assert_eq!(crd["kind"], "CustomResourceDefinition");
            crd["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        names,
        ["reconcilers.sous.dev", "clusterreconcilers.sous.dev"]
    );
}

/// What `sous push --dry-run` printed.
struct Pushed {
    /// The module ConfigMaps, in order.
    config_maps: Vec<ConfigMap>,
    /// The Reconciler or ClusterReconciler.
    reconciler: Value,
    /// The ServiceAccount, Role and RoleBinding, in that order.
    grants: Vec<Value>,
    /// What it said on stderr.
    stderr: String,
}

/// `sous push --dry-run` of the my-app guest with `extra` arguments.
fn push_my_app(extra: &[&str]) -> Pushed {
    let module = guests::guest("my_app");
    let mut args = vec![
        "push",
        "--dry-run",
        "--name",
        "my-app",
        "--module",
        module.to_str().unwrap(),
        "--parent-kind",
        "example.sous.dev/v1/MyApp",
        "--child-kind",
        "apps/v1/Deployment",
        "--child-kind",
        "v1/Service",
    ];
    args.extend_from_slice(extra);
    let output = sous(&args);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let documents: Vec<Value> = text(&output.stdout)
        .split("---\n")
        .filter(|document| !document.trim().is_empty())
        .map(|document| serde_yaml_ng::from_str(document).expect("each document is YAML"))
        .collect();
    let (config_maps, rest): (Vec<Value>, Vec<Value>) = documents
        .into_iter()
        .partition(|document| document["kind"] == "ConfigMap");
    let (mut reconcilers, grants): (Vec<Value>, Vec<Value>) = rest
        .into_iter()
        .partition(|document| document["apiVersion"] == "sous.dev/v1alpha1");
    assert_eq!(reconcilers.len(), 1, "one reconciler");
    Pushed {
        config_maps: config_maps
            .into_iter()
            .map(|document| serde_json::from_value(document).expect("a ConfigMap"))
            .collect(),
        reconciler: reconcilers.remove(0),
        grants,
        stderr,
    }
}

/// The module the host would read from `config_maps` for `reconciler`.
fn module_of(reconciler: &Value, config_maps: &[ConfigMap]) -> sous::source::ModuleBytes {
    let source: ModuleSource =
        serde_json::from_value(reconciler["spec"]["module"].clone()).unwrap();
    sous::source::from_config_maps(&source, |name| {
        config_maps
            .iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(name))
    })
    .expect("the pushed module reads back")
}

#[test]
fn push_dry_run_prints_the_module_config_map_and_the_reconciler() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", b"greeting: hello\n");
    let Pushed {
        config_maps,
        reconciler,
        grants,
        stderr,
    } = push_my_app(&["--namespace", "shop", "--config", config.to_str().unwrap()]);
    let bytes = guests::guest_bytes("my_app");
    let digest = Digest::of(&bytes).to_string();

    assert_eq!(config_maps.len(), 1);
    let part = &config_maps[0].metadata;
    let part_name = format!("my-app-{}-0", &digest[..10]);
    assert_eq!(part.name.as_deref(), Some(part_name.as_str()));
    assert_eq!(part.namespace.as_deref(), Some("shop"));
    assert_eq!(
        part.labels.as_ref().unwrap()["sous.dev/module-of"],
        "shop.my-app"
    );

    assert_eq!(reconciler["apiVersion"], "sous.dev/v1alpha1");
    assert_eq!(reconciler["kind"], "Reconciler");
    assert_eq!(reconciler["metadata"]["namespace"], "shop");
    let spec = &reconciler["spec"];
    assert_eq!(spec["parent"]["kind"], "MyApp");
    assert_eq!(spec["children"][1]["kind"], "Service");
    assert_eq!(spec["config"]["greeting"], "hello");
    assert_eq!(
        spec["module"],
        serde_json::json!({
            "configMapRef": {"name": part_name, "key": "module.zst"},
            "sha256": digest,
        })
    );
    assert_eq!(module_of(&reconciler, &config_maps).bytes, bytes);
    assert_eq!(spec["serviceAccountName"], "my-app");
    let kinds: Vec<&str> = grants.iter().map(|g| g["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
    assert_eq!(
        grants[1]["rules"],
        serde_json::json!([
            {"apiGroups": [""], "resources": ["services"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["apps"], "resources": ["deployments"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["example.sous.dev"], "resources": ["myapps"],
             "verbs": ["get", "list", "watch", "patch"]},
        ])
    );
    assert_eq!(grants[2]["subjects"][0]["name"], "my-app");
    assert_eq!(grants[2]["subjects"][0]["namespace"], "shop");
    assert!(
        stderr.starts_with("module ")
            && stderr.contains(&format!("sha256 {digest}, {} bytes", bytes.len()))
            && stderr.ends_with(", 1 part(s)\n"),
        "{stderr}"
    );
}

#[test]
fn push_dry_run_of_a_cluster_reconciler_splits_into_parts_in_the_host_namespace() {
    let Pushed {
        config_maps,
        reconciler,
        grants,
        ..
    } = push_my_app(&["--cluster", "--max-part-bytes", "30000"]);
    assert!(grants.is_empty(), "a ClusterReconciler gets no Role");
    assert!(config_maps.len() > 1, "{}", config_maps.len());
    for config_map in &config_maps {
        assert_eq!(
            config_map.metadata.namespace.as_deref(),
            Some("sous-system")
        );
        let part = &config_map.binary_data.as_ref().unwrap()["module.zst"];
        assert!(part.0.len() <= 30000);
    }
    assert_eq!(reconciler["kind"], "ClusterReconciler");
    assert!(reconciler["metadata"].get("namespace").is_none());
    assert_eq!(
        reconciler["spec"]["module"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        config_maps.len()
    );
    let module = module_of(&reconciler, &config_maps);
    assert_eq!(module.bytes, guests::guest_bytes("my_app"));
}

#[test]
fn push_dry_run_without_rbac_names_only_the_given_service_account() {
    let pushed = push_my_app(&[
        "--namespace",
        "shop",
        "--no-rbac",
        "--service-account",
        "ops",
    ]);
    assert!(pushed.grants.is_empty(), "{:?}", pushed.grants);
    assert_eq!(pushed.reconciler["spec"]["serviceAccountName"], "ops");
    let pushed = push_my_app(&["--namespace", "shop", "--no-rbac"]);
    assert!(
        pushed.reconciler["spec"]
            .get("serviceAccountName")
            .is_none()
    );
}

#[test]
fn push_refuses_a_file_that_is_not_a_module_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "module.wasm", b"not a module");
    let output = sous(&[
        "push",
        "--dry-run",
        "--namespace",
        "shop",
        "--name",
        "my-app",
        "--module",
        path.to_str().unwrap(),
        "--parent-kind",
        "example.sous.dev/v1/MyApp",
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: `{}`: the module is not WebAssembly (raw, zstd or gzip): found bytes starting 6e6f7420",
            path.display()
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn namespaced_checks_answers_and_policies_as_the_host_does() {
    let dir = tempfile::tempdir().unwrap();
    let parent = "apiVersion: example.sous.dev/v1\nkind: Hostile\nmetadata: {name: h, namespace: tenant}\nspec: {attack: elsewhere, namespace: victim}\n";
    let render = |extra: &[&str]| try_render("hostile", parent, extra);
    let open = render(&[]);
    assert!(open.status.success(), "{}", text(&open.stderr));
    assert!(text(&open.stdout).contains("namespace: victim"));

    let confined = render(&["--namespaced"]);
    assert!(!confined.status.success());
    assert!(
        text(&confined.stderr).contains("namespace `victim` is not allowed"),
        "{}",
        text(&confined.stderr)
    );

    let wide = write(
        dir.path(),
        "wide.yaml",
        b"policy: {allowedNamespaces: ['*']}\n",
    );
    let refused = render(&["--namespaced", "--policy", wide.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(
            "`policy.allowedNamespaces` names namespace `*`, but a namespaced Reconciler reaches only its own namespace"
        ),
        "{}",
        text(&refused.stderr)
    );

    let manifest = write(
        dir.path(),
        "reconciler.yaml",
        b"apiVersion: sous.dev/v1alpha1\nkind: Reconciler\nmetadata: {name: r, namespace: tenant}\nspec:\n  parent: {apiVersion: example.sous.dev/v1, kind: Hostile}\n  children: [{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding}]\n  module: {configMapRef: {name: m, key: k}}\n",
    );
    let refused = render(&["--policy", manifest.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(
            "child kind `rbac.authorization.k8s.io/v1/ClusterRoleBinding` is cluster-scoped, but a namespaced Reconciler reaches only its own namespace"
        ),
        "{}",
        text(&refused.stderr)
    );
}
