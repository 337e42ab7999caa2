//! dialinctl end to end: the real binary, run as a process against both
//! services (real gRPC, a real database, a real SMTP server), as an operator
//! would run it. Its stdout is piped, so it prints JSON unless told otherwise.

mod cli;
mod contexts;
mod emails;
mod import;
mod security;
mod tenant_and_numbers;
mod terminal;
mod users;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use dialin_tests::TestApp;
use serde_json::Value;
use tokio::{io::AsyncWriteExt, process::Command};

pub const OPERATOR: &str = "op-token-5f1c";
pub const TENANT_T: &str = "t-token-8a2e";
pub const TENANT_OTHER: &str = "other-token-3b9d";

/// A run of dialinctl must end well within this.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Both services with three tokens: an operator's, tenant t's and tenant other's.
pub async fn start() -> (TestApp, Ctl) {
    let app = TestApp::builder()
        .tokens(&[(OPERATOR, "*"), (TENANT_T, "tenant:t"), (TENANT_OTHER, "tenant:other")])
        .start()
        .await;
    let ctl = Ctl::new(&app);
    (app, ctl)
}

/// How to run dialinctl against one test's services: a directory of its own
/// (token files, the config file, CSV files), and the environment it gets.
#[derive(Clone)]
pub struct Ctl {
    dir: Arc<TestDir>,
    env: Vec<(String, String)>,
}

/// What one run of dialinctl did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ctl {
    /// Acting for tenant t with the operator's token.
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.settings_addr().to_string())
    }

    /// Pointing at an address nothing listens on, for what needs no service.
    pub fn offline() -> Self {
        Self::at(&dialin_tests::free_addr().to_string())
    }

    fn at(addr: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dialinctl-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        for (name, token) in [
            ("op", OPERATOR),
            ("t", TENANT_T),
            ("other", TENANT_OTHER),
            ("bad", "a-token-nobody-issued"),
        ] {
            std::fs::write(dir.join(format!("{name}.token")), format!("{token}\n")).expect("write a token file");
        }
        let ctl = Self {
            dir: Arc::new(TestDir(dir)),
            env: Vec::new(),
        };
        ctl.env("DIALIN_CONFIG", &ctl.path("config.toml").display().to_string())
            .env("DIALIN_ADDR", addr)
            .token("op")
            .env("DIALIN_TENANT", "t")
    }

    /// The same, with `key=value` in the environment (replacing any).
    pub fn env(&self, key: &str, value: &str) -> Self {
        let mut ctl = self.clone();
        ctl.env.retain(|(k, _)| k != key);
        ctl.env.push((key.to_owned(), value.to_owned()));
        ctl
    }

    /// The same, without `key` in the environment.
    pub fn without(&self, key: &str) -> Self {
        let mut ctl = self.clone();
        ctl.env.retain(|(k, _)| k != key);
        ctl
    }

    /// The same, with token file `name` (`op`, `t`, `other` or `bad`).
    pub fn token(&self, name: &str) -> Self {
        let file = self.path(&format!("{name}.token"));
        self.env("DIALIN_TOKEN_FILE", &file.display().to_string())
    }

    pub fn tenant(&self, tenant: &str) -> Self {
        self.env("DIALIN_TENANT", tenant)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// The environment as `env` arguments, for a shell command line.
    pub fn env_words(&self) -> String {
        self.env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `dialinctl ARGS` with no stdin (not a terminal).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// Runs `dialinctl ARGS`, writing `stdin` to it.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = Command::new(dialin_tests::binary("dialinctl"));
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("DIALIN_")) {
            command.env_remove(key);
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start dialinctl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .expect("write to dialinctl's stdin");
        }
        let output = tokio::time::timeout(RUN_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("dialinctl {args:?} did not finish within {RUN_DEADLINE:?}"))
            .expect("wait for dialinctl");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs `dialinctl ARGS`, which must succeed, and returns its JSON.
    pub async fn json(&self, args: &[&str]) -> Value {
        self.run(args).await.json()
    }
}

impl Run {
    /// The JSON on stdout of a run that succeeded.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:#?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:#?}"))
    }

    /// A failed call: exit code 1, and stderr names the gRPC code and the reason.
    pub fn refused(&self, code: &str, reason: &str) -> &Self {
        assert_eq!(self.code, 1, "{self:#?}");
        assert!(self.stderr.starts_with(&format!("error: {code}: ")), "{self:#?}");
        assert!(self.stderr.contains(&format!("\nreason: {reason}\n")), "{self:#?}");
        assert!(self.stdout.is_empty(), "nothing on stdout when a call fails: {self:#?}");
        self
    }

    /// A usage error: exit code 2, with `needle` on stderr.
    pub fn usage_error(&self, needle: &str) -> &Self {
        assert_eq!(self.code, 2, "{self:#?}");
        assert!(self.stderr.contains(needle), "{self:#?}");
        self
    }
}

/// A directory removed when the last [`Ctl`] using it goes.
struct TestDir(PathBuf);

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CSV import file of `count` generated users `<prefix>-<n>`.
pub fn write_users(path: &Path, prefix: &str, count: usize) {
    let mut text = String::from("user_id,email,display_name,locale,usage_location,toll_number\n");
    for n in 0..count {
        text.push_str(&format!("{prefix}-{n},{prefix}-{n}@example.com,User {n},,,\n"));
    }
    std::fs::write(path, text).expect("write the import file");
}

/// The lines of a results file (header included).
pub fn results_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read the results file")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Adds tenant `tenant`'s first toll number through dialinctl.
pub async fn add_toll_number(ctl: &Ctl, tenant: &str) {
    ctl.tenant(tenant)
        .json(&["numbers", "add", "+14255550100", "--type", "toll", "--country", "US"])
        .await;
}
