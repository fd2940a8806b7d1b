//! A control plane of our own: etcd on loopback ports, kube-apiserver (RBAC
//! on, a token per user) on an address of the caller's choice (loopback, or
//! the machine's own address when pods of a node must reach it) and, when
//! present, kube-controller-manager. Every file — etcd data, keys,
//! certificates, logs, the kubeconfig — lives in one directory.

use std::future::Future;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use kube::config::Kubeconfig;
use serde_json::json;

use super::binaries::Binaries;
use super::process::Process;
use super::{ADMIN, TOKEN_USERS};

/// How long each process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How often readiness is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The running processes, dropped (so killed) in reverse order of start.
/// kube-apiserver and etcd can be stopped and started again (fault trials).
pub(crate) struct LocalControlPlane {
    controller_manager: Option<Process>,
    apiserver: Mutex<Option<Process>>,
    etcd: Mutex<Option<Process>>,
    /// What starting kube-apiserver and etcd again needs.
    restart: Restart,
}

/// How kube-apiserver and etcd were started, to start them again alike.
struct Restart {
    binaries: Binaries,
    dir: PathBuf,
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: SocketAddr,
    sa_key: PathBuf,
    kubeconfig: PathBuf,
    /// Numbers the logs of restarted processes.
    starts: AtomicUsize,
}

impl LocalControlPlane {
    /// Where kube-apiserver listens.
    pub(crate) fn api_server(&self) -> SocketAddr {
        self.restart.apiserver
    }

    /// The process id of kube-apiserver, while it runs.
    pub(crate) fn apiserver_pid(&self) -> Option<u32> {
        self.apiserver
            .lock()
            .expect("apiserver lock")
            .as_ref()
            .map(Process::id)
    }

    /// Whether kube-controller-manager runs.
    pub(crate) fn has_controller_manager(&self) -> bool {
        self.controller_manager.is_some()
    }

    /// Stops kube-apiserver (SIGKILL), as a crash or a node loss would.
    pub(crate) fn stop_apiserver(&self) {
        drop(self.apiserver.lock().expect("apiserver lock").take());
    }

    /// Starts kube-apiserver again on its port, and waits until it is ready.
    pub(crate) async fn start_apiserver(&self) -> anyhow::Result<()> {
        let r = &self.restart;
        let log = format!(
            "kube-apiserver.{}.log",
            r.starts.fetch_add(1, Ordering::Relaxed)
        );
        let mut apiserver = start_apiserver(
            &r.binaries,
            &r.dir,
            r.etcd_client,
            r.apiserver,
            &r.sa_key,
            &log,
        )?;
        let client = kube::Client::try_from(super::context_config(&r.kubeconfig, ADMIN).await?)?;
        wait_ready(&mut apiserver, "ready (/readyz)", || readyz(&client)).await?;
        *self.apiserver.lock().expect("apiserver lock") = Some(apiserver);
        Ok(())
    }

    /// Kills etcd and starts it again on its data, waiting until it listens.
    pub(crate) async fn restart_etcd(&self) -> anyhow::Result<()> {
        let r = &self.restart;
        drop(self.etcd.lock().expect("etcd lock").take());
        let log = format!("etcd.{}.log", r.starts.fetch_add(1, Ordering::Relaxed));
        let mut etcd = start_etcd(&r.binaries, &r.dir, r.etcd_client, r.etcd_peer, &log)?;
        wait_ready(&mut etcd, "accepting connections", || async {
            port_open(etcd_address(r.etcd_client))
        })
        .await?;
        *self.etcd.lock().expect("etcd lock") = Some(etcd);
        Ok(())
    }
}

/// The loopback address, where a control plane without a node listens.
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Starts the control plane with its files in `dir` and kube-apiserver
/// listening on `address` (also in its serving certificate); returns it with
/// the path of its kubeconfig, whose contexts are named after the users:
/// [`ADMIN`] (current) and each of [`TOKEN_USERS`].
pub(crate) async fn start(
    binaries: &Binaries,
    dir: &Path,
    address: IpAddr,
) -> anyhow::Result<(LocalControlPlane, PathBuf)> {
    let [etcd_client, etcd_peer, kcm_port] = free_ports(LOOPBACK)?;
    let [apiserver_port] = free_ports(address)?;
    let apiserver_address = SocketAddr::new(address, apiserver_port);
    for sub in ["etcd", "certs", "kcm-certs"] {
        std::fs::create_dir(dir.join(sub))?;
    }
    let sa_key = dir.join("sa.key");
    generate_rsa_key(&sa_key)?;
    let tokens = token_file(dir)?;
    let server = format!("https://{apiserver_address}");
    let kubeconfig = write_kubeconfig(dir, &server, &tokens)?;

    let mut etcd = start_etcd(binaries, dir, etcd_client, etcd_peer, "etcd.log")?;
    wait_ready(&mut etcd, "accepting connections", || async {
        port_open(etcd_address(etcd_client))
    })
    .await?;

    let mut apiserver = start_apiserver(
        binaries,
        dir,
        etcd_client,
        apiserver_address,
        &sa_key,
        "kube-apiserver.log",
    )?;
    wait_ready(&mut apiserver, "accepting connections", || async {
        port_open(apiserver_address)
    })
    .await?;
    // The serving certificate the kubeconfig trusts exists once the port is open.
    let client = kube::Client::try_from(super::context_config(&kubeconfig, ADMIN).await?)?;
    wait_ready(&mut apiserver, "ready (/readyz)", || readyz(&client)).await?;

    let controller_manager = match &binaries.controller_manager {
        None => None,
        Some(program) => {
            let mut kcm = start_controller_manager(program, dir, &kubeconfig, kcm_port, &sa_key)?;
            // The service-account controller creating `default/default` shows
            // the controllers run and reach the apiserver.
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
            wait_ready(&mut kcm, "creating the default ServiceAccount", || async {
                match accounts.get_opt("default").await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err("no ServiceAccount default/default yet".to_owned()),
                    Err(error) => Err(error.to_string()),
                }
            })
            .await?;
            Some(kcm)
        }
    };
    let control_plane = LocalControlPlane {
        controller_manager,
        apiserver: Mutex::new(Some(apiserver)),
        etcd: Mutex::new(Some(etcd)),
        restart: Restart {
            binaries: binaries.clone(),
            dir: dir.to_path_buf(),
            etcd_client,
            etcd_peer,
            apiserver: apiserver_address,
            sa_key,
            kubeconfig: kubeconfig.clone(),
            starts: AtomicUsize::new(1),
        },
    };
    Ok((control_plane, kubeconfig))
}

fn start_etcd(
    binaries: &Binaries,
    dir: &Path,
    client: u16,
    peer: u16,
    log: &str,
) -> anyhow::Result<Process> {
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let args = [
        "--name=e2e".to_owned(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=e2e={peer_url}"),
    ];
    Process::spawn("etcd", &binaries.etcd, &args, dir.join(log))
}

fn start_apiserver(
    binaries: &Binaries,
    dir: &Path,
    etcd_client: u16,
    address: SocketAddr,
    sa_key: &Path,
    log: &str,
) -> anyhow::Result<Process> {
    let args = [
        format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
        format!("--bind-address={}", address.ip()),
        // Also the address its self-signed serving certificate names.
        format!("--advertise-address={}", address.ip()),
        format!("--secure-port={}", address.port()),
        format!("--cert-dir={}", dir.join("certs").display()),
        "--service-account-issuer=https://kubernetes.default.svc".to_owned(),
        format!("--service-account-signing-key-file={}", sa_key.display()),
        format!("--service-account-key-file={}", sa_key.display()),
        format!("--token-auth-file={}", dir.join("tokens.csv").display()),
        "--authorization-mode=RBAC".to_owned(),
        // Room for the Services of a few hundred parents per trial.
        "--service-cluster-ip-range=10.0.0.0/16".to_owned(),
        // Pods are told the apiserver's address (there is no kube-proxy to
        // route the `kubernetes` Service), and a loopback address could not
        // back that Service anyway.
        "--endpoint-reconciler-type=none".to_owned(),
    ];
    Process::spawn("kube-apiserver", &binaries.apiserver, &args, dir.join(log))
}

fn start_controller_manager(
    program: &Path,
    dir: &Path,
    kubeconfig: &Path,
    port: u16,
    sa_key: &Path,
) -> anyhow::Result<Process> {
    let args = [
        format!("--kubeconfig={}", kubeconfig.display()),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", dir.join("kcm-certs").display()),
        "--leader-elect=false".to_owned(),
        format!("--service-account-private-key-file={}", sa_key.display()),
        // Published in every namespace as `kube-root-ca.crt`, which the
        // ServiceAccount token volume of every pod mounts.
        format!(
            "--root-ca-file={}",
            dir.join("certs/apiserver.crt").display()
        ),
        // The controllers share the admin's credentials: a ServiceAccount per
        // controller costs ~5 s of start-up, and no test here exercises the
        // controllers' own RBAC.
        "--use-service-account-credentials=false".to_owned(),
        "--authentication-skip-lookup=true".to_owned(),
        "--authorization-always-allow-paths=/healthz,/readyz,/livez".to_owned(),
        "--controllers=*".to_owned(),
    ];
    Process::spawn(
        "kube-controller-manager",
        program,
        &args,
        dir.join("kube-controller-manager.log"),
    )
}

/// Probes until `probe` answers `Ok`, failing with the process's log when it
/// exits or `READY_TIMEOUT` passes; the error quotes the last probe's answer.
pub(crate) async fn wait_ready<F, Fut>(
    process: &mut Process,
    what: &str,
    mut probe: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut last = String::from("not probed yet");
    let waited = tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            process.check_running()?;
            match probe().await {
                Ok(()) => return anyhow::Ok(()),
                Err(answer) => last = answer,
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    })
    .await;
    match waited {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(process.failure(&format!(
            "was not {what} after {READY_TIMEOUT:?} (last probe: {last})"
        ))),
    }
}

async fn readyz(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|error| error.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(body),
        Err(error) => Err(error.to_string()),
    }
}

fn etcd_address(port: u16) -> SocketAddr {
    SocketAddr::new(LOOPBACK, port)
}

pub(crate) fn port_open(address: SocketAddr) -> Result<(), String> {
    TcpStream::connect(address)
        .map(drop)
        .map_err(|error| format!("{address}: {error}"))
}

/// `N` distinct ports of `address` free at the time of the call: all are
/// bound at once, then released for the processes to take.
pub(crate) fn free_ports<const N: usize>(address: IpAddr) -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((address, 0)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("binding a free port of {address}"))?;
    let ports = listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect::<anyhow::Result<Vec<u16>>>()?;
    Ok(ports.try_into().expect("one port per listener"))
}

/// The key that signs and verifies ServiceAccount tokens, made by `openssl`.
fn generate_rsa_key(path: &Path) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(path)
        .arg("2048")
        .output()
        .context("running `openssl genrsa` for the ServiceAccount key; install openssl")?;
    if !output.status.success() {
        bail!(
            "`openssl genrsa` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Writes the apiserver's `--token-auth-file`: [`ADMIN`] in `system:masters`,
/// each of [`TOKEN_USERS`] in no group. Returns `(user, token)` pairs.
fn token_file(dir: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut tokens = Vec::new();
    let mut lines = String::new();
    for user in std::iter::once(ADMIN).chain(TOKEN_USERS.iter().copied()) {
        let token = random_token()?;
        let groups = if user == ADMIN {
            ",\"system:masters\""
        } else {
            ""
        };
        lines.push_str(&format!("{token},{user},{user}{groups}\n"));
        tokens.push((user, token));
    }
    std::fs::write(dir.join("tokens.csv"), lines)?;
    Ok(tokens)
}

/// 128 random bits in hex.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes `kubeconfig` (JSON, which is YAML): one context per user, named
/// after it, trusting the apiserver's self-signed certificate.
fn write_kubeconfig(
    dir: &Path,
    server: &str,
    tokens: &[(&str, String)],
) -> anyhow::Result<PathBuf> {
    let certificate = dir.join("certs/apiserver.crt");
    let users: Vec<_> = tokens
        .iter()
        .map(|(user, token)| json!({"name": user, "user": {"token": token}}))
        .collect();
    let contexts: Vec<_> = tokens
        .iter()
        .map(|(user, _)| json!({"name": user, "context": {"cluster": "e2e", "user": user}}))
        .collect();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": server,
            "certificate-authority": certificate,
        }}],
        "users": users,
        "contexts": contexts,
        "current-context": ADMIN,
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_vec_pretty(&kubeconfig)?)?;
    // Fail here rather than in kube if the file is not a kubeconfig.
    Kubeconfig::read_from(&path).context("reading back the written kubeconfig")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let [a, b, c] = free_ports(LOOPBACK).unwrap();
        assert!(a != b && b != c && a != c);
    }

    #[test]
    fn the_token_file_makes_only_the_admin_a_master() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = token_file(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("tokens.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + TOKEN_USERS.len());
        let (admin, admin_token) = &tokens[0];
        assert_eq!(*admin, ADMIN);
        assert_eq!(
            lines[0],
            format!("{admin_token},admin,admin,\"system:masters\"")
        );
        assert_eq!(admin_token.len(), 32);
        for ((user, token), line) in tokens[1..].iter().zip(&lines[1..]) {
            assert_eq!(*line, format!("{token},{user},{user}"));
            assert_ne!(token, admin_token);
        }
    }

    #[tokio::test]
    async fn the_kubeconfig_has_a_context_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = token_file(dir.path()).unwrap();
        let path = write_kubeconfig(dir.path(), "https://127.0.0.1:6443", &tokens).unwrap();
        let kubeconfig = Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some(ADMIN));
        let contexts: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(contexts, ["admin", "alice", "bob"]);
    }
}
