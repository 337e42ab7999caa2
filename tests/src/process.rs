//! The real `dialin-settings` and `dialin-notifier` binaries as child
//! processes, for tests that kill them (`kill -9`) and start them again.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

use tokio::process::{Child, Command};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::wait_until;

/// The path of a service binary, built (once per test process) with the
/// profile the tests were built with.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        // `--workspace` resolves the same features as `cargo test --workspace`,
        // so this reuses the test build's artifacts instead of compiling again.
        let mut build = std::process::Command::new(cargo);
        // Not the variables cargo set for this test crate: build scripts that
        // read one (ring reads CARGO_MANIFEST_DIR) would otherwise rebuild,
        // and everything above them, each time a test and a shell build take turns.
        for (key, _) in std::env::vars().filter(|(key, _)| set_for_this_crate(key)) {
            build.env_remove(key);
        }
        let status = build
            .args(["build", "--workspace", "--bins"])
            .current_dir(&workspace)
            .status()
            .map_err(|error| format!("cannot run cargo build: {error}"))?;
        if !status.success() {
            return Err(format!("cargo build of the service binaries failed: {status}"));
        }
        let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| workspace.join("target"), PathBuf::from);
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        Ok(target.join(profile))
    });
    match dir {
        Ok(dir) => dir.join(name),
        Err(error) => panic!("{error}"),
    }
}

/// A variable cargo sets for the crate it runs (its tests included).
fn set_for_this_crate(key: &str) -> bool {
    [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
}

/// A loopback address nobody listens on yet.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
}

/// One running service process, restartable with the same configuration.
pub struct ServiceProcess {
    binary: &'static str,
    /// A command the binary runs under (its path is passed as the last argument).
    wrapper: Vec<String>,
    pub addr: SocketAddr,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `binary` with `env` (its `DIALIN_*` configuration) and waits
    /// until it answers health checks on `addr`. Output goes to `log`.
    pub async fn start(binary: &'static str, addr: SocketAddr, env: Vec<(String, String)>, log: PathBuf) -> Self {
        Self::start_wrapped(binary, Vec::new(), addr, env, log).await
    }

    /// Like [`Self::start`], run under `wrapper` (e.g. a mount namespace).
    pub async fn start_wrapped(
        binary: &'static str,
        wrapper: Vec<String>,
        addr: SocketAddr,
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        let mut service = Self {
            binary,
            wrapper,
            addr,
            env,
            log,
            child: None,
        };
        service.spawn().await;
        service
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the service log");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary(self.binary));
                command
            }
            None => Command::new(binary(self.binary)),
        };
        // Only the configuration given here: nothing from the test's environment.
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("DIALIN_")) {
            command.env_remove(key);
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(command.spawn().expect("start the service binary"));
        let addr = self.addr;
        let name = self.binary;
        wait_until(
            &format!("{name} on {addr} to be healthy"),
            Duration::from_secs(30),
            || async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
                HealthClient::new(channel)
                    .check(HealthCheckRequest { service: String::new() })
                    .await
                    .ok()
            },
        )
        .await;
    }

    /// `kill -9`: no drain, no goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again with the same configuration.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
