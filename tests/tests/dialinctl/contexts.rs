//! Named contexts in the config file, and which setting wins: the flag, else
//! the environment variable, else the context, else the default.

use super::{Ctl, add_toll_number, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_supply_what_flags_and_variables_do_not() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let addr = app.settings_addr().to_string();
    let op_token = ctl.path("op.token").display().to_string();
    let other_token = ctl.path("other.token").display().to_string();
    // Only the config file's path: nothing else in the environment.
    let bare: Ctl = ctl
        .without("DIALIN_ADDR")
        .without("DIALIN_TOKEN_FILE")
        .without("DIALIN_TENANT");

    let shown = bare.json(&["context", "show"]).await;
    assert_eq!(shown["context"], serde_json::Value::Null);
    assert_eq!(shown["addr"]["value"], "127.0.0.1:50051");
    assert_eq!(shown["addr"]["from"], "default");
    assert_eq!(shown["tenant"], serde_json::Value::Null);

    let made = bare
        .run(&[
            "context",
            "set",
            "lab",
            "--addr",
            &addr,
            "--token-file",
            &op_token,
            "--tenant",
            "t",
        ])
        .await;
    assert_eq!(made.code, 0, "{made:#?}");
    assert!(made.stderr.contains("context lab made, the current one"), "{made:#?}");
    assert_eq!(bare.json(&["tenant", "get"]).await["tenantId"], "t");

    let made = bare
        .run(&[
            "context",
            "set",
            "other",
            "--addr",
            &addr,
            "--token-file",
            &other_token,
            "--tenant",
            "other",
        ])
        .await;
    assert!(made.stderr.contains("context other made ("), "{made:#?}");
    assert_eq!(
        bare.json(&["--context", "other", "tenant", "get"]).await["tenantId"],
        "other"
    );
    assert_eq!(
        bare.env("DIALIN_CONTEXT", "other").json(&["tenant", "get"]).await["tenantId"],
        "other"
    );
    assert_eq!(
        bare.json(&["tenant", "get"]).await["tenantId"],
        "t",
        "lab is still current"
    );

    let used = bare.run(&["context", "use", "other"]).await;
    assert_eq!(used.code, 0, "{used:#?}");
    assert_eq!(bare.json(&["tenant", "get"]).await["tenantId"], "other");
    // The variable beats the context (other's token may not act for t)...
    bare.env("DIALIN_TENANT", "t")
        .run(&["tenant", "get"])
        .await
        .refused("PERMISSION_DENIED", "TENANT_NOT_ALLOWED");
    // ...and the flag beats the variable.
    assert_eq!(
        bare.env("DIALIN_TENANT", "t")
            .json(&["--tenant", "other", "tenant", "get"])
            .await["tenantId"],
        "other"
    );
    let shown = bare.env("DIALIN_TENANT", "t").json(&["context", "show"]).await;
    assert_eq!(shown["context"], "other");
    assert_eq!(shown["addr"]["from"], "context other");
    assert_eq!(shown["tenant"]["value"], "t");
    assert_eq!(shown["tenant"]["from"], "environment (DIALIN_TENANT)");
    assert_eq!(shown["token_file"]["value"], other_token.as_str());

    // `context set` takes only what is typed on its command line.
    let changed = bare
        .env("DIALIN_TENANT", "from-the-environment")
        .run(&["context", "set", "lab", "--tenant", "t2"])
        .await;
    assert!(changed.stderr.contains("context lab changed"), "{changed:#?}");
    let listed = bare.json(&["context", "list"]).await;
    assert_eq!(listed["current"], "other");
    assert_eq!(listed["contexts"]["lab"]["tenant"], "t2");
    assert_eq!(listed["contexts"]["lab"]["addr"], addr.as_str());
    let table = bare.run(&["--output", "table", "context", "list"]).await;
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("CURRENT  NAME   ADDR"), "{}", table.stdout);
    assert!(lines[1].starts_with("         lab    127.0.0.1:"), "{}", table.stdout);
    assert!(lines[2].starts_with("*        other  127.0.0.1:"), "{}", table.stdout);

    bare.run(&["context", "use", "staging"])
        .await
        .usage_error("no context staging");
    let file = std::fs::read_to_string(ctl.path("config.toml")).unwrap();
    assert!(
        file.contains("current = \"other\"") && file.contains("[contexts.lab]"),
        "{file}"
    );
    assert!(
        !file.contains(super::OPERATOR),
        "the config file holds token paths, never tokens"
    );
    app.stop().await;
}
