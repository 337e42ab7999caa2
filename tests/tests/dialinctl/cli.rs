//! The command line itself: usage errors exit 2, completions, and an example
//! in every subcommand's help.

use super::Ctl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_print_nothing_on_stdout() {
    let ctl = Ctl::offline();
    let wrong: &[&[&str]] = &[
        &["frobnicate"],
        &["user", "get"],
        &["numbers", "add", "+14255550100", "--type", "tollfree"],
        &["numbers", "add", "+14255550100"],
        &["tenant", "set"],
        &["tenant", "set", "--automatically-send-emails-to-users=maybe"],
        &["user", "list", "--licensed", "--unlicensed"],
        &["user", "list", "--page-size", "0"],
        &["user", "set-numbers", "alice"],
        &["user", "set-provider", "alice", "--provider", "skype"],
        &["deliveries", "list", "--limit", "many"],
        &["deliveries", "list", "--status", "bounced"],
        &["preview", "--kind", "newsletter"],
        &["completions", "tcsh"],
        &["--output", "yaml", "tenant", "get"],
    ];
    for args in wrong {
        let run = ctl.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
        assert!(run.stderr.contains("error:"), "{args:?}: {run:#?}");
    }

    // Settings that cannot work are usage errors too, found before any call.
    ctl.without("DIALIN_TENANT")
        .run(&["tenant", "get"])
        .await
        .usage_error("no tenant");
    ctl.env("DIALIN_ADDR", "ftp://127.0.0.1:1")
        .run(&["tenant", "get"])
        .await
        .usage_error("ftp://");
    ctl.env("DIALIN_ADDR", "https://127.0.0.1:1")
        .run(&["tenant", "get"])
        .await
        .usage_error("needs --ca");
    ctl.env("DIALIN_TOKEN_FILE", "/nonexistent/token")
        .run(&["tenant", "get"])
        .await
        .usage_error("cannot read the token file /nonexistent/token");
    ctl.run(&["licenses", "import", "/nonexistent/users.csv", "--yes"])
        .await
        .usage_error("cannot read /nonexistent/users.csv");
    ctl.run(&["--context", "nope", "tenant", "get"])
        .await
        .usage_error("no context nope");

    // A service that does not answer: the call failed (1), and how to look into it.
    let unreachable = ctl.run(&["tenant", "get"]).await;
    assert_eq!(unreachable.code, 1, "{unreachable:#?}");
    assert!(
        unreachable.stderr.starts_with("error: UNAVAILABLE: "),
        "{unreachable:#?}"
    );
    assert!(
        unreachable
            .stderr
            .contains("hint: the call did not reach a dialin service: check --addr"),
        "{unreachable:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_for_each_shell() {
    let ctl = Ctl::offline();
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef dialinctl"),
        ("fish", "complete -c dialinctl"),
    ] {
        let run = ctl.run(&["completions", shell]).await;
        assert_eq!(run.code, 0, "{run:#?}");
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
        assert!(
            run.stdout.contains("reset-conference-id"),
            "{shell} completes subcommands"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_an_example_in_its_help() {
    let ctl = Ctl::offline();
    let commands: &[&[&str]] = &[
        &[],
        &["tenant"],
        &["tenant", "get"],
        &["tenant", "set"],
        &["tenant", "reset"],
        &["numbers"],
        &["numbers", "add"],
        &["numbers", "list"],
        &["numbers", "replace"],
        &["user"],
        &["user", "get"],
        &["user", "list"],
        &["user", "license"],
        &["user", "unlicense"],
        &["user", "reset-pin"],
        &["user", "reset-conference-id"],
        &["user", "set-numbers"],
        &["user", "set-provider"],
        &["user", "send-info"],
        &["licenses"],
        &["licenses", "import"],
        &["deliveries"],
        &["deliveries", "list"],
        &["deliveries", "get"],
        &["deliveries", "retry"],
        &["why"],
        &["pin"],
        &["pin", "verify"],
        &["preview"],
        &["context"],
        &["context", "use"],
        &["context", "list"],
        &["context", "set"],
        &["context", "show"],
        &["completions"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = ctl.run(&args).await;
        assert_eq!(run.code, 0, "{args:?}: {run:#?}");
        assert!(run.stdout.contains("Example:\n  dialinctl"), "{args:?}: {}", run.stdout);
        assert!(
            run.stdout.contains("DIALIN_TOKEN_FILE"),
            "{args:?} lists the global flags"
        );
    }
}
