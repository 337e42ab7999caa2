//! dialinctl on a real terminal (a tmux pane): the import's progress bar and
//! its question before licensing; and the same 10,000-row import piped, where
//! stdout is clean JSON and stderr has no bar.

use std::{path::Path, process::Command, time::Duration};

use dialin_tests::wait_until;

use super::{Ctl, add_toll_number, results_lines, start, write_users};

const ROWS: usize = 10_000;

/// A tmux server of this test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` when tmux is not installed, which CI (`CI` set) does not accept:
    /// it installs tmux, and a test that checked nothing must not pass there.
    fn start() -> Option<Self> {
        let installed = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success());
        assert!(
            installed || std::env::var_os("CI").is_none(),
            "tmux is not installed, and CI must check the progress bar on a terminal"
        );
        installed.then(|| Self {
            socket: format!("dialinctl-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new("tmux");
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("DIALIN_")) {
            command.env_remove(key);
        }
        command
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Runs `shell` in a new 200×50 session `name`; the pane stays for a while after.
    fn run(&self, name: &str, shell: &str) {
        let out = self.tmux(&[
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-s",
            name,
            &format!("{shell}; sleep 60"),
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn screen(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    /// Waits until the pane shows `needle`; returns the screen.
    async fn wait_for(&self, name: &str, needle: &str, timeout: Duration) -> String {
        wait_until(&format!("{needle:?} in tmux pane {name}"), timeout, || async {
            let screen = self.screen(name);
            screen.contains(needle).then_some(screen)
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// `dialinctl ARGS` as a shell command line with `ctl`'s environment.
fn shell_command(ctl: &Ctl, args: &[&str]) -> String {
    format!(
        "env {} {} {}",
        ctl.env_words(),
        dialin_tests::binary("dialinctl").display(),
        args.join(" ")
    )
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_show_a_bar_on_a_terminal_and_none_in_a_pipe() {
    let (app, ctl) = start().await;
    let file = ctl.path("big.csv");
    write_users(&file, "big", ROWS);
    // Automatic emails off: the notifier records 20,000 suppressions instead of
    // sending 20,000 emails.
    for tenant in ["big1", "big2"] {
        add_toll_number(&ctl, tenant).await;
        ctl.tenant(tenant)
            .json(&["tenant", "set", "--automatically-send-emails-to-users=false"])
            .await;
    }

    // Piped: JSON on stdout, one summary line on stderr, no bar anywhere.
    let piped_results = ctl.path("piped.results.csv");
    let piped = ctl
        .tenant("big2")
        .run(&[
            "licenses",
            "import",
            path(&file),
            "--results",
            path(&piped_results),
            "--yes",
        ])
        .await;
    let summary = piped.json();
    assert_eq!(
        (summary["licensed"].as_u64(), summary["failed"].as_u64()),
        (Some(ROWS as u64), Some(0))
    );
    assert!(
        !piped.stdout.contains("licensing") && !piped.stdout.contains('\r'),
        "{}",
        piped.stdout
    );
    assert!(
        !piped.stderr.contains('\r') && !piped.stderr.contains('\u{1b}'),
        "{:?}",
        piped.stderr
    );
    assert!(!piped.stderr.contains("licensing ["), "{:?}", piped.stderr);
    assert_eq!(
        piped.stderr.lines().count(),
        1,
        "only the summary line: {:?}",
        piped.stderr
    );
    assert_eq!(results_lines(&piped_results).len(), ROWS + 1);

    let Some(tmux) = Tmux::start() else {
        println!("skipped: no tmux (the progress bar on a terminal was not checked)");
        app.stop().await;
        return;
    };
    let results = ctl.path("terminal.results.csv");
    let command = shell_command(
        &ctl.tenant("big1"),
        &["licenses", "import", path(&file), "--results", path(&results), "--yes"],
    );
    tmux.run("import", &command);
    let bar = tmux
        .wait_for("import", &format!("/{ROWS} users"), Duration::from_secs(60))
        .await;
    assert!(bar.contains("licensing ["), "{bar}");
    let done = tmux
        .wait_for("import", "(mode 0600: it holds PINs)", Duration::from_secs(120))
        .await;
    assert!(
        done.contains(&format!("{ROWS}/{ROWS} users")),
        "the bar ends full: {done}"
    );
    assert!(
        done.contains(&format!("tenant big1, {ROWS} rows: {ROWS} licensed")),
        "{done}"
    );
    assert_eq!(results_lines(&results).len(), ROWS + 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_is_asked_before_licensing() {
    let Some(tmux) = Tmux::start() else {
        println!("skipped: no tmux");
        return;
    };
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let file = ctl.path("three.csv");
    write_users(&file, "q", 3);

    tmux.run("no", &shell_command(&ctl, &["licenses", "import", path(&file)]));
    tmux.wait_for("no", "License 3 users of tenant t? [y/N]", Duration::from_secs(30))
        .await;
    tmux.keys("no", &["n", "Enter"]);
    tmux.wait_for(
        "no",
        "error: not confirmed; nothing was changed",
        Duration::from_secs(30),
    )
    .await;
    assert!(!ctl.path("three.results.csv").exists());

    tmux.run("yes", &shell_command(&ctl, &["licenses", "import", path(&file)]));
    tmux.wait_for("yes", "License 3 users of tenant t? [y/N]", Duration::from_secs(30))
        .await;
    tmux.keys("yes", &["y", "Enter"]);
    tmux.wait_for("yes", "tenant t, 3 rows: 3 licensed", Duration::from_secs(30))
        .await;
    // On a terminal the output is a table, not JSON.
    let listed = ctl.run(&["--output", "table", "user", "list"]).await;
    assert_eq!(listed.stdout.lines().count(), 4, "{}", listed.stdout);
    app.stop().await;
}
